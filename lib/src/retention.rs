//! Retention (R2.5): what leaves the data dir, and when. Runbook section 10 sets the defaults
//! ([`Retention`]): metrics 30 days, `hook_execution.log` 7, `audit.log` 90, state 7.
//!
//! - `metrics.jsonl`: records older than `metrics_days` move into compressed monthly archives,
//!   `archive/metrics-YYYY-MM.jsonl.gz`, by the (UTC) month of their own `timestamp`. An
//!   archive that exists gets a new gzip member appended (multi-member gzip is valid: `zcat`
//!   and `flate2::read::MultiGzDecoder` read all members), written by [`store::write_atomic`]
//!   with fsync.
//! - `hook_execution.log` (lines start with an RFC 3339 timestamp and a space) and `audit.log`
//!   (JSON lines with `timestamp`): lines older than their retention are dropped.
//! - `state/`: files not modified for `state_days` are removed (never the prune lock).
//!
//! A line without a readable timestamp is always kept: retention never drops what it cannot
//! date.
//!
//! **Rotation protocol** — appenders ([`store::append`]) must lose nothing. For each file:
//! open it, take the exclusive lock appenders take, read it whole, write the archives
//! (fsync'd), then rename a file holding the kept lines over the path *while still holding the
//! lock on the old file*, and only then unlock. An appender that opened the old file waits on
//! its lock, then sees (the inode check in [`store::append`]) that the path names a new file,
//! and reopens. A crash (or a failed rename) after an archive is written and before the rename
//! leaves its records in `metrics.jsonl` as well, and the next prune archives them again:
//! records can be duplicated by a crash, never lost. Files are read whole, not streamed: a
//! month of metrics is megabytes, and holding it keeps the protocol simple.
//!
//! One prune at a time: `state/prune.lock`, taken with `try_lock`; a prune that finds it busy
//! does nothing and says so ([`PruneReport::skipped`]).
//!
//! [`check_at_session_start`] is the cheap part, run by every SessionStart: one small read of
//! the head of each file; when the oldest record is due it starts a detached `ctxopt prune`.
//! It must never prune itself — SessionStart has a latency budget and a prune reads every
//! record.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Deserialize;

use crate::hook::Context;
use crate::policy::Retention;
use crate::record;
use crate::store::{self, DataDir, Durability, FILE_MODE, StoreError};

/// The prune lock's file name in `state/`.
pub const PRUNE_LOCK: &str = "prune.lock";

/// The marker SessionStart writes in `state/` when it starts a prune.
pub const PRUNE_REQUESTED: &str = "prune-requested";

/// How long after a requested prune SessionStart does not request another, so a prune that
/// cannot finish (or a file it cannot shrink) does not cost a process per session start.
const REQUEST_INTERVAL: TimeDelta = TimeDelta::hours(1);

/// How much of a file's head the SessionStart check reads: one read, enough for many lines.
const HEAD_BYTES: usize = 64 * 1024;

/// How many times a prune reopens a file found replaced under it while waiting for its lock.
const REOPEN_ATTEMPTS: usize = 16;

/// Why retention could not run.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// A file operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The running hook's directory is unknown, so its sibling `ctxopt` cannot be found.
    #[error("failed to find the ctxopt binary: the hook binary's directory is unknown")]
    NoBinDir,
    /// There is no `ctxopt` next to the hook binary.
    #[error("failed to find the ctxopt binary at {}", path.display())]
    MissingBinary {
        /// Where it was looked for.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `ctxopt prune` could not be started.
    #[error("failed to start {} prune", program.display())]
    Spawn {
        /// The `ctxopt` binary.
        program: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// What one prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Another prune held the lock, so this one did nothing.
    pub skipped: bool,
    /// Metrics lines moved into archives.
    pub metrics_archived: u64,
    /// Metrics lines kept.
    pub metrics_kept: u64,
    /// Of the kept metrics lines, those kept because they have no readable timestamp.
    pub metrics_undated: u64,
    /// The archives written to, one per month, oldest first.
    pub archives: Vec<Archived>,
    /// What happened to `hook_execution.log`.
    pub hook_log: Trimmed,
    /// What happened to `audit.log`.
    pub audit: Trimmed,
    /// Stale files removed from `state/`.
    pub state_removed: u64,
}

/// Lines moved into one monthly archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    /// `YYYY-MM`, the UTC month of the records.
    pub month: String,
    /// The archive file.
    pub path: PathBuf,
    /// How many records this prune added to it.
    pub records: u64,
}

