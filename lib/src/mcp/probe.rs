//! One MCP server's health check (runbook P1-003): reach it the way Claude Code would, say
//! `initialize`, then `tools/list` to the last page, and report what it lists or, in words an
//! operator can act on, why it could not.
//!
//! - **stdio** (no `type`, or `"stdio"`): `${VAR}` / `${VAR:-default}` expanded in `command`,
//!   `args` and `env` from the process environment (an unset variable without a default is a
//!   failure naming it); the server is started in the project directory with `env` and
//!   `CLAUDE_PROJECT_DIR` added, in a process group of its own, and spoken to in
//!   newline-delimited JSON-RPC. Two threads read its stdout (lines, 16 MiB in all) and its
//!   stderr (the last 2 KB kept for the error message); this thread waits on a channel with
//!   the probe's one deadline. At the end, or at a failure or the deadline, stdin is closed,
//!   the whole group gets SIGTERM, then after a short grace SIGKILL, and the server is reaped:
//!   children it forked die with it (only a process that left the group with `setsid`
//!   escapes), as with [`crate::wrap::run`]'s supervisor.
//! - **http** (`"http"`, `"streamable-http"`): streamable HTTP over [`ureq`] (blocking,
//!   rustls): `initialize` sent by POST with `Accept: application/json, text/event-stream`, the
//!   answer read as JSON or as an SSE stream, `Mcp-Session-Id` and `MCP-Protocol-Version` kept
//!   for the later requests, the session deleted at the end. `${VAR}` expands in `url` and
//!   `headers`. A 401/403 without an `Authorization` header configured is an OAuth server:
//!   not checked (Claude Code signs in to it; ctxopt cannot).
//! - **sse** and **ws**: not checked (a distinct status, neither OK nor a failure).
//!
//! Nothing here writes a file or reads a config file: the caller hands over the server's JSON
//! object and gets a [`ProbeResult`].

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{GroupSignal, kill_group};
use crate::record;
use crate::wrap::command::format_secs;

/// The protocol version ctxopt asks for in `initialize`.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// The per-server limit when the caller sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Most `tools/list` pages followed.
pub const MAX_PAGES: usize = 100;

/// Most tools accepted from one server.
pub const MAX_TOOLS: usize = 10_000;

/// Most bytes read from one server (stdout, or all HTTP bodies together).
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024;

/// How much of the end of a server's stderr goes into an error message.
const STDERR_TAIL_BYTES: usize = 2048;

/// After stdout closes, how long to wait for the exit status to name it in the message.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// Between SIGTERM and SIGKILL to the server's process group.
const TERM_GRACE: Duration = Duration::from_millis(500);

/// After SIGKILL, how long to wait to reap the server.
const REAP_GRACE: Duration = Duration::from_secs(1);

/// How long to wait for the stderr reader to finish after the server exited.
const STDERR_GRACE: Duration = Duration::from_millis(200);

/// How much of a non-JSON stdout line the message quotes.
const QUOTE_CHARS: usize = 80;

/// How a probe runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The limit for the whole probe of one server: start, `initialize`, every page.
    pub timeout: Duration,
    /// The project: a stdio server's working directory and its `CLAUDE_PROJECT_DIR`.
    pub project: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            project: None,
        }
    }
}

/// How the check of one server ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// It answered `initialize` and listed its tools.
    Ok,
    /// It did not; `reason` says why, for an operator.
    Fail {
        /// What went wrong (`command not found: npx-foo`, `no answer to initialize within 30 s`).
        reason: String,
    },
    /// ctxopt does not check this kind of server (`sse transport: not checked`).
    NotChecked {
        /// Why not.
        reason: String,
    },
}

impl Status {
    /// `OK`, `FAIL` or `NOT CHECKED`, as the table prints it.
    #[must_use]
    pub fn word(&self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Fail { .. } => "FAIL",
            Self::NotChecked { .. } => "NOT CHECKED",
        }
    }

    /// `ok`, `fail` or `not_checked`, for JSON.
    #[must_use]
    pub fn key(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Fail { .. } => "fail",
            Self::NotChecked { .. } => "not_checked",
        }
    }

    /// The reason of a failure or of a server not checked.
    #[must_use]
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Ok => None,
            Self::Fail { reason } | Self::NotChecked { reason } => Some(reason),
        }
    }
}

/// `serverInfo` from the `initialize` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// The server's own name for itself.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// One tool as the server lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    /// The tool's name (the `<tool>` of `mcp__<server>__<tool>`).
    pub name: String,
    /// Its description (`""` when it has none).
    pub description: String,
    /// Its `inputSchema` (`null` when it has none).
    pub input_schema: Value,
}

