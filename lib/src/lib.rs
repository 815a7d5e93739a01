//! ctxopt's library: all the logic behind the hook binaries and the `ctxopt` CLI.
//!
//! A tour, in the order a hook run touches it:
//! - [`runner`] is the process boundary of a hook binary (stdin, stdout, stderr, exit code,
//!   the panic hook). Nothing else touches the process.
//! - [`protocol`] is the only module that knows Claude Code's JSON: typed stdin per event,
//!   exact stdout replies.
//! - [`hook`] holds the hooks as pure functions, `evaluate(input, context) -> Evaluation`,
//!   and each hook's failure policy; [`outcome`] merges what their rules decide.
//! - [`record`] is the one writer of metrics records (the envelope every record carries, the
//!   record types, masking via [`redact`]); [`store`] appends them under a lock and writes
//!   files atomically, in the data dir `<project>/.claude/hooks/data/`.
//! - [`policy`] reads `.claude/ctxopt.json`; [`project`] decides which project a run is about.
//! - [`retention`] moves old metrics into monthly archives and trims the logs (`ctxopt prune`).
//! - [`config`] knows Claude Code's config files and ctxopt's own: discovery, parsing with
//!   positions, schemas, extra checks, last-known-good copies; [`diagnostic`] is how findings
//!   are shown.
//! - [`guard`] keeps the agent from changing its own configuration: protected paths, Bash
//!   write analysis, snapshot and repair.
//! - [`install`] registers the hooks in a project's settings and removes exactly that again.
//! - [`gitexclude`] keeps ctxopt's private files out of git (a block in `.git/info/exclude`).
//! - [`wrap`] is `ctxopt-run`, the runner for the project's *other* hook commands (timeout,
//!   retries, circuit breaker, records under each hook's own name), and `ctxopt hooks`.

pub mod arena;
pub mod backup;
pub mod budget;
pub mod canary;
pub mod config;
pub mod deploy;
pub mod diagnostic;
pub mod fsx;
pub mod gitexclude;
pub mod guard;
pub mod hook;
pub mod install;
pub mod mcp;
pub mod memfns;
pub mod outcome;
pub mod policy;
pub mod precommit;
pub mod process;
pub mod project;
pub mod protocol;
pub mod record;
pub mod redact;
pub mod retention;
pub mod runbook_scripts;
pub mod runner;
pub mod sha256;
pub mod store;
pub mod wrap;
