//! Deploy and rollback (runbook §5.1 Phase 0, §6.2) and the runbook's `scripts/*.sh`, black-box:
//! `ctxopt deploy start`, changes to settings, skills and hooks, `ctxopt rollback` putting back
//! exactly the snapshot (never the data dir or `settings.local.json`), a corrupt snapshot
//! refused, `ctxopt rollback COMMIT` in a real git repository touching only `.claude/`, the
//! post-rollback checks on a synthetic `metrics.jsonl`, and the scripts calling the real binary.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking, like the #[test] functions they serve"
)]

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ctxopt::runbook_scripts::{self, Action};
use serde_json::Value;
use support::{TestEnv, bin};

fn put(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap()
}

fn ctxopt(env: &TestEnv, args: &[&str]) -> Output {
    let mut cmd = command(env, &bin("ctxopt"));
    cmd.args(args);
    cmd.output().unwrap()
}

/// A command with the test's HOME, no system git config, and git's discovery stopped at the
/// temporary directory.
fn command(env: &TestEnv, program: &Path) -> Command {
    let mut cmd = env.command(program);
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CEILING_DIRECTORIES", env.tmp.path());
    cmd
}

fn git(env: &TestEnv, args: &[&str]) -> String {
    let out = command(env, Path::new("git")).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap()
}

/// Every regular file under `dir` (relative path → bytes and mode), skipping `skip`.
fn tree(root: &Path, dir: &str, skip: &[&str]) -> BTreeMap<String, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.join(dir)];
    while let Some(at) = stack.pop() {
        let Ok(entries) = fs::read_dir(&at) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if skip
                .iter()
                .any(|s| rel == *s || rel.starts_with(&format!("{s}/")))
            {
                continue;
            }
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                out.insert(
                    rel,
                    (fs::read(&path).unwrap(), meta.permissions().mode() & 0o777),
                );
            }
        }
    }
    out
}

const SKIP: &[&str] = &[".claude/hooks/data", ".claude/settings.local.json"];