/// What the check of one server found.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    /// The server's name in the config.
    pub name: String,
    /// How the check ended.
    pub status: Status,
    /// `serverInfo`, when it answered `initialize`.
    pub server_info: Option<ServerInfo>,
    /// The tools listed, in order (empty unless [`Status::Ok`]).
    pub tools: Vec<ToolDef>,
    /// `tools.len()`.
    pub tool_count: usize,
    /// Characters of the compact JSON of the tools array as the server listed it: what the
    /// tool definitions weigh in the context, before the estimate turns it into tokens.
    pub tools_chars: usize,
    /// From the start of the probe to the server being gone, in milliseconds.
    pub duration_ms: f64,
}

/// Checks the server `name` defined by `config` (its JSON object from `.mcp.json` or
/// `~/.claude.json`), within `options.timeout`. Never panics on a bad config or a bad server:
/// every problem becomes [`Status::Fail`].
#[must_use]
pub fn probe(name: &str, config: &Value, options: &Options) -> ProbeResult {
    let started = Instant::now();
    let deadline = started + options.timeout;
    let lookup = |var: &str| std::env::var(var).ok();
    let outcome = match transport(config) {
        Ok(Kind::Stdio) => probe_stdio(config, options, deadline, &lookup),
        Ok(Kind::Http) => probe_http(config, options, deadline, &lookup),
        Ok(Kind::Sse) => Err(Stop::NotChecked("sse transport: not checked".to_owned())),
        Ok(Kind::Ws) => Err(Stop::NotChecked("ws transport: not checked".to_owned())),
        Err(stop) => Err(stop),
    };
    let duration_ms = record::millis(started.elapsed());
    match outcome {
        Ok(listed) => {
            let tools_chars = Value::Array(listed.raw_tools.clone())
                .to_string()
                .chars()
                .count();
            let tools: Vec<ToolDef> = listed.raw_tools.iter().map(tool_def).collect();
            ProbeResult {
                name: name.to_owned(),
                status: Status::Ok,
                server_info: listed.server_info,
                tool_count: tools.len(),
                tools,
                tools_chars,
                duration_ms,
            }
        }
        Err(stop) => ProbeResult {
            name: name.to_owned(),
            status: match stop {
                Stop::Fail(reason) => Status::Fail { reason },
                Stop::NotChecked(reason) => Status::NotChecked { reason },
            },
            server_info: None,
            tools: Vec::new(),
            tool_count: 0,
            tools_chars: 0,
            duration_ms,
        },
    }
}

/// Why a probe stopped short of a list of tools.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stop {
    Fail(String),
    NotChecked(String),
}

fn fail(reason: impl Into<String>) -> Stop {
    Stop::Fail(reason.into())
}

/// What a successful handshake yields.
struct Listed {
    server_info: Option<ServerInfo>,
    raw_tools: Vec<Value>,
}

/// How a server is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stdio,
    Http,
    Sse,
    Ws,
}

/// The transport `config` names; no `type` means stdio, as in Claude Code.
fn transport(config: &Value) -> Result<Kind, Stop> {
    if !config.is_object() {
        return Err(fail("its config is not a JSON object"));
    }
    match config.get("type") {
        None | Some(Value::Null) => Ok(Kind::Stdio),
        Some(Value::String(t)) => match t.as_str() {
            "stdio" => Ok(Kind::Stdio),
            "http" | "streamable-http" => Ok(Kind::Http),
            "sse" => Ok(Kind::Sse),
            "ws" => Ok(Kind::Ws),
            other => Err(fail(format!("unknown transport type \"{other}\""))),
        },
        Some(_) => Err(fail("\"type\" is not a string")),
    }
}

fn tool_def(raw: &Value) -> ToolDef {
    ToolDef {
        name: raw
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        description: raw
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        input_schema: raw.get("inputSchema").cloned().unwrap_or(Value::Null),
    }
}

// ---------------------------------------------------------------------------------------------
// `${VAR}` expansion

/// An unset variable without a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingVar {
    /// The variable.
    pub var: String,
    /// Where it is used: `args[1]`, `env.API_KEY`, `url`, …
    pub field: String,
}

impl fmt::Display for MissingVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "environment variable {} is not set (used in {})",
            self.var, self.field
        )
    }
}

