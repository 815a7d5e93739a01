//! `ctxopt canary status|start|promote|abort` (runbook §5.1): the canary from the command
//! line. Every decision is [`ctxopt::canary`]'s, by the same rules the hooks apply to an edited
//! `canary.json`; this file prints. Exit codes: 0 done (status: the stage passes or no canary
//! runs), 1 refused (status: the stage fails or is inconclusive), 2 could not run.

use std::fmt::Write as _;

use ctxopt::canary::{self, Accepted, CanaryError, Health, Paths, StageNumbers, StartOptions};
use ctxopt::project;
use ctxopt::record;
use serde_json::json;

use crate::ProjectArg;
use crate::commands::{CliError, Status};

/// `ctxopt canary …`.
#[derive(Debug, clap::Subcommand)]
pub enum CanaryCommand {
    /// The canary now: stage, time in stage, cohort sizes, each threshold against its value,
    /// and the verdict (pass, fail, inconclusive).
    Status(CommonArgs),
    /// Start a canary at 10% (writes `.claude/canary.json`).
    Start(StartArgs),
    /// Promote to the next stage (10 → 50 → 100), or graduate at 100% after its window.
    /// Refused, with the reason, when the stage is too young, unhealthy or inconclusive.
    Promote(CommonArgs),
    /// Abort: back to 0% at once. Always allowed.
    Abort(CommonArgs),
}

/// Arguments every canary command takes.
#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    #[command(flatten)]
    project: ProjectArg,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `ctxopt canary start`.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Minutes each stage is observed before the next.
    #[arg(long, value_name = "MINUTES", default_value_t = canary::DEFAULT_DURATION_MINUTES)]
    duration_minutes: u64,
    /// Canary hook error rate above which it fails (0.01 = 1%).
    #[arg(long, value_name = "RATE", default_value_t = canary::DEFAULT_ERROR_RATE)]
    error_rate: f64,
    /// Canary hook latency p95 (ms) above which it fails.
    #[arg(long, value_name = "MS", default_value_t = canary::DEFAULT_LATENCY_P95_MS)]
    latency_p95: f64,
}

/// Runs `ctxopt canary …`.
pub fn canary(command: &CanaryCommand) -> Result<Status, CliError> {
    let now = record::now();
    let (common, result) = match command {
        CanaryCommand::Status(args) => return Ok(status(args)),
        CanaryCommand::Start(args) => {
            let project = project::for_cli(args.common.project.project.as_deref());
            let options = StartOptions {
                duration_minutes: args.duration_minutes,
                error_rate: args.error_rate,
                latency_p95_ms: args.latency_p95,
            };
            (&args.common, canary::start(&project, &options, now))
        }
        CanaryCommand::Promote(args) => {
            let project = project::for_cli(args.project.project.as_deref());
            (args, canary::promote(&project, now))
        }
        CanaryCommand::Abort(args) => {
            let project = project::for_cli(args.project.project.as_deref());
            (args, canary::abort(&project, now))
        }
    };
    match result {
        Ok(done) => {
            if common.json {
                println!(
                    "{}",
                    json!({"done": canary::describe(&done.transition), "percentage": done.percentage})
                );
            } else {
                println!(
                    "canary {} (now {}%)",
                    canary::describe(&done.transition),
                    done.percentage
                );
            }
            Ok(Status::Ok)
        }
        Err(CanaryError::Refused(why)) => {
            if common.json {
                println!("{}", json!({"refused": why}));
            } else {
                println!("ctxopt canary: refused: {why}");
            }
            Ok(Status::Problems)
        }
        Err(err) => Err(err.into()),
    }
}

