//! `ctxopt mcp …`: the project's MCP servers (runbook P1-003). Each subcommand lives in its own
//! file; this one only names them and dispatches.

use crate::commands::{CliError, Status};
use crate::mcp_check;

/// The `mcp` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum McpCommand {
    /// Start each enabled MCP server of the project, as Claude Code would, and check it answers.
    ///
    /// The servers are those Claude Code would load for the project: every scope (local,
    /// project, user, managed), with its precedence and on/off toggles.
    ///
    /// stdio servers are started with their `command`, `args` and `env` (`${VAR}` expanded),
    /// sent `initialize` and `tools/list` (every page), then stopped with their whole process
    /// group; `http` servers get the same over streamable HTTP. Prints each server's status
    /// (OK, FAIL with the reason, NOT CHECKED for `sse` and OAuth servers), its tool count and
    /// the size of its tool definitions, and keeps the results in
    /// `.claude/hooks/data/mcp-cache.json` for the SessionStart estimate. Exit 0 when every
    /// server checked is OK, 1 when one fails, 2 when the check could not run.
    Check(mcp_check::CheckArgs),
}

/// Runs `ctxopt mcp …`.
pub fn mcp(command: &McpCommand) -> Result<Status, CliError> {
    match command {
        McpCommand::Check(args) => mcp_check::check(args),
    }
}
