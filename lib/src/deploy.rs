//! Deploy snapshots and rollback (runbook §5.1 Phase 0, §6; R6.3, R7.2, R7.3).
//!
//! - [`start`] is Phase 0: `.deploy/previous_commit.txt` (`git rev-parse HEAD`, or a note
//!   outside git), `.deploy/previous_settings.json` (the project's `.claude/settings.json`),
//!   `.deploy/previous_skills.tar.gz` (`.claude/skills/`) and `.deploy/previous_hooks.tar.gz`
//!   (`.claude/hooks/` without ctxopt's data dir), members named relative to the project, and
//!   last the manifest `.deploy/snapshot.json` (SHA-256 of every file and member). Symbolic
//!   links are not part of a snapshot (reported, never followed).
//! - [`finish`] appends the runbook's `Deployed <commit> at <date>` to `.deploy/history.log`.
//! - [`rollback_to_snapshot`] puts the snapshot back; [`rollback_to_commit`] the `.claude/`
//!   files of a commit (read from git's objects: the work tree outside `.claude/` is never
//!   touched). Both verify before they write (a snapshot whose hashes differ from its manifest
//!   is refused), stage every new file next to its target and rename it into place, keep what
//!   they replace under `.deploy/replaced-<stamp>/`, record every write with the guard and
//!   `audit.log` (actor `ctxopt`, action `rollback`), and append `.deploy/rollback.log`.
//! - [`post_rollback_checks`] are the runbook's checks after a rollback (§6.2).
//!
//! What a rollback never touches: ctxopt's data dir `.claude/hooks/data/`, the per-machine
//! `.claude/settings.local.json` (ctxopt's own hook entries live there), anything outside
//! `.claude/`, and anything reached through a symbolic link. It reads at most
//! [`MAX_MEMBERS`] files and [`MAX_TOTAL_BYTES`] in all, so a hook can call it: it never
//! panics and returns every failure as a [`DeployError`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use crate::config::Kind;
use crate::config::lastgood::{self, sha256_hex};
use crate::record::{self, Actor, AuditEntry};
use crate::store::{self, DataDir, Durability, StoreError};

/// The most files a snapshot or a rollback handles.
pub const MAX_MEMBERS: usize = 10_000;
/// The most bytes (uncompressed) a snapshot or a rollback handles, all files together.
pub const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;
/// The deepest directory a snapshot descends into, below `.claude/skills` or `.claude/hooks`.
const MAX_DEPTH: usize = 16;
/// The largest `metrics.jsonl` tail the post-rollback checks read.
const MAX_METRICS_TAIL: u64 = 16 * 1024 * 1024;
/// Manifest layout version.
const MANIFEST_VERSION: u32 = 1;

/// The post-rollback limits (runbook §6.2).
pub const LIMIT_INITIAL_TOKENS: f64 = 40_000.0;
/// At most this many `error` records among the last [`CHECK_WINDOW`] records.
pub const LIMIT_ERRORS: f64 = 1.0;
/// The hook latency average (ms) over the last [`CHECK_WINDOW`] `hook_latency` records.
pub const LIMIT_HOOK_AVG_MS: f64 = 100.0;
/// How many records the error and latency checks look at.
pub const CHECK_WINDOW: usize = 100;

const SETTINGS: &str = ".claude/settings.json";
const SKILLS: &str = ".claude/skills";
const HOOKS: &str = ".claude/hooks";
const DATA: &str = ".claude/hooks/data";
const LOCAL_SETTINGS: &str = ".claude/settings.local.json";

/// The files of `.deploy/`.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `.deploy/`.
    pub dir: PathBuf,
    /// `previous_commit.txt`.
    pub commit: PathBuf,
    /// `previous_settings.json`.
    pub settings: PathBuf,
    /// `previous_skills.tar.gz`.
    pub skills: PathBuf,
    /// `previous_hooks.tar.gz`.
    pub hooks: PathBuf,
    /// `snapshot.json`, the manifest.
    pub manifest: PathBuf,
    /// `history.log`.
    pub history: PathBuf,
    /// `rollback.log`.
    pub rollback_log: PathBuf,
}

impl Paths {
    /// The deploy files of `project`.
    #[must_use]
    pub fn of_project(project: &Path) -> Self {
        let dir = project.join(".deploy");
        Self {
            commit: dir.join("previous_commit.txt"),
            settings: dir.join("previous_settings.json"),
            skills: dir.join("previous_skills.tar.gz"),
            hooks: dir.join("previous_hooks.tar.gz"),
            manifest: dir.join("snapshot.json"),
            history: dir.join("history.log"),
            rollback_log: dir.join("rollback.log"),
            dir,
        }
    }
}

/// What failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A file operation.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading a file or directory.
    #[error("failed to read {}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// More than a snapshot or rollback handles.
    #[error("failed to {what}: over the limit of {limit}")]
    TooBig {
        /// What was being done.
        what: String,
        /// The limit.
        limit: String,
    },
    /// No snapshot to roll back to.
    #[error("failed to find a deploy snapshot at {} (run `ctxopt deploy start` first)", path.display())]
    NoSnapshot {
        /// The manifest's path.
        path: PathBuf,
    },
    /// The snapshot does not match its manifest, or names a path it must not.
    #[error("failed to verify the deploy snapshot: {0} (refused; nothing was changed)")]
    Corrupt(String),
    /// A target that cannot be written safely (a link out of `.claude/`, a directory in the
    /// way).
    #[error("failed to write {}: {why} (refused; nothing was changed)", path.display())]
    Unsafe {
        /// The target.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// git could not be run or refused.
    #[error("failed to run git {args}: {message}")]
    Git {
        /// The arguments.
        args: String,
        /// git's stderr or the OS error.
        message: String,
    },
    /// Another rollback holds `.deploy/rollback.lock`.
    #[error("failed to roll back: another rollback is running (it holds {})", path.display())]
    Busy {
        /// The lock file.
        path: PathBuf,
    },
    /// A rollback stopped part way: the files listed were already changed.
    #[error("failed to finish the rollback after changing {done} file(s): {source}")]
    Partial {
        /// How many files were already changed.
        done: usize,
        /// Why it stopped.
        #[source]
        source: Box<DeployError>,
    },
}

/// The manifest, `.deploy/snapshot.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub schema_version: u32,
    /// When the snapshot was taken (RFC 3339).
    pub created_at: String,
    /// `git rev-parse HEAD` then, if a git repository.
    pub commit: Option<String>,
    /// SHA-256 of each file of `.deploy/` the snapshot wrote, by file name.
    pub files: BTreeMap<String, String>,
    /// `.claude/settings.json` then; `None` when there was none.
    pub settings: Option<Member>,
    /// The files of the two archives, paths relative to the project.
    pub members: Vec<Member>,
    /// The directories of the two archives.
    pub dirs: Vec<String>,
    /// Symbolic links left out of the snapshot.
    #[serde(default)]
    pub skipped: Vec<String>,
}

