//! The metrics record: one envelope, a closed set of types, one writer.
//!
//! Every line of `metrics.jsonl` — from every hook binary and from the CLI — is produced by
//! [`Envelope::line`], so the pinned contract (ARCHITECTURE.md, "Record envelope") holds in one
//! place: field names as the runbook's jq pipelines read them, compact JSON, RFC 3339 UTC
//! timestamps with milliseconds. Free text only enters a record as [`Text`], which is masked
//! and trimmed when built, so a raw tool input or output cannot be stored by accident.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::protocol::Decision;
use crate::redact;

/// Version of the record layout; bumped when a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

/// Longest stored error line (a query needs the first line, not the output).
pub const MAX_ERROR_CHARS: usize = 200;
/// Longest stored command prefix.
pub const MAX_COMMAND_CHARS: usize = 80;
/// Longest stored path or message.
pub const MAX_MESSAGE_CHARS: usize = 500;
/// Longest stored stack (an error's cause chain on one line).
pub const MAX_STACK_CHARS: usize = 2000;

/// Free text that has been through [`redact::clean`]: secrets masked, first line only, capped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Text(String);

impl Text {
    /// Cleans `text` and caps it at `max_chars`.
    #[must_use]
    pub fn new(text: &str, max_chars: usize) -> Self {
        Self(redact::clean(text, max_chars))
    }

    /// The cleaned text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which canary cohort a session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cohort {
    /// Not in the canary (the only cohort until a canary is running).
    #[default]
    Stable,
    /// In the canary.
    Canary,
}

/// Where a session's `token_consumption_initial` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenSource {
    /// Computed at SessionStart from what enters the context.
    Estimated,
    /// Read from the transcript's first API usage.
    Measured,
}

/// Severity of an `error` record, as the runbook greps it (`"severity":"Critical"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Severity {
    /// Something is broken for every session (a panic, a config that stops sessions).
    Critical,
    /// A hook could not do its job for this run.
    High,
    /// Degraded: something was skipped.
    Medium,
    /// Worth knowing.
    Low,
}

/// Severity of an `alert` record, the runbook's incident levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AlertSeverity {
    /// Service down.
    P0,
    /// Major degradation.
    P1,
    /// Minor degradation.
    P2,
    /// Cosmetic.
    P3,
}

/// One record's type and payload. The variant name becomes the `type` field.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// A hook run's outcome. `success` means the hook did its job without fault; a deliberate
    /// deny is a success with `decision: "deny"`.
    HookExecution {
        /// The hook event the run answered.
        event: String,
        /// Whether the hook did its job without fault.
        success: bool,
        /// The decision, when the hook made one.
        #[serde(skip_serializing_if = "Option::is_none")]
        decision: Option<Decision>,
        /// The fault's first line, when `success` is false.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<Text>,
        /// Which attempt of a run this was, for a hook wrapped by `ctxopt-run` (1, then 2 for
        /// the first retry, …); absent for ctxopt's own hooks, which do not retry.
        #[serde(skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
        /// The wrapped hook did not run because it is disabled (renamed `*.disabled`, turned
        /// off by `ctxopt hooks disable`, or by the circuit breaker); present only when true.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        disabled: bool,
    },
    /// A hook run's own latency, from the start of `main` to its records being built.
    HookLatency {
        /// The hook event the run answered.
        event: String,
        /// Milliseconds, microsecond resolution.
        duration_ms: f64,
    },
    /// A tool call, from PostToolUse or PostToolUseFailure.
    ToolUse {
        /// `Bash`, `Write`, `mcp__server__tool`, …
        tool_name: String,
        /// Pairs the record with the model's tool call.
        #[serde(skip_serializing_if = "Option::is_none")]
        tool_use_id: Option<String>,
        /// Whether the tool succeeded.
        success: bool,
        /// The tool's own duration, as the client reported it.
        #[serde(skip_serializing_if = "Option::is_none")]
        duration_ms: Option<f64>,
        /// The file the tool touched, for file tools.
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<Text>,
        /// A short prefix of a Bash command.
        #[serde(skip_serializing_if = "Option::is_none")]
        command: Option<Text>,
        /// The failure's first line.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<Text>,
        /// Whether the user interrupted the call.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        interrupted: bool,
        /// The context's size when the model made this call: the transcript's latest
        /// main-chain usage (input + cache creation + cache read), read from its end.
        #[serde(skip_serializing_if = "Option::is_none")]
        context_tokens: Option<u64>,
    },
    /// A session started.
    SessionStart {
        /// `startup`, `resume`, `clear`, `compact`, `fork`.
        #[serde(skip_serializing_if = "Option::is_none")]
        source: Option<String>,
        /// The model, when the client said.
        #[serde(skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        /// The permission mode, when the client said.
        #[serde(skip_serializing_if = "Option::is_none")]
        permission_mode: Option<String>,
    },
    /// A fault. `message` is what went wrong; `stack` the cause chain.
    Error {
        /// How bad.
        severity: Severity,
        /// What went wrong, one line.
        message: Text,
        /// The cause chain (or a panic's location), one line.
        stack: Text,
    },
    /// An alert crossing a threshold (raised by later features).
    Alert {
        /// The runbook's alert id, such as `Alert-S-001`.
        id: String,
        /// P0–P3.
        severity: AlertSeverity,
        /// What crossed what.
        message: Text,
        /// The observed value.
        value: f64,
        /// The threshold it crossed.
        threshold: f64,
    },
    /// The session's initial token consumption: estimated at SessionStart, measured from the
    /// transcript's first assistant usage once it is there.
    TokenConsumption {
        /// The tokens.
        tokens: u64,
        /// `estimated` or `measured`.
        source: TokenSource,
        /// For an estimate: tokens per component (`mcp:<server>`, `skills`, `memory`, …).
        #[serde(skip_serializing_if = "Option::is_none")]
        components: Option<serde_json::Map<String, serde_json::Value>>,
    },
    /// A context-budget limit crossed (initial tokens, MCP server count).
    LimitViolation {
        /// `initial_tokens_warning`, `initial_tokens_critical`, `max_mcp_servers`.
        limit: String,
        /// The observed value.
        value: f64,
        /// The limit.
        threshold: f64,
        /// `warn` or `enforce`.
        mode: String,
        /// What to do about it, one line.
        message: Text,
    },
    /// The canary rolled back automatically (R6.3).
    CanaryRollback {
        /// The trigger (`error_rate`, `latency_p95`, `initial_tokens`, …).
        trigger: String,
        /// The value seen.
        value: f64,
        /// The limit.
        threshold: f64,
        /// What crossed what.
        message: Text,
        /// Files restored from the deploy snapshot.
        files: Vec<String>,
    },
}

