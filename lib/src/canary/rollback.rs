//! Automatic rollback (R6.3, runbook §6.1): while a canary runs, every hook run folds the new
//! lines of `metrics.jsonl` into a small rollup and checks the triggers; the first run that
//! sees one crossed rolls the canary back — exactly once, however many hooks notice at once.
//!
//! **The rollup** `<data>/canary-rollup.jsonl`: the byte offset (and inode) of `metrics.jsonl`
//! read so far, and, for the current stage (keyed by its start), per cohort: hook runs,
//! failed runs, runs slower than the latency threshold, the largest initial tokens (measured
//! and estimated apart), and the times of `Critical` errors of the last 5 minutes. A hook run
//! reads only the lines appended since the previous one — never the whole file — and only
//! parses those that can count (by their bytes: `hook_execution`, `hook_latency`,
//! `token_consumption`, `Critical`), into borrowed fields.
//!
//! The rollup is a log: each run appends its new state as one line (`store::append`, one
//! locked write) and the next run reads the last complete line from the file's tail. Every
//! line is a whole state consistent with its own offset, so two runs that interleave only
//! make the next one fold a few lines again, never twice. Appending costs a few µs; replacing
//! a file by rename costs ext4 a flush and an inode eviction (≈ 0.2 ms in BENCHMARKS.md), on
//! every hook run. Past [`ROLLUP_COMPACT_BYTES`] the log is rewritten atomically to its last
//! line.
//!
//! **Rates** (canary cohort, since the stage began):
//! - error rate = failed `hook_execution` records / all `hook_execution` records;
//! - latency p95 > threshold ⇔ more than 5% of the `hook_latency` records exceed it (exact for
//!   the nearest-rank p95, so no latencies are kept);
//! - error budget: the SLO (`slo.hook_success_target`, default 0.99) allows
//!   `(1 − target) × runs` failures; exhausted when the failures exceed that.
//!
//! The rate triggers need [`super::MIN_SAMPLES`] runs; the token and Critical triggers act at
//! once.
//!
//! **Triggers**: error rate > `metrics_threshold.error_rate`; latency p95 >
//! `metrics_threshold.latency_p95`; a canary session's initial tokens > 40,000 during a stage;
//! initial tokens > 50,000 (measured when known, else estimated — the log says which); 3 or more
//! `Critical` errors within 5 minutes; the error budget exhausted.
//!
//! **One rollback**: under an exclusive lock of `<data>/canary.lock` the accepted state is
//! re-read; if the canary is still on: canary off (state and `canary.json`, atomically, as
//! ctxopt's own write), the deploy snapshot restored (`crate::deploy`, never the data dir or
//! `settings.local.json`), `.deploy/rollback.log` appended (time, trigger, numbers, files), a
//! `canary_rollback` record and a `systemMessage`. A webhook (`SLACK_WEBHOOK_URL`) is notified
//! by a detached `ctxopt notify-webhook`; the hook never waits on the network.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Accepted, Paths, TOKENS_WARNING};
use crate::record::{self, Cohort, Record, Text};
use crate::store::{self, Durability, StoreError};

/// Initial tokens above which a canary rolls back whatever the stage (R5.2).
pub const TOKENS_CRITICAL: u64 = 50_000;
/// Critical errors within [`CRITICAL_WINDOW_MINUTES`] that roll back.
pub const CRITICAL_COUNT: usize = 3;
/// The window of the Critical trigger.
pub const CRITICAL_WINDOW_MINUTES: i64 = 5;
/// The SLO target when the policy names none.
pub const DEFAULT_SLO_TARGET: f64 = 0.99;
/// New bytes of `metrics.jsonl` one hook run folds in at most (the rest next time).
const READ_CAP: u64 = 4 * 1024 * 1024;
/// Size past which the rollup log is rewritten to its last line.
pub const ROLLUP_COMPACT_BYTES: u64 = 256 * 1024;
/// How much of the rollup log's tail is read for its last line: a state line is < 1 KiB, so
/// one page nearly always holds it; else up to 64 KiB (many Critical times in 5 minutes).
const ROLLUP_TAIL_BYTES: [u64; 2] = [4 * 1024, 64 * 1024];

