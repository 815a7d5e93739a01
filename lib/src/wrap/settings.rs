//! Routing a project's existing hook commands through `ctxopt-run`, and back: the changes
//! `ctxopt install --wrap-existing` makes to a settings file and `ctxopt uninstall` undoes.
//!
//! Pure planning over a parsed settings file ([`plan`], [`unwrap_plan`]) plus two ways to
//! apply a plan: to the `serde_json` value ([`Edits::apply`], for `settings.local.json`, which
//! install re-renders anyway) or as a splice of the command strings into the file's bytes
//! ([`Edits::splice`], for the committed `settings.json`, whose formatting and diff must not
//! change beyond the commands). Which handlers are wrapped and why is in [`super`].

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::command;
use crate::config::json;
use crate::store::{self, DataDir, Durability, StoreError};

/// The git-ignored, per-machine settings file (wrapped by default).
pub const LOCAL_FILE: &str = ".claude/settings.local.json";
/// The committed settings file (wrapped only with `--wrap-committed`).
pub const COMMITTED_FILE: &str = ".claude/settings.json";

/// One handler install routed through the runner, as the install manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The settings file, relative to the project.
    pub settings_file: String,
    /// The event key.
    pub event: String,
    /// The handler's group's matcher, for people reading the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<String>,
    /// The name the runner records the hook under.
    pub name: String,
    /// The command before install: what uninstall puts back.
    pub original: String,
    /// The command install wrote.
    pub command: String,
}

/// What happened to one handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// It now runs through the runner.
    Wrapped,
    /// It already did, through a runner at another path (the binaries moved); updated.
    Updated {
        /// The command before.
        previous: String,
    },
    /// It already runs through this runner.
    Present,
}

/// One wrapped handler and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What the manifest records.
    pub entry: Entry,
    /// What was done.
    pub action: Action,
}

/// Why a handler was left as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// It is in the committed `settings.json` and `--wrap-committed` was not given.
    Committed,
    /// Exec form (`args`): the command string is a program path, not a shell line.
    ExecForm,
    /// It names a shell other than `sh`/`bash` (`powershell`).
    Shell(String),
    /// The command does not parse as a shell line (an unclosed quote).
    Unparsable,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Committed => f.write_str(
                "committed file: wrapping would write this machine's path to ctxopt-run into \
                 it; --wrap-committed does that",
            ),
            Self::ExecForm => f.write_str("exec form (`args`) is not wrapped"),
            Self::Shell(shell) => write!(f, "it runs in `{shell}`, not sh"),
            Self::Unparsable => f.write_str("the command does not parse as a shell line"),
        }
    }
}

/// A handler left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The settings file, relative to the project.
    pub settings_file: String,
    /// The event key.
    pub event: String,
    /// The command.
    pub command: String,
    /// Why.
    pub reason: SkipReason,
}

/// What to do with a handler that does not run through the runner yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewHandlers {
    /// Wrap it.
    Wrap,
    /// Leave it and report it as [`SkipReason::Committed`].
    ReportCommitted,
    /// Leave it without a word (a plain `ctxopt install`).
    Leave,
}

/// Command-string replacements in one settings file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edits(Vec<Edit>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Edit {
    /// JSON pointer of the `command` string.
    pointer: String,
    old: String,
    new: String,
}

impl Edits {
    /// Whether there is nothing to change.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Replaces the commands in a parsed settings file.
    pub fn apply(&self, root: &mut Map<String, Value>) {
        let mut value = Value::Object(std::mem::take(root));
        for edit in &self.0 {
            if let Some(slot) = value.pointer_mut(&edit.pointer)
                && slot.as_str() == Some(edit.old.as_str())
            {
                *slot = Value::String(edit.new.clone());
            }
        }
        if let Value::Object(map) = value {
            *root = map;
        }
    }

