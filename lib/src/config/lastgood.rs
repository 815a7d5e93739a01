//! Last-known-good copies of config files, the SessionStart validation cache, the drift audit,
//! and restoring a file from its copy (issue 3, items 6 and 7).
//!
//! Responsible for every write to a config file or its copy that ctxopt makes outside
//! `install`, and for `state/config-cache.json`. It must not print, read the environment
//! (callers pass [`Locations`](super::discover::Locations) and [`CheckContext`]) or rewrite a
//! config file that failed validation, except through [`restore`], which keeps it aside first.
//!
//! - **Cache** (`<data>/state/config-cache.json`, written with `write_atomic(NoFsync)` only when
//!   it changed or is a day old — so the 7-day retention of `state/` never drops the drift
//!   baseline — under an flock(2) of the `state/` directory): per absolute path, the stat key
//!   (size, mtime ns, ctime ns, inode, device), the SHA-256 last seen, the verdict for that hash
//!   (valid, or the findings as located lines) and the last-known-good copy's stat key and hash.
//!   An unchanged stat key costs one `stat` and nothing else; a changed one costs a read and a
//!   hash; only a new hash is validated (the schemas are compiled then, never on the warm path).
//!   A stat key is trusted only once its mtime and ctime are 2 s old (git's "racy clean"
//!   problem: an edit within the same timestamp tick keeps the key). Verdicts with findings about
//!   other files (hook executables, `E103`/`E104`) and verdicts of another ctxopt version are
//!   not reused. A file that cannot be read (`E008`) is never cached.
//! - **Last-known-good copy** `X.backup` beside each file whose [`Kind::keeps_backup`]: written
//!   (temp file, fsync, rename, 0600) at session start when the file is valid and its bytes
//!   differ from the copy's; never from an invalid file. A copy the client wrote itself
//!   (`~/.claude.json.backup`) is therefore replaced when it differs from a valid live file, and
//!   left alone while the live file is invalid.
//! - **Drift**: at session start, a file whose hash differs from the one the cache holds (the
//!   last session's, or ctxopt's own last write, see [`note_own_write`]) gets one `audit.log`
//!   entry, actor `user`, action `drift`; a new file has `sha256_before: null`, a removed one
//!   `sha256_after: null`. The first session (no cache yet) records a baseline and no drift.
//!   `~/.claude.json` is client state rewritten every session: only a change of what ctxopt
//!   validates in it (`mcpServers`, `projects.*.mcpServers`) counts as drift.
//! - **Restore** ([`restore`]): validate the copy (an invalid or missing copy is refused), keep
//!   the current file as `X.broken-<UTC timestamp>` (a hard link, else a rename), write the
//!   copy's bytes atomically with the file's previous mode (0600 if unknown), then
//!   [`note_own_write`] with action `restore`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::discover::Found;
use super::{CheckContext, ConfigFile, Kind, read_config, validate_bytes};
use crate::diagnostic::{Code, Diagnostic, Level};
use crate::fsx::Meta;
use crate::record::{self, Actor, AuditEntry, Record, Severity, Text};
use crate::store::{self, DataDir, Durability, StoreError};

/// The cache's file name in `state/`.
pub const CACHE_FILE: &str = "config-cache.json";
/// Appended to a config file's name for its last-known-good copy (`settings.json.backup`).
pub const BACKUP_SUFFIX: &str = ".backup";
/// Mode of a last-known-good copy: config files can hold secrets (MCP env, API keys).
pub const BACKUP_MODE: u32 = 0o600;
/// Mode of a restored file when the broken one's is unknown.
pub const RESTORED_MODE: u32 = 0o600;
/// Layout version of the cache; another version is read as no cache.
const CACHE_VERSION: u32 = 1;
/// How old a file's mtime and ctime must be before its stat key is trusted (also the budget
/// listing memo's rule).
pub(crate) const SETTLE_NS: i64 = 2_000_000_000;
/// How old the cache file may get before an unchanged cache is rewritten anyway, so the
/// retention of `state/` (files untouched for `state_days`) never removes the drift baseline.
const KEEP_ALIVE_NS: i64 = 24 * 3600 * 1_000_000_000;
/// How long a run waits for another run's cache lock before going on without it.
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// Findings shown per file in the session's system message.
const MAX_SHOWN: usize = 3;

/// `X.backup`, the last-known-good copy of `path`, beside it.
#[must_use]
pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(BACKUP_SUFFIX);
    path.with_file_name(name)
}

/// How a file is named to the user: relative to the project, `~/…` under the home, else
/// absolute.
#[must_use]
pub fn display(path: &Path, ctx: &CheckContext) -> String {
    if let Ok(rel) = path.strip_prefix(&ctx.project)
        && !rel.as_os_str().is_empty()
    {
        return rel.display().to_string();
    }
    if !ctx.home.as_os_str().is_empty()
        && let Ok(rel) = path.strip_prefix(&ctx.home)
        && !rel.as_os_str().is_empty()
    {
        return format!("~/{}", rel.display());
    }
    path.display().to_string()
}

/// `path` as a shell word a user can paste: `~/…` under the home, single-quoted when it holds
/// anything but `[A-Za-z0-9/._+,:@%-]`.
#[must_use]
pub fn shell_path(path: &Path, home: &Path) -> String {
    if !home.as_os_str().is_empty()
        && let Ok(rel) = path.strip_prefix(home)
        && !rel.as_os_str().is_empty()
    {
        return format!("~/{}", shell_quote(&rel.to_string_lossy()));
    }
    shell_quote(&path.to_string_lossy())
}

fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._+,:@%-".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Lowercase hex SHA-256 of `bytes`.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest: [u8; 32] = if bytes.len() <= crate::sha256::SMALL {
        crate::sha256::small(bytes)
    } else {
        Sha256::digest(bytes).into()
    };
    let mut out = String::with_capacity(64);
    for byte in &digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The cache
// ---------------------------------------------------------------------------------------------

/// `state/config-cache.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cache {
    /// [`CACHE_VERSION`].
    version: u32,
    /// The ctxopt version whose schemas produced the verdicts.
    ctxopt: String,
    /// Whether a session start has recorded the whole set of files (the drift baseline).
    baseline: bool,
    /// Per absolute path.
    files: BTreeMap<String, Entry>,
}

/// What the cache knows of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// The stat key `sha256` was read under; `None`: read again next time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stat: Option<StatKey>,
    /// The hash last seen at a session start or written by ctxopt; `None`: never read.
    #[serde(default)]
    sha256: Option<String>,
    /// `~/.claude.json` only: the hash of the part ctxopt validates (the drift digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    watched: Option<String>,
    /// The validation result for `verdict.sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verdict: Option<Verdict>,
    /// The last-known-good copy as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backup: Option<Seen>,
}

impl Entry {
    /// What drift compares: the watched part's hash where there is one, else the file's.
    fn digest(&self) -> Option<&String> {
        self.watched.as_ref().or(self.sha256.as_ref())
    }
}

