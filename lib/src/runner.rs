//! The process boundary of a hook binary: the only code that reads stdin, writes stdout and
//! stderr, reads the environment and picks the exit code.
//!
//! One run: note the start time, install the panic hook, read stdin under a cap, parse,
//! evaluate, build the records (the hook's own plus `hook_execution` and `hook_latency`),
//! append them in one locked write, append one line to `hook_execution.log`, print the reply
//! once, exit 0. A fault of the hook's own (bad stdin, unwritable data dir, full disk, a
//! panic) is recorded where possible, reported in one stderr line, and the hook's
//! [`FailurePolicy`] is applied — never a crash, never a non-zero exit by accident.
//!
//! The envelope carries the session's initial tokens once known: read from
//! `state/tokens-<session>.json` ([`transcript::initial`]) before evaluating, and replaced by
//! a `token_consumption` record the run itself produces (a measured value is never replaced by
//! an estimate).

use std::env;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::budget::transcript;
use crate::canary;
use crate::config::discover::Locations;
use crate::guard;
use crate::hook::{Context, Evaluation, FailurePolicy, Hook};
use crate::outcome::Outcome;
use crate::project::{self, PROJECT_ENV};
use crate::protocol::{self, Decision, Event, HookInput, HookOutput, HookSpecificOutput};
use crate::record::{self, Envelope, Record, Severity, Text, TokenSource};
use crate::store::{self, DataDir};

/// Claude Code's environment variable holding the session id (used when stdin has none).
const SESSION_ENV: &str = "CLAUDE_CODE_SESSION_ID";

/// Debug builds only: `CTXOPT_FAULT_INJECT=panic` makes the hook panic after parsing, so tests
/// can prove the panic hook applies the failure policy. Release builds ignore it.
#[cfg(debug_assertions)]
const FAULT_INJECT_ENV: &str = "CTXOPT_FAULT_INJECT";

/// What the panic hook needs to record a panic and apply the failure policy.
struct PanicContext {
    hook: Hook,
    started: Instant,
    event: String,
    envelope: Envelope,
    data: Option<DataDir>,
    decides: bool,
}

static PANIC_CONTEXT: Mutex<Option<PanicContext>> = Mutex::new(None);

/// Runs `hook` as a process: the whole of each hook binary's `main`.
#[must_use]
pub fn main(hook: Hook) -> u8 {
    let started = Instant::now();
    install_panic_hook();
    crate::guard::paths::memoize_for_process();
    crate::process::defer_hand_offs();
    let event_name = hook.events()[0].to_owned();
    set_panic_context(PanicContext {
        hook,
        started,
        event: event_name,
        envelope: Envelope::new(env_session().unwrap_or_default(), hook.program()),
        data: None,
        decides: false,
    });

    let parsed = protocol::read_capped(io::stdin().lock()).and_then(|b| HookInput::parse(&b));
    let cwd = parsed.as_ref().ok().and_then(|i| i.common.cwd.clone());
    let project = project::for_hook(env::var_os(PROJECT_ENV), cwd.as_deref());
    let mut ctx = Context::for_process(project, Utc::now(), Locations::from_process_env());

    let (event, session_id) = match &parsed {
        Ok(input) => (
            input.event.clone(),
            Some(input.common.session_id.clone()).filter(|s| !s.is_empty()),
        ),
        Err(_) => (Event::Other, None),
    };
    let event_name = match &parsed {
        Ok(input) if !input.common.hook_event_name.is_empty() => {
            input.common.hook_event_name.clone()
        }
        _ => hook.events()[0].to_owned(),
    };
    let mut envelope = Envelope::new(
        session_id.or_else(env_session).unwrap_or_default(),
        hook.program(),
    );
    let initial = transcript::initial(&ctx.data, &envelope.session_id);
    ctx.initial_tokens = initial;
    set_initial_tokens(&mut envelope, initial);
    let canary = observe_canary(&ctx, &envelope.session_id);
    envelope.cohort = canary.cohort;
    ctx.cohort = canary.cohort;
    set_panic_context(PanicContext {
        hook,
        started,
        event: event_name.clone(),
        envelope: envelope.clone(),
        data: Some(ctx.data.clone()),
        decides: decides_on_protected(hook, parsed.as_ref().ok()),
    });

    let mut evaluation = match parsed {
        Ok(input) => {
            inject_fault();
            hook.evaluate(&input, &ctx)
        }
        Err(err) => {
            let severity = match err {
                protocol::InputError::Oversize { .. } => Severity::Medium,
                _ => Severity::High,
            };
            Evaluation::fault(severity, err)
        }
    };

    evaluation.records.extend(canary.records);
    evaluation
        .outcome
        .system_messages
        .extend(canary.system_messages);
    for error in canary.errors {
        evaluation.faults.push(crate::hook::Fault {
            severity: Severity::Low,
            error,
        });
    }
    update_initial_tokens(&mut envelope, &evaluation.records);
    let run = Run {
        hook,
        event: &event_name,
        envelope: &envelope,
        started,
        now: ctx.now,
    };
    let (lines, log_line, stderr_line) = run.report(&evaluation);
    let write_fault = write(&ctx.data, &lines, &log_line);
    // Work handed off detached (the hourly backup, prune, the webhook) forks only now, after
    // the records are written (see `process::spawn_detached`).
    let faults: Vec<String> = write_fault
        .into_iter()
        .chain(crate::process::run_hand_offs())
        .collect();
    let write_fault = (!faults.is_empty()).then(|| faults.join("; "));
    if let Some(line) = join_stderr(hook, stderr_line, write_fault) {
        let _ = writeln!(io::stderr(), "{line}");
    }
    emit(evaluation.outcome, &event);
    0
}

