//! Which config files a project and its user have: the fixed list of places Claude Code and
//! ctxopt read config from, each checked with one `stat`, and the skill directories listed one
//! level deep. Nothing else is walked, so a huge project tree costs nothing.
//!
//! Order (stable, the order findings are printed in): the project's files, then the user's,
//! then the managed ones. Missing files are skipped; a path that exists but is not a regular
//! file (a directory, a FIFO) is still returned, so validation reports it as unreadable
//! instead of it vanishing silently.
//!
//! Where the user's files are (PROTOCOL.md §1.1, §4): `$CLAUDE_CONFIG_DIR` replaces
//! `~/.claude` when set, and then Claude Code keeps `.claude.json` inside that directory
//! (`$CLAUDE_CONFIG_DIR/.claude.json`, see anthropics/claude-code#24479) instead of
//! `~/.claude.json`. Managed settings live in `/etc/claude-code` on Linux and
//! `/Library/Application Support/ClaudeCode` on macOS.

use crate::fsx::{Dir, Meta};
use std::path::{Path, PathBuf};

use super::{ConfigFile, Kind};

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

impl Locations {
    /// The locations for `home` and this process's environment: `$CLAUDE_CONFIG_DIR` (when set
    /// and not empty) and the managed directory of this operating system.
    #[must_use]
    pub fn from_env(home: &Path) -> Self {
        let managed_dir = if cfg!(target_os = "macos") {
            PathBuf::from("/Library/Application Support/ClaudeCode")
        } else {
            PathBuf::from("/etc/claude-code")
        };
        Self {
            home: home.to_path_buf(),
            claude_config_dir: std::env::var_os("CLAUDE_CONFIG_DIR")
                .filter(|dir| !dir.is_empty())
                .map(PathBuf::from),
            managed_dir,
        }
    }

    /// The locations from this process's environment: `$HOME` (else the system's record of
    /// it, else none: then only the project's files are found) and [`Locations::from_env`].
    /// Called once, at a process boundary (the hook runner, a CLI command); nothing in
    /// `config` reads the environment on its own.
    #[must_use]
    pub fn from_process_env() -> Self {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(std::env::home_dir)
            .unwrap_or_default();
        Self::from_env(&home)
    }

    /// Locations under `root` that hold nothing, for tests that must not see the real
    /// user's files.
    #[cfg(test)]
    #[must_use]
    pub fn empty_under(root: &Path) -> Self {
        Self {
            home: root.join("no-home"),
            claude_config_dir: None,
            managed_dir: root.join("no-managed"),
        }
    }

    /// The user's Claude Code directory: `$CLAUDE_CONFIG_DIR`, or `~/.claude`.
    #[must_use]
    pub fn config_dir(&self) -> PathBuf {
        self.claude_config_dir
            .clone()
            .unwrap_or_else(|| self.home.join(".claude"))
    }

    /// Claude Code's app state: `$CLAUDE_CONFIG_DIR/.claude.json` when that is set, else
    /// `~/.claude.json`.
    #[must_use]
    pub fn claude_json(&self) -> PathBuf {
        match &self.claude_config_dir {
            Some(dir) => dir.join(".claude.json"),
            None => self.home.join(".claude.json"),
        }
    }
}

/// Every config file of `project` and of the user that exists.
#[must_use]
pub fn discover(project: &Path, locations: &Locations) -> Vec<ConfigFile> {
    discover_stat(project, locations)
        .files
        .into_iter()
        .map(|found| found.file)
        .collect()
}

/// A discovered file and what its one `stat` (following symlinks) showed.
#[derive(Debug, Clone)]
pub struct Found {
    /// The file.
    pub file: ConfigFile,
    /// Its metadata at discovery.
    pub meta: Meta,
}

/// One entry of a skills directory as discovery listed it.
#[derive(Debug, Clone)]
pub struct SkillEntry {
    /// The entry (`<skills>/<name>`), a directory or not.
    pub path: PathBuf,
    /// `SKILL.md`'s metadata, when the entry is a directory holding one.
    pub skill_md: Option<Meta>,
    /// `skill.json`'s metadata, likewise.
    pub skill_json: Option<Meta>,
}