    /// Replaces the commands in the file's bytes, leaving every other byte as it is; `None`
    /// when a command is not where the parse says (the caller then re-renders the file).
    #[must_use]
    pub fn splice(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let parsed = json::parse("settings", bytes);
        let mut spans = Vec::new();
        for edit in &self.0 {
            let start = parsed.position(&edit.pointer).offset;
            if bytes.get(start) != Some(&b'"') {
                return None;
            }
            let end = string_end(bytes, start)?;
            let current: String = serde_json::from_slice(&bytes[start..end]).ok()?;
            if current != edit.old {
                return None;
            }
            spans.push((start, end, serde_json::to_string(&edit.new).ok()?));
        }
        spans.sort_by_key(|s| std::cmp::Reverse(s.0));
        let mut out = bytes.to_vec();
        for (start, end, text) in spans {
            out.splice(start..end, text.into_bytes());
        }
        Some(out)
    }
}

/// The index just past the JSON string starting at `start` (its opening quote).
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// What wrapping one settings file changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every handler that runs through the runner by install's doing, with what happened.
    pub changes: Vec<Change>,
    /// Handlers left alone, with why.
    pub skipped: Vec<Skipped>,
    /// The replacements.
    pub edits: Edits,
}

impl Plan {
    /// The manifest's entries for this file after the plan is applied.
    #[must_use]
    pub fn entries(&self) -> Vec<Entry> {
        self.changes.iter().map(|c| c.entry.clone()).collect()
    }
}

/// A command handler of a settings file: the pointer of its `command`, its event, its
/// group's matcher, the handler object.
type Handler<'a> = (String, &'a str, Option<&'a str>, &'a Map<String, Value>);

/// Every command handler of a settings file.
fn handlers(root: &Map<String, Value>) -> Vec<Handler<'_>> {
    let mut out = Vec::new();
    let Some(hooks) = root.get("hooks").and_then(Value::as_object) else {
        return out;
    };
    for (event, groups) in hooks {
        let Some(groups) = groups.as_array() else {
            continue;
        };
        for (g, group) in groups.iter().enumerate() {
            let matcher = group.get("matcher").and_then(Value::as_str);
            let Some(list) = group.get("hooks").and_then(Value::as_array) else {
                continue;
            };
            for (h, handler) in list.iter().enumerate() {
                let Some(handler) = handler.as_object() else {
                    continue;
                };
                if handler.get("type").and_then(Value::as_str) != Some("command")
                    || handler.get("command").and_then(Value::as_str).is_none()
                {
                    continue;
                }
                let pointer = format!(
                    "/hooks/{}/{g}/hooks/{h}/command",
                    event.replace('~', "~0").replace('/', "~1")
                );
                out.push((pointer, event.as_str(), matcher, handler));
            }
        }
    }
    out
}

/// The runner's `--timeout` for a handler: a second under the client's own limit for it
/// (the handler's `timeout`, or the event's default where that is short), so the runner
/// kills and records a hung hook before Claude Code gives up on the runner. `None`: the
/// client allows 600 s and the policy's default (30 s) applies.
#[must_use]
pub fn runner_timeout(event: &str, handler: &Map<String, Value>) -> Option<f64> {
    let client = handler
        .get("timeout")
        .and_then(Value::as_f64)
        .filter(|t| *t > 0.0)
        .or(match event {
            "UserPromptSubmit" => Some(30.0),
            "MessageDisplay" => Some(10.0),
            "SessionEnd" => Some(1.5),
            _ => None,
        })?;
    Some(if client > 2.0 {
        client - 1.0
    } else {
        client / 2.0
    })
}

