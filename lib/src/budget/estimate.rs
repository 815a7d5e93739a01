//! Tokens per component of the context at session start, like Claude Code's `/context`
//! (PROTOCOL.md §8): the client's own overhead (system prompt, built-in tools), MCP tools,
//! the skills listing, commands, custom agents and memory files, against a budget.
//!
//! Pure: the inventory comes from [`super::discover`], each MCP server's tool sizes from a
//! callback (the MCP cache, `mcp::cache`, which lists what a server offered when ctxopt last
//! asked it; a hook never starts a server), the rest from [`Options`]. Nothing here reads a
//! file but [`OverheadStore::load`], nothing writes but [`OverheadStore::save`].
//!
//! # Counting
//! Characters divided by a characters-per-token constant per content kind ([`ratio`]),
//! rounded up per item. The constants were measured with `benches/calibrate-tokens.sh`
//! (Anthropic's `@anthropic-ai/tokenizer@0.0.4` on real MCP tool lists and the corpus in
//! `fixtures/budget/corpus/`); `benches/TOKENS.md` has the run, the spread and how far off
//! the result can be. Byte counts stand in for character counts (equal for ASCII; for other
//! text the estimate is high).
//!
//! # MCP tool search (PROTOCOL.md §4)
//! With tool search on, only tool names enter the context at start; with it off, every
//! tool's full definition does. [`ToolSearchSetting::resolve`] reads the mode from
//! `ENABLE_TOOL_SEARCH` and `ANTHROPIC_BASE_URL`: unset → on for the first-party API, off for
//! another base URL (OBSERVED.md's fake API on loopback: off); `true`/`false`; `auto` /
//! `auto:N` → full definitions while they fit in N % (10) of the window, names beyond. The
//! estimate says which mode it assumed ([`Estimate::tool_search`]).
//!
//! # The client's overhead
//! What Claude Code sends on its own: system prompt, built-in tools, the framing of the first
//! message (environment, built-in skills). Default from OBSERVED.md (2.1.331, tool search
//! off): without MCP servers ~7.4 KB system + ~32 KB tools; with one ~6.5 KB system +
//! ~71 KB built-in tools (MCP resource tools join); ~7.1 KB of first-message framing in both
//! ([`observed_overhead`]). Learned per client version from measured sessions:
//! [`learn_overhead`] and the state file `<data>/budget-overhead.json` ([`OverheadStore`]).

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Inventory, Listed, McpServer};
use crate::store::{self, DataDir, Durability, StoreError};

/// Characters per token, in hundredths, per content kind. Measured by
/// `benches/calibrate-tokens.sh` (2026-09, `@anthropic-ai/tokenizer@0.0.4`, node 20;
/// server-everything 15 tools, server-memory 9, server-filesystem 14 at 2026.8.31; the
/// 11-file corpus in `fixtures/budget/corpus/`). Spread per sample in `benches/TOKENS.md`.
pub mod ratio {
    /// A tool definition as the API carries it, `{"name","description","input_schema"}` as
    /// compact JSON: 4.36 chars/token over 38 tools (per tool 3.45–4.87, sd 0.34). Tool
    /// descriptions are prose, so schemas come out near prose, not below it.
    pub const TOOL_JSON: u64 = 436;
    /// `mcp__<server>__<tool>` names, one a line (tool search on): 3.28 (1,259 chars).
    pub const TOOL_NAMES: u64 = 328;
    /// Listing lines `- <name>: <description>` (skills, commands, agents): 4.27 (per line
    /// 3.87–4.56, sd 0.22).
    pub const LISTING: u64 = 427;
    /// Markdown instructions with commands and paths (CLAUDE.md, rules, system prompt): 3.57
    /// (per file 3.40–3.92, sd 0.18; SKILL.md bodies 3.59).
    pub const PROSE: u64 = 357;
}

/// Tokens for `chars` characters at `centi` hundredths of a character per token, rounded up.
#[must_use]
pub fn tokens(chars: u64, centi: u64) -> u64 {
    (chars.saturating_mul(100)).div_ceil(centi.max(1))
}

/// The context window assumed when none is given (PROTOCOL.md §6: 200k default).
pub const DEFAULT_CONTEXT_WINDOW: u64 = 200_000;