/// A project with settings, a local settings file, two skills, hook scripts and ctxopt data.
fn project(env: &TestEnv) {
    let p = &env.project;
    put(p, ".claude/settings.json", "{\"hooks\": {}}\n");
    put(p, ".claude/settings.local.json", "{\"local\": 1}\n");
    put(
        p,
        ".claude/skills/alpha/SKILL.md",
        "---\nname: alpha\n---\nAlpha.\n",
    );
    put(
        p,
        ".claude/skills/beta/SKILL.md",
        "---\nname: beta\n---\nBeta.\n",
    );
    put(p, ".claude/skills/beta/ref/notes.md", "notes\n");
    put(p, ".claude/hooks/PreToolUse.sh", "#!/bin/sh\nexit 0\n");
    fs::set_permissions(
        p.join(".claude/hooks/PreToolUse.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    put(p, ".claude/hooks/lib/util.js", "module.exports = 1;\n");
    put(p, ".claude/hooks/data/metrics.jsonl", "");
}

fn metrics(env: &TestEnv, lines: &[String]) {
    let mut body = lines.join("\n");
    body.push('\n');
    put(&env.project, ".claude/hooks/data/metrics.jsonl", &body);
}

fn healthy_metrics(env: &TestEnv) {
    let mut lines: Vec<String> = (0..20)
        .map(|_| r#"{"type":"hook_latency","duration_ms":12.5}"#.to_owned())
        .collect();
    lines.push(r#"{"type":"tool_use","token_consumption_initial":30000}"#.to_owned());
    metrics(env, &lines);
}

/// What the rollback of `rollback_restores_exactly_the_deploy_snapshot` kept and logged.
fn assert_recorded(p: &Path) {
    let replaced: Vec<PathBuf> = fs::read_dir(p.join(".deploy"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|d| {
            d.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("replaced-")
        })
        .collect();
    assert_eq!(replaced.len(), 1);
    assert_eq!(
        read(&replaced[0], ".claude/settings.json"),
        "{\"hooks\": {\"Stop\": []}}\n"
    );
    assert_eq!(read(&replaced[0], ".claude/hooks/extra.sh"), "#!/bin/sh\n");

    let log = read(p, ".deploy/rollback.log");
    assert!(log.contains("trigger=manual"), "{log}");
    assert!(log.contains("removed:.claude/hooks/extra.sh"), "{log}");
    let audit = support::read_records(&p.join(".claude/hooks/data/audit.log"));
    let rolled: Vec<&str> = audit
        .iter()
        .filter(|a| a["action"] == "rollback" && a["actor"] == "ctxopt")
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert_eq!(rolled.len(), 6, "{rolled:?}");
    assert!(rolled.iter().any(|a| a.ends_with(".claude/settings.json")));
}

#[test]
fn rollback_restores_exactly_the_deploy_snapshot() {
    let env = TestEnv::new();
    project(&env);
    healthy_metrics(&env);
    let p = &env.project;
    let out = ctxopt(&env, &["deploy", "start"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    for name in [
        "previous_commit.txt",
        "previous_settings.json",
        "previous_skills.tar.gz",
        "previous_hooks.tar.gz",
        "snapshot.json",
    ] {
        assert!(p.join(".deploy").join(name).is_file(), "{name}");
    }
    for name in ["previous_skills.tar.gz", "previous_hooks.tar.gz"] {
        let mode = fs::metadata(p.join(".deploy").join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
    assert!(read(p, ".deploy/previous_commit.txt").contains("not a git repository"));
    assert_eq!(
        read(p, ".deploy/previous_settings.json"),
        read(p, ".claude/settings.json")
    );
    let manifest: Value = serde_json::from_str(&read(p, ".deploy/snapshot.json")).unwrap();
    let members: Vec<&str> = manifest["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert!(
        members.contains(&".claude/hooks/lib/util.js"),
        "{members:?}"
    );
    assert!(!members.iter().any(|m| m.contains("/data/")), "{members:?}");
    let before = tree(p, ".claude", SKIP);

    put(p, ".claude/settings.json", "{\"hooks\": {\"Stop\": []}}\n");
    put(
        p,
        ".claude/skills/alpha/SKILL.md",
        "---\nname: alpha\n---\nChanged.\n",
    );
    put(
        p,
        ".claude/skills/gamma/SKILL.md",
        "---\nname: gamma\n---\nNew.\n",
    );
    fs::remove_file(p.join(".claude/skills/beta/ref/notes.md")).unwrap();
    put(p, ".claude/hooks/PreToolUse.sh", "#!/bin/sh\nexit 2\n");
    put(p, ".claude/hooks/extra.sh", "#!/bin/sh\n");
    put(p, ".claude/settings.local.json", "{\"local\": 2}\n");
    let data_before = read(p, ".claude/hooks/data/metrics.jsonl");

    let out = ctxopt(&env, &["rollback"]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}{}", text(&out.stderr));
    assert_eq!(tree(p, ".claude", SKIP), before, "{stdout}");
    assert!(!p.join(".claude/skills/gamma").exists(), "{stdout}");
    assert_eq!(read(p, ".claude/settings.local.json"), "{\"local\": 2}\n");
    assert_eq!(read(p, ".claude/hooks/data/metrics.jsonl"), data_before);
    for line in [
        "restored  .claude/settings.json",
        "restored  .claude/skills/alpha/SKILL.md",
        "created   .claude/skills/beta/ref/notes.md",
        "removed   .claude/skills/gamma/SKILL.md",
        "removed   .claude/hooks/extra.sh",
        "OK   initial token consumption (last record): 30000 (limit 40000)",
        "OK   error records in the last 100 records: 0 (limit 1)",
        "OK   hook latency average (ms, last 100): 12.5 (limit 100)",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }

    assert_recorded(p);

    let again = ctxopt(&env, &["rollback", "--dry-run", "--json"]);
    let json: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(json["changes"], Value::Array(Vec::new()), "{json}");
}

#[test]
fn a_corrupt_snapshot_is_refused_and_nothing_changes() {
    let env = TestEnv::new();
    project(&env);
    let p = &env.project;
    assert_eq!(code(&ctxopt(&env, &["deploy", "start"])), 0);
    put(p, ".claude/settings.json", "{\"changed\": true}\n");
    let archive = p.join(".deploy/previous_hooks.tar.gz");
    let mut bytes = fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    fs::write(&archive, bytes).unwrap();
    let before = tree(p, ".claude", &[]);
    let out = ctxopt(&env, &["rollback"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("refused"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stdout).contains("previous_hooks.tar.gz"));
    assert_eq!(tree(p, ".claude", &[]), before);
    assert!(!p.join(".deploy/rollback.log").exists());
}

#[test]
fn rollback_without_a_snapshot_could_not_run() {
    let env = TestEnv::new();
    project(&env);
    let out = ctxopt(&env, &["rollback"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("ctxopt deploy start"));
}

#[test]
fn rollback_to_a_commit_restores_only_its_claude_files() {
    let env = TestEnv::new();
    let p = &env.project;
    git(&env, &["init", "-q", "-b", "main"]);
    git(&env, &["config", "user.name", "Test"]);
    git(&env, &["config", "user.email", "test@example.com"]);
    git(&env, &["config", "commit.gpgsign", "false"]);
    put(p, ".claude/settings.json", "{\"v\": 1}\n");
    put(p, ".claude/settings.local.json", "{\"local\": 1}\n");
    put(p, ".claude/skills/alpha/SKILL.md", "alpha 1\n");
    put(p, ".claude/hooks/run.sh", "#!/bin/sh\n");
    fs::set_permissions(
        p.join(".claude/hooks/run.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    put(p, "src/app.txt", "app 1\n");
    git(&env, &["add", "-A"]);
    git(&env, &["commit", "-qm", "one"]);
    let first = git(&env, &["rev-parse", "HEAD"]);
    put(p, ".claude/settings.json", "{\"v\": 2}\n");
    put(p, ".claude/skills/alpha/SKILL.md", "alpha 2\n");
    put(p, ".claude/skills/beta/SKILL.md", "beta 2\n");
    put(p, "src/app.txt", "app 2\n");
    git(&env, &["add", "-A"]);
    git(&env, &["commit", "-qm", "two"]);
    let second = git(&env, &["rev-parse", "HEAD"]);
    put(p, "src/app.txt", "app 3, not committed\n");
    put(p, ".claude/settings.local.json", "{\"local\": 3}\n");
    put(p, ".claude/notes.txt", "untracked\n");
    put(
        p,
        ".claude/hooks/data/metrics.jsonl",
        "{\"type\":\"tool_use\"}\n",
    );

    let short = &first[..10];
    let out = ctxopt(&env, &["rollback", short, "--json"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["target"], format!("commit {first}"));
    assert_eq!(read(p, ".claude/settings.json"), "{\"v\": 1}\n");
    assert_eq!(read(p, ".claude/skills/alpha/SKILL.md"), "alpha 1\n");
    assert!(!p.join(".claude/skills/beta/SKILL.md").exists());
    assert_eq!(read(p, ".claude/settings.local.json"), "{\"local\": 3}\n");
    assert_eq!(read(p, ".claude/notes.txt"), "untracked\n");
    assert_eq!(read(p, "src/app.txt"), "app 3, not committed\n");
    assert_eq!(
        read(p, ".claude/hooks/data/metrics.jsonl"),
        "{\"type\":\"tool_use\"}\n"
    );
    let mode = fs::metadata(p.join(".claude/hooks/run.sh"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o755);
    assert_eq!(git(&env, &["rev-parse", "HEAD"]), second);
    let log = read(p, ".deploy/rollback.log");
    assert!(log.contains(&format!("commit {first}")), "{log}");

    let bad = ctxopt(&env, &["rollback", "--", "--not-a-commit"]);
    assert_eq!(code(&bad), 2, "{}", text(&bad.stdout));
    let missing = ctxopt(&env, &["rollback", "0123456789abcdef"]);
    assert_eq!(code(&missing), 2);
}

#[test]
fn post_rollback_checks_fail_on_errors_and_slow_hooks() {
    let env = TestEnv::new();
    project(&env);
    assert_eq!(code(&ctxopt(&env, &["deploy", "start"])), 0);
    let mut lines: Vec<String> = (0..150)
        .map(|i| {
            let ms = if i < 50 { 10.0 } else { 250.0 };
            format!(r#"{{"type":"hook_latency","duration_ms":{ms}}}"#)
        })
        .collect();
    lines.push(r#"{"type":"session_start","token_consumption_initial":52000}"#.to_owned());
    lines.push(r#"{"type":"error","severity":"High","message":"a"}"#.to_owned());
    lines.push(r#"{"type":"error","severity":"High","message":"b"}"#.to_owned());
    metrics(&env, &lines);
    let out = ctxopt(&env, &["rollback", "--json"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stdout));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = json["checks"].as_array().unwrap();
    let by = |name: &str| checks.iter().find(|c| c["name"] == name).unwrap().clone();
    assert_eq!(by("initial_tokens")["value"], 52000.0);
    assert_eq!(by("initial_tokens")["status"], "FAIL");
    assert_eq!(by("errors_last_100")["value"], 2.0);
    assert_eq!(by("errors_last_100")["status"], "FAIL");
    assert_eq!(by("hook_latency_avg_ms")["value"], 250.0);
    assert_eq!(by("hook_latency_avg_ms")["limit"], 100.0);
    assert_eq!(json["passed"], false);
}

#[test]
fn deploy_finish_appends_the_history_line() {
    let env = TestEnv::new();
    project(&env);
    let out = ctxopt(&env, &["deploy", "finish", "--json"]);
    assert_eq!(code(&out), 0);
    let history = read(&env.project, ".deploy/history.log");
    assert!(
        history.starts_with("Deployed (not a git repository) at 20"),
        "{history}"
    );
    assert_eq!(history.lines().count(), 1);
}

#[test]
fn runbook_scripts_call_ctxopt_and_leave_foreign_scripts_alone() {
    let env = TestEnv::new();
    let p = &env.project;
    put(
        p,
        "scripts/backup.sh",
        "#!/bin/sh\necho the project's own backup\n",
    );
    let ctxopt_bin = bin("ctxopt");
    let plan = runbook_scripts::plan(p, ctxopt_bin.parent().unwrap());
    let backup = plan
        .items
        .iter()
        .find(|i| i.path.ends_with("backup.sh"))
        .unwrap();
    assert!(matches!(backup.action, Action::Skip(_)));
    let written = runbook_scripts::apply(&plan).unwrap();
    assert_eq!(written.len(), runbook_scripts::SCRIPTS.len() - 1);
    assert_eq!(
        read(p, "scripts/backup.sh"),
        "#!/bin/sh\necho the project's own backup\n"
    );
    for path in &written {
        let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "{}", path.display());
        let body = fs::read_to_string(path).unwrap();
        assert!(body.contains(runbook_scripts::MARKER));
        assert!(body.contains(&*ctxopt_bin.to_string_lossy()), "{body}");
    }

    let direct = ctxopt(&env, &["canary", "status", "--json"]);
    let via_script = command(&env, Path::new("sh"))
        .arg(p.join("scripts/monitor_canary.sh"))
        .arg("--json")
        .current_dir(env.tmp.path())
        .output()
        .unwrap();
    assert_eq!(
        code(&via_script),
        code(&direct),
        "{}",
        text(&via_script.stderr)
    );
    assert_eq!(text(&via_script.stdout), text(&direct.stdout));
    let rollback = command(&env, Path::new("sh"))
        .arg("scripts/rollback.sh")
        .output()
        .unwrap();
    assert_eq!(code(&rollback), 2);
    assert!(text(&rollback.stderr).contains("ctxopt deploy start"));

    let record = plan.record();
    put(
        p,
        "scripts/rollback.sh",
        &format!("#!/bin/sh\n{}\necho edited\n", runbook_scripts::MARKER),
    );
    let removed = runbook_scripts::remove(p, &record).unwrap();
    assert_eq!(removed.removed.len(), runbook_scripts::SCRIPTS.len() - 2);
    assert!(p.join("scripts/rollback.sh").exists());
    assert!(p.join("scripts/backup.sh").exists());
    assert!(!p.join("scripts/monitor_canary.sh").exists());
}

const SESSION: &str = "75260e37-9241-4982-9cf1-8224ccb4f99b";

/// One hook run of a Bash call with id `id` (PreToolUse or PostToolUse); exit 0 and no stderr.
fn call(env: &TestEnv, event: &str, id: &str) -> Output {
    let mut input = serde_json::json!({
        "session_id": SESSION,
        "transcript_path": "/nonexistent/t.jsonl",
        "cwd": env.project,
        "permission_mode": "default",
        "hook_event_name": event,
        "tool_name": "Bash",
        "tool_input": {"command": "ctxopt rollback", "description": "roll back"},
        "tool_use_id": id,
    });
    if event == "PostToolUse" {
        input["tool_response"] =
            serde_json::json!({"stdout": "", "stderr": "", "interrupted": false});
    }
    let program = if event == "PreToolUse" {
        "ctxopt-pre-tool-use"
    } else {
        "ctxopt-post-tool-use"
    };
    let out = env.run_hook(program, input.to_string().as_bytes());
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
    out
}

#[test]
fn deploy_and_rollback_run_by_the_agent_are_not_undone_by_the_guard() {
    let env = TestEnv::new();
    project(&env);
    let p = &env.project;
    let out = env.run_hook(
        "ctxopt-session-start",
        &support::fixture("hooks/SessionStart/startup.json"),
    );
    assert_eq!(code(&out), 0, "{out:?}");
    call(&env, "PreToolUse", "toolu_deploy");
    assert_eq!(code(&ctxopt(&env, &["deploy", "start"])), 0);
    let out = call(&env, "PostToolUse", "toolu_deploy");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));

    put(p, ".claude/settings.json", "{\"hooks\": {\"Stop\": []}}\n");
    put(p, ".claude/hooks/PreToolUse.sh", "#!/bin/sh\nexit 2\n");
    put(p, ".claude/hooks/extra.sh", "#!/bin/sh\n");
    call(&env, "PreToolUse", "toolu_rollback");
    let out = ctxopt(&env, &["rollback"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
    let rolled_back = tree(p, ".claude", SKIP);
    let out = call(&env, "PostToolUse", "toolu_rollback");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    assert_eq!(
        tree(p, ".claude", SKIP),
        rolled_back,
        "the guard undid the rollback"
    );
    assert_eq!(
        read(p, ".claude/hooks/PreToolUse.sh"),
        "#!/bin/sh\nexit 0\n"
    );
    let audit = support::read_records(&p.join(".claude/hooks/data/audit.log"));
    assert!(!audit.iter().any(|a| a["action"] == "repair"), "{audit:#?}");
}
