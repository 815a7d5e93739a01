//! What a Bash command writes. IN PROGRESS — interface fixed.

/// One write a command would make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellWrite {
    /// The target as the shell would see it after quote removal (variables not expanded:
    /// normalisation does that), e.g. `~/.claude/settings.json`, `$HOME/x`, `../p/.mcp.json`.
    pub target: String,
    /// The directory a preceding `cd` in the same command moved to, when there was one
    /// (relative targets resolve against it).
    pub cd: Option<String>,
    /// How: `redirection >`, `tee`, `sed -i`, `cp`, `python -c`, …
    pub how: String,
}

/// Why a command could not be analysed.
#[derive(Debug, thiserror::Error)]
#[error("failed to parse the Bash command: {message}")]
pub struct ShellError {
    /// What the parser said.
    pub message: String,
}

/// Every write `command` would make, as far as a static reading can tell.
pub fn writes(_command: &str) -> Result<Vec<ShellWrite>, ShellError> {
    Ok(Vec::new())
}
