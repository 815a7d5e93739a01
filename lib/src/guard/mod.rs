//! The protected-write guard (R4, M-T-001-1): the agent must not change Claude Code's
//! configuration, ctxopt's data, hooks or backups — only a person may, deliberately.
//!
//! Three lines of defence, one model:
//! - [`paths`] — which paths are protected and how a raw path from a tool call is normalised
//!   (`~`, `$HOME`, `$CLAUDE_PROJECT_DIR`, relative to the call's `cwd`, `..`, symlinks);
//! - [`shell`] — what a Bash command writes, parsed as a shell parses it (never one regex);
//! - [`snapshot`] — (not built yet) the last line no parser can dodge: PreToolUse notes the
//!   protected files' stat, PostToolUse compares and restores a file changed during the call
//!   from its last-known-good copy.
//!
//! PreToolUse denies a Write, Edit, MultiEdit or NotebookEdit into a protected path and a
//! Bash command that writes one; reads stay allowed. Failure policy: a fault while deciding
//! on a call that targets a protected path denies it (`ctxopt guard error`); observers fail
//! open. Later features (the canary's `canary.json` rules) plug in through
//! [`paths::Exception`] instead of writing their own guard.

pub mod paths;
pub mod shell;
pub mod snapshot;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::protocol::ToolCall;
use paths::{Anchors, Protected, Protection};

/// How a raw path is read: a tool's literal `file_path`, or a word a shell expands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Literal,
    Shell,
    /// A shell target written as a tree (`rm -r`, `mv`, `ln -sfn`): a directory holding
    /// protected paths counts too.
    ShellTree,
}

/// File names whose mention in a command the guard treats as "targets a protected path" when
/// it cannot read the command exactly (a parse failure, a target that is not a literal).
const PROTECTED_NAMES: &[&str] = &[
    "settings.json",
    "settings.local.json",
    "managed-settings",
    ".claude.json",
    ".mcp.json",
    "ctxopt.json",
    "canary.json",
    ".claude/hooks",
    ".deploy",
    ".backup",
    "pre-commit",
];

/// What the guard decided about one tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The call writes nothing protected (reads always pass).
    Allow,
    /// The call would write a protected path.
    Deny {
        /// The protected path and why it is protected.
        protection: Protection,
        /// How the call writes it: `Write`, `Bash redirection >`, `python -c`, …
        how: String,
    },
    /// The guard could not read the call exactly and it may target a protected path:
    /// the failure policy denies it.
    Unsure {
        /// What could not be read.
        error: String,
    },
    /// An [`Exception`] registered for the protected path decided the write.
    Rule {
        /// The protected path.
        path: PathBuf,
        /// Whether the rule allows the write.
        allowed: bool,
        /// Why: shown to the model when denied, audited either way.
        reason: String,
    },
}

/// A rule that decides an agent's write of one protected file instead of the blanket denial
/// — the hook through which a later feature (the canary's allowed transitions of
/// `canary.json`) plugs into this one model. Consulted only for Write, Edit, MultiEdit and
/// NotebookEdit, whose resulting content can be computed; a Bash write of the file stays
/// refused. A write a rule allowed is listed in the call's in-flight marker, so the repair
/// after the call keeps it (and audits it with both hashes).
pub trait Exception {
    /// The protected file this rule is for.
    fn path(&self) -> &Path;
    /// Decides `call`, which writes [`Exception::path`]: `Ok(reason)` allows it, `Err(reason)`
    /// denies it with a reason that says what is allowed now and when.
    fn decide(&self, call: &ToolCall) -> Result<String, String>;
}

impl Verdict {
    /// The reason shown to the model for a denied call; `None` for [`Verdict::Allow`].
    #[must_use]
    pub fn reason(&self) -> Option<String> {
        match self {
            Self::Deny { protection, how } => Some(format!(
                "ctxopt refused this call ({how}): {} The agent may read it but not change it.",
                protection.message()
            )),
            Self::Allow | Self::Rule { allowed: true, .. } => None,
            Self::Rule {
                allowed: false,
                reason,
                ..
            } => Some(reason.clone()),
            Self::Unsure { error } => Some(format!(
                "ctxopt guard error: {error}; the command mentions a protected file, so it is \
                 refused. Split it into simpler commands, or make the change by hand outside \
                 the agent."
            )),
        }
    }
}

