//! PreToolUse: runs before every tool call.
//!
//! **The guard** ([`crate::guard`]): a Write, Edit, MultiEdit, NotebookEdit, MCP file tool or
//! Bash command that would write a protected path is denied with a reason naming the file
//! and how a person changes it; the denial is audited. In `guard.mode = "warn"` it is audited
//! only. Failure policy: **closed** for a call that targets a protected path (a command the
//! guard cannot read that mentions one is denied; a panic while deciding such a call denies
//! it — see the runner), open otherwise.
//!
//! **The MCP server limit** ([`limits`], R5.3): a call to `mcp__<server>__<tool>` whose server
//! is enabled but outside the allowed set of `limits.max_mcp_servers` is denied in
//! `limits.mode = "enforce"` with a reason saying why and how to change it, and recorded as a
//! `limit_violation` in both modes. Only tool names starting with `mcp__` are looked at; the
//! enabled servers come from `state/mcp-allowed.json` (written by SessionStart), ranked with
//! the policy of the moment — no discovery here. No state file: the call passes (fails open).

use super::{Context, Evaluation, Fault};
use crate::budget::limits;
use crate::guard::paths::Protected;
use crate::guard::{self, Exception, Verdict, snapshot};
use crate::outcome::Outcome;
use crate::policy::{Limits, Mode};
use crate::protocol::{Decision, Event, HookInput, ToolCall};
use crate::record::{self, Actor, AuditEntry, Record, Severity, Text};
use crate::store;

/// ctxopt's own binaries: an agent that overwrote them would switch the guard off. Their
/// directory is the running hook's, looked up only when a checked path is named like one.
fn with_binaries(protected: Protected) -> Protected {
    let names: Vec<&str> = super::Hook::ALL
        .iter()
        .map(|hook| hook.program())
        .chain(["ctxopt", "ctxopt-run"])
        .collect();
    protected.with_running_binaries(
        super::running_binary_dir,
        &names,
        "one of ctxopt's own binaries",
        "Reinstall it with install/install.sh",
    )
}

