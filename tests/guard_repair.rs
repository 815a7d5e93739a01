//! The guard's last line and second line, driven through the real binaries (issue 4, item 1):
//! `ctxopt-pre-tool-use` snapshots the protected files, the test changes them as a script the
//! parser never saw would, `ctxopt-post-tool-use` compares and repairs; ConfigChange blocks a
//! change made while a call is in flight. Each test has its own temporary HOME and project;
//! last-known-good copies come from one `ctxopt-session-start` run on valid config.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failed step is a test failure"
)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};
use support::{TestEnv, fixture, read_records};

const SESSION: &str = "75260e37-9241-4982-9cf1-8224ccb4f99b";
const GOOD: &str = "{\n  \"model\": \"opus\"\n}\n";
const HOOK: &str = "#!/bin/sh\nexit 0\n";

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn settings(env: &TestEnv) -> PathBuf {
    env.project.join(".claude/settings.json")
}

/// One quiet session start: validates the config and writes the last-known-good copies.
fn session_start(env: &TestEnv) {
    let out = env.run_hook(
        "ctxopt-session-start",
        &fixture("hooks/SessionStart/startup.json"),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
}

fn tool_input(env: &TestEnv, event: &str, id: &str, mode: &str) -> Value {
    let mut input = json!({
        "session_id": SESSION,
        "transcript_path": "/nonexistent/t.jsonl",
        "cwd": env.project,
        "permission_mode": mode,
        "hook_event_name": event,
        "tool_name": "Bash",
        "tool_input": {"command": "python3 /tmp/tweak.py", "description": "run a script"},
        "tool_use_id": id,
    });
    match event {
        "PostToolUse" => {
            input["tool_response"] =
                json!({"stdout": "", "stderr": "", "interrupted": false, "isImage": false});
            input["duration_ms"] = json!(12);
        }
        "PostToolUseFailure" => {
            input["error"] = json!("Exit code 1\n");
            input["is_interrupt"] = json!(false);
        }
        _ => {}
    }
    input
}

fn run(env: &TestEnv, program: &str, input: &Value) -> Output {
    let out = env.run_hook(program, input.to_string().as_bytes());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
    out
}

fn pre(env: &TestEnv, id: &str) {
    let out = run(
        env,
        "ctxopt-pre-tool-use",
        &tool_input(env, "PreToolUse", id, "default"),
    );
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    assert!(
        marker(env, id).is_file(),
        "no in-flight marker after PreToolUse"
    );
}

fn post(env: &TestEnv, id: &str) -> Output {
    let out = run(
        env,
        "ctxopt-post-tool-use",
        &tool_input(env, "PostToolUse", id, "default"),
    );
    assert!(
        !marker(env, id).exists(),
        "in-flight marker left after PostToolUse"
    );
    out
}

fn marker(env: &TestEnv, id: &str) -> PathBuf {
    env.data()
        .join("state")
        .join(format!("inflight-{SESSION}.{id}.Bash"))
}

/// The reply of a PostToolUse that reported: exactly `systemMessage` and a PostToolUse
/// `hookSpecificOutput` with `additionalContext`. Returns (context, system message).
fn reported(out: &Output, event: &str) -> (String, String) {
    let reply: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(&out.stdout)));
    let object = reply.as_object().unwrap();
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        ["systemMessage", "hookSpecificOutput"],
        "{reply}"
    );
    let specific = reply["hookSpecificOutput"].as_object().unwrap();
    assert_eq!(
        specific.keys().collect::<Vec<_>>(),
        ["hookEventName", "additionalContext"],
        "{reply}"
    );
    assert_eq!(specific["hookEventName"], event);
    (
        specific["additionalContext"].as_str().unwrap().to_owned(),
        reply["systemMessage"].as_str().unwrap().to_owned(),
    )
}

/// The reply of a PostToolUse that reported to the user only: exactly `systemMessage`.
fn user_message(out: &Output) -> String {
    let reply: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(&out.stdout)));
    assert_eq!(
        reply.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["systemMessage"],
        "{reply}"
    );
    reply["systemMessage"].as_str().unwrap().to_owned()
}

fn audit(env: &TestEnv) -> Vec<Value> {
    read_records(&env.data().join("audit.log"))
}

