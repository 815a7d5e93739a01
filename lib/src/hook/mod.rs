//! The hooks as functions: `evaluate(input, context) -> Evaluation`, with no stdin, stdout,
//! environment or exit inside. Only [`crate::runner`] touches the process boundary.
//!
//! Failure policy (applied by the runner on every error path, the panic hook included): all
//! three hooks **fail open** for their own faults — bad stdin, an unwritable data dir, a full
//! disk — so the session goes on. The one exception is per call, not per hook: a PreToolUse
//! call that targets a protected path is decided **closed** ([`FailurePolicy::Closed`]): the
//! guard denies what it cannot read, and the runner's panic hook denies the call.

mod config_change;
mod post_tool_use;
mod pre_tool_use;
mod session_start;

use std::cell::OnceCell;
use std::error::Error;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::discover::Locations;
use crate::outcome::Outcome;
use crate::policy::Policy;
use crate::protocol::HookInput;
use crate::record::{Record, Severity};
use crate::store::DataDir;

/// One of ctxopt's hook binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `ctxopt-session-start`, registered for SessionStart.
    SessionStart,
    /// `ctxopt-pre-tool-use`, registered for PreToolUse.
    PreToolUse,
    /// `ctxopt-post-tool-use`, registered for PostToolUse and PostToolUseFailure.
    PostToolUse,
}

/// What a hook does when it fails by its own fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Let the action through; record the fault.
    Open,
    /// Deny the action (PreToolUse only); record the fault.
    Closed,
}

impl Hook {
    /// Every hook, in registration order.
    pub const ALL: [Hook; 3] = [Hook::SessionStart, Hook::PreToolUse, Hook::PostToolUse];

    /// The binary's name, which is also the `hook` field of its records.
    #[must_use]
    pub fn program(self) -> &'static str {
        match self {
            Self::SessionStart => "ctxopt-session-start",
            Self::PreToolUse => "ctxopt-pre-tool-use",
            Self::PostToolUse => "ctxopt-post-tool-use",
        }
    }

    /// The Claude Code events this binary is registered for.
    #[must_use]
    pub fn events(self) -> &'static [&'static str] {
        match self {
            Self::SessionStart => &["SessionStart"],
            Self::PreToolUse => &["PreToolUse"],
            Self::PostToolUse => &["PostToolUse", "PostToolUseFailure"],
        }
    }

    /// The failure policy (see the module doc).
    #[must_use]
    pub fn failure_policy(self) -> FailurePolicy {
        FailurePolicy::Open
    }

    /// Runs the hook's rules on a parsed input.
    #[must_use]
    pub fn evaluate(self, input: &HookInput, ctx: &Context) -> Evaluation {
        match self {
            Self::SessionStart => session_start::evaluate(input, ctx),
            Self::PreToolUse => match input.event {
                crate::protocol::Event::ConfigChange { .. } => config_change::evaluate(input, ctx),
                _ => pre_tool_use::evaluate_with(
                    input,
                    ctx,
                    &[&crate::canary::Rule::new(&ctx.project, ctx.now)],
                ),
            },
            Self::PostToolUse => post_tool_use::evaluate(input, ctx),
        }
    }
}

/// What a hook run may look at besides its input.
#[derive(Debug)]
pub struct Context {
    /// The project root.
    pub project: PathBuf,
    /// The project's data dir.
    pub data: DataDir,
    /// The run's clock reading.
    pub now: DateTime<Utc>,
    /// Path of the running binary's directory (to find sibling binaries such as `ctxopt`),
    /// looked up on first use ([`Context::bin_dir`]).
    bin_dir: OnceCell<Option<PathBuf>>,
    /// Where the user's and the managed config files are (read from the environment by the
    /// runner, so hooks never read it themselves).
    pub locations: Locations,
    /// The session's canary cohort (set by the runner before the hook's rules run); a canary
    /// session's policy includes the `canary.override` sections.
    pub cohort: crate::record::Cohort,
    /// The session's initial tokens as the runner read them from the session's state before
    /// the hook's rules run (`None` when unknown); PostToolUse skips measuring once they are
    /// measured, without reading the state again.
    pub initial_tokens: Option<(u64, crate::record::TokenSource)>,
    policy: OnceCell<Result<Policy, String>>,
}

impl Context {
    /// A context for `project` at `now`.
    #[must_use]
    pub fn new(
        project: PathBuf,
        now: DateTime<Utc>,
        bin_dir: Option<PathBuf>,
        locations: Locations,
    ) -> Self {
        Self {
            data: DataDir::of_project(&project),
            project,
            now,
            bin_dir: OnceCell::from(bin_dir),
            locations,
            cohort: crate::record::Cohort::Stable,
            initial_tokens: None,
            policy: OnceCell::new(),
        }
    }

    /// A context for a hook process: the binary's directory is found from
    /// `std::env::current_exe` when a rule first needs it (most runs never do, and the lookup
    /// is a `readlink` of `/proc/self/exe` on Linux).
    #[must_use]
    pub fn for_process(project: PathBuf, now: DateTime<Utc>, locations: Locations) -> Self {
        Self {
            bin_dir: OnceCell::new(),
            ..Self::new(project, now, None, locations)
        }
    }

    /// The running binary's directory, if known.
    #[must_use]
    pub fn bin_dir(&self) -> Option<&Path> {
        self.bin_dir.get_or_init(running_binary_dir).as_deref()
    }

    /// The project's policy, read on first use. On a read or parse error the defaults apply
    /// and the error is returned beside them, once per run, for the caller to record.
    pub fn policy(&self) -> (Policy, Option<String>) {
        match self.policy.get_or_init(|| {
            Policy::load_for(&self.project, self.cohort).map_err(|err| crate::record::chain(&err))
        }) {
            Ok(policy) => (policy.clone(), None),
            Err(message) => (Policy::default(), Some(message.clone())),
        }
    }
}

/// The running binary's directory (`std::env::current_exe`, symlinks resolved on Linux).
#[must_use]
pub fn running_binary_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
}

/// A fault of the hook's own: recorded as an `error` record, marks the run unsuccessful.
#[derive(Debug)]
pub struct Fault {
    /// How bad.
    pub severity: Severity,
    /// What went wrong (its source chain becomes the record's `stack`).
    pub error: Box<dyn Error + Send + Sync + 'static>,
}

/// What a hook run produced: the reply, the records it wants written, its own faults.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// The merged outcome of its rules.
    pub outcome: Outcome,
    /// Records beyond the runner's own `hook_execution` and `hook_latency`.
    pub records: Vec<Record>,
    /// The hook's own faults.
    pub faults: Vec<Fault>,
}

impl Evaluation {
    /// An evaluation holding one fault.
    #[must_use]
    pub fn fault(severity: Severity, error: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self {
            faults: vec![Fault {
                severity,
                error: error.into(),
            }],
            ..Self::default()
        }
    }
}
