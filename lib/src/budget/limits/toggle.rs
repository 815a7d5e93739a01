//! `ctxopt mcp disable|enable NAME` (and `optimize --apply`): switch one MCP server off or on
//! for this project through the least invasive toggle Claude Code reads (PROTOCOL.md §4; the
//! toggles [`crate::budget::discover`] models).
//!
//! - **Disable** a project (`.mcp.json`) server: add it to `disabledMcpjsonServers` in the
//!   project's `.claude/settings.local.json` (per machine, git-ignored; the committed
//!   `.mcp.json` and `settings.json` stay as they are). A local or user server: add it to
//!   `disabledMcpServers` in this project's entry of `~/.claude.json` (the `/mcp` toggle;
//!   the server's definition stays, and other projects keep it). A managed server is not
//!   disabled (an administrator chose it); enabling one only removes the `/mcp` toggle.
//! - **Enable**: remove the name from those two lists (whichever holds it), and approve a
//!   project server nothing approves yet (`enabledMcpjsonServers` in `settings.local.json`).
//!   A server still disabled by a toggle ctxopt does not write (committed settings, managed
//!   policy) is reported with that toggle, for a person to change.
//! - **Writes**: the file is read and parsed strictly first; one that does not parse, or whose
//!   keys on the way have another shape, is refused and left untouched. The edit keeps every
//!   other key and the key order (`serde_json` with `preserve_order`); output is 2-space
//!   pretty JSON with a newline, written by `write_atomic` with fsync, keeping the file's mode
//!   (a symlink's target is written, so the link stays). The written file is read back and
//!   validated ([`crate::config::validate_bytes`]); when it has more error findings than the
//!   file had before, the old bytes are put back and the command fails. Then
//!   [`lastgood::note_own_write`] records it (`audit.log`, actor `ctxopt`), so the guard does
//!   not revert it and SessionStart does not report it as drift.
//! - Nothing is written when the server is already in the requested state.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::budget::discover::{self, Options};
use crate::budget::{McpScope, McpServer};
use crate::config::discover::Locations;
use crate::config::{self, CheckContext, Kind, lastgood};
use crate::store::{self, DataDir, Durability, StoreError};

/// Switch a server off or on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    /// Off.
    Disable,
    /// On.
    Enable,
}

impl Switch {
    /// The audit action.
    #[must_use]
    pub fn action(self) -> &'static str {
        match self {
            Self::Disable => "mcp-disable",
            Self::Enable => "mcp-enable",
        }
    }
}

/// One file edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edit {
    /// The file.
    pub path: PathBuf,
    /// What changed in it, for people: `added "x" to disabledMcpjsonServers`.
    pub what: String,
}

/// What a switch did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The server.
    pub server: String,
    /// Its scope.
    pub scope: McpScope,
    /// Disable or enable.
    pub switch: Switch,
    /// The files written (none when it already was in that state).
    pub edits: Vec<Edit>,
    /// Whether it is enabled afterwards, by a fresh discovery.
    pub enabled_after: bool,
    /// What still disables it (enable) or already disabled it (disable), when something does.
    pub disabled_by: Option<String>,
}

impl Report {
    /// Whether the server ended in the requested state.
    #[must_use]
    pub fn done(&self) -> bool {
        self.enabled_after == (self.switch == Switch::Enable)
    }
}

/// Why a switch could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ToggleError {
    /// No server of that name.
    #[error("failed to find an MCP server named `{name}` for this project (see `ctxopt mcp list`)")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// A managed server.
    #[error(
        "failed to disable `{name}`: it is a managed server ({}); only an administrator can change it",
        source_file.display()
    )]
    Managed {
        /// The server.
        name: String,
        /// Its file.
        source_file: PathBuf,
    },
    /// The file could not be read.
    #[error("failed to read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file is not JSON: it is never rewritten.
    #[error(
        "failed to parse {} (line {line}, column {column}); it was left untouched — fix it by hand or with `ctxopt restore-config`",
        path.display()
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// Line.
        line: usize,
        /// Column.
        column: usize,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A key on the way has an unexpected shape.
    #[error("failed to edit {}: {at} is {found}, not {expected}; it was left untouched", path.display())]
    Shape {
        /// The file.
        path: PathBuf,
        /// Which key.
        at: String,
        /// What it is.
        found: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// Writing failed.
    #[error("failed to write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// The written file did not validate; the old bytes were put back.
    #[error("failed to keep the edit of {}: it did not validate ({finding}); the previous content was restored", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The first new error finding.
        finding: String,
    },
    /// The audit entry or the cache update failed (the edit itself is in place).
    #[error("failed to record ctxopt's write of {}", path.display())]
    Note {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: StoreError,
    },
}