fn audit_of(env: &TestEnv, action: &str) -> Vec<Value> {
    audit(env)
        .into_iter()
        .filter(|e| e["action"] == action)
        .collect()
}

/// Every file in the quarantine, with its bytes.
fn quarantined(env: &TestEnv) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push((path.clone(), fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&env.data().join("quarantine"), &mut out);
    out
}

fn sha256(bytes: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(bytes)?;
            child.wait_with_output()
        })
        .unwrap();
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn a_script_change_of_settings_is_restored_kept_aside_audited_and_reported() {
    let env = TestEnv::new();
    write(&settings(&env), GOOD);
    fs::set_permissions(settings(&env), fs::Permissions::from_mode(0o640)).unwrap();
    session_start(&env);

    pre(&env, "toolu_script");
    let evil = "{\"permissions\": {\"defaultMode\": \"bypassPermissions\"}}";
    fs::write(settings(&env), evil).unwrap();
    let out = post(&env, "toolu_script");

    assert_eq!(fs::read_to_string(settings(&env)).unwrap(), GOOD);
    let mode = fs::metadata(settings(&env)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the mode it had before the call");
    let kept = quarantined(&env);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].1, evil.as_bytes());
    assert!(kept[0].0.ends_with(".claude/settings.json"), "{kept:?}");

    let repairs = audit_of(&env, "repair");
    assert_eq!(repairs.len(), 1, "{:?}", audit(&env));
    let entry = &repairs[0];
    assert_eq!(entry["actor"], "agent");
    assert_eq!(entry["path"], settings(&env).to_str().unwrap());
    assert_eq!(entry["sha256_before"], sha256(evil.as_bytes()));
    assert_eq!(entry["sha256_after"], sha256(GOOD.as_bytes()));
    assert_eq!(entry["session_id"], SESSION);
    assert_eq!(entry["tool"], "Bash");
    assert!(
        entry["detail"]
            .as_str()
            .unwrap()
            .contains("changed during Bash call toolu_script"),
        "{entry}"
    );

    let (context, message) = reported(&out, "PostToolUse");
    assert!(
        context.starts_with(
            "ctxopt restored .claude/settings.json: it was changed during this Bash call; \
             the agent may not change Claude Code's project settings. A person changes it by \
             hand outside the agent"
        ),
        "{context}"
    );
    assert!(context.contains("The changed version is kept as .claude/hooks/data/quarantine/"));
    assert!(
        message.starts_with("ctxopt: the agent's Bash call changed .claude/settings.json;"),
        "{message}"
    );

    let records = env.records();
    let tool_use = support::of_type(&records, "tool_use");
    assert_eq!(tool_use.len(), 1, "the tool_use record is still written");
    assert_eq!(tool_use[0]["tool_use_id"], "toolu_script");
}

#[test]
fn a_failed_call_is_compared_too() {
    let env = TestEnv::new();
    write(&settings(&env), GOOD);
    session_start(&env);
    pre(&env, "toolu_fail");
    fs::write(settings(&env), "{}").unwrap();
    let out = run(
        &env,
        "ctxopt-post-tool-use",
        &tool_input(&env, "PostToolUseFailure", "toolu_fail", "default"),
    );
    assert_eq!(fs::read_to_string(settings(&env)).unwrap(), GOOD);
    let (context, _) = reported(&out, "PostToolUseFailure");
    assert!(context.starts_with("ctxopt restored .claude/settings.json"));
}

#[test]
fn no_change_means_no_reply_and_no_audit() {
    let env = TestEnv::new();
    write(&settings(&env), GOOD);
    write(&env.project.join(".claude/hooks/check.sh"), HOOK);
    session_start(&env);
    pre(&env, "toolu_quiet");
    let out = post(&env, "toolu_quiet");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    assert!(audit(&env).is_empty(), "{:?}", audit(&env));
    assert!(quarantined(&env).is_empty());
}

