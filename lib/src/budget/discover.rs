//! The inventory of what enters Claude Code's context at session start: MCP servers across
//! scopes with their toggles, skills, slash commands, custom agents and memory files.
//!
//! It reads files, never writes one, never starts a server and never fails: a file it cannot
//! read or parse is a [`Warning`] and discovery goes on without it (Claude Code skips such a
//! file too). Cost is bounded: one directory listing per skills, commands, agents and rules
//! directory (no tree walks), at most [`MAX_LISTED`] entries from each, the first
//! [`MAX_HEAD_BYTES`] of each `SKILL.md` / command / agent file, and at most
//! [`MAX_MEMORY_FILES`] memory files.
//!
//! # MCP servers (PROTOCOL.md §4)
//! - Sources: `managed-mcp.json` in the managed dir (managed), `~/.claude.json`
//!   `projects[<project>].mcpServers` (local), `<project>/.mcp.json` (project),
//!   `~/.claude.json` `mcpServers` (user). `~/.claude.json` is
//!   [`Locations::claude_json`] (`$CLAUDE_CONFIG_DIR/.claude.json` when that is set).
//! - Name clashes: the whole definition comes from one source, local > project > user (§4);
//!   the losers are listed in [`McpServer::shadows`]. A `managed-mcp.json` that exists takes
//!   exclusive control (the MCP docs' "Option 1"): every other server is listed, disabled.
//! - `transport` from `type`: none or `stdio` → stdio (so `url` without `type` is stdio, E105),
//!   `http`/`streamable-http` → http, `sse`, `ws`; any other type is a warning and the server
//!   is skipped, as Claude Code rejects it.
//! - Toggles. A disabled entry always wins:
//!   - `disabledMcpServers` in the project's `~/.claude.json` entry (the `/mcp` toggle) turns
//!     off a server of any scope;
//!   - managed settings' `deniedMcpServers` (and, when present, `allowedMcpServers`) by
//!     `serverName`, `serverCommand` (exact `[command, ...args]`) or `serverUrl` (`*` wildcard);
//!   - for `.mcp.json` servers: `disabledMcpjsonServers` (lists merge across every settings
//!     file and the `~/.claude.json` project entry) rejects; `enabledMcpjsonServers` (merged
//!     the same way) or `enableAllProjectMcpServers: true` (a scalar: managed > local > project
//!     > user > the `~/.claude.json` project entry, §1.1) approves.
//! - Settings files read for the toggles: `managed-settings.json` and
//!   `managed-settings.d/*.json` (alphabetical, later wins), `.claude/settings.local.json`,
//!   `.claude/settings.json`, `<config dir>/settings.json`. The committed settings are read even
//!   though an *untrusted* interactive folder ignores them (2.1.196+): ctxopt cannot see trust,
//!   and `-p` sessions treat the folder as trusted.
//! - A `.mcp.json` server that nothing approves or rejects has
//!   [`McpServer::needs_approval`]. `-p`, SDK and cloud sessions load it without asking (§4), and
//!   an interactive session asks at start, where people approve what they added; so by
//!   default ([`Session::Headless`]) it counts as enabled — the estimate is an upper bound.
//!   [`Session::Interactive`] counts it as disabled until approved.
//!
//! # Skills, commands, agents (PROTOCOL.md §5)
//! - Skills: `<config dir>/skills/*/SKILL.md` (user), then `.claude/skills/*/SKILL.md`
//!   (project). The name is the directory name (front matter `name` is only a label);
//!   `description` (+ `\n` + `when_to_use`) capped at 1,536 characters as in the listing;
//!   without front matter, or with front matter Claude Code cannot read (any error finding of
//!   [`frontmatter::parse`]), the metadata is empty and the description is the body's first
//!   paragraph (the skills docs). `disable-model-invocation: true` → not model-invocable.
//!   `skill.json` is the runbook's file, not Claude Code's (PROTOCOL.md does not list it):
//!   it is not read for the listing; when its `disable-model-invocation` disagrees with
//!   `SKILL.md`'s, a warning says so.
//! - Commands: `<config dir>/commands/*.md`, then `.claude/commands/*.md`; the name is the
//!   file stem; description from front matter, else the first line of the prompt (§5).
//!   Subdirectories (namespaces) are not walked.
//! - Agents: `<config dir>/agents/*.md`, then `.claude/agents/*.md`; name from front matter
//!   (else the file stem); a file without a `description` is skipped with a warning, as
//!   Claude Code does not load an agent without one.
//!
//! # Memory (the docs' memory page, "How CLAUDE.md files load")
//! In load order: the managed `CLAUDE.md`; `<config dir>/CLAUDE.md`; `<config dir>/rules/*.md`;
//! then from the filesystem root down to the project: `CLAUDE.md`, `.claude/CLAUDE.md`,
//! `CLAUDE.local.md` in each directory; the project's `.claude/rules/*.md`. Rules with a
//! `paths` front matter load later, on demand, and are skipped; rule directories are listed
//! one level deep (the client recurses). When no `CLAUDE.md`, `.claude/CLAUDE.md` or
//! `CLAUDE.local.md` exists in the project or above, `AGENTS.md` and `.claude/AGENTS.md` are
//! read instead (2.1.277+). Each file's `@path` imports follow, depth first: outside code
//! spans and fenced blocks, `@` at the start of a line or after whitespace, the path up to
//! the next unescaped space (`\ ` is a space), relative to the importing file, `~/` the home,
//! at most [`MAX_IMPORT_DEPTH`] hops; every file is loaded once (cycles end there); a path
//! that does not exist is not an import. Sizes are the files' bytes (the client strips block
//! HTML comments and rule front matter first, so this overstates a little).

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::DeserializeSeed;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Inventory, Listed, McpScope, McpServer, MemoryFile, MemoryKind, Owner, Transport};
use crate::config::MAX_CONFIG_BYTES;
use crate::config::discover::{Locations, SkillEntry, SkillsDir};
use crate::config::frontmatter;
use crate::config::lastgood::SETTLE_NS;
use crate::diagnostic::Level;
use crate::fsx::Meta;

/// Most entries read from one skills, commands, agents or rules directory.
pub const MAX_LISTED: usize = 2_000;

/// Bytes read from the head of a `SKILL.md`, command or agent file: the front matter and the
/// first paragraph are all the listing needs.
pub const MAX_HEAD_BYTES: u64 = 64 * 1024;

/// Most memory files followed (imports included).
pub const MAX_MEMORY_FILES: usize = 500;

/// Most `@path` hops from a file Claude Code loads by itself (the memory docs: "a maximum
/// depth of five hops"; the 2.1.240 docs say four — see the report in `benches/TOKENS.md`).
pub const MAX_IMPORT_DEPTH: usize = 5;

/// Longest description the skill listing shows (`description` + `when_to_use`), PROTOCOL.md §5.
pub const MAX_DESCRIPTION_CHARS: usize = 1_536;

/// What kind of session the inventory is for: decides whether a `.mcp.json` server that no
/// setting approves counts as enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Session {
    /// `-p`, SDK, cloud: unapproved project servers load (PROTOCOL.md §4). The default: an
    /// interactive session asks, and the answer is usually yes, so this is the upper bound.
    #[default]
    Headless,
    /// An interactive session before the approval dialog: unapproved project servers are off.
    Interactive,
}

/// Discovery options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// See [`Session`].
    pub session: Session,
}

/// Something discovery skipped or doubts, for a person.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Warning {
    /// The file concerned.
    pub path: PathBuf,
    /// What is wrong and what was done about it.
    pub message: String,
}

/// The inventory and the warnings found on the way.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Discovery {
    /// What enters the context.
    pub inventory: Inventory,
    /// Files skipped or doubted.
    pub warnings: Vec<Warning>,
    /// `env` values of the settings files that change what loads (`ENABLE_TOOL_SEARCH`,
    /// `ANTHROPIC_BASE_URL`), highest-precedence file first wins.
    pub settings_env: BTreeMap<String, String>,
}

/// The `env` keys of settings files that [`Discovery::settings_env`] keeps.
const ENV_KEYS: [&str; 2] = ["ENABLE_TOOL_SEARCH", "ANTHROPIC_BASE_URL"];

/// The inventory of `project` for its user, with default [`Options`]; warnings dropped.
#[must_use]
pub fn discover(project: &Path, locations: &Locations) -> Inventory {
    discover_with(project, locations, Options::default()).inventory
}

/// The inventory of `project` for its user, and what was skipped on the way.
#[must_use]
pub fn discover_with(project: &Path, locations: &Locations, options: Options) -> Discovery {
    discover_known(project, locations, options, &mut Known::default())
}

/// What the caller already knows, so discovery does not list or read it again: SessionStart's
/// config check has listed the skills directories and `stat`ed every `SKILL.md` and
/// `skill.json` ([`crate::config::discover::discover_stat`]); the memo holds the listing
/// entries of files whose stat key has not changed.
#[derive(Debug, Default)]
pub struct Known<'a> {
    /// The skills directories as listed; a directory not in here is listed by discovery.
    pub skills: &'a [SkillsDir],
    /// The listing memo to read and update (SessionStart keeps it in `state/`).
    pub memo: Option<&'a mut Memo>,
    /// The time the memo's stat keys must have settled by (ns since the epoch).
    pub now_ns: i64,
}

