//! Protected paths and path normalisation.
//!
//! **Protected** (P = project, C = `$CLAUDE_CONFIG_DIR` or `~/.claude`, M = managed dir):
//! `P/.claude/settings.json`, `P/.claude/settings.local.json`, `C/settings.json` (and
//! `~/.claude/settings.json`), `~/.claude.json` (and `C/.claude.json`), `M/managed-settings.json`,
//! `M/managed-mcp.json`, `M/managed-settings.d/**`, `P/.mcp.json`, `P/.claude/ctxopt.json`,
//! `P/.claude/canary.json`, the last-known-good copies `X.backup` and kept-aside `X.broken-*`
//! of those files, `P/.claude/hooks/**` (ctxopt's data dir included), `P/.deploy/**`, the
//! runbook's backup dir `P/.kiro/specs/context-optimization/backup/**`, and the git pre-commit
//! hook ctxopt installs (`P/.git/hooks/pre-commit`, `pre-commit.ctxopt-chained`). Not
//! protected, on purpose: skills, agents, commands and `CLAUDE.md` — the user's work product.
//!
//! **Normalisation** ([`normalize`], for words a shell expands): `~`, `~/…`, `$HOME`,
//! `${HOME}`, `$CLAUDE_PROJECT_DIR`, `${CLAUDE_PROJECT_DIR}`, `$PWD` are expanded; any other
//! `$`, a glob (`*?[`), a brace or a backtick makes the path unjudgeable (`None`); a relative
//! path is taken from the anchors' `cwd`; `.`, `..` and repeated slashes are removed
//! lexically; then the longest existing prefix is canonicalised, so a symlink to `.claude`
//! from elsewhere resolves to the file it names. [`normalize_literal`] is the same for a
//! tool's `file_path`, where only a leading `~` is special.
//!
//! Known limits: a hard link made earlier to a protected file is invisible to a path check;
//! `..` after a symlink is resolved lexically; the file system can change between the check
//! and the write. The snapshot (PostToolUse) is the line behind these.

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

use crate::config::discover::Locations;

/// Longest raw path judged; longer is unjudgeable.
const MAX_PATH_BYTES: usize = 4096;

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

/// How a raw path is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Shell,
    Literal,
}

/// `raw`, a word a shell would expand, as an absolute normalised path; `None` when it cannot
/// be judged statically (see the module doc).
#[must_use]
pub fn normalize(raw: &str, anchors: &Anchors) -> Option<PathBuf> {
    normalize_with(raw, anchors, Syntax::Shell)
}

/// Like [`normalize`], for a tool's `file_path`: only a leading `~` is expanded.
#[must_use]
pub fn normalize_literal(raw: &str, anchors: &Anchors) -> Option<PathBuf> {
    normalize_with(raw, anchors, Syntax::Literal)
}

fn normalize_with(raw: &str, anchors: &Anchors, syntax: Syntax) -> Option<PathBuf> {
    if raw.is_empty() || raw.len() > MAX_PATH_BYTES || raw.contains('\0') {
        return None;
    }
    let expanded = match syntax {
        Syntax::Literal => expand_tilde(raw, &anchors.home)?,
        Syntax::Shell => expand_shell(raw, anchors)?,
    };
    let absolute = if Path::new(&expanded).is_absolute() {
        PathBuf::from(expanded)
    } else {
        anchors.cwd.join(expanded)
    };
    Some(resolve_existing_prefix(&lexical(&absolute)))
}

fn expand_tilde(raw: &str, home: &Path) -> Option<String> {
    if raw == "~" {
        return Some(home.to_string_lossy().into_owned());
    }
    if let Some(rest) = raw.strip_prefix("~/") {
        return Some(format!("{}/{rest}", home.to_string_lossy()));
    }
    if raw.starts_with('~') {
        return None;
    }
    Some(raw.to_owned())
}

