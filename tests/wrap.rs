//! `ctxopt-run`, black-box: the wrapped hook's stdin, stdout, stderr and exit code relayed
//! byte for byte; timeouts that kill the whole process group; retries; `*.disabled`; the
//! circuit breaker; the records the runbook's P1-001 queries read; `ctxopt install
//! --wrap-existing` and its uninstall; `ctxopt hooks list|disable|enable`. Each test runs in
//! its own temporary HOME and project, hooks as `sh -c COMMAND` the way Claude Code runs them.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking, like the #[test] functions they serve"
)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{TestEnv, bin, of_type};

/// The runner binary under test.
fn run_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ctxopt-run"))
}

/// The directory with the test build's binaries (what `--bin-dir` names).
fn bin_dir() -> PathBuf {
    run_bin().parent().unwrap().to_path_buf()
}

/// A PreToolUse input like Claude Code's, with the test's project as `cwd`.
fn input(env: &TestEnv) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "session_id": "sess-1",
        "transcript_path": "/nonexistent/t.jsonl",
        "cwd": env.project,
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "ls"},
        "tool_use_id": "toolu_1"
    }))
    .unwrap()
}

/// Writes an executable script under the project.
fn script(env: &TestEnv, rel: &str, body: &str) -> PathBuf {
    let path = env.project.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Runs `ctxopt-run ARGS` directly with `stdin`.
fn run(env: &TestEnv, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = env.command(&run_bin());
    cmd.args(args);
    env.run_with(cmd, stdin)
}

/// Runs a handler's command string the way Claude Code does: `sh -c COMMAND` in the project.
fn as_claude(env: &TestEnv, command: &str, stdin: &[u8]) -> Output {
    let mut cmd = env.command(Path::new("/bin/sh"));
    cmd.arg("-c").arg(command);
    env.run_with(cmd, stdin)
}

fn ctxopt(env: &TestEnv, args: &[&str]) -> Output {
    let mut cmd = env.command(&bin("ctxopt"));
    cmd.args(args).arg("--project").arg(&env.project);
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn write_policy(env: &TestEnv, hooks: &Value) {
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    fs::write(
        env.project.join(".claude/ctxopt.json"),
        json!({ "hooks": hooks }).to_string(),
    )
    .unwrap();
}

/// The lines a script appended to a counter file: how many times it ran.
fn runs(path: &Path) -> usize {
    fs::read_to_string(path).unwrap_or_default().lines().count()
}

/// Whether a process is still there (a zombie awaiting its reaper counts as gone).
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn a_hook_past_its_timeout_is_killed_with_its_children() {
    let env = TestEnv::new();
    script(
        &env,
        ".claude/hooks/slow.sh",
        "echo $$ > \"$CLAUDE_PROJECT_DIR/leader.pid\"\n\
         sleep 30 &\n\
         echo $! > \"$CLAUDE_PROJECT_DIR/child.pid\"\n\
         echo partial\n\
         sleep 30\n",
    );
    let started = Instant::now();
    let out = run(
        &env,
        &["--timeout", "1", "--", ".claude/hooks/slow.sh"],
        &input(&env),
    );
    let elapsed = started.elapsed();
    assert_code(&out, 1);
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert!(
        out.stdout.is_empty(),
        "a timed-out hook's output is dropped"
    );
    assert_eq!(
        text(&out.stderr),
        "ctxopt-run: .claude/hooks/slow.sh timed out after 1 s; killed it and its process \
         group; the action goes ahead\n"
    );
    let pids: Vec<u32> = ["leader.pid", "child.pid"]
        .iter()
        .map(|f| {
            fs::read_to_string(env.project.join(f))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in pids {
        assert!(
            !alive(pid),
            "process {pid} of the hook's group outlived the timeout"
        );
    }

    let records = env.records();
    let runs = of_type(&records, "hook_execution");
    assert_eq!(runs.len(), 1, "a timeout is not retried: {records:?}");
    assert_eq!(runs[0]["success"], false);
    assert_eq!(runs[0]["error"], "timeout after 1 s");
    assert_eq!(runs[0]["hook"], ".claude/hooks/slow.sh");
    let latency = of_type(&records, "hook_latency")[0]["duration_ms"]
        .as_f64()
        .unwrap();
    assert!((900.0..5000.0).contains(&latency), "{latency}");
}

#[test]
fn exit_2_is_relayed_and_never_retried() {
    let env = TestEnv::new();
    script(
        &env,
        ".claude/hooks/block.sh",
        "echo run >> \"$CLAUDE_PROJECT_DIR/count\"\n\
         echo 'no rm -rf here' >&2\n\
         exit 2\n",
    );
    write_policy(&env, &json!({"retries": 3, "backoff_ms": 1}));
    let out = as_claude(
        &env,
        &format!("{} -- .claude/hooks/block.sh", run_bin().display()),
        &input(&env),
    );
    assert_code(&out, 2);
    assert_eq!(out.stderr, b"no rm -rf here\n");
    assert!(out.stdout.is_empty());
    assert_eq!(runs(&env.project.join("count")), 1);
    let records = env.records();
    let runs = of_type(&records, "hook_execution");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["success"], true, "a deliberate block is a success");
    assert_eq!(runs[0]["decision"], "deny");
    assert_eq!(runs[0]["event"], "PreToolUse");
    assert_eq!(runs[0]["session_id"], "sess-1");
}

#[test]
fn a_flaky_hook_succeeds_on_retry_with_both_attempts_recorded() {
    let env = TestEnv::new();
    script(
        &env,
        ".claude/hooks/flaky.sh",
        "cat > /dev/null\n\
         echo run >> count\n\
         if [ \"$(wc -l < count)\" -lt 2 ]; then echo 'first try out' ; echo 'db locked' >&2; exit 1; fi\n\
         printf '{\"systemMessage\":\"second\"}'\n",
    );
    write_policy(&env, &json!({"retries": 1, "backoff_ms": 10}));
    let out = run(&env, &["--", ".claude/hooks/flaky.sh"], &input(&env));
    assert_code(&out, 0);
    assert_eq!(
        out.stdout, b"{\"systemMessage\":\"second\"}",
        "only the last attempt's output"
    );
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    assert_eq!(runs(&env.project.join("count")), 2);

    let records = env.records();
    let runs = of_type(&records, "hook_execution");
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (&runs[0]["attempt"], &runs[0]["success"], &runs[0]["error"]),
        (&json!(1), &json!(false), &json!("exit code 1: db locked"))
    );
    assert_eq!(
        (&runs[1]["attempt"], &runs[1]["success"]),
        (&json!(2), &json!(true))
    );
    assert!(runs[1].get("error").is_none());
    assert_eq!(of_type(&records, "hook_latency").len(), 2);
    let log = env.hook_log();
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(
        log.contains(" FAIL ") && log.contains(" attempt=2"),
        "{log}"
    );
}

#[test]
fn a_renamed_hook_is_skipped_and_recorded_as_disabled() {
    let env = TestEnv::new();
    let path = script(
        &env,
        ".claude/hooks/PreToolUse.sh",
        "echo run >> \"$CLAUDE_PROJECT_DIR/count\"\n",
    );
    fs::rename(
        &path,
        env.project.join(".claude/hooks/PreToolUse.sh.disabled"),
    )
    .unwrap();
    for command in [
        format!("{} -- sh .claude/hooks/PreToolUse.sh", run_bin().display()),
        format!(
            "{} -- \"$CLAUDE_PROJECT_DIR\"/.claude/hooks/PreToolUse.sh",
            run_bin().display()
        ),
        format!(
            "{} --name .claude/hooks/PreToolUse.sh -- sh -c '.claude/hooks/PreToolUse.sh && true'",
            run_bin().display()
        ),
    ] {
        let out = as_claude(&env, &command, &input(&env));
        assert_code(&out, 0);
        assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    }
    assert_eq!(runs(&env.project.join("count")), 0);
    let records = env.records();
    let runs = of_type(&records, "hook_execution");
    assert_eq!(runs.len(), 3);
    for r in runs {
        assert_eq!(r["hook"], ".claude/hooks/PreToolUse.sh");
        assert_eq!(r["success"], true);
        assert_eq!(r["disabled"], true);
    }
    assert!(of_type(&records, "hook_latency").is_empty());
    assert!(env.hook_log().contains("disabled=\"renamed to "));
}

#[test]
fn relay_is_binary_safe() {
    let env = TestEnv::new();
    let stdin: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let out = run(&env, &["--", "cat"], &stdin);
    assert_code(&out, 0);
    assert_eq!(out.stdout, stdin, "stdin passed and stdout relayed exactly");

    let out = run(
        &env,
        &[
            "--",
            "sh",
            "-c",
            "printf 'a\\000b\\377\\376{' ; printf '\\000\\200err' >&2; exit 4",
        ],
        b"",
    );
    assert_code(&out, 4);
    assert_eq!(out.stdout, b"a\0b\xff\xfe{");
    assert_eq!(out.stderr, b"\0\x80err");
    let records = env.records();
    for line in fs::read_to_string(env.data().join("metrics.jsonl"))
        .unwrap()
        .lines()
    {
        serde_json::from_str::<Value>(line).unwrap();
    }
    assert_eq!(of_type(&records, "hook_execution").len(), 3);
}

#[test]
fn the_runbook_query_names_the_wrapped_hook() {
    let env = TestEnv::new();
    script(
        &env,
        ".claude/hooks/PreToolUse.sh",
        "cat >/dev/null; echo 'TypeError: x is undefined' >&2; exit 1\n",
    );
    script(&env, ".claude/hooks/PostToolUse.sh", "cat >/dev/null\n");
    write_policy(&env, &json!({"retries": 0, "breaker_failures": 0}));
    let runner = run_bin().display().to_string();
    for _ in 0..3 {
        as_claude(
            &env,
            &format!("{runner} -- \"$CLAUDE_PROJECT_DIR/.claude/hooks/PreToolUse.sh\""),
            &input(&env),
        );
        as_claude(
            &env,
            &format!("{runner} -- .claude/hooks/PostToolUse.sh"),
            &input(&env),
        );
    }
    let metrics = env.data().join("metrics.jsonl");
    let pipeline = |filter: &str| -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cat '{}' | jq -r '{filter}' | sort | uniq -c | sort -rn",
                metrics.display()
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    if Command::new("jq").arg("--version").output().is_ok() {
        assert_eq!(
            pipeline(r#"select(.type=="hook_execution" and .success==false) | .hook"#),
            "      3 .claude/hooks/PreToolUse.sh\n"
        );
        assert_eq!(
            pipeline(r#"select(.type=="hook_execution" and .success==false) | .error"#),
            "      3 exit code 1: TypeError: x is undefined\n"
        );
        let latency = pipeline(r#"select(.type=="hook_latency") | [.hook, .duration_ms] | @tsv"#);
        assert_eq!(latency.lines().count(), 6, "{latency}");
    } else if std::env::var_os("CI").is_some() {
        panic!("jq is missing; .ci/run installs it");
    }
    let records = env.records();
    let failed: Vec<&Value> = of_type(&records, "hook_execution")
        .into_iter()
        .filter(|r| r["success"] == false)
        .collect();
    assert_eq!(failed.len(), 3);
    assert!(
        failed
            .iter()
            .all(|r| r["hook"] == ".claude/hooks/PreToolUse.sh")
    );
}

#[test]
fn the_breaker_opens_after_n_failures_and_enable_resets_it() {
    let env = TestEnv::new();
    script(
        &env,
        ".claude/hooks/bad.sh",
        "echo run >> \"$CLAUDE_PROJECT_DIR/count\"; echo broken >&2; exit 1\n",
    );
    write_policy(&env, &json!({"retries": 0, "breaker_failures": 3}));
    let command = format!("{} -- .claude/hooks/bad.sh", run_bin().display());
    for _ in 0..2 {
        let out = as_claude(&env, &command, &input(&env));
        assert_code(&out, 1);
        assert_eq!(out.stderr, b"broken\n");
    }
    let out = as_claude(&env, &command, &input(&env));
    assert_code(&out, 1);
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = reply["systemMessage"].as_str().unwrap();
    assert_eq!(
        message,
        "ctxopt: the hook .claude/hooks/bad.sh failed 3 runs in a row and is now disabled \
         (circuit breaker); fix it, then run `ctxopt hooks enable .claude/hooks/bad.sh`"
    );
    let records = env.records();
    let alerts = of_type(&records, "alert");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["id"], "Alert-A-002");
    assert_eq!(alerts[0]["severity"], "P1");
    assert_eq!(alerts[0]["hook"], ".claude/hooks/bad.sh");
    assert_eq!(
        (&alerts[0]["value"], &alerts[0]["threshold"]),
        (&json!(3.0), &json!(3.0))
    );

    let out = as_claude(&env, &command, &input(&env));
    assert_code(&out, 0);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(runs(&env.project.join("count")), 3, "skipped while open");

    let settings = json!({"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [
        {"type": "command", "command": command}]}]}});
    fs::write(
        env.project.join(".claude/settings.local.json"),
        settings.to_string(),
    )
    .unwrap();
    let list: Value =
        serde_json::from_slice(&ctxopt(&env, &["hooks", "list", "--json"]).stdout).unwrap();
    assert_eq!(list["hooks"][0]["state"], "breaker-open");
    assert_eq!(list["hooks"][0]["disabled"], true);
    assert_eq!(list["hooks"][0]["consecutive_failures"], 3);

    let out = ctxopt(&env, &["hooks", "enable", ".claude/hooks/bad.sh"]);
    assert_code(&out, 0);
    assert!(
        text(&out.stdout).contains("reset the circuit breaker of .claude/hooks/bad.sh"),
        "{}",
        text(&out.stdout)
    );
    let out = as_claude(&env, &command, &input(&env));
    assert_code(&out, 1);
    assert_eq!(
        runs(&env.project.join("count")),
        4,
        "runs again after enable"
    );
}