/// [`discover_with`], reusing what the caller already knows (see [`Known`]). The result is
/// the same as [`discover_with`]'s for the same files.
#[must_use]
pub fn discover_known(
    project: &Path,
    locations: &Locations,
    options: Options,
    known: &mut Known<'_>,
) -> Discovery {
    let mut warnings = Vec::new();
    let settings = Settings::read(project, locations, &mut warnings);
    let (claude_json, project_entry) =
        read_claude_json(&locations.claude_json(), project, known, &mut warnings);
    let mcp_servers = mcp_servers(
        project,
        locations,
        claude_json.as_ref(),
        project_entry.as_ref(),
        &settings,
        options,
        &mut warnings,
    );
    let config_dir = locations.config_dir();
    let dot_claude = project.join(".claude");
    let mut skills = listed_skills(
        &config_dir.join("skills"),
        Owner::User,
        known,
        &mut warnings,
    );
    skills.extend(listed_skills(
        &dot_claude.join("skills"),
        Owner::Project,
        known,
        &mut warnings,
    ));
    let mut commands = listed_files(
        &config_dir.join("commands"),
        Owner::User,
        FileKind::Command,
        known,
        &mut warnings,
    );
    commands.extend(listed_files(
        &dot_claude.join("commands"),
        Owner::Project,
        FileKind::Command,
        known,
        &mut warnings,
    ));
    let mut agents = listed_files(
        &config_dir.join("agents"),
        Owner::User,
        FileKind::Agent,
        known,
        &mut warnings,
    );
    agents.extend(listed_files(
        &dot_claude.join("agents"),
        Owner::Project,
        FileKind::Agent,
        known,
        &mut warnings,
    ));
    let memory = memory(project, locations, &mut warnings);
    Discovery {
        inventory: Inventory {
            mcp_servers,
            skills,
            commands,
            memory,
            agents,
        },
        warnings,
        settings_env: settings.env,
    }
}

// ---------------------------------------------------------------------------------------
// JSON files

/// A JSON file as Claude Code reads it (strict JSON); `None` when missing, with a warning
/// when it exists but cannot be read or parsed.
fn read_json(path: &Path, warnings: &mut Vec<Warning>) -> Option<Value> {
    let bytes = read_json_bytes(path, warnings)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => Some(value),
        Err(err) => {
            warnings.push(not_json(path, &err));
            None
        }
    }
}

/// A JSON file's bytes; `None` when missing (nothing there, not even a dangling symlink), with
/// a warning when it exists but cannot be read.
fn read_json_bytes(path: &Path, warnings: &mut Vec<Warning>) -> Option<Vec<u8>> {
    let read = match fs::metadata(path) {
        Ok(meta) => read_sized(path, &meta),
        Err(_) if fs::symlink_metadata(path).is_err() => return None,
        Err(err) => Err(format!("cannot read the file: {err}")),
    };
    match read {
        Ok(bytes) => Some(bytes),
        Err(message) => {
            warnings.push(Warning {
                path: path.to_path_buf(),
                message: format!("skipped: {message}"),
            });
            None
        }
    }
}

/// A config file's bytes, like [`read_config`](crate::config::read_config) (the same refusals and messages) but with its
/// metadata already known: one `open`, one `read` into a buffer of the reported size (and the
/// `read` that sees the end), one `close`.
fn read_sized(path: &Path, meta: &fs::Metadata) -> Result<Vec<u8>, String> {
    if !meta.is_file() {
        return Err(String::from(
            "not a regular file (a directory, FIFO or device); Claude Code cannot read it either",
        ));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(format!(
            "the file is {} bytes, more than the {} MiB ctxopt reads; a config file this large is almost certainly corrupt",
            meta.len(),
            MAX_CONFIG_BYTES / (1024 * 1024)
        ));
    }
    let file = fs::File::open(path).map_err(|err| format!("cannot read the file: {err}"))?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0) + 1);
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| format!("cannot read the file: {err}"))?;
    Ok(bytes)
}

/// `~/.claude.json` as discovery needs it: its top-level `mcpServers` (as `{"mcpServers": …}`)
/// and this project's `projects` entry (only the keys discovery reads). The file is client
/// state, often megabytes of history: everything else is skipped while parsing, never built
/// into a tree. `None`s when missing; a warning when it cannot be read or is not JSON.
fn read_claude_json(
    path: &Path,
    project: &Path,
    known: &mut Known<'_>,
    warnings: &mut Vec<Warning>,
) -> (Option<Value>, Option<Value>) {
    let (kept, memo) =
        claude_json_kept(path, project, known.now_ns, known.memo.as_deref(), warnings);
    if let Some(m) = known.memo.as_deref_mut()
        && m.app != memo
    {
        m.app = memo;
        m.changed = true;
    }
    kept
}

/// [`read_claude_json`]'s work: what is kept, and what the memo should hold for the file
/// (its kept parts under its stat key, when settled and parsed without a warning).
fn claude_json_kept(
    path: &Path,
    project: &Path,
    now_ns: i64,
    memo: Option<&Memo>,
    warnings: &mut Vec<Warning>,
) -> ((Option<Value>, Option<Value>), Option<AppState>) {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(_) if fs::symlink_metadata(path).is_err() => return ((None, None), None),
        Err(err) => {
            warnings.push(Warning {
                path: path.to_path_buf(),
                message: format!("skipped: cannot read the file: {err}"),
            });
            return ((None, None), None);
        }
    };
    let keys = project_keys(project);
    let stat = Stat::of(&Meta::of(&meta));
    let id = path.to_string_lossy().into_owned();
    if let Some(app) = memo.and_then(|m| m.app.as_ref())
        && stat.settled(now_ns)
        && app.path == id
        && app.stat == stat
        && app.keys == keys
    {
        return (
            (Some(app.root.clone()), app.entry.clone()),
            Some(app.clone()),
        );
    }
    let bytes = match read_sized(path, &meta) {
        Ok(bytes) => bytes,
        Err(message) => {
            warnings.push(Warning {
                path: path.to_path_buf(),
                message: format!("skipped: {message}"),
            });
            return ((None, None), None);
        }
    };
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let parsed = slim::Top { keys: &keys }
        .deserialize(&mut de)
        .and_then(|top| de.end().map(|()| top));
    match parsed {
        Ok(top) => {
            let mut root = Map::new();
            if let Some(servers) = top.mcp_servers {
                root.insert("mcpServers".to_owned(), servers);
            }
            let entry = top
                .projects
                .and_then(|mut found| keys.iter().find_map(|k| found.remove(k)));
            let root = Value::Object(root);
            let app = stat.settled(now_ns).then(|| AppState {
                path: id,
                keys,
                stat,
                root: root.clone(),
                entry: entry.clone(),
            });
            ((Some(root), entry), app)
        }
        Err(err) => {
            warnings.push(not_json(path, &err));
            ((None, None), None)
        }
    }
}

/// The warning for a JSON file Claude Code skips.
fn not_json(path: &Path, err: &serde_json::Error) -> Warning {
    Warning {
        path: path.to_path_buf(),
        message: format!(
            "skipped, as Claude Code skips it: not valid JSON ({err}); `ctxopt validate {}` shows where",
            path.display()
        ),
    }
}

/// The keys `project` may have in `~/.claude.json` `projects`, in the order they are tried:
/// its path as given, else its canonical path (Claude Code keys projects by the absolute start
/// directory), each also without a trailing `/`.
fn project_keys(project: &Path) -> Vec<String> {
    let mut paths = vec![project.to_string_lossy().into_owned()];
    if let Ok(canonical) = fs::canonicalize(project) {
        paths.push(canonical.to_string_lossy().into_owned());
    }
    let mut keys = Vec::new();
    for path in paths {
        let trimmed = path.trim_end_matches('/').to_owned();
        keys.push(path);
        keys.push(trimmed);
    }
    keys
}