/// What one MCP server's tools cost, from the MCP cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ToolsSize {
    /// How many tools it lists.
    pub tool_count: u64,
    /// Characters of their definitions as the API carries them (compact JSON of name,
    /// description, input schema).
    pub tools_chars: u64,
    /// Characters of their `mcp__<server>__<tool>` names, one a line.
    pub names_chars: u64,
}

impl ToolsSize {
    /// The size of `tool_names` of `server` (names as the server lists them) whose
    /// definitions take `tools_chars` as the server lists them (the MCP cache's compact JSON
    /// of the `tools` array). The API form renames each tool `mcp__<server>__<tool>`, so
    /// that prefix is added per tool.
    #[must_use]
    pub fn from_names(server: &str, tool_names: &[String], tools_chars: u64) -> Self {
        let prefix = ("mcp__".len() + server.len() + "__".len()) as u64;
        let count = tool_names.len() as u64;
        Self {
            tool_count: count,
            tools_chars: tools_chars + count * prefix,
            names_chars: tool_names.iter().map(|n| prefix + 1 + n.len() as u64).sum(),
        }
    }

    /// What a server the cache does not know is assumed to cost: OBSERVED.md's
    /// server-memory, 9 tools in ~4.5 KB, with 12-character tool names.
    #[must_use]
    pub fn assumed(server: &str) -> Self {
        let names: Vec<String> = (0..9).map(|_| "x".repeat(12)).collect();
        Self::from_names(server, &names, 4_500)
    }
}

/// Claude Code's MCP tool search mode (`ENABLE_TOOL_SEARCH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "mode")]
pub enum ToolSearch {
    /// Only tool names load at start.
    On,
    /// Every tool's definition loads at start.
    Off,
    /// Full definitions while they fit in `percent` % of the context window, names beyond.
    Auto {
        /// The threshold (`auto:N`; `auto` is 10).
        percent: u8,
    },
}

/// The tool search mode and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolSearchSetting {
    /// The mode.
    pub mode: ToolSearch,
    /// Where it comes from, for people.
    pub reason: String,
}

impl ToolSearchSetting {
    /// The mode Claude Code uses given `ENABLE_TOOL_SEARCH` and `ANTHROPIC_BASE_URL`.
    #[must_use]
    pub fn resolve(enable_tool_search: Option<&str>, base_url: Option<&str>) -> Self {
        let value = enable_tool_search.map(str::trim).filter(|v| !v.is_empty());
        let explicit = match value {
            Some("true" | "1") => Some(ToolSearch::On),
            Some("false" | "0") => Some(ToolSearch::Off),
            Some("auto") => Some(ToolSearch::Auto { percent: 10 }),
            Some(v) => v
                .strip_prefix("auto:")
                .and_then(|n| n.trim().parse::<u8>().ok())
                .filter(|n| *n <= 100)
                .map(|percent| ToolSearch::Auto { percent }),
            None => None,
        };
        if let (Some(mode), Some(v)) = (explicit, value) {
            return Self {
                mode,
                reason: format!("ENABLE_TOOL_SEARCH={v}"),
            };
        }
        let first_party = base_url
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .is_none_or(is_first_party);
        if first_party {
            Self {
                mode: ToolSearch::On,
                reason: String::from("default for the first-party API"),
            }
        } else {
            Self {
                mode: ToolSearch::Off,
                reason: String::from("ANTHROPIC_BASE_URL is not the first-party API"),
            }
        }
    }
}

fn is_first_party(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    host == "api.anthropic.com"
}

/// Where the client's overhead comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Overhead {
    /// OBSERVED.md's byte counts ([`observed_overhead`]).
    #[default]
    Observed,
    /// Learned from measured sessions of one client version ([`learn_overhead`]).
    Learned {
        /// The learned overhead.
        tokens: u64,
        /// The Claude Code version it was learned on.
        client_version: String,
        /// Sessions it was learned from.
        samples: u64,
    },
    /// Given by the caller.
    Fixed(u64),
}

