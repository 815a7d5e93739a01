//! The context-budget limits and MCP operations (issue 5, items 4–5) on a temporary HOME and
//! project: SessionStart's estimate, `Alert-S-001` and the server limit; PreToolUse's
//! enforcement from `state/mcp-allowed.json`; `ctxopt mcp list|disable|enable|optimize`.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests: a failed step must fail the test at once"
)]

mod support;

use std::fs;
use std::path::Path;
use std::process::Output;

use ctxopt::mcp::cache::{self, Cache, Entry};
use ctxopt::store::DataDir;
use serde_json::{Value, json};
use support::{TestEnv, bin, of_type};

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn ctxopt(env: &TestEnv, args: &[&str]) -> Output {
    let mut cmd = env.command(&bin("ctxopt"));
    cmd.args(args);
    env.run_with(cmd, b"")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `~/.claude.json` with user servers `u0`…`u<n-1>`, a local server `mine`, and extra keys
/// that must survive every edit; `.mcp.json` with the project server `team`.
fn project(users: usize, policy: Option<&str>) -> TestEnv {
    let env = TestEnv::new();
    let servers: serde_json::Map<String, Value> = (0..users)
        .map(|i| (format!("u{i}"), json!({"command": format!("srv{i}")})))
        .collect();
    let project_key = env.project.to_string_lossy().into_owned();
    let claude_json = json!({
        "numStartups": 7,
        "mcpServers": servers,
        "projects": {
            project_key: {"allowedTools": ["Read"], "mcpServers": {"mine": {"command": "m"}}}
        },
        "userID": "abc"
    });
    write(
        &env.home.join(".claude.json"),
        &serde_json::to_string_pretty(&claude_json).unwrap(),
    );
    write(
        &env.project.join(".mcp.json"),
        r#"{"mcpServers": {"team": {"command": "t"}}}"#,
    );
    if let Some(policy) = policy {
        write(&env.project.join(".claude/ctxopt.json"), policy);
    }
    env
}

fn session_start(env: &TestEnv) -> Output {
    let input = json!({
        "session_id": "s1", "hook_event_name": "SessionStart", "source": "startup",
        "cwd": env.project, "transcript_path": env.project.join("none.jsonl"),
    });
    env.run_hook("ctxopt-session-start", input.to_string().as_bytes())
}

fn pre_tool_use(env: &TestEnv, tool: &str) -> Output {
    let input = json!({
        "session_id": "s1", "hook_event_name": "PreToolUse", "tool_name": tool,
        "tool_input": {}, "tool_use_id": "toolu_1", "cwd": env.project,
    });
    env.run_hook("ctxopt-pre-tool-use", input.to_string().as_bytes())
}

fn add_tool_use(env: &TestEnv, tool: &str, times: usize) {
    let now = ctxopt::record::timestamp(ctxopt::record::now());
    let mut lines = String::new();
    for _ in 0..times {
        lines.push_str(
            &json!({"timestamp": now, "type": "tool_use", "tool_name": tool, "success": true})
                .to_string(),
        );
        lines.push('\n');
    }
    let path = env.data().join("metrics.jsonl");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut text = fs::read_to_string(&path).unwrap_or_default();
    text.push_str(&lines);
    fs::write(path, text).unwrap();
}

#[test]
fn session_start_records_the_estimate_and_the_server_limit() {
    let env = project(10, None);
    let out = session_start(&env);
    assert!(out.status.success());
    let reply = json_of(&out);
    let message = reply["systemMessage"].as_str().unwrap();
    assert!(
        message.contains("12 MCP servers are enabled, over limits.max_mcp_servers 8"),
        "{message}"
    );
    assert!(message.contains("u6, u7, u8, u9 —"), "{message}");
    assert!(message.contains("ctxopt mcp optimize --apply"));

    let records = env.records();
    let consumption = of_type(&records, "token_consumption");
    assert_eq!(consumption.len(), 1);
    assert_eq!(consumption[0]["source"], "estimated");
    let components = consumption[0]["components"].as_object().unwrap();
    assert!(components.contains_key("client"));
    assert!(components.contains_key("mcp:team"));
    assert!(components.contains_key("mcp:u9"));
    let sum: u64 = components.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(consumption[0]["tokens"].as_u64().unwrap(), sum);
    let kept =
        ctxopt::budget::transcript::state_path(&DataDir::of_project(&env.project), "s1").unwrap();
    let kept: Value = serde_json::from_slice(&fs::read(kept).unwrap()).unwrap();
    assert_eq!(
        kept["estimated"], consumption[0]["tokens"],
        "the estimate is kept for the session"
    );
    let violations = of_type(&records, "limit_violation");
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0]["limit"], "max_mcp_servers");
    assert_eq!(violations[0]["value"], 12.0);
    assert_eq!(violations[0]["threshold"], 8.0);
    assert_eq!(violations[0]["mode"], "warn");
    assert!(of_type(&records, "alert").is_empty());
    assert!(of_type(&records, "error").is_empty(), "{records:#?}");

    let state: Value =
        serde_json::from_slice(&fs::read(env.data().join("state/mcp-allowed.json")).unwrap())
            .unwrap();
    assert_eq!(
        state["enabled"][0], "mine",
        "local before project before user"
    );
    assert_eq!(state["enabled"][1], "team");
    assert_eq!(state["enabled"].as_array().unwrap().len(), 12);
}

