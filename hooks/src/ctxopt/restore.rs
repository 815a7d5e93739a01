//! `ctxopt restore-config`: puts a config file's last-known-good copy (`X.backup`) back, after
//! validating the copy, keeping the replaced file as `X.broken-<UTC timestamp>`.
//!
//! The work and every write are [`ctxopt::config::lastgood::restore`]; this file resolves
//! which files to restore, prints what happened for people or as `--json`, and picks the exit
//! code: 0 restored or nothing to do, 1 a restore was impossible (no copy, or the copy is
//! invalid too), 2 could not run.

use std::fmt::Write as _;
use std::path::PathBuf;

use ctxopt::config::discover::{self, Locations};
use ctxopt::config::lastgood::{self, Replace, RestoreError, RestoreOutcome};
use ctxopt::config::{CheckContext, ConfigFile, Kind, validate_file};
use ctxopt::project;
use ctxopt::record;
use ctxopt::store::DataDir;
use serde_json::{Value, json};

use crate::ProjectArg;
use crate::commands::{CliError, Status};

/// Arguments of `ctxopt restore-config`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The config file to restore (default: every config file of the project and the user
    /// that is invalid now).
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    #[command(flatten)]
    project: ProjectArg,
    /// Restore FILE even when it is valid (the copy replaces newer valid edits; they are kept
    /// aside).
    #[arg(long, requires = "file")]
    force: bool,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
}

/// What happened to one file.
enum FileResult {
    Done(RestoreOutcome),
    Failed(RestoreError),
}

/// Runs `ctxopt restore-config`.
pub fn restore(args: &RestoreArgs) -> Result<Status, CliError> {
    let project = project::for_cli(args.project.project.as_deref());
    let locations = Locations::from_process_env();
    let ctx = CheckContext {
        project: project.clone(),
        home: locations.home.clone(),
    };
    let data = DataDir::of_project(&project);
    let discovered = discover::discover(&project, &locations);
    let (targets, replace) = if let Some(file) = &args.file {
        let path = project::absolute(file);
        let kind = discovered
            .iter()
            .find(|f| f.path == path)
            .map(|f| f.kind)
            .or_else(|| Kind::of_path(&path))
            .ok_or_else(|| NotAConfigFile(path.clone()))?;
        let replace = if args.force {
            Replace::Always
        } else {
            Replace::IfInvalid
        };
        (vec![ConfigFile { path, kind }], replace)
    } else {
        let broken = discovered
            .into_iter()
            .filter(|f| {
                validate_file(f, &lastgood::display(&f.path, &ctx), &ctx)
                    .iter()
                    .any(ctxopt::diagnostic::Diagnostic::is_error)
            })
            .collect();
        (broken, Replace::IfInvalid)
    };
    let now = record::now();
    let results: Vec<(ConfigFile, FileResult)> = targets
        .into_iter()
        .map(|file| {
            let result = match lastgood::restore(&file, &ctx, &data, replace, now) {
                Ok(outcome) => FileResult::Done(outcome),
                Err(err) => FileResult::Failed(err),
            };
            (file, result)
        })
        .collect();
    if args.json {
        println!("{}", to_json(&project, &ctx, &results));
    } else {
        print!("{}", to_text(&ctx, &results));
    }
    for (_, result) in &results {
        if let FileResult::Done(RestoreOutcome::Restored(restored)) = result
            && let Some(err) = &restored.audit_error
        {
            eprintln!(
                "ctxopt: warning: restored, but failed to record it: {}",
                record::chain(err)
            );
        }
    }
    Ok(status(&results))
}

/// The exit status: any failure to run → 2, else any impossible restore → 1, else 0.
fn status(results: &[(ConfigFile, FileResult)]) -> Status {
    let failed = |hard: bool| {
        results
            .iter()
            .any(|(_, r)| matches!(r, FileResult::Failed(e) if e.is_impossible() != hard))
    };
    if failed(true) {
        Status::CouldNotRun
    } else if failed(false) {
        Status::Problems
    } else {
        Status::Ok
    }
}

/// FILE names no config file ctxopt knows.
#[derive(Debug)]
struct NotAConfigFile(PathBuf);

impl std::fmt::Display for NotAConfigFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "failed to restore {}: not a config file ctxopt keeps a copy of (settings.json, \
             settings.local.json, .claude.json, .mcp.json, canary.json, ctxopt.json)",
            self.0.display()
        )
    }
}

impl std::error::Error for NotAConfigFile {}

fn to_text(ctx: &CheckContext, results: &[(ConfigFile, FileResult)]) -> String {
    if results.is_empty() {
        return "nothing to restore: no config file of the project or the user is invalid\n"
            .to_owned();
    }
    let mut out = String::new();
    for (file, result) in results {
        let name = lastgood::display(&file.path, ctx);
        let _ = match result {
            FileResult::Done(RestoreOutcome::Restored(r)) => {
                let _ = writeln!(
                    out,
                    "restored {name} from its last-known-good copy {}",
                    lastgood::display(&r.backup, ctx)
                );
                match &r.broken {
                    Some(aside) => writeln!(
                        out,
                        "  the replaced file is kept as {}",
                        lastgood::display(aside, ctx)
                    ),
                    None => Ok(()),
                }
            }
            FileResult::Done(RestoreOutcome::SameAsBackup) => writeln!(
                out,
                "nothing to do: {name} already holds its last-known-good copy"
            ),
            FileResult::Done(RestoreOutcome::Valid) => writeln!(
                out,
                "nothing to do: {name} is valid (--force replaces it with {} anyway)",
                lastgood::display(&lastgood::backup_path(&file.path), ctx)
            ),
            FileResult::Failed(err) => writeln!(out, "ctxopt: {}", record::chain(err)),
        };
    }
    out
}

fn to_json(
    project: &std::path::Path,
    ctx: &CheckContext,
    results: &[(ConfigFile, FileResult)],
) -> Value {
    let files: Vec<Value> = results
        .iter()
        .map(|(file, result)| {
            let mut v = json!({
                "path": file.path.display().to_string(),
                "display": lastgood::display(&file.path, ctx),
                "backup": lastgood::backup_path(&file.path).display().to_string(),
            });
            match result {
                FileResult::Done(RestoreOutcome::Restored(r)) => {
                    v["result"] = "restored".into();
                    v["broken_copy"] = r.broken.as_ref().map(|p| p.display().to_string()).into();
                    v["sha256_before"] = r.sha256_before.clone().into();
                    v["sha256_after"] = r.sha256_after.clone().into();
                }
                FileResult::Done(RestoreOutcome::SameAsBackup) => {
                    v["result"] = "unchanged".into();
                    v["reason"] = "already holds its last-known-good copy".into();
                }
                FileResult::Done(RestoreOutcome::Valid) => {
                    v["result"] = "unchanged".into();
                    v["reason"] = "valid".into();
                }
                FileResult::Failed(err) => {
                    v["result"] = if err.is_impossible() {
                        "impossible"
                    } else {
                        "failed"
                    }
                    .into();
                    v["reason"] = record::chain(err).into();
                }
            }
            v
        })
        .collect();
    json!({
        "command": "restore-config",
        "project": project.display().to_string(),
        "files": files,
    })
}
