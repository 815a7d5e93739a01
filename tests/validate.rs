//! `ctxopt validate`, black-box: exit codes, the text and `--json` reports, named paths,
//! discovery of the project's and the user's files, and bad input — a 50 MB file, nesting
//! 10,000 deep, invalid UTF-8, a FIFO, an unreadable file — each a clear finding, in bounded
//! time, without a panic. (`--staged` and the pre-commit hook: tests/precommit.rs.)

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test by panicking, like the #[test] functions they serve"
)]

mod support;

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{TestEnv, bin};

const GOOD_SETTINGS: &str = "{\n  \"hooks\": {}\n}\n";
/// A trailing comma: E003 at line 2, column 14.
const BROKEN_SETTINGS: &str = "{\n  \"hooks\": {},\n}\n";
/// An unknown hook event: a warning (W101), not an error.
const WARNING_SETTINGS: &str = "{\n  \"hooks\": {\"NotAnEvent\": []}\n}\n";
const GOOD_MCP: &str =
    "{\"mcpServers\": {\"docs\": {\"type\": \"http\", \"url\": \"https://example.com/mcp\"}}}\n";

/// Longest any bad input may take; a hang fails the test instead of stalling the suite.
const BOUND: Duration = Duration::from_secs(20);

/// `ctxopt validate ARGS` in the project, with stdout and stderr in files (so a long report
/// cannot block on a full pipe) and killed after [`BOUND`].
fn run_bounded(env: &TestEnv, mut cmd: Command) -> Output {
    let out_path = env.tmp.path().join("stdout");
    let err_path = env.tmp.path().join("stderr");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ctxopt validate did not finish within {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: fs::read(&out_path).unwrap(),
        stderr: fs::read(&err_path).unwrap(),
    }
}

fn validate_cmd(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = env.command(&bin("ctxopt"));
    cmd.env("GIT_CEILING_DIRECTORIES", env.tmp.path())
        .arg("validate")
        .args(args);
    cmd
}

fn validate(env: &TestEnv, args: &[&str]) -> Output {
    run_bounded(env, validate_cmd(env, args))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", stdout(out)))
}

#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

/// Asserts exit 1, no panic, and exactly one finding with `code` naming `file`; returns its
/// rendered line.
#[track_caller]
fn assert_one_finding(out: &Output, file: &str, code: &str) -> String {
    assert_exit(out, 1);
    assert!(!stderr(out).contains("panicked"), "{}", stderr(out));
    let text = stdout(out);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("error[") || l.contains("warning["))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].starts_with(file) && lines[0].contains(&format!("error[{code}]")),
        "{text}"
    );
    assert!(text.ends_with("1 config file checked: 1 error\n"), "{text}");
    lines[0].to_owned()
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn project_file(env: &TestEnv, rel: &str, bytes: impl AsRef<[u8]>) {
    write(&env.project.join(rel), bytes);
}

// ---- exit codes and reports -------------------------------------------------------------

