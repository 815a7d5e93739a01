//! The YAML front matter of a skill's `SKILL.md`, read into a JSON value with the position of
//! every value, so the skill schema and the checks can run on it like on a JSON file.
//!
//! The file must start with a `---` line; the YAML runs to the next `---` line; the body
//! after it is not read. Findings: E006 (not UTF-8), E002 (a byte-order mark, a warning: the
//! rest is still read), E106 (no front matter — a warning, since Claude Code then loads the
//! skill with empty metadata — or front matter that is not a mapping), E001 (YAML syntax, or
//! front matter never closed, aliases that copy too much), E005 (the same key twice in one
//! mapping: YAML forbids it, and a strict reader rejects the front matter). Facts:
//! PROTOCOL.md §5 ("malformed YAML loads the body with empty metadata").
//!
//! Parsing uses yaml-rust2's event API for its markers; scalars are typed as YAML 1.2's core
//! schema does (`true`, `12`, `1.5`, `null`, else a string; quoted values are strings).
//! Hostile input ends fast: yaml-rust2 caps nesting, [`MAX_ALIAS_VALUES`] caps what aliases
//! copy, and a source line longer than 4 KiB is not attached to a finding.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::Yaml;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::schema::child;
use crate::diagnostic::{Code, Diagnostic, Level, Position};

/// The result of reading one `SKILL.md`.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// The front matter as JSON, when there is one and it parses.
    pub value: Option<Value>,
    /// Findings (E001, E002, E005, E006, E106).
    pub diagnostics: Vec<Diagnostic>,
    /// Where each value starts, by JSON pointer.
    positions: HashMap<String, Position>,
}

impl Parsed {
    /// Where the value at `pointer` starts (nearest known ancestor; else line 1).
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

/// Reads the front matter of `bytes`.
#[must_use]
pub fn parse(display: &str, bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let valid = &bytes[..err.valid_up_to()];
            let prefix = String::from_utf8_lossy(valid);
            let line_start = prefix.rfind('\n').map_or(0, |i| i + 1);
            let pos = Position {
                line: prefix.matches('\n').count() + 1,
                column: prefix[line_start..].chars().count() + 1,
                offset: err.valid_up_to(),
            };
            let byte = bytes.get(err.valid_up_to()).copied().unwrap_or_default();
            let message = if err.error_len().is_none() {
                String::from(
                    "the file is not valid UTF-8: it ends in the middle of a character (was it cut short?)",
                )
            } else {
                format!(
                    "the file is not valid UTF-8: byte 0x{byte:02X} cannot start or continue a character; Claude Code reads SKILL.md as UTF-8 — re-save the file as UTF-8 (it may be Latin-1 or Windows-1252)"
                )
            };
            let mut finding = Diagnostic::new(display, pos, Level::Error, Code::E006, message, "");
            finding.source_line = String::from_utf8_lossy(&bytes[line_start..])
                .lines()
                .next()
                .map(str::to_owned);
            parsed.diagnostics.push(finding.capped());
            return parsed;
        }
    };
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(rest) => (3, rest),
        None => (0, text),
    };
    if bom > 0 {
        parsed.diagnostics.push(Diagnostic::new(
            display,
            Position {
                line: 1,
                column: 1,
                offset: 0,
            },
            Level::Warning,
            Code::E002,
            "the file starts with a byte-order mark; a reader that expects `---` as the very first bytes misses the front matter — save it as UTF-8 without BOM",
            "",
        ));
    }
    let mut lines = body.split_inclusive('\n');
    let opening = lines.next().unwrap_or_default();
    if opening.trim_end() != "---" {
        parsed.diagnostics.push(Diagnostic::new(
            display,
            Position::default(),
            Level::Warning,
            Code::E106,
            "no YAML front matter: Claude Code loads this skill with empty metadata (no description for the model to find it by); start the file with a `---` line, `description: …`, and a closing `---` line",
            "",
        ));
        return parsed;
    }
    let yaml_start = bom + opening.len();
    let mut yaml_len = 0;
    let mut closed = false;
    for line in lines {
        if line.trim_end() == "---" {
            closed = true;
            break;
        }
        yaml_len += line.len();
    }
    if !closed {
        parsed.diagnostics.push(
            Diagnostic::new(
                display,
                Position {
                    line: 1,
                    column: 1,
                    offset: bom,
                },
                Level::Error,
                Code::E001,
                "the front matter opened by `---` on line 1 is never closed: add a `---` line after it",
                "",
            )
            .with_source(text)
            .capped(),
        );
        return parsed;
    }
    let yaml = &text[yaml_start..yaml_start + yaml_len];
    read_yaml(display, text, yaml, yaml_start, &mut parsed);
    parsed
}