/// One cohort's numbers in the current stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CohortNumbers {
    /// `hook_execution` records.
    pub runs: u64,
    /// Failed ones.
    pub failures: u64,
    /// `hook_latency` records.
    pub latencies: u64,
    /// Those above the latency threshold.
    pub slow: u64,
    /// Largest measured initial tokens.
    pub max_measured: Option<u64>,
    /// Largest estimated initial tokens.
    pub max_estimated: Option<u64>,
}

/// The rollup state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    /// The stage it is for (its start); another stage starts from zero.
    pub stage: Option<DateTime<Utc>>,
    /// `metrics.jsonl`'s inode when last read (a rotation restarts at 0).
    pub inode: u64,
    /// Bytes read so far.
    pub offset: u64,
    /// Per cohort (`canary`, `stable`).
    pub cohorts: BTreeMap<String, CohortNumbers>,
    /// Times of recent `Critical` errors (any cohort: a Critical error is the hooks' own).
    pub criticals: Vec<DateTime<Utc>>,
}

impl Rollup {
    /// The canary cohort's numbers.
    #[must_use]
    pub fn canary(&self) -> CohortNumbers {
        self.cohorts.get("canary").cloned().unwrap_or_default()
    }
}

/// A crossed trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// Which: `error_rate`, `latency_p95`, `initial_tokens_stage`, `initial_tokens`,
    /// `critical_errors`, `error_budget`.
    pub name: &'static str,
    /// The value seen.
    pub value: f64,
    /// The limit.
    pub threshold: f64,
    /// A sentence for the log and the user.
    pub message: String,
}

fn rollup_path(paths: &Paths) -> std::path::PathBuf {
    paths.state.with_file_name("canary-rollup.jsonl")
}

/// The last complete state line of the rollup log, and the log's size; `None` when there is
/// none (a new stage starts).
fn load_rollup(path: &Path) -> (Option<Rollup>, u64) {
    let Ok(mut file) = File::open(path) else {
        return (None, 0);
    };
    let len = file.metadata().map_or(0, |m| m.len());
    for window in ROLLUP_TAIL_BYTES {
        let start = len.saturating_sub(window);
        let mut buf = Vec::with_capacity(usize::try_from(len - start).unwrap_or(0));
        if file.seek(SeekFrom::Start(start)).is_err()
            || (&mut file).take(window).read_to_end(&mut buf).is_err()
        {
            return (None, len);
        }
        // A line still being appended has no newline yet: the one before it counts.
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            if start == 0 {
                return (None, len);
            }
            continue;
        };
        let begin = match buf[..end].iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if start == 0 => 0,
            // The line starts before this window: read a bigger one.
            None => continue,
        };
        return (serde_json::from_slice(&buf[begin..end]).ok(), len);
    }
    (None, len)
}

/// Appends `rollup` as the log's new last line; past [`ROLLUP_COMPACT_BYTES`] the log is
/// replaced by that one line.
fn save_rollup(path: &Path, rollup: &Rollup, len: u64) -> Result<(), StoreError> {
    let mut line = serde_json::to_vec(rollup).unwrap_or_default();
    line.push(b'\n');
    if len > ROLLUP_COMPACT_BYTES {
        store::write_atomic(path, &line, store::FILE_MODE, Durability::NoFsync)
    } else {
        store::append(path, &line)
    }
}

fn lock_path(paths: &Paths) -> std::path::PathBuf {
    paths.state.with_file_name("canary.lock")
}

