//! `ctxopt install` and `ctxopt uninstall`: resolve the project and bin dir, call
//! [`ctxopt::install`], print what changed for people or as a `--json` summary.
//!
//! All decisions and all writes live in the library (see its module doc); this file must not
//! touch a file itself. A refusal comes back as an error, which `main` prints as
//! `ctxopt: {err}` with exit 2.

use std::fmt::Write as _;

use ctxopt::install::{self, ChangeKind, FileAction, InstallReport, Mode, UninstallReport};
use ctxopt::project;
use serde_json::{Value, json};

use crate::InstallArgs;
use crate::commands::{CliError, Status};

/// Runs `ctxopt install` (or `ctxopt uninstall` when `uninstall`).
pub fn install(args: &InstallArgs, uninstall: bool) -> Result<Status, CliError> {
    let project = project::for_cli(args.project.project.as_deref());
    let mode = if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Write
    };
    let out = if uninstall {
        let report = install::uninstall(&project, mode)?;
        if args.json {
            uninstall_json(&report).to_string()
        } else {
            uninstall_text(&report)
        }
    } else {
        let bin_dir = match &args.bin_dir {
            Some(dir) => project::absolute(dir),
            None => install::default_bin_dir()?,
        };
        let report = install::install(&project, &bin_dir, mode, ctxopt::record::now())?;
        if args.json {
            install_json(&report).to_string()
        } else {
            install_text(&report)
        }
    };
    println!("{}", out.trim_end());
    Ok(Status::Ok)
}

fn install_text(report: &InstallReport) -> String {
    let paths = &report.paths;
    let settings = paths.settings.display();
    if !report.changed {
        return format!("already installed in {settings}; nothing changed");
    }
    let dry = report.mode == Mode::DryRun;
    let mut out = String::new();
    for change in &report.changes {
        let (event, command) = (change.event, &change.command);
        let _ = match &change.kind {
            ChangeKind::Added => writeln!(out, "{} {event} → {command}", verb(dry, "add")),
            ChangeKind::Updated { previous } => writeln!(
                out,
                "{} {event} → {command} (was {previous})",
                verb(dry, "update")
            ),
            ChangeKind::Present => writeln!(out, "already registered: {event} → {command}"),
        };
    }
    if report.saved_pre_install {
        let _ = writeln!(
            out,
            "{} the original settings to {}",
            verb(dry, "save"),
            paths.pre_install.display()
        );
    }
    let action = if report.created_file {
        "create"
    } else {
        "write"
    };
    let _ = writeln!(out, "{} {settings}", verb(dry, action));
    if dry {
        out.push_str("dry run: nothing written");
    } else {
        let _ = write!(
            out,
            "recorded what was added in {} (`ctxopt uninstall` removes exactly that)",
            paths.manifest.display()
        );
    }
    out
}

/// `verb` as a dry run says it ("would add") or a real run ("added").
fn verb(dry_run: bool, verb: &str) -> String {
    if dry_run {
        return format!("would {verb}");
    }
    match verb {
        "write" => "wrote".to_owned(),
        "rewrite" => "rewrote".to_owned(),
        v if v.ends_with('e') => format!("{v}d"),
        v => format!("{v}ed"),
    }
}

fn install_json(report: &InstallReport) -> Value {
    let changes: Vec<Value> = report
        .changes
        .iter()
        .map(|c| {
            let mut v = json!({
                "event": c.event,
                "action": match c.kind {
                    ChangeKind::Added => "added",
                    ChangeKind::Updated { .. } => "updated",
                    ChangeKind::Present => "present",
                },
                "command": c.command,
            });
            if let ChangeKind::Updated { previous } = &c.kind {
                v["previous"] = previous.as_str().into();
            }
            v
        })
        .collect();
    json!({
        "command": "install",
        "project": report.paths.project.display().to_string(),
        "settings": report.paths.settings.display().to_string(),
        "dry_run": report.mode == Mode::DryRun,
        "changed": report.changed,
        "already_installed": !report.changed,
        "created_file": report.created_file,
        "changes": changes,
        "pre_install_copy": report
            .saved_pre_install
            .then(|| report.paths.pre_install.display().to_string()),
        "manifest": report.paths.manifest.display().to_string(),
    })
}

fn uninstall_text(report: &UninstallReport) -> String {
    let paths = &report.paths;
    let settings = paths.settings.display();
    if !report.manifest_found {
        return format!(
            "nothing to uninstall in {} (no {})",
            paths.project.display(),
            paths.manifest.display()
        );
    }
    let dry = report.mode == Mode::DryRun;
    let mut out = String::new();
    for removal in &report.removed {
        let _ = writeln!(
            out,
            "{} {} → {}",
            verb(dry, "remove"),
            removal.event,
            removal.command
        );
    }
    for key in &report.removed_keys {
        let _ = writeln!(
            out,
            "{} the `{key}` key (ctxopt created it)",
            verb(dry, "remove")
        );
    }
    let _ = match report.file {
        Some(FileAction::Restored) => writeln!(
            out,
            "{} the original bytes of {settings}",
            verb(dry, "restore")
        ),
        Some(FileAction::Rewritten) => writeln!(out, "{} {settings}", verb(dry, "rewrite")),
        Some(FileAction::Deleted) => {
            writeln!(
                out,
                "{} {settings} (ctxopt created it)",
                verb(dry, "delete")
            )
        }
        Some(FileAction::Unchanged) | None => writeln!(out, "{settings} left unchanged"),
        Some(FileAction::Missing) => writeln!(out, "{settings} does not exist; nothing to edit"),
    };
    if dry {
        out.push_str("dry run: nothing written");
    } else {
        let _ = write!(
            out,
            "removed the install records ({})",
            paths.manifest.display()
        );
    }
    out
}

fn uninstall_json(report: &UninstallReport) -> Value {
    let removed: Vec<Value> = report
        .removed
        .iter()
        .map(|r| json!({"event": r.event, "command": r.command}))
        .collect();
    json!({
        "command": "uninstall",
        "project": report.paths.project.display().to_string(),
        "settings": report.paths.settings.display().to_string(),
        "dry_run": report.mode == Mode::DryRun,
        "manifest_found": report.manifest_found,
        "removed": removed,
        "removed_keys": report.removed_keys,
        "file": report.file.map(|f| match f {
            FileAction::Restored => "restored",
            FileAction::Rewritten => "rewritten",
            FileAction::Deleted => "deleted",
            FileAction::Unchanged => "unchanged",
            FileAction::Missing => "missing",
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_read_right_in_both_modes() {
        assert_eq!(verb(true, "add"), "would add");
        assert_eq!(verb(false, "add"), "added");
        assert_eq!(verb(false, "save"), "saved");
        assert_eq!(verb(false, "write"), "wrote");
        assert_eq!(verb(false, "rewrite"), "rewrote");
        assert_eq!(verb(false, "remove"), "removed");
    }
}