/// Plans wrapping the handlers of one settings file. `run` is the runner's path, already
/// shell-quoted; `recorded` the manifest's entries (of any file); `project` makes names
/// relative.
#[must_use]
pub fn plan(
    root: &Map<String, Value>,
    settings_file: &str,
    run: &str,
    new: NewHandlers,
    recorded: &[Entry],
    project: &Path,
) -> Plan {
    let mut out = Plan::default();
    for (pointer, event, matcher, handler) in handlers(root) {
        let current = handler
            .get("command")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let timeout = runner_timeout(event, handler);
        if command::is_own(current) {
            let ours = recorded.iter().find(|e| {
                e.settings_file == settings_file && e.event == event && e.command == current
            });
            let Some(entry) = ours else { continue };
            let Some(desired) = command::wrapped(run, &entry.name, timeout, &entry.original) else {
                continue;
            };
            let action = if desired == current {
                Action::Present
            } else {
                out.edits.0.push(Edit {
                    pointer,
                    old: current.to_owned(),
                    new: desired.clone(),
                });
                Action::Updated {
                    previous: current.to_owned(),
                }
            };
            out.changes.push(Change {
                entry: Entry {
                    command: desired,
                    ..entry.clone()
                },
                action,
            });
            continue;
        }
        let skip = |reason| Skipped {
            settings_file: settings_file.to_owned(),
            event: event.to_owned(),
            command: current.to_owned(),
            reason,
        };
        match new {
            NewHandlers::Leave => continue,
            NewHandlers::ReportCommitted => {
                out.skipped.push(skip(SkipReason::Committed));
                continue;
            }
            NewHandlers::Wrap => {}
        }
        if handler.contains_key("args") {
            out.skipped.push(skip(SkipReason::ExecForm));
            continue;
        }
        if let Some(shell) = handler
            .get("shell")
            .and_then(Value::as_str)
            .filter(|s| *s != "bash" && *s != "sh")
        {
            out.skipped.push(skip(SkipReason::Shell(shell.to_owned())));
            continue;
        }
        let name = command::name_of(current, project);
        let Some(wrapped) = command::wrapped(run, &name, timeout, current) else {
            out.skipped.push(skip(SkipReason::Unparsable));
            continue;
        };
        out.edits.0.push(Edit {
            pointer,
            old: current.to_owned(),
            new: wrapped.clone(),
        });
        out.changes.push(Change {
            entry: Entry {
                settings_file: settings_file.to_owned(),
                event: event.to_owned(),
                matcher: matcher.map(str::to_owned),
                name,
                original: current.to_owned(),
                command: wrapped,
            },
            action: Action::Wrapped,
        });
    }
    out
}

/// What unwrapping one settings file restores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unwrap {
    /// Entries whose handler got its original command back.
    pub restored: Vec<Entry>,
    /// Entries whose handler is gone or was changed since; left as they are.
    pub left: Vec<Entry>,
    /// The replacements.
    pub edits: Edits,
}

/// Plans putting back the original commands of `recorded` (entries of other files are
/// ignored): each handler still holding exactly the command install wrote gets its original.
#[must_use]
pub fn unwrap_plan(root: &Map<String, Value>, settings_file: &str, recorded: &[Entry]) -> Unwrap {
    let mut out = Unwrap::default();
    let found = handlers(root);
    let mut used = vec![false; found.len()];
    for entry in recorded.iter().filter(|e| e.settings_file == settings_file) {
        let at = found.iter().enumerate().position(|(i, (_, event, _, h))| {
            !used[i]
                && *event == entry.event
                && h.get("command").and_then(Value::as_str) == Some(entry.command.as_str())
        });
        match at {
            Some(i) => {
                used[i] = true;
                out.edits.0.push(Edit {
                    pointer: found[i].0.clone(),
                    old: entry.command.clone(),
                    new: entry.original.clone(),
                });
                out.restored.push(entry.clone());
            }
            None => out.left.push(entry.clone()),
        }
    }
    out
}