/// Estimate options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// MCP tool search.
    pub tool_search: ToolSearchSetting,
    /// Context window in tokens (the share column's denominator).
    pub context_window: u64,
    /// The client's overhead.
    pub overhead: Overhead,
    /// Characters of the skills listing before descriptions are trimmed (PROTOCOL.md §5:
    /// about 1 % of the window; `SLASH_COMMAND_TOOL_CHAR_BUDGET`). Default: 1 % of the window
    /// at 4 characters per token.
    pub skill_listing_budget_chars: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            tool_search: ToolSearchSetting::resolve(None, None),
            context_window: DEFAULT_CONTEXT_WINDOW,
            overhead: Overhead::Observed,
            skill_listing_budget_chars: DEFAULT_CONTEXT_WINDOW * 4 / 100,
        }
    }
}

/// The client's overhead by OBSERVED.md (Claude Code 2.1.331, tool search off): system
/// prompt, built-in tools, first-message framing.
#[must_use]
pub fn observed_overhead(any_mcp: bool) -> u64 {
    let (system, builtin_tools) = if any_mcp {
        (6_500, 71_000)
    } else {
        (7_400, 32_000)
    };
    let framing = 7_100;
    tokens(system, ratio::PROSE)
        + tokens(builtin_tools, ratio::TOOL_JSON)
        + tokens(framing, ratio::PROSE)
}

/// A row of the estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    /// System prompt, built-in tools, first-message framing.
    Client,
    /// MCP tool definitions (or names, with tool search).
    McpTools,
    /// The skills listing.
    Skills,
    /// Slash commands in the listing.
    Commands,
    /// Custom agents in the agent tool's description.
    Agents,
    /// CLAUDE.md and what it imports.
    Memory,
}

impl Component {
    /// The row's name as `/context` shows it.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Client => "System prompt + tools",
            Self::McpTools => "MCP tools",
            Self::Skills => "Skills",
            Self::Commands => "Commands",
            Self::Agents => "Custom agents",
            Self::Memory => "Memory files",
        }
    }
}

/// One item of a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// Its name (a server, a skill, a file path).
    pub name: String,
    /// Its tokens (before any listing trim).
    pub tokens: u64,
    /// What was counted, for people.
    pub detail: String,
    /// Counted from an assumption, not from data (an MCP server the cache does not know).
    pub assumed: bool,
}

/// One row: a component, its items, its tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// Which component.
    pub component: Component,
    /// Its items, in inventory order.
    pub items: Vec<Item>,
    /// The row's tokens (after a listing trim).
    pub tokens: u64,
    /// A note on how it was counted.
    pub note: Option<String>,
}

/// How tool search was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolSearchUse {
    /// The setting.
    #[serde(flatten)]
    pub setting: ToolSearch,
    /// Why that setting.
    pub reason: String,
    /// Whether only names were counted.
    pub names_only: bool,
}

/// The estimate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Estimate {
    /// The rows, client first.
    pub rows: Vec<Row>,
    /// The sum of the rows.
    pub total_tokens: u64,
    /// The context window.
    pub context_window: u64,
    /// The tool search mode assumed.
    pub tool_search: ToolSearchUse,
    /// Where the client's overhead comes from, for people.
    pub overhead_source: String,
}

impl Estimate {
    /// The row of `component`.
    #[must_use]
    pub fn row(&self, component: Component) -> Option<&Row> {
        self.rows.iter().find(|r| r.component == component)
    }

    /// Tokens of what ctxopt can see (every row but the client's).
    #[must_use]
    pub fn visible_tokens(&self) -> u64 {
        self.rows
            .iter()
            .filter(|r| r.component != Component::Client)
            .map(|r| r.tokens)
            .sum()
    }

    /// The tokens of the client's row.
    #[must_use]
    pub fn overhead_tokens(&self) -> u64 {
        self.row(Component::Client).map_or(0, |r| r.tokens)
    }
}