fn expand_shell(raw: &str, anchors: &Anchors) -> Option<String> {
    if raw.contains(['*', '?', '[', '{', '`']) && !raw.contains("${") {
        return None;
    }
    let mut text = expand_tilde(raw, &anchors.home)?;
    if !text.contains('$') {
        return Some(text);
    }
    let vars = [
        ("${CLAUDE_PROJECT_DIR}", &anchors.project),
        ("$CLAUDE_PROJECT_DIR", &anchors.project),
        ("${HOME}", &anchors.home),
        ("$HOME", &anchors.home),
        ("${PWD}", &anchors.cwd),
        ("$PWD", &anchors.cwd),
    ];
    for (name, value) in vars {
        text = text.replace(name, &value.to_string_lossy());
    }
    if text.contains(['$', '*', '?', '[', '{', '`']) {
        return None;
    }
    Some(text)
}

/// `.`, `..` and repeated separators removed without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Whether directory resolutions are memoised for the life of the process (see
/// [`memoize_for_process`]).
static MEMOIZE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Directory → its canonical path (`None`: it does not exist), when memoised.
static DIRS: std::sync::Mutex<Option<std::collections::HashMap<PathBuf, Option<PathBuf>>>> =
    std::sync::Mutex::new(None);

/// Memoises the canonical paths of directories for the rest of this process. For the hook
/// binaries, which live for one decision: resolving the ~20 protected entries and a command's
/// targets then costs one `realpath` per distinct directory instead of one per path (glibc's
/// `realpath` reads every component's link). A long-lived process must not call this: a
/// directory replaced by a symlink later would be resolved stale.
pub fn memoize_for_process() {
    MEMOIZE.store(true, std::sync::atomic::Ordering::Relaxed);
}

fn canonical_dir(dir: &Path) -> Option<PathBuf> {
    if !MEMOIZE.load(std::sync::atomic::Ordering::Relaxed) {
        return std::fs::canonicalize(dir).ok();
    }
    if let Ok(guard) = DIRS.lock()
        && let Some(known) = guard.as_ref().and_then(|dirs| dirs.get(dir))
    {
        return known.clone();
    }
    // Component by component, each prefix memoised: one `lstat` per distinct prefix of all the
    // paths a run resolves, and a full `realpath` only where a component is a symlink.
    let resolved = match (dir.parent(), dir.file_name()) {
        (Some(parent), Some(name)) => canonical_dir(parent).and_then(|parent| {
            let candidate = parent.join(name);
            match std::fs::symlink_metadata(&candidate) {
                Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(&candidate).ok(),
                Ok(_) => Some(candidate),
                Err(_) => None,
            }
        }),
        _ => std::fs::canonicalize(dir).ok(),
    };
    if let Ok(mut guard) = DIRS.lock() {
        guard
            .get_or_insert_with(std::collections::HashMap::new)
            .insert(dir.to_path_buf(), resolved.clone());
    }
    resolved
}

/// The longest existing prefix canonicalised (symlinks resolved), the rest appended.
fn resolve_existing_prefix(path: &Path) -> PathBuf {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    };
    match canonical_dir(parent) {
        Some(dir) => {
            let candidate = dir.join(name);
            match std::fs::symlink_metadata(&candidate) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    std::fs::canonicalize(&candidate).unwrap_or(candidate)
                }
                _ => candidate,
            }
        }
        None => resolve_existing_prefix(parent).join(name),
    }
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

impl Protection {
    /// One sentence for a deny reason: the path, what it is, how a person changes it.
    #[must_use]
    pub fn message(&self) -> String {
        format!(
            "{} is protected by ctxopt: {}. {}",
            self.path.display(),
            self.what,
            self.how_to_change
        )
    }
}

/// Whether an entry protects one file or a whole tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Exactly this file (and its `X.backup` / `X.broken-*` when it keeps a copy).
    File,
    /// This directory and everything below it.
    Tree,
}

#[derive(Debug, Clone)]
struct Entry {
    /// As built (absolute, lexically normalised); resolved on first use, see [`Protected`].
    raw: PathBuf,
    scope: Scope,
    copies: bool,
    what: String,
    how: String,
    /// `raw` is a file name in the running binary's directory ([`Protected::with_running_binaries`]).
    beside_binary: bool,
}