/// Expands `${VAR}` and `${VAR:-default}` in `text` with `lookup` (a set variable wins, even
/// when empty). `$VAR` without braces and an unclosed `${` stay literal.
pub fn expand(
    text: &str,
    field: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, MissingVar> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start + 2..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = &rest[start + 2..start + 2 + len];
        let (var, default) = match inner.split_once(":-") {
            Some((var, default)) => (var, Some(default)),
            None => (inner, None),
        };
        match (lookup(var), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(MissingVar {
                    var: var.to_owned(),
                    field: field.to_owned(),
                });
            }
        }
        rest = &rest[start + 2 + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The string-valued object `key` of `config` (`env`, `headers`), each value expanded.
fn expanded_map(
    config: &Value,
    key: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, Stop> {
    let Some(value) = config.get(key) else {
        return Ok(Vec::new());
    };
    let Some(map) = value.as_object() else {
        return Err(fail(format!("\"{key}\" is not an object")));
    };
    map.iter()
        .map(|(name, value)| {
            let Some(text) = value.as_str() else {
                return Err(fail(format!("{key}.{name} is not a string")));
            };
            let field = format!("{key}.{name}");
            let text = expand(text, &field, lookup).map_err(|e| fail(e.to_string()))?;
            Ok((name.clone(), text))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The conversation, common to both transports

/// A JSON-RPC connection to one server.
trait Session {
    /// Sends request `method` and returns its `result`, within `deadline`.
    fn request(&mut self, method: &str, params: Value, deadline: Instant) -> Result<Value, Stop>;
    /// Sends notification `method`.
    fn notify(&mut self, method: &str, deadline: Instant) -> Result<(), Stop>;
}

/// `initialize`, `notifications/initialized`, then `tools/list` page by page.
fn handshake(session: &mut dyn Session, deadline: Instant) -> Result<Listed, Stop> {
    let init = session.request(
        "initialize",
        json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "ctxopt", "version": env!("CARGO_PKG_VERSION") },
        }),
        deadline,
    )?;
    let server_info = init.get("serverInfo").map(|info| ServerInfo {
        name: info
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        version: info
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    });
    session.notify("notifications/initialized", deadline)?;
    let has_tools = init
        .get("capabilities")
        .and_then(|c| c.get("tools"))
        .is_some();
    let mut raw_tools = Vec::new();
    if has_tools {
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            if pages == MAX_PAGES {
                return Err(fail(format!("tools/list has more than {MAX_PAGES} pages")));
            }
            pages += 1;
            let params = match &cursor {
                Some(cursor) => json!({ "cursor": cursor }),
                None => json!({}),
            };
            let page = session.request("tools/list", params, deadline)?;
            let Some(tools) = page.get("tools").and_then(Value::as_array) else {
                return Err(fail("answered tools/list without a \"tools\" array"));
            };
            raw_tools.extend(tools.iter().cloned());
            if raw_tools.len() > MAX_TOOLS {
                return Err(fail(format!("lists more than {MAX_TOOLS} tools")));
            }
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
                _ => break,
            }
        }
    }
    Ok(Listed {
        server_info,
        raw_tools,
    })
}

/// A JSON-RPC message the server sent, as far as the probe cares.
enum Incoming {
    /// The answer to request `id`: its `result`, or the reason from its `error`.
    Response {
        id: Value,
        result: Result<Value, String>,
    },
    /// A request from the server (`ping`, …), which needs an answer.
    Request { id: Value, method: String },
    /// A notification, a log line in JSON, or anything else to skip.
    Other,
}

fn classify(message: &Value) -> Incoming {
    let Some(object) = message.as_object() else {
        return Incoming::Other;
    };
    let id = object.get("id").cloned().unwrap_or(Value::Null);
    if let Some(method) = object.get("method").and_then(Value::as_str) {
        if id.is_null() {
            return Incoming::Other;
        }
        return Incoming::Request {
            id,
            method: method.to_owned(),
        };
    }
    if let Some(result) = object.get("result") {
        return Incoming::Response {
            id,
            result: Ok(result.clone()),
        };
    }
    if let Some(error) = object.get("error") {
        let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return Incoming::Response {
            id,
            result: Err(format!("error {code}: {message}")),
        };
    }
    Incoming::Other
}

/// The answer to a request from the server: `ping` gets `{}`, anything else "method not found"
/// (the probe declares no client capabilities).
fn answer(id: &Value, method: &str) -> Value {
    if method == "ping" {
        json!({ "jsonrpc": "2.0", "id": id, "result": {} })
    } else {
        json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32601, "message": "method not found" } })
    }
}