/// The tokens of `inventory` at session start. `mcp_tools` gives an enabled server's tool
/// sizes (from the MCP cache); `None` means unknown, and [`ToolsSize::assumed`] is counted.
#[must_use]
pub fn estimate(
    inventory: &Inventory,
    mcp_tools: &dyn Fn(&McpServer) -> Option<ToolsSize>,
    options: &Options,
) -> Estimate {
    let (mcp_row, names_only) = mcp_row(inventory, mcp_tools, options);
    let any_mcp = inventory.mcp_servers.iter().any(|s| s.enabled);
    let (overhead, overhead_source) = match &options.overhead {
        Overhead::Observed => (
            observed_overhead(any_mcp),
            format!(
                "default from OBSERVED.md (Claude Code 2.1.331, {} MCP servers)",
                if any_mcp { "with" } else { "without" }
            ),
        ),
        Overhead::Learned {
            tokens,
            client_version,
            samples,
        } => (
            *tokens,
            format!("learned from {samples} measured session(s) of Claude Code {client_version}"),
        ),
        Overhead::Fixed(tokens) => (*tokens, String::from("given")),
    };
    let client = Row {
        component: Component::Client,
        items: Vec::new(),
        tokens: overhead,
        note: Some(overhead_source.clone()),
    };
    let (skills, commands) = listing_rows(inventory, options);
    let rows = vec![
        client,
        mcp_row,
        skills,
        commands,
        agents_row(inventory),
        memory_row(inventory),
    ];
    Estimate {
        total_tokens: rows.iter().map(|r| r.tokens).sum(),
        rows,
        context_window: options.context_window,
        tool_search: ToolSearchUse {
            setting: options.tool_search.mode,
            reason: options.tool_search.reason.clone(),
            names_only,
        },
        overhead_source,
    }
}

fn mcp_row(
    inventory: &Inventory,
    mcp_tools: &dyn Fn(&McpServer) -> Option<ToolsSize>,
    options: &Options,
) -> (Row, bool) {
    let sized: Vec<(&McpServer, ToolsSize, bool)> = inventory
        .mcp_servers
        .iter()
        .filter(|s| s.enabled)
        .map(|s| match mcp_tools(s) {
            Some(size) => (s, size, false),
            None => (s, ToolsSize::assumed(&s.name), true),
        })
        .collect();
    let full: u64 = sized
        .iter()
        .map(|(_, size, _)| tokens(size.tools_chars, ratio::TOOL_JSON))
        .sum();
    let names_only = match options.tool_search.mode {
        ToolSearch::On => true,
        ToolSearch::Off => false,
        ToolSearch::Auto { percent } => full > options.context_window * u64::from(percent) / 100,
    };
    let items: Vec<Item> = sized
        .iter()
        .map(|(server, size, assumed)| {
            let (tokens, what) = if names_only {
                (
                    tokens(size.names_chars, ratio::TOOL_NAMES),
                    "names only (tool search)",
                )
            } else {
                (
                    tokens(size.tools_chars, ratio::TOOL_JSON),
                    "full definitions",
                )
            };
            let detail = if *assumed {
                format!(
                    "{what}; not in the MCP cache (run `ctxopt mcp check`): assumed {} tools in {} chars",
                    size.tool_count, size.tools_chars
                )
            } else {
                format!("{what}; {} tools", size.tool_count)
            };
            Item {
                name: server.name.clone(),
                tokens,
                detail,
                assumed: *assumed,
            }
        })
        .collect();
    let note = if names_only {
        "tool search on: tool names only; schemas load on demand"
    } else {
        "tool search off: every tool definition loads"
    };
    (
        Row {
            component: Component::McpTools,
            tokens: items.iter().map(|i| i.tokens).sum(),
            items,
            note: Some(note.to_owned()),
        },
        names_only,
    )
}

/// Characters of one listing line `- name: description\n`.
fn listing_chars(entry: &Listed) -> u64 {
    (entry.name.len() + entry.description.len() + 5) as u64
}

/// The skills and commands in the listing: model-invocable, each name once (skills: the
/// user's before the project's, PROTOCOL.md §5 "personal > project"; a command loses to a
/// skill of the same name).
fn listed(inventory: &Inventory) -> (Vec<&Listed>, Vec<&Listed>) {
    let mut names = HashSet::new();
    let skills: Vec<&Listed> = inventory
        .skills
        .iter()
        .filter(|s| s.model_invocable && names.insert(s.name.as_str()))
        .collect();
    let commands: Vec<&Listed> = inventory
        .commands
        .iter()
        .filter(|c| c.model_invocable && names.insert(c.name.as_str()))
        .collect();
    (skills, commands)
}

