//! The guard's last line, which no command parser can dodge (a script written elsewhere and
//! then run): PreToolUse makes sure the accepted state of the protected files is current;
//! PostToolUse and PostToolUseFailure compare the files with it, and a file the call changed
//! is restored from its copy, its changed version kept aside, the repair audited and reported.
//!
//! **The accepted state** is `<data>/lkg/index.json`: per watched file its stat key (size,
//! mtime, ctime, inode), SHA-256 and mode — or that it did not exist — and a copy of its
//! bytes in `<data>/lkg/files/`. Checking it costs one small read and a `stat` per file; a file
//! is read only when its stat key changed, and then a mere touch (same hash) is not a change.
//!
//! **Who changed a file.** A change seen at PreToolUse happened between tool calls: a person
//! edited the file; it is accepted (copy refreshed, audited as the user's) — unless another
//! call of the session is still in flight, whose PostToolUse will judge it. A change seen at
//! PostToolUse happened during the call and is the agent's, except:
//! - files Claude Code rewrites by itself: `~/.claude.json` (only a change of its MCP servers
//!   is reported and audited; nothing is reverted) and an approval the client writes to
//!   `.claude/settings.local.json` (only permission rules added: audited, reported, kept);
//! - writes by ctxopt itself, which go through [`note_own_write`] and so are accepted before
//!   the call ends (`ctxopt install`, `restore-config`, `hooks disable`, …);
//! - a write the PreToolUse guard let through by a rule of its exception hook (the canary's
//!   transitions), listed in the call's in-flight marker.
//!
//! **What is watched.** Every protected config file of the project and the user (their
//! settings, `~/.claude.json`, `.mcp.json`, `ctxopt.json`, `canary.json`), the pre-commit hook
//! ctxopt installed, and every file under `.claude/hooks/` except ctxopt's data dir (at most
//! [`MAX_TREE_FILES`], copies up to [`MAX_COPY_BYTES`] each). Not watched: `.deploy/` and the
//! backup directory (ctxopt's own deploy, rollback and detached hourly backup write there
//! while a call may run; the PreToolUse path check guards them), and managed settings (the
//! administrator's).
//!
//! **In flight.** PreToolUse creates an empty marker `state/inflight-<session>.<id>.<tool>`
//! (or one listing the paths an exception allowed), PostToolUse removes it; ConfigChange
//! reads them to tell whether a change was made during a call.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::discover::Locations;
use crate::config::lastgood::{self, sha256_hex};
use crate::record::{self, Actor, AuditEntry, Text};
use crate::store::{self, DataDir, Durability, StoreError};

/// Files under `.claude/hooks/` watched at most; beyond, the rest are not watched.
pub const MAX_TREE_FILES: usize = 256;
/// Largest file a copy is kept of; a bigger one is watched, reported, not restored.
pub const MAX_COPY_BYTES: u64 = 1024 * 1024;
/// How deep below `.claude/hooks/` files are watched.
const MAX_TREE_DEPTH: usize = 6;
/// An in-flight marker older than this is stale (a call the user denied never ends).
pub const IN_FLIGHT_FOR: Duration = Duration::from_secs(15 * 60);
const INDEX_VERSION: u32 = 1;
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Tools that never change a file: no snapshot, no comparison.
const READ_ONLY_TOOLS: &[&str] = &[
    "Read",
    "Glob",
    "Grep",
    "LS",
    "NotebookRead",
    "WebFetch",
    "WebSearch",
    "TodoWrite",
    "TodoRead",
    "ToolSearch",
    "ExitPlanMode",
    "ListMcpResourcesTool",
    "ReadMcpResourceTool",
];

/// Whether a call of `tool` can change files, so that it is compared after it ran.
#[must_use]
pub fn can_change_files(tool: &str) -> bool {
    !READ_ONLY_TOOLS.contains(&tool)
}

/// How a watched path is treated when it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Restored from its copy.
    Restore,
    /// `.claude/settings.local.json`: an approval the client adds is kept; anything else is
    /// restored.
    LocalSettings,
    /// `~/.claude.json`: Claude Code's own state; a change of its MCP servers is reported and
    /// audited, nothing is reverted.
    ClientState,
}

/// One watched path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// The path.
    pub path: PathBuf,
    /// How a change is treated.
    pub role: Role,
}

/// What the guard watches in a project, for a user.
#[derive(Debug, Clone)]
pub struct Watch {
    files: Vec<Watched>,
    /// `.claude/hooks/`, whose files are watched, except `excluded` (the data dir).
    tree: PathBuf,
    excluded: PathBuf,
}

impl Watch {
    /// The watched set of `project` for the user at `locations`.
    #[must_use]
    pub fn for_project(project: &Path, locations: &Locations) -> Self {
        let claude = project.join(".claude");
        let file = |path: PathBuf, role| Watched { path, role };
        let mut files = vec![
            file(claude.join("settings.json"), Role::Restore),
            file(claude.join("settings.local.json"), Role::LocalSettings),
            file(project.join(".mcp.json"), Role::Restore),
            file(claude.join("ctxopt.json"), Role::Restore),
            file(claude.join("canary.json"), Role::Restore),
            file(project.join(".git/hooks/pre-commit"), Role::Restore),
            file(locations.config_dir().join("settings.json"), Role::Restore),
            file(locations.home.join(".claude/settings.json"), Role::Restore),
            file(locations.claude_json(), Role::ClientState),
            file(locations.home.join(".claude.json"), Role::ClientState),
        ];
        let mut seen = std::collections::HashSet::new();
        files.retain(|w| seen.insert(w.path.clone()));
        Self {
            files,
            tree: claude.join("hooks"),
            excluded: DataDir::of_project(project).root().to_path_buf(),
        }
    }