/// Switches `name` off or on for `project`.
pub fn switch(
    project: &Path,
    locations: &Locations,
    data: &DataDir,
    name: &str,
    switch: Switch,
) -> Result<Report, ToggleError> {
    let found = find(project, locations, name)?;
    if found.scope == McpScope::Managed && switch == Switch::Disable {
        return Err(ToggleError::Managed {
            name: name.to_owned(),
            source_file: found.source,
        });
    }
    let check_ctx = CheckContext {
        project: project.to_path_buf(),
        home: locations.home.clone(),
    };
    let local_settings = project.join(".claude").join("settings.local.json");
    let claude_json = locations.claude_json();
    let mut edits = Vec::new();
    match switch {
        Switch::Disable if !found.enabled => {}
        Switch::Disable => {
            if found.scope == McpScope::Project {
                let what = edit_file(&local_settings, data, &check_ctx, switch, |root| {
                    add_to_list(root, "disabledMcpjsonServers", name, &local_settings)
                })?;
                edits.extend(what.map(|what| Edit {
                    path: local_settings.clone(),
                    what,
                }));
            } else {
                let what = edit_file(&claude_json, data, &check_ctx, switch, |root| {
                    let entry = project_entry_mut(root, project, &claude_json)?;
                    add_to_list(entry, "disabledMcpServers", name, &claude_json)
                })?;
                edits.extend(what.map(|what| Edit {
                    path: claude_json.clone(),
                    what,
                }));
            }
        }
        Switch::Enable => {
            let what = edit_file(&local_settings, data, &check_ctx, switch, |root| {
                remove_from_list(root, "disabledMcpjsonServers", name, &local_settings)
            })?;
            edits.extend(what.map(|what| Edit {
                path: local_settings.clone(),
                what,
            }));
            let what =
                edit_file(
                    &claude_json,
                    data,
                    &check_ctx,
                    switch,
                    |root| match existing_entry_mut(root, project, &claude_json)? {
                        Some(entry) => {
                            remove_from_list(entry, "disabledMcpServers", name, &claude_json)
                        }
                        None => Ok(None),
                    },
                )?;
            edits.extend(what.map(|what| Edit {
                path: claude_json.clone(),
                what,
            }));
            let what = if find(project, locations, name)?.needs_approval {
                edit_file(&local_settings, data, &check_ctx, switch, |root| {
                    add_to_list(root, "enabledMcpjsonServers", name, &local_settings)
                })?
            } else {
                None
            };
            edits.extend(what.map(|what| Edit {
                path: local_settings.clone(),
                what,
            }));
        }
    }
    let after = find(project, locations, name)?;
    Ok(Report {
        server: name.to_owned(),
        scope: after.scope,
        switch,
        edits,
        enabled_after: after.enabled,
        disabled_by: after.disabled_by,
    })
}

fn find(project: &Path, locations: &Locations, name: &str) -> Result<McpServer, ToggleError> {
    discover::discover_with(project, locations, Options::default())
        .inventory
        .mcp_servers
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ToggleError::NotFound {
            name: name.to_owned(),
        })
}

/// Adds `name` to the string list `key` of `map` (created when missing).
fn add_to_list(
    map: &mut Map<String, Value>,
    key: &str,
    name: &str,
    path: &Path,
) -> Result<Option<String>, ToggleError> {
    let list = map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(items) = list else {
        return Err(shape(path, key, list, "an array"));
    };
    if items.iter().any(|v| v.as_str() == Some(name)) {
        return Ok(None);
    }
    items.push(Value::String(name.to_owned()));
    Ok(Some(format!("added \"{name}\" to {key}")))
}

/// Removes every `name` from the string list `key` of `map`.
fn remove_from_list(
    map: &mut Map<String, Value>,
    key: &str,
    name: &str,
    path: &Path,
) -> Result<Option<String>, ToggleError> {
    let Some(list) = map.get_mut(key) else {
        return Ok(None);
    };
    let Value::Array(items) = list else {
        return Err(shape(path, key, list, "an array"));
    };
    let before = items.len();
    items.retain(|v| v.as_str() != Some(name));
    Ok((items.len() != before).then(|| format!("removed \"{name}\" from {key}")))
}

/// The keys a project may have in `~/.claude.json` `projects`, as discovery matches them.
fn project_keys(project: &Path) -> Vec<String> {
    let mut keys = vec![project.to_string_lossy().into_owned()];
    if let Ok(canonical) = fs::canonicalize(project) {
        keys.push(canonical.to_string_lossy().into_owned());
    }
    let trimmed: Vec<String> = keys
        .iter()
        .map(|k| k.trim_end_matches('/').to_owned())
        .collect();
    keys.extend(trimmed);
    keys
}

