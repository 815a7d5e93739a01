//! `ctxopt mcp …`: the project's MCP servers (runbook P1-002, P1-003; M-D-003-1). `check`
//! lives in its own file; `list`, `disable`, `enable` and `optimize` are here, over the
//! library's [`ctxopt::budget::limits`] (the allowed set, the plan, the toggle writes).
//!
//! - **Streams**: reports on stdout (a table, or `--json`); a reason the command could not
//!   run on stderr, once (printed by `main`).
//! - **Exit codes**: `list` 0, 1 when more servers are enabled than `limits.max_mcp_servers`;
//!   `disable`/`enable` 0 when the server ends in the state asked for, 1 when a toggle ctxopt
//!   does not write still holds it; `optimize` 0 when the limits are met (after `--apply`), 1
//!   when servers should be disabled or the limits cannot be met this way; 2 could not run
//!   (an unknown name, a config file that does not parse).
//! - **Calls**: `tool_use` records of `mcp__<server>__…` in `metrics.jsonl` over the last
//!   [`USE_WINDOW_DAYS`] days.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ctxopt::budget::estimate::{self, Component, ratio};
use ctxopt::budget::limits::optimize::{self, Candidate, Plan};
use ctxopt::budget::limits::toggle::{self, Report, Switch};
use ctxopt::budget::limits::{self, Allowed, usage};
use ctxopt::budget::{McpScope, McpServer};
use ctxopt::config::discover::Locations;
use ctxopt::mcp::cache;
use ctxopt::store::DataDir;
use serde_json::{Value, json};

use crate::ProjectArg;
use crate::commands::{CliError, Status};
use crate::mcp_check;
use crate::tokens::{Budget, budget, thousands, warnings_json, write_warnings};

/// The window the call counts cover.
pub const USE_WINDOW_DAYS: i64 = 30;

/// The `mcp` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum McpCommand {
    /// Start each enabled MCP server of the project, as Claude Code would, and check it answers.
    ///
    /// The servers are those Claude Code would load for the project: every scope (local,
    /// project, user, managed), with its precedence and on/off toggles.
    ///
    /// stdio servers are started with their `command`, `args` and `env` (`${VAR}` expanded),
    /// sent `initialize` and `tools/list` (every page), then stopped with their whole process
    /// group; `http` servers get the same over streamable HTTP. Prints each server's status
    /// (OK, FAIL with the reason, NOT CHECKED for `sse` and OAuth servers), its tool count and
    /// the size of its tool definitions, and keeps the results in
    /// `.claude/hooks/data/mcp-cache.json` for the SessionStart estimate. Exit 0 when every
    /// server checked is OK, 1 when one fails, 2 when the check could not run.
    Check(mcp_check::CheckArgs),
    /// List the project's MCP servers with their limit status, size and use.
    ///
    /// For each server: scope, transport, on or off, inside or outside the allowed set of
    /// `limits.max_mcp_servers`, tool count and tokens (from the last `ctxopt mcp check`;
    /// "unknown" before one), and calls in the last 30 days.
    ///
    /// The allowed set: servers named in `limits.mcp_priority` first, then by scope (managed,
    /// local, project, user), then by name. Exit 1 when more servers are enabled than the
    /// limit.
    List(ListArgs),
    /// Turn an MCP server off for this project, in the least invasive place.
    ///
    /// A `.mcp.json` server goes into `disabledMcpjsonServers` of `.claude/settings.local.json`;
    /// a local or user server into `disabledMcpServers` of this project's entry in
    /// `~/.claude.json`. Everything else in the file is kept; a file that does not parse is
    /// refused; the written file is validated and put back if it would not validate; the write
    /// is audited. Takes effect in the next session.
    Disable(SwitchArgs),
    /// Turn an MCP server back on for this project.
    ///
    /// Removes it from the lists `disable` writes (and approves a `.mcp.json` server nothing
    /// approves yet). Exit 1 when another toggle (committed settings, managed policy) still
    /// turns it off.
    Enable(SwitchArgs),
    /// Propose which MCP servers to disable to meet the limits; `--apply` disables them.
    ///
    /// Meets `limits.max_mcp_servers` and `limits.initial_tokens_warning`: least used (calls
    /// in 30 days) and heaviest first; never a managed server or one named in
    /// `limits.mcp_priority`; for the token limit only servers without calls. `--apply`
    /// disables them as `ctxopt mcp disable` does. Exit 0 when the limits are met (after
    /// `--apply`), 1 otherwise.
    Optimize(OptimizeArgs),
}

