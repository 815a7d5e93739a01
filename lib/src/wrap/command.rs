//! Hook command strings: splitting one into words as far as naming and wrapping need, the
//! hook's name, the wrapped command install writes, reading a wrapped command back, and
//! `ctxopt-run`'s own arguments.
//!
//! Claude Code runs a handler's `command` with `sh -c` (PROTOCOL.md §1.4). A *simple* command
//! — plain words, quotes and expansions, no operator, no redirection, no builtin or
//! assignment in front — is wrapped by putting the runner in front of it
//! (`ctxopt-run --name N -- node .claude/hooks/a.js`): the client's shell expands the words
//! exactly as before and the runner receives the program and its arguments. Anything else
//! (`a && b`, `x 2>/dev/null`, `cd dir; y`, `FOO=1 z`) is wrapped whole as
//! `ctxopt-run --name N -- sh -c '<original>'`, which costs one more `sh` but keeps the
//! meaning exactly. Nothing here runs or expands anything.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use crate::install::shell_quote;

/// The runner's binary name.
pub const RUN_PROGRAM: &str = "ctxopt-run";

/// ctxopt's own programs: their handlers are never wrapped.
pub const OWN_PROGRAMS: [&str; 5] = [
    "ctxopt",
    "ctxopt-session-start",
    "ctxopt-pre-tool-use",
    "ctxopt-post-tool-use",
    RUN_PROGRAM,
];

/// Longest name taken from a command that names no script.
const MAX_NAME_CHARS: usize = 80;

/// Longest `--timeout` accepted: a day.
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// Programs that run a script named by a later word (interpreters and launchers).
const INTERPRETERS: [&str; 24] = [
    "sh",
    "bash",
    "zsh",
    "dash",
    "ksh",
    "fish",
    "node",
    "deno",
    "bun",
    "bunx",
    "npx",
    "python",
    "python3",
    "uv",
    "uvx",
    "ruby",
    "perl",
    "php",
    "tsx",
    "ts-node",
    "pwsh",
    "osascript",
    "java",
    "go",
];

/// Options after which an interpreter's code is inline, not a script file.
const INLINE_CODE: [&str; 9] = [
    "-c", "-e", "-m", "-p", "--eval", "--print", "-Command", "-r", "-",
];

/// Extensions that make a bare argument of an interpreter a script path.
const SCRIPT_EXTENSIONS: [&str; 15] = [
    "sh", "bash", "zsh", "js", "mjs", "cjs", "ts", "mts", "py", "rb", "pl", "php", "ps1", "go",
    "jar",
];

/// Shell builtins and keywords: a command starting with one needs the shell.
const BUILTINS: [&str; 42] = [
    "cd", "echo", "printf", "test", "[", "[[", "true", "false", ":", "export", "source", ".",
    "eval", "set", "unset", "if", "for", "while", "until", "case", "{", "}", "!", "read", "exit",
    "return", "trap", "ulimit", "umask", "type", "builtin", "let", "wait", "exec", "command",
    "alias", "shift", "local", "readonly", "declare", "typeset", "function",
];

/// Words in front of the program that run the next word (`env` after its assignments).
const PREFIXES: [&str; 4] = ["env", "nohup", "time", "exec"];

/// One word of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    /// The word after quote removal; `$VAR` kept literally.
    text: String,
    /// Byte offset just after the word in the line.
    end: usize,
    /// An operator (`;`, `&&`, `|`, `>`, `(`, newline, …), not a word.
    operator: bool,
}

/// Splits `command` into words and operators the way `sh` would, without expanding anything.
/// `None` when a quote is not closed.
fn tokens(command: &str) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut chars = command.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| *c == ' ' || *c == '\t').is_some() {}
        let Some(&(start, c)) = chars.peek() else {
            return Some(out);
        };
        if c == '#' {
            return Some(out);
        }
        if matches!(c, ';' | '&' | '|' | '<' | '>' | '(' | ')' | '\n') {
            chars.next();
            out.push(Token {
                text: c.to_string(),
                end: start + c.len_utf8(),
                operator: true,
            });
            continue;
        }
        let mut text = String::new();
        let mut end = start;
        while let Some(&(at, c)) = chars.peek() {
            if matches!(
                c,
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')'
            ) {
                break;
            }
            chars.next();
            end = at + c.len_utf8();
            match c {
                '\'' => loop {
                    let (at, c) = chars.next()?;
                    end = at + c.len_utf8();
                    if c == '\'' {
                        break;
                    }
                    text.push(c);
                },
                '"' => loop {
                    let (at, c) = chars.next()?;
                    end = at + c.len_utf8();
                    match c {
                        '"' => break,
                        '\\' => {
                            let (_, next) = chars.next()?;
                            if !matches!(next, '$' | '`' | '"' | '\\' | '\n') {
                                text.push('\\');
                            }
                            text.push(next);
                        }
                        _ => text.push(c),
                    }
                },
                '\\' => {
                    let (at, next) = chars.next()?;
                    end = at + next.len_utf8();
                    text.push(next);
                }
                _ => text.push(c),
            }
        }
        out.push(Token {
            text,
            end,
            operator: false,
        });
    }
}

