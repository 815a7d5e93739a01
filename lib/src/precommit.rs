//! The config-validator git pre-commit hook: what a commit would contain (the staged config
//! files, read from the index), and installing the hook (chained to an existing one) and
//! removing exactly that again.
//!
//! Responsible for every git invocation of `ctxopt validate --staged`, `ctxopt install` and
//! `ctxopt uninstall`, and for the files in the git hooks directory. It must not print (the CLI
//! prints), validate (that is [`crate::config`]), or touch a hook that is not ours beyond the
//! one rename that chains it.
//!
//! - **Staged, not the working tree**: `git diff --cached --raw -z --no-renames
//!   --diff-filter=ACMR` lists what the commit adds or changes, with each new blob's id; one
//!   `git cat-file --batch` reads every blob — the bytes `git show :<path>` prints, for any
//!   number of files in three processes. The index is the one git names: inside a hook git
//!   sets `GIT_INDEX_FILE` (`git commit -a` and `git commit <paths>` commit a temporary
//!   index), and the child processes inherit it. Only regular files (modes 100644, 100755)
//!   count: a symlink's blob is its target, a submodule has none.
//! - **Which files**: [`staged_kind`], stricter than [`Kind::of_path`] (which takes the name
//!   the user typed on trust): a `settings.json` outside `.claude/` is VS Code's or another
//!   tool's, so in a repository `settings.json`, `settings.local.json`, `canary.json` and
//!   `ctxopt.json` count only in a `.claude/` directory, and `SKILL.md` only as
//!   `skills/<name>/SKILL.md`. `.pre-commit-hooks.yaml`'s `files` regex says the same.
//! - **Where the hook goes**: `git rev-parse --git-path hooks`, which honours `core.hooksPath`
//!   and puts a linked worktree's hooks in the common git dir. A project that is not in a git
//!   repository (or without git) gets no hook: [`Plan::Skip`], reported, not an error. A
//!   global `core.hooksPath` is shared by every repository; the hook goes there all the same
//!   (it checks whichever repository commits, and one without config files passes).
//! - **The hook** ([`script`]) is a POSIX `sh` script carrying [`MARKER`]. It runs
//!   `<absolute path of ctxopt> validate --staged --project "$(git rev-parse --show-toplevel)"`
//!   — absolute because git runs hooks with the user's `PATH`, which may lack ctxopt. On
//!   findings (exit 1) or a check that could not run (exit 2) it refuses the commit and says how
//!   to skip the check once (`git commit --no-verify`).
//! - **Missing binary: the commit is refused.** A hook that let commits through once ctxopt
//!   is gone would stop guarding without a word, and "a broken config never reaches a commit
//!   through the hook" is the point. The message names the missing path, how to remove the hook
//!   by hand (`rm`, or `mv` of the chained hook back — `ctxopt uninstall` may be gone too) and
//!   `git commit --no-verify`.
//! - **Chaining, never clobbering**: an existing `pre-commit` that is not ours is renamed to
//!   [`CHAINED_NAME`] in the same directory (a symlink stays a symlink) and ours runs it after
//!   its own check passes, `exec`ing it with the same arguments and stdin; when the check fails
//!   the chained hook does not run. Like git, ours skips a chained hook that is not executable.
//!   When both a foreign `pre-commit` and [`CHAINED_NAME`] exist there is no safe place for a
//!   third hook: [`Skip::Conflict`].
//! - **Idempotent**: our hook with the same bytes is left alone ([`Action::Present`]); ours
//!   with other bytes (ctxopt moved, a new version) is rewritten ([`Action::Update`]).
//! - **Recorded**: install records an [`Entry`] (the hook's path, the chained path) in the
//!   install manifest before writing the hook. Uninstall removes the hook only if it still
//!   carries [`MARKER`] and renames [`CHAINED_NAME`] back when the slot is free.

use std::fmt;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::config::{Kind, MAX_CONFIG_BYTES};
use crate::install::{Mode, shell_quote};
use crate::store::{self, Durability, StoreError};

/// The hook's file name in the hooks directory.
pub const HOOK_NAME: &str = "pre-commit";
/// Where an existing, foreign `pre-commit` hook is moved; ours runs it after its check.
pub const CHAINED_NAME: &str = "pre-commit.ctxopt-chained";
/// The line that marks a hook as ours (install and uninstall look for it).
pub const MARKER: &str = "# ctxopt-pre-commit-hook";
/// Mode of the hook file.
pub const HOOK_MODE: u32 = 0o755;