impl Record {
    /// An `error` record from an error and its cause chain.
    #[must_use]
    pub fn error(severity: Severity, err: &(dyn std::error::Error + 'static)) -> Self {
        Self::Error {
            severity,
            message: Text::new(&err.to_string(), MAX_MESSAGE_CHARS),
            stack: Text::new(&chain(err), MAX_STACK_CHARS),
        }
    }
}

/// An error and its sources on one line: `a: b: c`.
#[must_use]
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// The fields every record of a run shares.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The session, or empty when unknown.
    pub session_id: String,
    /// The hook program as a user knows it (ctxopt's binary name, later a wrapped command).
    pub hook: String,
    /// The session's canary cohort.
    pub cohort: Cohort,
    /// The session's initial token consumption, once known.
    pub token_consumption_initial: Option<u64>,
    /// Where that number came from.
    pub token_source: Option<TokenSource>,
}

#[derive(Serialize)]
struct Line<'a> {
    timestamp: String,
    #[serde(flatten)]
    record: &'a Record,
    schema_version: u32,
    session_id: &'a str,
    hook: &'a str,
    cohort: Cohort,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_consumption_initial: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_source: Option<TokenSource>,
}

impl Envelope {
    /// An envelope for `hook` in `session_id`, stable cohort, tokens not yet known.
    #[must_use]
    pub fn new(session_id: impl Into<String>, hook: impl Into<String>) -> Self {
        Self {
            session_id: session_id.into(),
            hook: hook.into(),
            cohort: Cohort::Stable,
            token_consumption_initial: None,
            token_source: None,
        }
    }

    /// One line of compact JSON (with its newline) for `record`, stamped `now`.
    #[must_use]
    pub fn line(&self, record: &Record, now: DateTime<Utc>) -> String {
        let line = Line {
            timestamp: timestamp(now),
            record,
            schema_version: SCHEMA_VERSION,
            session_id: &self.session_id,
            hook: &self.hook,
            cohort: self.cohort,
            token_consumption_initial: self.token_consumption_initial,
            token_source: self.token_source,
        };
        let mut out = serde_json::to_string(&line).unwrap_or_else(|err| {
            format!(
                r#"{{"timestamp":"{}","type":"error","severity":"High","message":"failed to serialize a record: {err}"}}"#,
                timestamp(now)
            )
        });
        out.push('\n');
        out
    }
}

