//! Restoring a backup, journaled, so a crash at any point leaves the old files or the new
//! ones — never a mix — once the next `ctxopt backup` command (or SessionStart's detached one)
//! has run.
//!
//! 1. Recover a left-over journal (below); verify the archive (refused if it fails).
//! 2. Check every member's target, not only the selected ones: it must be in the allowed set
//!    ([`Scope::part_of`]: the project's `.claude/` but not ctxopt's data dir, `.mcp.json`, the
//!    user's `settings.json`, `~/.claude.json`), and no component of its path may be a
//!    symbolic link (the deepest existing ancestor is its own canonical path) and the target,
//!    when it exists, must be a regular file. One bad member refuses the whole restore.
//! 3. Files whose bytes already match are left alone. For the others the journal
//!    `<data>/restore-journal.json` is written (fsync) in phase `staging`, each new file is
//!    written beside its target as `.NAME.ctxopt-restore-STAMP` (fsync), the journal moves to
//!    phase `commit`, then for each file the current one is renamed to
//!    `NAME.pre-restore-STAMP` (kept) and the staged one renamed into place. The journal is
//!    removed last. Each write goes through [`lastgood::note_own_write`] (action
//!    `restore-backup`) so neither the guard nor drift detection takes it for someone else's.
//!
//! **Recovery** (at the start of every create, restore, and `ctxopt backup` command): a
//! journal in phase `staging` is undone (staged files removed; nothing was touched); in phase
//! `commit` it is completed when every staged file is still there or already in place, else
//! undone (kept files renamed back, created files removed). The journal's paths are checked
//! against the allowed set before anything is renamed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::archive::{self, ArchiveError, Member};
use super::{Part, Scope, lock, sync_dir, write_synced};
use crate::config::discover::Locations;
use crate::config::lastgood::{self, sha256_hex};
use crate::store::{self, DataDir, Durability, FILE_MODE, StoreError};

/// The journal's file name in the data dir.
pub const JOURNAL_FILE: &str = "restore-journal.json";
/// The action written to `audit.log` for a restored file.
pub const AUDIT_ACTION: &str = "restore-backup";

/// The journal's path.
#[must_use]
pub fn journal_path(data: &DataDir) -> PathBuf {
    data.root().join(JOURNAL_FILE)
}

/// How to restore.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreOptions<'a> {
    /// Only these parts (default: everything in the archive).
    pub parts: Option<&'a [Part]>,
    /// Say what would change; change nothing.
    pub dry_run: bool,
    /// Tests: stop (as if killed) right after this many steps, leaving everything as it is.
    pub crash_after: Option<u32>,
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Already equal to the archive's copy.
    Unchanged,
    /// Replaced; the old file is kept aside.
    Replaced,
    /// Did not exist; created.
    Created,
}

impl Change {
    /// The word shown to people and in `--json`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Unchanged => "unchanged",
            Self::Replaced => "replaced",
            Self::Created => "created",
        }
    }
}

/// One file of a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredFile {
    /// The target.
    pub path: PathBuf,
    /// Its part.
    pub part: Part,
    /// What happened (or would, with `dry_run`).
    pub change: Change,
    /// Where the replaced file was kept.
    pub kept: Option<PathBuf>,
}

/// What one restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The archive.
    pub archive: PathBuf,
    /// Every selected file.
    pub files: Vec<RestoredFile>,
    /// Nothing was written.
    pub dry_run: bool,
    /// An earlier interrupted restore finished first.
    pub recovered: Option<Recovery>,
    /// Files restored but not recorded for the guard / audit (chains, one line each).
    pub audit_errors: Vec<String>,
}

/// What recovery did with a left-over journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Rolled forward: the archive's files are in place.
    Completed {
        /// Files in the journal.
        files: usize,
    },
    /// Rolled back: the files before the restore are in place.
    Undone {
        /// Files in the journal.
        files: usize,
    },
}

