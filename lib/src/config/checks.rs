//! Checks a schema cannot express: hook event names (W101), matcher regexes (E102), hook
//! executables (E103 missing, E104 not executable) and MCP entries with `url` but no `type`
//! (E105).
//!
//! They run after the schema on any value that parsed, and look only at the parts that have
//! the expected shape: what has the wrong shape is the schema's finding, not theirs. They read
//! the file system (hook executables, `PATH`) but never write, and never run anything: a
//! command that needs a shell to resolve (`$OTHER_VAR`, `` ` ``, `$(…)`, a builtin) is left
//! alone rather than guessed at.
//!
//! Facts behind each rule: PROTOCOL.md §1.2 (event names; before 2.1.101 one unknown name made
//! Claude Code ignore the whole file), §1.3 (matchers: `*`, `""` and plain names match
//! literally, anything else is a JavaScript `RegExp`), §1.4 and §1.6 (command hooks run via
//! `sh -c` in the project dir with `CLAUDE_PROJECT_DIR` set, or exec form with `args`), §3.1
//! (a hook that exits with anything but 2 — 126, 127 — lets the action through), §4 (an MCP
//! entry without `type` is stdio).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::schema::{child, closest};
use super::{CheckContext, Kind};
use crate::diagnostic::{Code, Diagnostic, Level, Position};

/// Hook event names in Claude Code's docs for v2.1.240 (PROTOCOL.md §1.2).
pub const EVENTS: [&str; 31] = [
    "SessionStart",
    "Setup",
    "UserPromptSubmit",
    "UserPromptExpansion",
    "PreToolUse",
    "PermissionRequest",
    "PermissionDenied",
    "PostToolUse",
    "PostToolUseFailure",
    "PostToolBatch",
    "Notification",
    "MessageDisplay",
    "SubagentStart",
    "SubagentStop",
    "TaskCreated",
    "TaskCompleted",
    "Stop",
    "StopFailure",
    "TeammateIdle",
    "InstructionsLoaded",
    "ConfigChange",
    "CwdChanged",
    "DirectoryAdded",
    "FileChanged",
    "WorktreeCreate",
    "WorktreeRemove",
    "PreCompact",
    "PostCompact",
    "Elicitation",
    "ElicitationResult",
    "SessionEnd",
];

/// Programs that run a script named by a later word; the script is checked too.
const INTERPRETERS: [&str; 14] = [
    "sh", "bash", "zsh", "dash", "ksh", "node", "python", "python3", "ruby", "perl", "php", "tsx",
    "ts-node", "pwsh",
];

/// Interpreter options after which the code is inline, not a script file.
const INLINE_CODE: [&str; 8] = [
    "-c", "-e", "-m", "-p", "--eval", "--print", "-Command", "-r",
];

/// Extensions that make an interpreter's bare argument a script path.
const SCRIPT_EXTENSIONS: [&str; 13] = [
    "sh", "bash", "zsh", "js", "mjs", "cjs", "ts", "mts", "py", "rb", "pl", "php", "ps1",
];

/// Shell builtins and keywords: nothing on disk to check.
const BUILTINS: [&str; 33] = [
    "cd", "echo", "printf", "test", "[", "[[", "true", "false", ":", "export", "source", ".",
    "eval", "set", "unset", "if", "for", "while", "until", "case", "{", "(", "!", "read", "exit",
    "return", "trap", "ulimit", "umask", "type", "builtin", "let", "wait",
];

/// Prefix words that run the next word as the program (`env` after its assignments).
const WRAPPERS: [&str; 5] = ["exec", "nohup", "time", "command", "env"];

/// One finding before it gets a position.
struct Finding {
    pointer: String,
    level: Level,
    code: Code,
    message: String,
}

/// Runs the extra checks for `kind` on `value`.
#[must_use]
pub fn run(
    kind: Kind,
    display: &str,
    value: &Value,
    ctx: &CheckContext,
    at: &dyn Fn(&str) -> Position,
) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    match kind {
        Kind::ProjectSettings
        | Kind::LocalSettings
        | Kind::UserSettings
        | Kind::ManagedSettings => {
            hooks(value, Some(ctx), &mut found);
        }
        Kind::SkillMd => hooks(value, None, &mut found),
        Kind::McpJson => servers(value.get("mcpServers"), "/mcpServers", &mut found),
        Kind::ClaudeJson => {
            servers(value.get("mcpServers"), "/mcpServers", &mut found);
            if let Some(projects) = value.get("projects").and_then(Value::as_object) {
                for (path, project) in projects {
                    let pointer = child(&child("/projects", path), "mcpServers");
                    servers(project.get("mcpServers"), &pointer, &mut found);
                }
            }
        }
        Kind::Canary | Kind::SkillJson | Kind::Policy => {}
    }
    found
        .into_iter()
        .map(|f| {
            Diagnostic::new(
                display,
                at(&f.pointer),
                f.level,
                f.code,
                f.message,
                f.pointer,
            )
        })
        .collect()
}