/// Whether `text` names a protected file, by name: the cheap, conservative test used when a
/// command cannot be read exactly, and by the runner to pick the failure policy before
/// deciding.
#[must_use]
pub fn mentions_protected(text: &str) -> bool {
    PROTECTED_NAMES.iter().any(|name| text.contains(name))
}

/// The tools whose input names the file they write, and the field holding it.
fn file_tool_path(call: &ToolCall) -> Option<&str> {
    let field = match call.tool_name.as_str() {
        "Write" | "Edit" | "MultiEdit" => "file_path",
        "NotebookEdit" => "notebook_path",
        _ => return None,
    };
    call.tool_input.get(field).and_then(Value::as_str)
}

/// Whether an MCP tool's name says it changes files (`mcp__filesystem__write_file`, …).
fn is_mcp_write(name: &str) -> bool {
    name.starts_with("mcp__")
        && [
            "write", "edit", "create", "move", "delete", "remove", "rename",
        ]
        .iter()
        .any(|verb| {
            name.rsplit("__")
                .next()
                .is_some_and(|tool| tool.contains(verb))
        })
}

/// Decides one tool call: Write, Edit, MultiEdit and NotebookEdit by their path, Bash by what
/// its command writes, MCP file tools by their path arguments; everything else passes.
#[must_use]
pub fn decide(call: &ToolCall, anchors: &Anchors, protected: &Protected) -> Verdict {
    decide_with(call, anchors, protected, &[])
}

/// [`decide`], with the [`Exception`] rules registered for some protected files.
#[must_use]
pub fn decide_with(
    call: &ToolCall,
    anchors: &Anchors,
    protected: &Protected,
    exceptions: &[&dyn Exception],
) -> Verdict {
    if let Some(raw) = file_tool_path(call) {
        let verdict = check_target(raw, anchors, protected, &call.tool_name, Syntax::Literal);
        if let Verdict::Deny { protection, .. } = &verdict
            && let Some(rule) = exceptions.iter().find(|rule| {
                paths::normalize_literal(&rule.path().to_string_lossy(), anchors).as_deref()
                    == Some(protection.path.as_path())
            })
        {
            let (allowed, reason) = match rule.decide(call) {
                Ok(reason) => (true, reason),
                Err(reason) => (false, reason),
            };
            return Verdict::Rule {
                path: protection.path.clone(),
                allowed,
                reason,
            };
        }
        return verdict;
    }
    if call.tool_name == "Bash" {
        let command = call
            .tool_input
            .get("command")
            .and_then(Value::as_str)
            .unwrap_or("");
        return decide_bash(command, anchors, protected);
    }
    if is_mcp_write(&call.tool_name) {
        let Some(input) = call.tool_input.as_object() else {
            return Verdict::Allow;
        };
        for key in ["path", "file_path", "destination", "source", "target"] {
            if let Some(raw) = input.get(key).and_then(Value::as_str) {
                let verdict =
                    check_target(raw, anchors, protected, &call.tool_name, Syntax::Literal);
                if verdict != Verdict::Allow {
                    return verdict;
                }
            }
        }
    }
    Verdict::Allow
}

fn check_target(
    raw: &str,
    anchors: &Anchors,
    protected: &Protected,
    how: &str,
    syntax: Syntax,
) -> Verdict {
    let normalized = match syntax {
        Syntax::Literal => paths::normalize_literal(raw, anchors),
        Syntax::Shell | Syntax::ShellTree => paths::normalize(raw, anchors),
    };
    match normalized {
        Some(path) => match protected.check(&path).or_else(|| match syntax {
            Syntax::ShellTree => protected.check_subtree(&path),
            Syntax::Shell | Syntax::Literal => None,
        }) {
            Some(protection) => Verdict::Deny {
                protection,
                how: how.to_owned(),
            },
            None => Verdict::Allow,
        },
        None if mentions_protected(raw) => Verdict::Unsure {
            error: format!("cannot resolve the path `{raw}`"),
        },
        None => Verdict::Allow,
    }
}