/// One file of a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Member {
    /// Relative to the project (`.claude/skills/x/SKILL.md`).
    pub path: String,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
}

/// What [`start`] did.
#[derive(Debug, Clone)]
pub struct Started {
    /// The manifest written.
    pub manifest: Manifest,
    /// The files written, absolute.
    pub written: Vec<PathBuf>,
}

/// Phase 0 (runbook §5.1): records the current commit, settings, skills and hooks in
/// `.deploy/` (see the module doc). The manifest is written last, so a snapshot that failed
/// half way no longer matches its manifest and is refused by a rollback.
pub fn start(project: &Path, now: DateTime<Utc>) -> Result<Started, DeployError> {
    let paths = Paths::of_project(project);
    store::ensure_dir(&paths.dir)?;
    let commit = git(project, &["rev-parse", "--verify", "--quiet", "HEAD"])
        .ok()
        .and_then(|out| String::from_utf8(out).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let mut files = BTreeMap::new();
    let mut written = Vec::new();
    let mut budget = Budget::default();
    let commit_text = commit.as_ref().map_or_else(
        || "none: not a git repository (or no commit yet) when the snapshot was taken\n".to_owned(),
        |c| format!("{c}\n"),
    );
    write_private(&paths.commit, commit_text.as_bytes())?;
    files.insert(name_of(&paths.commit), sha256_hex(commit_text.as_bytes()));
    written.push(paths.commit.clone());

    let settings_path = project.join(SETTINGS);
    let settings = match fs::symlink_metadata(&settings_path) {
        Ok(meta) if meta.is_file() => {
            let bytes = read_capped(&settings_path, &mut budget)?;
            write_private(&paths.settings, &bytes)?;
            files.insert(name_of(&paths.settings), sha256_hex(&bytes));
            written.push(paths.settings.clone());
            Some(Member {
                path: SETTINGS.to_owned(),
                sha256: sha256_hex(&bytes),
                size: bytes.len() as u64,
                mode: meta.permissions().mode() & 0o777,
            })
        }
        _ => {
            remove_if_present(&paths.settings)?;
            None
        }
    };

    let mut members = Vec::new();
    let mut dirs = Vec::new();
    let mut skipped = Vec::new();
    for (tree, archive) in [(SKILLS, &paths.skills), (HOOKS, &paths.hooks)] {
        let walked = walk(project, tree, &mut budget)?;
        let bytes = archive_bytes(&walked).map_err(|source| DeployError::Read {
            path: archive.clone(),
            source,
        })?;
        write_private(archive, &bytes)?;
        files.insert(name_of(archive), sha256_hex(&bytes));
        written.push(archive.clone());
        members.extend(walked.files.into_iter().map(|f| f.member));
        dirs.extend(walked.dirs.into_iter().map(|d| d.0));
        skipped.extend(walked.skipped);
    }
    let manifest = Manifest {
        schema_version: MANIFEST_VERSION,
        created_at: record::timestamp(now),
        commit,
        files,
        settings,
        members,
        dirs,
        skipped,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|err| DeployError::Read {
        path: paths.manifest.clone(),
        source: io::Error::other(err),
    })?;
    write_private(&paths.manifest, &json)?;
    written.push(paths.manifest.clone());
    note_deploy_dir(project);
    Ok(Started { manifest, written })
}

/// What [`finish`] appended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The line, without its newline.
    pub line: String,
}

/// Step 11 of runbook §5.1: appends `Deployed <commit> at <date>` to `.deploy/history.log`.
pub fn finish(project: &Path, now: DateTime<Utc>) -> Result<Finished, DeployError> {
    let paths = Paths::of_project(project);
    store::ensure_dir(&paths.dir)?;
    let commit = git(project, &["rev-parse", "--verify", "--quiet", "HEAD"])
        .ok()
        .and_then(|out| String::from_utf8(out).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "(not a git repository)".to_owned());
    let line = format!("Deployed {commit} at {}", record::timestamp(now));
    store::append(&paths.history, format!("{line}\n").as_bytes())?;
    note_deploy_dir(project);
    Ok(Finished { line })
}

// ---------------------------------------------------------------------------------------------
// Rollback
// ---------------------------------------------------------------------------------------------

/// Why a rollback runs, as `.deploy/rollback.log` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A person (`ctxopt rollback`).
    Manual,
    /// The automatic rollback (runbook §6.1), with its reason.
    Automatic(String),
}

impl Trigger {
    fn describe(&self) -> String {
        match self {
            Self::Manual => "manual".to_owned(),
            Self::Automatic(why) => format!("automatic ({})", why.replace(['\n', '\r'], " ")),
        }
    }
}

/// What a rollback goes back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The deploy snapshot taken at this time (RFC 3339), of this commit.
    Snapshot {
        /// The manifest's `created_at`.
        created_at: String,
        /// The manifest's commit.
        commit: Option<String>,
    },
    /// A commit's `.claude/` files (full object name).
    Commit(String),
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Self::Snapshot { created_at, commit } => format!(
                "the deploy snapshot of {created_at} ({})",
                commit.as_deref().unwrap_or("no commit")
            ),
            Self::Commit(c) => format!("commit {c}"),
        }
    }
}

/// How one file changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// The file did not exist.
    Created,
    /// The file's content or mode differed.
    Replaced,
    /// The file is not in the target and is removed.
    Removed,
}

/// One file a rollback changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Relative to the project.
    pub path: String,
    /// How.
    pub kind: ChangeKind,
}

/// A rollback worked out and verified, not yet applied.
#[derive(Debug, Clone)]
pub struct Plan {
    project: PathBuf,
    /// What it goes back to.
    pub target: Target,
    /// The files it changes, sorted by path.
    pub changes: Vec<Change>,
    wanted: BTreeMap<String, Wanted>,
    dirs: Vec<(String, u32)>,
    prune_dirs: Vec<String>,
}

#[derive(Debug, Clone)]
struct Wanted {
    bytes: Vec<u8>,
    mode: u32,
}

/// A rollback that happened.
#[derive(Debug, Clone)]
pub struct Rollback {
    /// What it went back to.
    pub target: Target,
    /// The files it changed.
    pub changes: Vec<Change>,
    /// Where what it replaced or removed is kept; `None` when nothing was.
    pub replaced_dir: Option<PathBuf>,
    /// Recording problems after the files were written (audit, guard state): the rollback
    /// itself is done.
    pub warnings: Vec<String>,
}

impl Rollback {
    /// The changed files' paths, relative to the project.
    #[must_use]
    pub fn files(&self) -> Vec<String> {
        self.changes.iter().map(|c| c.path.clone()).collect()
    }
}

impl Target {
    /// For people: `the deploy snapshot of <time> (<commit>)` or `commit <name>`.
    #[must_use]
    pub fn label(&self) -> String {
        self.describe()
    }
}