/// A restore that did not happen, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// A file operation on ctxopt's own files failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The archive failed verification.
    #[error("failed to verify the archive {}", path.display())]
    Archive {
        /// The archive.
        path: PathBuf,
        /// Why.
        #[source]
        source: ArchiveError,
    },
    /// A member would be written outside the allowed set.
    #[error(
        "the archive is refused: {} is not a file a backup may restore (the project's .claude/, \
         .mcp.json, the user's settings.json, ~/.claude.json)",
        path.display()
    )]
    Outside {
        /// The target.
        path: PathBuf,
    },
    /// A target's path passes through a symbolic link, or the target is not a regular file.
    #[error(
        "the archive is refused: {} passes through a symbolic link or is not a regular file",
        path.display()
    )]
    Link {
        /// The target.
        path: PathBuf,
    },
    /// Writing or renaming a target failed.
    #[error("failed to {action} {}", path.display())]
    Io {
        /// What.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The journal does not parse or names a file outside the allowed set.
    #[error("failed to use the restore journal {}: {reason}", path.display())]
    Journal {
        /// The journal.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A test asked the restore to stop here.
    #[error("stopped after step {step} (fault injection)")]
    Injected {
        /// The last step done.
        step: u32,
    },
}

impl RestoreError {
    /// Whether the archive was refused (a problem found) rather than the restore failing to
    /// run.
    #[must_use]
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::Archive { source, .. } => source.is_refusal(),
            Self::Outside { .. } | Self::Link { .. } => true,
            _ => false,
        }
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RestoreError {
    let path = path.to_owned();
    move |source| RestoreError::Io {
        action,
        path,
        source,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Phase {
    Staging,
    Commit,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journal {
    version: u32,
    archive: PathBuf,
    stamp: String,
    phase: Phase,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    target: PathBuf,
    staged: PathBuf,
    aside: Option<PathBuf>,
    sha256: String,
}

/// Counts the durable steps of a restore and stops after `crash_after` of them.
struct Steps {
    done: u32,
    crash_after: Option<u32>,
}

impl Steps {
    fn tick(&mut self) -> Result<(), RestoreError> {
        self.done += 1;
        if self.crash_after == Some(self.done) {
            return Err(RestoreError::Injected { step: self.done });
        }
        Ok(())
    }
}

/// Restores `archive` (see the module doc).
pub fn restore(
    project: &Path,
    locations: &Locations,
    archive: &Path,
    options: RestoreOptions<'_>,
    now: DateTime<Utc>,
) -> Result<Restored, RestoreError> {
    let scope = Scope::new(project, locations);
    let data = DataDir::of_project(&scope.project);
    let _lock = lock(&data)?;
    let recovered = recover_locked(&scope, &data)?;
    let contents = archive::read_path(archive).map_err(|source| RestoreError::Archive {
        path: archive.to_owned(),
        source,
    })?;
    let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    let (planned, entries) = plan(&scope, &contents.members, options.parts, &stamp)?;
    let mut restored = Restored {
        archive: archive.to_owned(),
        files: planned.iter().map(|(_, f)| f.clone()).collect(),
        dry_run: options.dry_run,
        recovered,
        audit_errors: Vec::new(),
    };
    if options.dry_run || entries.is_empty() {
        return Ok(restored);
    }
    let before: Vec<Option<Vec<u8>>> = entries
        .iter()
        .map(|e| e.aside.as_ref().and_then(|_| fs::read(&e.target).ok()))
        .collect();
    let members: Vec<&Member> = planned
        .iter()
        .filter(|(_, f)| f.change != Change::Unchanged)
        .map(|(m, _)| *m)
        .collect();
    let mut journal = Journal {
        version: 1,
        archive: archive.to_owned(),
        stamp,
        phase: Phase::Staging,
        entries,
    };
    match apply(&data, &mut journal, &members, options.crash_after) {
        Ok(()) => {}
        Err(err @ RestoreError::Injected { .. }) => return Err(err),
        Err(err) => {
            let _ = recover_locked(&scope, &data);
            return Err(err);
        }
    }
    remove_journal(&data)?;
    for ((entry, member), before) in journal.entries.iter().zip(&members).zip(&before) {
        note(
            &data,
            entry,
            before.as_deref(),
            Some(&member.bytes),
            &mut restored.audit_errors,
        );
    }
    Ok(restored)
}

/// The selected files with their members, and the journal's entries.
type Plan<'m> = (Vec<(&'m Member, RestoredFile)>, Vec<Entry>);

/// Checks every member's target and decides, for the selected ones, what changes: the files
/// (with where a replaced one will be kept) and the journal's entries.
fn plan<'m>(
    scope: &Scope,
    members: &'m [Member],
    parts: Option<&[Part]>,
    stamp: &str,
) -> Result<Plan<'m>, RestoreError> {
    let mut planned: Vec<(&Member, RestoredFile)> = Vec::new();
    for member in members {
        let target = member.target();
        let part = scope
            .part_of(&target)
            .ok_or_else(|| RestoreError::Outside {
                path: target.clone(),
            })?;
        check_no_links(&target)?;
        if parts.is_some_and(|parts| !parts.contains(&part)) {
            continue;
        }
        let change = match fs::read(&target) {
            Ok(current) if current == member.bytes => Change::Unchanged,
            Ok(_) => Change::Replaced,
            Err(err) if err.kind() == io::ErrorKind::NotFound => Change::Created,
            Err(err) => return Err(io_err("read", &target)(err)),
        };
        planned.push((
            member,
            RestoredFile {
                path: target,
                part,
                change,
                kept: None,
            },
        ));
    }
    let mut entries = Vec::new();
    for (member, file) in &mut planned {
        if file.change == Change::Unchanged {
            continue;
        }
        let (dir, name) = split(&file.path)?;
        let staged = dir.join(format!(".{name}.ctxopt-restore-{stamp}"));
        let aside = (file.change == Change::Replaced).then(|| free_name(dir, name, stamp));
        file.kept.clone_from(&aside);
        entries.push(Entry {
            target: file.path.clone(),
            staged,
            aside,
            sha256: member.sha256(),
        });
    }
    Ok((planned, entries))
}