    /// The role of `path`, when it is watched.
    #[must_use]
    pub fn role_of(&self, path: &Path) -> Option<Role> {
        self.files
            .iter()
            .find(|w| w.path == path)
            .map(|w| w.role)
            .or_else(|| {
                (path.starts_with(&self.tree) && !path.starts_with(&self.excluded))
                    .then_some(Role::Restore)
            })
    }

    /// Every watched path as it is now, with its stat (`None`: absent). Files of the tree
    /// that the index knows but that are gone are included as absent.
    fn scan(&self, index: &Index) -> BTreeMap<PathBuf, (Role, Option<Stat>)> {
        let mut out = BTreeMap::new();
        for w in &self.files {
            out.insert(w.path.clone(), (w.role, Stat::of(&w.path)));
        }
        let mut budget = MAX_TREE_FILES;
        walk(
            &self.tree,
            &self.excluded,
            0,
            &mut budget,
            &mut |path, meta| {
                out.insert(path, (Role::Restore, Some(Stat::from_meta(meta))));
            },
        );
        for known in index.files.keys() {
            let path = PathBuf::from(known);
            if path.starts_with(&self.tree) && !path.starts_with(&self.excluded) {
                out.entry(path).or_insert((Role::Restore, None));
            }
        }
        out
    }
}

impl Watch {
    /// The watched set's stats as they are now ([`Scan`]): taken once per PreToolUse, shared
    /// by the path guard ([`Scan::lstats`]) and [`before_call`].
    #[must_use]
    pub fn scan_now(&self) -> Scan {
        Scan(self.quick_scan())
    }

    /// The stats of the watched set as it is now, without the index: the fixed files and the
    /// tree's files (a deleted tree file is simply missing, which changes the fingerprint).
    fn quick_scan(&self) -> Vec<(PathBuf, Option<Stat>)> {
        let mut out: Vec<(PathBuf, Option<Stat>)> = self
            .files
            .iter()
            .map(|w| (w.path.clone(), Stat::of(&w.path)))
            .collect();
        let mut budget = MAX_TREE_FILES;
        walk(
            &self.tree,
            &self.excluded,
            0,
            &mut budget,
            &mut |path, meta| {
                out.push((path, Some(Stat::from_meta(meta))));
            },
        );
        out
    }
}

/// The `lstat`s of the watched set at one moment ([`Watch::scan_now`]).
#[derive(Debug, Clone)]
pub struct Scan(Vec<(PathBuf, Option<Stat>)>);

impl Scan {
    /// Each watched path and whether it may be a symlink (present, neither a directory nor a
    /// regular file); an absent path is not one.
    pub fn lstats(&self) -> impl Iterator<Item = (&Path, bool)> {
        self.0
            .iter()
            .map(|(path, stat)| (path.as_path(), stat.is_some_and(|s| !s.dir && !s.regular)))
    }
}

/// One line standing for the stats of the whole watched set; `None` when a file was modified
/// so recently that its stat cannot be trusted (then the full comparison runs).
fn fingerprint(scan: &[(PathBuf, Option<Stat>)]) -> Option<String> {
    let mut out = String::with_capacity(scan.len() * 48);
    for (path, stat) in scan {
        match stat {
            Some(s) if s.racy() => return None,
            Some(s) => {
                let _ = write!(
                    out,
                    "{}:{}.{}.{}.{}.{:o};",
                    path.as_os_str().len(),
                    s.ino,
                    s.size,
                    s.mtime_ns,
                    s.ctime_ns,
                    s.mode
                );
            }
            None => {
                let _ = write!(out, "{}:-;", path.as_os_str().len());
            }
        }
    }
    Some(out)
}

fn fingerprint_path(data: &DataDir) -> PathBuf {
    lkg_dir(data).join("fingerprint")
}

/// Whether the watched set is exactly as it was when the accepted state was last reconciled
/// with the files: one small read and a `stat` per file, no index parse.
fn unchanged(data: &DataDir, watch: &Watch, scan: Option<&Scan>) -> bool {
    let fresh;
    let scan = if let Some(scan) = scan {
        &scan.0
    } else {
        fresh = watch.quick_scan();
        &fresh
    };
    let Some(now) = fingerprint(scan) else {
        return false;
    };
    crate::fsx::read(&fingerprint_path(data)).is_ok_and(|stored| stored == now.as_bytes())
}

/// Records the fingerprint of the watched set as it is now (after the index was saved).
fn save_fingerprint(data: &DataDir, watch: &Watch) -> Result<(), StoreError> {
    match fingerprint(&watch.quick_scan()) {
        // Unchanged: no rewrite (replacing a file by rename costs ext4 a flush and an evict,
        // ≈ 0.2 ms on the benchmark machine).
        Some(now)
            if crate::fsx::read(&fingerprint_path(data)).is_ok_and(|old| old == now.as_bytes()) =>
        {
            Ok(())
        }
        Some(now) => store::write_atomic(
            &fingerprint_path(data),
            now.as_bytes(),
            store::FILE_MODE,
            Durability::NoFsync,
        ),
        None => match fs::remove_file(fingerprint_path(data)) {
            Err(err) if err.kind() != ErrorKind::NotFound => {
                Err(StoreError::new("remove", &fingerprint_path(data), err))
            }
            _ => Ok(()),
        },
    }
}