/// The settings the install tests start from: a simple command, one that needs a shell, an
/// exec-form one, a non-command handler; and one hook in the committed file.
const LOCAL: &str = r#"{
  "permissions": {"allow": ["Bash(ls:*)"]},
  "hooks": {
    "PreToolUse": [
      {"matcher": "Bash", "hooks": [
        {"type": "command", "command": "sh .claude/hooks/PreToolUse.sh", "timeout": 10},
        {"type": "command", "command": "/usr/bin/guard", "args": ["--strict"]}
      ]}
    ],
    "Stop": [{"hooks": [
      {"type": "command", "command": "cd \"$CLAUDE_PROJECT_DIR\" && sh .claude/hooks/stop.sh 2>/dev/null"},
      {"type": "prompt", "prompt": "done?"}
    ]}]
  }
}
"#;

const COMMITTED: &str = "{\n    \"hooks\": {\"PostToolUse\": [{\"matcher\": \"Write\", \"hooks\": [{\"type\": \"command\", \"command\": \"sh .claude/hooks/fmt.sh\"}]}]},\n    \"model\": \"opus\"\n}\n";

fn install_fixture(env: &TestEnv) {
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    fs::write(env.project.join(".claude/settings.local.json"), LOCAL).unwrap();
    fs::write(env.project.join(".claude/settings.json"), COMMITTED).unwrap();
    script(
        env,
        ".claude/hooks/PreToolUse.sh",
        "cat; echo pre >&2; exit 3\n",
    );
    script(env, ".claude/hooks/stop.sh", "echo stopped\n");
    script(env, ".claude/hooks/fmt.sh", "exit 0\n");
}

