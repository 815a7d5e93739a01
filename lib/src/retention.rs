//! Retention (R2.5): metrics older than 30 days move into compressed monthly archives,
//! `hook_execution.log` keeps 7 days, `audit.log` 90, per-session state 7.
//!
//! IN PROGRESS — being written; the interface below is fixed.

use chrono::{DateTime, Utc};

use crate::hook::Context;
use crate::policy::Retention;
use crate::store::{DataDir, StoreError};

/// Why retention could not run.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// A file operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Metrics lines moved into archives.
    pub metrics_archived: u64,
    /// Metrics lines kept.
    pub metrics_kept: u64,
}

/// Runs retention over `data` now.
pub fn prune(
    _data: &DataDir,
    _retention: &Retention,
    _now: DateTime<Utc>,
) -> Result<PruneReport, RetentionError> {
    Ok(PruneReport::default())
}

/// The cheap check at SessionStart.
pub fn check_at_session_start(_ctx: &Context, _retention: &Retention) -> Result<(), RetentionError> {
    Ok(())
}