fn walk(
    dir: &Path,
    excluded: &Path,
    depth: usize,
    budget: &mut usize,
    found: &mut dyn FnMut(PathBuf, &fs::Metadata),
) {
    if depth > MAX_TREE_DEPTH || dir.starts_with(excluded) {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if *budget == 0 {
            return;
        }
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, excluded, depth + 1, budget, found);
        } else if !path.starts_with(excluded) {
            *budget -= 1;
            found(path, &meta);
        }
    }
}

/// What a `stat` says of a file, enough to notice any write (a rename changes the inode, an
/// in-place write the ctime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stat {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    mode: u32,
    #[serde(default)]
    dir: bool,
    /// A regular file (only those are read: a FIFO would block).
    #[serde(default)]
    regular: bool,
}

impl Stat {
    fn of(path: &Path) -> Option<Self> {
        fs::symlink_metadata(path).ok().map(|m| Self::from_meta(&m))
    }

    fn from_meta(meta: &fs::Metadata) -> Self {
        Self {
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            ino: meta.ino(),
            mode: meta.mode() & 0o7777,
            dir: meta.is_dir(),
            regular: meta.is_file(),
        }
    }

    /// Whether the file was modified so recently that a second write within the same
    /// timestamp tick could leave this key unchanged ("racy clean").
    fn racy(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        now.saturating_sub(self.mtime_ns.max(self.ctime_ns)) < 2_000_000_000
    }
}

/// The accepted state of one watched path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Known {
    /// `None`: the path did not exist.
    stat: Option<Stat>,
    /// Hash of the accepted bytes (files only).
    sha256: Option<String>,
    /// The copy's file name under `lkg/files/`, when one is kept.
    copy: Option<String>,
    /// For `~/.claude.json`: the digest of its MCP servers.
    #[serde(default)]
    watched: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    version: u32,
    files: BTreeMap<String, Known>,
}

fn lkg_dir(data: &DataDir) -> PathBuf {
    data.root().join("lkg")
}

fn index_path(data: &DataDir) -> PathBuf {
    lkg_dir(data).join("index.json")
}

fn copy_name(path: &Path) -> String {
    let hash = sha256_hex(path.as_os_str().as_encoded_bytes());
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    format!("{}-{name}", &hash[..16])
}

fn load(data: &DataDir) -> Option<Index> {
    let bytes = fs::read(index_path(data)).ok()?;
    serde_json::from_slice::<Index>(&bytes)
        .ok()
        .filter(|i| i.version == INDEX_VERSION)
}

fn save(data: &DataDir, index: &Index) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(index).unwrap_or_default();
    store::write_atomic(
        &index_path(data),
        &bytes,
        store::FILE_MODE,
        Durability::NoFsync,
    )
}

/// An exclusive lock on `lkg/`, held while the index is read, changed and written.
fn lock(data: &DataDir) -> Result<File, StoreError> {
    let dir = lkg_dir(data);
    store::ensure_dir(&dir)?;
    let file = File::open(&dir).map_err(|err| StoreError::new("open", &dir, err))?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::new(
                    "lock",
                    &dir,
                    io::Error::new(ErrorKind::TimedOut, "held by another ctxopt process"),
                ));
            }
            Err(fs::TryLockError::Error(err)) => return Err(StoreError::new("lock", &dir, err)),
        }
    }
}

/// What a path holds now, read when its stat changed.
struct Now {
    stat: Option<Stat>,
    bytes: Option<Vec<u8>>,
    sha256: Option<String>,
}

fn read_now(path: &Path, role: Role, stat: Option<Stat>) -> Now {
    let readable =
        stat.is_some_and(|s| s.regular && (role == Role::ClientState || s.size <= MAX_COPY_BYTES));
    let bytes = if readable { fs::read(path).ok() } else { None };
    let sha256 = bytes.as_deref().map(sha256_hex);
    Now {
        stat,
        bytes,
        sha256,
    }
}

/// Whether `now` differs from `known` in content (not merely in its stat).
fn differs(known: &Known, now: &Now) -> bool {
    match (&known.stat, &now.stat) {
        (None, None) => false,
        (None, Some(_)) | (Some(_), None) => true,
        (Some(k), Some(n)) if k.dir || n.dir => {
            k.dir != n.dir || k.mtime_ns != n.mtime_ns || k.ino != n.ino
        }
        (Some(_), Some(_)) => match (&known.sha256, &now.sha256) {
            (Some(a), Some(b)) => a != b,
            // Too big to read: the stat decides.
            _ => known.stat != now.stat,
        },
    }
}

/// Whether the stat alone says `path` may have changed since `known`.
fn stat_changed(known: Option<&Known>, stat: Option<&Stat>) -> bool {
    match known {
        None => true,
        Some(k) => k.stat.as_ref() != stat || stat.is_some_and(Stat::racy),
    }
}

/// The watched paths whose stat says they may differ from the accepted state.
fn candidates(watch: &Watch, index: &Index) -> Vec<(PathBuf, Role)> {
    watch
        .scan(index)
        .into_iter()
        .filter(|(path, (_, stat))| {
            stat_changed(index.files.get(&*path.to_string_lossy()), stat.as_ref())
        })
        .map(|(path, (role, _))| (path, role))
        .collect()
}