/// Stages, journals and renames (module doc, step 3); stops after `crash_after` steps.
fn apply(
    data: &DataDir,
    journal: &mut Journal,
    members: &[&Member],
    crash_after: Option<u32>,
) -> Result<(), RestoreError> {
    let mut steps = Steps {
        done: 0,
        crash_after,
    };
    save(data, journal)?;
    steps.tick()?;
    for (entry, member) in journal.entries.iter().zip(members) {
        let dir = entry.staged.parent().unwrap_or_else(|| Path::new("/"));
        fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        write_synced(&entry.staged, &member.bytes, member.mode & 0o7777)
            .map_err(io_err("write", &entry.staged))?;
        sync_dir(dir);
        steps.tick()?;
    }
    journal.phase = Phase::Commit;
    save(data, journal)?;
    steps.tick()?;
    for entry in &journal.entries {
        if let Some(aside) = &entry.aside {
            fs::rename(&entry.target, aside).map_err(io_err("keep aside", &entry.target))?;
            steps.tick()?;
        }
        fs::rename(&entry.staged, &entry.target).map_err(io_err("rename into", &entry.target))?;
        if let Some(dir) = entry.target.parent() {
            sync_dir(dir);
        }
        steps.tick()?;
    }
    Ok(())
}

/// Records one restored file for the guard and the audit log; failures are collected.
fn note(
    data: &DataDir,
    entry: &Entry,
    before: Option<&[u8]>,
    after: Option<&[u8]>,
    errors: &mut Vec<String>,
) {
    if let Err(err) = lastgood::note_own_write(data, &entry.target, before, after, AUDIT_ACTION) {
        errors.push(crate::record::chain(&err));
    }
    if let Some(aside) = &entry.aside
        && aside.exists()
        && let Err(err) = crate::guard::snapshot::note_own_write(data, aside)
    {
        errors.push(crate::record::chain(&err));
    }
}

/// The directory and file name of a target.
fn split(path: &Path) -> Result<(&Path, &str), RestoreError> {
    match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        (Some(dir), Some(name)) => Ok((dir, name)),
        _ => Err(RestoreError::Outside {
            path: path.to_owned(),
        }),
    }
}

/// `NAME.pre-restore-STAMP`, or with `-2`, `-3`, … when taken.
fn free_name(dir: &Path, name: &str, stamp: &str) -> PathBuf {
    let first = dir.join(format!("{name}.pre-restore-{stamp}"));
    if fs::symlink_metadata(&first).is_err() {
        return first;
    }
    (2..1000)
        .map(|n| dir.join(format!("{name}.pre-restore-{stamp}-{n}")))
        .find(|p| fs::symlink_metadata(p).is_err())
        .unwrap_or(first)
}

/// Refuses a target whose path passes through a symbolic link, or that is not a regular file.
fn check_no_links(target: &Path) -> Result<(), RestoreError> {
    let refuse = || RestoreError::Link {
        path: target.to_owned(),
    };
    match fs::symlink_metadata(target) {
        Ok(meta) if !meta.is_file() => return Err(refuse()),
        _ => {}
    }
    let existing = target
        .ancestors()
        .find(|a| fs::symlink_metadata(a).is_ok())
        .unwrap_or_else(|| Path::new("/"));
    match fs::canonicalize(existing) {
        Ok(canonical) if canonical == existing => Ok(()),
        _ => Err(refuse()),
    }
}