/// The set of protected paths of a project and its user.
///
/// Building it is pure path computation; an entry's symlinks are resolved only when a checked
/// path could be it, so a call that writes nothing — a Read, most Bash commands — pays nothing
/// for them, and a write to `/tmp/out.txt` one `lstat` per entry. The rule ([`Protected::check`]):
/// when an entry's last component is not a symlink, its resolved path ends in that same name,
/// so a path can only be that file (or lie under that tree) when the path ends in (or passes
/// through) a component of that name; only then is the entry resolved and compared.
#[derive(Debug, Clone)]
pub struct Protected {
    entries: Vec<Entry>,
    /// Per entry: its path with the symlinks of its existing prefix resolved.
    resolved: Vec<std::cell::OnceCell<PathBuf>>,
    /// Per entry: whether its last component is a symlink (one `lstat`).
    link: Vec<std::cell::OnceCell<bool>>,
    /// Finds the running binary's directory, for the entries beside it; called at most once.
    binary_dir: Option<fn() -> Option<PathBuf>>,
    binary_dir_found: std::cell::OnceCell<Option<PathBuf>>,
}

const BY_HAND: &str = "A person changes it by hand outside the agent (an editor, a terminal)";

impl Protected {
    /// The default protected paths (see the module doc) of `project` for the user at
    /// `locations`. Pure path computation; the paths are canonicalised as far as they exist.
    #[must_use]
    #[expect(
        clippy::too_many_lines,
        reason = "one table of the protected paths, kept together"
    )]
    pub fn for_project(project: &Path, locations: &Locations) -> Self {
        let claude = project.join(".claude");
        let config_dir = locations.config_dir();
        let settings_how = format!(
            "{BY_HAND}; ctxopt's own hook entries are managed with `ctxopt install` / `ctxopt uninstall`"
        );
        let mut set = Self {
            entries: Vec::new(),
            resolved: Vec::new(),
            link: Vec::new(),
            binary_dir: None,
            binary_dir_found: std::cell::OnceCell::new(),
        };
        let files: [(PathBuf, &str, &str); 12] = [
            (
                claude.join("settings.json"),
                "Claude Code's project settings",
                &settings_how,
            ),
            (
                claude.join("settings.local.json"),
                "Claude Code's local project settings",
                &settings_how,
            ),
            (
                config_dir.join("settings.json"),
                "Claude Code's user settings",
                BY_HAND,
            ),
            (
                locations.home.join(".claude/settings.json"),
                "Claude Code's user settings",
                BY_HAND,
            ),
            (
                locations.home.join(".claude.json"),
                "Claude Code's app state and user MCP servers",
                "A person changes it with `claude mcp …` or by hand outside the agent",
            ),
            (
                locations.claude_json(),
                "Claude Code's app state and user MCP servers",
                "A person changes it with `claude mcp …` or by hand outside the agent",
            ),
            (
                locations.managed_dir.join("managed-settings.json"),
                "managed (enterprise) settings",
                "An administrator changes it",
            ),
            (
                locations.managed_dir.join("managed-mcp.json"),
                "managed (enterprise) MCP servers",
                "An administrator changes it",
            ),
            (
                project.join(".mcp.json"),
                "the project's MCP servers",
                BY_HAND,
            ),
            (claude.join("ctxopt.json"), "ctxopt's policy", BY_HAND),
            (
                claude.join("canary.json"),
                "the canary release settings",
                BY_HAND,
            ),
            (
                project.join(".git/hooks/pre-commit"),
                "the git pre-commit hook ctxopt installed",
                "It is managed with `ctxopt install` / `ctxopt uninstall`",
            ),
        ];
        for (path, what, how) in files {
            set.push(&path, Scope::File, true, what, how);
        }
        set.push(
            &project.join(".git/hooks/pre-commit.ctxopt-chained"),
            Scope::File,
            false,
            "the project's own pre-commit hook, chained by ctxopt",
            BY_HAND,
        );
        let trees: [(PathBuf, &str, &str); 5] = [
            (
                claude.join("hooks/data"),
                "ctxopt's data directory (metrics, logs, state)",
                "It is written only by ctxopt's hooks and `ctxopt prune`",
            ),
            (
                claude.join("hooks"),
                "the project's hook scripts",
                "A person changes them by hand outside the agent; `ctxopt hooks disable|enable NAME` turns one off or on",
            ),
            (
                project.join(".deploy"),
                "the deploy history",
                "It is written by ctxopt's deploy and rollback commands",
            ),
            (
                project.join(".kiro/specs/context-optimization/backup"),
                "the config backups",
                "They are written by ctxopt's backup commands",
            ),
            (
                locations.managed_dir.join("managed-settings.d"),
                "managed (enterprise) settings",
                "An administrator changes them",
            ),
        ];
        for (path, what, how) in trees {
            set.push(&path, Scope::Tree, false, what, how);
        }
        set
    }

    fn push(&mut self, path: &Path, scope: Scope, copies: bool, what: &str, how: &str) {
        self.resolved.push(std::cell::OnceCell::new());
        self.link.push(std::cell::OnceCell::new());
        self.entries.push(Entry {
            raw: lexical(path),
            scope,
            copies,
            what: what.to_owned(),
            how: how.to_owned(),
            beside_binary: false,
        });
    }

    /// The set with one more protected path.
    #[must_use]
    pub fn with_protected(
        mut self,
        path: &Path,
        scope: Scope,
        what: impl Into<String>,
        how_to_change: impl Into<String>,
    ) -> Self {
        let (what, how) = (what.into(), how_to_change.into());
        self.push(path, scope, false, &what, &how);
        self
    }

    /// The set with files of the running binary's directory protected (ctxopt's own
    /// binaries), that directory found by `dir` only when a checked path carries one of
    /// `names` — on Linux `dir` reads `/proc/self/exe`, which costs as much as a dozen `stat`s.
    /// Known limit: these entries are matched by name only, never as symlinks (the installer
    /// copies the binaries, and the running binary's path has its symlinks resolved).
    #[must_use]
    pub fn with_running_binaries(
        mut self,
        dir: fn() -> Option<PathBuf>,
        names: &[&str],
        what: &str,
        how: &str,
    ) -> Self {
        self.binary_dir = Some(dir);
        for name in names {
            self.push(Path::new(name), Scope::File, false, what, how);
            if let Some(entry) = self.entries.last_mut() {
                entry.beside_binary = true;
            }
        }
        self
    }

    /// Entry `i`'s path with symlinks of its existing prefix resolved, computed once; `None`
    /// for an entry beside the running binary when that directory is unknown.
    fn resolved(&self, i: usize) -> Option<&Path> {
        let entry = &self.entries[i];
        if !entry.beside_binary {
            return Some(self.resolved[i].get_or_init(|| resolve_existing_prefix(&entry.raw)));
        }
        let dir = self
            .binary_dir_found
            .get_or_init(|| self.binary_dir.and_then(|find| find()))
            .as_deref()?;
        let name = entry.raw.file_name()?;
        Some(self.resolved[i].get_or_init(|| resolve_existing_prefix(&dir.join(name))))
    }

    /// Whether entry `i` could cover the normalised `path` (see the type's doc): `path`
    /// (its last component `target_name`, its components `parts`) carries the entry's name
    /// where the entry's resolved path would put it, or the entry is a symlink and its resolved
    /// name is unknown until resolved.
    fn may_cover(&self, i: usize, target_name: Option<&OsStr>, parts: &[&OsStr]) -> bool {
        let entry = &self.entries[i];
        let Some(name) = entry.raw.file_name() else {
            return true;
        };
        let named = match entry.scope {
            Scope::File => target_name.is_some_and(|own| {
                own == name
                    || (entry.copies
                        && own
                            .to_str()
                            .zip(name.to_str())
                            .is_some_and(|(own, name)| copy_of(own, name)))
            }),
            Scope::Tree => parts.contains(&name),
        };
        named || !entry.beside_binary && self.is_link(i)
    }

    /// Whether entry `i`'s last component is a symlink: one `lstat`, shared by entries of the
    /// same path and skipped for paths told by [`Protected::note_lstat`].
    fn is_link(&self, i: usize) -> bool {
        *self.link[i].get_or_init(|| {
            let raw = &self.entries[i].raw;
            let same = (0..i).find(|&j| {
                self.entries[j].raw.as_os_str() == raw.as_os_str() && !self.entries[j].beside_binary
            });
            match same {
                Some(j) => self.is_link(j),
                // The entry's own `lstat` only: a missing entry, or one under a missing
                // directory, is no symlink (ENOENT, ENOTDIR). Resolving the parent first cost an
                // `lstat` per component of the project's path on every write check.
                None => std::fs::symlink_metadata(raw).is_ok_and(|m| m.file_type().is_symlink()),
            }
        })
    }

    /// Tells the set what an `lstat` of `path` just found (the snapshot's scan of the watched
    /// files), so checking a path does not `lstat` that entry again. `is_symlink` should be
    /// `true` when unsure: the entry is then resolved, which is always correct.
    pub fn note_lstat(&self, path: &Path, is_symlink: bool) {
        for (entry, link) in self.entries.iter().zip(&self.link) {
            if !entry.beside_binary && entry.raw.as_os_str() == path.as_os_str() {
                let _ = link.set(is_symlink);
            }
        }
    }

    /// Whether the normalised `path` is protected, and why. The most specific entry wins.
    #[must_use]
    pub fn check(&self, path: &Path) -> Option<Protection> {
        let target_name = path.file_name();
        let parts: Vec<&OsStr> = path.components().map(Component::as_os_str).collect();
        (0..self.entries.len())
            .filter(|&i| self.may_cover(i, target_name, &parts))
            .filter_map(|i| Some((&self.entries[i], self.resolved(i)?)))
            .filter(|(entry, at)| entry.covers(at, path))
            .max_by_key(|(_, at)| at.components().count())
            .map(|(entry, _)| Protection {
                path: path.to_path_buf(),
                what: entry.what.clone(),
                how_to_change: entry.how.clone(),
            })
    }

    /// Whether `path` is a directory holding protected paths (for `rm -r`, `mv`, `ln -sfn`).
    #[must_use]
    pub fn check_subtree(&self, path: &Path) -> Option<Protection> {
        (0..self.entries.len())
            .filter_map(|i| Some((&self.entries[i], self.resolved(i)?)))
            .find(|(_, at)| is_under(at, path) && at.as_os_str() != path.as_os_str())
            .map(|(entry, _)| Protection {
                path: path.to_path_buf(),
                what: format!("a directory holding {}", entry.what),
                how_to_change: entry.how.clone(),
            })
    }
}