fn status(args: &CommonArgs) -> Status {
    let project = project::for_cli(args.project.project.as_deref());
    let paths = Paths::of_project(&project);
    let now = record::now();
    let accepted = canary::load(&paths);
    let health = accepted
        .enabled
        .then(|| canary::stage_health(&paths, &accepted, now));
    let (verdict, numbers, why) = match &health {
        None => ("none", StageNumbers::default(), None),
        Some(Health::Pass(n)) => ("pass", n.clone(), None),
        Some(Health::Fail(n, why)) => ("fail", n.clone(), Some(why.clone())),
        Some(Health::Inconclusive(n)) => ("inconclusive", n.clone(), None),
    };
    let minutes_in_stage = accepted.stage_started_at.map(|at| (now - at).num_minutes());
    if args.json {
        println!(
            "{}",
            json!({
                "enabled": accepted.enabled,
                "percentage": accepted.percentage,
                "stage_started_at": accepted.stage_started_at.map(record::timestamp),
                "minutes_in_stage": minutes_in_stage,
                "duration_minutes": accepted.duration_minutes,
                "window_ends": accepted.window_ends().map(record::timestamp),
                "cohorts": {"canary_sessions": numbers.canary_sessions, "stable_sessions": numbers.stable_sessions},
                "thresholds": {
                    "error_rate": {"value": numbers.error_rate(), "limit": accepted.error_rate},
                    "latency_p95_ms": {"value": numbers.latency_p95_ms, "limit": accepted.latency_p95_ms},
                    "initial_tokens": {"value": numbers.max_initial_tokens, "limit": canary::TOKENS_WARNING},
                    "samples": {"value": numbers.runs, "minimum": canary::MIN_SAMPLES},
                },
                "verdict": verdict,
                "why": why,
                "allowed_now": canary::allowed_now(&accepted, now),
                "ended": accepted.ended,
            })
        );
    } else {
        let allowed = canary::allowed_now(&accepted, now);
        print!(
            "{}",
            text(
                &accepted,
                &numbers,
                verdict,
                why.as_deref(),
                minutes_in_stage,
                &allowed
            )
        );
    }
    match verdict {
        "none" | "pass" => Status::Ok,
        _ => Status::Problems,
    }
}

fn text(
    accepted: &Accepted,
    n: &StageNumbers,
    verdict: &str,
    why: Option<&str>,
    minutes: Option<i64>,
    allowed: &str,
) -> String {
    let mut out = String::new();
    if !accepted.enabled {
        let _ = writeln!(
            out,
            "no canary running{}",
            accepted
                .ended
                .as_deref()
                .map_or_else(String::new, |e| format!(" (the last one {e})"))
        );
        let _ = writeln!(out, "allowed now: {allowed}");
        return out;
    }
    let _ = writeln!(
        out,
        "stage {}%, {} of {} minutes",
        accepted.percentage,
        minutes.unwrap_or(0),
        accepted.duration_minutes
    );
    let _ = writeln!(
        out,
        "cohorts: {} canary sessions, {} stable sessions in this stage",
        n.canary_sessions, n.stable_sessions
    );
    let show = |v: Option<f64>, unit: &str| {
        v.map_or_else(|| String::from("-"), |v| format!("{v:.2}{unit}"))
    };
    let _ = writeln!(
        out,
        "error rate      {:>10}  limit {:.2}%",
        show(n.error_rate().map(|r| r * 100.0), "%"),
        accepted.error_rate * 100.0
    );
    let _ = writeln!(
        out,
        "latency p95     {:>10}  limit {} ms",
        show(n.latency_p95_ms, " ms"),
        accepted.latency_p95_ms
    );
    let _ = writeln!(
        out,
        "initial tokens  {:>10}  limit {}",
        n.max_initial_tokens
            .map_or_else(|| String::from("-"), |t| t.to_string()),
        canary::TOKENS_WARNING
    );
    let _ = writeln!(
        out,
        "samples         {:>10}  minimum {}",
        n.runs,
        canary::MIN_SAMPLES
    );
    let _ = writeln!(
        out,
        "verdict: {verdict}{}",
        why.map_or_else(String::new, |w| format!(" ({w})"))
    );
    let _ = writeln!(out, "allowed now: {allowed}");
    out
}

/// `ctxopt notify-webhook --url URL --text TEXT` (hidden).
#[derive(Debug, clap::Args)]
pub struct NotifyArgs {
    /// The webhook URL.
    #[arg(long)]
    url: String,
    /// The message.
    #[arg(long)]
    text: String,
}

/// Posts the message; exit 1 when the webhook could not be reached.
pub fn notify(args: &NotifyArgs) -> Status {
    match canary::webhook::post(&args.url, &args.text) {
        Ok(()) => Status::Ok,
        Err(err) => {
            eprintln!("ctxopt: {err}");
            Status::Problems
        }
    }
}