/// The accepted state for what a path holds now, writing the copy when one is kept.
fn accepted(data: &DataDir, path: &Path, role: Role, now: &Now) -> Result<Known, StoreError> {
    let mut copy = None;
    if let (Some(bytes), Role::Restore | Role::LocalSettings) = (&now.bytes, role) {
        let name = copy_name(path);
        let files = lkg_dir(data).join("files");
        store::ensure_dir(&files)?;
        store::write_atomic(
            &files.join(&name),
            bytes,
            store::FILE_MODE,
            Durability::NoFsync,
        )?;
        copy = Some(name);
    }
    Ok(Known {
        stat: now.stat,
        sha256: now.sha256.clone(),
        copy,
        watched: (role == Role::ClientState)
            .then(|| now.bytes.as_deref().and_then(lastgood::claude_json_digest))
            .flatten(),
    })
}

/// A change the guard saw, and what it did about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The path.
    pub path: PathBuf,
    /// What happened and what ctxopt did.
    pub kind: ChangeKind,
    /// Hash before and after the change (before ctxopt's repair).
    pub sha256_before: Option<String>,
    /// Hash of the changed version.
    pub sha256_changed: Option<String>,
    /// Where the changed version was kept, when it was moved aside.
    pub quarantined: Option<PathBuf>,
}

/// What kind of change, and the guard's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// Changed, restored from the copy.
    Restored,
    /// Deleted, restored from the copy.
    Recreated,
    /// Created where nothing was: moved into the quarantine.
    Removed,
    /// Changed, but no copy to restore from (too big, or lost): reported only.
    Unrepairable(String),
    /// Claude Code's own write: kept, reported.
    ClientWrite(String),
    /// Allowed by an exception rule at PreToolUse: kept.
    Allowed,
}

/// The outcome of a comparison after a call.
#[derive(Debug, Default)]
pub struct Repair {
    /// What changed during the call.
    pub changes: Vec<Change>,
    /// What failed on the way (recorded as faults; the rest still ran).
    pub errors: Vec<StoreError>,
}

/// The call a check is about.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The session.
    pub session_id: &'a str,
    /// The call's id (`""` when the client gave none).
    pub tool_use_id: &'a str,
    /// The tool.
    pub tool_name: &'a str,
}

fn marker_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect()
}

fn marker(data: &DataDir, call: Call<'_>) -> PathBuf {
    data.state_dir().join(format!(
        "inflight-{}.{}.{}",
        marker_part(call.session_id),
        marker_part(call.tool_use_id),
        marker_part(call.tool_name)
    ))
}

/// The calls of `session` in flight now (markers younger than [`IN_FLIGHT_FOR`]), as
/// (`tool_use_id`, tool name), `except` the given call.
#[must_use]
pub fn in_flight(data: &DataDir, session_id: &str, except: Option<&str>) -> Vec<(String, String)> {
    let prefix = format!("inflight-{}.", marker_part(session_id));
    let except = except.map(marker_part);
    let Ok(entries) = fs::read_dir(data.state_dir()) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix(&prefix)?;
            let (id, tool) = rest.split_once('.')?;
            if except.as_deref() == Some(id) {
                return None;
            }
            let age = entry
                .metadata()
                .ok()?
                .modified()
                .ok()?
                .elapsed()
                .unwrap_or_default();
            (age < IN_FLIGHT_FOR).then(|| (id.to_owned(), tool.to_owned()))
        })
        .collect()
}

/// PreToolUse, for a call that can change files: accepts what a person changed since the
/// last call (when no other call of the session is in flight), then marks the call in flight,
/// listing the paths an exception rule allowed it to write. Returns the audit lines of what
/// was accepted; the caller appends them.
pub fn before_call(
    data: &DataDir,
    watch: &Watch,
    call: Call<'_>,
    allowed: &[PathBuf],
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    before_call_scanned(data, watch, None, call, allowed, now)
}

/// [`before_call`] with the watched set's stats already taken this run ([`Watch::scan_now`]).
pub fn before_call_scanned(
    data: &DataDir,
    watch: &Watch,
    scan: Option<&Scan>,
    call: Call<'_>,
    allowed: &[PathBuf],
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let mut audit = String::new();
    if !unchanged(data, watch, scan)
        && in_flight(data, call.session_id, Some(call.tool_use_id)).is_empty()
    {
        audit = accept_changes(data, watch, Some(call.session_id), now, true)?;
    }
    let path = marker(data, call);
    if allowed.is_empty() {
        let create = || {
            fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(store::FILE_MODE)
                .open(&path)
        };
        // The state dir exists after the first call of a session: create it only when missing.
        match create() {
            Err(err) if err.kind() == ErrorKind::NotFound => {
                store::ensure_dir(&data.state_dir())?;
                create()
            }
            other => other,
        }
        .map_err(|err| StoreError::new("create", &path, err))?;
    } else {
        store::ensure_dir(&data.state_dir())?;
        let list: Vec<String> = allowed
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let bytes = serde_json::to_vec(&list).unwrap_or_default();
        store::write_atomic(&path, &bytes, store::FILE_MODE, Durability::NoFsync)?;
    }
    Ok(audit)
}

