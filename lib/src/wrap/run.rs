//! `ctxopt-run`'s process boundary and the supervisor that runs a wrapped hook command.
//!
//! Like [`crate::runner`] for ctxopt's own hooks, [`main`] is the only code of the runner
//! that reads stdin, writes stdout and stderr, reads the environment and picks the exit code.
//! [`supervise`] runs the command: it spawns it in a process group of its own, hands it the
//! stdin bytes, collects its stdout and stderr, and kills the whole group at the deadline.
//!
//! One run: read stdin whole (capped), learn the event, session and project from it, skip the
//! hook if it is disabled (a `*.disabled` rename, `ctxopt hooks disable`, or an open circuit
//! breaker), else run it, retrying per policy; record a `hook_execution` and a `hook_latency`
//! per attempt under the hook's name; count the run for the breaker; relay the last
//! attempt's stdout, stderr and exit code. Each decision is explained in [`super`].

use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::breaker::{self, Transition};
use super::command::{self, Parsed, USAGE};
use crate::install::shell_quote;
use crate::policy::Policy;
use crate::project::{self, PROJECT_ENV};
use crate::protocol::{self, Decision, HookOutput};
use crate::record::{self, AlertSeverity, Envelope, Record, Severity, Text};
use crate::store::{self, DataDir};

/// Largest stdin the runner passes on: 16 times a hook's own cap, since the wrapped command
/// must get every byte and a hook input past this is not a real one.
pub const MAX_INPUT_BYTES: usize = 16 * protocol::MAX_INPUT_BYTES;

/// Largest stdout or stderr kept from one attempt; the rest is read and dropped so the
/// command never blocks on a full pipe.
pub const MAX_OUTPUT_BYTES: usize = 16 * protocol::MAX_INPUT_BYTES;

/// Stdin up to this size is written before the output is read, without a thread: one page,
/// the smallest capacity a pipe can have, so the write never blocks.
const INLINE_STDIN: usize = 4096;

/// After killing the group, how long to wait for the pipes to close (a process that left
/// the group with `setsid` may hold them; it is then abandoned).
const KILL_GRACE: Duration = Duration::from_secs(1);

/// Claude Code's environment variable holding the session id (used when stdin has none).
const SESSION_ENV: &str = "CLAUDE_CODE_SESSION_ID";

/// The `hook_execution` event when stdin names none.
const UNKNOWN_EVENT: &str = "unknown";

/// How to run the wrapped command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The program and its arguments.
    pub argv: Vec<OsString>,
    /// The whole run's limit, retries and backoff included.
    pub timeout: Duration,
    /// Extra attempts after a failure that is not a timeout.
    pub retries: u32,
    /// Wait before the first retry; doubled before each further one.
    pub backoff: Duration,
}

/// How one attempt ended.
#[derive(Debug)]
pub enum Status {
    /// The command exited with this code.
    Exited(i32),
    /// The command was killed by this signal (not by the runner).
    Signaled(i32),
    /// The deadline passed; the runner killed the process group.
    TimedOut,
    /// The command could not be started.
    SpawnFailed(io::Error),
}

/// One attempt's result.
#[derive(Debug)]
pub struct Attempt {
    /// How it ended.
    pub status: Status,
    /// Everything it wrote to stdout (up to [`MAX_OUTPUT_BYTES`]).
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr (up to [`MAX_OUTPUT_BYTES`]).
    pub stderr: Vec<u8>,
    /// From spawn to exit and closed pipes.
    pub duration: Duration,
    /// When it ended.
    pub finished: DateTime<Utc>,
}

impl Attempt {
    /// Whether the attempt failed: anything but exit 0 and exit 2 (a deliberate block).
    #[must_use]
    pub fn failed(&self) -> bool {
        !matches!(self.status, Status::Exited(0 | 2))
    }

    /// Whether the command blocked on purpose (exit 2).
    #[must_use]
    pub fn blocked(&self) -> bool {
        matches!(self.status, Status::Exited(2))
    }

    /// Whether another attempt may follow: a failure, but not a timeout (a hung hook would
    /// most likely hang again, and the run's time is spent).
    fn retryable(&self) -> bool {
        self.failed() && !matches!(self.status, Status::TimedOut)
    }

