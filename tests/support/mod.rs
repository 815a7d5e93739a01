//! Shared test support: a temporary HOME and project per test, the real binaries, the fake
//! Anthropic Messages API and the real Claude Code client. Each integration test file
//! includes it with `mod support;`.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the support code"
)]
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test support: a failed setup step must fail the test at once, loudly"
)]

pub mod claude;
pub mod fake_api;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The path of one of the package's binaries.
pub fn bin(name: &str) -> PathBuf {
    match name {
        "ctxopt-session-start" => env!("CARGO_BIN_EXE_ctxopt-session-start").into(),
        "ctxopt-pre-tool-use" => env!("CARGO_BIN_EXE_ctxopt-pre-tool-use").into(),
        "ctxopt-post-tool-use" => env!("CARGO_BIN_EXE_ctxopt-post-tool-use").into(),
        "ctxopt" => env!("CARGO_BIN_EXE_ctxopt").into(),
        other => panic!("no binary {other}"),
    }
}

/// The repository root (for fixtures).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A fixture file's bytes, by path under `fixtures/`.
pub fn fixture(rel: &str) -> Vec<u8> {
    fs::read(repo_root().join("fixtures").join(rel)).unwrap()
}

/// A temporary HOME and project directory; dropped with the test.
pub struct TestEnv {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub project: PathBuf,
}

impl TestEnv {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let project = tmp.path().join("project");
        fs::create_dir_all(&home).unwrap();
        fs::create_dir_all(&project).unwrap();
        Self { tmp, home, project }
    }

    /// A command for `program` with HOME and the project set and nothing inherited that
    /// could point at the real user's files.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("HOME", &self.home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CLAUDE_PROJECT_DIR", &self.project)
            .current_dir(&self.project);
        cmd
    }

    /// Runs a hook binary with `stdin`.
    pub fn run_hook(&self, name: &str, stdin: &[u8]) -> Output {
        self.run_with(self.command(&bin(name)), stdin)
    }

    /// Runs `cmd` with `stdin`, collecting its output.
    #[expect(
        clippy::unused_self,
        reason = "a method so tests read `env.run_with(…)`"
    )]
    pub fn run_with(&self, mut cmd: Command, stdin: &[u8]) -> Output {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        let input = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    }

    /// The project's data dir.
    pub fn data(&self) -> PathBuf {
        self.project.join(".claude/hooks/data")
    }

    /// Every record of `metrics.jsonl`, each line parsed (a line that does not parse fails).
    pub fn records(&self) -> Vec<Value> {
        read_records(&self.data().join("metrics.jsonl"))
    }

    /// `hook_execution.log` as text ("" when absent).
    pub fn hook_log(&self) -> String {
        fs::read_to_string(self.data().join("hook_execution.log")).unwrap_or_default()
    }
}

/// Parses every line of a JSON-lines file; panics on a line that is not JSON.
pub fn read_records(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

/// The records of one `type`.
pub fn of_type<'a>(records: &'a [Value], ty: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == ty).collect()
}
