//! `ctxopt mcp optimize`: which enabled MCP servers to disable so that the count is within
//! `limits.max_mcp_servers` and the estimate within `limits.initial_tokens_warning`
//! (runbook P1-002 "自動MCP最適化", R5.3). Pure: the caller gives each server's tokens (the
//! estimate) and calls (the metrics), and applies the plan through [`super::toggle`].
//!
//! # The rule
//! - Never proposed: managed servers (an administrator's choice, not the user's to switch
//!   off) and the servers named in `limits.mcp_priority` (the person said they matter).
//! - The rest are ranked least used first (calls in the window), then heaviest (tokens; a
//!   size the MCP cache does not know counts as lightest, since the estimate only assumes
//!   it), then the reverse of the allowed set's scope order (user, project, local — so the
//!   plan removes what the allowed set would leave outside first), then by name; and taken
//!   from the front while the count is over the limit.
//! - While the estimate is still over the warning limit after that, further servers are taken
//!   only if they had **no** calls in the window: a server in use is worth its tokens, and the
//!   rest of an overweight context is for `ctxopt skills` / `ctxopt tokens`.
//! - The tokens after the plan subtract each disabled server's tokens from the estimate; the
//!   client's own overhead shrinks too when the last server goes (OBSERVED.md), which is not
//!   counted, so the figure is an upper bound.

use serde::Serialize;

use crate::budget::McpScope;
use crate::policy::Limits;

/// One enabled server as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// The server.
    pub name: String,
    /// Its scope.
    pub scope: McpScope,
    /// Its tokens in the estimate.
    pub tokens: u64,
    /// Whether the tokens are assumed (the MCP cache does not know the server).
    pub tokens_assumed: bool,
    /// Its calls in the window.
    pub calls: u64,
}

/// Why a server is proposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// To bring the count within `max_mcp_servers`.
    MaxMcpServers,
    /// To bring the estimate within `initial_tokens_warning` (unused servers only).
    InitialTokens,
}

/// One server to disable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proposal {
    /// The server and its numbers.
    #[serde(flatten)]
    pub server: Candidate,
    /// Why.
    pub why: Why,
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The servers to disable, in the order taken.
    pub disable: Vec<Proposal>,
    /// Enabled servers now and after the plan.
    pub enabled_before: usize,
    /// After.
    pub enabled_after: usize,
    /// The estimate now.
    pub tokens_before: u64,
    /// The estimate after the plan (an upper bound).
    pub tokens_after: u64,
    /// `limits.max_mcp_servers`.
    pub max_mcp_servers: u32,
    /// `limits.initial_tokens_warning`.
    pub initial_tokens_warning: u64,
    /// Kept because `limits.mcp_priority` names them.
    pub kept_by_priority: Vec<String>,
    /// Kept because they are managed.
    pub managed: Vec<String>,
    /// Whether the plan brings the count within the limit.
    pub meets_count: bool,
    /// Whether the plan brings the estimate within the warning limit.
    pub meets_tokens: bool,
}

