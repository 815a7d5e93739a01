//! `ctxopt tokens` and `ctxopt skills` on a temporary HOME and project: every component of
//! the estimate, the MCP cache and tool search, the policy's limits and exit codes, the
//! learned overhead, the runbook's skill counts.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests: a failed step must fail the test at once"
)]

mod support;

use std::fs;
use std::path::Path;
use std::process::Output;

use ctxopt::budget::estimate::{OverheadStore, overhead_variant};
use ctxopt::mcp::cache::{self, Cache, Entry};
use ctxopt::store::DataDir;
use serde_json::{Value, json};
use support::{TestEnv, bin};

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn run(env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = env.command(&bin("ctxopt"));
    cmd.args(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
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

fn row<'a>(report: &'a Value, component: &str) -> &'a Value {
    report["estimate"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["component"] == component)
        .unwrap_or_else(|| panic!("no row {component}"))
}

/// A project with one approved `.mcp.json` server whose tools are in the MCP cache, one
/// skill, one command, one agent and a CLAUDE.md.
fn project() -> TestEnv {
    let env = TestEnv::new();
    write(
        &env.project.join(".mcp.json"),
        r#"{"mcpServers":{"memory":{"command":"node","args":["memory.js"]},"other":{"command":"o"}}}"#,
    );
    write(
        &env.project.join(".claude/settings.local.json"),
        r#"{"enabledMcpjsonServers":["memory"],"disabledMcpjsonServers":["other"]}"#,
    );
    write(
        &env.project.join(".claude/skills/deploy/SKILL.md"),
        "---\ndescription: Deploy the app to production.\n---\nSteps.\n",
    );
    write(
        &env.project.join(".claude/commands/test.md"),
        "Run the tests.\n",
    );
    write(
        &env.home.join(".claude/agents/reviewer.md"),
        "---\nname: reviewer\ndescription: Reviews code.\n---\n",
    );
    write(
        &env.project.join("CLAUDE.md"),
        &"Use two spaces.\n".repeat(100),
    );
    let mut cache = Cache::new();
    let names: Vec<String> = (0..9).map(|i| format!("tool_{i}")).collect();
    cache.servers.insert(
        "memory".into(),
        Entry {
            config_sha256: cache::config_hash(&json!({"command":"node","args":["memory.js"]})),
            checked_at: "2026-11-25T10:00:00.000Z".into(),
            ok: true,
            error: None,
            tool_count: 9,
            tools_chars: 4_000,
            tool_names: names,
        },
    );
    cache::save(&DataDir::of_project(&env.project), &cache).unwrap();
    env
}