/// A file's identity and version as `stat` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct StatKey {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    dev: u64,
}

impl StatKey {
    fn of(meta: &Meta) -> Self {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Self {
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }

    /// The key, when it is old enough to be trusted at `now_ns`.
    fn settled(meta: &Meta, now_ns: i64) -> Option<Self> {
        let key = Self::of(meta);
        (now_ns.saturating_sub(key.mtime_ns.max(key.ctime_ns)) >= SETTLE_NS).then_some(key)
    }
}

/// A file's content as last seen: its stat key (when settled) and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stat: Option<StatKey>,
    sha256: String,
}

/// The validation result of one version of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Verdict {
    /// The version this is about.
    sha256: String,
    /// No error-level finding.
    valid: bool,
    /// The findings, errors first, as located lines.
    findings: Vec<Finding>,
}

impl Verdict {
    fn of(sha256: String, diagnostics: &[Diagnostic]) -> Self {
        let mut findings: Vec<Finding> = diagnostics.iter().map(Finding::of).collect();
        findings.sort_by_key(|f| !f.error);
        Self {
            sha256,
            valid: !diagnostics.iter().any(Diagnostic::is_error),
            findings,
        }
    }

    /// Whether the verdict depends only on the file's bytes (not on executables elsewhere).
    fn reusable(&self) -> bool {
        !self
            .findings
            .iter()
            .any(|f| f.code == Code::E103.as_str() || f.code == Code::E104.as_str())
    }
}

/// One finding, without its file name (the display name is the caller's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Finding {
    error: bool,
    code: String,
    /// `line:column`, or empty for a finding about the whole file.
    at: String,
    /// `error[E003]: message (at /pointer)`.
    text: String,
}

impl Finding {
    fn of(d: &Diagnostic) -> Self {
        let rendered = d.render();
        let header = rendered.lines().next().unwrap_or_default();
        let (at, prefix) = if d.line == 0 {
            (String::new(), format!("{}: ", d.file))
        } else {
            let at = format!("{}:{}", d.line, d.column);
            let prefix = format!("{}:{at}: ", d.file);
            (at, prefix)
        };
        Self {
            error: d.is_error(),
            code: d.code.as_str().to_owned(),
            text: header.strip_prefix(&prefix).unwrap_or(header).to_owned(),
            at,
        }
    }

    /// `file:line:column: error[CODE]: message`.
    fn line(&self, display: &str) -> String {
        if self.at.is_empty() {
            format!("{display}: {}", self.text)
        } else {
            format!("{display}:{}: {}", self.at, self.text)
        }
    }
}

fn cache_path(data: &DataDir) -> PathBuf {
    data.state_dir().join(CACHE_FILE)
}

/// The cache, or an empty one (no baseline) when it is missing, unreadable or of another
/// layout; and the cache file's mtime (ns), for the keep-alive rewrite.
fn load(data: &DataDir) -> (Cache, i64) {
    let Ok(mut file) = File::open(cache_path(data)) else {
        return (Cache::default(), 0);
    };
    let mtime = file
        .metadata()
        .map_or(0, |m| StatKey::of(&Meta::of(&m)).mtime_ns);
    let mut bytes = Vec::new();
    if io::Read::read_to_end(&mut file, &mut bytes).is_err() {
        return (Cache::default(), 0);
    }
    let cache = match serde_json::from_slice::<Cache>(&bytes) {
        Ok(mut cache) if cache.version == CACHE_VERSION => {
            if cache.ctxopt != env!("CARGO_PKG_VERSION") {
                for entry in cache.files.values_mut() {
                    entry.verdict = None;
                }
            }
            cache
        }
        _ => Cache::default(),
    };
    (cache, mtime)
}

fn save(data: &DataDir, cache: &Cache) -> Result<(), StoreError> {
    let path = cache_path(data);
    let bytes = serde_json::to_vec(cache).map_err(|err| StoreError {
        action: "serialise",
        path: path.clone(),
        source: io::Error::other(err),
    })?;
    store::ensure_dir(&data.state_dir())?;
    store::write_atomic(&path, &bytes, store::FILE_MODE, Durability::NoFsync)
}

/// Takes the cache lock — flock(2) on the `state/` directory itself, which retention never
/// removes — waiting up to [`LOCK_WAIT`]; `None` when it cannot be had (the run goes on
/// without it: a lost cache update costs a re-read or a repeated drift entry, never a wrong
/// verdict).
fn lock(data: &DataDir) -> Option<File> {
    let state = data.state_dir();
    store::ensure_dir(&state).ok()?;
    let file = File::open(&state).ok()?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Some(file),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return None,
        }
    }
}

/// The part of `~/.claude.json` ctxopt validates; everything else is skipped while parsing
/// (the file is client state, often megabytes of project history).
#[derive(Serialize, Deserialize)]
struct Watched {
    #[serde(rename = "mcpServers", default)]
    mcp_servers: Option<Value>,
    #[serde(default)]
    projects: BTreeMap<String, WatchedProject>,
}

/// One project's entry in `~/.claude.json`, as far as ctxopt validates it.
#[derive(Serialize, Deserialize)]
struct WatchedProject {
    #[serde(rename = "mcpServers", default)]
    mcp_servers: Option<Value>,
}

/// The hash of what ctxopt validates in `~/.claude.json` (`mcpServers` and
/// `projects.*.mcpServers`); `None` when the bytes do not have that shape (then the whole
/// file's hash stands in).
#[must_use]
pub fn claude_json_digest(bytes: &[u8]) -> Option<String> {
    watched_digest(bytes)
}

fn watched_digest(bytes: &[u8]) -> Option<String> {
    let watched: Watched = serde_json::from_slice(bytes).ok()?;
    serde_json::to_vec(&watched).ok().map(|b| sha256_hex(&b))
}

fn watched_for(kind: Kind, bytes: &[u8]) -> Option<String> {
    (kind == Kind::ClaudeJson)
        .then(|| watched_digest(bytes))
        .flatten()
}

pub(crate) fn now_ns(now: DateTime<Utc>) -> i64 {
    now.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

// ---------------------------------------------------------------------------------------------
// SessionStart
// ---------------------------------------------------------------------------------------------

/// How much work a file cost at session start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// The stat key matched: not read.
    Cached,
    /// Read and hashed; the hash was known, so the verdict was reused.
    Rehashed,
    /// Read, hashed and validated.
    Validated,
    /// Could not be read (`E008`).
    Unreadable,
}

/// What happened to a file's last-known-good copy at session start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupAction {
    /// The kind keeps no copy, or the file is invalid: nothing done.
    None,
    /// The copy already holds the file's bytes.
    Unchanged,
    /// The copy was (re)written from the valid file.
    Written,
    /// Writing it failed (a fault of the run).
    Failed,
}

