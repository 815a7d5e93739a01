//! What a Bash command writes, read from brush-parser's syntax tree — never from one regex.
//!
//! Covered: output redirections (`>`, `>>`, `>|`, `&>`, `n>`, here-docs into a file) on any
//! command; `tee`, `sed -i`/`--in-place`, `perl -i`, `cp`/`mv`/`install`/`ln` (the last
//! operand, or `-t DIR`), `rm`/`unlink`/`rmdir`/`shred`/`touch`/`truncate`/`mkdir` (every
//! operand), `chmod`/`chown`/`chgrp` (operands after the mode), `dd of=`, `git checkout`/
//! `git restore` (their path operands), `curl -o`/`wget -O`; interpreter one-liners
//! (`python -c`, `node -e`, `ruby -e`, `perl -e`, `php -r`) whose code contains a write
//! operation — every path-like string literal in the code is a target; `bash -c`/`sh -c`
//! and `eval` (analysed recursively) and `$( )` / backtick substitutions; lists, pipelines,
//! subshells, brace groups, `if`/`while`/`until`/`for`/`case` bodies and functions; a `cd`
//! earlier in the same list moves the base of later relative targets (not out of a subshell);
//! `sudo`, `env`, `command`, `nohup`, `time`, `nice`, `timeout N`, `xargs` prefixes are
//! skipped to reach the real command.
//!
//! Targets keep `$VAR` and `~` for the normaliser, which refuses what it cannot judge.
//! Known limits: a script file run later (the snapshot catches its writes), aliases and
//! functions defined elsewhere, paths held in variables, `find -exec`, writes by programs
//! this module does not know.

use brush_parser::ast::{
    Command, CommandPrefixOrSuffixItem, CompoundCommand, CompoundList, IoFileRedirectKind,
    IoFileRedirectTarget, IoRedirect, Pipeline, SimpleCommand,
};

/// Longest command analysed; longer is an error (the caller then decides by name).
const MAX_COMMAND_BYTES: usize = 64 * 1024;
/// Deepest nesting of `bash -c`, `eval` and substitutions followed.
const MAX_DEPTH: usize = 8;

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

/// Programs that can write a file given on their command line (or run code that can).
const WRITERS: &[&str] = &[
    "tee", "sed", "perl", "cp", "mv", "install", "ln", "rm", "unlink", "rmdir", "shred", "touch",
    "truncate", "mkdir", "chmod", "chown", "chgrp", "dd", "git", "curl", "wget", "python", "node",
    "nodejs", "deno", "bun", "ruby", "php", "bash", "sh", "zsh", "dash", "ksh", "eval", "exec",
    "source", "xargs", "find", "patch", "tar", "unzip", "rsync", "awk", "gawk",
];

/// Whether `command` could write anything at all: after removing quotes and backslashes (so
/// `t''ee` reads `tee`), it has a redirection, an expansion, or a word naming a writer. A
/// cheap pre-check that spares the parser on the common read-only command; it errs towards
/// `true`.
#[must_use]
pub fn could_write(command: &str) -> bool {
    let plain: String = command
        .chars()
        .filter(|c| !matches!(c, '\'' | '"' | '\\'))
        .collect();
    if plain.contains(['>', '$', '`']) {
        return true;
    }
    plain
        .split(|c: char| c.is_whitespace() || ";&|(){}".contains(c))
        .map(|word| word.rsplit('/').next().unwrap_or(word))
        .any(|word| {
            WRITERS
                .iter()
                .any(|w| word == *w || (word.starts_with(w) && *w == "python"))
        })
}

/// Every write `command` would make, as far as a static reading can tell.
pub fn writes(command: &str) -> Result<Vec<ShellWrite>, ShellError> {
    let mut walker = Walker::default();
    walker.source(command, None, 0)?;
    Ok(walker.found)
}

#[derive(Default)]
struct Walker {
    found: Vec<ShellWrite>,
}

impl Walker {
    fn source(&mut self, text: &str, cd: Option<&str>, depth: usize) -> Result<(), ShellError> {
        if text.len() > MAX_COMMAND_BYTES {
            return Err(ShellError {
                message: format!("the command is longer than {MAX_COMMAND_BYTES} bytes"),
            });
        }
        if depth > MAX_DEPTH {
            return Err(ShellError {
                message: String::from("commands nested too deep"),
            });
        }
        let options = brush_parser::ParserOptions::default();
        let mut parser = brush_parser::Parser::new(std::io::Cursor::new(text), &options);
        let program = parser.parse_program().map_err(|err| ShellError {
            message: err.to_string(),
        })?;
        for list in &program.complete_commands {
            self.list(list, cd.map(str::to_owned), depth);
        }
        Ok(())
    }

