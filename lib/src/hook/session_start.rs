//! SessionStart: runs once per session start, resume, clear or compact. Fails open. Records a
//! `session_start` record, checks the project's and the user's config files (issue 3: an
//! invalid file is a `Critical` record and a `systemMessage` with the command that restores
//! it; a valid one refreshes its last-known-good copy; a change made outside ctxopt is a
//! `drift` entry in `audit.log`), and runs the cheap retention check (R2.5), which starts a
//! detached `ctxopt prune` when the oldest record of a data file is past its retention.
//!
//! It also makes the guard's accepted state of the protected files current
//! ([`snapshot::accept_changes`]): what a person changed between sessions is the new state the
//! repair restores to.
//!
//! The config check goes through [`lastgood`]'s cache: with nothing changed it costs a `stat`
//! per file (and one per last-known-good copy), no read, no hash, no schema. Discovery runs
//! once ([`discover::discover_stat`]): the config check reuses each file's `stat`, and the
//! budget step the skills listings; the budget's listing memo (`state/budget-listing.json`,
//! [`limits::load_memo`]) spares it reading unchanged skill, command and agent files and an
//! unchanged `~/.claude.json`.
//!
//! **The context budget** (R5, [`limits`]): the estimate of what enters the context (budget
//! discovery, tool sizes from the MCP cache — no server is started —, the learned overhead) is
//! recorded as `token_consumption` (estimated, per component) and kept for the session
//! ([`transcript::record_estimate`]); over `limits.initial_tokens_warning` (or `_critical`)
//! a `limit_violation` and `Alert-S-001`, over `limits.max_mcp_servers` a `limit_violation`,
//! each with a `systemMessage` naming what to change and the command. The enabled servers go
//! to `state/mcp-allowed.json` for PreToolUse's server limit. A failure here is a fault of
//! its own (`Medium` for the state file, `Low` for the estimate's state); the rest runs on.

use super::{Context, Evaluation, Fault};
use crate::budget::discover::Known;
use crate::budget::estimate::overhead_variant;
use crate::budget::{limits, transcript};
use crate::config::discover::{self, Found, SkillsDir};
use crate::config::{CheckContext, lastgood};
use crate::guard::snapshot;
use crate::policy::Limits;
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
    let found = discover::discover_stat(&ctx.project, &ctx.locations);
    check_config(input, ctx, &found.files, &mut eval);
    let watch = snapshot::Watch::for_project(&ctx.project, &ctx.locations);
    if let Err(err) = ctx.data.ensure().and_then(|()| {
        snapshot::accept_changes(
            &ctx.data,
            &watch,
            Some(&input.common.session_id),
            ctx.now,
            false,
        )
    }) {
        eval.faults.push(Fault {
            severity: Severity::Medium,
            error: Box::new(err),
        });
    }
    let (policy, policy_error) = ctx.policy();
    if let Some(message) = policy_error {
        eval.faults.push(Fault {
            severity: Severity::Medium,
            error: format!("{message} (defaults apply)").into(),
        });
    }
    check_budget(input, ctx, &policy.limits, &found.skills, &mut eval);
    if let Err(err) = retention::check_at_session_start(ctx, &policy.retention) {
        eval.faults.push(Fault {
            severity: Severity::Low,
            error: Box::new(err),
        });
    }
    // The hourly backup (runbook P0-002): a detached `ctxopt backup create` when the newest
    // archive is an hour old or a restore was interrupted.
    if let Err(err) = crate::backup::check_at_session_start(ctx) {
        eval.faults.push(Fault {
            severity: Severity::Low,
            error: Box::new(err),
        });
    }
    eval
}

/// Validates the config files through the cache and reports the invalid ones.
fn check_config(input: &HookInput, ctx: &Context, files: &[Found], eval: &mut Evaluation) {
    let check_ctx = CheckContext {
        project: ctx.project.clone(),
        home: ctx.locations.home.clone(),
    };
    let check = lastgood::check_found_at_session_start(
        files,
        &check_ctx,
        &ctx.data,
        &input.common.session_id,
        ctx.now,
    );
    eval.records.extend(check.records);
    eval.outcome.system_messages.extend(check.system_message);
    for err in check.faults {
        eval.faults.push(Fault {
            severity: err.severity(),
            error: Box::new(err),
        });
    }
}

/// The context budget: estimate, record, compare with the limits, keep the allowed set.
fn check_budget(
    input: &HookInput,
    ctx: &Context,
    limits: &Limits,
    skills: &[SkillsDir],
    eval: &mut Evaluation,
) {
    let no_env = |_: &str| None;
    let now_ns = lastgood::now_ns(ctx.now);
    let (mut memo, saved_ns) = limits::load_memo(&ctx.data);
    let mut known = Known {
        skills,
        memo: Some(&mut memo),
        now_ns,
    };
    let budget = limits::budget_known(&ctx.project, &ctx.locations, &ctx.data, &no_env, &mut known);
    if let Err(err) = limits::save_memo(&ctx.data, &memo, saved_ns, now_ns) {
        eval.faults.push(Fault {
            severity: Severity::Low,
            error: Box::new(err),
        });
    }
    let servers = &budget.discovery.inventory.mcp_servers;
    let found = limits::check(&budget.estimate, servers, limits);
    eval.records.extend(found.records);
    eval.outcome.system_messages.extend(found.system_message);
    let session = &input.common.session_id;
    let state = limits::state_for(servers, session, ctx.now);
    if let Err(err) = limits::save_state_if_changed(&ctx.data, &state, now_ns) {
        eval.faults.push(Fault {
            severity: Severity::Medium,
            error: Box::new(err),
        });
    }
    let any_mcp = servers.iter().any(|s| s.enabled);
    let variant = overhead_variant(budget.estimate.tool_search.names_only, any_mcp);
    if let Err(err) = transcript::record_estimate(
        &ctx.data,
        session,
        budget.estimate.total_tokens,
        budget.estimate.visible_tokens(),
        &variant,
    ) {
        eval.faults.push(Fault {
            severity: Severity::Low,
            error: Box::new(err),
        });
    }
    if let Some(note) = budget.overhead_note {
        eval.faults.push(Fault {
            severity: Severity::Low,
            error: format!("{note} (the default overhead was used)").into(),
        });
    }
}
