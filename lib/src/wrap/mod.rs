//! The hook runner for a project's *other* hook commands (R8; runbook M-D-001-1 and P1-001):
//! `ctxopt-run`, the install step that puts it in front of them, and `ctxopt hooks`.
//!
//! Claude Code lets a hook that hangs, crashes or is missing through without a trace, while
//! the runbook's P1-001 procedure counts failures and latencies per hook. `ctxopt-run` runs
//! one hook command, records each attempt under that hook's own name, and enforces a
//! timeout, retries and a circuit breaker — without changing what the hook says to Claude
//! Code.
//!
//! - [`command`] — hook command strings: names, simple vs. shell commands, the wrapped form,
//!   and the runner's own arguments.
//! - [`run`] — `ctxopt-run`'s process boundary (stdin, stdout, stderr, exit code, like
//!   [`crate::runner`] for ctxopt's own hooks) and the supervisor that runs the command.
//! - [`breaker`] — the per-hook circuit-breaker state.
//! - [`settings`] — wrapping and unwrapping handlers in a settings file (used by
//!   [`crate::install`]).
//! - [`inventory`] — `ctxopt hooks list|disable|enable`.
//!
//! # The runner's contract
//! - **Transparent.** The command gets the same stdin bytes (read whole first, up to 64 MiB;
//!   past that the hook is not run and the run fails open), the same environment and working
//!   directory. Its stdout, stderr and exit code come back byte for byte — from the last
//!   attempt only: output is buffered per attempt so a retry never appends to a failed
//!   attempt's half-written JSON. Exit 2, a deliberate block, is relayed and never retried.
//! - **Timeout.** `--timeout SECS` (default `hooks.timeout_seconds`, 30) bounds the whole run,
//!   retries and backoff included, measured from the runner's start; a timed-out attempt is
//!   not retried (a hung hook would hang again, and the time is spent). A run is over when
//!   the command has exited *and* its stdout and stderr are closed, as for a shell's `$(…)`:
//!   a background process still holding them counts against the timeout. At the deadline
//!   the command's whole process group gets SIGKILL (`killpg`; the command is spawned with
//!   `process_group(0)`). One thread watches the command: it polls both pipes and, once they
//!   are closed, the command's exit (a pidfd on Linux, `try_wait` in steps of at most 5 ms
//!   elsewhere) — no helper threads, whose start and cross-CPU wake-ups cost more than a
//!   short hook (`crate::process`).
//!   Claude Code then sees exit 1 and one stderr line (`ctxopt-run: NAME timed out after 30
//!   s; …`): a non-blocking error, the action goes ahead, as with the client's own timeout.
//!   Why 30 s: below Claude Code's own default (600 s; 60 s before 2.1.3), so the runner —
//!   which kills the group and records it — fires first; the client killing the runner would
//!   leave the group running. Install passes `--timeout` a second under the handler's own
//!   `timeout` (or the event's short default: `UserPromptSubmit` 30 s, `MessageDisplay` 10
//!   s, `SessionEnd` 1.5 s) for the same reason.
//! - **Retries.** Any other failure — an exit code other than 0 and 2, a signal, a spawn
//!   failure — is retried `hooks.retries` times (1), after `hooks.backoff_ms` (200 ms),
//!   doubled each time, while the deadline allows.
//! - **Exit codes of the runner's own making.** Signal N: 128+N (the shell's convention);
//!   program not found: 127, not executable: 126 (what `sh` reports); a runner usage error, an
//!   unreadable or oversize stdin: 1 with one stderr line. Never 2.
//! - **Records**, in the pinned envelope with `hook` = `--name` (default: the script the
//!   command runs, relative to the project, e.g. `.claude/hooks/PreToolUse.js`, so the
//!   runbook's `select(.type=="hook_execution" and .success==false) | .hook` names it): per
//!   attempt a `hook_execution` (`success` false with `error` = `timeout after 30 s`, `exit
//!   code 3: <first stderr line>`, `killed by signal 11 (SIGSEGV)`, `failed to run X: …`;
//!   exit 2 is a success with `decision: "deny"`; `attempt`: 1, 2, …) and a `hook_latency`
//!   (the attempt's wall time), plus a line in `hook_execution.log`. The event and session
//!   come from the stdin JSON (`hook_event_name`, `session_id`; else `unknown` and
//!   `$CLAUDE_CODE_SESSION_ID`).
//! - **Disabled hooks** are skipped (exit 0, nothing printed) and recorded as a successful
//!   `hook_execution` with `disabled: true` and no latency: when the command's script is gone
//!   and `SCRIPT.disabled` exists (the runbook's `mv X X.disabled`), after
//!   `ctxopt hooks disable` of a command with no script file, and while the breaker is open.
//! - **Circuit breaker.** `hooks.breaker_failures` (5) failed runs in a row (a run counts
//!   once, however many attempts it took) open the breaker: an `alert` record (`Alert-A-002`,
//!   P1, "hook failure rate up", naming the hook) and an announcement to the user — a
//!   `systemMessage` on stdout when the hook printed nothing there, else the first stderr
//!   line (what Claude Code shows for a failed hook). While open, runs are skipped.
//!   `ctxopt hooks enable NAME` closes it. State: [`breaker`].
//!
//! # Wrapping a project's hooks (`ctxopt install --wrap-existing`)
//! Every `type: "command"` handler that is not ctxopt's own and not wrapped already becomes
//! `<bin>/ctxopt-run --name NAME [--timeout T] -- <original>` when the original is a simple
//! command, else `… -- sh -c '<original>'` (see [`command`]). Exec-form handlers (`args`) and
//! non-sh shells are left alone and reported. Each rewrite is recorded in the install
//! manifest (settings file, event, name, original and written command), so
//! `ctxopt uninstall` puts back each exact original command, and a second install changes
//! nothing (or updates the runner's path when the binaries moved).
//!
//! **Which file.** The runner is named by absolute path, like ctxopt's own hooks, because a
//! hook command Claude Code cannot find fails open silently. An absolute path to this
//! machine's binaries is machine-specific, so by default only handlers in the git-ignored
//! `.claude/settings.local.json` are wrapped; handlers in the committed `settings.json` are
//! listed as not wrapped. The alternatives and why not: a bare `ctxopt-run` relying on PATH
//! keeps the committed file portable but breaks *every* wrapped hook for a teammate without
//! ctxopt (exit 127, silently let through); moving the handlers into the local file edits the
//! committed file anyway and changes what teammates run. `--wrap-committed` wraps them in
//! place for those who accept that (a single-person repository, a CI image with ctxopt at a
//! fixed path): only the command strings are spliced, the rest of the file keeps its bytes.
//!
//! # Known limits
//! - A process that leaves the group (`setsid`) escapes the kill; the runner stops waiting
//!   for the pipes it holds a second after the kill.
//! - If Claude Code kills the runner first (a handler whose `timeout` was lowered after
//!   install), the command's group is left running.
//! - Overlapping runs of one hook update the breaker count without a lock; a failure may be
//!   lost, and the breaker then opens one run later.
//! - Retention removes files directly in `state/`; the breaker state lives in `state/hooks/`
//!   so a disabled hook stays disabled until someone enables it.

pub mod breaker;
pub mod command;
pub mod inventory;
pub mod run;
pub mod settings;
