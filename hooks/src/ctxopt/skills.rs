//! `ctxopt skills`: the runbook's P1-002 steps 4–5 done right — how many skills there are,
//! how many have `disable-model-invocation: true` in `SKILL.md`'s front matter (what Claude
//! Code reads; the runbook greps `skill.json`), what the listing costs, and which
//! descriptions are biggest.
//!
//! - **Streams**: the report on stdout.
//! - **Exit codes**: 0 (a report), 2 could not run.

use std::collections::HashSet;
use std::fmt::Write as _;

use ctxopt::budget::estimate::{Component, ratio, tokens};
use ctxopt::budget::{Listed, Owner};
use serde_json::json;

use crate::ProjectArg;
use crate::commands::{CliError, Status};
use crate::tokens::{budget, thousands, warnings_json, write_warnings};

/// How many of the biggest descriptions are shown.
const BIGGEST: usize = 10;

/// Arguments of `ctxopt skills`.
#[derive(Debug, clap::Args)]
pub struct SkillsArgs {
    #[command(flatten)]
    project: ProjectArg,
    /// Print a JSON report instead of text: `{"skills","user","project_skills",
    /// "disable_model_invocation","listed","listing_tokens","commands_in_listing","biggest":[…],
    /// "warnings"}`.
    #[arg(long)]
    json: bool,
}

/// Runs `ctxopt skills`.
#[expect(
    clippy::unnecessary_wraps,
    reason = "every subcommand returns Result for main's one match"
)]
pub fn skills(args: &SkillsArgs) -> Result<Status, CliError> {
    let budget = budget(args.project.project.as_deref());
    let inv = &budget.discovery.inventory;
    let total = inv.skills.len();
    let user = inv.skills.iter().filter(|s| s.owner == Owner::User).count();
    let hidden = inv.skills.iter().filter(|s| !s.model_invocable).count();
    let row_tokens = |c: Component| budget.estimate.row(c).map_or(0, |r| r.tokens);
    let skills_row = budget.estimate.row(Component::Skills);
    let listed = skills_row.map_or(0, |r| r.items.len());
    let commands_listed = budget
        .estimate
        .row(Component::Commands)
        .map_or(0, |r| r.items.len());
    let listing_tokens = row_tokens(Component::Skills) + row_tokens(Component::Commands);
    let mut names = HashSet::new();
    let mut biggest: Vec<&Listed> = inv
        .skills
        .iter()
        .filter(|s| s.model_invocable && names.insert(s.name.as_str()))
        .collect();
    biggest.sort_by(|a, b| {
        b.description
            .len()
            .cmp(&a.description.len())
            .then_with(|| a.name.cmp(&b.name))
    });
    biggest.truncate(BIGGEST);
    let note = skills_row.and_then(|r| r.note.clone());
    if args.json {
        let rows: Vec<serde_json::Value> = biggest
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "owner": s.owner,
                    "path": s.path,
                    "description_chars": s.description.chars().count(),
                    "tokens": tokens((s.name.len() + s.description.len() + 5) as u64, ratio::LISTING),
                })
            })
            .collect();
        println!(
            "{}",
            json!({
                "project": budget.project,
                "skills": total,
                "user": user,
                "project_skills": total - user,
                "disable_model_invocation": hidden,
                "listed": listed,
                "commands_in_listing": commands_listed,
                "listing_tokens": listing_tokens,
                "note": note,
                "biggest": rows,
                "warnings": warnings_json(&budget.discovery.warnings, &budget.notes),
            })
        );
        return Ok(Status::Ok);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Skills: {total} ({user} user, {} project); {hidden} with disable-model-invocation: true (not in the listing)",
        total - user
    );
    let _ = writeln!(
        out,
        "Listing at session start: {listed} skills + {commands_listed} commands ≈ {} tokens",
        thousands(listing_tokens)
    );
    if let Some(note) = note {
        let _ = writeln!(out, "  ({note})");
    }
    if !biggest.is_empty() {
        let _ = writeln!(out, "\nBiggest descriptions (chars, skill, file):");
        for s in &biggest {
            let _ = writeln!(
                out,
                "  {:>6}  {:<28} {}",
                thousands(s.description.chars().count() as u64),
                s.name,
                s.path.display()
            );
        }
        let _ = writeln!(
            out,
            "\nA skill only people run can say `disable-model-invocation: true` in its SKILL.md front matter: its description then leaves the listing."
        );
    }
    write_warnings(&mut out, &budget.discovery.warnings, &budget.notes);
    print!("{out}");
    Ok(Status::Ok)
}