/// `NAME=value`: an environment assignment in front of a program.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// A hook command, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The words of each simple command, operators dropped.
    segments: Vec<Vec<String>>,
    /// Whether the runner can go in front of the command as it stands (see the module doc).
    pub simple: bool,
}

/// Splits a handler's `command`; `None` when it does not parse (an unclosed quote), in which
/// case Claude Code's `sh` fails it too and it is left alone.
#[must_use]
pub fn split(command: &str) -> Option<Split> {
    let tokens = tokens(command)?;
    let mut segments = vec![Vec::new()];
    for token in &tokens {
        if token.operator {
            if segments.last().is_some_and(|s: &Vec<String>| !s.is_empty()) {
                segments.push(Vec::new());
            }
        } else if let Some(last) = segments.last_mut() {
            last.push(token.text.clone());
        }
    }
    segments.retain(|s| !s.is_empty());
    let simple = !tokens.iter().any(|t| t.operator)
        && segments.len() == 1
        && segments[0]
            .first()
            .is_some_and(|w| !is_assignment(w) && !BUILTINS.contains(&w.as_str()));
    Some(Split { segments, simple })
}

/// The name a hook is recorded under when no `--name` is given: the script a command runs,
/// as written (`.claude/hooks/PreToolUse.js` for `node .claude/hooks/PreToolUse.js`), with
/// `$CLAUDE_PROJECT_DIR/` or the project's absolute path taken off the front; the program
/// when it is a path and runs no script; else the command itself, cut at 80 characters.
#[must_use]
pub fn name_of(command: &str, project: &Path) -> String {
    let named = split(command).and_then(|s| s.segments.iter().find_map(|w| script_word(w)));
    match named {
        Some(word) => normalize(&word, project),
        None => truncate(command.trim()),
    }
}

/// [`name_of`] for the runner's own argv (already expanded by the client's shell).
#[must_use]
pub fn name_of_argv(argv: &[OsString], project: &Path) -> String {
    let words: Vec<String> = argv
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    match script_word(&words) {
        Some(word) => normalize(&word, project),
        None => truncate(&words.join(" ")),
    }
}

/// The word of a simple command that names the hook: an interpreter's script, or the program
/// when it is a path. `None` for a builtin or a bare program running no script.
fn script_word(words: &[String]) -> Option<String> {
    let (index, program) = program_of(words)?;
    if BUILTINS.contains(&program.as_str()) {
        return None;
    }
    if program.contains('/') {
        return Some(program.clone());
    }
    let base = program.rsplit('/').next().unwrap_or_default();
    if !INTERPRETERS.contains(&base) {
        return None;
    }
    for word in &words[index + 1..] {
        if INLINE_CODE.contains(&word.as_str()) {
            return None;
        }
        if word.starts_with('-') {
            continue;
        }
        let extension = word.rsplit_once('.').map(|(_, e)| e);
        if word.contains('/') || extension.is_some_and(|e| SCRIPT_EXTENSIONS.contains(&e)) {
            return Some(word.clone());
        }
    }
    None
}

/// The program of a simple command: the first word after assignments and prefixes such as
/// `env` and `nohup`, with its index.
fn program_of(words: &[String]) -> Option<(usize, &String)> {
    let mut after_env = false;
    for (i, word) in words.iter().enumerate() {
        if is_assignment(word) || (after_env && word.starts_with('-')) {
            continue;
        }
        if PREFIXES.contains(&word.as_str()) {
            after_env = word == "env";
            continue;
        }
        return Some((i, word));
    }
    None
}

/// A script path as the user knows it: relative to the project when it is in it.
fn normalize(word: &str, project: &Path) -> String {
    for prefix in ["$CLAUDE_PROJECT_DIR/", "${CLAUDE_PROJECT_DIR}/"] {
        if let Some(rest) = word.strip_prefix(prefix) {
            return rest.trim_start_matches('/').to_owned();
        }
    }
    if let Ok(rest) = Path::new(word).strip_prefix(project)
        && !rest.as_os_str().is_empty()
    {
        return rest.to_string_lossy().into_owned();
    }
    word.strip_prefix("./").unwrap_or(word).to_owned()
}

