//! ctxopt's own policy file, `.claude/ctxopt.json`: one section per concern, every key
//! optional, defaults from the runbook.
//!
//! Read at most once per run and only by the code paths that need it ([`Policy::load`] is
//! called lazily by the runner). A missing file is the defaults; a file that does not parse
//! is reported and the defaults apply — ctxopt never rewrites it. Later issues add keys to the
//! sections here; they never add a second policy file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How a rule family acts on what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Record and tell the user; never block.
    #[default]
    Warn,
    /// Block what breaks the rule.
    Enforce,
}

/// The whole policy, resolved (defaults filled in).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Context-budget limits (R5).
    pub limits: Limits,
    /// The protected-write guard (R4).
    pub guard: Guard,
    /// The in-process canary guard (R6).
    pub canary: Canary,
    /// Service-level objectives (R10).
    pub slo: Slo,
    /// How long each data file keeps its records (R2.5).
    pub retention: Retention,
    /// How `ctxopt-run` runs the project's other hook commands (R8, runbook M-D-001-1).
    pub hooks: Hooks,
}

/// Context-budget limits. Runbook: Alert-S-001 above 40,000 initial tokens, rollback above
/// 50,000; M-D-003-1 limits concurrent MCP servers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// warn or enforce.
    pub mode: Mode,
    /// Initial tokens above which Alert-S-001 fires.
    pub initial_tokens_warning: u64,
    /// Initial tokens above which the session is critical (and a canary rolls back).
    pub initial_tokens_critical: u64,
    /// Most MCP servers enabled at once.
    pub max_mcp_servers: u32,
    /// Servers that stay within `max_mcp_servers` first, in this order; the rest of the
    /// allowed set is ranked by scope, then name (`budget::limits`).
    pub mcp_priority: Vec<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            mode: Mode::Warn,
            initial_tokens_warning: 40_000,
            initial_tokens_critical: 50_000,
            max_mcp_servers: 8,
            mcp_priority: Vec::new(),
        }
    }
}

/// The protected-write guard.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct Guard {
    /// warn or enforce (enforce: deny writes to protected paths).
    pub mode: Mode,
}

impl Default for Guard {
    fn default() -> Self {
        Self {
            mode: Mode::Enforce,
        }
    }
}

/// The canary guard.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Canary {
    /// warn or enforce.
    pub mode: Mode,
    /// What the canary rolls out: policy sections applied to canary sessions only
    /// ([`Policy::load_for`]), folded into the stable policy at graduation
    /// ([`fold_canary_override`]).
    pub r#override: Option<serde_json::Value>,
}

/// Service-level objectives.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct Slo {
    /// Share of hook runs that must succeed (the error budget is `1 - target`).
    pub hook_success_target: f64,
    /// Window the target is measured over, in days.
    pub window_days: u32,
}

impl Default for Slo {
    fn default() -> Self {
        Self {
            hook_success_target: 0.99,
            window_days: 7,
        }
    }
}

/// Retention, in days (runbook section 10: metrics 30, audit 90, hook log 7).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct Retention {
    /// Metrics older than this move to compressed monthly archives.
    pub metrics_days: u32,
    /// Audit records older than this are dropped.
    pub audit_days: u32,
    /// `hook_execution.log` lines older than this are dropped.
    pub hook_log_days: u32,
    /// Per-session state files older than this are removed.
    pub state_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            metrics_days: 30,
            audit_days: 90,
            hook_log_days: 7,
            state_days: 7,
        }
    }
}

/// How `ctxopt-run` runs a wrapped hook command (R8; runbook M-D-001-1 and P1-001).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct Hooks {
    /// Seconds one run of a wrapped hook may take, retries included, before its process
    /// group is killed. Below Claude Code's own default (600 s; 60 s before 2.1.3) so that the
    /// runner, not the client, stops a hung hook and records it.
    pub timeout_seconds: u32,
    /// Extra attempts after a failure (never after exit 2, a deliberate block, or a timeout).
    pub retries: u32,
    /// Wait before the first retry, in milliseconds; doubled before each further one.
    pub backoff_ms: u64,
    /// Consecutive failed runs after which the circuit breaker disables a hook until
    /// `ctxopt hooks enable`; 0 turns the breaker off.
    pub breaker_failures: u32,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            timeout_seconds: 30,
            retries: 1,
            backoff_ms: 200,
            breaker_failures: 5,
        }
    }
}

/// Why the policy file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// It exists but could not be read.
    #[error("failed to read policy file {}", path.display())]
    Read {
        /// The policy file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// It is not valid JSON or not the policy's shape.
    #[error("failed to parse policy file {}", path.display())]
    Parse {
        /// The policy file.
        path: PathBuf,
        /// Where and what.
        #[source]
        source: serde_json::Error,
    },
}

impl Policy {
    /// The policy file of `project`.
    #[must_use]
    pub fn path(project: &Path) -> PathBuf {
        project.join(".claude").join("ctxopt.json")
    }

