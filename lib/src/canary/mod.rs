//! Canary releases (R6, runbook §5.1): cohorts, the plan's transitions, and the in-process
//! guard that keeps every session at a percentage the plan allowed.
//!
//! - **Cohort**: a session's bucket is the first 8 bytes of SHA-256 of its `session_id`, read
//!   as a big-endian integer, mod 100 ([`bucket`]); the session is canary when the accepted
//!   state is enabled and bucket < percentage. Raising the percentage keeps every canary
//!   session in (bucket < 10 implies bucket < 50).
//! - **Accepted state** `<data>/canary-state.json`: what the hooks obey — never the file as
//!   such. Every hook run `stat`s `.claude/canary.json`; only when its stat key differs from
//!   the one accepted is the file read, hashed and judged ([`judge`]). A change past the plan
//!   is not obeyed: the last accepted state stays, an `alert` record and a `systemMessage` say
//!   why, once per version of the file.
//! - **The plan**: 0 → 10 → 50 → 100. Starting is 0 → 10. A promotion to the next stage needs
//!   `duration_minutes` at the current one and a healthy stage ([`Health`]: the canary
//!   cohort's hook error rate and p95 latency within the thresholds, no initial tokens over the
//!   warning, at least [`MIN_SAMPLES`] hook runs — fewer is "inconclusive", never "pass").
//!   **Abort** (`enabled: false` or percentage 0) is always accepted. **Graduation**: at 100%
//!   after its window, `enabled: false` (the runbook's last step) or `ctxopt canary promote`
//!   ends the canary as a success, logged in `.deploy/history.log` — never mistaken for an
//!   abort. Thresholds and the stage length are fixed when the canary starts.
//! - **Agent writes** of `canary.json` are decided by [`Rule`], the guard's exception hook for
//!   this file: the resulting content of a Write, Edit or MultiEdit is judged by the same
//!   rules; a Bash write of it stays refused.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod rollback;
pub mod webhook;

use crate::config::lastgood::sha256_hex;
use crate::protocol::ToolCall;
use crate::record::{self, AlertSeverity, Cohort, Record, Text};
use crate::store::{self, DataDir, Durability, StoreError};

/// The plan's stages, in order.
pub const STAGES: [u64; 3] = [10, 50, 100];
/// Hook runs of the canary cohort a stage needs before its health can pass.
pub const MIN_SAMPLES: u64 = 20;
/// Defaults of the runbook (§5.1).
pub const DEFAULT_DURATION_MINUTES: u64 = 60;
/// Share of failed hook runs above which the canary fails.
pub const DEFAULT_ERROR_RATE: f64 = 0.01;
/// Hook latency p95 (ms) above which the canary fails.
pub const DEFAULT_LATENCY_P95_MS: f64 = 500.0;
/// Initial tokens above which a canary stage fails (Alert-S-001).
pub const TOKENS_WARNING: u64 = 40_000;
/// How much of `metrics.jsonl` (from its end) a health check reads at most.
const HEALTH_READ_CAP: u64 = 16 * 1024 * 1024;

/// A session's bucket, 0–99: SHA-256 of the session id, first 8 bytes big-endian, mod 100.
#[must_use]
pub fn bucket(session_id: &str) -> u64 {
    let digest = crate::sha256::small(session_id.as_bytes());
    u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ]) % 100
}

/// `.claude/canary.json` as written (the runbook's shape).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CanaryFile {
    /// Whether a canary runs.
    pub enabled: bool,
    /// The share of sessions in the canary.
    pub percentage: u64,
    /// How long each stage is observed.
    #[serde(default)]
    pub duration_minutes: Option<u64>,
    /// Above these the canary rolls back.
    #[serde(default)]
    pub metrics_threshold: Option<Thresholds>,
}

/// The thresholds as written.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Thresholds {
    /// Share of failed hook runs (0.01 = 1%).
    #[serde(default)]
    pub error_rate: Option<f64>,
    /// Hook latency p95, milliseconds.
    #[serde(default)]
    pub latency_p95: Option<f64>,
}

