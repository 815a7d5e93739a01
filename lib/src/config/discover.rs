//! Which config files a project and its user have.
//!
//! IN PROGRESS — interface fixed, body being written.

use std::path::{Path, PathBuf};

use super::ConfigFile;

/// Where the user-level and managed files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    /// The user's home.
    pub home: PathBuf,
    /// `$CLAUDE_CONFIG_DIR` when set (it replaces `~/.claude`).
    pub claude_config_dir: Option<PathBuf>,
    /// The managed-settings directory (`/etc/claude-code` on Linux,
    /// `/Library/Application Support/ClaudeCode` on macOS).
    pub managed_dir: PathBuf,
}

/// Every config file of `project` and of the user that exists.
#[must_use]
pub fn discover(_project: &Path, _locations: &Locations) -> Vec<ConfigFile> {
    Vec::new()
}
