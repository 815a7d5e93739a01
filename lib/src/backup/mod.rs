//! Backups (R7.1, runbook P0-002): `ctxopt backup create|list|verify|restore`.
//!
//! - **Where**: `<project>/.kiro/specs/context-optimization/backup/` ([`BACKUP_DIR`]).
//!   Each backup is `backup-YYYYMMDD-HHMMSS.tar.gz` (UTC), mode 0600, written by temp file,
//!   fsync and rename; `backup-YYYYMMDD.tar.gz` is a copy of the newest full one (every
//!   default part) of that UTC day, so the runbook's `tar xzf backup-$(date +%Y%m%d).tar.gz
//!   -C /` finds one (on a machine whose zone is not UTC, `date -u`). A copy, not a link: the
//!   runbook `cp`s archives around.
//! - **What** ([`Part`]): `settings` — `.claude/settings.json`, `.claude/settings.local.json`,
//!   `.mcp.json`, `.claude/ctxopt.json`, `.claude/canary.json`, the user's
//!   `~/.claude/settings.json` (`$CLAUDE_CONFIG_DIR/settings.json`); `skills` —
//!   `.claude/skills/**`; `hooks` — `.claude/hooks/**` except ctxopt's data dir;
//!   `claude-json` — `~/.claude.json`, only when asked for (`--only claude-json`): the client
//!   rewrites it every session and it holds account state, so a full restore must not roll it
//!   back unasked. Regular files only (symbolic links are skipped and reported), each at most
//!   [`archive::MAX_MEMBER_BYTES`], at most [`MAX_TREE_FILES`] per tree.
//! - **Layout**: see [`archive`] — members named by absolute path without the leading `/`,
//!   the manifest (`sha256sum` format) last.
//! - The guard watches the backup directory by its `stat`; `create` records its change as
//!   ctxopt's own ([`crate::guard::snapshot::note_own_write`]).
//! - **Retention** (after every create): the newest [`HOURLY_KEEP`] hourly archives, daily
//!   copies of the last [`DAILY_KEEP_DAYS`] days; the newest archive is never removed.
//! - **Verify**: read and check the archive, extract it into a fresh temporary directory,
//!   hash every file back against the manifest (the runbook's weekly restore test). The result
//!   is remembered in `<data>/backup-verified.json` for `list`.
//! - **Restore**: [`journal`].
//! - **SessionStart**: [`check_at_session_start`] costs a directory listing; when the newest
//!   backup is an hour old (or a restore journal is left over) it starts a detached
//!   `ctxopt backup create --quiet`, like retention's prune.
//!
//! Time comes in as `now` everywhere; nothing here reads the clock.

pub mod archive;
pub mod journal;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::config::discover::Locations;
use crate::hook::Context;
use crate::record;
use crate::store::{self, DataDir, Durability, FILE_MODE, StoreError};

pub use archive::{ArchiveError, Member};
pub use journal::{Recovery, RestoreError, RestoreOptions, Restored, recover, restore};

/// The backup directory, relative to the project (the runbook's path).
pub const BACKUP_DIR: &str = ".kiro/specs/context-optimization/backup";
/// Hourly archives kept (two days' worth).
pub const HOURLY_KEEP: usize = 48;
/// Days of daily copies kept.
pub const DAILY_KEEP_DAYS: i64 = 30;
/// How old the newest backup may get before SessionStart makes another.
pub const HOURLY_INTERVAL: TimeDelta = TimeDelta::hours(1);
/// The most files taken from one tree (`.claude/skills/`, `.claude/hooks/`).
pub const MAX_TREE_FILES: usize = 2_000;
/// How deep a tree is walked.
const MAX_DEPTH: usize = 8;
/// SessionStart does not request another backup within this long of its last request.
const REQUEST_INTERVAL: TimeDelta = TimeDelta::minutes(10);
/// The marker SessionStart writes in `state/` when it starts a backup.
pub const BACKUP_REQUESTED: &str = "backup-requested";
/// `<data>/backup-verified.json`: the last verify result per archive name.
const VERIFIED_FILE: &str = "backup-verified.json";
/// `<data>/backup.lock`: one create, restore or recovery at a time.
const LOCK_FILE: &str = "backup.lock";