/// Makes the accepted state match the files as they are now, without reverting anything
/// (SessionStart, and PreToolUse between calls). With `audit`, every change of a file the
/// index knew becomes an `accept` entry (actor `user`); returns those lines.
pub fn accept_changes(
    data: &DataDir,
    watch: &Watch,
    session_id: Option<&str>,
    now: DateTime<Utc>,
    audit: bool,
) -> Result<String, StoreError> {
    let index = load(data);
    let fresh = index.is_none();
    let index = index.unwrap_or_default();
    let candidates = candidates(watch, &index);
    if candidates.is_empty() && !fresh {
        save_fingerprint(data, watch)?;
        return Ok(String::new());
    }
    let _lock = lock(data)?;
    let mut index = load(data).unwrap_or(Index {
        version: INDEX_VERSION,
        files: BTreeMap::new(),
    });
    let mut lines = String::new();
    let mut dirty = fresh;
    for (path, role) in candidates {
        let key = path.to_string_lossy().into_owned();
        let current = read_now(&path, role, Stat::of(&path));
        let known = index.files.get(&key);
        let changed = known.is_some_and(|k| differs(k, &current));
        if known.is_some_and(|k| !changed && k.stat == current.stat) {
            continue;
        }
        if changed && audit && role != Role::ClientState {
            lines.push_str(
                &AuditEntry {
                    actor: Actor::User,
                    action: String::from("accept"),
                    path: key.clone(),
                    sha256_before: known.and_then(|k| k.sha256.clone()),
                    sha256_after: current.sha256.clone(),
                    session_id: session_id.map(ToOwned::to_owned),
                    tool: None,
                    detail: Some(Text::new(
                        "changed outside the agent's tool calls; accepted as a person's change",
                        record::MAX_MESSAGE_CHARS,
                    )),
                }
                .line(now),
            );
        }
        let mut entry = accepted(data, &path, role, &current)?;
        if !changed && let Some(k) = known {
            entry.copy = entry.copy.or_else(|| k.copy.clone());
        }
        index.files.insert(key, entry);
        dirty = true;
    }
    if dirty {
        index.version = INDEX_VERSION;
        save(data, &index)?;
    }
    save_fingerprint(data, watch)?;
    Ok(lines)
}

/// Records that ctxopt itself just wrote (or removed) `path`, so that the guard never undoes
/// it: its accepted state and copy become what is there now. Called by
/// [`lastgood::note_own_write`], through which every write of ctxopt to a config file goes,
/// and by `ctxopt hooks disable|enable` for the scripts it renames.
pub fn note_own_write(data: &DataDir, path: &Path) -> Result<(), StoreError> {
    if !data.root().exists() {
        return Ok(());
    }
    let _lock = lock(data)?;
    let mut index = load(data).unwrap_or(Index {
        version: INDEX_VERSION,
        files: BTreeMap::new(),
    });
    let role = if path.file_name().is_some_and(|n| n == ".claude.json") {
        Role::ClientState
    } else {
        Role::Restore
    };
    let current = read_now(path, role, Stat::of(path));
    let entry = accepted(data, path, role, &current)?;
    index
        .files
        .insert(path.to_string_lossy().into_owned(), entry);
    save(data, &index)
}

/// PostToolUse / PostToolUseFailure: compares the watched files with the accepted state and
/// repairs what the call changed. Removes the call's in-flight marker.
/// `enforce` is asked only when something changed: `false` (`guard.mode = "warn"`) reports
/// and audits a change without restoring it.
pub fn after_call(
    data: &DataDir,
    watch: &Watch,
    call: Call<'_>,
    now: DateTime<Utc>,
    enforce: &dyn Fn() -> bool,
) -> Repair {
    let mut repair = Repair::default();
    let marker = marker(data, call);
    if unchanged(data, watch, None) {
        let _ = fs::remove_file(&marker);
        return repair;
    }
    let allowed: Vec<PathBuf> = fs::read(&marker)
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<String>>(&b).ok())
        .unwrap_or_default()
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let Some(index) = load(data) else {
        let _ = fs::remove_file(&marker);
        return repair;
    };
    let candidates = candidates(watch, &index);
    if !candidates.is_empty()
        && let Err(err) = repair_all(data, &candidates, &allowed, call, now, enforce, &mut repair)
    {
        repair.errors.push(err);
    }
    if let Err(err) = save_fingerprint(data, watch) {
        repair.errors.push(err);
    }
    let _ = fs::remove_file(&marker);
    repair
}

fn repair_all(
    data: &DataDir,
    candidates: &[(PathBuf, Role)],
    allowed: &[PathBuf],
    call: Call<'_>,
    now: DateTime<Utc>,
    enforce: &dyn Fn() -> bool,
    repair: &mut Repair,
) -> Result<(), StoreError> {
    let _lock = lock(data)?;
    let mut index = load(data).unwrap_or_default();
    let mut lines = String::new();
    let mut dirty = false;
    for (path, role) in candidates {
        let key = path.to_string_lossy().into_owned();
        let current = read_now(path, *role, Stat::of(path));
        // A path the index does not know did not exist when the state was accepted: every
        // watched file is recorded, present or absent, and the tree is listed whole.
        let known = index.files.get(&key).cloned().unwrap_or(Known {
            stat: None,
            sha256: None,
            copy: None,
            watched: None,
        });
        if !differs(&known, &current) {
            if known.stat != current.stat {
                let mut entry = known.clone();
                entry.stat = current.stat;
                index.files.insert(key, entry);
                dirty = true;
            }
            continue;
        }
        let change = match judge(
            data, path, *role, &known, &current, allowed, call, now, enforce,
        ) {
            Ok(change) => change,
            Err(err) => {
                repair.errors.push(err);
                continue;
            }
        };
        let Some(change) = change else {
            // Claude Code's routine rewrite of ~/.claude.json: nothing to report.
            let entry = accepted(data, path, *role, &current)?;
            index.files.insert(key, entry);
            dirty = true;
            continue;
        };
        lines.push_str(&audit_line(path, &change, &known, &current, call).line(now));
        let after = read_now(path, *role, Stat::of(path));
        let mut entry = match change.kind {
            ChangeKind::Restored | ChangeKind::Recreated | ChangeKind::Removed => Known {
                stat: after.stat,
                ..known.clone()
            },
            _ => accepted(data, path, *role, &after)?,
        };
        if entry.copy.is_none() {
            entry.copy.clone_from(&known.copy);
        }
        index.files.insert(key, entry);
        dirty = true;
        repair.changes.push(change);
    }
    if dirty {
        index.version = INDEX_VERSION;
        save(data, &index)?;
    }
    if !lines.is_empty() {
        store::append(&data.audit_log(), lines.as_bytes())?;
    }
    Ok(())
}

