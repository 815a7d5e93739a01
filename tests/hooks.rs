//! Black-box tests of the three hook binaries: real fixtures in, exit code, stdout, stderr and
//! the files written out — each run in its own temporary HOME and project.

mod support;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::process::Output;

use serde_json::Value;
use support::{TestEnv, fixture, of_type};

const HOOKS: [&str; 3] = [
    "ctxopt-session-start",
    "ctxopt-pre-tool-use",
    "ctxopt-post-tool-use",
];

fn assert_quiet_success(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The one stderr line of a faulting run.
fn stderr_line(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        text.lines().count(),
        1,
        "expected one stderr line, got {text:?}"
    );
    text
}

fn execution(records: &[Value]) -> &Value {
    let execs = of_type(records, "hook_execution");
    assert_eq!(execs.len(), 1, "{records:#?}");
    execs[0]
}

#[test]
fn session_start_records_the_session() {
    let env = TestEnv::new();
    let out = env.run_hook(
        "ctxopt-session-start",
        &fixture("hooks/SessionStart/startup.json"),
    );
    assert_quiet_success(&out);
    let records = env.records();
    let start = of_type(&records, "session_start");
    assert_eq!(start.len(), 1);
    assert_eq!(start[0]["source"], "startup");
    assert_eq!(
        start[0]["session_id"],
        "75260e37-9241-4982-9cf1-8224ccb4f99b"
    );
    assert_eq!(start[0]["hook"], "ctxopt-session-start");
    assert_eq!(start[0]["cohort"], "stable");
    assert_eq!(execution(&records)["success"], true);
    assert_eq!(of_type(&records, "hook_latency").len(), 1);
}

