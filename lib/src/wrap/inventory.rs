//! The project's hook commands as `ctxopt hooks list|disable|enable` sees them: where each is
//! configured, whether it runs through the runner, whether it is disabled, and how it did in
//! the last 24 hours according to `metrics.jsonl`.
//!
//! Reads the project's two settings files (`.claude/settings.json`,
//! `.claude/settings.local.json`; user and managed hooks are not the project's) and the
//! metrics file; writes only what disable and enable change: a rename of the hook's script
//! to or from `*.disabled` (the runbook's own way, P1-001 step 2) and the breaker state.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::breaker::{self, State};
use super::command;
use super::settings::{COMMITTED_FILE, LOCAL_FILE};
use crate::record;
use crate::store::{DataDir, StoreError};

/// The window of `ctxopt hooks list`'s numbers.
pub const WINDOW_HOURS: i64 = 24;

/// How a handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// One of ctxopt's own hooks.
    Ctxopt,
    /// Through `ctxopt-run`.
    Wrapped {
        /// The command the runner runs.
        inner: String,
    },
    /// Directly by Claude Code.
    Plain,
}

/// Whether a hook runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// It runs.
    Enabled,
    /// Its script was renamed to this `*.disabled` file.
    Renamed(PathBuf),
    /// `ctxopt hooks disable` turned it off (a command with no script file to rename).
    DisabledByHand,
    /// The circuit breaker opened after this many failed runs in a row.
    BreakerOpen(u32),
    /// Its script does not exist (and no `*.disabled` twin does): every run fails.
    Missing(PathBuf),
}

impl Status {
    /// A short word for tables and JSON.
    #[must_use]
    pub fn word(&self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Renamed(_) => "disabled",
            Self::DisabledByHand => "disabled-by-hand",
            Self::BreakerOpen(_) => "breaker-open",
            Self::Missing(_) => "missing",
        }
    }
}

/// A hook's numbers over the window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// `hook_execution` records of attempts that ran.
    pub runs: u64,
    /// Of those, `success: false`.
    pub failures: u64,
    /// Runs skipped because the hook was disabled.
    pub skipped: u64,
    /// 95th percentile of `hook_latency.duration_ms` (nearest rank), when there is one.
    pub p95_ms: Option<f64>,
}

/// One configured hook command.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// The name its records carry.
    pub name: String,
    /// The settings file, relative to the project.
    pub settings_file: &'static str,
    /// The event key.
    pub event: String,
    /// The group's matcher.
    pub matcher: Option<String>,
    /// The command as configured.
    pub command: String,
    /// How it runs.
    pub kind: Kind,
    /// The script file it runs, when it names one.
    pub script: Option<PathBuf>,
    /// Whether it runs.
    pub status: Status,
    /// Failed runs in a row, per the breaker.
    pub consecutive_failures: u32,
    /// The last 24 hours.
    pub stats: Stats,
}

/// What `list` found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    /// Every command handler of the project's settings files, in file order.
    pub hooks: Vec<Hook>,
    /// Settings files that could not be read, with why.
    pub unreadable: Vec<(String, String)>,
}

/// Lists the project's hook commands with their state and their last 24 hours.
#[must_use]
pub fn list(project: &Path, data: &DataDir, now: DateTime<Utc>) -> Inventory {
    let mut out = Inventory::default();
    for file in [COMMITTED_FILE, LOCAL_FILE] {
        let path = project.join(file);
        let root = match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(value) => value,
                Err(err) => {
                    out.unreadable.push((file.to_owned(), err.to_string()));
                    continue;
                }
            },
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => {
                out.unreadable.push((file.to_owned(), err.to_string()));
                continue;
            }
        };
        collect(&root, file, project, data, &mut out.hooks);
    }
    let names: Vec<String> = out.hooks.iter().map(|h| h.name.clone()).collect();
    let stats = stats(&data.metrics(), &names, now);
    for hook in &mut out.hooks {
        if let Some(s) = stats.get(&hook.name) {
            hook.stats = s.clone();
        }
    }
    out
}

