//! What a Bash command writes, read the way a shell reads it (issue 4, item 1; R4): the Bash
//! half of the protected-write guard. [`writes`] lists every file a static reading can see the
//! command write, create, remove, move, link or change the mode of; the caller normalises each
//! target (see [`super::paths`]) and denies when one is protected. [`could_write`] is the cheap
//! pre-check that spares the parser on read-only commands (`false` only when [`writes`] would
//! find nothing). It never decides, never touches the filesystem and never runs anything.
//!
//! # How
//! The command is tokenised and parsed by brush-parser (a POSIX/bash parser), never matched
//! with a regex — or, for a simple line, by `simple`, which builds brush-parser's own tree
//! (the walk below reads either; differential tests hold the two readings equal). The walk covers lists (`;`, `&&`, `||`, `&`), pipelines, subshells, brace
//! groups, `if`/`while`/`until`/`for`/`case`, functions (their bodies count as written at
//! definition), `[[ … ]]`, arithmetic, process substitutions `<( )` `>( )`. Words get quote
//! removal (`'…'`, `"…"`, `$'…'` with its escapes, `\x`) and brace expansion
//! (`{a,b}`); `$VAR`, `${VAR}`, `~`, globs and `$( )` stay in the target's text for the
//! normaliser. Code inside code is read too, to [`MAX_LEVELS`] levels: `$( )` and backticks
//! (in words, here-documents, `${…}` and arithmetic), `bash|sh|zsh|… -c`, `eval`, `su -c`,
//! `watch`, `flock -c`, and shell code fed to a shell on stdin (`bash <<EOF`, `echo … | sh`).
//!
//! What writes:
//! - redirections `>`, `>>`, `>|`, `<>`, `&>`, `&>>`, `n>`, `>&FILE` on any command (`exec`
//!   and compound commands included); `/dev/*` targets are returned too (`2>/dev/null`): the
//!   caller's protected set does not hold them;
//! - `tee`, `sponge`, `sed -i`/`-I`/`--in-place` (GNU and BSD `-i ''`) and sed's own `w FILE`
//!   command, `perl -i`, `ruby -i`, `gawk -i inplace`, `cp`, `mv` (sources too), `install`,
//!   `ln`, `rsync`, `scp`, `rm`, `unlink`, `rmdir`, `shred`, `chmod`, `chown`, `chgrp`,
//!   `truncate`, `touch`, `mkdir`, `mktemp`, `dd of=`, `sort -o`, `uniq IN OUT`, `patch`,
//!   `tar` (the archive it creates, the directory it extracts into), `unzip -d`, `curl -o`/`-O`
//!   (and `-D`, `-c`, `--trace`), `wget` (`-O`, `-o`, `-P`, the URL's name), `git checkout`,
//!   `git restore`, `git rm`, `git mv` (with `git -C DIR`), editors given a file (`ed`, `ex`,
//!   `vim`, …), formatters told to write (`prettier --write`, `black`, `yq -i`, …), `find`
//!   with `-delete`, `-exec CMD`, `-fprint`, `xargs CMD`, `/usr/bin/time -o`, `strace -o`;
//! - interpreter one-liners `python* -c`, `node -e|-p|--eval`, `deno eval`, `bun -e`,
//!   `ruby -e`, `perl -e|-E`, `php -r`, `awk` programs, and the same code given on stdin
//!   (`python3 - <<EOF`): when the code holds a write-ish call (`open(…, 'w')`, `write_text`,
//!   `shutil.`, `os.remove`, `writeFileSync`, `File.write`, `FileUtils`, perl's `open(F,
//!   ">…")`, `unlink`, …) every string literal that looks like a path is reported as a target,
//!   with directory-like literals joined to the next one (`os.path.join('.claude',
//!   'settings.json')`) and `~/` variants when the code reads the home directory, plus one
//!   opaque target (below). A call that starts a shell (`os.system`, `subprocess`,
//!   `execSync`, `system`, backticks) has its literals read as shell code. Reads stay allowed.
//!
//! Prefixes are skipped to reach the real command: `sudo`, `doas`, `env` (its `-C DIR` acts
//! as a `cd`), `command`, `builtin`, `exec`, `nohup`, `timeout`, `nice`, `ionice`, `time`,
//! `stdbuf`, `setsid`, `chronic`, `unbuffer`, `busybox`, `taskset`, `chrt`. A path is taken by
//! its last component (`/usr/bin/tee` is `tee`).
//!
//! # Working directories
//! Each write carries the directory a `cd DIR`, `pushd DIR` or `popd` earlier in the same
//! shell moved to ([`ShellWrite::cd`]; nested `cd`s are joined, `a/b`). The walk keeps the set
//! of directories the shell may be in, so a `cd` that may fail is not trusted: after
//! `cd x; …` a relative target is reported twice, once for `x` and once for the starting
//! directory; after `cd x && …` once, for `x`. A `cd` inside `( )`, `$( )`, a pipeline or `&`
//! does not leak out. A directory that cannot be known (a loop that `cd`s, `eval` holding a
//! `cd`, more than eight candidates) is [`UNKNOWN_DIR`], which normalises to nothing.
//!
//! # The conservative rule
//! A target the text cannot pin down is still reported, with its text: `> "$f"`,
//! `tee $(cat list)`, `xargs rm` ([`FROM_STDIN`]). Writes no target names at all are reported
//! as one opaque target `$(HOW: TEXT)` quoting what they come from (at most 2 KiB): a
//! write-ish one-liner (`$(python -c: CODE)`), a command whose name is not literal
//! (`$(dynamic command: $EDITOR .claude/settings.json)`, `bash -c "$(…)"`), a shell or
//! interpreter reading code from a stdin this command does not spell out
//! (`$(bash (stdin): code from stdin)`, `curl … | sh`). All of these normalise to `None`;
//! the caller then denies only when the command text (or the quoted text) names a protected
//! path. Simple assignments (`f=.claude/x; echo > $f`, `export`, `for f in …`) add a variant
//! of each target with the value substituted. A command that does not parse, is longer than
//! [`MAX_COMMAND_BYTES`], nests code deeper than [`MAX_LEVELS`] or has more than
//! [`MAX_NESTING`] nested constructs is a [`ShellError`]: the caller denies it when its text
//! names a protected path (fail closed).
//!
//! [`ShellWrite::recursive`] marks the writes that replace or remove a whole tree (`rm -r`,
//! `mv` sources, `chmod -R`, `ln -sfn`, `find DIR -delete`, `git checkout -- DIR`): check
//! those with [`super::paths::Protected::check_subtree`], the others with `check` only — a
//! copy's destination directory (`cp x .`) is not a tree write, and `check_subtree(".")` would
//! deny it.
//!
//! # Cost and safety
//! The common simple line (words, quotes, `;`, `&&`, `||`, `|`, output redirections) is read by
//! `simple` in one pass into the tree brush-parser would build (a few µs for 1 KB); only the
//! rest goes to brush-parser. A realistic 1 KB command that needs the parser takes ~110 µs in
//! release on a 2-vCPU machine (median; the ignored `speed_on_a_1_kb_command` test), ~80 µs of
//! it brush-parser's tokenizer and parser;
//! a 64 KiB command at most ~60 ms. The parser recurses once per nested construct (~17 KiB of
//! stack a level unoptimised): a command with more than 48 of them is parsed on a thread whose
//! stack is sized for them, so deep nesting cannot overflow the caller's stack (a stack
//! overflow aborts the process, which Claude Code would take as "allow"). brush-parser 0.4
//! panics on an I/O number beyond `i32` (`99999999999>f`): such commands are refused before
//! parsing. Work is bounded (jobs, walk steps, writes, variants); it never panics (proptests
//! on arbitrary text and on shell-token soup).
//!
//! # Known limits (the snapshot in [`super::snapshot`] is the line behind these)
//! - Scripts run from files (`bash x.sh`, `python3 x.py`, `source x`, `make`, `npm run`) and
//!   code downloaded then run (`curl … | sh`) are not read.
//! - Aliases and functions that shadow commands, `IFS` tricks, variables whose value is
//!   computed (`f=$(…)`, `read f`), arrays, `CDPATH`, `cd` from a variable: targets keep
//!   their text and fall under the conservative rule.
//! - Interpreter code is scanned, not parsed: paths built at run time (`chr(46)+'claude'`,
//!   string concatenation, base64) are missed; a literal that is only read is reported when
//!   the code also writes elsewhere (a false denial the person can work around).
//! - Commands that rewrite unnamed tracked files (`git reset --hard`, `git stash`,
//!   `git apply`, `git clean`, `git merge`), `split`, archives extracted without `-C`, and
//!   tools not listed above write without a named target.
//! - `find` predicates are not evaluated: `find DIR -name P -delete` reports `DIR/**`
//!   (opaque), `find DIR -delete` reports `DIR` as recursive.
//! - A loop's body is read once (twice when it changes directory).
//! - A writer reached under another name (a copy or link of `rm` called `x`, a `PATH` entry
//!   the command itself set up) is not recognised, here or by [`could_write`].

mod simple;

use std::collections::{HashSet, VecDeque};

use brush_parser::ast;
use brush_parser::{ParserOptions, Token, parse_tokens, uncached_tokenize_str};

/// Commands longer than this (bytes) are not analysed: [`ShellError`].
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;
/// How deep code inside code is followed (`bash -c "eval '…'"`); deeper is a [`ShellError`].
pub const MAX_LEVELS: u8 = 8;
/// Most nested constructs (`(`, `{`, `if`, `$(`, `${`, …) one piece of code may open.
pub const MAX_NESTING: usize = 2048;
/// The directory of a write whose working directory cannot be known statically.
pub const UNKNOWN_DIR: &str = "$(unknown directory)";
/// The target of a write whose operands come from stdin (`xargs rm`).
pub const FROM_STDIN: &str = "$(xargs input)";
/// Marks, inside [`ShellWrite::how`], a write that may replace or remove a whole tree.
pub const RECURSIVE: &str = " (recursive)";
/// Longest text an opaque target quotes.
const OPAQUE_TEXT_BYTES: usize = 2048;

/// Constructs parsed on the caller's stack; more go to a thread sized for them.
const INLINE_NESTING: usize = 48;
/// Stack per nested construct: the parser takes ~17 KiB a level unoptimised, ~4 KiB optimised.
const STACK_PER_LEVEL: usize = 32 * 1024;
/// Pieces of code analysed for one command (the command, its `$( )`, `bash -c`, …).
const MAX_JOBS: usize = 256;
/// AST nodes and commands visited for one command.
const MAX_STEPS: usize = 200_000;
/// Writes reported for one command, variants included.
const MAX_WRITES: usize = 8192;
/// Directories the shell may be in at one point.
const MAX_CWDS: usize = 8;
/// Longest directory a `cd` chain is followed to (Linux's `PATH_MAX`).
const MAX_DIR_BYTES: usize = 4096;
/// Words one brace expansion may produce.
const MAX_BRACE_WORDS: usize = 64;
/// String literals read from one interpreter program.
const MAX_LITERALS: usize = 256;
/// Literals of an interpreter program read as shell code when the program starts a shell.
const MAX_SHELL_LITERALS: usize = 32;
/// Known values of variables (assignments and `for` lists).
const MAX_VARS: usize = 64;

/// One write a command would make.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

impl ShellWrite {
    /// Whether the write may replace or remove everything below `target` (`rm -r`, `mv`,
    /// `chmod -R`, `git checkout -- DIR`): check it with `Protected::check_subtree`.
    #[must_use]
    pub fn recursive(&self) -> bool {
        self.how.contains(RECURSIVE)
    }
}

/// Why a command could not be analysed.
#[derive(Debug, thiserror::Error)]
#[error("failed to parse the Bash command: {message}")]
pub struct ShellError {
    /// What the parser said.
    pub message: String,
}

impl ShellError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Whether `command` could write anything at all — a cheap pre-check that spares the parser
/// on the common read-only command. It errs towards `true`: `false` means [`writes`] finds
/// nothing (a proptest holds it to that). After line continuations, quotes and backslashes
/// are removed (`t''ee` reads `tee`), the text has a redirection or an expansion (`>`, `<`,
/// `$`, a backtick), a brace expansion that could spell a name (`{r,}m`), a glob anywhere (a
/// glob can stand where a command name goes: `/bin/r? x`), or a word naming a command
/// [`writes`] reads (`tee`, `cp`, `git`, `python3.11`, `bash`, `sudo`, `xargs`, …).
#[must_use]
pub fn could_write(command: &str) -> bool {
    let plain: String = command
        .replace("\\\n", "")
        .chars()
        .filter(|c| !matches!(c, '\'' | '"' | '\\'))
        .collect();
    if plain.contains(['>', '$', '`']) {
        return true;
    }
    // A glob anywhere may expand into a command name (a word in command position can follow a
    // redirection, a quoted span, an escaped `;`): the parser decides. So may an input
    // redirection before the command word.
    if plain.contains(['*', '?', '<']) || (plain.contains('[') && plain.contains(']')) {
        return true;
    }
    if plain.contains('{') && (plain.contains(',') || plain.contains("..")) {
        return true;
    }
    plain
        .split(|c: char| c.is_whitespace() || ";&|(){}<".contains(c))
        .map(basename)
        .any(|name| {
            WRITERS.contains(&name) || SHELLS.contains(&name) || interpreter(name).is_some()
        })
}

/// Every command [`writes`] reads, by name, besides the shells and interpreters.
const WRITERS: &[&str] = &[
    // Runs code or another command.
    "eval",
    "exec",
    "source",
    "sudo",
    "doas",
    "env",
    "command",
    "builtin",
    "nohup",
    "timeout",
    "nice",
    "ionice",
    "time",
    "stdbuf",
    "taskset",
    "chrt",
    "flock",
    "strace",
    "ltrace",
    "su",
    "runuser",
    "watch",
    "xargs",
    "find",
    "chronic",
    "unbuffer",
    "busybox",
    "setsid",
    "caffeinate",
    "catchsegv",
    "firejail",
    "proxychains",
    "torsocks",
    "tsp",
    "systemd-run",
    "unshare",
    // Writes files.
    "tee",
    "sponge",
    "sed",
    "cp",
    "mv",
    "install",
    "ln",
    "link",
    "rsync",
    "scp",
    "rm",
    "unlink",
    "rmdir",
    "shred",
    "srm",
    "chmod",
    "chown",
    "chgrp",
    "truncate",
    "touch",
    "mkdir",
    "mktemp",
    "mkfifo",
    "dd",
    "sort",
    "uniq",
    "git",
    "curl",
    "wget",
    "tar",
    "bsdtar",
    "gtar",
    "unzip",
    "patch",
    "ed",
    "ex",
    "vi",
    "vim",
    "nvim",
    "view",
    "nano",
    "pico",
    "emacs",
    "micro",
    "kak",
    "joe",
    "prettier",
    "black",
    "isort",
    "ruff",
    "shfmt",
    "clang-format",
    "gofmt",
    "rustfmt",
    "autopep8",
    "eslint",
    "yq",
    "biome",
    "dos2unix",
    "unix2dos",
];

/// Every write `command` would make, as far as a static reading can tell.
pub fn writes(command: &str) -> Result<Vec<ShellWrite>, ShellError> {
    analyse(command, false)
}

/// [`writes`], with `parser_only` reading every piece of code with brush-parser (the
/// differential tests of [`simple`]).
fn analyse(command: &str, parser_only: bool) -> Result<Vec<ShellWrite>, ShellError> {
    if command.len() > MAX_COMMAND_BYTES {
        return Err(ShellError::new(format!(
            "the command is longer than {MAX_COMMAND_BYTES} bytes"
        )));
    }
    let mut analysis = Analysis {
        parser_only,
        ..Analysis::default()
    };
    analysis.jobs.push_back(Job {
        code: command.to_owned(),
        cwds: Cwds::start(),
        level: 0,
        via: None,
        strict: true,
    });
    let mut done = 0;
    while let Some(job) = analysis.jobs.pop_front() {
        done += 1;
        if done > MAX_JOBS {
            return Err(ShellError::new("the command holds too much nested code"));
        }
        let strict = job.strict;
        if let Err(error) = analysis.run(job)
            && strict
        {
            return Err(error);
        }
        if let Some(error) = analysis.error.take() {
            return Err(error);
        }
    }
    Ok(analysis.finish())
}

/// One piece of shell code to read: the command itself or code found inside it.
#[derive(Debug)]
struct Job {
    code: String,
    cwds: Cwds,
    level: u8,
    via: Option<String>,
    /// Whether a parse failure fails the whole analysis (false for interpreter literals that
    /// may not be shell code at all).
    strict: bool,
}

/// The state of one [`writes`] call.
#[derive(Debug, Default)]
struct Analysis {
    writes: Vec<ShellWrite>,
    jobs: VecDeque<Job>,
    vars: Vec<(String, String)>,
    steps: usize,
    error: Option<ShellError>,
    /// Never take [`simple::parse`]'s fast path (tests only compare the two).
    parser_only: bool,
}