/// Plans which of `servers` (the enabled ones) to disable, with `total_tokens` the estimate.
#[must_use]
pub fn plan(servers: &[Candidate], total_tokens: u64, limits: &Limits) -> Plan {
    let max = usize::try_from(limits.max_mcp_servers).unwrap_or(usize::MAX);
    let prioritized = |c: &&Candidate| limits.mcp_priority.contains(&c.name);
    let kept_by_priority: Vec<String> = servers
        .iter()
        .filter(prioritized)
        .map(|c| c.name.clone())
        .collect();
    let managed: Vec<String> = servers
        .iter()
        .filter(|c| c.scope == McpScope::Managed)
        .map(|c| c.name.clone())
        .collect();
    let mut ranked: Vec<&Candidate> = servers
        .iter()
        .filter(|c| c.scope != McpScope::Managed && !prioritized(c))
        .collect();
    ranked.sort_by(|a, b| {
        a.calls
            .cmp(&b.calls)
            .then_with(|| known_tokens(b).cmp(&known_tokens(a)))
            .then_with(|| b.scope.cmp(&a.scope))
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut enabled = servers.len();
    let mut tokens = total_tokens;
    let mut disable = Vec::new();
    for candidate in ranked {
        let why = if enabled > max {
            Why::MaxMcpServers
        } else if tokens > limits.initial_tokens_warning && candidate.calls == 0 {
            Why::InitialTokens
        } else {
            continue;
        };
        enabled -= 1;
        tokens = tokens.saturating_sub(candidate.tokens);
        disable.push(Proposal {
            server: candidate.clone(),
            why,
        });
    }
    Plan {
        disable,
        enabled_before: servers.len(),
        enabled_after: enabled,
        tokens_before: total_tokens,
        tokens_after: tokens,
        max_mcp_servers: limits.max_mcp_servers,
        initial_tokens_warning: limits.initial_tokens_warning,
        kept_by_priority,
        managed,
        meets_count: enabled <= max,
        meets_tokens: tokens <= limits.initial_tokens_warning,
    }
}

/// The tokens the ranking compares: an assumed size says nothing about the server, so it
/// counts as 0 (after every server of known weight with the same calls).
fn known_tokens(c: &Candidate) -> u64 {
    if c.tokens_assumed { 0 } else { c.tokens }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, scope: McpScope, tokens: u64, calls: u64) -> Candidate {
        Candidate {
            name: name.to_owned(),
            scope,
            tokens,
            tokens_assumed: false,
            calls,
        }
    }

    fn names(plan: &Plan) -> Vec<(&str, Why)> {
        plan.disable
            .iter()
            .map(|p| (p.server.name.as_str(), p.why))
            .collect()
    }

    #[test]
    fn nothing_to_do_within_the_limits() {
        let servers = [c("a", McpScope::User, 100, 0)];
        let plan = plan(&servers, 30_000, &Limits::default());
        assert!(plan.disable.is_empty());
        assert!(plan.meets_count && plan.meets_tokens);
    }

    #[test]
    fn least_used_then_heaviest_first_for_the_count() {
        let mut servers: Vec<Candidate> = (0..7)
            .map(|i| c(&format!("busy{i}"), McpScope::User, 100, 50))
            .collect();
        servers.push(c("idle-light", McpScope::User, 10, 0));
        servers.push(c("idle-heavy", McpScope::User, 900, 0));
        servers.push(c("rare", McpScope::Local, 5_000, 1));
        servers.push(c("corp", McpScope::Managed, 9_000, 0));
        servers.push(c("kept", McpScope::User, 9_000, 0));
        let limits = Limits {
            mcp_priority: vec!["kept".to_owned()],
            ..Limits::default()
        };
        let plan = plan(&servers, 30_000, &limits);
        assert_eq!(
            names(&plan),
            [
                ("idle-heavy", Why::MaxMcpServers),
                ("idle-light", Why::MaxMcpServers),
                ("rare", Why::MaxMcpServers),
                ("busy0", Why::MaxMcpServers),
            ]
        );
        assert_eq!((plan.enabled_before, plan.enabled_after), (12, 8));
        assert_eq!(plan.tokens_after, 30_000 - 900 - 10 - 5_000 - 100);
        assert_eq!(plan.kept_by_priority, ["kept"]);
        assert_eq!(plan.managed, ["corp"]);
        assert!(plan.meets_count);
    }

    #[test]
    fn unknown_sizes_rank_last_and_user_scope_before_local() {
        let mut servers = vec![
            c("local", McpScope::Local, 70, 0),
            c("user", McpScope::User, 60, 0),
            c("project", McpScope::Project, 65, 0),
            c("known", McpScope::Local, 10, 0),
        ];
        for s in &mut servers[..3] {
            s.tokens_assumed = true;
        }
        let limits = Limits {
            max_mcp_servers: 0,
            ..Limits::default()
        };
        let order: Vec<String> = plan(&servers, 0, &limits)
            .disable
            .into_iter()
            .map(|p| p.server.name)
            .collect();
        assert_eq!(order, ["known", "user", "project", "local"]);
    }

    #[test]
    fn only_unused_servers_go_for_the_tokens() {
        let servers = [
            c("used-heavy", McpScope::User, 20_000, 3),
            c("unused", McpScope::User, 4_000, 0),
            c("unused-small", McpScope::Project, 500, 0),
        ];
        let plan = plan(&servers, 45_000, &Limits::default());
        assert_eq!(
            names(&plan),
            [
                ("unused", Why::InitialTokens),
                ("unused-small", Why::InitialTokens)
            ]
        );
        assert_eq!(plan.tokens_after, 40_500);
        assert!(!plan.meets_tokens);
        assert!(plan.meets_count);
    }

    #[test]
    fn stops_once_under_the_token_limit() {
        let servers = [
            c("a", McpScope::User, 6_000, 0),
            c("b", McpScope::User, 100, 0),
        ];
        let plan = plan(&servers, 45_000, &Limits::default());
        assert_eq!(names(&plan), [("a", Why::InitialTokens)]);
        assert!(plan.meets_tokens);
    }
}