fn local_settings(env: &TestEnv) -> Value {
    serde_json::from_slice(&fs::read(env.project.join(".claude/settings.local.json")).unwrap())
        .unwrap()
}

/// The wrapped commands, run as Claude Code runs them, behave as the originals did and are
/// recorded under the hooks' own names.
fn wrapped_hooks_behave_as_before(env: &TestEnv, pre: &str, stop: &str) {
    let stdin = input(env);
    let out = as_claude(env, pre, &stdin);
    assert_code(&out, 3);
    assert_eq!(out.stdout, stdin, "the wrapped hook got the same stdin");
    assert_eq!(out.stderr, b"pre\n");
    let out = as_claude(env, stop, b"{\"hook_event_name\":\"Stop\"}");
    assert_code(&out, 0);
    assert_eq!(out.stdout, b"stopped\n");
    let records = env.records();
    let hooks: Vec<&Value> = of_type(&records, "hook_execution")
        .iter()
        .map(|r| &r["hook"])
        .collect();
    assert!(
        hooks.contains(&&json!(".claude/hooks/PreToolUse.sh")),
        "{hooks:?}"
    );
    assert!(
        hooks.contains(&&json!(".claude/hooks/stop.sh")),
        "{hooks:?}"
    );
}

/// `install --wrap-existing` again, and a plain install, leave the settings and the manifest
/// byte for byte as they are.
fn a_second_install_changes_nothing(env: &TestEnv, manifest_path: &Path, dir: &Path) {
    let before = (
        fs::read(env.project.join(".claude/settings.local.json")).unwrap(),
        fs::read(manifest_path).unwrap(),
    );
    for args in [
        vec![
            "install",
            "--wrap-existing",
            "--bin-dir",
            dir.to_str().unwrap(),
        ],
        vec!["install", "--bin-dir", dir.to_str().unwrap()],
    ] {
        let out = ctxopt(env, &args);
        assert_code(&out, 0);
        assert!(
            text(&out.stdout).starts_with("already installed"),
            "{}",
            text(&out.stdout)
        );
        let after = (
            fs::read(env.project.join(".claude/settings.local.json")).unwrap(),
            fs::read(manifest_path).unwrap(),
        );
        assert_eq!(before, after, "{args:?} changed nothing");
    }
}

