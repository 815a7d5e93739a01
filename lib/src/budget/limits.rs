//! The context-budget limits (R5.2, R5.3; runbook P1-002 and M-D-003-1): which enabled MCP
//! servers are within `limits.max_mcp_servers` (the *allowed set*), what SessionStart reports
//! when the estimate or the server count is over a limit, and the state file that carries the
//! allowed set from SessionStart to PreToolUse.
//!
//! # The allowed set
//! When more MCP servers are enabled than `limits.max_mcp_servers`, the first
//! `max_mcp_servers` of this order are allowed and the rest are *outside*:
//! 1. the servers named in `limits.mcp_priority`, in that list's order (names that are not
//!    enabled are skipped and take no slot);
//! 2. then the other enabled servers by scope: managed, local, project, user — Claude Code's
//!    own precedence (PROTOCOL.md §4): a local server is the person's own choice for this
//!    project, a project server the team's for this repository, a user server one that follows
//!    the person into every project;
//! 3. then by name.
//!
//! Measured use does not rank the set, on purpose: (a) a hook must not scan `metrics.jsonl`;
//! (b) in `enforce` mode a server outside the set is denied, so it earns no calls and would
//! stay outside for good — a ranking by use feeds on itself; (c) the set then only changes
//! when the configuration or the policy does, so a person can read it (`ctxopt mcp list`) and
//! change it (`mcp_priority`). Use does rank the servers `ctxopt mcp optimize` proposes to
//! disable ([`optimize`]), which is where it helps.
//!
//! # State (`state/mcp-allowed.json`)
//! SessionStart writes the enabled servers in scope-then-name order ([`AllowedState`]) with
//! `write_atomic(NoFsync)` when they differ from the file's or the file is a day old
//! ([`save_state_if_changed`]; `written_at` and `session_id` name the session that last wrote
//! it); PreToolUse reads it for a `mcp__…` call only and ranks it with the
//! policy of the moment, so a `mcp_priority` or `max_mcp_servers` edit applies at once, while
//! the server list stays the one the session started with (a server disabled mid-session is
//! still loaded until the next session). A missing or corrupt file allows every call: the
//! limit fails open.

pub mod optimize;
pub mod toggle;
pub mod usage;

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::discover::{self, Discovery};
use super::estimate::{
    self, Component, Estimate, Options, OverheadStore, ToolSearchSetting, ToolsSize,
    overhead_variant,
};
use super::{McpScope, McpServer};
use crate::config::discover::Locations;
use crate::mcp::cache;
use crate::policy::{Limits, Mode};
use crate::record::{self, AlertSeverity, MAX_MESSAGE_CHARS, Record, Text, TokenSource};
use crate::store::{self, DataDir, Durability, StoreError};

/// The rule of the allowed set, in one line, for messages.
pub const RULE: &str = "servers named in limits.mcp_priority first, in that order; then by scope (managed, local, project, user); then by name";

/// The runbook's alert for initial token consumption (P1-002).
pub const ALERT_ID: &str = "Alert-S-001";

/// The state file's name in `state/`.
pub const STATE_FILE: &str = "mcp-allowed.json";

/// The state file's format version; a file with another one reads as missing.
pub const STATE_VERSION: u32 = 1;

/// The enabled servers split by the limit.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Allowed {
    /// Within the limit, in rank order.
    pub allowed: Vec<String>,
    /// Beyond it, in rank order.
    pub outside: Vec<String>,
}

impl Allowed {
    /// Whether `name` is beyond the limit.
    #[must_use]
    pub fn is_outside(&self, name: &str) -> bool {
        self.outside.iter().any(|n| n == name)
    }
}

/// The enabled servers of `servers` in scope-then-name order, the order [`allowed_set`] ranks
/// after the priority list.
#[must_use]
pub fn enabled_in_scope_order(servers: &[McpServer]) -> Vec<String> {
    let mut enabled: Vec<(McpScope, &str)> = servers
        .iter()
        .filter(|s| s.enabled)
        .map(|s| (s.scope, s.name.as_str()))
        .collect();
    enabled.sort_unstable();
    enabled.dedup();
    enabled.into_iter().map(|(_, n)| n.to_owned()).collect()
}