    /// A sequential list: a `cd` moves the base for the commands after it.
    fn list(&mut self, list: &CompoundList, mut cd: Option<String>, depth: usize) {
        for item in &list.0 {
            let and_or = &item.0;
            let pipelines = std::iter::once(&and_or.first).chain(and_or.additional.iter().map(
                |next| match next {
                    brush_parser::ast::AndOr::And(p) | brush_parser::ast::AndOr::Or(p) => p,
                },
            ));
            for pipeline in pipelines {
                if let Some(dir) = self.pipeline(pipeline, cd.as_deref(), depth) {
                    cd = Some(join_cd(cd.as_deref(), &dir));
                }
            }
        }
    }

    /// Returns the directory of a lone `cd DIR`, which moves the rest of the list.
    fn pipeline(&mut self, pipeline: &Pipeline, cd: Option<&str>, depth: usize) -> Option<String> {
        let mut moved = None;
        for command in &pipeline.seq {
            moved = self.command(command, cd, depth);
        }
        if pipeline.seq.len() == 1 { moved } else { None }
    }

    fn command(&mut self, command: &Command, cd: Option<&str>, depth: usize) -> Option<String> {
        match command {
            Command::Simple(simple) => return self.simple(simple, cd, depth),
            Command::Compound(compound, redirects) => {
                self.compound(compound, cd, depth);
                for redirect in redirects.iter().flat_map(|r| &r.0) {
                    self.redirect(redirect, cd, depth);
                }
            }
            Command::Function(function) => {
                self.compound(&function.body.0, cd, depth);
                for redirect in function.body.1.iter().flat_map(|r| &r.0) {
                    self.redirect(redirect, cd, depth);
                }
            }
            Command::ExtendedTest(..) => {}
        }
        None
    }

    fn compound(&mut self, compound: &CompoundCommand, cd: Option<&str>, depth: usize) {
        let owned = cd.map(str::to_owned);
        match compound {
            CompoundCommand::BraceGroup(group) => self.list(&group.list, owned, depth),
            CompoundCommand::Subshell(sub) => self.list(&sub.list, owned, depth),
            CompoundCommand::ForClause(f) => self.list(&f.body.list, owned, depth),
            CompoundCommand::WhileClause(w) | CompoundCommand::UntilClause(w) => {
                self.list(&w.0, owned.clone(), depth);
                self.list(&w.1.list, owned, depth);
            }
            CompoundCommand::IfClause(i) => {
                self.list(&i.condition, owned.clone(), depth);
                self.list(&i.then, owned.clone(), depth);
                for branch in i.elses.iter().flatten() {
                    if let Some(condition) = &branch.condition {
                        self.list(condition, owned.clone(), depth);
                    }
                    self.list(&branch.body, owned.clone(), depth);
                }
            }
            CompoundCommand::CaseClause(c) => {
                for item in &c.cases {
                    if let Some(cmd) = &item.cmd {
                        self.list(cmd, owned.clone(), depth);
                    }
                }
            }
            CompoundCommand::Arithmetic(_)
            | CompoundCommand::ArithmeticForClause(_)
            | CompoundCommand::Coprocess(_) => {}
        }
    }

    fn redirect(&mut self, redirect: &IoRedirect, cd: Option<&str>, depth: usize) {
        let (target, how) = match redirect {
            IoRedirect::File(_, kind, IoFileRedirectTarget::Filename(word)) => {
                let how = match kind {
                    IoFileRedirectKind::Write => ">",
                    IoFileRedirectKind::Append => ">>",
                    IoFileRedirectKind::Clobber => ">|",
                    IoFileRedirectKind::ReadAndWrite => "<>",
                    IoFileRedirectKind::Read
                    | IoFileRedirectKind::DuplicateInput
                    | IoFileRedirectKind::DuplicateOutput => return,
                };
                (&word.value, how)
            }
            IoRedirect::OutputAndError(word, append) => {
                (&word.value, if *append { "&>>" } else { "&>" })
            }
            IoRedirect::File(..) | IoRedirect::HereDocument(..) | IoRedirect::HereString(..) => {
                return;
            }
        };
        self.substitutions(target, cd, depth);
        self.push(&unquote(target), cd, &format!("redirection {how}"));
    }