/// A settings file ctxopt can edit failed to read or parse.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Could not read it.
    #[error("failed to read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Not a JSON object.
    #[error("failed to parse {} as a JSON object (left unchanged)", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, when it was not JSON at all.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// Writing it failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A settings file as read for wrapping: its bytes, its value, and how to write it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// The path named to the user.
    pub path: PathBuf,
    /// The path written (a symlink's target, so the link stays).
    target: PathBuf,
    /// The bytes read.
    pub bytes: Vec<u8>,
    /// The parsed object.
    pub value: Map<String, Value>,
    mode: u32,
}

impl File {
    /// Reads `path`; `None` when it does not exist.
    pub fn read(path: &Path) -> Result<Option<Self>, SettingsError> {
        let read_error = |source| SettingsError::Read {
            path: path.to_owned(),
            source,
        };
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(read_error(err)),
        };
        let target = fs::canonicalize(path).map_err(read_error)?;
        let mode = fs::metadata(&target)
            .map_err(read_error)?
            .permissions()
            .mode()
            & 0o7777;
        let value = match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(SettingsError::Parse {
                    path: path.to_owned(),
                    source: None,
                });
            }
            Err(err) => {
                return Err(SettingsError::Parse {
                    path: path.to_owned(),
                    source: Some(err),
                });
            }
        };
        Ok(Some(Self {
            path: path.to_owned(),
            target,
            bytes,
            value,
            mode,
        }))
    }

    /// The file with `edits` applied: spliced into the bytes, or the whole value re-rendered
    /// when a splice is not possible.
    #[must_use]
    pub fn edited(&self, edits: &Edits) -> Vec<u8> {
        if let Some(bytes) = edits.splice(&self.bytes) {
            return bytes;
        }
        let mut value = self.value.clone();
        edits.apply(&mut value);
        let mut bytes = serde_json::to_vec_pretty(&Value::Object(value)).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Writes `bytes` over the file (atomically, fsync'd, keeping its mode) and tells the
    /// drift audit it was ctxopt (`action`: `install` or `uninstall`).
    pub fn write(&self, bytes: &[u8], data: &DataDir, action: &str) -> Result<(), SettingsError> {
        store::write_atomic(&self.target, bytes, self.mode, Durability::Fsync)?;
        crate::config::lastgood::note_own_write(
            data,
            &self.path,
            Some(&self.bytes),
            Some(bytes),
            action,
        )?;
        Ok(())
    }
}

/// Which handlers an install routes through the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// No new ones: keep those recorded (updating the runner's path if it moved).
    #[default]
    Keep,
    /// `--wrap-existing`: every handler in `settings.local.json`; those in the committed
    /// `settings.json` are reported, not wrapped.
    Local,
    /// `--wrap-existing --wrap-committed`: `settings.json` too.
    Committed,
}

/// Everything an install changes to route hooks through the runner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallPlan {
    /// `settings.local.json` (applied by install to the value it renders).
    pub local: Plan,
    /// `settings.json` and its new bytes, when it has something to change or report.
    pub committed: Option<(File, Plan)>,
}

impl InstallPlan {
    /// Plans an install: `local` is `settings.local.json` as install read it, `run` the
    /// runner's path (shell-quoted), `recorded` the previous manifest's entries. The
    /// committed `settings.json` is read only when it has recorded entries or `scope` asks to
    /// wrap or report it; a plain install never fails on it.
    pub fn new(
        project: &Path,
        local: &Map<String, Value>,
        run: &str,
        recorded: &[Entry],
        scope: Scope,
    ) -> Result<Self, SettingsError> {
        let local_new = if scope == Scope::Keep {
            NewHandlers::Leave
        } else {
            NewHandlers::Wrap
        };
        let local = plan(local, LOCAL_FILE, run, local_new, recorded, project);
        let committed_new = match scope {
            Scope::Keep => NewHandlers::Leave,
            Scope::Local => NewHandlers::ReportCommitted,
            Scope::Committed => NewHandlers::Wrap,
        };
        let has_recorded = recorded.iter().any(|e| e.settings_file == COMMITTED_FILE);
        let committed = if has_recorded || scope != Scope::Keep {
            let path = project.join(COMMITTED_FILE);
            match File::read(&path) {
                Ok(Some(file)) => {
                    let plan = plan(
                        &file.value,
                        COMMITTED_FILE,
                        run,
                        committed_new,
                        recorded,
                        project,
                    );
                    Some((file, plan))
                }
                Ok(None) => None,
                Err(_) if scope == Scope::Local && !has_recorded => None,
                Err(err) => return Err(err),
            }
        } else {
            None
        };
        Ok(Self { local, committed })
    }