fn request_message(id: u64, method: &str, params: &Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

fn no_answer(method: &str, timeout: Duration) -> Stop {
    fail(format!(
        "no answer to {method} within {} s",
        format_secs(timeout.as_secs_f64())
    ))
}

/// The first [`QUOTE_CHARS`] characters of `line`, trimmed.
fn quote(line: &str) -> String {
    crate::redact::truncate(line.trim(), QUOTE_CHARS)
}

// ---------------------------------------------------------------------------------------------
// stdio

/// What the stdout reader reports.
enum Out {
    Line(Vec<u8>),
    Eof,
    TooLarge,
    Failed(io::Error),
}

fn probe_stdio(
    config: &Value,
    options: &Options,
    deadline: Instant,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Listed, Stop> {
    let command = match config.get("command") {
        Some(Value::String(c)) if !c.trim().is_empty() => expand(c, "command", lookup),
        Some(Value::String(_)) | None => return Err(fail("no \"command\" in its config")),
        Some(_) => return Err(fail("\"command\" is not a string")),
    }
    .map_err(|e| fail(e.to_string()))?;
    let args: Vec<String> = match config.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(args)) => args
            .iter()
            .enumerate()
            .map(|(i, arg)| {
                let field = format!("args[{i}]");
                let Some(text) = arg.as_str() else {
                    return Err(fail(format!("{field} is not a string")));
                };
                expand(text, &field, lookup).map_err(|e| fail(e.to_string()))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(fail("\"args\" is not an array")),
    };
    let env = expanded_map(config, "env", lookup)?;

    let mut cmd = Command::new(&command);
    cmd.args(&args)
        .envs(env)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(project) = &options.project {
        cmd.env(crate::project::PROJECT_ENV, project);
        if project.is_dir() {
            cmd.current_dir(project);
        }
    }
    let child = cmd.spawn().map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => fail(format!("command not found: {command}")),
        io::ErrorKind::PermissionDenied => fail(format!("command not executable: {command}")),
        _ => fail(format!("failed to start {command}: {err}")),
    })?;
    let mut session = StdioSession::start(child, options.timeout);
    let listed = handshake(&mut session, deadline);
    session.stop();
    listed
}

/// A running stdio server and the threads that read it.
struct StdioSession {
    pgid: u32,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Out>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_done: mpsc::Receiver<()>,
    next_id: u64,
    timeout: Duration,
    /// The server, reaped by `try_wait` once it exits.
    child: Child,
    /// Its exit status, once seen.
    exited: Option<ExitStatus>,
}

impl StdioSession {
    fn start(mut child: Child, timeout: Duration) -> Self {
        let (tx, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            thread::spawn(move || read_lines(stdout, &tx));
        }
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, stderr_done) = mpsc::channel();
        if let Some(pipe) = child.stderr.take() {
            let tail = Arc::clone(&stderr);
            thread::spawn(move || {
                keep_tail(pipe, &tail);
                let _ = done_tx.send(());
            });
        }
        Self {
            pgid: child.id(),
            stdin: child.stdin.take(),
            lines,
            stderr,
            stderr_done,
            next_id: 1,
            timeout,
            child,
            exited: None,
        }
    }

    fn send(&mut self, message: &Value, method: &str, deadline: Instant) -> Result<(), Stop> {
        let mut line = message.to_string();
        line.push('\n');
        let written = match self.stdin.as_mut() {
            Some(pipe) => pipe.write_all(line.as_bytes()).and_then(|()| pipe.flush()),
            None => Err(io::Error::from(io::ErrorKind::BrokenPipe)),
        };
        written.map_err(|_| self.closed(method, deadline))
    }

    /// Why the server stopped talking before answering `method`: its exit status (waited for
    /// briefly) and the end of its stderr.
    fn closed(&mut self, method: &str, deadline: Instant) -> Stop {
        let until = (Instant::now() + EXIT_GRACE).min(deadline);
        while self.exited.is_none() && Instant::now() < until {
            self.exited = self.child.try_wait().ok().flatten();
            if self.exited.is_none() {
                thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.stderr_done.recv_timeout(STDERR_GRACE);
        let what = match self.exited {
            Some(status) => match (status.code(), status.signal()) {
                (Some(code), _) => format!("exited with status {code}"),
                (None, Some(signal)) => format!("was killed by signal {signal}"),
                (None, None) => "exited".to_owned(),
            },
            None => "closed its stdout".to_owned(),
        };
        let stderr = self.stderr_tail();
        if stderr.is_empty() {
            fail(format!("{what} before answering {method}"))
        } else {
            fail(format!(
                "{what} before answering {method}; stderr: {stderr}"
            ))
        }
    }

    /// The end of what the server wrote to stderr, on one line.
    fn stderr_tail(&self) -> String {
        let bytes = match self.stderr.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let text = String::from_utf8_lossy(&bytes);
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// Closes stdin, then SIGTERM to the group, a grace, SIGKILL to the group, and reaps.
    fn stop(mut self) {
        drop(self.stdin.take());
        let _ = kill_group(self.pgid, GroupSignal::Term);
        let exited =
            self.exited.is_some() || wait_until(&mut self.child, Instant::now() + TERM_GRACE);
        let _ = kill_group(self.pgid, GroupSignal::Kill);
        if !exited {
            wait_until(&mut self.child, Instant::now() + REAP_GRACE);
        }
    }
}

impl Session for StdioSession {
    fn request(&mut self, method: &str, params: Value, deadline: Instant) -> Result<Value, Stop> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&request_message(id, method, &params), method, deadline)?;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let bytes = match self.lines.recv_timeout(wait) {
                Ok(Out::Line(bytes)) => bytes,
                Ok(Out::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(self.closed(method, deadline));
                }
                Ok(Out::TooLarge) => {
                    return Err(fail(format!(
                        "wrote more than {} MiB on stdout",
                        MAX_OUTPUT_BYTES / (1024 * 1024)
                    )));
                }
                Ok(Out::Failed(err)) => {
                    return Err(fail(format!("failed to read its stdout: {err}")));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(no_answer(method, self.timeout));
                }
            };
            let text = String::from_utf8_lossy(&bytes);
            if text.trim().is_empty() {
                continue;
            }
            let Ok(message) = serde_json::from_str::<Value>(&text) else {
                return Err(fail(format!("prints non-JSON on stdout: {}", quote(&text))));
            };
            match classify(&message) {
                Incoming::Response { id: got, result } if got == json!(id) => {
                    return result.map_err(|e| fail(format!("{method} failed: {e}")));
                }
                Incoming::Request { id, method: asked } => {
                    self.send(&answer(&id, &asked), method, deadline)?;
                }
                Incoming::Response { .. } | Incoming::Other => {}
            }
        }
    }

    fn notify(&mut self, method: &str, deadline: Instant) -> Result<(), Stop> {
        self.send(
            &json!({ "jsonrpc": "2.0", "method": method }),
            method,
            deadline,
        )
    }
}

