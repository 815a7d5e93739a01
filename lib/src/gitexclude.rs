//! The repository's local git exclude file: keeping the files ctxopt writes into a project
//! out of `git add .`, and removing exactly that again.
//!
//! Responsible for the one block `ctxopt install` adds to the exclude file and `ctxopt
//! uninstall` removes. It must not print (the CLI prints), touch the committed `.gitignore`
//! (the project's file, not ours to edit), or change a byte of the exclude file outside its
//! block.
//!
//! - **What is ignored** ([`PATTERNS`]): `.claude/settings.local.json` (this machine's
//!   absolute paths), the data dir `.claude/hooks/data/` (metrics, logs, state, the install
//!   manifest), and the last-known-good copies and kept-aside broken files beside config files
//!   (`.claude/*.backup`, `.claude/*.broken-*`, `.mcp.json.backup`, `.mcp.json.broken-*`),
//!   the backups (`.kiro/specs/context-optimization/backup/`, which hold the local settings),
//!   and the runbook's `scripts/*.sh` install writes (they call this machine's ctxopt; a
//!   tracked script of the same name is not affected). None of them may be committed: they
//!   are private or name this machine's paths.
//! - **Where**: `git rev-parse --git-path info/exclude` — per repository, never committed,
//!   shared by linked worktrees, and honoured by every git. The patterns are anchored at the
//!   work tree's top level, so a project in a subdirectory gets `git rev-parse --show-prefix`
//!   in front (with `\ * ? [` escaped, which gitignore would read as a glob). A project that is
//!   not in a git repository (or without git) gets nothing: [`Plan::Skip`], reported, not an
//!   error.
//! - **The block** is the lines from [`BEGIN`] to [`END`]. An existing block is replaced in
//!   place; identical bytes mean no write ([`Action::Present`]). A new block is appended,
//!   after a newline when the file's last line lacks one. A [`BEGIN`] without an [`END`] is
//!   somebody's edit we cannot bound: [`Skip::Unterminated`], and uninstall leaves it alone.
//! - **Atomic**: [`store::write_atomic`] with fsync, keeping the file's mode (a symlink's
//!   target is written, so the link stays); a new file is [`NEW_FILE_MODE`], and `info/` is
//!   created when missing.
//! - **Recorded**: install records an [`Entry`] in the install manifest before the write: the
//!   file, and whether the file, its directory and the separating newline were ours. Uninstall
//!   removes the block (and that newline); a file we created that is then empty is deleted
//!   (with `info/`, if we created it and it is empty), so install + uninstall leaves the
//!   repository byte for byte as it was.

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io;
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::install::Mode;
use crate::store::{self, Durability, StoreError};

/// The block's first line.
pub const BEGIN: &str = "# >>> ctxopt (managed by `ctxopt install`; removed by `ctxopt uninstall`)";
/// The block's last line.
pub const END: &str = "# <<< ctxopt";
/// What the block ignores, relative to the project (each line gets `/` and the project's
/// path in the work tree in front).
pub const PATTERNS: [&str; 13] = [
    ".claude/settings.local.json",
    ".claude/hooks/data/",
    ".claude/*.backup",
    ".claude/*.broken-*",
    ".mcp.json.backup",
    ".mcp.json.broken-*",
    ".kiro/specs/context-optimization/backup/",
    "scripts/backup.sh",
    "scripts/rollback.sh",
    "scripts/auto_rollback.sh",
    "scripts/restore_from_backup.sh",
    "scripts/test_backup_restore.sh",
    "scripts/monitor_canary.sh",
];
/// Mode of an exclude file install creates (git creates it 0644).
pub const NEW_FILE_MODE: u32 = 0o644;

/// The exclude file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ExcludeError {
    /// The exclude file could not be read.
    #[error("failed to read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A write, delete or directory creation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why no block was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The project is not in a git repository (git's message).
    NotARepository(String),
    /// git is not installed (or could not be run).
    NoGit(String),
    /// The project's path in the work tree holds a line break, which a pattern cannot.
    LineBreak,
    /// The exclude file has [`BEGIN`] but no [`END`] after it.
    Unterminated(PathBuf),
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotARepository(message) if message.starts_with("not a git repository") => {
                f.write_str("the project is not in a git repository")
            }
            Self::NotARepository(message) => {
                write!(f, "git cannot use the project's repository ({message})")
            }
            Self::NoGit(message) => write!(f, "git could not be run ({message})"),
            Self::LineBreak => f.write_str(
                "the project's path in the repository holds a line break, which an exclude \
                 pattern cannot",
            ),
            Self::Unterminated(file) => write!(
                f,
                "{} has the line `{BEGIN}` but no `{END}` after it; fix the block by hand, \
                 then run install again",
                file.display()
            ),
        }
    }
}

