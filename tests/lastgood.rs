//! Config checks at session start, last-known-good copies, drift audit and
//! `ctxopt restore-config`, driven through the real binaries — each test in its own temporary
//! HOME and project (issue 3, items 6 and 7).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failed step is a test failure"
)]

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{TestEnv, fixture, of_type, read_records};

const GOOD: &str = "{\n  \"model\": \"opus\"\n}\n";
const BROKEN: &str = "{\n  \"model\": \"opus\",\n}\n";
const SESSION: &str = "75260e37-9241-4982-9cf1-8224ccb4f99b";

fn settings(env: &TestEnv) -> PathBuf {
    env.project.join(".claude/settings.json")
}

fn backup_of(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap().to_os_string();
    name.push(".backup");
    path.with_file_name(name)
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn session(env: &TestEnv) -> Output {
    env.run_hook(
        "ctxopt-session-start",
        &fixture("hooks/SessionStart/startup.json"),
    )
}

/// A session start that printed nothing and succeeded.
fn quiet_session(env: &TestEnv) {
    let out = session(env);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The reply of a session start that reported something: exactly `{"systemMessage": …}`.
fn system_message(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let reply: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(&out.stdout)));
    let object = reply.as_object().unwrap();
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        ["systemMessage"],
        "{reply}"
    );
    object["systemMessage"].as_str().unwrap().to_owned()
}

fn audit(env: &TestEnv) -> Vec<Value> {
    read_records(&env.data().join("audit.log"))
}

fn ctxopt(env: &TestEnv, args: &[&str]) -> Output {
    env.command(&support::bin("ctxopt"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Whether `message` holds `file:line:column: error[` for `file`.
fn names_a_position(message: &str, file: &str) -> bool {
    message.lines().any(|line| {
        line.trim_start()
            .strip_prefix(file)
            .and_then(|rest| rest.strip_prefix(':'))
            .and_then(|rest| rest.split_once(": error["))
            .is_some_and(|(at, _)| {
                let mut parts = at.split(':');
                parts.next().is_some_and(|l| l.parse::<u32>().is_ok())
                    && parts.next().is_some_and(|c| c.parse::<u32>().is_ok())
            })
    })
}

fn broken_copies(dir: &Path, name: &str) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{name}.broken-"))
        })
        .collect()
}

