//! `ctxopt backup create|list|verify|restore`: backups of the project's settings, skills and
//! hooks (R7.1, runbook P0-002). The work is [`ctxopt::backup`]; this file resolves the
//! project and the archive, prints for people or as `--json`, and picks the exit code: 0 ok,
//! 1 an archive refused (corrupt, fails its manifest, unsafe members), 2 could not run.
//!
//! Every subcommand first finishes a restore that was interrupted (see
//! [`ctxopt::backup::journal`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ctxopt::backup::journal::{Change, Restored};
use ctxopt::backup::{
    self, ArchiveInfo, Cadence, Created, Part, Recovery, RestoreError, RestoreOptions,
};
use ctxopt::config::discover::Locations;
use ctxopt::project;
use ctxopt::record;
use ctxopt::store::DataDir;
use serde_json::{Value, json};

use crate::ProjectArg;
use crate::commands::{CliError, Status};

/// The `backup` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BackupCommand {
    /// Back up settings, skills and hooks into `.kiro/specs/context-optimization/backup/`.
    ///
    /// Writes `backup-YYYYMMDD-HHMMSS.tar.gz` (UTC) and a copy as `backup-YYYYMMDD.tar.gz`,
    /// mode 0600, members named by absolute path so the runbook's `tar xzf … -C /` restores
    /// in place; then keeps the newest 48 hourly archives and 30 days of daily copies.
    /// `~/.claude.json` only with `--only …,claude-json`; a backup without every default part
    /// gets no daily copy.
    Create(CreateArgs),
    /// List the backups, newest first: time, size, files, last verify result.
    List(ListArgs),
    /// Verify a backup (default: the newest): extract it into a temporary directory and
    /// compare every file with the manifest's sha256 (the weekly restore test).
    Verify(VerifyArgs),
    /// Restore a backup (default: the newest), after verifying it.
    ///
    /// Journaled: a crash leaves the old files or the new ones once the next `ctxopt backup`
    /// command runs. Replaced files are kept as `NAME.pre-restore-<UTC time>`. Files missing
    /// from the archive are left alone. Refuses an archive that fails verification or names
    /// a file outside the project's `.claude/`, `.mcp.json`, the user's `settings.json` and
    /// `~/.claude.json`.
    Restore(RestoreArgs),
}

/// A part of a backup, on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PartArg {
    /// Settings files of the project and the user, `.mcp.json`, `ctxopt.json`, `canary.json`.
    Settings,
    /// `.claude/skills/**`.
    Skills,
    /// `.claude/hooks/**` except ctxopt's data dir.
    Hooks,
    /// `~/.claude.json`.
    ClaudeJson,
}

impl PartArg {
    fn part(self) -> Part {
        match self {
            Self::Settings => Part::Settings,
            Self::Skills => Part::Skills,
            Self::Hooks => Part::Hooks,
            Self::ClaudeJson => Part::ClaudeJson,
        }
    }
}