fn projects_mut<'a>(
    root: &'a mut Map<String, Value>,
    path: &Path,
) -> Result<&'a mut Map<String, Value>, ToggleError> {
    let projects = root
        .entry("projects")
        .or_insert_with(|| Value::Object(Map::new()));
    match projects {
        Value::Object(map) => Ok(map),
        other => Err(shape(path, "projects", other, "an object")),
    }
}

/// The project's existing entry, if any.
fn existing_entry_mut<'a>(
    root: &'a mut Map<String, Value>,
    project: &Path,
    path: &Path,
) -> Result<Option<&'a mut Map<String, Value>>, ToggleError> {
    let Some(projects) = root.get_mut("projects") else {
        return Ok(None);
    };
    let Value::Object(projects) = projects else {
        return Err(shape(path, "projects", projects, "an object"));
    };
    let Some(key) = project_keys(project)
        .into_iter()
        .find(|k| projects.contains_key(k))
    else {
        return Ok(None);
    };
    match projects.get_mut(&key) {
        Some(Value::Object(entry)) => Ok(Some(entry)),
        Some(other) => Err(shape(
            path,
            &format!("projects[\"{key}\"]"),
            other,
            "an object",
        )),
        None => Ok(None),
    }
}

/// The project's entry, created (under the canonical path) when missing.
fn project_entry_mut<'a>(
    root: &'a mut Map<String, Value>,
    project: &Path,
    path: &Path,
) -> Result<&'a mut Map<String, Value>, ToggleError> {
    let projects = projects_mut(root, path)?;
    let keys = project_keys(project);
    let key = keys
        .iter()
        .find(|k| projects.contains_key(k.as_str()))
        .cloned()
        .unwrap_or_else(|| {
            fs::canonicalize(project)
                .unwrap_or_else(|_| project.to_path_buf())
                .to_string_lossy()
                .into_owned()
        });
    let entry = projects
        .entry(key.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    match entry {
        Value::Object(map) => Ok(map),
        other => Err(shape(
            path,
            &format!("projects[\"{key}\"]"),
            other,
            "an object",
        )),
    }
}

fn shape(path: &Path, at: &str, found: &Value, expected: &'static str) -> ToggleError {
    ToggleError::Shape {
        path: path.to_path_buf(),
        at: format!("`{at}`"),
        found: match found {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        },
        expected,
    }
}

/// Mode of a file created here: settings files are the user's (0644); `~/.claude.json` holds
/// credentials-adjacent state and is created 0600.
fn new_mode(path: &Path) -> u32 {
    if Kind::of_path(path) == Some(Kind::ClaudeJson) {
        0o600
    } else {
        0o644
    }
}

/// Reads `path`, applies `edit`, and when it changed something writes, validates and notes
/// the result. Returns what changed.
fn edit_file(
    path: &Path,
    data: &DataDir,
    check_ctx: &CheckContext,
    switch: Switch,
    edit: impl FnOnce(&mut Map<String, Value>) -> Result<Option<String>, ToggleError>,
) -> Result<Option<String>, ToggleError> {
    let read_error = |source| ToggleError::Read {
        path: path.to_path_buf(),
        source,
    };
    let (before, target, mode) = match fs::read(path) {
        Ok(bytes) => {
            let target = fs::canonicalize(path).map_err(read_error)?;
            let mode = fs::metadata(&target)
                .map_err(read_error)?
                .permissions()
                .mode()
                & 0o7777;
            (Some(bytes), target, mode)
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            (None, path.to_path_buf(), new_mode(path))
        }
        Err(err) => return Err(read_error(err)),
    };
    let mut root = match &before {
        Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => map,
            Ok(other) => return Err(shape(path, "the top level", &other, "an object")),
            Err(source) => {
                return Err(ToggleError::Parse {
                    path: path.to_path_buf(),
                    line: source.line(),
                    column: source.column(),
                    source,
                });
            }
        },
        None => Map::new(),
    };
    let Some(what) = edit(&mut root)? else {
        return Ok(None);
    };
    let mut after = serde_json::to_vec_pretty(&Value::Object(root)).unwrap_or_default();
    after.push(b'\n');
    let write_error = |source| ToggleError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)
            .map_err(|err| write_error(StoreError::new("create", parent, err)))?;
    }
    store::write_atomic(&target, &after, mode, Durability::Fsync).map_err(write_error)?;
    if let Some(finding) = new_error(path, before.as_deref(), &target, &after, check_ctx) {
        let restored = match &before {
            Some(bytes) => store::write_atomic(&target, bytes, mode, Durability::Fsync),
            None => fs::remove_file(&target).map_err(|err| StoreError::new("remove", &target, err)),
        };
        restored.map_err(write_error)?;
        return Err(ToggleError::Invalid {
            path: path.to_path_buf(),
            finding,
        });
    }
    lastgood::note_own_write(data, path, before.as_deref(), Some(&after), switch.action())
        .map_err(|source| ToggleError::Note {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Some(what))
}