/// A git command or a hooks-directory file operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum PrecommitError {
    /// git could not be started.
    #[error("failed to run git {args} in {}", dir.display())]
    Spawn {
        /// The arguments after `git -C DIR`.
        args: String,
        /// The directory.
        dir: PathBuf,
        /// The OS error (`NotFound`: git is not installed).
        #[source]
        source: io::Error,
    },
    /// git ran and failed.
    #[error("failed to run git {args} in {}: {message}", dir.display())]
    Git {
        /// The arguments after `git -C DIR`.
        args: String,
        /// The directory.
        dir: PathBuf,
        /// git's first line on stderr (or its exit status).
        message: String,
    },
    /// `dir` is not inside a git work tree.
    #[error("failed to find a git repository at {}: {message}", dir.display())]
    NotARepository {
        /// The directory.
        dir: PathBuf,
        /// git's message.
        message: String,
    },
    /// git's output was not what it documents.
    #[error("failed to read the output of git {args}: {what}")]
    Protocol {
        /// The arguments.
        args: &'static str,
        /// What was wrong.
        what: String,
    },
    /// A hook file could not be read.
    #[error("failed to read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A hook file could not be renamed.
    #[error("failed to move {} to {}", from.display(), to.display())]
    Rename {
        /// From.
        from: PathBuf,
        /// To.
        to: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A write, delete or directory creation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

// ---- what is staged -------------------------------------------------------------------

/// One staged config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedFile {
    /// The path relative to the repository root, as git prints it (`/`-separated).
    pub path: String,
    /// What it is.
    pub kind: Kind,
    /// The staged bytes, or why they were not read (a person's message: too large).
    pub contents: Result<Vec<u8>, String>,
}

/// The staged config files of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// The repository's top level (`git rev-parse --show-toplevel`).
    pub root: PathBuf,
    /// The files, in git's order (sorted by path).
    pub files: Vec<StagedFile>,
}

/// The kind of a repository path if it is a config file a commit should be checked for (see
/// the module doc: stricter than [`Kind::of_path`]).
#[must_use]
pub fn staged_kind(path: &str) -> Option<Kind> {
    let path = Path::new(path);
    let kind = Kind::of_path(path)?;
    let parent = name_of(path.parent());
    let grandparent = name_of(path.parent().and_then(Path::parent));
    match kind {
        Kind::UserSettings => None,
        Kind::LocalSettings | Kind::Canary | Kind::Policy if parent != Some(".claude") => None,
        Kind::SkillMd if grandparent != Some("skills") => None,
        _ => Some(kind),
    }
}

fn name_of(path: Option<&Path>) -> Option<&str> {
    path.and_then(Path::file_name).and_then(|n| n.to_str())
}

/// The config files staged in the repository holding `dir`, with their staged bytes.
pub fn staged(dir: &Path) -> Result<Staged, PrecommitError> {
    let root = toplevel(dir)?;
    let diff_args = [
        "diff",
        "--cached",
        "--raw",
        "-z",
        "--no-abbrev",
        "--no-renames",
        "--no-color",
        "--no-ext-diff",
        "--diff-filter=ACMR",
    ];
    let raw = git(&root, &diff_args)?;
    let wanted: Vec<(String, Kind, String)> = parse_raw_diff(&raw)?
        .into_iter()
        .filter(|entry| matches!(entry.mode.as_str(), "100644" | "100755"))
        .filter_map(|entry| {
            let kind = staged_kind(&entry.path)?;
            Some((entry.path, kind, entry.oid))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(Staged {
            root,
            files: Vec::new(),
        });
    }
    let oids: Vec<&str> = wanted.iter().map(|(_, _, oid)| oid.as_str()).collect();
    let blobs = cat_blobs(&root, &oids)?;
    let files = wanted
        .into_iter()
        .zip(blobs)
        .map(|((path, kind, _), contents)| StagedFile {
            path,
            kind,
            contents,
        })
        .collect();
    Ok(Staged { root, files })
}

/// One record of `git diff --raw -z --no-renames`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RawEntry {
    mode: String,
    oid: String,
    path: String,
}