/// What a backup holds, by group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// Settings files of the project and the user, `.mcp.json`, ctxopt's policy and canary.
    Settings,
    /// `.claude/skills/**`.
    Skills,
    /// `.claude/hooks/**` except ctxopt's data dir.
    Hooks,
    /// `~/.claude.json`.
    ClaudeJson,
}

impl Part {
    /// What `create` takes when not told otherwise.
    pub const DEFAULT: [Self; 3] = [Self::Settings, Self::Skills, Self::Hooks];
    /// Every part.
    pub const ALL: [Self; 4] = [Self::Settings, Self::Skills, Self::Hooks, Self::ClaudeJson];

    /// The name on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Settings => "settings",
            Self::Skills => "skills",
            Self::Hooks => "hooks",
            Self::ClaudeJson => "claude-json",
        }
    }

    /// The part named `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Where a project's and its user's backed-up files are, canonical (symlinks resolved), so
/// member names and restore targets compare as strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The project root.
    pub project: PathBuf,
    /// The user's Claude directory (`~/.claude` or `$CLAUDE_CONFIG_DIR`).
    pub config_dir: PathBuf,
    /// `~/.claude.json` (or `$CLAUDE_CONFIG_DIR/.claude.json`).
    pub claude_json: PathBuf,
}

impl Scope {
    /// The scope of `project` and the user `locations` describes.
    #[must_use]
    pub fn new(project: &Path, locations: &Locations) -> Self {
        Self {
            project: canonical(project),
            config_dir: canonical(&locations.config_dir()),
            claude_json: canonical_parent(&locations.claude_json()),
        }
    }

    /// The project's settings-like files (the `settings` part, project side).
    fn settings_files(&self) -> Vec<PathBuf> {
        let dot = self.project.join(".claude");
        vec![
            dot.join("settings.json"),
            dot.join("settings.local.json"),
            self.project.join(".mcp.json"),
            dot.join("ctxopt.json"),
            dot.join("canary.json"),
            self.config_dir.join("settings.json"),
        ]
    }

    fn skills_dir(&self) -> PathBuf {
        self.project.join(".claude").join("skills")
    }

    fn hooks_dir(&self) -> PathBuf {
        self.project.join(".claude").join("hooks")
    }

    fn data_dir(&self) -> PathBuf {
        self.hooks_dir().join("data")
    }

    /// The part `path` belongs to, or `None` when a backup may not hold (or restore) it. This
    /// is the restore's allowed set.
    #[must_use]
    pub fn part_of(&self, path: &Path) -> Option<Part> {
        if self.settings_files().iter().any(|p| p == path) {
            return Some(Part::Settings);
        }
        if path == self.claude_json {
            return Some(Part::ClaudeJson);
        }
        if path.starts_with(self.skills_dir()) && path != self.skills_dir() {
            return Some(Part::Skills);
        }
        if path.starts_with(self.hooks_dir())
            && path != self.hooks_dir()
            && !path.starts_with(self.data_dir())
        {
            return Some(Part::Hooks);
        }
        None
    }
}

fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| crate::project::absolute(path))
}

fn canonical_parent(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => canonical(parent).join(name),
        _ => crate::project::absolute(path),
    }
}