/// What the hooks obey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accepted {
    /// Whether a canary runs.
    pub enabled: bool,
    /// The current stage (0 when off).
    pub percentage: u64,
    /// When the current stage began.
    pub stage_started_at: Option<DateTime<Utc>>,
    /// Stage length, fixed at start.
    pub duration_minutes: u64,
    /// Error-rate threshold, fixed at start.
    pub error_rate: f64,
    /// Latency p95 threshold (ms), fixed at start.
    pub latency_p95_ms: f64,
    /// The canary file this state was judged from: stat key and hash.
    pub file: Option<FileKey>,
    /// The hash of a file version that was refused (so it is announced once).
    pub refused_sha256: Option<String>,
    /// How the last canary ended: `graduated`, `aborted`, `rolled-back`.
    pub ended: Option<String>,
}

impl Default for Accepted {
    fn default() -> Self {
        Self {
            enabled: false,
            percentage: 0,
            stage_started_at: None,
            duration_minutes: DEFAULT_DURATION_MINUTES,
            error_rate: DEFAULT_ERROR_RATE,
            latency_p95_ms: DEFAULT_LATENCY_P95_MS,
            file: None,
            refused_sha256: None,
            ended: None,
        }
    }
}

/// A file's identity as the guard last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileKey {
    /// `None`: the file did not exist.
    pub stat: Option<(u64, i64, i64, u64)>,
    /// Its SHA-256.
    pub sha256: Option<String>,
}

pub(crate) fn stat_key(path: &Path) -> Option<(u64, i64, i64, u64)> {
    fs::metadata(path).ok().map(|m| {
        (
            m.size(),
            m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            m.ino(),
        )
    })
}

impl Accepted {
    /// The cohort of `session_id` under this state.
    #[must_use]
    pub fn cohort(&self, session_id: &str) -> Cohort {
        if self.enabled && !session_id.is_empty() && bucket(session_id) < self.percentage {
            Cohort::Canary
        } else {
            Cohort::Stable
        }
    }

    /// When the current stage's window ends.
    #[must_use]
    pub fn window_ends(&self) -> Option<DateTime<Utc>> {
        let minutes = i64::try_from(self.duration_minutes).unwrap_or(i64::MAX / 120_000);
        self.stage_started_at
            .map(|at| at + Duration::minutes(minutes))
    }
}

/// A stage's health, judged on the canary cohort's records since the stage began.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    /// Enough samples, every threshold held.
    Pass(StageNumbers),
    /// A threshold was crossed: why.
    Fail(StageNumbers, String),
    /// Too few samples to say.
    Inconclusive(StageNumbers),
}

/// What a stage's canary cohort did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StageNumbers {
    /// Hook runs of the canary cohort.
    pub runs: u64,
    /// Failed ones.
    pub failures: u64,
    /// Hook latency p95 (ms), when there were runs.
    pub latency_p95_ms: Option<f64>,
    /// The largest initial token count of a canary session.
    pub max_initial_tokens: Option<u64>,
    /// Distinct canary sessions and stable sessions seen.
    pub canary_sessions: u64,
    /// Stable sessions seen.
    pub stable_sessions: u64,
}

impl StageNumbers {
    /// The canary cohort's error rate.
    #[must_use]
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    pub fn error_rate(&self) -> Option<f64> {
        (self.runs > 0).then(|| self.failures as f64 / self.runs as f64)
    }
}

/// A judged change of the canary file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Nothing the plan cares about changed.
    Same,
    /// 0 → 10.
    Start,
    /// To the next stage.
    Promote {
        /// From.
        from: u64,
        /// To.
        to: u64,
    },
    /// Back to 0: always accepted.
    Abort,
    /// At 100% after its window: the canary ends as a success.
    Graduate,
}