/// Longest source line, in bytes, kept for the caret display (as the JSON parser does): a
/// longer one would bury the message.
const MAX_SOURCE_LINE: usize = 4096;

/// Drops a source line too long to show.
trait Capped {
    fn capped(self) -> Self;
}

impl Capped for Diagnostic {
    fn capped(mut self) -> Self {
        if self
            .source_line
            .as_ref()
            .is_some_and(|l| l.len() > MAX_SOURCE_LINE)
        {
            self.source_line = None;
        }
        self
    }
}

/// Parses the YAML between the fences (it starts on line 2, at byte `start` of `text`).
fn read_yaml(display: &str, text: &str, yaml: &str, start: usize, parsed: &mut Parsed) {
    let locate = Locator::new(yaml, start);
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(yaml);
    if let Err(err) = parser.load(&mut builder, false) {
        let info = err.info();
        let hint = if info.contains("mapping values are not allowed") {
            " (put a value that contains \": \" in quotes)"
        } else {
            ""
        };
        parsed.diagnostics.push(
            Diagnostic::new(
                display,
                locate.position(*err.marker()),
                Level::Error,
                Code::E001,
                format!(
                    "YAML syntax error in the front matter: {info}{hint}; Claude Code then loads the skill with empty metadata"
                ),
                "",
            )
            .with_source(text)
            .capped(),
        );
        return;
    }
    if builder.too_many_aliases {
        parsed.diagnostics.push(Diagnostic::new(
            display,
            Position {
                line: 2,
                column: 1,
                offset: start,
            },
            Level::Error,
            Code::E001,
            format!(
                "the front matter's aliases (`*name`) copy more than {MAX_ALIAS_VALUES} values; ctxopt stops reading there — skill metadata never needs this"
            ),
            "",
        ));
        return;
    }
    for (pointer, marker, key) in &builder.duplicates {
        parsed.diagnostics.push(Diagnostic::new(
            display,
            locate.position(*marker),
            Level::Error,
            Code::E005,
            format!(
                "the key `{key}` appears twice in the same mapping; YAML forbids it, a strict reader rejects the whole front matter and Claude Code then loads the skill with empty metadata — keep one"
            ),
            pointer.clone(),
        ));
    }
    parsed.positions = builder
        .positions
        .into_iter()
        .map(|(pointer, marker)| (pointer, locate.position(marker)))
        .collect();
    match builder.root {
        None => parsed.value = Some(Value::Object(Map::new())),
        Some(value @ Value::Object(_)) => parsed.value = Some(value),
        Some(other) => {
            let found = match other {
                Value::Array(_) => "a list",
                Value::String(_) => "a string",
                _ => "a single value",
            };
            parsed.diagnostics.push(Diagnostic::new(
                display,
                parsed.position(""),
                Level::Error,
                Code::E106,
                format!(
                    "the front matter must be a mapping of `key: value` lines, found {found}; Claude Code then loads the skill with empty metadata"
                ),
                "",
            ));
        }
    }
}

/// Turns yaml-rust2 markers (line and 0-based character column within the YAML) into
/// positions in the file.
struct Locator<'a> {
    yaml: &'a str,
    /// Byte offset of each YAML line's start within `yaml`.
    line_starts: Vec<usize>,
    /// Byte offset of the YAML in the file.
    start: usize,
}

impl<'a> Locator<'a> {
    fn new(yaml: &'a str, start: usize) -> Self {
        let line_starts = std::iter::once(0)
            .chain(yaml.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            yaml,
            line_starts,
            start,
        }
    }

    fn position(&self, marker: Marker) -> Position {
        let line = marker.line().max(1);
        let line_start = self
            .line_starts
            .get(line - 1)
            .copied()
            .unwrap_or(self.yaml.len());
        let within: usize = self.yaml[line_start..]
            .chars()
            .take(marker.col())
            .map(char::len_utf8)
            .sum();
        Position {
            line: line + 1,
            column: marker.col() + 1,
            offset: self.start + line_start + within,
        }
    }
}