fn collect(root: &Value, file: &'static str, project: &Path, data: &DataDir, out: &mut Vec<Hook>) {
    let Some(hooks) = root.get("hooks").and_then(Value::as_object) else {
        return;
    };
    for (event, groups) in hooks {
        for group in groups.as_array().into_iter().flatten() {
            let matcher = group.get("matcher").and_then(Value::as_str);
            for handler in group
                .get("hooks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if handler.get("type").and_then(Value::as_str) != Some("command") {
                    continue;
                }
                let Some(command) = handler.get("command").and_then(Value::as_str) else {
                    continue;
                };
                out.push(describe(command, file, event, matcher, project, data));
            }
        }
    }
}

fn describe(
    command: &str,
    file: &'static str,
    event: &str,
    matcher: Option<&str>,
    project: &Path,
    data: &DataDir,
) -> Hook {
    let (kind, name, script) = if let Some(wrapped) = command::parse_wrapped(command) {
        let name = wrapped
            .name
            .clone()
            .unwrap_or_else(|| command::name_of(&wrapped.inner, project));
        let script = command::script_path(&wrapped.inner, project);
        (
            Kind::Wrapped {
                inner: wrapped.inner,
            },
            name,
            script,
        )
    } else if command::is_own(command) {
        let program = command::first_word(command).unwrap_or_default();
        let base = program.rsplit('/').next().unwrap_or_default();
        (Kind::Ctxopt, base.to_owned(), None)
    } else {
        (
            Kind::Plain,
            command::name_of(command, project),
            command::script_path(command, project),
        )
    };
    let state = breaker::load(data, &name);
    let status = status_of(script.as_deref(), state.as_ref());
    Hook {
        name,
        settings_file: file,
        event: event.to_owned(),
        matcher: matcher.map(str::to_owned),
        command: command.to_owned(),
        kind,
        script,
        status,
        consecutive_failures: state.map_or(0, |s| s.consecutive_failures),
        stats: Stats::default(),
    }
}

fn status_of(script: Option<&Path>, state: Option<&State>) -> Status {
    if let Some(script) = script
        && !script.exists()
    {
        let twin = disabled_twin(script);
        return if twin.exists() {
            Status::Renamed(twin)
        } else {
            Status::Missing(script.to_owned())
        };
    }
    match state {
        Some(s) if s.manual => Status::DisabledByHand,
        Some(s) if s.open => Status::BreakerOpen(s.consecutive_failures),
        _ => Status::Enabled,
    }
}

/// `path` with `.disabled` appended.
#[must_use]
pub fn disabled_twin(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".disabled");
    PathBuf::from(name)
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    timestamp: &'a str,
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default)]
    hook: String,
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    duration_ms: Option<f64>,
}

/// Runs, failures, skips and p95 latency per hook over the window, from `metrics.jsonl`.
fn stats(metrics: &Path, names: &[String], now: DateTime<Utc>) -> HashMap<String, Stats> {
    let mut out: HashMap<String, Stats> = HashMap::new();
    let mut latencies: HashMap<String, Vec<f64>> = HashMap::new();
    let Ok(file) = fs::File::open(metrics) else {
        return out;
    };
    let cutoff = record::timestamp(now - Duration::hours(WINDOW_HOURS));
    for line in BufReader::new(file).lines().map_while(Result::ok) {
        if !line.contains("\"hook_execution\"") && !line.contains("\"hook_latency\"") {
            continue;
        }
        let Ok(rec) = serde_json::from_str::<Line<'_>>(&line) else {
            continue;
        };
        if rec.timestamp < cutoff.as_str() || !names.contains(&rec.hook) {
            continue;
        }
        let entry = out.entry(rec.hook.clone()).or_default();
        match rec.kind {
            "hook_execution" if rec.disabled => entry.skipped += 1,
            "hook_execution" => {
                entry.runs += 1;
                if rec.success == Some(false) {
                    entry.failures += 1;
                }
            }
            "hook_latency" if !rec.disabled => {
                if let Some(ms) = rec.duration_ms {
                    latencies.entry(rec.hook).or_default().push(ms);
                }
            }
            _ => {}
        }
    }
    for (name, mut values) in latencies {
        values.sort_by(f64::total_cmp);
        let rank = (values.len() * 95).div_ceil(100).max(1);
        out.entry(name).or_default().p95_ms = values.get(rank - 1).copied();
    }
    out
}