/// Polls `child` until it exits or `until`; whether it exited (and was reaped).
fn wait_until(child: &mut Child, until: Instant) -> bool {
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() >= until => return false,
            Ok(None) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Reads `stdout` line by line onto `tx`, at most [`MAX_OUTPUT_BYTES`] in all.
fn read_lines(stdout: impl Read, tx: &mpsc::Sender<Out>) {
    let cap = u64::try_from(MAX_OUTPUT_BYTES).unwrap_or(u64::MAX);
    let mut reader = BufReader::new(stdout).take(cap + 1);
    loop {
        let mut line = Vec::new();
        let report = match reader.read_until(b'\n', &mut line) {
            Ok(0) => Out::Eof,
            Ok(_) if reader.limit() == 0 => Out::TooLarge,
            Ok(_) => Out::Line(line),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => Out::Failed(err),
        };
        let last = !matches!(report, Out::Line(_));
        if tx.send(report).is_err() || last {
            return;
        }
    }
}

/// Reads `pipe` to its end, keeping its last [`STDERR_TAIL_BYTES`] in `tail`.
fn keep_tail(mut pipe: impl Read, tail: &Mutex<Vec<u8>>) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let mut kept = match tail.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > STDERR_TAIL_BYTES {
            let cut = kept.len() - STDERR_TAIL_BYTES;
            kept.drain(..cut);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// streamable HTTP

fn probe_http(
    config: &Value,
    options: &Options,
    deadline: Instant,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Listed, Stop> {
    let url = match config.get("url") {
        Some(Value::String(u)) if !u.trim().is_empty() => {
            expand(u, "url", lookup).map_err(|e| fail(e.to_string()))?
        }
        Some(Value::String(_)) | None => return Err(fail("no \"url\" in its config")),
        Some(_) => return Err(fail("\"url\" is not a string")),
    };
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(fail(format!(
            "url is not http:// or https://: {}",
            quote(&url)
        )));
    }
    let headers = expanded_map(config, "headers", lookup)?;
    let authorized = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(concat!("ctxopt/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut session = HttpSession {
        agent,
        url,
        headers,
        authorized,
        session_id: None,
        protocol: None,
        next_id: 1,
        timeout: options.timeout,
        budget: MAX_OUTPUT_BYTES,
    };
    let listed = handshake(&mut session, deadline);
    session.close(deadline);
    listed
}

/// A streamable-HTTP connection to one server.
struct HttpSession {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(String, String)>,
    /// Whether the config sends an `Authorization` header (else a 401 means OAuth).
    authorized: bool,
    /// `Mcp-Session-Id` from the `initialize` answer.
    session_id: Option<String>,
    /// The protocol version the server chose, sent as `MCP-Protocol-Version` afterwards.
    protocol: Option<String>,
    next_id: u64,
    timeout: Duration,
    /// Bytes still allowed from the server, over all bodies.
    budget: usize,
}

impl HttpSession {
    /// POSTs `message`; for a request (`id` given) returns the matching answer's `result`.
    fn post(
        &mut self,
        message: &Value,
        id: Option<u64>,
        method: &str,
        deadline: Instant,
    ) -> Result<Option<Value>, Stop> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(no_answer(method, self.timeout));
        }
        let mut request = self
            .agent
            .post(&self.url)
            .config()
            .timeout_global(Some(remaining))
            .build()
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream");
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(session) = &self.session_id {
            request = request.header("Mcp-Session-Id", session);
        }
        if let Some(protocol) = &self.protocol {
            request = request.header("MCP-Protocol-Version", protocol);
        }
        let response = request
            .send(message.to_string())
            .map_err(|err| self.transport_error(&err, method))?;
        let status = response.status().as_u16();
        if (status == 401 || status == 403) && !self.authorized {
            return Err(Stop::NotChecked(format!(
                "needs sign-in (HTTP {status} to {method}): OAuth servers are not checked"
            )));
        }
        if let Some(session) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            self.session_id = Some(session.to_owned());
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let limit = u64::try_from(self.budget).unwrap_or(u64::MAX);
        let mut body = response
            .into_body()
            .into_with_config()
            .limit(limit)
            .reader();
        if !(200..300).contains(&status) {
            let mut text = String::new();
            let _ = (&mut body).take(4096).read_to_string(&mut text);
            let detail = quote(text.lines().next().unwrap_or_default());
            return Err(fail(if detail.is_empty() {
                format!("HTTP {status} to {method}")
            } else {
                format!("HTTP {status} to {method}: {detail}")
            }));
        }
        let Some(id) = id else {
            return Ok(None);
        };
        let found = if content_type.starts_with("text/event-stream") {
            self.read_sse(body, id, method)
        } else {
            self.read_json(body, id, method)
        }?;
        Ok(Some(found))
    }

    /// The answer to `id` in a JSON body (one message or a batch).
    fn read_json(&mut self, mut body: impl Read, id: u64, method: &str) -> Result<Value, Stop> {
        let mut bytes = Vec::new();
        body.read_to_end(&mut bytes)
            .map_err(|err| self.read_error(&err, method))?;
        self.budget = self.budget.saturating_sub(bytes.len());
        let text = String::from_utf8_lossy(&bytes);
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            return Err(fail(format!(
                "answered {method} with non-JSON: {}",
                quote(&text)
            )));
        };
        let messages = match value {
            Value::Array(items) => items,
            single => vec![single],
        };
        for message in &messages {
            if let Incoming::Response { id: got, result } = classify(message)
                && got == json!(id)
            {
                return result.map_err(|e| fail(format!("{method} failed: {e}")));
            }
        }
        Err(fail(format!("answered {method} without its result")))
    }

    /// The answer to `id` in an SSE stream: events are read until it comes (the server may
    /// keep the stream open after it).
    fn read_sse(&mut self, body: impl Read, id: u64, method: &str) -> Result<Value, Stop> {
        let mut reader = BufReader::new(body);
        let mut data = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(|err| self.read_error(&err, method))?;
            self.budget = self.budget.saturating_sub(n);
            let text = line.trim_end_matches(['\r', '\n']);
            if n == 0 || text.is_empty() {
                if !data.is_empty() {
                    if let Ok(message) = serde_json::from_str::<Value>(&data)
                        && let Incoming::Response { id: got, result } = classify(&message)
                        && got == json!(id)
                    {
                        return result.map_err(|e| fail(format!("{method} failed: {e}")));
                    }
                    data.clear();
                }
                if n == 0 {
                    return Err(fail(format!(
                        "ended the event stream without answering {method}"
                    )));
                }
            } else if let Some(rest) = text.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            }
        }
    }

    fn transport_error(&self, err: &ureq::Error, method: &str) -> Stop {
        match err {
            ureq::Error::Timeout(_) => no_answer(method, self.timeout),
            ureq::Error::HostNotFound => fail(format!("host not found: {}", self.url)),
            ureq::Error::ConnectionFailed => fail(format!("cannot connect to {}", self.url)),
            ureq::Error::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
                fail(format!("connection refused: {}", self.url))
            }
            ureq::Error::Io(io) if io.kind() == io::ErrorKind::TimedOut => {
                no_answer(method, self.timeout)
            }
            ureq::Error::Rustls(_) | ureq::Error::Tls(_) => {
                fail(format!("TLS error with {}: {err}", self.url))
            }
            ureq::Error::Io(io)
                if io.kind() == io::ErrorKind::InvalidData && self.url.starts_with("https://") =>
            {
                fail(format!("TLS error with {}: {io}", self.url))
            }
            ureq::Error::BodyExceedsLimit(_) => fail(format!(
                "sent more than {} MiB",
                MAX_OUTPUT_BYTES / (1024 * 1024)
            )),
            other => fail(format!("{method} to {} failed: {other}", self.url)),
        }
    }

    fn read_error(&self, err: &io::Error, method: &str) -> Stop {
        match err.get_ref().and_then(|e| e.downcast_ref::<ureq::Error>()) {
            Some(inner) => self.transport_error(inner, method),
            None if err.kind() == io::ErrorKind::TimedOut => no_answer(method, self.timeout),
            None => fail(format!("failed to read the answer to {method}: {err}")),
        }
    }

    /// Ends the session (`DELETE` with its id), best effort, within what is left of the
    /// deadline and at most a second.
    fn close(&self, deadline: Instant) {
        let Some(session) = &self.session_id else {
            return;
        };
        let remaining = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(1));
        if remaining.is_zero() {
            return;
        }
        let mut request = self
            .agent
            .delete(&self.url)
            .config()
            .timeout_global(Some(remaining))
            .build()
            .header("Mcp-Session-Id", session);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let _ = request.call();
    }
}

