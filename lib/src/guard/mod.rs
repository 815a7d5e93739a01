//! The protected-write guard (R4, M-T-001-1): the agent must not change Claude Code's
//! configuration, ctxopt's data, hooks or backups — only a person may, deliberately.
//!
//! Three lines of defence, one model:
//! - [`paths`] — which paths are protected and how a raw path from a tool call is normalised
//!   (`~`, `$HOME`, `$CLAUDE_PROJECT_DIR`, relative to the call's `cwd`, `..`, symlinks);
//! - [`shell`] — what a Bash command writes, parsed as a shell parses it (never one regex);
//! - [`snapshot`] — the last line no parser can dodge: PreToolUse notes the protected files'
//!   stat, PostToolUse compares and restores a file changed during the call from its
//!   last-known-good copy.
//!
//! PreToolUse denies a Write, Edit, MultiEdit or NotebookEdit into a protected path and a
//! Bash command that writes one; reads stay allowed. Failure policy: a fault while deciding
//! on a call that targets a protected path denies it (`ctxopt guard error`); observers fail
//! open. Later features (the canary's `canary.json` rules) plug in through
//! [`paths::Exception`] instead of writing their own guard.

pub mod paths;
pub mod shell;
pub mod snapshot;