/// Folds the lines appended to `metrics.jsonl` since the last run into the rollup (reset when
/// the stage changed), prunes old Critical times, and saves it.
pub fn update(
    paths: &Paths,
    accepted: &Accepted,
    now: DateTime<Utc>,
) -> Result<Rollup, StoreError> {
    let path = rollup_path(paths);
    let (loaded, log_len) = load_rollup(&path);
    let mut rollup = loaded.unwrap_or_default();
    if rollup.stage != accepted.stage_started_at {
        rollup = Rollup {
            stage: accepted.stage_started_at,
            ..Rollup::default()
        };
        // A new stage starts reading at the end: records before it are not its own.
        if let Ok(meta) = fs::metadata(&paths.metrics) {
            rollup.inode = meta.ino();
            rollup.offset = meta.len();
        }
    }
    if let Ok(mut file) = File::open(&paths.metrics) {
        let meta = file
            .metadata()
            .map_err(|e| StoreError::new("inspect", &paths.metrics, e))?;
        if meta.ino() != rollup.inode || meta.len() < rollup.offset {
            rollup.inode = meta.ino();
            rollup.offset = 0;
        }
        if meta.len() > rollup.offset {
            file.seek(SeekFrom::Start(rollup.offset))
                .map_err(|e| StoreError::new("read", &paths.metrics, e))?;
            // Sized to what is there: one `read` instead of std's doubling probes from 32 bytes.
            let unread = (meta.len() - rollup.offset).min(READ_CAP);
            let mut buf = Vec::with_capacity(usize::try_from(unread).unwrap_or(0));
            file.take(unread)
                .read_to_end(&mut buf)
                .map_err(|e| StoreError::new("read", &paths.metrics, e))?;
            let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            for line in buf[..complete].split(|&b| b == b'\n') {
                fold(&mut rollup, accepted, line);
            }
            rollup.offset += complete as u64;
        }
    }
    let since = now - Duration::minutes(CRITICAL_WINDOW_MINUTES);
    rollup.criticals.retain(|t| *t >= since);
    save_rollup(&path, &rollup, log_len)?;
    Ok(rollup)
}

/// The fields of a metrics record the rollup counts, borrowed from the line.
#[derive(Deserialize)]
struct Counted<'a> {
    #[serde(borrow)]
    timestamp: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    severity: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    session_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    source: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, deserialize_with = "lenient")]
    success: Option<bool>,
    #[serde(default, deserialize_with = "lenient")]
    duration_ms: Option<f64>,
    #[serde(default, deserialize_with = "lenient")]
    tokens: Option<u64>,
}

/// A field of another type than expected is absent, not an error for the whole line.
#[expect(
    clippy::unnecessary_wraps,
    reason = "serde's `deserialize_with` signature"
)]
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Value::deserialize(deserializer)
        .ok()
        .and_then(|v| T::deserialize(v).ok()))
}

fn fold(rollup: &mut Rollup, accepted: &Accepted, line: &[u8]) {
    // Most lines are other records (`tool_use`, `alert`, …): skipped by their bytes.
    let counts = [
        &b"\"hook_execution\""[..],
        b"\"hook_latency\"",
        b"\"token_consumption\"",
        b"\"Critical\"",
    ]
    .iter()
    .any(|needle| crate::budget::transcript::contains(line, needle));
    if !counts {
        return;
    }
    let Ok(r) = serde_json::from_slice::<Counted<'_>>(line) else {
        return;
    };
    let Some(stage) = rollup.stage else {
        return;
    };
    let Some(at) = r
        .timestamp
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
    else {
        return;
    };
    if at < stage {
        return;
    }
    let kind = r.kind.as_deref();
    if kind == Some("error") && r.severity.as_deref() == Some("Critical") {
        rollup.criticals.push(at);
    }
    let session = r.session_id.as_deref().unwrap_or("");
    let cohort = match accepted.cohort(session) {
        Cohort::Canary => "canary",
        Cohort::Stable => "stable",
    };
    let n = rollup.cohorts.entry(cohort.to_owned()).or_default();
    match kind {
        Some("hook_execution") => {
            n.runs += 1;
            if r.success == Some(false) {
                n.failures += 1;
            }
        }
        Some("hook_latency") => {
            n.latencies += 1;
            if r.duration_ms.is_some_and(|ms| ms > accepted.latency_p95_ms) {
                n.slow += 1;
            }
        }
        Some("token_consumption") => {
            let slot = if r.source.as_deref() == Some("measured") {
                &mut n.max_measured
            } else {
                &mut n.max_estimated
            };
            *slot = (*slot).max(r.tokens);
        }
        _ => {}
    }
}