fn audit_line(
    path: &Path,
    change: &Change,
    known: &Known,
    now: &Now,
    call: Call<'_>,
) -> AuditEntry {
    let (actor, action, after) = match &change.kind {
        ChangeKind::Restored | ChangeKind::Recreated | ChangeKind::Removed => {
            (Actor::Agent, "repair", known.sha256.clone())
        }
        ChangeKind::Unrepairable(_) => (Actor::Agent, "changed", now.sha256.clone()),
        ChangeKind::ClientWrite(_) => (Actor::User, "client-write", now.sha256.clone()),
        ChangeKind::Allowed => (Actor::Agent, "change", now.sha256.clone()),
    };
    let mut detail = format!(
        "changed during {} call {}",
        call.tool_name, call.tool_use_id
    );
    match &change.kind {
        ChangeKind::Restored | ChangeKind::Recreated => detail.push_str("; restored"),
        ChangeKind::Removed => detail.push_str("; created in a protected place, removed"),
        ChangeKind::Unrepairable(why) => {
            detail.push_str("; not restored: ");
            detail.push_str(why);
        }
        ChangeKind::ClientWrite(what) => {
            detail = format!(
                "{what} (Claude Code's own write during {} call {}); kept",
                call.tool_name, call.tool_use_id
            );
        }
        ChangeKind::Allowed => detail.push_str("; allowed by the exception rule at PreToolUse"),
    }
    if let Some(q) = &change.quarantined {
        let _ = write!(detail, "; the changed version is kept as {}", q.display());
    }
    let (before, after) = match change.kind {
        ChangeKind::Restored | ChangeKind::Recreated | ChangeKind::Removed => {
            (now.sha256.clone(), after)
        }
        _ => (known.sha256.clone(), after),
    };
    AuditEntry {
        actor,
        action: action.to_owned(),
        path: path.to_string_lossy().into_owned(),
        sha256_before: before,
        sha256_after: after,
        session_id: Some(call.session_id.to_owned()),
        tool: Some(call.tool_name.to_owned()),
        detail: Some(Text::new(&detail, record::MAX_MESSAGE_CHARS)),
    }
}

/// Decides one changed path and repairs it. `Ok(None)`: a change not worth a word.
#[expect(clippy::too_many_arguments, reason = "internal, one call site")]
fn judge(
    data: &DataDir,
    path: &Path,
    role: Role,
    known: &Known,
    current: &Now,
    allowed: &[PathBuf],
    call: Call<'_>,
    now: DateTime<Utc>,
    enforce: &dyn Fn() -> bool,
) -> Result<Option<Change>, StoreError> {
    let change = |kind, quarantined| Change {
        path: path.to_path_buf(),
        kind,
        sha256_before: known.sha256.clone(),
        sha256_changed: current.sha256.clone(),
        quarantined,
    };
    if allowed.iter().any(|a| a == path) {
        return Ok(Some(change(ChangeKind::Allowed, None)));
    }
    match role {
        Role::ClientState => {
            let digest = current
                .bytes
                .as_deref()
                .and_then(lastgood::claude_json_digest);
            if digest == known.watched {
                return Ok(None);
            }
            return Ok(Some(change(
                ChangeKind::ClientWrite(String::from("the MCP servers changed")),
                None,
            )));
        }
        Role::LocalSettings => {
            let before = known
                .copy
                .as_ref()
                .and_then(|c| fs::read(lkg_dir(data).join("files").join(c)).ok());
            if let (Some(before), Some(after)) = (before.as_deref(), current.bytes.as_deref())
                && let Some(added) = approval_only(before, after)
            {
                return Ok(Some(change(
                    ChangeKind::ClientWrite(format!(
                        "Claude Code added the permission rule{} {}",
                        if added.len() == 1 { "" } else { "s" },
                        added.join(", ")
                    )),
                    None,
                )));
            }
        }
        Role::Restore => {}
    }
    if !enforce() {
        return Ok(Some(change(
            ChangeKind::Unrepairable(String::from(
                "`guard.mode` is `warn` in .claude/ctxopt.json: reported, not restored",
            )),
            None,
        )));
    }
    let stamp = now.format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let quarantine = data
        .root()
        .join("quarantine")
        .join(format!("{stamp}-{}", marker_part(call.tool_use_id)))
        .join(path.strip_prefix("/").unwrap_or(path));
    match (&known.stat, &current.stat) {
        (None, Some(_)) => {
            store::ensure_dir(quarantine.parent().unwrap_or(&quarantine))?;
            move_aside(path, &quarantine)?;
            Ok(Some(change(ChangeKind::Removed, Some(quarantine))))
        }
        (Some(stat), now_stat) => {
            let Some(good) = known
                .copy
                .as_ref()
                .and_then(|c| fs::read(lkg_dir(data).join("files").join(c)).ok())
                .filter(|b| known.sha256.as_deref() == Some(sha256_hex(b).as_str()))
            else {
                return Ok(Some(change(
                    ChangeKind::Unrepairable(format!(
                        "no copy of it is kept (larger than {} KiB, or lost)",
                        MAX_COPY_BYTES / 1024
                    )),
                    None,
                )));
            };
            let mut kept = None;
            if now_stat.is_some() {
                store::ensure_dir(quarantine.parent().unwrap_or(&quarantine))?;
                move_aside(path, &quarantine)?;
                kept = Some(quarantine);
            }
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|err| StoreError::new("create", parent, err))?;
            }
            store::write_atomic(path, &good, stat.mode, Durability::Fsync)?;
            let kind = if now_stat.is_some() {
                ChangeKind::Restored
            } else {
                ChangeKind::Recreated
            };
            Ok(Some(change(kind, kept)))
        }
        (None, None) => Ok(None),
    }
}

