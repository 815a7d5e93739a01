//! Findings about a config file, in a form a person can act on and a script can read.
//!
//! Human form (one finding):
//! ```text
//! .claude/settings.json:4:18: error[E003]: trailing comma before `}` (at /hooks)
//!     4 |     "PreToolUse": [],
//!       |                    ^
//! ```
//! `--json` form: the same fields as an object. Codes are stable: tests and scripts match on
//! them, and a message may be reworded without breaking anyone. The table of codes lives in
//! [`Code`].

use std::fmt::Write as _;

use serde::Serialize;

/// How bad a finding is. An `Error` fails validation (exit 1, a blocked commit, a Critical
/// record at session start); a `Warning` is reported and lets the file pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Fails validation.
    Error,
    /// Reported; passes.
    Warning,
}

/// The stable code of each kind of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Code {
    /// Not JSON (or not YAML front matter): a syntax error.
    E001,
    /// A UTF-8 byte-order mark before the JSON.
    E002,
    /// A trailing comma in an object or array.
    E003,
    /// A comment (`//` or `/* */`) in strict JSON.
    E004,
    /// The same key twice in one object (`serde_json` silently keeps the last).
    E005,
    /// Not UTF-8.
    E006,
    /// Nested deeper than the parser allows.
    E007,
    /// The file could not be read (missing, unreadable, not a regular file, too large).
    E008,
    /// The value does not match the file's schema.
    E100,
    /// A hook event name Claude Code does not know (older clients drop the whole file).
    W101,
    /// A hook matcher that is not a valid regular expression.
    E102,
    /// A hook command whose executable does not exist.
    E103,
    /// A hook command whose executable is not executable.
    E104,
    /// An MCP server with a `url` but no `type`.
    E105,
    /// A skill's `SKILL.md` without front matter, or with front matter that is not a mapping.
    E106,
}

impl Code {
    /// The code as printed: `E003`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::E001 => "E001",
            Self::E002 => "E002",
            Self::E003 => "E003",
            Self::E004 => "E004",
            Self::E005 => "E005",
            Self::E006 => "E006",
            Self::E007 => "E007",
            Self::E008 => "E008",
            Self::E100 => "E100",
            Self::W101 => "W101",
            Self::E102 => "E102",
            Self::E103 => "E103",
            Self::E104 => "E104",
            Self::E105 => "E105",
            Self::E106 => "E106",
        }
    }
}

/// A place in a file: 1-based line and column (in characters), and the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// 0-based byte offset.
    #[serde(skip)]
    pub offset: usize,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file as the user named it (or as discovery found it).
    pub file: String,
    /// 1-based line (0 when the finding is about the whole file).
    pub line: usize,
    /// 1-based column (0 when the finding is about the whole file).
    pub column: usize,
    /// error or warning.
    pub level: Level,
    /// The stable code.
    pub code: Code,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
    /// JSON pointer of the value concerned (`""` for the whole document).
    pub pointer: String,
    /// The offending line, for syntax errors (shown with a caret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// A finding at `pos` in `file`.
    #[must_use]
    pub fn new(
        file: &str,
        pos: Position,
        level: Level,
        code: Code,
        message: impl Into<String>,
        pointer: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_owned(),
            line: pos.line,
            column: pos.column,
            level,
            code,
            message: message.into(),
            pointer: pointer.into(),
            source_line: None,
        }
    }

    /// Attaches the source line at `pos` from `text` (for the caret display).
    #[must_use]
    pub fn with_source(mut self, text: &str) -> Self {
        self.source_line = text
            .lines()
            .nth(self.line.saturating_sub(1))
            .map(|l| l.trim_end_matches('\r').to_owned());
        self
    }

    /// Whether this finding fails validation.
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }

    /// The human form: `path:line:column: error[CODE]: message (at /pointer)`, and for
    /// syntax errors the line with a caret under the column.
    #[must_use]
    pub fn render(&self) -> String {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        let mut out = if self.line == 0 {
            format!(
                "{}: {level}[{}]: {}",
                self.file,
                self.code.as_str(),
                self.message
            )
        } else {
            format!(
                "{}:{}:{}: {level}[{}]: {}",
                self.file,
                self.line,
                self.column,
                self.code.as_str(),
                self.message
            )
        };
        if !self.pointer.is_empty() {
            let _ = write!(out, " (at {})", self.pointer);
        }
        if let Some(source) = &self.source_line {
            let number = self.line.to_string();
            let gutter = " ".repeat(number.len());
            let caret_pad: String = source
                .chars()
                .take(self.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = write!(out, "\n {number} | {source}\n {gutter} | {caret_pad}^");
        }
        out
    }
}

/// Sorts findings by file, then position, then code — the order they are printed in.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (a.file.as_str(), a.line, a.column, a.code.as_str()).cmp(&(
            b.file.as_str(),
            b.line,
            b.column,
            b.code.as_str(),
        ))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_code_pointer_and_caret() {
        let text = "{\n  \"a\": 1,\n}\n";
        let d = Diagnostic::new(
            ".claude/settings.json",
            Position {
                line: 2,
                column: 9,
                offset: 0,
            },
            Level::Error,
            Code::E003,
            "trailing comma before `}`",
            "",
        )
        .with_source(text);
        assert_eq!(
            d.render(),
            ".claude/settings.json:2:9: error[E003]: trailing comma before `}`\n 2 |   \"a\": 1,\n   |         ^"
        );
    }

    #[test]
    fn whole_file_findings_have_no_position() {
        let d = Diagnostic::new(
            "x.json",
            Position::default(),
            Level::Warning,
            Code::W101,
            "m",
            "/hooks/Foo",
        );
        assert_eq!(d.render(), "x.json: warning[W101]: m (at /hooks/Foo)");
    }
}