/// The first error finding the written file has beyond those of `before` (counted), or a
/// note that it reads back different from what was written.
fn new_error(
    path: &Path,
    before: Option<&[u8]>,
    target: &Path,
    written: &[u8],
    check_ctx: &CheckContext,
) -> Option<String> {
    let kind = Kind::of_path(path)?;
    let display = path.display().to_string();
    let read_back = match fs::read(target) {
        Ok(bytes) if bytes == written => bytes,
        Ok(_) => {
            return Some(String::from(
                "the file reads back different from what was written",
            ));
        }
        Err(err) => return Some(format!("the file cannot be read back: {err}")),
    };
    let errors = |bytes: &[u8]| {
        config::validate_bytes(kind, &display, bytes, check_ctx)
            .into_iter()
            .filter(crate::diagnostic::Diagnostic::is_error)
            .collect::<Vec<_>>()
    };
    let had = before.map_or(0, |b| errors(b).len());
    let now = errors(&read_back);
    (now.len() > had).then(|| {
        now.first()
            .and_then(|d| d.render().lines().next().map(str::to_owned))
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        _tmp: tempfile::TempDir,
        project: PathBuf,
        locations: Locations,
        data: DataDir,
    }

    fn fixture(claude_json: &str, mcp_json: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join("project");
        fs::create_dir_all(project.join(".claude")).unwrap();
        let project = fs::canonicalize(project).unwrap();
        let locations = Locations::empty_under(tmp.path());
        fs::create_dir_all(&locations.home).unwrap();
        let claude_json = claude_json.replace("PROJECT", &project.to_string_lossy());
        fs::write(locations.claude_json(), claude_json).unwrap();
        fs::write(project.join(".mcp.json"), mcp_json).unwrap();
        let data = DataDir::of_project(&project);
        Fixture {
            _tmp: tmp,
            project,
            locations,
            data,
        }
    }

    const CLAUDE_JSON: &str = r#"{
  "numStartups": 3,
  "mcpServers": {"userserver": {"command": "u"}},
  "projects": {"PROJECT": {"allowedTools": [], "mcpServers": {"localserver": {"command": "l"}}}},
  "zzz": true
}
"#;
    const MCP_JSON: &str = r#"{"mcpServers": {"team": {"command": "t"}}}"#;

    fn enabled(f: &Fixture, name: &str) -> bool {
        find(&f.project, &f.locations, name).unwrap().enabled
    }

    #[test]
    fn project_server_goes_to_settings_local_and_back() {
        let f = fixture(CLAUDE_JSON, MCP_JSON);
        let report = switch(&f.project, &f.locations, &f.data, "team", Switch::Disable).unwrap();
        assert!(report.done(), "{report:?}");
        assert_eq!(report.edits.len(), 1);
        let local = f.project.join(".claude/settings.local.json");
        assert_eq!(report.edits[0].path, local);
        let written: Value = serde_json::from_slice(&fs::read(&local).unwrap()).unwrap();
        assert_eq!(
            written["disabledMcpjsonServers"],
            serde_json::json!(["team"])
        );
        assert!(!enabled(&f, "team"));
        let audit = fs::read_to_string(f.data.audit_log()).unwrap();
        assert!(audit.contains("\"actor\":\"ctxopt\"") && audit.contains("mcp-disable"));

        let again = switch(&f.project, &f.locations, &f.data, "team", Switch::Disable).unwrap();
        assert!(again.edits.is_empty() && again.done());

        let report = switch(&f.project, &f.locations, &f.data, "team", Switch::Enable).unwrap();
        assert!(report.done(), "{report:?}");
        assert!(enabled(&f, "team"));
        let written: Value = serde_json::from_slice(&fs::read(&local).unwrap()).unwrap();
        assert_eq!(written["disabledMcpjsonServers"], serde_json::json!([]));
        assert_eq!(
            written["enabledMcpjsonServers"],
            serde_json::json!(["team"]),
            "an unapproved project server is approved on enable"
        );
    }

    #[test]
    fn user_and_local_servers_use_the_project_entry_and_keep_everything_else() {
        let f = fixture(CLAUDE_JSON, MCP_JSON);
        for name in ["userserver", "localserver"] {
            let report = switch(&f.project, &f.locations, &f.data, name, Switch::Disable).unwrap();
            assert!(report.done());
            assert_eq!(report.edits[0].path, f.locations.claude_json());
        }
        let text = fs::read_to_string(f.locations.claude_json()).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let key = f.project.to_string_lossy().into_owned();
        assert_eq!(
            value["projects"][&key]["disabledMcpServers"],
            serde_json::json!(["userserver", "localserver"])
        );
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["numStartups", "mcpServers", "projects", "zzz"]);
        assert_eq!(value["mcpServers"]["userserver"]["command"], "u");
        assert_eq!(
            fs::metadata(f.locations.claude_json())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o644,
            "the file keeps its mode"
        );
        let report = switch(
            &f.project,
            &f.locations,
            &f.data,
            "userserver",
            Switch::Enable,
        )
        .unwrap();
        assert!(report.done());
        assert!(enabled(&f, "userserver"));
        assert!(!enabled(&f, "localserver"));
    }

    #[test]
    fn a_missing_project_entry_is_created() {
        let f = fixture(r#"{"mcpServers": {"u": {"command": "u"}}}"#, "{}");
        let report = switch(&f.project, &f.locations, &f.data, "u", Switch::Disable).unwrap();
        assert!(report.done());
        assert!(!enabled(&f, "u"));
    }

    #[test]
    fn a_managed_server_is_not_disabled() {
        let f = fixture(CLAUDE_JSON, MCP_JSON);
        fs::create_dir_all(&f.locations.managed_dir).unwrap();
        fs::write(
            f.locations.managed_dir.join("managed-mcp.json"),
            r#"{"mcpServers": {"corp": {"command": "c"}}}"#,
        )
        .unwrap();
        let before = fs::read(f.locations.claude_json()).unwrap();
        let err = switch(&f.project, &f.locations, &f.data, "corp", Switch::Disable).unwrap_err();
        assert!(matches!(err, ToggleError::Managed { .. }), "{err}");
        assert!(err.to_string().contains("administrator"));
        assert_eq!(fs::read(f.locations.claude_json()).unwrap(), before);
        assert!(!f.project.join(".claude/settings.local.json").exists());
    }

    #[test]
    fn refusals_leave_files_untouched() {
        let f = fixture(
            "{\"mcpServers\": {\"u\": {\"command\": \"u\"}}, // comment\n}",
            MCP_JSON,
        );
        let before = fs::read(f.locations.claude_json()).unwrap();
        let err = switch(&f.project, &f.locations, &f.data, "team", Switch::Disable);
        assert!(
            err.is_ok(),
            "the project server does not touch ~/.claude.json"
        );
        fs::write(f.project.join(".claude/settings.local.json"), "{\"a\":1,}").unwrap();
        let err = switch(&f.project, &f.locations, &f.data, "team", Switch::Enable).unwrap_err();
        assert!(matches!(err, ToggleError::Parse { .. }), "{err}");
        assert_eq!(
            fs::read(f.project.join(".claude/settings.local.json")).unwrap(),
            b"{\"a\":1,}"
        );
        assert_eq!(fs::read(f.locations.claude_json()).unwrap(), before);

        fs::write(
            f.project.join(".claude/settings.local.json"),
            r#"{"disabledMcpjsonServers": "team"}"#,
        )
        .unwrap();
        let err = switch(&f.project, &f.locations, &f.data, "team", Switch::Disable).unwrap_err();
        assert!(matches!(err, ToggleError::Shape { .. }), "{err}");
        let err = switch(&f.project, &f.locations, &f.data, "nope", Switch::Disable).unwrap_err();
        assert!(matches!(err, ToggleError::NotFound { .. }));
    }

    #[test]
    fn an_edit_that_makes_the_file_invalid_is_rolled_back() {
        let f = fixture(CLAUDE_JSON, MCP_JSON);
        let local = f.project.join(".claude/settings.local.json");
        fs::write(&local, "{\"permissions\": {\"allow\": []}}\n").unwrap();
        let before = fs::read(&local).unwrap();
        let err = edit_file(
            &local,
            &f.data,
            &CheckContext {
                project: f.project.clone(),
                home: f.locations.home.clone(),
            },
            Switch::Disable,
            |root| {
                root.insert("permissions".to_owned(), Value::from(3));
                Ok(Some(String::from("broke it")))
            },
        )
        .unwrap_err();
        assert!(matches!(err, ToggleError::Invalid { .. }), "{err}");
        assert_eq!(fs::read(&local).unwrap(), before);
    }
}