/// Moves the agent's version of `path` into the quarantine (a copy when the quarantine is on
/// another file system), keeping its bytes.
fn move_aside(path: &Path, to: &Path) -> Result<(), StoreError> {
    if fs::rename(path, to).is_ok() {
        return Ok(());
    }
    let bytes = fs::read(path).map_err(|err| StoreError::new("read", path, err))?;
    store::write_atomic(to, &bytes, store::FILE_MODE, Durability::Fsync)?;
    fs::remove_file(path).map_err(|err| StoreError::new("remove", path, err))
}

/// When `after` differs from `before` only by permission rules added to `permissions.allow`
/// (what Claude Code writes when a person approves a call with "always allow"), the rules
/// added; else `None`.
fn approval_only(before: &[u8], after: &[u8]) -> Option<Vec<String>> {
    let mut before: Value = serde_json::from_slice(before).ok()?;
    let mut after: Value = serde_json::from_slice(after).ok()?;
    let rules = |v: &mut Value| -> Vec<Value> {
        v.get_mut("permissions")
            .and_then(|p| p.as_object_mut())
            .and_then(|p| p.remove("allow"))
            .and_then(|a| a.as_array().cloned())
            .unwrap_or_default()
    };
    let (old, new) = (rules(&mut before), rules(&mut after));
    let prune = |v: &mut Value| {
        if let Some(o) = v.as_object_mut()
            && o.get("permissions")
                .and_then(Value::as_object)
                .is_some_and(serde_json::Map::is_empty)
        {
            o.remove("permissions");
        }
    };
    prune(&mut before);
    prune(&mut after);
    if before != after || !old.iter().all(|r| new.contains(r)) {
        return None;
    }
    let added: Vec<String> = new
        .iter()
        .filter(|r| !old.contains(r))
        .map(|r| r.as_str().map_or_else(|| r.to_string(), ToOwned::to_owned))
        .collect();
    (!added.is_empty()).then_some(added)
}

/// The bytes of the accepted copy of `path`, when one is kept (ConfigChange compares with it).
#[must_use]
pub fn accepted_sha256(data: &DataDir, path: &Path) -> Option<String> {
    load(data)?
        .files
        .get(&*path.to_string_lossy())?
        .sha256
        .clone()
}