fn listing_rows(inventory: &Inventory, options: &Options) -> (Row, Row) {
    let (skills, commands) = listed(inventory);
    let full: u64 = skills
        .iter()
        .chain(commands.iter())
        .map(|e| listing_chars(e))
        .sum();
    let names: u64 = skills
        .iter()
        .chain(commands.iter())
        .map(|e| (e.name.len() + 3) as u64)
        .sum();
    let budget = options.skill_listing_budget_chars;
    let shown = if full > budget {
        budget.max(names)
    } else {
        full
    };
    let row = |component: Component, entries: &[&Listed], hidden: usize| {
        let items: Vec<Item> = entries
            .iter()
            .map(|e| Item {
                name: e.name.clone(),
                tokens: tokens(listing_chars(e), ratio::LISTING),
                detail: format!("{} chars of description", e.description.len()),
                assumed: false,
            })
            .collect();
        let chars: u64 = entries.iter().map(|e| listing_chars(e)).sum();
        let scaled = chars
            .saturating_mul(shown)
            .checked_div(full)
            .unwrap_or_default();
        let mut notes = Vec::new();
        if hidden > 0 {
            notes.push(format!(
                "{hidden} with disable-model-invocation or shadowed, not listed"
            ));
        }
        if shown < full {
            notes.push(format!(
                "descriptions trimmed: the listing ({full} chars) is over its budget of {budget} chars"
            ));
        }
        Row {
            component,
            items,
            tokens: tokens(scaled, ratio::LISTING),
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        }
    };
    (
        row(
            Component::Skills,
            &skills,
            inventory.skills.len() - skills.len(),
        ),
        row(
            Component::Commands,
            &commands,
            inventory.commands.len() - commands.len(),
        ),
    )
}

/// Agents, each name once (a project agent replaces a user agent of the same name).
fn agents_row(inventory: &Inventory) -> Row {
    let mut names = HashSet::new();
    let mut agents: Vec<&Listed> = inventory
        .agents
        .iter()
        .rev()
        .filter(|a| names.insert(a.name.as_str()))
        .collect();
    agents.reverse();
    let items: Vec<Item> = agents
        .iter()
        .map(|a| Item {
            name: a.name.clone(),
            tokens: tokens(listing_chars(a), ratio::LISTING),
            detail: format!("{} chars of description", a.description.len()),
            assumed: false,
        })
        .collect();
    Row {
        component: Component::Agents,
        tokens: items.iter().map(|i| i.tokens).sum(),
        items,
        note: None,
    }
}

/// Characters Claude Code puts around a memory file: `Contents of <path> (<what>):\n\n`.
const MEMORY_FRAMING_CHARS: u64 = 60;

fn memory_row(inventory: &Inventory) -> Row {
    let items: Vec<Item> = inventory
        .memory
        .iter()
        .map(|m| {
            let chars = m.bytes + m.path.as_os_str().len() as u64 + MEMORY_FRAMING_CHARS;
            Item {
                name: m.path.display().to_string(),
                tokens: tokens(chars, ratio::PROSE),
                detail: match &m.imported_by {
                    Some(by) => format!("{} bytes, imported by {}", m.bytes, by.display()),
                    None => format!("{} bytes", m.bytes),
                },
                assumed: false,
            }
        })
        .collect();
    Row {
        component: Component::Memory,
        tokens: items.iter().map(|i| i.tokens).sum(),
        items,
        note: None,
    }
}

// ---------------------------------------------------------------------------------------
// The learned overhead

/// The state file's name in the data dir.
pub const OVERHEAD_FILE: &str = "budget-overhead.json";

/// One learned overhead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Learned {
    /// The overhead in tokens: measured initial tokens minus what ctxopt estimated for the
    /// visible components, averaged ([`learn_overhead`]).
    pub overhead_tokens: u64,
    /// Sessions it was learned from.
    pub samples: u64,
    /// The last session's measured initial tokens.
    pub last_measured: u64,
    /// The last session's estimate of the visible components.
    pub last_visible: u64,
    /// When it was last updated (RFC 3339).
    pub updated: String,
}