/// A backup operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Building the archive failed.
    #[error("failed to build the archive")]
    Build(#[source] io::Error),
    /// There is no backup to act on.
    #[error("failed to find a backup in {}", dir.display())]
    NoBackup {
        /// The backup directory.
        dir: PathBuf,
    },
    /// A left-over restore could not be completed or undone.
    #[error("failed to finish an interrupted restore")]
    Recover(#[source] Box<RestoreError>),
    /// The running hook's directory is unknown, so its sibling `ctxopt` cannot be found.
    #[error("failed to find the ctxopt binary: the hook binary's directory is unknown")]
    NoBinDir,
    /// `ctxopt backup create` could not be started.
    #[error("failed to start {} backup create", program.display())]
    Spawn {
        /// The `ctxopt` binary.
        program: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn store_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError {
        action,
        path,
        source,
    }
}

/// The backup directory of `project`.
#[must_use]
pub fn backup_dir(project: &Path) -> PathBuf {
    project.join(BACKUP_DIR)
}

/// A file that was not backed up, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// Why (`symbolic link`, `over 16777216 bytes`, …).
    pub reason: String,
}

/// The files `parts` take, as they are now: regular files that exist, sorted; plus what was
/// skipped.
#[must_use]
pub fn sources(scope: &Scope, parts: &[Part]) -> (Vec<(Part, PathBuf)>, Vec<Skipped>) {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for part in parts {
        match part {
            Part::Settings => {
                for path in scope.settings_files() {
                    add(Part::Settings, path, &mut files, &mut skipped);
                }
            }
            Part::ClaudeJson => add(
                Part::ClaudeJson,
                scope.claude_json.clone(),
                &mut files,
                &mut skipped,
            ),
            Part::Skills | Part::Hooks => {
                let (root, exclude) = if *part == Part::Skills {
                    (scope.skills_dir(), None)
                } else {
                    (scope.hooks_dir(), Some(scope.data_dir()))
                };
                let mut found = Vec::new();
                walk(&root, exclude.as_deref(), 0, &mut found);
                if found.len() > MAX_TREE_FILES {
                    for path in found.drain(MAX_TREE_FILES..) {
                        skipped.push(Skipped {
                            path,
                            reason: format!("more than {MAX_TREE_FILES} files in the tree"),
                        });
                    }
                }
                for path in found {
                    add(*part, path, &mut files, &mut skipped);
                }
            }
        }
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    files.dedup_by(|a, b| a.1 == b.1);
    (files, skipped)
}

/// Takes `path` when it is a regular file within the size limit, else notes why not (a
/// missing file is neither).
fn add(part: Part, path: PathBuf, files: &mut Vec<(Part, PathBuf)>, skipped: &mut Vec<Skipped>) {
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_file() => {
            if meta.len() > archive::MAX_MEMBER_BYTES {
                skipped.push(Skipped {
                    path,
                    reason: format!("over {} bytes", archive::MAX_MEMBER_BYTES),
                });
            } else {
                files.push((part, path));
            }
        }
        Ok(meta) if meta.file_type().is_symlink() => skipped.push(Skipped {
            path,
            reason: "symbolic link".into(),
        }),
        Ok(meta) if !meta.is_dir() => skipped.push(Skipped {
            path,
            reason: "not a regular file".into(),
        }),
        _ => {}
    }
}

/// Every entry under `dir` that is not a directory (links included, for `add` to judge),
/// sorted, without following links, skipping `exclude`.
fn walk(dir: &Path, exclude: Option<&Path>, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > MAX_DEPTH || out.len() > MAX_TREE_FILES {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if exclude.is_some_and(|x| path == x) {
            continue;
        }
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => walk(&path, exclude, depth + 1, out),
            Ok(_) => out.push(path),
            Err(_) => {}
        }
    }
}

/// What one `create` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The hourly archive written.
    pub path: PathBuf,
    /// The daily copy written: only when the backup holds every default part, so the
    /// runbook's full restore never finds a partial archive under the daily name.
    pub daily: Option<PathBuf>,
    /// Files in it (the manifest not counted).
    pub members: usize,
    /// The archive's size.
    pub bytes: u64,
    /// Files not taken.
    pub skipped: Vec<Skipped>,
    /// Archives removed by retention.
    pub removed: Vec<PathBuf>,
    /// A restore interrupted earlier and finished first.
    pub recovered: Option<Recovery>,
    /// Telling the guard that the backup directory changed failed (the guard then reports
    /// the change as someone else's).
    pub note_error: Option<String>,
}

