//! The runbook's entry points, `scripts/*.sh` (R10.7): the runbook says `bash
//! scripts/rollback.sh`, `bash scripts/backup.sh`, …; ctxopt writes each as a POSIX sh one-liner
//! that changes to the project and `exec`s the ctxopt command doing that job, by absolute path.
//!
//! Each script carries the marker line [`MARKER`]. [`plan`] decides what to write: a missing
//! script is created, a marked one brought up to date, and a script without the marker — the
//! project's own — is left alone and reported. [`apply`] writes (atomically, mode 0755);
//! [`ScriptsPlan::record`] is what the install manifest keeps, and [`remove`] deletes only the
//! scripts that still carry the marker and the SHA-256 recorded when written (a script the
//! user edited stays), and `scripts/` itself only when ctxopt created it and it is empty.
//!
//! `daily_check.sh` is not among them: no ctxopt command does the daily check yet.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::lastgood::sha256_hex;
use crate::store::{self, Durability, StoreError};

/// The line that marks a script as ctxopt's.
pub const MARKER: &str = "# ctxopt-runbook-script";
/// The directory, relative to the project.
pub const DIR: &str = "scripts";
/// Mode of a written script.
const MODE: u32 = 0o755;
/// Largest script [`plan`] and [`remove`] read (a runbook script is a few hundred bytes).
const MAX_SCRIPT_BYTES: u64 = 64 * 1024;

/// One runbook script: its name, where the runbook uses it, and the ctxopt command it runs
/// (the script's arguments follow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Script {
    /// File name under `scripts/`.
    pub name: &'static str,
    /// Where the runbook calls it.
    pub runbook: &'static str,
    /// The shell text after `cd` — `{ctxopt}` stands for the quoted absolute binary.
    pub command: &'static str,
}

/// Every script ctxopt writes.
pub const SCRIPTS: &[Script] = &[
    Script {
        name: "backup.sh",
        runbook: "§5.1 Phase 0, §5.2, §6.2 step 3",
        command: "exec {ctxopt} backup create \"$@\"",
    },
    Script {
        name: "rollback.sh",
        runbook: "§3.3, §6.2 step 4, §8.1",
        command: "exec {ctxopt} rollback \"$@\"",
    },
    Script {
        name: "auto_rollback.sh",
        runbook: "§6.1 (stops the canary when one runs, then rolls back to the deploy snapshot)",
        command: "{ctxopt} canary abort; exec {ctxopt} rollback \"$@\"",
    },
    Script {
        name: "restore_from_backup.sh",
        runbook: "§8.1",
        command: "exec {ctxopt} backup restore \"$@\"",
    },
    Script {
        name: "test_backup_restore.sh",
        runbook: "§7.2",
        command: "exec {ctxopt} backup verify \"$@\"",
    },
    Script {
        name: "monitor_canary.sh",
        runbook: "§5.1 steps 6 and 8",
        command: "exec {ctxopt} canary status \"$@\"",
    },
];

/// What to do with one script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action", content = "reason")]
pub enum Action {
    /// Not there: write it.
    Create,
    /// Ours (marked) but different: rewrite it.
    Update,
    /// Ours and identical.
    Unchanged,
    /// Not ours (no marker), or not a regular file: left alone.
    Skip(String),
}

/// One script of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// The script, absolute.
    pub path: PathBuf,
    /// What [`apply`] does with it.
    #[serde(flatten)]
    pub action: Action,
    /// The script's text.
    #[serde(skip)]
    pub content: String,
}

/// Which scripts to write where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptsPlan {
    /// `<project>/scripts`.
    pub dir: PathBuf,
    /// Whether `scripts/` has to be created.
    pub creates_dir: bool,
    /// The ctxopt binary the scripts call.
    pub ctxopt: PathBuf,
    /// One per [`SCRIPTS`] entry, in that order.
    pub items: Vec<Item>,
}

/// A script ctxopt wrote, as the install manifest keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The script, absolute.
    pub path: PathBuf,
    /// SHA-256 of what ctxopt wrote.
    pub sha256: String,
}

/// What the install manifest keeps: the scripts and whether `scripts/` was ctxopt's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Whether install created `scripts/`.
    pub created_dir: bool,
    /// The scripts that are ctxopt's.
    pub scripts: Vec<Recorded>,
}

/// What [`remove`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// Deleted.
    pub removed: Vec<PathBuf>,
    /// Left, with why (edited since, marker gone, not a file).
    pub kept: Vec<(PathBuf, String)>,
    /// Whether `scripts/` was removed too.
    pub removed_dir: bool,
}