/// The first trigger the rollup crosses, if any. `slo_target` (clamped to 0–1) is asked only
/// when the canary has failures: with none, no error budget is spent, and a healthy run does
/// not read the policy file for it.
#[must_use]
#[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
pub fn crossed(
    rollup: &Rollup,
    accepted: &Accepted,
    slo_target: &dyn Fn() -> f64,
) -> Option<Trigger> {
    let n = rollup.canary();
    if rollup.criticals.len() >= CRITICAL_COUNT {
        return Some(Trigger {
            name: "critical_errors",
            value: rollup.criticals.len() as f64,
            threshold: CRITICAL_COUNT as f64,
            message: format!(
                "{} Critical errors within {CRITICAL_WINDOW_MINUTES} minutes (limit {CRITICAL_COUNT})",
                rollup.criticals.len()
            ),
        });
    }
    let (tokens, source) = match (n.max_measured, n.max_estimated) {
        (Some(m), _) => (Some(m), "measured"),
        (None, Some(e)) => (Some(e), "estimated"),
        (None, None) => (None, ""),
    };
    if let Some(tokens) = tokens {
        if tokens > TOKENS_CRITICAL {
            return Some(Trigger {
                name: "initial_tokens",
                value: tokens as f64,
                threshold: TOKENS_CRITICAL as f64,
                message: format!(
                    "a canary session's initial tokens {tokens} ({source}) > {TOKENS_CRITICAL}"
                ),
            });
        }
        if tokens > TOKENS_WARNING {
            return Some(Trigger {
                name: "initial_tokens_stage",
                value: tokens as f64,
                threshold: TOKENS_WARNING as f64,
                message: format!(
                    "a canary session's initial tokens {tokens} ({source}) > {TOKENS_WARNING} during the {}% stage",
                    accepted.percentage
                ),
            });
        }
    }
    if n.runs < super::MIN_SAMPLES {
        return None;
    }
    let rate = n.failures as f64 / n.runs as f64;
    if rate > accepted.error_rate {
        return Some(Trigger {
            name: "error_rate",
            value: rate,
            threshold: accepted.error_rate,
            message: format!(
                "canary error rate {:.2}% > {:.2}% ({} of {} hook runs failed)",
                rate * 100.0,
                accepted.error_rate * 100.0,
                n.failures,
                n.runs
            ),
        });
    }
    if n.latencies >= super::MIN_SAMPLES && n.slow as f64 > n.latencies as f64 * 0.05 {
        return Some(Trigger {
            name: "latency_p95",
            value: n.slow as f64 / n.latencies as f64,
            threshold: accepted.latency_p95_ms,
            message: format!(
                "canary hook latency p95 > {} ms ({} of {} runs slower)",
                accepted.latency_p95_ms, n.slow, n.latencies
            ),
        });
    }
    if n.failures == 0 {
        return None;
    }
    let slo_target = slo_target().clamp(0.0, 1.0);
    let budget = (1.0 - slo_target) * n.runs as f64;
    if n.failures as f64 > budget {
        return Some(Trigger {
            name: "error_budget",
            value: n.failures as f64,
            threshold: budget,
            message: format!(
                "the hook-success error budget is exhausted: {} failures > {budget:.1} allowed by the {:.2}% target over {} runs",
                n.failures,
                slo_target * 100.0,
                n.runs
            ),
        });
    }
    None
}

/// What restoring the deploy snapshot did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Files restored.
    pub files: Vec<String>,
    /// Whether the restore wrote its own `.deploy/rollback.log` line (then the rollback does
    /// not write a second one).
    pub logged: bool,
}

/// Why the deploy snapshot was not restored, and whether that was logged already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRestored {
    /// Why.
    pub reason: String,
    /// Whether `.deploy/rollback.log` already has a line for it.
    pub logged: bool,
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq)]
pub struct RolledBack {
    /// The trigger.
    pub trigger: Trigger,
    /// Files restored from the deploy snapshot.
    pub files: Vec<String>,
    /// Why the snapshot could not be restored, when it could not.
    pub snapshot_error: Option<String>,
}