fn truncate(text: &str) -> String {
    text.chars().take(MAX_NAME_CHARS).collect()
}

/// The script file a command runs, resolved against `project`, when it names one: what
/// `ctxopt hooks disable` renames and the runner checks for a `.disabled` twin.
#[must_use]
pub fn script_path(command: &str, project: &Path) -> Option<std::path::PathBuf> {
    let split = split(command)?;
    let word = split.segments.iter().find_map(|w| script_word(w))?;
    for prefix in ["$CLAUDE_PROJECT_DIR/", "${CLAUDE_PROJECT_DIR}/"] {
        if let Some(rest) = word.strip_prefix(prefix) {
            return Some(project.join(rest.trim_start_matches('/')));
        }
    }
    if word.contains('$') || word.starts_with('~') {
        return None;
    }
    Some(project.join(word))
}

/// The script word of the runner's argv, as given (relative paths are the hook's working
/// directory's).
#[must_use]
pub fn script_of_argv(argv: &[OsString]) -> Option<OsString> {
    let words: Vec<String> = argv
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let word = script_word(&words)?;
    argv.iter().find(|w| w.to_string_lossy() == word).cloned()
}

/// The command install writes for `original`: `RUN --name NAME [--timeout T] -- original`, or
/// `… -- sh -c 'original'` when the command is not simple (see the module doc). `run` is the
/// runner's path, already shell-quoted. `None` when `original` does not parse.
#[must_use]
pub fn wrapped(run: &str, name: &str, timeout: Option<f64>, original: &str) -> Option<String> {
    let split = split(original)?;
    let mut out = format!("{run} --name {}", shell_quote(name));
    if let Some(secs) = timeout {
        out.push_str(" --timeout ");
        out.push_str(&format_secs(secs));
    }
    out.push_str(" -- ");
    if split.simple {
        out.push_str(original.trim());
    } else {
        out.push_str("sh -c ");
        out.push_str(&shell_quote(original));
    }
    Some(out)
}

/// Seconds as the shortest decimal: `29`, `0.5`.
#[must_use]
pub fn format_secs(secs: f64) -> String {
    let text = format!("{secs:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A command that runs through the runner, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Wrapped {
    /// The runner's path as written.
    pub run: String,
    /// `--name`, when given.
    pub name: Option<String>,
    /// `--timeout`, when given.
    pub timeout: Option<Duration>,
    /// The wrapped command: the text after `--`, or the `sh -c` argument when that is all.
    pub inner: String,
}

/// Reads a handler's command as a wrapped one; `None` when it does not run `ctxopt-run`.
#[must_use]
pub fn parse_wrapped(command: &str) -> Option<Wrapped> {
    let tokens = tokens(command)?;
    let first = tokens.first().filter(|t| !t.operator)?;
    if first.text.rsplit('/').next() != Some(RUN_PROGRAM) {
        return None;
    }
    let words: Vec<OsString> = tokens
        .iter()
        .skip(1)
        .take_while(|t| !t.operator)
        .map(|t| OsString::from(&t.text))
        .collect();
    let Ok(Parsed::Run(args)) = parse_args(words) else {
        return None;
    };
    let separator = tokens
        .iter()
        .skip(1)
        .find(|t| !t.operator && t.text == "--");
    let inner = match separator {
        Some(sep) => command[sep.end..].trim().to_owned(),
        None => args
            .command
            .iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    };
    let inner = match args.command.as_slice() {
        [sh, c, code] if sh == "sh" && c == "-c" => code.to_string_lossy().into_owned(),
        _ => inner,
    };
    Some(Wrapped {
        run: first.text.clone(),
        name: args.name,
        timeout: args.timeout,
        inner,
    })
}

/// The first word of a command, quotes removed (its program, unless it is an assignment).
#[must_use]
pub fn first_word(command: &str) -> Option<String> {
    tokens(command)?
        .into_iter()
        .next()
        .filter(|t| !t.operator)
        .map(|t| t.text)
}

/// Whether a handler's command runs one of ctxopt's own programs (never wrapped).
#[must_use]
pub fn is_own(command: &str) -> bool {
    tokens(command)
        .and_then(|t| t.into_iter().next())
        .is_some_and(|t| {
            !t.operator
                && t.text
                    .rsplit('/')
                    .next()
                    .is_some_and(|base| OWN_PROGRAMS.contains(&base))
        })
}

/// `ctxopt-run`'s arguments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Args {
    /// `--name`: the hook's name in the records.
    pub name: Option<String>,
    /// `--timeout`: the whole run's limit, retries included.
    pub timeout: Option<Duration>,
    /// `--retries`: extra attempts after a failure.
    pub retries: Option<u32>,
    /// The command and its arguments.
    pub command: Vec<OsString>,
}