#[test]
fn clean_files_exit_0() {
    let env = TestEnv::new();
    project_file(&env, ".claude/settings.json", GOOD_SETTINGS);
    project_file(&env, ".mcp.json", GOOD_MCP);
    let out = validate(&env, &[".claude/settings.json", ".mcp.json"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "2 config files checked: no problems\n");
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn warnings_are_reported_and_exit_0() {
    let env = TestEnv::new();
    project_file(&env, ".claude/settings.json", WARNING_SETTINGS);
    let out = validate(&env, &[".claude/settings.json"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.starts_with(".claude/settings.json:2:") && text.contains(": warning[W101]: "),
        "{text}"
    );
    assert!(
        text.ends_with("1 config file checked: 1 warning\n"),
        "{text}"
    );
}

#[test]
fn errors_exit_1_with_file_line_column_code_and_caret() {
    let env = TestEnv::new();
    project_file(&env, ".claude/settings.json", BROKEN_SETTINGS);
    project_file(&env, ".mcp.json", GOOD_MCP);
    let out = validate(&env, &[".mcp.json", ".claude/settings.json"]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    let mut lines = text.lines();
    let first = lines.next().unwrap();
    assert!(
        first.starts_with(".claude/settings.json:2:14: error[E003]: "),
        "{text}"
    );
    assert_eq!(lines.next(), Some(" 2 |   \"hooks\": {},"));
    assert_eq!(lines.next(), Some("   |              ^"));
    assert_eq!(
        lines.next(),
        Some("2 config files checked: 1 error"),
        "{text}"
    );
    assert!(
        stderr(&out).is_empty(),
        "findings go to stdout: {}",
        stderr(&out)
    );
}

#[test]
fn an_unknown_file_name_could_not_run_exit_2() {
    let env = TestEnv::new();
    project_file(&env, ".claude/settings.json", BROKEN_SETTINGS);
    project_file(&env, "notes.txt", "hello");
    let out = validate(&env, &[".claude/settings.json", "notes.txt"]);
    assert_exit(&out, 2);
    assert!(out.stdout.is_empty(), "nothing validated: {}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("ctxopt: failed to validate notes.txt: not a config file ctxopt knows"),
        "{err}"
    );
    assert!(
        err.contains("settings.json") && err.contains(".mcp.json"),
        "{err}"
    );
}

#[test]
fn staged_outside_a_git_repository_could_not_run_exit_2() {
    let env = TestEnv::new();
    let out = validate(&env, &["--staged"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.starts_with("ctxopt: failed to find a git repository at "),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn staged_with_paths_is_a_usage_error() {
    let env = TestEnv::new();
    let out = validate(&env, &["--staged", ".mcp.json"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn json_report_has_files_findings_and_counts() {
    let env = TestEnv::new();
    project_file(&env, ".claude/settings.json", BROKEN_SETTINGS);
    project_file(&env, ".claude/settings.local.json", WARNING_SETTINGS);
    project_file(&env, ".mcp.json", GOOD_MCP);
    let out = validate(
        &env,
        &[
            "--json",
            ".claude/settings.json",
            ".claude/settings.local.json",
            ".mcp.json",
        ],
    );
    assert_exit(&out, 1);
    let report = json(&out);
    assert_eq!(report["errors"], 1);
    assert_eq!(report["warnings"], 1);
    let files = report["files"].as_array().unwrap();
    let summary: Vec<(&str, &str, bool, usize)> = files
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap(),
                f["kind"].as_str().unwrap(),
                f["valid"].as_bool().unwrap(),
                f["findings"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (".claude/settings.json", "project_settings", false, 1),
            (".claude/settings.local.json", "local_settings", true, 1),
            (".mcp.json", "mcp_json", true, 0),
        ]
    );
    let finding = &files[0]["findings"][0];
    assert_eq!(finding["file"], ".claude/settings.json");
    assert_eq!(finding["line"], 2);
    assert_eq!(finding["column"], 14);
    assert_eq!(finding["level"], "error");
    assert_eq!(finding["code"], "E003");
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("trailing comma")
    );
    assert_eq!(finding["source_line"], "  \"hooks\": {},");
    assert_eq!(files[1]["findings"][0]["level"], "warning");
    assert_eq!(files[1]["findings"][0]["pointer"], "/hooks/NotAnEvent");
}

#[test]
fn named_paths_keep_their_spelling_and_may_be_absolute() {
    let env = TestEnv::new();
    project_file(&env, ".claude/settings.json", BROKEN_SETTINGS);
    let absolute = env.project.join(".claude/settings.json");
    let out = validate(&env, &[absolute.to_str().unwrap()]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).starts_with(&format!("{}:2:14: error[E003]", absolute.display())),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_missing_named_file_is_a_finding() {
    let env = TestEnv::new();
    let out = validate(&env, &[".mcp.json"]);
    let line = assert_one_finding(&out, ".mcp.json", "E008");
    assert!(line.contains("No such file"), "{line}");
}

// ---- discovery ---------------------------------------------------------------------------

#[test]
fn no_paths_validates_every_config_file_of_the_project_and_the_user() {
    let env = TestEnv::new();
    project_file(&env, ".claude/settings.json", GOOD_SETTINGS);
    project_file(&env, ".claude/settings.local.json", GOOD_SETTINGS);
    project_file(&env, ".mcp.json", GOOD_MCP);
    project_file(
        &env,
        ".claude/skills/notes/SKILL.md",
        "---\nname: notes\ndescription: Takes notes.\n---\nBody.\n",
    );
    write(&env.home.join(".claude/settings.json"), BROKEN_SETTINGS);
    write(&env.home.join(".claude.json"), "{\"mcpServers\": {}}\n");

    let out = validate(&env, &["--json"]);
    assert_exit(&out, 1);
    let report = json(&out);
    let paths: Vec<String> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect();
    let home = |rel: &str| env.home.join(rel).display().to_string();
    for expected in [
        ".claude/settings.json".to_owned(),
        ".claude/settings.local.json".to_owned(),
        ".mcp.json".to_owned(),
        ".claude/skills/notes/SKILL.md".to_owned(),
        home(".claude/settings.json"),
        home(".claude.json"),
    ] {
        assert!(paths.contains(&expected), "{expected} not in {paths:?}");
    }
    assert_eq!(report["errors"], 1);
    let broken: Vec<&Value> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["valid"] == false)
        .collect();
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0]["path"], home(".claude/settings.json").as_str());
    assert_eq!(broken[0]["kind"], "user_settings");

    let text = stdout(&validate(&env, &[]));
    assert!(
        text.starts_with(&format!(
            "{}:2:14: error[E003]",
            home(".claude/settings.json")
        )),
        "{text}"
    );
}

#[test]
fn claude_config_dir_replaces_the_users_claude_directory() {
    let env = TestEnv::new();
    let config_dir = env.tmp.path().join("config");
    write(&config_dir.join("settings.json"), BROKEN_SETTINGS);
    write(&env.home.join(".claude/settings.json"), GOOD_SETTINGS);
    let mut cmd = validate_cmd(&env, &["--json"]);
    cmd.env("CLAUDE_CONFIG_DIR", &config_dir);
    let out = run_bounded(&env, cmd);
    assert_exit(&out, 1);
    let report = json(&out);
    let paths: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    let replaced = config_dir.join("settings.json").display().to_string();
    let ignored = env.home.join(".claude/settings.json").display().to_string();
    assert!(paths.contains(&replaced.as_str()), "{paths:?}");
    assert!(!paths.contains(&ignored.as_str()), "{paths:?}");
}

#[test]
fn no_config_files_is_clean() {
    let env = TestEnv::new();
    let out = validate(&env, &[]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "no config files found\n");
}

// ---- bad input ---------------------------------------------------------------------------

#[test]
fn a_50_mb_settings_file_is_a_finding_not_a_hang() {
    let env = TestEnv::new();
    let path = env.project.join(".claude/settings.json");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    File::create(&path)
        .unwrap()
        .set_len(50 * 1024 * 1024)
        .unwrap();
    let started = Instant::now();
    let out = validate(&env, &[".claude/settings.json"]);
    let line = assert_one_finding(&out, ".claude/settings.json", "E008");
    assert!(
        line.contains("52428800 bytes") && line.contains("16 MiB"),
        "{line}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn nesting_10000_deep_is_e007() {
    let env = TestEnv::new();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    project_file(&env, ".claude/settings.json", &deep);
    let out = validate(&env, &[".claude/settings.json"]);
    assert_one_finding(&out, ".claude/settings.json:1:", "E007");

    let objects = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    project_file(&env, ".mcp.json", &objects);
    let out = validate(&env, &[".mcp.json"]);
    assert_one_finding(&out, ".mcp.json:1:", "E007");
}

#[test]
fn invalid_utf8_is_e006() {
    let env = TestEnv::new();
    project_file(&env, ".claude/settings.json", b"{\"model\": \"caf\xe9\"}\n");
    let out = validate(&env, &[".claude/settings.json"]);
    let line = assert_one_finding(&out, ".claude/settings.json:1:", "E006");
    assert!(line.contains("UTF-8"), "{line}");

    project_file(&env, ".claude/skills/x/SKILL.md", b"---\nname: \xff\n---\n");
    let out = validate(&env, &[".claude/skills/x/SKILL.md"]);
    assert_one_finding(&out, ".claude/skills/x/SKILL.md", "E006");
}

#[test]
fn a_fifo_is_e008_without_blocking() {
    let env = TestEnv::new();
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    let fifo = env.project.join(".claude/settings.json");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let out = validate(&env, &[".claude/settings.json"]);
    let line = assert_one_finding(&out, ".claude/settings.json", "E008");
    assert!(line.contains("not a regular file"), "{line}");

    let out = validate(&env, &["--json"]);
    assert_exit(&out, 1);
    assert_eq!(json(&out)["files"][0]["findings"][0]["code"], "E008");
}

#[test]
fn a_directory_is_e008() {
    let env = TestEnv::new();
    fs::create_dir_all(env.project.join(".mcp.json")).unwrap();
    let out = validate(&env, &[".mcp.json"]);
    assert_one_finding(&out, ".mcp.json", "E008");
}

#[test]
fn an_unreadable_file_is_e008_for_an_unprivileged_user() {
    let setpriv = Path::new("/usr/bin/setpriv");
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" || !setpriv.exists() {
        eprintln!("skipped: needs root and setpriv to drop to an unprivileged uid");
        return;
    }
    let env = TestEnv::new();
    project_file(&env, ".claude/settings.json", GOOD_SETTINGS);
    for dir in [env.tmp.path(), &env.project, &env.project.join(".claude")] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = env.project.join(".claude/settings.json");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();

    let mut cmd = env.command(setpriv);
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin("ctxopt"))
        .args(["validate", ".claude/settings.json"]);
    let out = run_bounded(&env, cmd);
    let line = assert_one_finding(&out, ".claude/settings.json", "E008");
    assert!(line.contains("Permission denied"), "{line}");
}
