//! PostToolUse and PostToolUseFailure: runs after every tool call. Fails open. Records the
//! call as a `tool_use` record: the tool, its `tool_use_id`, success, the client's
//! `duration_ms`, and what a query needs of the input (a path, a short command prefix, an
//! error's first line) — never the tool's input or output as such.
//!
//! Then the guard's last line ([`snapshot::after_call`]): a protected file the call changed is
//! restored from its copy, the changed version kept in `quarantine/`, the repair audited, and
//! the model (`additionalContext`) and the user (`systemMessage`) told. Claude Code's own
//! writes are reported to the user only.
//!
//! Until the session's initial tokens are measured, each run reads on in the transcript
//! ([`transcript::measure_session`]); the run that finds them writes a `token_consumption`
//! record (`source: "measured"`) and teaches the estimator the client's overhead
//! ([`OverheadStore::learn`]). A fault there is `Low`: the next run tries again.

use serde_json::Value;

use std::path::Path;

use super::{Context, Evaluation, Fault};
use crate::budget::estimate::OverheadStore;
use crate::budget::transcript;
use crate::config::lastgood;
use crate::guard::paths::Protected;
use crate::guard::snapshot::{self, ChangeKind};
use crate::policy::Mode;
use crate::protocol::{self, Event, HookInput, ToolCall};
use crate::record::{self, Severity, TokenSource};
use crate::record::{MAX_COMMAND_CHARS, MAX_ERROR_CHARS, MAX_MESSAGE_CHARS, Record, Text};

/// Evaluates a PostToolUse or PostToolUseFailure input.
#[must_use]
pub fn evaluate(input: &HookInput, ctx: &Context) -> Evaluation {
    let record = match &input.event {
        Event::PostToolUse {
            call,
            tool_response,
            duration_ms,
        } => tool_use(
            call,
            protocol::response_succeeded(tool_response),
            *duration_ms,
            None,
            false,
        ),
        Event::PostToolUseFailure {
            call,
            error,
            is_interrupt,
            duration_ms,
        } => tool_use(call, false, *duration_ms, Some(error), *is_interrupt),
        _ => return Evaluation::default(),
    };
    let mut record = record;
    if let (Record::ToolUse { context_tokens, .. }, Some(path)) =
        (&mut record, &input.common.transcript_path)
    {
        *context_tokens = transcript::current_context(path).ok().flatten();
    }
    let mut eval = Evaluation {
        records: vec![record],
        ..Evaluation::default()
    };
    if let Some(call) = input.event.tool_call() {
        repair(input, call, ctx, &mut eval);
    }
    if let Some(path) = &input.common.transcript_path {
        measure(&input.common.session_id, path, ctx, &mut eval);
    }
    eval
}

/// One step of measuring the session's initial tokens; when found, a `token_consumption`
/// record and one sample for the learned overhead (when SessionStart left its estimate and the
/// transcript names the client version).
fn measure(session_id: &str, transcript_path: &Path, ctx: &Context, eval: &mut Evaluation) {
    if matches!(ctx.initial_tokens, Some((_, TokenSource::Measured))) {
        return;
    }
    let low = |error: Box<dyn std::error::Error + Send + Sync>| Fault {
        severity: Severity::Low,
        error,
    };
    let found = match transcript::measure_session(&ctx.data, session_id, transcript_path) {
        Ok(Some(found)) => found,
        Ok(None) => return,
        Err(err) => {
            eval.faults.push(low(Box::new(err)));
            return;
        }
    };
    eval.records.push(Record::TokenConsumption {
        tokens: found.tokens,
        source: TokenSource::Measured,
        components: None,
    });
    let (Some(version), Some(variant), Some(visible)) =
        (&found.client_version, &found.variant, found.visible_tokens)
    else {
        return;
    };
    let learned = OverheadStore::load(&ctx.data)
        .map_err(|err| low(Box::new(err)))
        .and_then(|mut store| {
            store.learn(
                version,
                variant,
                found.tokens,
                visible,
                &record::timestamp(ctx.now),
            );
            store.save(&ctx.data).map_err(|err| low(Box::new(err)))
        });
    if let Err(fault) = learned {
        eval.faults.push(fault);
    }
}