    /// The failure's first line as recorded: `timeout after 30 s`, `exit code 3: <first
    /// stderr line>`, `killed by signal 11 (SIGSEGV)`, `failed to run node: …`.
    #[must_use]
    pub fn error(&self, argv0: &str, timeout: Duration) -> Option<String> {
        if !self.failed() {
            return None;
        }
        let stderr = first_line(&self.stderr);
        let with_stderr = |head: String| match &stderr {
            Some(line) => format!("{head}: {line}"),
            None => head,
        };
        Some(match &self.status {
            Status::Exited(code) => with_stderr(format!("exit code {code}")),
            Status::Signaled(signal) => with_stderr(format!(
                "killed by signal {signal}{}",
                signal_name(*signal).map_or_else(String::new, |n| format!(" ({n})"))
            )),
            Status::TimedOut => format!(
                "timeout after {} s",
                command::format_secs(timeout.as_secs_f64())
            ),
            Status::SpawnFailed(err) => format!("failed to run {argv0}: {err}"),
        })
    }

    /// The exit code the runner relays: the command's own; 128 + the signal for a signal (the
    /// shell's convention); 1 for a timeout (a non-blocking error: the action goes ahead);
    /// 127 / 126 when the program is missing / not executable, as `sh` reports them.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match &self.status {
            Status::Exited(code) => u8::try_from(*code).unwrap_or(1),
            Status::Signaled(signal) => u8::try_from(128 + signal).unwrap_or(1),
            Status::TimedOut => 1,
            Status::SpawnFailed(err) => match err.kind() {
                io::ErrorKind::NotFound => 127,
                io::ErrorKind::PermissionDenied => 126,
                _ => 1,
            },
        }
    }
}

fn first_line(bytes: &[u8]) -> Option<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        7 => "SIGBUS",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => return None,
    })
}

/// Runs `plan` with `stdin`, retrying per plan, within `plan.timeout` from `started`.
#[must_use]
pub fn supervise(plan: &Plan, stdin: &Arc<[u8]>, started: Instant) -> Vec<Attempt> {
    let deadline = started + plan.timeout;
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut backoff = plan.backoff;
    loop {
        let attempt = attempt(&plan.argv, stdin, deadline);
        let again = attempt.retryable() && attempts.len() < plan.retries as usize;
        attempts.push(attempt);
        if !again || Instant::now() + backoff >= deadline {
            return attempts;
        }
        thread::sleep(backoff);
        backoff = backoff.saturating_mul(2);
    }
}

/// One attempt: spawn in a new process group, feed stdin, collect both outputs and the exit
/// status until `deadline`, then kill the group and wait at most [`KILL_GRACE`] more. One
/// thread does it all: it polls the two pipes and, once they are closed, the command's exit
/// (a pidfd on Linux, `try_wait` in short steps elsewhere), so both pipes drain at once and
/// the command never blocks on a full one. The run never outlasts `deadline` plus the grace,
/// whatever the command leaves behind. Stdin beyond one page goes through a helper thread.
fn attempt(argv: &[OsString], stdin: &Arc<[u8]>, deadline: Instant) -> Attempt {
    let start = Instant::now();
    let finish = |status, stdout, stderr| Attempt {
        status,
        stdout,
        stderr,
        duration: start.elapsed(),
        finished: record::now(),
    };
    let Some((program, rest)) = argv.split_first() else {
        return finish(
            Status::SpawnFailed(io::Error::other("empty command")),
            Vec::new(),
            Vec::new(),
        );
    };
    let spawned = Command::new(program)
        .args(rest)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => return finish(Status::SpawnFailed(err), Vec::new(), Vec::new()),
    };
    let pgid = child.id();
    if let Some(mut pipe) = child.stdin.take() {
        if stdin.len() <= INLINE_STDIN {
            let _ = pipe.write_all(stdin);
        } else {
            let bytes = Arc::clone(stdin);
            thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
    }
    let mut stdout = Drain::new(child.stdout.take().map(OwnedFd::from));
    let mut stderr = Drain::new(child.stderr.take().map(OwnedFd::from));
    let exit_fd = crate::process::exit_fd(pgid);
    let mut exit: Option<io::Result<ExitStatus>> = None;
    let mut killed_at: Option<Instant> = None;
    let mut idle = Duration::from_micros(200);
    loop {
        if exit.is_none() && stdout.closed() && stderr.closed() {
            exit = child.try_wait().transpose();
        }
        if exit.is_some() && stdout.closed() && stderr.closed() {
            break;
        }
        let limit = killed_at.map_or(deadline, |at| at + KILL_GRACE);
        let now = Instant::now();
        if now >= limit {
            if killed_at.is_some() {
                break;
            }
            let _ = crate::process::kill_group(pgid, crate::process::GroupSignal::Kill);
            killed_at = Some(now);
            continue;
        }
        let mut fds = Vec::with_capacity(3);
        fds.extend(stdout.fd());
        fds.extend(stderr.fd());
        if fds.is_empty() {
            // Both pipes closed, the command not reaped yet: wait for its exit.
            if let Some(fd) = &exit_fd {
                let _ = crate::process::poll_readable(&[fd.as_raw_fd()], limit - now);
            } else {
                thread::sleep(idle.min(limit - now));
                idle = (idle * 2).min(Duration::from_millis(5));
            }
            continue;
        }
        let ready = crate::process::poll_readable(&fds, limit - now);
        let mut ready = ready.into_iter();
        if stdout.fd().is_some() && ready.next() == Some(true) {
            stdout.read_some();
        }
        if stderr.fd().is_some() && ready.next() == Some(true) {
            stderr.read_some();
        }
    }
    let status = if killed_at.is_some() {
        Status::TimedOut
    } else {
        match exit {
            Some(Ok(status)) => match (status.code(), status.signal()) {
                (Some(code), _) => Status::Exited(code),
                (None, Some(signal)) => Status::Signaled(signal),
                (None, None) => Status::Exited(1),
            },
            Some(Err(err)) => Status::SpawnFailed(err),
            None => Status::TimedOut,
        }
    };
    finish(status, stdout.bytes, stderr.bytes)
}