/// What the arguments ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Run a command.
    Run(Args),
    /// `--help`.
    Help,
    /// `--version`.
    Version,
}

/// A command line the runner cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// An option without its value.
    #[error("{0} needs a value")]
    MissingValue(&'static str),
    /// A value that is not what the option takes.
    #[error("{option} takes {expected}, not `{value}`")]
    BadValue {
        /// The option.
        option: &'static str,
        /// What it takes.
        expected: &'static str,
        /// What was given.
        value: String,
    },
    /// An option the runner does not have.
    #[error("unknown option `{0}`")]
    UnknownOption(String),
    /// No command after the options.
    #[error("no command to run")]
    NoCommand,
}

/// The usage line, for `--help` and errors.
pub const USAGE: &str =
    "usage: ctxopt-run [--name NAME] [--timeout SECS] [--retries N] -- COMMAND [ARGS...]";

/// Parses the runner's arguments (after the program name). Options stop at `--` or at the
/// first word that is not one, so the wrapped command's own options are never read.
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, UsageError> {
    let mut args = args.into_iter();
    let mut out = Args::default();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        let (flag, inline) = match text.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value)),
            _ => (text.to_string(), None),
        };
        let mut value = |option: &'static str| -> Result<String, UsageError> {
            match inline {
                Some(v) => Ok(v.to_owned()),
                None => args
                    .next()
                    .map(|v| v.to_string_lossy().into_owned())
                    .ok_or(UsageError::MissingValue(option)),
            }
        };
        match flag.as_str() {
            "--" => {
                out.command = args.by_ref().collect();
                break;
            }
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "--name" => out.name = Some(value("--name")?),
            "--timeout" => {
                let v = value("--timeout")?;
                let secs: f64 = v.parse().map_err(|_| bad("--timeout", &v))?;
                if !(secs > 0.0 && secs <= MAX_TIMEOUT_SECS) {
                    return Err(bad("--timeout", &v));
                }
                out.timeout = Some(Duration::from_secs_f64(secs));
            }
            "--retries" => {
                let v = value("--retries")?;
                out.retries = Some(v.parse().map_err(|_| UsageError::BadValue {
                    option: "--retries",
                    expected: "a whole number",
                    value: v.clone(),
                })?);
            }
            f if f.starts_with('-') && f.len() > 1 => {
                return Err(UsageError::UnknownOption(f.to_owned()));
            }
            _ => {
                out.command = std::iter::once(arg).chain(args.by_ref()).collect();
                break;
            }
        }
    }
    if out.command.is_empty() {
        return Err(UsageError::NoCommand);
    }
    Ok(Parsed::Run(out))
}