/// A failed write or removal.
#[derive(Debug, thiserror::Error)]
pub enum ScriptsError {
    /// A file operation.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The binary's path cannot go into a shell script.
    #[error("failed to write the runbook scripts: the ctxopt path {} is not UTF-8 or not absolute", path.display())]
    BinPath {
        /// The ctxopt binary.
        path: PathBuf,
    },
}

impl ScriptsPlan {
    /// What the install manifest keeps: every script that is ctxopt's after [`apply`].
    #[must_use]
    pub fn record(&self) -> Record {
        Record {
            created_dir: self.creates_dir,
            scripts: self
                .items
                .iter()
                .filter(|i| !matches!(i.action, Action::Skip(_)))
                .map(|i| Recorded {
                    path: i.path.clone(),
                    sha256: sha256_hex(i.content.as_bytes()),
                })
                .collect(),
        }
    }

    /// Whether [`apply`] would write anything.
    #[must_use]
    pub fn changes(&self) -> bool {
        self.items
            .iter()
            .any(|i| matches!(i.action, Action::Create | Action::Update))
    }
}

/// A script's text for the ctxopt binary `ctxopt` (absolute, quoted for sh).
#[must_use]
pub fn content(script: &Script, ctxopt: &str) -> String {
    let quoted = format!("'{}'", ctxopt.replace('\'', "'\\''"));
    format!(
        "#!/bin/sh\n{MARKER}\n# Runbook {}: `bash scripts/{}`. Written by `ctxopt install`, removed by `ctxopt uninstall`\n# (a copy without the marker line above is yours and left alone).\ncd \"$(dirname \"$0\")/..\" && {}\n",
        script.runbook,
        script.name,
        script.command.replace("{ctxopt}", &quoted)
    )
}

/// Which scripts to write into `<project>/scripts/`, calling `<bin_dir>/ctxopt`. A script
/// without the marker is the project's own and left alone.
#[must_use]
pub fn plan(project: &Path, bin_dir: &Path) -> ScriptsPlan {
    let dir = project.join(DIR);
    let binary = bin_dir.join("ctxopt");
    let ctxopt = binary.to_string_lossy();
    let items = SCRIPTS
        .iter()
        .map(|script| {
            let path = dir.join(script.name);
            let content = content(script, &ctxopt);
            let action = match fs::symlink_metadata(&path) {
                Err(_) => Action::Create,
                Ok(meta) if !meta.is_file() => {
                    Action::Skip("not a regular file; left alone".to_owned())
                }
                Ok(_) => match read_small(&path) {
                    Some(text) if !marked(&text) => Action::Skip(
                        "the project's own script (no ctxopt marker); left alone".to_owned(),
                    ),
                    Some(text) if text == content => Action::Unchanged,
                    Some(_) => Action::Update,
                    None => Action::Skip("unreadable or too large; left alone".to_owned()),
                },
            };
            Item {
                path,
                action,
                content,
            }
        })
        .collect();
    ScriptsPlan {
        creates_dir: !dir.is_dir(),
        ctxopt: binary.clone(),
        dir,
        items,
    }
}

/// Writes the plan's new and changed scripts (atomically, mode 0755); returns them.
pub fn apply(plan: &ScriptsPlan) -> Result<Vec<PathBuf>, ScriptsError> {
    if !plan.changes() {
        return Ok(Vec::new());
    }
    if !plan.ctxopt.is_absolute() || plan.ctxopt.to_str().is_none() {
        return Err(ScriptsError::BinPath {
            path: plan.ctxopt.clone(),
        });
    }
    if !plan.dir.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&plan.dir)
            .map_err(|err| StoreError::new("create directory", &plan.dir, err))?;
    }
    let mut written = Vec::new();
    for item in &plan.items {
        if matches!(item.action, Action::Create | Action::Update) {
            store::write_atomic(&item.path, item.content.as_bytes(), MODE, Durability::Fsync)?;
            written.push(item.path.clone());
        }
    }
    Ok(written)
}