    /// Whether any settings file changes.
    #[must_use]
    pub fn edits(&self) -> bool {
        !self.local.edits.is_empty()
            || self
                .committed
                .as_ref()
                .is_some_and(|(_, p)| !p.edits.is_empty())
    }

    /// The manifest's entries after the install.
    #[must_use]
    pub fn entries(&self) -> Vec<Entry> {
        let mut out = self.local.entries();
        if let Some((_, plan)) = &self.committed {
            out.extend(plan.entries());
        }
        out
    }

    /// Every handler's change, both files.
    #[must_use]
    pub fn changes(&self) -> Vec<&Change> {
        let committed = self.committed.iter().flat_map(|(_, p)| &p.changes);
        self.local.changes.iter().chain(committed).collect()
    }

    /// Every handler left alone, both files.
    #[must_use]
    pub fn skipped(&self) -> Vec<&Skipped> {
        let committed = self.committed.iter().flat_map(|(_, p)| &p.skipped);
        self.local.skipped.iter().chain(committed).collect()
    }

    /// Writes `settings.json` when it changes (after the manifest, so uninstall can undo it).
    pub fn write_committed(&self, data: &DataDir) -> Result<(), SettingsError> {
        if let Some((file, plan)) = &self.committed
            && !plan.edits.is_empty()
        {
            file.write(&file.edited(&plan.edits), data, "install")?;
        }
        Ok(())
    }
}