/// The guard's last line, after the call: a protected file the call changed is restored and
/// the model and the user are told ([`snapshot::after_call`]).
fn repair(input: &HookInput, call: &ToolCall, ctx: &Context, eval: &mut Evaluation) {
    if !snapshot::can_change_files(&call.tool_name) {
        return;
    }
    let watch = snapshot::Watch::for_project(&ctx.project, &ctx.locations);
    let the_call = snapshot::Call {
        session_id: &input.common.session_id,
        tool_use_id: call.tool_use_id.as_deref().unwrap_or(""),
        tool_name: &call.tool_name,
    };
    let enforce = || ctx.policy().0.guard.mode == Mode::Enforce;
    let repair = snapshot::after_call(&ctx.data, &watch, the_call, ctx.now, &enforce);
    for err in repair.errors {
        eval.faults.push(Fault {
            severity: Severity::High,
            error: Box::new(err),
        });
    }
    if repair.changes.is_empty() {
        return;
    }
    let protected = Protected::for_project(&ctx.project, &ctx.locations);
    let show = |path: &Path| match path.strip_prefix(&ctx.project) {
        Ok(rel) => rel.display().to_string(),
        Err(_) => lastgood::shell_path(path, &ctx.locations.home),
    };
    let tool = &call.tool_name;
    for change in &repair.changes {
        let name = show(&change.path);
        let (what, how) = protected.check(&change.path).map_or_else(
            || {
                (
                    String::from("a protected file"),
                    String::from("A person changes it by hand outside the agent"),
                )
            },
            |p| (p.what, p.how_to_change),
        );
        let kept = change
            .quarantined
            .as_deref()
            .map(|q| format!(" The changed version is kept as {}.", show(q)))
            .unwrap_or_default();
        let person = format!("the agent may not change {what}. {how}.");
        let (context, message) = match &change.kind {
            ChangeKind::Restored => (
                Some(format!(
                    "ctxopt restored {name}: it was changed during this {tool} call; {person}{kept}"
                )),
                format!(
                    "ctxopt: the agent's {tool} call changed {name}; ctxopt restored it.{kept}"
                ),
            ),
            ChangeKind::Recreated => (
                Some(format!(
                    "ctxopt restored {name}: it was deleted during this {tool} call; {person}"
                )),
                format!("ctxopt: the agent's {tool} call deleted {name}; ctxopt restored it."),
            ),
            ChangeKind::Removed => (
                Some(format!(
                    "ctxopt removed {name}: it was created during this {tool} call in a protected place; {person}{kept}"
                )),
                format!(
                    "ctxopt: the agent's {tool} call created {name} in a protected place; ctxopt removed it.{kept}"
                ),
            ),
            ChangeKind::Unrepairable(why) => (
                Some(format!(
                    "{name} was changed during this {tool} call, and ctxopt could not restore it ({why}); {person}"
                )),
                format!(
                    "ctxopt: the agent's {tool} call changed {name}, and ctxopt could not restore it ({why}); check it by hand."
                ),
            ),
            ChangeKind::ClientWrite(what) if change.path.ends_with(".claude.json") => (
                None,
                format!(
                    "ctxopt: the MCP servers in {name} changed during the agent's {tool} call; the file is Claude Code's own, so it is kept. Check them with `claude mcp list`."
                ),
            ),
            ChangeKind::ClientWrite(what) => (
                None,
                format!("ctxopt: {what} to {name} during the agent's {tool} call; kept (audited)."),
            ),
            ChangeKind::Allowed => continue,
        };
        eval.outcome.context.extend(context);
        eval.outcome.system_messages.push(message);
    }
}

fn tool_use(
    call: &ToolCall,
    success: bool,
    duration_ms: Option<f64>,
    error: Option<&str>,
    interrupted: bool,
) -> Record {
    let input = &call.tool_input;
    let field = |key: &str| input.get(key).and_then(Value::as_str);
    let path = field("file_path")
        .or_else(|| field("notebook_path"))
        .or_else(|| field("path"));
    let command = (call.tool_name == "Bash")
        .then(|| field("command"))
        .flatten();
    Record::ToolUse {
        tool_name: call.tool_name.clone(),
        tool_use_id: call.tool_use_id.clone(),
        success,
        duration_ms,
        path: path.map(|p| Text::new(p, MAX_MESSAGE_CHARS)),
        command: command.map(|c| Text::new(c, MAX_COMMAND_CHARS)),
        error: error.map(|e| Text::new(e, MAX_ERROR_CHARS)),
        interrupted,
        context_tokens: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook::Context;

    fn eval(json: &str) -> Record {
        let input = HookInput::parse(json.as_bytes()).unwrap();
        let ctx = Context::new(
            "/p".into(),
            chrono::Utc::now(),
            None,
            crate::config::discover::Locations::empty_under(std::path::Path::new("/nonexistent")),
        );
        evaluate(&input, &ctx).records.remove(0)
    }

    #[test]
    fn failure_records_first_error_line_only() {
        let r = eval(include_str!(
            "../../../fixtures/hooks/PostToolUseFailure/bash-exit-3.json"
        ));
        let Record::ToolUse {
            success,
            error,
            command,
            ..
        } = r
        else {
            panic!()
        };
        assert!(!success);
        assert_eq!(error.unwrap().as_str(), "Exit code 3");
        assert_eq!(command.unwrap().as_str(), "echo out; echo err >&2; exit 3");
    }

    #[test]
    fn secrets_in_commands_are_masked() {
        let r = eval(include_str!(
            "../../../fixtures/hooks/PostToolUse/bash-with-secret.json"
        ));
        let Record::ToolUse { command, .. } = r else {
            panic!()
        };
        let c = command.unwrap();
        assert!(!c.as_str().contains("sk-ant"), "{}", c.as_str());
    }

    #[test]
    fn write_records_its_path_not_its_content() {
        let r = eval(include_str!(
            "../../../fixtures/hooks/PostToolUse/write.json"
        ));
        let Record::ToolUse {
            path,
            success,
            command,
            ..
        } = r
        else {
            panic!()
        };
        assert!(success);
        assert_eq!(path.unwrap().as_str(), "/home/dev/proj/notes.txt");
        assert!(command.is_none());
    }
}