    /// Reads the project's policy as a session of `cohort` sees it: for a canary session the
    /// `canary.override` sections are merged over the others (objects key by key, anything
    /// else replaced).
    pub fn load_for(project: &Path, cohort: crate::record::Cohort) -> Result<Self, PolicyError> {
        if cohort == crate::record::Cohort::Stable {
            return Self::load(project);
        }
        let path = Self::path(project);
        let bytes = match crate::fsx::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => return Err(PolicyError::Read { path, source }),
        };
        let mut value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| PolicyError::Parse {
                path: path.clone(),
                source,
            })?;
        if let Some(overrides) = value
            .pointer("/canary/override")
            .filter(|o| o.is_object())
            .cloned()
        {
            merge(&mut value, &overrides);
        }
        serde_json::from_value(value).map_err(|source| PolicyError::Parse { path, source })
    }

    /// Reads the project's policy; a missing file gives the defaults.
    pub fn load(project: &Path) -> Result<Self, PolicyError> {
        let path = Self::path(project);
        match crate::fsx::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| PolicyError::Parse { path, source })
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(PolicyError::Read { path, source }),
        }
    }
}

/// Merges `over` into `base`: objects key by key, anything else replaced. The `canary`
/// section itself is never overridden.
fn merge(base: &mut serde_json::Value, over: &serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(base), serde_json::Value::Object(over)) => {
            for (key, value) in over {
                if key == "canary" {
                    continue;
                }
                match base.get_mut(key) {
                    Some(slot) if slot.is_object() && value.is_object() => merge(slot, value),
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// At graduation: folds `canary.override` into the stable policy and removes it, written
/// atomically as ctxopt's own write. `Ok(false)` when there is nothing to fold. A policy file
/// that does not parse is never rewritten (an error).
pub fn fold_canary_override(
    project: &Path,
    data: &crate::store::DataDir,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    let path = Policy::path(project);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(Box::new(err)),
    };
    let mut value: serde_json::Value = serde_json::from_slice(&bytes)?;
    let Some(overrides) = value
        .get_mut("canary")
        .and_then(serde_json::Value::as_object_mut)
        .and_then(|c| c.remove("override"))
    else {
        return Ok(false);
    };
    merge(&mut value, &overrides);
    let mut after = serde_json::to_vec_pretty(&value)?;
    after.push(b'\n');
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(&path).map_or(0o644, |m| m.permissions().mode() & 0o777)
    };
    crate::store::write_atomic(&path, &after, mode, crate::store::Durability::Fsync)?;
    crate::config::lastgood::note_own_write(
        data,
        &path,
        Some(&bytes),
        Some(&after),
        "canary-graduate",
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canary_session_sees_the_override_and_graduation_folds_it() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join(".claude")).unwrap();
        fs::write(
            Policy::path(tmp.path()),
            r#"{"limits": {"max_mcp_servers": 4}, "canary": {"override": {"limits": {"mode": "enforce", "initial_tokens_warning": 30000}}}}"#,
        )
        .unwrap();
        let stable = Policy::load_for(tmp.path(), crate::record::Cohort::Stable).unwrap();
        assert_eq!(stable.limits.mode, Mode::Warn);
        assert_eq!(stable.limits.initial_tokens_warning, 40_000);
        let canary = Policy::load_for(tmp.path(), crate::record::Cohort::Canary).unwrap();
        assert_eq!(canary.limits.mode, Mode::Enforce);
        assert_eq!(canary.limits.initial_tokens_warning, 30_000);
        assert_eq!(
            canary.limits.max_mcp_servers, 4,
            "other keys of the section stay"
        );
        let data = crate::store::DataDir::of_project(tmp.path());
        assert!(fold_canary_override(tmp.path(), &data).unwrap());
        let folded = Policy::load(tmp.path()).unwrap();
        assert_eq!(folded.limits.mode, Mode::Enforce);
        assert_eq!(folded.limits.initial_tokens_warning, 30_000);
        assert_eq!(folded.limits.max_mcp_servers, 4);
        assert!(folded.canary.r#override.is_none());
        assert!(
            !fold_canary_override(tmp.path(), &data).unwrap(),
            "nothing left to fold"
        );
        fs::write(Policy::path(tmp.path()), "{broken").unwrap();
        assert!(fold_canary_override(tmp.path(), &data).is_err());
        assert_eq!(
            fs::read_to_string(Policy::path(tmp.path())).unwrap(),
            "{broken"
        );
    }

    #[test]
    fn missing_file_gives_runbook_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        let p = Policy::load(tmp.path()).unwrap();
        assert_eq!(p.limits.initial_tokens_warning, 40_000);
        assert_eq!(p.limits.initial_tokens_critical, 50_000);
        assert_eq!(p.retention.metrics_days, 30);
        assert_eq!(p.retention.audit_days, 90);
        assert_eq!(p.retention.hook_log_days, 7);
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join(".claude")).unwrap();
        fs::write(
            Policy::path(tmp.path()),
            r#"{"retention":{"metrics_days":10},"limits":{"mode":"enforce"}}"#,
        )
        .unwrap();
        let p = Policy::load(tmp.path()).unwrap();
        assert_eq!(p.retention.metrics_days, 10);
        assert_eq!(p.retention.audit_days, 90);
        assert_eq!(p.limits.mode, Mode::Enforce);
    }

    #[test]
    fn unparseable_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join(".claude")).unwrap();
        fs::write(Policy::path(tmp.path()), "{").unwrap();
        let err = Policy::load(tmp.path()).unwrap_err();
        assert!(err.to_string().contains("ctxopt.json"), "{err}");
    }
}
