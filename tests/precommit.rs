//! The git pre-commit hook, black-box: a real git repository in a temporary directory (its own
//! HOME, no system git config), `ctxopt install` putting the hook in, and real `git commit`s
//! that it refuses or lets through. Also the pre-commit framework's `.pre-commit-hooks.yaml`.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking, like the #[test] functions they serve"
)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ctxopt::precommit::{CHAINED_NAME, MARKER, staged_kind};
use serde_json::Value;
use support::{TestEnv, bin, repo_root};

const GOOD: &str = "{\n  \"hooks\": {}\n}\n";
/// A trailing comma: E003 at line 2, column 14.
const BROKEN: &str = "{\n  \"hooks\": {},\n}\n";

/// A command with the test's HOME, no system git config, and git's discovery stopped at the
/// temporary directory.
fn command(env: &TestEnv, program: &Path) -> Command {
    let mut cmd = env.command(program);
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CEILING_DIRECTORIES", env.tmp.path())
        .env_remove("CLAUDE_PROJECT_DIR");
    cmd
}

fn git_in(env: &TestEnv, dir: &Path, args: &[&str]) -> Output {
    command(env, Path::new("git"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn git(env: &TestEnv, args: &[&str]) -> Output {
    git_in(env, &env.project, args)
}

fn git_ok(env: &TestEnv, args: &[&str]) -> String {
    let out = git(env, args);
    assert_ok(&out);
    stdout(&out)
}

/// A fresh repository in the project directory, with an identity and no signing.
fn repo() -> TestEnv {
    let env = TestEnv::new();
    git_ok(&env, &["init", "-q", "-b", "main"]);
    git_ok(&env, &["config", "user.name", "Test"]);
    git_ok(&env, &["config", "user.email", "test@example.com"]);
    git_ok(&env, &["config", "commit.gpgsign", "false"]);
    env
}

fn ctxopt_in(env: &TestEnv, dir: &Path, args: &[&str]) -> Output {
    command(env, &bin("ctxopt"))
        .current_dir(dir)
        .args(args)
        .arg("--project")
        .arg(dir)
        .output()
        .unwrap()
}

fn ctxopt(env: &TestEnv, args: &[&str]) -> Output {
    ctxopt_in(env, &env.project, args)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stdout and stderr together: git shows a hook's output on stderr, ctxopt's on stdout.
fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}", all_output(out));
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn settings(dir: &Path) -> PathBuf {
    dir.join(".claude/settings.json")
}

fn hooks_dir(env: &TestEnv) -> PathBuf {
    env.project.join(".git/hooks")
}

/// The hooks directory's files, without git's samples.
fn hook_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".sample"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn commit_count(env: &TestEnv) -> usize {
    let out = git(env, &["rev-list", "--count", "HEAD"]);
    if out.status.success() {
        stdout(&out).trim().parse().unwrap()
    } else {
        0
    }
}

fn install(env: &TestEnv) -> Output {
    let out = ctxopt(env, &["install"]);
    assert_ok(&out);
    out
}

/// A first commit, so later tests have a HEAD.
fn initial_commit(env: &TestEnv) {
    write(&env.project.join("README"), "hi\n");
    git_ok(env, &["add", "README"]);
    git_ok(env, &["commit", "-q", "-m", "initial"]);
}

fn manifest(env: &TestEnv) -> Value {
    serde_json::from_slice(&fs::read(env.data().join("install-manifest.json")).unwrap()).unwrap()
}

#[test]
fn install_puts_the_hook_in_the_repository_and_twice_is_once() {
    let env = repo();
    let out = install(&env);
    assert!(
        stdout(&out).contains("added the git pre-commit hook"),
        "{}",
        stdout(&out)
    );
    let hook = hooks_dir(&env).join("pre-commit");
    let script = fs::read_to_string(&hook).unwrap();
    assert!(script.starts_with("#!/bin/sh\n"));
    assert!(script.contains(MARKER));
    assert!(script.contains(&format!("ctxopt={}\n", bin("ctxopt").display())));
    assert_eq!(
        fs::metadata(&hook).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(
        manifest(&env)["precommit"]["hook"],
        hook.to_str().unwrap(),
        "recorded in the install manifest"
    );

    let again = install(&env);
    assert!(
        stdout(&again).contains("already installed")
            && stdout(&again).contains("git pre-commit hook already in place"),
        "{}",
        stdout(&again)
    );
    assert_eq!(hook_files(&hooks_dir(&env)), ["pre-commit"]);
    assert_eq!(fs::read_to_string(&hook).unwrap(), script);

    let out = ctxopt(&env, &["uninstall"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("removed the git pre-commit hook"),
        "{}",
        stdout(&out)
    );
    assert!(hook_files(&hooks_dir(&env)).is_empty());
}

#[test]
fn a_broken_staged_settings_file_is_refused_while_the_working_tree_copy_is_fine() {
    let env = repo();
    install(&env);
    write(&settings(&env.project), BROKEN);
    git_ok(&env, &["add", ".claude/settings.json"]);
    write(&settings(&env.project), GOOD);

    let out = git(&env, &["commit", "-m", "broken settings"]);
    assert_ne!(out.status.code(), Some(0), "{}", all_output(&out));
    let text = all_output(&out);
    assert!(
        text.contains(".claude/settings.json:2:14: error[E003]"),
        "{text}"
    );
    assert!(text.contains("commit refused"), "{text}");
    assert!(text.contains("git commit --no-verify"), "{text}");
    assert_eq!(commit_count(&env), 0, "nothing was committed");
}

#[test]
fn a_good_staged_settings_file_commits_while_the_working_tree_copy_is_broken() {
    let env = repo();
    install(&env);
    write(&settings(&env.project), GOOD);
    git_ok(&env, &["add", ".claude/settings.json"]);
    write(&settings(&env.project), BROKEN);

    let out = git(&env, &["commit", "-m", "good settings"]);
    assert_ok(&out);
    assert!(
        all_output(&out).contains("1 staged config file checked: no problems"),
        "{}",
        all_output(&out)
    );
    assert_eq!(commit_count(&env), 1);
    assert_eq!(
        git_ok(&env, &["show", "HEAD:.claude/settings.json"]),
        GOOD,
        "the staged copy was committed"
    );
}

#[test]
fn commit_all_checks_the_files_it_commits() {
    let env = repo();
    install(&env);
    write(&settings(&env.project), GOOD);
    git_ok(&env, &["add", ".claude/settings.json"]);
    git_ok(&env, &["commit", "-q", "-m", "good"]);
    write(&settings(&env.project), BROKEN);

    // `git commit -a` stages into a temporary index (GIT_INDEX_FILE) the hook must read.
    let out = git(&env, &["commit", "-a", "-m", "now broken"]);
    assert_ne!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("error[E003]"),
        "{}",
        all_output(&out)
    );
    assert_eq!(commit_count(&env), 1);
}

#[test]
fn an_existing_hook_is_chained_and_restored_on_uninstall() {
    let env = repo();
    let marker = env.tmp.path().join("existing-hook-ran");
    let existing = format!(
        "#!/bin/sh\necho \"ran with $# args\" >> '{}'\n",
        marker.display()
    );
    let hook = hooks_dir(&env).join("pre-commit");
    write(&hook, &existing);
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();

    let out = install(&env);
    assert!(
        stdout(&out).contains("moved the existing pre-commit hook"),
        "{}",
        stdout(&out)
    );
    let chained = hooks_dir(&env).join(CHAINED_NAME);
    assert_eq!(fs::read_to_string(&chained).unwrap(), existing);
    assert!(fs::read_to_string(&hook).unwrap().contains(MARKER));
    assert_eq!(
        manifest(&env)["precommit"]["chained"],
        chained.to_str().unwrap()
    );

    write(&settings(&env.project), GOOD);
    git_ok(&env, &["add", ".claude/settings.json"]);
    let out = git(&env, &["commit", "-m", "good"]);
    assert_ok(&out);
    assert_eq!(
        fs::read_to_string(&marker).unwrap(),
        "ran with 0 args\n",
        "both hooks ran"
    );

    write(&settings(&env.project), BROKEN);
    git_ok(&env, &["add", ".claude/settings.json"]);
    let out = git(&env, &["commit", "-m", "broken"]);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(
        fs::read_to_string(&marker).unwrap(),
        "ran with 0 args\n",
        "a refused check does not run the chained hook"
    );

    let again = install(&env);
    assert!(
        stdout(&again).contains("already in place"),
        "{}",
        stdout(&again)
    );
    assert_eq!(
        fs::read_to_string(&chained).unwrap(),
        existing,
        "not chained twice"
    );

    let out = ctxopt(&env, &["uninstall"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("back to"),
        "the chained hook is moved back: {}",
        stdout(&out)
    );
    assert_eq!(fs::read_to_string(&hook).unwrap(), existing);
    assert_eq!(
        fs::metadata(&hook).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(hook_files(&hooks_dir(&env)), ["pre-commit"]);
}

#[test]
fn a_foreign_hook_that_replaced_ours_is_left_alone_on_uninstall() {
    let env = repo();
    install(&env);
    let hook = hooks_dir(&env).join("pre-commit");
    let theirs = "#!/bin/sh\nexit 0\n";
    write(&hook, theirs);
    let out = ctxopt(&env, &["uninstall"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("no longer ctxopt's"),
        "{}",
        stdout(&out)
    );
    assert_eq!(fs::read_to_string(&hook).unwrap(), theirs);
}

#[test]
fn core_hooks_path_is_respected() {
    let env = repo();
    git_ok(&env, &["config", "core.hooksPath", "githooks"]);
    install(&env);
    assert!(
        fs::read_to_string(env.project.join("githooks/pre-commit"))
            .unwrap()
            .contains(MARKER)
    );
    assert!(hook_files(&hooks_dir(&env)).is_empty());

    write(&settings(&env.project), BROKEN);
    git_ok(&env, &["add", ".claude/settings.json"]);
    let out = git(&env, &["commit", "-m", "broken"]);
    assert_ne!(out.status.code(), Some(0), "{}", all_output(&out));

    assert_ok(&ctxopt(&env, &["uninstall"]));
    assert!(hook_files(&env.project.join("githooks")).is_empty());
}

#[test]
fn a_linked_worktree_is_checked_by_the_same_hook() {
    let env = repo();
    initial_commit(&env);
    install(&env);
    let worktree = env.tmp.path().join("worktree");
    git_ok(
        &env,
        &[
            "worktree",
            "add",
            "-q",
            worktree.to_str().unwrap(),
            "-b",
            "side",
        ],
    );
    write(&settings(&worktree), BROKEN);
    let add = git_in(&env, &worktree, &["add", ".claude/settings.json"]);
    assert_ok(&add);
    let out = git_in(&env, &worktree, &["commit", "-m", "broken"]);
    assert_ne!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(
        all_output(&out).contains(".claude/settings.json:2:14: error[E003]"),
        "{}",
        all_output(&out)
    );
}

#[test]
fn only_claude_config_files_are_checked() {
    let env = repo();
    install(&env);
    // VS Code's settings allow comments; they are not Claude Code's and must not block.
    write(
        &env.project.join(".vscode/settings.json"),
        "{ // comment\n}\n",
    );
    write(&env.project.join("src/main.rs"), "fn main() {}\n");
    git_ok(&env, &["add", ".vscode", "src"]);
    let out = git(&env, &["commit", "-m", "no config"]);
    assert_ok(&out);
    assert!(
        all_output(&out).contains("no staged config files to check"),
        "{}",
        all_output(&out)
    );
}

#[test]
fn a_project_outside_git_installs_without_the_hook() {
    let env = TestEnv::new();
    let out = ctxopt(&env, &["install"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("note: no git pre-commit hook: the project is not in a git repository"),
        "{text}"
    );
    assert!(env.project.join(".claude/settings.local.json").exists());
    assert!(manifest(&env).get("precommit").is_none());

    let out = ctxopt(&env, &["install", "--json"]);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["precommit"]["action"], "skipped");

    assert_ok(&ctxopt(&env, &["uninstall"]));
    assert!(!env.project.join(".claude/settings.local.json").exists());
}

#[test]
fn dry_run_writes_no_hook() {
    let env = repo();
    let out = ctxopt(&env, &["install", "--dry-run"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("would add the git pre-commit hook"),
        "{}",
        stdout(&out)
    );
    assert!(hook_files(&hooks_dir(&env)).is_empty());
}

/// A directory `name` in the temporary dir with symlinks to the four binaries.
fn linked_bin_dir(env: &TestEnv, name: &str) -> PathBuf {
    let bins = env.tmp.path().join(name);
    fs::create_dir_all(&bins).unwrap();
    for program in [
        "ctxopt",
        "ctxopt-session-start",
        "ctxopt-pre-tool-use",
        "ctxopt-post-tool-use",
    ] {
        std::os::unix::fs::symlink(bin(program), bins.join(program)).unwrap();
    }
    bins
}

#[test]
fn moving_the_binaries_updates_the_hook_in_place() {
    let env = repo();
    let old = linked_bin_dir(&env, "old-bin");
    let new = linked_bin_dir(&env, "new-bin");
    assert_ok(&ctxopt(
        &env,
        &["install", "--bin-dir", old.to_str().unwrap()],
    ));
    let out = ctxopt(&env, &["install", "--bin-dir", new.to_str().unwrap()]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("updated the git pre-commit hook"),
        "{}",
        stdout(&out)
    );
    let script = fs::read_to_string(hooks_dir(&env).join("pre-commit")).unwrap();
    assert!(
        script.contains(&format!("ctxopt={}\n", new.join("ctxopt").display())),
        "{script}"
    );
    assert_eq!(
        hook_files(&hooks_dir(&env)),
        ["pre-commit"],
        "ours is not chained to ours"
    );
}

#[test]
fn a_missing_ctxopt_refuses_the_commit_and_says_how_to_proceed() {
    let env = repo();
    let bins = linked_bin_dir(&env, "bin");
    let out = ctxopt(&env, &["install", "--bin-dir", bins.to_str().unwrap()]);
    assert_ok(&out);
    fs::remove_file(bins.join("ctxopt")).unwrap();

    write(&settings(&env.project), GOOD);
    git_ok(&env, &["add", ".claude/settings.json"]);
    let out = git(&env, &["commit", "-m", "x"]);
    assert_ne!(out.status.code(), Some(0));
    let text = all_output(&out);
    assert!(text.contains("missing or not executable"), "{text}");
    assert!(text.contains("rm '"), "{text}");
    assert!(text.contains("git commit --no-verify"), "{text}");

    assert_ok(&git(&env, &["commit", "--no-verify", "-m", "x"]));
}

#[test]
fn a_large_staged_blob_is_a_finding_without_a_hang() {
    let env = repo();
    install(&env);
    let big = format!("{{\"a\": \"{}\"}}", "x".repeat(50 * 1024 * 1024));
    write(&settings(&env.project), &big);
    git_ok(&env, &["add", ".claude/settings.json"]);
    let started = std::time::Instant::now();
    let out = ctxopt(&env, &["validate", "--staged"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert!(
        stdout(&out).contains(".claude/settings.json: error[E008]: the staged file is"),
        "{}",
        stdout(&out)
    );
}

/// `.pre-commit-hooks.yaml` runs the same check, and its `files` regex names the same files as
/// the hook's own filter.
#[test]
fn the_pre_commit_framework_manifest_matches_the_hook() {
    let text = fs::read_to_string(repo_root().join(".pre-commit-hooks.yaml")).unwrap();
    for needle in [
        "- id: ctxopt-validate\n",
        "  entry: ctxopt validate --staged --project .\n",
        "  language: system\n",
        "  pass_filenames: false\n",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    let files = text
        .lines()
        .find_map(|l| l.strip_prefix("  files: '"))
        .and_then(|l| l.strip_suffix('\''))
        .unwrap();
    let paths = [
        ".claude/settings.json",
        "sub/.claude/settings.local.json",
        ".claude/canary.json",
        ".claude/ctxopt.json",
        ".mcp.json",
        "a/.mcp.json",
        ".claude.json",
        "etc/managed-settings.json",
        "etc/managed-settings.d/10-x.json",
        ".claude/skills/x/SKILL.md",
        ".claude/skills/x/skill.json",
        "plugins/p/skills/y/SKILL.md",
        ".vscode/settings.json",
        "settings.json",
        "canary.json",
        "docs/SKILL.md",
        "README.md",
        "x.mcp.json",
        ".claude/settings.json.backup",
    ];
    let input = paths.join("\n") + "\n";
    let env = TestEnv::new();
    let out = env.run_with(
        {
            let mut cmd = env.command(Path::new("grep"));
            cmd.args(["-E", files]);
            cmd
        },
        input.as_bytes(),
    );
    let matched: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    let expected: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|p| staged_kind(p).is_some())
        .collect();
    assert_eq!(matched, expected);
    assert!(expected.len() >= 12, "{expected:?}");

    // As the framework runs it: from the repository root, no file names.
    let env = repo();
    write(&settings(&env.project), BROKEN);
    git_ok(&env, &["add", ".claude/settings.json"]);
    let out = command(&env, &bin("ctxopt"))
        .args(["validate", "--staged", "--project", "."])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
}

// ---- the git exclude block ----------------------------------------------------------------

/// The repository's local exclude file (`git rev-parse --git-path info/exclude`).
fn exclude_file(env: &TestEnv) -> PathBuf {
    env.project.join(".git/info/exclude")
}

/// `git status --porcelain -z --ignored --untracked-files=all`, one entry per file (paths
/// unquoted), sorted.
fn status_lines(env: &TestEnv) -> Vec<String> {
    let text = git_ok(
        env,
        &[
            "status",
            "--porcelain",
            "-z",
            "--ignored",
            "--untracked-files=all",
        ],
    );
    let mut lines: Vec<String> = text
        .split('\0')
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// The files ctxopt and Claude Code write beside config files that must never be committed.
const PRIVATE_FILES: [&str; 9] = [
    ".claude/settings.json.backup",
    ".claude/settings.local.json.backup",
    ".claude/canary.json.backup",
    ".claude/ctxopt.json.backup",
    ".claude/settings.json.broken-20250101T000000Z",
    ".claude/settings.local.json.broken-20250101T000000Z",
    ".mcp.json.backup",
    ".mcp.json.broken-20250101T000000Z",
    ".claude/hooks/data/state/config-cache.json",
];

#[test]
fn install_keeps_the_machine_specific_files_out_of_git() {
    let env = repo();
    let template = fs::read(exclude_file(&env)).unwrap();
    write(&env.project.join("README"), "hi\n");
    write(&settings(&env.project), GOOD);
    write(&env.project.join(".mcp.json"), "{\"mcpServers\": {}}\n");
    for file in PRIVATE_FILES {
        write(&env.project.join(file), "{}\n");
    }
    let out = install(&env);
    assert!(
        stdout(&out).contains(&format!(
            "added ctxopt's block to {}",
            fs::canonicalize(exclude_file(&env)).unwrap().display()
        )),
        "{}",
        stdout(&out)
    );

    let block = concat!(
        "# >>> ctxopt (managed by `ctxopt install`; removed by `ctxopt uninstall`)\n",
        "/.claude/settings.local.json\n",
        "/.claude/hooks/data/\n",
        "/.claude/*.backup\n",
        "/.claude/*.broken-*\n",
        "/.mcp.json.backup\n",
        "/.mcp.json.broken-*\n",
        "/.kiro/specs/context-optimization/backup/\n",
        "/scripts/backup.sh\n",
        "/scripts/rollback.sh\n",
        "/scripts/auto_rollback.sh\n",
        "/scripts/restore_from_backup.sh\n",
        "/scripts/test_backup_restore.sh\n",
        "/scripts/monitor_canary.sh\n",
        "# <<< ctxopt\n",
    );
    let after = fs::read(exclude_file(&env)).unwrap();
    assert_eq!(after, [&template[..], block.as_bytes()].concat());

    let lines = status_lines(&env);
    let untracked: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("?? ")).collect();
    assert_eq!(untracked, [".claude/settings.json", ".mcp.json", "README"]);
    let ignored: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("!! ")).collect();
    for file in PRIVATE_FILES.iter().chain(&[
        ".claude/settings.local.json",
        ".claude/hooks/data/install-manifest.json",
    ]) {
        assert!(ignored.contains(file), "{file} not ignored: {lines:?}");
    }

    git_ok(&env, &["add", "-A"]);
    let staged = git_ok(&env, &["diff", "--cached", "--name-only"]);
    assert_eq!(staged, ".claude/settings.json\n.mcp.json\nREADME\n");
    let out = git(&env, &["commit", "-m", "everything"]);
    assert_ok(&out);
    let committed = git_ok(&env, &["ls-files"]);
    assert_eq!(committed, ".claude/settings.json\n.mcp.json\nREADME\n");

    let recorded = manifest(&env)["git_exclude"].clone();
    assert_eq!(
        recorded["file"],
        fs::canonicalize(exclude_file(&env))
            .unwrap()
            .to_str()
            .unwrap()
    );
    assert_eq!(recorded["file_created"], false);
}

#[test]
fn uninstall_restores_the_exclude_file_byte_for_byte() {
    // git's template; a last line without a newline; no exclude file or info/ at all.
    for case in ["template", "no final newline", "no file"] {
        let env = repo();
        let path = exclude_file(&env);
        match case {
            "no final newline" => fs::write(&path, "# mine\n*.log").unwrap(),
            "no file" => fs::remove_dir_all(path.parent().unwrap()).unwrap(),
            _ => fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap(),
        }
        let before = fs::read(&path).ok();
        install(&env);
        let installed = fs::read_to_string(&path).unwrap();
        assert!(
            installed.ends_with("/scripts/monitor_canary.sh\n# <<< ctxopt\n"),
            "{case}: {installed}"
        );
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode,
            if case == "template" { 0o600 } else { 0o644 },
            "{case}"
        );
        assert!(git_ok(&env, &["check-ignore", ".claude/settings.local.json"]).contains("local"));

        let out = ctxopt(&env, &["uninstall"]);
        assert_ok(&out);
        let expected = if case == "no file" {
            "deleted "
        } else {
            "removed ctxopt's block from "
        };
        assert!(stdout(&out).contains(expected), "{case}: {}", stdout(&out));
        assert_eq!(fs::read(&path).ok(), before, "{case}");
        if case == "no file" {
            assert!(!path.parent().unwrap().exists(), "info/ was ours");
        } else {
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode,
                if case == "template" { 0o600 } else { 0o644 },
                "{case}"
            );
        }
    }
}

#[test]
fn a_second_install_leaves_the_exclude_file_untouched() {
    use std::os::unix::fs::MetadataExt;
    let env = repo();
    install(&env);
    let path = exclude_file(&env);
    let bytes = fs::read(&path).unwrap();
    let inode = fs::metadata(&path).unwrap().ino();
    let manifest_bytes = fs::read(env.data().join("install-manifest.json")).unwrap();

    let out = install(&env);
    assert!(
        stdout(&out).contains("already installed")
            && stdout(&out).contains("git exclude block already in place"),
        "{}",
        stdout(&out)
    );
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(fs::metadata(&path).unwrap().ino(), inode, "not rewritten");
    assert_eq!(
        fs::read(env.data().join("install-manifest.json")).unwrap(),
        manifest_bytes
    );
    let summary: Value =
        serde_json::from_slice(&ctxopt(&env, &["install", "--json"]).stdout).unwrap();
    assert_eq!(summary["git_exclude"]["action"], "present");
}

#[test]
fn a_project_in_a_subdirectory_gets_patterns_under_its_path() {
    let env = repo();
    let original = fs::read(exclude_file(&env)).unwrap();
    let project = env.project.join("apps/web app");
    fs::create_dir_all(&project).unwrap();
    write(&project.join("src.txt"), "x\n");
    write(&project.join(".mcp.json.backup"), "{}\n");
    // The same names at the top level are not the project's and stay visible.
    write(&env.project.join(".mcp.json.backup"), "{}\n");
    let out = ctxopt_in(&env, &project, &["install"]);
    assert_ok(&out);
    let text = fs::read_to_string(exclude_file(&env)).unwrap();
    assert!(
        text.contains(
            "\n/apps/web app/.claude/settings.local.json\n/apps/web app/.claude/hooks/data/\n"
        ),
        "{text}"
    );
    let lines = status_lines(&env);
    assert!(
        lines.contains(&"!! apps/web app/.claude/settings.local.json".to_owned())
            && lines.contains(&"!! apps/web app/.mcp.json.backup".to_owned())
            && lines.contains(&"?? .mcp.json.backup".to_owned())
            && lines.contains(&"?? apps/web app/src.txt".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("!! ") || !l.contains("/.claude/")),
        "nothing under .claude/ is left to commit: {lines:?}"
    );

    assert_ok(&ctxopt_in(&env, &project, &["uninstall"]));
    assert_eq!(fs::read(exclude_file(&env)).unwrap(), original);
}

#[test]
fn a_project_outside_git_gets_no_exclude_block() {
    let env = TestEnv::new();
    let out = ctxopt(&env, &["install"]);
    assert_ok(&out);
    assert!(
        stdout(&out)
            .contains("note: no git exclude entries: the project is not in a git repository"),
        "{}",
        stdout(&out)
    );
    assert!(manifest(&env).get("git_exclude").is_none());
    let summary: Value =
        serde_json::from_slice(&ctxopt(&env, &["install", "--json"]).stdout).unwrap();
    assert_eq!(summary["git_exclude"]["action"], "skipped");
    assert!(!env.project.join(".git").exists());

    let out = ctxopt(&env, &["uninstall", "--json"]);
    assert_ok(&out);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["git_exclude"], Value::Null);
}

#[test]
fn dry_run_writes_no_exclude_block() {
    let env = repo();
    let original = fs::read(exclude_file(&env)).unwrap();
    let out = ctxopt(&env, &["install", "--dry-run"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("would add ctxopt's block to "),
        "{}",
        stdout(&out)
    );
    assert_eq!(fs::read(exclude_file(&env)).unwrap(), original);

    install(&env);
    let installed = fs::read(exclude_file(&env)).unwrap();
    let out = ctxopt(&env, &["uninstall", "--dry-run"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("would remove ctxopt's block from "),
        "{}",
        stdout(&out)
    );
    assert_eq!(fs::read(exclude_file(&env)).unwrap(), installed);
}

#[test]
fn the_block_is_updated_in_place_and_the_users_lines_are_kept() {
    let env = repo();
    let path = exclude_file(&env);
    fs::write(&path, "before\n").unwrap();
    install(&env);
    let mut text = fs::read_to_string(&path).unwrap();
    text = text.replace("/.mcp.json.backup\n", "");
    text.push_str("after\n");
    fs::write(&path, &text).unwrap();

    let out = ctxopt(&env, &["install", "--json"]);
    assert_ok(&out);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["git_exclude"]["action"], "updated");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("before\n# >>> ctxopt"), "{text}");
    assert!(text.ends_with("# <<< ctxopt\nafter\n"), "{text}");
    assert!(text.contains("\n/.mcp.json.backup\n"), "{text}");

    let out = ctxopt(&env, &["uninstall", "--json"]);
    assert_ok(&out);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["git_exclude"]["removal"], "removed");
    assert_eq!(fs::read_to_string(&path).unwrap(), "before\nafter\n");
}

/// A manifest written before the block existed (no `git_exclude`) still loads, and the next
/// install adds the block and records it.
#[test]
fn an_install_from_before_the_exclude_block_is_upgraded() {
    let env = repo();
    let original = fs::read(exclude_file(&env)).unwrap();
    install(&env);
    let manifest_path = env.data().join("install-manifest.json");
    let mut old = manifest(&env);
    old.as_object_mut().unwrap().remove("git_exclude");
    fs::write(&manifest_path, serde_json::to_vec_pretty(&old).unwrap()).unwrap();
    fs::write(exclude_file(&env), &original).unwrap();

    let out = install(&env);
    assert!(
        stdout(&out).contains("added ctxopt's block to "),
        "{}",
        stdout(&out)
    );
    assert!(manifest(&env)["git_exclude"]["file"].is_string());
    assert_ok(&ctxopt(&env, &["uninstall"]));
    assert_eq!(fs::read(exclude_file(&env)).unwrap(), original);
}

/// A linked worktree shares the main repository's `info/exclude`: the block goes there once.
#[test]
fn a_linked_worktree_uses_the_shared_exclude_file() {
    let env = repo();
    initial_commit(&env);
    let original = fs::read(exclude_file(&env)).unwrap();
    let worktree = env.tmp.path().join("worktree");
    git_ok(
        &env,
        &[
            "worktree",
            "add",
            "-q",
            worktree.to_str().unwrap(),
            "-b",
            "side",
        ],
    );
    assert_ok(&ctxopt_in(&env, &worktree, &["install"]));
    assert!(
        fs::read_to_string(exclude_file(&env))
            .unwrap()
            .contains("\n/.claude/settings.local.json\n")
    );
    let ignored = git_in(
        &env,
        &worktree,
        &["check-ignore", ".claude/settings.local.json"],
    );
    assert_ok(&ignored);
    assert_ok(&ctxopt_in(&env, &worktree, &["uninstall"]));
    assert_eq!(fs::read(exclude_file(&env)).unwrap(), original);
}