/// One output pipe of the command, read as it fills: at most [`MAX_OUTPUT_BYTES`] kept, the
/// rest read and dropped.
struct Drain {
    pipe: Option<std::fs::File>,
    bytes: Vec<u8>,
}

impl Drain {
    fn new(pipe: Option<OwnedFd>) -> Self {
        Self {
            pipe: pipe.map(std::fs::File::from),
            bytes: Vec::new(),
        }
    }

    fn closed(&self) -> bool {
        self.pipe.is_none()
    }

    fn fd(&self) -> Option<std::os::fd::RawFd> {
        self.pipe.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// One read of what the pipe holds (the caller polled it ready); end of file or an error
    /// closes it.
    fn read_some(&mut self) {
        let Some(pipe) = &mut self.pipe else {
            return;
        };
        let mut buf = [0_u8; 16 * 1024];
        match pipe.read(&mut buf) {
            Ok(0) => self.pipe = None,
            Ok(n) => {
                let room = MAX_OUTPUT_BYTES.saturating_sub(self.bytes.len());
                self.bytes.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.pipe = None,
        }
    }
}

/// The fields of the hook input the runner needs; everything else is passed on untouched.
#[derive(Debug, Default, Deserialize)]
struct Ids {
    #[serde(default)]
    session_id: String,
    #[serde(default)]
    hook_event_name: String,
    #[serde(default)]
    cwd: Option<PathBuf>,
}

/// Reads all of `reader`, at most [`MAX_INPUT_BYTES`]; past that, drains the rest and fails.
fn read_input(mut reader: impl Read) -> Result<Vec<u8>, String> {
    let mut buf = Vec::with_capacity(8 * 1024);
    let cap = u64::try_from(MAX_INPUT_BYTES).unwrap_or(u64::MAX);
    (&mut reader)
        .take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|err| format!("failed to read the hook input from stdin: {err}"))?;
    if buf.len() > MAX_INPUT_BYTES {
        let _ = io::copy(&mut reader, &mut io::sink());
        return Err(format!(
            "the hook input is larger than the runner's {} MiB cap; the hook was not run",
            MAX_INPUT_BYTES / (1024 * 1024)
        ));
    }
    Ok(buf)
}

/// The records and log lines of one run, written in one append each at the end.
struct Report {
    envelope: Envelope,
    event: String,
    lines: String,
    log: String,
}

impl Report {
    fn push(&mut self, record: &Record, at: DateTime<Utc>) {
        self.lines.push_str(&self.envelope.line(record, at));
    }