/// What disable or enable did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Toggle {
    /// Renamed the script (from, to).
    Renamed(PathBuf, PathBuf),
    /// Recorded a manual disable in the breaker state (no script file to rename).
    DisabledByHand,
    /// Cleared the breaker state (a tripped breaker or a manual disable).
    BreakerReset,
    /// Nothing to do: already in that state.
    Already,
}

/// Why disable or enable could not act.
#[derive(Debug, thiserror::Error)]
pub enum ToggleError {
    /// No configured hook and no file by that name.
    #[error(
        "failed to find a hook named `{name}` in {COMMITTED_FILE} or {LOCAL_FILE}, or a file by that name (`ctxopt hooks list` shows the names)"
    )]
    Unknown {
        /// The name given.
        name: String,
    },
    /// A command with no script file that does not run through the runner: nothing can
    /// switch it off short of editing the settings.
    #[error(
        "failed to disable `{name}`: it is not a script file and does not run through ctxopt-run; remove it from the settings, or run `ctxopt install --wrap-existing` first"
    )]
    NotSwitchable {
        /// The name.
        name: String,
    },
    /// Both the script and its `.disabled` twin exist.
    #[error(
        "failed to rename {}: {} exists too; remove one of them by hand",
        script.display(),
        twin.display()
    )]
    BothExist {
        /// The script.
        script: PathBuf,
        /// Its twin.
        twin: PathBuf,
    },
    /// The rename failed.
    #[error("failed to rename {} to {}", from.display(), to.display())]
    Rename {
        /// From.
        from: PathBuf,
        /// To.
        to: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The breaker state could not be written or removed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `name` refers to: the hooks carrying it, and the script file.
struct Target {
    name: String,
    script: Option<PathBuf>,
    wrapped: bool,
}

fn find(project: &Path, data: &DataDir, name: &str) -> Result<Target, ToggleError> {
    let given = Path::new(name);
    let relative = given
        .strip_prefix(project)
        .map_or_else(|_| name.to_owned(), |r| r.to_string_lossy().into_owned());
    let relative = relative
        .strip_suffix(".disabled")
        .unwrap_or(&relative)
        .trim_start_matches("./")
        .to_owned();
    let inventory = list_without_stats(project, data);
    let matching: Vec<&Hook> = inventory
        .iter()
        .filter(|h| {
            h.name == name
                || h.name == relative
                || h.script
                    .as_deref()
                    .is_some_and(|s| s == project.join(&relative))
        })
        .collect();
    if let Some(first) = matching.first() {
        return Ok(Target {
            name: first.name.clone(),
            script: first.script.clone(),
            wrapped: matching
                .iter()
                .any(|h| matches!(h.kind, Kind::Wrapped { .. })),
        });
    }
    let path = project.join(&relative);
    if path.is_file() || disabled_twin(&path).exists() {
        return Ok(Target {
            name: relative,
            script: Some(path),
            wrapped: false,
        });
    }
    if breaker::load(data, name).is_some() {
        return Ok(Target {
            name: name.to_owned(),
            script: None,
            wrapped: true,
        });
    }
    Err(ToggleError::Unknown {
        name: name.to_owned(),
    })
}

fn list_without_stats(project: &Path, data: &DataDir) -> Vec<Hook> {
    let mut hooks = Vec::new();
    for file in [COMMITTED_FILE, LOCAL_FILE] {
        if let Ok(bytes) = fs::read(project.join(file))
            && let Ok(root) = serde_json::from_slice::<Value>(&bytes)
        {
            collect(&root, file, project, data, &mut hooks);
        }
    }
    hooks
}

/// `ctxopt hooks disable NAME`: renames the hook's script to `*.disabled` (the runner skips
/// it; Claude Code running it directly fails it, as the runbook intends), or, for a wrapped
/// command with no script file, records a manual disable the runner honours. Resets the
/// breaker's count either way. Returns the hook's name and what was done.
pub fn disable(
    project: &Path,
    data: &DataDir,
    name: &str,
) -> Result<(String, Vec<Toggle>), ToggleError> {
    let target = find(project, data, name)?;
    let mut done = Vec::new();
    if let Some(script) = target.script.as_deref().filter(|s| s.starts_with(project)) {
        let twin = disabled_twin(script);
        match (script.exists(), twin.exists()) {
            (true, true) => {
                return Err(ToggleError::BothExist {
                    script: script.to_owned(),
                    twin,
                });
            }
            (true, false) => {
                rename(data, script, &twin)?;
                done.push(Toggle::Renamed(script.to_owned(), twin));
            }
            (false, _) => done.push(Toggle::Already),
        }
        if breaker::clear(data, &target.name)? {
            done.push(Toggle::BreakerReset);
        }
        return Ok((target.name, done));
    }
    if !target.wrapped {
        return Err(ToggleError::NotSwitchable { name: target.name });
    }
    let mut state = breaker::load(data, &target.name).unwrap_or_else(|| State::new(&target.name));
    if state.manual {
        return Ok((target.name, vec![Toggle::Already]));
    }
    state.manual = true;
    state.open = false;
    state.opened_at = None;
    state.consecutive_failures = 0;
    breaker::save(data, &state)?;
    Ok((target.name, vec![Toggle::DisabledByHand]))
}

/// `ctxopt hooks enable NAME`: renames `*.disabled` back and clears the breaker state (a
/// tripped breaker, a manual disable, the failure count).
pub fn enable(
    project: &Path,
    data: &DataDir,
    name: &str,
) -> Result<(String, Vec<Toggle>), ToggleError> {
    let target = find(project, data, name)?;
    let mut done = Vec::new();
    if let Some(script) = target.script.as_deref() {
        let twin = disabled_twin(script);
        match (script.exists(), twin.exists()) {
            (false, true) => {
                rename(data, &twin, script)?;
                done.push(Toggle::Renamed(twin, script.to_owned()));
            }
            (true, true) => {
                return Err(ToggleError::BothExist {
                    script: script.to_owned(),
                    twin,
                });
            }
            _ => {}
        }
    }
    if breaker::clear(data, &target.name)? {
        done.push(Toggle::BreakerReset);
    }
    if done.is_empty() {
        done.push(Toggle::Already);
    }
    Ok((target.name, done))
}

/// Renames a hook script, and tells the guard it was ctxopt's own write (so a PostToolUse
/// repair never undoes a `ctxopt hooks disable` the agent ran).
fn rename(data: &DataDir, from: &Path, to: &Path) -> Result<(), ToggleError> {
    fs::rename(from, to).map_err(|source| ToggleError::Rename {
        from: from.to_owned(),
        to: to.to_owned(),
        source,
    })?;
    crate::guard::snapshot::note_own_write(data, from)?;
    crate::guard::snapshot::note_own_write(data, to)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Envelope, Record};
    use chrono::TimeZone;

    #[test]
    fn p95_and_counts_over_the_window() {
        let tmp = tempfile::tempdir().unwrap();
        let metrics = tmp.path().join("m.jsonl");
        let now = Utc.with_ymd_and_hms(2026, 1, 2, 12, 0, 0).unwrap();
        let env = Envelope::new("s", "h.js");
        let mut text = String::new();
        for i in 1..=100u32 {
            text.push_str(&env.line(
                &Record::HookLatency {
                    event: "Stop".into(),
                    duration_ms: f64::from(i),
                },
                now,
            ));
            text.push_str(&env.line(
                &Record::HookExecution {
                    event: "Stop".into(),
                    success: i % 10 != 0,
                    decision: None,
                    error: None,
                    attempt: Some(1),
                    disabled: false,
                },
                now,
            ));
        }
        let old = now - Duration::hours(25);
        text.push_str(&env.line(
            &Record::HookLatency {
                event: "Stop".into(),
                duration_ms: 9999.0,
            },
            old,
        ));
        fs::write(&metrics, text).unwrap();
        let stats = stats(&metrics, &["h.js".to_owned()], now);
        let s = &stats["h.js"];
        assert_eq!((s.runs, s.failures, s.skipped), (100, 10, 0));
        assert_eq!(s.p95_ms, Some(95.0));
    }
}