fn parts(only: &[PartArg]) -> Option<Vec<Part>> {
    if only.is_empty() {
        None
    } else {
        let mut parts: Vec<Part> = only.iter().map(|p| p.part()).collect();
        parts.sort();
        parts.dedup();
        Some(parts)
    }
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    project: ProjectArg,
    /// Only these parts (comma-separated; default: settings,skills,hooks).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "PART")]
    only: Vec<PartArg>,
    /// Print nothing unless something fails (used by the SessionStart hook).
    #[arg(long)]
    quiet: bool,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
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
pub struct VerifyArgs {
    /// The archive: a path, or a file name in the backup directory (default: the newest).
    #[arg(value_name = "ARCHIVE")]
    archive: Option<PathBuf>,
    #[command(flatten)]
    project: ProjectArg,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The archive: a path, or a file name in the backup directory (default: the newest).
    #[arg(value_name = "ARCHIVE")]
    archive: Option<PathBuf>,
    #[command(flatten)]
    project: ProjectArg,
    /// Only these parts (comma-separated; default: everything in the archive).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "PART")]
    only: Vec<PartArg>,
    /// Print what would change; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `ctxopt backup …`.
pub fn backup(command: &BackupCommand) -> Result<Status, CliError> {
    let locations = Locations::from_process_env();
    match command {
        BackupCommand::Create(args) => create(args, &locations),
        BackupCommand::List(args) => list(args, &locations),
        BackupCommand::Verify(args) => verify(args, &locations),
        BackupCommand::Restore(args) => restore(args, &locations),
    }
}

fn create(args: &CreateArgs, locations: &Locations) -> Result<Status, CliError> {
    let project = project::for_cli(args.project.project.as_deref());
    let parts = parts(&args.only).unwrap_or_else(|| Part::DEFAULT.to_vec());
    let created = backup::create(&project, locations, &parts, record::now())?;
    if args.json {
        println!("{}", create_json(&created, &parts));
    } else if !args.quiet {
        print!("{}", create_text(&created));
    }
    if let Some(err) = &created.note_error {
        eprintln!("ctxopt: warning: backed up, but failed to record it for the guard: {err}");
    }
    Ok(Status::Ok)
}

fn create_text(created: &Created) -> String {
    let mut out = recovered_text(created.recovered);
    let _ = write!(
        out,
        "backed up {} files to {} ({} bytes",
        created.members,
        created.path.display(),
        created.bytes,
    );
    match &created.daily {
        Some(daily) => {
            let _ = writeln!(out, "; daily copy {})", file_name(daily));
        }
        None => out.push_str("; partial, so no daily copy)\n"),
    }
    for skipped in &created.skipped {
        let _ = writeln!(
            out,
            "  skipped {}: {}",
            skipped.path.display(),
            skipped.reason
        );
    }
    for removed in &created.removed {
        let _ = writeln!(out, "  removed by retention: {}", file_name(removed));
    }
    out
}

fn create_json(created: &Created, parts: &[Part]) -> Value {
    json!({
        "path": created.path.display().to_string(),
        "daily": created.daily.as_ref().map(|d| d.display().to_string()),
        "parts": parts.iter().map(|p| p.name()).collect::<Vec<_>>(),
        "members": created.members,
        "bytes": created.bytes,
        "skipped": created.skipped.iter().map(|s| json!({
            "path": s.path.display().to_string(),
            "reason": s.reason,
        })).collect::<Vec<_>>(),
        "removed": created.removed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "recovered": recovered_json(created.recovered),
    })
}

fn recovered_text(recovered: Option<Recovery>) -> String {
    match recovered {
        None => String::new(),
        Some(Recovery::Completed { files }) => {
            format!("finished an interrupted restore ({files} files now from the backup)\n")
        }
        Some(Recovery::Undone { files }) => {
            format!("undid an interrupted restore ({files} files back as they were)\n")
        }
    }
}

fn recovered_json(recovered: Option<Recovery>) -> Value {
    match recovered {
        None => Value::Null,
        Some(Recovery::Completed { files }) => json!({"action": "completed", "files": files}),
        Some(Recovery::Undone { files }) => json!({"action": "undone", "files": files}),
    }
}

fn recover_first(project: &Path, locations: &Locations) -> Result<Option<Recovery>, CliError> {
    let recovered = backup::recover(project, locations)?;
    if recovered.is_some() {
        eprint!("ctxopt: {}", recovered_text(recovered));
    }
    Ok(recovered)
}

fn list(args: &ListArgs, locations: &Locations) -> Result<Status, CliError> {
    let project = project::for_cli(args.project.project.as_deref());
    recover_first(&project, locations)?;
    let data = DataDir::of_project(&project);
    let verified = backup::verified(&data);
    let archives = backup::list(&project);
    let rows: Vec<Row> = archives
        .into_iter()
        .map(|info| {
            let members = backup::archive::read_path(&info.path)
                .map(|c| c.members.len())
                .ok();
            let verified = verified.get(&info.name).cloned();
            Row {
                info,
                members,
                verified,
            }
        })
        .collect();
    let corrupt = rows.iter().any(|r| r.members.is_none());
    if args.json {
        println!(
            "{}",
            json!({
                "dir": backup::backup_dir(&project).display().to_string(),
                "backups": rows.iter().map(Row::json).collect::<Vec<_>>(),
            })
        );
    } else {
        print!("{}", list_text(&project, &rows));
    }
    Ok(if corrupt {
        Status::Problems
    } else {
        Status::Ok
    })
}

struct Row {
    info: ArchiveInfo,
    members: Option<usize>,
    verified: Option<backup::VerifyRecord>,
}

impl Row {
    fn json(&self) -> Value {
        json!({
            "name": self.info.name,
            "path": self.info.path.display().to_string(),
            "cadence": cadence(self.info.cadence),
            "time": record::timestamp(self.info.time),
            "size": self.info.size,
            "members": self.members,
            "readable": self.members.is_some(),
            "verified": self.verified.as_ref().map(|v| json!({"at": v.at, "ok": v.ok})),
        })
    }

    fn verified_text(&self) -> String {
        match &self.verified {
            None => "-".to_owned(),
            Some(v) if v.ok => format!("ok {}", v.at),
            Some(v) => format!("FAILED {}", v.at),
        }
    }
}

fn cadence(cadence: Cadence) -> &'static str {
    match cadence {
        Cadence::Hourly => "hourly",
        Cadence::Daily => "daily",
    }
}

fn list_text(project: &Path, rows: &[Row]) -> String {
    if rows.is_empty() {
        return format!(
            "no backups in {} (make one with: ctxopt backup create)\n",
            backup::backup_dir(project).display()
        );
    }
    let mut out = format!("{:<32}  {:>10}  {:>7}  VERIFIED\n", "NAME", "SIZE", "FILES");
    for row in rows {
        let files = row
            .members
            .map_or_else(|| "corrupt".to_owned(), |n| n.to_string());
        let _ = writeln!(
            out,
            "{:<32}  {:>10}  {:>7}  {}",
            row.info.name,
            row.info.size,
            files,
            row.verified_text()
        );
    }
    out
}

/// The archive named on the command line (a path, or a name in the backup directory), else
/// the newest.
fn resolve(project: &Path, archive: Option<&Path>) -> Result<PathBuf, CliError> {
    match archive {
        Some(path) if path.exists() || path.components().count() > 1 => Ok(project::absolute(path)),
        Some(name) => Ok(backup::backup_dir(project).join(name)),
        None => backup::newest(project).map(|a| a.path).ok_or_else(|| {
            backup::BackupError::NoBackup {
                dir: backup::backup_dir(project),
            }
            .into()
        }),
    }
}

fn verify(args: &VerifyArgs, locations: &Locations) -> Result<Status, CliError> {
    let project = project::for_cli(args.project.project.as_deref());
    recover_first(&project, locations)?;
    let path = resolve(&project, args.archive.as_deref())?;
    let data = DataDir::of_project(&project);
    match backup::verify(&data, &path, record::now()) {
        Ok(verified) => {
            if args.json {
                println!(
                    "{}",
                    json!({"path": path.display().to_string(), "ok": true, "files": verified.files})
                );
            } else {
                println!(
                    "ok: {} ({} files extracted and matched the manifest)",
                    path.display(),
                    verified.files
                );
            }
            Ok(Status::Ok)
        }
        Err(err) if err.is_refusal() => {
            let chain = CliError::from(err).to_string();
            if args.json {
                println!(
                    "{}",
                    json!({"path": path.display().to_string(), "ok": false, "error": chain})
                );
            } else {
                println!("FAILED: {}: {chain}", path.display());
            }
            Ok(Status::Problems)
        }
        Err(err) => Err(err.into()),
    }
}

fn restore(args: &RestoreArgs, locations: &Locations) -> Result<Status, CliError> {
    let project = project::for_cli(args.project.project.as_deref());
    recover_first(&project, locations)?;
    let path = resolve(&project, args.archive.as_deref())?;
    let parts = parts(&args.only);
    let options = RestoreOptions {
        parts: parts.as_deref(),
        dry_run: args.dry_run,
        crash_after: fault_step(),
    };
    match backup::restore(&project, locations, &path, options, record::now()) {
        Ok(restored) => {
            if args.json {
                println!("{}", restore_json(&restored));
            } else {
                print!("{}", restore_text(&restored));
            }
            for err in &restored.audit_errors {
                eprintln!("ctxopt: warning: restored, but failed to record it: {err}");
            }
            Ok(Status::Ok)
        }
        Err(RestoreError::Injected { step }) => {
            eprintln!("ctxopt: fault injection: killed after restore step {step}");
            std::process::abort()
        }
        Err(err) if err.is_refusal() => {
            eprintln!("ctxopt: {}", CliError::from(err));
            Ok(Status::Problems)
        }
        Err(err) => Err(err.into()),
    }
}

/// Debug builds: `CTXOPT_FAULT_INJECT=restore-step-K` makes the restore die (abort, like a
/// kill -9) right after its K-th step, for the crash tests.
fn fault_step() -> Option<u32> {
    if !cfg!(debug_assertions) {
        return None;
    }
    std::env::var("CTXOPT_FAULT_INJECT")
        .ok()?
        .strip_prefix("restore-step-")?
        .parse()
        .ok()
}

fn restore_text(restored: &Restored) -> String {
    let mut out = recovered_text(restored.recovered);
    let count = |c: Change| restored.files.iter().filter(|f| f.change == c).count();
    let _ = writeln!(
        out,
        "{} {}: {} replaced, {} created, {} unchanged",
        if restored.dry_run {
            "would restore"
        } else {
            "restored"
        },
        restored.archive.display(),
        count(Change::Replaced),
        count(Change::Created),
        count(Change::Unchanged)
    );
    for file in restored
        .files
        .iter()
        .filter(|f| f.change != Change::Unchanged)
    {
        let _ = write!(out, "  {:<8}  {}", file.change.name(), file.path.display());
        if let Some(kept) = &file.kept {
            let _ = write!(
                out,
                "  ({} as {})",
                if restored.dry_run {
                    "would keep"
                } else {
                    "kept"
                },
                file_name(kept)
            );
        }
        out.push('\n');
    }
    out
}

fn restore_json(restored: &Restored) -> Value {
    json!({
        "archive": restored.archive.display().to_string(),
        "dry_run": restored.dry_run,
        "recovered": recovered_json(restored.recovered),
        "files": restored.files.iter().map(|f| json!({
            "path": f.path.display().to_string(),
            "part": f.part.name(),
            "change": f.change.name(),
            "kept": f.kept.as_ref().map(|k| k.display().to_string()),
        })).collect::<Vec<_>>(),
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use ctxopt::backup::journal::RestoredFile;

    #[test]
    fn restore_text_lists_changes() {
        let restored = Restored {
            archive: PathBuf::from("/p/b.tar.gz"),
            files: vec![
                RestoredFile {
                    path: PathBuf::from("/p/.claude/settings.json"),
                    part: Part::Settings,
                    change: Change::Replaced,
                    kept: Some(PathBuf::from(
                        "/p/.claude/settings.json.pre-restore-20261125T100000Z",
                    )),
                },
                RestoredFile {
                    path: PathBuf::from("/p/.claude/hooks/x.sh"),
                    part: Part::Hooks,
                    change: Change::Unchanged,
                    kept: None,
                },
            ],
            dry_run: false,
            recovered: Some(Recovery::Undone { files: 2 }),
            audit_errors: Vec::new(),
        };
        assert_eq!(
            restore_text(&restored),
            "undid an interrupted restore (2 files back as they were)\n\
             restored /p/b.tar.gz: 1 replaced, 0 created, 1 unchanged\n\
             \x20 replaced  /p/.claude/settings.json  (kept as \
             settings.json.pre-restore-20261125T100000Z)\n"
        );
    }

    #[test]
    fn parts_dedup() {
        assert_eq!(parts(&[]), None);
        assert_eq!(
            parts(&[PartArg::Hooks, PartArg::Settings, PartArg::Hooks]),
            Some(vec![Part::Settings, Part::Hooks])
        );
    }
}