    /// `hook_execution` and `hook_latency` for one attempt, or only `hook_execution` with
    /// `disabled` for a skipped run (it has no latency of its own); and its log line.
    fn execution(&mut self, at: DateTime<Utc>, run: &Execution<'_>) {
        self.push(
            &Record::HookExecution {
                event: self.event.clone(),
                success: run.error.is_none(),
                decision: run.blocked.then_some(Decision::Deny),
                error: run.error.map(|e| Text::new(e, record::MAX_ERROR_CHARS)),
                attempt: run.attempt,
                disabled: run.disabled.is_some(),
            },
            at,
        );
        let duration_ms = record::millis(run.duration);
        if run.disabled.is_none() {
            self.push(
                &Record::HookLatency {
                    event: self.event.clone(),
                    duration_ms,
                },
                at,
            );
        }
        let session = &self.envelope.session_id;
        let _ = write!(
            self.log,
            "{} {} {} {} {duration_ms:.3}ms session={}",
            record::timestamp(at),
            self.envelope.hook,
            self.event,
            if run.error.is_some() { "FAIL" } else { "ok" },
            if session.is_empty() { "-" } else { session },
        );
        if run.blocked {
            self.log.push_str(" decision=Deny");
        }
        if let Some(n) = run.attempt {
            let _ = write!(self.log, " attempt={n}");
        }
        if let Some(how) = run.disabled {
            let _ = write!(
                self.log,
                " disabled=\"{}\"",
                Text::new(how, record::MAX_ERROR_CHARS).as_str()
            );
        }
        if let Some(error) = run.error {
            let _ = write!(
                self.log,
                " error=\"{}\"",
                Text::new(error, record::MAX_ERROR_CHARS).as_str()
            );
        }
        self.log.push('\n');
    }

    /// Appends the records and log lines; what could not be written, for stderr.
    fn write(&self, data: &DataDir) -> Option<String> {
        if let Err(err) = data.ensure() {
            return Some(record::chain(&err));
        }
        let faults: Vec<String> = [
            store::append(&data.metrics(), self.lines.as_bytes()).err(),
            store::append(&data.hook_log(), self.log.as_bytes()).err(),
        ]
        .into_iter()
        .flatten()
        .map(|err| record::chain(&err))
        .collect();
        (!faults.is_empty()).then(|| faults.join("; "))
    }
}

/// One line of the report.
struct Execution<'a> {
    error: Option<&'a str>,
    blocked: bool,
    attempt: Option<u32>,
    disabled: Option<&'a str>,
    duration: Duration,
}

/// What the runner prints and exits with.
struct Reply {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    code: u8,
}

impl Reply {
    fn line(text: &str, code: u8) -> Self {
        Self {
            stdout: Vec::new(),
            stderr: format!("{text}\n").into_bytes(),
            code,
        }
    }

    fn send(self) -> u8 {
        if !self.stdout.is_empty() {
            let mut out = io::stdout().lock();
            let _ = out.write_all(&self.stdout);
            let _ = out.flush();
        }
        if !self.stderr.is_empty() {
            let _ = io::stderr().lock().write_all(&self.stderr);
        }
        self.code
    }
}

/// The whole of `ctxopt-run`'s `main`; `args` are the process's arguments, its name first
/// (`ctxopt::process::args`: `std::env::args_os` is empty in a `no_main` binary on musl).
#[must_use]
pub fn main(args: Vec<std::ffi::OsString>) -> u8 {
    let started = Instant::now();
    install_panic_hook();
    let args = match command::parse_args(args.into_iter().skip(1)) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help) => {
            println!("{HELP}");
            return 0;
        }
        Ok(Parsed::Version) => {
            println!("ctxopt-run {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Err(err) => {
            return Reply::line(
                &format!("ctxopt-run: {err}; the hook was not run\n{USAGE}"),
                1,
            )
            .send();
        }
    };
    let input = read_input(io::stdin().lock());
    let ids: Ids = input
        .as_ref()
        .ok()
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
        .unwrap_or_default();
    let project = project::for_hook(env::var_os(PROJECT_ENV), ids.cwd.as_deref());
    let data = DataDir::of_project(&project);
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| command::name_of_argv(&args.command, &project));
    let session = Some(ids.session_id)
        .filter(|s| !s.is_empty())
        .or_else(|| env::var(SESSION_ENV).ok())
        .unwrap_or_default();
    let mut report = Report {
        envelope: Envelope::new(session, name.clone()),
        event: Some(ids.hook_event_name)
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| UNKNOWN_EVENT.to_owned()),
        lines: String::new(),
        log: String::new(),
    };
    let policy = Policy::load(&project).unwrap_or_else(|err| {
        report.push(&Record::error(Severity::Medium, &err), record::now());
        Policy::default()
    });
    let reply = run(
        &args,
        input,
        &name,
        &project,
        &data,
        &policy,
        started,
        &mut report,
    );
    let reply = match report.write(&data) {
        None => reply,
        Some(fault) => Reply {
            stderr: [
                reply.stderr,
                format!("ctxopt-run: could not record this run of {name}: {fault}\n").into_bytes(),
            ]
            .concat(),
            ..reply
        },
    };
    reply.send()
}

