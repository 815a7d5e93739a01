//! `ctxopt hooks list|disable|enable`: the project's hook commands, for the runbook's P1-001
//! procedure (find the failing hook, disable it, enable it again). The work is
//! [`ctxopt::wrap::inventory`]; this file resolves the project and prints, for people or as
//! `--json`.

use std::fmt::Write as _;

use ctxopt::project;
use ctxopt::store::DataDir;
use ctxopt::wrap::inventory::{self, Hook, Inventory, Kind, Status as HookStatus, Toggle};
use serde_json::{Value, json};

use crate::ProjectArg;
use crate::commands::{CliError, Status};

/// The `hooks` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum HooksCommand {
    /// List the project's hook commands with their runs, failures and p95 latency (24 h).
    ///
    /// Every command handler in `.claude/settings.json` and `.claude/settings.local.json`:
    /// event, matcher, whether it runs through `ctxopt-run`, whether it is disabled, and its
    /// attempts, failures and p95 latency over the last 24 h from `metrics.jsonl`. Exit 1 when
    /// a settings file could not be read.
    List(ListArgs),
    /// Disable a hook (rename its script to `*.disabled`) and reset its circuit breaker.
    ///
    /// The runbook's way (P1-001): `ctxopt-run` skips a hook whose script was renamed. A
    /// wrapped command with no script file is marked off for `ctxopt-run` instead.
    Disable(ToggleArgs),
    /// Enable a hook: rename `*.disabled` back and close its circuit breaker.
    Enable(ToggleArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    project: ProjectArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ToggleArgs {
    /// The hook's name as `ctxopt hooks list` shows it (e.g. `.claude/hooks/PreToolUse.js`),
    /// or its script's path.
    #[arg(value_name = "NAME")]
    name: String,
    #[command(flatten)]
    project: ProjectArg,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `ctxopt hooks …`.
pub fn hooks(command: &HooksCommand) -> Result<Status, CliError> {
    match command {
        HooksCommand::List(args) => Ok(list(args)),
        HooksCommand::Disable(args) => toggle(args, false),
        HooksCommand::Enable(args) => toggle(args, true),
    }
}

fn list(args: &ListArgs) -> Status {
    let project = project::for_cli(args.project.project.as_deref());
    let data = DataDir::of_project(&project);
    let inventory = inventory::list(&project, &data, ctxopt::record::now());
    if args.json {
        println!("{}", list_json(&project.display().to_string(), &inventory));
    } else {
        print!("{}", list_text(&inventory));
    }
    for (file, err) in &inventory.unreadable {
        eprintln!("ctxopt: failed to read the hooks of {file}: {err}");
    }
    if inventory.unreadable.is_empty() {
        Status::Ok
    } else {
        Status::Problems
    }
}

fn how(hook: &Hook) -> &'static str {
    match hook.kind {
        Kind::Ctxopt => "ctxopt",
        Kind::Wrapped { .. } => "wrapped",
        Kind::Plain => "direct",
    }
}

fn state(hook: &Hook) -> String {
    match &hook.status {
        HookStatus::BreakerOpen(n) => format!("breaker-open ({n} failed in a row)"),
        other => other.word().to_owned(),
    }
}

fn list_text(inventory: &Inventory) -> String {
    if inventory.hooks.is_empty() {
        return "no hook commands in .claude/settings.json or .claude/settings.local.json\n"
            .to_owned();
    }
    let header = [
        "NAME", "EVENT", "MATCHER", "FILE", "VIA", "STATE", "RUNS", "FAILED", "P95 MS",
    ];
    let rows: Vec<[String; 9]> = inventory
        .hooks
        .iter()
        .map(|h| {
            [
                h.name.clone(),
                h.event.clone(),
                h.matcher.clone().unwrap_or_else(|| "-".to_owned()),
                h.settings_file.trim_start_matches(".claude/").to_owned(),
                how(h).to_owned(),
                state(h),
                h.stats.runs.to_string(),
                h.stats.failures.to_string(),
                h.stats
                    .p95_ms
                    .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1}")),
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
            if i >= 6 {
                let _ = write!(text, "{cell:>w$}  ");
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    let _ = writeln!(
        out,
        "RUNS/FAILED/P95: attempts in the last {} h (metrics.jsonl); `ctxopt hooks list --json` \
         shows the commands",
        inventory::WINDOW_HOURS
    );
    out
}

fn list_json(project: &str, inventory: &Inventory) -> Value {
    let hooks: Vec<Value> = inventory
        .hooks
        .iter()
        .map(|h| {
            json!({
                "name": h.name,
                "event": h.event,
                "matcher": h.matcher,
                "settings_file": h.settings_file,
                "command": h.command,
                "runs_via": how(h),
                "wrapped": matches!(h.kind, Kind::Wrapped { .. }),
                "wrapped_command": match &h.kind {
                    Kind::Wrapped { inner } => Some(inner.as_str()),
                    _ => None,
                },
                "script": h.script.as_ref().map(|p| p.display().to_string()),
                "state": h.status.word(),
                "disabled": !matches!(h.status, HookStatus::Enabled | HookStatus::Missing(_)),
                "consecutive_failures": h.consecutive_failures,
                "runs_24h": h.stats.runs,
                "failures_24h": h.stats.failures,
                "skipped_24h": h.stats.skipped,
                "p95_ms_24h": h.stats.p95_ms,
            })
        })
        .collect();
    let unreadable: Vec<Value> = inventory
        .unreadable
        .iter()
        .map(|(file, err)| json!({"settings_file": file, "error": err}))
        .collect();
    json!({
        "project": project,
        "window_hours": inventory::WINDOW_HOURS,
        "hooks": hooks,
        "unreadable": unreadable,
    })
}

fn toggle(args: &ToggleArgs, enable: bool) -> Result<Status, CliError> {
    let project = project::for_cli(args.project.project.as_deref());
    let data = DataDir::of_project(&project);
    let (name, done) = if enable {
        inventory::enable(&project, &data, &args.name)?
    } else {
        inventory::disable(&project, &data, &args.name)?
    };
    if args.json {
        let actions: Vec<Value> = done
            .iter()
            .map(|t| match t {
                Toggle::Renamed(from, to) => json!({
                    "action": "renamed",
                    "from": from.display().to_string(),
                    "to": to.display().to_string(),
                }),
                Toggle::DisabledByHand => json!({"action": "disabled"}),
                Toggle::BreakerReset => json!({"action": "breaker_reset"}),
                Toggle::Already => json!({"action": "none"}),
            })
            .collect();
        println!(
            "{}",
            json!({
                "command": if enable { "enable" } else { "disable" },
                "name": name,
                "actions": actions,
            })
        );
        return Ok(Status::Ok);
    }
    for t in &done {
        match t {
            Toggle::Renamed(from, to) => {
                println!("renamed {} to {}", from.display(), to.display());
            }
            Toggle::DisabledByHand => {
                println!("disabled {name}: ctxopt-run skips it until `ctxopt hooks enable`");
            }
            Toggle::BreakerReset => println!("reset the circuit breaker of {name}"),
            Toggle::Already => println!(
                "{name} is already {}",
                if enable { "enabled" } else { "disabled" }
            ),
        }
    }
    if !enable && !done.contains(&Toggle::Already) {
        println!("`ctxopt hooks enable {name}` turns it back on");
    }
    Ok(Status::Ok)
}
