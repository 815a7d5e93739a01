//! Claude Code's hook wire format: the stdin JSON of each event and the stdout JSON reply.
//!
//! This is the only module that knows those shapes. Input is lenient — unknown fields are
//! ignored and unknown events are kept as [`Event::Other`], because Claude Code adds both every
//! release. Output is exact — a schema-invalid reply on exit 0 is silently ignored by the
//! client — so the reply types serialize to precisely the documented keys and nothing else.
//! Facts: `../shared/claude-code/PROTOCOL.md` §2–§3 and the captures beside it.

use std::io::Read;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest stdin a hook accepts. Claude Code puts a Write's whole `content` into the input, so
/// the cap is generous; beyond it the input is drained, recorded as a fault, and not parsed.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;

/// Claude Code caps every output string at this many characters (PROTOCOL.md §3.2).
pub const MAX_OUTPUT_CHARS: usize = 10_000;

/// Why a hook's stdin could not become a [`HookInput`].
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Reading stdin itself failed.
    #[error("failed to read hook input from stdin")]
    Read(#[source] std::io::Error),
    /// More than [`MAX_INPUT_BYTES`] arrived.
    #[error("hook input is larger than the {} MiB cap ({size} bytes read)", MAX_INPUT_BYTES / (1024 * 1024))]
    Oversize {
        /// Bytes read in total, the drained rest included.
        size: u64,
    },
    /// Stdin was empty.
    #[error("hook input is empty")]
    Empty,
    /// Not JSON, or not UTF-8.
    #[error("hook input is not valid JSON")]
    Syntax(#[source] serde_json::Error),
    /// A known field has the wrong JSON type.
    #[error("hook input has a field of the wrong type")]
    Type(#[source] serde_json::Error),
    /// JSON, but not the shape of the event it names.
    #[error("hook input for {event} lacks or mistypes `{field}`")]
    Shape {
        /// The event named by `hook_event_name`.
        event: String,
        /// The field that was missing or of the wrong type.
        field: &'static str,
    },
}

/// Reads at most [`MAX_INPUT_BYTES`] from `reader`; on overflow drains the rest (so the client
/// never sees a broken pipe) and reports its size.
pub fn read_capped(mut reader: impl Read) -> Result<Vec<u8>, InputError> {
    let mut buf = Vec::with_capacity(8 * 1024);
    let cap = u64::try_from(MAX_INPUT_BYTES).unwrap_or(u64::MAX);
    (&mut reader)
        .take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(InputError::Read)?;
    if buf.len() > MAX_INPUT_BYTES {
        let rest = std::io::copy(&mut reader, &mut std::io::sink()).unwrap_or(0);
        let size = u64::try_from(buf.len()).unwrap_or(u64::MAX) + rest;
        return Err(InputError::Oversize { size });
    }
    Ok(buf)
}

/// Fields every event carries (some optional on some events).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Common {
    /// The session's id; empty when the client sent none.
    #[serde(default)]
    pub session_id: String,
    /// The session transcript (JSON lines), written asynchronously by the client.
    #[serde(default)]
    pub transcript_path: Option<PathBuf>,
    /// The session's working directory.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// `default`, `acceptEdits`, `bypassPermissions`, … (not on every event).
    #[serde(default)]
    pub permission_mode: Option<String>,
    /// The event name exactly as the client sent it.
    #[serde(default)]
    pub hook_event_name: String,
}

/// One tool call, as PreToolUse, PostToolUse and PostToolUseFailure describe it.
#[derive(Debug, Clone)]
pub struct ToolCall {
    /// `Bash`, `Write`, `mcp__server__tool`, …
    pub tool_name: String,
    /// The tool's arguments, kept as JSON: each tool has its own shape.
    pub tool_input: Value,
    /// Pairs a PreToolUse with its PostToolUse(Failure); absent on clients before 2.0.43.
    pub tool_use_id: Option<String>,
}

/// The typed part of a hook input: one variant per event ctxopt acts on.
#[derive(Debug, Clone)]
pub enum Event {
    /// A session started, resumed, was cleared or compacted.
    SessionStart {
        /// `startup`, `resume`, `clear`, `compact`, `fork`.
        source: Option<String>,
        /// The model, when the client says.
        model: Option<String>,
    },
    /// Before a tool runs.
    PreToolUse(ToolCall),
    /// After a tool ran successfully.
    PostToolUse {
        /// The call.
        call: ToolCall,
        /// The tool's structured output.
        tool_response: Value,
        /// How long the tool ran, per the client (2.1.119+).
        duration_ms: Option<f64>,
    },
    /// After a tool failed (current clients fire only this, not PostToolUse, for a failure).
    PostToolUseFailure {
        /// The call.
        call: ToolCall,
        /// The failure text (`Exit code N\n…` for Bash).
        error: String,
        /// Whether the user interrupted it.
        is_interrupt: bool,
        /// How long the tool ran, per the client.
        duration_ms: Option<f64>,
    },
    /// A settings or skills file changed on disk during the session (clients 2.1.49+).
    ConfigChange {
        /// `user_settings`, `project_settings`, `local_settings`, `policy_settings`, `skills`.
        source: Option<String>,
        /// The file that changed, when the client says.
        file_path: Option<String>,
    },
    /// Any event ctxopt has no type for; tolerated, never an error.
    Other,
}

impl Event {
    /// The name Claude Code uses for this event.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::SessionStart { .. } => "SessionStart",
            Self::PreToolUse(_) => "PreToolUse",
            Self::PostToolUse { .. } => "PostToolUse",
            Self::PostToolUseFailure { .. } => "PostToolUseFailure",
            Self::ConfigChange { .. } => "ConfigChange",
            Self::Other => "Other",
        }
    }

    /// The tool call, for tool events.
    #[must_use]
    pub fn tool_call(&self) -> Option<&ToolCall> {
        match self {
            Self::PreToolUse(call)
            | Self::PostToolUse { call, .. }
            | Self::PostToolUseFailure { call, .. } => Some(call),
            Self::SessionStart { .. } | Self::ConfigChange { .. } | Self::Other => None,
        }
    }
}