/// Everything between reading stdin and writing the report.
#[expect(
    clippy::too_many_arguments,
    reason = "the run's facts, gathered once in main"
)]
fn run(
    args: &command::Args,
    input: Result<Vec<u8>, String>,
    name: &str,
    project: &Path,
    data: &DataDir,
    policy: &Policy,
    started: Instant,
    report: &mut Report,
) -> Reply {
    let stdin = match input {
        Ok(bytes) => bytes,
        Err(err) => {
            report.execution(
                record::now(),
                &Execution {
                    error: Some(&err),
                    blocked: false,
                    attempt: Some(1),
                    disabled: None,
                    duration: started.elapsed(),
                },
            );
            return Reply::line(&format!("ctxopt-run: {name}: {err}"), 1);
        }
    };
    let previous = breaker::load(data, name);
    if let Some(how) = skipped(&args.command, name, project, previous.as_ref()) {
        report.execution(
            record::now(),
            &Execution {
                error: None,
                blocked: false,
                attempt: None,
                disabled: Some(&how),
                duration: started.elapsed(),
            },
        );
        return Reply {
            stdout: Vec::new(),
            stderr: Vec::new(),
            code: 0,
        };
    }

    let settings = &policy.hooks;
    let plan = Plan {
        argv: args.command.clone(),
        timeout: args
            .timeout
            .unwrap_or_else(|| Duration::from_secs(settings.timeout_seconds.max(1).into())),
        retries: args.retries.unwrap_or(settings.retries),
        backoff: Duration::from_millis(settings.backoff_ms),
    };
    let attempts = supervise(&plan, &Arc::from(stdin), started);
    let argv0 = plan
        .argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut last_error = None;
    for (n, attempt) in (1u32..).zip(&attempts) {
        let error = attempt.error(&argv0, plan.timeout);
        report.execution(
            attempt.finished,
            &Execution {
                error: error.as_deref(),
                blocked: attempt.blocked(),
                attempt: Some(n),
                disabled: None,
                duration: attempt.duration,
            },
        );
        last_error = error;
    }
    let Some(last) = attempts.into_iter().next_back() else {
        return Reply::line("ctxopt-run: no attempt was made", 1);
    };
    let mut reply = match &last.status {
        Status::TimedOut => Reply::line(
            &format!(
                "ctxopt-run: {name} timed out after {} s; killed it and its process group; the action goes ahead",
                command::format_secs(plan.timeout.as_secs_f64())
            ),
            1,
        ),
        Status::SpawnFailed(err) => Reply::line(
            &format!("ctxopt-run: failed to run {argv0} for {name}: {err}"),
            last.exit_code(),
        ),
        Status::Exited(_) | Status::Signaled(_) => Reply {
            code: last.exit_code(),
            stdout: last.stdout,
            stderr: last.stderr,
        },
    };
    count_run(
        data,
        name,
        previous,
        last_error.as_deref(),
        settings.breaker_failures,
        report,
        &mut reply,
    );
    reply
}

/// Why a run is skipped, when it is: the script renamed `*.disabled`, the breaker open, or a
/// manual disable.
fn skipped(
    argv: &[OsString],
    name: &str,
    project: &Path,
    state: Option<&breaker::State>,
) -> Option<String> {
    match (renamed(argv, name, project), state) {
        (Some(path), _) => Some(format!("renamed to {}", path.display())),
        (None, Some(state)) if state.open => Some("circuit breaker open".to_owned()),
        (None, Some(state)) if state.manual => Some("ctxopt hooks disable".to_owned()),
        _ => None,
    }
}