/// The `hooks` of a settings file (`ctx` given: commands are checked) or of a skill's front
/// matter (`None`: a skill's relative commands have no documented base, so only names and
/// matchers are checked).
fn hooks(value: &Value, ctx: Option<&CheckContext>, found: &mut Vec<Finding>) {
    let Some(events) = value.get("hooks").and_then(Value::as_object) else {
        return;
    };
    for (event, groups) in events {
        let event_at = child("/hooks", event);
        if !EVENTS.contains(&event.as_str()) {
            found.push(unknown_event(event, event_at.clone(), ctx.is_some()));
        }
        let Some(groups) = groups.as_array() else {
            continue;
        };
        for (g, group) in groups.iter().enumerate() {
            let group_at = format!("{event_at}/{g}");
            if let Some(matcher) = group.get("matcher").and_then(Value::as_str)
                && let Some(problem) = matcher_problem(matcher)
            {
                found.push(Finding {
                    pointer: format!("{group_at}/matcher"),
                    level: Level::Error,
                    code: Code::E102,
                    message: format!(
                        "matcher \"{matcher}\" is not a valid regular expression ({problem}); Claude Code reads a matcher with characters other than letters, digits, `_`, `-`, space, `,` and `|` as a JavaScript regular expression, so this group's hooks will not fire as meant; escape the special characters or list tool names like \"Edit|Write\""
                    ),
                });
            }
            let (Some(ctx), Some(handlers)) = (ctx, group.get("hooks").and_then(Value::as_array))
            else {
                continue;
            };
            for (h, handler) in handlers.iter().enumerate() {
                if handler.get("type").and_then(Value::as_str) != Some("command") {
                    continue;
                }
                let Some(command) = handler.get("command").and_then(Value::as_str) else {
                    continue;
                };
                let exec_form = handler.get("args").is_some_and(Value::is_array);
                if let Some((code, level, message)) = command_problem(command, exec_form, ctx) {
                    found.push(Finding {
                        pointer: format!("{group_at}/hooks/{h}/command"),
                        level,
                        code,
                        message,
                    });
                }
            }
        }
    }
}

fn unknown_event(event: &str, pointer: String, settings: bool) -> Finding {
    let mut message = format!("unknown hook event \"{event}\"");
    if let Some(near) = closest(event, EVENTS.into_iter()) {
        let case = if near.eq_ignore_ascii_case(event) {
            " event names are case-sensitive"
        } else {
            ""
        };
        let _ = write!(message, " (did you mean \"{near}\"?{case})");
    }
    if settings {
        message.push_str(
            "; Claude Code never fires it, and clients before 2.1.101 ignore this whole settings file because of it",
        );
    } else {
        message.push_str("; Claude Code never fires it");
    }
    Finding {
        pointer,
        level: Level::Warning,
        code: Code::W101,
        message,
    }
}

/// Why `matcher` is not a valid regex, when Claude Code would read it as one and it is not.
/// `*`, `""` and names made of `[A-Za-z0-9_ ,|-]` are matched literally (PROTOCOL.md §1.3).
/// JavaScript accepts some syntax the `regex` crate does not (look-around, backreferences,
/// `\p{…}` without the `u` flag): those are given the benefit of the doubt.
fn matcher_problem(matcher: &str) -> Option<String> {
    let literal = |c: char| c.is_ascii_alphanumeric() || "_- ,|".contains(c);
    if matcher.is_empty() || matcher == "*" || matcher.chars().all(literal) {
        return None;
    }
    match regex::Regex::new(matcher) {
        Err(regex::Error::Syntax(text)) => {
            let reason = text
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("error: "))
                .unwrap_or("syntax error")
                .to_owned();
            let unsupported_here = ["look-around", "backreference", "Unicode", "unicode"];
            if unsupported_here.iter().any(|u| reason.contains(u)) {
                None
            } else {
                Some(reason)
            }
        }
        Ok(_) | Err(_) => None,
    }
}