    fn push(&mut self, target: &str, cd: Option<&str>, how: &str) {
        if target.is_empty() || target.starts_with("/dev/") {
            return;
        }
        self.found.push(ShellWrite {
            target: target.to_owned(),
            cd: cd.map(str::to_owned),
            how: how.to_owned(),
        });
    }

    /// `$( … )` and backticks inside a word: their commands run too.
    fn substitutions(&mut self, word: &str, cd: Option<&str>, depth: usize) {
        for inner in substitutions(word) {
            let _ = self.source(&inner, cd, depth + 1);
        }
    }

    fn simple(&mut self, simple: &SimpleCommand, cd: Option<&str>, depth: usize) -> Option<String> {
        let mut words: Vec<String> = Vec::new();
        for item in simple.prefix.iter().flat_map(|p| &p.0) {
            self.item(item, false, &mut words, cd, depth);
        }
        if let Some(name) = &simple.word_or_name {
            self.substitutions(&name.value, cd, depth);
            words.push(unquote(&name.value));
        }
        for item in simple.suffix.iter().flat_map(|s| &s.0) {
            self.item(item, true, &mut words, cd, depth);
        }
        self.program(&words, cd, depth)
    }

    /// One prefix or suffix item. After the command name, `a=b` is an argument (`dd of=f`),
    /// not an assignment.
    fn item(
        &mut self,
        item: &CommandPrefixOrSuffixItem,
        argument: bool,
        words: &mut Vec<String>,
        cd: Option<&str>,
        depth: usize,
    ) {
        match item {
            CommandPrefixOrSuffixItem::IoRedirect(redirect) => self.redirect(redirect, cd, depth),
            CommandPrefixOrSuffixItem::Word(word) => {
                self.substitutions(&word.value, cd, depth);
                words.push(unquote(&word.value));
            }
            CommandPrefixOrSuffixItem::AssignmentWord(_, word) => {
                self.substitutions(&word.value, cd, depth);
                if argument {
                    words.push(unquote(&word.value));
                }
            }
            CommandPrefixOrSuffixItem::ProcessSubstitution(_, sub) => {
                self.list(&sub.list, cd.map(str::to_owned), depth);
            }
        }
    }