/// One file's result at session start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The file.
    pub file: ConfigFile,
    /// Its display name.
    pub display: String,
    /// What it cost.
    pub cost: Cost,
    /// Whether it is valid (no error-level finding).
    pub valid: bool,
    /// Its located finding lines (`file:line:column: error[CODE]: message`), errors first.
    pub findings: Vec<String>,
    /// How many of them are errors.
    pub errors: usize,
    /// The last-known-good copy.
    pub backup: BackupAction,
}

/// A fault of the session-start check: the session goes on, the run is marked unsuccessful.
#[derive(Debug, thiserror::Error)]
pub enum LastGoodError {
    /// A last-known-good copy could not be written.
    #[error("failed to refresh the last-known-good copy {}", path.display())]
    Backup {
        /// The copy.
        path: PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The cache could not be saved.
    #[error("failed to save the config validation cache")]
    Cache(#[source] StoreError),
    /// Drift entries could not be appended to `audit.log`.
    #[error("failed to record config drift in the audit log")]
    Audit(#[source] StoreError),
}

impl LastGoodError {
    /// How bad, as an `error` record's severity.
    #[must_use]
    pub fn severity(&self) -> Severity {
        match self {
            Self::Backup { .. } | Self::Audit(_) => Severity::Medium,
            Self::Cache(_) => Severity::Low,
        }
    }
}

/// What the session-start check found and did.
#[derive(Debug, Default)]
pub struct SessionCheck {
    /// Per discovered file, in the order given.
    pub files: Vec<Checked>,
    /// A `Critical` `error` record per invalid file.
    pub records: Vec<Record>,
    /// What to tell the user (only when a file is invalid).
    pub system_message: Option<String>,
    /// The drift entries appended to `audit.log`.
    pub drift: Vec<AuditEntry>,
    /// Faults of the check itself.
    pub faults: Vec<LastGoodError>,
}

/// The session-start check of `files` (see the module doc): validate through the cache,
/// refresh last-known-good copies, audit drift, save the cache when it changed.
#[must_use]
pub fn check_at_session_start(
    files: &[ConfigFile],
    ctx: &CheckContext,
    data: &DataDir,
    session_id: &str,
    now: DateTime<Utc>,
) -> SessionCheck {
    let files: Vec<(&ConfigFile, Option<&Meta>)> = files.iter().map(|f| (f, None)).collect();
    check_files(&files, ctx, data, session_id, now)
}

/// [`check_at_session_start`] on files found by [`discover_stat`](super::discover::discover_stat),
/// whose metadata is reused instead of a second `stat` per file.
#[must_use]
pub fn check_found_at_session_start(
    found: &[Found],
    ctx: &CheckContext,
    data: &DataDir,
    session_id: &str,
    now: DateTime<Utc>,
) -> SessionCheck {
    let files: Vec<(&ConfigFile, Option<&Meta>)> =
        found.iter().map(|f| (&f.file, Some(&f.meta))).collect();
    check_files(&files, ctx, data, session_id, now)
}

fn check_files(
    files: &[(&ConfigFile, Option<&Meta>)],
    ctx: &CheckContext,
    data: &DataDir,
    session_id: &str,
    now: DateTime<Utc>,
) -> SessionCheck {
    let _lock = lock(data);
    let (mut old, saved_ns) = load(data);
    let now_ns = now_ns(now);
    let mut cache = Cache {
        version: CACHE_VERSION,
        ctxopt: env!("CARGO_PKG_VERSION").to_owned(),
        baseline: true,
        files: BTreeMap::new(),
    };
    // Whether the cache to save differs from the one loaded. Entries move from `old` into
    // `cache` (no copy of the map, no comparison of the two at the end: ≈ 200 files' strings
    // each at every session start).
    let mut rewrite = old.version != cache.version
        || old.ctxopt != cache.ctxopt
        || old.baseline != cache.baseline;
    let mut out = SessionCheck::default();
    let mut drift = Vec::new();
    for &(file, meta) in files {
        let key = file.path.to_string_lossy().into_owned();
        let display = display(&file.path, ctx);
        let mut previous = old.files.remove(&key);
        let Some(step) = check_file(file, meta, &display, &mut previous, ctx, now_ns) else {
            // Vanished since discovery: back with the unchecked ones, whose loop below finds
            // it gone.
            if let Some(previous) = previous {
                old.files.insert(key, previous);
            }
            continue;
        };
        rewrite |= !step.unchanged;
        let changed = step.read
            && step
                .previous
                .as_ref()
                .is_none_or(|p| p.sha256.is_some() && p.digest() != step.entry.digest());
        if old.baseline
            && changed
            && let Some(after) = &step.entry.sha256
        {
            let before = step.previous.as_ref().and_then(|e| e.sha256.clone());
            let detail = match (&before, file.kind) {
                (None, _) => "appeared since the last session, not written by ctxopt",
                (Some(_), Kind::ClaudeJson) => {
                    "MCP servers changed outside ctxopt since the last session"
                }
                (Some(_), _) => "changed outside ctxopt since the last session",
            };
            drift.push(drift_entry(
                &file.path,
                before,
                Some(after.clone()),
                session_id,
                detail,
            ));
        }
        if let Some(err) = step.fault {
            out.faults.push(err);
        }
        cache.files.insert(key, step.entry);
        out.files.push(step.checked);
    }
    // What is left of `old` was not checked this time: kept unless it is gone from disk.
    for (key, entry) in std::mem::take(&mut old.files) {
        if !matches!(fs::symlink_metadata(&key), Err(e) if e.kind() == io::ErrorKind::NotFound) {
            cache.files.insert(key, entry);
            continue;
        }
        rewrite = true;
        if old.baseline && entry.sha256.is_some() {
            drift.push(drift_entry(
                Path::new(&key),
                entry.sha256,
                None,
                session_id,
                "removed outside ctxopt since the last session",
            ));
        }
    }
    if !drift.is_empty() {
        let lines: String = drift.iter().map(|e| e.line(now)).collect();
        if let Err(err) = data
            .ensure()
            .and_then(|()| store::append(&data.audit_log(), lines.as_bytes()))
        {
            out.faults.push(LastGoodError::Audit(err));
        }
        out.drift = drift;
    }
    if (rewrite || now_ns.saturating_sub(saved_ns) > KEEP_ALIVE_NS)
        && let Err(err) = save(data, &cache)
    {
        out.faults.push(LastGoodError::Cache(err));
    }
    report_invalid(&mut out, ctx);
    out
}

fn drift_entry(
    path: &Path,
    before: Option<String>,
    after: Option<String>,
    session_id: &str,
    detail: &str,
) -> AuditEntry {
    AuditEntry {
        actor: Actor::User,
        action: "drift".to_owned(),
        path: path.to_string_lossy().into_owned(),
        sha256_before: before,
        sha256_after: after,
        session_id: non_empty(session_id),
        tool: None,
        detail: Some(Text::new(detail, record::MAX_MESSAGE_CHARS)),
    }
}

/// One file's check: its new cache entry and its result.
struct Step {
    entry: Entry,
    checked: Checked,
    fault: Option<LastGoodError>,
    /// Whether `entry` is the cache's entry as loaded.
    unchanged: bool,
    /// Whether the file was read again (the slow path): only then can its content have
    /// drifted from `previous`.
    read: bool,
    /// The entry as loaded, when the file was read again (for the drift check).
    previous: Option<Entry>,
}

/// Checks one file (`found`: its metadata from discovery, else it is `stat`ed here), taking its
/// entry as loaded from `previous`; `None`, `previous` untouched, when the file vanished since
/// discovery.
fn check_file(
    file: &ConfigFile,
    found: Option<&Meta>,
    display: &str,
    previous: &mut Option<Entry>,
    ctx: &CheckContext,
    now_ns: i64,
) -> Option<Step> {
    let meta = match found {
        Some(meta) => Some(*meta),
        None => match Meta::path(&file.path) {
            Ok(meta) => Some(meta),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return None,
            Err(_) => None,
        },
    };
    let backup = file.kind.keeps_backup().then(|| backup_path(&file.path));
    let fast = match (&meta, &*previous) {
        (Some(meta), Some(old)) => old
            .verdict
            .as_ref()
            .filter(|v| Some(&v.sha256) == old.sha256.as_ref() && v.reusable())
            .and_then(|verdict| {
                let Reuse { backup: copy } = cached(meta, verdict, old, backup.as_ref(), now_ns)?;
                Some((
                    copy,
                    checked(file, display, Cost::Cached, verdict, backup.as_ref()),
                ))
            }),
        _ => None,
    };
    if let Some((copy, checked)) = fast
        && let Some(old) = previous.take()
    {
        let unchanged = copy == old.backup;
        return Some(Step {
            entry: Entry {
                backup: copy,
                ..old
            },
            checked,
            fault: None,
            unchanged,
            read: false,
            previous: None,
        });
    }

    let previous = previous.take();
    let old = previous.clone().unwrap_or_default();
    let verdict = old
        .verdict
        .clone()
        .filter(|v| Some(&v.sha256) == old.sha256.as_ref() && v.reusable());
    let bytes = match read_config(&file.path) {
        Ok(bytes) => bytes,
        Err(message) => {
            return Some(Step {
                previous,
                ..unreadable(file, display, old, message)
            });
        }
    };
    let sha = sha256_hex(&bytes);
    let (verdict, cost) = if let Some(v) = verdict.filter(|v| v.sha256 == sha) {
        (v, Cost::Rehashed)
    } else {
        let found = validate_bytes(file.kind, display, &bytes, ctx);
        (Verdict::of(sha.clone(), &found), Cost::Validated)
    };
    let mut entry = Entry {
        stat: meta
            .as_ref()
            .and_then(|m| StatKey::settled(m, now_ns))
            .filter(|k| k.size == bytes.len() as u64),
        sha256: Some(sha),
        watched: watched_for(file.kind, &bytes),
        verdict: Some(verdict.clone()),
        backup: old.backup,
    };
    let mut checked = checked(file, display, cost, &verdict, backup.as_ref());
    let mut fault = None;
    if let (Some(path), true) = (&backup, verdict.valid) {
        let (action, seen, error) =
            refresh_backup(path, &bytes, &verdict.sha256, entry.backup.as_ref(), now_ns);
        checked.backup = action;
        entry.backup = seen;
        fault = error;
    }
    Some(Step {
        entry,
        checked,
        fault,
        unchanged: false,
        read: true,
        previous,
    })
}

/// The fast path: the stat key is unchanged and the verdict known, so nothing is read —
/// unless the last-known-good copy changed under a valid file. The copy as now seen (the
/// entry's new `backup`); `None`: take the slow path.
struct Reuse {
    backup: Option<Seen>,
}

/// The fast path's test (see [`Reuse`]).
fn cached(
    meta: &Meta,
    verdict: &Verdict,
    old: &Entry,
    backup: Option<&PathBuf>,
    now_ns: i64,
) -> Option<Reuse> {
    if !meta.is_file() || old.stat != Some(StatKey::of(meta)) {
        return None;
    }
    let backup = match (backup, verdict.valid) {
        (Some(path), true) => Some(
            seen_backup(path, old.backup.as_ref(), now_ns)
                .filter(|seen| Some(&seen.sha256) == old.sha256.as_ref())?,
        ),
        _ => old.backup.clone(),
    };
    Some(Reuse { backup })
}

/// A file that could not be read: one `E008` finding; the entry keeps the last hash (no drift
/// is inferred from an unreadable file) and drops its stat key, so the next run tries again.
fn unreadable(file: &ConfigFile, display: &str, old: Entry, message: String) -> Step {
    let diagnostic = Diagnostic::new(
        display,
        crate::diagnostic::Position::default(),
        Level::Error,
        Code::E008,
        message,
        "",
    );
    Step {
        unchanged: false,
        read: true,
        previous: None,
        entry: Entry { stat: None, ..old },
        checked: Checked {
            file: file.clone(),
            display: display.to_owned(),
            cost: Cost::Unreadable,
            valid: false,
            findings: vec![Finding::of(&diagnostic).line(display)],
            errors: 1,
            backup: BackupAction::None,
        },
        fault: None,
    }
}

/// Makes the copy at `path` hold `bytes` (a valid file's, hashing to `sha`) unless it already
/// does. Returns what was done, the copy as now seen, and a fault.
fn refresh_backup(
    path: &Path,
    bytes: &[u8],
    sha: &str,
    old: Option<&Seen>,
    now_ns: i64,
) -> (BackupAction, Option<Seen>, Option<LastGoodError>) {
    let current = seen_backup(path, old, now_ns);
    if current.as_ref().is_some_and(|b| b.sha256 == sha) {
        return (BackupAction::Unchanged, current, None);
    }
    match store::write_atomic(path, bytes, BACKUP_MODE, Durability::Fsync) {
        Ok(()) => {
            let seen = Seen {
                stat: fs::metadata(path)
                    .ok()
                    .and_then(|m| StatKey::settled(&Meta::of(&m), now_ns)),
                sha256: sha.to_owned(),
            };
            (BackupAction::Written, Some(seen), None)
        }
        Err(source) => (
            BackupAction::Failed,
            current,
            Some(LastGoodError::Backup {
                path: path.to_owned(),
                source,
            }),
        ),
    }
}

fn checked(
    file: &ConfigFile,
    display: &str,
    cost: Cost,
    verdict: &Verdict,
    backup: Option<&PathBuf>,
) -> Checked {
    Checked {
        file: file.clone(),
        display: display.to_owned(),
        cost,
        valid: verdict.valid,
        findings: verdict.findings.iter().map(|f| f.line(display)).collect(),
        errors: verdict.findings.iter().filter(|f| f.error).count(),
        backup: if backup.is_some() && verdict.valid {
            BackupAction::Unchanged
        } else {
            BackupAction::None
        },
    }
}

/// The last-known-good copy at `path` as it is now: from the cache when its stat key is
/// unchanged, else read and hashed. `None` when it is missing, unreadable or not a regular
/// file (then a valid file's bytes replace it).
fn seen_backup(path: &Path, old: Option<&Seen>, now_ns: i64) -> Option<Seen> {
    let meta = Meta::path(path).ok()?;
    if !meta.is_file() || meta.mode() & 0o7777 != BACKUP_MODE {
        return None;
    }
    let key = StatKey::of(&meta);
    if let Some(old) = old
        && old.stat == Some(key)
    {
        return Some(old.clone());
    }
    let bytes = read_config(path).ok()?;
    Some(Seen {
        stat: StatKey::settled(&meta, now_ns).filter(|k| k.size == bytes.len() as u64),
        sha256: sha256_hex(&bytes),
    })
}

/// Adds the `Critical` records and the system message for the invalid files.
fn report_invalid(out: &mut SessionCheck, ctx: &CheckContext) {
    let mut sections = Vec::new();
    for checked in out.files.iter().filter(|c| !c.valid) {
        let first = checked.findings.first().cloned().unwrap_or_default();
        let first = first
            .strip_prefix(&checked.display)
            .map_or(first.as_str(), |rest| {
                rest.trim_start_matches(':').trim_start()
            });
        let path = &checked.file.path;
        let shell = shell_path(path, &ctx.home);
        let backup = backup_path(path);
        let has_backup = checked.file.kind.keeps_backup() && backup.is_file();
        let errors = match checked.errors {
            1 => "1 error".to_owned(),
            n => format!("{n} errors"),
        };
        let fix = if has_backup {
            format!("restore with: ctxopt restore-config {shell}")
        } else {
            "no last-known-good copy to restore".to_owned()
        };
        out.records.push(Record::Error {
            severity: Severity::Critical,
            message: Text::new(
                &format!("invalid config {}: {first}", checked.display),
                record::MAX_MESSAGE_CHARS,
            ),
            stack: Text::new(
                &format!("{errors} in {}; {fix}", path.display()),
                record::MAX_STACK_CHARS,
            ),
        });
        sections.push(message_for(checked, &shell, has_backup, &ctx.home));
    }
    if !sections.is_empty() {
        out.system_message = Some(sections.join("\n"));
    }
}

/// The system message about one invalid file: what is wrong, and the command that fixes it.
fn message_for(checked: &Checked, shell: &str, has_backup: bool, home: &Path) -> String {
    let mut text = format!(
        "ctxopt: {} is invalid; Claude Code may ignore it or fail to load its configuration.",
        checked.display
    );
    for line in checked.findings.iter().take(MAX_SHOWN) {
        let _ = write!(text, "\n  {line}");
    }
    if checked.findings.len() > MAX_SHOWN {
        let _ = write!(
            text,
            "\n  … and {} more (ctxopt validate {shell})",
            checked.findings.len() - MAX_SHOWN
        );
    }
    if has_backup {
        let backup = shell_path(&backup_path(&checked.file.path), home);
        let _ = write!(
            text,
            "\nRestore the last-known-good copy (the broken file is kept aside): \
             ctxopt restore-config {shell}\n(by hand: cp {backup} {shell})"
        );
    } else if checked.file.kind.keeps_backup() {
        let _ = write!(
            text,
            "\nNo last-known-good copy exists yet (ctxopt saves one when the file is valid at a \
             session start): fix the file by hand, then check it with: ctxopt validate {shell}"
        );
    } else {
        let _ = write!(
            text,
            "\nFix the file by hand, then check it with: ctxopt validate {shell}"
        );
    }
    text
}

// ---------------------------------------------------------------------------------------------
// ctxopt's own writes
// ---------------------------------------------------------------------------------------------

/// Records that ctxopt itself just wrote `after` to `path` (whose bytes were `before`, `None`
/// when it did not exist; `after` is `None` when ctxopt removed the file): an `audit.log`
/// entry with actor `ctxopt` and `action`, and the cache's hash for the file, so the next
/// session start does not report the write as drift.
/// A change made outside ctxopt before this write (the cache's hash differs from `before`) is
/// recorded first, as drift.
pub fn note_own_write(
    data: &DataDir,
    path: &Path,
    before: Option<&[u8]>,
    after: Option<&[u8]>,
    action: &str,
) -> Result<(), StoreError> {
    let kind = Kind::of_path(path);
    let before = before.map(|b| (sha256_hex(b), kind.and_then(|k| watched_for(k, b))));
    crate::guard::snapshot::note_own_write(data, path)?;
    note(
        data,
        path,
        kind,
        before.as_ref(),
        after,
        action,
        None,
        record::now(),
    )
}

/// [`note_own_write`] with the before-hash already known and a detail for the audit entry.
#[expect(
    clippy::too_many_arguments,
    reason = "internal: note_own_write and restore share it"
)]
fn note(
    data: &DataDir,
    path: &Path,
    kind: Option<Kind>,
    before: Option<&(String, Option<String>)>,
    after: Option<&[u8]>,
    action: &str,
    detail: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    data.ensure()?;
    let _lock = lock(data);
    let (mut cache, _) = load(data);
    let after_sha = after.map(sha256_hex);
    let key = cache_key(&cache, path);
    let mut lines = String::new();
    let old = cache.files.get(&key);
    let before_digest = before.map(|(sha, w)| w.as_ref().unwrap_or(sha));
    let changed = match old {
        None => before.is_some(),
        Some(entry) => entry.sha256.is_some() && entry.digest() != before_digest,
    };
    if cache.baseline && changed {
        lines.push_str(
            &drift_entry(
                path,
                old.and_then(|e| e.sha256.clone()),
                before.map(|(sha, _)| sha.clone()),
                "",
                &format!(
                    "changed outside ctxopt since the last session (seen before ctxopt's {action})"
                ),
            )
            .line(now),
        );
    }
    lines.push_str(
        &AuditEntry {
            actor: Actor::Ctxopt,
            action: action.to_owned(),
            path: path.to_string_lossy().into_owned(),
            sha256_before: before.map(|(sha, _)| sha.clone()),
            sha256_after: after_sha.clone(),
            session_id: None,
            tool: None,
            detail: detail.map(|d| Text::new(d, record::MAX_MESSAGE_CHARS)),
        }
        .line(now),
    );
    store::append(&data.audit_log(), lines.as_bytes())?;
    if cache.version != CACHE_VERSION {
        return Ok(());
    }
    let (Some(after), Some(after_sha)) = (after, after_sha) else {
        cache.files.remove(&key);
        return save(data, &cache);
    };
    let now_ns = now_ns(now);
    let entry = cache.files.entry(key).or_default();
    if entry.sha256.as_deref() != Some(after_sha.as_str()) {
        entry.verdict = None;
    }
    entry.stat = fs::metadata(path)
        .ok()
        .and_then(|m| StatKey::settled(&Meta::of(&m), now_ns))
        .filter(|k| k.size == after.len() as u64);
    entry.sha256 = Some(after_sha);
    entry.watched = kind.and_then(|k| watched_for(k, after));
    save(data, &cache)
}

/// The cache's key for `path`: the path itself, else an entry naming the same file by
/// another path (a symlinked project directory).
fn cache_key(cache: &Cache, path: &Path) -> String {
    let key = path.to_string_lossy().into_owned();
    if cache.files.contains_key(&key) {
        return key;
    }
    let Ok(canonical) = fs::canonicalize(path) else {
        return key;
    };
    cache
        .files
        .keys()
        .filter(|k| Path::new(k).file_name() == path.file_name())
        .find(|k| fs::canonicalize(k).is_ok_and(|c| c == canonical))
        .cloned()
        .unwrap_or(key)
}

// ---------------------------------------------------------------------------------------------
// Restore
// ---------------------------------------------------------------------------------------------

/// When [`restore`] replaces a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Only a file that is invalid, unreadable or missing.
    IfInvalid,
    /// Also a valid file (the user asked for the older copy).
    Always,
}

