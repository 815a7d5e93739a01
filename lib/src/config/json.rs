//! A JSON parser that knows where everything is: positions of every value by JSON pointer,
//! and findings for what strict JSON forbids but people write anyway.
//!
//! `serde_json` stops at the first problem with a bare "line 4 column 18"; this parser names
//! what it expected and what it found, reads past the mistakes that leave the meaning clear,
//! and records where every value starts so later checks (schema, hooks) can point at the
//! offending line. It builds exactly the [`Value`] `serde_json` would build (numbers are read
//! by `serde_json` itself; key order is kept; a duplicate key keeps the last value) and never
//! touches the file system.
//!
//! Every finding is an error: each one makes Claude Code's strict JSON parser reject the file.
//!
//! Recoveries — the finding is reported and parsing goes on, so [`Parsed::value`] is `Some`
//! and the schema still runs:
//! - `E002` a UTF-8 byte-order mark: skipped; lines and columns are counted after it.
//! - `E003` a trailing comma before `}` or `]`: ignored (reported at the comma).
//! - `E004` a `//` or `/* */` comment: skipped.
//! - `E005` a key twice in one object: the last value wins, in the first key's place (what
//!   `serde_json` does); reported at the second key.
//!
//! Fatal — [`Parsed::value`] is `None`:
//! - `E001` any other syntax error, an empty file, or anything after the document.
//! - `E006` bytes that are not UTF-8 (reported at the first bad byte).
//! - `E007` arrays and objects nested deeper than [`MAX_DEPTH`] (256). The parser recurses
//!   once per level and stops at the limit, so a hostile file nested 10,000 deep costs
//!   nothing; no real config nests past a handful of levels.
//!
//! - `E008` input of 4 GiB or more (positions are stored as `u32`); callers cap config files
//!   far below that ([`super::MAX_CONFIG_BYTES`]).
//!
//! Cost is linear in the input: one pass over the bytes; line and column come from a cursor
//! that only moves forward; each value adds one fixed-size record (no allocation, no hashing)
//! and a pointer is resolved only when [`Parsed::position`] is asked, by walking those
//! records (array index: direct; object key: binary search). A finding's source line is
//! copied only up to 4 KiB, so a minified one-line file does not make findings quadratic.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

use crate::diagnostic::{Code, Diagnostic, Level, Position};

/// How deeply arrays and objects may nest before parsing stops with `E007`.
pub const MAX_DEPTH: usize = 256;

/// Longest source line, in bytes, copied into a finding for the caret display. A longer line
/// (a minified or corrupt file) would bury the message, so the finding goes without it.
const MAX_SOURCE_LINE: usize = 4096;

/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The result of parsing one JSON document.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// The value, when the document could be read as one (also after lenient recoveries such
    /// as a trailing comma, a comment, a BOM or a duplicate key, so the schema still runs);
    /// `None` after a fatal syntax error.
    pub value: Option<Value>,
    /// Syntax findings (E001–E007).
    pub diagnostics: Vec<Diagnostic>,
    positions: Positions,
}

impl Parsed {
    /// Where the value at `pointer` starts; for a pointer without a position (a missing
    /// property), its nearest ancestor's; the document start as a last resort.
    #[must_use]
    pub fn position(&self, pointer: &str) -> Position {
        self.positions.get(pointer)
    }
}

/// Parses `bytes` as one JSON document; `display` names the file in findings.
#[must_use]
pub fn parse(display: &str, bytes: &[u8]) -> Parsed {
    let (body, base) = match bytes.strip_prefix(BOM) {
        Some(rest) => (rest, BOM.len()),
        None => (bytes, 0),
    };
    let mut diagnostics = Vec::new();
    if u32::try_from(bytes.len()).is_err() {
        diagnostics.push(Diagnostic::new(
            display,
            Position::default(),
            Level::Error,
            Code::E008,
            "the file is 4 GiB or larger; ctxopt does not parse a config file this large",
            "",
        ));
        return Parsed {
            value: None,
            diagnostics,
            positions: Positions::default(),
        };
    }
    if base > 0 {
        let mut bom = Diagnostic::new(
            display,
            Position {
                line: 1,
                column: 1,
                offset: 0,
            },
            Level::Error,
            Code::E002,
            "the file starts with a byte-order mark; Claude Code's JSON parser rejects it — save as UTF-8 without BOM",
            "",
        );
        bom.source_line = source_line(body, 0);
        diagnostics.push(bom);
    }
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(err) => {
            diagnostics.push(not_utf8(display, body, base, err.valid_up_to()));
            return Parsed {
                value: None,
                diagnostics,
                positions: Positions::default(),
            };
        }
    };
    let mut parser = Parser {
        file: display,
        text,
        bytes: body,
        base,
        pos: 0,
        cursor: Cursor::START,
        path: String::new(),
        positions: Positions::default(),
        scratch: Vec::new(),
        key_stack: Vec::new(),
        diagnostics,
    };
    let value = parser.document().ok();
    Parsed {
        value,
        diagnostics: parser.diagnostics,
        positions: parser.positions,
    }
}

/// The `E006` finding for bytes that are not UTF-8; `bad` is the first bad byte in `body`.
fn not_utf8(display: &str, body: &[u8], base: usize, bad: usize) -> Diagnostic {
    let mut cursor = Cursor::START;
    cursor.advance(body, bad);
    let message = if bad == 0 && (body.starts_with(b"\xFF\xFE") || body.starts_with(b"\xFE\xFF")) {
        String::from(
            "the file is UTF-16 (it starts with a UTF-16 byte-order mark); Claude Code reads config files as UTF-8 — save it as UTF-8 without BOM",
        )
    } else if std::str::from_utf8(&body[bad..]).is_err_and(|e| e.error_len().is_none()) {
        String::from(
            "the file is not valid UTF-8: it ends in the middle of a character (was it cut short?)",
        )
    } else {
        format!(
            "the file is not valid UTF-8: byte 0x{:02X} cannot start or continue a character; Claude Code reads config files as UTF-8 — re-save the file as UTF-8 (it may be Latin-1 or Windows-1252)",
            body[bad]
        )
    };
    let mut d = Diagnostic::new(
        display,
        cursor.position(base),
        Level::Error,
        Code::E006,
        message,
        "",
    );
    d.source_line = source_line(body, cursor.line_start);
    d
}

/// The line starting at `line_start`, as [`Diagnostic::with_source`] would take it, or `None`
/// when it is longer than [`MAX_SOURCE_LINE`]. Costs at most that many bytes, so many findings
/// on one huge line stay linear.
fn source_line(bytes: &[u8], line_start: usize) -> Option<String> {
    let rest = bytes.get(line_start..)?;
    let window = &rest[..rest.len().min(MAX_SOURCE_LINE + 1)];
    let end = match window.iter().position(|&b| b == b'\n') {
        Some(end) => end,
        None if rest.len() <= MAX_SOURCE_LINE => rest.len(),
        None => return None,
    };
    let line = String::from_utf8_lossy(&rest[..end]);
    Some(line.trim_end_matches('\r').to_owned())
}

/// Appends `key` to `path` as one RFC 6901 reference token (`~` → `~0`, `/` → `~1`).
fn push_token(path: &mut String, key: &str) {
    path.push('/');
    if key.contains(['~', '/']) {
        for c in key.chars() {
            match c {
                '~' => path.push_str("~0"),
                '/' => path.push_str("~1"),
                _ => path.push(c),
            }
        }
    } else {
        path.push_str(key);
    }
}

/// A key as shown in a message: control characters escaped so the message stays one line.
fn shown(key: &str) -> String {
    if key.chars().any(char::is_control) {
        key.escape_debug().to_string()
    } else {
        key.to_owned()
    }
}

/// Turns byte offsets into lines and columns. It moves forward only (a request behind it
/// starts over from the top, which the parser never makes), so all positions of one parse
/// cost a single pass over the text.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    offset: usize,
    line: usize,
    column: usize,
    line_start: usize,
}

