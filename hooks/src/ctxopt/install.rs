//! `ctxopt install` and `ctxopt uninstall`.

use crate::InstallArgs;
use crate::commands::{CliError, Status};

pub fn install(_args: &InstallArgs, _uninstall: bool) -> Result<Status, CliError> {
    Err(std::io::Error::other("install is not built yet").into())
}