/// A parsed hook input: the common fields and the typed event.
#[derive(Debug, Clone)]
pub struct HookInput {
    /// Fields shared by all events.
    pub common: Common,
    /// What happened.
    pub event: Event,
}

/// The input exactly as it may arrive: every field optional, so that one missing field is a
/// shape error with a name rather than an opaque serde message. [`Common`]'s fields are listed
/// here rather than `#[serde(flatten)]`ed: flattening makes serde buffer the whole input in an
/// intermediate tree first, on every hook run.
#[derive(Deserialize)]
struct RawInput {
    #[serde(default)]
    session_id: String,
    #[serde(default)]
    transcript_path: Option<PathBuf>,
    #[serde(default)]
    cwd: Option<PathBuf>,
    #[serde(default)]
    permission_mode: Option<String>,
    #[serde(default)]
    hook_event_name: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    tool_name: Option<String>,
    #[serde(default)]
    tool_input: Option<Value>,
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(default)]
    tool_response: Option<Value>,
    #[serde(default)]
    duration_ms: Option<f64>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    is_interrupt: Option<bool>,
    #[serde(default)]
    file_path: Option<String>,
}

impl HookInput {
    /// Parses stdin bytes. Unknown fields and events are accepted; a known event missing a
    /// field it cannot do without (`tool_name`, `tool_input`) is a [`InputError::Shape`].
    pub fn parse(bytes: &[u8]) -> Result<Self, InputError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(InputError::Empty);
        }
        // One pass from the bytes into the typed fields. Errors are classified as before: a
        // syntax error anywhere in the input is `Syntax` (checked again on a data error, which
        // serde may meet first), valid JSON that is not an object is `Shape`, a field of the
        // wrong type is `Type`.
        match serde_json::from_slice::<RawInput>(bytes) {
            Ok(raw) => raw.into_typed(),
            Err(err) if err.is_syntax() || err.is_eof() => Err(InputError::Syntax(err)),
            Err(err) => {
                if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                    return Err(InputError::Syntax(syntax));
                }
                let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
                if first != Some(&b'{') {
                    return Err(InputError::Shape {
                        event: String::from("(none)"),
                        field: "hook_event_name",
                    });
                }
                Err(InputError::Type(err))
            }
        }
    }
}