/// A skills directory as discovery listed it: every entry, in name order (none when it
/// cannot be listed).
#[derive(Debug, Clone)]
pub struct SkillsDir {
    /// The directory (`<config dir>/skills`, `<project>/.claude/skills`).
    pub dir: PathBuf,
    /// Its entries.
    pub entries: Vec<SkillEntry>,
}

/// What [`discover_stat`] found: the files (in [`discover`]'s order) with their metadata, and
/// the two skills directories as listed, so that SessionStart's later steps (the config
/// check, the context budget) neither list nor `stat` them again.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    /// The config files.
    pub files: Vec<Found>,
    /// The project's skills directory, then the user's.
    pub skills: Vec<SkillsDir>,
}

/// [`discover`] with each file's metadata and the skills listings. One `stat` per file that
/// exists and per candidate that does not; a skills directory costs one listing, and its
/// entries' types come from the listing (`d_type`), so only a symlinked entry is `stat`ed.
#[must_use]
pub fn discover_stat(project: &Path, locations: &Locations) -> Discovered {
    let mut found = Discovered::default();
    let dot_claude = project.join(".claude");
    add(
        &mut found.files,
        dot_claude.join("settings.json"),
        Kind::ProjectSettings,
    );
    add(
        &mut found.files,
        dot_claude.join("settings.local.json"),
        Kind::LocalSettings,
    );
    add(&mut found.files, project.join(".mcp.json"), Kind::McpJson);
    add(
        &mut found.files,
        dot_claude.join("canary.json"),
        Kind::Canary,
    );
    add(
        &mut found.files,
        dot_claude.join("ctxopt.json"),
        Kind::Policy,
    );
    skills(&mut found, dot_claude.join("skills"));

    let config_dir = locations.config_dir();
    add(
        &mut found.files,
        config_dir.join("settings.json"),
        Kind::UserSettings,
    );
    skills(&mut found, config_dir.join("skills"));
    add(&mut found.files, locations.claude_json(), Kind::ClaudeJson);

    let managed = &locations.managed_dir;
    add(
        &mut found.files,
        managed.join("managed-settings.json"),
        Kind::ManagedSettings,
    );
    for (path, _) in sorted_entries(&managed.join("managed-settings.d")) {
        if path.extension().is_some_and(|e| e == "json") {
            add(&mut found.files, path, Kind::ManagedSettings);
        }
    }
    found
}

/// Adds `path` when something is there (without following it into a tree); its metadata.
fn add(found: &mut Vec<Found>, path: PathBuf, kind: Kind) -> Option<Meta> {
    let meta = Meta::path(&path).ok()?;
    found.push(Found {
        file: ConfigFile { path, kind },
        meta,
    });
    Some(meta)
}

/// [`add`] for `dir`/`rel`, `stat`ed relative to the open `at` (`dir` itself when it could not
/// be opened).
fn add_at(
    found: &mut Vec<Found>,
    at: Option<&Dir>,
    dir: &Path,
    rel: &Path,
    kind: Kind,
) -> Option<Meta> {
    let path = dir.join(rel);
    let meta = match at {
        Some(at) => at.stat(rel).ok()?,
        None => Meta::path(&path).ok()?,
    };
    found.push(Found {
        file: ConfigFile { path, kind },
        meta,
    });
    Some(meta)
}

/// `skills/*/skill.json` and `skills/*/SKILL.md`, skill directories in name order.
fn skills(found: &mut Discovered, skills: PathBuf) {
    let mut listing = SkillsDir {
        dir: skills,
        entries: Vec::new(),
    };
    // Two `stat`s per skill, from the open skills directory (`crate::fsx`).
    let at = Dir::open(&listing.dir);
    for (path, is_dir) in sorted_entries(&listing.dir) {
        let (mut skill_md, mut skill_json) = (None, None);
        if is_dir && let Some(name) = path.file_name() {
            let rel = Path::new(name);
            let dir = &listing.dir;
            skill_json = add_at(
                &mut found.files,
                at.as_ref(),
                dir,
                &rel.join("skill.json"),
                Kind::SkillJson,
            );
            skill_md = add_at(
                &mut found.files,
                at.as_ref(),
                dir,
                &rel.join("SKILL.md"),
                Kind::SkillMd,
            );
        }
        listing.entries.push(SkillEntry {
            path,
            skill_md,
            skill_json,
        });
    }
    found.skills.push(listing);
}

