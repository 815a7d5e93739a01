//! Checks a schema cannot express: hook event names, matcher regexes, hook executables, MCP
//! entries with `url` but no `type`.
//!
//! IN PROGRESS — interface fixed, body being written.

use serde_json::Value;

use super::{CheckContext, Kind};
use crate::diagnostic::{Diagnostic, Position};

/// Runs the extra checks for `kind` on `value`.
#[must_use]
pub fn run(
    _kind: Kind,
    _display: &str,
    _value: &Value,
    _ctx: &CheckContext,
    _at: &dyn Fn(&str) -> Position,
) -> Vec<Diagnostic> {
    Vec::new()
}