/// Ranks `enabled` (in scope-then-name order, see [`enabled_in_scope_order`]) by the rule in
/// the module doc and splits it at `max`.
#[must_use]
pub fn allowed_set(enabled: &[String], max: u32, priority: &[String]) -> Allowed {
    let present: HashSet<&str> = enabled.iter().map(String::as_str).collect();
    let mut seen = HashSet::new();
    let ranked: Vec<&str> = priority
        .iter()
        .map(String::as_str)
        .filter(|n| present.contains(n))
        .chain(enabled.iter().map(String::as_str))
        .filter(|n| seen.insert(*n))
        .collect();
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let split = ranked.len().min(max);
    Allowed {
        allowed: ranked[..split].iter().map(|n| (*n).to_owned()).collect(),
        outside: ranked[split..].iter().map(|n| (*n).to_owned()).collect(),
    }
}

/// A server name as Claude Code puts it into tool names: characters other than
/// `[A-Za-z0-9_-]` become `_`.
#[must_use]
pub fn tool_name_part(server: &str) -> String {
    server
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Which of `servers` the tool `tool_name` (`mcp__<server>__<tool>`) belongs to; the longest
/// matching name wins, so `a__b` is not taken for `a`.
#[must_use]
pub fn server_of_tool<'a>(tool_name: &str, servers: &'a [String]) -> Option<&'a str> {
    let rest = tool_name.strip_prefix("mcp__")?;
    servers
        .iter()
        .filter(|s| {
            rest.strip_prefix(&tool_name_part(s))
                .is_some_and(|tail| tail.starts_with("__"))
        })
        .max_by_key(|s| s.len())
        .map(String::as_str)
}

// ---------------------------------------------------------------------------------------
// State

/// `state/mcp-allowed.json`: the servers the session started with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedState {
    /// [`STATE_VERSION`].
    pub schema_version: u32,
    /// When SessionStart wrote it (RFC 3339).
    pub written_at: String,
    /// The session that wrote it.
    pub session_id: String,
    /// The enabled servers, scope-then-name order.
    pub enabled: Vec<String>,
}

/// The state file of `data`.
#[must_use]
pub fn state_path(data: &DataDir) -> PathBuf {
    data.state_dir().join(STATE_FILE)
}

/// Writes the state (no fsync: SessionStart rewrites it every session).
pub fn save_state(data: &DataDir, state: &AllowedState) -> Result<(), StoreError> {
    let dir = data.state_dir();
    store::ensure_dir(&dir)?;
    let mut bytes = serde_json::to_vec(state).unwrap_or_default();
    bytes.push(b'\n');
    store::write_atomic(
        &state_path(data),
        &bytes,
        store::FILE_MODE,
        Durability::NoFsync,
    )
}

/// How old the state file may get before SessionStart rewrites an unchanged one, so the
/// retention of `state/` (files untouched for `state_days`) never drops it.
const STATE_KEEP_ALIVE_NS: i64 = 24 * 3600 * 1_000_000_000;

/// [`save_state`] unless the file already holds the same enabled servers and is less than a
/// day old: SessionStart's rewrite is a file creation and a rename, the most expensive calls
/// of its warm path, and PreToolUse reads only `enabled`. `written_at` and `session_id` then
/// name the session that last changed (or refreshed) the file.
pub fn save_state_if_changed(
    data: &DataDir,
    state: &AllowedState,
    now_ns: i64,
) -> Result<(), StoreError> {
    use std::os::unix::fs::MetadataExt as _;
    let path = state_path(data);
    if let Ok(meta) = std::fs::metadata(&path) {
        let mtime_ns = meta
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec());
        if now_ns.saturating_sub(mtime_ns) < STATE_KEEP_ALIVE_NS
            && load_state(data).is_some_and(|current| current.enabled == state.enabled)
        {
            return Ok(());
        }
    }
    save_state(data, state)
}