/// Judges `proposed` against `accepted`: the transition, or why it is refused (a sentence that
/// says what is allowed now and when).
pub fn judge(
    accepted: &Accepted,
    proposed: &CanaryFile,
    health: &dyn Fn() -> Health,
    now: DateTime<Utc>,
) -> Result<Transition, String> {
    let current = if accepted.enabled {
        accepted.percentage
    } else {
        0
    };
    let window_over = accepted.window_ends().is_none_or(|end| now >= end);
    if !proposed.enabled || proposed.percentage == 0 {
        return Ok(match (current, window_over) {
            (0, _) => Transition::Same,
            (100, true) => Transition::Graduate,
            _ => Transition::Abort,
        });
    }
    if proposed.percentage > 100 {
        return Err(format!(
            "percentage {} is out of range; the plan is 0 → 10 → 50 → 100",
            proposed.percentage
        ));
    }
    if proposed.percentage == current {
        return Ok(Transition::Same);
    }
    let next = STAGES.iter().copied().find(|&s| s > current);
    if current == 0 {
        return if proposed.percentage == 10 {
            Ok(Transition::Start)
        } else {
            Err(format!(
                "a canary starts at 10%, not {}%; the plan is 0 → 10 → 50 → 100",
                proposed.percentage
            ))
        };
    }
    if proposed.percentage < current {
        return Err(format!(
            "going back from {current}% to {}% is not a stage of the plan; abort instead \
             (`\"enabled\": false`, or `ctxopt canary abort`)",
            proposed.percentage
        ));
    }
    if Some(proposed.percentage) != next {
        return Err(match next {
            Some(next) => format!(
                "{current}% → {}% skips a stage; the next stage is {next}%",
                proposed.percentage
            ),
            None => format!("{}% is not a stage of the plan", proposed.percentage),
        });
    }
    if !window_over {
        let end = accepted.window_ends().map_or_else(String::new, |end| {
            format!(" (at {})", end.format("%Y-%m-%d %H:%M UTC"))
        });
        return Err(format!(
            "{current}% → {}% is premature: each stage is observed for {} minutes first{end}",
            proposed.percentage, accepted.duration_minutes
        ));
    }
    match health() {
        Health::Pass(_) => Ok(Transition::Promote {
            from: current,
            to: proposed.percentage,
        }),
        Health::Fail(_, why) => Err(format!(
            "the {current}% stage is not healthy ({why}); it cannot be promoted"
        )),
        Health::Inconclusive(n) => Err(format!(
            "the {current}% stage is inconclusive: {} canary hook runs, at least {MIN_SAMPLES} \
             are needed before a promotion",
            n.runs
        )),
    }
}

/// Applies an accepted transition to the state.
#[must_use]
pub fn apply(
    accepted: &Accepted,
    transition: &Transition,
    proposed: &CanaryFile,
    now: DateTime<Utc>,
) -> Accepted {
    let mut next = accepted.clone();
    next.refused_sha256 = None;
    match transition {
        Transition::Same => {}
        Transition::Start => {
            let t = proposed.metrics_threshold.clone().unwrap_or_default();
            next = Accepted {
                enabled: true,
                percentage: 10,
                stage_started_at: Some(now),
                duration_minutes: proposed
                    .duration_minutes
                    .filter(|&m| m >= 1)
                    .unwrap_or(DEFAULT_DURATION_MINUTES),
                error_rate: t.error_rate.unwrap_or(DEFAULT_ERROR_RATE),
                latency_p95_ms: t.latency_p95.unwrap_or(DEFAULT_LATENCY_P95_MS),
                file: accepted.file.clone(),
                refused_sha256: None,
                ended: None,
            };
        }
        Transition::Promote { to, .. } => {
            next.percentage = *to;
            next.stage_started_at = Some(now);
        }
        Transition::Abort => {
            next.enabled = false;
            next.percentage = 0;
            next.stage_started_at = None;
            next.ended = Some(String::from("aborted"));
        }
        Transition::Graduate => {
            next.enabled = false;
            next.percentage = 0;
            next.stage_started_at = None;
            next.ended = Some(String::from("graduated"));
        }
    }
    next
}

/// The canary's files for a project.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The project.
    pub project: PathBuf,
    /// `.claude/canary.json`.
    pub file: PathBuf,
    /// `<data>/canary-state.json`.
    pub state: PathBuf,
    /// `.deploy/history.log`.
    pub history: PathBuf,
    /// `<data>/metrics.jsonl`.
    pub metrics: PathBuf,
}

impl Paths {
    /// The paths of `project`.
    #[must_use]
    pub fn of_project(project: &Path) -> Self {
        let data = DataDir::of_project(project);
        Self {
            project: project.to_path_buf(),
            file: project.join(".claude/canary.json"),
            state: data.root().join("canary-state.json"),
            history: project.join(".deploy/history.log"),
            metrics: data.metrics(),
        }
    }
}

