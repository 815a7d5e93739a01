//! The context budget end to end with the real Claude Code client (issue 5): the fake Messages
//! API reports a usage computed from the request it actually received (ceil(bytes / 4) of its
//! `system`, `tools` and `messages`), so
//! - the measured `token_consumption_initial` must equal what the API reported, to the token;
//! - the estimate, printed beside the size of what the client really sent, must land within
//!   ±10% of the measured value from the second session of an unchanged project on (real MCP
//!   server, skills, a CLAUDE.md);
//! - a project over the MCP server limit gets the SessionStart message, and in enforce mode a
//!   call to a server beyond the allowed set is refused by the client with ctxopt's reason.
//!
//! The client comes from `CTXOPT_CLAUDE_BIN`, the MCP servers from `CTXOPT_NODE_MODULES`
//! (default `target/ci-node/node_modules`): skipped without them, failed under `CI=true`.

#![expect(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    reason = "test helpers: a failed step is a test failure; token counts far below 2^52"
)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use support::claude::{self, Claude, Run};
use support::fake_api::{FakeApi, Script, Turn, request_usage};
use support::{TestEnv, bin, of_type};

fn node_modules(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("CTXOPT_NODE_MODULES").map_or_else(
        || support::repo_root().join("target/ci-node/node_modules"),
        PathBuf::from,
    );
    let ok = dir
        .join("@modelcontextprotocol/server-memory/dist/index.js")
        .is_file()
        && dir
            .join("@modelcontextprotocol/server-everything/dist/index.js")
            .is_file();
    if ok {
        return Some(dir);
    }
    assert!(
        !claude::in_ci(),
        "{test}: the MCP servers are missing from {} (CI installs them)",
        dir.display()
    );
    eprintln!("{test}: skipped, no MCP servers in {}", dir.display());
    None
}