/// What install does to the exclude file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// No block yet: ours is appended (the file and `info/` created when missing).
    Add,
    /// Our block, with other lines (the project moved in the work tree, a new version):
    /// replaced in place.
    Update,
    /// Our block, identical: nothing to do.
    Present,
}

/// The block install would write, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExcludePlan {
    /// The exclude file (absolute, as git names it).
    pub file: PathBuf,
    /// What install does.
    pub action: Action,
    /// What the install manifest records.
    pub entry: Entry,
    /// The path written: the symlink's target when the file is a symlink.
    target: PathBuf,
    mode: u32,
    bytes: Vec<u8>,
}

impl ExcludePlan {
    /// Whether applying the plan writes anything.
    #[must_use]
    pub fn writes(&self) -> bool {
        self.action != Action::Present
    }
}

/// What install does about the exclude file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Write (or keep) the block.
    Write(ExcludePlan),
    /// No block, and why.
    Skip(Skip),
}

/// The install manifest's record of the block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The exclude file (absolute).
    pub file: String,
    /// Whether the file did not exist before install.
    pub file_created: bool,
    /// Whether its directory (`info/`) did not exist before install.
    pub dir_created: bool,
    /// Whether install ended the file's last line with a newline before the block.
    pub newline_added: bool,
}

/// The block for a project at `prefix` in the work tree (`git rev-parse --show-prefix`: empty
/// or ending in `/`).
#[must_use]
pub fn block(prefix: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(BEGIN.as_bytes());
    out.push(b'\n');
    for pattern in PATTERNS {
        out.push(b'/');
        for &byte in prefix {
            if b"\\*?[".contains(&byte) {
                out.push(b'\\');
            }
            out.push(byte);
        }
        out.extend_from_slice(pattern.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(END.as_bytes());
    out.push(b'\n');
    out
}

/// Where our block is in an exclude file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    Absent,
    /// From the start of [`BEGIN`]'s line to the end of [`END`]'s (its newline included).
    Block(Range<usize>),
    Unterminated,
}

fn find(bytes: &[u8]) -> Found {
    let mut start = None;
    let mut offset = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let end = offset + line.len();
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        match start {
            None if text == BEGIN.as_bytes() => start = Some(offset),
            Some(start) if text == END.as_bytes() => return Found::Block(start..end),
            _ => {}
        }
        offset = end;
    }
    if start.is_some() {
        Found::Unterminated
    } else {
        Found::Absent
    }
}

/// `bytes` with `block` in place of the existing one, or appended (after a newline when the
/// last line has none: the returned flag). `None` for an unterminated block.
fn insert(bytes: &[u8], block: &[u8]) -> Option<(Vec<u8>, bool)> {
    match find(bytes) {
        Found::Unterminated => None,
        Found::Block(range) => {
            let mut out = bytes[..range.start].to_vec();
            out.extend_from_slice(block);
            out.extend_from_slice(&bytes[range.end..]);
            Some((out, false))
        }
        Found::Absent => {
            let newline = !bytes.is_empty() && !bytes.ends_with(b"\n");
            let mut out = bytes.to_vec();
            if newline {
                out.push(b'\n');
            }
            out.extend_from_slice(block);
            Some((out, newline))
        }
    }
}

/// `bytes` without our block (and, when install added it and the block is last, the newline
/// before it). `Err` says why there is nothing to remove.
fn remove(bytes: &[u8], newline_added: bool) -> Result<Vec<u8>, Removal> {
    let range = match find(bytes) {
        Found::Absent => return Err(Removal::Missing),
        Found::Unterminated => return Err(Removal::Unterminated),
        Found::Block(range) => range,
    };
    let mut start = range.start;
    if newline_added && range.end == bytes.len() && start > 0 && bytes[start - 1] == b'\n' {
        start -= 1;
    }
    let mut out = bytes[..start].to_vec();
    out.extend_from_slice(&bytes[range.end..]);
    Ok(out)
}