/// Updates a learned overhead with one measured session: the sample is
/// `measured_initial − estimated_visible` (0 when the estimate is larger); the first sample
/// is taken as is, later ones move the value halfway (an exponential average with α = ½:
/// one odd session cannot swing it far, a new client version's change is learned within a
/// few sessions).
#[must_use]
pub fn learn_overhead(
    measured_initial: u64,
    estimated_visible: u64,
    previous: Option<&Learned>,
    now: &str,
) -> Learned {
    let sample = measured_initial.saturating_sub(estimated_visible);
    let (overhead_tokens, samples) = match previous {
        Some(p) => ((p.overhead_tokens + sample).div_ceil(2), p.samples + 1),
        None => (sample, 1),
    };
    Learned {
        overhead_tokens,
        samples,
        last_measured: measured_initial,
        last_visible: estimated_visible,
        updated: now.to_owned(),
    }
}

/// What the overhead depends on besides the client version: whether tool search counted
/// names only and whether any MCP server is enabled (OBSERVED.md: built-in tools grow from
/// ~32 KB to ~71 KB with one).
#[must_use]
pub fn overhead_variant(names_only: bool, any_mcp: bool) -> String {
    format!(
        "{}+{}",
        if names_only {
            "tool-search"
        } else {
            "full-tools"
        },
        if any_mcp { "mcp" } else { "no-mcp" }
    )
}

/// `<data>/budget-overhead.json`:
/// `{"schema_version":1,"clients":{"<client version>":{"<variant>":Learned}}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverheadStore {
    /// `1`.
    pub schema_version: u32,
    /// Client version → variant ([`overhead_variant`]) → learned overhead.
    pub clients: BTreeMap<String, BTreeMap<String, Learned>>,
}

impl Default for OverheadStore {
    fn default() -> Self {
        Self {
            schema_version: 1,
            clients: BTreeMap::new(),
        }
    }
}

/// Why the overhead state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OverheadError {
    /// The file exists but could not be read.
    #[error("failed to read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file is not the expected JSON.
    #[error("failed to parse {}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

impl OverheadStore {
    /// The state file of `data`.
    #[must_use]
    pub fn path(data: &DataDir) -> PathBuf {
        data.root().join(OVERHEAD_FILE)
    }

    /// Reads the state; a missing file is an empty store.
    pub fn load(data: &DataDir) -> Result<Self, OverheadError> {
        Self::load_from(&Self::path(data))
    }