/// Rolls the project back to the deploy snapshot, recorded as a manual rollback.
pub fn rollback_to_snapshot(project: &Path, now: DateTime<Utc>) -> Result<Rollback, DeployError> {
    rollback_to_snapshot_for(project, &Trigger::Manual, now)
}

/// [`rollback_to_snapshot`] with the trigger to record (the automatic rollback passes
/// [`Trigger::Automatic`]).
pub fn rollback_to_snapshot_for(
    project: &Path,
    trigger: &Trigger,
    now: DateTime<Utc>,
) -> Result<Rollback, DeployError> {
    apply(plan_snapshot(project)?, trigger, now)
}

/// Rolls the project's `.claude/` back to `commit`'s, recorded as a manual rollback.
pub fn rollback_to_commit(
    project: &Path,
    commit: &str,
    now: DateTime<Utc>,
) -> Result<Rollback, DeployError> {
    apply(plan_commit(project, commit)?, &Trigger::Manual, now)
}

/// Verifies the deploy snapshot and works out what a rollback to it changes: settings, every
/// file under `.claude/skills/` and `.claude/hooks/` (not the data dir) back to the snapshot's
/// bytes and modes, files added since removed.
pub fn plan_snapshot(project: &Path) -> Result<Plan, DeployError> {
    let paths = Paths::of_project(project);
    let manifest = load_manifest(&paths)?;
    let mut budget = Budget::default();
    let mut wanted = BTreeMap::new();
    let mut dirs = Vec::new();
    if let Some(settings) = &manifest.settings {
        if settings.path != SETTINGS {
            return Err(DeployError::Corrupt(format!(
                "settings member named {:?}",
                settings.path
            )));
        }
        let bytes = verified_file(&paths.settings, &manifest)?;
        if sha256_hex(&bytes) != settings.sha256 {
            return Err(DeployError::Corrupt(
                "previous_settings.json differs from the manifest".to_owned(),
            ));
        }
        wanted.insert(
            SETTINGS.to_owned(),
            Wanted {
                bytes,
                mode: settings.mode & 0o777,
            },
        );
    }
    let by_path: BTreeMap<&str, &Member> = manifest
        .members
        .iter()
        .map(|m| (m.path.as_str(), m))
        .collect();
    for (tree, archive) in [(SKILLS, &paths.skills), (HOOKS, &paths.hooks)] {
        let bytes = verified_file(archive, &manifest)?;
        let (files, archive_dirs) = read_archive(&bytes, tree, &mut budget)?;
        let expected: BTreeSet<&str> = by_path.keys().copied().filter(|p| under(p, tree)).collect();
        let found: BTreeSet<&str> = files.keys().map(String::as_str).collect();
        if expected != found {
            return Err(DeployError::Corrupt(format!(
                "{} holds other files than the manifest lists",
                name_of(archive)
            )));
        }
        for (path, file) in files {
            let member = by_path.get(path.as_str()).copied();
            if member.is_none_or(|m| m.sha256 != sha256_hex(&file.bytes)) {
                return Err(DeployError::Corrupt(format!(
                    "{path} in {} differs from the manifest",
                    name_of(archive)
                )));
            }
            wanted.insert(path, file);
        }
        dirs.extend(archive_dirs);
    }
    let mut present = BTreeSet::new();
    let mut prune_dirs = Vec::new();
    for tree in [SKILLS, HOOKS] {
        let walked = walk_current(project, tree)?;
        present.extend(walked.files);
        prune_dirs.extend(walked.dirs);
    }
    if project.join(SETTINGS).symlink_metadata().is_ok() {
        present.insert(SETTINGS.to_owned());
    }
    let keep: BTreeSet<&str> = dirs.iter().map(|(d, _)| d.as_str()).collect();
    prune_dirs.retain(|d| !keep.contains(d.as_str()) && d != SKILLS && d != HOOKS);
    let removals: Vec<String> = present
        .into_iter()
        .filter(|p| !wanted.contains_key(p))
        .collect();
    finish_plan(
        project,
        Target::Snapshot {
            created_at: manifest.created_at.clone(),
            commit: manifest.commit.clone(),
        },
        wanted,
        dirs,
        &removals,
        prune_dirs,
    )
}

/// Works out what a rollback of `.claude/` to `commit` changes: every file of the commit's
/// `.claude/` (not the data dir, not `settings.local.json`), read from git's objects; the
/// files tracked at HEAD there but absent from the commit are removed, like a checkout would;
/// untracked files are left alone.
pub fn plan_commit(project: &Path, commit: &str) -> Result<Plan, DeployError> {
    if commit.is_empty() || commit.starts_with('-') || commit.contains(['\0', '\n']) {
        return Err(DeployError::Git {
            args: "rev-parse".to_owned(),
            message: format!("{commit:?} is not a commit name"),
        });
    }
    let spec = format!("{commit}^{{commit}}");
    let full = git(project, &["rev-parse", "--verify", "--quiet", &spec]).map_err(|_| {
        DeployError::Git {
            args: format!("rev-parse {commit}"),
            message: format!("{commit} is not a commit of this repository"),
        }
    })?;
    let full = String::from_utf8_lossy(&full).trim().to_owned();
    let mut budget = Budget::default();
    let mut wanted = BTreeMap::new();
    for entry in ls_tree(project, &full)? {
        if !allowed(&entry.path, None) {
            continue;
        }
        let mode = match entry.mode.as_str() {
            "100755" => 0o755,
            "100644" | "100664" => 0o644,
            // Links and submodules are not restored: a link could point out of `.claude/`.
            _ => continue,
        };
        budget.add(entry.size)?;
        let bytes = git(project, &["cat-file", "blob", &entry.oid])?;
        if bytes.len() as u64 != entry.size {
            return Err(DeployError::Git {
                args: format!("cat-file blob {}", entry.oid),
                message: "size differs from ls-tree's".to_owned(),
            });
        }
        wanted.insert(entry.path, Wanted { bytes, mode });
    }
    let head = ls_tree(project, "HEAD").unwrap_or_default();
    let removals: Vec<String> = head
        .into_iter()
        .map(|e| e.path)
        .filter(|p| allowed(p, None) && !wanted.contains_key(p))
        .filter(|p| {
            project
                .join(p)
                .symlink_metadata()
                .is_ok_and(|m| m.is_file())
        })
        .collect();
    finish_plan(
        project,
        Target::Commit(full),
        wanted,
        Vec::new(),
        &removals,
        Vec::new(),
    )
}