impl Entry {
    /// Whether this entry, resolved to `at`, covers `path`.
    fn covers(&self, at: &Path, path: &Path) -> bool {
        match self.scope {
            Scope::Tree => is_under(path, at),
            Scope::File => {
                if path.as_os_str() == at.as_os_str() {
                    return true;
                }
                if !self.copies || path.parent() != at.parent() {
                    return false;
                }
                let (Some(name), Some(own)) = (
                    path.file_name().and_then(|n| n.to_str()),
                    at.file_name().and_then(|n| n.to_str()),
                ) else {
                    return false;
                };
                copy_of(name, own)
            }
        }
    }
}

/// Whether `path` is `dir` or below it, for normalised absolute paths (no `.`, `..`, `//` or
/// trailing `/` but the root's): `Path::starts_with`'s answer from a byte comparison, without
/// splitting both into components (this runs per protected entry and target).
fn is_under(path: &Path, dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let (p, d) = (path.as_os_str().as_bytes(), dir.as_os_str().as_bytes());
    p.starts_with(d) && (p.len() == d.len() || d.ends_with(b"/") || p[d.len()] == b'/')
}

/// Whether file name `name` is one of the kept copies of `own`: `own.backup`, `own.broken-*`.
fn copy_of(name: &str, own: &str) -> bool {
    name.strip_prefix(own)
        .is_some_and(|rest| rest == ".backup" || rest.starts_with(".broken-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        _tmp: tempfile::TempDir,
        project: PathBuf,
        home: PathBuf,
        set: Protected,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let project = root.join("p");
        let home = root.join("h");
        std::fs::create_dir_all(project.join(".claude/hooks")).unwrap();
        std::fs::create_dir_all(project.join("src")).unwrap();
        std::fs::create_dir_all(home.join(".claude")).unwrap();
        let locations = Locations {
            home: home.clone(),
            claude_config_dir: None,
            managed_dir: root.join("managed"),
        };
        let set = Protected::for_project(&project, &locations);
        Fixture {
            _tmp: tmp,
            project,
            home,
            set,
        }
    }

    fn anchors(f: &Fixture, cwd: &Path) -> Anchors {
        Anchors {
            cwd: cwd.to_path_buf(),
            home: f.home.clone(),
            project: f.project.clone(),
        }
    }

    #[test]
    fn table_of_raw_paths() {
        let f = fixture();
        let p = f.project.to_string_lossy().into_owned();
        let src = f.project.join("src");
        let cases: &[(&str, &Path, bool)] = &[
            (".claude/settings.json", &f.project, true),
            ("../.claude/settings.json", &src, true),
            ("./.claude//settings.json", &f.project, true),
            (
                &format!("{p}/src/../.claude/settings.json"),
                &f.project,
                true,
            ),
            (
                &format!("/{p}///.claude//settings.local.json"),
                &f.project,
                true,
            ),
            ("$CLAUDE_PROJECT_DIR/.mcp.json", &src, true),
            ("${CLAUDE_PROJECT_DIR}/.claude/ctxopt.json", &src, true),
            ("~/.claude/settings.json", &src, true),
            ("$HOME/.claude.json", &src, true),
            ("${HOME}/.claude.json.backup", &src, true),
            (".claude/settings.json.backup", &f.project, true),
            (
                ".claude/settings.json.broken-20261125T000000Z",
                &f.project,
                true,
            ),
            (".claude/hooks/data/metrics.jsonl", &f.project, true),
            (".claude/hooks/guard.sh", &f.project, true),
            (".claude/hooks/", &f.project, true),
            (".deploy/history.log", &f.project, true),
            (".git/hooks/pre-commit", &f.project, true),
            (".claude/canary.json", &f.project, true),
            (".claude/skills/x/SKILL.md", &f.project, false),
            ("src/main.rs", &f.project, false),
            ("CLAUDE.md", &f.project, false),
            (".claude/settings.json.txt", &f.project, false),
            ("/tmp/settings.json", &f.project, false),
            ("notes/.claude/settings.json", &f.project, false),
        ];
        for (raw, cwd, protected) in cases {
            let path = normalize(raw, &anchors(&f, cwd)).unwrap_or_else(|| panic!("{raw}"));
            assert_eq!(
                f.set.check(&path).is_some(),
                *protected,
                "{raw} -> {path:?}"
            );
        }
    }

    #[test]
    fn unjudgeable_words_are_none() {
        let f = fixture();
        let a = anchors(&f, &f.project);
        for raw in [
            "$X/settings.json",
            "*.json",
            ".claude/{a,b}",
            "~other/x",
            "`pwd`/x",
            "",
        ] {
            assert_eq!(normalize(raw, &a), None, "{raw}");
        }
        assert!(normalize_literal("[id].tsx", &a).is_some());
    }

    #[test]
    fn a_symlink_to_dot_claude_is_resolved() {
        let f = fixture();
        let link = f.project.join("src/link");
        std::os::unix::fs::symlink(f.project.join(".claude"), &link).unwrap();
        let path = normalize("link/settings.json", &anchors(&f, &f.project.join("src"))).unwrap();
        assert!(f.set.check(&path).is_some(), "{path:?}");
    }

    /// The other way round: the protected entries themselves are symlinks into a dotfiles
    /// repository, under names of their own. Writing the real files is writing the entries.
    #[test]
    fn protected_entries_that_are_symlinks_protect_what_they_point_to() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let (project, home, dots) = (root.join("p"), root.join("h"), root.join("dots"));
        std::fs::create_dir_all(project.join(".claude")).unwrap();
        std::fs::create_dir_all(dots.join("my-hooks")).unwrap();
        std::fs::create_dir_all(dots.join("cc")).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(dots.join("cc-settings.json"), "{}").unwrap();
        std::fs::write(dots.join("claude-state.json"), "{}").unwrap();
        let link = std::os::unix::fs::symlink;
        link(
            dots.join("cc-settings.json"),
            project.join(".claude/settings.json"),
        )
        .unwrap();
        link(dots.join("my-hooks"), project.join(".claude/hooks")).unwrap();
        link(dots.join("claude-state.json"), home.join(".claude.json")).unwrap();
        link(dots.join("cc"), home.join(".claude")).unwrap();
        let locations = Locations {
            home: home.clone(),
            claude_config_dir: None,
            managed_dir: root.join("managed"),
        };
        let set = Protected::for_project(&project, &locations);
        let a = Anchors {
            cwd: dots.clone(),
            home,
            project,
        };
        for (raw, what) in [
            ("cc-settings.json", "project settings"),
            ("my-hooks/x.sh", "hook scripts"),
            ("claude-state.json", "app state"),
            ("cc/settings.json", "user settings"),
        ] {
            let path = normalize(raw, &a).unwrap();
            let found = set.check(&path);
            assert!(
                found.as_ref().is_some_and(|p| p.what.contains(what)),
                "{raw}: {found:?}"
            );
        }
        assert!(set.check(&normalize("other.json", &a).unwrap()).is_none());
    }

    #[test]
    fn is_under_answers_as_path_starts_with_on_normalised_paths() {
        let paths = [
            "/", "/a", "/a/b", "/a/bc", "/ab", "/a/b/c", "/a/b/c.d", "/a/b.", "/x/a/b",
        ];
        for p in paths {
            for d in paths {
                assert_eq!(
                    is_under(Path::new(p), Path::new(d)),
                    Path::new(p).starts_with(d),
                    "{p} under {d}"
                );
            }
        }
    }

    #[test]
    fn a_directory_holding_protected_paths_is_caught_by_subtree() {
        let f = fixture();
        let dir = normalize(".claude", &anchors(&f, &f.project)).unwrap();
        assert!(f.set.check(&dir).is_none());
        assert!(f.set.check_subtree(&dir).is_some());
        let src = normalize("src", &anchors(&f, &f.project)).unwrap();
        assert!(f.set.check_subtree(&src).is_none());
    }

    #[test]
    fn the_most_specific_entry_wins() {
        let f = fixture();
        let path = normalize(".claude/hooks/data/x", &anchors(&f, &f.project)).unwrap();
        assert!(f.set.check(&path).unwrap().what.contains("data directory"));
    }

    #[test]
    fn normalize_is_idempotent_on_judgeable_paths() {
        let f = fixture();
        let a = anchors(&f, &f.project);
        for raw in ["a/../b/./c", ".claude//hooks/", "~/x/../y", "/", "../../.."] {
            let once = normalize(raw, &a).unwrap();
            let twice = normalize(&once.to_string_lossy(), &a).unwrap();
            assert_eq!(once, twice, "{raw}");
        }
    }

    proptest::proptest! {
        #[test]
        fn normalize_never_panics(raw in ".{0,300}") {
            let a = Anchors {
                cwd: PathBuf::from("/tmp"),
                home: PathBuf::from("/nonexistent-home"),
                project: PathBuf::from("/nonexistent-project"),
            };
            let _ = normalize(&raw, &a);
            let _ = normalize_literal(&raw, &a);
        }
    }
}