/// The selective parse of `~/.claude.json`: serde visitors that keep `mcpServers` and the
/// wanted `projects` entries and skip the rest ([`serde::de::IgnoredAny`]). A duplicate key
/// keeps its last value, as `serde_json::Value` (and Claude Code) does; any JSON value is
/// accepted where an object is expected and then counts as holding nothing.
mod slim {
    use std::collections::HashMap;
    use std::fmt;

    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};

    /// The keys of a project entry discovery reads.
    const ENTRY_KEYS: [&str; 5] = [
        "mcpServers",
        "disabledMcpServers",
        "disabledMcpjsonServers",
        "enabledMcpjsonServers",
        "enableAllProjectMcpServers",
    ];

    /// What is kept of the whole file.
    #[derive(Default)]
    pub(super) struct Kept {
        pub(super) mcp_servers: Option<Value>,
        /// The wanted entries by key; `None` when `projects` is missing or not an object.
        pub(super) projects: Option<HashMap<String, Value>>,
    }

    /// Seed for the whole file.
    pub(super) struct Top<'a> {
        pub(super) keys: &'a [String],
    }

    /// Seed for `projects`.
    struct Projects<'a> {
        keys: &'a [String],
    }

    /// Seed for one wanted project entry.
    struct Entry;

    /// Skips a sequence's elements.
    fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    macro_rules! scalars_are {
        ($value:expr) => {
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok($value)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok($value)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok($value)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok($value)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok($value)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok($value)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                skip_seq(seq)?;
                Ok($value)
            }
        };
    }

    impl<'de> DeserializeSeed<'de> for Top<'_> {
        type Value = Kept;
        fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Kept, D::Error> {
            de.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Top<'_> {
        type Value = Kept;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("JSON")
        }
        scalars_are!(Kept::default());
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kept, A::Error> {
            let mut kept = Kept::default();
            while let Some(key) = map.next_key::<String>()? {
                match key.as_str() {
                    "mcpServers" => kept.mcp_servers = Some(map.next_value::<Value>()?),
                    "projects" => {
                        kept.projects = map.next_value_seed(Projects { keys: self.keys })?;
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(kept)
        }
    }

    impl<'de> DeserializeSeed<'de> for Projects<'_> {
        type Value = Option<HashMap<String, Value>>;
        fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
            de.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Projects<'_> {
        type Value = Option<HashMap<String, Value>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("JSON")
        }
        scalars_are!(None);
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = HashMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if self.keys.contains(&key) {
                    let entry = map.next_value_seed(Entry)?;
                    found.insert(key, entry);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(Some(found))
        }
    }

    impl<'de> DeserializeSeed<'de> for Entry {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
            de.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Entry {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("JSON")
        }
        // A non-object entry holds nothing discovery reads, like `null`.
        scalars_are!(Value::Null);
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut kept = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if ENTRY_KEYS.contains(&key.as_str()) {
                    let value = map.next_value::<Value>()?;
                    kept.insert(key, value);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(Value::Object(kept))
        }
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn relative_label(path: &Path, project: &Path) -> String {
    path.strip_prefix(project)
        .map_or_else(|_| path.display().to_string(), |p| p.display().to_string())
}

// ---------------------------------------------------------------------------------------
// Settings toggles

/// One settings source's MCP keys.
struct SettingsFile {
    label: String,
    value: Value,
}

/// The settings files, highest precedence first (managed, local, project, user; PROTOCOL.md
/// §1.1), and what they say about MCP servers and the environment.
struct Settings {
    files: Vec<SettingsFile>,
    /// Managed files only (policy keys are honoured there alone).
    managed: Vec<SettingsFile>,
    env: BTreeMap<String, String>,
}

impl Settings {
    fn read(project: &Path, locations: &Locations, warnings: &mut Vec<Warning>) -> Self {
        let mut managed = Vec::new();
        let managed_dir = &locations.managed_dir;
        let mut managed_paths = vec![managed_dir.join("managed-settings.json")];
        let mut drop_ins: Vec<PathBuf> = sorted_entries(&managed_dir.join("managed-settings.d"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        // Later drop-ins win: highest precedence first.
        drop_ins.reverse();
        let mut ordered = drop_ins;
        ordered.append(&mut managed_paths);
        for path in ordered {
            if let Some(value) = read_json(&path, warnings) {
                managed.push(SettingsFile {
                    label: path.display().to_string(),
                    value,
                });
            }
        }
        let mut files: Vec<SettingsFile> = managed
            .iter()
            .map(|f| SettingsFile {
                label: f.label.clone(),
                value: f.value.clone(),
            })
            .collect();
        for path in [
            project.join(".claude").join("settings.local.json"),
            project.join(".claude").join("settings.json"),
            locations.config_dir().join("settings.json"),
        ] {
            if let Some(value) = read_json(&path, warnings) {
                files.push(SettingsFile {
                    label: relative_label(&path, project),
                    value,
                });
            }
        }
        let mut env = BTreeMap::new();
        for file in &files {
            if let Some(map) = file.value.get("env").and_then(Value::as_object) {
                for key in ENV_KEYS {
                    if let Some(v) = map.get(key).and_then(Value::as_str) {
                        env.entry(key.to_owned()).or_insert_with(|| v.to_owned());
                    }
                }
            }
        }
        Self {
            files,
            managed,
            env,
        }
    }
}

/// The `.mcp.json` approval state of one name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Approval {
    Rejected(String),
    Approved,
    Pending,
}

/// The toggles, merged: lists from every source, the scalar by precedence.
struct Toggles {
    /// Name → the source rejecting it (`disabledMcpjsonServers in …`).
    rejected: BTreeMap<String, String>,
    approved: HashSet<String>,
    enable_all: bool,
    /// `/mcp` off switches: name → source.
    switched_off: BTreeMap<String, String>,
}

impl Toggles {
    fn merge(settings: &Settings, project_entry: Option<&Value>, claude_json: &Path) -> Self {
        let mut sources: Vec<(String, &Value)> = settings
            .files
            .iter()
            .map(|f| (f.label.clone(), &f.value))
            .collect();
        let entry_label = format!("{} (this project's entry)", claude_json.display());
        if let Some(entry) = project_entry {
            sources.push((entry_label.clone(), entry));
        }
        let mut rejected = BTreeMap::new();
        let mut approved = HashSet::new();
        let mut enable_all = None;
        for (label, value) in &sources {
            for name in strings(value.get("disabledMcpjsonServers")) {
                rejected
                    .entry(name)
                    .or_insert_with(|| format!("disabledMcpjsonServers in {label}"));
            }
            approved.extend(strings(value.get("enabledMcpjsonServers")));
            if enable_all.is_none() {
                enable_all = value
                    .get("enableAllProjectMcpServers")
                    .and_then(Value::as_bool);
            }
        }
        let mut switched_off = BTreeMap::new();
        if let Some(entry) = project_entry {
            for name in strings(entry.get("disabledMcpServers")) {
                switched_off.insert(name, format!("disabledMcpServers in {entry_label}"));
            }
        }
        Self {
            rejected,
            approved,
            enable_all: enable_all.unwrap_or(false),
            switched_off,
        }
    }

    fn approval(&self, name: &str) -> Approval {
        if let Some(by) = self.rejected.get(name) {
            Approval::Rejected(by.clone())
        } else if self.enable_all || self.approved.contains(name) {
            Approval::Approved
        } else {
            Approval::Pending
        }
    }
}

/// Managed `allowedMcpServers` / `deniedMcpServers` (the MCP docs' "Option 2").
struct Policy {
    denied: Vec<(String, Value)>,
    allowed: Option<(String, Vec<Value>)>,
}

impl Policy {
    fn from(settings: &Settings) -> Self {
        let mut denied = Vec::new();
        let mut allowed = None;
        for file in &settings.managed {
            if let Some(items) = file.value.get("deniedMcpServers").and_then(Value::as_array) {
                denied.extend(items.iter().map(|v| (file.label.clone(), v.clone())));
            }
            if allowed.is_none()
                && let Some(items) = file
                    .value
                    .get("allowedMcpServers")
                    .and_then(Value::as_array)
            {
                allowed = Some((file.label.clone(), items.clone()));
            }
        }
        Self { denied, allowed }
    }

    fn verdict(&self, name: &str, config: &Value) -> Option<String> {
        if let Some((label, _)) = self.denied.iter().find(|(_, e)| matches(e, name, config)) {
            return Some(format!("deniedMcpServers in {label}"));
        }
        match &self.allowed {
            Some((label, entries)) if !entries.iter().any(|e| matches(e, name, config)) => {
                Some(format!("not in allowedMcpServers in {label}"))
            }
            _ => None,
        }
    }
}

/// Whether a policy entry (`serverName`, `serverCommand` or `serverUrl`) matches a server.
fn matches(entry: &Value, name: &str, config: &Value) -> bool {
    if let Some(n) = entry.get("serverName").and_then(Value::as_str) {
        return n == name;
    }
    if let Some(cmd) = entry.get("serverCommand").and_then(Value::as_array) {
        let mut actual: Vec<Value> = config.get("command").cloned().into_iter().collect();
        actual.extend(
            config
                .get("args")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
        return *cmd == actual;
    }
    if let (Some(pattern), Some(url)) = (
        entry.get("serverUrl").and_then(Value::as_str),
        config.get("url").and_then(Value::as_str),
    ) {
        return wildcard(pattern, url);
    }
    false
}

/// `*` matches any run of characters; everything else literally.
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(at) = rest.find(part) {
            rest = &rest[at + part.len()..];
        } else {
            return false;
        }
    }
    true
}

// ---------------------------------------------------------------------------------------
// MCP servers

/// One definition before clash resolution.
struct Definition {
    name: String,
    scope: McpScope,
    source: PathBuf,
    config: Value,
    transport: Transport,
}

fn definitions(
    value: Option<&Value>,
    scope: McpScope,
    source: &Path,
    warnings: &mut Vec<Warning>,
) -> Vec<Definition> {
    let Some(map) = value
        .and_then(|v| v.get("mcpServers"))
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (name, config) in map {
        let transport = match config.get("type") {
            None => Some(Transport::Stdio),
            Some(Value::String(t)) => match t.as_str() {
                "stdio" => Some(Transport::Stdio),
                "http" | "streamable-http" => Some(Transport::Http),
                "sse" => Some(Transport::Sse),
                "ws" => Some(Transport::Ws),
                _ => None,
            },
            Some(_) => None,
        };
        let Some(transport) = transport.filter(|_| config.is_object()) else {
            warnings.push(Warning {
                path: source.to_path_buf(),
                message: format!(
                    "MCP server `{name}` skipped: its `type` is not stdio, http, sse or ws (or the entry is not an object), so Claude Code rejects it"
                ),
            });
            continue;
        };
        found.push(Definition {
            name: name.clone(),
            scope,
            source: source.to_path_buf(),
            config: config.clone(),
            transport,
        });
    }
    found
}

fn mcp_servers(
    project: &Path,
    locations: &Locations,
    claude_json: Option<&Value>,
    project_entry: Option<&Value>,
    settings: &Settings,
    options: Options,
    warnings: &mut Vec<Warning>,
) -> Vec<McpServer> {
    let claude_json_path = locations.claude_json();
    let managed_path = locations.managed_dir.join("managed-mcp.json");
    let managed_value = read_json(&managed_path, warnings);
    let mcp_json_path = project.join(".mcp.json");
    let mcp_json = read_json(&mcp_json_path, warnings);

    // Precedence order: local > project > user; managed apart.
    let mut all = definitions(
        managed_value.as_ref(),
        McpScope::Managed,
        &managed_path,
        warnings,
    );
    all.extend(definitions(
        project_entry,
        McpScope::Local,
        &claude_json_path,
        warnings,
    ));
    all.extend(definitions(
        mcp_json.as_ref(),
        McpScope::Project,
        &mcp_json_path,
        warnings,
    ));
    all.extend(definitions(
        claude_json,
        McpScope::User,
        &claude_json_path,
        warnings,
    ));
    let exclusive = managed_value.is_some();
    let toggles = Toggles::merge(settings, project_entry, &claude_json_path);
    let policy = Policy::from(settings);

    let mut by_name: BTreeMap<String, Vec<Definition>> = BTreeMap::new();
    for def in all {
        by_name.entry(def.name.clone()).or_default().push(def);
    }
    let mut servers = Vec::new();
    for (name, mut defs) in by_name {
        defs.sort_by_key(|d| d.scope);
        let mut defs = defs.into_iter();
        let Some(winner) = defs.next() else {
            continue;
        };
        let shadows: Vec<McpScope> = defs.map(|d| d.scope).collect();
        let mut needs_approval = false;
        let disabled_by = if exclusive && winner.scope != McpScope::Managed {
            Some(format!(
                "{} takes exclusive control of MCP servers",
                managed_path.display()
            ))
        } else if let Some(by) = toggles.switched_off.get(&name) {
            Some(by.clone())
        } else if let Some(by) = policy.verdict(&name, &winner.config) {
            Some(by)
        } else if winner.scope == McpScope::Project {
            match toggles.approval(&name) {
                Approval::Rejected(by) => Some(by),
                Approval::Approved => None,
                Approval::Pending => {
                    needs_approval = true;
                    match options.session {
                        Session::Headless => None,
                        Session::Interactive => Some(String::from(
                            "not approved yet: no enabledMcpjsonServers or enableAllProjectMcpServers names it (an interactive session asks at start)",
                        )),
                    }
                }
            }
        } else {
            None
        };
        servers.push(McpServer {
            name,
            scope: winner.scope,
            transport: winner.transport,
            enabled: disabled_by.is_none(),
            disabled_by,
            source: winner.source,
            config: winner.config,
            shadows,
            needs_approval,
        });
    }
    servers.sort_by(|a, b| a.scope.cmp(&b.scope).then_with(|| a.name.cmp(&b.name)));
    servers
}

// ---------------------------------------------------------------------------------------
// Skills, commands, agents

/// The entries of `dir` sorted by name; none when it cannot be listed.
fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut named: Vec<(std::ffi::OsString, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| (e.file_name(), e.path())))
        .collect();
    // One directory's entries differ only in their file names: comparing those is the
    // paths' order, without splitting every path into components at every comparison.
    named.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    named.into_iter().map(|(_, path)| path).collect()
}

