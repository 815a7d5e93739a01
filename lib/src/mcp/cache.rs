//! The results of `ctxopt mcp check`, kept for SessionStart's estimate: a hook never starts an
//! MCP server, so what each server lists is known only from the last check.
//!
//! The file is `<project>/.claude/hooks/data/mcp-cache.json` — beside `state/`, not in it,
//! since retention deletes old files there and a check may be weeks old and still right. One
//! entry per server name, valid only for the config it was checked with: `config_sha256` is
//! the SHA-256 of the compact JSON of the server's config object, and [`Cache::lookup`]
//! ignores an entry whose hash differs. A server that could not be checked (`sse`, OAuth) has
//! no entry. Written by [`save`] with `write_atomic(…, NoFsync)`: losing it costs a re-check.
//! A missing or corrupt file reads as an empty cache, never an error that stops a hook.
//!
//! ```json
//! {"schema_version":1,"servers":{"memory":{"config_sha256":"…","checked_at":"2026-11-25T10:25:21.123Z",
//!   "ok":true,"error":null,"tool_count":9,"tools_chars":6120,"tool_names":["create_entities",…]}}}
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::probe::{ProbeResult, Status};
use crate::config::lastgood::sha256_hex;
use crate::record;
use crate::store::{self, DataDir, Durability, StoreError};

/// The file's name in the data dir.
pub const FILE_NAME: &str = "mcp-cache.json";

/// The file format's version; a file with another one reads as empty.
pub const SCHEMA_VERSION: u32 = 1;

/// The cache file of `data`.
#[must_use]
pub fn path(data: &DataDir) -> PathBuf {
    data.root().join(FILE_NAME)
}

/// What the last check of one server found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// SHA-256 of the compact JSON of the config the server was checked with.
    pub config_sha256: String,
    /// When (RFC 3339 UTC).
    pub checked_at: String,
    /// Whether it answered and listed its tools.
    pub ok: bool,
    /// Why not (masked, first line, capped).
    pub error: Option<String>,
    /// How many tools it listed.
    pub tool_count: usize,
    /// Characters of the compact JSON of its tools array.
    pub tools_chars: usize,
    /// Their names, in order.
    pub tool_names: Vec<String>,
}

/// Every server's last check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cache {
    /// The format version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// Entries by server name.
    pub servers: BTreeMap<String, Entry>,
}

/// The hash a config is cached under.
#[must_use]
pub fn config_hash(config: &Value) -> String {
    sha256_hex(config.to_string().as_bytes())
}

/// Reads the cache of `data`; a missing, unreadable, corrupt or other-version file is an
/// empty cache.
#[must_use]
pub fn load(data: &DataDir) -> Cache {
    std::fs::read(path(data))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Cache>(&bytes).ok())
        .filter(|cache| cache.schema_version == SCHEMA_VERSION)
        .unwrap_or_default()
}

/// Writes `cache` into `data` (created if needed), atomically, without fsync.
pub fn save(data: &DataDir, cache: &Cache) -> Result<(), StoreError> {
    data.ensure()?;
    let mut bytes = serde_json::to_vec_pretty(cache).unwrap_or_default();
    bytes.push(b'\n');
    store::write_atomic(&path(data), &bytes, store::FILE_MODE, Durability::NoFsync)
}

impl Default for Cache {
    fn default() -> Self {
        Self::new()
    }
}