/// Parses `:old_mode new_mode old_oid new_oid status\0path\0…`.
fn parse_raw_diff(raw: &[u8]) -> Result<Vec<RawEntry>, PrecommitError> {
    let bad = |what: String| PrecommitError::Protocol {
        args: "diff --cached --raw -z",
        what,
    };
    let mut fields = raw.split(|&b| b == 0).filter(|f| !f.is_empty());
    let mut entries = Vec::new();
    while let Some(header) = fields.next() {
        let header = String::from_utf8_lossy(header);
        let parts: Vec<&str> = header.trim_start_matches(':').split(' ').collect();
        let [_, mode, _, oid, _] = parts[..] else {
            return Err(bad(format!("unexpected record {header:?}")));
        };
        let path = fields
            .next()
            .ok_or_else(|| bad(format!("no path after {header:?}")))?;
        entries.push(RawEntry {
            mode: mode.to_owned(),
            oid: oid.to_owned(),
            path: String::from_utf8_lossy(path).into_owned(),
        });
    }
    Ok(entries)
}

/// Reads blobs by id with one `git cat-file --batch`; a blob over [`MAX_CONFIG_BYTES`] is
/// skipped over, not kept, and comes back as a message.
fn cat_blobs(root: &Path, oids: &[&str]) -> Result<Vec<Result<Vec<u8>, String>>, PrecommitError> {
    const ARGS: &str = "cat-file --batch";
    let spawn_error = |source| PrecommitError::Spawn {
        args: ARGS.to_owned(),
        dir: root.to_owned(),
        source,
    };
    let mut child = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    let input = oids.join("\n") + "\n";
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(spawn_error(io::Error::other("no pipes to git")));
    };
    let read = std::thread::scope(|scope| {
        scope.spawn(move || {
            // A write error means git exited early; its output (or status) tells why.
            let _ = stdin.write_all(input.as_bytes());
        });
        read_batch(&mut BufReader::new(stdout), oids.len())
    });
    let output = child.wait_with_output().map_err(spawn_error)?;
    let blobs = read.map_err(|err| PrecommitError::Protocol {
        args: ARGS,
        what: err.to_string(),
    })?;
    if !output.status.success() {
        return Err(PrecommitError::Git {
            args: ARGS.to_owned(),
            dir: root.to_owned(),
            message: first_line(&output.stderr, output.status),
        });
    }
    Ok(blobs)
}

/// Reads `count` answers of `git cat-file --batch`: `<oid> blob <size>\n<bytes>\n` each.
fn read_batch(
    out: &mut impl BufRead,
    count: usize,
) -> Result<Vec<Result<Vec<u8>, String>>, io::Error> {
    let mut blobs = Vec::with_capacity(count);
    for _ in 0..count {
        let mut header = Vec::new();
        out.read_until(b'\n', &mut header)?;
        let header = String::from_utf8_lossy(&header);
        let parts: Vec<&str> = header.trim_end().split(' ').collect();
        let size = match parts[..] {
            [_, "blob", size] => size
                .parse::<u64>()
                .map_err(|_| io::Error::other(format!("bad size in {header:?}")))?,
            _ => return Err(io::Error::other(format!("unexpected answer {header:?}"))),
        };
        if size > MAX_CONFIG_BYTES {
            io::copy(&mut out.take(size + 1), &mut io::sink())?;
            blobs.push(Err(format!(
                "the staged file is {size} bytes, more than the {} MiB ctxopt reads; a config file this large is almost certainly corrupt",
                MAX_CONFIG_BYTES / (1024 * 1024)
            )));
            continue;
        }
        let len = usize::try_from(size).map_err(io::Error::other)?;
        let mut bytes = vec![0; len + 1];
        out.read_exact(&mut bytes)?;
        bytes.pop();
        blobs.push(Ok(bytes));
    }
    Ok(blobs)
}

/// The top level of the work tree holding `dir`.
fn toplevel(dir: &Path) -> Result<PathBuf, PrecommitError> {
    match git(dir, &["rev-parse", "--show-toplevel"]) {
        Ok(out) => Ok(PathBuf::from(
            String::from_utf8_lossy(&out).trim_end_matches('\n'),
        )),
        Err(PrecommitError::Git { dir, message, .. }) => {
            Err(PrecommitError::NotARepository { dir, message })
        }
        Err(err) => Err(err),
    }
}

/// `git -C dir args…`: its stdout, or an error with its first stderr line.
fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, PrecommitError> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| PrecommitError::Spawn {
            args: args.join(" "),
            dir: dir.to_owned(),
            source,
        })?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(PrecommitError::Git {
            args: args.join(" "),
            dir: dir.to_owned(),
            message: first_line(&output.stderr, output.status),
        })
    }
}