/// Checks every target and computes the changes.
fn finish_plan(
    project: &Path,
    target: Target,
    mut wanted: BTreeMap<String, Wanted>,
    dirs: Vec<(String, u32)>,
    removals: &[String],
    prune_dirs: Vec<String>,
) -> Result<Plan, DeployError> {
    check_claude_dir(project)?;
    let mut changes = Vec::new();
    let mut same = Vec::new();
    for (path, want) in &wanted {
        let abs = project.join(path);
        check_target(project, path)?;
        match fs::symlink_metadata(&abs) {
            Ok(meta) if meta.is_file() => {
                let unchanged = meta.len() == want.bytes.len() as u64
                    && meta.permissions().mode() & 0o777 == want.mode
                    && fs::read(&abs).is_ok_and(|b| b == want.bytes);
                if unchanged {
                    same.push(path.clone());
                } else {
                    changes.push(Change {
                        path: path.clone(),
                        kind: ChangeKind::Replaced,
                    });
                }
            }
            Ok(meta) if meta.is_symlink() => changes.push(Change {
                path: path.clone(),
                kind: ChangeKind::Replaced,
            }),
            Ok(_) => {
                return Err(DeployError::Unsafe {
                    path: abs,
                    why: "not a regular file".to_owned(),
                });
            }
            Err(_) => changes.push(Change {
                path: path.clone(),
                kind: ChangeKind::Created,
            }),
        }
    }
    for path in same {
        wanted.remove(&path);
    }
    for path in removals {
        check_target(project, path)?;
        changes.push(Change {
            path: path.clone(),
            kind: ChangeKind::Removed,
        });
    }
    for (dir, _) in &dirs {
        check_target(project, dir)?;
        if fs::symlink_metadata(project.join(dir)).is_ok_and(|m| !m.is_dir()) {
            return Err(DeployError::Unsafe {
                path: project.join(dir),
                why: "a symbolic link or a file where a directory should be".to_owned(),
            });
        }
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Plan {
        project: project.to_owned(),
        target,
        changes,
        wanted,
        dirs,
        prune_dirs,
    })
}

/// Applies a plan: stage, keep what is replaced, rename, remove, record.
pub fn apply(plan: Plan, trigger: &Trigger, now: DateTime<Utc>) -> Result<Rollback, DeployError> {
    let project = plan.project.clone();
    let data = DataDir::of_project(&project);
    let paths = Paths::of_project(&project);
    let lock = lock_rollback(&paths)?;
    for (dir, mode) in &plan.dirs {
        create_dir(&project.join(dir), *mode)?;
    }
    let staged = stage_all(&plan)?;
    let replaced_dir = plan
        .changes
        .iter()
        .any(|c| c.kind != ChangeKind::Created)
        .then(|| free_dir(&paths.dir, &format!("replaced-{}", stamp(now))));
    let mut audit = String::new();
    let mut warnings = Vec::new();
    let mut staged = staged.into_iter();
    let mut failed = None;
    for (done, change) in plan.changes.iter().enumerate() {
        let target = project.join(&change.path);
        let before = fs::read(&target).ok();
        let result = (|| {
            if change.kind != ChangeKind::Created
                && let Some(dir) = &replaced_dir
            {
                keep(&target, &dir.join(&change.path))?;
            }
            if change.kind == ChangeKind::Removed {
                return fs::remove_file(&target)
                    .map_err(|err| StoreError::new("remove", &target, err).into());
            }
            let Some((tmp, _)) = staged.next() else {
                return Err(DeployError::Corrupt("staging out of step".to_owned()));
            };
            fs::rename(&tmp, &target).map_err(|err| {
                let _ = fs::remove_file(&tmp);
                StoreError::new("rename into place", &target, err).into()
            })
        })();
        if let Err(err) = result {
            unstage(&staged.by_ref().collect::<Vec<_>>());
            failed = Some(DeployError::Partial {
                done,
                source: Box::new(err),
            });
            break;
        }
        let after = plan.wanted.get(&change.path).map(|w| w.bytes.as_slice());
        if let Err(err) = note(&data, &target, before.as_deref(), after, now, &mut audit) {
            warnings.push(record::chain(&err));
        }
    }
    if failed.is_none() {
        for dir in plan.prune_dirs.iter().rev() {
            let _ = fs::remove_dir(project.join(dir));
        }
    }
    let line = log_line(&plan, trigger, failed.as_ref(), now);
    warnings.extend(record_rollback(&data, &paths, &audit, &line));
    drop(lock);
    if let Some(err) = failed {
        return Err(err);
    }
    Ok(Rollback {
        target: plan.target,
        changes: plan.changes,
        replaced_dir: replaced_dir.filter(|d| d.exists()),
        warnings,
    })
}

/// Takes `.deploy/rollback.lock`, or says another rollback holds it.
fn lock_rollback(paths: &Paths) -> Result<File, DeployError> {
    store::ensure_dir(&paths.dir)?;
    let lock_path = paths.dir.join("rollback.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(store::FILE_MODE)
        .open(&lock_path)
        .map_err(|err| StoreError::new("open", &lock_path, err))?;
    if lock.try_lock().is_err() {
        return Err(DeployError::Busy { path: lock_path });
    }
    Ok(lock)
}

/// Stages every new file beside its target, in the order of the plan's changes; on a failure
/// removes what it staged.
fn stage_all(plan: &Plan) -> Result<Vec<(PathBuf, PathBuf)>, DeployError> {
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    for change in &plan.changes {
        let Some(want) = plan.wanted.get(&change.path) else {
            continue;
        };
        let target = plan.project.join(&change.path);
        let result = match target.parent() {
            Some(parent) => create_dir(parent, 0o755),
            None => Ok(()),
        }
        .and_then(|()| stage(&target, want));
        match result {
            Ok(tmp) => staged.push((tmp, target)),
            Err(err) => {
                unstage(&staged);
                return Err(err);
            }
        }
    }
    Ok(staged)
}

/// The `.deploy/rollback.log` line: time, target, trigger, files (and the failure, if any).
fn log_line(
    plan: &Plan,
    trigger: &Trigger,
    failed: Option<&DeployError>,
    now: DateTime<Utc>,
) -> String {
    let mut line = format!(
        "[{}] Rolled back to {} trigger={} files={}",
        record::timestamp(now),
        plan.target.describe(),
        trigger.describe(),
        plan.changes.len()
    );
    for change in &plan.changes {
        let _ = write!(line, " {}:{}", kind_word(change.kind), change.path);
    }
    if let Some(err) = failed {
        let _ = write!(line, " FAILED: {}", record::chain(err).replace('\n', " "));
    }
    line.push('\n');
    line
}

/// Appends the audit entries and the log line; returns what could not be recorded.
fn record_rollback(data: &DataDir, paths: &Paths, audit: &str, line: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    if !audit.is_empty()
        && let Err(err) = data
            .ensure()
            .and_then(|()| store::append(&data.audit_log(), audit.as_bytes()))
    {
        warnings.push(record::chain(&err));
    }
    if let Err(err) = store::ensure_dir(&paths.dir)
        .and_then(|()| store::append(&paths.rollback_log, line.as_bytes()))
    {
        warnings.push(record::chain(&err));
    }
    note_deploy_dir(
        &paths
            .dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    );
    warnings
}

fn kind_word(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Created => "created",
        ChangeKind::Replaced => "replaced",
        ChangeKind::Removed => "removed",
    }
}

