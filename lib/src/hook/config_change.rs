//! ConfigChange: Claude Code reports that a settings or skills file changed on disk while the
//! session runs (clients 2.1.49+). `ctxopt-pre-tool-use` answers it when `ctxopt install
//! --config-change` registered it. The guard's second line (issue 4, item 1), behind the
//! snapshot's repair:
//!
//! - a change to a protected file made while one of this session's tool calls is in flight
//!   ([`snapshot::in_flight`]: a fresh snapshot whose `stat` of the file differs from now) is
//!   **blocked**, so the running session does not load what the agent wrote; PostToolUse then
//!   restores the file. The reply is `{"decision":"block","reason":…}` on exit 0: PROTOCOL.md
//!   §3.2 lists ConfigChange among the events that read a top-level `decision` (exit 2 blocks
//!   as well, but the JSON form carries the reason and is what the other hooks use). The block
//!   is audited (actor `agent`, action `deny`). Not blocked, whatever the timing: Claude Code's
//!   own writes ([`snapshot::is_client_write`]: `~/.claude.json`, an approval written to
//!   `.claude/settings.local.json`) and `policy_settings`, which the client never lets a hook
//!   block.
//! - any other change is allowed and audited (actor `user`, action `config-change`, hashes of
//!   the last-known-good copy and of the file now), unless the file equals its copy — the
//!   usual case right after ctxopt's own repair or restore, which is not a person's change.
//!
//! Failure policy: **fails open** (an observer; the snapshot's repair is the line that
//! holds): a fault is recorded and the change goes through. The user never sees a
//! `systemMessage` here: the client discards it for ConfigChange.

use std::path::{Path, PathBuf};

use super::{Context, Evaluation, Fault};
use crate::config::lastgood::sha256_hex;
use crate::guard::paths::{self, Protected};
use crate::guard::{self, snapshot};
use crate::outcome::Outcome;
use crate::protocol::{Decision, Event, HookInput};
use crate::record::{self, Actor, AuditEntry, Severity, Text};
use crate::store;

/// The ConfigChange source the client never lets a hook block.
const UNBLOCKABLE_SOURCE: &str = "policy_settings";

/// A call of the session in flight while the change was made.
struct InFlight {
    tool_use_id: String,
    tool_name: String,
}

/// Evaluates a ConfigChange input.
#[must_use]
pub fn evaluate(input: &HookInput, ctx: &Context) -> Evaluation {
    let mut eval = Evaluation::default();
    let Event::ConfigChange { source, file_path } = &input.event else {
        return eval;
    };
    let Some(raw) = file_path.as_deref() else {
        return eval;
    };
    let source = source.as_deref().unwrap_or("");
    let session = &input.common.session_id;
    let anchors = guard::anchors(
        input.common.cwd.as_deref(),
        &ctx.locations.home,
        &ctx.project,
    );
    let path = paths::normalize_literal(raw, &anchors).unwrap_or_else(|| PathBuf::from(raw));
    let watch = snapshot::Watch::for_project(&ctx.project, &ctx.locations);
    if watch.role_of(&path).is_none() {
        return eval;
    }
    let current = std::fs::read(&path).ok().map(|b| sha256_hex(&b));
    let copy = snapshot::accepted_sha256(&ctx.data, &path);
    if copy.is_some() && copy == current {
        // The usual case right after ctxopt's own repair or restore.
        return eval;
    }
    let flight = (source != UNBLOCKABLE_SOURCE)
        .then(|| {
            snapshot::in_flight(&ctx.data, session, None)
                .into_iter()
                .next()
        })
        .flatten()
        .map(|(tool_use_id, tool_name)| InFlight {
            tool_use_id,
            tool_name,
        })
        .filter(|_| !snapshot::is_client_write(&ctx.data, &watch, &path));
    let entry = if let Some(flight) = flight {
        let shown = display(ctx, &path);
        let protected = Protected::for_project(&ctx.project, &ctx.locations);
        let how = protected.check(&path).map_or_else(
            || String::from("change it by hand outside the agent"),
            |p| p.how_to_change.trim_end_matches('.').to_owned(),
        );
        eval.outcome = Outcome {
            decision: Some(Decision::Deny),
            reasons: vec![format!(
                "ctxopt blocked this change to {shown}: it was made while the agent's {} call \
                 was running, and protected files are changed by a person outside the agent \
                 ({how}). ctxopt restores the file when the call ends.",
                flight.tool_name
            )],
            ..Outcome::default()
        };
        blocked(&path, current, session, source, &flight)
    } else {
        allowed(&path, copy, current, session, source)
    };
    let line = entry.line(ctx.now);
    if let Err(err) = ctx
        .data
        .ensure()
        .and_then(|()| store::append(&ctx.data.audit_log(), line.as_bytes()))
    {
        eval.faults.push(Fault {
            severity: Severity::Medium,
            error: Box::new(err),
        });
    }
    eval
}

