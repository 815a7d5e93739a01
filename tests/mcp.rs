//! `ctxopt mcp check` (runbook P1-003) on real MCP servers from npm and on fakes that fail in
//! the ways servers do: hang, exit at once, print garbage, list hundreds of tools over pages,
//! list too many, leave a child behind.
//!
//! The real servers (`@modelcontextprotocol/server-{memory,filesystem,everything}@2026.8.31`)
//! come from `CTXOPT_NODE_MODULES` (default `target/ci-node/node_modules`, where `.ci/run`
//! installs them). With `CI=true` a missing server fails the test; elsewhere the test prints
//! a skip line and returns.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests: a failed step must fail the test at once, loudly"
)]

mod support;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{TestEnv, bin};

/// The pinned servers and the tools each lists to a client with no capabilities.
const MEMORY_TOOLS: usize = 9;
const FILESYSTEM_TOOLS: usize = 14;
const EVERYTHING_TOOLS: usize = 13;

/// `node_modules` holding the real servers, or `None` (after a skip line) when absent
/// outside CI.
fn node_modules() -> Option<PathBuf> {
    let dir = std::env::var_os("CTXOPT_NODE_MODULES").map_or_else(
        || support::repo_root().join("target/ci-node/node_modules"),
        PathBuf::from,
    );
    let wanted = ["server-memory", "server-filesystem", "server-everything"];
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|p| !entry(&dir, p).is_file())
        .collect();
    if missing.is_empty() {
        return Some(dir);
    }
    let message = format!(
        "MCP servers {missing:?} not installed under {} (npm install --prefix target/ci-node \
         @modelcontextprotocol/server-memory@2026.8.31 …)",
        dir.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("skipped: {message}");
    None
}

/// A package's entry point (its `bin` in package.json).
fn entry(node_modules: &Path, package: &str) -> PathBuf {
    node_modules
        .join("@modelcontextprotocol")
        .join(package)
        .join("dist/index.js")
}

fn write_mcp_json(env: &TestEnv, servers: &Value) {
    fs::write(
        env.project.join(".mcp.json"),
        serde_json::to_vec_pretty(&json!({ "mcpServers": servers })).unwrap(),
    )
    .unwrap();
}

fn check(env: &TestEnv, args: &[&str]) -> Output {
    let mut cmd = env.command(&bin("ctxopt"));
    cmd.args(["mcp", "check"]).args(args);
    env.run_with(cmd, b"")
}

fn json_report(out: &Output) -> Vec<Value> {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        .as_array()
        .unwrap()
        .clone()
}

fn by_name<'a>(report: &'a [Value], name: &str) -> &'a Value {
    report
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report:?}"))
}

fn cache(env: &TestEnv) -> Value {
    serde_json::from_slice(&fs::read(env.data().join("mcp-cache.json")).unwrap()).unwrap()
}

#[test]
fn real_stdio_servers_are_ok_with_their_tools() {
    let Some(modules) = node_modules() else {
        return;
    };
    let env = TestEnv::new();
    let node = |package: &str| entry(&modules, package).display().to_string();
    write_mcp_json(
        &env,
        &json!({
            "memory": {
                "command": "node",
                "args": [node("server-memory")],
                "env": { "MEMORY_FILE_PATH": "${CLAUDE_PROJECT_DIR}/memory.jsonl" },
            },
            "filesystem": { "command": "node", "args": [node("server-filesystem"), "${CLAUDE_PROJECT_DIR:-.}"] },
            "everything": { "type": "stdio", "command": "node", "args": [node("server-everything")] },
        }),
    );
    let out = check(&env, &["--json", "--timeout", "60"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report = json_report(&out);
    for (name, tools, server) in [
        ("memory", MEMORY_TOOLS, "memory-server"),
        ("filesystem", FILESYSTEM_TOOLS, "secure-filesystem-server"),
        ("everything", EVERYTHING_TOOLS, "mcp-servers/everything"),
    ] {
        let r = by_name(&report, name);
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["tool_count"], tools, "{r}");
        assert_eq!(r["tools"].as_array().unwrap().len(), tools);
        assert!(
            r["tools_chars"].as_u64().unwrap() > 100 * tools as u64,
            "{r}"
        );
        assert_eq!(r["server"]["name"], server, "{r}");
        assert_eq!(r["transport"], "stdio");
    }
    assert!(
        by_name(&report, "memory")["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("create_entities"))
    );

    let cached = cache(&env);
    let memory = &cached["servers"]["memory"];
    assert_eq!(memory["ok"], true);
    assert_eq!(memory["tool_count"], MEMORY_TOOLS);
    assert_eq!(
        memory["tools_chars"],
        by_name(&report, "memory")["tools_chars"]
    );
    assert_eq!(memory["config_sha256"].as_str().unwrap().len(), 64);
    assert!(!env.data().join("state/mcp-cache.json").exists());

    let text = check(&env, &["filesystem", "--timeout", "60"]);
    assert_eq!(text.status.code(), Some(0), "{text:?}");
    let stdout = String::from_utf8(text.stdout).unwrap();
    let row = stdout
        .lines()
        .find(|l| l.starts_with("filesystem"))
        .unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..4], ["filesystem", "stdio", "OK", "14"], "{stdout}");
    assert!(stdout.contains("1 ok, 0 failed, 0 not checked"), "{stdout}");
}