/// The entries of `dir` sorted by name, each with whether it is a directory (following a
/// symlink); none when it cannot be listed.
fn sorted_entries(dir: &Path) -> Vec<(PathBuf, bool)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut named: Vec<(std::ffi::OsString, PathBuf, bool)> = entries
        .filter_map(Result::ok)
        .map(|e| {
            let path = e.path();
            let is_dir = match e.file_type() {
                Ok(t) if t.is_symlink() => path.is_dir(),
                Ok(t) => t.is_dir(),
                Err(_) => path.is_dir(),
            };
            (e.file_name(), path, is_dir)
        })
        .collect();
    // One directory's entries differ only in their file names: comparing those is the
    // paths' order, without splitting every path into components at every comparison.
    named.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    named
        .into_iter()
        .map(|(_, path, is_dir)| (path, is_dir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn touch(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "{}").unwrap();
    }

    #[test]
    fn finds_every_scope_in_order_and_skips_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join("proj");
        let home = tmp.path().join("home");
        let managed = tmp.path().join("managed");
        for rel in [
            ".claude/settings.local.json",
            ".claude/settings.json",
            ".mcp.json",
            ".claude/ctxopt.json",
            ".claude/skills/b/SKILL.md",
            ".claude/skills/a/skill.json",
            ".claude/skills/a/SKILL.md",
            "src/deep/.claude/settings.json",
        ] {
            touch(&project.join(rel));
        }
        touch(&home.join(".claude/settings.json"));
        touch(&home.join(".claude/skills/u/SKILL.md"));
        touch(&home.join(".claude.json"));
        touch(&managed.join("managed-settings.json"));
        touch(&managed.join("managed-settings.d/20-b.json"));
        touch(&managed.join("managed-settings.d/10-a.json"));
        touch(&managed.join("managed-settings.d/notes.txt"));
        let locations = Locations {
            home: home.clone(),
            claude_config_dir: None,
            managed_dir: managed.clone(),
        };
        let found: Vec<(String, Kind)> = discover(&project, &locations)
            .into_iter()
            .map(|f| {
                let rel = f
                    .path
                    .strip_prefix(tmp.path())
                    .unwrap()
                    .display()
                    .to_string();
                (rel, f.kind)
            })
            .collect();
        let expected = [
            ("proj/.claude/settings.json", Kind::ProjectSettings),
            ("proj/.claude/settings.local.json", Kind::LocalSettings),
            ("proj/.mcp.json", Kind::McpJson),
            ("proj/.claude/ctxopt.json", Kind::Policy),
            ("proj/.claude/skills/a/skill.json", Kind::SkillJson),
            ("proj/.claude/skills/a/SKILL.md", Kind::SkillMd),
            ("proj/.claude/skills/b/SKILL.md", Kind::SkillMd),
            ("home/.claude/settings.json", Kind::UserSettings),
            ("home/.claude/skills/u/SKILL.md", Kind::SkillMd),
            ("home/.claude.json", Kind::ClaudeJson),
            ("managed/managed-settings.json", Kind::ManagedSettings),
            (
                "managed/managed-settings.d/10-a.json",
                Kind::ManagedSettings,
            ),
            (
                "managed/managed-settings.d/20-b.json",
                Kind::ManagedSettings,
            ),
        ];
        let expected: Vec<(String, Kind)> = expected
            .iter()
            .map(|(p, k)| ((*p).to_owned(), *k))
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn claude_config_dir_moves_settings_and_claude_json() {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("cfg");
        touch(&config.join("settings.json"));
        touch(&config.join(".claude.json"));
        touch(&tmp.path().join("home/.claude.json"));
        let locations = Locations {
            home: tmp.path().join("home"),
            claude_config_dir: Some(config.clone()),
            managed_dir: tmp.path().join("none"),
        };
        let found: Vec<PathBuf> = discover(&tmp.path().join("proj"), &locations)
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(
            found,
            [config.join("settings.json"), config.join(".claude.json")]
        );
    }
}
