//! The canary through the real binaries (issue 6): the CLI's plan, the in-process guard on an
//! edited `canary.json`, the guard's exception rule on an agent's Write, the automatic rollback
//! when many hooks notice at once, the webhook, and the real client in `bypassPermissions`.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed step is a test failure"
)]

mod support;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::{TestEnv, bin, of_type};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ctxopt(env: &TestEnv, args: &[&str]) -> Output {
    let mut cmd = env.command(&bin("ctxopt"));
    cmd.args(args).arg("--project").arg(&env.project);
    env.run_with(cmd, b"")
}

/// A session id in the canary at 10% (bucket < 10) or outside it.
fn session(canary: bool) -> String {
    (0..10_000)
        .map(|i| format!("0c0ffee0-0000-4000-8000-{i:012}"))
        .find(|s| (ctxopt::canary::bucket(s) < 10) == canary)
        .unwrap()
}

fn post_input(env: &TestEnv, session: &str, id: &str) -> Vec<u8> {
    json!({
        "session_id": session,
        "transcript_path": "/nonexistent/t.jsonl",
        "cwd": env.project,
        "permission_mode": "default",
        "hook_event_name": "PostToolUse",
        "tool_name": "Read",
        "tool_input": {"file_path": "/etc/hostname"},
        "tool_response": {},
        "tool_use_id": id,
    })
    .to_string()
    .into_bytes()
}