/// A free local port (bound, then released for the server to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn real_streamable_http_server_is_ok() {
    let Some(modules) = node_modules() else {
        return;
    };
    let env = TestEnv::new();
    let port = free_port();
    let _server = KillOnDrop(
        Command::new("node")
            .arg(entry(&modules, "server-everything"))
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not listen"
        );
        thread::sleep(Duration::from_millis(50));
    }
    write_mcp_json(
        &env,
        &json!({
            "everything": { "type": "http", "url": format!("http://127.0.0.1:{port}/mcp") },
            "legacy": { "type": "sse", "url": format!("http://127.0.0.1:{port}/sse") },
        }),
    );
    let out = check(&env, &["--json", "--timeout", "60"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report = json_report(&out);
    let r = by_name(&report, "everything");
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["transport"], "http");
    assert_eq!(r["tool_count"], EVERYTHING_TOOLS);
    let legacy = by_name(&report, "legacy");
    assert_eq!(legacy["status"], "not_checked");
    assert_eq!(legacy["reason"], "sse transport: not checked");
    let cached = cache(&env);
    assert_eq!(cached["servers"]["everything"]["ok"], true);
    assert!(cached["servers"].get("legacy").is_none());
}

/// A fake MCP server with one fault per mode.
const FAKE: &str = r#"
import json, os, signal, sys, time

mode = sys.argv[1]

def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()

def leave_child(pidfile):
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with open(pidfile + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(pidfile + ".tmp", pidfile)
        while True:
            time.sleep(1)
    while not os.path.exists(pidfile):
        time.sleep(0.01)

if mode == "hang":
    leave_child(sys.argv[2])
    while True:
        time.sleep(1)
if mode == "exit":
    sys.stderr.write("starting\nfatal: DATABASE_URL is not set\n")
    sys.exit(1)
if mode == "garbage":
    print("Server listening on stdio (v1.0)", flush=True)
    while True:
        time.sleep(1)
if mode == "fork":
    leave_child(sys.argv[2])

total = {"paged": 500, "huge": 10001}.get(mode, 2)
size = {"paged": 64, "huge": 1000}.get(mode, 10)
for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg:
        continue
    if msg["method"] == "initialize":
        send({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "ready"}})
        result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {"listChanged": True}},
                  "serverInfo": {"name": "fake-" + mode, "version": "0.1"}}
    elif msg["method"] == "tools/list":
        start = int(msg["params"].get("cursor", "0"))
        end = min(start + size, total)
        result = {"tools": [{"name": "tool_%d" % i, "description": "Tool %d." % i,
                             "inputSchema": {"type": "object"}} for i in range(start, end)]}
        if end < total:
            result["nextCursor"] = str(end)
    else:
        send({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "no"}})
        continue
    send({"jsonrpc": "2.0", "id": msg["id"], "result": result})
"#;

/// Whether `pid` is a live process (a zombie counts as gone: it was killed, and only its
/// reaper's bookkeeping is left).
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

fn pid_in(file: &Path) -> u32 {
    fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .parse()
        .unwrap()
}

/// Waits (bounded) for `pid` to be gone; kills it if it is not, so a failing test leaves no
/// process behind either.
fn gone(pid: u32) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < until {
        thread::sleep(Duration::from_millis(20));
    }
    if alive(pid) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        return false;
    }
    true
}

