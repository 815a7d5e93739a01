//! `ctxopt validate`. IN PROGRESS — being written.

use crate::ProjectArg;
use crate::commands::{CliError, Status};

/// Arguments of `ctxopt validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    project: ProjectArg,
}

pub fn validate(_args: &ValidateArgs) -> Result<Status, CliError> {
    Err(std::io::Error::other("validate is not built yet").into())
}