/// Reads the state; `None` when missing, unreadable, corrupt or of another version.
#[must_use]
pub fn load_state(data: &DataDir) -> Option<AllowedState> {
    let bytes = std::fs::read(state_path(data)).ok()?;
    serde_json::from_slice::<AllowedState>(&bytes)
        .ok()
        .filter(|s| s.schema_version == STATE_VERSION)
}

// ---------------------------------------------------------------------------------------
// The listing memo (`state/budget-listing.json`)

/// The listing memo's file name in `state/` ([`discover::Memo`]).
pub const MEMO_FILE: &str = "budget-listing.json";

/// How old the memo file may get before an unchanged memo is rewritten anyway, so the
/// retention of `state/` does not drop it.
const MEMO_KEEP_ALIVE_NS: i64 = 24 * 3600 * 1_000_000_000;

/// The memo file of `data`.
#[must_use]
pub fn memo_path(data: &DataDir) -> PathBuf {
    data.state_dir().join(MEMO_FILE)
}

/// The listing memo and its file's mtime (ns; 0 when missing); a missing, unreadable,
/// corrupt or other-version file is an empty memo.
#[must_use]
pub fn load_memo(data: &DataDir) -> (discover::Memo, i64) {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(mut file) = std::fs::File::open(memo_path(data)) else {
        return (discover::Memo::default(), 0);
    };
    let mtime = file.metadata().map_or(0, |m| {
        m.mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(m.mtime_nsec())
    });
    let mut bytes = Vec::new();
    if std::io::Read::read_to_end(&mut file, &mut bytes).is_err() {
        return (discover::Memo::default(), 0);
    }
    (discover::Memo::from_slice(&bytes), mtime)
}

/// Writes the memo (no fsync: losing it costs one full read of the listings) when this run
/// changed it or its file is a day old.
pub fn save_memo(
    data: &DataDir,
    memo: &discover::Memo,
    saved_ns: i64,
    now_ns: i64,
) -> Result<(), StoreError> {
    if !memo.changed() && now_ns.saturating_sub(saved_ns) <= MEMO_KEEP_ALIVE_NS {
        return Ok(());
    }
    store::ensure_dir(&data.state_dir())?;
    store::write_atomic(
        &memo_path(data),
        &memo.to_json(),
        store::FILE_MODE,
        Durability::NoFsync,
    )
}

// ---------------------------------------------------------------------------------------
// The estimate at session start

/// The inventory and its estimate, as `ctxopt tokens` computes them.
#[derive(Debug, Clone)]
pub struct Budget {
    /// The inventory and what discovery skipped.
    pub discovery: Discovery,
    /// The estimate.
    pub estimate: Estimate,
    /// A problem with the learned-overhead state (the default overhead was used).
    pub overhead_note: Option<String>,
}

/// Discovers `project` and estimates its context at session start: MCP tool sizes from the
/// MCP cache, the learned overhead when a session taught one. `env` gives an environment
/// variable the settings files' `env` does not set (`ENABLE_TOOL_SEARCH`,
/// `ANTHROPIC_BASE_URL`); a hook passes none, since it does not read its environment.
#[must_use]
pub fn budget(
    project: &Path,
    locations: &Locations,
    data: &DataDir,
    env: &dyn Fn(&str) -> Option<String>,
) -> Budget {
    budget_known(
        project,
        locations,
        data,
        env,
        &mut discover::Known::default(),
    )
}