/// Reads the accepted state (default: no canary).
#[must_use]
pub fn load(paths: &Paths) -> Accepted {
    crate::fsx::read(&paths.state)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Writes the accepted state atomically.
pub fn save(paths: &Paths, accepted: &Accepted) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(accepted).unwrap_or_default();
    if let Some(dir) = paths.state.parent() {
        store::ensure_dir(dir)?;
    }
    store::write_atomic(&paths.state, &bytes, store::FILE_MODE, Durability::Fsync)
}

/// What a hook run learned from the canary: the session's cohort, records and messages.
#[derive(Debug, Default)]
pub struct Observed {
    /// The session's cohort.
    pub cohort: Cohort,
    /// `alert` records (a refused change), to be written with the run's.
    pub records: Vec<Record>,
    /// For the user.
    pub system_messages: Vec<String>,
    /// Faults of the guard's own (recorded, never fatal).
    pub errors: Vec<Box<dyn std::error::Error + Send + Sync>>,
}

/// What the automatic rollback needs from the run, asked only while a canary runs.
pub struct Environment<'a> {
    /// The SLO target (`slo.hook_success_target`).
    pub slo_target: &'a dyn Fn() -> f64,
    /// Restores the deploy snapshot for a reason; the files restored, or why not.
    pub restore: &'a dyn Fn(&str) -> Result<rollback::Restored, rollback::NotRestored>,
    /// Notifies the webhook, without waiting (a detached process).
    pub notify: &'a dyn Fn(&str),
}

/// The in-process guard, for every hook run: one `stat` when the canary file is unchanged;
/// otherwise the change is judged, accepted or refused (see the module doc). While a canary
/// runs, the automatic rollback's rollup and triggers too ([`rollback`]).
#[must_use]
pub fn observe(
    paths: &Paths,
    session_id: &str,
    now: DateTime<Utc>,
    env: &Environment<'_>,
) -> Observed {
    let (mut observed, accepted) = judge_file(paths, session_id, now);
    if accepted.enabled {
        let records = observed.records.len();
        watch_triggers(paths, &accepted, now, env, &mut observed);
        // A rollback in this run changed the accepted state: read it again for the cohort.
        if observed.records.len() != records {
            observed.cohort = load(paths).cohort(session_id);
        }
    }
    observed
}

fn watch_triggers(
    paths: &Paths,
    accepted: &Accepted,
    now: DateTime<Utc>,
    env: &Environment<'_>,
    observed: &mut Observed,
) {
    let rollup = match rollback::update(paths, accepted, now) {
        Ok(rollup) => rollup,
        Err(err) => {
            observed.errors.push(Box::new(err));
            return;
        }
    };
    let Some(trigger) = rollback::crossed(&rollup, accepted, env.slo_target) else {
        return;
    };
    match rollback::roll_back(paths, &trigger, now, env.restore) {
        Ok(Some(done)) => {
            let message = rollback::message_of(&done);
            (env.notify)(&message);
            observed.records.push(rollback::record_of(&done));
            observed.system_messages.push(message);
        }
        Ok(None) => {}
        Err(err) => observed.errors.push(Box::new(err)),
    }
}

