//! Per-hook state of the circuit breaker: consecutive failed runs, whether the breaker is
//! open, and whether a person turned the hook off with `ctxopt hooks disable`.
//!
//! One small JSON file per hook name, `state/hooks/<first 16 hex of sha256(name)>.json`,
//! written by [`store::write_atomic`] without fsync (a lost file only closes the breaker).
//! The files live in a subdirectory of `state/` on purpose: retention removes the files
//! directly in `state/` after `state_days`, and a hook the breaker or a person disabled must
//! stay disabled until someone enables it. A hook that has never failed has no file, so a
//! healthy run costs one failed `open`.
//!
//! Runs of the same hook can overlap (parallel tool calls); the read-modify-write is not
//! locked, so two failures at the same moment may count as one and the breaker opens a run
//! later. That is the price of not taking a lock on every tool call.

use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::lastgood::sha256_hex;
use crate::store::{self, DataDir, Durability, StoreError};

/// One hook's breaker state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct State {
    /// The hook's name (the `hook` field of its records).
    pub name: String,
    /// Failed runs in a row (a run is all its attempts).
    #[serde(default)]
    pub consecutive_failures: u32,
    /// The breaker tripped: runs are skipped until `ctxopt hooks enable`.
    #[serde(default)]
    pub open: bool,
    /// When it tripped (RFC 3339 UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<String>,
    /// Turned off by `ctxopt hooks disable` (for a command that is not a file to rename).
    #[serde(default)]
    pub manual: bool,
    /// The last failure's first line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl State {
    /// A fresh state for `name`.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    /// Whether runs of the hook are skipped.
    #[must_use]
    pub fn disabled(&self) -> bool {
        self.open || self.manual
    }
}

/// `state/hooks/`.
#[must_use]
pub fn dir(data: &DataDir) -> PathBuf {
    data.state_dir().join("hooks")
}

/// The state file of the hook `name`.
#[must_use]
pub fn path(data: &DataDir, name: &str) -> PathBuf {
    let hash = sha256_hex(name.as_bytes());
    dir(data).join(format!("{}.json", &hash[..16]))
}

/// The hook's state; `None` when it has none (never failed, or reset) or the file does not
/// read (treated as a closed breaker).
#[must_use]
pub fn load(data: &DataDir, name: &str) -> Option<State> {
    let bytes = fs::read(path(data, name)).ok()?;
    serde_json::from_slice::<State>(&bytes)
        .ok()
        .filter(|s| s.name == name)
}

/// Writes the hook's state.
pub fn save(data: &DataDir, state: &State) -> Result<(), StoreError> {
    data.ensure()?;
    let dir = dir(data);
    store::ensure_dir(&dir)?;
    let mut bytes = serde_json::to_vec_pretty(state).unwrap_or_default();
    bytes.push(b'\n');
    store::write_atomic(
        &path(data, &state.name),
        &bytes,
        store::FILE_MODE,
        Durability::NoFsync,
    )
}

/// Removes the hook's state (closes the breaker, clears a manual disable); whether there was
/// one.
pub fn clear(data: &DataDir, name: &str) -> Result<bool, StoreError> {
    let path = path(data, name);
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(StoreError {
            action: "remove",
            path,
            source,
        }),
    }
}

/// Every hook with a state file.
#[must_use]
pub fn all(data: &DataDir) -> Vec<State> {
    let Ok(entries) = fs::read_dir(dir(data)) else {
        return Vec::new();
    };
    let mut states: Vec<State> = entries
        .filter_map(Result::ok)
        .filter_map(|e| fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect();
    states.sort_by(|a: &State, b: &State| a.name.cmp(&b.name));
    states
}

/// What a finished run did to the breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Nothing worth telling.
    Steady,
    /// This run's failure tripped the breaker after `failures` failed runs in a row.
    Opened {
        /// Failed runs in a row.
        failures: u32,
    },
}

/// Counts a finished run: a success resets the count (removing the file), a failure adds one
/// and opens the breaker at `threshold` (0: never).
pub fn record_run(
    data: &DataDir,
    name: &str,
    previous: Option<State>,
    failure: Option<&str>,
    threshold: u32,
    now: &str,
) -> Result<Transition, StoreError> {
    let Some(error) = failure else {
        if previous.is_some_and(|s| s.consecutive_failures > 0) {
            clear(data, name)?;
        }
        return Ok(Transition::Steady);
    };
    let mut state = previous.unwrap_or_else(|| State::new(name));
    state.consecutive_failures = state.consecutive_failures.saturating_add(1);
    state.last_error = Some(error.to_owned());
    let trips = threshold > 0 && state.consecutive_failures >= threshold && !state.open;
    if trips {
        state.open = true;
        state.opened_at = Some(now.to_owned());
    }
    save(data, &state)?;
    Ok(if trips {
        Transition::Opened {
            failures: state.consecutive_failures,
        }
    } else {
        Transition::Steady
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_trip_the_breaker_and_a_success_resets_the_count() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::of_project(tmp.path());
        let name = ".claude/hooks/a.js";
        for _ in 0..2 {
            let prev = load(&data, name);
            let t = record_run(&data, name, prev, Some("exit code 1"), 3, "t").unwrap();
            assert_eq!(t, Transition::Steady);
        }
        let prev = load(&data, name);
        record_run(&data, name, prev, None, 3, "t").unwrap();
        assert!(load(&data, name).is_none(), "a success clears the count");
        for i in 1..=3 {
            let prev = load(&data, name);
            let t = record_run(&data, name, prev, Some("boom"), 3, "t").unwrap();
            assert_eq!(t == Transition::Opened { failures: 3 }, i == 3);
        }
        let state = load(&data, name).unwrap();
        assert!(state.disabled() && state.opened_at.as_deref() == Some("t"));
        assert_eq!(all(&data), [state]);
        assert!(clear(&data, name).unwrap());
        assert!(!clear(&data, name).unwrap());
    }

    #[test]
    fn threshold_zero_never_opens() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::of_project(tmp.path());
        for _ in 0..10 {
            let prev = load(&data, "h");
            record_run(&data, "h", prev, Some("x"), 0, "t").unwrap();
        }
        let state = load(&data, "h").unwrap();
        assert_eq!(state.consecutive_failures, 10);
        assert!(!state.disabled());
    }
}