/// E103/E104 for a hook command, or `None` when it is fine or cannot be judged statically.
///
/// A path (absolute, or relative to the project) that is missing or not executable is an
/// error. A bare name looked up on PATH is only a warning: the PATH ctxopt sees (a git hook's,
/// a terminal's) is not the PATH Claude Code runs hooks with, so blocking a commit on it would
/// refuse good config.
fn command_problem(
    command: &str,
    exec_form: bool,
    ctx: &CheckContext,
) -> Option<(Code, Level, String)> {
    let words = if exec_form {
        vec![expand_exec(command, ctx)?]
    } else {
        shell_words(command, ctx)?
    };
    let mut words = words.into_iter().peekable();
    let program = loop {
        let word = words.next()?;
        let wrapper = word.quoted_nothing() && WRAPPERS.contains(&word.text.as_str());
        if !word.is_assignment() && !wrapper {
            break word;
        }
    };
    if program.unresolved || BUILTINS.contains(&program.raw.as_str()) {
        return None;
    }
    if let Some((code, message)) = program_problem(&program, ctx) {
        let level = if program.text.contains('/') {
            Level::Error
        } else {
            Level::Warning
        };
        return Some((code, level, message));
    }
    let name = program.text.rsplit('/').next().unwrap_or_default();
    if INTERPRETERS.contains(&name) {
        for word in words {
            if word.quoted_nothing() && INLINE_CODE.contains(&word.text.as_str()) {
                return None;
            }
            if word.text.starts_with('-') {
                continue;
            }
            let extension = word.text.rsplit_once('.').map(|(_, e)| e);
            if word.text.contains('/') || extension.is_some_and(|e| SCRIPT_EXTENSIONS.contains(&e))
            {
                if word.unresolved {
                    return None;
                }
                let path = ctx.project.join(&word.text);
                if path.exists() {
                    return None;
                }
                return Some((
                    Code::E103,
                    Level::Error,
                    format!(
                        "hook script not found: {} runs `{}`, which does not exist{}; the hook fails every time it fires and lets the action through",
                        program.raw,
                        word.raw,
                        where_relative(&word.text)
                    ),
                ));
            }
        }
    }
    None
}

/// E103/E104 for the program a command runs.
fn program_problem(program: &Word, ctx: &CheckContext) -> Option<(Code, String)> {
    const FAILS: &str = "the hook fails every time it fires and lets the action through";
    if program.text.contains('/') {
        let path = ctx.project.join(&program.text);
        let Ok(meta) = std::fs::metadata(&path) else {
            return Some((
                Code::E103,
                format!(
                    "hook command not found: `{}` does not exist{}; {FAILS}",
                    program.raw,
                    where_relative(&program.text)
                ),
            ));
        };
        if meta.is_dir() {
            return Some((
                Code::E104,
                format!(
                    "hook command `{}` is a directory, not a program; {FAILS}",
                    program.raw
                ),
            ));
        }
        if !is_executable(&meta) {
            return Some((
                Code::E104,
                format!(
                    "hook command `{}` is not executable; {FAILS}; fix: chmod +x {}",
                    program.raw,
                    shown(&path, ctx)
                ),
            ));
        }
        return None;
    }
    let mut not_executable = None;
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let candidate = dir.join(&program.text);
        if let Ok(meta) = std::fs::metadata(&candidate)
            && meta.is_file()
        {
            if is_executable(&meta) {
                return None;
            }
            not_executable.get_or_insert(candidate);
        }
    }
    Some(match not_executable {
        Some(path) => (
            Code::E104,
            format!(
                "hook command `{}` is on PATH as {} but that file is not executable; {FAILS}",
                program.raw,
                path.display()
            ),
        ),
        None => (
            Code::E103,
            format!(
                "hook command not found: `{}` is not on this PATH (Claude Code's may differ); if it is missing there too, {FAILS}; give the full path or install it",
                program.raw
            ),
        ),
    })
}

/// How a relative path was resolved, for a message; nothing for an absolute one.
fn where_relative(path: &str) -> &'static str {
    if path.starts_with('/') {
        ""
    } else {
        " (relative paths are taken from the project root, where hooks run)"
    }
}

