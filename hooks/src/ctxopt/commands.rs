//! The subcommands: resolve arguments, call the library, print for people or `--json`.

use std::fmt;

/// The exit-code table, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything fine.
    Ok,
    /// The command ran and found problems.
    Problems,
    /// The command could not run.
    CouldNotRun,
}

impl Status {
    pub fn code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Problems => 1,
            Self::CouldNotRun => 2,
        }
    }
}

/// An error printed as its whole chain (`{:#}`).
pub struct CliError(Box<dyn std::error::Error + Send + Sync>);

impl<E: std::error::Error + Send + Sync + 'static> From<E> for CliError {
    fn from(err: E) -> Self {
        Self(Box::new(err))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(self.0.as_ref());
        let mut first = true;
        while let Some(err) = source {
            if !first {
                f.write_str(": ")?;
            }
            write!(f, "{err}")?;
            first = false;
            source = err.source();
        }
        Ok(())
    }
}