/// Puts back the original commands install wrote into the committed `settings.json`
/// (`write`: false for a dry run).
pub fn uninstall_committed(
    project: &Path,
    recorded: &[Entry],
    data: &DataDir,
    write: bool,
) -> Result<Unwrap, SettingsError> {
    if !recorded.iter().any(|e| e.settings_file == COMMITTED_FILE) {
        return Ok(Unwrap::default());
    }
    let Some(file) = File::read(&project.join(COMMITTED_FILE))? else {
        return Ok(Unwrap {
            left: recorded
                .iter()
                .filter(|e| e.settings_file == COMMITTED_FILE)
                .cloned()
                .collect(),
            ..Unwrap::default()
        });
    };
    let plan = unwrap_plan(&file.value, COMMITTED_FILE, recorded);
    if write && !plan.edits.is_empty() {
        file.write(&file.edited(&plan.edits), data, "uninstall")?;
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: &Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    const RUN: &str = "/b/ctxopt-run";

    #[test]
    fn wraps_other_hooks_and_leaves_ours_and_odd_ones() {
        let root = object(&json!({"hooks": {
            "PreToolUse": [
                {"matcher": "Bash", "hooks": [
                    {"type": "command", "command": "node .claude/hooks/PreToolUse.js", "timeout": 10},
                    {"type": "command", "command": "/b/ctxopt-pre-tool-use"},
                    {"type": "command", "command": "/x/guard", "args": ["a"]},
                    {"type": "http", "url": "http://x"}
                ]}
            ],
            "Stop": [{"hooks": [{"type": "command", "command": "say bye && exit 1"}]}],
            "UserPromptSubmit": [{"hooks": [{"type": "command", "command": "/p/h.sh", "shell": "powershell"}]}]
        }}));
        let plan = plan(
            &root,
            LOCAL_FILE,
            RUN,
            NewHandlers::Wrap,
            &[],
            Path::new("/p"),
        );
        let commands: Vec<_> = plan
            .changes
            .iter()
            .map(|c| c.entry.command.as_str())
            .collect();
        assert_eq!(
            commands,
            [
                "/b/ctxopt-run --name .claude/hooks/PreToolUse.js --timeout 9 -- node .claude/hooks/PreToolUse.js",
                "/b/ctxopt-run --name 'say bye && exit 1' -- sh -c 'say bye && exit 1'",
            ]
        );
        let reasons: Vec<_> = plan.skipped.iter().map(|s| s.reason.clone()).collect();
        assert_eq!(
            reasons,
            [SkipReason::ExecForm, SkipReason::Shell("powershell".into())]
        );
        let mut edited = root.clone();
        plan.edits.apply(&mut edited);
        assert_eq!(
            edited["hooks"]["Stop"][0]["hooks"][0]["command"],
            commands[1]
        );

        let again = super::plan(
            &edited,
            LOCAL_FILE,
            RUN,
            NewHandlers::Wrap,
            &plan.entries(),
            Path::new("/p"),
        );
        assert!(again.edits.is_empty());
        assert!(again.changes.iter().all(|c| c.action == Action::Present));
        let moved = super::plan(
            &edited,
            LOCAL_FILE,
            "/new/ctxopt-run",
            NewHandlers::Leave,
            &plan.entries(),
            Path::new("/p"),
        );
        assert!(matches!(moved.changes[0].action, Action::Updated { .. }));

        let back = unwrap_plan(&edited, LOCAL_FILE, &plan.entries());
        assert_eq!(back.restored.len(), 2);
        let mut restored = edited.clone();
        back.edits.apply(&mut restored);
        assert_eq!(restored, root);
    }

    #[test]
    fn splice_changes_only_the_command_strings() {
        let text = "{\n    \"hooks\": {\"Stop\": [ {\"hooks\": [{\"type\": \"command\",\n  \"command\": \"say \\\"bye\\\"\"}]}]},\n\"x\": [1,2]\n}";
        let root: Value = serde_json::from_str(text).unwrap();
        let plan = plan(
            &object(&root),
            COMMITTED_FILE,
            RUN,
            NewHandlers::Wrap,
            &[],
            Path::new("/p"),
        );
        let spliced = plan.edits.splice(text.as_bytes()).unwrap();
        let spliced = String::from_utf8(spliced).unwrap();
        assert_eq!(
            spliced,
            text.replace(
                r#""say \"bye\"""#,
                r#""/b/ctxopt-run --name 'say \"bye\"' -- say \"bye\"""#
            )
        );
        let value: Value = serde_json::from_str(&spliced).unwrap();
        let back = unwrap_plan(&object(&value), COMMITTED_FILE, &plan.entries());
        assert_eq!(
            back.edits.splice(spliced.as_bytes()).unwrap(),
            text.as_bytes()
        );
    }

    #[test]
    fn committed_hooks_are_only_reported() {
        let root =
            object(&json!({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "x"}]}]}}));
        let plan = plan(
            &root,
            COMMITTED_FILE,
            RUN,
            NewHandlers::ReportCommitted,
            &[],
            Path::new("/p"),
        );
        assert!(plan.edits.is_empty() && plan.changes.is_empty());
        assert_eq!(plan.skipped[0].reason, SkipReason::Committed);
    }

    #[test]
    fn timeouts_stay_under_the_clients() {
        let h = |v: Value| object(&v);
        assert_eq!(runner_timeout("PreToolUse", &h(json!({}))), None);
        assert_eq!(
            runner_timeout("PreToolUse", &h(json!({"timeout": 10}))),
            Some(9.0)
        );
        assert_eq!(
            runner_timeout("UserPromptSubmit", &h(json!({}))),
            Some(29.0)
        );
        assert_eq!(runner_timeout("SessionEnd", &h(json!({}))), Some(0.75));
    }
}