/// A container being filled.
enum Frame {
    Sequence {
        items: Vec<Value>,
        pointer: String,
        anchor: usize,
    },
    Mapping {
        entries: Map<String, Value>,
        pointer: String,
        anchor: usize,
        /// The key whose value comes next, and where the key is; `None` while the next node
        /// is a key.
        key: Option<(String, Marker)>,
    },
}

/// Most values that aliases (`*name`) may copy in one front matter: a few dozen nested
/// aliases would otherwise expand to billions ("billion laughs") and never finish.
const MAX_ALIAS_VALUES: usize = 100_000;

/// Builds a JSON value from parser events, recording where each value starts.
#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Value>,
    /// Anchored values with their size in values.
    anchors: HashMap<usize, (Value, usize)>,
    /// Values copied by aliases so far.
    copied: usize,
    /// Aliases would have copied more than [`MAX_ALIAS_VALUES`].
    too_many_aliases: bool,
    positions: HashMap<String, Marker>,
    /// (pointer, marker, key) of each repeated key.
    duplicates: Vec<(String, Marker, String)>,
}

impl Builder {
    /// The pointer of the node that starts now; `None` when it is a mapping key.
    fn next_pointer(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Sequence { items, pointer, .. }) => {
                Some(format!("{pointer}/{}", items.len()))
            }
            Some(Frame::Mapping { key: None, .. }) => None,
            Some(Frame::Mapping {
                key: Some((key, _)),
                pointer,
                ..
            }) => Some(child(pointer, key)),
        }
    }

    /// Places a finished node: as the root, an item, a key or a value. `marker` is where a
    /// scalar starts (it places a key).
    fn insert(&mut self, value: Value, key_text: Option<String>, anchor: usize, marker: Marker) {
        if anchor > 0 {
            self.anchors.insert(anchor, (value.clone(), size(&value)));
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Sequence { items, .. }) => items.push(value),
            Some(Frame::Mapping {
                entries,
                pointer,
                key,
                ..
            }) => match key.take() {
                None => {
                    let text = key_text.unwrap_or_else(|| match &value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                    *key = Some((text, marker));
                }
                Some((k, key_marker)) => {
                    if entries.contains_key(&k) {
                        self.duplicates
                            .push((child(pointer, &k), key_marker, k.clone()));
                    }
                    entries.insert(k, value);
                }
            },
        }
    }

    fn start(&mut self, frame: impl FnOnce(String) -> Frame, marker: Marker) {
        let pointer = self.next_pointer();
        if let Some(p) = &pointer {
            self.positions.insert(p.clone(), marker);
        }
        self.stack.push(frame(pointer.unwrap_or_default()));
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, marker: Marker) {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                if let Some(p) = self.next_pointer() {
                    self.positions.insert(p, marker);
                }
                let value = scalar(&text, style, tag.as_ref());
                self.insert(value, Some(text), anchor, marker);
            }
            Event::Alias(anchor) => {
                if let Some(p) = self.next_pointer() {
                    self.positions.insert(p, marker);
                }
                let value = match self.anchors.get(&anchor) {
                    Some((value, n)) if self.copied + n <= MAX_ALIAS_VALUES => {
                        self.copied += n;
                        value.clone()
                    }
                    Some(_) => {
                        self.too_many_aliases = true;
                        Value::Null
                    }
                    None => Value::Null,
                };
                self.insert(value, None, 0, marker);
            }
            Event::SequenceStart(anchor, _) => self.start(
                |pointer| Frame::Sequence {
                    items: Vec::new(),
                    pointer,
                    anchor,
                },
                marker,
            ),
            Event::MappingStart(anchor, _) => self.start(
                |pointer| Frame::Mapping {
                    entries: Map::new(),
                    pointer,
                    anchor,
                    key: None,
                },
                marker,
            ),
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor) = match self.stack.pop() {
                    Some(Frame::Sequence { items, anchor, .. }) => (Value::Array(items), anchor),
                    Some(Frame::Mapping {
                        entries, anchor, ..
                    }) => (Value::Object(entries), anchor),
                    None => return,
                };
                self.insert(value, None, anchor, marker);
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// How many values `value` holds, itself included.
fn size(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(size).sum::<usize>(),
        Value::Object(entries) => 1 + entries.values().map(size).sum::<usize>(),
        _ => 1,
    }
}

