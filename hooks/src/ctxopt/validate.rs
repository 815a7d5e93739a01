//! `ctxopt validate`: decides which files to check — the named paths, every config file of the
//! project and of the user, or the staged blobs of the project's git repository — validates
//! each with [`ctxopt::config`] and prints the findings.
//!
//! Validation and git live in the library ([`config`], [`precommit::staged`]); this file only
//! picks the files, names them for people and prints.
//!
//! - **Streams**: the findings (each [`Diagnostic::render`]) and the summary line go to
//!   stdout: they are the command's result, and git shows a pre-commit
//!   hook's stdout too. A reason the command could not run goes to stderr, once, as
//!   `ctxopt: failed to …` (printed by `main`).
//! - **Exit codes**: 0 no errors (warnings allowed), 1 errors found, 2 could not run — a named
//!   path whose name is no config file ctxopt knows, `--staged` outside a git repository or
//!   without git. A named file that cannot be read (missing, a FIFO, unreadable, too large) is
//!   a finding (`E008`, exit 1), not a failure to run.
//! - **Order**: files in the order they were named, discovered (project, user, managed) or
//!   staged (by path); each file's findings by position.
//! - **Names in messages**: a named path as typed; a discovered file relative to the working
//!   directory when under it, else absolute; a staged file relative to the repository root.
//! - **`--staged`** checks only the config files the commit adds or changes (see
//!   [`precommit::staged_kind`] for which repository paths count), reading the index, never
//!   the working tree.

use std::env;
use std::fmt;
use std::path::{Path, PathBuf};

use ctxopt::config::discover::{self, Locations};
use ctxopt::config::{self, CheckContext, ConfigFile, Kind};
use ctxopt::diagnostic::{self, Code, Diagnostic, Level, Position};
use ctxopt::{precommit, project};
use serde_json::json;

use crate::ProjectArg;
use crate::commands::{CliError, Status};

/// Arguments of `ctxopt validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Files to validate (default: every config file of the project and of the user). Each
    /// file's kind comes from its name: settings.json, settings.local.json,
    /// managed-settings.json, .claude.json, .mcp.json, canary.json, ctxopt.json,
    /// skills/*/skill.json, SKILL.md.
    #[arg(value_name = "PATH", conflicts_with = "staged")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    project: ProjectArg,
    /// Validate the config files staged in the project's git repository (the blobs
    /// `git show :PATH` prints), not the working tree; this is what the pre-commit hook runs.
    #[arg(long)]
    staged: bool,
    /// Print a JSON report instead of text:
    /// {"files":[{"path","kind","valid","findings":[…]}],"errors":N,"warnings":N}.
    #[arg(long)]
    json: bool,
}

/// The config file names ctxopt knows, for the message about a name it does not.
const KNOWN_NAMES: &str = "settings.json, settings.local.json, managed-settings.json, \
     managed-settings.d/*.json, .claude.json, .mcp.json, canary.json, ctxopt.json, \
     skills/*/skill.json, SKILL.md";

/// Named paths that are not config files ctxopt knows.
#[derive(Debug)]
struct UnknownKind(Vec<PathBuf>);

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.0.iter().map(|p| p.display().to_string()).collect();
        write!(
            f,
            "failed to validate {}: not a config file ctxopt knows (known names: {KNOWN_NAMES})",
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownKind {}

/// One file's result.
struct Checked {
    /// The name shown in messages.
    path: String,
    kind: Kind,
    findings: Vec<Diagnostic>,
}

/// Which files were checked, for the summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Named,
    Discovered,
    Staged,
}

/// Runs `ctxopt validate`.
pub fn validate(args: &ValidateArgs) -> Result<Status, CliError> {
    let project = project::for_cli(args.project.project.as_deref());
    let locations = Locations::from_process_env();
    let ctx = CheckContext {
        project: project.clone(),
        home: locations.home.clone(),
    };
    let (scope, checked) = if args.staged {
        (Scope::Staged, staged(&project, &ctx)?)
    } else if args.paths.is_empty() {
        (Scope::Discovered, discovered(&project, &locations, &ctx))
    } else {
        (Scope::Named, named(&args.paths, &ctx)?)
    };
    let (errors, warnings) = count(&checked);
    if args.json {
        println!("{}", to_json(&checked, errors, warnings));
    } else {
        print!("{}", to_text(&checked, scope, errors, warnings));
    }
    Ok(if errors > 0 {
        Status::Problems
    } else {
        Status::Ok
    })
}

fn named(paths: &[PathBuf], ctx: &CheckContext) -> Result<Vec<Checked>, UnknownKind> {
    let unknown: Vec<PathBuf> = paths
        .iter()
        .filter(|p| Kind::of_path(p).is_none())
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(UnknownKind(unknown));
    }
    Ok(paths
        .iter()
        .filter_map(|path| {
            let kind = Kind::of_path(path)?;
            let display = path.display().to_string();
            let file = ConfigFile {
                path: path.clone(),
                kind,
            };
            Some(Checked {
                findings: config::validate_file(&file, &display, ctx),
                path: display,
                kind,
            })
        })
        .collect())
}

fn discovered(project: &Path, locations: &Locations, ctx: &CheckContext) -> Vec<Checked> {
    let cwd = env::current_dir().ok();
    discover::discover(project, locations)
        .into_iter()
        .map(|file| {
            let display = shown(&file.path, cwd.as_deref());
            Checked {
                findings: config::validate_file(&file, &display, ctx),
                path: display,
                kind: file.kind,
            }
        })
        .collect()
}