    fn load_from(path: &Path) -> Result<Self, OverheadError> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| OverheadError::Parse {
                path: path.to_path_buf(),
                source,
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(OverheadError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes the state atomically (no fsync: losing it costs re-learning).
    pub fn save(&self, data: &DataDir) -> Result<(), StoreError> {
        data.ensure()?;
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        store::write_atomic(&Self::path(data), &bytes, 0o600, Durability::NoFsync)
    }

    /// The learned overhead of `client_version` and `variant`.
    #[must_use]
    pub fn get(&self, client_version: &str, variant: &str) -> Option<&Learned> {
        self.clients.get(client_version)?.get(variant)
    }

    /// Learns from one measured session ([`learn_overhead`]) and returns the new value.
    pub fn learn(
        &mut self,
        client_version: &str,
        variant: &str,
        measured_initial: u64,
        estimated_visible: u64,
        now: &str,
    ) -> Learned {
        let slot = self.clients.entry(client_version.to_owned()).or_default();
        let learned = learn_overhead(measured_initial, estimated_visible, slot.get(variant), now);
        slot.insert(variant.to_owned(), learned.clone());
        learned
    }

    /// The most recently updated overhead of `variant`, of any client version (for a CLI
    /// that does not know which version runs next), as an [`Overhead`].
    #[must_use]
    pub fn latest(&self, variant: &str) -> Option<Overhead> {
        self.clients
            .iter()
            .filter_map(|(version, variants)| variants.get(variant).map(|l| (version, l)))
            .max_by(|a, b| a.1.updated.cmp(&b.1.updated))
            .map(|(version, l)| Overhead::Learned {
                tokens: l.overhead_tokens,
                client_version: version.clone(),
                samples: l.samples,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::{McpScope, MemoryFile, MemoryKind, Owner, Transport};
    use serde_json::json;

    fn server(name: &str, enabled: bool) -> McpServer {
        McpServer {
            name: name.to_owned(),
            scope: McpScope::User,
            transport: Transport::Stdio,
            enabled,
            disabled_by: None,
            source: PathBuf::from("/h/.claude.json"),
            config: json!({"command": name}),
            shadows: Vec::new(),
            needs_approval: false,
        }
    }

    fn listed(name: &str, description: &str, invocable: bool) -> Listed {
        Listed {
            name: name.to_owned(),
            description: description.to_owned(),
            path: PathBuf::from(format!("/p/.claude/skills/{name}/SKILL.md")),
            owner: Owner::Project,
            model_invocable: invocable,
        }
    }

    fn inventory() -> Inventory {
        Inventory {
            mcp_servers: vec![server("memory", true), server("off", false)],
            skills: vec![
                listed("a", &"x".repeat(95), true),
                listed("hidden", "never listed", false),
            ],
            commands: vec![listed("a", "shadowed by the skill", true)],
            memory: vec![MemoryFile {
                path: PathBuf::from("/p/CLAUDE.md"),
                bytes: 3_570,
                imported_by: None,
                loaded_as: MemoryKind::Project,
            }],
            agents: Vec::new(),
        }
    }

    fn memory_tools(s: &McpServer) -> Option<ToolsSize> {
        (s.name == "memory").then_some(ToolsSize {
            tool_count: 9,
            tools_chars: 4_360,
            names_chars: 328,
        })
    }

    #[test]
    fn rounding_and_ratios() {
        assert_eq!(tokens(436, ratio::TOOL_JSON), 100);
        assert_eq!(tokens(437, ratio::TOOL_JSON), 101);
        assert_eq!(tokens(0, ratio::PROSE), 0);
    }

    #[test]
    fn rows_per_component_with_tool_search_off() {
        let options = Options {
            tool_search: ToolSearchSetting::resolve(Some("false"), None),
            ..Options::default()
        };
        let est = estimate(&inventory(), &memory_tools, &options);
        let mcp = est.row(Component::McpTools).unwrap();
        assert_eq!(mcp.tokens, 1_000);
        assert_eq!(mcp.items.len(), 1, "a disabled server costs nothing");
        assert!(!est.tool_search.names_only);
        let skills = est.row(Component::Skills).unwrap();
        assert_eq!(skills.tokens, tokens(100, ratio::LISTING));
        assert_eq!(skills.items.len(), 1);
        assert!(skills.note.as_deref().unwrap().contains("1 with disable"));
        assert_eq!(est.row(Component::Commands).unwrap().tokens, 0);
        let memory = est.row(Component::Memory).unwrap();
        assert_eq!(memory.tokens, tokens(3_570 + 12 + 60, ratio::PROSE));
        assert_eq!(est.overhead_tokens(), observed_overhead(true));
        assert_eq!(
            est.total_tokens,
            est.overhead_tokens() + est.visible_tokens()
        );
    }

    #[test]
    fn tool_search_counts_names_only_and_auto_has_a_threshold() {
        let on = estimate(&inventory(), &memory_tools, &Options::default());
        assert!(on.tool_search.names_only);
        assert_eq!(on.row(Component::McpTools).unwrap().tokens, 100);

        let auto = |percent: u8, window: u64| Options {
            tool_search: ToolSearchSetting {
                mode: ToolSearch::Auto { percent },
                reason: String::new(),
            },
            context_window: window,
            ..Options::default()
        };
        let fits = estimate(&inventory(), &memory_tools, &auto(10, 200_000));
        assert!(!fits.tool_search.names_only);
        let over = estimate(&inventory(), &memory_tools, &auto(10, 5_000));
        assert!(over.tool_search.names_only);
    }

    #[test]
    fn unknown_server_is_assumed_and_flagged() {
        let est = estimate(&inventory(), &|_| None, &Options::default());
        let item = &est.row(Component::McpTools).unwrap().items[0];
        assert!(item.assumed);
        assert!(item.detail.contains("ctxopt mcp check"));
        assert!(item.tokens > 0);
    }

    #[test]
    fn tool_search_mode_from_the_environment() {
        let mode = |v: Option<&str>, url: Option<&str>| ToolSearchSetting::resolve(v, url).mode;
        assert_eq!(mode(None, None), ToolSearch::On);
        assert_eq!(
            mode(None, Some("https://api.anthropic.com")),
            ToolSearch::On
        );
        assert_eq!(mode(None, Some("http://127.0.0.1:8080")), ToolSearch::Off);
        assert_eq!(
            mode(Some("true"), Some("http://127.0.0.1:1")),
            ToolSearch::On
        );
        assert_eq!(mode(Some("false"), None), ToolSearch::Off);
        assert_eq!(mode(Some("auto"), None), ToolSearch::Auto { percent: 10 });
        assert_eq!(mode(Some("auto:5"), None), ToolSearch::Auto { percent: 5 });
        assert_eq!(mode(Some("auto:500"), None), ToolSearch::On);
    }

    #[test]
    fn listing_over_budget_is_trimmed_but_keeps_names() {
        let mut inv = Inventory::default();
        for i in 0..50 {
            inv.skills
                .push(listed(&format!("skill-{i:02}"), &"d".repeat(300), true));
        }
        let with_budget = |chars: u64| Options {
            skill_listing_budget_chars: chars,
            ..Options::default()
        };
        let est = estimate(&inv, &|_| None, &with_budget(1_000));
        let row = est.row(Component::Skills).unwrap();
        assert_eq!(row.tokens, tokens(1_000, ratio::LISTING));
        assert!(row.note.as_deref().unwrap().contains("trimmed"));
        assert!(row.items.iter().all(|i| i.tokens > 70), "items untrimmed");
        let names_only: u64 = 50 * (8 + 3);
        let est = estimate(&inv, &|_| None, &with_budget(100));
        assert_eq!(
            est.row(Component::Skills).unwrap().tokens,
            tokens(names_only, ratio::LISTING),
            "names stay when the budget is smaller than they are"
        );
    }

    #[test]
    fn learned_overhead_makes_an_unchanged_project_match_its_measurement() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::of_project(tmp.path());
        let inv = inventory();
        let first = estimate(&inv, &memory_tools, &Options::default());
        let measured = 31_234;
        let variant = overhead_variant(first.tool_search.names_only, true);
        let mut state = OverheadStore::load(&data).unwrap();
        state.learn(
            "2.1.331",
            &variant,
            measured,
            first.visible_tokens(),
            "2026-11-25T10:00:00.000Z",
        );
        state.save(&data).unwrap();

        let state = OverheadStore::load(&data).unwrap();
        let overhead = state.latest(&variant).unwrap();
        let again = estimate(
            &inv,
            &memory_tools,
            &Options {
                overhead,
                ..Options::default()
            },
        );
        let diff = again.total_tokens.abs_diff(measured);
        assert!(
            diff * 10 <= measured,
            "{} vs {measured}",
            again.total_tokens
        );
        assert!(again.overhead_source.contains("2.1.331"));
    }

    #[test]
    fn learning_moves_halfway_and_never_below_zero() {
        let first = learn_overhead(30_000, 10_000, None, "t1");
        assert_eq!((first.overhead_tokens, first.samples), (20_000, 1));
        let second = learn_overhead(34_000, 10_000, Some(&first), "t2");
        assert_eq!((second.overhead_tokens, second.samples), (22_000, 2));
        let odd = learn_overhead(5_000, 10_000, Some(&second), "t3");
        assert_eq!(odd.overhead_tokens, 11_000);
    }

    #[test]
    fn overhead_store_format_and_latest_version() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::of_project(tmp.path());
        let mut state = OverheadStore::default();
        state.learn(
            "2.1.300",
            "tool-search+mcp",
            30_000,
            10_000,
            "2026-01-01T00:00:00.000Z",
        );
        state.learn(
            "2.1.331",
            "tool-search+mcp",
            40_000,
            10_000,
            "2026-02-01T00:00:00.000Z",
        );
        state.save(&data).unwrap();
        let text = fs::read_to_string(OverheadStore::path(&data)).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["schema_version"], 1);
        assert_eq!(
            value["clients"]["2.1.331"]["tool-search+mcp"]["overhead_tokens"],
            30_000
        );
        let loaded = OverheadStore::load(&data).unwrap();
        assert_eq!(
            loaded.latest("tool-search+mcp"),
            Some(Overhead::Learned {
                tokens: 30_000,
                client_version: "2.1.331".into(),
                samples: 1
            })
        );
        assert_eq!(loaded.latest("full-tools+no-mcp"), None);
        fs::write(OverheadStore::path(&data), "{").unwrap();
        assert!(OverheadStore::load(&data).is_err());
    }
}