/// Whether this run decides on a tool call that targets a protected path: then the guard's
/// closed failure policy applies, and a panic denies the call instead of letting it through.
/// A cheap reading by name ([`guard::mentions_protected`]); the guard itself decides exactly.
fn decides_on_protected(hook: Hook, input: Option<&HookInput>) -> bool {
    match (hook, input.map(|i| &i.event)) {
        (Hook::PreToolUse, Some(Event::PreToolUse(call))) => {
            guard::mentions_protected(&call.tool_input.to_string())
        }
        _ => false,
    }
}

/// The canary's in-process guard and automatic rollback for this run ([`canary::observe`]).
fn observe_canary(ctx: &Context, session_id: &str) -> canary::Observed {
    let webhook = env::var(canary::webhook::URL_ENV)
        .ok()
        .filter(|u| !u.is_empty());
    canary::observe(
        &canary::Paths::of_project(&ctx.project),
        session_id,
        ctx.now,
        &canary::Environment {
            slo_target: &|| {
                crate::policy::Policy::load(&ctx.project)
                    .map_or(canary::rollback::DEFAULT_SLO_TARGET, |p| {
                        p.slo.hook_success_target
                    })
            },
            restore: &|reason| canary::rollback::restore_snapshot(&ctx.project, reason, ctx.now),
            notify: &|text| {
                if let (Some(url), Some(bin_dir)) = (&webhook, ctx.bin_dir()) {
                    canary::webhook::spawn(bin_dir, url, text);
                }
            },
        },
    )
}

/// Puts the session's initial tokens (from `state/tokens-<session>.json`) on the envelope.
fn set_initial_tokens(envelope: &mut Envelope, initial: Option<(u64, TokenSource)>) {
    if let Some((tokens, source)) = initial {
        envelope.token_consumption_initial = Some(tokens);
        envelope.token_source = Some(source);
    }
}

/// A `token_consumption` record of this run (the estimate at SessionStart, the measured
/// value at PostToolUse) is on every record of the run, its own included. A measured value
/// is never replaced by an estimate.
fn update_initial_tokens(envelope: &mut Envelope, records: &[Record]) {
    for record in records {
        if let Record::TokenConsumption { tokens, source, .. } = record
            && (*source == TokenSource::Measured
                || envelope.token_source != Some(TokenSource::Measured))
        {
            set_initial_tokens(envelope, Some((*tokens, *source)));
        }
    }
}

/// The facts of one run the records are built from.
struct Run<'a> {
    hook: Hook,
    event: &'a str,
    envelope: &'a Envelope,
    started: Instant,
    now: DateTime<Utc>,
}

