//! `ctxopt prune`: applies retention now and says what it did, per file, for people or as
//! `--json`. The work is [`ctxopt::retention::prune`]; this file only resolves the project and
//! prints. A prune skipped because another one holds the lock is a success (exit 0): the other
//! one is doing the work.

use std::fmt::Write as _;
use std::path::Path;

use ctxopt::policy::Policy;
use ctxopt::project;
use ctxopt::retention::{self, PruneReport, Trimmed};
use ctxopt::store::DataDir;
use serde_json::{Value, json};

use crate::PruneArgs;
use crate::commands::{CliError, Status};

/// Runs `ctxopt prune`.
pub fn prune(args: &PruneArgs) -> Result<Status, CliError> {
    let project = project::for_cli(args.project.project.as_deref());
    let policy = Policy::load(&project)?;
    let data = DataDir::of_project(&project);
    let report = retention::prune(&data, &policy.retention, ctxopt::record::now())?;
    if args.json {
        println!("{}", to_json(&data, &report));
    } else if !args.quiet {
        print!("{}", to_text(&data, &report));
    }
    Ok(Status::Ok)
}

/// The `--json` summary.
fn to_json(data: &DataDir, report: &PruneReport) -> Value {
    let trimmed = |t: &Trimmed| json!({"dropped": t.dropped, "kept": t.kept, "undated": t.undated});
    json!({
        "data_dir": data.root().display().to_string(),
        "skipped": report.skipped,
        "metrics": {
            "archived": report.metrics_archived,
            "kept": report.metrics_kept,
            "undated": report.metrics_undated,
            "archives": report.archives.iter().map(|a| json!({
                "month": a.month,
                "path": a.path.display().to_string(),
                "records": a.records,
            })).collect::<Vec<_>>(),
        },
        "hook_log": trimmed(&report.hook_log),
        "audit": trimmed(&report.audit),
        "state": {"removed": report.state_removed},
    })
}

/// The human summary: one line per file, one indented line per archive written.
fn to_text(data: &DataDir, report: &PruneReport) -> String {
    let root = data.root();
    if report.skipped {
        return format!(
            "another ctxopt prune is running on {}; nothing done\n",
            root.display()
        );
    }
    let mut out = format!("pruned {}\n", root.display());
    let _ = writeln!(
        out,
        "  metrics.jsonl: {} archived, {} kept{}",
        report.metrics_archived,
        report.metrics_kept,
        undated(report.metrics_undated)
    );
    for archive in &report.archives {
        let _ = writeln!(
            out,
            "    {}: +{} records",
            relative(root, &archive.path),
            archive.records
        );
    }
    for (name, trimmed) in [
        ("hook_execution.log", &report.hook_log),
        ("audit.log", &report.audit),
    ] {
        let _ = writeln!(
            out,
            "  {name}: {} dropped, {} kept{}",
            trimmed.dropped,
            trimmed.kept,
            undated(trimmed.undated)
        );
    }
    let _ = writeln!(
        out,
        "  state/: {} stale files removed",
        report.state_removed
    );
    out
}

fn undated(count: u64) -> String {
    if count == 0 {
        String::new()
    } else {
        format!(" ({count} without a readable timestamp, kept)")
    }
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::PathBuf;

    use ctxopt::retention::Archived;

    fn report() -> (DataDir, PruneReport) {
        let data = DataDir::of_project(Path::new("/p"));
        let report = PruneReport {
            metrics_archived: 3,
            metrics_kept: 10,
            metrics_undated: 1,
            archives: vec![Archived {
                month: "2026-10".into(),
                path: PathBuf::from("/p/.claude/hooks/data/archive/metrics-2026-10.jsonl.gz"),
                records: 3,
            }],
            hook_log: Trimmed {
                dropped: 2,
                kept: 5,
                undated: 0,
            },
            state_removed: 4,
            ..PruneReport::default()
        };
        (data, report)
    }

    #[test]
    fn text_lists_each_file() {
        let (data, report) = report();
        assert_eq!(
            to_text(&data, &report),
            "pruned /p/.claude/hooks/data\n\
             \x20 metrics.jsonl: 3 archived, 10 kept (1 without a readable timestamp, kept)\n\
             \x20   archive/metrics-2026-10.jsonl.gz: +3 records\n\
             \x20 hook_execution.log: 2 dropped, 5 kept\n\
             \x20 audit.log: 0 dropped, 0 kept\n\
             \x20 state/: 4 stale files removed\n"
        );
    }

    #[test]
    fn json_has_every_counter() {
        let (data, report) = report();
        let value = to_json(&data, &report);
        assert_eq!(value["skipped"], false);
        assert_eq!(value["metrics"]["archived"], 3);
        assert_eq!(value["metrics"]["archives"][0]["month"], "2026-10");
        assert_eq!(value["hook_log"]["dropped"], 2);
        assert_eq!(value["state"]["removed"], 4);
    }

    #[test]
    fn skipped_says_so() {
        let data = DataDir::of_project(Path::new("/p"));
        let report = PruneReport {
            skipped: true,
            ..PruneReport::default()
        };
        assert!(to_text(&data, &report).starts_with("another ctxopt prune is running"));
    }
}