fn judge_file(paths: &Paths, session_id: &str, now: DateTime<Utc>) -> (Observed, Accepted) {
    let stat = stat_key(&paths.file);
    let mut accepted = load(paths);
    let known = accepted.file.as_ref().and_then(|f| f.stat);
    if stat == known || (stat.is_none() && accepted.file.is_none()) {
        let observed = Observed {
            cohort: accepted.cohort(session_id),
            ..Observed::default()
        };
        return (observed, accepted);
    }
    let mut observed = Observed::default();
    let bytes = fs::read(&paths.file).ok();
    let sha = bytes.as_deref().map(sha256_hex);
    let key = FileKey {
        stat,
        sha256: sha.clone(),
    };
    if accepted.file.as_ref().and_then(|f| f.sha256.clone()) == sha {
        // Touched, not changed.
        accepted.file = Some(key);
        if let Err(err) = save(paths, &accepted) {
            observed.errors.push(Box::new(err));
        }
        observed.cohort = accepted.cohort(session_id);
        return (observed, accepted);
    }
    let proposed = match &bytes {
        None => Ok(CanaryFile {
            enabled: false,
            percentage: 0,
            duration_minutes: None,
            metrics_threshold: None,
        }),
        Some(bytes) => serde_json::from_slice::<CanaryFile>(bytes)
            .map_err(|err| format!("it is not a valid canary file ({err})")),
    };
    let verdict = proposed.and_then(|proposed| {
        judge(
            &accepted,
            &proposed,
            &|| stage_health(paths, &accepted, now),
            now,
        )
        .map(|t| (t, proposed))
    });
    match verdict {
        Ok((transition, proposed)) => {
            let mut next = apply(&accepted, &transition, &proposed, now);
            next.file = Some(key);
            if transition == Transition::Graduate {
                if let Err(err) = log_history(paths, "graduated", &accepted, now) {
                    observed.errors.push(Box::new(err));
                }
                if let Err(err) = crate::policy::fold_canary_override(
                    &paths.project,
                    &DataDir::of_project(&paths.project),
                ) {
                    observed.errors.push(err);
                }
            }
            if let Err(err) = save(paths, &next) {
                observed.errors.push(Box::new(err));
            }
            if transition != Transition::Same {
                observed.system_messages.push(format!(
                    "ctxopt canary: {} (now {}%).",
                    describe(&transition),
                    next.percentage
                ));
            }
            accepted = next;
        }
        Err(why) => {
            if accepted.refused_sha256 != sha {
                let message = format!(
                    "ctxopt canary: the change to .claude/canary.json is not obeyed: {why}. \
                     Sessions stay at {}%{}.",
                    accepted.percentage,
                    if accepted.enabled { "" } else { " (no canary)" }
                );
                observed.records.push(Record::Alert {
                    id: String::from("Alert-C-001"),
                    severity: AlertSeverity::P2,
                    message: Text::new(&message, record::MAX_MESSAGE_CHARS),
                    #[expect(clippy::cast_precision_loss, reason = "0-100")]
                    value: accepted.percentage as f64,
                    threshold: 0.0,
                });
                observed.system_messages.push(message);
                accepted.refused_sha256 = sha;
                if let Err(err) = save(paths, &accepted) {
                    observed.errors.push(Box::new(err));
                }
            }
        }
    }
    observed.cohort = accepted.cohort(session_id);
    (observed, accepted)
}

/// A transition in words.
#[must_use]
pub fn describe(transition: &Transition) -> String {
    match transition {
        Transition::Same => String::from("unchanged"),
        Transition::Start => String::from("started at 10%"),
        Transition::Promote { from, to } => format!("promoted from {from}% to {to}%"),
        Transition::Abort => String::from("aborted"),
        Transition::Graduate => String::from("graduated: the release is complete"),
    }
}

/// Appends to `.deploy/history.log` (the runbook's format: `<what> at <time>`).
pub fn log_history(
    paths: &Paths,
    what: &str,
    accepted: &Accepted,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if let Some(dir) = paths.history.parent() {
        store::ensure_dir(dir)?;
    }
    let line = format!(
        "Canary {what} at {} (stage {}%, started {})\n",
        now.format("%Y-%m-%dT%H:%M:%SZ"),
        accepted.percentage,
        accepted.stage_started_at.map_or_else(
            || String::from("-"),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
        )
    );
    store::append(&paths.history, line.as_bytes())
}