impl Cursor {
    const START: Self = Self {
        offset: 0,
        line: 1,
        column: 1,
        line_start: 0,
    };

    fn advance(&mut self, bytes: &[u8], to: usize) {
        if to < self.offset {
            *self = Self::START;
        }
        let to = to.min(bytes.len());
        for (i, &b) in bytes[self.offset..to].iter().enumerate() {
            if b == b'\n' {
                self.line += 1;
                self.column = 1;
                self.line_start = self.offset + i + 1;
            } else if b & 0xC0 != 0x80 {
                self.column += 1;
            }
        }
        self.offset = to;
    }

    fn position(&self, base: usize) -> Position {
        Position {
            line: self.line,
            column: self.column,
            offset: base + self.offset,
        }
    }
}

/// A place in the text with the start of its line (for the source line of a finding).
#[derive(Debug, Clone, Copy)]
struct Spot {
    position: Position,
    line_start: usize,
}

/// A fatal syntax error, already reported.
#[derive(Debug)]
struct Fatal;

type Step<T> = Result<T, Fatal>;

/// Where each value starts, recorded while parsing at the cost of one 28-byte record per
/// value (no allocation, no hashing) and looked up by pointer only when a finding needs it.
/// Indices and offsets are `u32`: [`parse`] refuses input of 4 GiB or more.
#[derive(Debug, Clone, Default)]
struct Positions {
    /// One per value, in document order, the root first.
    nodes: Vec<Node>,
    /// Each container's children (node indices) as a run: array elements in order; object
    /// members sorted by key (a stable sort, so of duplicate keys the last — the one kept —
    /// comes last).
    children: Vec<u32>,
    /// The keys of all object members, back to back.
    keys: String,
}

/// One value's record in [`Positions`].
#[derive(Debug, Clone, Copy)]
struct Node {
    line: u32,
    column: u32,
    offset: u32,
    /// The member's key as a range of [`Positions::keys`]; [`NO_KEY`] for array elements and
    /// the root.
    key: (u32, u32),
    /// A container's children as a range of [`Positions::children`].
    children: (u32, u32),
}

/// The key of a value that is not an object member.
const NO_KEY: (u32, u32) = (u32::MAX, u32::MAX);

