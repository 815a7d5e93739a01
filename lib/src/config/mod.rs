//! Claude Code's config files and ctxopt's own: which files exist, what kind each is, and
//! whether each is valid (R3).
//!
//! Validation of one file runs in three steps, each adding [`Diagnostic`]s: [`json::parse`]
//! (syntax, with positions, BOM, comments, trailing commas, duplicate keys, depth) or
//! [`frontmatter::parse`] for `SKILL.md`; [`schema::validate`] against the kind's embedded
//! JSON Schema; [`checks::run`], the checks a schema cannot express (hook event names, matcher
//! regexes, hook executables, MCP `url` without `type`). [`lastgood`] keeps last-known-good
//! copies, caches results for SessionStart and audits drift.
//!
//! This module never writes a config file; restoring one goes through [`lastgood`].

pub mod checks;
pub mod discover;
pub mod frontmatter;
pub mod json;
pub mod lastgood;
pub mod schema;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::diagnostic::{self, Code, Diagnostic, Level, Position};

/// Largest config file ctxopt reads (a 50 MB settings file is a finding, not a hang).
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// What a config file is, which decides its schema and checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `<project>/.claude/settings.json` (committed).
    ProjectSettings,
    /// `<project>/.claude/settings.local.json` (git-ignored).
    LocalSettings,
    /// `~/.claude/settings.json` (`$CLAUDE_CONFIG_DIR/settings.json`).
    UserSettings,
    /// `managed-settings.json` (+ `managed-settings.d/*.json`) in the managed dir.
    ManagedSettings,
    /// `~/.claude.json`: app state; ctxopt checks `mcpServers` and `projects.*.mcpServers`.
    ClaudeJson,
    /// `<project>/.mcp.json`.
    McpJson,
    /// `<project>/.claude/canary.json` (the runbook's canary settings).
    Canary,
    /// `.claude/skills/*/skill.json` (as the runbook names skills).
    SkillJson,
    /// `.claude/skills/*/SKILL.md` front matter (Claude Code's real skill format).
    SkillMd,
    /// `<project>/.claude/ctxopt.json`, ctxopt's policy.
    Policy,
}

impl Kind {
    /// The kind a path names, by its file name and parent directories; `None` when it is not
    /// a config file ctxopt knows.
    #[must_use]
    pub fn of_path(path: &Path) -> Option<Kind> {
        let name = path.file_name()?.to_str()?;
        let parent = path
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .unwrap_or("");
        let grandparent = path
            .parent()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .unwrap_or("");
        Some(match name {
            "settings.json" if parent == ".claude" => Kind::ProjectSettings,
            "settings.json" => Kind::UserSettings,
            "settings.local.json" => Kind::LocalSettings,
            "managed-settings.json" => Kind::ManagedSettings,
            ".claude.json" => Kind::ClaudeJson,
            ".mcp.json" => Kind::McpJson,
            "canary.json" => Kind::Canary,
            "ctxopt.json" => Kind::Policy,
            "skill.json" if grandparent == "skills" => Kind::SkillJson,
            "SKILL.md" => Kind::SkillMd,
            _ if parent == "managed-settings.d"
                && Path::new(name)
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("json")) =>
            {
                Kind::ManagedSettings
            }
            _ => return None,
        })
    }

    /// Whether the file is JSON (everything but `SKILL.md`).
    #[must_use]
    pub fn is_json(self) -> bool {
        self != Kind::SkillMd
    }

    /// Whether ctxopt keeps a last-known-good `X.backup` beside the file.
    #[must_use]
    pub fn keeps_backup(self) -> bool {
        !matches!(
            self,
            Kind::SkillJson | Kind::SkillMd | Kind::ManagedSettings
        )
    }
}

/// A config file found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigFile {
    /// Absolute path.
    pub path: PathBuf,
    /// What it is.
    pub kind: Kind,
}

/// What the checks need to know beyond the file: where `~`, `$HOME` and
/// `$CLAUDE_PROJECT_DIR` point when resolving hook commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckContext {
    /// The project root.
    pub project: PathBuf,
    /// The user's home.
    pub home: PathBuf,
}

/// Validates the contents of one config file. `display` is the name used in messages.
#[must_use]
pub fn validate_bytes(
    kind: Kind,
    display: &str,
    bytes: &[u8],
    ctx: &CheckContext,
) -> Vec<Diagnostic> {
    let (value, mut found, positions) = if kind.is_json() {
        let parsed = json::parse(display, bytes);
        (
            parsed.value.clone(),
            parsed.diagnostics.clone(),
            Positions::Json(parsed),
        )
    } else {
        let parsed = frontmatter::parse(display, bytes);
        (
            parsed.value.clone(),
            parsed.diagnostics.clone(),
            Positions::Yaml(parsed),
        )
    };
    if let Some(value) = &value {
        let at = |pointer: &str| positions.position(pointer);
        found.extend(schema::validate(kind, display, value, &at));
        found.extend(checks::run(kind, display, value, ctx, &at));
    }
    diagnostic::sort(&mut found);
    found
}

/// Reads and validates one file. A file that cannot be read — missing, a directory, a FIFO,
/// unreadable, larger than [`MAX_CONFIG_BYTES`] — is one `E008` finding; reading never blocks.
#[must_use]
pub fn validate_file(file: &ConfigFile, display: &str, ctx: &CheckContext) -> Vec<Diagnostic> {
    match read_config(&file.path) {
        Ok(bytes) => validate_bytes(file.kind, display, &bytes, ctx),
        Err(message) => vec![Diagnostic::new(
            display,
            Position::default(),
            Level::Error,
            Code::E008,
            message,
            "",
        )],
    }
}

/// Reads a config file with the checks of [`validate_file`]: a regular file, at most
/// [`MAX_CONFIG_BYTES`]. The error is a message for a person.
pub fn read_config(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|err| format!("cannot read the file: {err}"))?;
    if !meta.is_file() {
        return Err(String::from(
            "not a regular file (a directory, FIFO or device); Claude Code cannot read it either",
        ));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(format!(
            "the file is {} bytes, more than the {} MiB ctxopt reads; a config file this large is almost certainly corrupt",
            meta.len(),
            MAX_CONFIG_BYTES / (1024 * 1024)
        ));
    }
    let file = File::open(path).map_err(|err| format!("cannot read the file: {err}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| format!("cannot read the file: {err}"))?;
    Ok(bytes)
}

/// Where values are, for either source format.
enum Positions {
    Json(json::Parsed),
    Yaml(frontmatter::Parsed),
}

impl Positions {
    fn position(&self, pointer: &str) -> Position {
        match self {
            Self::Json(p) => p.position(pointer),
            Self::Yaml(p) => p.position(pointer),
        }
    }
}
