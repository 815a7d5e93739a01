//! PostToolUse and PostToolUseFailure: runs after every tool call. Fails open. Records the
//! call as a `tool_use` record: the tool, its `tool_use_id`, success, the client's
//! `duration_ms`, and what a query needs of the input (a path, a short command prefix, an
//! error's first line) — never the tool's input or output as such.

use serde_json::Value;

use super::{Context, Evaluation};
use crate::protocol::{self, Event, HookInput, ToolCall};
use crate::record::{MAX_COMMAND_CHARS, MAX_ERROR_CHARS, MAX_MESSAGE_CHARS, Record, Text};

/// Evaluates a PostToolUse or PostToolUseFailure input.
#[must_use]
pub fn evaluate(input: &HookInput, _ctx: &Context) -> Evaluation {
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
    Evaluation {
        records: vec![record],
        ..Evaluation::default()
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