/// A restore that happened.
#[derive(Debug)]
pub struct Restored {
    /// The config file.
    pub path: PathBuf,
    /// The copy it was restored from.
    pub backup: PathBuf,
    /// Where the replaced file was kept, when there was one.
    pub broken: Option<PathBuf>,
    /// The replaced file's hash, when it was readable.
    pub sha256_before: Option<String>,
    /// The restored bytes' hash.
    pub sha256_after: String,
    /// The audit entry or cache update that could not be written (the restore itself held).
    pub audit_error: Option<StoreError>,
}

/// What [`restore`] did.
#[derive(Debug)]
pub enum RestoreOutcome {
    /// The copy's bytes are in place; the replaced file was kept aside.
    Restored(Restored),
    /// The file already holds the copy's bytes.
    SameAsBackup,
    /// The file is valid; [`Replace::IfInvalid`] left it alone.
    Valid,
}

/// A restore that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// ctxopt keeps no copy of this kind of file.
    #[error(
        "failed to restore {}: ctxopt keeps no last-known-good copy of this kind of file",
        path.display()
    )]
    NotKept {
        /// The file.
        path: PathBuf,
    },
    /// There is no copy.
    #[error(
        "failed to restore {}: there is no last-known-good copy {} (ctxopt saves one when the \
         file is valid at a session start); fix the file by hand",
        path.display(),
        backup.display()
    )]
    NoBackup {
        /// The file.
        path: PathBuf,
        /// Where the copy would be.
        backup: PathBuf,
    },
    /// The copy cannot be read.
    #[error("failed to restore {}: its last-known-good copy {} cannot be read: {message}", path.display(), backup.display())]
    BackupUnreadable {
        /// The file.
        path: PathBuf,
        /// The copy.
        backup: PathBuf,
        /// Why.
        message: String,
    },
    /// The copy is itself invalid.
    #[error(
        "failed to restore {}: its last-known-good copy {} is invalid too ({}); nothing was changed",
        path.display(),
        backup.display(),
        findings.iter().find(|d| d.is_error()).map(Diagnostic::render).unwrap_or_default().lines().next().unwrap_or_default()
    )]
    BackupInvalid {
        /// The file.
        path: PathBuf,
        /// The copy.
        backup: PathBuf,
        /// The copy's findings.
        findings: Vec<Diagnostic>,
    },
    /// The current file could not be kept aside, so it was not replaced.
    #[error("failed to keep {} aside as {}; nothing was changed", path.display(), aside.display())]
    Aside {
        /// The file.
        path: PathBuf,
        /// Where it was to go.
        aside: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Writing the restored file failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RestoreError {
    /// Whether the restore is impossible as things are (no usable copy: exit 1), rather than
    /// a failure to run (exit 2).
    #[must_use]
    pub fn is_impossible(&self) -> bool {
        matches!(
            self,
            Self::NotKept { .. }
                | Self::NoBackup { .. }
                | Self::BackupUnreadable { .. }
                | Self::BackupInvalid { .. }
        )
    }
}

/// Restores `file` from its last-known-good copy (see the module doc).
pub fn restore(
    file: &ConfigFile,
    ctx: &CheckContext,
    data: &DataDir,
    replace: Replace,
    now: DateTime<Utc>,
) -> Result<RestoreOutcome, RestoreError> {
    let path = &file.path;
    if !file.kind.keeps_backup() {
        return Err(RestoreError::NotKept { path: path.clone() });
    }
    let backup = backup_path(path);
    let good = match fs::metadata(&backup) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(RestoreError::NoBackup {
                path: path.clone(),
                backup,
            });
        }
        _ => read_config(&backup).map_err(|message| RestoreError::BackupUnreadable {
            path: path.clone(),
            backup: backup.clone(),
            message,
        })?,
    };
    let findings = validate_bytes(file.kind, &display(&backup, ctx), &good, ctx);
    if findings.iter().any(Diagnostic::is_error) {
        return Err(RestoreError::BackupInvalid {
            path: path.clone(),
            backup,
            findings,
        });
    }

    let target = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::canonicalize(path).unwrap_or_else(|_| path.clone())
        }
        _ => path.clone(),
    };
    let current = fs::metadata(&target).ok();
    let bytes = current
        .as_ref()
        .filter(|m| m.is_file())
        .and_then(|_| read_config(&target).ok());
    if bytes.as_deref() == Some(good.as_slice()) {
        return Ok(RestoreOutcome::SameAsBackup);
    }
    if replace == Replace::IfInvalid
        && let Some(bytes) = &bytes
        && !validate_bytes(file.kind, &display(path, ctx), bytes, ctx)
            .iter()
            .any(Diagnostic::is_error)
    {
        return Ok(RestoreOutcome::Valid);
    }
    let mode = current
        .as_ref()
        .filter(|m| m.is_file())
        .map_or(RESTORED_MODE, |m| m.mode() & 0o7777);
    let broken = match fs::symlink_metadata(&target) {
        Ok(_) => Some(keep_aside(&target, now)?),
        Err(_) => None,
    };
    store::write_atomic(&target, &good, mode, Durability::Fsync)?;

    let before = bytes
        .as_ref()
        .map(|b| (sha256_hex(b), watched_for(file.kind, b)));
    let sha256_before = before.as_ref().map(|(sha, _)| sha.clone());
    let detail = match &broken {
        Some(aside) => format!(
            "restored from {}; the replaced file is kept as {}",
            backup.display(),
            aside.display()
        ),
        None => format!("restored from {}", backup.display()),
    };
    let audit_error = note(
        data,
        path,
        Some(file.kind),
        before.as_ref(),
        Some(&good),
        "restore",
        Some(&detail),
        now,
    )
    .err();
    Ok(RestoreOutcome::Restored(Restored {
        path: path.clone(),
        backup,
        broken,
        sha256_before,
        sha256_after: sha256_hex(&good),
        audit_error,
    }))
}