/// The current stage's health, from the canary cohort's records since the stage began: read
/// from the end of `metrics.jsonl` backwards, at most [`HEALTH_READ_CAP`] bytes.
#[must_use]
pub fn stage_health(paths: &Paths, accepted: &Accepted, now: DateTime<Utc>) -> Health {
    let since = accepted.stage_started_at.unwrap_or(now);
    let numbers = stage_numbers(&paths.metrics, accepted, since);
    let rate = numbers.error_rate();
    if let Some(rate) = rate
        && rate > accepted.error_rate
    {
        let why = format!(
            "error rate {:.2}% > {:.2}%",
            rate * 100.0,
            accepted.error_rate * 100.0
        );
        return Health::Fail(numbers, why);
    }
    if let Some(p95) = numbers.latency_p95_ms
        && p95 > accepted.latency_p95_ms
    {
        let why = format!(
            "hook latency p95 {p95:.1} ms > {} ms",
            accepted.latency_p95_ms
        );
        return Health::Fail(numbers, why);
    }
    if let Some(tokens) = numbers.max_initial_tokens
        && tokens > TOKENS_WARNING
    {
        let why = format!("initial tokens {tokens} > {TOKENS_WARNING}");
        return Health::Fail(numbers, why);
    }
    if numbers.runs < MIN_SAMPLES {
        return Health::Inconclusive(numbers);
    }
    Health::Pass(numbers)
}

fn stage_numbers(metrics: &Path, accepted: &Accepted, since: DateTime<Utc>) -> StageNumbers {
    let mut numbers = StageNumbers::default();
    let Ok(mut file) = fs::File::open(metrics) else {
        return numbers;
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(HEALTH_READ_CAP);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return numbers;
    }
    let mut text = String::new();
    if file.read_to_string(&mut text).is_err() {
        return numbers;
    }
    let since = record::timestamp(since);
    let mut latencies = Vec::new();
    let mut canary = std::collections::BTreeSet::new();
    let mut stable = std::collections::BTreeSet::new();
    for line in text.lines().skip(usize::from(start > 0)) {
        let Ok(r) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if r["timestamp"].as_str().is_none_or(|t| t < since.as_str()) {
            continue;
        }
        let session = r["session_id"].as_str().unwrap_or("");
        if session.is_empty() {
            continue;
        }
        if accepted.cohort(session) != Cohort::Canary {
            stable.insert(session.to_owned());
            continue;
        }
        canary.insert(session.to_owned());
        match r["type"].as_str() {
            Some("hook_execution") => {
                numbers.runs += 1;
                if r["success"] == false {
                    numbers.failures += 1;
                }
            }
            Some("hook_latency") => latencies.extend(r["duration_ms"].as_f64()),
            Some("token_consumption") => {
                if let Some(t) = r["tokens"].as_u64() {
                    numbers.max_initial_tokens =
                        Some(numbers.max_initial_tokens.unwrap_or(0).max(t));
                }
            }
            _ => {}
        }
    }
    numbers.canary_sessions = canary.len() as u64;
    numbers.stable_sessions = stable.len() as u64;
    if !latencies.is_empty() {
        latencies.sort_by(f64::total_cmp);
        let index = (latencies.len() * 95).div_ceil(100).saturating_sub(1);
        numbers.latency_p95_ms = latencies.get(index).copied();
    }
    numbers
}

/// The guard's exception hook for `canary.json`: an agent's Write, Edit or MultiEdit of the
/// file is allowed when the resulting file is a transition the plan accepts now.
#[derive(Debug)]
pub struct Rule {
    paths: Paths,
    now: DateTime<Utc>,
}

impl Rule {
    /// The rule for `project` at `now`.
    #[must_use]
    pub fn new(project: &Path, now: DateTime<Utc>) -> Self {
        Self {
            paths: Paths::of_project(project),
            now,
        }
    }

    /// The file `call` would leave behind.
    fn resulting(&self, call: &ToolCall) -> Result<String, String> {
        let input = &call.tool_input;
        let field = |k: &str| input.get(k).and_then(Value::as_str);
        let current = || fs::read_to_string(&self.paths.file).unwrap_or_default();
        let edit = |text: String, edit: &Value| -> Result<String, String> {
            let old = edit.get("old_string").and_then(Value::as_str).unwrap_or("");
            let new = edit.get("new_string").and_then(Value::as_str).unwrap_or("");
            if old.is_empty() || !text.contains(old) {
                return Err(String::from("the edit's old_string is not in the file"));
            }
            Ok(
                if edit.get("replace_all").and_then(Value::as_bool) == Some(true) {
                    text.replace(old, new)
                } else {
                    text.replacen(old, new, 1)
                },
            )
        };
        match call.tool_name.as_str() {
            "Write" => Ok(field("content").unwrap_or("").to_owned()),
            "Edit" => edit(current(), input),
            "MultiEdit" => input
                .get("edits")
                .and_then(Value::as_array)
                .map_or(Ok(current()), |edits| {
                    edits.iter().try_fold(current(), edit)
                }),
            other => Err(format!("{other} cannot change canary.json")),
        }
    }
}