/// What trimming one log did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Lines dropped as older than the retention.
    pub dropped: u64,
    /// Lines kept.
    pub kept: u64,
    /// Of the kept lines, those kept because they have no readable timestamp.
    pub undated: u64,
}

/// Runs retention over `data` at `now`. A missing data dir or file is nothing to do.
pub fn prune(
    data: &DataDir,
    retention: &Retention,
    now: DateTime<Utc>,
) -> Result<PruneReport, RetentionError> {
    if !data.root().exists() {
        return Ok(PruneReport::default());
    }
    let state = data.state_dir();
    store::ensure_dir(&state)?;
    let lock_path = state.join(PRUNE_LOCK);
    let lock = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(&lock_path)
        .map_err(|err| store_error("open", &lock_path, err))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Ok(PruneReport {
                skipped: true,
                ..PruneReport::default()
            });
        }
        Err(TryLockError::Error(err)) => return Err(store_error("lock", &lock_path, err).into()),
    }

    let (metrics, archives) = rotate(
        &data.metrics(),
        Dating::JsonField,
        cutoff(now, retention.metrics_days),
        |removed| write_archives(&data.archive_dir(), removed),
    )?;
    let (hook_log, _) = rotate(
        &data.hook_log(),
        Dating::LogPrefix,
        cutoff(now, retention.hook_log_days),
        |_| Ok(()),
    )?;
    let (audit, _) = rotate(
        &data.audit_log(),
        Dating::JsonField,
        cutoff(now, retention.audit_days),
        |_| Ok(()),
    )?;
    let state_removed = remove_stale_state(&state, cutoff(now, retention.state_days))?;
    drop(lock);
    Ok(PruneReport {
        skipped: false,
        metrics_archived: metrics.dropped,
        metrics_kept: metrics.kept,
        metrics_undated: metrics.undated,
        archives: archives.unwrap_or_default(),
        hook_log,
        audit,
        state_removed,
    })
}

/// The cheap check at SessionStart (see the module doc): when the oldest record of a data file
/// is past its retention, starts `ctxopt prune --project <project> --quiet` detached, at most
/// once an hour. The `ctxopt` binary is the hook binary's sibling; its absence is an error.
pub fn check_at_session_start(ctx: &Context, retention: &Retention) -> Result<(), RetentionError> {
    if !prune_due(&ctx.data, retention, ctx.now) {
        return Ok(());
    }
    let state = ctx.data.state_dir();
    let marker = state.join(PRUNE_REQUESTED);
    if requested_recently(&marker, ctx.now) {
        return Ok(());
    }
    let program = ctx
        .bin_dir()
        .ok_or(RetentionError::NoBinDir)?
        .join("ctxopt");
    if let Err(source) = fs::metadata(&program) {
        return Err(RetentionError::MissingBinary {
            path: program,
            source,
        });
    }
    store::ensure_dir(&state)?;
    store::write_atomic(
        &marker,
        record::timestamp(ctx.now).as_bytes(),
        FILE_MODE,
        Durability::NoFsync,
    )?;
    // Detached (`crate::process::spawn_detached`): null stdio, so it holds none of the hook's
    // pipes; its own process group, so signals meant for the hook's group do not stop the prune
    // half-way; never waited for.
    crate::process::spawn_detached(
        &program,
        &[
            "prune".as_ref(),
            "--project".as_ref(),
            ctx.project.as_os_str(),
            "--quiet".as_ref(),
        ],
    )
    .map_err(|source| RetentionError::Spawn { program, source })
}

