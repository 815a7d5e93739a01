//! PreToolUse: runs before every tool call.
//!
//! **The guard** ([`crate::guard`]): a Write, Edit, MultiEdit, NotebookEdit, MCP file tool or
//! Bash command that would write a protected path is denied with a reason naming the file
//! and how a person changes it; the denial is audited. In `guard.mode = "warn"` it is audited
//! only. Failure policy: **closed** for a call that targets a protected path (a command the
//! guard cannot read that mentions one is denied; a panic while deciding such a call denies
//! it — see the runner), open otherwise.

use super::{Context, Evaluation, Fault};
use crate::guard::paths::{Protected, Scope};
use crate::guard::{self, Exception, Verdict, snapshot};
use crate::outcome::Outcome;
use crate::policy::Mode;
use crate::protocol::{Decision, Event, HookInput, ToolCall};
use crate::record::{self, Actor, AuditEntry, Severity, Text};
use crate::store;

/// ctxopt's own binaries: an agent that overwrote them would switch the guard off.
fn with_binaries(protected: Protected, ctx: &Context) -> Protected {
    let Some(bin_dir) = &ctx.bin_dir else {
        return protected;
    };
    super::Hook::ALL
        .iter()
        .map(|hook| hook.program())
        .chain(["ctxopt", "ctxopt-run"])
        .fold(protected, |set, program| {
            set.with_protected(
                &bin_dir.join(program),
                Scope::File,
                "one of ctxopt's own binaries",
                "Reinstall it with install/install.sh",
            )
        })
}

/// Evaluates a PreToolUse input.
#[must_use]
pub fn evaluate(input: &HookInput, ctx: &Context) -> Evaluation {
    evaluate_with(input, ctx, &[])
}

/// [`evaluate`] with [`Exception`] rules for some protected files (the canary's rules for
/// `canary.json` plug in here).
#[must_use]
pub fn evaluate_with(
    input: &HookInput,
    ctx: &Context,
    exceptions: &[&dyn Exception],
) -> Evaluation {
    let mut eval = Evaluation::default();
    let Event::PreToolUse(call) = &input.event else {
        return eval;
    };
    let protected = with_binaries(Protected::for_project(&ctx.project, &ctx.locations), ctx);
    let anchors = guard::anchors(
        input.common.cwd.as_deref(),
        &ctx.locations.home,
        &ctx.project,
    );
    let verdict = guard::decide_with(call, &anchors, &protected, exceptions);
    let (action, path, reason) = match &verdict {
        Verdict::Allow => {
            snapshot_before(input, call, ctx, &[], &mut eval);
            return eval;
        }
        Verdict::Rule {
            path,
            allowed: true,
            reason,
        } => {
            snapshot_before(input, call, ctx, std::slice::from_ref(path), &mut eval);
            ("allow", path.to_string_lossy().into_owned(), reason.clone())
        }
        Verdict::Rule { path, .. } => ("deny", path.to_string_lossy().into_owned(), String::new()),
        Verdict::Deny { protection, .. } => (
            "deny",
            protection.path.to_string_lossy().into_owned(),
            String::new(),
        ),
        Verdict::Unsure { .. } => ("deny", String::new(), String::new()),
    };
    let reason = verdict.reason().unwrap_or(reason);
    let mut action = action;
    if action == "deny" {
        let (policy, _) = ctx.policy();
        if policy.guard.mode == Mode::Enforce {
            eval.outcome.merge(Outcome {
                decision: Some(Decision::Deny),
                reasons: vec![reason.clone()],
                ..Outcome::default()
            });
        } else {
            action = "would-deny";
            snapshot_before(input, call, ctx, &[], &mut eval);
        }
    }
    let entry = AuditEntry {
        actor: Actor::Agent,
        action: String::from(action),
        path,
        sha256_before: None,
        sha256_after: None,
        session_id: Some(input.common.session_id.clone()),
        tool: Some(call.tool_name.clone()),
        detail: Some(Text::new(&reason, record::MAX_MESSAGE_CHARS)),
    };
    let written = ctx
        .data
        .ensure()
        .and_then(|()| store::append(&ctx.data.audit_log(), entry.line(ctx.now).as_bytes()));
    if let Err(err) = written {
        eval.faults.push(Fault {
            severity: Severity::Medium,
            error: Box::new(err),
        });
    }
    eval
}

/// The guard's last line, before a call that can change files: accept what a person changed
/// since the last call, and mark the call in flight ([`snapshot::before_call`]).
fn snapshot_before(
    input: &HookInput,
    call: &ToolCall,
    ctx: &Context,
    allowed: &[std::path::PathBuf],
    eval: &mut Evaluation,
) {
    if !snapshot::can_change_files(&call.tool_name) {
        return;
    }
    let watch = snapshot::Watch::for_project(&ctx.project, &ctx.locations);
    let the_call = snapshot::Call {
        session_id: &input.common.session_id,
        tool_use_id: call.tool_use_id.as_deref().unwrap_or(""),
        tool_name: &call.tool_name,
    };
    let result = ctx
        .data
        .ensure()
        .and_then(|()| snapshot::before_call(&ctx.data, &watch, the_call, allowed, ctx.now))
        .and_then(|audit| {
            if audit.is_empty() {
                Ok(())
            } else {
                store::append(&ctx.data.audit_log(), audit.as_bytes())
            }
        });
    if let Err(err) = result {
        eval.faults.push(Fault {
            severity: Severity::Medium,
            error: Box::new(err),
        });
    }
}
