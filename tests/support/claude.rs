//! The real Claude Code client for end-to-end tests.
//!
//! The client is found only through `CTXOPT_CLAUDE_BIN` (CI installs the pinned npm package
//! and exports the path). Without it a test skips with a note, except under `CI=true`, where a
//! missing client is a failure: an end-to-end suite that silently skips in CI proves nothing.
//!
//! A run is `claude -p <prompt> --output-format stream-json --verbose` in the test's project,
//! with a cleared environment (a temporary HOME, PATH, and the fake API's URL and a dummy
//! key, telemetry and updates off), killed after a timeout. Nothing from the developer's own
//! `~/.claude` can leak in.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test support: a client that cannot be started or waited for is a test failure"
)]

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::TestEnv;
use super::fake_api::FakeApi;

/// The environment variable naming the client binary.
pub const CLIENT_ENV: &str = "CTXOPT_CLAUDE_BIN";

/// How long one client run may take before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether this run is in CI (`CI=true`), where a missing dependency fails instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The client binary, or `None` (after a note on stderr) when the test should skip.
///
/// # Panics
/// When `CTXOPT_CLAUDE_BIN` is unset under `CI=true`, or names a file that does not exist.
pub fn client(test: &str) -> Option<PathBuf> {
    match std::env::var_os(CLIENT_ENV).filter(|v| !v.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "{CLIENT_ENV}={} does not name a file; install @anthropic-ai/claude-code and \
                 point {CLIENT_ENV} at its bin/claude",
                path.display()
            );
            Some(path)
        }
        None if in_ci() => panic!(
            "{test}: {CLIENT_ENV} is not set but CI=true: the end-to-end tests need the real \
             Claude Code client (npm install @anthropic-ai/claude-code@<pinned>, then export \
             {CLIENT_ENV}=<dir>/node_modules/.bin/claude)"
        ),
        None => {
            eprintln!(
                "{test}: skipped: set {CLIENT_ENV} to a Claude Code binary to run the \
                 end-to-end tests"
            );
            None
        }
    }
}

/// One `claude -p` invocation, configured before it runs.
pub struct Claude {
    bin: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    timeout: Duration,
    project: PathBuf,
    home: PathBuf,
    base_url: String,
}

impl Claude {
    /// `claude -p <prompt> --allowedTools Bash,Write,Read --output-format stream-json --verbose`
    /// in `env`'s project, talking to `api`.
    pub fn new(bin: PathBuf, env: &TestEnv, api: &FakeApi, prompt: &str) -> Self {
        let args = [
            "-p",
            prompt,
            "--allowedTools",
            "Bash,Write,Read",
            "--output-format",
            "stream-json",
            "--verbose",
        ];
        Self {
            bin,
            args: args.iter().map(OsString::from).collect(),
            envs: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            project: env.project.clone(),
            home: env.home.clone(),
            base_url: api.base_url(),
        }
    }

    /// Adds command-line arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds (or overrides) an environment variable.
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Kills the client after `timeout` instead of the default.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The command as it will run (for failure reports).
    pub fn describe(&self) -> String {
        format!(
            "{} {:?} in {}",
            self.bin.display(),
            self.args,
            self.project.display()
        )
    }

    /// Runs the client to completion or the timeout.
    pub fn run(self) -> Run {
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args)
            .env_clear()
            .env("HOME", &self.home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ANTHROPIC_BASE_URL", &self.base_url)
            .env("ANTHROPIC_API_KEY", "sk-ant-fake-e2e")
            .env("DISABLE_TELEMETRY", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.project)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", self.describe()));
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > self.timeout {
                timed_out = true;
                let _ = child.kill();
                break child.wait().unwrap();
            }
            thread::sleep(Duration::from_millis(50));
        };
        let stdout = String::from_utf8_lossy(&stdout.join().unwrap_or_default()).into_owned();
        let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
        let events = stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        Run {
            command: self.describe(),
            status,
            timed_out,
            elapsed: started.elapsed(),
            stdout,
            stderr,
            events,
        }
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// What one client run did.
#[derive(Debug)]
pub struct Run {
    /// The command line, for reports.
    pub command: String,
    /// The client's exit status.
    pub status: ExitStatus,
    /// Whether the run was killed at the timeout.
    pub timed_out: bool,
    /// Wall time.
    pub elapsed: Duration,
    /// Raw stdout.
    pub stdout: String,
    /// Raw stderr.
    pub stderr: String,
    /// The stdout lines that parsed as JSON (the stream-json events), in order.
    pub events: Vec<Value>,
}

impl Run {
    /// Whether the client exited 0 within the timeout.
    pub fn ok(&self) -> bool {
        !self.timed_out && self.status.success()
    }

    /// The events of `type` (and `subtype`, when given).
    pub fn events_of(&self, ty: &str, subtype: Option<&str>) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["type"] == ty && subtype.is_none_or(|s| e["subtype"] == s))
            .collect()
    }

    /// The `system`/`hook_response` events (`hook_name`, `exit_code`, `outcome`, `stdout`,
    /// `stderr`).
    pub fn hook_responses(&self) -> Vec<&Value> {
        self.events_of("system", Some("hook_response"))
    }

    /// The session id the client announced (`system`/`init`, else any event's `session_id`).
    pub fn session_id(&self) -> Option<&str> {
        self.events_of("system", Some("init"))
            .first()
            .and_then(|e| e["session_id"].as_str())
            .or_else(|| self.events.iter().find_map(|e| e["session_id"].as_str()))
    }

    /// The final `result` event.
    pub fn result(&self) -> Option<&Value> {
        self.events_of("result", None).last().copied()
    }

    /// Everything about the run, for a failure report.
    pub fn report(&self) -> String {
        format!(
            "client: {}\nstatus: {} timed_out={} elapsed={:?}\n--- stream-json ({} events) ---\n{}\n--- stderr ---\n{}\n",
            self.command,
            self.status,
            self.timed_out,
            self.elapsed,
            self.events.len(),
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}
