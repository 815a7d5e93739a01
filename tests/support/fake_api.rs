//! A scriptable fake Anthropic Messages API on 127.0.0.1, for running the real Claude Code
//! client offline (`ANTHROPIC_BASE_URL=http://127.0.0.1:PORT`).
//!
//! Std only: one accept thread and one thread per connection, HTTP/1.1 request bodies by
//! `Content-Length` (or chunked), every response sent with `Connection: close`. It answers
//! `POST /v1/messages` (query string ignored) with Server-Sent Events shaped like the real API:
//! `message_start` (carrying the scripted `usage`), one `content_block_*` triple per text or
//! `tool_use` block (tool input streamed as `input_json_delta`), `message_delta`, `message_stop`.
//! A request with `"stream": false` gets the same message as one JSON body. Any other path is
//! a 404 with an API-shaped JSON error.
//!
//! Which scripted turn answers a request is read from the request itself: the number of
//! assistant messages already in its `messages` array. So retries and the client's side
//! requests (a title, a quota probe — anything without `tools`) cannot shift the script; side
//! requests get a short plain text. Every request is recorded for the test to inspect.
//!
//! It must not decide anything the client would: it never looks at tool results, so a test
//! asserts on what the client and the hooks did, not on what the fake inferred.

#![expect(
    clippy::unwrap_used,
    reason = "test support: a fake API that cannot bind a loopback port is a test failure"
)]

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::{Value, json};

/// Token counts reported for one response, as the API's `usage` object names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[expect(
    clippy::struct_field_names,
    reason = "named exactly as the API's `usage` object"
)]
pub struct Usage {
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

impl Default for Usage {
    fn default() -> Self {
        Self {
            input_tokens: 1_200,
            cache_creation_input_tokens: 3_400,
            cache_read_input_tokens: 5_600,
            output_tokens: 78,
        }
    }
}

impl Usage {
    fn start_json(self) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "output_tokens": 1,
        })
    }

    fn full_json(self) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "output_tokens": self.output_tokens,
        })
    }
}

/// One `tool_use` block the fake model emits.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolUse {
    /// The block's id (`toolu_…`); the client echoes it as the hooks' `tool_use_id`.
    pub id: String,
    /// The tool name (`Bash`, `Write`, `Read`, …).
    pub name: String,
    /// The tool input.
    pub input: Value,
}

impl ToolUse {
    /// A tool use `id` of tool `name` with `input`.
    pub fn new(id: &str, name: &str, input: Value) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            input,
        }
    }
}

/// What one scripted assistant turn says.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Calls these tools (in one message; `stop_reason` "`tool_use`").
    Tools(Vec<ToolUse>),
    /// Ends the chain with this text (`stop_reason` "`end_turn`").
    Text(String),
}

/// One scripted assistant turn: the reply and the usage it reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// What the model says.
    pub reply: Reply,
    /// The usage reported; `None` takes the script's default.
    pub usage: Option<Usage>,
}

impl Turn {
    /// A turn calling one tool.
    pub fn tool(id: &str, name: &str, input: Value) -> Self {
        Self::tools(vec![ToolUse::new(id, name, input)])
    }

    /// A turn calling several tools in one message.
    pub fn tools(tool_uses: Vec<ToolUse>) -> Self {
        Self {
            reply: Reply::Tools(tool_uses),
            usage: None,
        }
    }

    /// A final text turn.
    pub fn text(text: &str) -> Self {
        Self {
            reply: Reply::Text(text.to_owned()),
            usage: None,
        }
    }

    /// This turn reports `usage` instead of the script's default.
    #[must_use]
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }
}

/// The whole conversation the fake model follows.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// Turn `n` answers a main-chain request holding `n` assistant messages.
    pub turns: Vec<Turn>,
    /// Usage of turns without their own.
    pub usage: Usage,
    /// The answer to side requests and to requests past the end of the script.
    pub side_text: String,
    /// Whether each usage is computed from the request received ([`request_usage`]) instead
    /// of scripted.
    pub measure: bool,
}