impl Cache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            servers: BTreeMap::new(),
        }
    }

    /// The entry of `name`, when it was checked with exactly `config`.
    #[must_use]
    pub fn lookup(&self, name: &str, config: &Value) -> Option<&Entry> {
        self.servers
            .get(name)
            .filter(|entry| entry.config_sha256 == config_hash(config))
    }

    /// Records `result`, checked with `config`, at `now`. A server not checked removes its
    /// entry: nothing is known about it for this config.
    pub fn update(&mut self, result: &ProbeResult, config: &Value, now: DateTime<Utc>) {
        let error = match &result.status {
            Status::Ok => None,
            Status::Fail { reason } => {
                Some(crate::redact::clean(reason, record::MAX_MESSAGE_CHARS))
            }
            Status::NotChecked { .. } => {
                self.servers.remove(&result.name);
                return;
            }
        };
        self.servers.insert(
            result.name.clone(),
            Entry {
                config_sha256: config_hash(config),
                checked_at: record::timestamp(now),
                ok: error.is_none(),
                error,
                tool_count: result.tool_count,
                tools_chars: result.tools_chars,
                tool_names: result.tools.iter().map(|t| t.name.clone()).collect(),
            },
        );
    }

    /// Drops the entries of servers not in `names` (removed from the config).
    pub fn retain_only(&mut self, names: &[&str]) {
        self.servers
            .retain(|name, _| names.contains(&name.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::mcp::probe::ToolDef;

    fn result(name: &str, status: Status) -> ProbeResult {
        let ok = status == Status::Ok;
        let tools = if ok {
            vec![ToolDef {
                name: "read".to_owned(),
                description: "reads".to_owned(),
                input_schema: json!({"type": "object"}),
            }]
        } else {
            Vec::new()
        };
        ProbeResult {
            name: name.to_owned(),
            status,
            server_info: None,
            tool_count: tools.len(),
            tools_chars: if ok { 57 } else { 0 },
            tools,
            duration_ms: 1.5,
        }
    }

    #[test]
    fn missing_and_corrupt_files_are_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::of_project(tmp.path());
        assert_eq!(load(&data), Cache::new());
        data.ensure().unwrap();
        std::fs::write(path(&data), b"{not json").unwrap();
        assert_eq!(load(&data), Cache::new());
        std::fs::write(path(&data), br#"{"schema_version":99,"servers":{}}"#).unwrap();
        assert_eq!(load(&data), Cache::new());
    }

    #[test]
    fn round_trip_and_hash_invalidation() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::of_project(tmp.path());
        let config = json!({"command": "node", "args": ["a.js"]});
        let mut cache = load(&data);
        let at = DateTime::parse_from_rfc3339("2026-11-25T10:25:21.123Z")
            .unwrap()
            .with_timezone(&Utc);
        cache.update(&result("mem", Status::Ok), &config, at);
        cache.update(
            &result(
                "bad",
                Status::Fail {
                    reason: "command not found: x\nmore".to_owned(),
                },
            ),
            &config,
            at,
        );
        save(&data, &cache).unwrap();
        assert!(!data.state_dir().join(FILE_NAME).exists());
        let back = load(&data);
        assert_eq!(back, cache);
        let entry = back.lookup("mem", &config).unwrap();
        assert!(entry.ok);
        assert_eq!(entry.checked_at, "2026-11-25T10:25:21.123Z");
        assert_eq!(entry.tool_names, ["read"]);
        assert_eq!((entry.tool_count, entry.tools_chars), (1, 57));
        let bad = back.lookup("bad", &config).unwrap();
        assert_eq!(bad.error.as_deref(), Some("command not found: x"));
        assert!(back.lookup("mem", &json!({"command": "node"})).is_none());
        assert!(back.lookup("other", &config).is_none());
    }

    #[test]
    fn not_checked_removes_and_retain_prunes() {
        let config = json!({"type": "sse", "url": "https://x"});
        let mut cache = Cache::new();
        let now = Utc::now();
        cache.update(&result("a", Status::Ok), &config, now);
        cache.update(&result("b", Status::Ok), &config, now);
        cache.update(
            &result(
                "a",
                Status::NotChecked {
                    reason: "sse transport: not checked".to_owned(),
                },
            ),
            &config,
            now,
        );
        assert!(cache.lookup("a", &config).is_none());
        cache.retain_only(&["a"]);
        assert!(cache.servers.is_empty());
    }
}