fn server(modules: &Path, package: &str) -> Value {
    json!({
        "command": "node",
        "args": [modules.join(format!("@modelcontextprotocol/{package}/dist/index.js"))],
    })
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A project with what enters the context: a real MCP server, five skills (one not
/// model-invocable), a command and a CLAUDE.md; ctxopt installed and `mcp check` run.
fn project(env: &TestEnv, servers: &Value, policy: Option<&Value>) {
    write(
        &env.project.join(".mcp.json"),
        &json!({ "mcpServers": servers }).to_string(),
    );
    write(
        &env.project.join(".claude/settings.json"),
        r#"{"enableAllProjectMcpServers": true}"#,
    );
    for i in 0..5 {
        let invocable = if i == 4 {
            "disable-model-invocation: true\n"
        } else {
            ""
        };
        write(
            &env.project
                .join(format!(".claude/skills/skill-{i}/SKILL.md")),
            &format!(
                "---\nname: skill-{i}\ndescription: Helps with task number {i} of the release \
                 checklist, including the changelog and the version bump.\n{invocable}---\n\n\
                 # Skill {i}\n\nSteps.\n"
            ),
        );
    }
    write(
        &env.project.join(".claude/commands/standup.md"),
        "---\ndescription: Write the daily standup note\n---\nSummarise yesterday.\n",
    );
    write(
        &env.project.join("CLAUDE.md"),
        &"# Project rules\n\nUse the release checklist. Keep commits small.\n".repeat(20),
    );
    if let Some(policy) = policy {
        write(
            &env.project.join(".claude/ctxopt.json"),
            &policy.to_string(),
        );
    }
    for args in [vec!["install"], vec!["mcp", "check", "--timeout", "60"]] {
        let mut cmd = env.command(&bin("ctxopt"));
        cmd.args(&args).arg("--project").arg(&env.project);
        let out = env.run_with(cmd, b"");
        assert_eq!(
            out.status.code(),
            Some(0),
            "ctxopt {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn report(env: &TestEnv, run: &Run, api: &FakeApi) -> String {
    format!(
        "{}\n--- hook_execution.log\n{}\n--- metrics\n{:#?}\n--- api\n{}",
        run.report(),
        env.hook_log(),
        env.records(),
        api.report()
    )
}

/// The session's `token_consumption` records: (estimated, measured).
fn tokens(env: &TestEnv, session: &str) -> (Option<u64>, Option<u64>) {
    let records = env.records();
    let of = |source: &str| {
        of_type(&records, "token_consumption")
            .into_iter()
            .filter(|r| r["session_id"] == session && r["source"] == source)
            .map(|r| r["tokens"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    let (estimated, measured) = (of("estimated"), of("measured"));
    assert!(estimated.len() <= 1 && measured.len() <= 1, "{records:#?}");
    (estimated.first().copied(), measured.first().copied())
}

fn session(client: &Path, env: &TestEnv) -> (Run, FakeApi) {
    let api = FakeApi::start(
        Script::new(vec![
            Turn::tool(
                "toolu_budget_1",
                "Bash",
                json!({"command": "echo one", "description": "first"}),
            ),
            Turn::tool(
                "toolu_budget_2",
                "Bash",
                json!({"command": "echo two", "description": "second"}),
            ),
            Turn::text("Done."),
        ])
        .measuring(),
    );
    let run = Claude::new(client.to_path_buf(), env, &api, "Run the two commands.").run();
    (run, api)
}

#[test]
fn measured_tokens_equal_the_api_and_the_second_session_is_estimated_within_ten_percent() {
    let test =
        "measured_tokens_equal_the_api_and_the_second_session_is_estimated_within_ten_percent";
    let Some(client) = claude::client(test) else {
        return;
    };
    let Some(modules) = node_modules(test) else {
        return;
    };
    let env = TestEnv::new();
    project(
        &env,
        &json!({ "memory": server(&modules, "server-memory") }),
        None,
    );
    let mut measured_values = Vec::new();
    for round in 1..=2 {
        let (run, api) = session(&client, &env);
        let picture = || report(&env, &run, &api);
        assert!(
            run.ok(),
            "session {round}: the client failed\n{}",
            picture()
        );
        let session_id = run.session_id().unwrap().to_owned();
        let first = api
            .main_chain()
            .into_iter()
            .find(|r| support::fake_api::assistant_messages(&r.json()) == 0)
            .unwrap_or_else(|| panic!("no first main-chain request\n{}", picture()));
        let sent = request_usage(&first.json()).input_tokens;
        let (estimated, measured) = tokens(&env, &session_id);
        let measured =
            measured.unwrap_or_else(|| panic!("session {round}: nothing measured\n{}", picture()));
        let estimated = estimated
            .unwrap_or_else(|| panic!("session {round}: nothing estimated\n{}", picture()));
        eprintln!(
            "session {round}: the API reported {sent} tokens (ceil(bytes/4) of what the client \
             sent); ctxopt measured {measured}; ctxopt estimated {estimated} at session start \
             ({:+.1}% from what was sent)",
            (estimated as f64 - sent as f64) * 100.0 / sent as f64
        );
        assert_eq!(measured, sent, "session {round}: measured\n{}", picture());
        let records = env.records();
        let later: Vec<_> = records
            .iter()
            .filter(|r| r["session_id"] == session_id.as_str())
            .skip_while(|r| !(r["type"] == "token_consumption" && r["source"] == "measured"))
            .skip(1)
            .collect();
        assert!(
            !later.is_empty(),
            "records after the measurement\n{}",
            picture()
        );
        for r in later {
            assert_eq!(r["token_consumption_initial"], measured, "{r}");
            assert_eq!(r["token_source"], "measured", "{r}");
        }
        // Each tool call's record carries the context size the transcript shows at that call:
        // the usage the API reported for the request that produced it, or — the client writes
        // the transcript asynchronously — for an earlier one.
        let usage_of = |n: usize| {
            api.main_chain()
                .into_iter()
                .map(|r| r.json())
                .find(|b| support::fake_api::assistant_messages(b) == n)
                .map(|b| request_usage(&b).input_tokens)
        };
        let mut seen = 0;
        for (n, id) in ["toolu_budget_1", "toolu_budget_2"].iter().enumerate() {
            let record = records
                .iter()
                .find(|r| r["type"] == "tool_use" && r["tool_use_id"] == *id)
                .unwrap_or_else(|| panic!("no tool_use record for {id}\n{}", picture()));
            if let Some(tokens) = record["context_tokens"].as_u64() {
                assert!(
                    (0..=n).any(|k| usage_of(k) == Some(tokens)),
                    "{id}: {record}\n{}",
                    picture()
                );
                seen += 1;
            }
        }
        assert!(
            seen > 0,
            "no tool call carried its context size\n{}",
            picture()
        );
        if round == 2 {
            let off = (estimated as f64 - measured as f64).abs() / measured as f64;
            assert!(
                off <= 0.10,
                "second session: estimate {estimated} vs measured {measured} ({:.1}% off)\n{}",
                off * 100.0,
                picture()
            );
        }
        measured_values.push(measured);
    }
    eprintln!("measured per session: {measured_values:?}");
}

#[test]
fn over_the_server_limit_the_user_is_told_and_enforce_mode_refuses_the_tool() {
    let test = "over_the_server_limit_the_user_is_told_and_enforce_mode_refuses_the_tool";
    let Some(client) = claude::client(test) else {
        return;
    };
    let Some(modules) = node_modules(test) else {
        return;
    };
    let env = TestEnv::new();
    project(
        &env,
        &json!({
            "memory": server(&modules, "server-memory"),
            "everything": server(&modules, "server-everything"),
        }),
        Some(
            &json!({"limits": {"mode": "enforce", "max_mcp_servers": 1, "mcp_priority": ["memory"]}}),
        ),
    );
    let api = FakeApi::start(Script::new(vec![
        Turn::tool(
            "toolu_beyond",
            "mcp__everything__echo",
            json!({"message": "hello"}),
        ),
        Turn::text("Done."),
    ]));
    let run = Claude::new(client, &env, &api, "Echo hello.")
        .args(["--allowedTools", "Bash,mcp__everything__echo"])
        .run();
    let picture = || report(&env, &run, &api);
    assert!(run.ok(), "the client failed\n{}", picture());
    let start_said = run.hook_responses().iter().any(|e| {
        let event = e.to_string();
        event.contains("SessionStart") && event.contains("everything")
    });
    assert!(
        start_said,
        "SessionStart named the server beyond the limit\n{}",
        picture()
    );
    let records = env.records();
    assert!(
        of_type(&records, "limit_violation")
            .iter()
            .any(|r| r["limit"] == "max_mcp_servers"),
        "{}",
        picture()
    );
    let result = api
        .main_chain()
        .into_iter()
        .map(|r| r.json())
        .find(|body| support::fake_api::assistant_messages(body) == 1)
        .unwrap_or_else(|| panic!("no request after the tool call\n{}", picture()));
    let tool_result = result["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .find(|c| c["type"] == "tool_result" && c["tool_use_id"] == "toolu_beyond")
        .unwrap_or_else(|| panic!("no tool_result for the call\n{}", picture()));
    let answer = tool_result.to_string();
    assert!(
        answer.contains("ctxopt") && answer.contains("everything"),
        "the client refused the call with ctxopt's reason: {answer}\n{}",
        picture()
    );
    assert!(
        !answer.contains("Echo: hello"),
        "the server never ran the tool: {answer}"
    );
}