impl Session for HttpSession {
    fn request(&mut self, method: &str, params: Value, deadline: Instant) -> Result<Value, Stop> {
        let id = self.next_id;
        self.next_id += 1;
        let result = self
            .post(
                &request_message(id, method, &params),
                Some(id),
                method,
                deadline,
            )?
            .unwrap_or(Value::Null);
        if method == "initialize" {
            self.protocol = result
                .get("protocolVersion")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        Ok(result)
    }

    fn notify(&mut self, method: &str, deadline: Instant) -> Result<(), Stop> {
        self.post(
            &json!({ "jsonrpc": "2.0", "method": method }),
            None,
            method,
            deadline,
        )
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(var: &str) -> Option<String> {
        match var {
            "HOME" => Some("/home/u".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn quick(config: &Value) -> ProbeResult {
        probe(
            "t",
            config,
            &Options {
                timeout: Duration::from_secs(5),
                project: None,
            },
        )
    }

    #[test]
    fn expands_like_claude_code() {
        let ok = |s: &str| expand(s, "args[0]", &env).unwrap();
        assert_eq!(ok("${HOME}/x"), "/home/u/x");
        assert_eq!(ok("${NOPE:-/tmp}/y"), "/tmp/y");
        assert_eq!(ok("${EMPTY:-d}"), "");
        assert_eq!(ok("$HOME ${HOME"), "$HOME ${HOME");
        assert_eq!(ok("a${HOME}b${HOME}c"), "a/home/ub/home/uc");
        let err = expand("--key=${API_KEY}", "args[1]", &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable API_KEY is not set (used in args[1])"
        );
    }

    #[test]
    fn transports() {
        assert_eq!(transport(&json!({"command": "x"})), Ok(Kind::Stdio));
        assert_eq!(
            transport(&json!({"type": "streamable-http"})),
            Ok(Kind::Http)
        );
        assert_eq!(transport(&json!({"type": "sse"})), Ok(Kind::Sse));
        assert_eq!(
            transport(&json!({"type": "carrier-pigeon"})),
            Err(fail("unknown transport type \"carrier-pigeon\""))
        );
        let sse = quick(&json!({"type": "sse", "url": "https://mcp.example.com/sse"}));
        assert_eq!(
            sse.status,
            Status::NotChecked {
                reason: "sse transport: not checked".to_owned()
            }
        );
    }

    #[test]
    fn classifies_messages() {
        assert!(matches!(
            classify(&json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {}})),
            Incoming::Other
        ));
        assert!(matches!(
            classify(&json!({"jsonrpc": "2.0", "id": 7, "method": "ping"})),
            Incoming::Request { method, .. } if method == "ping"
        ));
        match classify(
            &json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32600, "message": "bad"}}),
        ) {
            Incoming::Response { id, result } => {
                assert_eq!(id, json!(1));
                assert_eq!(result, Err("error -32600: bad".to_owned()));
            }
            _ => panic!("not a response"),
        }
    }