/// Evaluates a PreToolUse input, with the [`Exception`] rules for some protected files (the
/// canary's rules for `canary.json` plug in here; see `hook::Hook::evaluate`).
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
    mcp_server_limit(call, ctx, &mut eval);
    let protected = with_binaries(Protected::for_project(&ctx.project, &ctx.locations));
    // A call that can change files is snapshotted: its scan of the watched files doubles as
    // the guard's `lstat`s of the same protected entries.
    let watched = snapshot::can_change_files(&call.tool_name).then(|| {
        let watch = snapshot::Watch::for_project(&ctx.project, &ctx.locations);
        let scan = watch.scan_now();
        for (path, is_link) in scan.lstats() {
            protected.note_lstat(path, is_link);
        }
        (watch, scan)
    });
    let anchors = guard::anchors(
        input.common.cwd.as_deref(),
        &ctx.locations.home,
        &ctx.project,
    );
    let verdict = guard::decide_with(call, &anchors, &protected, exceptions);
    let (action, path, reason) = match &verdict {
        Verdict::Allow => {
            snapshot_before(input, call, ctx, watched.as_ref(), &[], &mut eval);
            return eval;
        }
        Verdict::Rule {
            path,
            allowed: true,
            reason,
        } => {
            snapshot_before(
                input,
                call,
                ctx,
                watched.as_ref(),
                std::slice::from_ref(path),
                &mut eval,
            );
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
            snapshot_before(input, call, ctx, watched.as_ref(), &[], &mut eval);
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

/// The MCP server limit: a call to a server outside the allowed set is denied (enforce) or
/// recorded (warn). See the module doc.
fn mcp_server_limit(call: &ToolCall, ctx: &Context, eval: &mut Evaluation) {
    if !call.tool_name.starts_with("mcp__") {
        return;
    }
    let Some(state) = limits::load_state(&ctx.data) else {
        return;
    };
    let Some(server) = limits::server_of_tool(&call.tool_name, &state.enabled) else {
        return;
    };
    let (policy, _) = ctx.policy();
    let limits = &policy.limits;
    let set = limits::allowed_set(&state.enabled, limits.max_mcp_servers, &limits.mcp_priority);
    if !set.is_outside(server) {
        return;
    }
    let reason = deny_reason(server, &set, state.enabled.len(), limits);
    eval.records.push(Record::LimitViolation {
        limit: String::from("max_mcp_servers"),
        value: limits::metric(state.enabled.len() as u64),
        threshold: f64::from(limits.max_mcp_servers),
        mode: limits::mode_name(limits.mode).to_owned(),
        message: Text::new(&reason, record::MAX_MESSAGE_CHARS),
    });
    if limits.mode == Mode::Enforce {
        eval.outcome.merge(Outcome {
            decision: Some(Decision::Deny),
            reasons: vec![reason],
            ..Outcome::default()
        });
    }
}

/// Why a call to `server` is denied and how a person changes that.
fn deny_reason(server: &str, set: &limits::Allowed, enabled: usize, policy: &Limits) -> String {
    let max = policy.max_mcp_servers;
    let mode = limits::mode_name(policy.mode);
    let allowed = if set.allowed.is_empty() {
        String::from("none")
    } else {
        set.allowed.join(", ")
    };
    format!(
        "ctxopt: MCP server `{server}` is outside the allowed set: {enabled} servers are enabled and limits.max_mcp_servers is {max} (limits.mode \"{mode}\" in .claude/ctxopt.json). Allowed ({}): {allowed}. To use `{server}`, a person adds it to limits.mcp_priority or raises limits.max_mcp_servers in .claude/ctxopt.json, or frees a slot with `ctxopt mcp disable NAME` (or `ctxopt mcp optimize --apply`) and starts a new session.",
        limits::RULE
    )
}

/// The guard's last line, before a call that can change files: accept what a person changed
/// since the last call, and mark the call in flight ([`snapshot::before_call`]).
fn snapshot_before(
    input: &HookInput,
    call: &ToolCall,
    ctx: &Context,
    watched: Option<&(snapshot::Watch, snapshot::Scan)>,
    allowed: &[std::path::PathBuf],
    eval: &mut Evaluation,
) {
    let Some((watch, scan)) = watched else {
        return;
    };
    let the_call = snapshot::Call {
        session_id: &input.common.session_id,
        tool_use_id: call.tool_use_id.as_deref().unwrap_or(""),
        tool_name: &call.tool_name,
    };
    // No `ensure` of the data dir first: what `before_call_scanned` writes creates its
    // directory when missing.
    let result =
        snapshot::before_call_scanned(&ctx.data, watch, Some(scan), the_call, allowed, ctx.now)
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

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::config::discover::Locations;

    fn context(root: &Path, policy: &str) -> Context {
        let project = root.join("project");
        fs::create_dir_all(project.join(".claude")).unwrap();
        fs::write(project.join(".claude/ctxopt.json"), policy).unwrap();
        let ctx = Context::new(project, record::now(), None, Locations::empty_under(root));
        let enabled: Vec<String> = ["a", "b", "c", "my.server"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        limits::save_state(
            &ctx.data,
            &limits::AllowedState {
                schema_version: limits::STATE_VERSION,
                written_at: String::new(),
                session_id: String::from("s1"),
                enabled,
            },
        )
        .unwrap();
        ctx
    }

    fn call(tool: &str) -> ToolCall {
        ToolCall {
            tool_name: tool.to_owned(),
            tool_input: serde_json::json!({}),
            tool_use_id: None,
        }
    }

    fn run(ctx: &Context, tool: &str) -> Evaluation {
        let mut eval = Evaluation::default();
        mcp_server_limit(&call(tool), ctx, &mut eval);
        eval
    }

    const ENFORCE: &str =
        r#"{"limits":{"mode":"enforce","max_mcp_servers":2,"mcp_priority":["c"]}}"#;

    #[test]
    fn enforce_denies_a_server_outside_the_allowed_set() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(tmp.path(), ENFORCE);
        let eval = run(&ctx, "mcp__b__read");
        assert_eq!(eval.outcome.decision, Some(Decision::Deny));
        let reason = &eval.outcome.reasons[0];
        assert!(
            reason.contains("MCP server `b` is outside the allowed set"),
            "{reason}"
        );
        assert!(reason.contains("4 servers are enabled and limits.max_mcp_servers is 2"));
        assert!(reason.contains("): c, a. To use `b`"), "{reason}");
        assert!(reason.contains("ctxopt mcp disable NAME"));
        assert!(matches!(
            &eval.records[..],
            [Record::LimitViolation { limit, mode, .. }] if limit == "max_mcp_servers" && mode == "enforce"
        ));
        assert!(run(&ctx, "mcp__my_server__x").outcome.decision.is_some());
    }

    #[test]
    fn allowed_unknown_and_other_tools_pass() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(tmp.path(), ENFORCE);
        for tool in [
            "mcp__c__read",
            "mcp__a__x",
            "mcp__plugin_x_y__z",
            "Bash",
            "mcp__b",
        ] {
            let eval = run(&ctx, tool);
            assert_eq!(eval.outcome.decision, None, "{tool}");
            assert!(eval.records.is_empty(), "{tool}");
        }
    }

    #[test]
    fn warn_mode_records_only() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(tmp.path(), r#"{"limits":{"max_mcp_servers":2}}"#);
        let eval = run(&ctx, "mcp__c__read");
        assert_eq!(eval.outcome.decision, None);
        assert!(matches!(
            &eval.records[..],
            [Record::LimitViolation { mode, .. }] if mode == "warn"
        ));
    }

    #[test]
    fn no_state_file_fails_open() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(tmp.path(), ENFORCE);
        fs::remove_file(limits::state_path(&ctx.data)).unwrap();
        let eval = run(&ctx, "mcp__b__read");
        assert_eq!(eval.outcome.decision, None);
        assert!(eval.records.is_empty());
    }
}