    /// The writes of one command by its name and arguments; a lone `cd DIR` returns DIR.
    #[expect(
        clippy::too_many_lines,
        reason = "one table of commands and how each writes"
    )]
    fn program(&mut self, words: &[String], cd: Option<&str>, depth: usize) -> Option<String> {
        let words = skip_wrappers(words);
        let (name, args) = words.split_first()?;
        let base = name.rsplit('/').next().unwrap_or(name).to_owned();
        let operands: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
        match base.as_str() {
            "cd" | "pushd" => return operands.first().map(|d| (*d).clone()),
            "tee" | "rm" | "unlink" | "rmdir" | "shred" | "touch" | "truncate" | "mkdir" => {
                let skip_size = base == "truncate";
                let mut skip_next = false;
                for arg in args {
                    if skip_next {
                        skip_next = false;
                        continue;
                    }
                    if skip_size && (arg == "-s" || arg == "--size") {
                        skip_next = true;
                        continue;
                    }
                    if !arg.starts_with('-') {
                        self.push(arg, cd, &base);
                    }
                }
            }
            "cp" | "mv" | "install" | "ln" => {
                if let Some(dir) = value_of(args, &["-t", "--target-directory"]) {
                    self.push(&dir, cd, &base);
                } else if let Some(last) = operands.last() {
                    self.push(last, cd, &base);
                }
                if base == "mv" {
                    for source in operands.iter().rev().skip(1) {
                        self.push(source, cd, &base);
                    }
                }
            }
            "chmod" | "chown" | "chgrp" => {
                for operand in operands.iter().skip(1) {
                    self.push(operand, cd, &base);
                }
            }
            "sed" | "perl" if args.iter().any(|a| is_in_place(&base, a)) => {
                let script_first = !args.iter().any(|a| {
                    a == "-e" || a == "-E" || a.ends_with('e') && a.starts_with('-') && a.len() > 1
                });
                let mut files: Vec<&String> = Vec::new();
                let mut skip_next = false;
                for arg in args {
                    if skip_next {
                        skip_next = false;
                        continue;
                    }
                    if arg == "-e"
                        || arg == "-f"
                        || arg == "--expression"
                        || (base == "perl" && arg.starts_with('-') && arg.ends_with('e'))
                    {
                        skip_next = true;
                        continue;
                    }
                    if !arg.starts_with('-') && !arg.is_empty() {
                        files.push(arg);
                    }
                }
                let files = if script_first {
                    files.iter().skip(1).copied().collect()
                } else {
                    files
                };
                for file in files {
                    self.push(file, cd, &format!("{base} -i"));
                }
            }
            "dd" => {
                for arg in args {
                    if let Some(target) = arg.strip_prefix("of=") {
                        self.push(target, cd, "dd");
                    }
                }
            }
            "git" => {
                let sub = operands.first().map(|s| s.as_str());
                if matches!(sub, Some("checkout" | "restore")) {
                    let after_dashes = args.iter().position(|a| a == "--");
                    let paths: Vec<&String> = match after_dashes {
                        Some(i) => args[i + 1..].iter().collect(),
                        None if sub == Some("restore") => {
                            operands.iter().skip(1).copied().collect()
                        }
                        None => Vec::new(),
                    };
                    for path in paths {
                        self.push(path, cd, &format!("git {}", sub.unwrap_or_default()));
                    }
                }
            }
            "curl" | "wget" => {
                if let Some(target) = value_of(args, &["-o", "--output", "-O", "--output-document"])
                {
                    self.push(&target, cd, &base);
                }
            }
            "bash" | "sh" | "zsh" | "dash" | "ksh" => {
                if let Some(code) = value_of(args, &["-c"]) {
                    let _ = self.source(&code, cd, depth + 1);
                }
            }
            "eval" => {
                let _ = self.source(&args.join(" "), cd, depth + 1);
            }
            _ => self.interpreter(&base, args, cd),
        }
        None
    }

    /// `python -c`, `node -e`, `ruby -e`, `perl -e`, `php -r`: path-like string literals of
    /// code that writes.
    fn interpreter(&mut self, base: &str, args: &[String], cd: Option<&str>) {
        let (flags, writes): (&[&str], &[&str]) = if base.starts_with("python") {
            (
                &["-c"],
                &[
                    "open(",
                    "write_text",
                    "write_bytes",
                    "shutil.",
                    "os.remove",
                    "os.rename",
                    "os.replace",
                    "unlink",
                    ".write(",
                ],
            )
        } else if base == "node" || base == "nodejs" || base == "deno" || base == "bun" {
            (
                &["-e", "--eval", "-p", "--print"],
                &[
                    "writeFile",
                    "appendFile",
                    "createWriteStream",
                    "rmSync",
                    "unlink",
                    "rename",
                    "copyFile",
                    ".rm(",
                ],
            )
        } else if base == "ruby" {
            (
                &["-e"],
                &[
                    "File.write",
                    "File.open",
                    "FileUtils",
                    "IO.write",
                    "File.delete",
                    "File.rename",
                ],
            )
        } else if base == "perl" {
            (&["-e", "-E"], &["open", "unlink", "rename"])
        } else if base == "php" {
            (
                &["-r"],
                &["file_put_contents", "fopen", "unlink", "rename", "copy("],
            )
        } else {
            return;
        };
        let Some(code) = value_of(args, flags) else {
            return;
        };
        let writing = writes.iter().any(|w| code.contains(w))
            && (!base.starts_with("python")
                || !code.contains("open(")
                || python_opens_for_write(&code));
        if !writing {
            return;
        }
        for literal in string_literals(&code) {
            if looks_like_path(&literal) {
                self.push(&literal, cd, &format!("{base} {}", flags[0]));
            }
        }
    }
}

/// Whether a python snippet's `open(` calls include a writing mode, or it writes otherwise.
fn python_opens_for_write(code: &str) -> bool {
    let other = [
        "write_text",
        "write_bytes",
        "shutil.",
        "os.remove",
        "os.rename",
        "os.replace",
        "unlink",
    ];
    if other.iter().any(|w| code.contains(w)) {
        return true;
    }
    code.split("open(").skip(1).any(|call| {
        let args = call.split(')').next().unwrap_or("");
        string_literals(args)
            .iter()
            .skip(1)
            .any(|mode| mode.len() <= 4 && mode.contains(['w', 'a', 'x', '+']))
            || args.contains("mode=")
    })
}