fn pre_write(env: &TestEnv, content: &str) -> Value {
    let input = json!({
        "session_id": session(false),
        "transcript_path": "/nonexistent/t.jsonl",
        "cwd": env.project,
        "permission_mode": "bypassPermissions",
        "hook_event_name": "PreToolUse",
        "tool_name": "Write",
        "tool_input": {"file_path": env.project.join(".claude/canary.json"), "content": content},
        "tool_use_id": "toolu_canary_write",
    });
    let out = env.run_hook("ctxopt-pre-tool-use", input.to_string().as_bytes());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    if out.stdout.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn denial(reply: &Value) -> Option<String> {
    (reply["hookSpecificOutput"]["permissionDecision"] == "deny").then(|| {
        reply["hookSpecificOutput"]["permissionDecisionReason"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    })
}

/// Appends three `Critical` error records, stamped now, to the project's metrics (the trigger
/// "3 or more Critical errors within 5 minutes").
fn append_criticals(env: &TestEnv) {
    let now = ctxopt::record::timestamp(ctxopt::record::now());
    let line = format!(
        "{{\"timestamp\":\"{now}\",\"type\":\"error\",\"severity\":\"Critical\",\"message\":\"boom\",\"stack\":\"\",\"session_id\":\"s\"}}\n"
    );
    fs::OpenOptions::new()
        .append(true)
        .open(env.data().join("metrics.jsonl"))
        .unwrap()
        .write_all(line.repeat(3).as_bytes())
        .unwrap();
}

#[test]
fn the_cli_follows_the_plan() {
    let env = TestEnv::new();
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    let out = ctxopt(&env, &["canary", "status"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text(&out.stdout).starts_with("no canary running"),
        "{}",
        text(&out.stdout)
    );
    let out = ctxopt(&env, &["canary", "promote"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = ctxopt(&env, &["canary", "start", "--duration-minutes", "30"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let file: Value =
        serde_json::from_slice(&fs::read(env.project.join(".claude/canary.json")).unwrap())
            .unwrap();
    assert_eq!(file["enabled"], true);
    assert_eq!(file["percentage"], 10);
    assert_eq!(file["duration_minutes"], 30);
    let out = ctxopt(&env, &["canary", "promote", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        reply["refused"].as_str().unwrap().contains("premature"),
        "{reply}"
    );
    let out = ctxopt(&env, &["canary", "status", "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["percentage"], 10);
    assert_eq!(status["verdict"], "inconclusive");
    assert_eq!(out.status.code(), Some(1), "inconclusive is not a pass");
    let out = ctxopt(&env, &["canary", "abort"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let audit = support::read_records(&env.data().join("audit.log"));
    let actions: Vec<&str> = audit.iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(
        actions.contains(&"canary-start") && actions.contains(&"canary-abort"),
        "{actions:?}"
    );
}

#[test]
fn an_agent_write_is_judged_by_the_plan_and_the_hooks_obey_only_the_plan() {
    let env = TestEnv::new();
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    let reason = denial(&pre_write(&env, r#"{"enabled": true, "percentage": 100}"#))
        .expect("a jump to 100 is refused");
    assert!(
        reason.contains("starts at 10%") && reason.contains("Allowed now: starting at 10%"),
        "{reason}"
    );
    assert_eq!(
        denial(&pre_write(&env, r#"{"enabled": true, "percentage": 10}"#)),
        None,
        "a start is allowed"
    );
    // A person edits the file past the plan: the hooks keep the accepted state and say why once.
    let canary_session = session(true);
    fs::write(
        env.project.join(".claude/canary.json"),
        r#"{"enabled": true, "percentage": 10}"#,
    )
    .unwrap();
    let out = env.run_hook(
        "ctxopt-post-tool-use",
        &post_input(&env, &canary_session, "toolu_1"),
    );
    assert!(
        text(&out.stdout).contains("started at 10%"),
        "{}",
        text(&out.stdout)
    );
    fs::write(
        env.project.join(".claude/canary.json"),
        r#"{"enabled": true, "percentage": 100}"#,
    )
    .unwrap();
    let out = env.run_hook(
        "ctxopt-post-tool-use",
        &post_input(&env, &canary_session, "toolu_2"),
    );
    assert!(
        text(&out.stdout).contains("is not obeyed"),
        "{}",
        text(&out.stdout)
    );
    let out = env.run_hook(
        "ctxopt-post-tool-use",
        &post_input(&env, &session(false), "toolu_3"),
    );
    assert!(out.stdout.is_empty(), "said once: {}", text(&out.stdout));
    let records = env.records();
    let cohorts: Vec<(&str, &str)> = of_type(&records, "tool_use")
        .iter()
        .map(|r| {
            (
                r["session_id"].as_str().unwrap(),
                r["cohort"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cohorts,
        [
            (canary_session.as_str(), "canary"),
            (canary_session.as_str(), "canary"),
            (session(false).as_str(), "stable"),
        ]
    );
    assert_eq!(of_type(&records, "alert").len(), 1);
}

/// Three Critical errors within 5 minutes, seen by 16 hook processes at once: one rollback,
/// one log line, one `canary_rollback` record; the webhook is told.
#[test]
fn sixteen_hooks_noticing_at_once_roll_back_once_and_the_webhook_hears_it() {
    let env = TestEnv::new();
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    let out = ctxopt(&env, &["canary", "start"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // A first run sets the rollup at the end of the metrics file.
    let out = env.run_hook(
        "ctxopt-post-tool-use",
        &post_input(&env, &session(true), "t0"),
    );
    assert_eq!(out.status.code(), Some(0));
    append_criticals(&env);

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let children: Vec<_> = (0..16)
        .map(|i| {
            let mut cmd = env.command(&bin("ctxopt-post-tool-use"));
            cmd.env("SLACK_WEBHOOK_URL", &url)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(&post_input(&env, &session(i % 2 == 0), &format!("t{i}")))
                .unwrap();
            child
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for out in &outputs {
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    let told = outputs
        .iter()
        .filter(|o| text(&o.stdout).contains("rolled back automatically"))
        .count();
    assert_eq!(told, 1, "one run announces it");
    let log = fs::read_to_string(env.project.join(".deploy/rollback.log")).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(
        log.contains("trigger=automatic (critical_errors value=3"),
        "{log}"
    );
    let records = env.records();
    assert_eq!(of_type(&records, "canary_rollback").len(), 1);
    let file: Value =
        serde_json::from_slice(&fs::read(env.project.join(".claude/canary.json")).unwrap())
            .unwrap();
    assert_eq!(file["enabled"], false);

    listener.set_nonblocking(false).unwrap();
    let (stream, _) = {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(listener.accept());
        });
        rx.recv_timeout(Duration::from_secs(20))
            .expect("the webhook was called")
            .unwrap()
    };
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        head.push_str(&line);
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    reader
        .get_mut()
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        .unwrap();
    assert!(head.starts_with("POST /hook"), "{head}");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("rolled back automatically"),
        "{body}"
    );
}

#[test]
fn an_unreachable_webhook_costs_the_hook_nothing() {
    let env = TestEnv::new();
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    assert_eq!(ctxopt(&env, &["canary", "start"]).status.code(), Some(0));
    let _ = env.run_hook(
        "ctxopt-post-tool-use",
        &post_input(&env, &session(true), "t0"),
    );
    append_criticals(&env);
    let mut cmd = env.command(&bin("ctxopt-post-tool-use"));
    // A port nothing listens on: the notification fails in its own detached process.
    cmd.env("SLACK_WEBHOOK_URL", "http://127.0.0.1:9/unreachable");
    let out = env.run_with(cmd, &post_input(&env, &session(true), "t1"));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("rolled back automatically"));
}

/// The real client in `bypassPermissions`, where its own protection of `.claude/` is off: a
/// scripted Write jumping 10 → 100 is refused with ctxopt's reason; an abort Write goes
/// through. Fails without ctxopt (the jump would be written).
#[test]
fn real_client_a_jump_is_refused_and_an_abort_goes_through() {
    use support::claude::{self, Claude};
    use support::fake_api::{FakeApi, Script, Turn};

    let Some(client) = claude::client("real_client_a_jump_is_refused_and_an_abort_goes_through")
    else {
        return;
    };
    let env = TestEnv::new();
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    assert_eq!(ctxopt(&env, &["install"]).status.code(), Some(0));
    assert_eq!(ctxopt(&env, &["canary", "start"]).status.code(), Some(0));
    let canary = env.project.join(".claude/canary.json");
    let api = FakeApi::start(Script::new(vec![
        Turn::tool(
            "toolu_jump",
            "Write",
            json!({"file_path": canary, "content": "{\"enabled\": true, \"percentage\": 100}\n"}),
        ),
        Turn::tool(
            "toolu_abort",
            "Write",
            json!({"file_path": canary, "content": "{\"enabled\": false, \"percentage\": 0}\n"}),
        ),
        Turn::text("Done."),
    ]));
    let run = Claude::new(client, &env, &api, "Roll the canary out.")
        .args(["--permission-mode", "bypassPermissions"])
        .env("IS_SANDBOX", "1")
        .run();
    let report = || {
        format!(
            "{}\n--- api\n{}\n--- log\n{}",
            run.report(),
            api.report(),
            env.hook_log()
        )
    };
    assert!(run.ok(), "{}", report());
    let second = api
        .main_chain()
        .into_iter()
        .map(|r| r.json())
        .find(|b| support::fake_api::assistant_messages(b) == 1)
        .unwrap_or_else(|| panic!("no request after the jump\n{}", report()));
    let jump = second.to_string();
    assert!(
        jump.contains("toolu_jump") && jump.contains("skips a stage"),
        "the jump was refused with ctxopt's reason\n{}",
        report()
    );
    let file: Value = serde_json::from_slice(&fs::read(&canary).unwrap()).unwrap();
    assert_eq!(
        file["enabled"],
        false,
        "the abort went through\n{}",
        report()
    );
    let state: Value =
        serde_json::from_slice(&fs::read(env.data().join("canary-state.json")).unwrap()).unwrap();
    assert_eq!(state["ended"], "aborted", "{}", report());
    assert!(!Path::new(&env.project.join(".deploy/history.log")).exists());
}

/// The automatic rollback restores the deploy snapshot (settings, skills, hooks) and logs one
/// line for it.
#[test]
fn the_automatic_rollback_restores_the_deploy_snapshot() {
    let env = TestEnv::new();
    let settings = env.project.join(".claude/settings.json");
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    fs::write(&settings, "{\"model\": \"opus\"}\n").unwrap();
    assert_eq!(ctxopt(&env, &["deploy", "start"]).status.code(), Some(0));
    let backups: Vec<_> = fs::read_dir(env.project.join(".kiro/specs/context-optimization/backup"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        backups
            .iter()
            .any(|n| n.starts_with("backup-") && n.ends_with(".tar.gz")),
        "deploy start makes a backup first (runbook Phase 0): {backups:?}"
    );
    fs::write(&settings, "{\"model\": \"new-optimisation\"}\n").unwrap();
    assert_eq!(ctxopt(&env, &["canary", "start"]).status.code(), Some(0));
    let _ = env.run_hook(
        "ctxopt-post-tool-use",
        &post_input(&env, &session(true), "t0"),
    );
    append_criticals(&env);
    let out = env.run_hook(
        "ctxopt-post-tool-use",
        &post_input(&env, &session(true), "t1"),
    );
    assert!(
        text(&out.stdout).contains("files restored from the deploy snapshot"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        fs::read_to_string(&settings).unwrap(),
        "{\"model\": \"opus\"}\n"
    );
    let log = fs::read_to_string(env.project.join(".deploy/rollback.log")).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains("automatic (critical_errors value=3"), "{log}");
    // The guard does not undo the rollback at the next call.
    let out = env.run_hook(
        "ctxopt-post-tool-use",
        &post_input(&env, &session(true), "t2"),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        fs::read_to_string(&settings).unwrap(),
        "{\"model\": \"opus\"}\n"
    );
}