/// Records ctxopt's own write of `path` with the guard and `audit.log`: a config file through
/// [`lastgood::note_own_write`] (which audits it), anything else through
/// [`crate::guard::snapshot::note_own_write`] and an entry added to `audit`.
fn note(
    data: &DataDir,
    path: &Path,
    before: Option<&[u8]>,
    after: Option<&[u8]>,
    now: DateTime<Utc>,
    audit: &mut String,
) -> Result<(), StoreError> {
    if Kind::of_path(path).is_some() {
        return lastgood::note_own_write(data, path, before, after, "rollback");
    }
    crate::guard::snapshot::note_own_write(data, path)?;
    audit.push_str(
        &AuditEntry {
            actor: Actor::Ctxopt,
            action: "rollback".to_owned(),
            path: path.to_string_lossy().into_owned(),
            sha256_before: before.map(sha256_hex),
            sha256_after: after.map(sha256_hex),
            session_id: None,
            tool: None,
            detail: None,
        }
        .line(now),
    );
    Ok(())
}

/// Tells the guard that `.deploy/` changed by ctxopt's hand (it watches the directory).
fn note_deploy_dir(project: &Path) {
    let data = DataDir::of_project(project);
    let _ = crate::guard::snapshot::note_own_write(&data, &project.join(".deploy"));
}

fn stamp(now: DateTime<Utc>) -> String {
    now.format("%Y%m%dT%H%M%SZ").to_string()
}

/// `base/name`, or `base/name-2`, … when taken.
fn free_dir(base: &Path, name: &str) -> PathBuf {
    let first = base.join(name);
    if !first.exists() {
        return first;
    }
    (2..1000)
        .map(|i| base.join(format!("{name}-{i}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// Keeps a copy of `from` (a file or a link) at `to`.
fn keep(from: &Path, to: &Path) -> Result<(), DeployError> {
    if let Some(parent) = to.parent() {
        store::ensure_dir(parent)?;
    }
    let meta = fs::symlink_metadata(from).map_err(|source| DeployError::Read {
        path: from.to_owned(),
        source,
    })?;
    if meta.is_symlink() {
        let link = fs::read_link(from).map_err(|source| DeployError::Read {
            path: from.to_owned(),
            source,
        })?;
        std::os::unix::fs::symlink(link, to)
            .map_err(|err| StoreError::new("keep a copy at", to, err))?;
        return Ok(());
    }
    let bytes = fs::read(from).map_err(|source| DeployError::Read {
        path: from.to_owned(),
        source,
    })?;
    store::write_atomic(to, &bytes, store::FILE_MODE, Durability::Fsync)?;
    Ok(())
}

/// Writes `want` to a temp file beside `target` (fsync'd, with the wanted mode).
fn stage(target: &Path, want: &Wanted) -> Result<PathBuf, DeployError> {
    let dir = target.parent().unwrap_or_else(|| Path::new("."));
    let name = target
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.ctxopt-rollback.{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&want.bytes)?;
        file.set_permissions(fs::Permissions::from_mode(want.mode))?;
        file.sync_all()
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(err) => {
            let _ = fs::remove_file(&tmp);
            Err(StoreError::new("stage", target, err).into())
        }
    }
}

fn unstage(staged: &[(PathBuf, PathBuf)]) {
    for (tmp, _) in staged {
        let _ = fs::remove_file(tmp);
    }
}

fn create_dir(dir: &Path, mode: u32) -> Result<(), DeployError> {
    if fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode & 0o777 | 0o700)
        .create(dir)
        .map_err(|err| StoreError::new("create directory", dir, err).into())
}

/// `.claude/` must be a real directory (or absent): a link would carry every write elsewhere.
fn check_claude_dir(project: &Path) -> Result<(), DeployError> {
    let claude = project.join(".claude");
    match fs::symlink_metadata(&claude) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(DeployError::Unsafe {
            path: claude,
            why: "not a directory (a symbolic link?)".to_owned(),
        }),
        Err(_) => Ok(()),
    }
}

/// Every existing directory between the project and `rel` must be a real directory, so no
/// write leaves `.claude/` through a link.
fn check_target(project: &Path, rel: &str) -> Result<(), DeployError> {
    if !allowed(rel, None) {
        return Err(DeployError::Unsafe {
            path: project.join(rel),
            why: "outside what a rollback may write".to_owned(),
        });
    }
    let rel_path = Path::new(rel);
    let mut at = project.to_path_buf();
    let parts: Vec<_> = rel_path.components().collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(DeployError::Unsafe {
                    path: at,
                    why: "a symbolic link or a file where a directory should be".to_owned(),
                });
            }
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Whether a rollback may write `rel`: relative, plain components, under `.claude/`, not the
/// data dir, not `settings.local.json`; with `tree`, under that tree.
fn allowed(rel: &str, tree: Option<&str>) -> bool {
    let path = Path::new(rel);
    let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
    plain
        && !rel.contains('\0')
        && under(rel, ".claude")
        && rel != ".claude"
        && !under(rel, DATA)
        && rel != LOCAL_SETTINGS
        && tree.is_none_or(|t| under(rel, t))
}

/// Whether `path` is `dir` or below it (by components).
fn under(path: &str, dir: &str) -> bool {
    Path::new(path).starts_with(dir)
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    store::write_atomic(path, bytes, store::FILE_MODE, Durability::Fsync)
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            Err(StoreError::new("remove", path, err))
        }
        _ => Ok(()),
    }
}

/// Counts files and bytes against the limits.
#[derive(Debug, Default)]
struct Budget {
    files: usize,
    bytes: u64,
}

impl Budget {
    fn add(&mut self, size: u64) -> Result<(), DeployError> {
        self.files += 1;
        self.bytes = self.bytes.saturating_add(size);
        if self.files > MAX_MEMBERS {
            return Err(DeployError::TooBig {
                what: "snapshot .claude/".to_owned(),
                limit: format!("{MAX_MEMBERS} files"),
            });
        }
        if self.bytes > MAX_TOTAL_BYTES {
            return Err(DeployError::TooBig {
                what: "snapshot .claude/".to_owned(),
                limit: format!("{MAX_TOTAL_BYTES} bytes"),
            });
        }
        Ok(())
    }
}