#[test]
fn over_the_token_limits_alert_s_001_names_the_biggest() {
    let env = project(1, Some(r#"{"limits":{"initial_tokens_warning":1000}}"#));
    write(
        &env.project.join("CLAUDE.md"),
        &"Project notes. ".repeat(2_000),
    );
    let out = session_start(&env);
    let message = json_of(&out)["systemMessage"].as_str().unwrap().to_owned();
    assert!(
        message.contains("over initial_tokens_warning 1000"),
        "{message}"
    );
    assert!(message.contains("Biggest: "), "{message}");
    assert!(message.contains("CLAUDE.md ("), "{message}");
    assert!(message.contains("`ctxopt tokens`"), "{message}");
    let records = env.records();
    let alerts = of_type(&records, "alert");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["id"], "Alert-S-001");
    assert_eq!(alerts[0]["severity"], "P1");
    assert_eq!(alerts[0]["threshold"], 1000.0);
    let violations = of_type(&records, "limit_violation");
    assert_eq!(violations[0]["limit"], "initial_tokens_warning");

    write(
        &env.project.join(".claude/ctxopt.json"),
        r#"{"limits":{"initial_tokens_warning":1000,"initial_tokens_critical":2000}}"#,
    );
    session_start(&env);
    let records = env.records();
    let alerts = of_type(&records, "alert");
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[1]["threshold"], 2000.0);
    assert_eq!(
        of_type(&records, "limit_violation")[1]["limit"],
        "initial_tokens_critical"
    );
}

