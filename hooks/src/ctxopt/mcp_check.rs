//! `ctxopt mcp check [NAME]`: the health check of runbook P1-003. Picks the project's enabled
//! MCP servers (or the one named), probes them with [`ctxopt::mcp::probe`] at most
//! [`PARALLEL`] at a time, prints a table or `--json`, and records the results in the cache
//! SessionStart's estimate reads ([`ctxopt::mcp::cache`]).
//!
//! - **Which servers**: the enabled ones of [`discover`] (every scope, Claude Code's
//!   precedence and toggles, `.mcp.json` servers counted as approved as under `-p`), in its
//!   order (scope, then name); `NAME` checks that server even when it is disabled.
//! - **Streams**: the table or the JSON array on stdout; warnings about a file that defines
//!   servers (`.mcp.json`, `~/.claude.json`, `managed-mcp.json` unreadable) and a cache that
//!   could not be written on stderr, one line each; a reason the command could not run on
//!   stderr, once (printed by `main`).
//! - **Exit codes**: 0 every server checked is OK (NOT CHECKED ones allowed), 1 one failed or
//!   a file defining servers could not be read, 2 could not run (an unknown `NAME`).

use std::fmt::{self, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use ctxopt::budget::discover;
use ctxopt::config::discover::Locations;
use ctxopt::mcp::cache;
use ctxopt::mcp::probe::{self, Options, ProbeResult, Status as ProbeStatus};
use ctxopt::project;
use ctxopt::store::DataDir;
use serde_json::{Value, json};

use crate::ProjectArg;
use crate::commands::{CliError, Status};

/// Servers probed at once.
pub const PARALLEL: usize = 4;

/// Arguments of `ctxopt mcp check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    project: ProjectArg,
    /// Check only this server (its name in `.mcp.json` or `~/.claude.json`), even if disabled.
    #[arg(value_name = "NAME")]
    name: Option<String>,
    /// Limit per server, in seconds: start, `initialize` and every `tools/list` page.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = parse_timeout)]
    timeout: f64,
    /// Print a JSON array instead of a table, one object per server: `name`, `transport`,
    /// `status` (ok, fail, `not_checked`), `reason`, `server`, `tool_count`, `tools_chars`,
    /// `tools`, `duration_ms`.
    #[arg(long)]
    json: bool,
}

fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 3600.0 => Ok(secs),
        _ => Err("expected a number of seconds, more than 0 and at most 3600".to_owned()),
    }
}

/// One server to check.
#[derive(Debug, Clone)]
struct Server {
    name: String,
    /// `stdio`, `http`, `sse`, `ws`.
    transport: String,
    /// `local`, `project`, `user`, `managed`.
    scope: String,
    enabled: bool,
    config: Value,
}

/// A NAME no server has.
#[derive(Debug)]
struct UnknownName {
    name: String,
    known: Vec<String>,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.known.is_empty() {
            write!(
                f,
                "failed to check {}: the project has no MCP servers",
                self.name
            )
        } else {
            write!(
                f,
                "failed to check {}: no such MCP server (known: {})",
                self.name,
                self.known.join(", ")
            )
        }
    }
}

impl std::error::Error for UnknownName {}

/// Runs `ctxopt mcp check`.
pub fn check(args: &CheckArgs) -> Result<Status, CliError> {
    let project = project::for_cli(args.project.project.as_deref());
    let (all, unreadable) = servers(&project);
    for warning in &unreadable {
        eprintln!("ctxopt: warning: {warning}");
    }
    let selected: Vec<Server> = match &args.name {
        Some(name) => {
            let Some(server) = all.iter().find(|s| &s.name == name) else {
                return Err(UnknownName {
                    name: name.clone(),
                    known: all.iter().map(|s| s.name.clone()).collect(),
                }
                .into());
            };
            vec![server.clone()]
        }
        None => all.iter().filter(|s| s.enabled).cloned().collect(),
    };
    let options = Options {
        timeout: Duration::from_secs_f64(args.timeout),
        project: Some(project.clone()),
    };
    let results = probe_all(&selected, &options);

    let data = DataDir::of_project(&project);
    let mut cached = cache::load(&data);
    let now = ctxopt::record::now();
    for (server, result) in selected.iter().zip(&results) {
        cached.update(result, &server.config, now);
    }
    if args.name.is_none() {
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        cached.retain_only(&names);
    }
    if let Err(err) = cache::save(&data, &cached) {
        eprintln!(
            "ctxopt: failed to update the MCP cache: {}",
            CliError::from(err)
        );
    }

    if args.json {
        println!("{}", to_json(&selected, &results));
    } else {
        print!("{}", to_text(&selected, &results));
    }
    let failed = results
        .iter()
        .any(|r| matches!(r.status, ProbeStatus::Fail { .. }));
    Ok(if failed || !unreadable.is_empty() {
        Status::Problems
    } else {
        Status::Ok
    })
}