impl Analysis {
    fn run(&mut self, job: Job) -> Result<(), ShellError> {
        if job.level > MAX_LEVELS {
            return Err(ShellError::new(format!(
                "code is nested more than {MAX_LEVELS} levels deep"
            )));
        }
        if !self.parser_only
            && let Some(program) = simple::parse(&job.code)
        {
            let Job {
                cwds, level, via, ..
            } = job;
            let mut walker = Walker {
                an: self,
                level,
                via,
                dirstack: Vec::new(),
            };
            walker.program(&program, cwds);
            return Ok(());
        }
        let options = ParserOptions::default();
        let expansions = expansion_openers(&job.code);
        if expansions > MAX_NESTING {
            return Err(too_nested());
        }
        let tokens = on_stack(expansions, || {
            uncached_tokenize_str(&job.code, &options.tokenizer_options())
        })?
        .map_err(|error| ShellError::new(error.to_string()))?;
        refuse_huge_io_numbers(&tokens)?;
        let syntax = syntax_openers(&tokens);
        if syntax > MAX_NESTING {
            return Err(too_nested());
        }
        let Job {
            cwds, level, via, ..
        } = job;
        on_stack(expansions.max(syntax), move || {
            let program = parse_tokens(&tokens, &options)
                .map_err(|error| ShellError::new(error.to_string()))?;
            let mut walker = Walker {
                an: self,
                level,
                via,
                dirstack: Vec::new(),
            };
            walker.program(&program, cwds);
            Ok(())
        })?
    }

    /// The writes, with variable variants added, deduplicated in first-seen order.
    fn finish(self) -> Vec<ShellWrite> {
        let mut seen: HashSet<ShellWrite> = HashSet::with_capacity(self.writes.len());
        let mut out: Vec<ShellWrite> = Vec::with_capacity(self.writes.len());
        for write in self.writes {
            if !seen.insert(write.clone()) {
                continue;
            }
            let targets = substitute(&write.target, &self.vars);
            let cds = match &write.cd {
                Some(cd) => substitute(cd, &self.vars).into_iter().map(Some).collect(),
                None => vec![None],
            };
            for target in &targets {
                for cd in &cds {
                    let variant = ShellWrite {
                        target: target.clone(),
                        cd: cd.clone(),
                        how: write.how.clone(),
                    };
                    if variant == write || (out.len() < MAX_WRITES && seen.insert(variant.clone()))
                    {
                        out.push(variant);
                    }
                }
            }
        }
        out.truncate(MAX_WRITES);
        out
    }
}

fn too_nested() -> ShellError {
    ShellError::new(format!(
        "the command nests more than {MAX_NESTING} constructs"
    ))
}

/// Runs `f` on the caller's stack when `levels` nested constructs fit there, else on a thread
/// whose stack is sized for them (the parser recurses once per level).
fn on_stack<T: Send>(levels: usize, f: impl FnOnce() -> T + Send) -> Result<T, ShellError> {
    if levels <= INLINE_NESTING {
        return Ok(f());
    }
    let size = (1 << 20) + levels * STACK_PER_LEVEL;
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("ctxopt-shell-parse".to_owned())
            .stack_size(size)
            .spawn_scoped(scope, f)
            .map_err(|error| ShellError::new(format!("failed to start a parser thread: {error}")))?
            .join()
            .map_err(|_| ShellError::new("the parser thread failed"))
    })
}

/// An upper bound of the tokenizer's recursion: it recurses on `$(`, `${` and `$[` only.
fn expansion_openers(code: &str) -> usize {
    code.as_bytes()
        .windows(2)
        .filter(|pair| pair[0] == b'$' && matches!(pair[1], b'(' | b'{' | b'['))
        .count()
}

/// An upper bound of the parser's recursion: every token that may open a nested construct.
fn syntax_openers(tokens: &[Token]) -> usize {
    tokens
        .iter()
        .filter(|token| match token {
            Token::Operator(text, _) => text.contains('('),
            Token::Word(text, _) => matches!(
                text.as_str(),
                "{" | "if"
                    | "while"
                    | "until"
                    | "for"
                    | "select"
                    | "case"
                    | "coproc"
                    | "function"
                    | "[["
                    | "!"
                    | "("
            ),
        })
        .count()
}