#[test]
fn pre_tool_use_records_its_run_and_decides_nothing() {
    let env = TestEnv::new();
    for case in ["bash", "write"] {
        let out = env.run_hook(
            "ctxopt-pre-tool-use",
            &fixture(&format!("hooks/PreToolUse/{case}.json")),
        );
        assert_quiet_success(&out);
    }
    let records = env.records();
    assert_eq!(records.len(), 4, "{records:#?}");
    for exec in of_type(&records, "hook_execution") {
        assert_eq!(exec["success"], true);
        assert_eq!(exec["event"], "PreToolUse");
        assert!(exec.get("decision").is_none());
    }
    for latency in of_type(&records, "hook_latency") {
        assert!(latency["duration_ms"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn post_tool_use_records_the_tool_call() {
    let env = TestEnv::new();
    let out = env.run_hook(
        "ctxopt-post-tool-use",
        &fixture("hooks/PostToolUse/bash.json"),
    );
    assert_quiet_success(&out);
    let records = env.records();
    let tool = of_type(&records, "tool_use");
    assert_eq!(tool.len(), 1);
    assert_eq!(tool[0]["tool_name"], "Bash");
    assert_eq!(tool[0]["tool_use_id"], "toolu_0001");
    assert_eq!(tool[0]["success"], true);
    assert_eq!(tool[0]["duration_ms"], 39.0);
    assert_eq!(tool[0]["command"], "echo hello");
    assert!(tool[0].get("tool_response").is_none());
}

#[test]
fn post_tool_use_failure_records_an_unsuccessful_tool_use() {
    let env = TestEnv::new();
    for case in ["bash-exit-3", "read-missing-file"] {
        let out = env.run_hook(
            "ctxopt-post-tool-use",
            &fixture(&format!("hooks/PostToolUseFailure/{case}.json")),
        );
        assert_quiet_success(&out);
    }
    let records = env.records();
    let tools = of_type(&records, "tool_use");
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[0]["tool_use_id"], "toolu_0001");
    assert_eq!(tools[0]["success"], false);
    assert_eq!(tools[0]["error"], "Exit code 3");
    assert_eq!(tools[1]["tool_name"], "Read");
    assert_eq!(tools[1]["path"], "/nonexistent/file.txt");
    assert_eq!(tools[1]["success"], false);
    for exec in of_type(&records, "hook_execution") {
        assert_eq!(exec["event"], "PostToolUseFailure");
        assert_eq!(exec["success"], true, "the tool failed, not the hook");
    }
}

#[test]
fn secrets_never_reach_the_metrics_file() {
    let env = TestEnv::new();
    let out = env.run_hook(
        "ctxopt-post-tool-use",
        &fixture("hooks/PostToolUse/bash-with-secret.json"),
    );
    assert_quiet_success(&out);
    let text = fs::read_to_string(env.data().join("metrics.jsonl")).unwrap();
    assert!(!text.contains("sk-ant"), "{text}");
    assert!(text.contains("[REDACTED]"), "{text}");
}

#[test]
fn other_events_are_tolerated() {
    let env = TestEnv::new();
    for case in [
        "Stop/stop.json",
        "SessionEnd/end.json",
        "UserPromptSubmit/prompt.json",
    ] {
        let out = env.run_hook("ctxopt-post-tool-use", &fixture(&format!("hooks/{case}")));
        assert_quiet_success(&out);
    }
    let records = env.records();
    let events: Vec<_> = of_type(&records, "hook_execution")
        .iter()
        .map(|r| {
            (
                r["event"].as_str().unwrap().to_owned(),
                r["success"].clone(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("Stop".to_owned(), Value::Bool(true)),
            ("SessionEnd".to_owned(), Value::Bool(true)),
            ("UserPromptSubmit".to_owned(), Value::Bool(true)),
        ]
    );
}

#[test]
fn data_files_are_private() {
    let env = TestEnv::new();
    env.run_hook(
        "ctxopt-pre-tool-use",
        &fixture("hooks/PreToolUse/bash.json"),
    );
    let mode = |p| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(env.data()), 0o700);
    assert_eq!(mode(env.data().join("metrics.jsonl")), 0o600);
    assert_eq!(mode(env.data().join("hook_execution.log")), 0o600);
}

#[test]
fn hook_log_gets_one_readable_line_per_run() {
    let env = TestEnv::new();
    env.run_hook(
        "ctxopt-pre-tool-use",
        &fixture("hooks/PreToolUse/bash.json"),
    );
    env.run_hook("ctxopt-pre-tool-use", b"not json");
    let log = env.hook_log();
    let lines: Vec<_> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(
        lines[0].contains(" ctxopt-pre-tool-use PreToolUse ok "),
        "{log}"
    );
    assert!(lines[0].contains("session=75260e37"), "{log}");
    assert!(lines[1].contains(" FAIL "), "{log}");
    assert!(lines[1].contains("not valid JSON"), "{log}");
}

/// Each bad input: exit 0, no stdout, one stderr line naming the problem, an `error` record and
/// a failed `hook_execution`, for every hook binary.
#[test]
fn bad_stdin_is_recorded_and_never_breaks_the_session() {
    let oversize = vec![b'x'; 10 * 1024 * 1024];
    let cases: [(&str, &[u8], &str, &str); 5] = [
        ("empty", b"", "hook input is empty", "High"),
        (
            "invalid json",
            b"{\"session_id\": ",
            "not valid JSON",
            "High",
        ),
        (
            "wrong shape",
            br#"{"hook_event_name":"PreToolUse","tool_input":{}}"#,
            "lacks or mistypes `tool_name`",
            "High",
        ),
        (
            "invalid utf-8",
            b"{\"hook_event_name\":\"PreToolUse\",\"session_id\":\"\xff\xfe\"}",
            "not valid JSON",
            "High",
        ),
        ("10 MB", &oversize, "larger than the 4 MiB cap", "Medium"),
    ];
    for hook in HOOKS {
        for (name, input, message, severity) in cases {
            let env = TestEnv::new();
            let out = env.run_hook(hook, input);
            assert_eq!(out.status.code(), Some(0), "{hook} {name}: {out:?}");
            assert!(out.stdout.is_empty(), "{hook} {name}");
            let line = stderr_line(&out);
            assert!(line.starts_with(&format!("{hook}: ")), "{line}");
            assert!(line.contains(message), "{hook} {name}: {line}");
            assert!(line.contains("the session continues"), "{line}");
            let records = env.records();
            let errors = of_type(&records, "error");
            assert_eq!(errors.len(), 1, "{hook} {name}: {records:#?}");
            assert_eq!(errors[0]["severity"], severity, "{hook} {name}");
            assert!(errors[0]["message"].as_str().unwrap().contains(message));
            let exec = execution(&records);
            assert_eq!(exec["success"], false);
            assert!(exec["error"].as_str().unwrap().contains(message));
        }
    }
}

#[test]
fn wrong_type_field_is_a_recorded_fault() {
    let env = TestEnv::new();
    let out = env.run_hook(
        "ctxopt-pre-tool-use",
        br#"{"hook_event_name":"PreToolUse","session_id":42,"tool_name":"Bash","tool_input":{}}"#,
    );
    assert!(stderr_line(&out).contains("wrong type"));
    assert_eq!(execution(&env.records())["success"], false);
}

#[test]
fn file_in_place_of_the_data_dir() {
    let env = TestEnv::new();
    fs::create_dir_all(env.project.join(".claude/hooks")).unwrap();
    fs::write(env.data(), "not a dir").unwrap();
    for hook in HOOKS {
        let out = env.run_hook(hook, &fixture("hooks/PreToolUse/bash.json"));
        assert_eq!(out.status.code(), Some(0));
        assert!(out.stdout.is_empty());
        let line = stderr_line(&out);
        assert!(line.contains("could not record this run"), "{line}");
        assert!(line.contains("failed to create directory"), "{line}");
    }
    assert_eq!(fs::read_to_string(env.data()).unwrap(), "not a dir");
}

#[test]
fn full_disk_is_reported_and_logged() {
    let env = TestEnv::new();
    fs::create_dir_all(env.data()).unwrap();
    symlink("/dev/full", env.data().join("metrics.jsonl")).unwrap();
    let out = env.run_hook(
        "ctxopt-post-tool-use",
        &fixture("hooks/PostToolUse/bash.json"),
    );
    assert_eq!(out.status.code(), Some(0));
    let line = stderr_line(&out);
    assert!(line.contains("No space left on device"), "{line}");
    let log = env.hook_log();
    assert!(log.contains("metrics-not-recorded="), "{log}");
    assert!(log.contains("No space left on device"), "{log}");
}

/// Root ignores permission bits, so the unwritable data dir is tested as an unprivileged uid.
#[test]
fn unwritable_data_dir_as_an_unprivileged_user() {
    let setpriv = std::path::Path::new("/usr/bin/setpriv");
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" || !setpriv.exists() {
        eprintln!("skipped: needs root and setpriv to drop to an unprivileged uid");
        return;
    }
    let env = TestEnv::new();
    fs::set_permissions(env.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&env.project, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(env.data()).unwrap();
    fs::set_permissions(env.data(), fs::Permissions::from_mode(0o700)).unwrap();
    for hook in HOOKS {
        let mut cmd = env.command(setpriv);
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(support::bin(hook));
        let out = env.run_with(cmd, &fixture("hooks/PreToolUse/bash.json"));
        assert_eq!(out.status.code(), Some(0), "{hook}: {out:?}");
        assert!(out.stdout.is_empty());
        let line = stderr_line(&out);
        assert!(line.contains("Permission denied"), "{hook}: {line}");
    }
    assert!(!env.data().join("metrics.jsonl").exists());
}

#[test]
fn a_panic_is_recorded_as_critical_and_the_session_continues() {
    let env = TestEnv::new();
    let mut cmd = env.command(&support::bin("ctxopt-post-tool-use"));
    cmd.env("CTXOPT_FAULT_INJECT", "panic");
    let out = env.run_with(cmd, &fixture("hooks/PostToolUse/bash.json"));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.is_empty());
    let line = stderr_line(&out);
    assert!(line.contains("ctxopt-post-tool-use panicked"), "{line}");
    let records = env.records();
    let errors = of_type(&records, "error");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["severity"], "Critical");
    assert!(
        errors[0]["stack"]
            .as_str()
            .unwrap()
            .starts_with("panic at ")
    );
    assert_eq!(execution(&records)["success"], false);
    assert_eq!(of_type(&records, "hook_latency").len(), 1);
}

#[test]
fn session_id_falls_back_to_the_environment() {
    let env = TestEnv::new();
    let mut cmd = env.command(&support::bin("ctxopt-pre-tool-use"));
    cmd.env("CLAUDE_CODE_SESSION_ID", "from-env");
    env.run_with(cmd, b"garbage");
    assert_eq!(execution(&env.records())["session_id"], "from-env");
}

#[test]
fn project_falls_back_to_the_input_cwd() {
    let env = TestEnv::new();
    let mut input: Value = serde_json::from_slice(&fixture("hooks/PreToolUse/bash.json")).unwrap();
    input["cwd"] = Value::String(env.project.to_string_lossy().into_owned());
    let mut cmd = env.command(&support::bin("ctxopt-pre-tool-use"));
    cmd.env_remove("CLAUDE_PROJECT_DIR").current_dir(&env.home);
    let out = env.run_with(cmd, input.to_string().as_bytes());
    assert_quiet_success(&out);
    assert_eq!(env.records().len(), 2);
}
