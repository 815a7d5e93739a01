//! The fast reading of the common command line: simple commands joined by `;`, `&&`, `||`
//! and `|`, with plain, `'…'` and `"…"` words and output redirections — the shape of most
//! commands an agent runs (`grep -rn x src | sort -u > /tmp/out.txt && cat out.txt`).
//!
//! [`parse`] builds the same [`ast::Program`] brush-parser would for such a line, in a single
//! pass over its bytes, so the walk that reads the writes out of it is the very same code
//! ([`super::Walker`]). Anything outside that shape — an expansion (`$`, a backtick), an
//! escape, a `(`, `{`, `<`, `&` alone, a `#`, a newline, a reserved word or an assignment in
//! command position, a byte beyond ASCII outside quotes — returns `None`, and brush-parser
//! reads the line. brush-parser costs ≈ 80 µs on a 1 KB line; this ≈ 2 µs (BENCHMARKS.md). A
//! differential test holds the two to the same writes on the command table and on generated
//! command lines.

use brush_parser::ast;

/// Words that start a compound command or change how a line parses in command position.
const RESERVED: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for",
    "in", "function", "select", "time", "coproc", "{", "}", "!", "[[", "]]",
];

/// Builtins whose `NAME=value` operands the parser reads as assignments.
const DECLARATIONS: &[&str] = &["export", "declare", "local", "readonly", "typeset", "alias"];

/// `code` as brush-parser would parse it, when it has the simple shape of the module doc;
/// `None` otherwise (the caller parses it fully).
pub(super) fn parse(code: &str) -> Option<ast::Program> {
    let mut lexer = Lexer {
        bytes: code.as_bytes(),
        at: 0,
    };
    let mut items = Vec::new();
    loop {
        let and_or = lexer.and_or()?;
        items.push(ast::CompoundListItem(
            and_or,
            ast::SeparatorOperator::Sequence,
        ));
        lexer.blanks();
        match lexer.peek() {
            None => break,
            Some(b';') => {
                lexer.at += 1;
                lexer.blanks();
                if lexer.peek().is_none() {
                    break;
                }
            }
            Some(_) => return None,
        }
    }
    Some(ast::Program {
        complete_commands: vec![ast::CompoundList(items)],
    })
}