#[test]
fn tokens_reports_every_component_with_cached_mcp_tools() {
    let env = project();
    let out = run(
        &env,
        &["tokens", "--json"],
        &[("ENABLE_TOOL_SEARCH", "false")],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_of(&out);
    assert_eq!(report["status"], "ok");
    assert_eq!(report["estimate"]["tool_search"]["mode"], "off");
    assert_eq!(report["estimate"]["tool_search"]["names_only"], false);
    let mcp = row(&report, "mcp-tools");
    assert_eq!(mcp["items"].as_array().unwrap().len(), 1);
    assert_eq!(mcp["items"][0]["name"], "memory");
    assert_eq!(mcp["items"][0]["assumed"], false);
    // 4,000 chars of tools plus `mcp__memory__` on each of 9 names, at 4.36 chars/token.
    assert_eq!(mcp["tokens"], (4_000u64 + 9 * 13) * 100 / 436 + 1);
    assert_eq!(row(&report, "skills")["items"][0]["name"], "deploy");
    assert_eq!(row(&report, "commands")["items"][0]["name"], "test");
    assert_eq!(row(&report, "agents")["items"][0]["name"], "reviewer");
    let memory = row(&report, "memory");
    assert!(
        memory["items"][0]["name"]
            .as_str()
            .unwrap()
            .ends_with("CLAUDE.md")
    );
    let total: u64 = report["estimate"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(report["total_tokens"], total);
    let servers = report["mcp_servers"].as_array().unwrap();
    let other = servers.iter().find(|s| s["name"] == "other").unwrap();
    assert_eq!(other["enabled"], false);
    assert_eq!(
        other["disabled_by"],
        "disabledMcpjsonServers in .claude/settings.local.json"
    );

    let text = run(&env, &["tokens"], &[("ENABLE_TOOL_SEARCH", "false")]);
    let text = String::from_utf8(text.stdout).unwrap();
    for needle in [
        "System prompt + tools",
        "MCP tools",
        "memory",
        "Skills",
        "Custom agents",
        "Memory files",
        "Total",
        "warning 40,000, critical 50,000",
        "MCP servers not loaded: other",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
}

#[test]
fn tool_search_is_on_by_default_and_off_for_another_base_url() {
    let env = project();
    let on = json_of(&run(&env, &["tokens", "--json"], &[]));
    assert_eq!(on["estimate"]["tool_search"]["names_only"], true);
    let names_tokens = row(&on, "mcp-tools")["tokens"].as_u64().unwrap();
    let off = json_of(&run(
        &env,
        &["tokens", "--json"],
        &[("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")],
    ));
    assert_eq!(off["estimate"]["tool_search"]["names_only"], false);
    assert!(row(&off, "mcp-tools")["tokens"].as_u64().unwrap() > 5 * names_tokens);

    write(
        &env.project.join(".claude/settings.json"),
        r#"{"env":{"ENABLE_TOOL_SEARCH":"false"}}"#,
    );
    let from_settings = json_of(&run(&env, &["tokens", "--json"], &[]));
    assert_eq!(
        from_settings["estimate"]["tool_search"]["names_only"],
        false
    );
}

#[test]
fn limits_from_the_policy_set_status_and_exit_code() {
    let env = project();
    let policy = env.project.join(".claude/ctxopt.json");
    write(
        &policy,
        r#"{"limits":{"initial_tokens_warning":1000,"initial_tokens_critical":999999}}"#,
    );
    let out = run(&env, &["tokens", "--json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_of(&out)["status"], "warning");
    write(
        &policy,
        r#"{"limits":{"initial_tokens_warning":1000,"initial_tokens_critical":2000}}"#,
    );
    let out = run(&env, &["tokens"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("OVER THE CRITICAL LIMIT"));
}

#[test]
fn a_learned_overhead_makes_the_estimate_match_the_measured_session() {
    let env = project();
    let first = json_of(&run(&env, &["tokens", "--json"], &[]));
    let visible: u64 = first["estimate"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["component"] != "client")
        .map(|r| r["tokens"].as_u64().unwrap())
        .sum();
    let measured = 26_500;
    let data = DataDir::of_project(&env.project);
    let mut state = OverheadStore::load(&data).unwrap();
    state.learn(
        "2.1.331",
        &overhead_variant(true, true),
        measured,
        visible,
        "2026-11-25T10:00:00.000Z",
    );
    state.save(&data).unwrap();
    let again = json_of(&run(&env, &["tokens", "--json"], &[]));
    let total = again["total_tokens"].as_u64().unwrap();
    assert!(
        total.abs_diff(measured) * 10 <= measured,
        "{total} vs {measured}"
    );
    assert!(
        again["estimate"]["overhead_source"]
            .as_str()
            .unwrap()
            .contains("2.1.331")
    );
    assert_ne!(first["total_tokens"], again["total_tokens"]);
}

#[test]
fn skills_counts_the_listing_and_disable_model_invocation() {
    let env = TestEnv::new();
    for i in 0..200 {
        let hidden = if i % 10 == 0 {
            "disable-model-invocation: true\n"
        } else {
            ""
        };
        let description = if i == 42 {
            "A very long description. ".repeat(20)
        } else {
            format!("Skill {i}.")
        };
        write(
            &env.project.join(format!(".claude/skills/s{i:03}/SKILL.md")),
            &format!("---\ndescription: {description}\n{hidden}---\n"),
        );
    }
    let out = run(&env, &["skills", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let report = json_of(&out);
    assert_eq!(report["skills"], 200);
    assert_eq!(report["disable_model_invocation"], 20);
    assert_eq!(report["listed"], 180);
    assert_eq!(report["biggest"][0]["name"], "s042");
    assert!(report["listing_tokens"].as_u64().unwrap() > 180 * 3);

    let text = String::from_utf8(run(&env, &["skills"], &[]).stdout).unwrap();
    assert!(text.contains("Skills: 200 (0 user, 200 project); 20 with disable-model-invocation"));
    assert!(text.contains("s042"));
}

#[test]
fn a_broken_mcp_json_is_reported_and_the_rest_still_counted() {
    let env = TestEnv::new();
    write(&env.project.join(".mcp.json"), "{ \"mcpServers\": { , } }");
    write(
        &env.home.join(".claude.json"),
        r#"{"mcpServers":{"user-server":{"command":"u"}}}"#,
    );
    let out = run(&env, &["tokens", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let report = json_of(&out);
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0]["path"].as_str().unwrap().ends_with(".mcp.json"));
    assert_eq!(report["mcp_servers"][0]["name"], "user-server");
    assert_eq!(row(&report, "mcp-tools")["items"][0]["assumed"], true);
}