/// The usage a measuring script reports for a request `body`: `input_tokens` =
/// ceil(bytes / 4) of the compact JSON of its `system`, `tools` and `messages` — a function of
/// exactly what the client sent, no cache fields.
pub fn request_usage(body: &Value) -> Usage {
    let bytes: usize = ["system", "tools", "messages"]
        .iter()
        .map(|key| body.get(*key).map_or(0, |v| v.to_string().len()))
        .sum();
    Usage {
        input_tokens: bytes.div_ceil(4) as u64,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        output_tokens: 12,
    }
}

impl Script {
    /// A script of `turns` with the default usage.
    pub fn new(turns: Vec<Turn>) -> Self {
        Self {
            turns,
            usage: Usage::default(),
            side_text: String::from("OK"),
            measure: false,
        }
    }

    /// Every usage is computed from the request received ([`request_usage`]).
    #[must_use]
    pub fn measuring(mut self) -> Self {
        self.measure = true;
        self
    }

    /// Every turn without its own usage reports `usage`.
    #[must_use]
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = usage;
        self
    }

    /// The reply and usage for a request `body`.
    fn answer(&self, body: &Value) -> (Reply, Usage) {
        let (reply, usage) = self.scripted(body);
        (
            reply,
            if self.measure {
                request_usage(body)
            } else {
                usage
            },
        )
    }

    fn scripted(&self, body: &Value) -> (Reply, Usage) {
        let side = (Reply::Text(self.side_text.clone()), self.usage);
        if !is_main_chain(body) {
            return side;
        }
        self.turns
            .get(assistant_messages(body))
            .map_or(side, |t| (t.reply.clone(), t.usage.unwrap_or(self.usage)))
    }
}

/// Whether `body` belongs to the agent loop (it offers tools) rather than a side request.
pub fn is_main_chain(body: &Value) -> bool {
    body["tools"].as_array().is_some_and(|t| !t.is_empty())
}

