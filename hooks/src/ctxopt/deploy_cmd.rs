//! `ctxopt deploy start|finish` (runbook §5.1): Phase 0's record of the current state in
//! `.deploy/`, and step 11's line in `.deploy/history.log`. The work is
//! [`ctxopt::deploy::start`] / [`ctxopt::deploy::finish`]; this file prints. Exit codes: 0
//! done, 2 could not run.

use ctxopt::deploy;
use ctxopt::{project, record};
use serde_json::json;

use crate::ProjectArg;
use crate::commands::{CliError, Status};

/// `ctxopt deploy …`.
#[derive(Debug, clap::Subcommand)]
pub enum DeployCommand {
    /// Phase 0: record the commit (`.deploy/previous_commit.txt`), `.claude/settings.json`
    /// (`previous_settings.json`), `.claude/skills/` (`previous_skills.tar.gz`) and
    /// `.claude/hooks/` without ctxopt's data (`previous_hooks.tar.gz`), with a manifest of
    /// hashes (`snapshot.json`) that `ctxopt rollback` verifies.
    Start(DeployArgs),
    /// Step 11: append `Deployed <commit> at <date>` to `.deploy/history.log`.
    Finish(DeployArgs),
}

/// Arguments of `ctxopt deploy start|finish`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    project: ProjectArg,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `ctxopt deploy …`.
pub fn deploy(command: &DeployCommand) -> Result<Status, CliError> {
    let now = record::now();
    match command {
        DeployCommand::Start(args) => {
            let project = project::for_cli(args.project.project.as_deref());
            // Runbook §5.1 Phase 0, step 1: a backup first.
            let backup = ctxopt::backup::create(
                &project,
                &ctxopt::config::discover::Locations::from_process_env(),
                &ctxopt::backup::Part::DEFAULT,
                now,
            )?;
            let started = deploy::start(&project, now)?;
            let m = &started.manifest;
            let written: Vec<String> = started
                .written
                .iter()
                .map(|p| p.strip_prefix(&project).unwrap_or(p).display().to_string())
                .collect();
            if args.json {
                println!(
                    "{}",
                    json!({
                        "commit": m.commit,
                        "created_at": m.created_at,
                        "settings": m.settings.is_some(),
                        "members": m.members.len(),
                        "skipped": m.skipped,
                        "written": written,
                        "backup": backup.path.display().to_string(),
                    })
                );
            } else {
                println!(
                    "deploy snapshot taken at {} of {}: settings {}, {} skill and hook files",
                    m.created_at,
                    m.commit
                        .as_deref()
                        .unwrap_or("no commit (not a git repository)"),
                    if m.settings.is_some() {
                        "saved"
                    } else {
                        "absent"
                    },
                    m.members.len()
                );
                println!("backup written: {}", backup.path.display());
                for path in &written {
                    println!("  {path}");
                }
                for path in &m.skipped {
                    println!("  skipped (not a regular file): {path}");
                }
                println!("roll back to it with: ctxopt rollback");
            }
        }
        DeployCommand::Finish(args) => {
            let project = project::for_cli(args.project.project.as_deref());
            let finished = deploy::finish(&project, now)?;
            if args.json {
                println!("{}", json!({"history": finished.line}));
            } else {
                println!("{} (appended to .deploy/history.log)", finished.line);
            }
        }
    }
    Ok(Status::Ok)
}