/// [`budget`] reusing what SessionStart already knows: the skills listings of its config
/// check and the listing memo ([`discover::Known`]). Same result as [`budget`].
#[must_use]
pub fn budget_known(
    project: &Path,
    locations: &Locations,
    data: &DataDir,
    env: &dyn Fn(&str) -> Option<String>,
    known: &mut discover::Known<'_>,
) -> Budget {
    let discovery =
        discover::discover_known(project, locations, discover::Options::default(), known);
    let var = |key: &str| {
        discovery
            .settings_env
            .get(key)
            .cloned()
            .or_else(|| env(key))
    };
    let tool_search = ToolSearchSetting::resolve(
        var("ENABLE_TOOL_SEARCH").as_deref(),
        var("ANTHROPIC_BASE_URL").as_deref(),
    );
    let mcp_cache = cache::load(data);
    let tools = |server: &McpServer| tools_size(&mcp_cache, server);
    let mut options = Options {
        tool_search,
        ..Options::default()
    };
    let mut estimate = estimate::estimate(&discovery.inventory, &tools, &options);
    let mut overhead_note = None;
    match OverheadStore::load(data) {
        Ok(state) => {
            let any_mcp = discovery.inventory.mcp_servers.iter().any(|s| s.enabled);
            let variant = overhead_variant(estimate.tool_search.names_only, any_mcp);
            if let Some(learned) = state.latest(&variant) {
                options.overhead = learned;
                estimate = estimate::estimate(&discovery.inventory, &tools, &options);
            }
        }
        Err(err) => overhead_note = Some(record::chain(&err)),
    }
    Budget {
        discovery,
        estimate,
        overhead_note,
    }
}

/// A server's tool sizes from the MCP cache, when it was checked with this config and answered.
#[must_use]
pub fn tools_size(mcp_cache: &cache::Cache, server: &McpServer) -> Option<ToolsSize> {
    mcp_cache
        .lookup(&server.name, &server.config)
        .filter(|entry| entry.ok)
        .map(|entry| {
            ToolsSize::from_names(&server.name, &entry.tool_names, entry.tools_chars as u64)
        })
}

/// The estimate per component, for the `token_consumption` record: `client`, `mcp:<server>`
/// per enabled server, `skills`, `commands`, `agents`, `memory`.
#[must_use]
pub fn components(estimate: &Estimate) -> Map<String, Value> {
    let mut map = Map::new();
    for row in &estimate.rows {
        match row.component {
            Component::McpTools => {
                for item in &row.items {
                    map.insert(format!("mcp:{}", item.name), json!(item.tokens));
                }
            }
            other => {
                map.insert(component_key(other).to_owned(), json!(row.tokens));
            }
        }
    }
    map
}

fn component_key(component: Component) -> &'static str {
    match component {
        Component::Client => "client",
        Component::McpTools => "mcp",
        Component::Skills => "skills",
        Component::Commands => "commands",
        Component::Agents => "agents",
        Component::Memory => "memory",
    }
}

/// One thing a person can remove to shrink the context, with its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contributor {
    /// For people: `MCP server github`, `skills listing`, a memory file.
    pub label: String,
    /// Its tokens.
    pub tokens: u64,
    /// The component it belongs to.
    pub component: Component,
}

/// What a person can shrink, biggest first: each enabled MCP server, the skills listing, the
/// commands listing, the custom agents, each memory file. The client's own overhead is not
/// a contributor: nobody can remove it.
#[must_use]
pub fn contributors(estimate: &Estimate) -> Vec<Contributor> {
    let mut all = Vec::new();
    for row in &estimate.rows {
        match row.component {
            Component::Client => {}
            Component::McpTools => all.extend(row.items.iter().map(|i| Contributor {
                label: format!("MCP server {}", i.name),
                tokens: i.tokens,
                component: row.component,
            })),
            Component::Memory => all.extend(row.items.iter().map(|i| Contributor {
                label: i.name.clone(),
                tokens: i.tokens,
                component: row.component,
            })),
            Component::Skills | Component::Commands | Component::Agents => {
                all.push(Contributor {
                    label: format!("{} listing", row.component.label().to_lowercase()),
                    tokens: row.tokens,
                    component: row.component,
                });
            }
        }
    }
    all.retain(|c| c.tokens > 0);
    all.sort_by(|a, b| b.tokens.cmp(&a.tokens).then_with(|| a.label.cmp(&b.label)));
    all
}

// ---------------------------------------------------------------------------------------
// SessionStart's findings

/// What SessionStart records and says about the budget.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// `token_consumption`, then any `limit_violation` and `alert`.
    pub records: Vec<Record>,
    /// The message for the user, when a limit is crossed.
    pub system_message: Option<String>,
    /// The allowed set of this session.
    pub allowed: Allowed,
}

