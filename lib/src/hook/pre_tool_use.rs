//! PreToolUse: runs before every tool call. Fails open. In this release it only observes —
//! its run is recorded by the runner (`hook_execution`, `hook_latency`); the guard, the MCP
//! limit and the canary guard add their rules here.

use super::{Context, Evaluation};
use crate::protocol::HookInput;

/// Evaluates a PreToolUse input.
#[must_use]
pub fn evaluate(_input: &HookInput, _ctx: &Context) -> Evaluation {
    Evaluation::default()
}