/// Counts the run for the breaker; when it trips, records `Alert-A-002` and tells the user.
fn count_run(
    data: &DataDir,
    name: &str,
    previous: Option<breaker::State>,
    failure: Option<&str>,
    threshold: u32,
    report: &mut Report,
    reply: &mut Reply,
) {
    let now = record::now();
    let transition = breaker::record_run(
        data,
        name,
        previous,
        failure,
        threshold,
        &record::timestamp(now),
    );
    match transition {
        Ok(Transition::Opened { failures }) => {
            let message = format!(
                "ctxopt: the hook {name} failed {failures} runs in a row and is now disabled \
                 (circuit breaker); fix it, then run `ctxopt hooks enable {}`",
                shell_quote(name)
            );
            report.push(
                &Record::Alert {
                    id: "Alert-A-002".to_owned(),
                    severity: AlertSeverity::P1,
                    message: Text::new(
                        &format!("hook failure rate up: {message}"),
                        record::MAX_MESSAGE_CHARS,
                    ),
                    value: f64::from(failures),
                    threshold: f64::from(threshold),
                },
                now,
            );
            announce(reply, &message);
        }
        Ok(Transition::Steady) => {}
        Err(err) => {
            report.push(&Record::error(Severity::Medium, &err), now);
        }
    }
}

/// Tells the user the breaker opened: as a `systemMessage` when the hook's stdout is empty
/// (so the reply stays one JSON object), else as the first stderr line (what Claude Code
/// shows for a failed hook).
fn announce(reply: &mut Reply, message: &str) {
    if reply.stdout.iter().all(u8::is_ascii_whitespace) {
        let output = HookOutput {
            system_message: Some(message.to_owned()),
            ..HookOutput::default()
        };
        reply.stdout = format!("{}\n", output.to_json()).into_bytes();
    } else {
        let mut stderr = format!("{message}\n").into_bytes();
        stderr.append(&mut reply.stderr);
        reply.stderr = stderr;
    }
}

/// The `*.disabled` twin of the hook's script, when the script is gone and the twin is there
/// (the runbook's way to turn a hook off). The script is the command's script word (relative
/// to the working directory, which the command shares), else the name as a project path.
fn renamed(argv: &[OsString], name: &str, project: &Path) -> Option<PathBuf> {
    let script = match command::script_of_argv(argv) {
        Some(word) => PathBuf::from(word),
        None if name.contains('/') => project.join(name),
        None => return None,
    };
    if script.exists() {
        return None;
    }
    let mut twin = script.into_os_string();
    twin.push(".disabled");
    let twin = PathBuf::from(twin);
    twin.exists().then_some(twin)
}

/// A panic in the runner (a bug) must not look like a block or pass silently: one stderr
/// line and exit 1, a non-blocking error the user sees.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let _ = writeln!(
            io::stderr(),
            "ctxopt-run: internal error ({info}); this is a ctxopt bug; the action goes ahead"
        );
        std::process::exit(1);
    }));
}

/// `ctxopt-run --help`.
const HELP: &str = "\
ctxopt-run: runs one of a project's hook commands for Claude Code, with a timeout, retries,
per-hook metrics and a circuit breaker.

usage: ctxopt-run [--name NAME] [--timeout SECS] [--retries N] -- COMMAND [ARGS...]

  --name NAME     the hook's name in metrics.jsonl (`hook` field); default: the script the
                  command runs, relative to the project (.claude/hooks/PreToolUse.js)
  --timeout SECS  limit for the whole run, retries included; at the limit the command's
                  process group is killed and the run fails (exit 1, the action goes ahead);
                  default: hooks.timeout_seconds in .claude/ctxopt.json (30)
  --retries N     extra attempts after a failure (not after exit 2 or a timeout);
                  default: hooks.retries (1)