/// Checks `estimate` and the enabled servers of `servers` against `limits`.
///
/// - Always a `token_consumption` record (estimated, per component).
/// - Above `initial_tokens_warning`: a `limit_violation` and `Alert-S-001` at P1 (the runbook
///   files Alert-S-001 under incident P1-002, "initial tokens over 40,000"); above
///   `initial_tokens_critical` the same with the critical threshold (a canary rolls back,
///   R6.3). The message names the three biggest contributors and the command that fixes each.
/// - More enabled servers than `max_mcp_servers`: a `limit_violation` and a message naming
///   the servers outside the allowed set and the command.
#[must_use]
pub fn check(estimate: &Estimate, servers: &[McpServer], limits: &Limits) -> Findings {
    let total = estimate.total_tokens;
    let mode = mode_name(limits.mode);
    let mut records = vec![Record::TokenConsumption {
        tokens: total,
        source: TokenSource::Estimated,
        components: Some(components(estimate)),
    }];
    let mut messages = Vec::new();
    let over = if total > limits.initial_tokens_critical {
        Some(("initial_tokens_critical", limits.initial_tokens_critical))
    } else if total > limits.initial_tokens_warning {
        Some(("initial_tokens_warning", limits.initial_tokens_warning))
    } else {
        None
    };
    if let Some((limit, threshold)) = over {
        let text = tokens_message(estimate, limit, threshold);
        records.push(Record::LimitViolation {
            limit: limit.to_owned(),
            value: metric(total),
            threshold: metric(threshold),
            mode: mode.to_owned(),
            message: Text::new(&text, MAX_MESSAGE_CHARS),
        });
        records.push(Record::Alert {
            id: ALERT_ID.to_owned(),
            severity: AlertSeverity::P1,
            message: Text::new(
                &format!("initial tokens (estimated) {total} over {limit} {threshold}"),
                MAX_MESSAGE_CHARS,
            ),
            value: metric(total),
            threshold: metric(threshold),
        });
        messages.push(text);
    }
    let enabled = enabled_in_scope_order(servers);
    let allowed = allowed_set(&enabled, limits.max_mcp_servers, &limits.mcp_priority);
    if !allowed.outside.is_empty() {
        let text = servers_message(&allowed, enabled.len(), limits);
        records.push(Record::LimitViolation {
            limit: "max_mcp_servers".to_owned(),
            value: metric(enabled.len() as u64),
            threshold: f64::from(limits.max_mcp_servers),
            mode: mode.to_owned(),
            message: Text::new(&text, MAX_MESSAGE_CHARS),
        });
        messages.push(text);
    }
    Findings {
        records,
        system_message: (!messages.is_empty()).then(|| messages.join("\n")),
        allowed,
    }
}

/// A count as a record's `value` / `threshold`.
#[must_use]
#[expect(
    clippy::cast_precision_loss,
    reason = "token and server counts stay far below 2^52, where f64 is exact"
)]
pub fn metric(n: u64) -> f64 {
    n as f64
}

/// `warn` or `enforce`.
#[must_use]
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Warn => "warn",
        Mode::Enforce => "enforce",
    }
}

/// The fixing command for a contributor's component.
#[must_use]
pub fn fix_command(component: Component) -> &'static str {
    match component {
        Component::McpTools => "ctxopt mcp optimize --apply",
        Component::Skills | Component::Commands => "ctxopt skills",
        Component::Agents | Component::Memory | Component::Client => "ctxopt tokens",
    }
}