fn looks_like_path(literal: &str) -> bool {
    !literal.is_empty()
        && literal.len() < 4096
        && !literal.contains('\n')
        && (literal.contains('/')
            || literal.starts_with('~')
            || literal.starts_with('.')
            || [".json", ".sh", ".md", ".js", ".py", ".log"]
                .iter()
                .any(|s| literal.ends_with(s)))
}

/// The contents of `'…'`, `"…"` (and triple-quoted) string literals in source code.
fn string_literals(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' && c != '"' && c != '`' {
            continue;
        }
        let mut literal = String::new();
        let mut escaped = false;
        for next in chars.by_ref() {
            if escaped {
                literal.push(next);
                escaped = false;
            } else if next == '\\' {
                escaped = true;
            } else if next == c {
                break;
            } else {
                literal.push(next);
            }
        }
        out.push(literal);
    }
    out
}

fn is_in_place(program: &str, arg: &str) -> bool {
    match program {
        "sed" => {
            arg == "-i"
                || arg.starts_with("-i")
                || arg.starts_with("--in-place")
                || (arg.starts_with('-')
                    && !arg.starts_with("--")
                    && arg.contains('i')
                    && arg.len() <= 4)
        }
        _ => arg.starts_with('-') && !arg.starts_with("--") && arg.contains('i'),
    }
}

/// The value after one of `flags` (`-o FILE`, `-oFILE`, `--output=FILE`).
fn value_of(args: &[String], flags: &[&str]) -> Option<String> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        for flag in flags {
            if arg == flag {
                return iter.next().cloned();
            }
            if let Some(rest) = arg.strip_prefix(&format!("{flag}=")) {
                return Some(rest.to_owned());
            }
        }
    }
    None
}

/// Drops `sudo`, `env A=1`, `command`, `nohup`, `time`, `nice`, `timeout N`, `xargs` and
/// assignments before the real command.
fn skip_wrappers(words: &[String]) -> &[String] {
    let mut rest = words;
    loop {
        let Some((first, tail)) = rest.split_first() else {
            return rest;
        };
        let base = first.rsplit('/').next().unwrap_or(first);
        rest = match base {
            "sudo" | "env" | "command" | "nohup" | "time" | "nice" | "builtin" | "exec"
            | "xargs" | "stdbuf" => {
                let mut t = tail;
                while let Some((w, more)) = t.split_first() {
                    if w.starts_with('-') || w.contains('=') {
                        t = more;
                    } else {
                        break;
                    }
                }
                t
            }
            "timeout" => {
                let mut t = tail;
                while let Some((w, more)) = t.split_first() {
                    if w.starts_with('-') {
                        t = more;
                    } else {
                        break;
                    }
                }
                t.split_first().map_or(t, |(_, more)| more)
            }
            _ if first.contains('=') && !first.starts_with('=') && !first.starts_with('-') => tail,
            _ => return rest,
        };
    }
}

/// A `cd` target joined to an earlier one.
fn join_cd(base: Option<&str>, dir: &str) -> String {
    match base {
        Some(base) if !dir.starts_with('/') && !dir.starts_with('~') && !dir.starts_with('$') => {
            format!("{base}/{dir}")
        }
        _ => dir.to_owned(),
    }
}

