//! `ctxopt install` and `ctxopt uninstall`: resolve the project and bin dir, call
//! [`ctxopt::install`], print what changed for people or as a `--json` summary.
//!
//! All decisions and all writes live in the library (see its module doc); this file must not
//! touch a file itself. A refusal comes back as an error, which `main` prints as
//! `ctxopt: {err}` with exit 2.

use std::fmt::Write as _;

use ctxopt::gitexclude;
use ctxopt::install::{self, ChangeKind, FileAction, InstallReport, Mode, UninstallReport};
use ctxopt::precommit::{self, Action, Plan, Removal};
use ctxopt::project;
use ctxopt::wrap::settings::{self as wrap_settings, Scope};
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
        let scope = match (args.wrap_existing, args.wrap_committed) {
            (_, true) => Scope::Committed,
            (true, false) => Scope::Local,
            (false, false) => Scope::Keep,
        };
        let report = install::install_wrapping(
            &project,
            &bin_dir,
            scope,
            args.config_change,
            mode,
            ctxopt::record::now(),
        )?;
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
    let dry = report.mode == Mode::DryRun;
    let hook_writes = matches!(&report.precommit, Plan::Install(plan) if plan.writes());
    let exclude_writes =
        matches!(&report.git_exclude, gitexclude::Plan::Write(plan) if plan.writes());
    if !report.changed
        && !hook_writes
        && !exclude_writes
        && !report.wrap.edits()
        && !report.scripts.changes()
    {
        return format!(
            "already installed in {settings}; nothing changed\n{}\n{}{}{}",
            precommit_text(&report.precommit, dry),
            exclude_text(&report.git_exclude, dry),
            wrap_text(&report.wrap, dry),
            scripts_text(&report.scripts, dry)
        );
    }
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
    if report.changed {
        let _ = writeln!(out, "{} {settings}", verb(dry, action));
    }
    let _ = writeln!(out, "{}", precommit_text(&report.precommit, dry));
    let _ = writeln!(out, "{}", exclude_text(&report.git_exclude, dry));
    out.push_str(&wrap_text(&report.wrap, dry));
    out.push_str(&scripts_text(&report.scripts, dry));
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

/// What install did (or would do) about the git pre-commit hook, in one or two lines.
fn precommit_text(plan: &Plan, dry: bool) -> String {
    let plan = match plan {
        Plan::Skip(reason) => return format!("note: no git pre-commit hook: {reason}"),
        Plan::Install(plan) => plan,
    };
    let (hook, chained) = (plan.hook.display(), plan.chained.display());
    let chains = if plan.chains {
        format!("; it runs {chained} after its check")
    } else {
        String::new()
    };
    match plan.action {
        Action::Add => format!(
            "{} the git pre-commit hook {hook} (`ctxopt validate --staged`){chains}",
            verb(dry, "add")
        ),
        Action::Chain => format!(
            "{} the existing pre-commit hook to {chained} and {} ctxopt's in its place, \
             which runs it after checking the staged config files",
            verb(dry, "move"),
            verb(dry, "add")
        ),
        Action::Update => format!(
            "{} the git pre-commit hook {hook}{chains}",
            verb(dry, "update")
        ),
        Action::Present => format!("git pre-commit hook already in place: {hook}{chains}"),
    }
}

fn precommit_json(plan: &Plan) -> Value {
    match plan {
        Plan::Skip(reason) => json!({"action": "skipped", "reason": reason.to_string()}),
        Plan::Install(plan) => json!({
            "action": match plan.action {
                Action::Add => "added",
                Action::Chain => "chained",
                Action::Update => "updated",
                Action::Present => "present",
            },
            "hook": plan.hook.display().to_string(),
            "chained": plan.chains.then(|| plan.chained.display().to_string()),
        }),
    }
}