/// The hourly archive's name at `now`.
#[must_use]
pub fn hourly_name(now: DateTime<Utc>) -> String {
    format!("backup-{}.tar.gz", now.format("%Y%m%d-%H%M%S"))
}

/// The daily copy's name at `now`.
#[must_use]
pub fn daily_name(now: DateTime<Utc>) -> String {
    format!("backup-{}.tar.gz", now.format("%Y%m%d"))
}

/// Makes a backup of `parts` now (see the module doc), then applies retention. A left-over
/// restore journal is finished first.
pub fn create(
    project: &Path,
    locations: &Locations,
    parts: &[Part],
    now: DateTime<Utc>,
) -> Result<Created, BackupError> {
    let scope = Scope::new(project, locations);
    let data = DataDir::of_project(&scope.project);
    let _lock = lock(&data)?;
    let recovered = journal::recover_locked(&scope, &data)
        .map_err(|err| BackupError::Recover(Box::new(err)))?;
    let (files, mut skipped) = sources(&scope, parts);
    let mut members = Vec::with_capacity(files.len());
    let mut total: u64 = 0;
    for (_, path) in files {
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => meta,
            _ => continue,
        };
        let Ok(bytes) = fs::read(&path) else {
            skipped.push(Skipped {
                path,
                reason: "unreadable".into(),
            });
            continue;
        };
        total += bytes.len() as u64;
        if total > archive::MAX_TOTAL_BYTES || bytes.len() as u64 > archive::MAX_MEMBER_BYTES {
            skipped.push(Skipped {
                path,
                reason: "over the archive's size limit".into(),
            });
            continue;
        }
        members.push(Member {
            name: archive::strip_root(&path),
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            mtime: u64::try_from(meta.mtime()).unwrap_or(0),
            bytes,
        });
    }
    let manifest = Member {
        name: archive::manifest_name(&scope.project),
        mode: FILE_MODE,
        uid: u64::from(fs::metadata(&scope.project).map_or(0, |m| m.uid())),
        gid: u64::from(fs::metadata(&scope.project).map_or(0, |m| m.gid())),
        mtime: u64::try_from(now.timestamp()).unwrap_or(0),
        bytes: archive::manifest(&members).into_bytes(),
    };
    let bytes = archive::write(&members, &manifest).map_err(BackupError::Build)?;
    let dir = backup_dir(&scope.project);
    store::ensure_dir(&dir)?;
    let path = dir.join(hourly_name(now));
    store::write_atomic(&path, &bytes, FILE_MODE, Durability::Fsync)?;
    let daily = if Part::DEFAULT.iter().all(|p| parts.contains(p)) {
        let daily = dir.join(daily_name(now));
        store::write_atomic(&daily, &bytes, FILE_MODE, Durability::Fsync)?;
        Some(daily)
    } else {
        None
    };
    let removed = prune(&dir, now)?;
    let note_error = crate::guard::snapshot::note_own_write(&data, &dir)
        .err()
        .map(|err| record::chain(&err));
    Ok(Created {
        path,
        daily,
        members: members.len(),
        bytes: bytes.len() as u64,
        skipped,
        removed,
        recovered,
        note_error,
    })
}

/// Hourly or daily.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// `backup-YYYYMMDD-HHMMSS.tar.gz`.
    Hourly,
    /// `backup-YYYYMMDD.tar.gz`.
    Daily,
}

/// One archive in the backup directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// Its path.
    pub path: PathBuf,
    /// Its file name.
    pub name: String,
    /// Hourly or daily.
    pub cadence: Cadence,
    /// The time in its name (a daily copy: midnight UTC of its day).
    pub time: DateTime<Utc>,
    /// Its size in bytes.
    pub size: u64,
}