/// The exclude file of the repository holding `project`, and the project's path in the work
/// tree.
struct Location {
    file: PathBuf,
    prefix: Vec<u8>,
}

fn locate(project: &Path) -> Result<Location, Skip> {
    let prefix = git(project, &["rev-parse", "--show-prefix"])?;
    let prefix = strip_newline(&prefix);
    if prefix.contains(&b'\n') || prefix.contains(&b'\r') {
        return Err(Skip::LineBreak);
    }
    let path = git(project, &["rev-parse", "--git-path", "info/exclude"])?;
    let relative = Path::new(OsStr::from_bytes(strip_newline(&path)));
    // git names the path relative to its physical working directory (`../../.git/…` from a
    // subdirectory), so `..` is resolved against the canonical project path.
    let base = fs::canonicalize(project).unwrap_or_else(|_| project.to_owned());
    Ok(Location {
        file: normalize(&base.join(relative)),
        prefix: prefix.to_vec(),
    })
}

fn strip_newline(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(b"\n").unwrap_or(bytes)
}

/// `path` without `.` and `..` components (`path` must have no symlinks before a `..`).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `git -C dir args…`: its stdout, or why the repository cannot be used.
fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, Skip> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| Skip::NoGit(err.to_string()))?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    let text = String::from_utf8_lossy(&output.stderr);
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let line = line.strip_prefix("fatal: ").unwrap_or(line).trim();
    Err(Skip::NotARepository(if line.is_empty() {
        output.status.to_string()
    } else {
        line.to_owned()
    }))
}

/// An exclude file as read.
struct Current {
    existed: bool,
    bytes: Vec<u8>,
    /// The path written: the symlink's target when the file is a symlink.
    target: PathBuf,
    mode: u32,
}

fn read(path: &Path) -> Result<Current, ExcludeError> {
    let read_error = |source| ExcludeError::Read {
        path: path.to_owned(),
        source,
    };
    match fs::read(path) {
        Ok(bytes) => {
            let target = fs::canonicalize(path).map_err(read_error)?;
            let mode = fs::metadata(&target)
                .map_err(read_error)?
                .permissions()
                .mode()
                & 0o7777;
            Ok(Current {
                existed: true,
                bytes,
                target,
                mode,
            })
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Current {
            existed: false,
            bytes: Vec::new(),
            target: path.to_owned(),
            mode: NEW_FILE_MODE,
        }),
        Err(err) => Err(read_error(err)),
    }
}

/// What install would do for `project`. `previous` is the entry an earlier install recorded:
/// when its block is still there, what it says about the file before install still holds.
pub fn plan(project: &Path, previous: Option<&Entry>) -> Result<Plan, ExcludeError> {
    let location = match locate(project) {
        Ok(location) => location,
        Err(skip) => return Ok(Plan::Skip(skip)),
    };
    let current = read(&location.file)?;
    let Some((bytes, newline_added)) = insert(&current.bytes, &block(&location.prefix)) else {
        return Ok(Plan::Skip(Skip::Unterminated(location.file)));
    };
    let file = location.file.to_string_lossy().into_owned();
    let had_block = find(&current.bytes) != Found::Absent;
    let entry = if had_block {
        previous
            .filter(|e| e.file == file)
            .cloned()
            .unwrap_or_else(|| Entry {
                file,
                ..Entry::default()
            })
    } else {
        Entry {
            file,
            file_created: !current.existed,
            dir_created: !current.existed && location.file.parent().is_some_and(|d| !d.exists()),
            newline_added,
        }
    };
    let action = if !had_block {
        Action::Add
    } else if bytes == current.bytes {
        Action::Present
    } else {
        Action::Update
    };
    Ok(Plan::Write(ExcludePlan {
        file: location.file,
        action,
        entry,
        target: current.target,
        mode: current.mode,
        bytes,
    }))
}

/// Writes what `plan` says (nothing for [`Action::Present`]).
pub fn apply(plan: &ExcludePlan) -> Result<(), ExcludeError> {
    if !plan.writes() {
        return Ok(());
    }
    if let Some(dir) = plan.target.parent().filter(|d| !d.is_dir()) {
        fs::create_dir_all(dir).map_err(|source| StoreError {
            action: "create directory",
            path: dir.to_owned(),
            source,
        })?;
    }
    store::write_atomic(&plan.target, &plan.bytes, plan.mode, Durability::Fsync)?;
    Ok(())
}

