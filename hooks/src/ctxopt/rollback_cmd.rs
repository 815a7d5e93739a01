//! `ctxopt rollback [COMMIT]` (runbook §6.2, `scripts/rollback.sh`): puts back the deploy
//! snapshot (no COMMIT) or COMMIT's `.claude/` files, then prints the runbook's post-rollback
//! checks. The work is [`ctxopt::deploy`]; this file prints. Exit codes: 0 rolled back and
//! every check passes (or a dry run), 1 a check failed or the rollback was refused (a corrupt
//! snapshot, an unsafe target), 2 could not run.

use std::fmt::Write as _;

use ctxopt::deploy::{self, CheckStatus, Checks, DeployError, Plan, Trigger};
use ctxopt::{project, record};
use serde_json::json;

use crate::ProjectArg;
use crate::commands::{CliError, Status};

/// Arguments of `ctxopt rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// Roll `.claude/` back to this commit's files (read from git; the rest of the work tree
    /// is not touched). Default: the deploy snapshot `ctxopt deploy start` took.
    #[arg(value_name = "COMMIT")]
    commit: Option<String>,
    #[command(flatten)]
    project: ProjectArg,
    /// Print what would change; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `ctxopt rollback`.
pub fn rollback(args: &RollbackArgs) -> Result<Status, CliError> {
    let project = project::for_cli(args.project.project.as_deref());
    let plan = match &args.commit {
        Some(commit) => deploy::plan_commit(&project, commit),
        None => deploy::plan_snapshot(&project),
    };
    let plan = match plan {
        Ok(plan) => plan,
        Err(err) => return refused(err, args.json),
    };
    if args.dry_run {
        print_dry_run(&plan, args.json);
        return Ok(Status::Ok);
    }
    // Runbook §6.2 step 3: a backup of what is there now, before it is replaced.
    let backup = ctxopt::backup::create(
        &project,
        &ctxopt::config::discover::Locations::from_process_env(),
        &ctxopt::backup::Part::DEFAULT,
        record::now(),
    )?;
    if !args.json {
        println!("backup of the current state: {}", backup.path.display());
    }
    let done = match deploy::apply(plan, &Trigger::Manual, record::now()) {
        Ok(done) => done,
        Err(err) => return refused(err, args.json),
    };
    let checks = deploy::post_rollback_checks(&project);
    if args.json {
        println!(
            "{}",
            json!({
                "target": done.target.label(),
                "dry_run": false,
                "changes": done.changes,
                "replaced_dir": done.replaced_dir.as_ref().map(|d| d.display().to_string()),
                "warnings": done.warnings,
                "checks": checks.checks,
                "passed": checks.passed(),
            })
        );
    } else {
        let mut out = format!(
            "rolled back to {}: {} file(s) changed\n",
            done.target.label(),
            done.changes.len()
        );
        for change in &done.changes {
            let _ = writeln!(out, "  {:<9} {}", kind(change.kind), change.path);
        }
        if let Some(dir) = &done.replaced_dir {
            let _ = writeln!(out, "what was replaced is kept in {}", dir.display());
        }
        for warning in &done.warnings {
            let _ = writeln!(out, "warning: {warning}");
        }
        out.push_str(&render_checks(&checks));
        out.push_str("restart Claude Code (runbook §6.2 step 5) for the change to apply\n");
        print!("{out}");
    }
    Ok(if checks.passed() && done.warnings.is_empty() {
        Status::Ok
    } else {
        Status::Problems
    })
}

fn kind(kind: deploy::ChangeKind) -> &'static str {
    match kind {
        deploy::ChangeKind::Created => "created",
        deploy::ChangeKind::Replaced => "restored",
        deploy::ChangeKind::Removed => "removed",
    }
}

fn print_dry_run(plan: &Plan, json: bool) {
    if json {
        println!(
            "{}",
            json!({"target": plan.target.label(), "dry_run": true, "changes": plan.changes})
        );
        return;
    }
    let mut out = format!(
        "would roll back to {}: {} file(s)\n",
        plan.target.label(),
        plan.changes.len()
    );
    for change in &plan.changes {
        let _ = writeln!(out, "  {:<9} {}", kind(change.kind), change.path);
    }
    print!("{out}");
}

/// The runbook's post-rollback checks, one line each.
fn render_checks(checks: &Checks) -> String {
    let mut out = String::from("post-rollback checks (runbook §6.2):\n");
    for check in &checks.checks {
        let (word, value) = match (check.status, check.value) {
            (CheckStatus::Ok, Some(v)) => ("OK", number(v)),
            (CheckStatus::Fail, Some(v)) => ("FAIL", number(v)),
            _ => ("N/A", String::from("no data")),
        };
        let _ = writeln!(
            out,
            "  {word:<4} {}: {value} (limit {})",
            check.what,
            number(check.limit)
        );
    }
    out
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A refused rollback (exit 1) or one that could not run (exit 2).
fn refused(err: DeployError, json: bool) -> Result<Status, CliError> {
    match err {
        DeployError::Corrupt(_) | DeployError::Unsafe { .. } => {
            let text = record::chain(&err);
            if json {
                println!("{}", json!({"refused": text}));
            } else {
                println!("ctxopt rollback: refused: {text}");
            }
            Ok(Status::Problems)
        }
        other => Err(other.into()),
    }
}