/// The files that define MCP servers: a warning about one of them means servers are missing.
const DEFINITION_FILES: [&str; 3] = [".mcp.json", ".claude.json", "managed-mcp.json"];

/// Every MCP server of the project, enabled or not, from [`discover`] (every scope, the
/// toggles, the shadowing), and the warnings about the files defining them, for stderr.
fn servers(project: &Path) -> (Vec<Server>, Vec<String>) {
    let found = discover::discover_with(
        project,
        &Locations::from_process_env(),
        discover::Options::default(),
    );
    let word = |value: Result<Value, serde_json::Error>| {
        value
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let servers = found
        .inventory
        .mcp_servers
        .into_iter()
        .map(|s| Server {
            transport: word(serde_json::to_value(s.transport)),
            scope: word(serde_json::to_value(s.scope)),
            name: s.name,
            enabled: s.enabled,
            config: s.config,
        })
        .collect();
    let warnings = found
        .warnings
        .iter()
        .filter(|w| {
            w.path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| DEFINITION_FILES.contains(&n))
        })
        .map(|w| format!("{}: {}", w.path.display(), w.message))
        .collect();
    (servers, warnings)
}

/// Probes `servers`, [`PARALLEL`] at a time; results in the servers' order.
fn probe_all(servers: &[Server], options: &Options) -> Vec<ProbeResult> {
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel();
    thread::scope(|scope| {
        for _ in 0..PARALLEL.min(servers.len()) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                while let Some(server) = servers.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let result = probe::probe(&server.name, &server.config, options);
                    if tx.send(result).is_err() {
                        return;
                    }
                }
            });
        }
    });
    drop(tx);
    let mut results: Vec<ProbeResult> = rx.into_iter().collect();
    results.sort_by_key(|r| servers.iter().position(|s| s.name == r.name));
    results
}

fn seconds(ms: f64) -> String {
    format!("{:.1}s", ms / 1000.0)
}

fn to_text(servers: &[Server], results: &[ProbeResult]) -> String {
    if servers.is_empty() {
        return "no enabled MCP servers\n".to_owned();
    }
    let header = [
        "SERVER",
        "TRANSPORT",
        "STATUS",
        "TOOLS",
        "CHARS",
        "TIME",
        "REASON",
    ];
    let rows: Vec<[String; 7]> = servers
        .iter()
        .zip(results)
        .map(|(server, r)| {
            let ok = r.status == ProbeStatus::Ok;
            [
                server.name.clone(),
                server.transport.clone(),
                r.status.word().to_owned(),
                if ok {
                    r.tool_count.to_string()
                } else {
                    "-".to_owned()
                },
                if ok {
                    r.tools_chars.to_string()
                } else {
                    "-".to_owned()
                },
                seconds(r.duration_ms),
                r.status.reason().unwrap_or_default().to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            match i {
                3..=5 => {
                    let _ = write!(text, "{cell:>w$}  ");
                }
                6 => text.push_str(cell),
                _ => {
                    let _ = write!(text, "{cell:<w$}  ");
                }
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    let count = |word: &str| results.iter().filter(|r| r.status.word() == word).count();
    let _ = writeln!(
        out,
        "{} ok, {} failed, {} not checked; CHARS: characters of the tool definitions",
        count("OK"),
        count("FAIL"),
        count("NOT CHECKED")
    );
    out
}

fn to_json(servers: &[Server], results: &[ProbeResult]) -> Value {
    let items: Vec<Value> = servers
        .iter()
        .zip(results)
        .map(|(server, r)| {
            json!({
                "name": r.name,
                "transport": server.transport,
                "scope": server.scope,
                "enabled": server.enabled,
                "status": r.status.key(),
                "reason": r.status.reason(),
                "server": r.server_info.as_ref().map(|i| json!({"name": i.name, "version": i.version})),
                "tool_count": r.tool_count,
                "tools_chars": r.tools_chars,
                "tools": r.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
                "duration_ms": r.duration_ms,
            })
        })
        .collect();
    Value::Array(items)
}