fn tokens_message(estimate: &Estimate, limit: &str, threshold: u64) -> String {
    let top: Vec<Contributor> = contributors(estimate).into_iter().take(3).collect();
    let mut text = format!(
        "ctxopt: the context at session start is about {} tokens (estimate), over {limit} {}.",
        estimate.total_tokens, threshold
    );
    if !top.is_empty() {
        let named: Vec<String> = top
            .iter()
            .map(|c| format!("{} ({})", c.label, c.tokens))
            .collect();
        let _ = write!(text, " Biggest: {}.", named.join(", "));
        let mut commands: Vec<&str> = Vec::new();
        for c in &top {
            let command = fix_command(c.component);
            if !commands.contains(&command) {
                commands.push(command);
            }
        }
        let _ = write!(text, " To shrink it: `{}`", commands.join("`, `"));
        text.push_str("; details: `ctxopt tokens`.");
    }
    text
}

fn servers_message(allowed: &Allowed, enabled: usize, limits: &Limits) -> String {
    let action = match limits.mode {
        Mode::Enforce => "their tool calls are denied",
        Mode::Warn => "calls to them are recorded as limit violations",
    };
    format!(
        "ctxopt: {enabled} MCP servers are enabled, over limits.max_mcp_servers {}; outside the allowed set ({RULE}): {} — {action}. Run `ctxopt mcp optimize --apply` or `ctxopt mcp disable NAME`, or change limits.max_mcp_servers / limits.mcp_priority in .claude/ctxopt.json.",
        limits.max_mcp_servers,
        allowed.outside.join(", ")
    )
}

/// The use of each server, from `calls` (server → calls in the window), for a report.
#[must_use]
pub fn calls_of(calls: &BTreeMap<String, u64>, server: &str) -> u64 {
    calls.get(server).copied().unwrap_or(0)
}

