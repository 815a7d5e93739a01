//! Which project a run is about.
//!
//! Hooks: `$CLAUDE_PROJECT_DIR` (set by Claude Code for every hook), else the input's `cwd`,
//! else the process's working directory. CLI: `--project`, else `$CLAUDE_PROJECT_DIR`, else
//! the git root above the working directory, else the working directory.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment variable Claude Code sets to the project root for hooks.
pub const PROJECT_ENV: &str = "CLAUDE_PROJECT_DIR";

/// The project a hook run writes to.
#[must_use]
pub fn for_hook(env_dir: Option<OsString>, input_cwd: Option<&Path>) -> PathBuf {
    non_empty(env_dir)
        .or_else(|| input_cwd.map(Path::to_path_buf))
        .or_else(|| env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The project a CLI command is about.
#[must_use]
pub fn for_cli(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return absolute(dir);
    }
    if let Some(dir) = non_empty(env::var_os(PROJECT_ENV)) {
        return dir;
    }
    let cwd = env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    git_root(&cwd).unwrap_or(cwd)
}

/// The nearest ancestor of `dir` (itself included) holding `.git`.
#[must_use]
pub fn git_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// `path` made absolute against the working directory (not canonicalised: symlinks kept).
#[must_use]
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn non_empty(value: Option<OsString>) -> Option<PathBuf> {
    value.filter(|v| !v.is_empty()).map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_prefers_env_then_cwd() {
        let cwd = Path::new("/from/input");
        assert_eq!(
            for_hook(Some("/from/env".into()), Some(cwd)),
            PathBuf::from("/from/env")
        );
        assert_eq!(for_hook(Some("".into()), Some(cwd)), cwd);
        assert_eq!(for_hook(None, Some(cwd)), cwd);
    }

    #[test]
    fn git_root_walks_up() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join(".git")).unwrap();
        std::fs::create_dir_all(tmp.path().join("a/b")).unwrap();
        assert_eq!(git_root(&tmp.path().join("a/b")).unwrap(), tmp.path());
    }
}
