//! Talking to MCP servers: the health check of runbook P1-003 (`ctxopt mcp check`) and the
//! cache of what each server lists, which SessionStart's estimate reads (a hook never starts a
//! server).
//!
//! - [`probe`] — one server: start or call it, `initialize`, `tools/list` to the last page,
//!   within one deadline; the process group killed and reaped at the end.
//! - [`cache`] — `mcp-cache.json` in the data dir: the last check per server, keyed by the
//!   hash of its config.

pub mod cache;
pub mod probe;