/// Rolls the canary back for `trigger`, exactly once: `None` when another process already did
/// (or holds the lock; it will).
pub fn roll_back(
    paths: &Paths,
    trigger: &Trigger,
    now: DateTime<Utc>,
    restore: &dyn Fn(&str) -> Result<Restored, NotRestored>,
) -> Result<Option<RolledBack>, StoreError> {
    let lock_file = lock_path(paths);
    if let Some(dir) = lock_file.parent() {
        store::ensure_dir(dir)?;
    }
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_file)
        .map_err(|e| StoreError::new("open", &lock_file, e))?;
    if lock.try_lock().is_err() {
        return Ok(None);
    }
    let accepted = super::load(paths);
    if !accepted.enabled {
        return Ok(None);
    }
    let mut next = accepted.clone();
    next.enabled = false;
    next.percentage = 0;
    next.stage_started_at = None;
    next.ended = Some(String::from("rolled-back"));
    let body = format!(
        "{{\n  \"enabled\": false,\n  \"percentage\": 0,\n  \"duration_minutes\": {},\n  \"metrics_threshold\": {{\"error_rate\": {}, \"latency_p95\": {}}}\n}}\n",
        accepted.duration_minutes, accepted.error_rate, accepted.latency_p95_ms
    );
    let before = fs::read(&paths.file).ok();
    store::write_atomic(&paths.file, body.as_bytes(), 0o644, Durability::Fsync)?;
    next.file = Some(super::FileKey {
        stat: super::stat_key(&paths.file),
        sha256: Some(crate::config::lastgood::sha256_hex(body.as_bytes())),
    });
    super::save(paths, &next)?;
    crate::config::lastgood::note_own_write(
        &crate::store::DataDir::of_project(&paths.project),
        &paths.file,
        before.as_deref(),
        Some(body.as_bytes()),
        "canary-rollback",
    )?;
    let reason = format!(
        "{} value={} threshold={} stage={}%: {}",
        trigger.name, trigger.value, trigger.threshold, accepted.percentage, trigger.message
    );
    let (files, snapshot_error, logged) = match restore(&reason) {
        Ok(done) => (done.files, None, done.logged),
        Err(err) => (Vec::new(), Some(err.reason), err.logged),
    };
    if !logged {
        let line = format!(
            "{} rollback trigger=automatic ({reason}) files={}{}\n",
            record::timestamp(now),
            if files.is_empty() {
                String::from("-")
            } else {
                files.join(",")
            },
            snapshot_error
                .as_deref()
                .map_or_else(String::new, |e| format!(" snapshot not restored: {e}"))
        );
        let log = paths.history.with_file_name("rollback.log");
        if let Some(dir) = log.parent() {
            store::ensure_dir(dir)?;
        }
        store::append(&log, line.as_bytes())?;
    }
    drop(lock);
    Ok(Some(RolledBack {
        trigger: trigger.clone(),
        files,
        snapshot_error,
    }))
}

/// The record of a rollback.
#[must_use]
pub fn record_of(done: &RolledBack) -> Record {
    Record::CanaryRollback {
        trigger: done.trigger.name.to_owned(),
        value: done.trigger.value,
        threshold: done.trigger.threshold,
        message: Text::new(&done.trigger.message, record::MAX_MESSAGE_CHARS),
        files: done.files.clone(),
    }
}

/// The message for the user.
#[must_use]
pub fn message_of(done: &RolledBack) -> String {
    format!(
        "ctxopt canary: rolled back automatically — {}. The canary is off; {}. See .deploy/rollback.log.",
        done.trigger.message,
        match (&done.snapshot_error, done.files.len()) {
            (Some(err), _) => format!("the deploy snapshot was not restored ({err})"),
            (None, 0) => String::from("the deploy snapshot had nothing to restore"),
            (None, n) => format!("{n} files restored from the deploy snapshot"),
        }
    )
}

/// Restores the project's deploy snapshot (`.deploy/`, made by `ctxopt deploy start`) as an
/// automatic rollback for `reason` ([`crate::deploy`]): verified first, never the data dir or
/// `settings.local.json`; the restore logs its own `rollback.log` line once it starts writing.
pub fn restore_snapshot(
    project: &Path,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Restored, NotRestored> {
    let plan = crate::deploy::plan_snapshot(project).map_err(|err| NotRestored {
        reason: record::chain(&err),
        logged: false,
    })?;
    crate::deploy::apply(
        plan,
        &crate::deploy::Trigger::Automatic(reason.to_owned()),
        now,
    )
    .map(|done| Restored {
        files: done.files(),
        logged: true,
    })
    .map_err(|err| NotRestored {
        reason: record::chain(&err),
        logged: true,
    })
}
