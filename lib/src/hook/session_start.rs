//! SessionStart: runs once per session start, resume, clear or compact. Fails open. Records a
//! `session_start` record and runs the cheap retention check (R2.5), which starts a detached
//! `ctxopt prune` when the oldest record of a data file is past its retention.

use super::{Context, Evaluation, Fault};
use crate::protocol::{Event, HookInput};
use crate::record::{Record, Severity};
use crate::retention;

/// Evaluates a SessionStart input.
#[must_use]
pub fn evaluate(input: &HookInput, ctx: &Context) -> Evaluation {
    let mut eval = Evaluation::default();
    if let Event::SessionStart { source, model } = &input.event {
        eval.records.push(Record::SessionStart {
            source: source.clone(),
            model: model.clone(),
            permission_mode: input.common.permission_mode.clone(),
        });
    }
    let (policy, policy_error) = ctx.policy();
    if let Some(message) = policy_error {
        eval.faults.push(Fault {
            severity: Severity::Medium,
            error: format!("{message} (defaults apply)").into(),
        });
    }
    if let Err(err) = retention::check_at_session_start(ctx, &policy.retention) {
        eval.faults.push(Fault {
            severity: Severity::Low,
            error: Box::new(err),
        });
    }
    eval
}