fn first_line(stderr: &[u8], status: std::process::ExitStatus) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let line = line.strip_prefix("fatal: ").unwrap_or(line);
    if line.is_empty() {
        status.to_string()
    } else {
        line.trim().to_owned()
    }
}

// ---- installing the hook --------------------------------------------------------------

/// Why no hook was installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The project is not in a git repository (git's message).
    NotARepository(String),
    /// git is not installed (or could not be run).
    NoGit(String),
    /// The `ctxopt` binary the hook would run is missing or not executable.
    NoCtxopt(PathBuf),
    /// A foreign `pre-commit` and [`CHAINED_NAME`] both exist: nowhere to put ours.
    Conflict {
        /// The hooks directory.
        hooks_dir: PathBuf,
    },
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
            Self::NoCtxopt(path) => write!(
                f,
                "{} is missing or not executable, and the hook would run it",
                path.display()
            ),
            Self::Conflict { hooks_dir } => write!(
                f,
                "{} holds both a pre-commit hook that is not ctxopt's and {CHAINED_NAME}; \
                 merge them by hand, then run install again",
                hooks_dir.display()
            ),
        }
    }
}

/// What install does to the hooks directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// No `pre-commit` hook yet: ours goes in.
    Add,
    /// A foreign `pre-commit` is moved to [`CHAINED_NAME`] and ours runs it.
    Chain,
    /// Ours, with other bytes (ctxopt moved or changed): rewritten.
    Update,
    /// Ours, identical: nothing to do.
    Present,
}

/// The hook install would write, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookPlan {
    /// `<hooks dir>/pre-commit`.
    pub hook: PathBuf,
    /// `<hooks dir>/pre-commit.ctxopt-chained`.
    pub chained: PathBuf,
    /// What install does.
    pub action: Action,
    /// Whether ours will run a chained hook (one exists or is being moved there).
    pub chains: bool,
    script: String,
}

impl HookPlan {
    /// Whether applying the plan writes anything.
    #[must_use]
    pub fn writes(&self) -> bool {
        self.action != Action::Present
    }

    /// What the install manifest records.
    #[must_use]
    pub fn entry(&self) -> Entry {
        Entry {
            hook: self.hook.to_string_lossy().into_owned(),
            chained: self
                .chains
                .then(|| self.chained.to_string_lossy().into_owned()),
        }
    }
}

/// What install does about the pre-commit hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Install (or keep) the hook.
    Install(HookPlan),
    /// No hook, and why.
    Skip(Skip),
}

/// The install manifest's record of the hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The hook file ctxopt wrote (absolute).
    pub hook: String,
    /// Where the hook that was there before now is, when there was one (absolute).
    pub chained: Option<String>,
}

/// The hook script running `ctxopt` (an absolute path) on the staged files.
#[must_use]
pub fn script(ctxopt: &Path) -> String {
    let ctxopt = shell_quote(&ctxopt.to_string_lossy());
    format!(
        r#"#!/bin/sh
{MARKER}
# Checks the staged Claude Code config files before each commit; written by `ctxopt install`.
# A hook that was here before is in {CHAINED_NAME} and runs after the check
# passes; `ctxopt uninstall` removes this hook and moves that one back.
# Skip the check once: git commit --no-verify
ctxopt={ctxopt}
here=$(cd -- "$(dirname -- "$0")" && pwd) || exit 1
chained="$here/{CHAINED_NAME}"
if [ ! -x "$ctxopt" ]; then
	echo "ctxopt pre-commit hook: $ctxopt is missing or not executable, so the staged Claude Code config files cannot be checked; commit refused." >&2
	echo "  reinstall ctxopt, or remove this hook:" >&2
	if [ -e "$chained" ]; then
		echo "    mv '$chained' '$here/{HOOK_NAME}'   (puts back the hook it chained)" >&2
	else
		echo "    rm '$here/{HOOK_NAME}'" >&2
	fi
	echo "  or commit without the check once: git commit --no-verify" >&2
	exit 1
fi
"$ctxopt" validate --staged --project "$(git rev-parse --show-toplevel)"
status=$?
if [ "$status" -eq 1 ]; then
	echo "ctxopt: commit refused: fix the staged config files above and git add them (skip the check once: git commit --no-verify)" >&2
	exit 1
elif [ "$status" -ne 0 ]; then
	echo "ctxopt: commit refused: the staged config files could not be checked, see above (skip the check once: git commit --no-verify)" >&2
	exit 1
fi
if [ -x "$chained" ]; then
	exec "$chained" "$@"
fi
exit 0
"#
    )
}