/// Whether the index knows `path` was changed by Claude Code itself in a way it keeps: an
/// approval-only edit of `settings.local.json`, or any rewrite of `~/.claude.json`.
#[must_use]
pub fn is_client_write(data: &DataDir, watch: &Watch, path: &Path) -> bool {
    match watch.role_of(path) {
        Some(Role::ClientState) => true,
        Some(Role::LocalSettings) => {
            let before = load(data)
                .and_then(|i| {
                    i.files
                        .get(&*path.to_string_lossy())
                        .and_then(|k| k.copy.clone())
                })
                .and_then(|c| fs::read(lkg_dir(data).join("files").join(c)).ok());
            match (before, fs::read(path).ok()) {
                (Some(b), Some(a)) => approval_only(&b, &a).is_some(),
                _ => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_only_sees_added_allow_rules_and_nothing_else() {
        let before = br#"{"permissions":{"allow":["Read"]},"model":"opus"}"#;
        assert_eq!(
            approval_only(
                before,
                br#"{"model":"opus","permissions":{"allow":["Read","Bash(ls:*)"]}}"#
            ),
            Some(vec![String::from("Bash(ls:*)")])
        );
        assert_eq!(
            approval_only(before, br#"{"permissions":{"allow":["Read","X"],"defaultMode":"bypassPermissions"},"model":"opus"}"#),
            None
        );
        assert_eq!(
            approval_only(before, br#"{"permissions":{"allow":[]},"model":"opus"}"#),
            None
        );
        assert_eq!(approval_only(before, before), None);
        assert_eq!(
            approval_only(b"{}", br#"{"permissions":{"allow":["Y"]}}"#),
            Some(vec![String::from("Y")])
        );
    }

    fn setup() -> (tempfile::TempDir, PathBuf, DataDir, Watch) {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("p");
        fs::create_dir_all(project.join(".claude")).unwrap();
        let data = DataDir::of_project(&project);
        data.ensure().unwrap();
        let watch = Watch::for_project(&project, &Locations::empty_under(dir.path()));
        (dir, project, data, watch)
    }

    const CALL: Call<'static> = Call {
        session_id: "s1",
        tool_use_id: "toolu_1",
        tool_name: "Write",
    };

    #[test]
    fn a_write_an_exception_allowed_is_kept_and_audited_with_both_hashes() {
        let (_dir, project, data, watch) = setup();
        let canary = project.join(".claude/canary.json");
        fs::write(&canary, "{\"percentage\": 0}").unwrap();
        accept_changes(&data, &watch, None, Utc::now(), false).unwrap();
        before_call(
            &data,
            &watch,
            CALL,
            std::slice::from_ref(&canary),
            Utc::now(),
        )
        .unwrap();
        fs::write(&canary, "{\"percentage\": 10}").unwrap();
        let repair = after_call(&data, &watch, CALL, Utc::now(), &|| true);
        assert_eq!(repair.changes.len(), 1, "{repair:?}");
        assert_eq!(repair.changes[0].kind, ChangeKind::Allowed);
        assert_eq!(fs::read_to_string(&canary).unwrap(), "{\"percentage\": 10}");
        let audit: serde_json::Value =
            serde_json::from_str(fs::read_to_string(data.audit_log()).unwrap().trim()).unwrap();
        assert_eq!(audit["action"], "change");
        assert_eq!(audit["sha256_before"], sha256_hex(b"{\"percentage\": 0}"));
        assert_eq!(audit["sha256_after"], sha256_hex(b"{\"percentage\": 10}"));
        // Accepted: the next call does not see it again.
        before_call(&data, &watch, CALL, &[], Utc::now()).unwrap();
        assert!(
            after_call(&data, &watch, CALL, Utc::now(), &|| true)
                .changes
                .is_empty()
        );
    }

    #[test]
    fn warn_mode_reports_a_change_without_restoring_it() {
        let (_dir, project, data, watch) = setup();
        let settings = project.join(".claude/settings.json");
        fs::write(&settings, "{}").unwrap();
        accept_changes(&data, &watch, None, Utc::now(), false).unwrap();
        before_call(&data, &watch, CALL, &[], Utc::now()).unwrap();
        fs::write(&settings, "{\"x\": 1}").unwrap();
        let repair = after_call(&data, &watch, CALL, Utc::now(), &|| false);
        assert!(
            matches!(&repair.changes[0].kind, ChangeKind::Unrepairable(why) if why.contains("warn")),
            "{repair:?}"
        );
        assert_eq!(fs::read_to_string(&settings).unwrap(), "{\"x\": 1}");
    }

    #[test]
    fn a_touch_is_not_a_change_and_a_person_between_calls_is_accepted() {
        let (_dir, project, data, watch) = setup();
        let settings = project.join(".claude/settings.json");
        fs::write(&settings, "{}").unwrap();
        accept_changes(&data, &watch, None, Utc::now(), false).unwrap();
        // Same bytes, new inode and times.
        fs::remove_file(&settings).unwrap();
        fs::write(&settings, "{}").unwrap();
        before_call(&data, &watch, CALL, &[], Utc::now()).unwrap();
        assert!(
            after_call(&data, &watch, CALL, Utc::now(), &|| true)
                .changes
                .is_empty()
        );
        assert!(!data.audit_log().exists(), "a touch is not audited");
        // A person's edit between calls is accepted at the next PreToolUse, and audited.
        fs::write(&settings, "{\"model\": \"opus\"}").unwrap();
        let audit = before_call(&data, &watch, CALL, &[], Utc::now()).unwrap();
        assert!(audit.contains("\"action\":\"accept\""), "{audit}");
        assert!(
            after_call(&data, &watch, CALL, Utc::now(), &|| true)
                .changes
                .is_empty()
        );
        assert_eq!(
            fs::read_to_string(&settings).unwrap(),
            "{\"model\": \"opus\"}"
        );
        // But not while another call of the session is in flight: that call's end judges it.
        let other = Call {
            tool_use_id: "toolu_2",
            ..CALL
        };
        before_call(&data, &watch, other, &[], Utc::now()).unwrap();
        fs::write(&settings, "{\"model\": \"evil\"}").unwrap();
        let audit = before_call(&data, &watch, CALL, &[], Utc::now()).unwrap();
        assert!(audit.is_empty(), "{audit}");
        let repair = after_call(&data, &watch, other, Utc::now(), &|| true);
        assert_eq!(repair.changes.len(), 1, "{repair:?}");
        assert_eq!(
            fs::read_to_string(&settings).unwrap(),
            "{\"model\": \"opus\"}"
        );
    }

    #[test]
    fn markers_are_per_session_and_skip_the_given_call() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::of_project(dir.path());
        data.ensure().unwrap();
        let call = Call {
            session_id: "s/1",
            tool_use_id: "toolu_1",
            tool_name: "Bash",
        };
        let watch = Watch::for_project(dir.path(), &Locations::empty_under(dir.path()));
        before_call(&data, &watch, call, &[], Utc::now()).unwrap();
        assert_eq!(
            in_flight(&data, "s/1", None),
            vec![(String::from("toolu_1"), String::from("Bash"))]
        );
        assert!(in_flight(&data, "s/1", Some("toolu_1")).is_empty());
        assert!(in_flight(&data, "s/2", None).is_empty());
        let repair = after_call(&data, &watch, call, Utc::now(), &|| true);
        assert!(
            repair.changes.is_empty() && repair.errors.is_empty(),
            "{repair:?}"
        );
        assert!(in_flight(&data, "s/1", None).is_empty());
    }
}