/// Reads a file, counting it against `budget` before reading.
fn read_capped(path: &Path, budget: &mut Budget) -> Result<Vec<u8>, DeployError> {
    let read_err = |source| DeployError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let len = file.metadata().map_err(read_err)?.len();
    budget.add(len)?;
    let mut bytes = Vec::new();
    file.take(len.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 != len {
        return Err(read_err(io::Error::other("the file changed while read")));
    }
    Ok(bytes)
}

#[derive(Debug)]
struct WalkedFile {
    member: Member,
    bytes: Vec<u8>,
    mtime: u64,
}

#[derive(Debug, Default)]
struct Walked {
    files: Vec<WalkedFile>,
    dirs: Vec<(String, u32)>,
    skipped: Vec<String>,
}

/// The regular files and directories under `tree` (relative to `project`), not the data dir,
/// not following links; each file read.
fn walk(project: &Path, tree: &str, budget: &mut Budget) -> Result<Walked, DeployError> {
    let mut out = Walked::default();
    match fs::symlink_metadata(project.join(tree)) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            out.skipped.push(tree.to_owned());
            return Ok(out);
        }
        Err(_) => return Ok(out),
    }
    let mut stack = vec![(tree.to_owned(), 0usize)];
    while let Some((rel, depth)) = stack.pop() {
        let abs = project.join(&rel);
        let meta = fs::symlink_metadata(&abs).map_err(|source| DeployError::Read {
            path: abs.clone(),
            source,
        })?;
        out.dirs
            .push((rel.clone(), meta.permissions().mode() & 0o777));
        let mut names: Vec<_> = fs::read_dir(&abs)
            .map_err(|source| DeployError::Read {
                path: abs.clone(),
                source,
            })?
            .filter_map(Result::ok)
            .collect();
        names.sort_by_key(fs::DirEntry::file_name);
        for entry in names {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                out.skipped
                    .push(format!("{rel}/{}", entry.file_name().to_string_lossy()));
                continue;
            };
            let child = format!("{rel}/{name}");
            if under(&child, DATA) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                if depth + 1 > MAX_DEPTH {
                    return Err(DeployError::TooBig {
                        what: format!("snapshot {child}"),
                        limit: format!("{MAX_DEPTH} directory levels"),
                    });
                }
                stack.push((child, depth + 1));
            } else if meta.is_file() {
                let bytes = read_capped(&entry.path(), budget)?;
                out.files.push(WalkedFile {
                    member: Member {
                        path: child,
                        sha256: sha256_hex(&bytes),
                        size: bytes.len() as u64,
                        mode: meta.permissions().mode() & 0o777,
                    },
                    bytes,
                    mtime: meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_secs()),
                });
            } else {
                out.skipped.push(child);
            }
        }
    }
    out.dirs.sort();
    out.files.sort_by(|a, b| a.member.path.cmp(&b.member.path));
    Ok(out)
}

/// What is under `tree` now: regular files and links (by path), and the directories, not the
/// data dir, not descending into links; bounded like a snapshot.
#[derive(Debug, Default)]
struct Current {
    files: Vec<String>,
    dirs: Vec<String>,
}

fn walk_current(project: &Path, tree: &str) -> Result<Current, DeployError> {
    let mut out = Current::default();
    if !fs::symlink_metadata(project.join(tree)).is_ok_and(|m| m.is_dir()) {
        return Ok(out);
    }
    let mut stack = vec![(tree.to_owned(), 0usize)];
    while let Some((rel, depth)) = stack.pop() {
        out.dirs.push(rel.clone());
        let abs = project.join(&rel);
        let entries = fs::read_dir(&abs).map_err(|source| DeployError::Read {
            path: abs.clone(),
            source,
        })?;
        for entry in entries.filter_map(Result::ok) {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let child = format!("{rel}/{name}");
            if under(&child, DATA) {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && depth < MAX_DEPTH {
                stack.push((child, depth + 1));
            } else if kind.is_file() {
                out.files.push(child);
                if out.files.len() > MAX_MEMBERS {
                    return Err(DeployError::TooBig {
                        what: format!("list {tree}"),
                        limit: format!("{MAX_MEMBERS} files"),
                    });
                }
            }
        }
    }
    out.dirs.sort();
    Ok(out)
}

/// A gzip'd tar of `walked`: directories, then files, names relative to the project.
fn archive_bytes(walked: &Walked) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for (dir, mode) in &walked.dirs {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(*mode);
        header.set_mtime(0);
        builder.append_data(&mut header, format!("{dir}/"), io::empty())?;
    }
    for file in &walked.files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(file.member.size);
        header.set_mode(file.member.mode);
        header.set_mtime(file.mtime);
        builder.append_data(&mut header, &file.member.path, file.bytes.as_slice())?;
    }
    builder.into_inner()?.finish()
}

/// The files and directories of an archive under `tree`, refusing anything else (links,
/// devices, names outside `tree`) and counting against `budget`.
#[expect(
    clippy::type_complexity,
    reason = "internal: files by path, directories with modes"
)]
fn read_archive(
    bytes: &[u8],
    tree: &str,
    budget: &mut Budget,
) -> Result<(BTreeMap<String, Wanted>, Vec<(String, u32)>), DeployError> {
    let corrupt = |what: String| DeployError::Corrupt(what);
    let mut archive = tar::Archive::new(GzDecoder::new(bytes));
    let mut files = BTreeMap::new();
    let mut dirs = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| corrupt(format!("unreadable archive for {tree}: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| corrupt(format!("unreadable archive for {tree}: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| corrupt(format!("bad member name in the archive of {tree}: {e}")))?
            .to_str()
            .map(|s| s.trim_end_matches('/').to_owned())
            .ok_or_else(|| corrupt(format!("non-UTF-8 member name in the archive of {tree}")))?;
        if !allowed(&path, Some(tree)) {
            return Err(corrupt(format!(
                "member {path:?} is outside {tree} or names what a rollback never writes"
            )));
        }
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        match entry.header().entry_type() {
            tar::EntryType::Directory => dirs.push((path, mode)),
            tar::EntryType::Regular => {
                let size = entry.header().size().unwrap_or(u64::MAX);
                budget.add(size)?;
                let mut data = Vec::new();
                (&mut entry)
                    .take(size.saturating_add(1))
                    .read_to_end(&mut data)
                    .map_err(|e| corrupt(format!("unreadable member {path}: {e}")))?;
                if files
                    .insert(path.clone(), Wanted { bytes: data, mode })
                    .is_some()
                {
                    return Err(corrupt(format!("member {path} appears twice")));
                }
            }
            other => {
                return Err(corrupt(format!(
                    "member {path} is not a file or directory ({other:?})"
                )));
            }
        }
    }
    Ok((files, dirs))
}

fn load_manifest(paths: &Paths) -> Result<Manifest, DeployError> {
    let bytes = match fs::read(&paths.manifest) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(DeployError::NoSnapshot {
                path: paths.manifest.clone(),
            });
        }
        Err(source) => {
            return Err(DeployError::Read {
                path: paths.manifest.clone(),
                source,
            });
        }
    };
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| DeployError::Corrupt(format!("snapshot.json does not parse: {e}")))?;
    if manifest.schema_version != MANIFEST_VERSION {
        return Err(DeployError::Corrupt(format!(
            "snapshot.json has schema_version {}",
            manifest.schema_version
        )));
    }
    if manifest.members.len() > MAX_MEMBERS {
        return Err(DeployError::TooBig {
            what: "read snapshot.json".to_owned(),
            limit: format!("{MAX_MEMBERS} files"),
        });
    }
    Ok(manifest)
}

