//! `ctxopt tokens`: the estimated context at session start, per component, like Claude
//! Code's `/context`, against the policy's initial-token limits (runbook P1-002).
//!
//! Discovery and counting live in the library ([`ctxopt::budget`]); this file resolves the
//! inputs (project, environment, the MCP cache, the learned overhead, the policy) and prints.
//!
//! - **Streams**: the report on stdout; a file discovery skipped is listed in the report
//!   (`warnings`), not on stderr, since it is part of the answer.
//! - **Exit codes**: 0 under `limits.initial_tokens_warning`, 1 at or above it, 2 could not
//!   run.
//! - **Inputs**: `ENABLE_TOOL_SEARCH` and `ANTHROPIC_BASE_URL` from the settings files' `env`
//!   (which Claude Code applies over its environment), else from this process's
//!   environment; each MCP server's tools from the cache `ctxopt mcp check` writes; the
//!   client's overhead from `<data>/budget-overhead.json` when a session taught it, else
//!   OBSERVED.md's default.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ctxopt::budget::McpServer;
use ctxopt::budget::discover::{self, Discovery, Options as DiscoverOptions, Warning};
use ctxopt::budget::estimate::{
    self, Component, Estimate, Options, OverheadStore, ToolSearchSetting, ToolsSize,
    overhead_variant,
};
use ctxopt::config::discover::Locations;
use ctxopt::mcp::cache;
use ctxopt::policy::{Limits, Policy};
use ctxopt::project;
use ctxopt::store::DataDir;
use serde_json::json;

use crate::ProjectArg;
use crate::commands::{CliError, Status};

/// Arguments of `ctxopt tokens`.
#[derive(Debug, clap::Args)]
pub struct TokensArgs {
    #[command(flatten)]
    project: ProjectArg,
    /// Print a JSON report instead of the table: `{"project","total_tokens","status","limits",
    /// "estimate":{"rows",…},"mcp_servers","warnings"}`.
    #[arg(long)]
    json: bool,
}

/// What both `tokens` and `skills` need: the inventory, its estimate, and the notes.
pub struct Budget {
    /// The project.
    pub project: PathBuf,
    /// The inventory and discovery warnings.
    pub discovery: Discovery,
    /// The estimate.
    pub estimate: Estimate,
    /// The policy's limits.
    pub limits: Limits,
    /// Problems with ctxopt's own inputs (policy, overhead state), for people.
    pub notes: Vec<String>,
}

/// Discovers and estimates the project's context at session start.
pub fn budget(flag: Option<&Path>) -> Budget {
    let project = project::for_cli(flag);
    let locations = Locations::from_process_env();
    let discovery = discover::discover_with(&project, &locations, DiscoverOptions::default());
    let data = DataDir::of_project(&project);
    let mut notes = Vec::new();
    let env = |key: &str| {
        discovery
            .settings_env
            .get(key)
            .cloned()
            .or_else(|| std::env::var(key).ok())
    };
    let tool_search = ToolSearchSetting::resolve(
        env("ENABLE_TOOL_SEARCH").as_deref(),
        env("ANTHROPIC_BASE_URL").as_deref(),
    );
    let mcp_cache = cache::load(&data);
    let tools = |server: &McpServer| {
        mcp_cache
            .lookup(&server.name, &server.config)
            .filter(|entry| entry.ok)
            .map(|entry| {
                ToolsSize::from_names(&server.name, &entry.tool_names, entry.tools_chars as u64)
            })
    };
    let mut options = Options {
        tool_search,
        ..Options::default()
    };
    let mut estimate = estimate::estimate(&discovery.inventory, &tools, &options);
    match OverheadStore::load(&data) {
        Ok(state) => {
            let any_mcp = discovery.inventory.mcp_servers.iter().any(|s| s.enabled);
            let variant = overhead_variant(estimate.tool_search.names_only, any_mcp);
            if let Some(learned) = state.latest(&variant) {
                options.overhead = learned;
                estimate = estimate::estimate(&discovery.inventory, &tools, &options);
            }
        }
        Err(err) => notes.push(format!(
            "{}; the default overhead is used",
            crate::commands::CliError::from(err)
        )),
    }
    let limits = match Policy::load(&project) {
        Ok(policy) => policy.limits,
        Err(err) => {
            notes.push(format!(
                "{}; the default limits apply",
                crate::commands::CliError::from(err)
            ));
            Limits::default()
        }
    };
    Budget {
        project,
        discovery,
        estimate,
        limits,
        notes,
    }
}

/// Where the total stands against the limits.
fn status(total: u64, limits: &Limits) -> &'static str {
    if total >= limits.initial_tokens_critical {
        "critical"
    } else if total >= limits.initial_tokens_warning {
        "warning"
    } else {
        "ok"
    }
}

/// Runs `ctxopt tokens`.
#[expect(
    clippy::unnecessary_wraps,
    reason = "every subcommand returns Result for main's one match"
)]
pub fn tokens(args: &TokensArgs) -> Result<Status, CliError> {
    let budget = budget(args.project.project.as_deref());
    let total = budget.estimate.total_tokens;
    let verdict = status(total, &budget.limits);
    if args.json {
        println!("{}", to_json(&budget, verdict));
    } else {
        print!("{}", to_text(&budget, verdict));
    }
    Ok(if verdict == "ok" {
        Status::Ok
    } else {
        Status::Problems
    })
}

