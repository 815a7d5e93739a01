//! The installer, black-box: `ctxopt install` / `ctxopt uninstall` on real settings files, and
//! `install/install.sh` with prebuilt binaries (`CTXOPT_SKIP_BUILD=1`), in a temporary HOME
//! and project. Never builds in release mode and never touches the real HOME.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test by panicking, like the #[test] functions they serve"
)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::{TestEnv, bin, fixture, repo_root};

/// The directory holding the test build's `ctxopt` and its sibling hook binaries.
fn bin_dir() -> PathBuf {
    bin("ctxopt").parent().unwrap().to_path_buf()
}

fn settings_path(env: &TestEnv) -> PathBuf {
    env.project.join(".claude/settings.local.json")
}

fn manifest_path(env: &TestEnv) -> PathBuf {
    env.data().join("install-manifest.json")
}

fn pre_install_path(env: &TestEnv) -> PathBuf {
    env.data().join("install/settings.local.json.pre-install")
}

fn write_settings(env: &TestEnv, bytes: &[u8]) {
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    fs::write(settings_path(env), bytes).unwrap();
}

fn ctxopt(env: &TestEnv, args: &[&str]) -> Output {
    let mut cmd = env.command(&bin("ctxopt"));
    cmd.args(args).arg("--project").arg(&env.project);
    cmd.output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

fn keys(value: &Value) -> Vec<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn command_for(dir: &Path, program: &str) -> String {
    dir.join(program).to_str().unwrap().to_owned()
}

#[test]
fn install_merges_into_existing_settings_keeping_order() {
    let env = TestEnv::new();
    let original = fixture("settings/existing-hooks.json");
    write_settings(&env, &original);
    let out = ctxopt(&env, &["install"]);
    assert_ok(&out);

    let before: Value = serde_json::from_slice(&original).unwrap();
    let after = read_json(&settings_path(&env));
    assert_eq!(keys(&after), keys(&before), "top-level keys and order kept");
    for key in ["$schema", "permissions", "env", "model"] {
        assert_eq!(after[key], before[key], "{key} untouched");
    }
    assert_eq!(
        keys(&after["hooks"]),
        [
            "PreToolUse",
            "Stop",
            "SessionStart",
            "PostToolUse",
            "PostToolUseFailure"
        ]
    );
    assert_eq!(after["hooks"]["Stop"], before["hooks"]["Stop"]);
    let dir = bin_dir();
    let pre = after["hooks"]["PreToolUse"].as_array().unwrap();
    assert_eq!(pre.len(), 2);
    assert_eq!(
        pre[0], before["hooks"]["PreToolUse"][0],
        "existing group first"
    );
    assert_eq!(
        pre[1],
        json!({"matcher": "*", "hooks": [{"type": "command",
            "command": command_for(&dir, "ctxopt-pre-tool-use"), "timeout": 10}]})
    );
    assert_eq!(
        after["hooks"]["SessionStart"],
        json!([{"hooks": [{"type": "command",
            "command": command_for(&dir, "ctxopt-session-start"), "timeout": 10}]}])
    );
    for event in ["PostToolUse", "PostToolUseFailure"] {
        assert_eq!(
            after["hooks"][event],
            json!([{"matcher": "*", "hooks": [{"type": "command",
                "command": command_for(&dir, "ctxopt-post-tool-use"), "timeout": 10}]}])
        );
    }
    let text = fs::read_to_string(settings_path(&env)).unwrap();
    assert!(
        text.starts_with("{\n  \"$schema\"") && text.ends_with("}\n"),
        "{text}"
    );

    let printed = stdout(&out);
    let pre_cmd = command_for(&dir, "ctxopt-pre-tool-use");
    assert!(
        printed.contains(&format!("added PreToolUse → {pre_cmd}")),
        "{printed}"
    );

    assert_eq!(fs::read(pre_install_path(&env)).unwrap(), original);
    assert_eq!(mode(&manifest_path(&env)), 0o600);
    let manifest = read_json(&manifest_path(&env));
    assert_eq!(manifest["settings_file"], ".claude/settings.local.json");
    assert_eq!(manifest["file_existed"], true);
    assert_eq!(manifest["hooks_key_created"], false);
    assert_eq!(manifest["bin_dir"], dir.to_str().unwrap());
    assert_eq!(manifest["ctxopt_version"], env!("CARGO_PKG_VERSION"));
    assert!(manifest["installed_at"].as_str().unwrap().ends_with('Z'));
    let events: Vec<_> = manifest["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["event"].clone(), e["event_key_created"].clone()))
        .collect();
    assert_eq!(
        events,
        [
            (json!("SessionStart"), json!(true)),
            (json!("PreToolUse"), json!(false)),
            (json!("PostToolUse"), json!(true)),
            (json!("PostToolUseFailure"), json!(true)),
        ]
    );
    assert_eq!(manifest["events"][1]["commands"], json!([pre_cmd]));
}

#[test]
fn second_install_is_a_byte_identical_no_op() {
    let env = TestEnv::new();
    write_settings(&env, &fixture("settings/existing-hooks.json"));
    assert_ok(&ctxopt(&env, &["install"]));
    let settings = fs::read(settings_path(&env)).unwrap();
    let manifest = fs::read(manifest_path(&env)).unwrap();
    let copy = fs::read(pre_install_path(&env)).unwrap();

    let out = ctxopt(&env, &["install"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("already installed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(fs::read(settings_path(&env)).unwrap(), settings);
    assert_eq!(fs::read(manifest_path(&env)).unwrap(), manifest);
    assert_eq!(fs::read(pre_install_path(&env)).unwrap(), copy);
}

#[test]
fn uninstall_restores_the_original_bytes() {
    let env = TestEnv::new();
    let original = fixture("settings/existing-hooks.json");
    write_settings(&env, &original);
    fs::set_permissions(settings_path(&env), fs::Permissions::from_mode(0o640)).unwrap();
    assert_ok(&ctxopt(&env, &["install"]));
    assert_eq!(mode(&settings_path(&env)), 0o640, "mode kept on install");

    let out = ctxopt(&env, &["uninstall"]);
    assert_ok(&out);
    let printed = stdout(&out);
    assert!(printed.contains("removed PreToolUse → "), "{printed}");
    assert!(printed.contains("restored the original bytes"), "{printed}");
    assert_eq!(fs::read(settings_path(&env)).unwrap(), original);
    assert_eq!(mode(&settings_path(&env)), 0o640, "mode kept on uninstall");
    assert!(!manifest_path(&env).exists());
    assert!(!pre_install_path(&env).exists());

    let again = ctxopt(&env, &["uninstall"]);
    assert_ok(&again);
    assert!(
        stdout(&again).contains("nothing to uninstall"),
        "{}",
        stdout(&again)
    );
    assert_eq!(fs::read(settings_path(&env)).unwrap(), original);
}

#[test]
fn uninstall_keeps_hooks_the_user_added_after_install() {
    let env = TestEnv::new();
    write_settings(&env, &fixture("settings/existing-hooks.json"));
    assert_ok(&ctxopt(&env, &["install"]));
    let mut value = read_json(&settings_path(&env));
    let user_group = json!({"matcher": "Edit", "hooks": [{"type": "command", "command": "fmt"}]});
    value["hooks"]["PostToolUse"]
        .as_array_mut()
        .unwrap()
        .push(user_group.clone());
    write_settings(&env, &serde_json::to_vec_pretty(&value).unwrap());

    assert_ok(&ctxopt(&env, &["uninstall"]));
    let after = read_json(&settings_path(&env));
    assert_eq!(after["hooks"]["PostToolUse"], json!([user_group]));
    assert!(after["hooks"].get("SessionStart").is_none());
    assert_eq!(after["hooks"]["PreToolUse"].as_array().unwrap().len(), 1);
    let dir = bin_dir();
    let text = fs::read_to_string(settings_path(&env)).unwrap();
    assert!(!text.contains(dir.to_str().unwrap()), "{text}");
}

#[test]
fn unparseable_settings_are_refused_untouched() {
    let env = TestEnv::new();
    let broken = fixture("settings/trailing-comma.json");
    write_settings(&env, &broken);
    let out = ctxopt(&env, &["install"]);
    assert_eq!(out.status.code(), Some(2));
    let expected = format!("{}:5:3", settings_path(&env).display());
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("ctxopt: failed to parse"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read(settings_path(&env)).unwrap(), broken);
    assert!(!env.data().exists(), "nothing written");
}

#[test]
fn settings_of_the_wrong_shape_are_refused_untouched() {
    let env = TestEnv::new();
    let wrong = fixture("settings/hooks-not-object.json");
    write_settings(&env, &wrong);
    let out = ctxopt(&env, &["install"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`hooks` is an array, expected an object"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read(settings_path(&env)).unwrap(), wrong);
    assert!(!env.data().exists());
}

#[test]
fn uninstall_refuses_a_file_broken_after_install() {
    let env = TestEnv::new();
    assert_ok(&ctxopt(&env, &["install"]));
    let broken = fixture("settings/trailing-comma.json");
    write_settings(&env, &broken);
    let out = ctxopt(&env, &["uninstall"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(":5:3"), "{}", stderr(&out));
    assert_eq!(fs::read(settings_path(&env)).unwrap(), broken);
    assert!(
        manifest_path(&env).exists(),
        "manifest kept for a later uninstall"
    );
}

#[test]
fn fresh_project_install_creates_and_uninstall_deletes() {
    let env = TestEnv::new();
    let out = ctxopt(&env, &["install"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("created "), "{}", stdout(&out));
    let path = settings_path(&env);
    assert_eq!(mode(&path), 0o644);
    let value = read_json(&path);
    assert_eq!(keys(&value), ["hooks"]);
    assert!(!pre_install_path(&env).exists(), "no original to copy");
    assert_eq!(read_json(&manifest_path(&env))["file_existed"], false);

    let out = ctxopt(&env, &["uninstall"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("deleted "), "{}", stdout(&out));
    assert!(!path.exists());
    assert!(!manifest_path(&env).exists());
}

#[test]
fn missing_binary_in_bin_dir_is_refused_and_nothing_written() {
    let env = TestEnv::new();
    let dir = env.tmp.path().join("partial-bin");
    fs::create_dir_all(&dir).unwrap();
    for program in ["ctxopt-session-start", "ctxopt-pre-tool-use"] {
        fs::copy(bin(program), dir.join(program)).unwrap();
    }
    let original = fixture("settings/existing-hooks.json");
    write_settings(&env, &original);
    let out = ctxopt(&env, &["install", "--bin-dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("ctxopt-post-tool-use") && err.contains("not found"),
        "{err}"
    );
    assert_eq!(fs::read(settings_path(&env)).unwrap(), original);
    assert!(!env.data().exists());

    fs::write(dir.join("ctxopt-post-tool-use"), "#!/bin/sh\n").unwrap();
    let out = ctxopt(&env, &["install", "--bin-dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not executable"), "{}", stderr(&out));
    assert_eq!(fs::read(settings_path(&env)).unwrap(), original);
}

#[test]
fn dry_run_writes_nothing() {
    let env = TestEnv::new();
    let original = fixture("settings/existing-hooks.json");
    write_settings(&env, &original);
    let out = ctxopt(&env, &["install", "--dry-run"]);
    assert_ok(&out);
    let printed = stdout(&out);
    assert!(printed.contains("would add PreToolUse → "), "{printed}");
    assert!(printed.contains("dry run: nothing written"), "{printed}");
    assert_eq!(fs::read(settings_path(&env)).unwrap(), original);
    assert!(!env.data().exists());

    assert_ok(&ctxopt(&env, &["install"]));
    let installed = fs::read(settings_path(&env)).unwrap();
    let out = ctxopt(&env, &["uninstall", "--dry-run"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("would restore"), "{}", stdout(&out));
    assert_eq!(fs::read(settings_path(&env)).unwrap(), installed);
    assert!(manifest_path(&env).exists());
}

#[test]
fn moved_binaries_are_updated_in_place() {
    let env = TestEnv::new();
    let original = fixture("settings/existing-hooks.json");
    write_settings(&env, &original);
    assert_ok(&ctxopt(&env, &["install"]));
    let moved = env.tmp.path().join("new bin");
    fs::create_dir_all(&moved).unwrap();
    for program in [
        "ctxopt-session-start",
        "ctxopt-pre-tool-use",
        "ctxopt-post-tool-use",
    ] {
        fs::copy(bin(program), moved.join(program)).unwrap();
    }
    let out = ctxopt(&env, &["install", "--bin-dir", moved.to_str().unwrap()]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("updated PreToolUse → "),
        "{}",
        stdout(&out)
    );
    let value = read_json(&settings_path(&env));
    let pre = value["hooks"]["PreToolUse"].as_array().unwrap();
    assert_eq!(pre.len(), 2, "updated in place, not appended");
    let quoted = format!("'{}'", moved.join("ctxopt-pre-tool-use").display());
    assert_eq!(pre[1]["hooks"][0]["command"], quoted.as_str());
    assert_eq!(fs::read(pre_install_path(&env)).unwrap(), original);

    assert_ok(&ctxopt(&env, &["uninstall"]));
    assert_eq!(fs::read(settings_path(&env)).unwrap(), original);
}

#[test]
fn json_summaries() {
    let env = TestEnv::new();
    let out = ctxopt(&env, &["install", "--json"]);
    assert_ok(&out);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["command"], "install");
    assert_eq!(summary["changed"], true);
    assert_eq!(summary["created_file"], true);
    assert_eq!(summary["changes"].as_array().unwrap().len(), 4);
    assert_eq!(summary["changes"][0]["event"], "SessionStart");
    assert_eq!(summary["changes"][0]["action"], "added");

    let out = ctxopt(&env, &["install", "--json"]);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["already_installed"], true);

    let out = ctxopt(&env, &["uninstall", "--json"]);
    assert_ok(&out);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["manifest_found"], true);
    assert_eq!(summary["file"], "deleted");
    assert_eq!(summary["removed"].as_array().unwrap().len(), 4);
}

// ---- install/install.sh ----------------------------------------------------------------

fn script() -> PathBuf {
    repo_root().join("install/install.sh")
}

/// `bash install/install.sh ARGS` with prebuilt binaries, HOME and TMPDIR inside the test.
fn run_script(env: &TestEnv, args: &[&str]) -> Output {
    let tmpdir = env.tmp.path().join("tmp");
    fs::create_dir_all(&tmpdir).unwrap();
    let mut cmd = script_command(env);
    cmd.env("CTXOPT_SKIP_BUILD", "1")
        .env("CTXOPT_BIN_DIR", bin_dir())
        .env("TMPDIR", &tmpdir)
        .arg(script())
        .args(args);
    cmd.output().unwrap()
}

fn script_command(env: &TestEnv) -> Command {
    let mut cmd = env.command(Path::new("bash"));
    cmd.env_remove("CLAUDE_PROJECT_DIR");
    cmd
}

const BINARIES: [&str; 4] = [
    "ctxopt",
    "ctxopt-session-start",
    "ctxopt-pre-tool-use",
    "ctxopt-post-tool-use",
];

#[test]
fn script_help_works() {
    let env = TestEnv::new();
    let out = script_command(&env)
        .arg(script())
        .arg("--help")
        .output()
        .unwrap();
    assert_ok(&out);
    let text = stdout(&out);
    for needle in [
        "Usage:",
        "--prefix",
        "--dry-run",
        "--uninstall",
        "CTXOPT_SKIP_BUILD",
        "CTXOPT_BIN_DIR",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let out = script_command(&env)
        .arg(script())
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn script_installs_prebuilt_binaries_into_a_project_and_uninstalls() {
    let env = TestEnv::new();
    let original = fixture("settings/existing-hooks.json");
    write_settings(&env, &original);
    let prefix = env.tmp.path().join("prefix");
    let prefix_arg = prefix.to_str().unwrap();
    let project = env.project.to_str().unwrap();

    let out = run_script(&env, &["--prefix", prefix_arg, project]);
    assert_ok(&out);
    assert!(stdout(&out).contains("Plan:"), "{}", stdout(&out));
    for name in BINARIES {
        assert_eq!(mode(&prefix.join(name)), 0o755, "{name}");
    }
    let value = read_json(&settings_path(&env));
    assert_eq!(
        value["hooks"]["PreToolUse"][1]["hooks"][0]["command"],
        command_for(&prefix, "ctxopt-pre-tool-use").as_str()
    );

    let again = run_script(&env, &["--prefix", prefix_arg, project]);
    assert_ok(&again);
    assert!(
        stdout(&again).contains("already installed"),
        "{}",
        stdout(&again)
    );

    let out = run_script(&env, &["--uninstall", "--prefix", prefix_arg, project]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("the binaries stay"),
        "{}",
        stdout(&out)
    );
    assert_eq!(fs::read(settings_path(&env)).unwrap(), original);
    assert!(prefix.join("ctxopt").exists());

    let out = run_script(&env, &["--uninstall", "--prefix", prefix_arg]);
    assert_ok(&out);
    for name in BINARIES {
        assert!(!prefix.join(name).exists(), "{name} removed");
    }
}

#[test]
fn script_dry_run_changes_nothing() {
    let env = TestEnv::new();
    let original = fixture("settings/existing-hooks.json");
    write_settings(&env, &original);
    let prefix = env.tmp.path().join("prefix");
    let out = run_script(
        &env,
        &[
            "--dry-run",
            "--prefix",
            prefix.to_str().unwrap(),
            env.project.to_str().unwrap(),
        ],
    );
    assert_ok(&out);
    assert!(
        stdout(&out).contains("dry run: nothing changed"),
        "{}",
        stdout(&out)
    );
    assert!(!prefix.exists());
    assert_eq!(fs::read(settings_path(&env)).unwrap(), original);
    assert!(!env.data().exists());

    let out = run_script(&env, &["--dry-run", "--prefix", prefix.to_str().unwrap()]);
    assert_ok(&out);
    assert!(!prefix.exists());
    assert_eq!(fs::read_dir(env.tmp.path().join("tmp")).unwrap().count(), 0);
}

/// The demo project's path, from the script's closing lines.
fn demo_dir(printed: &str) -> PathBuf {
    let line = printed
        .lines()
        .find_map(|l| l.strip_prefix("The demo project is "))
        .unwrap_or_else(|| panic!("no demo path in:\n{printed}"));
    PathBuf::from(line.trim())
}

fn assert_demo_recorded(env: &TestEnv, out: &Output) -> PathBuf {
    assert_ok(out);
    let printed = stdout(out);
    let prefix = env.home.join(".local/bin");
    for name in BINARIES {
        assert!(
            prefix.join(name).exists(),
            "{name} installed in ~/.local/bin"
        );
    }
    let dir = demo_dir(&printed);
    assert!(
        dir.starts_with(env.tmp.path().join("tmp")),
        "{}",
        dir.display()
    );
    assert!(dir.join("CLAUDE.md").exists());
    let settings = read_json(&dir.join(".claude/settings.local.json"));
    assert_eq!(
        settings["hooks"]["SessionStart"][0]["hooks"][0]["command"],
        command_for(&prefix, "ctxopt-session-start").as_str()
    );
    assert_eq!(
        fs::read(dir.join(".claude/settings.json")).unwrap(),
        fixture("demo/project/.claude/settings.json"),
        "the committed settings are not touched"
    );
    for needle in [
        "hook_execution.log",
        "ctxopt-session-start SessionStart ok",
        "ctxopt-pre-tool-use PreToolUse ok",
        "ctxopt-post-tool-use PostToolUseFailure ok",
        "metrics.jsonl",
    ] {
        assert!(
            printed.contains(needle),
            "{needle} missing from:\n{printed}"
        );
    }
    let records = support::read_records(&dir.join(".claude/hooks/data/metrics.jsonl"));
    let sessions = support::of_type(&records, "session_start").len();
    let tools = support::of_type(&records, "tool_use").len();
    let runs = support::of_type(&records, "hook_execution").len();
    assert_eq!((sessions, tools, runs), (1, 5, 11));
    for (count, ty) in [
        (1, "session_start"),
        (5, "tool_use"),
        (11, "hook_execution"),
    ] {
        let line = format!("{count:>5}  {ty}");
        assert!(printed.contains(&line), "{line:?} missing from:\n{printed}");
    }
    let log = fs::read_to_string(dir.join(".claude/hooks/data/hook_execution.log")).unwrap();
    assert_eq!(log.lines().count(), 11);
    dir
}

#[test]
fn script_demo_replays_the_session_and_prints_the_records() {
    let env = TestEnv::new();
    let out = run_script(&env, &[]);
    let dir = assert_demo_recorded(&env, &out);
    let uninstall = env
        .command(&env.home.join(".local/bin/ctxopt"))
        .args(["uninstall", "--project", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ok(&uninstall);
    assert!(!dir.join(".claude/settings.local.json").exists());
}

#[test]
fn script_demo_without_jq_prints_plain_counts() {
    let env = TestEnv::new();
    let path_dir = env.tmp.path().join("path");
    fs::create_dir_all(&path_dir).unwrap();
    let tools = [
        "bash", "cat", "cp", "dirname", "install", "mktemp", "sed", "awk", "sort", "wc", "tr", "rm",
    ];
    for tool in tools {
        let found = std::env::var_os("PATH")
            .and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(tool))
                    .find(|p| p.is_file())
            })
            .unwrap_or_else(|| panic!("{tool} not on PATH"));
        std::os::unix::fs::symlink(found, path_dir.join(tool)).unwrap();
    }
    let tmpdir = env.tmp.path().join("tmp");
    fs::create_dir_all(&tmpdir).unwrap();
    let out = script_command(&env)
        .env("PATH", &path_dir)
        .env("CTXOPT_SKIP_BUILD", "1")
        .env("CTXOPT_BIN_DIR", bin_dir())
        .env("TMPDIR", &tmpdir)
        .arg(script())
        .output()
        .unwrap();
    assert_demo_recorded(&env, &out);
    assert!(stdout(&out).contains("install jq"), "{}", stdout(&out));
}

/// The runbook's entry points: install writes `scripts/*.sh` calling ctxopt (a project's own
/// script of the same name is left alone), they run, and uninstall removes exactly its own.
#[test]
fn runbook_scripts_are_written_run_and_removed() {
    let env = TestEnv::new();
    let scripts = env.project.join("scripts");
    fs::create_dir_all(&scripts).unwrap();
    fs::write(
        scripts.join("backup.sh"),
        "#!/bin/sh\necho our own backup\n",
    )
    .unwrap();
    assert_ok(&ctxopt(
        &env,
        &["install", "--bin-dir", bin_dir().to_str().unwrap()],
    ));
    let monitor = scripts.join("monitor_canary.sh");
    assert_eq!(mode(&monitor) & 0o111, 0o111, "executable");
    assert!(
        fs::read_to_string(&monitor)
            .unwrap()
            .contains("# ctxopt-runbook-script")
    );
    assert_eq!(
        fs::read_to_string(scripts.join("backup.sh")).unwrap(),
        "#!/bin/sh\necho our own backup\n",
        "not ours: left alone"
    );
    let out = std::process::Command::new("sh")
        .arg(&monitor)
        .env("HOME", &env.home)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout(&out).starts_with("no canary running"),
        "{}",
        stdout(&out)
    );
    assert_ok(&ctxopt(&env, &["uninstall"]));
    assert!(!monitor.exists());
    assert!(scripts.join("backup.sh").exists());
}

// ---- install.sh's build choice, with stand-ins for cargo, rustc and rustup --------------------

/// A PATH directory whose `cargo`, `rustc` and `rustup` log their calls to `calls.log` (cargo
/// also its `CC_*`, `RUSTFLAGS` and target) and act as told by files beside them: `rustlib/<T>`
/// with a `libstd-*.rlib` is an installed target, `rustup-ok` lets `rustup target add` install
/// one, `fail-<T>` makes the build for `<T>` fail. A build that succeeds puts copies of the test
/// build's binaries where cargo would.
fn fake_toolchain(env: &TestEnv) -> PathBuf {
    let dir = env.tmp.path().join("fake-tools");
    fs::create_dir_all(&dir).unwrap();
    let bins = bin_dir();
    let script = |name: &str, body: &str| {
        let path = dir.join(name);
        fs::write(
            &path,
            format!("#!/usr/bin/env bash\nFAKE={}\n{body}", dir.display()),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    };
    script(
        "rustc",
        r#"echo "rustc $*" >>"$FAKE/calls.log"
[[ "$1 $2" == "--print target-libdir" && "$3" == --target ]] || exit 1
echo "$FAKE/rustlib/$4/lib"
"#,
    );
    script(
        "rustup",
        r#"echo "rustup $*" >>"$FAKE/calls.log"
[[ -f "$FAKE/rustup-ok" && "$1 $2" == "target add" ]] || exit 1
mkdir -p "$FAKE/rustlib/$3/lib" && touch "$FAKE/rustlib/$3/lib/libstd-fake.rlib"
"#,
    );
    script(
        "cargo",
        &format!(
            r#"target=""
while (($#)); do [[ "$1" == --target ]] && target="$2"; shift; done
cc=$(env | grep '^CC_' | sort | tr '\n' ' ')
echo "cargo build target=${{target:-host}} cc=[$cc] rustflags=[$RUSTFLAGS]" >>"$FAKE/calls.log"
[[ -n "$target" && -f "$FAKE/fail-$target" ]] && exit 101
out="$CARGO_TARGET_DIR/${{target:+$target/}}release"
mkdir -p "$out"
for b in ctxopt ctxopt-session-start ctxopt-pre-tool-use ctxopt-post-tool-use ctxopt-run; do
    cp "{bins}/$b" "$out/$b"
done
"#,
            bins = bins.display()
        ),
    );
    dir
}

/// `install.sh --prefix <tmp>/prefix PROJECT` with the fake toolchain first on PATH; returns
/// the output and the calls the fake tools logged.
fn run_build(env: &TestEnv, tools: &Path, extra_env: &[(&str, &str)]) -> (Output, String) {
    let tmpdir = env.tmp.path().join("tmp");
    fs::create_dir_all(&tmpdir).unwrap();
    let path = format!("{}:{}", tools.display(), std::env::var("PATH").unwrap());
    let mut cmd = script_command(env);
    cmd.env("PATH", path)
        .env("CARGO_TARGET_DIR", env.tmp.path().join("target"))
        .env("TMPDIR", &tmpdir)
        .env_remove("CTXOPT_SKIP_BUILD")
        .env_remove("CTXOPT_LIBC")
        .env_remove("RUSTFLAGS");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let prefix = env.tmp.path().join("prefix");
    let out = cmd
        .arg(script())
        .arg("--prefix")
        .arg(&prefix)
        .arg(&env.project)
        .output()
        .unwrap();
    let calls = fs::read_to_string(tools.join("calls.log")).unwrap_or_default();
    (out, calls)
}

fn triples() -> (String, String) {
    let arch = std::env::consts::ARCH;
    (
        format!("{arch}-unknown-linux-musl"),
        format!("{arch}-unknown-linux-gnu"),
    )
}

#[cfg(target_os = "linux")]
#[test]
fn script_builds_static_musl_when_the_target_is_installed() {
    let env = TestEnv::new();
    let tools = fake_toolchain(&env);
    let (musl, _) = triples();
    fs::create_dir_all(tools.join(format!("rustlib/{musl}/lib"))).unwrap();
    fs::write(tools.join(format!("rustlib/{musl}/lib/libstd-x.rlib")), "").unwrap();
    let (out, calls) = run_build(&env, &tools, &[]);
    assert_ok(&out);
    let builds: Vec<&str> = calls.lines().filter(|l| l.starts_with("cargo")).collect();
    assert_eq!(builds.len(), 1, "{calls}");
    assert!(builds[0].contains(&format!("target={musl} ")), "{calls}");
    assert!(
        builds[0].contains("rustflags=[-C relocation-model=static]"),
        "{calls}"
    );
    let cc_var = format!("CC_{}=", musl.replace('-', "_"));
    assert!(
        builds[0].contains(&cc_var),
        "a C compiler for ring: {calls}"
    );
    assert!(
        !calls.contains("rustup"),
        "installed: no rustup call: {calls}"
    );
    assert!(env.tmp.path().join("prefix/ctxopt-pre-tool-use").is_file());
}

#[cfg(target_os = "linux")]
#[test]
fn script_adds_the_musl_target_with_rustup_when_missing() {
    let env = TestEnv::new();
    let tools = fake_toolchain(&env);
    fs::write(tools.join("rustup-ok"), "").unwrap();
    let (musl, _) = triples();
    let (out, calls) = run_build(&env, &tools, &[]);
    assert_ok(&out);
    assert!(
        calls.contains(&format!("rustup target add {musl}")),
        "{calls}"
    );
    assert!(
        calls.contains(&format!("cargo build target={musl} ")),
        "{calls}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn script_falls_back_to_static_glibc_then_to_a_plain_build() {
    let env = TestEnv::new();
    let tools = fake_toolchain(&env);
    fs::write(tools.join("rustup-ok"), "").unwrap();
    let (musl, gnu) = triples();
    fs::write(tools.join(format!("fail-{musl}")), "").unwrap();
    let (out, calls) = run_build(&env, &tools, &[]);
    assert_ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no static musl build"),
        "{out:?}"
    );
    let builds: Vec<&str> = calls.lines().filter(|l| l.starts_with("cargo")).collect();
    assert_eq!(builds.len(), 2, "{calls}");
    assert!(builds[1].contains(&format!("target={gnu} ")), "{calls}");
    assert!(
        builds[1].contains("-C target-feature=+crt-static -C relocation-model=static"),
        "{calls}"
    );

    // Both static builds fail: the plain one.
    let env = TestEnv::new();
    let tools = fake_toolchain(&env);
    fs::write(tools.join(format!("fail-{musl}")), "").unwrap();
    fs::write(tools.join(format!("fail-{gnu}")), "").unwrap();
    let (out, calls) = run_build(&env, &tools, &[]);
    assert_ok(&out);
    let builds: Vec<&str> = calls.lines().filter(|l| l.starts_with("cargo")).collect();
    assert_eq!(
        builds.last().copied(),
        Some("cargo build target=host cc=[] rustflags=[]"),
        "{calls}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn script_skips_musl_with_ctxopt_libc_gnu() {
    let env = TestEnv::new();
    let tools = fake_toolchain(&env);
    fs::write(tools.join("rustup-ok"), "").unwrap();
    let (_, gnu) = triples();
    let (out, calls) = run_build(&env, &tools, &[("CTXOPT_LIBC", "gnu")]);
    assert_ok(&out);
    assert!(!calls.contains("musl"), "{calls}");
    let builds: Vec<&str> = calls.lines().filter(|l| l.starts_with("cargo")).collect();
    assert_eq!(builds.len(), 1, "{calls}");
    assert!(builds[0].contains(&format!("target={gnu} ")), "{calls}");
}