/// At most [`MAX_LISTED`] of `entries`, with a warning when more were there.
fn bounded<T>(mut entries: Vec<T>, dir: &Path, warnings: &mut Vec<Warning>) -> Vec<T> {
    if entries.len() > MAX_LISTED {
        warnings.push(Warning {
            path: dir.to_path_buf(),
            message: format!(
                "{} entries; only the first {MAX_LISTED} (by name) were read",
                entries.len()
            ),
        });
        entries.truncate(MAX_LISTED);
    }
    entries
}

/// The first [`MAX_HEAD_BYTES`] of a regular file.
fn read_head(path: &Path) -> Option<Vec<u8>> {
    let meta = Meta::path(path).ok()?;
    read_head_known(path, &meta)
}

/// The first [`MAX_HEAD_BYTES`] of a regular file whose metadata is known: one `open`, one
/// `read` into a buffer of the reported size, one `close`.
fn read_head_known(path: &Path, meta: &Meta) -> Option<Vec<u8>> {
    if !meta.is_file() {
        return None;
    }
    let want = meta.size().min(MAX_HEAD_BYTES);
    let mut bytes = Vec::with_capacity(usize::try_from(want).ok()?);
    fs::File::open(path)
        .ok()?
        .take(want)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

/// A markdown file's front matter (empty when missing or unreadable by Claude Code) and body.
struct Markdown {
    meta: Map<String, Value>,
    body: String,
    /// Front matter present but unreadable (Claude Code loads the file with empty metadata).
    broken: bool,
}

fn read_markdown(path: &Path, bytes: &[u8]) -> Markdown {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let body = split_body(text).map_or_else(|| text.to_owned(), str::to_owned);
    let has_front_matter = text.lines().next().is_some_and(|l| l.trim_end() == "---");
    if !has_front_matter {
        return Markdown {
            meta: Map::new(),
            body,
            broken: false,
        };
    }
    let parsed = frontmatter::parse(&path.display().to_string(), bytes);
    let broken = parsed.diagnostics.iter().any(|d| d.level == Level::Error);
    let meta = match parsed.value {
        Some(Value::Object(map)) if !broken => map,
        _ => Map::new(),
    };
    Markdown { meta, body, broken }
}

/// The text after the closing `---` of a front matter; `None` without front matter.
fn split_body(text: &str) -> Option<&str> {
    let mut lines = text.split_inclusive('\n');
    if lines.next()?.trim_end() != "---" {
        return None;
    }
    let mut offset = text.find('\n')? + 1;
    for line in lines {
        offset += line.len();
        if line.trim_end() == "---" {
            return Some(&text[offset..]);
        }
    }
    None
}

/// A scalar front-matter value as text.
fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
    .filter(|s| !s.trim().is_empty())
}

fn is_true(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.trim() == "true",
        _ => false,
    }
}

/// The first paragraph of `body` (lines up to a blank one, heading marks dropped, joined by
/// spaces).
fn first_paragraph(body: &str) -> String {
    let mut lines = Vec::new();
    for line in body.lines() {
        let line = line.trim();
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(line.trim_start_matches('#').trim());
    }
    lines.join(" ")
}

/// The first non-empty line of `body`, heading marks dropped.
fn first_line(body: &str) -> String {
    body.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.trim_start_matches('#').trim().to_owned())
        .unwrap_or_default()
}

fn cap_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

/// `description` plus `when_to_use`, capped like the listing.
fn description(meta: &Map<String, Value>, fallback: impl FnOnce() -> String) -> String {
    let mut text = text_of(meta.get("description")).unwrap_or_else(fallback);
    if let Some(when) = text_of(meta.get("when_to_use")) {
        text.push('\n');
        text.push_str(&when);
    }
    cap_chars(text.trim(), MAX_DESCRIPTION_CHARS)
}

fn listed_skills(
    dir: &Path,
    owner: Owner,
    known: &mut Known<'_>,
    warnings: &mut Vec<Warning>,
) -> Vec<Listed> {
    let listing = known.skills.iter().find(|d| d.dir == dir);
    let entries: Vec<SkillEntry> = match listing {
        Some(listing) => listing.entries.clone(),
        None => sorted_entries(dir)
            .into_iter()
            .map(|path| SkillEntry {
                skill_md: Meta::path(&path.join("SKILL.md")).ok(),
                skill_json: Meta::path(&path.join("skill.json")).ok(),
                path,
            })
            .collect(),
    };
    let mut found = Vec::new();
    for entry in bounded(entries, dir, warnings) {
        let Some(md_meta) = &entry.skill_md else {
            continue;
        };
        let path = entry.path.join("SKILL.md");
        let name = entry
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = MemoKey::of(md_meta, entry.skill_json.as_ref(), known.now_ns);
        if let Some(hit) = known.memo.as_deref_mut().and_then(|m| m.get(&path, key)) {
            warnings.extend(hit.warnings);
            if let Some(item) = hit.listed {
                found.push(Listed {
                    name,
                    description: item.description,
                    path,
                    owner,
                    model_invocable: item.model_invocable,
                });
            }
            continue;
        }
        let Some(bytes) = read_head_known(&path, md_meta) else {
            continue;
        };
        let mut own = Vec::new();
        let md = read_markdown(&path, &bytes);
        if md.broken {
            own.push(Warning {
                path: path.clone(),
                message: String::from(
                    "front matter unreadable: Claude Code loads the skill with empty metadata (description from the body); `ctxopt validate` shows why",
                ),
            });
        }
        let model_invocable = !is_true(md.meta.get("disable-model-invocation"));
        if let Some(json_meta) = &entry.skill_json {
            check_skill_json(&entry.path, json_meta, model_invocable, &mut own);
        }
        let description = description(&md.meta, || first_paragraph(&md.body));
        if let Some(memo) = known.memo.as_deref_mut() {
            memo.put(
                &path,
                key,
                Some(MemoItem {
                    name: name.clone(),
                    description: description.clone(),
                    model_invocable,
                }),
                own.clone(),
            );
        }
        warnings.append(&mut own);
        found.push(Listed {
            name,
            description,
            path,
            owner,
            model_invocable,
        });
    }
    found
}