#[test]
fn install_wrap_existing_and_uninstall_restore_the_original_bytes() {
    let env = TestEnv::new();
    install_fixture(&env);
    let dir = bin_dir();
    let runner = run_bin().display().to_string();
    let out = ctxopt(
        &env,
        &[
            "install",
            "--wrap-existing",
            "--bin-dir",
            dir.to_str().unwrap(),
        ],
    );
    assert_code(&out, 0);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("routed PreToolUse in .claude/settings.local.json through ctxopt-run as .claude/hooks/PreToolUse.sh"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not wrapped: PostToolUse in .claude/settings.json: sh .claude/hooks/fmt.sh (committed file: wrapping would write this machine's path"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "not wrapped: PreToolUse in .claude/settings.local.json: /usr/bin/guard (exec form"
        ),
        "{stdout}"
    );
    assert_eq!(
        fs::read_to_string(env.project.join(".claude/settings.json")).unwrap(),
        COMMITTED
    );
    let settings = local_settings(&env);
    let pre = &settings["hooks"]["PreToolUse"][0]["hooks"];
    assert_eq!(
        pre[0]["command"],
        format!(
            "{runner} --name .claude/hooks/PreToolUse.sh --timeout 9 -- sh .claude/hooks/PreToolUse.sh"
        )
    );
    assert_eq!(pre[0]["timeout"], 10);
    assert_eq!(pre[1]["command"], "/usr/bin/guard");
    let stop = settings["hooks"]["Stop"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap();
    assert_eq!(
        stop,
        format!(
            "{runner} --name .claude/hooks/stop.sh -- sh -c 'cd \"$CLAUDE_PROJECT_DIR\" && sh .claude/hooks/stop.sh 2>/dev/null'"
        )
    );

    wrapped_hooks_behave_as_before(&env, pre[0]["command"].as_str().unwrap(), stop);

    let manifest_path = env.data().join("install-manifest.json");
    let manifest: Value = serde_json::from_slice(&fs::read(&manifest_path).unwrap()).unwrap();
    assert_eq!(manifest["wrapped"].as_array().unwrap().len(), 2);
    assert_eq!(
        manifest["wrapped"][0]["original"],
        "sh .claude/hooks/PreToolUse.sh"
    );

    a_second_install_changes_nothing(&env, &manifest_path, &dir);

    let out = ctxopt(&env, &["uninstall"]);
    assert_code(&out, 0);
    assert!(
        text(&out.stdout).contains("restored the original command of .claude/hooks/PreToolUse.sh"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        fs::read_to_string(env.project.join(".claude/settings.local.json")).unwrap(),
        LOCAL
    );
    assert_eq!(
        fs::read_to_string(env.project.join(".claude/settings.json")).unwrap(),
        COMMITTED
    );
}

#[test]
fn wrap_committed_splices_only_the_commands_and_uninstall_restores_them() {
    let env = TestEnv::new();
    install_fixture(&env);
    let dir = bin_dir();
    let out = ctxopt(
        &env,
        &[
            "install",
            "--wrap-existing",
            "--wrap-committed",
            "--bin-dir",
            dir.to_str().unwrap(),
            "--json",
        ],
    );
    assert_code(&out, 0);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let wrapped = summary["other_hooks"]["wrapped"].as_array().unwrap();
    assert_eq!(wrapped.len(), 3, "{summary}");
    let expected = COMMITTED.replace(
        "\"sh .claude/hooks/fmt.sh\"",
        &format!(
            "\"{} --name .claude/hooks/fmt.sh -- sh .claude/hooks/fmt.sh\"",
            run_bin().display()
        ),
    );
    assert_eq!(
        fs::read_to_string(env.project.join(".claude/settings.json")).unwrap(),
        expected,
        "only the command string changed"
    );
    let out = ctxopt(&env, &["uninstall", "--json"]);
    assert_code(&out, 0);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["other_hooks"]["restored"].as_array().unwrap().len(),
        3
    );
    assert_eq!(
        fs::read_to_string(env.project.join(".claude/settings.json")).unwrap(),
        COMMITTED
    );
    assert_eq!(
        fs::read_to_string(env.project.join(".claude/settings.local.json")).unwrap(),
        LOCAL
    );
}

#[test]
fn wrap_committed_needs_wrap_existing() {
    let env = TestEnv::new();
    let out = ctxopt(&env, &["install", "--wrap-committed"]);
    assert_code(&out, 2);
    assert!(
        text(&out.stderr).contains("--wrap-existing"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn hooks_list_json_and_disable_enable() {
    let env = TestEnv::new();
    install_fixture(&env);
    let dir = bin_dir();
    assert_code(
        &ctxopt(
            &env,
            &[
                "install",
                "--wrap-existing",
                "--bin-dir",
                dir.to_str().unwrap(),
            ],
        ),
        0,
    );
    let settings = local_settings(&env);
    let pre = settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap()
        .to_owned();
    write_policy(&env, &json!({"retries": 0, "breaker_failures": 0}));
    for _ in 0..4 {
        as_claude(&env, &pre, &input(&env));
    }

    let out = ctxopt(&env, &["hooks", "list", "--json"]);
    assert_code(&out, 0);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["window_hours"], 24);
    let hooks = list["hooks"].as_array().unwrap();
    let find = |name: &str| {
        hooks
            .iter()
            .find(|h| h["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {list}"))
    };
    let h = find(".claude/hooks/PreToolUse.sh");
    assert_eq!(h["event"], "PreToolUse");
    assert_eq!(h["matcher"], "Bash");
    assert_eq!(h["settings_file"], ".claude/settings.local.json");
    assert_eq!(h["wrapped"], true);
    assert_eq!(h["wrapped_command"], "sh .claude/hooks/PreToolUse.sh");
    assert_eq!(h["state"], "enabled");
    assert_eq!((&h["runs_24h"], &h["failures_24h"]), (&json!(4), &json!(4)));
    assert!(h["p95_ms_24h"].as_f64().unwrap() > 0.0);
    let fmt = find(".claude/hooks/fmt.sh");
    assert_eq!(
        (&fmt["wrapped"], &fmt["runs_via"]),
        (&json!(false), &json!("direct"))
    );
    assert_eq!(fmt["p95_ms_24h"], Value::Null);
    let own = find("ctxopt-pre-tool-use");
    assert_eq!(own["runs_via"], "ctxopt");
    assert_eq!(find("/usr/bin/guard")["state"], "missing");

    let table = text(&ctxopt(&env, &["hooks", "list"]).stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with(".claude/hooks/PreToolUse.sh"))
        .unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..8],
        [
            ".claude/hooks/PreToolUse.sh",
            "PreToolUse",
            "Bash",
            "settings.local.json",
            "wrapped",
            "enabled",
            "4",
            "4"
        ]
    );

    disable_and_enable(&env, &pre);
}

/// `hooks disable` renames the script (the runner then skips the hook), `hooks enable` takes
/// the name or the renamed file and renames it back; an unknown name is an error.
fn disable_and_enable(env: &TestEnv, pre: &str) {
    let out = ctxopt(env, &["hooks", "disable", ".claude/hooks/PreToolUse.sh"]);
    assert_code(&out, 0);
    assert!(
        env.project
            .join(".claude/hooks/PreToolUse.sh.disabled")
            .exists()
    );
    assert!(!env.project.join(".claude/hooks/PreToolUse.sh").exists());
    let out = as_claude(env, pre, &input(env));
    assert_code(&out, 0);
    let list: Value =
        serde_json::from_slice(&ctxopt(env, &["hooks", "list", "--json"]).stdout).unwrap();
    let h = list["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == ".claude/hooks/PreToolUse.sh")
        .unwrap();
    assert_eq!(
        (&h["state"], &h["disabled"]),
        (&json!("disabled"), &json!(true))
    );
    assert_eq!(h["skipped_24h"], 1);

    let out = ctxopt(
        env,
        &["hooks", "enable", ".claude/hooks/PreToolUse.sh.disabled"],
    );
    assert_code(&out, 0);
    assert!(env.project.join(".claude/hooks/PreToolUse.sh").exists());
    assert_code(&as_claude(env, pre, &input(env)), 3);

    let out = ctxopt(env, &["hooks", "disable", "no-such-hook"]);
    assert_code(&out, 2);
    assert!(
        text(&out.stderr).contains("failed to find a hook named `no-such-hook`"),
        "{}",
        text(&out.stderr)
    );
}

/// A wrapped command with no script file is disabled for the runner by hand.
#[test]
fn a_wrapped_command_without_a_script_is_disabled_by_hand() {
    let env = TestEnv::new();
    let command = format!(
        "{} --name say-hi -- sh -c 'echo hi >> count'",
        run_bin().display()
    );
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    fs::write(
        env.project.join(".claude/settings.local.json"),
        json!({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": command}]}]}})
            .to_string(),
    )
    .unwrap();
    let out = ctxopt(&env, &["hooks", "disable", "say-hi"]);
    assert_code(&out, 0);
    assert_code(&as_claude(&env, &command, b"{}"), 0);
    assert_eq!(runs(&env.project.join("count")), 0);
    assert_code(&ctxopt(&env, &["hooks", "enable", "say-hi"]), 0);
    assert_code(&as_claude(&env, &command, b"{}"), 0);
    assert_eq!(runs(&env.project.join("count")), 1);
}

/// `ctxopt-run` starts on every tool call: clap stays out of it, as out of the hooks.
#[test]
fn the_runner_does_not_link_clap() {
    let bytes = fs::read(run_bin()).unwrap();
    assert!(!bytes.windows(12).any(|w| w == b"clap_builder"));
}

#[test]
fn usage_errors_fail_open_with_one_line() {
    let env = TestEnv::new();
    let out = run(&env, &["--timeout", "soon", "--", "true"], b"{}");
    assert_code(&out, 1);
    assert_eq!(
        text(&out.stderr),
        "ctxopt-run: --timeout takes seconds greater than 0 (at most a day), not `soon`; the \
         hook was not run\nusage: ctxopt-run [--name NAME] [--timeout SECS] [--retries N] -- \
         COMMAND [ARGS...]\n"
    );
    let out = run(&env, &["--", "/nonexistent/hook"], b"{}");
    assert_code(&out, 127);
    assert!(
        text(&out.stderr)
            .starts_with("ctxopt-run: failed to run /nonexistent/hook for /nonexistent/hook: "),
        "{}",
        text(&out.stderr)
    );
}