fn save(data: &DataDir, journal: &Journal) -> Result<(), StoreError> {
    data.ensure()?;
    let bytes = serde_json::to_vec_pretty(journal).unwrap_or_default();
    store::write_atomic(&journal_path(data), &bytes, FILE_MODE, Durability::Fsync)
}

fn remove_journal(data: &DataDir) -> Result<(), StoreError> {
    let path = journal_path(data);
    match fs::remove_file(&path) {
        Ok(()) => {
            sync_dir(data.root());
            Ok(())
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError {
            action: "remove",
            path,
            source,
        }),
    }
}

/// Finishes or undoes an interrupted restore of `project` (see the module doc).
pub fn recover(project: &Path, locations: &Locations) -> Result<Option<Recovery>, RestoreError> {
    let scope = Scope::new(project, locations);
    let data = DataDir::of_project(&scope.project);
    if !journal_path(&data).exists() {
        return Ok(None);
    }
    let _lock = lock(&data)?;
    recover_locked(&scope, &data)
}

/// [`recover`] with the lock held.
pub(super) fn recover_locked(
    scope: &Scope,
    data: &DataDir,
) -> Result<Option<Recovery>, RestoreError> {
    let path = journal_path(data);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_err("read", &path)(err)),
    };
    let bad = |reason: String| RestoreError::Journal {
        path: path.clone(),
        reason,
    };
    let journal: Journal = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    for entry in &journal.entries {
        let dir = entry.target.parent();
        let beside = |p: &Path| p.parent() == dir;
        if scope.part_of(&entry.target).is_none()
            || !beside(&entry.staged)
            || entry.aside.as_deref().is_some_and(|a| !beside(a))
        {
            return Err(bad(format!(
                "it names {}, outside what a backup may restore",
                entry.target.display()
            )));
        }
    }
    let files = journal.entries.len();
    let in_place = |e: &Entry| fs::read(&e.target).is_ok_and(|b| sha256_hex(&b) == e.sha256);
    let complete = journal.phase == Phase::Commit
        && journal
            .entries
            .iter()
            .all(|e| e.staged.exists() || in_place(e));
    let mut errors = Vec::new();
    let outcome = if complete {
        for entry in &journal.entries {
            if !entry.staged.exists() {
                continue;
            }
            if let Some(aside) = &entry.aside
                && !aside.exists()
                && fs::symlink_metadata(&entry.target).is_ok()
            {
                fs::rename(&entry.target, aside).map_err(io_err("keep aside", &entry.target))?;
            }
            fs::rename(&entry.staged, &entry.target)
                .map_err(io_err("rename into", &entry.target))?;
        }
        for entry in &journal.entries {
            let before = entry.aside.as_ref().and_then(|a| fs::read(a).ok());
            let after = fs::read(&entry.target).ok();
            note(
                data,
                entry,
                before.as_deref(),
                after.as_deref(),
                &mut errors,
            );
        }
        Recovery::Completed { files }
    } else {
        for entry in &journal.entries {
            let after = fs::read(&entry.target).ok();
            match &entry.aside {
                Some(aside) if aside.exists() => {
                    fs::rename(aside, &entry.target).map_err(io_err("put back", aside))?;
                }
                None if !entry.staged.exists() && in_place(entry) => {
                    fs::remove_file(&entry.target).map_err(io_err("remove", &entry.target))?;
                }
                _ => {}
            }
            if entry.staged.exists() {
                fs::remove_file(&entry.staged).map_err(io_err("remove", &entry.staged))?;
            }
            if after.is_some() && journal.phase == Phase::Commit {
                let now = fs::read(&entry.target).ok();
                let plain = Entry {
                    aside: None,
                    ..entry.clone()
                };
                note(data, &plain, after.as_deref(), now.as_deref(), &mut errors);
            }
        }
        Recovery::Undone { files }
    };
    remove_journal(data)?;
    Ok(Some(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::TimeZone;

    use crate::backup::{create, newest};

    struct Env {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        project: PathBuf,
        locations: Locations,
    }

    fn env() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        let project = root.join("project");
        let home = root.join("home");
        fs::create_dir_all(project.join(".claude/skills/a")).unwrap();
        fs::create_dir_all(project.join(".claude/hooks")).unwrap();
        fs::create_dir_all(home.join(".claude")).unwrap();
        let locations = Locations {
            home,
            claude_config_dir: None,
            managed_dir: root.join("managed"),
        };
        Env {
            _tmp: tmp,
            root,
            project,
            locations,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
    }

    /// The files a restore touches: relative path → content (None: absent).
    type State = Vec<(&'static str, Option<&'static str>)>;

    const FILES: [&str; 4] = [
        ".claude/settings.json",
        ".claude/skills/a/SKILL.md",
        ".claude/hooks/x.sh",
        ".claude/skills/b/SKILL.md",
    ];

    fn new_state() -> State {
        vec![
            (FILES[0], Some("{\"new\":1}")),
            (FILES[1], Some("new skill")),
            (FILES[2], Some("same")),
            (FILES[3], Some("created skill")),
        ]
    }

    fn old_state() -> State {
        vec![
            (FILES[0], Some("{\"old\":1}")),
            (FILES[1], Some("old skill")),
            (FILES[2], Some("same")),
            (FILES[3], None),
        ]
    }

    fn apply(project: &Path, state: &State) {
        for (rel, content) in state {
            let path = project.join(rel);
            if let Some(c) = content {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, c).unwrap();
            } else {
                let _ = fs::remove_file(&path);
                let _ = fs::remove_dir(path.parent().unwrap());
            }
        }
    }

    fn read_state(project: &Path) -> Vec<Option<String>> {
        FILES
            .iter()
            .map(|rel| fs::read_to_string(project.join(rel)).ok())
            .collect()
    }

    fn expect(state: &State) -> Vec<Option<String>> {
        state.iter().map(|(_, c)| c.map(str::to_owned)).collect()
    }

    /// No staged file left anywhere under the project.
    fn staged_left(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(staged_left(&path));
            } else if path.to_string_lossy().contains(".ctxopt-restore-") {
                out.push(path);
            }
        }
        out
    }

    #[test]
    fn round_trip_keeps_what_it_replaced() {
        let env = env();
        apply(&env.project, &new_state());
        let created = create(&env.project, &env.locations, &Part::DEFAULT, now()).unwrap();
        apply(&env.project, &old_state());
        let restored = restore(
            &env.project,
            &env.locations,
            &created.path,
            RestoreOptions::default(),
            now(),
        )
        .unwrap();
        assert_eq!(read_state(&env.project), expect(&new_state()));
        let change = |rel: &str| {
            let file = restored
                .files
                .iter()
                .find(|f| f.path == env.project.join(rel))
                .unwrap();
            (file.change, file.kept.clone())
        };
        assert_eq!(change(FILES[1]).0, Change::Replaced);
        assert_eq!(change(FILES[2]), (Change::Unchanged, None));
        assert_eq!(change(FILES[3]), (Change::Created, None));
        let (changed, kept) = change(FILES[0]);
        assert_eq!(changed, Change::Replaced);
        let kept = kept.unwrap();
        assert_eq!(fs::read_to_string(kept).unwrap(), "{\"old\":1}");
        assert!(!journal_path(&DataDir::of_project(&env.project)).exists());
        let audit = fs::read_to_string(DataDir::of_project(&env.project).audit_log()).unwrap();
        assert!(audit.contains("restore-backup"), "{audit}");
    }

    #[test]
    fn only_and_dry_run() {
        let env = env();
        apply(&env.project, &new_state());
        let created = create(&env.project, &env.locations, &Part::DEFAULT, now()).unwrap();
        apply(&env.project, &old_state());
        let dry = restore(
            &env.project,
            &env.locations,
            &created.path,
            RestoreOptions {
                dry_run: true,
                ..RestoreOptions::default()
            },
            now(),
        )
        .unwrap();
        assert_eq!(dry.files.len(), 4);
        assert_eq!(read_state(&env.project), expect(&old_state()));
        restore(
            &env.project,
            &env.locations,
            &created.path,
            RestoreOptions {
                parts: Some(&[Part::Settings]),
                ..RestoreOptions::default()
            },
            now(),
        )
        .unwrap();
        let state = read_state(&env.project);
        assert_eq!(state[0].as_deref(), Some("{\"new\":1}"));
        assert_eq!(state[1].as_deref(), Some("old skill"));
    }

    #[test]
    fn a_crash_at_any_step_leaves_old_or_new_after_recovery() {
        let mut completed = false;
        for step in 1..40 {
            let env = env();
            apply(&env.project, &new_state());
            let created = create(&env.project, &env.locations, &Part::DEFAULT, now()).unwrap();
            apply(&env.project, &old_state());
            let result = restore(
                &env.project,
                &env.locations,
                &created.path,
                RestoreOptions {
                    crash_after: Some(step),
                    ..RestoreOptions::default()
                },
                now(),
            );
            match result {
                Err(RestoreError::Injected { step: s }) => assert_eq!(s, step),
                Ok(_) => {
                    assert!(step > 8, "only {} steps", step - 1);
                    completed = true;
                    assert_eq!(read_state(&env.project), expect(&new_state()));
                    break;
                }
                Err(err) => panic!("step {step}: {err}"),
            }
            let recovery = recover(&env.project, &env.locations).unwrap().unwrap();
            let state = read_state(&env.project);
            match recovery {
                Recovery::Completed { .. } => {
                    assert_eq!(state, expect(&new_state()), "step {step}");
                }
                Recovery::Undone { .. } => {
                    assert_eq!(state, expect(&old_state()), "step {step}");
                }
            }
            assert!(staged_left(&env.project).is_empty(), "step {step}");
            assert!(recover(&env.project, &env.locations).unwrap().is_none());
        }
        assert!(completed, "the restore never ran to the end");
    }

    #[test]
    fn a_lost_staged_file_undoes() {
        let env = env();
        apply(&env.project, &new_state());
        let created = create(&env.project, &env.locations, &Part::DEFAULT, now()).unwrap();
        apply(&env.project, &old_state());
        let err = restore(
            &env.project,
            &env.locations,
            &created.path,
            RestoreOptions {
                crash_after: Some(6),
                ..RestoreOptions::default()
            },
            now(),
        )
        .unwrap_err();
        assert!(matches!(err, RestoreError::Injected { step: 6 }));
        for path in staged_left(&env.project) {
            fs::remove_file(path).unwrap();
        }
        let recovery = recover(&env.project, &env.locations).unwrap().unwrap();
        assert!(matches!(recovery, Recovery::Undone { .. }), "{recovery:?}");
        assert_eq!(read_state(&env.project), expect(&old_state()));
    }

    #[test]
    fn targets_outside_the_allowed_set_are_refused() {
        let env = env();
        apply(&env.project, &new_state());
        create(&env.project, &env.locations, &Part::DEFAULT, now()).unwrap();
        let archive_path = newest(&env.project).unwrap().path;
        let mut contents = archive::read_path(&archive_path).unwrap();
        let outside = env.root.join("elsewhere/file");
        contents.members.push(Member {
            name: archive::strip_root(&outside),
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            bytes: b"x".to_vec(),
        });
        let manifest = Member {
            name: contents.manifest_name.clone(),
            mode: 0o600,
            uid: 0,
            gid: 0,
            mtime: 0,
            bytes: archive::manifest(&contents.members).into_bytes(),
        };
        let crafted = env.root.join("crafted.tar.gz");
        fs::write(
            &crafted,
            archive::write(&contents.members, &manifest).unwrap(),
        )
        .unwrap();
        let err = restore(
            &env.project,
            &env.locations,
            &crafted,
            RestoreOptions::default(),
            now(),
        )
        .unwrap_err();
        assert!(matches!(err, RestoreError::Outside { .. }), "{err}");
        assert!(err.is_refusal());
        assert!(!outside.exists());
    }

    #[test]
    fn a_symlinked_directory_is_refused() {
        let env = env();
        apply(&env.project, &new_state());
        let created = create(&env.project, &env.locations, &Part::DEFAULT, now()).unwrap();
        let elsewhere = env.root.join("elsewhere");
        fs::create_dir_all(&elsewhere).unwrap();
        fs::remove_dir_all(env.project.join(".claude/skills/b")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, env.project.join(".claude/skills/b")).unwrap();
        let err = restore(
            &env.project,
            &env.locations,
            &created.path,
            RestoreOptions::default(),
            now(),
        )
        .unwrap_err();
        assert!(matches!(err, RestoreError::Link { .. }), "{err}");
        assert!(fs::read_dir(&elsewhere).unwrap().next().is_none());
    }

    #[test]
    fn a_journal_naming_other_files_is_refused() {
        let env = env();
        let data = DataDir::of_project(&env.project);
        data.ensure().unwrap();
        let journal = Journal {
            version: 1,
            archive: PathBuf::from("/x"),
            stamp: "s".into(),
            phase: Phase::Commit,
            entries: vec![Entry {
                target: env.root.join("victim"),
                staged: env.root.join(".victim.s"),
                aside: None,
                sha256: String::new(),
            }],
        };
        save(&data, &journal).unwrap();
        let err = recover(&env.project, &env.locations).unwrap_err();
        assert!(matches!(err, RestoreError::Journal { .. }), "{err}");
    }
}
