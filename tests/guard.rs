//! The guard end to end: the PreToolUse binary on real-shaped inputs, and the real Claude
//! Code client trying to change its own settings — in `bypassPermissions` (where the client's
//! own protection of `.claude/` is off) and in the default mode with a `python3 -c` write
//! (which the client lets through). These tests fail with the guard switched off.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed step must fail the test at once"
)]

mod support;

use std::fs;

use serde_json::{Value, json};
use support::{TestEnv, bin};

const GOOD: &str = "{\n  \"env\": {\"A\": \"1\"}\n}\n";

fn settings(env: &TestEnv) -> std::path::PathBuf {
    env.project.join(".claude/settings.json")
}

fn pre(env: &TestEnv, tool: &str, input: &Value) -> (Option<i32>, Value, String) {
    let stdin = json!({
        "session_id": "s-guard",
        "transcript_path": "/nonexistent/t.jsonl",
        "cwd": env.project,
        "permission_mode": "bypassPermissions",
        "hook_event_name": "PreToolUse",
        "tool_name": tool,
        "tool_input": input,
        "tool_use_id": format!("toolu_{tool}"),
    });
    let out = env.run_hook("ctxopt-pre-tool-use", stdin.to_string().as_bytes());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let reply = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap()
    };
    (
        out.status.code(),
        reply,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn denied(reply: &Value) -> Option<&str> {
    let out = &reply["hookSpecificOutput"];
    (out["hookEventName"] == "PreToolUse" && out["permissionDecision"] == "deny")
        .then(|| out["permissionDecisionReason"].as_str().unwrap_or(""))
}

fn audit(env: &TestEnv) -> Vec<Value> {
    support::read_records(&env.data().join("audit.log"))
}

#[test]
fn writes_to_protected_files_are_denied_with_a_reason_and_audited() {
    let env = TestEnv::new();
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    fs::write(settings(&env), GOOD).unwrap();
    let path = settings(&env);
    let cases = [
        ("Write", json!({"file_path": path, "content": "{}"})),
        (
            "Edit",
            json!({"file_path": path, "old_string": "1", "new_string": "2"}),
        ),
        (
            "Bash",
            json!({"command": "echo {} > .claude/settings.json"}),
        ),
        (
            "Bash",
            json!({"command": "python3 -c \"open('.claude/settings.json','w').write('{}')\""}),
        ),
        (
            "Bash",
            json!({"command": "cd .claude && sed -i 's/1/2/' settings.json"}),
        ),
        ("Bash", json!({"command": "rm -rf .claude/hooks"})),
        (
            "Write",
            json!({"file_path": env.project.join(".claude/hooks/data/metrics.jsonl"), "content": ""}),
        ),
        (
            "Write",
            json!({"file_path": env.home.join(".claude/settings.json"), "content": "{}"}),
        ),
        (
            "Bash",
            json!({"command": "printf {} | tee $HOME/.claude.json"}),
        ),
    ];
    for (tool, input) in &cases {
        let (code, reply, stderr) = pre(&env, tool, input);
        assert_eq!(code, Some(0), "{tool} {input}: {stderr}");
        let reason = denied(&reply).unwrap_or_else(|| panic!("{tool} {input} not denied: {reply}"));
        assert!(reason.contains("protected by ctxopt"), "{reason}");
    }
    assert_eq!(fs::read_to_string(settings(&env)).unwrap(), GOOD);
    let denials: Vec<_> = audit(&env)
        .into_iter()
        .filter(|e| e["action"] == "deny" && e["actor"] == "agent")
        .collect();
    assert_eq!(denials.len(), cases.len(), "{denials:#?}");
    assert!(
        denials[0]["path"]
            .as_str()
            .unwrap()
            .ends_with(".claude/settings.json")
    );
    assert_eq!(denials[2]["tool"], "Bash");
}

/// ctxopt's own binaries, in the running hook's directory: overwriting one would switch the
/// guard off. A file of another name beside them is not protected.
#[test]
fn the_hook_binaries_themselves_are_protected() {
    let env = TestEnv::new();
    let hook = support::bin("ctxopt-pre-tool-use");
    let dir = hook.parent().unwrap().to_path_buf();
    let cases = [
        (
            "Write",
            json!({"file_path": hook, "content": "#!/bin/sh\nexit 0\n"}),
        ),
        (
            "Bash",
            json!({"command": format!("cp /bin/true {}", dir.join("ctxopt").display())}),
        ),
        (
            "Bash",
            json!({"command": format!("cd {} && echo > ctxopt-run", dir.display())}),
        ),
    ];
    for (tool, input) in &cases {
        let (code, reply, stderr) = pre(&env, tool, input);
        assert_eq!(code, Some(0));
        let reason = denied(&reply).unwrap_or_else(|| panic!("{tool} {input}: {reply} {stderr}"));
        assert!(reason.contains("ctxopt's own binaries"), "{reason}");
    }
    let (_, reply, _) = pre(
        &env,
        "Bash",
        &json!({"command": format!("echo > {}", dir.join("ctxopt-notes.txt").display())}),
    );
    assert!(denied(&reply).is_none(), "{reply}");
}

#[test]
fn reads_and_ordinary_writes_are_allowed() {
    let env = TestEnv::new();
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    fs::write(settings(&env), GOOD).unwrap();
    let cases = [
        ("Read", json!({"file_path": settings(&env)})),
        (
            "Bash",
            json!({"command": "cat .claude/settings.json | jq ."}),
        ),
        (
            "Bash",
            json!({"command": "cp .claude/settings.json /tmp/copy.json"}),
        ),
        (
            "Write",
            json!({"file_path": env.project.join("src/main.rs"), "content": "fn main() {}"}),
        ),
        (
            "Bash",
            json!({"command": "echo hi > notes.txt && cargo test"}),
        ),
        (
            "Write",
            json!({"file_path": env.project.join(".claude/skills/x/SKILL.md"), "content": "---\n---\n"}),
        ),
    ];
    for (tool, input) in &cases {
        let (code, reply, stderr) = pre(&env, tool, input);
        assert_eq!(code, Some(0));
        assert!(
            denied(&reply).is_none(),
            "{tool} {input} denied: {reply} {stderr}"
        );
    }
    assert!(
        audit(&env).iter().all(|e| e["action"] != "deny"),
        "{:#?}",
        audit(&env)
    );
}

#[test]
fn warn_mode_audits_and_lets_the_call_through() {
    let env = TestEnv::new();
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    fs::write(
        env.project.join(".claude/ctxopt.json"),
        r#"{"guard": {"mode": "warn"}}"#,
    )
    .unwrap();
    let (_, reply, _) = pre(
        &env,
        "Write",
        &json!({"file_path": settings(&env), "content": "{}"}),
    );
    assert!(denied(&reply).is_none(), "{reply}");
    assert!(audit(&env).iter().any(|e| e["action"] == "would-deny"));
}

/// A panic while deciding on a call that targets a protected path denies it (the guard's
/// closed failure policy); the same panic on an ordinary call lets it through.
#[test]
fn a_panic_while_deciding_on_a_protected_path_denies_the_call() {
    let env = TestEnv::new();
    let stdin = |command: &str| {
        json!({
            "session_id": "s", "cwd": env.project, "hook_event_name": "PreToolUse",
            "tool_name": "Bash", "tool_input": {"command": command}, "tool_use_id": "toolu_p",
        })
        .to_string()
    };
    let mut cmd = env.command(&bin("ctxopt-pre-tool-use"));
    cmd.env("CTXOPT_FAULT_INJECT", "panic");
    let out = env.run_with(cmd, stdin("echo {} > .claude/settings.json").as_bytes());
    assert_eq!(out.status.code(), Some(0));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reason = denied(&reply).expect("denied");
    assert!(reason.starts_with("ctxopt guard error:"), "{reason}");

    let mut cmd = env.command(&bin("ctxopt-pre-tool-use"));
    cmd.env("CTXOPT_FAULT_INJECT", "panic");
    let out = env.run_with(cmd, stdin("ls").as_bytes());
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

/// The real client, as root in `bypassPermissions` (`IS_SANDBOX=1`), where its own protection
/// of `.claude/` is off: Write, Edit, Bash and a python one-liner at `.claude/settings.json`
/// are refused with ctxopt's reason, a read is allowed, the file is unchanged.
#[test]
fn real_client_in_bypass_mode_cannot_change_its_settings() {
    use support::claude::{self, Claude};
    use support::fake_api::{FakeApi, Script, Turn};

    let Some(client) = claude::client("real_client_in_bypass_mode_cannot_change_its_settings")
    else {
        return;
    };
    let env = TestEnv::new();
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    fs::write(settings(&env), GOOD).unwrap();
    let mut cmd = env.command(&bin("ctxopt"));
    cmd.arg("install");
    assert_eq!(env.run_with(cmd, b"").status.code(), Some(0));
    let path = settings(&env);
    let api = FakeApi::start(Script::new(vec![
        Turn::tool(
            "toolu_w",
            "Write",
            json!({"file_path": path, "content": "{}"}),
        ),
        Turn::tool(
            "toolu_e",
            "Edit",
            json!({"file_path": path, "old_string": "\"1\"", "new_string": "\"2\""}),
        ),
        Turn::tool(
            "toolu_b",
            "Bash",
            json!({"command": "echo {} > .claude/settings.json", "description": "x"}),
        ),
        Turn::tool(
            "toolu_py",
            "Bash",
            json!({"command": "python3 -c \"open('.claude/settings.json','w').write('{}')\"", "description": "x"}),
        ),
        Turn::tool("toolu_r", "Read", json!({"file_path": path})),
        Turn::text("Done."),
    ]));
    let run = Claude::new(client, &env, &api, "Change the settings.")
        .args(["--permission-mode", "bypassPermissions"])
        .env("IS_SANDBOX", "1")
        .run();
    let report = || format!("{}\n--- api\n{}", run.report(), api.report());
    assert!(run.ok(), "{}", report());
    assert_eq!(
        fs::read_to_string(settings(&env)).unwrap(),
        GOOD,
        "{}",
        report()
    );
    let results = tool_results(&api);
    for id in ["toolu_w", "toolu_e", "toolu_b", "toolu_py"] {
        let (is_error, text) = results.iter().find(|(i, _, _)| i == id).map_or_else(
            || panic!("no result for {id}\n{}", report()),
            |(_, e, t)| (*e, t.clone()),
        );
        assert!(is_error, "{id} went through\n{}", report());
        assert!(
            text.contains("protected by ctxopt"),
            "{id}: {text}\n{}",
            report()
        );
    }
    let read = results.iter().find(|(i, _, _)| i == "toolu_r").unwrap();
    assert!(!read.1, "the read was refused\n{}", report());
}

/// The default permission mode lets a `python3 -c` write through (OBSERVED.md); the guard
/// refuses it.
#[test]
fn real_client_default_mode_python_one_liner_is_refused() {
    use support::claude::{self, Claude};
    use support::fake_api::{FakeApi, Script, Turn};

    let Some(client) = claude::client("real_client_default_mode_python_one_liner_is_refused")
    else {
        return;
    };
    let env = TestEnv::new();
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    fs::write(settings(&env), GOOD).unwrap();
    let mut cmd = env.command(&bin("ctxopt"));
    cmd.arg("install");
    assert_eq!(env.run_with(cmd, b"").status.code(), Some(0));
    let api = FakeApi::start(Script::new(vec![
        Turn::tool(
            "toolu_py",
            "Bash",
            json!({"command": "python3 -c \"open('.claude/settings.json','w').write('{}')\"", "description": "x"}),
        ),
        Turn::text("Done."),
    ]));
    let run = Claude::new(client, &env, &api, "Change the settings.").run();
    let report = || format!("{}\n--- api\n{}", run.report(), api.report());
    assert!(run.ok(), "{}", report());
    assert_eq!(
        fs::read_to_string(settings(&env)).unwrap(),
        GOOD,
        "{}",
        report()
    );
    let results = tool_results(&api);
    let py = results.iter().find(|(i, _, _)| i == "toolu_py").unwrap();
    assert!(
        py.1 && py.2.contains("protected by ctxopt"),
        "{py:?}\n{}",
        report()
    );
}

/// `(tool_use_id, is_error, text)` of every tool result the client sent the API.
fn tool_results(api: &support::fake_api::FakeApi) -> Vec<(String, bool, String)> {
    let mut out = Vec::new();
    for request in api.main_chain() {
        let body = request.json();
        for message in body["messages"].as_array().into_iter().flatten() {
            for block in message["content"].as_array().into_iter().flatten() {
                if block["type"] == "tool_result" {
                    let id = block["tool_use_id"].as_str().unwrap_or("").to_owned();
                    if out
                        .iter()
                        .any(|(i, _, _): &(String, bool, String)| *i == id)
                    {
                        continue;
                    }
                    out.push((
                        id,
                        block["is_error"].as_bool().unwrap_or(false),
                        block["content"].to_string(),
                    ));
                }
            }
        }
    }
    out
}

/// Symlinks are resolved in the binary too (where directory resolution is memoised per
/// process): a link from elsewhere to `.claude`, and a project whose `.claude` is itself a link
/// into a dotfiles directory.
#[test]
fn symlinks_to_and_of_the_claude_dir_are_resolved_in_the_hook_process() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.project.join(".claude")).unwrap();
    std::fs::write(settings(&env), GOOD).unwrap();
    let elsewhere = env.tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(env.project.join(".claude"), elsewhere.join("link")).unwrap();
    let command = format!("echo x > {}/link/settings.json", elsewhere.display());
    let (code, reply, _) = pre(&env, "Bash", &json!({ "command": command }));
    assert_eq!(code, Some(0));
    assert!(
        denied(&reply).is_some(),
        "through a link to .claude: {reply}"
    );
    let (_, reply, _) = pre(
        &env,
        "Bash",
        &json!({"command": format!("echo x > {}/link/notes.txt", elsewhere.display())}),
    );
    assert!(
        denied(&reply).is_none(),
        "an ordinary file next to it: {reply}"
    );

    let env = TestEnv::new();
    let dotfiles = env.tmp.path().join("dotfiles/claude");
    std::fs::create_dir_all(&dotfiles).unwrap();
    std::fs::write(dotfiles.join("settings.json"), GOOD).unwrap();
    std::os::unix::fs::symlink(&dotfiles, env.project.join(".claude")).unwrap();
    let (_, reply, _) = pre(
        &env,
        "Write",
        &json!({"file_path": dotfiles.join("settings.json"), "content": "{}"}),
    );
    assert!(
        denied(&reply).is_some(),
        "the real file behind .claude: {reply}"
    );
}