#[test]
fn broken_settings_are_reported_and_restored() {
    let env = TestEnv::new();
    let path = settings(&env);
    write(&path, GOOD);
    quiet_session(&env);
    assert_eq!(fs::read_to_string(backup_of(&path)).unwrap(), GOOD);

    write(&path, BROKEN);
    let out = session(&env);
    let message = system_message(&out);
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
    assert!(
        names_a_position(&message, ".claude/settings.json"),
        "{message}"
    );
    assert!(
        message.contains(&format!("ctxopt restore-config {}", path.display())),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "cp {} {}",
            backup_of(&path).display(),
            path.display()
        )),
        "{message}"
    );
    let records = env.records();
    let errors = of_type(&records, "error");
    assert_eq!(errors.len(), 1, "{records:#?}");
    assert_eq!(errors[0]["severity"], "Critical");
    let record_message = errors[0]["message"].as_str().unwrap();
    assert!(
        record_message.starts_with("invalid config .claude/settings.json: "),
        "{record_message}"
    );
    assert!(record_message.contains("error["), "{record_message}");
    let executions = of_type(&records, "hook_execution");
    assert!(executions.iter().all(|e| e["success"] == true));
    assert_eq!(
        fs::read_to_string(backup_of(&path)).unwrap(),
        GOOD,
        "the last-known-good copy is not overwritten by the broken file"
    );

    let out = ctxopt(&env, &["restore-config", ".claude/settings.json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out.stdout).contains("restored .claude/settings.json"));
    assert_eq!(fs::read_to_string(&path).unwrap(), GOOD);
    let aside = broken_copies(&env.project.join(".claude"), "settings.json");
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(fs::read_to_string(&aside[0]).unwrap(), BROKEN);
    let entries = audit(&env);
    let restore = entries.iter().find(|e| e["action"] == "restore").unwrap();
    assert_eq!(restore["actor"], "ctxopt");
    assert_eq!(restore["path"], path.to_str().unwrap());

    let before = audit(&env).len();
    quiet_session(&env);
    assert_eq!(audit(&env).len(), before, "a restore is not drift");
    assert_eq!(of_type(&env.records(), "error").len(), 1);
}

#[test]
fn a_valid_file_gets_a_private_identical_copy_once() {
    let env = TestEnv::new();
    let path = settings(&env);
    write(&path, GOOD);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    quiet_session(&env);
    let backup = backup_of(&path);
    assert_eq!(fs::read(&backup).unwrap(), GOOD.as_bytes());
    assert_eq!(mode(&backup), 0o600);
    let stamp = |p: &Path| {
        let m = fs::metadata(p).unwrap();
        (m.ino(), m.mtime(), m.mtime_nsec())
    };
    let first = stamp(&backup);
    quiet_session(&env);
    assert_eq!(
        stamp(&backup),
        first,
        "an unchanged file is not copied again"
    );
    assert!(audit(&env).is_empty(), "{:?}", audit(&env));
}

#[test]
fn an_edit_between_sessions_is_one_drift_record() {
    let env = TestEnv::new();
    let path = settings(&env);
    write(&path, GOOD);
    quiet_session(&env);
    write(&path, "{\n  \"model\": \"sonnet\"\n}\n");
    quiet_session(&env);
    quiet_session(&env);
    let entries = audit(&env);
    assert_eq!(entries.len(), 1, "{entries:#?}");
    let drift = &entries[0];
    assert_eq!(drift["actor"], "user");
    assert_eq!(drift["action"], "drift");
    assert_eq!(drift["path"], path.to_str().unwrap());
    assert_eq!(drift["session_id"], SESSION);
    assert_ne!(drift["sha256_before"], drift["sha256_after"]);
    assert_eq!(drift["sha256_after"].as_str().unwrap().len(), 64);
    let grep = Command::new("grep")
        .arg("settings.json")
        .arg(env.data().join("audit.log"))
        .output()
        .unwrap();
    assert_eq!(grep.status.code(), Some(0));
    assert_eq!(text(&grep.stdout).lines().count(), 1);
}

#[test]
fn created_and_removed_files_are_drift() {
    let env = TestEnv::new();
    quiet_session(&env);
    let path = settings(&env);
    write(&path, GOOD);
    quiet_session(&env);
    fs::remove_file(&path).unwrap();
    quiet_session(&env);
    let entries = audit(&env);
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert_eq!(entries[0]["sha256_before"], Value::Null);
    assert!(entries[0]["sha256_after"].is_string());
    assert!(entries[1]["sha256_before"].is_string());
    assert_eq!(entries[1]["sha256_after"], Value::Null);
}

#[test]
fn the_first_session_is_a_baseline() {
    let env = TestEnv::new();
    write(&settings(&env), GOOD);
    write(&env.home.join(".claude.json"), "{}");
    quiet_session(&env);
    assert!(audit(&env).is_empty());
}

#[test]
fn a_write_by_ctxopt_install_is_not_drift() {
    let env = TestEnv::new();
    quiet_session(&env);
    let bins = support::bin("ctxopt");
    let bin_dir = bins.parent().unwrap().to_str().unwrap();
    let out = ctxopt(&env, &["install", "--bin-dir", bin_dir]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    quiet_session(&env);
    let entries = audit(&env);
    let local = env.project.join(".claude/settings.local.json");
    assert!(
        entries.iter().all(|e| e["action"] != "drift"),
        "{entries:#?}"
    );
    let install: Vec<_> = entries
        .iter()
        .filter(|e| e["actor"] == "ctxopt" && e["action"] == "install")
        .collect();
    assert_eq!(install.len(), 1, "{entries:#?}");
    assert_eq!(install[0]["path"], local.to_str().unwrap());
    assert_eq!(install[0]["sha256_before"], Value::Null);
    assert_eq!(
        fs::read(backup_of(&local)).unwrap(),
        fs::read(&local).unwrap()
    );
}

#[test]
fn a_removal_by_ctxopt_uninstall_is_not_drift() {
    let env = TestEnv::new();
    quiet_session(&env);
    let bins = support::bin("ctxopt");
    let bin_dir = bins.parent().unwrap().to_str().unwrap();
    let out = ctxopt(&env, &["install", "--bin-dir", bin_dir]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    quiet_session(&env);
    let out = ctxopt(&env, &["uninstall"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let local = env.project.join(".claude/settings.local.json");
    assert!(!local.exists());
    quiet_session(&env);
    let entries = audit(&env);
    assert!(
        entries.iter().all(|e| e["action"] != "drift"),
        "{entries:#?}"
    );
    let uninstall: Vec<_> = entries
        .iter()
        .filter(|e| e["actor"] == "ctxopt" && e["action"] == "uninstall")
        .collect();
    assert_eq!(uninstall.len(), 1, "{entries:#?}");
    assert_eq!(uninstall[0]["path"], local.to_str().unwrap());
    assert_eq!(uninstall[0]["sha256_after"], Value::Null);
}

#[test]
fn user_claude_json_gets_its_copy() {
    let env = TestEnv::new();
    let path = env.home.join(".claude.json");
    let state = r#"{"numStartups": 3, "mcpServers": {}}"#;
    write(&path, state);
    quiet_session(&env);
    let backup = env.home.join(".claude.json.backup");
    assert_eq!(fs::read_to_string(&backup).unwrap(), state);
    assert_eq!(mode(&backup), 0o600);
}

#[test]
fn an_invalid_client_backup_is_replaced_when_the_live_file_is_valid() {
    let env = TestEnv::new();
    let path = env.home.join(".claude.json");
    let backup = env.home.join(".claude.json.backup");
    write(&path, r#"{"numStartups": 4}"#);
    write(&backup, r#"{"numStartups": 3,"#);
    quiet_session(&env);
    assert_eq!(
        fs::read_to_string(&backup).unwrap(),
        r#"{"numStartups": 4}"#
    );
}

#[test]
fn an_invalid_live_file_leaves_the_client_backup_alone() {
    let env = TestEnv::new();
    let path = env.home.join(".claude.json");
    let backup = env.home.join(".claude.json.backup");
    write(&path, r#"{"numStartups": 4,}"#);
    write(&backup, r#"{"numStartups": 3}"#);
    let message = system_message(&session(&env));
    assert!(names_a_position(&message, "~/.claude.json"), "{message}");
    assert!(
        message.contains("ctxopt restore-config ~/.claude.json"),
        "{message}"
    );
    assert_eq!(
        fs::read_to_string(&backup).unwrap(),
        r#"{"numStartups": 3}"#
    );
}

#[test]
fn an_invalid_file_without_a_copy_says_so() {
    let env = TestEnv::new();
    write(&settings(&env), BROKEN);
    let message = system_message(&session(&env));
    assert!(message.contains("No last-known-good copy"), "{message}");
    assert!(!message.contains("restore-config"), "{message}");
    assert!(!backup_of(&settings(&env)).exists());
}

#[test]
fn a_fifo_in_place_of_a_config_file_does_not_hang() {
    let env = TestEnv::new();
    let path = settings(&env);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let status = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(status.success());
    let mut child = env
        .command(&support::bin("ctxopt-session-start"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(&fixture("hooks/SessionStart/startup.json"))
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("SessionStart hung on a FIFO");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let message = system_message(&out);
    assert!(
        message.contains(".claude/settings.json: error[E008]"),
        "{message}"
    );
    let records = env.records();
    assert_eq!(of_type(&records, "session_start").len(), 1);
    assert_eq!(of_type(&records, "error")[0]["severity"], "Critical");
}

/// Root reads anything, so the unreadable file is tested as an unprivileged uid.
#[test]
fn an_unreadable_config_file_as_an_unprivileged_user() {
    let setpriv = Path::new("/usr/bin/setpriv");
    let uid = Command::new("id").arg("-u").output().unwrap();
    if text(&uid.stdout).trim() != "0" || !setpriv.exists() {
        eprintln!("skipped: needs root and setpriv to drop to an unprivileged uid");
        return;
    }
    let env = TestEnv::new();
    let path = settings(&env);
    write(&path, GOOD);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(env.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for dir in [&env.project, &env.project.join(".claude"), &env.home] {
        std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
    }
    let mut cmd = env.command(setpriv);
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(support::bin("ctxopt-session-start"));
    let out = env.run_with(cmd, &fixture("hooks/SessionStart/startup.json"));
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
    let message = system_message(&out);
    assert!(
        message.contains(".claude/settings.json: error[E008]"),
        "{message}"
    );
    assert!(message.contains("Permission denied"), "{message}");
    let errors = of_type(&env.records(), "error")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["severity"], "Critical");
}

#[test]
fn restore_refuses_an_invalid_copy() {
    let env = TestEnv::new();
    let path = settings(&env);
    write(&path, BROKEN);
    write(&backup_of(&path), "{\"model\": }");
    let out = ctxopt(&env, &["restore-config", ".claude/settings.json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stdout).contains("invalid too"), "{out:?}");
    assert_eq!(fs::read_to_string(&path).unwrap(), BROKEN);
    assert!(broken_copies(&env.project.join(".claude"), "settings.json").is_empty());
}

#[test]
fn restore_without_a_copy_is_impossible() {
    let env = TestEnv::new();
    write(&settings(&env), BROKEN);
    let out = ctxopt(&env, &["restore-config", ".claude/settings.json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stdout).contains("no last-known-good copy"),
        "{out:?}"
    );
    assert_eq!(fs::read_to_string(settings(&env)).unwrap(), BROKEN);
}

#[test]
fn restore_keeps_the_mode_and_leaves_a_valid_file_alone() {
    let env = TestEnv::new();
    let path = settings(&env);
    write(&path, BROKEN);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    write(&backup_of(&path), GOOD);
    let out = ctxopt(&env, &["restore-config", ".claude/settings.json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(mode(&path), 0o640);
    write(&path, "{\"model\": \"haiku\"}");
    let out = ctxopt(&env, &["restore-config", ".claude/settings.json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out.stdout).contains("nothing to do"), "{out:?}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "{\"model\": \"haiku\"}");
    let out = ctxopt(
        &env,
        &["restore-config", ".claude/settings.json", "--force"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(fs::read_to_string(&path).unwrap(), GOOD);
}

#[test]
fn restore_without_a_file_restores_every_invalid_one() {
    let env = TestEnv::new();
    let path = settings(&env);
    let user = env.home.join(".claude.json");
    write(&path, BROKEN);
    write(&backup_of(&path), GOOD);
    write(&user, "{\"numStartups\": 1,}");
    write(&backup_of(&user), "{\"numStartups\": 1}");
    write(&env.project.join(".mcp.json"), "{\"mcpServers\": {}}");
    let out = ctxopt(&env, &["restore-config", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{report:#}");
    assert!(
        files.iter().all(|f| f["result"] == "restored"),
        "{report:#}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), GOOD);
    assert_eq!(fs::read_to_string(&user).unwrap(), "{\"numStartups\": 1}");
    let out = ctxopt(&env, &["restore-config"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text(&out.stdout).starts_with("nothing to restore"),
        "{out:?}"
    );
}

#[test]
fn restore_of_a_file_ctxopt_does_not_know_could_not_run() {
    let env = TestEnv::new();
    write(&env.project.join("notes.json"), "{}");
    let out = ctxopt(&env, &["restore-config", "notes.json"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).starts_with("ctxopt: failed to restore"));
}
