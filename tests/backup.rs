//! `ctxopt backup` through the real binary: round trip, the runbook's own `tar xzf … -C /`
//! (into a temporary root), corrupt and crafted archives refused, a flipped byte caught by
//! verify, and a restore killed (abort, as kill -9) after each of its steps, then finished or
//! undone by the next command — old files or new ones, never a mix.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests: a failed step must fail the test at once"
)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::{TestEnv, bin};

/// The files the tests back up and restore, relative to the project ("~/" = the temp HOME).
const FILES: [&str; 5] = [
    ".claude/settings.json",
    ".claude/skills/a/SKILL.md",
    ".claude/hooks/x.sh",
    ".mcp.json",
    "~/.claude/settings.json",
];

struct Env {
    env: TestEnv,
}

impl Env {
    fn new() -> Self {
        let env = TestEnv::new();
        Self { env }
    }

    fn path(&self, rel: &str) -> PathBuf {
        match rel.strip_prefix("~/") {
            Some(home) => self.env.home.join(home),
            None => self.env.project.join(rel),
        }
    }

    fn write(&self, contents: &[Option<&str>]) {
        for (rel, content) in FILES.iter().zip(contents) {
            let path = self.path(rel);
            match content {
                Some(text) => {
                    fs::create_dir_all(path.parent().unwrap()).unwrap();
                    fs::write(&path, text).unwrap();
                }
                None => {
                    let _ = fs::remove_file(&path);
                }
            }
        }
    }

    fn read(&self) -> Vec<Option<String>> {
        FILES
            .iter()
            .map(|rel| fs::read_to_string(self.path(rel)).ok())
            .collect()
    }

    fn ctxopt(&self, args: &[&str]) -> Output {
        self.env.run_with(self.cmd(args), b"")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.env.command(&bin("ctxopt"));
        cmd.arg("backup").args(args);
        cmd
    }

    fn backup_dir(&self) -> PathBuf {
        self.env
            .project
            .join(".kiro/specs/context-optimization/backup")
    }