/// Warns when the runbook's `skill.json` says otherwise than `SKILL.md` about
/// `disable-model-invocation`: Claude Code reads only `SKILL.md`.
fn check_skill_json(
    skill_dir: &Path,
    meta: &Meta,
    model_invocable: bool,
    warnings: &mut Vec<Warning>,
) {
    let path = skill_dir.join("skill.json");
    let Some(bytes) = read_head_known(&path, meta) else {
        return;
    };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return;
    };
    let says_disabled = is_true(value.get("disable-model-invocation"));
    if says_disabled == model_invocable {
        let (json, md) = if says_disabled {
            ("true", "is not set")
        } else {
            ("false or absent", "is true")
        };
        warnings.push(Warning {
            path,
            message: format!(
                "disable-model-invocation is {json} here but {md} in SKILL.md; Claude Code reads only SKILL.md's front matter"
            ),
        });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Command,
    Agent,
}

fn listed_files(
    dir: &Path,
    owner: Owner,
    kind: FileKind,
    known: &mut Known<'_>,
    warnings: &mut Vec<Warning>,
) -> Vec<Listed> {
    let files = bounded(
        sorted_entries(dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect(),
        dir,
        warnings,
    );
    let mut found = Vec::new();
    for path in files {
        let Ok(meta) = Meta::path(&path) else {
            continue;
        };
        let stem = path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = MemoKey::of(&meta, None, known.now_ns);
        if let Some(hit) = known.memo.as_deref_mut().and_then(|m| m.get(&path, key)) {
            warnings.extend(hit.warnings);
            if let Some(item) = hit.listed {
                found.push(Listed {
                    name: item.name,
                    description: item.description,
                    path,
                    owner,
                    model_invocable: item.model_invocable,
                });
            }
            continue;
        }
        let Some(bytes) = read_head_known(&path, &meta) else {
            continue;
        };
        let md = read_markdown(&path, &bytes);
        let mut own = Vec::new();
        let item = match kind {
            FileKind::Command => Some(MemoItem {
                description: description(&md.meta, || first_line(&md.body)),
                name: stem,
                model_invocable: !is_true(md.meta.get("disable-model-invocation")),
            }),
            FileKind::Agent => {
                if let Some(desc) = text_of(md.meta.get("description")) {
                    Some(MemoItem {
                        name: text_of(md.meta.get("name")).unwrap_or(stem),
                        description: desc.trim().to_owned(),
                        model_invocable: true,
                    })
                } else {
                    own.push(Warning {
                        path: path.clone(),
                        message: String::from(
                            "agent skipped: no `description` in its front matter, so Claude Code does not load it",
                        ),
                    });
                    None
                }
            }
        };
        if let Some(memo) = known.memo.as_deref_mut() {
            memo.put(&path, key, item.clone(), own.clone());
        }
        warnings.append(&mut own);
        if let Some(item) = item {
            found.push(Listed {
                name: item.name,
                description: item.description,
                path,
                owner,
                model_invocable: item.model_invocable,
            });
        }
    }
    found
}

// ---------------------------------------------------------------------------------------
// The listing memo

/// Layout version of [`Memo`]; another one reads as empty.
const MEMO_VERSION: u32 = 1;

/// The listing entries of skill, command and agent files by path, each valid for one stat key
/// (the file's, and for a skill its `skill.json`'s or its absence), so an unchanged file is
/// not opened again. A key is stored only once settled (mtime and ctime 2 s old, the config
/// cache's racy-clean rule), and entries are tied to the ctxopt version that computed them.
/// What the listing holds comes from the directory listings of the run; the memo only spares
/// the reads and the front-matter parses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memo {
    version: u32,
    ctxopt: String,
    files: BTreeMap<String, MemoEntry>,
    /// What discovery keeps of `~/.claude.json`, under its stat key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app: Option<AppState>,
    /// Paths looked up or stored in this run (the rest is dropped by [`Memo::to_json`]).
    #[serde(skip)]
    used: HashSet<String>,
    /// Whether an entry was added or replaced in this run.
    #[serde(skip)]
    changed: bool,
}

impl Default for Memo {
    fn default() -> Self {
        Self {
            version: MEMO_VERSION,
            ctxopt: env!("CARGO_PKG_VERSION").to_owned(),
            files: BTreeMap::new(),
            app: None,
            used: HashSet::new(),
            changed: false,
        }
    }
}

/// `~/.claude.json`'s kept parts (`{"mcpServers": …}` and this project's entry), valid for
/// one stat key and one set of project keys (the project's path as given and canonical).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AppState {
    path: String,
    keys: Vec<String>,
    stat: Stat,
    root: Value,
    entry: Option<Value>,
}

/// One memoised file (short field names: the file holds one entry per skill).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MemoEntry {
    #[serde(rename = "k")]
    key: MemoKey,
    /// `None`: the file yields no listing entry (an agent without a description).
    #[serde(rename = "l")]
    listed: Option<MemoItem>,
    /// What discovery said about the file.
    #[serde(rename = "w", default, skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<Warning>,
}

/// What a listing entry holds besides its path and owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MemoItem {
    #[serde(rename = "n")]
    name: String,
    #[serde(rename = "d")]
    description: String,
    #[serde(rename = "m")]
    model_invocable: bool,
}

/// A file's stat key: size, mtime (ns), ctime (ns), inode, device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stat(u64, i64, i64, u64, u64);

impl Stat {
    fn of(meta: &Meta) -> Self {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Self(
            meta.size(),
            ns(meta.mtime(), meta.mtime_nsec()),
            ns(meta.ctime(), meta.ctime_nsec()),
            meta.ino(),
            meta.dev(),
        )
    }

    /// Whether mtime and ctime are [`SETTLE_NS`] old at `now_ns` (the config cache's rule).
    fn settled(self, now_ns: i64) -> bool {
        now_ns.saturating_sub(self.1.max(self.2)) >= SETTLE_NS
    }
}

/// A file's stat key, and for a skill its `skill.json`'s (`None`: no `skill.json`); `settled`
/// is false when one of them changed in the last 2 s (then nothing is stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct MemoKey(Stat, Option<Stat>, #[serde(skip)] bool);

impl MemoKey {
    fn of(file: &Meta, companion: Option<&Meta>, now_ns: i64) -> Self {
        let file = Stat::of(file);
        let companion = companion.map(Stat::of);
        let settled = file.settled(now_ns) && companion.is_none_or(|c| c.settled(now_ns));
        Self(file, companion, settled)
    }

    fn settled(self) -> bool {
        self.2
    }

    fn same(self, other: Self) -> bool {
        self.0 == other.0 && self.1 == other.1
    }
}

impl Memo {
    /// A memo read from `bytes`; empty when they are not one of this version.
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Self {
        serde_json::from_slice::<Self>(bytes)
            .ok()
            .filter(|m| m.version == MEMO_VERSION && m.ctxopt == env!("CARGO_PKG_VERSION"))
            .unwrap_or_default()
    }

    /// Whether this run added, replaced or dropped an entry (then it is worth saving).
    #[must_use]
    pub fn changed(&self) -> bool {
        self.changed || self.files.keys().any(|k| !self.used.contains(k))
    }

    /// The memo without the entries this run did not look up (files gone from the listings),
    /// as JSON.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        let files: BTreeMap<&String, &MemoEntry> = self
            .files
            .iter()
            .filter(|(k, _)| self.used.contains(*k))
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "version": self.version,
            "ctxopt": self.ctxopt,
            "files": files,
            "app": self.app,
        }))
        .unwrap_or_default()
    }

    fn get(&mut self, path: &Path, key: MemoKey) -> Option<MemoEntry> {
        let id = path.to_string_lossy().into_owned();
        let hit = self
            .files
            .get(&id)
            .filter(|e| key.settled() && e.key.same(key))
            .cloned();
        self.used.insert(id);
        hit
    }

    fn put(&mut self, path: &Path, key: MemoKey, listed: Option<MemoItem>, warnings: Vec<Warning>) {
        let id = path.to_string_lossy().into_owned();
        if key.settled() {
            self.files.insert(
                id.clone(),
                MemoEntry {
                    key,
                    listed,
                    warnings,
                },
            );
            self.changed = true;
        } else if self.files.remove(&id).is_some() {
            self.changed = true;
        }
        self.used.insert(id);
    }
}

// ---------------------------------------------------------------------------------------
// Memory

struct MemoryWalk<'a> {
    home: &'a Path,
    seen: HashSet<PathBuf>,
    files: Vec<MemoryFile>,
    warnings: &'a mut Vec<Warning>,
}