/// Arguments of `ctxopt mcp list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    project: ProjectArg,
    /// Print JSON instead of a table: `{"project","enabled","max_mcp_servers","rule",
    /// "window_days","servers":[{"name","scope","transport","enabled","disabled_by","limit",
    /// "tool_count","tokens","calls"}],"warnings"}` (`limit`: allowed, outside or null for a
    /// disabled server; `tool_count`/`tokens` null when unknown).
    #[arg(long)]
    json: bool,
}

/// Arguments of `ctxopt mcp disable|enable`.
#[derive(Debug, clap::Args)]
pub struct SwitchArgs {
    #[command(flatten)]
    project: ProjectArg,
    /// The server's name (see `ctxopt mcp list`).
    #[arg(value_name = "NAME")]
    name: String,
    /// Print JSON instead of text: `{"server","scope","switch","edits":[{"path","what"}],
    /// "enabled_after","disabled_by"}`.
    #[arg(long)]
    json: bool,
}

/// Arguments of `ctxopt mcp optimize`.
#[derive(Debug, clap::Args)]
pub struct OptimizeArgs {
    #[command(flatten)]
    project: ProjectArg,
    /// Disable the proposed servers.
    #[arg(long)]
    apply: bool,
    /// Print JSON instead of text: `{"plan":{"disable":[…],…},"applied":[…]}`.
    #[arg(long)]
    json: bool,
}

/// Runs `ctxopt mcp …`.
pub fn mcp(command: &McpCommand) -> Result<Status, CliError> {
    match command {
        McpCommand::Check(args) => mcp_check::check(args),
        McpCommand::List(args) => list(args),
        McpCommand::Disable(args) => switch(args, Switch::Disable),
        McpCommand::Enable(args) => switch(args, Switch::Enable),
        McpCommand::Optimize(args) => optimize(args),
    }
}

/// What `list` and `optimize` know of one server.
struct Row<'a> {
    server: &'a McpServer,
    tool_count: Option<usize>,
    tokens: Option<u64>,
    calls: u64,
}

/// The servers with their sizes and calls, and the allowed set.
fn rows(budget: &Budget) -> Result<(Vec<Row<'_>>, Allowed), CliError> {
    let data = DataDir::of_project(&budget.project);
    let servers = &budget.discovery.inventory.mcp_servers;
    let mcp_cache = cache::load(&data);
    let names_only = budget.estimate.tool_search.names_only;
    let names: Vec<String> = servers.iter().map(|s| s.name.clone()).collect();
    let calls = usage::calls_in_last_days(&data.metrics(), USE_WINDOW_DAYS, &names)?;
    let rows = servers
        .iter()
        .map(|server| {
            let size = limits::tools_size(&mcp_cache, server);
            Row {
                server,
                tool_count: size.map(|s| usize::try_from(s.tool_count).unwrap_or(usize::MAX)),
                tokens: size.map(|s| {
                    if names_only {
                        estimate::tokens(s.names_chars, ratio::TOOL_NAMES)
                    } else {
                        estimate::tokens(s.tools_chars, ratio::TOOL_JSON)
                    }
                }),
                calls: limits::calls_of(&calls, &server.name),
            }
        })
        .collect();
    let enabled = limits::enabled_in_scope_order(servers);
    let allowed = limits::allowed_set(
        &enabled,
        budget.limits.max_mcp_servers,
        &budget.limits.mcp_priority,
    );
    Ok((rows, allowed))
}

fn scope_name(scope: McpScope) -> &'static str {
    match scope {
        McpScope::Managed => "managed",
        McpScope::Local => "local",
        McpScope::Project => "project",
        McpScope::User => "user",
    }
}

fn limit_of(row: &Row<'_>, allowed: &Allowed) -> Option<&'static str> {
    if !row.server.enabled {
        None
    } else if allowed.is_outside(&row.server.name) {
        Some("outside")
    } else {
        Some("allowed")
    }
}

fn unknown_or<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| String::from("unknown"), |v| v.to_string())
}