/// Quote removal: `'…'` literally, `"…"` with `\\` escapes, bare `\x`.
fn unquote(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => out.extend(chars.by_ref().take_while(|&n| n != '\'')),
            '"' => {
                while let Some(n) = chars.next() {
                    match n {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                out.push(e);
                            }
                        }
                        _ => out.push(n),
                    }
                }
            }
            '\\' => {
                if let Some(e) = chars.next() {
                    out.push(e);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The commands inside `$( … )` and backticks of a word.
fn substitutions(word: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = word.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'(') && bytes.get(i + 2) != Some(&b'(') {
            let start = i + 2;
            let mut depth = 1;
            let mut j = start;
            while j < bytes.len() && depth > 0 {
                match bytes[j] {
                    b'(' => depth += 1,
                    b')' => depth -= 1,
                    _ => {}
                }
                j += 1;
            }
            if depth == 0 {
                out.push(word[start..j - 1].to_owned());
            }
            i = j;
        } else if bytes[i] == b'`' {
            let start = i + 1;
            let end = word[start..].find('`').map(|e| start + e);
            if let Some(end) = end {
                out.push(word[start..end].to_owned());
                i = end + 1;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    type Target = (String, Option<String>);

    fn targets(command: &str) -> Vec<Target> {
        writes(command)
            .unwrap_or_else(|e| panic!("{command}: {e}"))
            .into_iter()
            .map(|w| (w.target, w.cd))
            .collect()
    }

    fn t(target: &str) -> Target {
        (target.to_owned(), None)
    }

    #[test]
    #[expect(clippy::too_many_lines, reason = "one table of commands")]
    fn table_of_commands() {
        let s = ".claude/settings.json";
        let cases: Vec<(&str, Vec<Target>)> = vec![
            ("echo {} > .claude/settings.json", vec![t(s)]),
            ("echo {} >> .claude/settings.json", vec![t(s)]),
            ("echo {} >| .claude/settings.json", vec![t(s)]),
            ("echo x &> .claude/settings.json", vec![t(s)]),
            ("echo x 1> .claude/settings.json", vec![t(s)]),
            ("echo x >.claude/settings.json", vec![t(s)]),
            ("echo {} > \".claude/settings.json\"", vec![t(s)]),
            ("echo {} > '.claude'/\"settings.json\"", vec![t(s)]),
            (
                "printf {} | tee -a ~/../proj/.claude/settings.json",
                vec![t("~/../proj/.claude/settings.json")],
            ),
            ("cat <<'EOF' > .claude/settings.json\n{}\nEOF", vec![t(s)]),
            ("sed -i 's/a/b/' .claude/settings.json", vec![t(s)]),
            (
                "sed -i '' -e 's/a/b/' .claude/settings.json",
                vec![t(""), t(s)]
                    .into_iter()
                    .filter(|x| !x.0.is_empty())
                    .collect(),
            ),
            ("perl -pi -e 's/a/b/' .claude/settings.json", vec![t(s)]),
            (
                "python3 -c \"open('.claude/settings.json','w').write('{}')\"",
                vec![t(s)],
            ),
            (
                "python3 -c 'import pathlib; pathlib.Path(\".mcp.json\").write_text(\"{}\")'",
                vec![t(".mcp.json")],
            ),
            (
                "node -e \"require('fs').writeFileSync('.claude/settings.json','{}')\"",
                vec![t(s)],
            ),
            ("bash -c 'echo > .claude/settings.json'", vec![t(s)]),
            ("eval \"echo x > .claude/settings.json\"", vec![t(s)]),
            ("echo $(echo x > f)", vec![t("f")]),
            ("git checkout -- .claude/settings.json", vec![t(s)]),
            ("git restore .claude/settings.json", vec![t(s)]),
            ("rm -rf .claude/hooks", vec![t(".claude/hooks")]),
            ("ln -sf /tmp/x .claude/settings.json", vec![t(s)]),
            ("chmod +x .claude/hooks/x.sh", vec![t(".claude/hooks/x.sh")]),
            ("truncate -s0 f", vec![t("f")]),
            ("truncate -s 0 f", vec![t("f")]),
            ("dd if=/dev/zero of=f", vec![t("f")]),
            ("sudo tee f", vec![t("f")]),
            ("env A=1 tee f", vec![t("f")]),
            ("timeout 5 tee f", vec![t("f")]),
            ("cp .claude/settings.json /tmp/x", vec![t("/tmp/x")]),
            ("mv a b", vec![t("b"), t("a")]),
            ("cp -t dir a b", vec![t("dir")]),
            ("curl -o out.json https://x", vec![t("out.json")]),
            ("ls > out.txt", vec![t("out.txt")]),
            ("cat .claude/settings.json", vec![]),
            ("grep x .mcp.json", vec![]),
            ("jq . ~/.claude.json", vec![]),
            ("echo x 2>/dev/null", vec![]),
            ("git checkout main", vec![]),
            (
                "python3 -c \"print(open('.claude/settings.json').read())\"",
                vec![],
            ),
            ("cargo test && echo done", vec![]),
            ("if true; then echo x > a; fi", vec![t("a")]),
            ("for f in a b; do echo > c; done", vec![t("c")]),
            ("{ echo x; } > g", vec![t("g")]),
            ("f() { echo x > h; }", vec![t("h")]),
            (
                "echo > \"$HOME/.claude.json\"",
                vec![t("$HOME/.claude.json")],
            ),
            (
                "echo > ${CLAUDE_PROJECT_DIR}/.mcp.json",
                vec![t("${CLAUDE_PROJECT_DIR}/.mcp.json")],
            ),
            ("echo `echo > k`", vec![t("k")]),
            ("tee out.txt < in.txt", vec![t("out.txt")]),
            ("cat a | sort | tee -a log.txt | wc -l", vec![t("log.txt")]),
            ("echo x > a; echo y > b", vec![t("a"), t("b")]),
            ("true || echo x > c", vec![t("c")]),
            ("nohup sh -c 'echo > d' &", vec![t("d")]),
            ("unlink .mcp.json", vec![t(".mcp.json")]),
            ("install -m 644 src.json .claude/settings.json", vec![t(s)]),
            (
                "chown root:root .claude/ctxopt.json",
                vec![t(".claude/ctxopt.json")],
            ),
            ("wget -O ~/.claude.json http://x", vec![t("~/.claude.json")]),
            (
                "ruby -e 'File.write(\".claude/settings.json\", \"{}\")'",
                vec![t(s)],
            ),
            ("perl -e 'unlink \".mcp.json\"'", vec![t(".mcp.json")]),
            (
                "node -e \"console.log(require('fs').readFileSync('.mcp.json','utf8'))\"",
                vec![],
            ),
            (
                "while read l; do echo \"$l\" >> out; done < in",
                vec![t("out")],
            ),
            ("case x in x) echo > e;; esac", vec![t("e")]),
            ("ls -la .claude/", vec![]),
            (
                "diff .claude/settings.json .claude/settings.json.backup",
                vec![],
            ),
            ("head -5 ~/.claude.json", vec![]),
            ("mkdir -p .claude/hooks/new", vec![t(".claude/hooks/new")]),
        ];
        for (command, expected) in cases {
            assert_eq!(targets(command), expected, "{command}");
        }
    }

    #[test]
    fn cd_moves_later_targets_but_not_out_of_a_subshell() {
        assert_eq!(
            targets("cd .claude && echo {} > settings.json"),
            vec![("settings.json".to_owned(), Some(".claude".to_owned()))]
        );
        assert_eq!(
            targets("(cd /tmp; echo > a) && echo > b"),
            vec![
                ("a".to_owned(), Some("/tmp".to_owned())),
                ("b".to_owned(), None)
            ]
        );
    }

    #[test]
    fn could_write_errs_towards_true() {
        for command in [
            "ls -la",
            "cat a | grep b | wc -l",
            "cargo test --workspace",
            "jq . x.json",
        ] {
            assert!(!could_write(command), "{command}");
        }
        for command in [
            "echo x > f",
            "t''ee f",
            "\\tee f",
            "/usr/bin/tee f",
            "$(printf tee) f",
            "python3.11 -c x",
            "cd a && sed -i s/a/b/ f",
            "X=1 bash",
            "`x`",
        ] {
            assert!(could_write(command), "{command}");
        }
    }

    /// Every command of the table that writes something passes the pre-check.
    #[test]
    fn the_pre_check_never_hides_a_write() {
        for command in [
            "printf {} | tee -a ~/../proj/.claude/settings.json",
            "git checkout -- .claude/settings.json",
            "ln -sf /tmp/x .claude/settings.json",
            "python3 -c \"open('.claude/settings.json','w').write('{}')\"",
            "install -m 644 src.json .claude/settings.json",
        ] {
            assert!(
                could_write(command) && !writes(command).unwrap().is_empty(),
                "{command}"
            );
        }
    }

    #[test]
    fn unparseable_commands_are_errors() {
        assert!(writes("echo 'unterminated").is_err());
        assert!(writes(&"x".repeat(MAX_COMMAND_BYTES + 1)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(command in ".{0,200}") {
            let _ = writes(&command);
        }

        #[test]
        fn never_panics_on_shell_tokens(parts in proptest::collection::vec(
            proptest::sample::select(vec!["echo", ">", ">>", "|", "&&", ";", "(", ")", "{", "}",
                "'", "\"", "$(", "`", "tee", "-i", "sed", "cd", "x", ".claude/settings.json",
                "<<EOF", "EOF", "\n", "python3", "-c", "bash", "eval"]), 0..30)) {
            let _ = writes(&parts.join(" "));
        }
    }
}
