//! Talking to MCP servers: the health check of runbook P1-003 (`ctxopt mcp check`) and the
//! cache of what each server lists, which SessionStart's estimate reads (a hook never starts a
//! server).

pub mod probe;