fn list(args: &ListArgs) -> Result<Status, CliError> {
    let budget = budget(args.project.project.as_deref());
    let (rows, allowed) = rows(&budget)?;
    let enabled = allowed.allowed.len() + allowed.outside.len();
    let max = budget.limits.max_mcp_servers;
    if args.json {
        let servers: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "name": r.server.name,
                    "scope": r.server.scope,
                    "transport": r.server.transport,
                    "enabled": r.server.enabled,
                    "disabled_by": r.server.disabled_by,
                    "limit": limit_of(r, &allowed),
                    "tool_count": r.tool_count,
                    "tokens": r.tokens,
                    "calls": r.calls,
                })
            })
            .collect();
        let report = json!({
            "project": budget.project,
            "enabled": enabled,
            "max_mcp_servers": max,
            "rule": limits::RULE,
            "window_days": USE_WINDOW_DAYS,
            "servers": servers,
            "warnings": warnings_json(&budget.discovery.warnings, &budget.notes),
        });
        println!("{report:#}");
    } else {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "MCP servers of {}: {enabled} enabled, limit {max} (limits.max_mcp_servers)",
            budget.project.display()
        );
        let _ = writeln!(
            out,
            "{:<24} {:<8} {:<6} {:<8} {:<8} {:>7} {:>8} {:>10}",
            "NAME", "SCOPE", "TYPE", "ENABLED", "LIMIT", "TOOLS", "TOKENS", "CALLS(30d)"
        );
        for r in &rows {
            let transport = serde_json::to_value(r.server.transport)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<24} {:<8} {:<6} {:<8} {:<8} {:>7} {:>8} {:>10}",
                r.server.name,
                scope_name(r.server.scope),
                transport,
                if r.server.enabled { "yes" } else { "no" },
                limit_of(r, &allowed).unwrap_or("-"),
                unknown_or(r.tool_count),
                unknown_or(r.tokens.map(thousands)),
                r.calls
            );
            if let Some(by) = &r.server.disabled_by {
                let _ = writeln!(out, "  off: {by}");
            }
        }
        if rows.is_empty() {
            let _ = writeln!(out, "(no MCP servers)");
        }
        let _ = writeln!(out, "\nAllowed set: {}.", limits::RULE);
        if !allowed.outside.is_empty() {
            let _ = writeln!(
                out,
                "Outside the limit: {}. Run `ctxopt mcp optimize` for a proposal.",
                allowed.outside.join(", ")
            );
        }
        if rows.iter().any(|r| r.tool_count.is_none()) {
            let _ = writeln!(
                out,
                "Tools and tokens are unknown until `ctxopt mcp check` has listed a server's tools."
            );
        }
        write_warnings(&mut out, &budget.discovery.warnings, &budget.notes);
        print!("{out}");
    }
    Ok(if allowed.outside.is_empty() {
        Status::Ok
    } else {
        Status::Problems
    })
}

fn report_json(report: &Report) -> Value {
    serde_json::to_value(report).unwrap_or(Value::Null)
}

fn report_text(report: &Report) -> String {
    let verb = match report.switch {
        Switch::Disable => "disabled",
        Switch::Enable => "enabled",
    };
    let mut out = String::new();
    if report.edits.is_empty() {
        let _ = write!(out, "`{}`: nothing to change", report.server);
    } else {
        let _ = write!(out, "`{}` {verb} for this project:", report.server);
        for edit in &report.edits {
            let _ = write!(out, "\n  {} in {}", edit.what, edit.path.display());
        }
    }
    let _ = write!(
        out,
        "\n  now {}",
        if report.enabled_after {
            "enabled"
        } else {
            "disabled"
        }
    );
    if let Some(by) = &report.disabled_by {
        let _ = write!(out, " ({by})");
    }
    if report.switch == Switch::Enable && !report.enabled_after {
        out.push_str(
            "\n  ctxopt does not change that toggle; edit it by hand to turn the server on",
        );
    }
    if !report.edits.is_empty() {
        out.push_str("\n  takes effect in the next session");
    }
    out.push('\n');
    out
}

fn switch(args: &SwitchArgs, switch: Switch) -> Result<Status, CliError> {
    let project = ctxopt::project::for_cli(args.project.project.as_deref());
    let locations = Locations::from_process_env();
    let data = DataDir::of_project(&project);
    let report = toggle::switch(&project, &locations, &data, &args.name, switch)?;
    if args.json {
        println!("{:#}", report_json(&report));
    } else {
        print!("{}", report_text(&report));
    }
    Ok(if report.done() {
        Status::Ok
    } else {
        Status::Problems
    })
}