/// Who made a config change, as `audit.log` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    /// The model, through a tool call.
    Agent,
    /// A person, outside the agent.
    User,
    /// ctxopt itself (install, restore, rollback, …).
    Ctxopt,
}

/// One line of `audit.log` (JSON lines), the pinned audit schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Who.
    pub actor: Actor,
    /// What: `install`, `uninstall`, `drift`, `restore`, `deny`, …
    pub action: String,
    /// The file, absolute.
    pub path: String,
    /// SHA-256 of the file before, hex; `None` when it did not exist.
    pub sha256_before: Option<String>,
    /// SHA-256 of the file after, hex; `None` when it no longer exists.
    pub sha256_after: Option<String>,
    /// The session, when the change came from one.
    pub session_id: Option<String>,
    /// The tool, when the change came from a tool call.
    pub tool: Option<String>,
    /// A short free-text detail (masked and trimmed).
    pub detail: Option<Text>,
}

#[derive(Serialize)]
struct AuditLine<'a> {
    timestamp: String,
    #[serde(flatten)]
    entry: &'a AuditEntry,
}

impl AuditEntry {
    /// One line of compact JSON (with its newline), stamped `now`.
    #[must_use]
    pub fn line(&self, now: DateTime<Utc>) -> String {
        let mut out = serde_json::to_string(&AuditLine {
            timestamp: timestamp(now),
            entry: self,
        })
        .unwrap_or_default();
        out.push('\n');
        out
    }
}

/// The current time, as every record is stamped.
#[must_use]
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// RFC 3339 UTC with milliseconds and `Z`: `2026-11-25T10:25:21.123Z`.
#[must_use]
pub fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Milliseconds as a float with microsecond resolution.
#[must_use]
pub fn millis(duration: Duration) -> f64 {
    let micros = u32::try_from(duration.as_micros()).unwrap_or(u32::MAX);
    f64::from(micros) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
    }

    #[test]
    fn envelope_fields_and_order() {
        let env = Envelope::new("s1", "ctxopt-pre-tool-use");
        let line = env.line(
            &Record::HookLatency {
                event: "PreToolUse".into(),
                duration_ms: millis(Duration::from_micros(1234)),
            },
            now(),
        );
        assert_eq!(
            line,
            "{\"timestamp\":\"2026-11-25T10:00:00.000Z\",\"type\":\"hook_latency\",\"event\":\"PreToolUse\",\"duration_ms\":1.234,\"schema_version\":1,\"session_id\":\"s1\",\"hook\":\"ctxopt-pre-tool-use\",\"cohort\":\"stable\"}\n"
        );
    }

    #[test]
    fn critical_error_is_greppable_as_the_runbook_does() {
        let env = Envelope::new("s", "h");
        let err = std::io::Error::other("disk on fire");
        let line = env.line(&Record::error(Severity::Critical, &err), now());
        assert!(line.contains(r#""severity":"Critical""#), "{line}");
        assert!(line.contains(r#""type":"error""#), "{line}");
    }

    #[test]
    fn token_fields_appear_once_known() {
        let mut env = Envelope::new("s", "h");
        env.token_consumption_initial = Some(12_345);
        env.token_source = Some(TokenSource::Measured);
        let line = env.line(
            &Record::SessionStart {
                source: None,
                model: None,
                permission_mode: None,
            },
            now(),
        );
        assert!(
            line.contains(r#""token_consumption_initial":12345,"token_source":"measured""#),
            "{line}"
        );
    }

    #[test]
    fn audit_line_has_the_pinned_fields() {
        let entry = AuditEntry {
            actor: Actor::Ctxopt,
            action: "install".into(),
            path: "/p/.claude/settings.local.json".into(),
            sha256_before: None,
            sha256_after: Some("ab".into()),
            session_id: None,
            tool: None,
            detail: Some(Text::new("added 4 hooks", MAX_MESSAGE_CHARS)),
        };
        assert_eq!(
            entry.line(now()),
            "{\"timestamp\":\"2026-11-25T10:00:00.000Z\",\"actor\":\"ctxopt\",\"action\":\"install\",\"path\":\"/p/.claude/settings.local.json\",\"sha256_before\":null,\"sha256_after\":\"ab\",\"session_id\":null,\"tool\":null,\"detail\":\"added 4 hooks\"}\n"
        );
    }

    #[test]
    fn text_is_masked_and_trimmed() {
        let t = Text::new("token=abcdef123\nsecond line", MAX_ERROR_CHARS);
        assert_eq!(t.as_str(), "token=[REDACTED]");
    }
}