    #[test]
    fn config_errors_are_failures() {
        let missing = quick(&json!({"command": "node", "env": {"K": "${CTXOPT_TEST_UNSET_VAR}"}}));
        assert_eq!(
            missing.status.reason(),
            Some("environment variable CTXOPT_TEST_UNSET_VAR is not set (used in env.K)")
        );
        let not_found = quick(&json!({"command": "ctxopt-no-such-server"}));
        assert_eq!(
            not_found.status.reason(),
            Some("command not found: ctxopt-no-such-server")
        );
        assert_eq!(
            quick(&json!({"args": []})).status.reason(),
            Some("no \"command\" in its config")
        );
    }

    #[test]
    fn stdio_faults_are_named() {
        let exits = quick(&json!({"command": "sh", "args": ["-c", "echo boom >&2; exit 3"]}));
        assert_eq!(
            exits.status.reason(),
            Some("exited with status 3 before answering initialize; stderr: boom")
        );
        let garbage =
            quick(&json!({"command": "sh", "args": ["-c", "echo Starting server...; sleep 5"]}));
        assert_eq!(
            garbage.status.reason(),
            Some("prints non-JSON on stdout: Starting server...")
        );
    }

    #[test]
    fn stdio_server_with_pages() {
        let script = r#"
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m:
        continue
    if m["method"] == "initialize":
        print(json.dumps({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "hi"}}))
        r = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "fake", "version": "1.2"}}
    else:
        page = int(m["params"].get("cursor", "0"))
        r = {"tools": [{"name": "t%d" % page, "inputSchema": {"type": "object"}}]}
        if page < 2:
            r["nextCursor"] = str(page + 1)
    print(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": r}), flush=True)
"#;
        let result = quick(&json!({"command": "python3", "args": ["-c", script]}));
        assert_eq!(result.status, Status::Ok, "{result:?}");
        assert_eq!(
            result.server_info,
            Some(ServerInfo {
                name: "fake".to_owned(),
                version: "1.2".to_owned()
            })
        );
        let names: Vec<&str> = result.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["t0", "t1", "t2"]);
        assert_eq!(result.tool_count, 3);
        let compact = r#"[{"name":"t0","inputSchema":{"type":"object"}},{"name":"t1","inputSchema":{"type":"object"}},{"name":"t2","inputSchema":{"type":"object"}}]"#;
        assert_eq!(result.tools_chars, compact.len());
    }

    /// A one-connection-per-request HTTP server answering in JSON, which checks that the
    /// session id from `initialize` comes back on every later request.
    fn json_server() -> (String, thread::JoinHandle<Vec<String>>) {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let handle = thread::spawn(move || {
            let mut seen = Vec::new();
            for stream in listener.incoming().take(4) {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                    head.push_str(&line.to_ascii_lowercase());
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let method = message["method"].as_str().unwrap_or("DELETE").to_owned();
                let has_session = head.contains("mcp-session-id: s-1");
                seen.push(format!("{method} session={has_session}"));
                let result = match method.as_str() {
                    "initialize" => {
                        json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "j", "version": "0"}})
                    }
                    "tools/list" => json!({"tools": [{"name": "a"}, {"name": "b"}]}),
                    _ => Value::Null,
                };
                let reply = if message.get("id").is_some() {
                    json!({"jsonrpc": "2.0", "id": message["id"], "result": result}).to_string()
                } else {
                    String::new()
                };
                let status = if reply.is_empty() {
                    "202 Accepted"
                } else {
                    "200 OK"
                };
                write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nMcp-Session-Id: s-1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                )
                .unwrap();
            }
            seen
        });
        (url, handle)
    }

    #[test]
    fn http_json_answers_and_session_id() {
        let (url, server) = json_server();
        let result = quick(&json!({"type": "http", "url": url}));
        assert_eq!(result.status, Status::Ok, "{result:?}");
        assert_eq!(result.tool_count, 2);
        assert_eq!(
            server.join().unwrap(),
            [
                "initialize session=false",
                "notifications/initialized session=true",
                "tools/list session=true",
                "DELETE session=true",
            ]
        );
    }

    #[test]
    fn a_silent_http_server_times_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let holder = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            thread::sleep(Duration::from_millis(1500));
            drop(stream);
        });
        let result = probe(
            "t",
            &json!({"type": "http", "url": url}),
            &Options {
                timeout: Duration::from_millis(500),
                project: None,
            },
        );
        assert_eq!(
            result.status.reason(),
            Some("no answer to initialize within 0.5 s")
        );
        holder.join().unwrap();
    }

    #[test]
    fn http_faults_are_named() {
        let refused = quick(&json!({"type": "http", "url": "http://127.0.0.1:1/mcp"}));
        assert_eq!(
            refused.status.reason(),
            Some("connection refused: http://127.0.0.1:1/mcp")
        );
        let bad = quick(&json!({"type": "http", "url": "ftp://x/mcp"}));
        assert_eq!(
            bad.status.reason(),
            Some("url is not http:// or https://: ftp://x/mcp")
        );
    }
}