/// The plan's inputs: every enabled server with its estimated tokens (assumed when the cache
/// does not know it, as in the estimate) and calls.
fn candidates(budget: &Budget, rows: &[Row<'_>]) -> Vec<Candidate> {
    let items: BTreeMap<&str, (u64, bool)> = budget
        .estimate
        .row(Component::McpTools)
        .map(|row| {
            row.items
                .iter()
                .map(|i| (i.name.as_str(), (i.tokens, i.assumed)))
                .collect()
        })
        .unwrap_or_default();
    rows.iter()
        .filter(|r| r.server.enabled)
        .map(|r| {
            let (tokens, assumed) = items
                .get(r.server.name.as_str())
                .copied()
                .unwrap_or((r.tokens.unwrap_or(0), r.tokens.is_none()));
            Candidate {
                name: r.server.name.clone(),
                scope: r.server.scope,
                tokens,
                tokens_assumed: assumed,
                calls: r.calls,
            }
        })
        .collect()
}

fn plan_text(plan: &Plan, apply: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Enabled MCP servers: {} (limit {}); estimated initial tokens: {} (warning at {})",
        plan.enabled_before,
        plan.max_mcp_servers,
        thousands(plan.tokens_before),
        thousands(plan.initial_tokens_warning)
    );
    if plan.disable.is_empty() {
        let _ = writeln!(out, "Nothing to disable.");
    } else {
        let _ = writeln!(
            out,
            "{} (least used, then heaviest, first):",
            if apply {
                "Disabling"
            } else {
                "Proposed to disable"
            }
        );
        for p in &plan.disable {
            let why = match p.why {
                optimize::Why::MaxMcpServers => "over max_mcp_servers",
                optimize::Why::InitialTokens => "unused, over the token warning",
            };
            let _ = writeln!(
                out,
                "  {:<24} {:<8} {:>8} tokens{} {:>5} calls (30d)  {why}",
                p.server.name,
                scope_name(p.server.scope),
                thousands(p.server.tokens),
                if p.server.tokens_assumed { "*" } else { " " },
                p.server.calls
            );
        }
        if plan.disable.iter().any(|p| p.server.tokens_assumed) {
            let _ = writeln!(
                out,
                "  * assumed: not in the MCP cache (run `ctxopt mcp check`)"
            );
        }
    }
    if !plan.kept_by_priority.is_empty() {
        let _ = writeln!(
            out,
            "Kept (limits.mcp_priority): {}",
            plan.kept_by_priority.join(", ")
        );
    }
    if !plan.managed.is_empty() {
        let _ = writeln!(out, "Kept (managed): {}", plan.managed.join(", "));
    }
    let _ = writeln!(
        out,
        "After: {} enabled, about {} tokens{}.",
        plan.enabled_after,
        thousands(plan.tokens_after),
        if plan.meets_count && plan.meets_tokens {
            ": within the limits"
        } else {
            ""
        }
    );
    if !plan.meets_count {
        let _ = writeln!(
            out,
            "Still over limits.max_mcp_servers: raise it or shorten limits.mcp_priority in .claude/ctxopt.json."
        );
    }
    if !plan.meets_tokens {
        let _ = writeln!(
            out,
            "Still over the token warning: see `ctxopt skills` and `ctxopt tokens` for the rest."
        );
    }
    if !apply && !plan.disable.is_empty() {
        let _ = writeln!(out, "Apply with `ctxopt mcp optimize --apply`.");
    }
    out
}

fn optimize(args: &OptimizeArgs) -> Result<Status, CliError> {
    let budget = budget(args.project.project.as_deref());
    let (rows, _) = rows(&budget)?;
    let candidates = candidates(&budget, &rows);
    let plan = optimize::plan(&candidates, budget.estimate.total_tokens, &budget.limits);
    if !args.json {
        print!("{}", plan_text(&plan, args.apply));
    }
    let mut applied = Vec::new();
    if args.apply {
        let locations = Locations::from_process_env();
        let data = DataDir::of_project(&budget.project);
        for p in &plan.disable {
            let report = toggle::switch(
                &budget.project,
                &locations,
                &data,
                &p.server.name,
                Switch::Disable,
            )?;
            if !args.json {
                print!("{}", report_text(&report));
            }
            applied.push(report);
        }
    }
    if args.json {
        let report = json!({
            "project": budget.project,
            "plan": plan,
            "applied": applied.iter().map(report_json).collect::<Vec<_>>(),
        });
        println!("{report:#}");
    }
    let met = plan.meets_count && plan.meets_tokens;
    let done = args.apply && applied.iter().all(Report::done);
    Ok(if met && (plan.disable.is_empty() || done) {
        Status::Ok
    } else {
        Status::Problems
    })
}