impl RawInput {
    fn into_typed(mut self) -> Result<HookInput, InputError> {
        let common = Common {
            session_id: std::mem::take(&mut self.session_id),
            transcript_path: self.transcript_path.take(),
            cwd: self.cwd.take(),
            permission_mode: self.permission_mode.take(),
            hook_event_name: std::mem::take(&mut self.hook_event_name),
        };
        let shape = |field| InputError::Shape {
            event: common.hook_event_name.clone(),
            field,
        };
        let (tool_name, tool_input, tool_use_id) = (
            self.tool_name.take(),
            self.tool_input.take(),
            self.tool_use_id.take(),
        );
        let call = || -> Result<ToolCall, InputError> {
            Ok(ToolCall {
                tool_name: tool_name.ok_or_else(|| shape("tool_name"))?,
                tool_input: tool_input.ok_or_else(|| shape("tool_input"))?,
                tool_use_id,
            })
        };
        let event = match common.hook_event_name.as_str() {
            "SessionStart" => Event::SessionStart {
                source: self.source,
                model: self.model,
            },
            "PreToolUse" => Event::PreToolUse(call()?),
            "PostToolUse" => Event::PostToolUse {
                call: call()?,
                tool_response: self.tool_response.unwrap_or(Value::Null),
                duration_ms: self.duration_ms,
            },
            "PostToolUseFailure" => Event::PostToolUseFailure {
                call: call()?,
                error: self.error.unwrap_or_default(),
                is_interrupt: self.is_interrupt.unwrap_or(false),
                duration_ms: self.duration_ms,
            },
            "ConfigChange" => Event::ConfigChange {
                source: self.source,
                file_path: self.file_path,
            },
            "" => return Err(shape("hook_event_name")),
            _ => Event::Other,
        };
        Ok(HookInput { common, event })
    }
}

/// Whether a successful tool's structured response still reports a failure.
///
/// PostToolUse fires only for calls the client counts as successful, but some tools report
/// their own failure inside the response (`success: false`, `interrupted: true`,
/// `is_error: true`).
#[must_use]
pub fn response_succeeded(response: &Value) -> bool {
    let flag = |key: &str| response.get(key).and_then(Value::as_bool);
    !(flag("success") == Some(false)
        || flag("interrupted") == Some(true)
        || flag("is_error") == Some(true))
}

/// A permission decision of PreToolUse, in merge order: `Deny` beats `Ask` beats `Allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Let the call through without a prompt (settings deny rules still apply).
    Allow,
    /// Ask the user.
    Ask,
    /// Refuse the call; the reason goes to the model.
    Deny,
}

/// The stdout reply. Serializes to exactly the documented keys; absent parts are omitted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HookOutput {
    /// Top-level `"block"` (ConfigChange and the other events that read a top-level decision).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<&'static str>,
    /// Why, with [`HookOutput::decision`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A warning shown to the user.
    #[serde(rename = "systemMessage", skip_serializing_if = "Option::is_none")]
    pub system_message: Option<String>,
    /// The event-specific part.
    #[serde(rename = "hookSpecificOutput", skip_serializing_if = "Option::is_none")]
    pub hook_specific_output: Option<HookSpecificOutput>,
}

/// `hookSpecificOutput`, tagged by `hookEventName` as the client requires.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "hookEventName")]
pub enum HookSpecificOutput {
    /// Context for the model at session start.
    SessionStart {
        /// Added to the model's context.
        #[serde(rename = "additionalContext")]
        additional_context: String,
    },
    /// A permission decision and/or context before a tool runs.
    PreToolUse {
        /// allow, ask or deny.
        #[serde(rename = "permissionDecision", skip_serializing_if = "Option::is_none")]
        permission_decision: Option<Decision>,
        /// Shown to the model on deny, to the user on allow/ask.
        #[serde(
            rename = "permissionDecisionReason",
            skip_serializing_if = "Option::is_none"
        )]
        permission_decision_reason: Option<String>,
        /// Added next to the tool result.
        #[serde(rename = "additionalContext", skip_serializing_if = "Option::is_none")]
        additional_context: Option<String>,
    },
    /// Context after a tool ran.
    PostToolUse {
        /// Added next to the tool result.
        #[serde(rename = "additionalContext")]
        additional_context: String,
    },
    /// Context after a tool failed.
    PostToolUseFailure {
        /// Added next to the tool result.
        #[serde(rename = "additionalContext")]
        additional_context: String,
    },
}