/// A file of `.deploy/` whose hash must be the manifest's.
fn verified_file(path: &Path, manifest: &Manifest) -> Result<Vec<u8>, DeployError> {
    let name = name_of(path);
    let expected = manifest
        .files
        .get(&name)
        .ok_or_else(|| DeployError::Corrupt(format!("the manifest does not list {name}")))?;
    let file =
        File::open(path).map_err(|e| DeployError::Corrupt(format!("{name} is unreadable: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_TOTAL_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| DeployError::Corrupt(format!("{name} is unreadable: {e}")))?;
    if bytes.len() as u64 > MAX_TOTAL_BYTES {
        return Err(DeployError::TooBig {
            what: format!("read {name}"),
            limit: format!("{MAX_TOTAL_BYTES} bytes"),
        });
    }
    if &sha256_hex(&bytes) != expected {
        return Err(DeployError::Corrupt(format!(
            "{name} differs from the manifest (SHA-256)"
        )));
    }
    Ok(bytes)
}

// ---------------------------------------------------------------------------------------------
// git
// ---------------------------------------------------------------------------------------------

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, DeployError> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|err| DeployError::Git {
            args: args.join(" "),
            message: err.to_string(),
        })?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(DeployError::Git {
            args: args.join(" "),
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

#[derive(Debug)]
struct TreeEntry {
    mode: String,
    oid: String,
    size: u64,
    path: String,
}

/// `git ls-tree -r -l` of `.claude` at `rev`, paths relative to the project.
fn ls_tree(project: &Path, rev: &str) -> Result<Vec<TreeEntry>, DeployError> {
    let out = git(
        project,
        &["ls-tree", "-r", "-l", "-z", rev, "--", ".claude"],
    )?;
    let mut entries = Vec::new();
    for record in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        // A path that is not UTF-8 cannot be named safely here: skipped.
        let Ok(text) = std::str::from_utf8(record) else {
            continue;
        };
        let Some((meta, path)) = text.split_once('\t') else {
            continue;
        };
        let mut fields = meta.split_whitespace();
        let (Some(mode), Some(kind), Some(oid), Some(size)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if kind != "blob" {
            continue;
        }
        entries.push(TreeEntry {
            mode: mode.to_owned(),
            oid: oid.to_owned(),
            size: size.parse().unwrap_or(u64::MAX),
            path: path.to_owned(),
        });
        if entries.len() > MAX_MEMBERS {
            return Err(DeployError::TooBig {
                what: format!("list .claude at {rev}"),
                limit: format!("{MAX_MEMBERS} files"),
            });
        }
    }
    Ok(entries)
}

// ---------------------------------------------------------------------------------------------
// Post-rollback checks
// ---------------------------------------------------------------------------------------------

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckStatus {
    /// Within the limit.
    Ok,
    /// Over the limit.
    Fail,
    /// No records to judge by.
    NoData,
}

/// One post-rollback check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// `initial_tokens`, `errors_last_100`, `hook_latency_avg_ms`.
    pub name: &'static str,
    /// What the runbook's command prints.
    pub what: &'static str,
    /// The value found (`None`: no data).
    pub value: Option<f64>,
    /// The limit (the value must be ≤ it).
    pub limit: f64,
    /// `OK`, `FAIL` or `NO_DATA`.
    pub status: CheckStatus,
}

/// The runbook's checks after a rollback (§6.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checks {
    /// In the runbook's order.
    pub checks: Vec<Check>,
}

impl Checks {
    /// Whether no check failed (no data is not a failure).
    #[must_use]
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != CheckStatus::Fail)
    }
}

/// The runbook's post-rollback checks on `metrics.jsonl`, read from its end: the initial
/// tokens of the last record that carries them ≤ 40,000; at most one `error` record among the
/// last 100 records; the mean `duration_ms` of the last 100 `hook_latency` records ≤ 100 ms.
#[must_use]
pub fn post_rollback_checks(project: &Path) -> Checks {
    let lines = tail_lines(&DataDir::of_project(project).metrics());
    let records: Vec<serde_json::Value> = lines
        .iter()
        .rev()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let tokens = records.iter().find_map(|r| {
        r.get("token_consumption_initial")
            .and_then(serde_json::Value::as_f64)
    });
    let errors = records
        .iter()
        .take(CHECK_WINDOW)
        .filter(|r| r.get("type").and_then(serde_json::Value::as_str) == Some("error"))
        .count();
    let latencies: Vec<f64> = records
        .iter()
        .filter(|r| r.get("type").and_then(serde_json::Value::as_str) == Some("hook_latency"))
        .filter_map(|r| r.get("duration_ms").and_then(serde_json::Value::as_f64))
        .take(CHECK_WINDOW)
        .collect();
    #[expect(
        clippy::cast_precision_loss,
        reason = "at most 100 samples and 100 records"
    )]
    let (errors, average) = (
        errors as f64,
        (!latencies.is_empty()).then(|| latencies.iter().sum::<f64>() / latencies.len() as f64),
    );
    let check = |name, what, value: Option<f64>, limit: f64| Check {
        name,
        what,
        value,
        limit,
        status: match value {
            None => CheckStatus::NoData,
            Some(v) if v <= limit => CheckStatus::Ok,
            Some(_) => CheckStatus::Fail,
        },
    };
    Checks {
        checks: vec![
            check(
                "initial_tokens",
                "initial token consumption (last record)",
                tokens,
                LIMIT_INITIAL_TOKENS,
            ),
            check(
                "errors_last_100",
                "error records in the last 100 records",
                Some(errors),
                LIMIT_ERRORS,
            ),
            check(
                "hook_latency_avg_ms",
                "hook latency average (ms, last 100)",
                average,
                LIMIT_HOOK_AVG_MS,
            ),
        ],
    }
}

