//! `ctxopt`: the ops CLI. Parses arguments (clap, kept out of the hook binaries) and hands
//! off to the library; prints the error chain once and maps it to the exit-code table:
//! 0 ok, 1 problems found, 2 could not run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod backup_cmd;
mod canary_cmd;
mod commands;
mod deploy_cmd;
mod hooks_cmd;
mod install;
mod mcp_check;
mod mcp_cmd;
mod prune;
mod restore;
mod rollback_cmd;
mod skills;
mod tokens;
mod validate;

/// Keeps Claude Code's context small and its hooks healthy.
#[derive(Debug, Parser)]
#[command(
    name = "ctxopt",
    version,
    about = "Keeps Claude Code's context small and its hooks healthy: the ops CLI of ctxopt.",
    after_help = "Exit codes: 0 ok, 1 problems found, 2 could not run.\n\
                  --project defaults to $CLAUDE_PROJECT_DIR, else the git root, else the working directory."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Register ctxopt's hooks in a project's `.claude/settings.local.json`.
    ///
    /// Keeps every existing key, hook and key order; a second run changes nothing; a settings
    /// file that does not parse is refused and left untouched. What was added is recorded in
    /// `.claude/hooks/data/install-manifest.json` so `ctxopt uninstall` removes exactly that.
    /// In a git repository it also installs a pre-commit hook running `ctxopt validate
    /// --staged`, chained to an existing pre-commit hook.
    Install(InstallArgs),
    /// Remove what `ctxopt install` added to a project, and nothing else.
    Uninstall(InstallArgs),
    /// Apply retention now: archive old metrics, trim the logs.
    ///
    /// Metrics older than `retention.metrics_days` (30) move into
    /// `archive/metrics-YYYY-MM.jsonl.gz`; `hook_execution.log` keeps 7 days, `audit.log` 90,
    /// per-session state 7 (all set in `.claude/ctxopt.json`).
    Prune(PruneArgs),
    /// Validate config files: JSON syntax, schema, and what Claude Code would trip over.
    ///
    /// With no paths, every config file of the project and of the user. Findings print as
    /// `path:line:column: error[CODE]: message`.
    Validate(validate::ValidateArgs),
    /// Restore a config file from its last-known-good copy (`X.backup`), after validating
    /// the copy; the broken file is kept aside.
    RestoreConfig(restore::RestoreArgs),
    /// The project's hook commands: list them with failures and p95 latency over 24 h,
    /// disable or enable one (runbook P1-001).
    #[command(subcommand)]
    Hooks(hooks_cmd::HooksCommand),
    /// The canary release (runbook 5.1): status, start, promote, abort.
    #[command(subcommand)]
    Canary(canary_cmd::CanaryCommand),
    /// Post a message to a webhook (used by the hooks' automatic rollback, detached).
    #[command(hide = true)]
    NotifyWebhook(canary_cmd::NotifyArgs),
    /// Deploy (runbook 5.1): `start` records the current commit, settings, skills and hooks in
    /// `.deploy/` (Phase 0); `finish` appends `.deploy/history.log`.
    #[command(subcommand)]
    Deploy(deploy_cmd::DeployCommand),
    /// Roll back (runbook 6.2): the deploy snapshot, or COMMIT's `.claude/` files; then the
    /// runbook's post-rollback checks.
    Rollback(rollback_cmd::RollbackArgs),
    /// The project's MCP servers: check that each starts and lists its tools (runbook P1-003).
    #[command(subcommand)]
    Mcp(mcp_cmd::McpCommand),
    /// Estimate the context at session start per component, like Claude Code's `/context`,
    /// against the policy's initial-token limits (runbook P1-002).
    Tokens(tokens::TokensArgs),
    /// Backups of settings, skills and hooks: create, list, verify, restore (runbook P0-002).
    #[command(subcommand)]
    Backup(backup_cmd::BackupCommand),
    /// Count skills and `disable-model-invocation`, the listing's tokens and the biggest
    /// descriptions (runbook P1-002 steps 4-5).
    Skills(skills::SkillsArgs),
}

#[derive(Debug, clap::Args)]
struct ProjectArg {
    /// Project directory (default: `$CLAUDE_PROJECT_DIR`, else the git root of the working
    /// directory, else the working directory).
    #[arg(long, value_name = "DIR")]
    project: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "clap flags, each an independent switch on the command line"
)]
struct InstallArgs {
    #[command(flatten)]
    project: ProjectArg,
    /// Directory holding the hook binaries (default: the directory of this `ctxopt`).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Print what would change; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
    /// Install only: run the project's other hook commands through `ctxopt-run`.
    ///
    /// Timeout, retries, per-hook metrics and a circuit breaker for the hooks in
    /// `.claude/settings.local.json`; those in the committed `.claude/settings.json` are
    /// listed, not changed. Uninstall restores each original command.
    #[arg(long)]
    wrap_existing: bool,
    /// Install only, with --wrap-existing: wrap the committed `.claude/settings.json`'s hooks
    /// too (writes this machine's path to `ctxopt-run` into it).
    #[arg(long, requires = "wrap_existing")]
    wrap_committed: bool,
    /// Install only: also register Claude Code's ConfigChange event (clients 2.1.49+), where
    /// the guard blocks a settings change the agent makes during a tool call.
    ///
    /// Opt-in: a client older than 2.1.101 drops a whole settings file that names an event it
    /// does not know. Kept by later installs; removed by uninstall.
    #[arg(long)]
    config_change: bool,
}

#[derive(Debug, clap::Args)]
struct PruneArgs {
    #[command(flatten)]
    project: ProjectArg,
    /// Print nothing unless something fails (used by the SessionStart hook).
    #[arg(long)]
    quiet: bool,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Install(args) => install::install(&args, false),
        Command::Uninstall(args) => install::install(&args, true),
        Command::Prune(args) => prune::prune(&args),
        Command::Validate(args) => validate::validate(&args),
        Command::RestoreConfig(args) => restore::restore(&args),
        Command::Hooks(command) => hooks_cmd::hooks(&command),
        Command::Canary(command) => canary_cmd::canary(&command),
        Command::NotifyWebhook(args) => Ok(canary_cmd::notify(&args)),
        Command::Deploy(command) => deploy_cmd::deploy(&command),
        Command::Rollback(args) => rollback_cmd::rollback(&args),
        Command::Mcp(command) => mcp_cmd::mcp(&command),
        Command::Tokens(args) => tokens::tokens(&args),
        Command::Skills(args) => skills::skills(&args),
        Command::Backup(command) => backup_cmd::backup(&command),
    };
    match result {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) => {
            eprintln!("ctxopt: {err:#}");
            ExitCode::from(commands::Status::CouldNotRun.code())
        }
    }
}