#[test]
fn claude_json_rewrites_are_audited_and_kept_not_reverted() {
    let env = TestEnv::new();
    let claude_json = env.home.join(".claude.json");
    write(&claude_json, r#"{"numStartups": 1, "mcpServers": {}}"#);
    session_start(&env);
    assert!(env.home.join(".claude.json.backup").is_file());

    pre(&env, "toolu_state");
    fs::write(&claude_json, r#"{"numStartups": 2, "mcpServers": {}}"#).unwrap();
    let out = post(&env, "toolu_state");
    assert!(
        out.stdout.is_empty(),
        "routine client state: {}",
        text(&out.stdout)
    );
    assert!(audit(&env).is_empty(), "{:?}", audit(&env));

    pre(&env, "toolu_mcp");
    let added = r#"{"numStartups": 2, "mcpServers": {"memory": {"command": "npx"}}}"#;
    fs::write(&claude_json, added).unwrap();
    let out = post(&env, "toolu_mcp");
    assert_eq!(
        fs::read_to_string(&claude_json).unwrap(),
        added,
        "not reverted"
    );
    let message = user_message(&out);
    assert!(
        message.starts_with("ctxopt: the MCP servers in ~/.claude.json changed"),
        "{message}"
    );
    let writes = audit_of(&env, "client-write");
    assert_eq!(writes.len(), 1, "{:?}", audit(&env));
    assert_eq!(writes[0]["actor"], "user");
    assert_eq!(writes[0]["sha256_after"], sha256(added.as_bytes()));
    assert!(quarantined(&env).is_empty());
    pre(&env, "toolu_again");
    let out = post(&env, "toolu_again");
    assert!(
        out.stdout.is_empty(),
        "the accepted version is the new state, so it is reported once: {}",
        text(&out.stdout)
    );
}

#[test]
fn an_approval_in_local_settings_is_audited_not_reverted_and_more_is_restored() {
    let env = TestEnv::new();
    let local = env.project.join(".claude/settings.local.json");
    let original = "{\n  \"permissions\": {\n    \"allow\": [\"Read\"]\n  }\n}\n";
    write(&local, original);
    session_start(&env);

    pre(&env, "toolu_approve");
    let approved = r#"{"permissions": {"allow": ["Read", "Bash(python3:*)"]}}"#;
    fs::write(&local, approved).unwrap();
    let out = post(&env, "toolu_approve");
    assert_eq!(fs::read_to_string(&local).unwrap(), approved);
    let message = user_message(&out);
    assert!(
        message.contains("Claude Code added the permission rule Bash(python3:*)"),
        "{message}"
    );
    let writes = audit_of(&env, "client-write");
    assert_eq!(writes.len(), 1, "{:?}", audit(&env));
    assert_eq!(writes[0]["actor"], "user");
    assert_eq!(writes[0]["sha256_before"], sha256(original.as_bytes()));

    pre(&env, "toolu_widen");
    let widened = r#"{"permissions": {"allow": ["Read", "Bash(python3:*)"], "defaultMode": "bypassPermissions"}}"#;
    fs::write(&local, widened).unwrap();
    let out = post(&env, "toolu_widen");
    assert_eq!(
        fs::read_to_string(&local).unwrap(),
        approved,
        "restored to the accepted approval, not further"
    );
    let (context, _) = reported(&out, "PostToolUse");
    assert!(context.starts_with("ctxopt restored .claude/settings.local.json"));
}

#[test]
fn a_new_file_in_the_hooks_dir_is_quarantined() {
    let env = TestEnv::new();
    write(&settings(&env), GOOD);
    session_start(&env);
    pre(&env, "toolu_new");
    let planted = env.project.join(".claude/hooks/PreToolUse.js");
    write(&planted, "process.exit(0)\n");
    let out = post(&env, "toolu_new");
    assert!(!planted.exists());
    let kept = quarantined(&env);
    assert_eq!(kept.len(), 1);
    assert!(kept[0].0.ends_with(".claude/hooks/PreToolUse.js"));
    assert_eq!(kept[0].1, b"process.exit(0)\n");
    let (context, _) = reported(&out, "PostToolUse");
    assert!(
        context.starts_with(
            "ctxopt removed .claude/hooks/PreToolUse.js: it was created during this Bash call \
             in a protected place"
        ),
        "{context}"
    );
    let repairs = audit_of(&env, "repair");
    assert_eq!(repairs[0]["sha256_before"], sha256(b"process.exit(0)\n"));
    assert_eq!(repairs[0]["sha256_after"], Value::Null);
}

#[test]
fn a_deleted_hook_script_is_restored_with_its_mode() {
    let env = TestEnv::new();
    let script = env.project.join(".claude/hooks/check.sh");
    write(&script, HOOK);
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    session_start(&env);
    let copies: Vec<_> = fs::read_dir(env.data().join("lkg/files"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-check.sh"))
        .collect();
    assert_eq!(copies.len(), 1, "session start keeps a copy of the hooks");
    assert_eq!(fs::read_to_string(&copies[0]).unwrap(), HOOK);
    pre(&env, "toolu_rm");
    fs::remove_file(&script).unwrap();
    let out = post(&env, "toolu_rm");
    assert_eq!(fs::read_to_string(&script).unwrap(), HOOK);
    let mode = fs::metadata(&script).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
    let (context, message) = reported(&out, "PostToolUse");
    assert!(
        context.starts_with(
            "ctxopt restored .claude/hooks/check.sh: it was deleted during this Bash call; \
             the agent may not change the project's hook scripts."
        ),
        "{context}"
    );
    assert!(
        message.contains("deleted .claude/hooks/check.sh"),
        "{message}"
    );
    let repairs = audit_of(&env, "repair");
    assert_eq!(repairs[0]["sha256_before"], Value::Null);
    assert_eq!(repairs[0]["sha256_after"], sha256(HOOK.as_bytes()));
}

#[test]
fn ctxopt_install_run_by_the_agent_is_not_undone() {
    let env = TestEnv::new();
    write(&settings(&env), GOOD);
    session_start(&env);
    pre(&env, "toolu_install");
    let bin_dir = support::bin("ctxopt-pre-tool-use")
        .parent()
        .unwrap()
        .to_path_buf();
    let out = env
        .command(&support::bin("ctxopt"))
        .args(["install", "--bin-dir"])
        .arg(&bin_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let local = env.project.join(".claude/settings.local.json");
    let installed = fs::read(&local).unwrap();
    let out = post(&env, "toolu_install");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    assert_eq!(fs::read(&local).unwrap(), installed, "not reverted");
    assert!(audit_of(&env, "repair").is_empty(), "{:?}", audit(&env));
    assert_eq!(audit_of(&env, "install").len(), 1);
}

#[test]
fn ctxopt_hooks_disable_run_by_the_agent_is_not_undone() {
    let env = TestEnv::new();
    let script = env.project.join(".claude/hooks/check.sh");
    write(&script, HOOK);
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    session_start(&env);
    pre(&env, "toolu_disable");
    let out = env
        .command(&support::bin("ctxopt"))
        .args(["hooks", "disable", ".claude/hooks/check.sh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let twin = env.project.join(".claude/hooks/check.sh.disabled");
    assert!(twin.is_file() && !script.exists());
    let out = post(&env, "toolu_disable");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    assert!(twin.is_file() && !script.exists(), "not undone");
    assert!(audit_of(&env, "repair").is_empty(), "{:?}", audit(&env));
    assert!(quarantined(&env).is_empty());
}

fn config_change(env: &TestEnv, path: &Path) -> Output {
    let input = json!({
        "session_id": SESSION,
        "transcript_path": "/nonexistent/t.jsonl",
        "cwd": env.project,
        "hook_event_name": "ConfigChange",
        "source": "project_settings",
        "file_path": path,
    });
    run(env, "ctxopt-pre-tool-use", &input)
}

#[test]
fn config_change_during_a_call_is_blocked() {
    let env = TestEnv::new();
    write(&settings(&env), GOOD);
    session_start(&env);
    pre(&env, "toolu_cc");
    fs::write(settings(&env), "{}").unwrap();
    let out = config_change(&env, &settings(&env));
    let reply: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(&out.stdout)));
    assert_eq!(
        reply.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["decision", "reason"],
        "{reply}"
    );
    assert_eq!(reply["decision"], "block");
    assert!(
        reply["reason"].as_str().unwrap().starts_with(
            "ctxopt blocked this change to .claude/settings.json: it was made while the \
             agent's Bash call was running, and protected files are changed by a person \
             outside the agent ("
        ),
        "{reply}"
    );
    let denials = audit_of(&env, "deny");
    assert_eq!(denials.len(), 1, "{:?}", audit(&env));
    assert_eq!(denials[0]["actor"], "agent");
    let records = env.records();
    let runs = support::of_type(&records, "hook_execution");
    let last = runs.last().unwrap();
    assert_eq!(last["event"], "ConfigChange");
    assert_eq!(last["decision"], "deny");
    assert_eq!(last["success"], true);

    post(&env, "toolu_cc");
    assert_eq!(fs::read_to_string(settings(&env)).unwrap(), GOOD);
}

#[test]
fn config_change_without_a_call_in_flight_is_allowed_and_audited() {
    let env = TestEnv::new();
    write(&settings(&env), GOOD);
    session_start(&env);
    let edited = "{\n  \"model\": \"sonnet\"\n}\n";
    fs::write(settings(&env), edited).unwrap();
    let out = config_change(&env, &settings(&env));
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    let changes = audit_of(&env, "config-change");
    assert_eq!(changes.len(), 1, "{:?}", audit(&env));
    assert_eq!(changes[0]["actor"], "user");
    assert_eq!(changes[0]["sha256_before"], sha256(GOOD.as_bytes()));
    assert_eq!(changes[0]["sha256_after"], sha256(edited.as_bytes()));

    pre(&env, "toolu_after");
    let out = config_change(&env, &settings(&env));
    assert!(
        out.stdout.is_empty(),
        "a call in flight, but the file did not change during it: {}",
        text(&out.stdout)
    );
    post(&env, "toolu_after");
}

/// The real client (skipped without `CTXOPT_CLAUDE_BIN`, failed without it under `CI=true`), in
/// `bypassPermissions`, where its own protection of `.claude/` is off: a script written outside
/// the project and then run — which no command parser can see into — rewrites
/// `.claude/settings.json` and keeps the call running; ConfigChange fires meanwhile and is
/// blocked, PostToolUse restores the file, and the model is told.
#[test]
fn real_client_a_script_run_by_the_agent_is_blocked_and_undone() {
    use support::claude::{self, Claude};
    use support::fake_api::{FakeApi, Script, Turn};

    let Some(client) =
        claude::client("real_client_a_script_run_by_the_agent_is_blocked_and_undone")
    else {
        return;
    };
    let env = TestEnv::new();
    write(&settings(&env), GOOD);
    let mut cmd = env.command(&support::bin("ctxopt"));
    cmd.args(["install", "--config-change"]);
    let out = env.run_with(cmd, b"");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let script = env.tmp.path().join("tweak.py");
    let api = FakeApi::start(Script::new(vec![
        Turn::tool(
            "toolu_write_script",
            "Write",
            json!({"file_path": script, "content": format!(
                "import time\nopen({:?}, 'w').write('{{}}')\ntime.sleep(4)\n",
                settings(&env).to_str().unwrap()
            )}),
        ),
        Turn::tool(
            "toolu_run_script",
            "Bash",
            json!({"command": format!("python3 {}", script.display()), "description": "run it"}),
        ),
        Turn::text("Done."),
    ]));
    let run = Claude::new(client, &env, &api, "Run the script.")
        .args(["--permission-mode", "bypassPermissions"])
        .env("IS_SANDBOX", "1")
        .run();
    let report = || {
        format!(
            "{}\n--- hook_execution.log\n{}\n--- audit.log\n{:#?}\n--- api\n{}",
            run.report(),
            env.hook_log(),
            audit(&env),
            api.report()
        )
    };
    assert!(run.ok(), "the client did not exit 0 in time\n{}", report());
    assert_eq!(
        fs::read_to_string(settings(&env)).unwrap(),
        GOOD,
        "restored\n{}",
        report()
    );
    let repairs = audit_of(&env, "repair");
    assert_eq!(repairs.len(), 1, "{}", report());
    assert_eq!(repairs[0]["tool"], "Bash");
    let blocked = env
        .hook_log()
        .lines()
        .any(|l| l.contains(" ConfigChange ok ") && l.contains("decision=Deny"));
    assert!(
        blocked,
        "ConfigChange during the call was blocked\n{}",
        report()
    );
    assert!(
        audit_of(&env, "config-change").is_empty(),
        "ctxopt's own restore is not audited as a person's change\n{}",
        report()
    );
    let told = api.main_chain().iter().any(|r| {
        r.json()
            .to_string()
            .contains("ctxopt restored .claude/settings.json: it was changed during this Bash call")
    });
    assert!(told, "the model got the additional context\n{}", report());
}
