//! `ctxopt prune`.

use ctxopt::policy::Policy;
use ctxopt::project;
use ctxopt::retention;
use ctxopt::store::DataDir;

use crate::PruneArgs;
use crate::commands::{CliError, Status};

pub fn prune(args: &PruneArgs) -> Result<Status, CliError> {
    let project = project::for_cli(args.project.project.as_deref());
    let policy = Policy::load(&project)?;
    let data = DataDir::of_project(&project);
    let report = retention::prune(&data, &policy.retention, ctxopt::record::now())?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "metrics_archived": report.metrics_archived,
                "metrics_kept": report.metrics_kept,
            })
        );
    } else if !args.quiet {
        println!(
            "archived {} metrics records, kept {}",
            report.metrics_archived, report.metrics_kept
        );
    }
    Ok(Status::Ok)
}