/// Uninstall: deletes each recorded script that still carries the marker and the recorded
/// SHA-256; leaves the others (reported). Removes `scripts/` when install created it and it is
/// now empty. Paths outside `<project>/scripts/` are never touched.
pub fn remove(project: &Path, record: &Record) -> Result<Removed, ScriptsError> {
    let dir = project.join(DIR);
    let mut out = Removed::default();
    for recorded in &record.scripts {
        let path = &recorded.path;
        if path.parent() != Some(dir.as_path()) {
            out.kept.push((
                path.clone(),
                "not in the project's scripts/; left alone".to_owned(),
            ));
            continue;
        }
        let keep = match fs::symlink_metadata(path) {
            Err(_) => continue,
            Ok(meta) if !meta.is_file() => Some("not a regular file"),
            Ok(_) => match read_small(path) {
                None => Some("unreadable or too large"),
                Some(text) if !marked(&text) => Some("the ctxopt marker is gone"),
                Some(text) if sha256_hex(text.as_bytes()) != recorded.sha256 => {
                    Some("changed since ctxopt wrote it")
                }
                Some(_) => None,
            },
        };
        if let Some(why) = keep {
            out.kept.push((path.clone(), format!("{why}; left alone")));
            continue;
        }
        match fs::remove_file(path) {
            Ok(()) => out.removed.push(path.clone()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(StoreError::new("remove", path, err).into()),
        }
    }
    if record.created_dir {
        out.removed_dir = fs::remove_dir(&dir).is_ok();
    }
    Ok(out)
}

fn marked(text: &str) -> bool {
    text.lines().any(|l| l.trim_end() == MARKER)
}

fn read_small(path: &Path) -> Option<String> {
    let meta = fs::metadata(path).ok()?;
    if meta.len() > MAX_SCRIPT_BYTES {
        return None;
    }
    String::from_utf8(fs::read(path).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn scripts_are_marked_one_liners_calling_ctxopt_by_path() {
        let text = content(&SCRIPTS[1], "/opt/it's/bin/ctxopt");
        assert!(text.starts_with("#!/bin/sh\n# ctxopt-runbook-script\n"));
        assert!(
            text.ends_with(
                "cd \"$(dirname \"$0\")/..\" && exec '/opt/it'\\''s/bin/ctxopt' rollback \"$@\"\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn plan_apply_remove_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path();
        let first = plan(p, Path::new("/usr/local/bin"));
        assert!(first.creates_dir);
        assert!(first.items.iter().all(|i| i.action == Action::Create));
        let written = apply(&first).unwrap();
        assert_eq!(written.len(), SCRIPTS.len());
        let mode = fs::metadata(&written[0]).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755);
        let again = plan(p, Path::new("/usr/local/bin"));
        assert!(!again.changes());
        let record = first.record();
        fs::write(
            p.join("scripts/rollback.sh"),
            "#!/bin/sh\n# ctxopt-runbook-script\nedited\n",
        )
        .unwrap();
        fs::write(p.join("scripts/mine.sh"), "x").unwrap();
        let removed = remove(p, &record).unwrap();
        assert_eq!(removed.removed.len(), SCRIPTS.len() - 1);
        assert_eq!(removed.kept.len(), 1);
        assert!(p.join("scripts/rollback.sh").exists());
        assert!(!removed.removed_dir);
    }

    #[test]
    fn a_foreign_script_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path();
        fs::create_dir(p.join("scripts")).unwrap();
        fs::write(p.join("scripts/backup.sh"), "#!/bin/sh\necho mine\n").unwrap();
        let plan = plan(p, Path::new("/bin"));
        assert!(!plan.creates_dir);
        assert!(matches!(plan.items[0].action, Action::Skip(_)));
        apply(&plan).unwrap();
        assert_eq!(
            fs::read_to_string(p.join("scripts/backup.sh")).unwrap(),
            "#!/bin/sh\necho mine\n"
        );
        let record = plan.record();
        assert!(
            record
                .scripts
                .iter()
                .all(|r| !r.path.ends_with("backup.sh"))
        );
        let removed = remove(p, &record).unwrap();
        assert!(p.join("scripts/backup.sh").exists());
        assert_eq!(removed.removed.len(), SCRIPTS.len() - 1);
    }

    #[test]
    fn remove_ignores_paths_outside_scripts() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim.sh");
        fs::write(&victim, format!("{MARKER}\n")).unwrap();
        let record = Record {
            created_dir: false,
            scripts: vec![Recorded {
                path: victim.clone(),
                sha256: sha256_hex(format!("{MARKER}\n").as_bytes()),
            }],
        };
        let removed = remove(tmp.path(), &record).unwrap();
        assert!(victim.exists());
        assert_eq!(removed.kept.len(), 1);
    }
}