impl MemoryWalk<'_> {
    /// Loads `path` (when it is a regular file not loaded yet) and its imports.
    fn load(&mut self, path: &Path, kind: MemoryKind) {
        self.visit(path, kind, None, 0);
    }

    fn visit(&mut self, path: &Path, kind: MemoryKind, by: Option<&Path>, depth: usize) {
        let Ok(meta) = fs::metadata(path) else {
            return;
        };
        if !meta.is_file() {
            return;
        }
        let key = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if !self.seen.insert(key) {
            return;
        }
        if self.files.len() >= MAX_MEMORY_FILES {
            self.warnings.push(Warning {
                path: path.to_path_buf(),
                message: format!(
                    "not counted: more than {MAX_MEMORY_FILES} memory files (with imports)"
                ),
            });
            return;
        }
        self.files.push(MemoryFile {
            path: path.to_path_buf(),
            bytes: meta.len(),
            imported_by: by.map(Path::to_path_buf),
            loaded_as: kind,
        });
        if depth >= MAX_IMPORT_DEPTH {
            return;
        }
        let Some(bytes) = read_capped(path, meta.len()) else {
            return;
        };
        let text = String::from_utf8_lossy(&bytes);
        let base = path.parent().unwrap_or_else(|| Path::new("/"));
        for import in imports(&text) {
            if let Some(target) = self.resolve(&import, base) {
                self.visit(&target, MemoryKind::Import, Some(path), depth + 1);
            }
        }
    }

    fn resolve(&self, import: &str, base: &Path) -> Option<PathBuf> {
        let candidates = [
            import,
            import.trim_end_matches(['.', ',', ';', ':', '!', '?', ')']),
        ];
        candidates.iter().find_map(|raw| {
            if raw.is_empty() {
                return None;
            }
            let path = if let Some(rest) = raw.strip_prefix("~/") {
                self.home.join(rest)
            } else {
                base.join(raw)
            };
            fs::metadata(&path)
                .ok()
                .filter(fs::Metadata::is_file)
                .map(|_| path)
        })
    }
}

/// A memory file's bytes, capped (a memory file far larger than this is a mistake, and its
/// imports are not worth reading past it).
fn read_capped(path: &Path, len: u64) -> Option<Vec<u8>> {
    let cap = crate::config::MAX_CONFIG_BYTES;
    let mut bytes = Vec::with_capacity(usize::try_from(len.min(cap)).ok()?.saturating_add(1));
    fs::File::open(path)
        .ok()?
        .take(crate::config::MAX_CONFIG_BYTES)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

/// The `@path` imports of a memory file, in order.
fn imports(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut fence: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let marker: String = trimmed
            .chars()
            .take_while(|c| *c == '`' || *c == '~')
            .collect();
        if marker.len() >= 3
            && marker
                .chars()
                .all(|c| c == marker.chars().next().unwrap_or('`'))
        {
            match &fence {
                Some(open) if marker.starts_with(open.as_str()) => fence = None,
                Some(_) => {}
                None => fence = Some(marker),
            }
            continue;
        }
        if fence.is_some() {
            continue;
        }
        imports_in_line(&without_code_spans(line), &mut found);
    }
    found
}

/// `line` with its inline code spans (`` `…` ``, any backtick run) blanked out.
fn without_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '`' {
            let run = chars[i..].iter().take_while(|c| **c == '`').count();
            let close = (i + run..chars.len()).find(|&j| {
                chars[j..].iter().take_while(|c| **c == '`').count() == run
                    && (j == 0 || chars[j - 1] != '`')
            });
            if let Some(j) = close {
                out.push(' ');
                i = j + run;
                continue;
            }
            out.extend(&chars[i..i + run]);
            i += run;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn imports_in_line(line: &str, found: &mut Vec<String>) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@' && (i == 0 || chars[i - 1].is_whitespace()) {
            let mut path = String::new();
            let mut j = i + 1;
            while j < chars.len() {
                match chars[j] {
                    '\\' if chars.get(j + 1) == Some(&' ') => {
                        path.push(' ');
                        j += 2;
                    }
                    c if c.is_whitespace() => break,
                    c => {
                        path.push(c);
                        j += 1;
                    }
                }
            }
            if !path.is_empty() && !path.starts_with(['"', '\'', '@']) {
                found.push(path);
            }
            i = j;
        } else {
            i += 1;
        }
    }
}