/// A path as a message shows it: relative to the project, or under `~`, so that messages do
/// not depend on where the project is checked out.
fn shown(path: &Path, ctx: &CheckContext) -> String {
    if let Ok(rel) = path.strip_prefix(&ctx.project) {
        rel.display().to_string()
    } else if let Ok(rel) = path.strip_prefix(&ctx.home) {
        format!("~/{}", rel.display())
    } else {
        path.display().to_string()
    }
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    true
}

/// One shell word: `text` after quote removal and expansion, `raw` as written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Word {
    text: String,
    raw: String,
    /// It holds an expansion ctxopt cannot do statically (`$OTHER`, `$(…)`, `` ` ``, `~user`).
    unresolved: bool,
}

impl Word {
    /// `NAME=value` before the program: an environment assignment.
    fn is_assignment(&self) -> bool {
        self.raw.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    }

    /// Written without quotes or expansions (so a keyword keeps its meaning).
    fn quoted_nothing(&self) -> bool {
        self.raw == self.text
    }
}

/// The exec form's program: the command string as is, with `${CLAUDE_PROJECT_DIR}` and
/// `$HOME` substituted; `None` when another variable is in it.
fn expand_exec(command: &str, ctx: &CheckContext) -> Option<Word> {
    let mut word = Word::default();
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            expand_variable(&mut chars, &mut word, ctx);
        } else {
            word.text.push(c);
        }
    }
    command.clone_into(&mut word.raw);
    (!word.unresolved).then_some(word)
}

/// The words of a shell command line up to its first operator (`;`, `&`, `|`, redirections,
/// parentheses, newline), with quotes removed and `$CLAUDE_PROJECT_DIR`, `$HOME` and a
/// leading `~` expanded. `None` when the line cannot be split (an unclosed quote).
fn shell_words(command: &str, ctx: &CheckContext) -> Option<Vec<Word>> {
    let mut words = Vec::new();
    let mut chars = command.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        match chars.peek() {
            None | Some(';' | '&' | '|' | '<' | '>' | '(' | ')' | '\n') => return Some(words),
            Some(_) => {}
        }
        let mut word = Word::default();
        if chars.peek() == Some(&'~') {
            chars.next();
            word.raw.push('~');
            match chars.peek() {
                None | Some('/' | ' ' | '\t') => word.text.push_str(&ctx.home.to_string_lossy()),
                Some(_) => {
                    word.text.push('~');
                    word.unresolved = true;
                }
            }
        }
        while let Some(&c) = chars.peek() {
            if matches!(
                c,
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')'
            ) {
                break;
            }
            chars.next();
            word.raw.push(c);
            match c {
                '\'' => loop {
                    let c = chars.next()?;
                    word.raw.push(c);
                    if c == '\'' {
                        break;
                    }
                    word.text.push(c);
                },
                '"' => loop {
                    let c = chars.next()?;
                    word.raw.push(c);
                    match c {
                        '"' => break,
                        '\\' => {
                            let next = chars.next()?;
                            word.raw.push(next);
                            if !matches!(next, '$' | '`' | '"' | '\\' | '\n') {
                                word.text.push('\\');
                            }
                            word.text.push(next);
                        }
                        '$' => expand_variable(&mut chars, &mut word, ctx),
                        '`' => word.unresolved = true,
                        _ => word.text.push(c),
                    }
                },
                '\\' => {
                    let next = chars.next()?;
                    word.raw.push(next);
                    word.text.push(next);
                }
                '$' => expand_variable(&mut chars, &mut word, ctx),
                '`' => word.unresolved = true,
                _ => word.text.push(c),
            }
        }
        words.push(word);
    }
}

/// After a `$`: appends the value of `CLAUDE_PROJECT_DIR` or `HOME` (bare or in braces), or
/// marks the word unresolved for any other expansion.
fn expand_variable(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    word: &mut Word,
    ctx: &CheckContext,
) {
    let braced = chars.peek() == Some(&'{');
    if braced {
        chars.next();
        word.raw.push('{');
    }
    let mut name = String::new();
    while let Some(&c) = chars.peek() {
        if c.is_ascii_alphanumeric() || c == '_' {
            name.push(c);
            word.raw.push(c);
            chars.next();
        } else {
            break;
        }
    }
    if braced {
        if chars.peek() == Some(&'}') {
            chars.next();
            word.raw.push('}');
        } else {
            word.unresolved = true;
            return;
        }
    }
    let value: Option<PathBuf> = match name.as_str() {
        "CLAUDE_PROJECT_DIR" => Some(ctx.project.clone()),
        "HOME" => Some(ctx.home.clone()),
        "" if !braced => {
            word.text.push('$');
            if chars.peek() == Some(&'(') {
                word.unresolved = true;
            }
            return;
        }
        _ => None,
    };
    match value {
        Some(path) => word.text.push_str(&path.to_string_lossy()),
        None => word.unresolved = true,
    }
}

