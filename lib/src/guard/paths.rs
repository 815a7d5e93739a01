//! Protected paths and path normalisation. IN PROGRESS — interface fixed.

use std::path::{Path, PathBuf};

use crate::config::discover::Locations;

/// What normalisation resolves names against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchors {
    /// The tool call's working directory (the input's `cwd`).
    pub cwd: PathBuf,
    /// The user's home (`~`, `$HOME`, `${HOME}`).
    pub home: PathBuf,
    /// The project root (`$CLAUDE_PROJECT_DIR`).
    pub project: PathBuf,
}

/// `raw` as an absolute, normalised path: variables and `~` expanded, made absolute against
/// `anchors.cwd`, `.`/`..`/repeated slashes removed, and the longest existing prefix's
/// symlinks resolved. `None` when the path cannot be judged statically (another `$VAR`, a
/// glob, a command substitution).
#[must_use]
pub fn normalize(_raw: &str, _anchors: &Anchors) -> Option<PathBuf> {
    None
}

/// Why a path is protected, and how a person changes it deliberately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protection {
    /// The protected path (normalised).
    pub path: PathBuf,
    /// What it is: "Claude Code project settings", "ctxopt's data directory", …
    pub what: String,
    /// How a person changes it deliberately (by hand outside the agent, or a ctxopt command).
    pub how_to_change: String,
}

/// The set of protected paths of a project and its user.
#[derive(Debug, Clone)]
pub struct Protected {
    _private: (),
}

impl Protected {
    /// The default protected paths (see the module doc of [`crate::guard`]) of `project` for
    /// the user at `locations`.
    #[must_use]
    pub fn for_project(_project: &Path, _locations: &Locations) -> Self {
        Self { _private: () }
    }

    /// Whether the normalised `path` is protected, and why.
    #[must_use]
    pub fn check(&self, _path: &Path) -> Option<Protection> {
        None
    }

    /// The protected files that exist now (for the snapshot): files, not directories; the
    /// files under protected directories (`.claude/hooks/**`) included.
    #[must_use]
    pub fn existing_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
}