/// `path` relative to `cwd` when under it, else as is.
fn shown(path: &Path, cwd: Option<&Path>) -> String {
    cwd.and_then(|cwd| path.strip_prefix(cwd).ok())
        .filter(|rel| !rel.as_os_str().is_empty())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn staged(project: &Path, ctx: &CheckContext) -> Result<Vec<Checked>, precommit::PrecommitError> {
    let staged = precommit::staged(project)?;
    Ok(staged
        .files
        .into_iter()
        .map(|file| {
            let findings = match &file.contents {
                Ok(bytes) => config::validate_bytes(file.kind, &file.path, bytes, ctx),
                Err(message) => vec![Diagnostic::new(
                    &file.path,
                    Position::default(),
                    Level::Error,
                    Code::E008,
                    message.clone(),
                    "",
                )],
            };
            Checked {
                path: file.path,
                kind: file.kind,
                findings,
            }
        })
        .collect())
}

fn count(checked: &[Checked]) -> (usize, usize) {
    let all = || checked.iter().flat_map(|c| &c.findings);
    let errors = all().filter(|d| d.is_error()).count();
    (errors, all().count() - errors)
}

/// Every finding — file by file in the order checked, each file's sorted by position — then
/// the summary line.
fn to_text(checked: &[Checked], scope: Scope, errors: usize, warnings: usize) -> String {
    let mut out = String::new();
    for file in checked {
        let mut findings = file.findings.clone();
        diagnostic::sort(&mut findings);
        for finding in &findings {
            out.push_str(&finding.render());
            out.push('\n');
        }
    }
    out.push_str(&summary(checked.len(), scope, errors, warnings));
    out.push('\n');
    out
}

/// `3 config files checked: 1 error, 2 warnings`.
fn summary(files: usize, scope: Scope, errors: usize, warnings: usize) -> String {
    let what = match scope {
        Scope::Staged => "staged config file",
        Scope::Named | Scope::Discovered => "config file",
    };
    if files == 0 {
        return match scope {
            Scope::Staged => "no staged config files to check".to_owned(),
            Scope::Named | Scope::Discovered => "no config files found".to_owned(),
        };
    }
    let result = match (errors, warnings) {
        (0, 0) => "no problems".to_owned(),
        (e, 0) => plural(e, "error"),
        (0, w) => plural(w, "warning"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    };
    format!("{} checked: {result}", plural(files, what))
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn to_json(checked: &[Checked], errors: usize, warnings: usize) -> serde_json::Value {
    let files: Vec<serde_json::Value> = checked
        .iter()
        .map(|c| {
            json!({
                "path": c.path,
                "kind": c.kind,
                "valid": !c.findings.iter().any(Diagnostic::is_error),
                "findings": c.findings,
            })
        })
        .collect();
    json!({"files": files, "errors": errors, "warnings": warnings})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(file: &str, line: usize, level: Level, code: Code) -> Diagnostic {
        Diagnostic::new(
            file,
            Position {
                line,
                column: 1,
                offset: 0,
            },
            level,
            code,
            "m",
            "",
        )
    }

    #[test]
    fn summary_counts_read_right() {
        assert_eq!(
            summary(3, Scope::Named, 1, 2),
            "3 config files checked: 1 error, 2 warnings"
        );
        assert_eq!(
            summary(1, Scope::Staged, 0, 0),
            "1 staged config file checked: no problems"
        );
        assert_eq!(
            summary(2, Scope::Discovered, 0, 1),
            "2 config files checked: 1 warning"
        );
        assert_eq!(
            summary(0, Scope::Staged, 0, 0),
            "no staged config files to check"
        );
    }

    #[test]
    fn text_prints_findings_file_by_file_sorted_then_the_summary() {
        let checked = vec![
            Checked {
                path: "b.json".into(),
                kind: Kind::McpJson,
                findings: vec![finding("b.json", 1, Level::Error, Code::E001)],
            },
            Checked {
                path: "a/.mcp.json".into(),
                kind: Kind::McpJson,
                findings: vec![
                    finding("a/.mcp.json", 9, Level::Warning, Code::W101),
                    finding("a/.mcp.json", 2, Level::Error, Code::E105),
                ],
            },
        ];
        assert_eq!(
            to_text(&checked, Scope::Named, 2, 1),
            "b.json:1:1: error[E001]: m\n\
             a/.mcp.json:2:1: error[E105]: m\n\
             a/.mcp.json:9:1: warning[W101]: m\n\
             2 config files checked: 2 errors, 1 warning\n"
        );
    }

    #[test]
    fn json_has_the_documented_shape() {
        let checked = vec![Checked {
            path: ".mcp.json".into(),
            kind: Kind::McpJson,
            findings: vec![finding(".mcp.json", 1, Level::Warning, Code::W101)],
        }];
        let value = to_json(&checked, 0, 1);
        assert_eq!(value["files"][0]["path"], ".mcp.json");
        assert_eq!(value["files"][0]["kind"], "mcp_json");
        assert_eq!(value["files"][0]["valid"], true);
        assert_eq!(value["files"][0]["findings"][0]["code"], "W101");
        assert_eq!(value["errors"], 0);
        assert_eq!(value["warnings"], 1);
    }

    #[test]
    fn discovered_names_are_relative_to_the_working_directory_when_under_it() {
        let cwd = Path::new("/p");
        assert_eq!(
            shown(Path::new("/p/.claude/settings.json"), Some(cwd)),
            ".claude/settings.json"
        );
        assert_eq!(
            shown(Path::new("/home/u/.claude.json"), Some(cwd)),
            "/home/u/.claude.json"
        );
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let err = UnknownKind(vec![PathBuf::from("notes.txt")]);
        let text = err.to_string();
        assert!(text.starts_with("failed to validate notes.txt: not a config file ctxopt knows"));
        assert!(text.contains(".mcp.json"));
    }
}