/// What uninstall found in the exclude file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Our block was (would be) removed; the rest of the file is as it was.
    Removed,
    /// The file held only our block and install created it: it was (would be) deleted.
    Deleted,
    /// There was no block of ours (or no file).
    Missing,
    /// [`BEGIN`] without [`END`]: the file was left alone.
    Unterminated,
}

/// What uninstall did (or, in a dry run, would do) about the exclude file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UninstallReport {
    /// The exclude file.
    pub file: PathBuf,
    /// What happened to it.
    pub removal: Removal,
}

/// Removes the block `entry` records. When the recorded file holds no block of ours (the
/// project moved to another repository, say), the current repository's exclude file is tried.
pub fn uninstall(
    project: &Path,
    entry: &Entry,
    mode: Mode,
) -> Result<UninstallReport, ExcludeError> {
    let mut file = PathBuf::from(&entry.file);
    let mut current = read(&file)?;
    let mut facts = entry.clone();
    if find(&current.bytes) == Found::Absent
        && let Ok(location) = locate(project)
        && location.file != file
    {
        let other = read(&location.file)?;
        if find(&other.bytes) != Found::Absent {
            facts = Entry::default();
            file = location.file;
            current = other;
        }
    }
    let bytes = match remove(&current.bytes, facts.newline_added) {
        Ok(bytes) => bytes,
        Err(removal) => return Ok(UninstallReport { file, removal }),
    };
    let removal = if bytes.is_empty() && facts.file_created {
        Removal::Deleted
    } else {
        Removal::Removed
    };
    if mode == Mode::Write {
        if removal == Removal::Deleted {
            match fs::remove_file(&file) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(StoreError {
                        action: "remove",
                        path: file,
                        source,
                    }
                    .into());
                }
            }
            if let Some(dir) = file.parent().filter(|_| facts.dir_created) {
                // Only succeeds when empty, which is the only case it should go.
                let _ = fs::remove_dir(dir);
            }
        } else {
            store::write_atomic(&current.target, &bytes, current.mode, Durability::Fsync)?;
        }
    }
    Ok(UninstallReport { file, removal })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_text(prefix: &str) -> String {
        String::from_utf8(block(prefix.as_bytes())).unwrap()
    }

    #[test]
    fn block_at_the_top_level_is_the_documented_one() {
        assert_eq!(
            block_text(""),
            "# >>> ctxopt (managed by `ctxopt install`; removed by `ctxopt uninstall`)\n\
             /.claude/settings.local.json\n\
             /.claude/hooks/data/\n\
             /.claude/*.backup\n\
             /.claude/*.broken-*\n\
             /.mcp.json.backup\n\
             /.mcp.json.broken-*\n\
             /.kiro/specs/context-optimization/backup/\n\
             /scripts/backup.sh\n\
             /scripts/rollback.sh\n\
             /scripts/auto_rollback.sh\n\
             /scripts/restore_from_backup.sh\n\
             /scripts/test_backup_restore.sh\n\
             /scripts/monitor_canary.sh\n\
             # <<< ctxopt\n"
        );
    }

    #[test]
    fn block_in_a_subdirectory_is_prefixed_with_globs_escaped() {
        let text = block_text("apps/my web*[1]?/");
        assert!(
            text.contains("\n/apps/my web\\*\\[1]\\?/.claude/settings.local.json\n"),
            "{text}"
        );
        assert!(text.contains("\n/apps/my web\\*\\[1]\\?/.mcp.json.broken-*\n"));
        assert_eq!(text.lines().count(), PATTERNS.len() + 2);
    }

    #[test]
    fn insert_appends_then_replaces_in_place() {
        let block = block(b"");
        let (once, newline) = insert(b"# git's comment\n*.o\n", &block).unwrap();
        assert!(!newline);
        assert_eq!(once, [&b"# git's comment\n*.o\n"[..], &block].concat());
        let (twice, _) = insert(&once, &block).unwrap();
        assert_eq!(twice, once, "idempotent");

        let mut edited = b"mine\n".to_vec();
        edited.extend_from_slice(&block);
        edited.extend_from_slice(b"after\n");
        let moved = super::block(b"sub/");
        let (replaced, _) = insert(&edited, &moved).unwrap();
        assert_eq!(replaced, [&b"mine\n"[..], &moved, b"after\n"].concat());
        assert_eq!(insert(&replaced, &moved).unwrap().0, replaced);
    }

    #[test]
    fn insert_ends_an_unterminated_last_line_first() {
        let block = block(b"");
        let (out, newline) = insert(b"*.o", &block).unwrap();
        assert!(newline);
        assert_eq!(out, [&b"*.o\n"[..], &block].concat());
        assert_eq!(remove(&out, true).unwrap(), b"*.o");
        let (empty, newline) = insert(b"", &block).unwrap();
        assert!(!newline);
        assert_eq!(empty, block);
    }

    #[test]
    fn remove_takes_out_exactly_the_block() {
        let block = block(b"");
        let original = b"a\n\nb\n".to_vec();
        let (installed, newline) = insert(&original, &block).unwrap();
        assert_eq!(remove(&installed, newline).unwrap(), original);

        let mut later = installed.clone();
        later.extend_from_slice(b"added later\n");
        assert_eq!(remove(&later, newline).unwrap(), b"a\n\nb\nadded later\n");
        assert_eq!(remove(&block, false).unwrap(), b"");
        assert_eq!(remove(&original, false), Err(Removal::Missing));
    }

    #[test]
    fn crlf_lines_and_unterminated_blocks_are_recognised() {
        let crlf = format!("x\r\n{BEGIN}\r\n/old\r\n{END}\r\ny\r\n");
        assert_eq!(
            remove(crlf.as_bytes(), false).unwrap(),
            b"x\r\ny\r\n".to_vec()
        );
        let open = format!("x\n{BEGIN}\n/.claude/settings.local.json\n");
        assert_eq!(find(open.as_bytes()), Found::Unterminated);
        assert!(insert(open.as_bytes(), &block(b"")).is_none());
        assert_eq!(remove(open.as_bytes(), false), Err(Removal::Unterminated));
        let end_only = format!("{END}\n");
        assert_eq!(find(end_only.as_bytes()), Found::Absent);
    }

    #[test]
    fn normalize_drops_dot_components() {
        assert_eq!(
            normalize(Path::new("/r/sub/a/../.././.git/info/exclude")),
            Path::new("/r/.git/info/exclude")
        );
    }

    #[test]
    fn plan_apply_uninstall_in_a_real_repository() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        let project = repo.join("sub");
        fs::create_dir_all(&project).unwrap();
        let init = Command::new("git")
            .args(["init", "-q"])
            .arg(&repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", tmp.path())
            .output()
            .unwrap();
        assert!(init.status.success(), "{init:?}");
        let info = repo.join(".git/info");
        let _ = fs::remove_dir_all(&info);

        let Plan::Write(plan) = plan(&project, None).unwrap() else {
            panic!("not planned")
        };
        let exclude = fs::canonicalize(&repo).unwrap().join(".git/info/exclude");
        assert_eq!(plan.file, exclude);
        assert_eq!(plan.action, Action::Add);
        assert!(plan.entry.file_created && plan.entry.dir_created);
        apply(&plan).unwrap();
        let text = fs::read_to_string(&exclude).unwrap();
        assert!(text.contains("\n/sub/.claude/hooks/data/\n"), "{text}");
        let mode = fs::metadata(&exclude).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, NEW_FILE_MODE);

        let Plan::Write(again) = super::plan(&project, Some(&plan.entry)).unwrap() else {
            panic!("not planned")
        };
        assert_eq!(again.action, Action::Present);
        assert_eq!(
            again.entry, plan.entry,
            "the first install's facts are kept"
        );

        let report = uninstall(&project, &plan.entry, Mode::DryRun).unwrap();
        assert_eq!(report.removal, Removal::Deleted);
        assert!(exclude.exists(), "a dry run deletes nothing");
        let report = uninstall(&project, &plan.entry, Mode::Write).unwrap();
        assert_eq!(report.removal, Removal::Deleted);
        assert!(!info.exists());
        let report = uninstall(&project, &plan.entry, Mode::Write).unwrap();
        assert_eq!(report.removal, Removal::Missing);
    }

    #[test]
    fn outside_a_repository_is_a_skip() {
        let tmp = tempfile::tempdir().unwrap();
        // When the temporary directory is inside a repository on this machine, there is
        // nothing to check.
        if let Err(skip) = git(tmp.path(), &["rev-parse", "--show-prefix"]) {
            assert!(matches!(skip, Skip::NotARepository(_)), "{skip:?}");
            assert_eq!(skip.to_string(), "the project is not in a git repository");
        }
    }
}