fn decide_bash(command: &str, anchors: &Anchors, protected: &Protected) -> Verdict {
    if !shell::could_write(command) {
        return Verdict::Allow;
    }
    let writes = match shell::writes(command) {
        Ok(writes) => writes,
        Err(err) if mentions_protected(command) => {
            return Verdict::Unsure {
                error: err.to_string(),
            };
        }
        Err(_) => return Verdict::Allow,
    };
    for write in writes {
        let base = match &write.cd {
            Some(dir) => match paths::normalize(dir, anchors) {
                Some(dir) => dir,
                None if mentions_protected(&write.target) || mentions_protected(command) => {
                    return Verdict::Unsure {
                        error: format!("cannot resolve `cd {dir}`"),
                    };
                }
                None => continue,
            },
            None => anchors.cwd.clone(),
        };
        let at = Anchors {
            cwd: base,
            ..anchors.clone()
        };
        let how = format!("Bash {}", write.how);
        let syntax = if write.recursive() {
            Syntax::ShellTree
        } else {
            Syntax::Shell
        };
        match check_target(&write.target, &at, protected, &how, syntax) {
            Verdict::Allow => {}
            Verdict::Unsure { .. } if !mentions_protected(command) => {}
            verdict => return verdict,
        }
    }
    Verdict::Allow
}

/// The anchors of a tool call: its `cwd` (else the project), the user's home, the project.
#[must_use]
pub fn anchors(cwd: Option<&Path>, home: &Path, project: &Path) -> Anchors {
    Anchors {
        cwd: cwd.map_or_else(|| project.to_path_buf(), Path::to_path_buf),
        home: home.to_path_buf(),
        project: PathBuf::from(project),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::discover::Locations;

    /// Allows a Write of `canary.json` whose content says 10, nothing else.
    struct TenPercent(PathBuf);

    impl Exception for TenPercent {
        fn path(&self) -> &Path {
            &self.0
        }
        fn decide(&self, call: &ToolCall) -> Result<String, String> {
            let content = call.tool_input["content"].as_str().unwrap_or("");
            if content == "{\"percentage\": 10}" {
                Ok(String::from("0 → 10 is the next stage"))
            } else {
                Err(String::from("only 0 → 10 is allowed now"))
            }
        }
    }

    fn call(tool: &str, input: serde_json::Value) -> ToolCall {
        ToolCall {
            tool_name: tool.into(),
            tool_input: input,
            tool_use_id: Some("toolu_1".into()),
        }
    }

    #[test]
    fn an_exception_decides_file_tool_writes_of_its_path_only() {
        let project = Path::new("/nonexistent-project");
        let locations = Locations::empty_under(Path::new("/nonexistent-root"));
        let protected = Protected::for_project(project, &locations);
        let at = anchors(None, &locations.home, project);
        let canary = project.join(".claude/canary.json");
        let rule = TenPercent(canary.clone());
        let rules: [&dyn Exception; 1] = [&rule];
        let write = |content: &str| {
            call(
                "Write",
                serde_json::json!({"file_path": canary, "content": content}),
            )
        };
        assert_eq!(
            decide_with(&write("{\"percentage\": 10}"), &at, &protected, &rules),
            Verdict::Rule {
                path: canary.clone(),
                allowed: true,
                reason: String::from("0 → 10 is the next stage"),
            }
        );
        let refused = decide_with(&write("{\"percentage\": 100}"), &at, &protected, &rules);
        assert_eq!(
            refused.reason().as_deref(),
            Some("only 0 → 10 is allowed now")
        );
        assert!(
            matches!(
                decide(&write("{\"percentage\": 10}"), &at, &protected),
                Verdict::Deny { .. }
            ),
            "without the rule the write is denied"
        );
        let bash = call(
            "Bash",
            serde_json::json!({"command": format!("echo '{{\"percentage\": 10}}' > {}", canary.display())}),
        );
        assert!(
            matches!(
                decide_with(&bash, &at, &protected, &rules),
                Verdict::Deny { .. }
            ),
            "a Bash write stays refused"
        );
        let settings = call(
            "Write",
            serde_json::json!({"file_path": project.join(".claude/settings.json"), "content": "{\"percentage\": 10}"}),
        );
        assert!(matches!(
            decide_with(&settings, &at, &protected, &rules),
            Verdict::Deny { .. }
        ));
    }
}