impl HookOutput {
    /// The reply as one line of compact JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parsing goes from the bytes in one pass; the errors are told apart as when the input
    /// was parsed into a tree first.
    #[test]
    fn input_errors_are_classified() {
        let kind = |text: &str| match HookInput::parse(text.as_bytes()) {
            Ok(_) => "ok",
            Err(InputError::Empty) => "empty",
            Err(InputError::Syntax(_)) => "syntax",
            Err(InputError::Type(_)) => "type",
            Err(InputError::Shape { .. }) => "shape",
            Err(_) => "other",
        };
        for (text, expected) in [
            ("  \n", "empty"),
            ("{", "syntax"),
            (r#"{"session_id": 42, "x": }"#, "syntax"),
            (r#"{"session_id": 42}"#, "type"),
            ("[1, 2]", "shape"),
            ("17", "shape"),
            (r#"{"hook_event_name": "PreToolUse"}"#, "shape"),
            (
                r#"{"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {}}"#,
                "ok",
            ),
            (
                r#"{"hook_event_name": "Stop", "extra": [1, {"a": null}]}"#,
                "ok",
            ),
        ] {
            assert_eq!(kind(text), expected, "{text}");
        }
    }

    const CAPTURED: &str = include_str!("../../fixtures/hooks/PostToolUse/bash.json");

    #[test]
    fn parses_captured_post_tool_use() {
        let input = HookInput::parse(CAPTURED.as_bytes()).unwrap();
        let Event::PostToolUse {
            call, duration_ms, ..
        } = &input.event
        else {
            panic!("wrong event {:?}", input.event);
        };
        assert_eq!(call.tool_name, "Bash");
        assert_eq!(call.tool_use_id.as_deref(), Some("toolu_0001"));
        assert_eq!(*duration_ms, Some(39.0));
    }

    #[test]
    fn unknown_event_and_fields_are_tolerated() {
        let input =
            HookInput::parse(br#"{"hook_event_name":"Stop","session_id":"s","new":1}"#).unwrap();
        assert!(matches!(input.event, Event::Other));
        assert_eq!(input.common.session_id, "s");
    }

    #[test]
    fn tool_event_without_tool_name_is_a_shape_error() {
        let err =
            HookInput::parse(br#"{"hook_event_name":"PreToolUse","tool_input":{}}"#).unwrap_err();
        assert!(
            matches!(
                err,
                InputError::Shape {
                    field: "tool_name",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn empty_and_non_object_inputs_are_errors() {
        assert!(matches!(HookInput::parse(b" \n"), Err(InputError::Empty)));
        assert!(matches!(
            HookInput::parse(b"[1]"),
            Err(InputError::Shape { .. })
        ));
        assert!(matches!(HookInput::parse(b"{"), Err(InputError::Syntax(_))));
        assert!(matches!(
            HookInput::parse(b"{\"session_id\":\"\xff\"}"),
            Err(InputError::Syntax(_))
        ));
    }

    #[test]
    fn read_capped_drains_and_reports_oversize() {
        let big = vec![b' '; MAX_INPUT_BYTES + 10];
        let err = read_capped(big.as_slice()).unwrap_err();
        assert!(matches!(err, InputError::Oversize { size } if size == big.len() as u64));
    }

    #[test]
    fn pre_tool_use_deny_serializes_exactly() {
        let out = HookOutput {
            hook_specific_output: Some(HookSpecificOutput::PreToolUse {
                permission_decision: Some(Decision::Deny),
                permission_decision_reason: Some(String::from("no")),
                additional_context: None,
            }),
            ..HookOutput::default()
        };
        assert_eq!(
            out.to_json(),
            r#"{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"no"}}"#
        );
    }

    #[test]
    fn session_start_context_and_message_serialize_exactly() {
        let out = HookOutput {
            system_message: Some(String::from("warn")),
            hook_specific_output: Some(HookSpecificOutput::SessionStart {
                additional_context: String::from("ctx"),
            }),
            ..HookOutput::default()
        };
        assert_eq!(
            out.to_json(),
            r#"{"systemMessage":"warn","hookSpecificOutput":{"hookEventName":"SessionStart","additionalContext":"ctx"}}"#
        );
    }

    #[test]
    fn response_success_flags() {
        assert!(response_succeeded(
            &serde_json::json!({"stdout":"x","interrupted":false})
        ));
        assert!(!response_succeeded(&serde_json::json!({"success":false})));
        assert!(!response_succeeded(
            &serde_json::json!({"interrupted":true})
        ));
    }
}