/// The state SessionStart writes for `servers`.
#[must_use]
pub fn state_for(servers: &[McpServer], session_id: &str, now: DateTime<Utc>) -> AllowedState {
    AllowedState {
        schema_version: STATE_VERSION,
        written_at: record::timestamp(now),
        session_id: session_id.to_owned(),
        enabled: enabled_in_scope_order(servers),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Transport;
    use crate::budget::estimate::{Item, Overhead, Row};

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn server(name: &str, scope: McpScope, enabled: bool) -> McpServer {
        McpServer {
            name: name.to_owned(),
            scope,
            transport: Transport::Stdio,
            enabled,
            disabled_by: None,
            source: PathBuf::from("/x"),
            config: json!({"command": name}),
            shadows: Vec::new(),
            needs_approval: false,
        }
    }

    #[test]
    fn scope_then_name_order_of_enabled_servers() {
        let servers = [
            server("zeta", McpScope::User, true),
            server("alpha", McpScope::User, true),
            server("off", McpScope::Local, false),
            server("team", McpScope::Project, true),
            server("mine", McpScope::Local, true),
            server("corp", McpScope::Managed, true),
        ];
        assert_eq!(
            enabled_in_scope_order(&servers),
            names(&["corp", "mine", "team", "alpha", "zeta"])
        );
    }

    #[test]
    fn within_the_limit_everything_is_allowed() {
        let enabled = names(&["a", "b"]);
        let set = allowed_set(&enabled, 8, &[]);
        assert_eq!(set.allowed, enabled);
        assert!(set.outside.is_empty());
    }

    #[test]
    fn priority_first_then_the_given_order() {
        let enabled = names(&["local1", "proj1", "user1", "user2", "user3"]);
        let set = allowed_set(&enabled, 3, &names(&["user3", "gone", "user3", "proj1"]));
        assert_eq!(set.allowed, names(&["user3", "proj1", "local1"]));
        assert_eq!(set.outside, names(&["user1", "user2"]));
        assert!(set.is_outside("user1"));
        assert!(!set.is_outside("user3"));
    }

    #[test]
    fn zero_allows_nothing() {
        let set = allowed_set(&names(&["a"]), 0, &names(&["a"]));
        assert!(set.allowed.is_empty());
        assert_eq!(set.outside, names(&["a"]));
    }

    #[test]
    fn tool_names_map_to_servers() {
        let servers = names(&["a", "a__b", "my.server", "memory"]);
        assert_eq!(
            server_of_tool("mcp__memory__read", &servers),
            Some("memory")
        );
        assert_eq!(server_of_tool("mcp__a__b__tool", &servers), Some("a__b"));
        assert_eq!(server_of_tool("mcp__a__tool", &servers), Some("a"));
        assert_eq!(
            server_of_tool("mcp__my_server__x", &servers),
            Some("my.server")
        );
        assert_eq!(server_of_tool("mcp__memoryx__read", &servers), None);
        assert_eq!(server_of_tool("mcp__memory", &servers), None);
        assert_eq!(server_of_tool("Bash", &servers), None);
    }

    #[test]
    fn an_unchanged_state_is_not_rewritten_until_a_day_old() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::of_project(tmp.path());
        let servers = [server("a", McpScope::Project, true)];
        let now = Utc::now();
        let now_ns = now.timestamp_nanos_opt().unwrap();
        let first = state_for(&servers, "s1", now);
        save_state_if_changed(&data, &first, now_ns).unwrap();
        assert_eq!(load_state(&data).unwrap(), first);
        let second = state_for(&servers, "s2", now);
        save_state_if_changed(&data, &second, now_ns).unwrap();
        assert_eq!(
            load_state(&data).unwrap().session_id,
            "s1",
            "same servers: kept"
        );
        let a_day_later = now_ns + STATE_KEEP_ALIVE_NS + 60_000_000_000;
        save_state_if_changed(&data, &second, a_day_later).unwrap();
        assert_eq!(
            load_state(&data).unwrap().session_id,
            "s2",
            "a day old: refreshed"
        );
        let more = [
            server("a", McpScope::Project, true),
            server("b", McpScope::User, true),
        ];
        let third = state_for(&more, "s3", now);
        save_state_if_changed(&data, &third, now_ns).unwrap();
        assert_eq!(load_state(&data).unwrap(), third, "other servers: written");
        std::fs::write(state_path(&data), "{").unwrap();
        save_state_if_changed(&data, &third, now_ns).unwrap();
        assert_eq!(
            load_state(&data).unwrap(),
            third,
            "a corrupt file is replaced"
        );
    }

    #[test]
    fn state_round_trip_and_corrupt_file() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::of_project(tmp.path());
        assert_eq!(load_state(&data), None);
        let state = state_for(
            &[
                server("b", McpScope::User, true),
                server("a", McpScope::Project, true),
            ],
            "s1",
            Utc::now(),
        );
        save_state(&data, &state).unwrap();
        let back = load_state(&data).unwrap();
        assert_eq!(back.enabled, names(&["a", "b"]));
        assert_eq!(back, state);
        std::fs::write(state_path(&data), "{").unwrap();
        assert_eq!(load_state(&data), None);
    }

    fn row(component: Component, items: &[(&str, u64)], tokens: u64) -> Row {
        Row {
            component,
            items: items
                .iter()
                .map(|(n, t)| Item {
                    name: (*n).to_owned(),
                    tokens: *t,
                    detail: String::new(),
                    assumed: false,
                })
                .collect(),
            tokens,
            note: None,
        }
    }

    fn estimate_of(mcp: &[(&str, u64)], skills: u64, memory: &[(&str, u64)]) -> Estimate {
        let rows = vec![
            row(Component::Client, &[], 20_000),
            row(Component::McpTools, mcp, mcp.iter().map(|(_, t)| t).sum()),
            row(Component::Skills, &[("s", skills)], skills),
            row(Component::Commands, &[], 0),
            row(Component::Agents, &[], 0),
            row(
                Component::Memory,
                memory,
                memory.iter().map(|(_, t)| t).sum(),
            ),
        ];
        let options = Options {
            overhead: Overhead::Fixed(20_000),
            ..Options::default()
        };
        Estimate {
            total_tokens: rows.iter().map(|r| r.tokens).sum(),
            rows,
            context_window: options.context_window,
            tool_search: estimate::ToolSearchUse {
                setting: options.tool_search.mode,
                reason: String::new(),
                names_only: false,
            },
            overhead_source: String::from("given"),
        }
    }

    #[test]
    fn under_the_limits_only_the_consumption_is_recorded() {
        let est = estimate_of(&[("memory", 2_000)], 1_000, &[("/p/CLAUDE.md", 500)]);
        let found = check(
            &est,
            &[server("memory", McpScope::User, true)],
            &Limits::default(),
        );
        assert_eq!(found.records.len(), 1);
        let Record::TokenConsumption {
            tokens,
            source,
            components,
        } = &found.records[0]
        else {
            panic!("{:?}", found.records[0]);
        };
        assert_eq!(*tokens, 23_500);
        assert_eq!(*source, TokenSource::Estimated);
        let components = components.as_ref().unwrap();
        assert_eq!(components["client"], json!(20_000));
        assert_eq!(components["mcp:memory"], json!(2_000));
        assert_eq!(components["skills"], json!(1_000));
        assert_eq!(components["memory"], json!(500));
        assert!(!components.contains_key("mcp"));
        assert_eq!(found.system_message, None);
        assert_eq!(found.allowed.allowed, names(&["memory"]));
    }

    #[test]
    fn over_the_warning_names_the_three_biggest_and_the_commands() {
        let est = estimate_of(
            &[("github", 9_000), ("memory", 2_000), ("tiny", 10)],
            8_000,
            &[("/p/CLAUDE.md", 3_000)],
        );
        let found = check(&est, &[], &Limits::default());
        let kinds: Vec<&str> = found
            .records
            .iter()
            .map(|r| match r {
                Record::TokenConsumption { .. } => "tokens",
                Record::LimitViolation { limit, .. } => limit.as_str(),
                Record::Alert { id, severity, .. } => {
                    assert_eq!(*severity, AlertSeverity::P1);
                    id.as_str()
                }
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["tokens", "initial_tokens_warning", "Alert-S-001"]);
        let message = found.system_message.unwrap();
        assert!(
            message.contains(
                "Biggest: MCP server github (9000), skills listing (8000), /p/CLAUDE.md (3000)."
            ),
            "{message}"
        );
        assert!(
            message.contains("`ctxopt mcp optimize --apply`, `ctxopt skills`, `ctxopt tokens`")
        );
        assert!(!message.contains("tiny"));
    }

    #[test]
    fn over_the_critical_limit_uses_its_threshold() {
        let est = estimate_of(&[("github", 40_000)], 0, &[]);
        let found = check(&est, &[], &Limits::default());
        let Record::LimitViolation {
            limit,
            threshold,
            value,
            mode,
            ..
        } = &found.records[1]
        else {
            panic!();
        };
        assert_eq!(limit, "initial_tokens_critical");
        assert!((threshold - 50_000.0).abs() < f64::EPSILON);
        assert!((value - 60_000.0).abs() < f64::EPSILON);
        assert_eq!(mode, "warn");
        assert!(
            matches!(&found.records[2], Record::Alert { threshold, .. } if (*threshold - 50_000.0).abs() < f64::EPSILON)
        );
    }

    #[test]
    fn too_many_servers_names_the_ones_outside() {
        let servers: Vec<McpServer> = (0..10)
            .map(|i| server(&format!("s{i}"), McpScope::User, true))
            .collect();
        let limits = Limits {
            mcp_priority: names(&["s9"]),
            mode: Mode::Enforce,
            ..Limits::default()
        };
        let est = estimate_of(&[], 0, &[]);
        let found = check(&est, &servers, &limits);
        assert_eq!(found.allowed.outside, names(&["s7", "s8"]));
        let Record::LimitViolation {
            limit, value, mode, ..
        } = &found.records[1]
        else {
            panic!();
        };
        assert_eq!(
            (limit.as_str(), mode.as_str()),
            ("max_mcp_servers", "enforce")
        );
        assert!((value - 10.0).abs() < f64::EPSILON);
        let message = found.system_message.unwrap();
        assert!(message.contains("10 MCP servers are enabled, over limits.max_mcp_servers 8"));
        assert!(
            message.contains(": s7, s8 — their tool calls are denied"),
            "{message}"
        );
        assert!(message.contains("ctxopt mcp optimize --apply"));
    }
}