#[test]
fn faults_are_reported_in_words_and_leave_no_process() {
    let env = TestEnv::new();
    let script = env.tmp.path().join("fake_server.py");
    fs::write(&script, FAKE).unwrap();
    let fake = |mode: &str| {
        let pidfile = env.tmp.path().join(format!("{mode}.pid"));
        json!({
            "command": "python3",
            "args": [script.display().to_string(), mode, pidfile.display().to_string()],
        })
    };
    write_mcp_json(
        &env,
        &json!({
            "hang": fake("hang"),
            "exit": fake("exit"),
            "garbage": fake("garbage"),
            "paged": fake("paged"),
            "huge": fake("huge"),
            "fork": fake("fork"),
            "missing": { "command": "npx-foo", "args": ["-y", "foo"] },
            "unset": { "command": "python3", "args": ["${CTXOPT_TEST_UNSET_TOKEN}"] },
        }),
    );
    let out = check(&env, &["--json", "--timeout", "2"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report = json_report(&out);
    let reason = |name: &str| {
        let r = by_name(&report, name);
        assert_eq!(r["status"], "fail", "{r}");
        r["reason"].as_str().unwrap().to_owned()
    };
    assert_eq!(reason("hang"), "no answer to initialize within 2 s");
    assert_eq!(
        reason("exit"),
        "exited with status 1 before answering initialize; stderr: starting | fatal: \
         DATABASE_URL is not set"
    );
    assert_eq!(
        reason("garbage"),
        "prints non-JSON on stdout: Server listening on stdio (v1.0)"
    );
    assert_eq!(reason("huge"), "lists more than 10000 tools");
    assert_eq!(reason("missing"), "command not found: npx-foo");
    assert_eq!(
        reason("unset"),
        "environment variable CTXOPT_TEST_UNSET_TOKEN is not set (used in args[0])"
    );

    let paged = by_name(&report, "paged");
    assert_eq!(paged["status"], "ok", "{paged}");
    assert_eq!(paged["tool_count"], 500);
    assert_eq!(paged["tools"][499], "tool_499");
    let fork = by_name(&report, "fork");
    assert_eq!(fork["status"], "ok", "{fork}");
    assert_eq!(fork["server"]["name"], "fake-fork");

    let survivors: Vec<String> = ["fork", "hang"]
        .into_iter()
        .map(|mode| (mode, pid_in(&env.tmp.path().join(format!("{mode}.pid")))))
        .filter(|&(_, pid)| !gone(pid))
        .map(|(mode, pid)| format!("{mode}: child {pid}"))
        .collect();
    assert!(
        survivors.is_empty(),
        "servers' children outlived the check: {survivors:?}"
    );

    let cached = cache(&env);
    assert_eq!(cached["servers"]["paged"]["tool_count"], 500);
    assert_eq!(cached["servers"]["hang"]["ok"], false);
    assert_eq!(
        cached["servers"]["hang"]["error"],
        "no answer to initialize within 2 s"
    );
}

#[test]
fn a_changed_config_is_checked_again_and_removed_servers_leave_the_cache() {
    let env = TestEnv::new();
    let script = env.tmp.path().join("fake_server.py");
    fs::write(&script, FAKE).unwrap();
    let ok = json!({"command": "python3", "args": [script.display().to_string(), "ok"]});
    write_mcp_json(&env, &json!({ "a": ok, "b": ok }));
    assert_eq!(check(&env, &[]).status.code(), Some(0));
    let first = cache(&env);
    assert_eq!(first["servers"]["a"]["tool_count"], 2);
    assert!(first["servers"].get("b").is_some());

    let changed = json!({"command": "python3", "args": [script.display().to_string(), "paged"]});
    write_mcp_json(&env, &json!({ "a": changed }));
    assert_eq!(check(&env, &["--timeout", "10"]).status.code(), Some(0));
    let second = cache(&env);
    assert_eq!(second["servers"]["a"]["tool_count"], 500);
    assert_ne!(
        first["servers"]["a"]["config_sha256"],
        second["servers"]["a"]["config_sha256"]
    );
    assert!(second["servers"].get("b").is_none(), "{second}");
}

#[test]
fn unknown_names_broken_files_and_scopes() {
    let env = TestEnv::new();
    let none = check(&env, &[]);
    assert_eq!(none.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&none.stdout),
        "no enabled MCP servers\n"
    );

    let script = env.tmp.path().join("fake_server.py");
    fs::write(&script, FAKE).unwrap();
    let ok = json!({"command": "python3", "args": [script.display().to_string(), "ok"]});
    write_mcp_json(&env, &json!({ "a": ok, "off": ok }));
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    fs::write(
        env.project.join(".claude/settings.local.json"),
        br#"{"disabledMcpjsonServers": ["off"]}"#,
    )
    .unwrap();
    let user = json!({"command": "python3", "args": [script.display().to_string(), "paged"]});
    fs::write(
        env.home.join(".claude.json"),
        serde_json::to_vec(&json!({ "mcpServers": { "mine": user } })).unwrap(),
    )
    .unwrap();
    let out = check(&env, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report = json_report(&out);
    let names: Vec<&str> = report.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "mine"], "the disabled server is skipped");
    assert_eq!(by_name(&report, "mine")["scope"], "user");
    assert_eq!(by_name(&report, "mine")["tool_count"], 500);
    let disabled = json_report(&check(&env, &["off", "--json"]));
    assert_eq!(
        disabled[0]["status"], "ok",
        "a named server is checked even when disabled"
    );
    assert_eq!(disabled[0]["enabled"], false);

    let unknown = check(&env, &["zzz"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&unknown.stderr),
        "ctxopt: failed to check zzz: no such MCP server (known: a, off, mine)\n"
    );

    fs::write(env.project.join(".mcp.json"), b"{\"mcpServers\": {,}}").unwrap();
    let broken = check(&env, &[]);
    assert_eq!(broken.status.code(), Some(1), "{broken:?}");
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(
        stderr.starts_with("ctxopt: warning: ")
            && stderr.contains(".mcp.json: ")
            && stderr.contains("not valid JSON"),
        "{stderr}"
    );
}