/// brush-parser 0.4 unwraps the parse of an I/O number (`N>`) as an `i32`: refuse what would
/// make it panic (bash itself refuses such a descriptor).
fn refuse_huge_io_numbers(tokens: &[Token]) -> Result<(), ShellError> {
    for pair in tokens.windows(2) {
        if let (Token::Word(word, word_at), Token::Operator(op, op_at)) = (&pair[0], &pair[1])
            && op.starts_with(['<', '>'])
            && word_at.end.index == op_at.start.index
            && !word.is_empty()
            && word.bytes().all(|b| b.is_ascii_digit())
            && word.parse::<i32>().is_err()
        {
            return Err(ShellError::new(format!(
                "file descriptor {word} out of range"
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Working directories
// ---------------------------------------------------------------------------------------------

/// The directories the shell may be in: `None` is the call's own working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cwds(Vec<Option<String>>);

impl Cwds {
    fn start() -> Self {
        Self(vec![None])
    }

    fn unknown() -> Self {
        Self(vec![Some(UNKNOWN_DIR.to_owned())])
    }

    fn add(&mut self, dir: Option<String>) {
        if self.0.contains(&dir) {
            return;
        }
        if self.0.len() < MAX_CWDS {
            self.0.push(dir);
            return;
        }
        let unknown = Some(UNKNOWN_DIR.to_owned());
        if !self.0.contains(&unknown)
            && let Some(last) = self.0.last_mut()
        {
            *last = unknown;
        }
    }

    fn union(&mut self, other: &Self) {
        for dir in &other.0 {
            self.add(dir.clone());
        }
    }

    fn joined(&self, other: &Self) -> Self {
        let mut out = self.clone();
        out.union(other);
        out
    }

    /// Where a successful `cd dir` leads from each of these.
    fn changed_to(&self, dir: &str) -> Self {
        let mut out = Self(Vec::new());
        for base in &self.0 {
            out.add(Some(join_dir(base.as_deref(), dir)));
        }
        out
    }
}

/// `dir` entered from `base`; [`UNKNOWN_DIR`] past [`MAX_DIR_BYTES`] (a path no kernel takes).
fn join_dir(base: Option<&str>, dir: &str) -> String {
    let joined = match base {
        Some(UNKNOWN_DIR) => return UNKNOWN_DIR.to_owned(),
        Some(base) if !dir.starts_with(['/', '~', '$']) => {
            format!("{}/{dir}", base.trim_end_matches('/'))
        }
        _ => dir.to_owned(),
    };
    if joined.len() > MAX_DIR_BYTES {
        UNKNOWN_DIR.to_owned()
    } else {
        joined
    }
}

/// Where a command may leave the shell: after success and after failure.
#[derive(Debug, Clone)]
struct Flow {
    ok: Cwds,
    fail: Cwds,
}

impl Flow {
    fn same(cwds: Cwds) -> Self {
        Self {
            ok: cwds.clone(),
            fail: cwds,
        }
    }

    fn merged(self) -> Cwds {
        self.ok.joined(&self.fail)
    }
}

// ---------------------------------------------------------------------------------------------
// The AST walk
// ---------------------------------------------------------------------------------------------

struct Walker<'a> {
    an: &'a mut Analysis,
    level: u8,
    /// How the code being read was reached (`bash -c`, `$( )`, `xargs`), appended to `how`.
    via: Option<String>,
    dirstack: Vec<Cwds>,
}

impl Walker<'_> {
    fn step(&mut self) -> bool {
        self.an.steps += 1;
        if self.an.steps > MAX_STEPS {
            if self.an.error.is_none() {
                self.an.error = Some(ShellError::new("the command is too large to analyse"));
            }
            return false;
        }
        true
    }

    fn program(&mut self, program: &ast::Program, mut cwds: Cwds) {
        for list in &program.complete_commands {
            cwds = self.list(list, cwds);
        }
    }

    fn list(&mut self, list: &ast::CompoundList, mut cwds: Cwds) -> Cwds {
        for ast::CompoundListItem(and_or, separator) in &list.0 {
            if matches!(separator, ast::SeparatorOperator::Async) {
                self.and_or(and_or, cwds.clone());
            } else {
                cwds = self.and_or(and_or, cwds).merged();
            }
        }
        cwds
    }

    fn and_or(&mut self, list: &ast::AndOrList, cwds: Cwds) -> Flow {
        let mut flow = self.pipeline(&list.first, cwds);
        for next in &list.additional {
            flow = match next {
                ast::AndOr::And(pipeline) => {
                    let then = self.pipeline(pipeline, flow.ok.clone());
                    Flow {
                        ok: then.ok,
                        fail: flow.fail.joined(&then.fail),
                    }
                }
                ast::AndOr::Or(pipeline) => {
                    let otherwise = self.pipeline(pipeline, flow.fail.clone());
                    Flow {
                        ok: flow.ok.joined(&otherwise.ok),
                        fail: otherwise.fail,
                    }
                }
            };
        }
        flow
    }

    fn pipeline(&mut self, pipeline: &ast::Pipeline, cwds: Cwds) -> Flow {
        if let [command] = pipeline.seq.as_slice() {
            let flow = self.command(command, cwds, None);
            return if pipeline.bang {
                Flow {
                    ok: flow.fail,
                    fail: flow.ok,
                }
            } else {
                flow
            };
        }
        let mut previous: Option<&ast::Command> = None;
        for command in &pipeline.seq {
            let stdin = previous
                .filter(|_| reads_code(command))
                .and_then(literal_output);
            self.command(command, cwds.clone(), stdin.as_deref());
            previous = Some(command);
        }
        Flow::same(cwds)
    }

    fn command(&mut self, command: &ast::Command, cwds: Cwds, stdin: Option<&str>) -> Flow {
        if !self.step() {
            return Flow::same(cwds);
        }
        match command {
            ast::Command::Simple(simple) => self.simple(simple, cwds, stdin),
            ast::Command::Compound(compound, redirects) => {
                if let Some(redirects) = redirects {
                    self.redirects(&redirects.0, &cwds);
                }
                Flow::same(self.compound(compound, cwds))
            }
            ast::Command::Function(function) => {
                self.word_subs(&function.fname.value, &cwds);
                let ast::FunctionBody(body, redirects) = &function.body;
                if let Some(redirects) = redirects {
                    self.redirects(&redirects.0, &cwds);
                }
                self.compound(body, cwds.clone());
                Flow::same(cwds)
            }
            ast::Command::ExtendedTest(test, redirects) => {
                if let Some(redirects) = redirects {
                    self.redirects(&redirects.0, &cwds);
                }
                self.test_expr(&test.expr, &cwds);
                Flow::same(cwds)
            }
        }
    }

    fn test_expr(&mut self, expr: &ast::ExtendedTestExpr, cwds: &Cwds) {
        let mut pending = vec![expr];
        while let Some(expr) = pending.pop() {
            match expr {
                ast::ExtendedTestExpr::And(left, right)
                | ast::ExtendedTestExpr::Or(left, right) => {
                    pending.push(left);
                    pending.push(right);
                }
                ast::ExtendedTestExpr::Not(inner) | ast::ExtendedTestExpr::Parenthesized(inner) => {
                    pending.push(inner);
                }
                ast::ExtendedTestExpr::UnaryTest(_, word) => self.word_subs(&word.value, cwds),
                ast::ExtendedTestExpr::BinaryTest(_, left, right) => {
                    self.word_subs(&left.value, cwds);
                    self.word_subs(&right.value, cwds);
                }
            }
        }
    }

    /// The directories after a compound command.
    fn compound(&mut self, compound: &ast::CompoundCommand, cwds: Cwds) -> Cwds {
        match compound {
            ast::CompoundCommand::BraceGroup(group) => self.list(&group.list, cwds),
            ast::CompoundCommand::Subshell(subshell) => {
                self.list(&subshell.list, cwds.clone());
                cwds
            }
            ast::CompoundCommand::IfClause(clause) => self.if_clause(clause, cwds),
            ast::CompoundCommand::WhileClause(ast::WhileOrUntilClauseCommand(cond, body, _))
            | ast::CompoundCommand::UntilClause(ast::WhileOrUntilClauseCommand(cond, body, _)) => {
                self.looped(Some(cond), &body.list, &cwds)
            }
            ast::CompoundCommand::ForClause(clause) => {
                for value in clause.values.iter().flatten() {
                    for text in self.expand(&value.value, &cwds) {
                        self.set_var(&clause.variable_name, text);
                    }
                }
                self.looped(None, &clause.body.list, &cwds)
            }
            ast::CompoundCommand::ArithmeticForClause(clause) => {
                for expr in [&clause.initializer, &clause.condition, &clause.updater]
                    .into_iter()
                    .flatten()
                {
                    self.text_subs(&expr.value, &cwds, false);
                }
                self.looped(None, &clause.body.list, &cwds)
            }
            ast::CompoundCommand::CaseClause(clause) => {
                self.word_subs(&clause.value.value, &cwds);
                let mut after = cwds.clone();
                for item in &clause.cases {
                    for pattern in &item.patterns {
                        self.word_subs(&pattern.value, &cwds);
                    }
                    if let Some(body) = &item.cmd {
                        let end = self.list(body, cwds.clone());
                        after.union(&end);
                    }
                }
                after
            }
            ast::CompoundCommand::Arithmetic(arithmetic) => {
                self.text_subs(&arithmetic.expr.value, &cwds, false);
                cwds
            }
            ast::CompoundCommand::Coprocess(coprocess) => {
                self.command(&coprocess.body, cwds.clone(), None);
                cwds
            }
        }
    }

    fn if_clause(&mut self, clause: &ast::IfClauseCommand, cwds: Cwds) -> Cwds {
        let mut tested = self.list(&clause.condition, cwds);
        let mut after = self.list(&clause.then, tested.clone());
        let mut has_else = false;
        for branch in clause.elses.iter().flatten() {
            if let Some(condition) = &branch.condition {
                tested = self.list(condition, tested);
            } else {
                has_else = true;
            }
            let end = self.list(&branch.body, tested.clone());
            after.union(&end);
        }
        if !has_else {
            after.union(&tested);
        }
        after
    }

    /// A loop: the body may run any number of times. Read once; when it changes directory,
    /// read again from every directory it may start in, unknown ones included.
    fn looped(
        &mut self,
        condition: Option<&ast::CompoundList>,
        body: &ast::CompoundList,
        cwds: &Cwds,
    ) -> Cwds {
        let once = |walker: &mut Self, start: Cwds| {
            let tested = match condition {
                Some(condition) => walker.list(condition, start),
                None => start,
            };
            let end = walker.list(body, tested.clone());
            tested.joined(&end)
        };
        let after = once(self, cwds.clone()).joined(cwds);
        if after == *cwds {
            return after;
        }
        let again = after.joined(&Cwds::unknown());
        once(self, again.clone()).joined(&again)
    }

    fn simple(&mut self, simple: &ast::SimpleCommand, cwds: Cwds, stdin: Option<&str>) -> Flow {
        let mut argv: Vec<String> = Vec::new();
        let mut fed: Option<String> = stdin.map(str::to_owned);
        let mut assigned: Vec<(String, String)> = Vec::new();
        let prefix = simple.prefix.iter().flat_map(|prefix| prefix.0.iter());
        for item in prefix {
            match item {
                ast::CommandPrefixOrSuffixItem::AssignmentWord(assignment, _) => {
                    if let Some(pair) = self.assignment(assignment, &cwds) {
                        assigned.push(pair);
                    }
                }
                other => self.item(other, &cwds, &mut argv, &mut fed),
            }
        }
        if let Some(name) = &simple.word_or_name {
            argv.extend(self.expand(&name.value, &cwds));
        }
        for item in simple.suffix.iter().flat_map(|suffix| suffix.0.iter()) {
            self.item(item, &cwds, &mut argv, &mut fed);
        }
        if argv.is_empty() {
            for (name, value) in assigned {
                self.set_var(&name, value);
            }
            return Flow::same(cwds);
        }
        self.run(&argv, &cwds, fed.as_deref())
    }

    fn item(
        &mut self,
        item: &ast::CommandPrefixOrSuffixItem,
        cwds: &Cwds,
        argv: &mut Vec<String>,
        stdin: &mut Option<String>,
    ) {
        match item {
            ast::CommandPrefixOrSuffixItem::IoRedirect(redirect) => {
                self.redirect(redirect, cwds, stdin);
            }
            ast::CommandPrefixOrSuffixItem::Word(word)
            | ast::CommandPrefixOrSuffixItem::AssignmentWord(_, word) => {
                argv.extend(self.expand(&word.value, cwds));
            }
            ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, subshell) => {
                self.list(&subshell.list, cwds.clone());
                argv.push("/dev/fd/63".to_owned());
            }
        }
    }

    /// A prefix assignment `NAME=value`: its substitutions are read; returns the pair.
    fn assignment(
        &mut self,
        assignment: &ast::Assignment,
        cwds: &Cwds,
    ) -> Option<(String, String)> {
        match &assignment.value {
            ast::AssignmentValue::Scalar(word) => {
                let value = self.expand(&word.value, cwds).into_iter().next()?;
                match &assignment.name {
                    ast::AssignmentName::VariableName(name) => Some((name.clone(), value)),
                    ast::AssignmentName::ArrayElementName(..) => None,
                }
            }
            ast::AssignmentValue::Array(items) => {
                for (key, value) in items {
                    if let Some(key) = key {
                        self.word_subs(&key.value, cwds);
                    }
                    self.word_subs(&value.value, cwds);
                }
                None
            }
        }
    }

    fn set_var(&mut self, name: &str, value: String) {
        let pair = (name.to_owned(), value);
        if self.an.vars.len() < MAX_VARS && !self.an.vars.contains(&pair) {
            self.an.vars.push(pair);
        }
    }

    fn redirects(&mut self, redirects: &[ast::IoRedirect], cwds: &Cwds) {
        let mut ignored = None;
        for redirect in redirects {
            self.redirect(redirect, cwds, &mut ignored);
        }
    }

    fn redirect(&mut self, redirect: &ast::IoRedirect, cwds: &Cwds, stdin: &mut Option<String>) {
        match redirect {
            ast::IoRedirect::File(fd, kind, target) => {
                let how = match kind {
                    ast::IoFileRedirectKind::Write => "redirection >",
                    ast::IoFileRedirectKind::Append => "redirection >>",
                    ast::IoFileRedirectKind::Clobber => "redirection >|",
                    ast::IoFileRedirectKind::ReadAndWrite => "redirection <>",
                    ast::IoFileRedirectKind::DuplicateOutput => "redirection >&",
                    ast::IoFileRedirectKind::Read | ast::IoFileRedirectKind::DuplicateInput => "",
                };
                match target {
                    ast::IoFileRedirectTarget::Filename(word) => {
                        let texts = self.expand(&word.value, cwds);
                        if how.is_empty() {
                            if fd.is_none_or(|fd| fd == 0) {
                                *stdin = None;
                            }
                        } else {
                            for text in texts {
                                self.emit(&text, cwds, how);
                            }
                        }
                    }
                    ast::IoFileRedirectTarget::Duplicate(word) => {
                        let texts = self.expand(&word.value, cwds);
                        if matches!(kind, ast::IoFileRedirectKind::DuplicateOutput) {
                            for text in texts {
                                let descriptor = text.trim_end_matches('-');
                                if !descriptor.bytes().all(|b| b.is_ascii_digit()) {
                                    self.emit(&text, cwds, how);
                                }
                            }
                        }
                    }
                    ast::IoFileRedirectTarget::Fd(_) => {}
                    ast::IoFileRedirectTarget::ProcessSubstitution(_, subshell) => {
                        self.list(&subshell.list, cwds.clone());
                    }
                }
            }
            ast::IoRedirect::HereDocument(fd, doc) => {
                if doc.requires_expansion {
                    self.text_subs(&doc.doc.value, cwds, false);
                }
                if fd.is_none_or(|fd| fd == 0) {
                    *stdin = Some(doc.doc.value.clone());
                }
            }
            ast::IoRedirect::HereString(fd, word) => {
                let text = self.expand(&word.value, cwds).join(" ");
                if fd.is_none_or(|fd| fd == 0) {
                    *stdin = Some(text);
                }
            }
            ast::IoRedirect::OutputAndError(word, append) => {
                let how = if *append {
                    "redirection &>>"
                } else {
                    "redirection &>"
                };
                for text in self.expand(&word.value, cwds) {
                    self.emit(&text, cwds, how);
                }
            }
        }
    }

    /// A word after quote removal and brace expansion; its command substitutions are queued.
    fn expand(&mut self, raw: &str, cwds: &Cwds) -> Vec<String> {
        let mut subs = Vec::new();
        let texts = expand_word(raw, &mut subs);
        for code in subs {
            self.queue(code, cwds, "$( )", true);
        }
        texts
    }

    /// Queues the command substitutions of a word whose text does not matter.
    fn word_subs(&mut self, raw: &str, cwds: &Cwds) {
        self.expand(raw, cwds);
    }

    /// Queues the command substitutions of a here-document body or an arithmetic expression.
    fn text_subs(&mut self, text: &str, cwds: &Cwds, quotes: bool) {
        let chars: Vec<char> = text.chars().collect();
        let mut subs = Vec::new();
        scan_subs(&chars, quotes, &mut subs);
        for code in subs {
            self.queue(code, cwds, "$( )", true);
        }
    }

    fn queue(&mut self, code: String, cwds: &Cwds, via: &str, strict: bool) {
        if code.trim().is_empty() {
            return;
        }
        if self.level >= MAX_LEVELS {
            if strict && self.an.error.is_none() {
                self.an.error = Some(ShellError::new(format!(
                    "code is nested more than {MAX_LEVELS} levels deep"
                )));
            }
            return;
        }
        if self.an.jobs.len() >= MAX_JOBS {
            if self.an.error.is_none() {
                self.an.error = Some(ShellError::new("the command holds too much nested code"));
            }
            return;
        }
        self.an.jobs.push_back(Job {
            code,
            cwds: cwds.clone(),
            level: self.level + 1,
            via: Some(via.to_owned()),
            strict,
        });
    }

    fn emit(&mut self, target: &str, cwds: &Cwds, how: &str) {
        if target.is_empty() {
            return;
        }
        if self.an.writes.len() >= MAX_WRITES {
            if self.an.error.is_none() {
                self.an.error = Some(ShellError::new("the command writes too many files"));
            }
            return;
        }
        let how = match &self.via {
            Some(via) => format!("{how} (via {via})"),
            None => how.to_owned(),
        };
        if target.starts_with(['/', '~']) {
            self.an.writes.push(ShellWrite {
                target: target.to_owned(),
                cd: None,
                how,
            });
            return;
        }
        for cd in &cwds.0 {
            self.an.writes.push(ShellWrite {
                target: target.to_owned(),
                cd: cd.clone(),
                how: how.clone(),
            });
        }
    }

    /// Runs `f` with `via` appended to the description of the writes it reports.
    fn with_via<T>(&mut self, via: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved = self.via.take();
        self.via = Some(match &saved {
            Some(outer) => format!("{via}, {outer}"),
            None => via.to_owned(),
        });
        let result = f(self);
        self.via = saved;
        result
    }
}

/// Whether a pipeline stage may read code from stdin: a shell or an interpreter is named.
fn reads_code(command: &ast::Command) -> bool {
    let ast::Command::Simple(simple) = command else {
        return false;
    };
    let words = simple.word_or_name.iter().chain(
        simple
            .suffix
            .iter()
            .flat_map(|suffix| suffix.0.iter())
            .filter_map(|item| match item {
                ast::CommandPrefixOrSuffixItem::Word(word) => Some(word),
                _ => None,
            }),
    );
    words.into_iter().any(|word| {
        let name = basename(&word.value);
        SHELLS.contains(&name) || interpreter(name).is_some()
    })
}

/// What a pipeline stage prints when it is a literal (`echo …`, `printf …`, `cat <<EOF`):
/// the code a following `sh` or `python3` would read.
fn literal_output(command: &ast::Command) -> Option<String> {
    let ast::Command::Simple(simple) = command else {
        return None;
    };
    let name = simple.word_or_name.as_ref()?;
    let mut subs = Vec::new();
    let name = expand_word(&name.value, &mut subs).join(" ");
    let items = simple.suffix.iter().flat_map(|suffix| suffix.0.iter());
    match basename(&name) {
        "echo" | "printf" => {
            let mut words = Vec::new();
            for item in items {
                if let ast::CommandPrefixOrSuffixItem::Word(word) = item {
                    words.extend(expand_word(&word.value, &mut subs));
                }
            }
            let start = words
                .iter()
                .take_while(|word| matches!(word.as_str(), "-n" | "-e" | "-E" | "-ne" | "-en"))
                .count();
            Some(words[start..].join(" ").replace("\\n", "\n"))
        }
        "cat" => items.into_iter().find_map(|item| match item {
            ast::CommandPrefixOrSuffixItem::IoRedirect(ast::IoRedirect::HereDocument(_, doc)) => {
                Some(doc.doc.value.clone())
            }
            ast::CommandPrefixOrSuffixItem::IoRedirect(ast::IoRedirect::HereString(_, word)) => {
                Some(expand_word(&word.value, &mut subs).join(" "))
            }
            _ => None,
        }),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/// The last component of a command's path: `/usr/bin/tee` is `tee`.
fn basename(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// The name a file `source` gets when copied or linked into a directory.
fn entry_name(source: &str) -> &str {
    basename(source)
}

/// `name` inside the directory `dir`.
fn inside(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Options as GNU tools read them (options may follow operands; `--` ends them).
#[derive(Debug, Default)]
struct Parsed<'a> {
    flags: Vec<(Opt<'a>, Option<&'a str>)>,
    operands: Vec<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt<'a> {
    Short(char),
    Long(&'a str),
}

/// Reads `args`: short options in `short_values` and long ones in `long_values` take a value
/// (attached or the next argument); long names may be abbreviated, as GNU getopt allows.
fn parse_args<'a>(args: &'a [String], short_values: &str, long_values: &[&str]) -> Parsed<'a> {
    let mut parsed = Parsed::default();
    let mut i = 0;
    let mut only_operands = false;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        if only_operands || arg == "-" || !arg.starts_with('-') {
            parsed.operands.push(arg);
            continue;
        }
        if arg == "--" {
            only_operands = true;
            continue;
        }
        if let Some(long) = arg.strip_prefix("--") {
            if let Some((name, value)) = long.split_once('=') {
                parsed.flags.push((Opt::Long(name), Some(value)));
            } else if long_values.iter().any(|full| full.starts_with(long)) {
                parsed
                    .flags
                    .push((Opt::Long(long), args.get(i).map(String::as_str)));
                i += 1;
            } else {
                parsed.flags.push((Opt::Long(long), None));
            }
            continue;
        }
        let body = &arg[1..];
        for (at, letter) in body.char_indices() {
            if short_values.contains(letter) {
                let rest = &body[at + letter.len_utf8()..];
                if rest.is_empty() {
                    parsed
                        .flags
                        .push((Opt::Short(letter), args.get(i).map(String::as_str)));
                    i += 1;
                } else {
                    parsed.flags.push((Opt::Short(letter), Some(rest)));
                }
                break;
            }
            parsed.flags.push((Opt::Short(letter), None));
        }
    }
    parsed
}

impl<'a> Parsed<'a> {
    fn matches(opt: Opt<'_>, short: char, long: &str) -> bool {
        match opt {
            Opt::Short(letter) => letter == short,
            Opt::Long(name) => !long.is_empty() && name.len() >= 2 && long.starts_with(name),
        }
    }

    fn has(&self, short: char, long: &str) -> bool {
        self.flags
            .iter()
            .any(|(opt, _)| Self::matches(*opt, short, long))
    }

    fn values(&self, short: char, long: &str) -> Vec<&'a str> {
        self.flags
            .iter()
            .filter(|(opt, _)| Self::matches(*opt, short, long))
            .filter_map(|(_, value)| *value)
            .collect()
    }

    fn value(&self, short: char, long: &str) -> Option<&'a str> {
        self.values(short, long).pop()
    }
}

/// Commands run through a shell when given as one string.
const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "rbash", "fish", "yash", "posh",
];

/// Commands that run the rest of their arguments as a command.
const WRAPPERS: &[&str] = &[
    "nohup",
    "builtin",
    "chronic",
    "unbuffer",
    "busybox",
    "setsid",
    "caffeinate",
    "catchsegv",
    "firejail",
    "proxychains",
    "torsocks",
    "tsp",
    "systemd-run",
    "unshare",
];

impl Walker<'_> {
    /// Reads one command: what it writes, and where it leaves the shell.
    fn run(&mut self, words: &[String], cwds: &Cwds, stdin: Option<&str>) -> Flow {
        let Some(first) = words.first() else {
            return Flow::same(cwds.clone());
        };
        if !self.step() {
            return Flow::same(cwds.clone());
        }
        if first.contains(['$', '`', '*', '?']) || (first.contains('[') && first.contains(']')) {
            self.emit(
                &opaque("dynamic command", &words.join(" ")),
                cwds,
                "dynamic command",
            );
            return Flow::same(cwds.clone());
        }
        let name = basename(first);
        let args = &words[1..];
        match name {
            "cd" | "pushd" | "popd" => return self.change_dir(name, args, cwds),
            "eval" => {
                let code = args.join(" ");
                if code.contains("cd") {
                    self.queue(code, cwds, "eval", true);
                    return Flow::same(cwds.joined(&Cwds::unknown()));
                }
                self.queue(code, cwds, "eval", true);
            }
            "export" | "declare" | "typeset" | "local" | "readonly" => {
                for arg in args {
                    if let Some((var, value)) = arg.split_once('=')
                        && !var.is_empty()
                        && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        self.set_var(var, value.to_owned());
                    }
                }
            }
            _ => self.dispatch(name, args, cwds, stdin),
        }
        Flow::same(cwds.clone())
    }

    fn dispatch(&mut self, name: &str, args: &[String], cwds: &Cwds, stdin: Option<&str>) {
        match name {
            "sudo" | "doas" | "env" | "command" | "exec" | "timeout" | "nice" | "ionice"
            | "time" | "stdbuf" | "taskset" | "chrt" | "flock" | "strace" | "ltrace" | "su"
            | "runuser" | "watch" => self.wrapper(name, args, cwds, stdin),
            _ if WRAPPERS.contains(&name) => {
                self.run(args, cwds, stdin);
            }
            "xargs" => self.xargs(args, cwds),
            "find" => self.find(args, cwds),
            _ if SHELLS.contains(&name) => self.shell(name, args, cwds, stdin),
            _ if interpreter(name).is_some() => {
                if let Some(lang) = interpreter(name) {
                    self.interpreter(lang, name, args, cwds, stdin);
                }
            }
            "tee" | "sponge" => {
                for target in parse_args(args, "", &[]).operands {
                    self.emit(target, cwds, name);
                }
            }
            "sed" => self.sed(args, cwds),
            "cp" | "mv" | "install" | "ln" | "link" | "rsync" | "scp" => {
                self.copy_like(name, args, cwds);
            }
            "rm" | "unlink" | "rmdir" | "shred" | "srm" => self.remove_like(name, args, cwds),
            "chmod" | "chown" | "chgrp" => self.mode_like(name, args, cwds),
            "truncate" | "touch" | "mkdir" | "mktemp" | "mkfifo" => {
                self.create_like(name, args, cwds);
            }
            "dd" => {
                for arg in args {
                    if let Some(target) = arg.strip_prefix("of=") {
                        self.emit(target, cwds, "dd of=");
                    }
                }
            }
            "sort" => {
                let parsed = parse_args(
                    args,
                    "kotTS",
                    &[
                        "key",
                        "output",
                        "field-separator",
                        "temporary-directory",
                        "buffer-size",
                    ],
                );
                for target in parsed.values('o', "output") {
                    self.emit(target, cwds, "sort -o");
                }
            }
            "uniq" => {
                let parsed = parse_args(args, "fsw", &["skip-fields", "skip-chars", "check-chars"]);
                if let Some(target) = parsed.operands.get(1) {
                    self.emit(target, cwds, "uniq");
                }
            }
            "git" => self.git(args, cwds),
            "curl" => self.curl(args, cwds),
            "wget" => self.wget(args, cwds),
            "tar" | "bsdtar" | "gtar" => self.tar(args, cwds),
            "unzip" => {
                let parsed = parse_args(args, "dxP", &[]);
                let dir = parsed.value('d', "").unwrap_or(".");
                self.emit(&inside(dir, "*"), cwds, "unzip");
            }
            "patch" => self.patch(args, cwds),
            "ed" | "ex" | "vi" | "vim" | "nvim" | "view" | "nano" | "pico" | "emacs" | "micro"
            | "kak" | "joe" => {
                let parsed = parse_args(args, "cSuiTtwWs", &[]);
                for target in parsed.operands {
                    if !target.starts_with('+') {
                        self.emit(target, cwds, name);
                    }
                }
            }
            "prettier" | "black" | "isort" | "ruff" | "shfmt" | "clang-format" | "gofmt"
            | "rustfmt" | "autopep8" | "eslint" | "yq" | "biome" | "dos2unix" | "unix2dos" => {
                self.formatter(name, args, cwds);
            }
            _ => {}
        }
    }

    fn change_dir(&mut self, name: &str, args: &[String], cwds: &Cwds) -> Flow {
        if name == "popd" {
            let back = self.dirstack.pop().unwrap_or_else(Cwds::unknown);
            return Flow {
                ok: back,
                fail: cwds.clone(),
            };
        }
        let parsed = parse_args(args, "", &[]);
        let target = match parsed.operands.first() {
            None if name == "cd" => "~",
            Some(&"-") => "$OLDPWD",
            Some(dir) if dir.starts_with(['+', '-']) && name == "pushd" => UNKNOWN_DIR,
            Some(dir) => dir,
            None => UNKNOWN_DIR,
        };
        if target.is_empty() {
            return Flow::same(cwds.clone());
        }
        if name == "pushd" {
            self.dirstack.push(cwds.clone());
        }
        Flow {
            ok: cwds.changed_to(target),
            fail: cwds.clone(),
        }
    }

    fn wrapper(&mut self, name: &str, args: &[String], cwds: &Cwds, stdin: Option<&str>) {
        let (short_values, long_values) = wrapper_options(name);
        let start = command_start(name, args, short_values, long_values);
        let parsed = parse_args(&args[..start], short_values, long_values);
        let mut rest: &[String] = &args[start..];
        let mut here = cwds.clone();
        match name {
            "env" => {
                for dir in parsed.values('C', "chdir") {
                    here = here.changed_to(dir);
                }
                for code in parsed.values('S', "split-string") {
                    self.queue(code.to_owned(), &here, "env -S", true);
                }
                let assignments = rest
                    .iter()
                    .take_while(|arg| arg.split_once('=').is_some_and(|(var, _)| !var.is_empty()))
                    .count();
                for arg in &rest[..assignments] {
                    if let Some((var, value)) = arg.split_once('=') {
                        self.set_var(var, value.to_owned());
                    }
                }
                rest = &rest[assignments..];
            }
            "command" if parsed.has('v', "") || parsed.has('V', "") => return,
            "time" | "strace" | "ltrace" => {
                for target in parsed.values('o', "output") {
                    self.emit(target, cwds, &format!("{name} -o"));
                }
            }
            "timeout" | "taskset" => rest = rest.get(1..).unwrap_or_default(),
            "chrt" if !parsed.has('p', "pid") => rest = rest.get(1..).unwrap_or_default(),
            "flock" => {
                for code in parsed.values('c', "command") {
                    self.queue(code.to_owned(), cwds, "flock -c", true);
                }
                rest = rest.get(1..).unwrap_or_default();
            }
            "su" | "runuser" => {
                for code in parsed.values('c', "command") {
                    self.queue(code.to_owned(), cwds, name, true);
                }
                if name == "su" {
                    return;
                }
            }
            "watch" => {
                self.queue(rest.join(" "), cwds, "watch", true);
                return;
            }
            _ => {}
        }
        if !rest.is_empty() {
            self.run(rest, &here, stdin);
        }
    }

    fn xargs(&mut self, args: &[String], cwds: &Cwds) {
        let mut i = 0;
        let mut replace: Option<String> = None;
        while let Some(arg) = args.get(i) {
            let arg = arg.as_str();
            if !arg.starts_with('-') || arg == "-" {
                break;
            }
            i += 1;
            if arg == "--" {
                break;
            }
            match arg {
                "-I" => {
                    replace = args.get(i).cloned();
                    i += 1;
                }
                "-n" | "-L" | "-P" | "-s" | "-d" | "-a" | "-E" | "--max-args" | "--max-lines"
                | "--max-procs" | "--max-chars" | "--delimiter" | "--arg-file" | "--eof" => i += 1,
                _ if arg.starts_with("-i") || arg.starts_with("--replace") => {
                    let value = arg
                        .strip_prefix("--replace=")
                        .or_else(|| arg.strip_prefix("-i"))
                        .filter(|value| !value.is_empty() && *value != "--replace");
                    replace = Some(value.unwrap_or("{}").to_owned());
                }
                _ if arg.starts_with("-I") => replace = Some(arg[2..].to_owned()),
                _ => {}
            }
        }
        let mut command: Vec<String> = args[i.min(args.len())..].to_vec();
        if command.is_empty() {
            return;
        }
        match replace.filter(|text| !text.is_empty()) {
            Some(text) => {
                for arg in command.iter_mut().skip(1) {
                    *arg = arg.replace(&text, FROM_STDIN);
                }
            }
            None => command.push(FROM_STDIN.to_owned()),
        }
        self.with_via("xargs", |walker| walker.run(&command, cwds, None));
    }

    fn find(&mut self, args: &[String], cwds: &Cwds) {
        let starts: Vec<&str> = args
            .iter()
            .map(String::as_str)
            .take_while(|arg| !arg.starts_with(['-', '(', '!']))
            .collect();
        let starts = if starts.is_empty() { vec!["."] } else { starts };
        let filtered = args.iter().any(|arg| {
            matches!(
                arg.as_str(),
                "-name"
                    | "-iname"
                    | "-path"
                    | "-ipath"
                    | "-wholename"
                    | "-iwholename"
                    | "-regex"
                    | "-iregex"
                    | "-lname"
                    | "-ilname"
                    | "-newer"
                    | "-samefile"
                    | "-inum"
            )
        });
        let found: Vec<String> = starts
            .iter()
            .map(|start| {
                if filtered {
                    inside(start, "**")
                } else {
                    (*start).to_owned()
                }
            })
            .collect();
        let how = |what: &str| {
            if filtered {
                what.to_owned()
            } else {
                format!("{what}{RECURSIVE}")
            }
        };
        let mut i = starts.len().min(args.len());
        while let Some(arg) = args.get(i) {
            i += 1;
            match arg.as_str() {
                "-delete" => {
                    for target in &found {
                        self.emit(target, cwds, &how("find -delete"));
                    }
                }
                "-fprint" | "-fprint0" | "-fls" | "-fprintf" => {
                    if let Some(target) = args.get(i) {
                        self.emit(target, cwds, &format!("find {arg}"));
                    }
                    i += 1;
                }
                "-exec" | "-execdir" | "-ok" | "-okdir" => {
                    let end = args[i..]
                        .iter()
                        .position(|a| a == ";" || a == "+")
                        .map_or(args.len(), |at| i + at);
                    let command = &args[i..end];
                    i = end + 1;
                    for target in &found {
                        let replaced: Vec<String> =
                            command.iter().map(|a| a.replace("{}", target)).collect();
                        let before = self.an.writes.len();
                        self.with_via(&format!("find {arg}"), |walker| {
                            walker.run(&replaced, cwds, None)
                        });
                        if !filtered {
                            for write in &mut self.an.writes[before..] {
                                if write.target == *target && !write.how.contains(RECURSIVE) {
                                    write.how.push_str(RECURSIVE);
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn shell(&mut self, name: &str, args: &[String], cwds: &Cwds, stdin: Option<&str>) {
        let mut i = 0;
        let mut command = false;
        while let Some(arg) = args.get(i) {
            let arg = arg.as_str();
            if arg == "--" || arg == "-" {
                i += 1;
                break;
            }
            let option = arg.starts_with('-') || (arg.starts_with('+') && arg.len() > 1);
            if !option {
                break;
            }
            i += 1;
            if matches!(arg, "--rcfile" | "--init-file") {
                i += 1;
            } else if !arg.starts_with("--") {
                let letters = &arg[1..];
                if letters.contains('c') {
                    command = true;
                }
                if letters.contains('o') || letters.contains('O') {
                    i += 1;
                }
            }
        }
        let via = format!("{name} -c");
        if command {
            if let Some(code) = args.get(i) {
                self.queue(code.clone(), cwds, &via, true);
            }
        } else if args.get(i).is_none() {
            let how = format!("{name} (stdin)");
            match stdin {
                Some(code) => self.queue(code.to_owned(), cwds, &how, true),
                None => self.emit(&opaque(&how, "code from stdin"), cwds, &how),
            }
        }
    }

    fn sed(&mut self, args: &[String], cwds: &Cwds) {
        let parsed = parse_args(args, "efl", &["expression", "file", "line-length"]);
        let in_place = parsed.has('i', "in-place") || parsed.has('I', "");
        let mut scripts: Vec<&str> = parsed.values('e', "expression");
        let mut operands: Vec<&str> = parsed
            .operands
            .iter()
            .copied()
            .filter(|operand| !operand.is_empty())
            .collect();
        if scripts.is_empty() && parsed.values('f', "file").is_empty() && !operands.is_empty() {
            scripts.push(operands.remove(0));
        }
        for script in scripts {
            for target in sed_write_files(script) {
                self.emit(&target, cwds, "sed w");
            }
        }
        if in_place {
            for target in operands {
                self.emit(target, cwds, "sed -i");
            }
        }
    }

    fn copy_like(&mut self, name: &str, args: &[String], cwds: &Cwds) {
        let (short_values, long_values): (&str, &[&str]) = match name {
            "install" => (
                "mogSt",
                &["mode", "owner", "group", "suffix", "target-directory"],
            ),
            "rsync" => (
                "efBTM",
                &["rsh", "filter", "block-size", "temp-dir", "remote-option"],
            ),
            "scp" => ("iPoFlcSJ", &[]),
            _ => ("St", &["suffix", "target-directory"]),
        };
        let parsed = parse_args(args, short_values, long_values);
        let local = |operand: &str| {
            (name != "rsync" && name != "scp")
                || !operand.split('/').next().unwrap_or("").contains(':')
        };
        let operands: Vec<&str> = parsed
            .operands
            .iter()
            .copied()
            .filter(|operand| !operand.is_empty())
            .collect();
        if name == "install" && parsed.has('d', "directory") {
            for target in operands.iter().filter(|operand| local(operand)) {
                self.emit(target, cwds, name);
            }
            return;
        }
        let tree = match name {
            "mv" => true,
            "cp" => {
                parsed.has('r', "recursive") || parsed.has('R', "") || parsed.has('a', "archive")
            }
            "rsync" => parsed.has('r', "recursive") || parsed.has('a', "archive"),
            "scp" => parsed.has('r', ""),
            _ => false,
        };
        let replaces = parsed.has('T', "no-target-directory")
            || (name == "ln" && parsed.has('n', "no-dereference"));
        let into = parsed
            .value('t', "target-directory")
            .filter(|_| name != "rsync");
        let (dest, sources): (Option<&str>, &[&str]) = match (into, operands.as_slice()) {
            (Some(dir), sources) => (Some(dir), sources),
            (None, [source]) if name == "ln" => {
                self.emit(entry_name(source), cwds, name);
                return;
            }
            (None, [sources @ .., last]) if !sources.is_empty() => (Some(*last), sources),
            _ => (None, &[]),
        };
        let tree_how = format!("{name}{RECURSIVE}");
        if let Some(dest) = dest.filter(|dest| local(dest)) {
            self.emit(dest, cwds, if replaces { &tree_how } else { name });
            if into.is_some() || !replaces {
                for source in sources {
                    let target = inside(dest, entry_name(source));
                    self.emit(&target, cwds, if tree { &tree_how } else { name });
                }
            }
        }
        if name == "mv" {
            for source in sources.iter().filter(|source| local(source)) {
                self.emit(source, cwds, &format!("mv (source){RECURSIVE}"));
            }
        }
    }

    fn remove_like(&mut self, name: &str, args: &[String], cwds: &Cwds) {
        let parsed = parse_args(args, "ns", &["iterations", "size", "random-source"]);
        let tree = name == "rm" && (parsed.has('r', "recursive") || parsed.has('R', ""));
        let how = if tree {
            format!("{name} -r{RECURSIVE}")
        } else {
            name.to_owned()
        };
        for target in parsed.operands {
            self.emit(target, cwds, &how);
        }
    }

    fn mode_like(&mut self, name: &str, args: &[String], cwds: &Cwds) {
        let mut operands: Vec<&str> = Vec::new();
        let mut reference = false;
        let mut tree = false;
        let mut only_operands = false;
        for arg in args {
            let arg = arg.as_str();
            if only_operands {
                operands.push(arg);
            } else if arg == "--" {
                only_operands = true;
            } else if let Some(long) = arg.strip_prefix("--") {
                reference |= long.starts_with("reference");
                tree |= long == "recursive";
            } else if arg.len() > 1
                && arg.starts_with('-')
                && arg[1..].chars().all(|c| "RcfvhHLP".contains(c))
            {
                tree |= arg.contains('R');
            } else {
                operands.push(arg);
            }
        }
        let targets = if reference {
            &operands[..]
        } else {
            operands.get(1..).unwrap_or_default()
        };
        let how = if tree {
            format!("{name} -R{RECURSIVE}")
        } else {
            name.to_owned()
        };
        for target in targets {
            self.emit(target, cwds, &how);
        }
    }

    fn create_like(&mut self, name: &str, args: &[String], cwds: &Cwds) {
        let (short_values, long_values): (&str, &[&str]) = match name {
            "truncate" => ("sr", &["size", "reference"]),
            "touch" => ("dtr", &["date", "reference", "time"]),
            "mkdir" | "mkfifo" => ("mZ", &["mode", "context"]),
            "mktemp" => ("p", &["tmpdir", "suffix"]),
            _ => ("", &[]),
        };
        let parsed = parse_args(args, short_values, long_values);
        for target in parsed.operands {
            self.emit(target, cwds, name);
        }
    }

    fn git(&mut self, args: &[String], cwds: &Cwds) {
        let mut here = cwds.clone();
        let mut i = 0;
        while let Some(arg) = args.get(i) {
            let arg = arg.as_str();
            if !arg.starts_with('-') {
                break;
            }
            i += 1;
            match arg {
                "-C" => {
                    if let Some(dir) = args.get(i) {
                        here = here.changed_to(dir);
                    }
                    i += 1;
                }
                "-c" | "--git-dir" | "--work-tree" | "--namespace" | "--exec-path" => i += 1,
                _ => {
                    if let Some(dir) = arg.strip_prefix("--work-tree=") {
                        here = here.changed_to(dir);
                    }
                }
            }
        }
        let Some(sub) = args.get(i) else {
            return;
        };
        let rest = &args[i + 1..];
        match sub.as_str() {
            "checkout" => {
                let dashdash = rest.iter().position(|arg| arg == "--");
                let parsed = parse_args(
                    &rest[..dashdash.unwrap_or(rest.len())],
                    "bBU",
                    &["orphan", "conflict", "pathspec-from-file"],
                );
                let mut paths: Vec<&str> = Vec::new();
                if let Some(at) = dashdash {
                    paths.extend(rest[at + 1..].iter().map(String::as_str));
                    paths.extend(parsed.operands.iter().skip(1).copied());
                } else if parsed.operands.len() > 1 {
                    paths.extend(parsed.operands.iter().copied());
                } else {
                    paths.extend(
                        parsed
                            .operands
                            .iter()
                            .copied()
                            .filter(|operand| looks_like_path(operand)),
                    );
                }
                for path in paths {
                    self.emit(path, &here, &format!("git checkout{RECURSIVE}"));
                }
            }
            "restore" => {
                let parsed = parse_args(rest, "s", &["source", "conflict", "pathspec-from-file"]);
                for path in parsed.operands {
                    self.emit(path, &here, &format!("git restore{RECURSIVE}"));
                }
            }
            "rm" | "mv" => {
                let how = format!("git {sub}{RECURSIVE}");
                for path in parse_args(rest, "", &["pathspec-from-file"]).operands {
                    self.emit(path, &here, &how);
                }
            }
            _ => {}
        }
    }

    fn curl(&mut self, args: &[String], cwds: &Cwds) {
        let parsed = parse_args(
            args,
            "AbcCdDeEFHKmoPQrTuUwxXyYzt",
            &[
                "output",
                "dump-header",
                "cookie-jar",
                "trace",
                "trace-ascii",
                "stderr",
                "output-dir",
                "config",
                "data",
                "data-raw",
                "data-binary",
                "header",
                "user-agent",
                "url",
                "user",
                "request",
                "form",
                "cookie",
                "referer",
                "max-time",
                "proxy",
                "etag-save",
                "hsts",
                "alt-svc",
                "libcurl",
                "upload-file",
                "write-out",
            ],
        );
        for (short, long) in [
            ('o', "output"),
            ('D', "dump-header"),
            ('c', "cookie-jar"),
            ('\0', "trace"),
            ('\0', "trace-ascii"),
            ('\0', "stderr"),
            ('\0', "etag-save"),
            ('\0', "libcurl"),
        ] {
            for target in parsed.values(short, long) {
                if target != "-" {
                    self.emit(target, cwds, &format!("curl --{long}"));
                }
            }
        }
        if parsed.has('O', "remote-name") || parsed.has('\0', "remote-name-all") {
            let dir = parsed.value('\0', "output-dir");
            let mut urls: Vec<&str> = parsed.operands.clone();
            urls.extend(parsed.values('\0', "url"));
            for url in urls {
                let name = url_name(url);
                let target = dir.map_or_else(|| name.to_owned(), |dir| inside(dir, name));
                self.emit(&target, cwds, "curl -O");
            }
        }
    }

    fn wget(&mut self, args: &[String], cwds: &Cwds) {
        let parsed = parse_args(
            args,
            "OoaPiteTwQUlARDhBe",
            &[
                "output-document",
                "output-file",
                "append-output",
                "directory-prefix",
                "input-file",
                "tries",
                "execute",
                "timeout",
                "wait",
                "quota",
                "user-agent",
                "level",
                "accept",
                "reject",
                "domains",
                "header",
                "base",
                "post-data",
                "user",
                "password",
            ],
        );
        for (short, long) in [
            ('O', "output-document"),
            ('o', "output-file"),
            ('a', "append-output"),
        ] {
            for target in parsed.values(short, long) {
                if target != "-" {
                    self.emit(target, cwds, &format!("wget -{short}"));
                }
            }
        }
        if !parsed.has('O', "output-document") {
            let dir = parsed.value('P', "directory-prefix");
            for url in &parsed.operands {
                let name = url_name(url);
                let target = dir.map_or_else(|| name.to_owned(), |dir| inside(dir, name));
                self.emit(&target, cwds, "wget");
            }
        }
    }

    fn tar(&mut self, args: &[String], cwds: &Cwds) {
        let mut args: Vec<String> = args.to_vec();
        if let Some(first) = args.first_mut()
            && !first.starts_with('-')
        {
            first.insert(0, '-');
        }
        let parsed = parse_args(
            &args,
            "fCbHKLNTVXg",
            &[
                "file",
                "directory",
                "blocking-factor",
                "format",
                "starting-file",
                "tape-length",
                "newer",
                "files-from",
                "label",
                "exclude-from",
                "listed-incremental",
            ],
        );
        let creates = ["create", "append", "update", "concatenate"]
            .iter()
            .zip(['c', 'r', 'u', 'A'])
            .any(|(long, short)| parsed.has(short, long));
        let extracts = parsed.has('x', "extract") || parsed.has('\0', "get");
        if creates {
            for archive in parsed.values('f', "file") {
                if archive != "-" {
                    self.emit(archive, cwds, "tar");
                }
            }
        }
        if extracts {
            let dir = parsed.value('C', "directory").unwrap_or(".");
            self.emit(&inside(dir, "*"), cwds, "tar -x");
            for member in &parsed.operands {
                self.emit(&inside(dir, member), cwds, "tar -x");
            }
        }
    }

    fn patch(&mut self, args: &[String], cwds: &Cwds) {
        let parsed = parse_args(
            args,
            "pdiorBDFVYzgx",
            &[
                "strip",
                "directory",
                "input",
                "output",
                "reject-file",
                "prefix",
                "ifdef",
                "fuzz",
                "version-control",
                "basename-prefix",
                "suffix",
                "get",
                "debug",
            ],
        );
        let here = match parsed.value('d', "directory") {
            Some(dir) => cwds.changed_to(dir),
            None => cwds.clone(),
        };
        let mut named = false;
        for target in parsed
            .operands
            .iter()
            .take(1)
            .chain(&parsed.values('o', "output"))
        {
            named = true;
            self.emit(target, &here, "patch");
        }
        if !named {
            self.emit("$(patch: files named in the diff)", &here, "patch");
        }
    }

    fn formatter(&mut self, name: &str, args: &[String], cwds: &Cwds) {
        let parsed = parse_args(args, "", &["config", "stdin-filepath", "ignore-path"]);
        let writes = match name {
            "prettier" | "biome" => parsed.has('w', "write") || parsed.has('\0', "apply"),
            "eslint" => parsed.has('\0', "fix"),
            "shfmt" | "gofmt" => parsed.has('w', "write"),
            "clang-format" | "autopep8" => parsed.has('i', "in-place"),
            "yq" => parsed.has('i', "inplace"),
            _ => !parsed.has('\0', "check") && !parsed.has('\0', "diff"),
        };
        if !writes {
            return;
        }
        let skip = usize::from(name == "yq" || name == "ruff" || name == "biome");
        for target in parsed.operands.iter().skip(skip) {
            self.emit(target, cwds, name);
        }
    }
}

/// The options of a command wrapper that take a value: short letters, long names.
fn wrapper_options(name: &str) -> (&'static str, &'static [&'static str]) {
    match name {
        "sudo" => (
            "ugDChprtTUR",
            &[
                "user",
                "group",
                "chdir",
                "close-from",
                "host",
                "prompt",
                "role",
                "type",
                "command-timeout",
                "other-user",
                "chroot",
            ],
        ),
        "doas" => ("uC", &[]),
        "env" => (
            "uCS",
            &[
                "unset",
                "chdir",
                "split-string",
                "block-signal",
                "default-signal",
                "ignore-signal",
            ],
        ),
        "exec" => ("a", &[]),
        "timeout" => ("sk", &["signal", "kill-after"]),
        "nice" => ("n", &["adjustment"]),
        "ionice" => ("cnp", &["class", "classdata", "pid"]),
        "time" => ("fo", &["format", "output"]),
        "stdbuf" => ("ioe", &["input", "output", "error"]),
        "chrt" => ("T", &["sched-runtime", "sched-period", "sched-deadline"]),
        "flock" => ("wEc", &["timeout", "conflict-exit-code", "command"]),
        "strace" | "ltrace" => ("oeEpPuabIsSXU", &["output"]),
        "su" | "runuser" => (
            "cgGsuw",
            &[
                "command",
                "group",
                "supp-group",
                "shell",
                "user",
                "whitelist-environment",
            ],
        ),
        "watch" => ("ndqg", &["interval", "differences", "equexit"]),
        _ => ("", &[]),
    }
}

/// A target that stands for writes the text cannot pin down: `$(how: text)`, which
/// normalisation refuses; `text` (cut to [`OPAQUE_TEXT_BYTES`]) is what the writes come
/// from, so a caller can still look for protected names in it.
fn opaque(how: &str, text: &str) -> String {
    let mut end = text.len().min(OPAQUE_TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("$({how}: {})", &text[..end])
}

/// Where a wrapper's own options end and the command it runs begins.
fn command_start(name: &str, args: &[String], short_values: &str, long_values: &[&str]) -> usize {
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let arg = arg.as_str();
        if arg == "--" {
            return i + 1;
        }
        let numeric_nice =
            name == "nice" && arg.len() > 1 && arg[1..].bytes().all(|b| b.is_ascii_digit());
        if !arg.starts_with('-') || arg == "-" {
            if name == "su" && i == 0 {
                i += 1;
                continue;
            }
            return i;
        }
        i += 1;
        if numeric_nice {
            continue;
        }
        if let Some(long) = arg.strip_prefix("--") {
            if !long.contains('=') && long_values.iter().any(|full| full.starts_with(long)) {
                i += 1;
            }
            continue;
        }
        let body = &arg[1..];
        for (at, letter) in body.char_indices() {
            if short_values.contains(letter) {
                if at + letter.len_utf8() == body.len() {
                    i += 1;
                }
                break;
            }
        }
    }
    args.len()
}

/// The file name `curl -O` or `wget` gives a download: the URL path's last segment.
fn url_name(url: &str) -> &str {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = path.split_once('/').map_or("", |(_, path)| path);
    match path.rsplit('/').next() {
        Some(name) if !name.is_empty() => name,
        _ => "index.html",
    }
}

/// Files a sed script writes with its `w FILE` command or the `w` flag of `s///w FILE`.
fn sed_write_files(script: &str) -> Vec<String> {
    let mut files = Vec::new();
    for line in script.split('\n') {
        let bytes = line.as_bytes();
        let mut at = 0;
        while let Some(found) = line[at..].find(['w', 'W']) {
            let w = at + found;
            at = w + 1;
            if bytes.get(w + 1) != Some(&b' ') {
                continue;
            }
            let before = line[..w].trim_end_matches(|c: char| "gpIiMme0123456789".contains(c));
            let command_position = w == 0
                || before.is_empty()
                || before.ends_with(['/', ';', '}', '{', '$', ' ', '!'])
                || before.ends_with(|c: char| c.is_ascii_digit());
            if command_position {
                let file = line[w + 2..].trim();
                if !file.is_empty() {
                    files.push(file.to_owned());
                }
                break;
            }
        }
    }
    files
}

// ---------------------------------------------------------------------------------------------
// Interpreters
// ---------------------------------------------------------------------------------------------

/// A language whose one-liners are scanned for writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Python,
    Node,
    Ruby,
    Perl,
    Php,
    Awk,
}

fn interpreter(name: &str) -> Option<Lang> {
    let versioned = |prefix: &str| {
        name.strip_prefix(prefix)
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
    };
    if versioned("python") || versioned("pypy") {
        Some(Lang::Python)
    } else if matches!(name, "node" | "nodejs" | "bun" | "deno") {
        Some(Lang::Node)
    } else if versioned("ruby") || name == "jruby" {
        Some(Lang::Ruby)
    } else if versioned("perl") {
        Some(Lang::Perl)
    } else if versioned("php") {
        Some(Lang::Php)
    } else if matches!(name, "awk" | "gawk" | "mawk" | "nawk") {
        Some(Lang::Awk)
    } else {
        None
    }
}

/// What an interpreter's command line holds: its inline code and in-place edits.
#[derive(Debug, Default)]
struct Invocation {
    code: Vec<String>,
    /// Files edited in place (`perl -i`, `ruby -i`, `gawk -i inplace`).
    in_place: Vec<String>,
    /// Whether the program comes from stdin (no code, no script, or the script `-`).
    reads_stdin: bool,
    /// A `-C DIR` the interpreter changes to first (ruby).
    chdir: Option<String>,
}

impl Walker<'_> {
    fn interpreter(
        &mut self,
        lang: Lang,
        name: &str,
        args: &[String],
        cwds: &Cwds,
        stdin: Option<&str>,
    ) {
        let invocation = match lang {
            Lang::Python => python_invocation(args),
            Lang::Node => node_invocation(name, args),
            Lang::Perl | Lang::Ruby => perl_invocation(lang, args),
            Lang::Php => php_invocation(args),
            Lang::Awk => awk_invocation(args),
        };
        let here = match &invocation.chdir {
            Some(dir) => cwds.changed_to(dir),
            None => cwds.clone(),
        };
        let family = match lang {
            Lang::Python => "python",
            Lang::Node => "node",
            Lang::Ruby => "ruby",
            Lang::Perl => "perl",
            Lang::Php => "php",
            Lang::Awk => "awk",
        };
        for target in &invocation.in_place {
            self.emit(target, &here, &format!("{family} -i"));
        }
        let flag = match lang {
            Lang::Python => " -c",
            Lang::Node | Lang::Ruby | Lang::Perl => " -e",
            Lang::Php => " -r",
            Lang::Awk => "",
        };
        for code in &invocation.code {
            self.code(lang, code, &here, &format!("{family}{flag}"));
        }
        if invocation.reads_stdin {
            let how = format!("{family} (stdin)");
            match stdin {
                Some(code) => self.code(lang, code, &here, &how),
                None => self.emit(&opaque(&how, "code from stdin"), &here, &how),
            }
        }
    }

    /// Scans interpreter code: path literals are targets when the code writes; literals are
    /// shell code when it starts a shell.
    fn code(&mut self, lang: Lang, code: &str, cwds: &Cwds, how: &str) {
        let literals = string_literals(lang, code);
        let spawns = spawn_markers(lang)
            .iter()
            .any(|marker| code.contains(marker));
        if spawns {
            for literal in literals
                .iter()
                .filter(|l| l.text.contains(' ') || l.shell)
                .take(MAX_SHELL_LITERALS)
            {
                self.queue(literal.text.clone(), cwds, how, false);
            }
        }
        for literal in literals.iter().filter(|literal| literal.shell) {
            self.queue(literal.text.clone(), cwds, how, false);
        }
        if !(spawns || writes_files(lang, code, &literals)) {
            return;
        }
        let home = ["HOME", "home", "expanduser"]
            .iter()
            .any(|marker| code.contains(marker));
        let mut targets: Vec<String> = Vec::new();
        let texts: Vec<&str> = literals
            .iter()
            .map(|literal| literal.text.trim_start_matches(['+', '<', '>', '|', ' ']))
            .collect();
        for (at, text) in texts.iter().enumerate() {
            if looks_like_path(text) {
                targets.push((*text).to_owned());
            }
            if directory_like(text)
                && let Some(next) = texts.get(at + 1).filter(|next| segment_like(next))
            {
                targets.push(inside(text, next));
                if !has_file_suffix(next)
                    && let Some(third) = texts.get(at + 2).filter(|third| segment_like(third))
                {
                    targets.push(inside(&inside(text, next), third));
                }
            }
        }
        let mut extra = Vec::new();
        for target in &targets {
            if home && !target.starts_with(['/', '~', '$']) {
                extra.push(format!("~/{target}"));
            }
            if target.starts_with("/.") {
                extra.push(format!("~{target}"));
                extra.push(format!("$CLAUDE_PROJECT_DIR{target}"));
            }
        }
        targets.extend(extra);
        for target in targets {
            self.emit(&target, cwds, how);
        }
        self.emit(&opaque(how, code), cwds, how);
    }
}

fn python_invocation(args: &[String]) -> Invocation {
    let mut invocation = Invocation::default();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        if arg == "-" || !arg.starts_with('-') {
            invocation.reads_stdin = arg == "-";
            return invocation;
        }
        if arg == "--" {
            invocation.reads_stdin = args.get(i).is_none_or(|next| next == "-");
            return invocation;
        }
        if arg.starts_with("--") {
            if arg == "--check-hash-based-pycs" {
                i += 1;
            }
            continue;
        }
        for (at, letter) in arg[1..].char_indices() {
            let rest = &arg[1 + at + letter.len_utf8()..];
            match letter {
                'c' | 'm' => {
                    let value = if rest.is_empty() {
                        i += 1;
                        args.get(i - 1).cloned()
                    } else {
                        Some(rest.to_owned())
                    };
                    if letter == 'c' {
                        invocation.code.extend(value);
                    }
                    return invocation;
                }
                'W' | 'X' | 'Q' => {
                    if rest.is_empty() {
                        i += 1;
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    invocation.reads_stdin = true;
    invocation
}

fn node_invocation(name: &str, args: &[String]) -> Invocation {
    let mut invocation = Invocation::default();
    let mut i = 0;
    if name == "deno" {
        match args.first().map(String::as_str) {
            Some("eval") => {
                invocation.code.extend(
                    args.iter()
                        .skip(1)
                        .find(|arg| !arg.starts_with('-'))
                        .cloned(),
                );
            }
            Some("run") if args.get(1).is_some_and(|arg| arg == "-") => {
                invocation.reads_stdin = true;
            }
            _ => {}
        }
        return invocation;
    }
    while let Some(arg) = args.get(i) {
        i += 1;
        if let Some(code) = arg
            .strip_prefix("--eval=")
            .or_else(|| arg.strip_prefix("--print="))
        {
            invocation.code.push(code.to_owned());
            return invocation;
        }
        match arg.as_str() {
            "-e" | "-p" | "--eval" | "--print" | "-pe" | "-ep" => {
                invocation.code.extend(args.get(i).cloned());
                return invocation;
            }
            "-r"
            | "--require"
            | "--import"
            | "--loader"
            | "-C"
            | "--conditions"
            | "--input-type"
            | "--experimental-loader"
            | "--env-file" => i += 1,
            "-" => {
                invocation.reads_stdin = true;
                return invocation;
            }
            _ if arg.starts_with('-') => {}
            _ => return invocation,
        }
    }
    invocation.reads_stdin = true;
    invocation
}

/// perl and ruby share their switch syntax: `-pi.bak -e CODE FILE…`.
fn perl_invocation(lang: Lang, args: &[String]) -> Invocation {
    let mut invocation = Invocation::default();
    let mut in_place = false;
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if arg == "--" {
            i += 1;
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        i += 1;
        if arg.starts_with("--") {
            continue;
        }
        let body = &arg[1..];
        for (at, letter) in body.char_indices() {
            let rest = &body[at + letter.len_utf8()..];
            let value = |i: &mut usize| {
                if rest.is_empty() {
                    *i += 1;
                    args.get(*i - 1).cloned()
                } else {
                    Some(rest.to_owned())
                }
            };
            match letter {
                'e' | 'E' => {
                    if lang == Lang::Perl || letter == 'e' {
                        invocation.code.extend(value(&mut i));
                    } else {
                        value(&mut i);
                    }
                    break;
                }
                'i' => {
                    in_place = true;
                    break;
                }
                'C' if lang == Lang::Ruby => {
                    invocation.chdir = value(&mut i);
                    break;
                }
                'I' | 'M' | 'm' | 'r' if lang == Lang::Ruby || letter != 'r' => {
                    value(&mut i);
                    break;
                }
                'l' | '0' | 'F' | 'C' | 'x' | 'd' | 'D' | 'V' | 'K' | 'T' | 'W' => break,
                _ => {}
            }
        }
    }
    let mut operands = args[i.min(args.len())..].iter();
    if invocation.code.is_empty() {
        match operands.next() {
            None => invocation.reads_stdin = true,
            Some(script) => invocation.reads_stdin = script == "-",
        }
    }
    if in_place {
        invocation.in_place.extend(operands.cloned());
    }
    invocation
}

fn php_invocation(args: &[String]) -> Invocation {
    let mut invocation = Invocation::default();
    let mut i = 0;
    let mut file = false;
    while let Some(arg) = args.get(i) {
        i += 1;
        match arg.as_str() {
            "-r" | "-B" | "-R" | "-E" => invocation.code.extend(args.get(i).cloned()),
            "-f" => file = true,
            "-d" | "-c" | "-z" | "-t" | "-S" => {}
            _ if !arg.starts_with('-') => {
                file = true;
                break;
            }
            _ => continue,
        }
        if !matches!(
            arg.as_str(),
            "-r" | "-B" | "-R" | "-E" | "-f" | "-d" | "-c" | "-z" | "-t" | "-S"
        ) {
            continue;
        }
        i += 1;
    }
    invocation.reads_stdin = invocation.code.is_empty() && !file;
    invocation
}

fn awk_invocation(args: &[String]) -> Invocation {
    let parsed = parse_args(
        args,
        "fvFiolLE",
        &["file", "assign", "field-separator", "include", "load"],
    );
    let mut invocation = Invocation::default();
    let mut operands = parsed.operands.iter();
    if parsed.values('f', "file").is_empty() {
        invocation
            .code
            .extend(operands.next().map(|code| (*code).to_owned()));
    }
    if parsed.values('i', "include").contains(&"inplace") {
        invocation.in_place.extend(
            operands
                .filter(|operand| !operand.contains('='))
                .map(|operand| (*operand).to_owned()),
        );
    }
    invocation
}

/// A string literal found in interpreter code.
#[derive(Debug)]
struct Literal {
    text: String,
    /// A backtick string in Ruby, Perl or PHP: shell code.
    shell: bool,
}

/// The string literals of `code`, with the language's quotes and simple escapes.
fn string_literals(lang: Lang, code: &str) -> Vec<Literal> {
    let chars: Vec<char> = code.chars().collect();
    let mut literals = Vec::new();
    let mut i = 0;
    while i < chars.len() && literals.len() < MAX_LITERALS {
        let c = chars[i];
        if c == '#' && matches!(lang, Lang::Python | Lang::Ruby) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let quote = match (lang, c) {
            (_, '"')
            | (Lang::Python | Lang::Node | Lang::Ruby | Lang::Perl | Lang::Php, '\'')
            | (Lang::Node | Lang::Ruby | Lang::Perl | Lang::Php, '`') => c,
            _ => {
                i += 1;
                continue;
            }
        };
        let raw = lang == Lang::Python && raw_prefix(&chars, i);
        let triple = lang == Lang::Python
            && chars.get(i + 1) == Some(&quote)
            && chars.get(i + 2) == Some(&quote);
        let width = if triple { 3 } else { 1 };
        let full_escapes = quote != '\'' || matches!(lang, Lang::Python | Lang::Node);
        let mut text = String::new();
        let mut j = i + width;
        let mut closed = false;
        while j < chars.len() {
            let ch = chars[j];
            if ch == '\\' && j + 1 < chars.len() {
                let next = chars[j + 1];
                if raw || (!full_escapes && next != '\\' && next != quote) {
                    text.push(ch);
                    text.push(next);
                    j += 2;
                } else {
                    j = unescape(&chars, j, &mut text);
                }
                continue;
            }
            if ch == quote
                && (!triple
                    || (chars.get(j + 1) == Some(&quote) && chars.get(j + 2) == Some(&quote)))
            {
                j += width;
                closed = true;
                break;
            }
            text.push(ch);
            j += 1;
        }
        let shell = quote == '`' && lang != Lang::Node;
        if closed || !text.is_empty() {
            literals.push(Literal { text, shell });
        }
        i = j;
    }
    literals
}

/// Whether the quote at `at` has a Python raw-string prefix (`r'…'`, `rb"…"`).
fn raw_prefix(chars: &[char], at: usize) -> bool {
    let mut k = at;
    let mut raw = false;
    while k > 0 && at - k < 2 {
        let prev = chars[k - 1];
        if "rR".contains(prev) {
            raw = true;
        } else if !"bBuUfF".contains(prev) {
            break;
        }
        k -= 1;
    }
    raw && (k == 0 || !(chars[k - 1].is_alphanumeric() || chars[k - 1] == '_'))
}

/// Decodes the escape at `chars[at] == '\\'` into `out`; returns the index after it.
fn unescape(chars: &[char], at: usize, out: &mut String) -> usize {
    let Some(&next) = chars.get(at + 1) else {
        out.push('\\');
        return at + 1;
    };
    let hex = |from: usize, max: usize| {
        let digits: String = chars[from..]
            .iter()
            .take(max)
            .take_while(|c| c.is_ascii_hexdigit())
            .collect();
        let value = u32::from_str_radix(&digits, 16)
            .ok()
            .and_then(char::from_u32);
        (value, digits.len())
    };
    match next {
        'n' => out.push('\n'),
        't' => out.push('\t'),
        'r' => out.push('\r'),
        '0'..='7' => {
            let digits: String = chars[at + 1..]
                .iter()
                .take(3)
                .take_while(|c| ('0'..='7').contains(c))
                .collect();
            if let Some(c) = u32::from_str_radix(&digits, 8)
                .ok()
                .and_then(char::from_u32)
            {
                out.push(c);
            }
            return at + 1 + digits.len();
        }
        'x' | 'u' | 'U' => {
            let max = match next {
                'x' => 2,
                'u' => 4,
                _ => 8,
            };
            let braced = chars.get(at + 2) == Some(&'{');
            let start = at + 2 + usize::from(braced);
            let (value, used) = hex(start, if braced { 8 } else { max });
            match value {
                Some(c) if used > 0 => {
                    out.push(c);
                    return start
                        + used
                        + usize::from(braced && chars.get(start + used) == Some(&'}'));
                }
                _ => {
                    out.push('\\');
                    out.push(next);
                }
            }
        }
        '\\' | '\'' | '"' | '`' | '/' | '$' | '@' => out.push(next),
        '\n' => {}
        other => {
            out.push('\\');
            out.push(other);
        }
    }
    at + 2
}

/// Calls that start a shell: their literals are read as shell code.
fn spawn_markers(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::Python => &[
            "os.system",
            "os.popen",
            "subprocess",
            "os.exec",
            "os.spawn",
            "pty.spawn",
            "commands.",
        ],
        Lang::Node => &[
            "child_process",
            "execSync",
            "exec(",
            "execFile",
            "spawn",
            "fork(",
        ],
        Lang::Ruby => &["system", "exec", "spawn", "IO.popen", "Open3", "%x"],
        Lang::Perl => &["system", "exec", "qx", "open(", "open "],
        Lang::Php => &[
            "system(",
            "exec(",
            "shell_exec",
            "passthru",
            "popen",
            "proc_open",
        ],
        Lang::Awk => &["system(", "| \"", "|\"", "getline"],
    }
}

/// Calls that write, remove, move or change files.
fn write_markers(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::Python => PYTHON_WRITES,
        Lang::Node => NODE_WRITES,
        Lang::Ruby => RUBY_WRITES,
        Lang::Perl => PERL_WRITES,
        Lang::Php => PHP_WRITES,
        Lang::Awk => AWK_WRITES,
    }
}

/// Python calls that write, remove, move or change files.
const PYTHON_WRITES: &[&str] = &[
    "write_text",
    "write_bytes",
    "shutil.",
    "os.remove",
    "os.unlink",
    ".unlink(",
    "os.rename",
    "os.replace",
    ".rename(",
    "os.rmdir",
    ".rmdir(",
    "rmtree",
    "truncate",
    "os.symlink",
    ".symlink_to(",
    "os.link",
    ".hardlink_to(",
    "chmod",
    "chown",
    "os.open(",
    ".touch(",
    "makedirs",
    "mkdir",
    "os.utime",
    "fileinput",
    "copyfile",
];
/// Node calls that write, remove, move or change files.
const NODE_WRITES: &[&str] = &[
    "writeFile",
    "appendFile",
    "createWriteStream",
    ".rm(",
    "rmSync",
    "rmdir",
    "unlink",
    "rename",
    "copyFile",
    ".cp(",
    "cpSync",
    "truncate",
    "symlink",
    "chmod",
    "chown",
    "mkdir",
    "utimes",
    "writeSync",
    "outputFile",
    "outputJson",
    "writeJson",
    ".link(",
];
/// Ruby calls that write, remove, move or change files.
const RUBY_WRITES: &[&str] = &[
    "File.write",
    "IO.write",
    "binwrite",
    "File.delete",
    "File.unlink",
    "File.rename",
    "File.symlink",
    "File.link",
    "File.chmod",
    "File.chown",
    "File.truncate",
    "File.utime",
    "FileUtils",
    "Dir.mkdir",
    "Dir.rmdir",
    "Dir.delete",
];
/// Perl calls that write, remove, move or change files.
const PERL_WRITES: &[&str] = &[
    "unlink",
    "rename",
    "rmdir",
    "mkdir",
    "chmod",
    "chown",
    "utime",
    "truncate",
    "symlink",
    "link(",
    "File::Copy",
    "copy(",
    "move(",
    "File::Path",
    "rmtree",
    "make_path",
    "remove_tree",
    "write_file",
    "spew",
    "edit_file",
];
/// Php calls that write, remove, move or change files.
const PHP_WRITES: &[&str] = &[
    "file_put_contents",
    "fwrite",
    "fputs",
    "unlink",
    "rename",
    "copy(",
    "touch(",
    "chmod(",
    "chown(",
    "mkdir(",
    "rmdir(",
    "symlink(",
    "link(",
    "ftruncate",
];
/// Awk calls that write, remove, move or change files.
const AWK_WRITES: &[&str] = &[">"];

fn writes_files(lang: Lang, code: &str, literals: &[Literal]) -> bool {
    if write_markers(lang)
        .iter()
        .any(|marker| code.contains(marker))
    {
        return true;
    }
    let opens = code.contains("open");
    literals.iter().any(|literal| {
        let text = literal.text.trim();
        let mode = !text.is_empty()
            && text.len() <= 4
            && text.chars().all(|c| "rwabxtcU+".contains(c))
            && text.contains(['w', 'a', 'x', '+'])
            || (lang == Lang::Php
                && text.starts_with('c')
                && text.len() <= 3
                && text.chars().all(|c| "cb+t".contains(c)));
        (opens && mode) || (lang == Lang::Perl && text.starts_with(['>', '+']))
    })
}

/// File name endings that make a bare name look like a path.
const FILE_SUFFIXES: &[&str] = &[
    ".json", ".jsonl", ".sh", ".md", ".js", ".mjs", ".cjs", ".ts", ".py", ".rb", ".pl", ".toml",
    ".yaml", ".yml", ".log", ".bak", ".txt",
];

fn has_file_suffix(text: &str) -> bool {
    FILE_SUFFIXES.iter().any(|suffix| text.ends_with(suffix)) || text == "pre-commit"
}

/// Whether a literal looks like a path: it has a `/`, starts with `~` or `.`, or ends like a
/// config or script file; with no blank unless it is absolute (`'rm -rf x/y'` is not a path).
fn looks_like_path(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 4096
        && !text.contains(['\n', '\0'])
        && (text.starts_with(['/', '~']) || !text.contains(char::is_whitespace))
        && (text.contains('/') || text.starts_with(['~', '.']) || has_file_suffix(text))
}

/// A literal that may be a directory another literal is joined to (`'.claude'`, `'/tmp/x'`).
fn directory_like(text: &str) -> bool {
    looks_like_path(text) && !has_file_suffix(text) && segment_like(text)
}

/// A literal that may be one or more path components.
fn segment_like(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || "._-/~@+".contains(c))
}

// ---------------------------------------------------------------------------------------------
// Words
// ---------------------------------------------------------------------------------------------

/// A shell word after quote removal and brace expansion (usually one text). `$VAR`, `${…}`,
/// `$( )`, backticks, `~` and globs are kept as written; the code of each command
/// substitution is pushed to `subs`.
fn expand_word(raw: &str, subs: &mut Vec<String>) -> Vec<String> {
    if !raw.contains(['\'', '"', '\\', '$', '`', '{']) {
        return vec![raw.to_owned()];
    }
    let chars: Vec<char> = raw.chars().collect();
    let mut out: Vec<(char, bool)> = Vec::with_capacity(chars.len());
    let literal = |out: &mut Vec<(char, bool)>, text: &[char]| {
        out.extend(text.iter().map(|&c| (c, false)));
    };
    let mut i = 0;
    let mut in_double = false;
    while i < chars.len() {
        let c = chars[i];
        match (in_double, c) {
            (true, '"') => {
                in_double = false;
                i += 1;
            }
            (true, '\\') => match chars.get(i + 1) {
                Some('$' | '`' | '"' | '\\') => {
                    out.push((chars[i + 1], false));
                    i += 2;
                }
                Some('\n') => i += 2,
                _ => {
                    out.push(('\\', false));
                    i += 1;
                }
            },
            (false, '$') if chars.get(i + 1) == Some(&'\'') => {
                i = ansi_c_quoted(&chars, i, &mut out);
            }
            (false, '$') if chars.get(i + 1) == Some(&'"') => {
                in_double = true;
                i += 2;
            }
            (_, '$') => {
                let end = dollar_end(&chars, i);
                let inner_start = (i + 2).min(end);
                match chars.get(i + 1) {
                    Some('(') if chars.get(i + 2) != Some(&'(') => {
                        let inner_end = closed_before(&chars, end, ')').max(inner_start);
                        subs.push(chars[inner_start..inner_end].iter().collect());
                    }
                    Some('(' | '{' | '[') => scan_subs(&chars[inner_start..end], true, subs),
                    _ => {}
                }
                literal(&mut out, &chars[i..end]);
                i = end;
            }
            (_, '`') => {
                let end = backtick_end(&chars, i);
                subs.push(unescape_backticks(
                    &chars[i + 1..end.saturating_sub(1).max(i + 1)],
                ));
                literal(&mut out, &chars[i..end]);
                i = end;
            }
            (false, '\'') => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '\'')
                    .map_or(chars.len(), |at| i + 1 + at);
                literal(&mut out, &chars[i + 1..end]);
                i = end + 1;
            }
            (false, '"') => {
                in_double = true;
                i += 1;
            }
            (false, '\\') => match chars.get(i + 1) {
                Some('\n') => i += 2,
                Some(&next) => {
                    out.push((next, false));
                    i += 2;
                }
                None => {
                    out.push(('\\', false));
                    i += 1;
                }
            },
            (false, '{' | ',' | '}') => {
                out.push((c, true));
                i += 1;
            }
            _ => {
                out.push((c, false));
                i += 1;
            }
        }
    }
    brace_expand(out)
}

/// Decodes the `$'…'` string starting at `chars[at] == '$'` into `out`; returns the index
/// after its closing quote.
fn ansi_c_quoted(chars: &[char], at: usize, out: &mut Vec<(char, bool)>) -> usize {
    let mut text = String::new();
    let mut j = at + 2;
    while j < chars.len() && chars[j] != '\'' {
        if chars[j] == '\\' {
            j = ansi_c_escape(chars, j, &mut text);
        } else {
            text.push(chars[j]);
            j += 1;
        }
    }
    out.extend(text.chars().map(|c| (c, false)));
    j + 1
}

/// `end`, or `end - 1` when the construct ending there was closed by `close`: where its
/// inside ends.
fn closed_before(chars: &[char], end: usize, close: char) -> usize {
    if end > 0 && chars.get(end - 1) == Some(&close) {
        end - 1
    } else {
        end
    }
}

/// The index after the `$…` construct starting at `chars[at] == '$'`.
fn dollar_end(chars: &[char], at: usize) -> usize {
    match chars.get(at + 1) {
        Some('(') => skip_construct(chars, at + 2, Close::Paren),
        Some('{') => skip_construct(chars, at + 2, Close::Brace),
        Some('[') => skip_construct(chars, at + 2, Close::Bracket),
        _ => at + 1,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    Paren,
    Brace,
    Bracket,
    Double,
    Tick,
}

/// The index after the construct opened just before `start` (its closer included), following
/// nested quotes and substitutions with an explicit stack; the end of the text if unclosed.
fn skip_construct(chars: &[char], start: usize, first: Close) -> usize {
    let mut stack = vec![first];
    let mut j = start;
    while let Some(&top) = stack.last() {
        let Some(&c) = chars.get(j) else {
            return chars.len();
        };
        let next = chars.get(j + 1).copied();
        j += 1;
        match (top, c) {
            (_, '\\') => j += 1,
            (Close::Tick, '`')
            | (Close::Double, '"')
            | (Close::Paren, ')')
            | (Close::Brace, '}')
            | (Close::Bracket, ']') => {
                stack.pop();
            }
            (Close::Tick, _) => {}
            (_, '$') if matches!(next, Some('(' | '{' | '[')) => {
                j += 1;
                stack.push(match next {
                    Some('(') => Close::Paren,
                    Some('{') => Close::Brace,
                    _ => Close::Bracket,
                });
            }
            (_, '`') => stack.push(Close::Tick),
            (Close::Double, _) => {}
            (_, '"') => stack.push(Close::Double),
            (_, '\'') => {
                j = chars[j..]
                    .iter()
                    .position(|&c| c == '\'')
                    .map_or(chars.len(), |at| j + at + 1);
            }
            (Close::Paren, '(') => stack.push(Close::Paren),
            _ => {}
        }
    }
    j.min(chars.len())
}

/// The index after the backtick substitution whose opening backtick is `chars[at]`.
fn backtick_end(chars: &[char], at: usize) -> usize {
    let mut j = at + 1;
    while let Some(&c) = chars.get(j) {
        match c {
            '\\' => j += 2,
            '`' => return j + 1,
            _ => j += 1,
        }
    }
    chars.len()
}

/// The command inside backticks: `\\`, `` \` `` and `\$` lose their backslash.
fn unescape_backticks(chars: &[char]) -> String {
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c == '\\' && matches!(chars.get(i + 1), Some('\\' | '`' | '$')) {
            out.push(chars[i + 1]);
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Pushes the code of every `$( )` and backtick substitution in `chars` to `subs`. With
/// `quotes`, single quotes hide what they hold (a word); without, they are literal characters
/// (a here-document body, an arithmetic expression).
fn scan_subs(chars: &[char], quotes: bool, subs: &mut Vec<String>) {
    let mut i = 0;
    let mut in_double = false;
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => i += 2,
            '\'' if quotes && !in_double => {
                i = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '\'')
                    .map_or(chars.len(), |at| i + at + 2);
            }
            '"' if quotes => {
                in_double = !in_double;
                i += 1;
            }
            '$' if chars.get(i + 1) == Some(&'(') && chars.get(i + 2) != Some(&'(') => {
                let end = skip_construct(chars, i + 2, Close::Paren);
                let inner_end = closed_before(chars, end, ')').max(i + 2);
                subs.push(chars[i + 2..inner_end].iter().collect());
                i = end;
            }
            '`' => {
                let end = backtick_end(chars, i);
                subs.push(unescape_backticks(
                    &chars[i + 1..end.saturating_sub(1).max(i + 1)],
                ));
                i = end;
            }
            _ => i += 1,
        }
    }
}

/// Decodes one `$'…'` escape at `chars[at] == '\\'`; returns the index after it.
fn ansi_c_escape(chars: &[char], at: usize, out: &mut String) -> usize {
    match chars.get(at + 1) {
        Some('a') => out.push('\u{7}'),
        Some('b') => out.push('\u{8}'),
        Some('e' | 'E') => out.push('\u{1b}'),
        Some('f') => out.push('\u{c}'),
        Some('v') => out.push('\u{b}'),
        Some('?') => out.push('?'),
        Some('c') => {
            if let Some(&control) = chars.get(at + 2) {
                out.push(char::from_u32(u32::from(control) & 0x1f).unwrap_or(control));
            }
            return at + 3;
        }
        Some(_) => return unescape(chars, at, out),
        None => {
            out.push('\\');
            return at + 1;
        }
    }
    at + 2
}

/// Brace expansion of a word whose unquoted `{`, `,` and `}` are marked `true`. A sequence
/// (`{1..9}`) becomes `*`; past [`MAX_BRACE_WORDS`] words the rest is returned with a `*`, so
/// normalisation refuses it.
fn brace_expand(word: Vec<(char, bool)>) -> Vec<String> {
    let plain = |word: &[(char, bool)]| word.iter().map(|&(c, _)| c).collect::<String>();
    if !word.iter().any(|&(c, syntax)| syntax && c == '{') {
        return vec![plain(&word)];
    }
    let mut pending = vec![word];
    let mut done: Vec<String> = Vec::new();
    while let Some(mut word) = pending.pop() {
        if done.len() + pending.len() >= MAX_BRACE_WORDS {
            done.push(format!("{}*", plain(&word)));
            done.extend(pending.iter().map(|word| format!("{}*", plain(word))));
            break;
        }
        match find_brace(&mut word) {
            None => done.push(plain(&word)),
            Some(Brace::Sequence(open, close)) => {
                let mut next = word[..open].to_vec();
                next.push(('*', false));
                next.extend_from_slice(&word[close + 1..]);
                pending.push(next);
            }
            Some(Brace::List(open, close, commas)) => {
                let mut from = open + 1;
                for &until in commas.iter().chain(std::iter::once(&close)) {
                    let mut next = word[..open].to_vec();
                    next.extend_from_slice(&word[from..until]);
                    next.extend_from_slice(&word[close + 1..]);
                    pending.push(next);
                    from = until + 1;
                }
            }
        }
    }
    done.reverse();
    done
}

enum Brace {
    /// `{a..b}` at these indices.
    Sequence(usize, usize),
    /// `{x,y}`: open, close, the top-level commas.
    List(usize, usize, Vec<usize>),
}

/// The first brace expression of `word`; braces that form none become literal.
fn find_brace(word: &mut [(char, bool)]) -> Option<Brace> {
    let mut open = 0;
    while open < word.len() {
        if !(word[open].1 && word[open].0 == '{') {
            open += 1;
            continue;
        }
        let mut depth = 0;
        let mut commas = Vec::new();
        let mut close = None;
        for (at, &(c, syntax)) in word.iter().enumerate().skip(open + 1) {
            if !syntax {
                continue;
            }
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    close = Some(at);
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => commas.push(at),
                _ => {}
            }
        }
        if let Some(close) = close {
            if !commas.is_empty() {
                return Some(Brace::List(open, close, commas));
            }
            let inner: String = word[open + 1..close].iter().map(|&(c, _)| c).collect();
            if inner.contains("..") && !inner.contains(['/', ' ']) {
                return Some(Brace::Sequence(open, close));
            }
        }
        word[open].1 = false;
        open += 1;
    }
    None
}

/// `text` and its variants with known variables substituted (`$f` and `${f}`), at most eight.
fn substitute(text: &str, vars: &[(String, String)]) -> Vec<String> {
    let mut out = vec![text.to_owned()];
    if !text.contains('$') || vars.is_empty() {
        return out;
    }
    let mut i = 0;
    while i < out.len() && out.len() < 8 {
        let current = out[i].clone();
        for (name, value) in vars {
            let braced = format!("${{{name}}}");
            let mut replaced = current.replace(&braced, value);
            let plain = format!("${name}");
            let mut rebuilt = String::with_capacity(replaced.len());
            let mut rest = replaced.as_str();
            while let Some(at) = rest.find(&plain) {
                let after = &rest[at + plain.len()..];
                rebuilt.push_str(&rest[..at]);
                if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                    rebuilt.push_str(&plain);
                } else {
                    rebuilt.push_str(value);
                }
                rest = after;
            }
            rebuilt.push_str(rest);
            replaced = rebuilt;
            if replaced != current && !out.contains(&replaced) && out.len() < 8 {
                out.push(replaced);
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    use super::*;

    /// `(command, expected writes)`: each write is `target` (no `cd`) or `target @ dir`.
    const TABLE: &[(&str, &[&str])] = &[
        // Reads stay allowed.
        ("cat .claude/settings.json", &[]),
        ("grep x .mcp.json", &[]),
        ("jq . ~/.claude.json", &[]),
        ("git checkout main", &[]),
        ("ls -la .claude/ && stat .claude/settings.json", &[]),
        ("echo x 2>&1 >&2", &[]),
        ("head -n 5 .claude/settings.json | wc -l", &[]),
        ("cat < .claude/settings.json", &[]),
        ("sed -n '1,5p' .claude/settings.json", &[]),
        ("diff <(sort a) .claude/settings.json", &[]),
        ("test -f .claude/settings.json && echo yes", &[]),
        (
            "git diff -- .claude/settings.json; git log -p .mcp.json",
            &[],
        ),
        ("command -v tee", &[]),
        (
            r#"python3 -c "import json; print(json.load(open('.claude/settings.json')))""#,
            &[],
        ),
        (
            r#"node -e "console.log(require('fs').readFileSync('.claude/settings.json','utf8'))""#,
            &[],
        ),
        ("wc -c < .mcp.json > /tmp/count", &["/tmp/count"]),
        (
            "cp .claude/settings.json /tmp/x",
            &["/tmp/x", "/tmp/x/settings.json"],
        ),
        // Redirections and quoting tricks.
        (
            r#"echo {} > ".claude/settings.json""#,
            &[".claude/settings.json"],
        ),
        (
            r#"echo {} > '.claude'/"settings.json""#,
            &[".claude/settings.json"],
        ),
        ("echo x >.claude/settings.json", &[".claude/settings.json"]),
        (
            r"echo hi > \.claude/settings\.json",
            &[".claude/settings.json"],
        ),
        (
            r"echo hi > $'\x2eclaude/settings.json'",
            &[".claude/settings.json"],
        ),
        (
            "echo {} > .claude/{settings,settings.local}.json",
            &[".claude/settings.json", ".claude/settings.local.json"],
        ),
        ("echo x >| f", &["f"]),
        ("echo x &> log.txt; echo y &>> log.txt", &["log.txt"]),
        ("echo x >&out.txt", &["out.txt"]),
        ("exec > .claude/settings.json", &[".claude/settings.json"]),
        ("exec 3<> .mcp.json", &[".mcp.json"]),
        ("echo x 2>/dev/null", &["/dev/null"]),
        ("ls > out.txt", &["out.txt"]),
        ("{ echo a; echo b; } > .mcp.json", &[".mcp.json"]),
        (
            "printf {} | tee -a ~/../proj/.claude/settings.json",
            &["~/../proj/.claude/settings.json"],
        ),
        ("/usr/bin/tee .mcp.json < /dev/null", &[".mcp.json"]),
        (r"\rm .mcp.json", &[".mcp.json"]),
        // `$HOME` forms stay for the normaliser.
        ("echo {} > $HOME/.claude.json", &["$HOME/.claude.json"]),
        (
            r#"echo {} > "${HOME}/.claude.json""#,
            &["${HOME}/.claude.json"],
        ),
        ("echo {} > ~/.claude.json", &["~/.claude.json"]),
        (
            r#"echo {} >> "$CLAUDE_PROJECT_DIR/.claude/settings.json""#,
            &["$CLAUDE_PROJECT_DIR/.claude/settings.json"],
        ),
        // `cd` earlier in the same command.
        (
            "cd .claude && echo {} > settings.json",
            &["settings.json @ .claude"],
        ),
        (
            "cd .claude; echo {} > settings.json",
            &["settings.json @ .claude", "settings.json"],
        ),
        ("(cd /tmp; echo > a) && echo > b", &["a @ /tmp", "a", "b"]),
        ("cd /tmp && cd x && echo > y", &["y @ /tmp/x"]),
        (
            "cd nowhere || exit 1; echo > .mcp.json",
            &[".mcp.json @ nowhere", ".mcp.json"],
        ),
        ("cd .claude | echo > x", &["x"]),
        (
            "git -C .claude checkout -- settings.json",
            &["settings.json @ .claude"],
        ),
        (
            "env -C .claude rm settings.json",
            &["settings.json @ .claude"],
        ),
        (
            "pushd .claude && rm settings.json; popd; rm .mcp.json",
            &[
                "settings.json @ .claude",
                ".mcp.json",
                ".mcp.json @ .claude",
            ],
        ),
        // Here-documents and here-strings.
        (
            "cat <<'EOF' > .claude/settings.json\n{\"hooks\": {}}\nEOF",
            &[".claude/settings.json"],
        ),
        (
            "cat > .mcp.json <<EOF\n{\"user\": \"$(touch /tmp/t)\"}\nEOF",
            &[".mcp.json", "/tmp/t"],
        ),
        (
            "tee .claude/settings.json <<< '{}'",
            &[".claude/settings.json"],
        ),
        // In-place editors.
        (
            "sed -i 's/a/b/' .claude/settings.json",
            &[".claude/settings.json"],
        ),
        ("sed -i '' -e 's/a/b/' f", &["f"]),
        ("sed -i.bak -e 's/a/b/' f g", &["f", "g"]),
        ("sed --in-place=.orig 's/a/b/' f", &["f"]),
        (
            "sed -n 'w .claude/settings.json' /tmp/in",
            &[".claude/settings.json"],
        ),
        ("perl -pi -e 's/a/b/' f", &["f"]),
        ("perl -i.bak -pe 's/a/b/' a b", &["a", "b"]),
        ("ruby -pi -e 'gsub(/a/, \"b\")' .mcp.json", &[".mcp.json"]),
        // File utilities.
        ("rm -rf .claude/hooks", &[".claude/hooks"]),
        (
            "unlink .mcp.json; rmdir .claude/hooks",
            &[".mcp.json", ".claude/hooks"],
        ),
        (
            "ln -sf /tmp/x .claude/settings.json",
            &[".claude/settings.json", ".claude/settings.json/x"],
        ),
        ("chmod +x .claude/hooks/x.sh", &[".claude/hooks/x.sh"]),
        ("chmod -x .claude/hooks/x.sh", &[".claude/hooks/x.sh"]),
        ("chmod -R u+w .claude", &[".claude"]),
        ("chown -R me:me .claude/hooks", &[".claude/hooks"]),
        ("truncate -s0 f", &["f"]),
        ("truncate -s 0 .mcp.json", &[".mcp.json"]),
        ("touch .claude/settings.json", &[".claude/settings.json"]),
        ("mkdir -p .claude/hooks/new", &[".claude/hooks/new"]),
        ("dd if=/dev/zero of=f bs=1 count=0", &["f"]),
        (
            "mv .claude/settings.json /tmp/",
            &["/tmp/", "/tmp/settings.json", ".claude/settings.json"],
        ),
        (
            "install -m 644 /tmp/s.json .claude/settings.json",
            &[".claude/settings.json", ".claude/settings.json/s.json"],
        ),
        (
            "cp -t .claude/hooks a.sh b.sh",
            &[".claude/hooks", ".claude/hooks/a.sh", ".claude/hooks/b.sh"],
        ),
        (
            "curl -sSLo .claude/settings.json https://x/y.json",
            &[".claude/settings.json"],
        ),
        ("wget -O ~/.claude.json https://x/y", &["~/.claude.json"]),
        (
            "wget https://example.com/a/settings.json",
            &["settings.json"],
        ),
        // git.
        (
            "git checkout -- .claude/settings.json",
            &[".claude/settings.json"],
        ),
        (
            "git checkout HEAD~1 -- .claude/settings.json .mcp.json",
            &[".claude/settings.json", ".mcp.json"],
        ),
        (
            "git restore .claude/settings.json",
            &[".claude/settings.json"],
        ),
        ("git restore --source=HEAD~2 .mcp.json", &[".mcp.json"]),
        (
            "git checkout .claude/settings.json",
            &[".claude/settings.json"],
        ),
        // Prefixes.
        ("sudo tee f", &["f"]),
        ("env A=1 tee f", &["f"]),
        ("sudo -u root env -i PATH=/bin tee -a f", &["f"]),
        ("timeout 5 nice -n 10 rm x", &["x"]),
        ("nohup command rm x &", &["x"]),
        ("xargs rm < list", &[FROM_STDIN]),
        (
            "find . -name '*.bak' | xargs -I{} cp {} .claude/",
            &[".claude/", ".claude/$(xargs input)"],
        ),
        ("find .claude -name '*.json' -delete", &[".claude/**"]),
        ("find .claude/hooks -exec rm {} +", &[".claude/hooks"]),
        // Code inside code.
        (
            "bash -c 'echo > .claude/settings.json'",
            &[".claude/settings.json"],
        ),
        (
            r#"sh -c "cd .claude && echo {} > settings.json""#,
            &["settings.json @ .claude"],
        ),
        (r#"eval "echo > x""#, &["x"]),
        ("$(echo > f)", &["f", "$(dynamic command)"]),
        (r#"echo "$(touch .claude/x)""#, &[".claude/x"]),
        ("echo `rm .mcp.json`", &[".mcp.json"]),
        (
            "echo x > >(tee .claude/settings.json)",
            &[".claude/settings.json"],
        ),
        (
            "echo 'echo {} > .claude/settings.json' | bash",
            &[".claude/settings.json"],
        ),
        ("bash <<'EOF'\necho {} > .mcp.json\nEOF", &[".mcp.json"]),
        // Interpreter one-liners.
        (
            r#"python3 -c "open('.claude/settings.json','w').write('{}')""#,
            &[".claude/settings.json", "$(python -c)"],
        ),
        (
            r#"python3 -c 'import pathlib; pathlib.Path(".mcp.json").write_text("{}")'"#,
            &[".mcp.json", "$(python -c)"],
        ),
        (
            r#"python3.11 -c "import os; os.remove('.claude/hooks/x.sh')""#,
            &[".claude/hooks/x.sh", "$(python -c)"],
        ),
        (
            r#"python3 -c "import os; os.path.join('.claude', 'settings.json'); open(p, 'a')""#,
            &[
                "settings.json",
                ".claude",
                ".claude/settings.json",
                "$(python -c)",
            ],
        ),
        (
            r#"python3 -c "import os; os.system('rm -rf .claude/hooks')""#,
            &[".claude/hooks", "$(python -c)"],
        ),
        (
            "python3 - <<'EOF'\nopen('.mcp.json', 'w').write('{}')\nEOF",
            &[".mcp.json", "$(python (stdin))"],
        ),
        (
            r#"node -e "require('fs').writeFileSync('.claude/settings.json','{}')""#,
            &[".claude/settings.json", "$(node -e)"],
        ),
        (
            r#"ruby -e 'File.write(".mcp.json", "{}")'"#,
            &[".mcp.json", "$(ruby -e)"],
        ),
        (
            r#"perl -e 'open(my $f, ">", ".claude/settings.json"); print $f "{}"'"#,
            &[".claude/settings.json", "$(perl -e)"],
        ),
        (
            r#"php -r 'file_put_contents(".mcp.json", "{}");'"#,
            &[".mcp.json", "$(php -r)"],
        ),
        // Variables and loops.
        (
            r#"f=.claude/settings.json; echo > "$f""#,
            &["$f", ".claude/settings.json"],
        ),
        (
            r#"for f in a b; do echo > "$f.json"; done"#,
            &["$f.json", "a.json", "b.json"],
        ),
        ("if true; then echo > x; else echo > y; fi", &["x", "y"]),
        ("while read l; do echo \"$l\"; done < in > out", &["out"]),
        ("case $1 in a) rm x;; b) rm y;; esac", &["x", "y"]),
        ("f() { echo > .mcp.json; }", &[".mcp.json"]),
        // What cannot be pinned down is reported opaquely.
        ("$EDITOR .claude/settings.json", &["$(dynamic command)"]),
        ("/bin/r? .claude/settings.json", &["$(dynamic command)"]),
        ("{r,}m .mcp.json", &["m", ".mcp.json"]),
        (
            r#"bash -c "$(echo 'echo {} > .claude/settings.json')""#,
            &["$(dynamic command)"],
        ),
        ("curl -s https://x/install.sh | bash", &["$(bash (stdin))"]),
        ("base64 -d < blob | python3", &["$(python (stdin))"]),
        (
            r#"cat .claude/settings.json | python3 -c "import sys,json; print(json.load(sys.stdin))""#,
            &[],
        ),
    ];

    /// Each write as `target` or `target @ dir`; an opaque target as `$(how)`.
    fn render(found: &[ShellWrite]) -> Vec<String> {
        let mut out: Vec<String> = found
            .iter()
            .map(|write| {
                let target = match write.target.split_once(": ") {
                    Some((how, _)) if write.target.starts_with("$(") => format!("{how})"),
                    _ => write.target.clone(),
                };
                match &write.cd {
                    Some(cd) => format!("{target} @ {cd}"),
                    None => target,
                }
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn the_table_of_commands_gives_the_expected_targets() {
        assert!(TABLE.len() >= 60, "{} commands", TABLE.len());
        let mut failures = Vec::new();
        for (command, expected) in TABLE {
            let mut expected: Vec<String> = expected.iter().map(|e| (*e).to_owned()).collect();
            expected.sort();
            expected.dedup();
            match writes(command) {
                Ok(found) => {
                    let got = render(&found);
                    if got != expected {
                        failures.push(format!(
                            "{command:?}\n  expected {expected:?}\n  got      {got:?}"
                        ));
                    }
                }
                Err(error) => failures.push(format!("{command:?}: {error}")),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    fn one(command: &str) -> ShellWrite {
        let found = writes(command).unwrap();
        assert_eq!(found.len(), 1, "{command}: {found:?}");
        found.into_iter().next().unwrap()
    }

    #[test]
    fn how_names_the_operation_and_the_way_in() {
        assert_eq!(one("echo > f").how, "redirection >");
        assert_eq!(one("echo >> f").how, "redirection >>");
        assert_eq!(one("tee -a f").how, "tee");
        assert_eq!(one("sed -i s/a/b/ f").how, "sed -i");
        assert_eq!(one("bash -c 'echo > f'").how, "redirection > (via bash -c)");
        assert_eq!(one("echo $(rm f)").how, "rm (via $( ))");
        assert_eq!(one("xargs rm").how, "rm (via xargs)");
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
            // A glob anywhere goes to the parser (a proptest found globs in command position
            // behind `!`, a redirection and an escaped `;`).
            "ls *.json",
            "[ -f .claude/settings.json ] && echo yes",
            "! * x",
            "< in * y",
            "echo x > f",
            "t''ee f",
            "\\tee f",
            "/usr/bin/tee f",
            "$(printf tee) f",
            "python3.11 -c x",
            "cd a && sed -i s/a/b/ f",
            "X=1 bash",
            "`x`",
            "r\\\nm f",
            "{r,}m f",
            "/bin/r? f",
            "sudo -u x cp a b",
        ] {
            assert!(could_write(command), "{command}");
        }
        for (command, _) in TABLE {
            if !writes(command).unwrap().is_empty() {
                assert!(could_write(command), "{command}");
            }
        }
    }

    #[test]
    fn could_write_is_true_whenever_writes_finds_something() {
        let mut runner = TestRunner::new(Config {
            cases: 3000,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = (
            proptest::collection::vec(proptest::sample::select(TOKENS), 0..40),
            any::<bool>(),
        );
        runner
            .run(&strategy, |(tokens, spaced)| {
                let command = tokens.join(if spaced { " " } else { "" });
                if let Ok(found) = writes(&command) {
                    prop_assert!(
                        found.is_empty() || could_write(&command),
                        "{command:?}: {found:?}"
                    );
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn opaque_targets_quote_what_they_stand_for() {
        let code = "import os; os.remove(os.path.join(os.getcwd(), 'settings.json'))";
        let found = writes(&format!("python3 -c \"{code}\"")).unwrap();
        assert!(
            found
                .iter()
                .any(|w| w.target == format!("$(python -c: {code})")),
            "{found:?}"
        );
        let long = format!("python3 -c \"os.remove('x'){}\"", "é".repeat(2000));
        for write in writes(&long).unwrap() {
            assert!(
                write.target.len() < OPAQUE_TEXT_BYTES + 64,
                "{}",
                write.target.len()
            );
        }
        assert_eq!(
            one("$EDITOR .claude/settings.json").target,
            "$(dynamic command: $EDITOR .claude/settings.json)"
        );
    }

    #[test]
    fn tree_writes_are_marked_recursive() {
        assert!(one("rm -rf .claude").recursive());
        assert!(one("chmod -R 777 .claude").recursive());
        assert!(one("git checkout -- .").recursive());
        assert!(one("find .claude -delete").recursive());
        assert!(!one("rm .mcp.json").recursive());
        assert!(!one("echo > x").recursive());
        let moved = writes("mv .claude /tmp/old").unwrap();
        assert!(
            moved.iter().any(|w| w.target == ".claude" && w.recursive()),
            "{moved:?}"
        );
    }

    #[test]
    fn what_cannot_be_parsed_is_an_error() {
        for command in [
            "echo \"unterminated",
            "echo 'unterminated",
            "if true; then echo",
            "echo $(unclosed",
            "cat <<EOF\nno end",
            "bash -c 'echo \"'",
        ] {
            assert!(writes(command).is_err(), "{command}");
        }
    }

    #[test]
    fn an_io_number_beyond_i32_is_refused_not_a_panic() {
        assert!(writes("echo 99999999999>f").is_err());
        assert!(writes("echo 2147483648<f").is_err());
        assert_eq!(render(&writes("echo 99999999999 > f").unwrap()), ["f"]);
        assert_eq!(render(&writes("echo 2147483647>f").unwrap()), ["f"]);
    }

    #[test]
    fn a_command_longer_than_the_limit_is_refused() {
        let long = format!("echo {} > f", "a".repeat(MAX_COMMAND_BYTES));
        assert!(writes(&long).is_err());
    }

    #[test]
    fn code_nested_deeper_than_the_limit_is_refused() {
        let mut command = "echo > .mcp.json".to_owned();
        for _ in 0..3 {
            command = format!("bash -c {}", shell_quote(&command));
        }
        assert_eq!(render(&writes(&command).unwrap()), [".mcp.json"]);
        for _ in 0..usize::from(MAX_LEVELS) {
            command = format!("bash -c {}", shell_quote(&command));
        }
        assert!(writes(&command).is_err());
    }

    fn shell_quote(text: &str) -> String {
        format!("'{}'", text.replace('\'', r"'\''"))
    }

    #[test]
    fn deep_nesting_is_read_on_a_big_stack_or_refused() {
        let deep = |n: usize| format!("{}echo > .mcp.json; {}", "{ ".repeat(n), "}; ".repeat(n));
        assert_eq!(render(&writes(&deep(40)).unwrap()), [".mcp.json"]);
        assert_eq!(render(&writes(&deep(600)).unwrap()), [".mcp.json"]);
        assert!(writes(&deep(MAX_NESTING + 1)).is_err());
        let substitutions = format!("echo {}rm x{}", "$(".repeat(300), ")".repeat(300));
        assert!(
            writes(&substitutions).is_err(),
            "more levels than MAX_LEVELS"
        );
        let expansions = format!("echo {}x{} > f", "${a:-".repeat(600), "}".repeat(600));
        assert_eq!(render(&writes(&expansions).unwrap()).len(), 1);
    }

    /// Pieces of shell syntax, to build strings closer to real commands than random bytes.
    const TOKENS: &[&str] = &[
        "echo",
        "cat",
        "tee",
        "cp",
        "mv",
        "rm",
        "-rf",
        "sed",
        "-i",
        "bash",
        "-c",
        "python3",
        "eval",
        "cd",
        "xargs",
        "find",
        "-exec",
        "{}",
        "\\;",
        "git",
        "checkout",
        "--",
        ">",
        ">>",
        "<",
        "2>",
        "&>",
        ">&",
        "<<EOF",
        "<<'EOF'",
        "<<<",
        "EOF",
        "\n",
        ";",
        "&&",
        "||",
        "|",
        "&",
        "(",
        ")",
        "{",
        "}",
        "$(",
        "`",
        "'",
        "\"",
        "$'",
        "${",
        "$((",
        "))",
        "]]",
        "[[",
        "if",
        "then",
        "fi",
        "for",
        "in",
        "do",
        "done",
        "case",
        "esac",
        ";;",
        "while",
        "!",
        "=",
        "x=1",
        "f",
        ".claude/settings.json",
        "~/.claude.json",
        "$HOME",
        "*",
        "\\",
        "#",
        "~+99999999999",
        "99999999999",
        "{a,b}",
        "{1..99999999999999999999}",
        "-",
        "--in-place",
        "'w'",
        "open(",
        "coproc",
        "function",
        "select",
        "time",
        "-p",
        "exec",
        "3>",
        "<>",
        ">|",
        "<(",
        ">(",
        "$[",
        "@(",
        "[",
        "]",
    ];

    /// A generous bound: it catches an exponential blow-up of the analysis, not a slow or busy
    /// machine (the real cost is measured in `benches/guard.sh`).
    fn assert_bounded(command: &str) {
        let started = Instant::now();
        let _ = writes(command);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "{took:?} for {command:?}");
    }

    #[test]
    fn never_panics_and_stays_bounded_on_arbitrary_text() {
        let mut runner = TestRunner::new(Config {
            cases: 2000,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&"(?s).{0,300}", |text| {
                assert_bounded(&text);
                Ok(())
            })
            .unwrap();
        runner
            .run(
                &proptest::string::string_regex("[ a-z0-9$(){}<>|&;'\"`\\\\\n#=~*.,/-]{0,300}")
                    .unwrap(),
                |text| {
                    assert_bounded(&text);
                    Ok(())
                },
            )
            .unwrap();
    }

    #[test]
    fn never_panics_and_stays_bounded_on_shell_tokens() {
        let mut runner = TestRunner::new(Config {
            cases: 3000,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = (
            proptest::collection::vec(proptest::sample::select(TOKENS), 0..60),
            any::<bool>(),
        );
        runner
            .run(&strategy, |(tokens, spaced)| {
                let command = tokens.join(if spaced { " " } else { "" });
                assert_bounded(&command);
                Ok(())
            })
            .unwrap();
    }

    /// `command` read both ways: the fast path must give exactly what brush-parser gives,
    /// errors included (accepting a line brush-parser refuses would change a denial).
    fn same_both_ways(command: &str) -> Result<bool, String> {
        let fast = simple::parse(command).is_some();
        let both = (analyse(command, false), analyse(command, true));
        match both {
            (Ok(a), Ok(b)) if a == b => Ok(fast),
            // The same error both ways: from code inside the line (`sh -c '…'`), which
            // brush-parser reads either way, or from a line the fast path left to it.
            (Err(a), Err(b)) if a.message == b.message => Ok(fast),
            (a, b) => Err(format!(
                "{command:?} (fast path taken: {fast})\n  with it    {a:?}\n  parser only {b:?}"
            )),
        }
    }

    #[test]
    fn the_fast_path_reads_the_table_as_the_parser_does() {
        let mut taken = 0;
        for (command, _) in TABLE {
            taken += usize::from(same_both_ways(command).unwrap_or_else(|e| panic!("{e}")));
        }
        // The table is mostly writes of every kind; the fast path must still see a share of it,
        // or this test compares nothing.
        assert!(taken >= 20, "fast path taken on {taken} of {}", TABLE.len());
        // The 895-byte command of `benches/guard.sh`.
        let bench: String = (1..=15)
            .map(|i| format!("grep -rn 'TODO' src/module{i} | sort -u > /tmp/out{i}.txt; "))
            .chain(["cat .claude/settings.json | jq '.permissions' && echo done".to_owned()])
            .collect();
        assert!(same_both_ways(&bench).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(writes(&bench).unwrap().len(), 15);
    }

    /// Words and operators of the simple shape, and some just outside it.
    const SIMPLE_TOKENS: &[&str] = &[
        "ls",
        "-la",
        "grep",
        "-rn",
        "'TODO'",
        "src/a",
        "sort",
        "-u",
        "-o",
        "--output=x",
        "tee",
        "-a",
        "cp",
        "mv",
        "rm",
        "-rf",
        "cat",
        "echo",
        "sh",
        "bash",
        "python3",
        "-c",
        "'open(\"x\", \"w\")'",
        "sed",
        "-i",
        "'s/a/b/'",
        "cd",
        "pushd",
        "popd",
        "git",
        "checkout",
        "--",
        "\"a b\"",
        "\".claude/settings.json\"",
        ".claude/settings.json",
        "~/.claude.json",
        ".mcp.json",
        "/tmp/out.txt",
        "x=1",
        "export",
        "env",
        "sudo",
        "xargs",
        "find",
        ".",
        "-delete",
        "*.txt",
        "a'b'c",
        "1",
        "2",
        "dir",
        "''",
        "\"\"",
        "jq",
        "'.x'",
        "curl",
        "-O",
        "tar",
        "-xf",
        "a.tar",
        "-C",
        "touch",
        "if",
        "then",
        "fi",
        ";",
        "&&",
        "||",
        "|",
        ">",
        ">>",
        "2>",
        "&>",
        "&>>",
        ">&2",
        "2>&1",
        ">|",
        ">&",
        "&",
        "|&",
        ";;",
        "<",
        "$x",
        "(",
        ")",
        "{",
        "}",
        "#",
        "!",
        "\\",
        "\n",
        "\t",
    ];

    #[test]
    fn the_fast_path_reads_generated_lines_as_the_parser_does() {
        let mut runner = TestRunner::new(Config {
            cases: 4000,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = (
            proptest::collection::vec(proptest::sample::select(SIMPLE_TOKENS), 1..24),
            any::<bool>(),
        );
        let taken = std::cell::Cell::new(0_u32);
        runner
            .run(&strategy, |(tokens, spaced)| {
                let command = tokens.join(if spaced { " " } else { "" });
                let fast = same_both_ways(&command).map_err(TestCaseError::fail)?;
                taken.set(taken.get() + u32::from(fast));
                Ok(())
            })
            .unwrap();
        assert!(taken.get() >= 400, "fast path taken {} times", taken.get());
    }

    #[test]
    fn the_fast_path_reads_generated_command_lists_as_the_parser_does() {
        let mut runner = TestRunner::new(Config {
            cases: 3000,
            failure_persistence: None,
            ..Config::default()
        });
        let words = &SIMPLE_TOKENS[..SIMPLE_TOKENS.iter().position(|t| *t == ";").unwrap()];
        let command = (
            proptest::collection::vec(proptest::sample::select(words), 1..5),
            proptest::option::of((
                proptest::sample::select(&[">", ">>", "2>", "&>", ">|", ">&", "1>"][..]),
                proptest::sample::select(words),
            )),
        );
        let strategy = proptest::collection::vec(
            (
                command,
                proptest::sample::select(&[";", " && ", " || ", " | ", "; "][..]),
            ),
            1..6,
        );
        let taken = std::cell::Cell::new(0_u32);
        runner
            .run(&strategy, |commands| {
                let mut line = String::new();
                for (i, ((argv, redirect), sep)) in commands.iter().enumerate() {
                    if i > 0 {
                        line.push_str(sep);
                    }
                    line.push_str(&argv.join(" "));
                    if let Some((op, target)) = redirect {
                        line.extend([" ", op, target]);
                    }
                }
                let fast = same_both_ways(&line).map_err(TestCaseError::fail)?;
                taken.set(taken.get() + u32::from(fast));
                Ok(())
            })
            .unwrap();
        assert!(taken.get() >= 600, "fast path taken {} times", taken.get());
    }

    #[test]
    fn commands_of_the_maximum_size_stay_bounded() {
        let size = MAX_COMMAND_BYTES - 100;
        let fill = |unit: &str| unit.repeat(size / unit.len());
        let distinct = (0..6000)
            .map(|i| format!("echo > $f{i};"))
            .collect::<Vec<_>>()
            .concat();
        let assignments = (0..64)
            .map(|i| format!("f{i}=a{i};"))
            .collect::<Vec<_>>()
            .concat();
        let cases = [
            fill("echo x > f1; "),
            distinct[..size].to_owned(),
            assignments + &fill("echo > $f1$f2$f3;")[..size - 600],
            fill("a | "),
            fill("{a,b}"),
            fill("cd a; "),
            fill("while x; do cd a; done; "),
            format!("case x in {} esac", fill("a) b;; ")),
            fill("'a'\"b\"$'c' "),
            fill("bash -c 'echo > x'; "),
        ];
        for command in cases {
            let started = Instant::now();
            let _ = writes(&command);
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(5),
                "{took:?} for {}…",
                &command[..40]
            );
        }
    }

    /// A realistic ~1 KB Bash command, as Claude Code sends them.
    fn realistic_command() -> String {
        [
            "cd /work/main/lib && cargo build --release 2>&1 | tail -n 20",
            "git status --short | grep -v '^??' > /tmp/status.txt",
            "for f in src/*.rs; do wc -l \"$f\"; done",
            "if [ -f Cargo.toml ]; then echo ok; else echo missing >&2; fi",
            "find . -name '*.rs' -newer Cargo.toml -print0 | xargs -0 grep -n 'TODO' || true",
            r#"python3 -c "import json,sys; print(json.load(open('package.json'))['name'])""#,
            "cat <<'EOF' > /tmp/notes.md\n# Notes\nsome text here $HOME\nEOF",
            "export RUST_LOG=debug; timeout 30 cargo test -p ctxopt-core guard:: -- --nocapture 2>&1 | head -100",
            "echo \"$(date +%s) done\" >> /tmp/log.txt && ls -la ~/.claude/ | sort -k5 -n",
            "sed -n '1,40p' lib/src/guard/shell.rs; jq '.hooks' .claude/settings.json",
            "rg -n 'fn writes' lib/src | head -5; git diff --stat HEAD~1 -- lib/ > /tmp/diff.txt",
            "mkdir -p target/tmp && cp -r fixtures/hooks target/tmp/ && ls target/tmp/hooks | sort",
            "npm test -- --reporter=dot 2>/dev/null || echo \"tests failed: $?\" | tee -a /tmp/log.txt",
            "test -d .venv || python3 -m venv .venv; . .venv/bin/activate && pip install -q -r requirements.txt",
        ]
        .join("\n")
    }

    #[test]
    fn the_realistic_command_is_read() {
        let command = realistic_command();
        assert!((900..1400).contains(&command.len()), "{}", command.len());
        let found = render(&writes(&command).unwrap());
        for target in [
            "/tmp/status.txt",
            "/tmp/notes.md",
            "/tmp/log.txt",
            "/tmp/diff.txt",
        ] {
            assert!(found.iter().any(|t| t == target), "{target} in {found:?}");
        }
    }

    /// `cargo test --release -p ctxopt-core guard::shell -- --ignored --nocapture`
    #[test]
    #[ignore = "timing; run in release"]
    fn speed_on_a_1_kb_command() {
        let command = realistic_command();
        let runs = 2000;
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let started = Instant::now();
                let found = writes(&command).unwrap();
                let took = started.elapsed();
                assert!(!found.is_empty());
                took
            })
            .collect();
        times.sort();
        println!(
            "writes() on a {} byte command: median {:?}, p95 {:?}, max {:?} ({runs} runs)",
            command.len(),
            times[runs / 2],
            times[runs * 95 / 100],
            times[runs - 1]
        );
    }
}