/// The time and cadence in an archive's name.
#[must_use]
pub fn parse_name(name: &str) -> Option<(Cadence, DateTime<Utc>)> {
    let stem = name.strip_prefix("backup-")?.strip_suffix(".tar.gz")?;
    if stem.len() == 15 {
        let time = NaiveDateTime::parse_from_str(stem, "%Y%m%d-%H%M%S").ok()?;
        Some((Cadence::Hourly, time.and_utc()))
    } else if stem.len() == 8 {
        let time =
            NaiveDateTime::parse_from_str(&format!("{stem}-000000"), "%Y%m%d-%H%M%S").ok()?;
        Some((Cadence::Daily, time.and_utc()))
    } else {
        None
    }
}

/// The archives in `dir`, newest first (by the time in the name; hourly before daily).
#[must_use]
pub fn list_dir(dir: &Path) -> Vec<ArchiveInfo> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<ArchiveInfo> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            let (cadence, time) = parse_name(&name)?;
            let meta = entry.metadata().ok().filter(fs::Metadata::is_file)?;
            Some(ArchiveInfo {
                path: entry.path(),
                name,
                cadence,
                time,
                size: meta.len(),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.time
            .cmp(&a.time)
            .then_with(|| (a.cadence == Cadence::Daily).cmp(&(b.cadence == Cadence::Daily)))
    });
    out
}

/// The project's archives, newest first.
#[must_use]
pub fn list(project: &Path) -> Vec<ArchiveInfo> {
    list_dir(&backup_dir(project))
}

/// The newest archive: the newest hourly one, else the newest daily copy.
#[must_use]
pub fn newest(project: &Path) -> Option<ArchiveInfo> {
    let all = list(project);
    all.iter()
        .find(|a| a.cadence == Cadence::Hourly)
        .or_else(|| all.first())
        .cloned()
}

/// Whether SessionStart should make a backup: no hourly archive is younger than
/// [`HOURLY_INTERVAL`] at `now`. One directory listing, names only (no `stat` per entry).
#[must_use]
pub fn hourly_due(project: &Path, now: DateTime<Utc>) -> bool {
    let Ok(entries) = fs::read_dir(backup_dir(project)) else {
        return true;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| match parse_name(e.file_name().to_str()?)? {
            (Cadence::Hourly, time) => Some(time),
            (Cadence::Daily, _) => None,
        })
        .max()
        .is_none_or(|newest| now - newest >= HOURLY_INTERVAL)
}

/// Retention (module doc): removes hourly archives beyond the newest [`HOURLY_KEEP`] and daily
/// copies older than [`DAILY_KEEP_DAYS`]; never the newest archive. Returns what it removed.
pub fn prune(dir: &Path, now: DateTime<Utc>) -> Result<Vec<PathBuf>, StoreError> {
    let all = list_dir(dir);
    let newest = all.first().map(|a| a.path.clone());
    let cutoff = (now - TimeDelta::days(DAILY_KEEP_DAYS))
        .date_naive()
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    let mut removed = Vec::new();
    let mut hourly_seen = 0;
    for archive in &all {
        let keep = match archive.cadence {
            Cadence::Hourly => {
                hourly_seen += 1;
                hourly_seen <= HOURLY_KEEP
            }
            Cadence::Daily => archive.time >= cutoff,
        };
        if keep || Some(&archive.path) == newest.as_ref() {
            continue;
        }
        match fs::remove_file(&archive.path) {
            Ok(()) => removed.push(archive.path.clone()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(store_err("remove", &archive.path)(err)),
        }
    }
    Ok(removed)
}

/// The result of verifying one archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The archive.
    pub path: PathBuf,
    /// Files extracted and checked.
    pub files: usize,
    /// Their names, as stored.
    pub members: Vec<String>,
}

/// Verifies the archive at `path`: reads and checks it, extracts it into a fresh temporary
/// directory (removed afterwards) and hashes every file back against the manifest. The result
/// is recorded in `data`'s `backup-verified.json` (best effort).
pub fn verify(data: &DataDir, path: &Path, now: DateTime<Utc>) -> Result<Verified, ArchiveError> {
    let result = verify_only(path);
    let _ = remember(data, path, result.is_ok(), now);
    result
}