impl crate::guard::Exception for Rule {
    fn path(&self) -> &Path {
        &self.paths.file
    }

    fn decide(&self, call: &ToolCall) -> Result<String, String> {
        let refused = |why: String| {
            format!(
                "ctxopt refused this change of .claude/canary.json: {why}. Allowed now: {}",
                allowed_now(&load(&self.paths), self.now)
            )
        };
        let text = self.resulting(call).map_err(refused)?;
        let proposed: CanaryFile = serde_json::from_str(&text)
            .map_err(|err| refused(format!("the result is not a valid canary file ({err})")))?;
        let accepted = load(&self.paths);
        let transition = judge(
            &accepted,
            &proposed,
            &|| stage_health(&self.paths, &accepted, self.now),
            self.now,
        )
        .map_err(refused)?;
        Ok(format!("canary: {}", describe(&transition)))
    }
}

/// What the plan allows from `accepted` at `now`, in words.
#[must_use]
pub fn allowed_now(accepted: &Accepted, now: DateTime<Utc>) -> String {
    if !accepted.enabled {
        return String::from("starting at 10% (`ctxopt canary start`)");
    }
    let next = STAGES.iter().copied().find(|&s| s > accepted.percentage);
    let when = match accepted.window_ends() {
        Some(end) if now < end => format!(" after {}", end.format("%Y-%m-%d %H:%M UTC")),
        _ => String::new(),
    };
    match next {
        Some(next) => format!(
            "aborting (`ctxopt canary abort`) at any time; promoting to {next}%{when} if the stage is healthy"
        ),
        None => format!("aborting at any time; graduating{when} (`ctxopt canary promote`)"),
    }
}

/// Why a canary command did not act.
#[derive(Debug, thiserror::Error)]
pub enum CanaryError {
    /// The plan does not allow it now.
    #[error("refused: {0}")]
    Refused(String),
    /// Writing the file or the state failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `ctxopt canary start|promote|abort` writes to `.claude/canary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Written {
    enabled: bool,
    percentage: u64,
    duration_minutes: u64,
    metrics_threshold: WrittenThresholds,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct WrittenThresholds {
    error_rate: f64,
    latency_p95: f64,
}

/// The start of a canary, as `ctxopt canary start` takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct StartOptions {
    /// Stage length.
    pub duration_minutes: u64,
    /// Error-rate threshold.
    pub error_rate: f64,
    /// Latency p95 threshold (ms).
    pub latency_p95_ms: f64,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            duration_minutes: DEFAULT_DURATION_MINUTES,
            error_rate: DEFAULT_ERROR_RATE,
            latency_p95_ms: DEFAULT_LATENCY_P95_MS,
        }
    }
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// The transition.
    pub transition: Transition,
    /// The stage now.
    pub percentage: u64,
}

/// `ctxopt canary start`.
pub fn start(
    project: &Path,
    options: &StartOptions,
    now: DateTime<Utc>,
) -> Result<Done, CanaryError> {
    command(project, now, |accepted| {
        if accepted.enabled {
            return Err(format!(
                "a canary is already at {}%; `ctxopt canary status` shows it",
                accepted.percentage
            ));
        }
        Ok(Written {
            enabled: true,
            percentage: 10,
            duration_minutes: options.duration_minutes.max(1),
            metrics_threshold: WrittenThresholds {
                error_rate: options.error_rate,
                latency_p95: options.latency_p95_ms,
            },
        })
    })
}