fn to_json(budget: &Budget, verdict: &str) -> serde_json::Value {
    let servers: Vec<serde_json::Value> = budget
        .discovery
        .inventory
        .mcp_servers
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "scope": s.scope,
                "transport": s.transport,
                "enabled": s.enabled,
                "disabled_by": s.disabled_by,
                "needs_approval": s.needs_approval,
                "source": s.source,
                "shadows": s.shadows,
            })
        })
        .collect();
    json!({
        "project": budget.project,
        "total_tokens": budget.estimate.total_tokens,
        "status": verdict,
        "limits": {
            "initial_tokens_warning": budget.limits.initial_tokens_warning,
            "initial_tokens_critical": budget.limits.initial_tokens_critical,
        },
        "estimate": budget.estimate,
        "mcp_servers": servers,
        "warnings": warnings_json(&budget.discovery.warnings, &budget.notes),
    })
}

/// Discovery warnings and ctxopt's own notes as JSON.
pub fn warnings_json(warnings: &[Warning], notes: &[String]) -> serde_json::Value {
    let mut all: Vec<serde_json::Value> = warnings
        .iter()
        .map(|w| json!({"path": w.path, "message": w.message}))
        .collect();
    all.extend(notes.iter().map(|n| json!({"path": null, "message": n})));
    serde_json::Value::Array(all)
}

/// `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` as a percentage of `of`, one decimal.
fn share(n: u64, of: u64) -> String {
    if of == 0 {
        return String::from("-");
    }
    let tenths = n.saturating_mul(1000) / of;
    format!("{}.{}%", tenths / 10, tenths % 10)
}

fn to_text(budget: &Budget, verdict: &str) -> String {
    let est = &budget.estimate;
    let limit = budget.limits.initial_tokens_warning;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Context at session start (estimate) for {}",
        budget.project.display()
    );
    let search = if est.tool_search.names_only {
        "MCP tools count by name only"
    } else {
        "MCP tools count in full"
    };
    let _ = writeln!(
        out,
        "Tool search: {:?} ({}): {search}\n",
        est.tool_search.setting, est.tool_search.reason
    );
    let _ = writeln!(
        out,
        "{:<24} {:>6} {:>9} {:>9}",
        "Component", "Items", "Tokens", "Budget"
    );
    for row in &est.rows {
        let items = if row.component == Component::Client {
            String::from("-")
        } else {
            row.items.len().to_string()
        };
        let _ = writeln!(
            out,
            "{:<24} {:>6} {:>9} {:>9}",
            row.component.label(),
            items,
            thousands(row.tokens),
            share(row.tokens, limit)
        );
        if matches!(
            row.component,
            Component::McpTools | Component::Memory | Component::Agents
        ) {
            for item in &row.items {
                let _ = writeln!(
                    out,
                    "  {:<40} {:>9}  {}",
                    item.name,
                    thousands(item.tokens),
                    item.detail
                );
            }
        }
        if let Some(note) = &row.note {
            let _ = writeln!(out, "  ({note})");
        }
    }
    let _ = writeln!(
        out,
        "{:<24} {:>6} {:>9} {:>9}",
        "Total",
        "",
        thousands(est.total_tokens),
        share(est.total_tokens, limit)
    );
    let _ = writeln!(
        out,
        "\nLimits: warning {}, critical {} (.claude/ctxopt.json limits): {}; context window {} ({} used)",
        thousands(budget.limits.initial_tokens_warning),
        thousands(budget.limits.initial_tokens_critical),
        match verdict {
            "critical" => "OVER THE CRITICAL LIMIT",
            "warning" => "over the warning limit",
            _ => "ok",
        },
        thousands(est.context_window),
        share(est.total_tokens, est.context_window)
    );
    write_servers(&mut out, budget);
    write_warnings(&mut out, &budget.discovery.warnings, &budget.notes);
    out
}

/// The MCP servers that do not load, and those counted without approval.
fn write_servers(out: &mut String, budget: &Budget) {
    let off: Vec<String> = budget
        .discovery
        .inventory
        .mcp_servers
        .iter()
        .filter(|s| !s.enabled)
        .map(|s| format!("{} ({})", s.name, s.disabled_by.as_deref().unwrap_or("")))
        .collect();
    if !off.is_empty() {
        let _ = writeln!(out, "MCP servers not loaded: {}", off.join(", "));
    }
    let pending: Vec<&str> = budget
        .discovery
        .inventory
        .mcp_servers
        .iter()
        .filter(|s| s.needs_approval && s.enabled)
        .map(|s| s.name.as_str())
        .collect();
    if !pending.is_empty() {
        let _ = writeln!(
            out,
            "Counted though not approved (loaded under -p; an interactive session asks): {}",
            pending.join(", ")
        );
    }
}

/// The warnings block of a text report.
pub fn write_warnings(out: &mut String, warnings: &[Warning], notes: &[String]) {
    if warnings.is_empty() && notes.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nWarnings:");
    for w in warnings {
        let _ = writeln!(out, "  {}: {}", w.path.display(), w.message);
    }
    for n in notes {
        let _ = writeln!(out, "  {n}");
    }
}