/// Whether the oldest dated line of any data file is past its retention.
fn prune_due(data: &DataDir, retention: &Retention, now: DateTime<Utc>) -> bool {
    [
        (data.metrics(), Dating::JsonField, retention.metrics_days),
        (data.hook_log(), Dating::LogPrefix, retention.hook_log_days),
        (data.audit_log(), Dating::JsonField, retention.audit_days),
    ]
    .into_iter()
    .any(|(path, dating, days)| {
        oldest_time(&path, dating).is_some_and(|time| is_past(time, cutoff(now, days)))
    })
}

/// The time of the first dated line in the head of `path`, from one read of at most
/// [`HEAD_BYTES`]. Not only the first line: an undated first line is kept by every prune and
/// would otherwise hide the old records behind it for good.
fn oldest_time(path: &Path, dating: Dating) -> Option<DateTime<Utc>> {
    let mut file = File::open(path).ok()?;
    let mut head = vec![0; HEAD_BYTES];
    let len = file.read(&mut head).ok()?;
    head.truncate(len);
    head.split(|&b| b == b'\n')
        .find_map(|line| dating.time(line))
}

/// Whether SessionStart requested a prune less than [`REQUEST_INTERVAL`] before `now`.
fn requested_recently(marker: &Path, now: DateTime<Utc>) -> bool {
    fs::metadata(marker)
        .and_then(|meta| meta.modified())
        .is_ok_and(|modified| now - DateTime::<Utc>::from(modified) < REQUEST_INTERVAL)
}

/// How a file's lines carry their time.
#[derive(Debug, Clone, Copy)]
enum Dating {
    /// A JSON object with an RFC 3339 `timestamp` field (`metrics.jsonl`, `audit.log`).
    JsonField,
    /// An RFC 3339 timestamp, then a space (`hook_execution.log`).
    LogPrefix,
}

#[derive(Deserialize)]
struct Stamped {
    timestamp: String,
}

impl Dating {
    /// The line's time, if it has a readable one.
    fn time(self, line: &[u8]) -> Option<DateTime<Utc>> {
        let text = match self {
            Self::JsonField => serde_json::from_slice::<Stamped>(line).ok()?.timestamp,
            Self::LogPrefix => {
                let end = line.iter().position(|&b| b == b' ')?;
                std::str::from_utf8(&line[..end]).ok()?.to_owned()
            }
        };
        DateTime::parse_from_rfc3339(&text)
            .ok()
            .map(|time| time.with_timezone(&Utc))
    }
}

/// The instant before which a line is past a retention of `days`; `None` when that is before
/// the calendar's start (nothing is that old).
fn cutoff(now: DateTime<Utc>, days: u32) -> Option<DateTime<Utc>> {
    now.checked_sub_signed(TimeDelta::try_days(i64::from(days))?)
}

fn is_past(time: DateTime<Utc>, cutoff: Option<DateTime<Utc>>) -> bool {
    cutoff.is_some_and(|cutoff| time < cutoff)
}

/// One file's lines, sorted by what retention does with them.
#[derive(Default)]
struct Sorted<'a> {
    /// The kept lines, each with its newline, in their order.
    kept: Vec<u8>,
    trimmed: Trimmed,
    /// The lines past retention, with their time, in their order.
    removed: Vec<(DateTime<Utc>, &'a [u8])>,
}

/// Sorts `content` into kept and removed lines; blank lines are neither (they carry nothing).
fn sort_lines(content: &[u8], dating: Dating, cutoff: Option<DateTime<Utc>>) -> Sorted<'_> {
    let mut sorted = Sorted::default();
    for line in content.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match dating.time(line) {
            Some(time) if is_past(time, cutoff) => {
                sorted.removed.push((time, line));
                sorted.trimmed.dropped += 1;
            }
            time => {
                sorted.kept.extend_from_slice(line);
                sorted.kept.push(b'\n');
                sorted.trimmed.kept += 1;
                if time.is_none() {
                    sorted.trimmed.undated += 1;
                }
            }
        }
    }
    sorted
}