#[test]
fn pre_tool_use_enforces_the_allowed_set() {
    let env = project(
        3,
        Some(r#"{"limits":{"mode":"enforce","max_mcp_servers":3,"mcp_priority":["u2"]}}"#),
    );
    session_start(&env);
    let out = pre_tool_use(&env, "mcp__u0__read");
    assert!(out.status.success());
    let reply = json_of(&out);
    assert_eq!(reply["hookSpecificOutput"]["permissionDecision"], "deny");
    let reason = reply["hookSpecificOutput"]["permissionDecisionReason"]
        .as_str()
        .unwrap();
    assert!(
        reason.contains("MCP server `u0` is outside the allowed set"),
        "{reason}"
    );
    assert!(reason.contains("): u2, mine, team."), "{reason}");
    assert!(reason.contains("limits.mcp_priority"));
    assert!(reason.contains("ctxopt mcp disable NAME"));

    for allowed in ["mcp__u2__read", "mcp__team__x", "Read", "mcp__unknown__x"] {
        let out = pre_tool_use(&env, allowed);
        assert!(out.stdout.is_empty(), "{allowed}: {}", text(&out));
    }
    let records = env.records();
    let executions = of_type(&records, "hook_execution");
    assert!(
        executions
            .iter()
            .any(|r| r["hook"] == "ctxopt-pre-tool-use" && r["decision"] == "deny")
    );

    write(
        &env.project.join(".claude/ctxopt.json"),
        r#"{"limits":{"max_mcp_servers":3}}"#,
    );
    let out = pre_tool_use(&env, "mcp__u2__read");
    assert!(out.stdout.is_empty(), "warn mode lets it through");
    let records = env.records();
    let last = of_type(&records, "limit_violation").pop().unwrap().clone();
    assert_eq!(last["mode"], "warn");
    assert_eq!(last["limit"], "max_mcp_servers");
}

#[test]
fn list_reports_scope_tools_tokens_and_calls() {
    let env = project(9, None);
    let data = DataDir::of_project(&env.project);
    let mut cached = Cache::new();
    cached.servers.insert(
        "u1".to_owned(),
        Entry {
            config_sha256: cache::config_hash(&json!({"command": "srv1"})),
            checked_at: "2026-11-25T00:00:00.000Z".to_owned(),
            ok: true,
            error: None,
            tool_count: 2,
            tools_chars: 800,
            tool_names: vec!["read".to_owned(), "write".to_owned()],
        },
    );
    cache::save(&data, &cached).unwrap();
    add_tool_use(&env, "mcp__u1__read", 4);
    add_tool_use(&env, "mcp__team__x", 1);

    let out = ctxopt(&env, &["mcp", "list", "--json"]);
    assert_eq!(out.status.code(), Some(1), "11 enabled, over 8");
    let report = json_of(&out);
    assert_eq!(report["enabled"], 11);
    assert_eq!(report["max_mcp_servers"], 8);
    let servers = report["servers"].as_array().unwrap();
    let by_name = |n: &str| servers.iter().find(|s| s["name"] == n).unwrap();
    let u1 = by_name("u1");
    assert_eq!(u1["scope"], "user");
    assert_eq!(u1["transport"], "stdio");
    assert_eq!(u1["tool_count"], 2);
    assert!(u1["tokens"].as_u64().unwrap() > 0);
    assert_eq!(u1["calls"], 4);
    assert_eq!(u1["limit"], "allowed");
    assert_eq!(by_name("u0")["tool_count"], Value::Null);
    assert_eq!(by_name("u0")["tokens"], Value::Null);
    assert_eq!(by_name("team")["calls"], 1);
    assert_eq!(by_name("mine")["scope"], "local");
    assert_eq!(by_name("u8")["limit"], "outside");

    let out = ctxopt(&env, &["mcp", "list"]);
    let table = text(&out);
    assert!(table.contains("11 enabled, limit 8"), "{table}");
    assert!(table.contains("unknown"), "{table}");
    assert!(table.contains("Outside the limit: u6, u7, u8."), "{table}");
}

#[test]
fn disable_and_enable_edit_the_least_invasive_file() {
    let env = project(2, None);
    session_start(&env);
    let claude_json = env.home.join(".claude.json");
    let local = env.project.join(".claude/settings.local.json");

    let out = ctxopt(&env, &["mcp", "disable", "team"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let settings: Value = serde_json::from_slice(&fs::read(&local).unwrap()).unwrap();
    assert_eq!(settings["disabledMcpjsonServers"], json!(["team"]));

    let out = ctxopt(&env, &["mcp", "disable", "u1", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let report = json_of(&out);
    assert_eq!(report["enabled_after"], false);
    assert_eq!(report["edits"][0]["path"], json!(claude_json));
    let value: Value = serde_json::from_slice(&fs::read(&claude_json).unwrap()).unwrap();
    let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["numStartups", "mcpServers", "projects", "userID"]);
    let entry = &value["projects"][env.project.to_string_lossy().as_ref()];
    assert_eq!(entry["disabledMcpServers"], json!(["u1"]));
    assert_eq!(entry["allowedTools"], json!(["Read"]));
    assert_eq!(
        value["mcpServers"]["u1"]["command"], "srv1",
        "the definition stays"
    );

    let audit = fs::read_to_string(env.data().join("audit.log")).unwrap();
    assert_eq!(audit.matches("\"action\":\"mcp-disable\"").count(), 2);

    let out = ctxopt(&env, &["mcp", "list", "--json"]);
    let report = json_of(&out);
    let off: Vec<&str> = report["servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["enabled"] == false)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(off, ["team", "u1"]);

    session_start(&env);
    let audit = fs::read_to_string(env.data().join("audit.log")).unwrap();
    assert!(
        !audit.contains("\"action\":\"drift\""),
        "ctxopt's own writes are not drift: {audit}"
    );

    let out = ctxopt(&env, &["mcp", "enable", "u1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = ctxopt(&env, &["mcp", "enable", "team"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("now enabled"));

    write(
        &env.project.join(".claude/settings.json"),
        r#"{"disabledMcpjsonServers": ["team"]}"#,
    );
    let out = ctxopt(&env, &["mcp", "enable", "team"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a committed toggle still holds it"
    );
    assert!(
        text(&out).contains(".claude/settings.json"),
        "{}",
        text(&out)
    );

    let out = ctxopt(&env, &["mcp", "disable", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch"));
}

#[test]
fn a_file_that_does_not_parse_is_never_rewritten() {
    let env = project(1, None);
    let local = env.project.join(".claude/settings.local.json");
    let broken = "{\"permissions\": {\"allow\": []},}\n";
    write(&local, broken);
    let out = ctxopt(&env, &["mcp", "disable", "team"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed to parse"), "{stderr}");
    assert!(stderr.contains("settings.local.json"), "{stderr}");
    assert!(stderr.contains("left untouched"), "{stderr}");
    assert_eq!(fs::read_to_string(&local).unwrap(), broken);
}

#[test]
fn optimize_proposes_least_used_first_and_applies() {
    let env = project(9, Some(r#"{"limits":{"mcp_priority":["u0"]}}"#));
    for i in 1..9 {
        add_tool_use(&env, &format!("mcp__u{i}__x"), i);
    }
    add_tool_use(&env, "mcp__mine__x", 20);
    add_tool_use(&env, "mcp__team__x", 20);

    let out = ctxopt(&env, &["mcp", "optimize", "--json"]);
    assert_eq!(out.status.code(), Some(1), "servers to disable");
    let report = json_of(&out);
    let plan = &report["plan"];
    let names: Vec<&str> = plan["disable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["u1", "u2", "u3"], "least used first; u0 is kept");
    assert_eq!(plan["disable"][0]["why"], "max_mcp_servers");
    assert_eq!(plan["enabled_before"], 11);
    assert_eq!(plan["enabled_after"], 8);
    assert_eq!(plan["kept_by_priority"], json!(["u0"]));
    assert_eq!(report["applied"], json!([]));
    assert!(!env.project.join(".claude/settings.local.json").exists());

    let out = ctxopt(&env, &["mcp", "optimize", "--apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("`u3` disabled for this project"));
    let out = ctxopt(&env, &["mcp", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out)["enabled"], 8);
    let out = ctxopt(&env, &["mcp", "optimize"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).contains("Nothing to disable."));
}