/// What install did (or would do) about the repository's git exclude file, in one line.
fn exclude_text(plan: &gitexclude::Plan, dry: bool) -> String {
    let plan = match plan {
        gitexclude::Plan::Skip(reason) => {
            return format!("note: no git exclude entries: {reason}");
        }
        gitexclude::Plan::Write(plan) => plan,
    };
    let file = plan.file.display();
    match plan.action {
        gitexclude::Action::Add => format!(
            "{} ctxopt's block to {file} so git ignores settings.local.json, the data dir \
             and the config backups",
            verb(dry, "add")
        ),
        gitexclude::Action::Update => {
            format!("{} ctxopt's block in {file}", verb(dry, "update"))
        }
        gitexclude::Action::Present => format!("git exclude block already in place: {file}"),
    }
}

fn exclude_json(plan: &gitexclude::Plan) -> Value {
    match plan {
        gitexclude::Plan::Skip(reason) => {
            json!({"action": "skipped", "reason": reason.to_string()})
        }
        gitexclude::Plan::Write(plan) => json!({
            "action": match plan.action {
                gitexclude::Action::Add => "added",
                gitexclude::Action::Update => "updated",
                gitexclude::Action::Present => "present",
            },
            "file": plan.file.display().to_string(),
        }),
    }
}

fn exclude_removal_text(report: &gitexclude::UninstallReport, dry: bool) -> String {
    let file = report.file.display();
    match report.removal {
        gitexclude::Removal::Removed => {
            format!("{} ctxopt's block from {file}", verb(dry, "remove"))
        }
        gitexclude::Removal::Deleted => format!(
            "{} {file} (ctxopt created it for its block)",
            verb(dry, "delete")
        ),
        gitexclude::Removal::Missing => format!("ctxopt's block in {file} was already gone"),
        gitexclude::Removal::Unterminated => format!(
            "left {file} alone: its ctxopt block has no `{}` line; remove the block by hand",
            gitexclude::END
        ),
    }
}

fn precommit_removal_text(report: &precommit::UninstallReport, dry: bool) -> String {
    let hook = report.hook.display();
    let mut out = match report.removal {
        Removal::Removed => format!("{} the git pre-commit hook {hook}", verb(dry, "remove")),
        Removal::NotOurs => format!("left {hook} alone: it is no longer ctxopt's pre-commit hook"),
        Removal::Missing => format!("the git pre-commit hook {hook} was already gone"),
    };
    if let Some(chained) = &report.restored {
        let _ = write!(
            out,
            "\n{} the chained hook {} back to {hook}",
            verb(dry, "move"),
            chained.display()
        );
    }
    if let Some(chained) = &report.left_chained {
        let _ = write!(
            out,
            "\nthe hook it chained is still at {}; move it back by hand if you want it",
            chained.display()
        );
    }
    out
}

/// What install did (or would do) about the project's other hooks: one line per handler
/// wrapped, updated or left alone, each ending in a newline; nothing when there are none.
fn wrap_text(plan: &wrap_settings::InstallPlan, dry: bool) -> String {
    let mut out = String::new();
    for change in plan.changes() {
        let e = &change.entry;
        let _ = match &change.action {
            wrap_settings::Action::Wrapped => writeln!(
                out,
                "{} {} in {} through ctxopt-run as {} (was: {})",
                verb(dry, "route"),
                e.event,
                e.settings_file,
                e.name,
                e.original
            ),
            wrap_settings::Action::Updated { .. } => writeln!(
                out,
                "{} the ctxopt-run path of {} ({} in {})",
                verb(dry, "update"),
                e.name,
                e.event,
                e.settings_file
            ),
            wrap_settings::Action::Present => writeln!(
                out,
                "already through ctxopt-run: {} ({} in {})",
                e.name, e.event, e.settings_file
            ),
        };
    }
    for skip in plan.skipped() {
        let _ = writeln!(
            out,
            "not wrapped: {} in {}: {} ({})",
            skip.event, skip.settings_file, skip.command, skip.reason
        );
    }
    out
}