/// Applies the rotation protocol (module doc) to `path`: under its lock, hands the lines past
/// `cutoff` to `before_rename` (which must make them durable elsewhere, or not need to), then
/// renames the kept lines over the path, then unlocks. A file with nothing to remove is left
/// alone; a missing file is nothing to do.
fn rotate<T>(
    path: &Path,
    dating: Dating,
    cutoff: Option<DateTime<Utc>>,
    before_rename: impl FnOnce(&[(DateTime<Utc>, &[u8])]) -> Result<T, RetentionError>,
) -> Result<(Trimmed, Option<T>), RetentionError> {
    let Some(mut file) = open_locked(path)? else {
        return Ok((Trimmed::default(), None));
    };
    let mut content = Vec::new();
    file.read_to_end(&mut content)
        .map_err(|err| store_error("read", path, err))?;
    let sorted = sort_lines(&content, dating, cutoff);
    if sorted.removed.is_empty() {
        return Ok((sorted.trimmed, None));
    }
    let done = before_rename(&sorted.removed)?;
    store::write_atomic(path, &sorted.kept, FILE_MODE, Durability::Fsync)?;
    drop(file);
    Ok((sorted.trimmed, Some(done)))
}

/// Opens `path` and takes its exclusive lock, reopening if the path was replaced meanwhile;
/// `None` if there is no file.
fn open_locked(path: &Path) -> Result<Option<File>, StoreError> {
    for _ in 0..REOPEN_ATTEMPTS {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(store_error("open", path, err)),
        };
        file.lock().map_err(|err| store_error("lock", path, err))?;
        let current = match (file.metadata(), fs::metadata(path)) {
            (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
            _ => false,
        };
        if current {
            return Ok(Some(file));
        }
    }
    Err(store_error(
        "lock",
        path,
        io::Error::other("the file kept being replaced while waiting for its lock"),
    ))
}

/// Appends `removed` to the monthly archives, one new gzip member per month, each archive
/// written atomically and fsync'd.
fn write_archives(
    archive_dir: &Path,
    removed: &[(DateTime<Utc>, &[u8])],
) -> Result<Vec<Archived>, RetentionError> {
    let mut months: BTreeMap<(i32, u32), (Vec<u8>, u64)> = BTreeMap::new();
    for (time, line) in removed {
        let (lines, records) = months.entry((time.year(), time.month())).or_default();
        lines.extend_from_slice(line);
        lines.push(b'\n');
        *records += 1;
    }
    store::ensure_dir(archive_dir)?;
    let mut archived = Vec::with_capacity(months.len());
    for ((year, month), (lines, records)) in months {
        let month = format!("{year:04}-{month:02}");
        let path = archive_dir.join(format!("metrics-{month}.jsonl.gz"));
        append_member(&path, &lines)?;
        archived.push(Archived {
            month,
            path,
            records,
        });
    }
    Ok(archived)
}

/// Rewrites the gzip file at `path` as its old bytes plus one new member holding `lines`.
fn append_member(path: &Path, lines: &[u8]) -> Result<(), StoreError> {
    let old = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(store_error("read", path, err)),
    };
    let mut encoder = GzEncoder::new(old, Compression::default());
    let bytes = encoder
        .write_all(lines)
        .and_then(|()| encoder.finish())
        .map_err(|err| store_error("compress into", path, err))?;
    store::write_atomic(path, &bytes, FILE_MODE, Durability::Fsync)
}

/// Removes the files directly in `state/` last modified before `cutoff`, except the prune
/// lock. Directories are left alone. A state file rewritten between the check and the removal
/// is lost; that is allowed, as state is recomputed when missing.
fn remove_stale_state(state: &Path, cutoff: Option<DateTime<Utc>>) -> Result<u64, StoreError> {
    let Some(cutoff) = cutoff else {
        return Ok(0);
    };
    let entries = match fs::read_dir(state) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(store_error("list", state, err)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|err| store_error("list", state, err))?;
        if entry.file_name() == PRUNE_LOCK {
            continue;
        }
        let path = entry.path();
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(store_error("inspect", &path, err)),
        };
        if meta.is_dir() {
            continue;
        }
        let modified = meta
            .modified()
            .map_err(|err| store_error("inspect", &path, err))?;
        if DateTime::<Utc>::from(modified) >= cutoff {
            continue;
        }
        match fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(store_error("remove", &path, err)),
        }
    }
    Ok(removed)
}