impl Run<'_> {
    /// The metrics lines, the `hook_execution.log` line, and the stderr line (if any fault).
    fn report(&self, evaluation: &Evaluation) -> (String, String, Option<String>) {
        let success = evaluation.faults.is_empty();
        let first_fault = evaluation
            .faults
            .first()
            .map(|f| record::chain(f.error.as_ref()));
        let mut lines = String::new();
        for record in &evaluation.records {
            lines.push_str(&self.envelope.line(record, self.now));
        }
        for fault in &evaluation.faults {
            lines.push_str(&self.envelope.line(
                &Record::error(fault.severity, fault.error.as_ref()),
                self.now,
            ));
        }
        lines.push_str(
            &self.envelope.line(
                &Record::HookExecution {
                    event: self.event.to_owned(),
                    success,
                    decision: evaluation.outcome.decision,
                    error: first_fault
                        .as_deref()
                        .map(|e| Text::new(e, record::MAX_ERROR_CHARS)),
                    attempt: None,
                    disabled: false,
                },
                self.now,
            ),
        );
        let duration_ms = record::millis(self.started.elapsed());
        lines.push_str(&self.envelope.line(
            &Record::HookLatency {
                event: self.event.to_owned(),
                duration_ms,
            },
            self.now,
        ));
        let log_line = hook_log_line(
            self.now,
            self.hook,
            self.event,
            &self.envelope.session_id,
            evaluation.outcome.decision,
            first_fault.as_deref(),
            duration_ms,
        );
        let stderr = first_fault.map(|f| {
            format!(
                "{f}{}",
                if evaluation.faults.len() > 1 {
                    format!(" (and {} more faults)", evaluation.faults.len() - 1)
                } else {
                    String::new()
                }
            )
        });
        (lines, log_line, stderr)
    }
}

/// One human-readable line of `hook_execution.log`.
#[must_use]
pub fn hook_log_line(
    now: DateTime<Utc>,
    hook: Hook,
    event: &str,
    session_id: &str,
    decision: Option<Decision>,
    fault: Option<&str>,
    duration_ms: f64,
) -> String {
    let mut line = format!(
        "{} {} {event} {} {duration_ms:.3}ms session={}",
        record::timestamp(now),
        hook.program(),
        if fault.is_some() { "FAIL" } else { "ok" },
        if session_id.is_empty() {
            "-"
        } else {
            session_id
        },
    );
    if let Some(decision) = decision {
        let _ = write!(line, " decision={decision:?}");
    }
    if let Some(fault) = fault {
        let _ = write!(
            line,
            " error=\"{}\"",
            Text::new(fault, record::MAX_ERROR_CHARS).as_str()
        );
    }
    line.push('\n');
    line
}

/// Writes the run's records; returns what could not be written, for stderr.
fn write(data: &DataDir, lines: &str, log_line: &str) -> Option<String> {
    // The data dir exists after a project's first run: it is created only when the first
    // append finds it missing (one `stat` less per run).
    let metrics = match store::append(&data.metrics(), lines.as_bytes()) {
        Err(err)
            if err.action == "open"
                && matches!(
                    err.source.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
        {
            if let Err(err) = data.ensure() {
                return Some(format!(
                    "could not record this run: {}",
                    record::chain(&err)
                ));
            }
            store::append(&data.metrics(), lines.as_bytes()).err()
        }
        other => other.err(),
    };
    let log_line = match &metrics {
        None => log_line.to_owned(),
        Some(err) => format!(
            "{} metrics-not-recorded=\"{}\"\n",
            log_line.trim_end(),
            record::chain(err)
        ),
    };
    let log = store::append(&data.hook_log(), log_line.as_bytes()).err();
    let faults: Vec<String> = metrics
        .iter()
        .chain(log.iter())
        .map(|err| format!("could not record this run: {}", record::chain(err)))
        .collect();
    (!faults.is_empty()).then(|| faults.join("; "))
}

fn join_stderr(hook: Hook, fault: Option<String>, write_fault: Option<String>) -> Option<String> {
    let parts: Vec<String> = fault.into_iter().chain(write_fault).collect();
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "{}: {}; {}",
        hook.program(),
        parts.join("; "),
        match hook.failure_policy() {
            FailurePolicy::Open => "the session continues",
            FailurePolicy::Closed => "the call is denied",
        }
    ))
}

fn emit(outcome: Outcome, event: &Event) {
    if let Some(output) = outcome.into_output(event) {
        let mut stdout = io::stdout().lock();
        let _ = writeln!(stdout, "{}", output.to_json());
        let _ = stdout.flush();
    }
}