/// Whether the file at `path` is a hook ctxopt wrote. `None` when there is no file (a
/// dangling symlink is a file here: it is somebody's hook).
fn ours(path: &Path) -> Result<Option<bool>, PrecommitError> {
    if fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    match fs::read(path) {
        Ok(bytes) => Ok(Some(contains(&bytes, MARKER.as_bytes()))),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Some(false)),
        Err(source) => Err(PrecommitError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The hooks directory of the repository holding `project`.
fn hooks_dir(project: &Path) -> Result<PathBuf, Skip> {
    match git(project, &["rev-parse", "--git-path", "hooks"]) {
        Ok(out) => Ok(project.join(String::from_utf8_lossy(&out).trim_end_matches('\n'))),
        Err(PrecommitError::Git { message, .. }) => Err(Skip::NotARepository(message)),
        Err(err) => Err(Skip::NoGit(
            std::error::Error::source(&err).map_or_else(|| err.to_string(), ToString::to_string),
        )),
    }
}

/// What install would do for `project`, whose hook runs `ctxopt` (an absolute path).
pub fn plan(project: &Path, ctxopt: &Path) -> Result<Plan, PrecommitError> {
    let dir = match hooks_dir(project) {
        Ok(dir) => dir,
        Err(skip) => return Ok(Plan::Skip(skip)),
    };
    if !is_executable(ctxopt) {
        return Ok(Plan::Skip(Skip::NoCtxopt(ctxopt.to_owned())));
    }
    let hook = dir.join(HOOK_NAME);
    let chained = dir.join(CHAINED_NAME);
    let script = script(ctxopt);
    let chained_exists = fs::symlink_metadata(&chained).is_ok();
    let action = match ours(&hook)? {
        None => Action::Add,
        Some(true) if fs::read(&hook).ok().as_deref() == Some(script.as_bytes()) => Action::Present,
        Some(true) => Action::Update,
        Some(false) if chained_exists => {
            return Ok(Plan::Skip(Skip::Conflict { hooks_dir: dir }));
        }
        Some(false) => Action::Chain,
    };
    Ok(Plan::Install(HookPlan {
        hook,
        chained,
        chains: chained_exists || action == Action::Chain,
        action,
        script,
    }))
}

/// Writes what `plan` says (nothing for [`Action::Present`]).
pub fn apply(plan: &HookPlan) -> Result<(), PrecommitError> {
    if !plan.writes() {
        return Ok(());
    }
    if let Some(dir) = plan.hook.parent() {
        fs::create_dir_all(dir).map_err(|source| StoreError {
            action: "create directory",
            path: dir.to_owned(),
            source,
        })?;
    }
    if plan.action == Action::Chain {
        rename(&plan.hook, &plan.chained)?;
    }
    store::write_atomic(
        &plan.hook,
        plan.script.as_bytes(),
        HOOK_MODE,
        Durability::Fsync,
    )?;
    Ok(())
}

fn rename(from: &Path, to: &Path) -> Result<(), PrecommitError> {
    fs::rename(from, to).map_err(|source| PrecommitError::Rename {
        from: from.to_owned(),
        to: to.to_owned(),
        source,
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

// ---- removing it ----------------------------------------------------------------------

/// What uninstall found at the hook's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Our hook was (would be) removed.
    Removed,
    /// The file there is not ours any more; it was left alone.
    NotOurs,
    /// There was no hook there.
    Missing,
}

/// What uninstall did (or, in a dry run, would do) about the pre-commit hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UninstallReport {
    /// The hook's path.
    pub hook: PathBuf,
    /// What happened to it.
    pub removal: Removal,
    /// The chained hook moved back to `hook`.
    pub restored: Option<PathBuf>,
    /// A chained hook left where it is because the slot is taken by a foreign hook.
    pub left_chained: Option<PathBuf>,
}

/// Removes the hook `entry` records (if it is still ours) and moves the chained hook back.
/// When the recorded path holds no hook of ours (the project moved, `core.hooksPath`
/// changed), the repository's current hooks directory is tried.
pub fn uninstall(
    project: &Path,
    entry: &Entry,
    mode: Mode,
) -> Result<UninstallReport, PrecommitError> {
    let recorded = PathBuf::from(&entry.hook);
    let hook = if ours(&recorded)? == Some(true) {
        recorded
    } else {
        match hooks_dir(project).map(|dir| dir.join(HOOK_NAME)) {
            Ok(current) if ours(&current)? == Some(true) => current,
            _ => recorded,
        }
    };
    let chained = hook.with_file_name(CHAINED_NAME);
    let removal = match ours(&hook)? {
        Some(true) => Removal::Removed,
        Some(false) => Removal::NotOurs,
        None => Removal::Missing,
    };
    let chained_exists = fs::symlink_metadata(&chained).is_ok();
    let report = UninstallReport {
        restored: (chained_exists && removal != Removal::NotOurs).then(|| chained.clone()),
        left_chained: (chained_exists && removal == Removal::NotOurs).then(|| chained.clone()),
        hook,
        removal,
    };
    if mode == Mode::DryRun {
        return Ok(report);
    }
    if removal == Removal::Removed {
        fs::remove_file(&report.hook).map_err(|source| StoreError {
            action: "remove",
            path: report.hook.clone(),
            source,
        })?;
    }
    if let Some(chained) = &report.restored {
        rename(chained, &report.hook)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_kinds_are_claude_config_only() {
        for (path, kind) in [
            (".claude/settings.json", Some(Kind::ProjectSettings)),
            ("sub/.claude/settings.local.json", Some(Kind::LocalSettings)),
            (".mcp.json", Some(Kind::McpJson)),
            ("a/.mcp.json", Some(Kind::McpJson)),
            (".claude/canary.json", Some(Kind::Canary)),
            (".claude/ctxopt.json", Some(Kind::Policy)),
            (".claude/skills/x/SKILL.md", Some(Kind::SkillMd)),
            (".claude/skills/x/skill.json", Some(Kind::SkillJson)),
            ("plugins/p/skills/x/SKILL.md", Some(Kind::SkillMd)),
            ("dotfiles/.claude.json", Some(Kind::ClaudeJson)),
            ("etc/managed-settings.json", Some(Kind::ManagedSettings)),
            (
                "etc/managed-settings.d/10-a.json",
                Some(Kind::ManagedSettings),
            ),
            (".vscode/settings.json", None),
            ("settings.json", None),
            ("config/settings.local.json", None),
            ("canary.json", None),
            ("ctxopt.json", None),
            ("docs/SKILL.md", None),
            ("README.md", None),
        ] {
            assert_eq!(staged_kind(path), kind, "{path}");
        }
    }

    #[test]
    fn raw_diff_records_parse() {
        let raw = b":000000 100644 0000 abcd A\0.claude/settings.json\0:100644 120000 1111 2222 M\0dir/.mcp.json\0";
        let entries = parse_raw_diff(raw).unwrap();
        assert_eq!(
            entries,
            [
                RawEntry {
                    mode: "100644".into(),
                    oid: "abcd".into(),
                    path: ".claude/settings.json".into()
                },
                RawEntry {
                    mode: "120000".into(),
                    oid: "2222".into(),
                    path: "dir/.mcp.json".into()
                },
            ]
        );
        assert!(parse_raw_diff(b":bad\0x\0").is_err());
        assert!(parse_raw_diff(b"").unwrap().is_empty());
    }

    #[test]
    fn batch_answers_parse_and_large_blobs_are_skipped() {
        let big = MAX_CONFIG_BYTES + 1;
        let mut out = b"aaaa blob 2\n{}\n".to_vec();
        out.extend_from_slice(format!("bbbb blob {big}\n").as_bytes());
        out.extend(std::iter::repeat_n(b'x', usize::try_from(big).unwrap()));
        out.extend_from_slice(b"\ncccc blob 0\n\n");
        let blobs = read_batch(&mut io::Cursor::new(out), 3).unwrap();
        assert_eq!(blobs[0], Ok(b"{}".to_vec()));
        assert!(blobs[1].as_ref().unwrap_err().contains("16 MiB"));
        assert_eq!(blobs[2], Ok(Vec::new()));
        let missing = read_batch(&mut io::Cursor::new(b"dddd missing\n".to_vec()), 1);
        assert!(missing.is_err());
    }

    #[test]
    fn script_is_marked_and_quotes_the_binary() {
        let s = script(Path::new("/opt/my tools/ctxopt"));
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains(MARKER));
        assert!(s.contains("ctxopt='/opt/my tools/ctxopt'\n"));
        assert!(s.contains("validate --staged --project"));
        assert!(s.contains("git commit --no-verify"));
        assert!(s.contains(CHAINED_NAME));
    }
}