fn store_error(action: &'static str, path: &Path, source: io::Error) -> StoreError {
    StoreError {
        action,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant, SystemTime};

    use chrono::TimeZone;
    use flate2::read::{GzDecoder, MultiGzDecoder};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
    }

    fn days_ago(days: i64) -> DateTime<Utc> {
        now() - TimeDelta::days(days)
    }

    fn metric(time: DateTime<Utc>, id: &str) -> String {
        format!(
            "{{\"timestamp\":\"{}\",\"type\":\"hook_latency\",\"id\":\"{id}\"}}\n",
            record::timestamp(time)
        )
    }

    fn log_line(time: DateTime<Utc>, id: &str) -> String {
        format!(
            "{} ctxopt-post-tool-use PostToolUse ok 1.000ms session={id}\n",
            record::timestamp(time)
        )
    }

    fn data_dir() -> (tempfile::TempDir, DataDir) {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::of_project(tmp.path());
        data.ensure().unwrap();
        (tmp, data)
    }

    fn gunzip(path: &Path) -> String {
        let mut text = String::new();
        MultiGzDecoder::new(File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    fn archive(data: &DataDir, month: &str) -> PathBuf {
        data.archive_dir().join(format!("metrics-{month}.jsonl.gz"))
    }

    #[test]
    fn old_metrics_move_to_the_archive_and_new_ones_stay() {
        let (_tmp, data) = data_dir();
        let old = metric(days_ago(40), "old");
        let new = metric(days_ago(1), "new");
        fs::write(data.metrics(), format!("{old}{new}")).unwrap();

        let report = prune(&data, &Retention::default(), now()).unwrap();

        assert_eq!(fs::read_to_string(data.metrics()).unwrap(), new);
        assert_eq!(gunzip(&archive(&data, "2026-10")), old);
        assert_eq!((report.metrics_archived, report.metrics_kept), (1, 1));
        assert_eq!(
            report.archives,
            vec![Archived {
                month: "2026-10".into(),
                path: archive(&data, "2026-10"),
                records: 1,
            }]
        );
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&archive(&data, "2026-10")), FILE_MODE);
        assert_eq!(mode(&data.archive_dir()), store::DIR_MODE);
        assert_eq!(mode(&data.metrics()), FILE_MODE);
    }

    #[test]
    fn archives_are_grouped_by_the_month_of_each_record() {
        let (_tmp, data) = data_dir();
        let sep = metric(
            Utc.with_ymd_and_hms(2026, 9, 30, 23, 59, 59).unwrap(),
            "sep",
        );
        let oct1 = metric(Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap(), "oct1");
        let oct2 = metric(Utc.with_ymd_and_hms(2026, 10, 20, 0, 0, 0).unwrap(), "oct2");
        let aug = metric(Utc.with_ymd_and_hms(2026, 8, 2, 0, 0, 0).unwrap(), "aug");
        fs::write(data.metrics(), format!("{sep}{oct1}{aug}{oct2}")).unwrap();

        let report = prune(&data, &Retention::default(), now()).unwrap();

        assert_eq!(gunzip(&archive(&data, "2026-08")), aug);
        assert_eq!(gunzip(&archive(&data, "2026-09")), sep);
        assert_eq!(gunzip(&archive(&data, "2026-10")), format!("{oct1}{oct2}"));
        let months: Vec<_> = report.archives.iter().map(|a| a.month.as_str()).collect();
        assert_eq!(months, ["2026-08", "2026-09", "2026-10"]);
        assert_eq!(fs::read_to_string(data.metrics()).unwrap(), "");
        assert_eq!(report.metrics_archived, 4);
    }

    #[test]
    fn an_existing_archive_gets_a_second_gzip_member() {
        let (_tmp, data) = data_dir();
        let first = metric(days_ago(50), "first");
        fs::write(data.metrics(), &first).unwrap();
        prune(&data, &Retention::default(), now()).unwrap();
        let second = metric(days_ago(45), "second");
        store::append(&data.metrics(), second.as_bytes()).unwrap();
        prune(&data, &Retention::default(), now()).unwrap();

        let path = archive(&data, "2026-10");
        assert_eq!(gunzip(&path), format!("{first}{second}"));
        let mut single = String::new();
        GzDecoder::new(File::open(&path).unwrap())
            .read_to_string(&mut single)
            .unwrap();
        assert_eq!(
            single, first,
            "the second batch must be its own gzip member"
        );
    }

    #[test]
    fn lines_without_a_readable_timestamp_stay() {
        let (_tmp, data) = data_dir();
        let old = metric(days_ago(40), "old");
        let undated = [
            "not json at all".to_owned(),
            r#"{"type":"no_timestamp"}"#.to_owned(),
            r#"{"timestamp":"yesterday"}"#.to_owned(),
            r#"{"timestamp":12345}"#.to_owned(),
            r#"{"timestamp":"2026-10-01T00:00:00.000Z""#.to_owned(),
        ];
        let mut content = old.clone();
        for line in &undated {
            content.push_str(line);
            content.push('\n');
        }
        let mut bytes = content.into_bytes();
        bytes.extend_from_slice(b"\xff\xfe binary\n\n   \n");
        fs::write(data.metrics(), &bytes).unwrap();

        let report = prune(&data, &Retention::default(), now()).unwrap();

        let mut expected = undated.join("\n").into_bytes();
        expected.extend_from_slice(b"\n\xff\xfe binary\n");
        assert_eq!(fs::read(data.metrics()).unwrap(), expected);
        assert_eq!(gunzip(&archive(&data, "2026-10")), old);
        assert_eq!(report.metrics_kept, 6);
        assert_eq!(report.metrics_undated, 6);
    }

    #[test]
    fn a_last_line_without_newline_is_kept_whole() {
        let (_tmp, data) = data_dir();
        let old = metric(days_ago(40), "old");
        let new = metric(days_ago(1), "new");
        fs::write(data.metrics(), format!("{old}{}", new.trim_end())).unwrap();
        prune(&data, &Retention::default(), now()).unwrap();
        assert_eq!(fs::read_to_string(data.metrics()).unwrap(), new);
    }

    #[test]
    fn hook_log_and_audit_drop_lines_past_their_retention() {
        let (_tmp, data) = data_dir();
        let log_old = log_line(days_ago(8), "old");
        let log_new = log_line(days_ago(6), "new");
        let log_undated = "garbage line without a time\n";
        fs::write(data.hook_log(), format!("{log_old}{log_undated}{log_new}")).unwrap();
        let audit_old = metric(days_ago(91), "old");
        let audit_new = metric(days_ago(40), "kept");
        fs::write(data.audit_log(), format!("{audit_old}{audit_new}")).unwrap();

        let report = prune(&data, &Retention::default(), now()).unwrap();

        assert_eq!(
            fs::read_to_string(data.hook_log()).unwrap(),
            format!("{log_undated}{log_new}")
        );
        assert_eq!(fs::read_to_string(data.audit_log()).unwrap(), audit_new);
        assert_eq!(
            report.hook_log,
            Trimmed {
                dropped: 1,
                kept: 2,
                undated: 1
            }
        );
        assert_eq!(
            report.audit,
            Trimmed {
                dropped: 1,
                kept: 1,
                undated: 0
            }
        );
        assert!(
            !data.archive_dir().exists(),
            "logs are dropped, not archived"
        );
    }

    #[test]
    fn a_file_with_nothing_old_is_not_rewritten() {
        let (_tmp, data) = data_dir();
        fs::write(data.metrics(), metric(days_ago(1), "new")).unwrap();
        let before = fs::metadata(data.metrics()).unwrap().ino();
        let report = prune(&data, &Retention::default(), now()).unwrap();
        assert_eq!(fs::metadata(data.metrics()).unwrap().ino(), before);
        assert_eq!(report.metrics_kept, 1);
        assert!(report.archives.is_empty());
    }

    #[test]
    fn stale_state_files_are_removed_but_not_the_prune_lock() {
        let (_tmp, data) = data_dir();
        let state = data.state_dir();
        store::ensure_dir(&state).unwrap();
        let eight_days = SystemTime::from(days_ago(8));
        for name in ["session-old.json", PRUNE_LOCK] {
            let file = File::create(state.join(name)).unwrap();
            file.set_modified(eight_days).unwrap();
        }
        fs::write(state.join("session-new.json"), "{}").unwrap();
        fs::create_dir(state.join("subdir")).unwrap();

        let report = prune(&data, &Retention::default(), Utc::now()).unwrap();

        assert_eq!(report.state_removed, 1);
        assert!(!state.join("session-old.json").exists());
        assert!(state.join(PRUNE_LOCK).exists());
        assert!(state.join("session-new.json").exists());
        assert!(state.join("subdir").exists());
    }

    #[test]
    fn a_busy_prune_lock_skips_the_prune() {
        let (_tmp, data) = data_dir();
        let old = metric(days_ago(40), "old");
        fs::write(data.metrics(), &old).unwrap();
        store::ensure_dir(&data.state_dir()).unwrap();
        let held = File::create(data.state_dir().join(PRUNE_LOCK)).unwrap();
        held.lock().unwrap();

        let report = prune(&data, &Retention::default(), now()).unwrap();

        assert!(report.skipped);
        assert_eq!(fs::read_to_string(data.metrics()).unwrap(), old);
        drop(held);
        assert!(!prune(&data, &Retention::default(), now()).unwrap().skipped);
        assert_eq!(fs::read_to_string(data.metrics()).unwrap(), "");
    }

    #[test]
    fn a_missing_data_dir_is_nothing_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::of_project(tmp.path());
        let report = prune(&data, &Retention::default(), now()).unwrap();
        assert_eq!(report, PruneReport::default());
        assert!(!data.root().exists(), "prune must not create the data dir");
    }

    #[test]
    fn a_huge_retention_keeps_everything() {
        let (_tmp, data) = data_dir();
        let ancient = metric(Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(), "a");
        fs::write(data.metrics(), &ancient).unwrap();
        let retention = Retention {
            metrics_days: u32::MAX,
            ..Retention::default()
        };
        let report = prune(&data, &retention, now()).unwrap();
        assert_eq!(report.metrics_kept, 1);
        assert_eq!(fs::read_to_string(data.metrics()).unwrap(), ancient);
    }

    #[test]
    fn the_oldest_time_skips_undated_lines_at_the_head() {
        let (_tmp, data) = data_dir();
        let old = metric(days_ago(40), "old");
        fs::write(data.metrics(), format!("garbage\n{{}}\n{old}")).unwrap();
        assert_eq!(
            oldest_time(&data.metrics(), Dating::JsonField),
            Some(
                DateTime::parse_from_rfc3339(&record::timestamp(days_ago(40)))
                    .unwrap()
                    .into()
            )
        );
        fs::write(data.hook_log(), log_line(days_ago(8), "x")).unwrap();
        assert!(oldest_time(&data.hook_log(), Dating::LogPrefix).is_some());
        assert_eq!(oldest_time(&data.audit_log(), Dating::JsonField), None);
    }

    /// A context whose `bin_dir` holds a fake `ctxopt` that records its arguments.
    fn context_with_fake_ctxopt(tmp: &Path) -> Context {
        let bin = tmp.join("bin");
        fs::create_dir(&bin).unwrap();
        let script = bin.join("ctxopt");
        fs::write(
            &script,
            "#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/args.tmp\"\nmv \"$(dirname \"$0\")/args.tmp\" \"$(dirname \"$0\")/args\"\n",
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        wait_until_executable(&script);
        let project = tmp.join("project");
        let locations = crate::config::discover::Locations::empty_under(&project);
        let ctx = Context::new(project, Utc::now(), Some(bin), locations);
        ctx.data.ensure().unwrap();
        ctx
    }

    /// Another test thread's fork may briefly hold the script open for writing (ETXTBSY).
    fn wait_until_executable(script: &Path) {
        const ETXTBSY: i32 = 26;
        for _ in 0..100 {
            match std::process::Command::new(script).arg("probe").status() {
                Err(err) if err.raw_os_error() == Some(ETXTBSY) => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                status => {
                    assert!(status.unwrap().success());
                    fs::remove_file(script.with_file_name("args")).unwrap();
                    return;
                }
            }
        }
    }

    fn wait_for(path: &Path) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if path.exists() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn session_start_check_starts_a_detached_prune_when_due() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context_with_fake_ctxopt(tmp.path());
        fs::write(
            ctx.data.hook_log(),
            log_line(ctx.now - TimeDelta::days(8), "old"),
        )
        .unwrap();

        check_at_session_start(&ctx, &Retention::default()).unwrap();

        let args = tmp.path().join("bin/args");
        assert!(wait_for(&args), "ctxopt was not started");
        assert_eq!(
            fs::read_to_string(&args).unwrap().trim_end(),
            format!("prune --project {} --quiet", ctx.project.display())
        );
        assert!(ctx.data.state_dir().join(PRUNE_REQUESTED).exists());

        fs::remove_file(&args).unwrap();
        check_at_session_start(&ctx, &Retention::default()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !args.exists(),
            "a second request within the hour must not spawn"
        );
    }

    #[test]
    fn session_start_check_does_nothing_for_fresh_data() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context_with_fake_ctxopt(tmp.path());
        fs::write(
            ctx.data.metrics(),
            metric(ctx.now - TimeDelta::days(29), "fresh"),
        )
        .unwrap();
        fs::write(
            ctx.data.hook_log(),
            log_line(ctx.now - TimeDelta::days(6), "fresh"),
        )
        .unwrap();
        fs::write(ctx.data.audit_log(), "not json\n").unwrap();

        check_at_session_start(&ctx, &Retention::default()).unwrap();

        assert!(!ctx.data.state_dir().join(PRUNE_REQUESTED).exists());
    }

    #[test]
    fn session_start_check_without_ctxopt_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context_with_fake_ctxopt(tmp.path());
        fs::remove_file(tmp.path().join("bin/ctxopt")).unwrap();
        fs::write(
            ctx.data.metrics(),
            metric(ctx.now - TimeDelta::days(40), "old"),
        )
        .unwrap();

        let err = check_at_session_start(&ctx, &Retention::default()).unwrap_err();

        assert!(
            matches!(err, RetentionError::MissingBinary { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("failed to find the ctxopt binary at "),
            "{err}"
        );
        assert!(!ctx.data.state_dir().join(PRUNE_REQUESTED).exists());
    }

    #[test]
    fn a_recent_request_is_not_repeated() {
        let tmp = tempfile::tempdir().unwrap();
        let with_binary = context_with_fake_ctxopt(tmp.path());
        let ctx = Context::new(
            with_binary.project.clone(),
            with_binary.now,
            None,
            with_binary.locations.clone(),
        );
        fs::write(
            ctx.data.metrics(),
            metric(ctx.now - TimeDelta::days(40), "old"),
        )
        .unwrap();
        store::ensure_dir(&ctx.data.state_dir()).unwrap();
        let marker = ctx.data.state_dir().join(PRUNE_REQUESTED);
        fs::write(&marker, "").unwrap();

        check_at_session_start(&ctx, &Retention::default()).unwrap();

        File::options()
            .write(true)
            .open(&marker)
            .unwrap()
            .set_modified(SystemTime::from(ctx.now - TimeDelta::hours(2)))
            .unwrap();
        let err = check_at_session_start(&ctx, &Retention::default()).unwrap_err();
        assert!(matches!(err, RetentionError::NoBinDir), "{err:?}");
    }
}
