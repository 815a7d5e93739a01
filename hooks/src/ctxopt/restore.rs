//! `ctxopt restore-config`. IN PROGRESS — being written.

use crate::ProjectArg;
use crate::commands::{CliError, Status};

/// Arguments of `ctxopt restore-config`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    project: ProjectArg,
}

pub fn restore(_args: &RestoreArgs) -> Result<Status, CliError> {
    Err(std::io::Error::other("restore-config is not built yet").into())
}
