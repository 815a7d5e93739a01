//! How often each MCP server was called: `tool_use` records whose `tool_name` is
//! `mcp__<server>__…` in `metrics.jsonl`, since a cutoff. For the CLI only (`ctxopt mcp list`,
//! `ctxopt mcp optimize`): it reads the whole file, which no hook may do.
//!
//! Only the live `metrics.jsonl` is read: retention keeps 30 days there by default, the
//! window the reports use. A line that is not JSON, or has no parsable timestamp, is skipped.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use super::server_of_tool;
use crate::store::StoreError;

/// The fields of a record this count needs.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    timestamp: &'a str,
    #[serde(default)]
    tool_name: Option<String>,
}

/// Calls per server of `servers` in the records of `metrics` of the last `days` days.
pub fn calls_in_last_days(
    metrics: &Path,
    days: i64,
    servers: &[String],
) -> Result<BTreeMap<String, u64>, StoreError> {
    let since = crate::record::now() - TimeDelta::days(days);
    calls_since(metrics, since, servers).map_err(|err| StoreError::new("read", metrics, err))
}

/// Calls per server of `servers` in the records of `metrics` at or after `since`. A missing
/// file counts nothing; servers without calls are absent from the map.
pub fn calls_since(
    metrics: &Path,
    since: DateTime<Utc>,
    servers: &[String],
) -> io::Result<BTreeMap<String, u64>> {
    let file = match File::open(metrics) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(err) => return Err(err),
    };
    let mut counts = BTreeMap::new();
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        if !contains(&buf, b"\"tool_use\"") || !contains(&buf, b"mcp__") {
            continue;
        }
        let Ok(line) = serde_json::from_slice::<Line>(&buf) else {
            continue;
        };
        if line.kind != "tool_use" {
            continue;
        }
        let Some(tool) = line.tool_name else {
            continue;
        };
        let recent = DateTime::parse_from_rfc3339(line.timestamp)
            .is_ok_and(|at| at.with_timezone(&Utc) >= since);
        if !recent {
            continue;
        }
        if let Some(server) = server_of_tool(&tool, servers) {
            *counts.entry(server.to_owned()).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_recent_mcp_tool_use_per_server() {
        let tmp = tempfile::tempdir().unwrap();
        let metrics = tmp.path().join("metrics.jsonl");
        let lines = [
            r#"{"timestamp":"2026-11-20T00:00:00.000Z","type":"tool_use","tool_name":"mcp__memory__read","success":true}"#,
            r#"{"timestamp":"2026-11-21T00:00:00.000Z","type":"tool_use","tool_name":"mcp__memory__write","success":false}"#,
            r#"{"timestamp":"2026-10-01T00:00:00.000Z","type":"tool_use","tool_name":"mcp__memory__read","success":true}"#,
            r#"{"timestamp":"2026-11-21T00:00:00.000Z","type":"tool_use","tool_name":"mcp__git_hub__pr","success":true}"#,
            r#"{"timestamp":"2026-11-21T00:00:00.000Z","type":"tool_use","tool_name":"mcp__other__x","success":true}"#,
            r#"{"timestamp":"2026-11-21T00:00:00.000Z","type":"hook_execution","event":"mcp__memory__read"}"#,
            r#"{"timestamp":"2026-11-21T00:00:00.000Z","type":"tool_use","tool_name":"Bash","success":true}"#,
            "not json mcp__memory__read \"tool_use\"",
            r#"{"timestamp":"bad","type":"tool_use","tool_name":"mcp__memory__read"}"#,
        ];
        std::fs::write(&metrics, lines.join("\n")).unwrap();
        let since = DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let servers = vec!["memory".to_owned(), "git.hub".to_owned(), "idle".to_owned()];
        let counts = calls_since(&metrics, since, &servers).unwrap();
        assert_eq!(counts.get("memory"), Some(&2));
        assert_eq!(counts.get("git.hub"), Some(&1));
        assert_eq!(counts.get("idle"), None);
        assert_eq!(counts.len(), 2);
        assert!(
            calls_since(&tmp.path().join("none"), since, &servers)
                .unwrap()
                .is_empty()
        );
    }
}