fn wrap_json(plan: &wrap_settings::InstallPlan) -> Value {
    let changes: Vec<Value> = plan
        .changes()
        .iter()
        .map(|c| {
            json!({
                "settings_file": c.entry.settings_file,
                "event": c.entry.event,
                "name": c.entry.name,
                "original": c.entry.original,
                "command": c.entry.command,
                "action": match c.action {
                    wrap_settings::Action::Wrapped => "wrapped",
                    wrap_settings::Action::Updated { .. } => "updated",
                    wrap_settings::Action::Present => "present",
                },
            })
        })
        .collect();
    let skipped: Vec<Value> = plan
        .skipped()
        .iter()
        .map(|s| {
            json!({
                "settings_file": s.settings_file,
                "event": s.event,
                "command": s.command,
                "reason": s.reason.to_string(),
            })
        })
        .collect();
    json!({"wrapped": changes, "not_wrapped": skipped})
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
        "precommit": precommit_json(&report.precommit),
        "git_exclude": exclude_json(&report.git_exclude),
        "other_hooks": wrap_json(&report.wrap),
        "runbook_scripts": report.scripts,
    })
}

/// The runbook's `scripts/*.sh`: written, updated, or left alone (not ours).
fn scripts_text(plan: &ctxopt::runbook_scripts::ScriptsPlan, dry: bool) -> String {
    use ctxopt::runbook_scripts::Action;
    let mut out = String::new();
    let written: Vec<String> = plan
        .items
        .iter()
        .filter(|i| matches!(i.action, Action::Create | Action::Update))
        .filter_map(|i| i.path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    if !written.is_empty() {
        let _ = writeln!(
            out,
            "{} the runbook's scripts in {}: {}",
            verb(dry, "write"),
            plan.dir.display(),
            written.join(", ")
        );
    }
    for item in &plan.items {
        if let Action::Skip(why) = &item.action {
            let _ = writeln!(out, "left {} alone: {why}", item.path.display());
        }
    }
    out
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
    if let Some(hook) = &report.precommit {
        let _ = writeln!(out, "{}", precommit_removal_text(hook, dry));
    }
    if let Some(exclude) = &report.git_exclude {
        let _ = writeln!(out, "{}", exclude_removal_text(exclude, dry));
    }
    for e in &report.unwrap.restored {
        let _ = writeln!(
            out,
            "{} the original command of {} ({} in {}): {}",
            verb(dry, "restore"),
            e.name,
            e.event,
            e.settings_file,
            e.original
        );
    }
    for e in &report.unwrap.left {
        let _ = writeln!(
            out,
            "left {} ({} in {}) alone: its command changed since install; the original was: {}",
            e.name, e.event, e.settings_file, e.original
        );
    }
    if let Some(scripts) = &report.scripts {
        for path in &scripts.removed {
            let _ = writeln!(out, "removed {}", path.display());
        }
        for (path, why) in &scripts.kept {
            let _ = writeln!(out, "left {} alone: {why}", path.display());
        }
    }
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
        "precommit": report.precommit.as_ref().map(|p| json!({
            "hook": p.hook.display().to_string(),
            "removal": match p.removal {
                Removal::Removed => "removed",
                Removal::NotOurs => "not_ours",
                Removal::Missing => "missing",
            },
            "restored": p.restored.as_ref().map(|c| c.display().to_string()),
            "left_chained": p.left_chained.as_ref().map(|c| c.display().to_string()),
        })),
        "git_exclude": report.git_exclude.as_ref().map(|e| json!({
            "file": e.file.display().to_string(),
            "removal": match e.removal {
                gitexclude::Removal::Removed => "removed",
                gitexclude::Removal::Deleted => "deleted",
                gitexclude::Removal::Missing => "missing",
                gitexclude::Removal::Unterminated => "unterminated",
            },
        })),
        "other_hooks": {
            "restored": report.unwrap.restored.iter().map(|e| json!({
                "settings_file": e.settings_file,
                "event": e.event,
                "name": e.name,
                "command": e.original,
            })).collect::<Vec<_>>(),
            "left": report.unwrap.left.iter().map(|e| json!({
                "settings_file": e.settings_file,
                "event": e.event,
                "name": e.name,
                "original": e.original,
            })).collect::<Vec<_>>(),
        },
        "runbook_scripts": report.scripts
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
        assert_eq!(verb(false, "move"), "moved");
        assert_eq!(verb(true, "update"), "would update");
    }
}
