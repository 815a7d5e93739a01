//! The data directory and the two ways ctxopt writes a file.
//!
//! - [`append`]: `O_APPEND`, an exclusive `std::fs::File::lock` (flock(2)), the whole buffer
//!   written while the lock is held, and a check after locking that the open file is still
//!   the one at the path — retention renames a new file into place while appenders wait, and
//!   an appender that locked the old inode must reopen, or its line would land in a file
//!   nobody reads again.
//! - [`write_atomic`]: temp file in the same directory, optional fsync, rename. Config files
//!   and archives are fsync'd; per-tool-call state is not (a lost state file is recomputed).
//!
//! The directory is created 0700 and files 0600: metrics name the user's files and commands.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every file ctxopt creates in the data dir.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the data dir and its subdirectories.
pub const DIR_MODE: u32 = 0o700;

/// How many times an appender reopens after finding the path replaced under it.
const REOPEN_ATTEMPTS: usize = 16;

/// A failed file operation, with the path it was on.
#[derive(Debug, thiserror::Error)]
#[error("failed to {action} {}", path.display())]
pub struct StoreError {
    /// What was being done: "open", "lock", "append to", …
    pub action: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

impl StoreError {
    pub(crate) fn new(action: &'static str, path: &Path, source: io::Error) -> Self {
        Self {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// `<project>/.claude/hooks/data/` and the files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The data dir of `project`.
    #[must_use]
    pub fn of_project(project: &Path) -> Self {
        Self {
            root: project.join(".claude").join("hooks").join("data"),
        }
    }

    /// The directory itself.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `metrics.jsonl`: one JSON record per line.
    #[must_use]
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// `hook_execution.log`: one human-readable line per hook run.
    #[must_use]
    pub fn hook_log(&self) -> PathBuf {
        self.root.join("hook_execution.log")
    }

    /// `audit.log`: config-change audit, JSON lines.
    #[must_use]
    pub fn audit_log(&self) -> PathBuf {
        self.root.join("audit.log")
    }

    /// `archive/`: compressed monthly metrics.
    #[must_use]
    pub fn archive_dir(&self) -> PathBuf {
        self.root.join("archive")
    }

    /// `state/`: small files rewritten by atomic rename.
    #[must_use]
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }

    /// Creates the directory (and parents) if missing; the data dir itself gets mode 0700.
    pub fn ensure(&self) -> Result<(), StoreError> {
        ensure_dir(&self.root)
    }
}

/// Creates `dir` and its parents, the last one with mode 0700; an existing dir is left as is.
pub fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(StoreError::new(
            "create directory",
            dir,
            io::Error::new(io::ErrorKind::AlreadyExists, "a file is in the way"),
        )),
        Err(_) => DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|err| StoreError::new("create directory", dir, err)),
    }
}

/// Appends `bytes` to `path` in one locked write (see the module doc). `bytes` should hold
/// whole lines; the caller batches a run's lines into one call.
pub fn append(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    for _ in 0..REOPEN_ATTEMPTS {
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(FILE_MODE)
            .open(path)
            .map_err(|err| StoreError::new("open", path, err))?;
        file.lock()
            .map_err(|err| StoreError::new("lock", path, err))?;
        if !is_current(&file, path) {
            continue;
        }
        return file
            .write_all(bytes)
            .map_err(|err| StoreError::new("append to", path, err));
    }
    Err(StoreError::new(
        "append to",
        path,
        io::Error::other("the file kept being replaced while waiting for its lock"),
    ))
}

/// Whether the open `file` is still the file at `path` (same device and inode).
fn is_current(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Whether [`write_atomic`] fsyncs before the rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the temp file (and the directory) — config files, archives, manifests.
    Fsync,
    /// Skip fsync — per-tool-call state, recomputed if lost.
    NoFsync,
}

/// Writes `bytes` to `path` by temp file and rename, so a reader sees the old or the new
/// content, never a mix. The temp file is created with `mode`.
pub fn write_atomic(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    durability: Durability,
) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.ctxopt-tmp.{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|err| StoreError::new("create", &tmp, err))?;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|err| StoreError::new("set permissions of", &tmp, err))?;
        file.write_all(bytes)
            .map_err(|err| StoreError::new("write", &tmp, err))?;
        if durability == Durability::Fsync {
            file.sync_all()
                .map_err(|err| StoreError::new("fsync", &tmp, err))?;
        }
        fs::rename(&tmp, path).map_err(|err| StoreError::new("rename into place", path, err))?;
        if durability == Durability::Fsync
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dir_is_created_private() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::of_project(tmp.path());
        data.ensure().unwrap();
        let mode = fs::metadata(data.root()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, DIR_MODE);
        append(&data.metrics(), b"{}\n").unwrap();
        let mode = fs::metadata(data.metrics()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, FILE_MODE);
    }

    #[test]
    fn file_in_place_of_dir_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join(".claude/hooks")).unwrap();
        fs::write(tmp.path().join(".claude/hooks/data"), "x").unwrap();
        let err = DataDir::of_project(tmp.path()).ensure().unwrap_err();
        assert!(
            err.to_string().contains("failed to create directory"),
            "{err}"
        );
    }

    #[test]
    fn append_follows_a_replaced_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("m.jsonl");
        append(&path, b"a\n").unwrap();
        fs::rename(&path, tmp.path().join("old")).unwrap();
        append(&path, b"b\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "b\n");
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s.json");
        fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new", 0o600, Durability::Fsync).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