/// Rules in `dir` (one level) without a `paths` front matter, in name order.
fn rules(dir: &Path, warnings: &mut Vec<Warning>) -> Vec<PathBuf> {
    let files = bounded(
        sorted_entries(dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect(),
        dir,
        warnings,
    );
    files
        .into_iter()
        .filter(|path| {
            read_head(path).is_some_and(|bytes| {
                let md = read_markdown(path, &bytes);
                !md.meta.contains_key("paths")
            })
        })
        .collect()
}

fn memory(project: &Path, locations: &Locations, warnings: &mut Vec<Warning>) -> Vec<MemoryFile> {
    let config_dir = locations.config_dir();
    let user_rules = rules(&config_dir.join("rules"), warnings);
    let project_rules = rules(&project.join(".claude").join("rules"), warnings);
    let chain: Vec<PathBuf> = project
        .ancestors()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(Path::to_path_buf)
        .collect();
    let has_claude_md = chain.iter().any(|dir| {
        [
            dir.join("CLAUDE.md"),
            dir.join(".claude").join("CLAUDE.md"),
            dir.join("CLAUDE.local.md"),
        ]
        .iter()
        .any(|p| p.is_file())
    });
    let mut walk = MemoryWalk {
        home: &locations.home,
        seen: HashSet::new(),
        files: Vec::new(),
        warnings,
    };
    walk.load(
        &locations.managed_dir.join("CLAUDE.md"),
        MemoryKind::Managed,
    );
    walk.load(&config_dir.join("CLAUDE.md"), MemoryKind::User);
    for rule in &user_rules {
        walk.load(rule, MemoryKind::Rule);
    }
    for dir in &chain {
        if has_claude_md {
            walk.load(&dir.join("CLAUDE.md"), MemoryKind::Project);
            walk.load(&dir.join(".claude").join("CLAUDE.md"), MemoryKind::Project);
            walk.load(&dir.join("CLAUDE.local.md"), MemoryKind::Local);
        } else {
            walk.load(&dir.join("AGENTS.md"), MemoryKind::AgentsMd);
            walk.load(&dir.join(".claude").join("AGENTS.md"), MemoryKind::AgentsMd);
        }
    }
    for rule in &project_rules {
        walk.load(rule, MemoryKind::Rule);
    }
    walk.files
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// Copies `fixtures/budget/<case>/` into a temp dir, with `@PROJECT@` in `.claude.json`
    /// replaced by the copied project's path; returns the dir, the project and locations.
    fn fixture(case: &str) -> (tempfile::TempDir, PathBuf, Locations) {
        let tmp = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/budget")
            .join(case);
        copy_tree(&src, tmp.path());
        let project = tmp.path().join("project");
        fs::create_dir_all(&project).unwrap();
        let claude_json = tmp.path().join("home/.claude.json");
        if let Ok(text) = fs::read_to_string(&claude_json) {
            let text = text.replace("@PROJECT@", &project.display().to_string());
            fs::write(&claude_json, text).unwrap();
        }
        let locations = Locations {
            home: tmp.path().join("home"),
            claude_config_dir: None,
            managed_dir: tmp.path().join("managed"),
        };
        (tmp, project, locations)
    }

    fn copy_tree(from: &Path, to: &Path) {
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                fs::create_dir_all(&target).unwrap();
                copy_tree(&entry.path(), &target);
            } else {
                fs::copy(entry.path(), &target).unwrap();
            }
        }
    }

    fn server<'a>(inv: &'a Inventory, name: &str) -> &'a McpServer {
        inv.mcp_servers
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no server {name}"))
    }

    #[test]
    fn mcp_servers_of_every_scope_with_toggles_and_clashes() {
        let (_tmp, project, locations) = fixture("scopes");
        let found = discover_with(&project, &locations, Options::default());
        let inv = &found.inventory;
        let names: Vec<(&str, McpScope, bool)> = inv
            .mcp_servers
            .iter()
            .map(|s| (s.name.as_str(), s.scope, s.enabled))
            .collect();
        assert_eq!(
            names,
            [
                ("localonly", McpScope::Local, false),
                ("shared", McpScope::Local, true),
                ("approved", McpScope::Project, true),
                ("approved-in-claude-json", McpScope::Project, true),
                ("both", McpScope::Project, false),
                ("events", McpScope::Project, true),
                ("pending", McpScope::Project, true),
                ("rejected-by-user", McpScope::Project, false),
                ("github", McpScope::User, true),
                ("remote", McpScope::User, true),
            ]
        );
        let shared = server(inv, "shared");
        assert_eq!(shared.shadows, [McpScope::Project, McpScope::User]);
        assert_eq!(shared.config["command"], "shared-local");
        let both = server(inv, "both");
        assert_eq!(
            both.disabled_by.as_deref(),
            Some("disabledMcpjsonServers in .claude/settings.local.json"),
            "a disabled entry wins over enabledMcpjsonServers in settings.json"
        );
        assert!(
            server(inv, "rejected-by-user")
                .disabled_by
                .as_deref()
                .unwrap()
                .contains("settings.json")
        );
        assert!(
            server(inv, "localonly")
                .disabled_by
                .as_deref()
                .unwrap()
                .starts_with("disabledMcpServers in ")
        );
        assert!(server(inv, "pending").needs_approval);
        assert!(!server(inv, "approved").needs_approval);
        assert_eq!(server(inv, "remote").transport, Transport::Stdio);
        assert_eq!(server(inv, "localonly").transport, Transport::Http);
        assert_eq!(server(inv, "events").transport, Transport::Sse);
        assert!(inv.mcp_servers.iter().all(|s| s.name != "elsewhere"));
        assert_eq!(
            found
                .settings_env
                .get("ENABLE_TOOL_SEARCH")
                .map(String::as_str),
            Some("false"),
            "project settings outrank user settings"
        );
        assert!(found.warnings.iter().all(|w| !w.message.contains("JSON")));
    }

    #[test]
    fn interactive_session_leaves_unapproved_project_servers_off() {
        let (_tmp, project, locations) = fixture("scopes");
        let found = discover_with(
            &project,
            &locations,
            Options {
                session: Session::Interactive,
            },
        );
        let pending = server(&found.inventory, "pending");
        assert!(!pending.enabled);
        assert!(pending.needs_approval);
        assert!(server(&found.inventory, "approved").enabled);
    }

    #[test]
    fn managed_mcp_file_takes_exclusive_control() {
        let (_tmp, project, locations) = fixture("managed");
        let inv = discover(&project, &locations);
        let enabled: Vec<&str> = inv
            .mcp_servers
            .iter()
            .filter(|s| s.enabled)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(enabled, ["corp"]);
        assert_eq!(server(&inv, "corp").scope, McpScope::Managed);
        assert!(
            server(&inv, "team")
                .disabled_by
                .as_deref()
                .unwrap()
                .contains("managed-mcp.json")
        );
        assert!(!server(&inv, "personal").enabled);
    }

    #[test]
    fn managed_policy_denies_and_allows() {
        let (tmp, project, locations) = fixture("managed");
        fs::remove_file(tmp.path().join("managed/managed-mcp.json")).unwrap();
        fs::write(
            tmp.path().join("managed/managed-settings.json"),
            r#"{"deniedMcpServers":[{"serverName":"personal"}],
                "allowedMcpServers":[{"serverName":"personal"},{"serverCommand":["t"]}]}"#,
        )
        .unwrap();
        fs::write(
            tmp.path().join("home/.claude.json"),
            r#"{"mcpServers":{"personal":{"command":"p"},"other":{"command":"o"},
                "web":{"type":"http","url":"https://a.example/mcp"}}}"#,
        )
        .unwrap();
        fs::write(
            project.join(".mcp.json"),
            r#"{"mcpServers":{"team":{"command":"t"}}}"#,
        )
        .unwrap();
        fs::write(
            tmp.path().join("managed/managed-settings.json.d-not-read"),
            "{}",
        )
        .unwrap();
        let inv = discover(&project, &locations);
        assert!(
            server(&inv, "personal")
                .disabled_by
                .as_deref()
                .unwrap()
                .starts_with("deniedMcpServers"),
            "deny wins over allow"
        );
        assert!(
            server(&inv, "other")
                .disabled_by
                .as_deref()
                .unwrap()
                .starts_with("not in allowedMcpServers")
        );
        assert!(server(&inv, "team").enabled, "allowed by serverCommand");
        assert!(!server(&inv, "web").enabled);
    }

    #[test]
    fn a_broken_file_is_a_warning_and_the_rest_is_found() {
        let (_tmp, project, locations) = fixture("broken");
        let found = discover_with(&project, &locations, Options::default());
        let names: Vec<&str> = found
            .inventory
            .mcp_servers
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["fine"]);
        assert_eq!(found.inventory.skills.len(), 1);
        assert_eq!(found.warnings.len(), 2, "{:#?}", found.warnings);
        assert!(found.warnings[0].message.contains("not valid JSON"));
        assert!(found.warnings[0].path.ends_with(".mcp.json"));
        assert!(found.warnings[1].message.contains("`weird` skipped"));
    }

    #[test]
    fn skills_commands_and_agents_with_fallbacks() {
        let (_tmp, project, locations) = fixture("scopes");
        let found = discover_with(&project, &locations, Options::default());
        let inv = &found.inventory;
        let skills: Vec<(&str, Owner, bool, &str)> = inv
            .skills
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.owner,
                    s.model_invocable,
                    s.description.as_str(),
                )
            })
            .collect();
        assert_eq!(
            skills,
            [
                (
                    "user-skill",
                    Owner::User,
                    true,
                    "The user's skill, which wins over the project's of the same name.\nwhen testing precedence"
                ),
                (
                    "broken-skill",
                    Owner::Project,
                    true,
                    "Broken front matter: the body's first paragraph is the description."
                ),
                (
                    "plain-skill",
                    Owner::Project,
                    true,
                    "Plain skill Explains the build in two lines."
                ),
                (
                    "proj-skill",
                    Owner::Project,
                    false,
                    "Deploys things; only the user may invoke it."
                ),
                (
                    "user-skill",
                    Owner::Project,
                    true,
                    "The project's copy, shadowed by the user's."
                ),
            ]
        );
        assert!(
            found
                .warnings
                .iter()
                .any(|w| w.path.ends_with("broken-skill/SKILL.md"))
        );
        let commands: Vec<(&str, &str)> = inv
            .commands
            .iter()
            .map(|c| (c.name.as_str(), c.description.as_str()))
            .collect();
        assert_eq!(
            commands,
            [
                ("standup", "Summarise yesterday's commits for the standup"),
                (
                    "plain-skill",
                    "A command shadowed by the skill of the same name"
                ),
                ("plain", "Run the test suite and report failures."),
            ]
        );
        let agents: Vec<(&str, Owner)> = inv
            .agents
            .iter()
            .map(|a| (a.name.as_str(), a.owner))
            .collect();
        assert_eq!(
            agents,
            [("code-reviewer", Owner::User), ("tester", Owner::Project)]
        );
        assert!(
            found
                .warnings
                .iter()
                .any(|w| w.path.ends_with("nodesc.md") && w.message.contains("description"))
        );
    }

    #[test]
    fn memory_chain_with_imports_and_a_cycle() {
        let (tmp, project, locations) = fixture("scopes");
        let inv = discover(&project, &locations);
        let rel = |p: &Path| {
            p.strip_prefix(tmp.path())
                .map_or_else(|_| p.display().to_string(), |r| r.display().to_string())
        };
        let memory: Vec<(String, MemoryKind, Option<String>)> = inv
            .memory
            .iter()
            .filter(|m| m.path.starts_with(tmp.path()))
            .map(|m| (rel(&m.path), m.loaded_as, m.imported_by.as_deref().map(rel)))
            .collect();
        let s = |x: &str| x.to_owned();
        assert_eq!(
            memory,
            [
                (s("home/.claude/CLAUDE.md"), MemoryKind::User, None),
                (
                    s("home/.claude/extra.md"),
                    MemoryKind::Import,
                    Some(s("home/.claude/CLAUDE.md"))
                ),
                (s("project/CLAUDE.md"), MemoryKind::Project, None),
                (
                    s("project/docs/a.md"),
                    MemoryKind::Import,
                    Some(s("project/CLAUDE.md"))
                ),
                (
                    s("project/docs/b.md"),
                    MemoryKind::Import,
                    Some(s("project/docs/a.md"))
                ),
                (s("project/CLAUDE.local.md"), MemoryKind::Local, None),
                (s("project/.claude/rules/style.md"), MemoryKind::Rule, None),
            ]
        );
        let claude_md = &inv
            .memory
            .iter()
            .find(|m| m.path.ends_with("project/CLAUDE.md"))
            .unwrap();
        assert_eq!(
            claude_md.bytes,
            fs::metadata(project.join("CLAUDE.md")).unwrap().len()
        );
    }

    #[test]
    fn imports_stop_after_the_maximum_depth() {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join("p");
        fs::create_dir_all(&project).unwrap();
        fs::write(project.join("CLAUDE.md"), "@d1.md\n").unwrap();
        for i in 1..=8 {
            fs::write(
                project.join(format!("d{i}.md")),
                format!("@d{}.md\n", i + 1),
            )
            .unwrap();
        }
        let inv = discover(&project, &Locations::empty_under(tmp.path()));
        let names: Vec<String> = inv
            .memory
            .iter()
            .filter(|m| m.path.starts_with(&project))
            .map(|m| m.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["CLAUDE.md", "d1.md", "d2.md", "d3.md", "d4.md", "d5.md"]
        );
    }

    #[test]
    fn parent_directories_load_root_first_and_agents_md_is_a_fallback() {
        let tmp = tempfile::tempdir().unwrap();
        let outer = tmp.path().join("mono");
        let project = outer.join("svc");
        fs::create_dir_all(project.join(".claude")).unwrap();
        fs::write(project.join("AGENTS.md"), "agents").unwrap();
        let locations = Locations::empty_under(tmp.path());
        let inv = discover(&project, &locations);
        let mine: Vec<&MemoryFile> = inv
            .memory
            .iter()
            .filter(|m| m.path.starts_with(tmp.path()))
            .collect();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].loaded_as, MemoryKind::AgentsMd);

        fs::write(outer.join("CLAUDE.md"), "outer").unwrap();
        fs::write(project.join(".claude/CLAUDE.md"), "inner").unwrap();
        let inv = discover(&project, &locations);
        let mine: Vec<&Path> = inv
            .memory
            .iter()
            .filter(|m| m.path.starts_with(tmp.path()))
            .map(|m| m.path.as_path())
            .collect();
        assert_eq!(
            mine,
            [
                outer.join("CLAUDE.md").as_path(),
                project.join(".claude/CLAUDE.md").as_path()
            ],
            "AGENTS.md is not read once a CLAUDE.md exists"
        );
    }

    #[test]
    fn two_hundred_skills_some_not_model_invocable() {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join("p");
        for i in 0..200 {
            let dir = project.join(format!(".claude/skills/skill-{i:03}"));
            fs::create_dir_all(&dir).unwrap();
            let hidden = if i % 8 == 0 {
                "disable-model-invocation: true\n"
            } else {
                ""
            };
            fs::write(
                dir.join("SKILL.md"),
                format!("---\ndescription: Skill number {i}.\n{hidden}---\nBody\n"),
            )
            .unwrap();
        }
        fs::create_dir_all(project.join(".claude/skills/not-a-skill")).unwrap();
        let inv = discover(&project, &Locations::empty_under(tmp.path()));
        assert_eq!(inv.skills.len(), 200);
        assert_eq!(inv.skills.iter().filter(|s| !s.model_invocable).count(), 25);
        assert_eq!(inv.skills[7].name, "skill-007");
        assert_eq!(inv.skills[7].description, "Skill number 7.");
    }

    #[test]
    fn skill_listing_is_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let skills = tmp.path().join("p/.claude/skills");
        for i in 0..(MAX_LISTED + 3) {
            let dir = skills.join(format!("s{i:05}"));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("SKILL.md"), "---\ndescription: d\n---\n").unwrap();
        }
        let found = discover_with(
            &tmp.path().join("p"),
            &Locations::empty_under(tmp.path()),
            Options::default(),
        );
        assert_eq!(found.inventory.skills.len(), MAX_LISTED);
        assert!(found.warnings[0].message.contains("only the first 2000"));
    }

    #[test]
    fn skill_json_that_disagrees_with_skill_md_is_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p/.claude/skills/x");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("SKILL.md"), "---\ndescription: d\n---\n").unwrap();
        fs::write(
            dir.join("skill.json"),
            r#"{"disable-model-invocation":true}"#,
        )
        .unwrap();
        let found = discover_with(
            &tmp.path().join("p"),
            &Locations::empty_under(tmp.path()),
            Options::default(),
        );
        assert!(found.inventory.skills[0].model_invocable);
        assert!(found.warnings[0].message.contains("reads only SKILL.md"));
    }

    /// A time long after every fixture file was written: every stat key is settled.
    const LATER_NS: i64 = i64::MAX / 2;

    #[test]
    fn the_memo_and_the_shared_listing_give_the_same_inventory() {
        let (_tmp, project, locations) = fixture("scopes");
        let plain = discover_with(&project, &locations, Options::default());
        let listed = crate::config::discover::discover_stat(&project, &locations);
        let mut memo = Memo::default();
        for round in 0..2 {
            let mut known = Known {
                skills: &listed.skills,
                memo: Some(&mut memo),
                now_ns: LATER_NS,
            };
            let found = discover_known(&project, &locations, Options::default(), &mut known);
            assert_eq!(found, plain, "round {round}");
            assert_eq!(memo.changed(), round == 0, "round {round}");
            memo = Memo::from_slice(&memo.to_json());
        }
        assert!(memo.files.len() >= 8, "{:?}", memo.files.keys());
    }

    #[test]
    fn the_memo_sees_an_edit_in_place_and_keeps_nothing_unsettled() {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join("p");
        let skill = project.join(".claude/skills/s/SKILL.md");
        fs::create_dir_all(skill.parent().unwrap()).unwrap();
        fs::write(&skill, "---\ndescription: first\n---\n").unwrap();
        let locations = Locations::empty_under(tmp.path());
        let run = |memo: &mut Memo, now_ns: i64| {
            let listed = crate::config::discover::discover_stat(&project, &locations);
            let mut known = Known {
                skills: &listed.skills,
                memo: Some(memo),
                now_ns,
            };
            discover_known(&project, &locations, Options::default(), &mut known)
                .inventory
                .skills
        };
        let mut memo = Memo::default();
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
        assert_eq!(run(&mut memo, now)[0].description, "first");
        assert!(
            memo.files.is_empty(),
            "a key changed in the last 2 s is not kept"
        );
        assert_eq!(run(&mut memo, LATER_NS)[0].description, "first");
        assert_eq!(memo.files.len(), 1);
        // Same directory, same size: only the file's own stat key changes.
        fs::write(&skill, "---\ndescription: secnd\n---\n").unwrap();
        assert_eq!(run(&mut memo, LATER_NS)[0].description, "secnd");
        fs::write(
            skill.with_file_name("skill.json"),
            r#"{"disable-model-invocation":true}"#,
        )
        .unwrap();
        let mut known_memo = memo.clone();
        let listed = crate::config::discover::discover_stat(&project, &locations);
        let mut known = Known {
            skills: &listed.skills,
            memo: Some(&mut known_memo),
            now_ns: LATER_NS,
        };
        let found = discover_known(&project, &locations, Options::default(), &mut known);
        assert!(found.warnings[0].message.contains("reads only SKILL.md"));
        fs::remove_dir_all(skill.parent().unwrap()).unwrap();
        // As SessionStart does: the memo as saved by the last run.
        let mut known_memo = Memo::from_slice(&known_memo.to_json());
        assert_eq!(known_memo.files.len(), 1);
        assert!(run(&mut known_memo, LATER_NS).is_empty());
        assert!(known_memo.changed());
        assert_eq!(Memo::from_slice(&known_memo.to_json()).files.len(), 0);
    }

    #[test]
    fn claude_json_is_read_selectively_like_a_value() {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join("p");
        fs::create_dir_all(&project).unwrap();
        let path = tmp.path().join(".claude.json");
        let p = project.display().to_string();
        let read = |text: &str| {
            fs::write(&path, text).unwrap();
            let mut warnings = Vec::new();
            let got = read_claude_json(&path, &project, &mut Known::default(), &mut warnings);
            (got, warnings)
        };
        let text = format!(
            r#"{{"mcpServers":{{"a":{{"command":"x"}}}},"history":[1,{{"b":[null]}}],
               "projects":{{"/else":{{"mcpServers":{{"e":{{}}}}}},
                 "{p}":{{"history":["h"],"mcpServers":{{"l":{{"command":"l"}}}},"disabledMcpServers":["l"]}}}},
               "mcpServers":{{"b":{{"command":"y"}}}}}}"#
        );
        let ((root, entry), warnings) = read(&text);
        assert!(warnings.is_empty());
        assert_eq!(
            root.unwrap(),
            serde_json::json!({"mcpServers": {"b": {"command": "y"}}}),
            "a duplicate key keeps its last value"
        );
        assert_eq!(
            entry.unwrap(),
            serde_json::json!({"mcpServers": {"l": {"command": "l"}}, "disabledMcpServers": ["l"]})
        );
        let ((root, entry), _) = read(&format!(r#"{{"projects":{{"{p}/":null,"{p}":7}}}}"#));
        assert_eq!(root.unwrap(), serde_json::json!({}));
        assert_eq!(entry.unwrap(), Value::Null, "the path as given first");
        let ((root, entry), _) = read("[1, 2]");
        assert_eq!((root.unwrap(), entry), (serde_json::json!({}), None));
        let ((root, _), warnings) = read(r#"{"mcpServers": {}"#);
        assert!(root.is_none());
        assert!(warnings[0].message.contains("not valid JSON"));
        let ((root, _), warnings) = read(r#"{"a": 1} x"#);
        assert!(root.is_none());
        assert!(warnings[0].message.contains("not valid JSON"));

        // Memoised under its stat key once settled; an edit is seen.
        let mut memo = Memo::default();
        let with_memo = |now_ns: i64, memo: &mut Memo| {
            let mut known = Known {
                skills: &[],
                memo: Some(memo),
                now_ns,
            };
            read_claude_json(&path, &project, &mut known, &mut Vec::new())
        };
        fs::write(&path, &text).unwrap();
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
        let fresh = with_memo(now, &mut memo);
        assert!(memo.app.is_none(), "not settled: not kept");
        assert_eq!(with_memo(LATER_NS, &mut memo), fresh);
        assert!(memo.app.is_some() && memo.changed());
        let mut memo = Memo::from_slice(&memo.to_json());
        assert_eq!(with_memo(LATER_NS, &mut memo), fresh);
        assert!(!memo.changed(), "a hit changes nothing");
        fs::write(&path, r#"{"mcpServers":{"z":{}}}"#).unwrap();
        let (root, entry) = with_memo(LATER_NS, &mut memo);
        assert_eq!(root.unwrap(), serde_json::json!({"mcpServers": {"z": {}}}));
        assert_eq!(entry, None);
        fs::remove_file(&path).unwrap();
        assert_eq!(with_memo(LATER_NS, &mut memo), (None, None));
        assert!(memo.app.is_none());
    }

    #[test]
    fn import_syntax() {
        let text = "See @a.md, @dir/with\\ space.md and mail@example.com.\n\
                    `@code.md` and ``@x `y` z`` and @\"quoted.md\"\n\
                    ~~~\n@fenced.md\n~~~\n@after.md";
        assert_eq!(imports(text), ["a.md,", "dir/with space.md", "after.md"]);
        assert!(wildcard(
            "https://*.corp.example/*",
            "https://a.corp.example/mcp"
        ));
        assert!(!wildcard(
            "https://*.corp.example/*",
            "https://evil.example/mcp"
        ));
    }
}
