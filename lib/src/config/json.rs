//! A JSON parser that knows where everything is: positions of every value by JSON pointer,
//! and findings for what strict JSON forbids but people write anyway.
//!
//! IN PROGRESS — interface fixed, body being written.

use std::collections::HashMap;

use serde_json::Value;

use crate::diagnostic::{Diagnostic, Position};

/// The result of parsing one JSON document.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// The value, when the document could be read as one (also after lenient recoveries such
    /// as a trailing comma, a comment, a BOM or a duplicate key, so the schema still runs);
    /// `None` after a fatal syntax error.
    pub value: Option<Value>,
    /// Syntax findings (E001–E007).
    pub diagnostics: Vec<Diagnostic>,
    positions: HashMap<String, Position>,
}

impl Parsed {
    /// Where the value at `pointer` starts; for a pointer without a position (a missing
    /// property), its nearest ancestor's; the document start as a last resort.
    #[must_use]
    pub fn position(&self, pointer: &str) -> Position {
        let mut p = pointer;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return *pos;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => {
                    return Position {
                        line: 1,
                        column: 1,
                        offset: 0,
                    };
                }
            }
        }
    }
}

/// Parses `bytes` as one JSON document; `display` names the file in findings.
#[must_use]
pub fn parse(_display: &str, bytes: &[u8]) -> Parsed {
    Parsed {
        value: serde_json::from_slice(bytes).ok(),
        ..Parsed::default()
    }
}