fn bad(option: &'static str, value: &str) -> UsageError {
    UsageError::BadValue {
        option,
        expected: "seconds greater than 0 (at most a day)",
        value: value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn names_are_the_script_as_written() {
        let p = Path::new("/p");
        for (command, name) in [
            (
                "node .claude/hooks/PreToolUse.js",
                ".claude/hooks/PreToolUse.js",
            ),
            (
                "\"$CLAUDE_PROJECT_DIR\"/.claude/hooks/guard.sh",
                ".claude/hooks/guard.sh",
            ),
            (
                "${CLAUDE_PROJECT_DIR}/.claude/hooks/a.py",
                ".claude/hooks/a.py",
            ),
            ("python3 -u ./hooks/x.py --flag", "hooks/x.py"),
            (
                "/usr/local/bin/cc-metrics stop",
                "/usr/local/bin/cc-metrics",
            ),
            ("/p/.claude/hooks/x.sh", ".claude/hooks/x.sh"),
            (
                "cd \"$CLAUDE_PROJECT_DIR\" && npx tsx hooks/check.ts 2>/dev/null",
                "hooks/check.ts",
            ),
            ("FOO=1 env -i BAR=2 node a.js", "a.js"),
            ("say bye", "say bye"),
            ("bash -c 'echo hi; exit 3'", "bash -c 'echo hi; exit 3'"),
        ] {
            assert_eq!(name_of(command, p), name, "{command}");
        }
        assert_eq!(
            name_of_argv(&os(&["node", "/p/.claude/hooks/PreToolUse.js"]), p),
            ".claude/hooks/PreToolUse.js"
        );
        assert_eq!(name_of_argv(&os(&["/bin/true"]), p), "/bin/true");
        assert_eq!(
            name_of_argv(&os(&["sh", "-c", "exit 3"]), p),
            "sh -c exit 3"
        );
    }

    #[test]
    fn simple_commands_are_prefixed_and_the_rest_go_through_sh() {
        let run = "/opt/bin/ctxopt-run";
        assert_eq!(
            wrapped(run, ".claude/hooks/a.js", None, " node .claude/hooks/a.js ").unwrap(),
            "/opt/bin/ctxopt-run --name .claude/hooks/a.js -- node .claude/hooks/a.js"
        );
        assert_eq!(
            wrapped(run, "x", Some(9.0), "a && b 'c d'").unwrap(),
            r"/opt/bin/ctxopt-run --name x --timeout 9 -- sh -c 'a && b '\''c d'\'''"
        );
        for complex in [
            "FOO=1 node a.js",
            "cd x; y",
            "x 2>/dev/null",
            "exec node a.js",
            "a | b",
        ] {
            assert!(!split(complex).unwrap().simple, "{complex}");
        }
        assert!(split("node 'a b.js' \"$X\" ${Y:-z} `pwd`").is_some_and(|s| s.simple));
        // `$( )` is left to `sh -c`: its parentheses read as operators (conservative).
        assert!(!split("node $(pwd)/a.js").unwrap().simple);
        assert!(split("node 'unclosed").is_none());
        assert_eq!(format_secs(0.5), "0.5");
        assert_eq!(format_secs(29.0), "29");
    }

    #[test]
    fn a_wrapped_command_reads_back() {
        let original = "echo 'it''s' && exit 3";
        let command = wrapped("'/my bin/ctxopt-run'", "n a", Some(1.5), original).unwrap();
        let back = parse_wrapped(&command).unwrap();
        assert_eq!(back.run, "/my bin/ctxopt-run");
        assert_eq!(back.name.as_deref(), Some("n a"));
        assert_eq!(back.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(back.inner, original);
        let simple = wrapped("/b/ctxopt-run", "a.js", None, "node a.js --x").unwrap();
        assert_eq!(parse_wrapped(&simple).unwrap().inner, "node a.js --x");
        assert!(parse_wrapped("node a.js").is_none());
        assert!(is_own("/x/ctxopt-pre-tool-use"));
        assert!(is_own("'/a b/ctxopt-run' -- x"));
        assert!(!is_own("node ctxopt.js"));
    }

    #[test]
    fn runner_arguments() {
        let parsed = parse_args(os(&[
            "--name",
            "n",
            "--timeout=2.5",
            "--retries",
            "0",
            "--",
            "node",
            "--name",
        ]))
        .unwrap();
        assert_eq!(
            parsed,
            Parsed::Run(Args {
                name: Some("n".into()),
                timeout: Some(Duration::from_millis(2500)),
                retries: Some(0),
                command: os(&["node", "--name"]),
            })
        );
        let Parsed::Run(args) = parse_args(os(&["/bin/true", "-x"])).unwrap() else {
            panic!()
        };
        assert_eq!(args.command, os(&["/bin/true", "-x"]));
        assert_eq!(parse_args(os(&["--help"])).unwrap(), Parsed::Help);
        for (argv, message) in [
            (vec!["--name"], "--name needs a value"),
            (vec!["--timeout", "0", "x"], "--timeout takes seconds"),
            (vec!["--timeout", "abc", "x"], "--timeout takes seconds"),
            (
                vec!["--retries", "-1", "x"],
                "--retries takes a whole number",
            ),
            (vec!["--bogus", "x"], "unknown option `--bogus`"),
            (vec!["--name", "n", "--"], "no command to run"),
        ] {
            let err = parse_args(os(&argv)).unwrap_err().to_string();
            assert!(err.starts_with(message), "{argv:?}: {err}");
        }
    }

    #[test]
    fn script_paths_resolve_against_the_project() {
        let p = Path::new("/p");
        assert_eq!(
            script_path("node .claude/hooks/a.js", p).unwrap(),
            Path::new("/p/.claude/hooks/a.js")
        );
        assert_eq!(
            script_path("\"$CLAUDE_PROJECT_DIR\"/h.sh", p).unwrap(),
            Path::new("/p/h.sh")
        );
        assert_eq!(
            script_path("/abs/h.sh x", p).unwrap(),
            Path::new("/abs/h.sh")
        );
        assert!(script_path("say bye", p).is_none());
        assert!(script_path("$OTHER/h.sh", p).is_none());
        assert_eq!(
            script_of_argv(&os(&["node", "a/b.js"])),
            Some(OsString::from("a/b.js"))
        );
    }
}