/// How many assistant messages a request `body` already holds.
pub fn assistant_messages(body: &Value) -> usize {
    body["messages"]
        .as_array()
        .map_or(0, |m| m.iter().filter(|m| m["role"] == "assistant").count())
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Request {
    /// `POST`, `GET`, …
    pub method: String,
    /// The request target, query string included.
    pub target: String,
    /// Header names (lowercased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Request {
    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is a `POST /v1/messages`.
    pub fn is_messages(&self) -> bool {
        self.method == "POST" && self.path() == "/v1/messages"
    }

    /// One line for a failure report: method, target, and the shape of a Messages body.
    pub fn summary(&self) -> String {
        let body = self.json();
        if self.is_messages() {
            let last = body["messages"]
                .as_array()
                .and_then(|m| m.last())
                .map(|m| truncate(&m.to_string(), 300))
                .unwrap_or_default();
            format!(
                "{} {} model={} stream={} tools={} messages={} assistant={} max_tokens={} last={last}",
                self.method,
                self.target,
                body["model"],
                body["stream"],
                body["tools"].as_array().map_or(0, Vec::len),
                body["messages"].as_array().map_or(0, Vec::len),
                assistant_messages(&body),
                body["max_tokens"],
            )
        } else {
            format!(
                "{} {} body={}",
                self.method,
                self.target,
                truncate(&String::from_utf8_lossy(&self.body), 300)
            )
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// A running fake API; stops when dropped.
pub struct FakeApi {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl FakeApi {
    /// Starts a fake API following `script` on a free loopback port.
    pub fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script = Arc::new(script);
        let accept = {
            let requests = Arc::clone(&requests);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let requests = Arc::clone(&requests);
                    let script = Arc::clone(&script);
                    thread::spawn(move || {
                        let _ = serve(stream, &script, &requests);
                    });
                }
            })
        };
        Self {
            addr,
            requests,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`, for `ANTHROPIC_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The `POST /v1/messages` requests of the agent loop (those offering tools).
    pub fn main_chain(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.is_messages() && is_main_chain(&r.json()))
            .collect()
    }

    /// Every request, one summary line each, for a failure report.
    pub fn report(&self) -> String {
        let requests = self.requests();
        let mut out = format!(
            "fake API at {} received {} requests:\n",
            self.addr,
            requests.len()
        );
        for (i, r) in requests.iter().enumerate() {
            let _ = writeln!(out, "  #{i} {}", r.summary());
        }
        out
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn serve(stream: TcpStream, script: &Script, requests: &Mutex<Vec<Request>>) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let Some(request) = read_request(&mut reader)? else {
        return Ok(());
    };
    requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(request.clone());
    let response = if request.is_messages() {
        let body = request.json();
        let (reply, usage) = script.answer(&body);
        let model = body["model"].as_str().unwrap_or("claude-fake").to_owned();
        let id = format!("msg_fake_{:04}", assistant_messages(&body));
        if body["stream"] == true {
            respond(
                "200 OK",
                "text/event-stream",
                &sse(&id, &model, &reply, usage),
            )
        } else {
            respond(
                "200 OK",
                "application/json",
                &message(&id, &model, &reply, usage).to_string(),
            )
        }
    } else {
        let error = json!({
            "type": "error",
            "error": {"type": "not_found_error", "message": format!("no route {}", request.path())},
        });
        respond("404 Not Found", "application/json", &error.to_string())
    };
    writer.write_all(response.as_bytes())?;
    writer.flush()?;
    let _ = writer.shutdown(Shutdown::Write);
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    Ok(())
}

fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let mut request = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if request
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        request.body = read_chunked(reader)?;
    } else if let Some(len) = request.header("content-length") {
        let len = len.parse::<usize>().map_err(io::Error::other)?;
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        request.body = body;
    }
    Ok(Some(request))
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size = line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size, 16).map_err(io::Error::other)?;
        if size == 0 {
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        line.clear();
        reader.read_line(&mut line)?;
    }
}

fn respond(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         request-id: req_fake\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn stop_reason(reply: &Reply) -> &'static str {
    match reply {
        Reply::Tools(_) => "tool_use",
        Reply::Text(_) => "end_turn",
    }
}

fn blocks(reply: &Reply) -> Vec<Value> {
    match reply {
        Reply::Tools(uses) => uses
            .iter()
            .map(|u| json!({"type": "tool_use", "id": u.id, "name": u.name, "input": u.input}))
            .collect(),
        Reply::Text(text) => vec![json!({"type": "text", "text": text})],
    }
}

/// The whole message, for a non-streaming request.
fn message(id: &str, model: &str, reply: &Reply, usage: Usage) -> Value {
    json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks(reply),
        "stop_reason": stop_reason(reply),
        "stop_sequence": null,
        "usage": usage.full_json(),
    })
}

/// The message as the event stream of a streaming request.
fn sse(id: &str, model: &str, reply: &Reply, usage: Usage) -> String {
    let mut out = String::new();
    let mut event = |name: &str, data: Value| {
        let _ = write!(out, "event: {name}\ndata: {data}\n\n");
    };
    event(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": usage.start_json(),
        }}),
    );
    for (index, block) in blocks(reply).into_iter().enumerate() {
        let (start, delta) = if block["type"] == "tool_use" {
            (
                json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}),
                json!({"type": "input_json_delta", "partial_json": block["input"].to_string()}),
            )
        } else {
            (
                json!({"type": "text", "text": ""}),
                json!({"type": "text_delta", "text": block["text"]}),
            )
        };
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": start}),
        );
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        );
    }
    event(
        "message_delta",
        json!({"type": "message_delta",
               "delta": {"stop_reason": stop_reason(reply), "stop_sequence": null},
               "usage": {"output_tokens": usage.output_tokens}}),
    );
    event("message_stop", json!({"type": "message_stop"}));
    out
}
