//! The context budget (R5): what enters Claude Code's context at session start, what it
//! costs in tokens (estimated and measured), and the limits on it.
//!
//! - [`discover`] — the inventory: MCP servers across scopes with their toggles, skills,
//!   commands, memory files, custom agents (PROTOCOL.md §4–§6).
//! - [`estimate`] — tokens per component, like Claude Code's `/context`, and the learned
//!   per-client-version overhead.
//! - [`transcript`] — the measured initial tokens and the current context size, read from the
//!   session transcript incrementally.

pub mod discover;
pub mod estimate;
pub mod limits;
pub mod transcript;

use std::path::PathBuf;

/// Where an MCP server is defined (PROTOCOL.md §4). Precedence when two scopes define the same
/// name is Claude Code's: local > project > user (managed servers replace the others when a
/// managed MCP file exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum McpScope {
    /// `managed-mcp.json` in the managed directory.
    Managed,
    /// `~/.claude.json` `projects[<dir>].mcpServers`.
    Local,
    /// The project's `.mcp.json`.
    Project,
    /// `~/.claude.json` top-level `mcpServers`.
    User,
}

/// How Claude Code talks to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A child process speaking JSON-RPC over stdin/stdout (`command`, `args`, `env`).
    Stdio,
    /// Streamable HTTP (`"type": "http"`, `url`).
    Http,
    /// Server-sent events (`"type": "sse"`, `url`; deprecated by MCP).
    Sse,
    /// WebSocket (`"type": "ws"`, `url`; PROTOCOL.md §4).
    Ws,
}

/// One MCP server as Claude Code would see it for this project.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct McpServer {
    /// The server's name (the `<server>` in `mcp__<server>__<tool>`).
    pub name: String,
    /// Where the definition that wins comes from.
    pub scope: McpScope,
    /// How it is reached.
    pub transport: Transport,
    /// Whether it starts in a session of this project.
    pub enabled: bool,
    /// Why not, when not enabled: the toggle that disables it and the file holding it
    /// (`disabledMcpjsonServers in .claude/settings.local.json`, …).
    pub disabled_by: Option<String>,
    /// The file the winning definition is in.
    pub source: PathBuf,
    /// The server's own JSON object, as written (`command`, `args`, `env`, `url`, …).
    pub config: serde_json::Value,
    /// Other scopes that define the same name and lose to `scope`.
    pub shadows: Vec<McpScope>,
    /// A project (`.mcp.json`) server that no setting approves or rejects: Claude Code asks in
    /// an interactive session and loads it without asking under `-p` (PROTOCOL.md §4).
    /// Whether it counts as `enabled` is [`discover::Options::session`]'s choice.
    pub needs_approval: bool,
}

/// Whether a file belongs to the user or to the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    /// Under `~/.claude` (or `$CLAUDE_CONFIG_DIR`).
    User,
    /// Under the project's `.claude/` (or the project root, for `CLAUDE.md`).
    Project,
}

/// A skill, a slash command or a custom agent: something whose name and description enter the
/// model's listing at session start.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Listed {
    /// The name the model sees.
    pub name: String,
    /// The description the model sees (from front matter, or Claude Code's fallback).
    pub description: String,
    /// `SKILL.md`, `commands/x.md` or `agents/x.md`.
    pub path: PathBuf,
    /// User or project.
    pub owner: Owner,
    /// False when `disable-model-invocation: true`: then it does not enter the listing.
    pub model_invocable: bool,
}

/// A memory file (`CLAUDE.md` chain and what it `@imports`), loaded whole at session start.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MemoryFile {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The file whose `@import` pulled it in; `None` for a file Claude Code loads by itself.
    pub imported_by: Option<PathBuf>,
    /// Why Claude Code loads it.
    pub loaded_as: MemoryKind,
}

/// Why a memory file is in the context (the docs' memory page; see [`discover`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryKind {
    /// `CLAUDE.md` in the managed directory.
    Managed,
    /// `~/.claude/CLAUDE.md` (or `$CLAUDE_CONFIG_DIR/CLAUDE.md`).
    User,
    /// A rule without `paths` in `~/.claude/rules/` or the project's `.claude/rules/`.
    Rule,
    /// `CLAUDE.md` or `.claude/CLAUDE.md` in the project or a directory above it.
    Project,
    /// `CLAUDE.local.md` in the project or a directory above it.
    Local,
    /// `AGENTS.md` or `.claude/AGENTS.md`, read when no `CLAUDE.md` is found (2.1.277+).
    AgentsMd,
    /// Pulled in by another memory file's `@path`.
    Import,
}

/// Everything ctxopt can see that enters the context at session start.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Inventory {
    /// MCP servers, enabled or not, in a stable order (scope, then name).
    pub mcp_servers: Vec<McpServer>,
    /// Skills, user then project.
    pub skills: Vec<Listed>,
    /// Slash commands (`.claude/commands/*.md`), user then project.
    pub commands: Vec<Listed>,
    /// Memory files in the order Claude Code loads them.
    pub memory: Vec<MemoryFile>,
    /// Custom agents (`.claude/agents/*.md`), user then project.
    pub agents: Vec<Listed>,
}
