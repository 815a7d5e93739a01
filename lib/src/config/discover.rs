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
    let mut found = Vec::new();
    let dot_claude = project.join(".claude");
    add(
        &mut found,
        dot_claude.join("settings.json"),
        Kind::ProjectSettings,
    );
    add(
        &mut found,
        dot_claude.join("settings.local.json"),
        Kind::LocalSettings,
    );
    add(&mut found, project.join(".mcp.json"), Kind::McpJson);
    add(&mut found, dot_claude.join("canary.json"), Kind::Canary);
    add(&mut found, dot_claude.join("ctxopt.json"), Kind::Policy);
    skills(&mut found, &dot_claude.join("skills"));

    let config_dir = locations.config_dir();
    add(
        &mut found,
        config_dir.join("settings.json"),
        Kind::UserSettings,
    );
    skills(&mut found, &config_dir.join("skills"));
    add(&mut found, locations.claude_json(), Kind::ClaudeJson);

    let managed = &locations.managed_dir;
    add(
        &mut found,
        managed.join("managed-settings.json"),
        Kind::ManagedSettings,
    );
    for path in sorted_entries(&managed.join("managed-settings.d")) {
        if path.extension().is_some_and(|e| e == "json") {
            add(&mut found, path, Kind::ManagedSettings);
        }
    }
    found
}

/// Adds `path` when something is there (without following it into a tree).
fn add(found: &mut Vec<ConfigFile>, path: PathBuf, kind: Kind) {
    if std::fs::metadata(&path).is_ok() {
        found.push(ConfigFile { path, kind });
    }
}

/// `skills/*/skill.json` and `skills/*/SKILL.md`, skill directories in name order.
fn skills(found: &mut Vec<ConfigFile>, skills: &Path) {
    for dir in sorted_entries(skills) {
        if dir.is_dir() {
            add(found, dir.join("skill.json"), Kind::SkillJson);
            add(found, dir.join("SKILL.md"), Kind::SkillMd);
        }
    }
}

/// The entries of `dir` sorted by name; none when it cannot be listed.
fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths
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