struct Lexer<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.at + ahead).copied()
    }

    fn blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn and_or(&mut self) -> Option<ast::AndOrList> {
        let first = self.pipeline()?;
        let mut additional = Vec::new();
        loop {
            self.blanks();
            match (self.peek(), self.peek_at(1)) {
                (Some(b'&'), Some(b'&')) => {
                    self.at += 2;
                    additional.push(ast::AndOr::And(self.pipeline()?));
                }
                (Some(b'|'), Some(b'|')) => {
                    self.at += 2;
                    additional.push(ast::AndOr::Or(self.pipeline()?));
                }
                _ => break,
            }
        }
        Some(ast::AndOrList { first, additional })
    }

    fn pipeline(&mut self) -> Option<ast::Pipeline> {
        let mut seq = vec![self.command()?];
        loop {
            self.blanks();
            match (self.peek(), self.peek_at(1)) {
                (Some(b'|'), Some(b'&')) => return None,
                (Some(b'|'), next) if next != Some(b'|') => {
                    self.at += 1;
                    seq.push(self.command()?);
                }
                _ => break,
            }
        }
        Some(ast::Pipeline {
            timed: None,
            bang: false,
            seq,
        })
    }

    fn command(&mut self) -> Option<ast::Command> {
        let mut prefix = Vec::new();
        let mut name: Option<ast::Word> = None;
        let mut suffix = Vec::new();
        loop {
            self.blanks();
            let item = match (self.peek(), self.peek_at(1)) {
                (None | Some(b';' | b'|'), _) | (Some(b'&'), Some(b'&')) => break,
                (Some(b'&'), Some(b'>')) => {
                    self.at += 2;
                    let append = self.peek() == Some(b'>');
                    if append {
                        self.at += 1;
                    }
                    ast::CommandPrefixOrSuffixItem::IoRedirect(ast::IoRedirect::OutputAndError(
                        self.target()?,
                        append,
                    ))
                }
                (Some(b'>'), _) => self.redirect(None)?,
                _ => {
                    let word = self.word()?;
                    if self.peek() == Some(b'>') && word.bytes().all(|b| b.is_ascii_digit()) {
                        self.redirect(Some(word.parse().ok()?))?
                    } else {
                        ast::CommandPrefixOrSuffixItem::Word(ast::Word {
                            value: word,
                            loc: None,
                        })
                    }
                }
            };
            match item {
                ast::CommandPrefixOrSuffixItem::Word(word) if name.is_none() => {
                    if word.value.contains('=')
                        || RESERVED.contains(&word.value.as_str())
                        || DECLARATIONS.contains(&word.value.as_str())
                    {
                        return None;
                    }
                    name = Some(word);
                }
                item if name.is_none() => prefix.push(item),
                item => suffix.push(item),
            }
        }
        // A line of redirections only, or an empty command (`a ;; b`, `| x`): brush decides.
        let name = name?;
        Some(ast::Command::Simple(ast::SimpleCommand {
            prefix: (!prefix.is_empty()).then_some(ast::CommandPrefix(prefix)),
            word_or_name: Some(name),
            suffix: (!suffix.is_empty()).then_some(ast::CommandSuffix(suffix)),
        }))
    }

    /// An output redirection at `>`, with its descriptor when one was written.
    fn redirect(&mut self, fd: Option<ast::IoFd>) -> Option<ast::CommandPrefixOrSuffixItem> {
        self.at += 1;
        let kind = match self.peek() {
            Some(b'>') => Some(ast::IoFileRedirectKind::Append),
            Some(b'|') => Some(ast::IoFileRedirectKind::Clobber),
            Some(b'&') => None,
            _ => Some(ast::IoFileRedirectKind::Write),
        };
        if !matches!(kind, Some(ast::IoFileRedirectKind::Write)) {
            self.at += 1;
        }
        let word = self.target()?;
        let (kind, target) = match kind {
            Some(kind) => (kind, ast::IoFileRedirectTarget::Filename(word)),
            None => (
                ast::IoFileRedirectKind::DuplicateOutput,
                ast::IoFileRedirectTarget::Duplicate(word),
            ),
        };
        Some(ast::CommandPrefixOrSuffixItem::IoRedirect(
            ast::IoRedirect::File(fd, kind, target),
        ))
    }

    fn target(&mut self) -> Option<ast::Word> {
        self.blanks();
        let value = self.word()?;
        Some(ast::Word { value, loc: None })
    }

    /// One word, quotes kept (the walk removes them); `None` at anything outside the shape.
    fn word(&mut self) -> Option<String> {
        let start = self.at;
        while let Some(byte) = self.peek() {
            match byte {
                b' ' | b'\t' | b';' | b'&' | b'|' | b'>' => break,
                b'\'' => {
                    let len = self.bytes[self.at + 1..].iter().position(|&b| b == b'\'')?;
                    let body = &self.bytes[self.at + 1..self.at + 1 + len];
                    if body.iter().any(|&b| b == b'\n' || b == b'\r') {
                        return None;
                    }
                    self.at += len + 2;
                }
                b'"' => {
                    let len = self.bytes[self.at + 1..].iter().position(|&b| b == b'"')?;
                    let body = &self.bytes[self.at + 1..self.at + 1 + len];
                    if body
                        .iter()
                        .any(|&b| matches!(b, b'$' | b'`' | b'\\' | b'!' | b'\n' | b'\r'))
                    {
                        return None;
                    }
                    self.at += len + 2;
                }
                b'<' | b'(' | b')' | b'`' | b'$' | b'\\' | b'{' | b'}' | b'#' | b'!' => {
                    return None;
                }
                byte if !byte.is_ascii() || byte.is_ascii_control() => return None,
                _ => self.at += 1,
            }
        }
        if self.at == start {
            return None;
        }
        // Split at ASCII bytes only, so the slice is whole UTF-8 (quoted text may be any).
        std::str::from_utf8(&self.bytes[start..self.at])
            .ok()
            .map(str::to_owned)
    }
}