fn env_session() -> Option<String> {
    env::var(SESSION_ENV).ok().filter(|s| !s.is_empty())
}

fn set_panic_context(ctx: PanicContext) {
    if let Ok(mut slot) = PANIC_CONTEXT.lock() {
        *slot = Some(ctx);
    }
}

#[cfg(debug_assertions)]
fn inject_fault() {
    assert!(
        env::var_os(FAULT_INJECT_ENV).is_none_or(|v| v != "panic"),
        "fault injected by {FAULT_INJECT_ENV}"
    );
}

#[cfg(not(debug_assertions))]
fn inject_fault() {}

/// The panic hook: records a `Critical` error and a failed `hook_execution`, prints one stderr
/// line, then applies the failure policy and exits 0 itself (with `panic = "abort"` nothing
/// runs after the hook).
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| String::from("unknown panic"));
        let guard = PANIC_CONTEXT.try_lock().ok();
        let ctx = guard.as_ref().and_then(|g| g.as_ref());
        let program = ctx.map_or("ctxopt hook", |c| c.hook.program());
        let message = format!("{program} panicked: {payload}");
        if let Some(ctx) = ctx {
            record_panic(ctx, &message, &location);
        }
        let closed = ctx.is_some_and(|c| c.decides);
        let _ = writeln!(
            io::stderr(),
            "{message}{location}; this is a ctxopt bug; {}",
            if closed {
                "the call is denied"
            } else {
                "the session continues"
            }
        );
        if closed {
            let output = HookOutput {
                hook_specific_output: Some(HookSpecificOutput::PreToolUse {
                    permission_decision: Some(Decision::Deny),
                    permission_decision_reason: Some(format!("ctxopt guard error: {message}")),
                    additional_context: None,
                }),
                ..HookOutput::default()
            };
            let _ = writeln!(io::stdout(), "{}", output.to_json());
        }
        std::process::exit(0);
    }));
}

fn record_panic(ctx: &PanicContext, message: &str, location: &str) {
    let Some(data) = &ctx.data else { return };
    let now = Utc::now();
    let mut lines = ctx.envelope.line(
        &Record::Error {
            severity: Severity::Critical,
            message: Text::new(message, record::MAX_MESSAGE_CHARS),
            stack: Text::new(&format!("panic{location}"), record::MAX_STACK_CHARS),
        },
        now,
    );
    lines.push_str(&ctx.envelope.line(
        &Record::HookExecution {
            event: ctx.event.clone(),
            success: false,
            decision: None,
            error: Some(Text::new(message, record::MAX_ERROR_CHARS)),
            attempt: None,
            disabled: false,
        },
        now,
    ));
    let duration_ms = record::millis(ctx.started.elapsed());
    lines.push_str(&ctx.envelope.line(
        &Record::HookLatency {
            event: ctx.event.clone(),
            duration_ms,
        },
        now,
    ));
    let log = hook_log_line(
        now,
        ctx.hook,
        &ctx.event,
        &ctx.envelope.session_id,
        None,
        Some(message),
        duration_ms,
    );
    let _ = write(data, &lines, &log);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumption(tokens: u64, source: TokenSource) -> Record {
        Record::TokenConsumption {
            tokens,
            source,
            components: None,
        }
    }

    #[test]
    fn a_run_s_token_record_is_on_its_envelope_and_measured_wins() {
        let mut envelope = Envelope::new("s", "h");
        update_initial_tokens(&mut envelope, &[]);
        assert_eq!(envelope.token_consumption_initial, None);

        update_initial_tokens(&mut envelope, &[consumption(40, TokenSource::Estimated)]);
        assert_eq!(envelope.token_consumption_initial, Some(40));
        assert_eq!(envelope.token_source, Some(TokenSource::Estimated));

        update_initial_tokens(&mut envelope, &[consumption(42, TokenSource::Measured)]);
        assert_eq!(envelope.token_consumption_initial, Some(42));
        assert_eq!(envelope.token_source, Some(TokenSource::Measured));

        update_initial_tokens(&mut envelope, &[consumption(39, TokenSource::Estimated)]);
        assert_eq!(envelope.token_consumption_initial, Some(42));
        assert_eq!(envelope.token_source, Some(TokenSource::Measured));
    }
}