fn blocked(
    path: &Path,
    current: Option<String>,
    session: &str,
    source: &str,
    flight: &InFlight,
) -> AuditEntry {
    AuditEntry {
        actor: Actor::Agent,
        action: String::from("deny"),
        path: path.to_string_lossy().into_owned(),
        sha256_before: None,
        sha256_after: current,
        session_id: non_empty(session),
        tool: Some(flight.tool_name.clone()),
        detail: Some(Text::new(
            &format!(
                "ConfigChange ({source}) blocked: the file changed during {} call {}",
                flight.tool_name, flight.tool_use_id
            ),
            record::MAX_MESSAGE_CHARS,
        )),
    }
}

fn allowed(
    path: &Path,
    copy: Option<String>,
    current: Option<String>,
    session: &str,
    source: &str,
) -> AuditEntry {
    AuditEntry {
        actor: Actor::User,
        action: String::from("config-change"),
        path: path.to_string_lossy().into_owned(),
        sha256_before: copy,
        sha256_after: current,
        session_id: non_empty(session),
        tool: None,
        detail: Some(Text::new(
            &format!(
                "Claude Code reported a change ({source}) while no tool call of the agent was \
                 running; before is the last-known-good copy"
            ),
            record::MAX_MESSAGE_CHARS,
        )),
    }
}

fn display(ctx: &Context, path: &Path) -> String {
    let projects: [PathBuf; 2] = [
        ctx.project.clone(),
        std::fs::canonicalize(&ctx.project).unwrap_or_else(|_| ctx.project.clone()),
    ];
    for project in &projects {
        if let Ok(rel) = path.strip_prefix(project)
            && !rel.as_os_str().is_empty()
        {
            return rel.display().to_string();
        }
    }
    crate::config::lastgood::display(
        path,
        &crate::config::CheckContext {
            project: ctx.project.clone(),
            home: ctx.locations.home.clone(),
        },
    )
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::discover::Locations;
    use crate::store::Durability;
    use std::fs;

    fn context(root: &Path) -> Context {
        let project = root.join("project");
        fs::create_dir_all(project.join(".claude")).unwrap();
        Context::new(
            project,
            record::now(),
            None,
            Locations {
                home: root.join("home"),
                claude_config_dir: None,
                managed_dir: root.join("managed"),
            },
        )
    }

    fn input(event: &str, path: &Path) -> HookInput {
        let text = serde_json::json!({
            "session_id": "s1", "hook_event_name": event, "source": "project_settings",
            "file_path": path, "tool_name": "Bash", "tool_input": {"command": "x"},
            "tool_use_id": "toolu_1", "permission_mode": "default"
        });
        HookInput::parse(text.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn blocks_a_change_during_a_call_and_allows_one_after() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = context(&fs::canonicalize(tmp.path()).unwrap());
        let settings = ctx.project.join(".claude/settings.json");
        fs::write(&settings, "{}").unwrap();
        ctx.data.ensure().unwrap();
        let watch = snapshot::Watch::for_project(&ctx.project, &ctx.locations);
        let call = snapshot::Call {
            session_id: "s1",
            tool_use_id: "toolu_1",
            tool_name: "Bash",
        };
        snapshot::before_call(&ctx.data, &watch, call, &[], ctx.now).unwrap();
        store::write_atomic(&settings, b"{\"x\":1}", 0o644, Durability::NoFsync).unwrap();
        let change = input("ConfigChange", &settings);
        let eval = evaluate(&change, &ctx);
        assert_eq!(eval.outcome.decision, Some(Decision::Deny));
        let out = eval.outcome.into_output(&change.event).unwrap().to_json();
        assert!(
            out.starts_with(
                r#"{"decision":"block","reason":"ctxopt blocked this change to .claude/settings.json: it was made while the agent's Bash call was running"#
            ),
            "{out}"
        );
        let repair = snapshot::after_call(&ctx.data, &watch, call, ctx.now, &|| true);
        assert_eq!(repair.changes.len(), 1, "{repair:?}");
        assert_eq!(fs::read_to_string(&settings).unwrap(), "{}");
        let eval = evaluate(&change, &ctx);
        assert_eq!(
            eval.outcome.decision, None,
            "equal to its copy: nothing to say"
        );
        fs::write(&settings, "{\"y\":2}").unwrap();
        let eval = evaluate(&change, &ctx);
        assert_eq!(eval.outcome.decision, None, "no call in flight");
        let audit = fs::read_to_string(ctx.data.audit_log()).unwrap();
        let actions: Vec<String> = audit
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["action"].to_string())
            .collect();
        assert_eq!(actions, ["\"deny\"", "\"repair\"", "\"config-change\""]);
    }
}