/// The complete lines of the last [`MAX_METRICS_TAIL`] bytes of `path` (none when missing).
fn tail_lines(path: &Path) -> Vec<String> {
    let Ok(mut file) = File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(MAX_METRICS_TAIL);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if file.take(MAX_METRICS_TAIL).read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn put(project: &Path, rel: &str, text: &str) {
        let path = project.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn project() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        put(tmp.path(), SETTINGS, "{\"a\":1}\n");
        put(
            tmp.path(),
            ".claude/skills/one/SKILL.md",
            "---\nname: one\n---\nbody\n",
        );
        put(tmp.path(), ".claude/hooks/pre.sh", "#!/bin/sh\nexit 0\n");
        fs::set_permissions(
            tmp.path().join(".claude/hooks/pre.sh"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        put(tmp.path(), ".claude/hooks/data/metrics.jsonl", "{}\n");
        tmp
    }

    #[test]
    fn allowed_refuses_escapes_data_and_local_settings() {
        assert!(allowed(".claude/skills/a/SKILL.md", Some(SKILLS)));
        assert!(!allowed(".claude/skills/../settings.json", None));
        assert!(!allowed("/etc/passwd", None));
        assert!(!allowed(".claude/hooks/data/metrics.jsonl", None));
        assert!(!allowed(".claude/settings.local.json", None));
        assert!(!allowed("src/main.rs", None));
        assert!(!allowed(".claude/hooks/x.sh", Some(SKILLS)));
        assert!(!allowed(".claudex/a", None));
    }

    #[test]
    fn snapshot_round_trip_restores_bytes_and_modes() {
        let tmp = project();
        let p = tmp.path();
        let started = start(p, now()).unwrap();
        assert_eq!(started.manifest.members.len(), 2);
        let archive = Paths::of_project(p).hooks;
        let mode = fs::metadata(&archive).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        put(p, SETTINGS, "{\"a\":2}\n");
        put(p, ".claude/hooks/pre.sh", "changed\n");
        put(p, ".claude/hooks/new.sh", "new\n");
        fs::remove_file(p.join(".claude/skills/one/SKILL.md")).unwrap();
        put(p, ".claude/hooks/data/metrics.jsonl", "{}\n{}\n");
        let done = rollback_to_snapshot(p, now()).unwrap();
        assert_eq!(done.changes.len(), 4, "{:?}", done.changes);
        assert_eq!(fs::read_to_string(p.join(SETTINGS)).unwrap(), "{\"a\":1}\n");
        assert_eq!(
            fs::read_to_string(p.join(".claude/hooks/pre.sh")).unwrap(),
            "#!/bin/sh\nexit 0\n"
        );
        let mode = fs::metadata(p.join(".claude/hooks/pre.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o755);
        assert!(!p.join(".claude/hooks/new.sh").exists());
        assert!(p.join(".claude/skills/one/SKILL.md").exists());
        assert_eq!(
            fs::read_to_string(p.join(".claude/hooks/data/metrics.jsonl")).unwrap(),
            "{}\n{}\n"
        );
        let kept = done.replaced_dir.unwrap();
        assert_eq!(
            fs::read_to_string(kept.join(".claude/hooks/new.sh")).unwrap(),
            "new\n"
        );
        let again = plan_snapshot(p).unwrap();
        assert!(again.changes.is_empty(), "{:?}", again.changes);
    }

    #[test]
    fn corrupt_archive_is_refused_before_any_write() {
        let tmp = project();
        let p = tmp.path();
        start(p, now()).unwrap();
        put(p, SETTINGS, "{\"a\":2}\n");
        let archive = Paths::of_project(p).skills;
        let mut bytes = fs::read(&archive).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&archive, bytes).unwrap();
        let err = rollback_to_snapshot(p, now()).unwrap_err();
        assert!(matches!(err, DeployError::Corrupt(_)), "{err}");
        assert_eq!(fs::read_to_string(p.join(SETTINGS)).unwrap(), "{\"a\":2}\n");
    }

    #[test]
    fn archive_member_outside_the_tree_is_refused() {
        let mut walked = Walked::default();
        walked.files.push(WalkedFile {
            member: Member {
                path: ".claude/settings.local.json".into(),
                sha256: String::new(),
                size: 2,
                mode: 0o644,
            },
            bytes: b"{}".to_vec(),
            mtime: 0,
        });
        let bytes = archive_bytes(&walked).unwrap();
        let err = read_archive(&bytes, HOOKS, &mut Budget::default()).unwrap_err();
        assert!(matches!(err, DeployError::Corrupt(_)), "{err}");
    }

    #[test]
    fn a_second_rollback_at_once_is_busy() {
        let tmp = project();
        let p = tmp.path();
        start(p, now()).unwrap();
        let held = File::create(p.join(".deploy/rollback.lock")).unwrap();
        held.lock().unwrap();
        let err = rollback_to_snapshot(p, now()).unwrap_err();
        assert!(matches!(err, DeployError::Busy { .. }), "{err}");
        drop(held);
        rollback_to_snapshot(p, now()).unwrap();
    }

    #[test]
    fn an_automatic_rollback_is_logged_with_its_trigger() {
        let tmp = project();
        let p = tmp.path();
        start(p, now()).unwrap();
        put(p, SETTINGS, "{\"a\":3}\n");
        let trigger = Trigger::Automatic("error_rate 0.05 > 0.01\nsecond line".to_owned());
        let done = rollback_to_snapshot_for(p, &trigger, now()).unwrap();
        assert_eq!(done.files(), vec![SETTINGS.to_owned()]);
        let log = fs::read_to_string(Paths::of_project(p).rollback_log).unwrap();
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(
            log.contains("trigger=automatic (error_rate 0.05 > 0.01 second line) files=1"),
            "{log}"
        );
    }

    #[test]
    fn no_snapshot_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = rollback_to_snapshot(tmp.path(), now()).unwrap_err();
        assert!(matches!(err, DeployError::NoSnapshot { .. }), "{err}");
    }

    #[test]
    fn a_linked_hooks_dir_is_refused() {
        let tmp = project();
        let p = tmp.path();
        start(p, now()).unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::rename(p.join(".claude/skills"), outside.path().join("skills")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("skills"), p.join(".claude/skills"))
            .unwrap();
        fs::remove_file(outside.path().join("skills/one/SKILL.md")).unwrap();
        let err = rollback_to_snapshot(p, now()).unwrap_err();
        assert!(matches!(err, DeployError::Unsafe { .. }), "{err}");
        assert!(!outside.path().join("skills/one/SKILL.md").exists());
    }

    #[test]
    fn checks_read_the_metrics_tail() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::of_project(tmp.path());
        data.ensure().unwrap();
        let mut text = String::new();
        for i in 0..150 {
            let ms = if i < 50 { 900.0 } else { 50.0 };
            let _ = writeln!(text, "{{\"type\":\"hook_latency\",\"duration_ms\":{ms}}}");
        }
        text.push_str("{\"type\":\"error\",\"severity\":\"High\"}\n");
        text.push_str("{\"type\":\"tool_use\",\"token_consumption_initial\":41000}\n");
        text.push_str("{\"type\":\"tool_use\"}\n");
        fs::write(data.metrics(), text).unwrap();
        let checks = post_rollback_checks(tmp.path());
        let by = |n: &str| checks.checks.iter().find(|c| c.name == n).unwrap().clone();
        assert_eq!(by("initial_tokens").value, Some(41_000.0));
        assert_eq!(by("initial_tokens").status, CheckStatus::Fail);
        assert_eq!(by("errors_last_100").value, Some(1.0));
        assert_eq!(by("errors_last_100").status, CheckStatus::Ok);
        assert_eq!(by("hook_latency_avg_ms").value, Some(50.0));
        assert!(!checks.passed());
    }

    #[test]
    fn checks_without_metrics_have_no_data() {
        let tmp = tempfile::tempdir().unwrap();
        let checks = post_rollback_checks(tmp.path());
        assert!(checks.passed());
        assert_eq!(checks.checks[0].status, CheckStatus::NoData);
    }
}