/// `n` as a `u32`; the input-size limit of [`parse`] keeps every index and offset below it.
fn narrow(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Node {
    fn position(&self) -> Position {
        Position {
            line: self.line as usize,
            column: self.column as usize,
            offset: self.offset as usize,
        }
    }
}

impl Positions {
    fn node(&self, index: u32) -> &Node {
        &self.nodes[index as usize]
    }

    fn key(&self, node: u32) -> &str {
        let (start, end) = self.node(node).key;
        self.keys.get(start as usize..end as usize).unwrap_or("")
    }

    /// The child of `node` that the pointer token `token` names.
    fn child(&self, node: &Node, token: &str) -> Option<u32> {
        let kids = &self.children[node.children.0 as usize..node.children.1 as usize];
        let &first = kids.first()?;
        if self.node(first).key == NO_KEY {
            return kids.get(token.parse::<usize>().ok()?).copied();
        }
        let key = if token.contains('~') {
            Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
        } else {
            Cow::Borrowed(token)
        };
        let end = kids.partition_point(|&c| self.key(c) <= key.as_ref());
        let last = *kids.get(end.checked_sub(1)?)?;
        (self.key(last) == key).then_some(last)
    }

    /// The position of the deepest value on the way to `pointer`.
    fn get(&self, pointer: &str) -> Position {
        let Some(mut node) = self.nodes.first() else {
            return Position {
                line: 1,
                column: 1,
                offset: 0,
            };
        };
        if let Some(rest) = pointer.strip_prefix('/') {
            for token in rest.split('/') {
                match self.child(node, token) {
                    Some(child) => node = self.node(child),
                    None => break,
                }
            }
        }
        node.position()
    }
}

/// The members of one object being read, with what duplicate detection needs: where each
/// key first appeared (in [`Parser::key_stack`] from `base`), and each key's index, built
/// only once a duplicate turns up.
struct Members {
    map: Map<String, Value>,
    base: usize,
    index: Option<HashMap<String, usize>>,
}

impl Members {
    /// Adds a member. A key already present keeps its place and takes the new value (as in
    /// `serde_json`); then the result is where the key first appeared, and the key.
    fn insert(
        &mut self,
        key: String,
        at: Position,
        value: Value,
        key_stack: &mut Vec<Position>,
    ) -> Option<(Position, String)> {
        let key = match self.map.entry(key) {
            Entry::Vacant(entry) => {
                if let Some(index) = &mut self.index {
                    index.insert(entry.key().clone(), key_stack.len() - self.base);
                }
                key_stack.push(at);
                entry.insert(value);
                return None;
            }
            Entry::Occupied(mut entry) => {
                entry.insert(value);
                entry.key().clone()
            }
        };
        let map = &self.map;
        let index = self
            .index
            .get_or_insert_with(|| map.keys().cloned().zip(0..).collect());
        let first = index
            .get(&key)
            .and_then(|&i| key_stack.get(self.base + i))
            .copied()?;
        Some((first, key))
    }
}

struct Parser<'a> {
    file: &'a str,
    text: &'a str,
    bytes: &'a [u8],
    /// Bytes before `text` in the file (the BOM), added to every offset.
    base: usize,
    pos: usize,
    cursor: Cursor,
    /// JSON pointer of the value being read.
    path: String,
    positions: Positions,
    /// Children of the open containers (node indices), each container's run on top.
    scratch: Vec<u32>,
    /// Key positions of the open objects' members, each object's run on top.
    key_stack: Vec<Position>,
    diagnostics: Vec<Diagnostic>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn spot(&mut self, at: usize) -> Spot {
        self.cursor.advance(self.bytes, at);
        Spot {
            position: self.cursor.position(self.base),
            line_start: self.cursor.line_start,
        }
    }

    fn report(&mut self, spot: Spot, code: Code, message: String, pointer: String) {
        let mut d = Diagnostic::new(
            self.file,
            spot.position,
            Level::Error,
            code,
            message,
            pointer,
        );
        d.source_line = source_line(self.bytes, spot.line_start);
        self.diagnostics.push(d);
    }

    /// Reports a fatal `E001` at `at` (pointing at the value being read).
    fn fail(&mut self, at: usize, message: String) -> Fatal {
        let spot = self.spot(at);
        let pointer = self.path.clone();
        self.report(spot, Code::E001, message, pointer);
        Fatal
    }

    /// What is at `at`, for "found …": `` `x` ``, `U+00A0`, or "end of file".
    fn found(&self, at: usize) -> String {
        match self.text.get(at..).and_then(|s| s.chars().next()) {
            None => String::from("end of file"),
            Some('\0') => String::from("U+0000 (a NUL byte: is the file UTF-16?)"),
            Some(c)
                if c.is_control() || c.is_whitespace() || matches!(c, '\u{FEFF}' | '\u{200B}') =>
            {
                format!("U+{:04X}", u32::from(c))
            }
            Some(c) => format!("`{c}`"),
        }
    }

    /// Whitespace and comments (each comment an `E004`).
    fn skip_trivia(&mut self) -> Step<()> {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                b'/' if self.comment()? => {}
                _ => break,
            }
        }
        Ok(())
    }

    /// Skips the comment at `self.pos`, if it is one.
    fn comment(&mut self) -> Step<bool> {
        let start = self.pos;
        let bytes = self.bytes;
        match bytes.get(start + 1) {
            Some(b'/') => {
                self.pos = bytes[start..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |n| start + n);
            }
            Some(b'*') => match self.text[start + 2..].find("*/") {
                Some(n) => self.pos = start + 2 + n + 2,
                None => {
                    return Err(self.fail(
                        start,
                        String::from(
                            "unterminated `/*` comment: no `*/` before the end of the file",
                        ),
                    ));
                }
            },
            _ => return Ok(false),
        }
        let spot = self.spot(start);
        let pointer = self.path.clone();
        self.report(
            spot,
            Code::E004,
            String::from(
                "comments are not allowed in JSON; Claude Code's strict parser rejects the file — remove the comment",
            ),
            pointer,
        );
        Ok(true)
    }

    fn document(&mut self) -> Step<Value> {
        self.skip_trivia()?;
        if self.pos >= self.bytes.len() {
            if self.text.trim_matches([' ', '\t', '\n', '\r']).is_empty() {
                self.diagnostics.push(Diagnostic::new(
                    self.file,
                    Position::default(),
                    Level::Error,
                    Code::E001,
                    "the file is empty; a config file must hold one JSON object (`{}` at least)",
                    "",
                ));
                return Err(Fatal);
            }
            return Err(self.fail(
                self.pos,
                String::from(
                    "the file holds only comments; a config file must hold one JSON object (`{}` at least)",
                ),
            ));
        }
        let value = self.value(0, NO_KEY)?;
        let end = self.spot(self.pos - 1).position;
        self.skip_trivia()?;
        if self.pos < self.bytes.len() {
            let found = self.found(self.pos);
            return Err(self.fail(
                self.pos,
                format!(
                    "unexpected {found} after the end of the JSON document (its top-level value ends at line {}, column {}); a config file holds exactly one value — look for a stray or early closing bracket",
                    end.line, end.column
                ),
            ));
        }
        Ok(value)
    }

    /// The value at `self.pos` (trivia already skipped), `depth` containers deep; `key` is
    /// its key in [`Positions::keys`] when it is an object member.
    fn value(&mut self, depth: usize, key: (u32, u32)) -> Step<Value> {
        let at = self.pos;
        let position = self.spot(at).position;
        let node = self.positions.nodes.len();
        self.positions.nodes.push(Node {
            line: narrow(position.line),
            column: narrow(position.column),
            offset: narrow(position.offset),
            key,
            children: (0, 0),
        });
        let base = self.scratch.len();
        let value = match self.peek() {
            Some(b'{') => Value::Object(self.object(depth + 1)?),
            Some(b'[') => Value::Array(self.array(depth + 1)?),
            Some(b'"') => return self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => return self.number(),
            Some(b't') => return self.literal("true", Value::Bool(true)),
            Some(b'f') => return self.literal("false", Value::Bool(false)),
            Some(b'n') => return self.literal("null", Value::Null),
            _ => return Err(self.not_a_value(at)),
        };
        let kids = &mut self.scratch[base..];
        if value.is_object() {
            let positions = &self.positions;
            kids.sort_by(|&a, &b| positions.key(a).cmp(positions.key(b)));
        }
        let start = narrow(self.positions.children.len());
        self.positions.children.extend(self.scratch.drain(base..));
        self.positions.nodes[node].children = (start, narrow(self.positions.children.len()));
        Ok(value)
    }

    fn literal(&mut self, word: &str, value: Value) -> Step<Value> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.not_a_value(self.pos))
        }
    }

    /// The `E001` for something at `at` that cannot start a value.
    fn not_a_value(&mut self, at: usize) -> Fatal {
        let word: String = self.text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(32)
            .collect();
        let message = if word.is_empty() {
            let found = self.found(at);
            let hint = match self.bytes.get(at) {
                Some(b'\'') => "; JSON strings use double quotes",
                Some(b'.' | b'+') => "; a JSON number starts with a digit or `-`",
                Some(b',') => "; there is an extra `,` or a missing value",
                _ => "",
            };
            format!("expected a value, found {found}{hint}")
        } else {
            let lower = word.to_ascii_lowercase();
            let hint = if ["true", "false", "null"]
                .iter()
                .any(|l| l.starts_with(&lower) || lower == *l || lower == "none")
            {
                "; JSON's literals are `true`, `false` and `null`, in lower case"
            } else if ["nan", "infinity", "undefined"].contains(&lower.as_str()) {
                "; JSON has no such value"
            } else {
                "; a string needs double quotes"
            };
            format!("expected a value, found `{word}`{hint}")
        };
        self.fail(at, message)
    }

    fn too_deep(&mut self, at: usize) -> Fatal {
        let spot = self.spot(at);
        let pointer = self.path.clone();
        self.report(
            spot,
            Code::E007,
            format!(
                "arrays and objects nested more than {MAX_DEPTH} deep; ctxopt stops reading here — no config file nests this deep, so the file is almost certainly generated wrong"
            ),
            pointer,
        );
        Fatal
    }

    /// The comma at `self.pos` and what follows it; `true` when it was a trailing comma
    /// before `close` (reported as `E003` and consumed with the bracket).
    fn comma(&mut self, close: u8) -> Step<bool> {
        let comma = self.spot(self.pos);
        self.pos += 1;
        self.skip_trivia()?;
        if self.peek() != Some(close) {
            return Ok(false);
        }
        let pointer = self.path.clone();
        self.report(
            comma,
            Code::E003,
            format!(
                "trailing comma before `{}`; Claude Code's strict parser rejects it — remove the comma",
                char::from(close)
            ),
            pointer,
        );
        self.pos += 1;
        Ok(true)
    }

    fn object(&mut self, depth: usize) -> Step<Map<String, Value>> {
        if depth > MAX_DEPTH {
            return Err(self.too_deep(self.pos));
        }
        self.pos += 1;
        let base = self.key_stack.len();
        let map = self.members(depth, base);
        self.key_stack.truncate(base);
        map
    }

    /// The members of the object being read, up to and including its `}`.
    fn members(&mut self, depth: usize, base: usize) -> Step<Map<String, Value>> {
        let mut members = Members {
            map: Map::new(),
            base,
            index: None,
        };
        self.skip_trivia()?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(members.map);
        }
        loop {
            let key_at = self.pos;
            if self.peek() != Some(b'"') {
                return Err(self.not_a_key(key_at, members.map.is_empty()));
            }
            let key_spot = self.spot(key_at);
            let key = self.string()?;
            self.skip_trivia()?;
            if self.peek() != Some(b':') {
                let found = self.found(self.pos);
                return Err(self.fail(
                    self.pos,
                    format!(
                        "expected `:` after the key `{}`, found {found}",
                        shown(&key)
                    ),
                ));
            }
            self.pos += 1;
            self.skip_trivia()?;
            let len = self.path.len();
            push_token(&mut self.path, &key);
            let key_start = self.positions.keys.len();
            self.positions.keys.push_str(&key);
            let key_range = (narrow(key_start), narrow(self.positions.keys.len()));
            let node = narrow(self.positions.nodes.len());
            let value = self.value(depth, key_range)?;
            self.scratch.push(node);
            let duplicate = members.insert(key, key_spot.position, value, &mut self.key_stack);
            if let Some((first, key)) = duplicate {
                let pointer = self.path.clone();
                self.report(
                    key_spot,
                    Code::E005,
                    format!(
                        "duplicate key `{}` (first at line {}, column {}); serde_json and Claude Code keep only the last one",
                        shown(&key),
                        first.line,
                        first.column
                    ),
                    pointer,
                );
            }
            self.path.truncate(len);
            self.skip_trivia()?;
            match self.peek() {
                Some(b',') => {
                    if self.comma(b'}')? {
                        return Ok(members.map);
                    }
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(members.map);
                }
                _ => {
                    let found = self.found(self.pos);
                    return Err(self.fail(
                        self.pos,
                        format!("expected `,` or `}}` after an object member, found {found}"),
                    ));
                }
            }
        }
    }

    /// The `E001` for something at `at` where a key should start.
    fn not_a_key(&mut self, at: usize, first: bool) -> Fatal {
        let found = self.found(at);
        let hint = match self.bytes.get(at) {
            Some(b'\'') => "; JSON strings use double quotes",
            Some(b) if b.is_ascii_alphabetic() || *b == b'_' => "; object keys need double quotes",
            _ => "",
        };
        let message = if first {
            format!("expected a key in double quotes or `}}`, found {found}{hint}")
        } else {
            format!("expected a key in double quotes after `,`, found {found}{hint}")
        };
        self.fail(at, message)
    }

    fn array(&mut self, depth: usize) -> Step<Vec<Value>> {
        if depth > MAX_DEPTH {
            return Err(self.too_deep(self.pos));
        }
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_trivia()?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(items);
        }
        loop {
            let len = self.path.len();
            let _ = write!(self.path, "/{}", items.len());
            let node = narrow(self.positions.nodes.len());
            let item = self.value(depth, NO_KEY)?;
            self.scratch.push(node);
            self.path.truncate(len);
            items.push(item);
            self.skip_trivia()?;
            match self.peek() {
                Some(b',') => {
                    if self.comma(b']')? {
                        return Ok(items);
                    }
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(items);
                }
                _ => {
                    let found = self.found(self.pos);
                    return Err(self.fail(
                        self.pos,
                        format!("expected `,` or `]` after an array element, found {found}"),
                    ));
                }
            }
        }
    }

    /// The string whose opening quote is at `self.pos`.
    fn string(&mut self) -> Step<String> {
        let open = self.pos;
        let text = self.text;
        let bytes = self.bytes;
        let mut out: Option<String> = None;
        let mut run = open + 1;
        let mut i = run;
        loop {
            match bytes.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    let tail = &text[run..i];
                    return Ok(match out {
                        Some(mut s) => {
                            s.push_str(tail);
                            s
                        }
                        None => tail.to_owned(),
                    });
                }
                Some(b'\\') => {
                    let s = out.get_or_insert_with(String::new);
                    s.push_str(&text[run..i]);
                    i = self.escape(i, s)?;
                    run = i;
                }
                Some(&b) if b < 0x20 => return Err(self.control_in_string(i, b)),
                Some(_) => i += 1,
                None => {
                    let start = self.spot(open).position;
                    return Err(self.fail(
                        i,
                        format!(
                            "unterminated string: the string that starts at line {}, column {} has no closing `\"`",
                            start.line, start.column
                        ),
                    ));
                }
            }
        }
    }

    fn control_in_string(&mut self, at: usize, b: u8) -> Fatal {
        let message = match b {
            b'\n' | b'\r' => String::from(
                "line break inside a string; a JSON string cannot span lines — close it with `\"` or write the break as `\\n`",
            ),
            b'\t' => String::from("tab inside a string; write it as `\\t`"),
            _ => format!("control character U+{b:04X} inside a string; write it as `\\u{b:04X}`"),
        };
        self.fail(at, message)
    }

    /// Appends the escape at `at` (a `\`) to `out`; returns the index after it.
    fn escape(&mut self, at: usize, out: &mut String) -> Step<usize> {
        let c = match self.bytes.get(at + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let (c, next) = self.unicode_escape(at)?;
                out.push(c);
                return Ok(next);
            }
            None => {
                return Err(self.fail(
                    at,
                    String::from("unterminated string: the file ends after a `\\`"),
                ));
            }
            Some(_) => {
                let found = self.found(at + 1);
                return Err(self.fail(
                    at,
                    format!(
                        "invalid escape: `\\` followed by {found}; JSON allows only \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX — to write a backslash (as in a Windows path), double it: `\\\\`"
                    ),
                ));
            }
        };
        out.push(c);
        Ok(at + 2)
    }

    /// Four hex digits at `at`, if there are.
    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.bytes.get(at..at + 4)?;
        digits
            .iter()
            .try_fold(0, |n, &d| char::from(d).to_digit(16).map(|d| n * 16 + d))
    }

    /// The `\u` escape at `at` (with its low surrogate, when it is a high one).
    fn unicode_escape(&mut self, at: usize) -> Step<(char, usize)> {
        let Some(unit) = self.hex4(at + 2) else {
            return Err(self.fail(
                at,
                String::from("invalid `\\u` escape: expected four hex digits after `\\u`"),
            ));
        };
        let (code, next) = match unit {
            0xD800..=0xDBFF => {
                let low = if self.bytes.get(at + 6..at + 8) == Some(b"\\u") {
                    self.hex4(at + 8)
                } else {
                    None
                };
                match low {
                    Some(low @ 0xDC00..=0xDFFF) => {
                        (0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00), at + 12)
                    }
                    _ => return Err(self.lone_surrogate(at, unit)),
                }
            }
            0xDC00..=0xDFFF => return Err(self.lone_surrogate(at, unit)),
            _ => (unit, at + 6),
        };
        match char::from_u32(code) {
            Some(c) => Ok((c, next)),
            None => Err(self.lone_surrogate(at, unit)),
        }
    }

    fn lone_surrogate(&mut self, at: usize, unit: u32) -> Fatal {
        self.fail(
            at,
            format!(
                "unpaired surrogate `\\u{unit:04X}`: a `\\uD800`–`\\uDBFF` escape must be followed by a `\\uDC00`–`\\uDFFF` one (serde_json cannot read it); write the character itself instead"
            ),
        )
    }

    /// The number at `self.pos`, checked against JSON's grammar here and converted by
    /// `serde_json` so it is exactly what `serde_json` would make.
    fn number(&mut self) -> Step<Value> {
        let start = self.pos;
        let bytes = self.bytes;
        let digits_from = |mut i: usize| {
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        let mut i = start;
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        match bytes.get(i) {
            Some(b'0') => {
                i += 1;
                if bytes.get(i).is_some_and(u8::is_ascii_digit) {
                    return Err(self.fail(
                        start,
                        String::from("a JSON number cannot start with `0` followed by digits (no leading zeros)"),
                    ));
                }
            }
            Some(b'1'..=b'9') => i = digits_from(i),
            _ => {
                let found = self.found(i);
                return Err(self.fail(i, format!("expected a digit after `-`, found {found}")));
            }
        }
        let integer = i;
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            if !bytes.get(i).is_some_and(u8::is_ascii_digit) {
                let found = self.found(i);
                return Err(self.fail(
                    i,
                    format!("expected a digit after the decimal point, found {found}"),
                ));
            }
            i = digits_from(i);
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(bytes.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !bytes.get(i).is_some_and(u8::is_ascii_digit) {
                let found = self.found(i);
                return Err(self.fail(
                    i,
                    format!("expected a digit in the exponent, found {found}"),
                ));
            }
            i = digits_from(i);
        }
        self.pos = i;
        let text = &self.text[start..i];
        if i == integer
            && bytes[start] != b'-'
            && text.len() <= 19
            && let Ok(n) = text.parse::<u64>()
        {
            return Ok(Value::Number(Number::from(n)));
        }
        match text.parse::<Number>() {
            Ok(n) => Ok(Value::Number(n)),
            Err(_) => Err(self.fail(
                start,
                format!(
                    "the number `{text}` is out of range for a 64-bit float; serde_json (and so ctxopt) cannot read it"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(parsed: &Parsed) -> Vec<Code> {
        parsed.diagnostics.iter().map(|d| d.code).collect()
    }

    fn at(line: usize, column: usize, offset: usize) -> Position {
        Position {
            line,
            column,
            offset,
        }
    }

    fn assert_same_as_serde(text: &str) {
        let parsed = parse("t.json", text.as_bytes());
        let expected: Value = serde_json::from_str(text).unwrap();
        assert_eq!(parsed.diagnostics, vec![], "{text}");
        let value = parsed.value.unwrap();
        assert_eq!(value, expected, "{text}");
        assert_eq!(value.to_string(), expected.to_string(), "{text}");
    }

    #[test]
    fn e001_missing_comma_names_what_was_expected_and_found() {
        let text = "{\n  \"a\": 1\n  \"b\": 2\n}\n";
        let parsed = parse(".claude/settings.json", text.as_bytes());
        assert_eq!(parsed.value, None);
        assert_eq!(codes(&parsed), vec![Code::E001]);
        assert_eq!(
            parsed.diagnostics[0].render(),
            ".claude/settings.json:3:3: error[E001]: expected `,` or `}` after an object member, found `\"`\n 3 |   \"b\": 2\n   |   ^"
        );
    }

    #[test]
    fn e001_points_into_nested_values() {
        let text = "{\"hooks\": {\"PreToolUse\": [1 2]}}";
        let parsed = parse("s.json", text.as_bytes());
        assert_eq!(
            parsed.diagnostics[0].render(),
            "s.json:1:29: error[E001]: expected `,` or `]` after an array element, found `2` (at /hooks/PreToolUse)\n 1 | {\"hooks\": {\"PreToolUse\": [1 2]}}\n   |                             ^"
        );
    }

    /// Inputs with one fatal syntax error, and its message.
    const E001_CASES: &[(&str, &str)] = &[
        ("{\"a\" 1}", "expected `:` after the key `a`, found `1`"),
        (
            "{'a': 1}",
            "expected a key in double quotes or `}`, found `'`; JSON strings use double quotes",
        ),
        (
            "{a: 1}",
            "expected a key in double quotes or `}`, found `a`; object keys need double quotes",
        ),
        (
            "{\"a\": 1, 2}",
            "expected a key in double quotes after `,`, found `2`",
        ),
        ("{\"a\": }", "expected a value, found `}`"),
        (
            "[1,,2]",
            "expected a value, found `,`; there is an extra `,` or a missing value",
        ),
        (
            "{\"a\": True}",
            "expected a value, found `True`; JSON's literals are `true`, `false` and `null`, in lower case",
        ),
        (
            "[tru]",
            "expected a value, found `tru`; JSON's literals are `true`, `false` and `null`, in lower case",
        ),
        (
            "[NaN]",
            "expected a value, found `NaN`; JSON has no such value",
        ),
        (
            "{\"a\": hello}",
            "expected a value, found `hello`; a string needs double quotes",
        ),
        (
            "[.5]",
            "expected a value, found `.`; a JSON number starts with a digit or `-`",
        ),
        (
            "[01]",
            "a JSON number cannot start with `0` followed by digits (no leading zeros)",
        ),
        ("[-x]", "expected a digit after `-`, found `x`"),
        (
            "[1.]",
            "expected a digit after the decimal point, found `]`",
        ),
        ("[1e+]", "expected a digit in the exponent, found `]`"),
        (
            "[1e400]",
            "the number `1e400` is out of range for a 64-bit float; serde_json (and so ctxopt) cannot read it",
        ),
        (
            "[\"a\\qb\"]",
            "invalid escape: `\\` followed by `q`; JSON allows only \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX — to write a backslash (as in a Windows path), double it: `\\\\`",
        ),
        (
            "[\"\\u12\"]",
            "invalid `\\u` escape: expected four hex digits after `\\u`",
        ),
        (
            "[\"\\uD83D\"]",
            "unpaired surrogate `\\uD83D`: a `\\uD800`–`\\uDBFF` escape must be followed by a `\\uDC00`–`\\uDFFF` one (serde_json cannot read it); write the character itself instead",
        ),
        (
            "[\"\\uDE00\"]",
            "unpaired surrogate `\\uDE00`: a `\\uD800`–`\\uDBFF` escape must be followed by a `\\uDC00`–`\\uDFFF` one (serde_json cannot read it); write the character itself instead",
        ),
        (
            "[\"a\nb\"]",
            "line break inside a string; a JSON string cannot span lines — close it with `\"` or write the break as `\\n`",
        ),
        ("[\"a\tb\"]", "tab inside a string; write it as `\\t`"),
        (
            "[\"a\u{1}b\"]",
            "control character U+0001 inside a string; write it as `\\u0001`",
        ),
        (
            "[\"abc",
            "unterminated string: the string that starts at line 1, column 2 has no closing `\"`",
        ),
        (
            "[\"abc\\",
            "unterminated string: the file ends after a `\\`",
        ),
        (
            "[1",
            "expected `,` or `]` after an array element, found end of file",
        ),
        ("{\"a\":\u{a0}1}", "expected a value, found U+00A0"),
        (
            "{}}",
            "unexpected `}` after the end of the JSON document (its top-level value ends at line 1, column 2); a config file holds exactly one value — look for a stray or early closing bracket",
        ),
        (
            "{} {}",
            "unexpected `{` after the end of the JSON document (its top-level value ends at line 1, column 2); a config file holds exactly one value — look for a stray or early closing bracket",
        ),
        (
            "/* x",
            "unterminated `/*` comment: no `*/` before the end of the file",
        ),
        (
            "// only a comment\n",
            "the file holds only comments; a config file must hold one JSON object (`{}` at least)",
        ),
        (
            "{\0\"\0",
            "expected a key in double quotes or `}`, found U+0000 (a NUL byte: is the file UTF-16?)",
        ),
    ];

    #[test]
    fn e001_messages() {
        for &(text, message) in E001_CASES {
            let parsed = parse("t.json", text.as_bytes());
            assert_eq!(parsed.value, None, "{text:?}");
            let fatal: Vec<_> = parsed
                .diagnostics
                .iter()
                .filter(|d| d.code == Code::E001)
                .collect();
            assert_eq!(fatal.len(), 1, "{text:?}: {:?}", parsed.diagnostics);
            assert_eq!(fatal[0].message, message, "{text:?}");
            assert_eq!(fatal[0].level, Level::Error);
        }
    }

    #[test]
    fn e001_positions_of_syntax_errors() {
        let parsed = parse("t.json", "{\n  \"é\": x\n}".as_bytes());
        let d = &parsed.diagnostics[0];
        assert_eq!((d.line, d.column), (2, 8));
        assert_eq!(d.pointer, "/é");
        let parsed = parse("t.json", b"[\"abc");
        let d = &parsed.diagnostics[0];
        assert_eq!((d.line, d.column), (1, 6));
    }

    #[test]
    fn e001_empty_and_whitespace_only_files() {
        for text in ["", "  \n\t\r\n"] {
            let parsed = parse("s.json", text.as_bytes());
            assert_eq!(parsed.value, None);
            assert_eq!(codes(&parsed), vec![Code::E001]);
            assert_eq!(
                parsed.diagnostics[0].render(),
                "s.json: error[E001]: the file is empty; a config file must hold one JSON object (`{}` at least)"
            );
        }
    }

    #[test]
    fn e002_bom_is_reported_and_skipped() {
        let parsed = parse("s.json", b"\xEF\xBB\xBF{\"a\": [1]}");
        assert_eq!(codes(&parsed), vec![Code::E002]);
        assert_eq!(
            parsed.diagnostics[0].render(),
            "s.json:1:1: error[E002]: the file starts with a byte-order mark; Claude Code's JSON parser rejects it — save as UTF-8 without BOM\n 1 | {\"a\": [1]}\n   | ^"
        );
        assert_eq!(parsed.value, Some(serde_json::json!({"a": [1]})));
        assert_eq!(parsed.position(""), at(1, 1, 3));
        assert_eq!(parsed.position("/a/0"), at(1, 8, 10));
    }

    #[test]
    fn e003_trailing_comma_is_reported_at_the_comma() {
        let text = "{\n  \"hooks\": {\n    \"PreToolUse\": [],\n  },\n  \"x\": [1, 2,],\n}\n";
        let parsed = parse(".claude/settings.json", text.as_bytes());
        assert_eq!(codes(&parsed), vec![Code::E003, Code::E003, Code::E003]);
        assert_eq!(
            parsed.diagnostics[0].render(),
            ".claude/settings.json:3:21: error[E003]: trailing comma before `}`; Claude Code's strict parser rejects it — remove the comma (at /hooks)\n 3 |     \"PreToolUse\": [],\n   |                     ^"
        );
        let found: Vec<_> = parsed
            .diagnostics
            .iter()
            .map(|d| (d.line, d.column, d.pointer.as_str()))
            .collect();
        assert_eq!(found, vec![(3, 21, "/hooks"), (5, 13, "/x"), (5, 15, "")]);
        assert_eq!(
            parsed.diagnostics[1].message,
            "trailing comma before `]`; Claude Code's strict parser rejects it — remove the comma"
        );
        assert_eq!(
            parsed.value,
            Some(serde_json::json!({"hooks": {"PreToolUse": []}, "x": [1, 2]}))
        );
    }

    #[test]
    fn e003_then_comment_before_bracket() {
        let parsed = parse("t.json", b"[1, /* c */\n]");
        assert_eq!(codes(&parsed), vec![Code::E004, Code::E003]);
        assert_eq!(
            (parsed.diagnostics[1].line, parsed.diagnostics[1].column),
            (1, 3)
        );
        assert_eq!(parsed.value, Some(serde_json::json!([1])));
    }

    #[test]
    fn e004_comments_are_reported_and_skipped() {
        let text =
            "// settings\n{\n  /* block\n  comment */ \"a\": 1, // trailing\n  \"b\": 2\n}\n";
        let parsed = parse("t.json", text.as_bytes());
        assert_eq!(codes(&parsed), vec![Code::E004, Code::E004, Code::E004]);
        let places: Vec<_> = parsed
            .diagnostics
            .iter()
            .map(|d| (d.line, d.column))
            .collect();
        assert_eq!(places, vec![(1, 1), (3, 3), (4, 22)]);
        assert_eq!(
            parsed.diagnostics[0].message,
            "comments are not allowed in JSON; Claude Code's strict parser rejects the file — remove the comment"
        );
        assert_eq!(parsed.value, Some(serde_json::json!({"a": 1, "b": 2})));
        assert_eq!(parsed.position("/b"), at(5, 8, 65));
    }

    #[test]
    fn e005_duplicate_key_keeps_the_last_value_in_the_first_place() {
        let text = "{\n  \"model\": \"opus\",\n  \"env\": {},\n  \"model\": \"sonnet\"\n}";
        let parsed = parse("s.json", text.as_bytes());
        assert_eq!(codes(&parsed), vec![Code::E005]);
        assert_eq!(
            parsed.diagnostics[0].render(),
            "s.json:4:3: error[E005]: duplicate key `model` (first at line 2, column 3); serde_json and Claude Code keep only the last one (at /model)\n 4 |   \"model\": \"sonnet\"\n   |   ^"
        );
        let value = parsed.value.clone().unwrap();
        let expected: Value = serde_json::from_str(text).unwrap();
        assert_eq!(value, expected);
        assert_eq!(value.to_string(), expected.to_string());
        assert_eq!(value.to_string(), r#"{"model":"sonnet","env":{}}"#);
        assert_eq!(parsed.position("/model"), at(4, 12, 45));
    }

    #[test]
    fn e005_positions_follow_the_value_that_is_kept() {
        let text = "{\"a\": {\"y\": 1}, \"b\": [0], \"a\": {\"z\": 2}, \"a\": {\"w\": 3}}";
        let parsed = parse("t.json", text.as_bytes());
        assert_eq!(codes(&parsed), vec![Code::E005, Code::E005]);
        let kept = text.rfind("{\"w").unwrap();
        assert_eq!(parsed.position("/a").offset, kept);
        assert_eq!(parsed.position("/a/w").offset, kept + 6);
        assert_eq!(parsed.position("/a/y").offset, kept);
        assert_eq!(parsed.position("/a/z").offset, kept);
        assert_eq!(parsed.position("/b/0").offset, text.find('0').unwrap());
        assert_eq!(parsed.position("/b/1").offset, text.find('[').unwrap());
        assert_eq!(parsed.position("/b/x").offset, text.find('[').unwrap());
        assert_eq!(
            parsed.diagnostics[1].message,
            "duplicate key `a` (first at line 1, column 2); serde_json and Claude Code keep only the last one"
        );
    }

    #[test]
    fn e005_many_duplicates_of_many_keys() {
        let mut text = String::from("{");
        for i in 0..2000 {
            let _ = write!(text, "\"k{i}\": {i},");
        }
        for i in 0..2000 {
            let _ = write!(text, "\"k{}\": 0,", i % 7);
        }
        text.push_str("\"k3\": 3}");
        let parsed = parse("t.json", text.as_bytes());
        assert_eq!(parsed.diagnostics.len(), 2001);
        assert!(parsed.diagnostics.iter().all(|d| d.code == Code::E005));
        assert_eq!(
            parsed.diagnostics[2000].message,
            "duplicate key `k3` (first at line 1, column 26); serde_json and Claude Code keep only the last one"
        );
        let expected: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.value.unwrap().to_string(), expected.to_string());
    }

    #[test]
    fn e006_invalid_utf8_is_reported_at_the_first_bad_byte() {
        let parsed = parse("s.json", b"{\n  \"caf\xC3\xA9\": \"caf\xE9\"\n}");
        assert_eq!(parsed.value, None);
        assert_eq!(codes(&parsed), vec![Code::E006]);
        let d = &parsed.diagnostics[0];
        assert_eq!((d.line, d.column), (2, 15));
        assert_eq!(
            d.message,
            "the file is not valid UTF-8: byte 0xE9 cannot start or continue a character; Claude Code reads config files as UTF-8 — re-save the file as UTF-8 (it may be Latin-1 or Windows-1252)"
        );
        assert_eq!(
            d.source_line.as_deref(),
            Some("  \"café\": \"caf\u{FFFD}\"")
        );

        let utf16 = parse("s.json", b"\xFF\xFE{\0}\0");
        assert_eq!(codes(&utf16), vec![Code::E006]);
        assert!(utf16.diagnostics[0].message.contains("UTF-16"));
        assert_eq!(
            (utf16.diagnostics[0].line, utf16.diagnostics[0].column),
            (1, 1)
        );

        let cut = parse("s.json", b"\xEF\xBB\xBF[\"\xE2\x82");
        assert_eq!(codes(&cut), vec![Code::E002, Code::E006]);
        assert_eq!(cut.diagnostics[1].column, 3);
        assert!(cut.diagnostics[1].message.contains("cut short"));
    }

    #[test]
    fn e007_depth_limit_is_256() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        let parsed = parse("t.json", ok.as_bytes());
        assert_eq!(codes(&parsed), vec![]);
        assert!(parsed.value.is_some());

        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let parsed = parse("t.json", deep.as_bytes());
        assert_eq!(parsed.value, None);
        assert_eq!(codes(&parsed), vec![Code::E007]);
        let d = &parsed.diagnostics[0];
        assert_eq!((d.line, d.column), (1, MAX_DEPTH + 1));
        assert_eq!(
            d.message,
            "arrays and objects nested more than 256 deep; ctxopt stops reading here — no config file nests this deep, so the file is almost certainly generated wrong"
        );
        assert_eq!(d.pointer, "/0".repeat(MAX_DEPTH));
    }

    #[test]
    fn e007_ten_thousand_deep_returns_without_overflowing_the_stack() {
        let arrays = "[".repeat(10_000);
        let objects = "{\"a\":".repeat(10_000);
        let mixed = "[{\"a\":".repeat(5_000);
        for text in [arrays, objects, mixed] {
            let started = std::time::Instant::now();
            let parsed = parse("t.json", text.as_bytes());
            assert_eq!(parsed.value, None);
            assert_eq!(codes(&parsed), vec![Code::E007]);
            assert!(started.elapsed() < std::time::Duration::from_secs(1));
        }
    }

    #[test]
    fn positions_of_nested_values_by_pointer() {
        let text = "{\n  \"hooks\": {\n    \"PreToolUse\": [\n      { \"matcher\": \"Bash\", \"hooks\": [ { \"type\": \"command\" } ] }\n    ]\n  }\n}\n";
        let parsed = parse("s.json", text.as_bytes());
        assert_eq!(codes(&parsed), vec![]);
        assert_eq!(parsed.position(""), at(1, 1, 0));
        assert_eq!(parsed.position("/hooks"), at(2, 12, 13));
        assert_eq!(parsed.position("/hooks/PreToolUse"), at(3, 19, 33));
        assert_eq!(parsed.position("/hooks/PreToolUse/0"), at(4, 7, 41));
        assert_eq!(
            parsed.position("/hooks/PreToolUse/0/matcher"),
            at(4, 20, 54)
        );
        assert_eq!(
            parsed.position("/hooks/PreToolUse/0/hooks/0/type"),
            at(4, 49, 83)
        );
        assert_eq!(&text[83..92], "\"command\"");
    }

    #[test]
    fn positions_count_characters_not_bytes_and_handle_crlf() {
        let text = "{\r\n  \"név\": \"ü\", \"x\": 1\r\n}";
        let parsed = parse("s.json", text.as_bytes());
        assert_eq!(parsed.position("/név"), at(2, 10, 13));
        assert_eq!(parsed.position("/x"), at(2, 20, 24));
        assert_eq!(&text[24..25], "1");
        let parsed = parse("s.json", "{\r\n  \"a\": 1,\r\n}".as_bytes());
        assert_eq!(
            parsed.diagnostics[0].source_line.as_deref(),
            Some("  \"a\": 1,")
        );
    }

    /// Every recorded position against a count from the top of the file, and against the
    /// value the pointer names (its first byte must be where that kind of value starts).
    fn check_every_position(text: &str) {
        fn pointers(value: &Value, at: &mut String, out: &mut Vec<String>) {
            out.push(at.clone());
            let len = at.len();
            match value {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let _ = write!(at, "/{i}");
                        pointers(item, at, out);
                        at.truncate(len);
                    }
                }
                Value::Object(map) => {
                    for (key, item) in map {
                        push_token(at, key);
                        pointers(item, at, out);
                        at.truncate(len);
                    }
                }
                _ => {}
            }
        }
        let parsed = parse("t.json", text.as_bytes());
        let value = parsed.value.as_ref().unwrap();
        let mut all = Vec::new();
        pointers(value, &mut String::new(), &mut all);
        for pointer in &all {
            let position = parsed.position(pointer);
            let before = &text[..position.offset];
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before[line_start..].chars().count() + 1;
            assert_eq!(
                (position.line, position.column),
                (line, column),
                "{pointer}"
            );
            let named = value.pointer(pointer).unwrap();
            let first = text.as_bytes()[position.offset];
            let expected = match named {
                Value::Null => b'n',
                Value::Bool(true) => b't',
                Value::Bool(false) => b'f',
                Value::String(_) => b'"',
                Value::Array(_) => b'[',
                Value::Object(_) => b'{',
                Value::Number(n) => n.to_string().as_bytes()[0],
            };
            assert_eq!(first, expected, "{pointer}");
        }
    }

    #[test]
    fn positions_agree_with_a_count_from_the_top() {
        check_every_position(include_str!(
            "../../../fixtures/settings/existing-hooks.json"
        ));
        check_every_position(&large_document(20_000));
        check_every_position(
            "{\"é😀\": [\"ü\", {\"a/b~\": [null, true, false, -1]}],\r\n\t\"\": 0}",
        );
    }

    #[test]
    fn pointers_escape_tilde_and_slash() {
        let text = r#"{"a/b": {"m~n": [0, {"": 5}]}}"#;
        let parsed = parse("s.json", text.as_bytes());
        assert_eq!(parsed.position("/a~1b").column, 9);
        assert_eq!(parsed.position("/a~1b/m~0n").column, 17);
        assert_eq!(parsed.position("/a~1b/m~0n/1/").column, 26);
        let value = parsed.value.unwrap();
        assert_eq!(value.pointer("/a~1b/m~0n/1/"), Some(&Value::from(5)));
    }

    #[test]
    fn position_falls_back_to_the_nearest_ancestor() {
        let text = "{\n  \"hooks\": {\n    \"Stop\": []\n  }\n}";
        let parsed = parse("s.json", text.as_bytes());
        assert_eq!(parsed.position("/hooks/Stop/0/hooks"), at(3, 13, 27));
        assert_eq!(parsed.position("/hooks/Missing"), at(2, 12, 13));
        assert_eq!(parsed.position("/nothing"), at(1, 1, 0));
        let failed = parse("s.json", b"");
        assert_eq!(failed.position("/x"), at(1, 1, 0));
    }

    #[test]
    fn numbers_are_exactly_what_serde_json_makes() {
        let numbers = [
            "0",
            "-0",
            "1",
            "-1",
            "42",
            "9007199254740993",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
            "1234567890123456789",
            "12345678901234567890",
            "0.1",
            "-0.0",
            "1.5",
            "3.141592653589793",
            "2.2250738585072014e-308",
            "1e3",
            "1E3",
            "1e+3",
            "1e-3",
            "-1.25e-7",
            "1.7976931348623157e308",
            "5e-324",
            "1e-400",
            "0.30000000000000004",
            "123456789012345678901234567890.5e-10",
        ];
        for n in numbers {
            let parsed = parse("t.json", n.as_bytes());
            let expected: Value = serde_json::from_str(n).unwrap();
            let value = parsed.value.unwrap();
            assert_eq!(value, expected, "{n}");
            assert_eq!(value.to_string(), expected.to_string(), "{n}");
            assert_eq!(value.is_u64(), expected.is_u64(), "{n}");
            assert_eq!(value.is_i64(), expected.is_i64(), "{n}");
            assert_eq!(value.is_f64(), expected.is_f64(), "{n}");
        }
        assert_eq!(
            parse("t.json", b"-0")
                .value
                .unwrap()
                .as_f64()
                .map(f64::is_sign_negative),
            Some(true)
        );
        assert_eq!(
            parse("t.json", b"18446744073709551615")
                .value
                .unwrap()
                .as_u64(),
            Some(u64::MAX)
        );
    }

    #[test]
    fn strings_with_escapes_and_surrogate_pairs() {
        let cases = [
            r#""plain""#,
            r#""""#,
            r#""quote \" backslash \\ slash \/ \b \f \n \r \t""#,
            r#""\u0041\u00e9\u20AC\uFFFF""#,
            r#""emoji \uD83D\uDE00 and \ud834\udd1e""#,
            r#""raw é ü 日本 😀""#,
            r#""C:\\Users\\me""#,
            r#""\u0000 nul""#,
            r#""mixed \"a\"é\u00e9😀\n end""#,
        ];
        for text in cases {
            assert_same_as_serde(text);
        }
        assert_eq!(
            parse("t.json", br#""\uD83D\uDE00""#).value,
            Some(Value::from("😀"))
        );
        assert_eq!(
            codes(&parse("t.json", br#""\uD83D\u0041""#)),
            vec![Code::E001]
        );
        assert_eq!(codes(&parse("t.json", br#""\uD83Dx""#)), vec![Code::E001]);
    }

    #[test]
    fn recoveries_keep_the_value() {
        let text = "\u{feff}// my settings\n{\n  \"model\": \"opus\",\n  \"permissions\": {\"allow\": [\"Bash\",],},\n  \"model\": \"sonnet\", /* last */\n}\n";
        let parsed = parse("s.json", text.as_bytes());
        let mut found = codes(&parsed);
        found.sort_by_key(|c| c.as_str());
        assert_eq!(
            found,
            vec![
                Code::E002,
                Code::E003,
                Code::E003,
                Code::E003,
                Code::E004,
                Code::E004,
                Code::E005
            ]
        );
        assert!(parsed.diagnostics.iter().all(Diagnostic::is_error));
        let value = parsed.value.as_ref().unwrap();
        assert_eq!(
            value.to_string(),
            r#"{"model":"sonnet","permissions":{"allow":["Bash"]}}"#
        );
        assert_eq!(parsed.position("/permissions/allow/0"), at(4, 29, 67));
    }

    #[test]
    fn a_real_settings_file_parses_to_what_serde_json_gives() {
        let fixture = include_str!("../../../fixtures/settings/existing-hooks.json");
        assert_same_as_serde(fixture);
        let settings = r#"{
  "$schema": "https://json.schemastore.org/claude-code-settings.json",
  "model": "claude-opus-4-1",
  "cleanupPeriodDays": 30,
  "includeCoAuthoredBy": false,
  "env": { "BASH_DEFAULT_TIMEOUT_MS": "120000", "DISABLE_TELEMETRY": "1" },
  "permissions": {
    "allow": ["Bash(npm run lint)", "Bash(git diff:*)", "Read(~/.zshrc)", "WebFetch(domain:docs.rs)"],
    "ask": ["Bash(git push:*)"],
    "deny": ["Read(./.env)", "Read(./secrets/**)", "Bash(curl:*)"],
    "additionalDirectories": ["../docs/"],
    "defaultMode": "acceptEdits"
  },
  "hooks": {
    "PreToolUse": [
      {
        "matcher": "Edit|MultiEdit|Write",
        "hooks": [
          { "type": "command", "command": "\"$CLAUDE_PROJECT_DIR\"/.claude/hooks/guard.sh", "timeout": 10 }
        ]
      },
      { "matcher": "mcp__memory__.*", "hooks": [ { "type": "command", "command": "echo \"mcp\" >> ~/log.txt" } ] }
    ],
    "SessionStart": [ { "matcher": "startup", "hooks": [ { "type": "command", "command": "ctxopt-session-start" } ] } ],
    "Notification": [ { "hooks": [ { "type": "command", "command": "notify-send 'Claude \u2014 waiting'" } ] } ]
  },
  "statusLine": { "type": "command", "command": "~/.claude/statusline.sh", "padding": 0 },
  "enabledPlugins": { "formatter@tools": true },
  "sandbox": { "enabled": true, "excludedCommands": ["docker"], "network": { "allowLocalBinding": true } },
  "apiKeyHelper": null,
  "numbers": [0, -1, 1.5, 2e10]
}
"#;
        assert_same_as_serde(settings);
        let parsed = parse("s.json", settings.as_bytes());
        assert_eq!(
            parsed.position("/hooks/PreToolUse/1/matcher"),
            at(22, 20, 791)
        );
        assert_eq!(&settings[791..792], "\"");
    }

    /// A deterministic linear congruential generator (Knuth's MMIX constants).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next()).unwrap() % n
        }
    }

    fn random_value(rng: &mut Lcg, depth: usize) -> Value {
        let strings = [
            "", "a", "é", "a/b", "m~n", "\"q\"", "\\", "\n\t", "😀", "\u{1}", "x y",
        ];
        match rng.below(if depth > 4 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 0),
            2 => Value::from(rng.next().cast_signed() - (1 << 30)),
            3 => serde_json::from_str(&format!(
                "{}.{}e{}",
                rng.below(1000),
                rng.below(1000),
                rng.below(40)
            ))
            .unwrap(),
            4 => Value::from(strings[rng.below(strings.len())]),
            5 => Value::Array(
                (0..rng.below(4))
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.below(4))
                    .map(|_| {
                        (
                            strings[rng.below(strings.len())].to_owned(),
                            random_value(rng, depth + 1),
                        )
                    })
                    .collect(),
            ),
        }
    }

    /// Our verdict against `serde_json`'s on any input: never a panic; where `serde_json` reads
    /// a value we read the same one, with no finding but duplicate keys; where we read one
    /// without findings, `serde_json` reads the same.
    fn check_against_serde(bytes: &[u8]) {
        let parsed = parse("f.json", bytes);
        let theirs = serde_json::from_slice::<Value>(bytes);
        let clean = parsed.diagnostics.iter().all(|d| d.code == Code::E005);
        match (&parsed.value, theirs) {
            (Some(ours), Ok(theirs)) => {
                assert_eq!(ours.to_string(), theirs.to_string(), "{bytes:?}");
            }
            (None, Ok(_)) => panic!(
                "serde_json reads {bytes:?}, we report {:?}",
                parsed.diagnostics
            ),
            (Some(_), Err(err)) => assert!(!clean, "we read {bytes:?} cleanly, serde_json: {err}"),
            (None, Err(_)) => assert!(!parsed.diagnostics.is_empty(), "{bytes:?}"),
        }
        for d in &parsed.diagnostics {
            assert!(d.is_error());
        }
    }

    #[test]
    fn fuzzish_never_panics_and_agrees_with_serde_json() {
        let mut rng = Lcg(0x5eed);
        let tokens: [&[u8]; 28] = [
            b"{",
            b"}",
            b"[",
            b"]",
            b"\"a\"",
            b"\"\\u00e9\"",
            b":",
            b",",
            b" ",
            b"\n",
            b"1",
            b"-0.5e3",
            b"0",
            b"true",
            b"nul",
            b"//",
            b"/*",
            b"*/",
            b"\"",
            b"\\",
            b"\\u",
            b"D83D",
            b"\xEF\xBB\xBF",
            b"\xC3\xA9",
            b"\xE9",
            b"\t",
            b"'",
            b"e",
        ];
        for _ in 0..400 {
            let len = rng.below(24);
            let bytes: Vec<u8> = (0..len)
                .flat_map(|_| tokens[rng.below(tokens.len())].iter().copied())
                .collect();
            check_against_serde(&bytes);
            let raw: Vec<u8> = (0..rng.below(16))
                .map(|_| (rng.next() & 0xFF) as u8)
                .collect();
            check_against_serde(&raw);
        }
        for _ in 0..300 {
            let value = random_value(&mut rng, 0);
            let text = if rng.below(2) == 0 {
                serde_json::to_string(&value).unwrap()
            } else {
                serde_json::to_string_pretty(&value).unwrap()
            };
            let parsed = parse("f.json", text.as_bytes());
            assert!(
                parsed.diagnostics.iter().all(|d| d.code == Code::E005),
                "{text}: {:?}",
                parsed.diagnostics
            );
            check_against_serde(text.as_bytes());
            let mut mutated = text.into_bytes();
            let i = rng.below(mutated.len());
            match rng.below(3) {
                0 => {
                    mutated.remove(i);
                }
                1 => mutated.insert(i, tokens[rng.below(tokens.len())][0]),
                _ => mutated[i] = (rng.next() & 0xFF) as u8,
            }
            check_against_serde(&mutated);
        }
    }

    /// A settings-shaped document of about `target` bytes.
    fn large_document(target: usize) -> String {
        let mut text = String::from("{\n  \"hooks\": {\n    \"PreToolUse\": [\n");
        let mut i = 0;
        while text.len() < target {
            let _ = writeln!(
                text,
                "      {{ \"matcher\": \"Bash|Edit_{i}\", \"hooks\": [ {{ \"type\": \"command\", \"command\": \"\\\"$CLAUDE_PROJECT_DIR\\\"/.claude/hooks/h{i}.sh --flag é\", \"timeout\": {} }} ], \"weights\": [1.5, -2, 3e4, true, null] }},",
                i % 60
            );
            i += 1;
        }
        text.push_str("      {}\n    ]\n  }\n}\n");
        text
    }

    #[test]
    fn a_large_document_parses_like_serde_json() {
        let text = large_document(200_000);
        assert_same_as_serde(&text);
    }

    /// `cargo test --release -p ctxopt-core config::json::tests::speed -- --ignored --nocapture`
    #[test]
    #[ignore = "timing; run in release"]
    fn speed_on_a_50_mb_file() {
        let text = large_document(50 * 1024 * 1024);
        let started = std::time::Instant::now();
        let parsed = parse("big.json", text.as_bytes());
        let ours = started.elapsed();
        let started = std::time::Instant::now();
        let theirs: Value = serde_json::from_str(&text).unwrap();
        let serde = started.elapsed();
        println!(
            "{} bytes, {} values: json::parse {ours:?}, serde_json::from_str {serde:?}",
            text.len(),
            parsed.positions.nodes.len()
        );
        assert_eq!(parsed.value, Some(theirs));
        assert!(parsed.diagnostics.is_empty());
    }
}