fn verify_only(path: &Path) -> Result<Verified, ArchiveError> {
    let contents = archive::read_path(path)?;
    let root = temp_dir().map_err(|source| ArchiveError::Extract {
        path: std::env::temp_dir(),
        source,
    })?;
    let result = archive::extract_and_check(&contents, &root);
    let _ = fs::remove_dir_all(&root);
    let files = result?;
    Ok(Verified {
        path: path.to_owned(),
        files,
        members: contents.members.iter().map(|m| m.name.clone()).collect(),
    })
}

/// A fresh private directory under the system's temp dir.
fn temp_dir() -> io::Result<PathBuf> {
    let base = std::env::temp_dir();
    let pid = std::process::id();
    for attempt in 0..100u32 {
        let dir = base.join(format!("ctxopt-verify-{pid}-{attempt}"));
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary directory name",
    ))
}

/// The last verify result of one archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRecord {
    /// When (RFC 3339).
    pub at: String,
    /// Whether it passed.
    pub ok: bool,
}

/// `backup-verified.json`: archive name → last result.
#[must_use]
pub fn verified(data: &DataDir) -> BTreeMap<String, VerifyRecord> {
    fs::read(data.root().join(VERIFIED_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn remember(data: &DataDir, path: &Path, ok: bool, now: DateTime<Utc>) -> Result<(), StoreError> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(());
    };
    data.ensure()?;
    let mut all = verified(data);
    all.insert(
        name.to_owned(),
        VerifyRecord {
            at: record::timestamp(now),
            ok,
        },
    );
    let keep: Vec<String> = all.keys().rev().take(200).cloned().collect();
    all.retain(|k, _| keep.contains(k));
    let bytes = serde_json::to_vec_pretty(&all).unwrap_or_default();
    store::write_atomic(
        &data.root().join(VERIFIED_FILE),
        &bytes,
        FILE_MODE,
        Durability::NoFsync,
    )
}

/// The exclusive lock every create, restore and recovery holds (`<data>/backup.lock`).
fn lock(data: &DataDir) -> Result<File, StoreError> {
    data.ensure()?;
    let path = data.root().join(LOCK_FILE);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(&path)
        .map_err(store_err("open", &path))?;
    file.lock().map_err(store_err("lock", &path))?;
    Ok(file)
}

/// The cheap check at SessionStart: when a backup is due ([`hourly_due`]) or a restore was
/// interrupted, starts `ctxopt backup create --project <project> --quiet` detached (at most
/// once per 10 minutes). Returns whether it started one. Costs a listing of the backup
/// directory and two `stat`s when nothing is due.
pub fn check_at_session_start(ctx: &Context) -> Result<bool, BackupError> {
    let pending = journal::journal_path(&ctx.data).exists();
    if !pending && !hourly_due(&ctx.project, ctx.now) {
        return Ok(false);
    }
    let state = ctx.data.state_dir();
    let marker = state.join(BACKUP_REQUESTED);
    if requested_recently(&marker, ctx.now) {
        return Ok(false);
    }
    let program = ctx.bin_dir().ok_or(BackupError::NoBinDir)?.join("ctxopt");
    store::ensure_dir(&state)?;
    mark_requested(&marker, ctx.now)?;
    // `spawn_detached` checks that the program can be run before it returns.
    crate::process::spawn_detached(
        &program,
        &[
            "backup".as_ref(),
            "create".as_ref(),
            "--project".as_ref(),
            ctx.project.as_os_str(),
            "--quiet".as_ref(),
        ],
    )
    .map_err(|source| BackupError::Spawn { program, source })?;
    Ok(true)
}

/// The request marker is an empty file whose modification time is the last request: setting
/// it costs one `open` and one `futimens`, where a new file written by rename costs ext4 an
/// inode, a rename and (past the first) an eviction (BENCHMARKS.md).
fn mark_requested(marker: &Path, now: DateTime<Utc>) -> Result<(), StoreError> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(marker)
        .and_then(|file| file.set_modified(std::time::SystemTime::from(now)))
        .map_err(store_err("mark", marker))
}