/// E105 for each entry of an `mcpServers` object that has a `url` and no `type`.
fn servers(servers: Option<&Value>, pointer: &str, found: &mut Vec<Finding>) {
    let Some(servers) = servers.and_then(Value::as_object) else {
        return;
    };
    for (name, entry) in servers {
        let Some(url) = entry.get("url").and_then(Value::as_str) else {
            continue;
        };
        if entry.get("type").is_some() {
            continue;
        }
        let suggested = if url.starts_with("ws://") || url.starts_with("wss://") {
            "ws"
        } else {
            "http"
        };
        found.push(Finding {
            pointer: child(pointer, name),
            level: Level::Error,
            code: Code::E105,
            message: format!(
                "MCP server \"{name}\" has a `url` but no `type`: an entry without `type` is treated as stdio, so this server will not start; add \"type\": \"{suggested}\" (or \"sse\" for an SSE server)"
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> CheckContext {
        CheckContext {
            project: PathBuf::from("/proj"),
            home: PathBuf::from("/home/u"),
        }
    }

    fn texts(command: &str) -> Vec<(String, bool)> {
        shell_words(command, &ctx())
            .unwrap()
            .into_iter()
            .map(|w| (w.text, w.unresolved))
            .collect()
    }

    #[test]
    fn shell_words_expand_project_dir_home_and_quotes() {
        assert_eq!(
            texts(r#""$CLAUDE_PROJECT_DIR"/.claude/hooks/x.sh --flag 'a b'"#),
            [
                ("/proj/.claude/hooks/x.sh".to_owned(), false),
                ("--flag".to_owned(), false),
                ("a b".to_owned(), false)
            ]
        );
        assert_eq!(
            texts("~/bin/h && rm x"),
            [("/home/u/bin/h".to_owned(), false)]
        );
        assert_eq!(texts("${HOME}/h"), [("/home/u/h".to_owned(), false)]);
        assert!(texts("$CLAUDE_PLUGIN_ROOT/h")[0].1);
        assert!(texts("$(which h)")[0].1);
        assert_eq!(texts("'$CLAUDE_PROJECT_DIR'")[0].0, "$CLAUDE_PROJECT_DIR");
        assert!(shell_words("\"unclosed", &ctx()).is_none());
    }

    #[test]
    fn matchers_literal_star_and_regex() {
        for ok in [
            "",
            "*",
            "Bash",
            "Edit|Write",
            "Edit, Write",
            "mcp__memory__.*",
            "^Edit$",
            "(?!Bash).*",
        ] {
            assert_eq!(matcher_problem(ok), None, "{ok}");
        }
        assert_eq!(matcher_problem("Bash("), Some("unclosed group".to_owned()));
        assert!(matcher_problem("*Bash").is_some());
    }

    #[test]
    fn assignments_and_builtins_are_skipped() {
        let c = ctx();
        assert_eq!(command_problem("FOO=1 cd /nowhere", false, &c), None);
        assert_eq!(command_problem("echo hi", false, &c), None);
        let (code, level, _) = command_problem("env A=1 exec /nonexistent/h", false, &c).unwrap();
        assert_eq!((code, level), (Code::E103, Level::Error));
        let (code, level, _) = command_problem("FOO=1 /nonexistent/hook.sh", false, &c).unwrap();
        assert_eq!((code, level), (Code::E103, Level::Error));
    }

    /// The PATH ctxopt sees is not Claude Code's: a bare name it cannot find is a warning, so
    /// a pre-commit hook with a thin PATH does not refuse good config.
    #[test]
    fn a_bare_name_missing_from_path_is_a_warning() {
        let (code, level, message) =
            command_problem("no-such-hook-program-x --flag", false, &ctx()).unwrap();
        assert_eq!((code, level), (Code::E103, Level::Warning));
        assert!(message.contains("Claude Code's may differ"), "{message}");
    }
}