The command gets the same stdin bytes, environment and working directory; its stdout,
stderr and exit code come back unchanged (exit 2 still blocks). A hook whose script was
renamed to *.disabled, or that `ctxopt hooks disable` or the circuit breaker turned off, is
skipped (exit 0). `ctxopt install --wrap-existing` puts this in front of a project's hooks.";

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<OsString> {
        ["sh", "-c", script].iter().map(OsString::from).collect()
    }

    fn plan(script: &str, timeout_ms: u64, retries: u32) -> Plan {
        Plan {
            argv: sh(script),
            timeout: Duration::from_millis(timeout_ms),
            retries,
            backoff: Duration::from_millis(10),
        }
    }

    fn stdin(bytes: &[u8]) -> Arc<[u8]> {
        Arc::from(bytes)
    }

    #[test]
    fn relays_bytes_and_exit_code() {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let attempts = supervise(
            &plan("cat; printf 'e\\000rr' >&2; exit 7", 5_000, 0),
            &stdin(&big),
            Instant::now(),
        );
        assert_eq!(attempts.len(), 1);
        let a = &attempts[0];
        assert_eq!(a.stdout, big);
        assert_eq!(a.stderr, b"e\0rr");
        assert_eq!(a.exit_code(), 7);
        assert_eq!(
            a.error("sh", Duration::from_secs(1)).as_deref(),
            Some("exit code 7: e\u{0}rr")
        );
    }

    #[test]
    fn exit_two_is_a_block_and_never_retried() {
        let attempts = supervise(&plan("exit 2", 5_000, 3), &stdin(b""), Instant::now());
        assert_eq!(attempts.len(), 1);
        assert!(attempts[0].blocked() && !attempts[0].failed());
        assert_eq!(attempts[0].exit_code(), 2);
    }

    #[test]
    fn failures_are_retried_up_to_the_policy() {
        let attempts = supervise(&plan("exit 3", 5_000, 2), &stdin(b""), Instant::now());
        assert_eq!(attempts.len(), 3);
        let signaled = supervise(
            &plan("kill -SEGV $$", 5_000, 0),
            &stdin(b""),
            Instant::now(),
        );
        assert_eq!(signaled[0].exit_code(), 128 + 11);
        assert_eq!(
            signaled[0].error("sh", Duration::ZERO).as_deref(),
            Some("killed by signal 11 (SIGSEGV)")
        );
    }

    /// The command closes stdout and stderr first and exits later: its exit is waited for
    /// (the pidfd, or `try_wait` steps), neither missed nor waited past.
    #[test]
    fn an_exit_after_the_pipes_closed_is_waited_for() {
        let started = Instant::now();
        let attempts = supervise(
            &plan("echo out; exec >&- 2>&-; sleep 0.3; exit 3", 5_000, 0),
            &stdin(b""),
            started,
        );
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(started.elapsed() < Duration::from_secs(4));
        assert_eq!(attempts[0].exit_code(), 3);
        assert_eq!(attempts[0].stdout, b"out\n");
        let started = Instant::now();
        let hung = supervise(
            &plan("exec >&- 2>&-; sleep 30", 300, 0),
            &stdin(b""),
            started,
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(matches!(hung[0].status, Status::TimedOut));
    }

    #[test]
    fn a_timeout_kills_the_group_and_is_not_retried() {
        let started = Instant::now();
        let attempts = supervise(&plan("sleep 30 & sleep 30", 300, 2), &stdin(b""), started);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(attempts.len(), 1);
        assert!(matches!(attempts[0].status, Status::TimedOut));
        assert_eq!(
            attempts[0]
                .error("sh", Duration::from_millis(300))
                .as_deref(),
            Some("timeout after 0.3 s")
        );
    }

    #[test]
    fn a_missing_program_is_127() {
        let p = Plan {
            argv: vec![OsString::from("/nonexistent/ctxopt-test-hook")],
            timeout: Duration::from_secs(5),
            retries: 0,
            backoff: Duration::ZERO,
        };
        let attempts = supervise(&p, &stdin(b"{}"), Instant::now());
        assert_eq!(attempts[0].exit_code(), 127);
        assert!(
            attempts[0]
                .error("/nonexistent/ctxopt-test-hook", Duration::ZERO)
                .unwrap()
                .starts_with("failed to run /nonexistent/ctxopt-test-hook: ")
        );
    }

    #[test]
    fn announcement_goes_where_the_client_shows_it() {
        let mut empty = Reply {
            stdout: b"\n".to_vec(),
            stderr: b"boom\n".to_vec(),
            code: 1,
        };
        announce(&mut empty, "off");
        assert_eq!(empty.stdout, b"{\"systemMessage\":\"off\"}\n");
        let mut busy = Reply {
            stdout: b"{}".to_vec(),
            stderr: b"boom\n".to_vec(),
            code: 1,
        };
        announce(&mut busy, "off");
        assert_eq!(busy.stdout, b"{}");
        assert_eq!(busy.stderr, b"off\nboom\n");
    }
}