fn requested_recently(marker: &Path, now: DateTime<Utc>) -> bool {
    fs::metadata(marker)
        .and_then(|m| m.modified())
        .is_ok_and(|at| {
            let age = now - DateTime::<Utc>::from(at);
            age >= TimeDelta::zero() && age < REQUEST_INTERVAL
        })
}

/// Writes `bytes` to `path` with `mode`, fsync'd, through a temp file beside it; the
/// restore's staging step (the temp name is chosen by the caller, so a journal can name it).
fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.sync_all()
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, h, m, 0).unwrap()
    }

    struct Env {
        _tmp: tempfile::TempDir,
        project: PathBuf,
        locations: Locations,
    }

    fn env() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        let project = root.join("project");
        let home = root.join("home");
        fs::create_dir_all(project.join(".claude/skills/a")).unwrap();
        fs::create_dir_all(project.join(".claude/hooks/data/state")).unwrap();
        fs::create_dir_all(home.join(".claude")).unwrap();
        fs::write(project.join(".claude/settings.json"), "{}").unwrap();
        fs::write(project.join(".claude/skills/a/SKILL.md"), "---\n").unwrap();
        fs::write(project.join(".claude/hooks/x.sh"), "#!/bin/sh\n").unwrap();
        fs::write(project.join(".claude/hooks/data/metrics.jsonl"), "{}\n").unwrap();
        fs::write(home.join(".claude/settings.json"), "{\"u\":1}").unwrap();
        fs::write(home.join(".claude.json"), "{}").unwrap();
        let locations = Locations {
            home: home.clone(),
            claude_config_dir: None,
            managed_dir: root.join("managed"),
        };
        Env {
            _tmp: tmp,
            project,
            locations,
        }
    }

    #[test]
    fn parts_parse() {
        for part in Part::ALL {
            assert_eq!(Part::parse(part.name()), Some(part));
        }
        assert_eq!(Part::parse("x"), None);
    }

    #[test]
    fn sources_skip_data_dir_links_and_claude_json_by_default() {
        let env = env();
        std::os::unix::fs::symlink("/etc/passwd", env.project.join(".claude/hooks/l")).unwrap();
        let scope = Scope::new(&env.project, &env.locations);
        let (files, skipped) = sources(&scope, &Part::DEFAULT);
        let names: Vec<String> = files
            .iter()
            .map(|(_, p)| {
                p.strip_prefix(&env.project)
                    .map_or_else(|_| p.display().to_string(), |r| r.display().to_string())
            })
            .collect();
        assert!(
            names.contains(&".claude/settings.json".to_owned()),
            "{names:?}"
        );
        assert!(names.contains(&".claude/skills/a/SKILL.md".to_owned()));
        assert!(names.contains(&".claude/hooks/x.sh".to_owned()));
        assert!(
            names
                .iter()
                .any(|n| n.ends_with("home/.claude/settings.json"))
        );
        assert!(!names.iter().any(|n| n.contains("data/")));
        assert!(!names.iter().any(|n| n.ends_with(".claude.json")));
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].reason, "symbolic link");
        let (files, _) = sources(&scope, &[Part::ClaudeJson]);
        assert_eq!(files.len(), 1);
    }

    #[test]
    fn create_writes_hourly_and_daily_private() {
        let env = env();
        let created = create(&env.project, &env.locations, &Part::DEFAULT, at(10, 5)).unwrap();
        assert!(created.path.ends_with("backup-20261125-100500.tar.gz"));
        let daily = created.daily.unwrap();
        assert!(daily.ends_with("backup-20261125.tar.gz"));
        assert_eq!(fs::read(&created.path).unwrap(), fs::read(&daily).unwrap());
        let partial = create(&env.project, &env.locations, &[Part::ClaudeJson], at(10, 7)).unwrap();
        assert_eq!(partial.daily, None);
        assert_eq!(fs::read(&created.path).unwrap(), fs::read(&daily).unwrap());
        let mode = fs::metadata(&created.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(created.members, 4);
        let data = DataDir::of_project(&env.project);
        let verified = verify(&data, &created.path, at(10, 6)).unwrap();
        assert_eq!(verified.files, 4);
        assert!(self::verified(&data)["backup-20261125-100500.tar.gz"].ok);
    }

    #[test]
    fn hourly_due_by_names() {
        let env = env();
        assert!(hourly_due(&env.project, at(10, 0)));
        create(&env.project, &env.locations, &Part::DEFAULT, at(10, 0)).unwrap();
        assert!(!hourly_due(&env.project, at(10, 59)));
        assert!(hourly_due(&env.project, at(11, 0)));
    }

    #[test]
    fn retention_by_count_and_age() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let now = at(12, 0);
        for h in 0..60 {
            let t = now - TimeDelta::hours(h);
            fs::write(dir.join(hourly_name(t)), "x").unwrap();
        }
        for d in 0..40 {
            let t = now - TimeDelta::days(d);
            fs::write(dir.join(daily_name(t)), "x").unwrap();
        }
        fs::write(dir.join("notes.txt"), "x").unwrap();
        let removed = prune(dir, now).unwrap();
        let left = list_dir(dir);
        let hourly = left.iter().filter(|a| a.cadence == Cadence::Hourly).count();
        let daily = left.iter().filter(|a| a.cadence == Cadence::Daily).count();
        assert_eq!(hourly, HOURLY_KEEP);
        assert_eq!(daily, 31);
        assert_eq!(removed.len(), 12 + 9);
        assert!(dir.join("notes.txt").exists());
    }

    #[test]
    fn newest_is_never_pruned() {
        let tmp = tempfile::tempdir().unwrap();
        let old = at(0, 0) - TimeDelta::days(400);
        fs::write(tmp.path().join(daily_name(old)), "x").unwrap();
        assert!(prune(tmp.path(), at(0, 0)).unwrap().is_empty());
    }

    #[test]
    fn names_parse() {
        assert_eq!(
            parse_name("backup-20261125-100500.tar.gz"),
            Some((Cadence::Hourly, at(10, 5)))
        );
        assert_eq!(
            parse_name("backup-20261125.tar.gz"),
            Some((Cadence::Daily, at(0, 0)))
        );
        assert_eq!(parse_name("backup-2026.tar.gz"), None);
        assert_eq!(parse_name("backup-20261125.tar"), None);
    }

    #[test]
    fn session_start_spawns_when_due_at_most_once_per_interval() {
        let env = env();
        let bin = env.project.join("bin");
        fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink("/bin/true", bin.join("ctxopt")).unwrap();
        let ctx = |now, bin_dir: Option<PathBuf>| {
            Context::new(env.project.clone(), now, bin_dir, env.locations.clone())
        };
        assert!(matches!(
            check_at_session_start(&ctx(at(10, 0), None)),
            Err(BackupError::NoBinDir)
        ));
        assert!(check_at_session_start(&ctx(at(10, 0), Some(bin.clone()))).unwrap());
        assert!(!check_at_session_start(&ctx(at(10, 5), Some(bin.clone()))).unwrap());
        create(&env.project, &env.locations, &Part::DEFAULT, at(10, 6)).unwrap();
        assert!(!check_at_session_start(&ctx(at(10, 30), Some(bin.clone()))).unwrap());
        assert!(check_at_session_start(&ctx(at(11, 6), Some(bin))).unwrap());
    }

    #[test]
    fn requested_marker_throttles() {
        let tmp = tempfile::tempdir().unwrap();
        let marker = tmp.path().join("m");
        assert!(!requested_recently(&marker, at(10, 0)));
        mark_requested(&marker, at(10, 0)).unwrap();
        assert!(requested_recently(&marker, at(10, 9)));
        assert!(!requested_recently(&marker, at(10, 10)));
    }
}