/// A scalar as YAML 1.2's core schema types it: quoted → string; plain → null, bool, int,
/// float or string; an explicit `!!str` → string.
fn scalar(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    let as_string = style != TScalarStyle::Plain
        || tag.is_some_and(|t| t.handle == "tag:yaml.org,2002:" && t.suffix == "str");
    if as_string {
        return Value::String(text.to_owned());
    }
    match Yaml::from_str(text) {
        Yaml::Integer(i) => Value::Number(i.into()),
        Yaml::Real(real) => real
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(|| Value::String(real), Value::Number),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Null => Value::Null,
        _ => Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fmt::Write as _;

    fn render(p: &Parsed) -> Vec<String> {
        p.diagnostics.iter().map(Diagnostic::render).collect()
    }

    #[test]
    fn reads_front_matter_with_positions() {
        let text = "---\nname: deploy\ndescription: \"Deploy it\"\nallowed-tools:\n  - Bash(git *)\n  - Read\nx: 1.5\n---\nbody\n";
        let p = parse("SKILL.md", text.as_bytes());
        assert!(p.diagnostics.is_empty(), "{:?}", render(&p));
        assert_eq!(
            p.value,
            Some(
                json!({"name": "deploy", "description": "Deploy it", "allowed-tools": ["Bash(git *)", "Read"], "x": 1.5})
            )
        );
        let at = p.position("/description");
        assert_eq!((at.line, at.column), (3, 14));
        assert_eq!(&text[at.offset..at.offset + 3], "\"De");
        let at = p.position("/allowed-tools/1");
        assert_eq!((at.line, at.column), (6, 5));
        assert_eq!(p.position("/nope").line, p.position("").line);
    }

    #[test]
    fn missing_front_matter_is_a_warning() {
        let p = parse("SKILL.md", b"# Deploy\n");
        assert_eq!(p.value, None);
        assert_eq!(p.diagnostics[0].code, Code::E106);
        assert_eq!(p.diagnostics[0].level, Level::Warning);
    }

    #[test]
    fn yaml_error_has_line_and_column() {
        let p = parse("SKILL.md", b"---\nname: x\ndescription: Deploy: now\n---\n");
        assert_eq!(p.value, None);
        let d = &p.diagnostics[0];
        assert_eq!((d.code, d.line), (Code::E001, 3));
        assert!(d.message.contains("quotes"), "{}", d.message);
    }

    #[test]
    fn duplicate_key_bom_and_crlf() {
        let p = parse(
            "SKILL.md",
            "\u{feff}---\r\nname: a\r\nname: b\r\n---\r\n".as_bytes(),
        );
        let codes: Vec<Code> = p.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, [Code::E002, Code::E005]);
        assert_eq!(p.value, Some(json!({"name": "b"})));
        assert_eq!(p.diagnostics[1].line, 3);
    }

    #[test]
    fn hostile_nesting_and_aliases_end_quickly() {
        let deep = format!(
            "---\nx: {}{}\n---\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let p = parse("SKILL.md", deep.as_bytes());
        assert_eq!(p.diagnostics[0].code, Code::E001);
        assert_eq!(
            p.diagnostics[0].source_line, None,
            "a 200 KB line is not shown"
        );
        let mut laughs = String::from("---\na: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..12_u8 {
            let (name, prev) = (char::from(b'b' + i), char::from(b'a' + i));
            let refs = vec![format!("*{prev}"); 10].join(", ");
            let _ = writeln!(laughs, "{name}: &{name} [{refs}]");
        }
        laughs.push_str("---\n");
        let p = parse("SKILL.md", laughs.as_bytes());
        assert_eq!(p.value, None);
        assert!(
            p.diagnostics[0].message.contains("aliases"),
            "{:?}",
            p.diagnostics
        );
        let small = parse("SKILL.md", b"---\na: &a [1, 2]\nb: *a\n---\n");
        assert_eq!(small.value, Some(json!({"a": [1, 2], "b": [1, 2]})));
    }

    #[test]
    fn not_utf8_and_not_a_mapping() {
        let p = parse("SKILL.md", b"---\nname: \xff\n---\n");
        assert_eq!(
            (
                p.diagnostics[0].code,
                p.diagnostics[0].line,
                p.diagnostics[0].column
            ),
            (Code::E006, 2, 7)
        );
        let p = parse("SKILL.md", b"---\n- a\n---\n");
        assert_eq!(p.diagnostics[0].code, Code::E106);
        assert_eq!(p.diagnostics[0].level, Level::Error);
        let p = parse("SKILL.md", b"---\n---\nbody");
        assert_eq!(p.value, Some(json!({})));
    }
}