/// Keeps `target` as `target.broken-<UTC timestamp>` (a hard link, so the file never goes
/// missing; a rename where links are impossible, e.g. a directory). Returns the new name.
fn keep_aside(target: &Path, now: DateTime<Utc>) -> Result<PathBuf, RestoreError> {
    let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let mut last = None;
    for n in 0..100 {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        let aside = target.with_file_name(format!("{name}.broken-{stamp}{suffix}"));
        if fs::symlink_metadata(&aside).is_ok() {
            continue;
        }
        let result = fs::hard_link(target, &aside).or_else(|err| {
            if err.kind() == io::ErrorKind::AlreadyExists {
                Err(err)
            } else {
                fs::rename(target, &aside)
            }
        });
        match result {
            Ok(()) => return Ok(aside),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(RestoreError::Aside {
                    path: target.to_owned(),
                    aside,
                    source,
                });
            }
        }
        last = Some(aside);
    }
    Err(RestoreError::Aside {
        path: target.to_owned(),
        aside: last.unwrap_or_else(|| target.to_owned()),
        source: io::Error::new(io::ErrorKind::AlreadyExists, "every name is taken"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs::FileTimes;
    use std::os::unix::fs::PermissionsExt;
    use std::time::SystemTime;

    struct Env {
        _tmp: tempfile::TempDir,
        ctx: CheckContext,
        data: DataDir,
    }

    fn env() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join("project");
        let home = tmp.path().join("home");
        fs::create_dir_all(project.join(".claude")).unwrap();
        fs::create_dir_all(&home).unwrap();
        Env {
            data: DataDir::of_project(&project),
            ctx: CheckContext { project, home },
            _tmp: tmp,
        }
    }

    impl Env {
        fn settings(&self) -> ConfigFile {
            ConfigFile {
                path: self.ctx.project.join(".claude/settings.json"),
                kind: Kind::ProjectSettings,
            }
        }

        fn check(&self, files: &[ConfigFile], now: DateTime<Utc>) -> SessionCheck {
            check_at_session_start(files, &self.ctx, &self.data, "s1", now)
        }

        fn audit(&self) -> Vec<Value> {
            fs::read_to_string(self.data.audit_log())
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    /// Writes `text` and dates the file an hour back, so its stat key is settled.
    fn write_old(path: &Path, text: &str) {
        fs::write(path, text).unwrap();
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_times(FileTimes::new().set_modified(hour_ago))
            .unwrap();
    }

    fn later() -> DateTime<Utc> {
        record::now() + chrono::Duration::seconds(10)
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn unchanged_stat_key_costs_no_read() {
        let env = env();
        let file = env.settings();
        write_old(&file.path, "{}");
        let first = env.check(std::slice::from_ref(&file), later());
        assert_eq!(first.files[0].cost, Cost::Validated);
        assert_eq!(first.files[0].backup, BackupAction::Written);
        let inode = |p: &Path| fs::metadata(p).unwrap().ino();
        let cache = inode(&cache_path(&env.data));
        let second = env.check(std::slice::from_ref(&file), later());
        assert_eq!(second.files[0].cost, Cost::Cached);
        assert_eq!(second.files[0].backup, BackupAction::Unchanged);
        assert!(second.drift.is_empty() && second.faults.is_empty());
        assert_eq!(inode(&cache_path(&env.data)), cache, "cache not rewritten");
    }

    #[test]
    fn an_unchanged_cache_is_rewritten_once_a_day() {
        let env = env();
        let file = env.settings();
        write_old(&file.path, "{}");
        env.check(std::slice::from_ref(&file), later());
        let inode = || fs::metadata(cache_path(&env.data)).unwrap().ino();
        let before = inode();
        env.check(std::slice::from_ref(&file), later());
        assert_eq!(inode(), before);
        let in_two_days = record::now() + chrono::Duration::days(2);
        env.check(std::slice::from_ref(&file), in_two_days);
        assert_ne!(inode(), before);
    }

    #[test]
    fn a_fresh_stat_key_is_not_trusted() {
        let env = env();
        let file = env.settings();
        fs::write(&file.path, "{}").unwrap();
        env.check(std::slice::from_ref(&file), record::now());
        let again = env.check(std::slice::from_ref(&file), record::now());
        assert_eq!(again.files[0].cost, Cost::Rehashed);
    }

    #[test]
    fn touched_file_is_rehashed_not_revalidated_and_not_drift() {
        let env = env();
        let file = env.settings();
        write_old(&file.path, "{}");
        env.check(std::slice::from_ref(&file), later());
        write_old(&file.path, "{}");
        let check = env.check(std::slice::from_ref(&file), later());
        assert_eq!(check.files[0].cost, Cost::Rehashed);
        assert!(check.drift.is_empty());
        assert!(env.audit().is_empty());
    }

    #[test]
    fn first_run_is_a_baseline_then_edits_are_drift() {
        let env = env();
        let file = env.settings();
        write_old(&file.path, "{}");
        let first = env.check(std::slice::from_ref(&file), later());
        assert!(first.drift.is_empty());
        write_old(&file.path, r#"{"model": "opus"}"#);
        let second = env.check(std::slice::from_ref(&file), later());
        assert_eq!(second.files[0].cost, Cost::Validated);
        assert_eq!(second.drift.len(), 1);
        let audit = env.audit();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0]["actor"], "user");
        assert_eq!(audit[0]["action"], "drift");
        assert_eq!(audit[0]["session_id"], "s1");
        assert_eq!(audit[0]["sha256_before"], sha256_hex(b"{}"));
        assert_eq!(
            audit[0]["sha256_after"],
            sha256_hex(br#"{"model": "opus"}"#)
        );
        let third = env.check(std::slice::from_ref(&file), later());
        assert!(third.drift.is_empty());
    }

    #[test]
    fn appearing_and_removed_files_are_drift() {
        let env = env();
        let file = env.settings();
        env.check(&[], later());
        write_old(&file.path, "{}");
        let appeared = env.check(std::slice::from_ref(&file), later());
        assert_eq!(appeared.drift.len(), 1);
        assert_eq!(appeared.drift[0].sha256_before, None);
        fs::remove_file(&file.path).unwrap();
        let removed = env.check(&[], later());
        assert_eq!(removed.drift.len(), 1);
        assert_eq!(removed.drift[0].sha256_after, None);
        assert_eq!(env.audit().len(), 2);
    }

    #[test]
    fn own_write_is_audited_as_ctxopt_and_not_drift() {
        let env = env();
        let file = env.settings();
        write_old(&file.path, "{}");
        env.check(std::slice::from_ref(&file), later());
        fs::write(&file.path, r#"{"hooks": {}}"#).unwrap();
        note_own_write(
            &env.data,
            &file.path,
            Some(b"{}"),
            Some(br#"{"hooks": {}}"#),
            "install",
        )
        .unwrap();
        let check = env.check(std::slice::from_ref(&file), later());
        assert!(check.drift.is_empty());
        let audit = env.audit();
        assert_eq!(audit.len(), 1, "{audit:?}");
        assert_eq!(audit[0]["actor"], "ctxopt");
        assert_eq!(audit[0]["action"], "install");
    }

    #[test]
    fn an_edit_before_an_own_write_is_still_drift() {
        let env = env();
        let file = env.settings();
        write_old(&file.path, "{}");
        env.check(std::slice::from_ref(&file), later());
        note_own_write(
            &env.data,
            &file.path,
            Some(b"{\"a\":1}"),
            Some(b"{}"),
            "install",
        )
        .unwrap();
        let audit = env.audit();
        assert_eq!(audit.len(), 2, "{audit:?}");
        assert_eq!(audit[0]["action"], "drift");
        assert_eq!(audit[1]["actor"], "ctxopt");
    }

    #[test]
    fn claude_json_drift_counts_only_mcp_servers() {
        let env = env();
        let file = ConfigFile {
            path: env.ctx.home.join(".claude.json"),
            kind: Kind::ClaudeJson,
        };
        write_old(&file.path, r#"{"numStartups": 1, "mcpServers": {}}"#);
        env.check(std::slice::from_ref(&file), later());
        write_old(&file.path, r#"{"numStartups": 2, "mcpServers": {}}"#);
        assert!(
            env.check(std::slice::from_ref(&file), later())
                .drift
                .is_empty()
        );
        write_old(
            &file.path,
            r#"{"numStartups": 2, "mcpServers": {"x": {"command": "x"}}}"#,
        );
        assert_eq!(
            env.check(std::slice::from_ref(&file), later()).drift.len(),
            1
        );
    }

    #[test]
    fn fifo_is_unreadable_and_never_cached() {
        let env = env();
        let file = env.settings();
        let status = std::process::Command::new("mkfifo")
            .arg(&file.path)
            .status()
            .unwrap();
        assert!(status.success());
        for _ in 0..2 {
            let check = env.check(std::slice::from_ref(&file), later());
            assert_eq!(check.files[0].cost, Cost::Unreadable);
            assert!(!check.files[0].valid);
            assert!(check.files[0].findings[0].contains("error[E008]"));
            assert_eq!(check.records.len(), 1);
            let message = check.system_message.unwrap();
            assert!(message.contains("No last-known-good copy"), "{message}");
        }
        assert!(!backup_path(&file.path).exists());
    }

    #[test]
    fn an_invalid_file_never_replaces_the_copy() {
        let env = env();
        let file = env.settings();
        write_old(&file.path, "{}");
        env.check(std::slice::from_ref(&file), later());
        fs::remove_file(&file.path).unwrap();
        fs::create_dir(&file.path).unwrap();
        let check = env.check(std::slice::from_ref(&file), later());
        assert!(!check.files[0].valid);
        assert_eq!(fs::read(backup_path(&file.path)).unwrap(), b"{}");
        let message = check.system_message.unwrap();
        assert!(message.contains("ctxopt restore-config"), "{message}");
        assert!(
            message.contains(".claude/settings.json: error[E008]"),
            "{message}"
        );
    }

    #[test]
    fn a_differing_or_loose_copy_is_replaced() {
        let env = env();
        let file = env.settings();
        write_old(&file.path, "{}");
        let backup = backup_path(&file.path);
        fs::write(&backup, "{broken").unwrap();
        fs::set_permissions(&backup, fs::Permissions::from_mode(0o644)).unwrap();
        let check = env.check(std::slice::from_ref(&file), later());
        assert_eq!(check.files[0].backup, BackupAction::Written);
        assert_eq!(fs::read(&backup).unwrap(), b"{}");
        let mode = fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, BACKUP_MODE);
    }

    #[test]
    fn restore_keeps_the_broken_file_and_notes_its_write() {
        let env = env();
        let file = env.settings();
        fs::write(backup_path(&file.path), "{}").unwrap();
        fs::create_dir(&file.path).unwrap();
        let outcome = restore(&file, &env.ctx, &env.data, Replace::IfInvalid, later()).unwrap();
        let RestoreOutcome::Restored(restored) = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(fs::read(&file.path).unwrap(), b"{}");
        assert!(restored.broken.unwrap().is_dir());
        assert!(restored.audit_error.is_none());
        let audit = env.audit();
        assert_eq!(audit[0]["action"], "restore");
        assert!(matches!(
            restore(&file, &env.ctx, &env.data, Replace::Always, later()),
            Ok(RestoreOutcome::SameAsBackup)
        ));
    }

    #[test]
    fn restore_leaves_a_valid_file_unless_asked() {
        let env = env();
        let file = env.settings();
        fs::write(backup_path(&file.path), "{}").unwrap();
        fs::write(&file.path, r#"{"model": "opus"}"#).unwrap();
        assert!(matches!(
            restore(&file, &env.ctx, &env.data, Replace::IfInvalid, later()),
            Ok(RestoreOutcome::Valid)
        ));
        assert!(matches!(
            restore(&file, &env.ctx, &env.data, Replace::Always, later()),
            Ok(RestoreOutcome::Restored(_))
        ));
        assert_eq!(fs::read(&file.path).unwrap(), b"{}");
    }

    #[test]
    fn restore_without_a_copy_is_impossible() {
        let env = env();
        let file = env.settings();
        let err = restore(&file, &env.ctx, &env.data, Replace::IfInvalid, later()).unwrap_err();
        assert!(err.is_impossible());
        assert!(err.to_string().contains("no last-known-good copy"), "{err}");
        let skill = ConfigFile {
            path: env.ctx.project.join(".claude/skills/a/SKILL.md"),
            kind: Kind::SkillMd,
        };
        let err = restore(&skill, &env.ctx, &env.data, Replace::Always, later()).unwrap_err();
        assert!(matches!(err, RestoreError::NotKept { .. }));
    }

    #[test]
    fn names_and_shell_words() {
        let env = env();
        let ctx = &env.ctx;
        assert_eq!(
            display(&ctx.project.join(".claude/settings.json"), ctx),
            ".claude/settings.json"
        );
        assert_eq!(
            display(&ctx.home.join(".claude.json"), ctx),
            "~/.claude.json"
        );
        assert_eq!(display(Path::new("/etc/x.json"), ctx), "/etc/x.json");
        assert_eq!(
            shell_path(&ctx.home.join("my dir/it's.json"), &ctx.home),
            r"~/'my dir/it'\''s.json'"
        );
        assert_eq!(shell_path(Path::new("/a/b.json"), &ctx.home), "/a/b.json");
        assert_eq!(
            shell_path(Path::new("/a/b.json"), Path::new("")),
            "/a/b.json"
        );
        assert_eq!(
            backup_path(Path::new("/h/.claude.json")),
            Path::new("/h/.claude.json.backup")
        );
    }
}