/// `ctxopt canary promote`: the next stage, or graduation at 100% after its window.
pub fn promote(project: &Path, now: DateTime<Utc>) -> Result<Done, CanaryError> {
    let paths = Paths::of_project(project);
    command(project, now, |accepted| {
        if !accepted.enabled {
            return Err(String::from(
                "no canary is running; `ctxopt canary start` starts one",
            ));
        }
        let mut next = written_from(accepted);
        if accepted.percentage == 100 {
            match accepted.window_ends() {
                Some(end) if now < end => {
                    return Err(format!(
                        "the 100% stage is observed until {}; graduation comes after it",
                        end.format("%Y-%m-%d %H:%M UTC")
                    ));
                }
                _ => {}
            }
            match stage_health(&paths, accepted, now) {
                Health::Pass(_) => {}
                Health::Fail(_, why) => {
                    return Err(format!("the 100% stage is not healthy ({why})"));
                }
                Health::Inconclusive(n) => {
                    return Err(format!(
                        "the 100% stage is inconclusive: {} canary hook runs, at least {MIN_SAMPLES} are needed",
                        n.runs
                    ));
                }
            }
            next.enabled = false;
        } else {
            next.percentage = STAGES
                .iter()
                .copied()
                .find(|&s| s > accepted.percentage)
                .unwrap_or(100);
        }
        Ok(next)
    })
}

/// `ctxopt canary abort`: back to 0 at once.
pub fn abort(project: &Path, now: DateTime<Utc>) -> Result<Done, CanaryError> {
    command(project, now, |accepted| {
        if !accepted.enabled {
            return Err(String::from("no canary is running"));
        }
        let mut next = written_from(accepted);
        next.enabled = false;
        next.percentage = 0;
        Ok(next)
    })
}

fn written_from(accepted: &Accepted) -> Written {
    Written {
        enabled: accepted.enabled,
        percentage: accepted.percentage,
        duration_minutes: accepted.duration_minutes,
        metrics_threshold: WrittenThresholds {
            error_rate: accepted.error_rate,
            latency_p95: accepted.latency_p95_ms,
        },
    }
}

/// Judges what `propose` would write, writes `.claude/canary.json` (atomically, as ctxopt's own
/// write) and the accepted state.
fn command(
    project: &Path,
    now: DateTime<Utc>,
    propose: impl FnOnce(&Accepted) -> Result<Written, String>,
) -> Result<Done, CanaryError> {
    let paths = Paths::of_project(project);
    let accepted = load(&paths);
    let written = propose(&accepted).map_err(CanaryError::Refused)?;
    let proposed = CanaryFile {
        enabled: written.enabled,
        percentage: written.percentage,
        duration_minutes: Some(written.duration_minutes),
        metrics_threshold: Some(Thresholds {
            error_rate: Some(written.metrics_threshold.error_rate),
            latency_p95: Some(written.metrics_threshold.latency_p95),
        }),
    };
    let transition = judge(
        &accepted,
        &proposed,
        &|| stage_health(&paths, &accepted, now),
        now,
    )
    .map_err(CanaryError::Refused)?;
    let mut bytes = serde_json::to_vec_pretty(&written).unwrap_or_default();
    bytes.push(b'\n');
    let before = fs::read(&paths.file).ok();
    if let Some(dir) = paths.file.parent() {
        store::ensure_dir(dir)?;
    }
    store::write_atomic(&paths.file, &bytes, 0o644, Durability::Fsync)?;
    let data = DataDir::of_project(project);
    crate::config::lastgood::note_own_write(
        &data,
        &paths.file,
        before.as_deref(),
        Some(&bytes),
        &format!(
            "canary-{}",
            match transition {
                Transition::Start => "start",
                Transition::Promote { .. } => "promote",
                Transition::Graduate => "graduate",
                Transition::Abort => "abort",
                Transition::Same => "write",
            }
        ),
    )?;
    let mut next = apply(&accepted, &transition, &proposed, now);
    next.file = Some(FileKey {
        stat: stat_key(&paths.file),
        sha256: Some(sha256_hex(&bytes)),
    });
    if transition == Transition::Graduate {
        log_history(&paths, "graduated", &accepted, now)?;
        crate::policy::fold_canary_override(project, &data).map_err(|err| {
            CanaryError::Refused(format!(
                "graduated, but the canary override could not be folded into the policy: {err}"
            ))
        })?;
    }
    save(&paths, &next)?;
    Ok(Done {
        transition,
        percentage: next.percentage,
    })
}

#[cfg(test)]
mod tests;