    /// Creates a backup and returns the hourly archive's path.
    fn create(&self) -> PathBuf {
        let out = self.ctxopt(&["create", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let value: Value = serde_json::from_slice(&out.stdout).unwrap();
        PathBuf::from(value["path"].as_str().unwrap())
    }
}

const NEW: [Option<&str>; 5] = [
    Some("{\"new\": true}"),
    Some("---\nname: a\n---\nnew"),
    Some("#!/bin/sh\necho new\n"),
    Some("{\"mcpServers\": {}}"),
    Some("{\"user\": \"new\"}"),
];

const OLD: [Option<&str>; 5] = [
    Some("{\"old\": true}"),
    Some("---\nname: a\n---\nold"),
    None,
    Some("{\"mcpServers\": {}}"),
    Some("{\"user\": \"old\"}"),
];

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn owned(state: &[Option<&str>]) -> Vec<Option<String>> {
    state.iter().map(|c| c.map(str::to_owned)).collect()
}

#[test]
fn round_trip_through_the_cli() {
    let env = Env::new();
    env.write(&NEW);
    let archive = env.create();
    assert!(archive.starts_with(env.backup_dir()));
    let name = archive.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.starts_with("backup-") && name.len() == "backup-YYYYMMDD-HHMMSS.tar.gz".len());
    let daily = env.backup_dir().join(format!("{}.tar.gz", &name[..15]));
    assert_eq!(fs::read(&daily).unwrap(), fs::read(&archive).unwrap());

    env.write(&OLD);
    let dry = env.ctxopt(&["restore", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    assert!(
        stdout(&dry).starts_with("would restore"),
        "{}",
        stdout(&dry)
    );
    assert_eq!(env.read(), owned(&OLD));

    let out = env.ctxopt(&["restore", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.read(), owned(&NEW));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    let settings = value["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .ends_with("project/.claude/settings.json")
        })
        .unwrap();
    assert_eq!(settings["change"], "replaced");
    let kept = settings["kept"].as_str().unwrap();
    assert_eq!(fs::read_to_string(kept).unwrap(), "{\"old\": true}");
    let audit = fs::read_to_string(env.env.data().join("audit.log")).unwrap();
    assert!(audit.contains("\"action\":\"restore-backup\""), "{audit}");

    let list = env.ctxopt(&["list", "--json"]);
    assert_eq!(list.status.code(), Some(0), "{}", stderr(&list));
    let value: Value = serde_json::from_slice(&list.stdout).unwrap();
    let backups = value["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 2);
    assert_eq!(backups[0]["members"], 5);

    let verify = env.ctxopt(&["verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stderr(&verify));
    let by_name = env.ctxopt(&["verify", daily.file_name().unwrap().to_str().unwrap()]);
    assert_eq!(by_name.status.code(), Some(0), "{}", stderr(&by_name));
    assert!(stdout(&by_name).starts_with("ok: "), "{}", stdout(&by_name));
    let list = env.ctxopt(&["list"]);
    assert!(stdout(&list).contains(" ok "), "{}", stdout(&list));
}

#[test]
fn only_restores_the_named_part() {
    let env = Env::new();
    env.write(&NEW);
    env.create();
    env.write(&OLD);
    let out = env.ctxopt(&["restore", "--only", "settings"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let state = env.read();
    assert_eq!(state[0].as_deref(), NEW[0]);
    assert_eq!(state[1].as_deref(), OLD[1]);
    assert_eq!(state[2], None);
    assert_eq!(state[4].as_deref(), NEW[4]);
}

#[test]
fn claude_json_only_when_asked() {
    let env = Env::new();
    env.write(&NEW);
    fs::write(env.env.home.join(".claude.json"), "{\"numStartups\": 1}").unwrap();
    let out = env.ctxopt(&["create", "--json"]);
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["members"], 5);
    let out = env.ctxopt(&["create", "--only", "claude-json", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["members"], 1);
    assert_eq!(
        value["daily"],
        Value::Null,
        "a partial backup is no daily copy"
    );
    let out = env.ctxopt(&[
        "create",
        "--only",
        "settings,skills,hooks,claude-json",
        "--json",
    ]);
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["members"], 6);
    assert!(value["daily"].is_string());
}

/// The runbook's P0-002 step 3, `tar xzf backup-$(date +%Y%m%d).tar.gz -C /`, with the
/// system's tar, into a temporary root: every file lands at its absolute path under the root,
/// and `sha256sum -c` on the manifest passes there.
#[test]
fn the_runbooks_tar_restores_in_place() {
    let env = Env::new();
    env.write(&NEW);
    let archive = env.create();
    let name = archive.file_name().unwrap().to_str().unwrap();
    let daily = format!("{}.tar.gz", &name[..15]);
    let root = env.env.tmp.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let out = Command::new("tar")
        .arg("xzf")
        .arg(&daily)
        .arg("-C")
        .arg(&root)
        .current_dir(env.backup_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for rel in FILES {
        let original = fs::canonicalize(env.path(rel)).unwrap();
        let under_root = root.join(original.strip_prefix("/").unwrap());
        assert_eq!(
            fs::read(&under_root).unwrap(),
            fs::read(&original).unwrap(),
            "{rel}"
        );
    }
    let manifest = fs::canonicalize(&env.env.project)
        .unwrap()
        .join(".claude/hooks/data/backup-manifest.sha256");
    let manifest = root.join(manifest.strip_prefix("/").unwrap());
    let check = Command::new("sha256sum")
        .arg("-c")
        .arg(&manifest)
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stdout(&check));
    assert!(!root.join("MANIFEST.sha256").exists());
}

fn assert_refused(env: &Env, archive: &Path, what: &str) {
    let before = env.read();
    for args in [
        vec!["verify", archive.to_str().unwrap()],
        vec!["restore", archive.to_str().unwrap()],
    ] {
        let out = env.ctxopt(&args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(text.contains(what), "{args:?}: {text}");
    }
    assert_eq!(env.read(), before);
}

#[test]
fn corrupt_archives_are_refused() {
    let env = Env::new();
    env.write(&NEW);
    let archive = env.create();
    env.write(&OLD);
    let bytes = fs::read(&archive).unwrap();
    let truncated = env.env.tmp.path().join("truncated.tar.gz");
    fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(&env, &truncated, "the archive is corrupt");
    let flipped = env.env.tmp.path().join("flipped.tar.gz");
    let mut copy = bytes.clone();
    let at = copy.len() / 2;
    copy[at] ^= 0x20;
    fs::write(&flipped, &copy).unwrap();
    let out = env.ctxopt(&["verify", flipped.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("FAILED"), "{}", stdout(&out));
}

/// Runs a python3 script with `args` (the script builds archives with `tarfile`, whose names
/// and links the tar crate would not let us write).
fn python(script: &str, args: &[&Path]) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// One member `name` (content or symlink target), then a manifest listing it.
const CRAFT: &str = r#"
import hashlib, io, sys, tarfile
out, kind, name, payload, manifest = sys.argv[1:6]
with tarfile.open(out, "w:gz", format=tarfile.GNU_FORMAT) as t:
    info = tarfile.TarInfo(name)
    data = payload.encode()
    if kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = payload
        t.addfile(info)
    else:
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    line = hashlib.sha256(data).hexdigest() + "  " + name.lstrip("/") + "\n"
    m = tarfile.TarInfo(manifest)
    m.size = len(line)
    t.addfile(m, io.BytesIO(line.encode()))
"#;

#[test]
fn traversal_and_link_archives_are_refused() {
    let env = Env::new();
    env.write(&OLD);
    let project = fs::canonicalize(&env.env.project).unwrap();
    let rel = project
        .strip_prefix("/")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let manifest = format!("{rel}/.claude/hooks/data/backup-manifest.sha256");
    let tmp = env.env.tmp.path().to_path_buf();
    let cases = [
        (
            "dotdot",
            "file",
            format!("{rel}/.claude/../../escaped"),
            "x",
        ),
        ("leading", "file", "../escaped".to_owned(), "x"),
        (
            "symlink",
            "symlink",
            format!("{rel}/.claude/settings.json"),
            "/etc/passwd",
        ),
    ];
    for (label, kind, name, payload) in cases {
        let archive = tmp.join(format!("{label}.tar.gz"));
        python(
            CRAFT,
            &[
                &archive,
                Path::new(kind),
                Path::new(&name),
                Path::new(payload),
                Path::new(&manifest),
            ],
        );
        let what = if kind == "symlink" {
            "symbolic link"
        } else {
            "not a plain relative path"
        };
        assert_refused(&env, &archive, what);
    }
    assert!(!tmp.join("escaped").exists());
    let outside = tmp.join("elsewhere.tar.gz");
    let name = format!(
        "{}/outside.txt",
        fs::canonicalize(&tmp)
            .unwrap()
            .strip_prefix("/")
            .unwrap()
            .display()
    );
    python(
        CRAFT,
        &[
            &outside,
            Path::new("file"),
            Path::new(&name),
            Path::new("x"),
            Path::new(&manifest),
        ],
    );
    let out = env.ctxopt(&["restore", outside.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not a file a backup may restore"),
        "{}",
        stderr(&out)
    );
    assert!(!tmp.join("outside.txt").exists());
}

/// A byte flipped inside a member's data (the gzip stream rebuilt, so it is well-formed):
/// only the manifest can tell.
#[test]
fn verify_catches_a_flipped_byte() {
    let env = Env::new();
    env.write(&NEW);
    let archive = env.create();
    let flipped = env.env.tmp.path().join("flipped.tar.gz");
    python(
        r#"
import gzip, sys
data = bytearray(gzip.decompress(open(sys.argv[1], "rb").read()))
at = data.find(b"echo new")
data[at] ^= 0x01
open(sys.argv[2], "wb").write(gzip.compress(bytes(data)))
"#,
        &[&archive, &flipped],
    );
    let out = env.ctxopt(&["verify", flipped.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["ok"], false);
    assert!(
        value["error"]
            .as_str()
            .unwrap()
            .contains("does not match its sha256"),
        "{value}"
    );
    env.write(&OLD);
    assert_refused(&env, &flipped, "does not match its sha256");
}

/// The restore is killed (abort) right after step K, for every K, then `ctxopt backup list`
/// (any backup command) finishes or undoes it: the files are all old or all new.
#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "CTXOPT_FAULT_INJECT works in debug builds only"
)]
fn a_restore_killed_at_any_step_leaves_old_or_new() {
    let mut finished = false;
    for step in 1..40 {
        let env = Env::new();
        env.write(&NEW);
        env.create();
        env.write(&OLD);
        let mut cmd = env.cmd(&["restore"]);
        cmd.env("CTXOPT_FAULT_INJECT", format!("restore-step-{step}"));
        let out = env.env.run_with(cmd, b"");
        if out.status.success() {
            assert_eq!(env.read(), owned(&NEW));
            assert!(
                step > 10,
                "only {} steps: fault injection did not work",
                step - 1
            );
            finished = true;
            break;
        }
        assert_eq!(out.status.code(), None, "step {step}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("killed after restore step {step}")),
            "{}",
            stderr(&out)
        );
        let next = env.ctxopt(&["list"]);
        assert_eq!(
            next.status.code(),
            Some(0),
            "step {step}: {}",
            stderr(&next)
        );
        let state = env.read();
        assert!(
            state == owned(&OLD) || state == owned(&NEW),
            "step {step}: a mix: {state:?}"
        );
        assert!(
            stderr(&next).contains("interrupted restore"),
            "step {step}: {}",
            stderr(&next)
        );
        assert!(!env.env.data().join("restore-journal.json").exists());
    }
    assert!(finished, "the restore never ran to the end");
}

/// SessionStart makes the hourly backup when none is an hour old: the hook hands it off to a
/// detached `ctxopt backup create` (forked after the hook's records are written) and does not
/// wait for it; a second session start within the hour starts none.
#[test]
fn session_start_hands_off_the_hourly_backup() {
    let env = Env::new();
    env.write(&NEW);
    let start = serde_json::json!({
        "session_id": "s-backup",
        "transcript_path": env.env.tmp.path().join("t.jsonl"),
        "cwd": env.env.project,
        "permission_mode": "default",
        "hook_event_name": "SessionStart",
        "source": "startup"
    })
    .to_string();
    let out = env.env.run_hook("ctxopt-session-start", start.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let archives = || -> Vec<PathBuf> {
        fs::read_dir(env.backup_dir())
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "gz"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while archives().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The hourly archive and the newest-of-the-day copy.
    assert_eq!(archives().len(), 2, "{:?}", archives());
    let out = env.env.run_hook("ctxopt-session-start", start.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(archives().len(), 2, "a second backup within the hour");
}
