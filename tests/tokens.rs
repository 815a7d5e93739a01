//! The measured initial tokens (issue 5): `ctxopt-post-tool-use` reads the session transcript
//! until it finds the first main-chain API usage, writes one `token_consumption` record, and
//! every record of the session carries `token_consumption_initial` and `token_source` from then
//! on. The transcript is written asynchronously by the client (OBSERVED.md), so a run that
//! finds nothing yet must leave the reading for the next one.
//!
//! The last test runs the real client (`CTXOPT_CLAUDE_BIN`, see `support::claude`) against the
//! fake API, which decides the usage numbers, so the measured value is checked exactly.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed step is a test failure"
)]

mod support;

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use ctxopt::budget::transcript;
use ctxopt::store::DataDir;
use serde_json::{Value, json};
use support::claude::{self, Claude};
use support::fake_api::{FakeApi, Script, Turn, Usage};
use support::{TestEnv, bin, of_type};

const SESSION: &str = "0b7c1e2a-5d0f-4f51-9f8e-tokens";

fn assistant(id: &str, input: u64, creation: u64, read: u64, sidechain: bool) -> String {
    json!({
        "type": "assistant",
        "uuid": format!("u-{id}"),
        "isSidechain": sidechain,
        "sessionId": SESSION,
        "version": "2.1.331",
        "requestId": format!("req-{id}"),
        "message": {
            "id": id,
            "model": "claude-test",
            "role": "assistant",
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "tool_use",
            "usage": {
                "input_tokens": input,
                "cache_creation_input_tokens": creation,
                "cache_read_input_tokens": read,
                "output_tokens": 1
            }
        }
    })
    .to_string()
        + "\n"
}

fn user(text: &str) -> String {
    json!({"type": "user", "isSidechain": false, "sessionId": SESSION,
           "message": {"role": "user", "content": text}})
    .to_string()
        + "\n"
}

fn append(path: &Path, text: &str) {
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn post(env: &TestEnv, transcript: &Path, event: &str, id: &str) -> Vec<Value> {
    let mut input = json!({
        "session_id": SESSION,
        "transcript_path": transcript,
        "cwd": env.project,
        "hook_event_name": event,
        "tool_name": "Read",
        "tool_input": {"file_path": env.project.join("README.md")},
        "tool_use_id": id,
    });
    if event == "PostToolUse" {
        input["tool_response"] = json!({"type": "text"});
    } else {
        input["error"] = json!("File does not exist.");
        input["is_interrupt"] = json!(false);
    }
    let before = env.records().len();
    let out = env.run_hook("ctxopt-post-tool-use", input.to_string().as_bytes());
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = env.records();
    let run = records[before..].to_vec();
    assert!(
        of_type(&run, "error").is_empty(),
        "a fault was recorded: {run:?}"
    );
    run
}

fn transcript_in(env: &TestEnv) -> PathBuf {
    env.tmp
        .path()
        .join("home/.claude/projects/-p")
        .join(format!("{SESSION}.jsonl"))
}

fn measured(run: &[Value]) -> Vec<u64> {
    of_type(run, "token_consumption")
        .iter()
        .inspect(|r| assert_eq!(r["source"], "measured", "{r}"))
        .map(|r| r["tokens"].as_u64().unwrap())
        .collect()
}

#[test]
fn the_first_main_usage_is_measured_once_and_carried_by_every_later_record() {
    let env = TestEnv::new();
    let transcript = transcript_in(&env);
    fs::create_dir_all(transcript.parent().unwrap()).unwrap();
    append(&transcript, &user("fix the bug"));
    let first = assistant("msg_1", 3, 8655, 15_030, false);
    let (head, tail) = first.split_at(first.len() / 2);
    append(&transcript, &assistant("msg_side", 50, 50, 50, true));
    append(&transcript, head);

    // The response is not (completely) there yet: nothing measured, nothing on the envelope.
    let run = post(&env, &transcript, "PostToolUse", "toolu_1");
    assert!(measured(&run).is_empty(), "{run:?}");
    for record in &run {
        assert!(
            record.get("token_consumption_initial").is_none(),
            "{record}"
        );
        assert!(record.get("token_source").is_none(), "{record}");
    }

    // The rest of the line arrives, with a second content block of the same response.
    append(&transcript, tail);
    append(&transcript, &assistant("msg_1", 3, 8655, 15_030, false));
    append(&transcript, &assistant("msg_2", 1, 500, 23_688, false));
    let run = post(&env, &transcript, "PostToolUse", "toolu_2");
    assert_eq!(measured(&run), [23_688]);
    for record in &run {
        assert_eq!(record["token_consumption_initial"], 23_688, "{record}");
        assert_eq!(record["token_source"], "measured", "{record}");
    }

    // Known now: the transcript is not read for it again, even when it no longer holds it.
    fs::write(&transcript, "garbage\n{\"type\":\"assistant\"\n").unwrap();
    for (event, id) in [
        ("PostToolUseFailure", "toolu_3"),
        ("PostToolUse", "toolu_4"),
    ] {
        let run = post(&env, &transcript, event, id);
        assert!(measured(&run).is_empty(), "measured twice: {run:?}");
        assert!(!run.is_empty());
        for record in &run {
            assert_eq!(record["token_consumption_initial"], 23_688, "{record}");
            assert_eq!(record["token_source"], "measured", "{record}");
        }
    }

    // Other hooks of the session carry it too.
    let out = env.run_hook(
        "ctxopt-pre-tool-use",
        json!({
            "session_id": SESSION,
            "transcript_path": transcript,
            "cwd": env.project,
            "hook_event_name": "PreToolUse",
            "tool_name": "Read",
            "tool_input": {"file_path": env.project.join("README.md")},
            "tool_use_id": "toolu_5",
        })
        .to_string()
        .as_bytes(),
    );
    assert!(out.status.success(), "{out:?}");
    let records = env.records();
    let last = records.last().unwrap();
    assert_eq!(last["hook"], "ctxopt-pre-tool-use");
    assert_eq!(last["token_consumption_initial"], 23_688, "{last}");
    assert_eq!(last["token_source"], "measured", "{last}");
    assert_eq!(of_type(&records, "token_consumption").len(), 1);
}

#[test]
fn the_estimate_is_carried_until_measured_and_the_overhead_is_learned() {
    let env = TestEnv::new();
    let data = DataDir::of_project(&env.project);
    let transcript = env.tmp.path().join(format!("{SESSION}.jsonl"));
    transcript::record_estimate(&data, SESSION, 30_000, 9_000, "full-tools+no-mcp").unwrap();

    let run = post(&env, &transcript, "PostToolUse", "toolu_1");
    assert!(measured(&run).is_empty());
    for record in &run {
        assert_eq!(record["token_consumption_initial"], 30_000, "{record}");
        assert_eq!(record["token_source"], "estimated", "{record}");
    }

    append(&transcript, &user("hi"));
    append(&transcript, &assistant("msg_1", 2, 20_000, 12_000, false));
    let run = post(&env, &transcript, "PostToolUseFailure", "toolu_2");
    assert_eq!(measured(&run), [32_002]);
    for record in &run {
        assert_eq!(record["token_consumption_initial"], 32_002, "{record}");
        assert_eq!(record["token_source"], "measured", "{record}");
    }

    let overhead: Value =
        serde_json::from_slice(&fs::read(env.data().join("budget-overhead.json")).unwrap())
            .unwrap();
    let learned = &overhead["clients"]["2.1.331"]["full-tools+no-mcp"];
    assert_eq!(learned["overhead_tokens"], 23_002, "{overhead}");
    assert_eq!(learned["samples"], 1);
    assert_eq!(learned["last_measured"], 32_002);
    assert_eq!(learned["last_visible"], 9_000);
}

#[test]
fn concurrent_calls_measure_and_learn_once() {
    let env = TestEnv::new();
    let data = DataDir::of_project(&env.project);
    let transcript = env.tmp.path().join(format!("{SESSION}.jsonl"));
    transcript::record_estimate(&data, SESSION, 30_000, 9_000, "full-tools+no-mcp").unwrap();
    append(&transcript, &user("hi"));
    append(&transcript, &assistant("msg_1", 2, 20_000, 12_000, false));
    let children: Vec<_> = (0..8)
        .map(|n| {
            let input = json!({
                "session_id": SESSION,
                "transcript_path": transcript,
                "cwd": env.project,
                "hook_event_name": "PostToolUse",
                "tool_name": "Read",
                "tool_input": {"file_path": env.project.join("README.md")},
                "tool_response": {"type": "text"},
                "tool_use_id": format!("toolu_{n}"),
            });
            let mut child = env
                .command(&bin("ctxopt-post-tool-use"))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.to_string().as_bytes())
                .unwrap();
            child
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(out.stderr.is_empty(), "{out:?}");
    }
    let records = env.records();
    assert_eq!(measured(&records), [32_002]);
    let overhead: Value =
        serde_json::from_slice(&fs::read(env.data().join("budget-overhead.json")).unwrap())
            .unwrap();
    assert_eq!(
        overhead["clients"]["2.1.331"]["full-tools+no-mcp"]["samples"], 1,
        "{overhead}"
    );
}

#[test]
fn a_session_without_a_transcript_records_no_tokens_and_no_fault() {
    let env = TestEnv::new();
    let transcript = env.tmp.path().join("never-written.jsonl");
    let run = post(&env, &transcript, "PostToolUse", "toolu_1");
    assert!(measured(&run).is_empty());
    let run = post(&env, &transcript, "PostToolUse", "toolu_2");
    assert!(measured(&run).is_empty());
    assert!(run.iter().all(|r| r.get("token_source").is_none()));
}

#[test]
fn the_real_client_s_first_usage_is_measured_exactly() {
    let Some(client) = claude::client("the_real_client_s_first_usage_is_measured_exactly") else {
        return;
    };
    let env = TestEnv::new();
    let out = env.run_with(
        {
            let mut cmd = env.command(&bin("ctxopt"));
            cmd.arg("install").arg("--project").arg(&env.project);
            cmd
        },
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let first = Usage {
        input_tokens: 7,
        cache_creation_input_tokens: 21_000,
        cache_read_input_tokens: 4_321,
        output_tokens: 50,
    };
    let later = Usage {
        input_tokens: 1,
        cache_creation_input_tokens: 900,
        cache_read_input_tokens: 25_328,
        output_tokens: 60,
    };
    let echo = |n: u32| {
        Turn::tool(
            &format!("toolu_tokens_{n}"),
            "Bash",
            json!({"command": format!("echo {n}"), "description": "Echo"}),
        )
    };
    let api = FakeApi::start(
        Script::new(vec![
            echo(1).with_usage(first),
            echo(2),
            echo(3),
            echo(4),
            Turn::text("Done."),
        ])
        .with_usage(later),
    );
    let run = Claude::new(client, &env, &api, "Echo four numbers.").run();
    let report = || {
        format!(
            "{}\n--- api ---\n{}\n--- metrics.jsonl ---\n{}",
            run.report(),
            api.report(),
            fs::read_to_string(env.data().join("metrics.jsonl")).unwrap_or_default()
        )
    };
    assert!(run.ok(), "{}", report());
    let records = env.records();
    let consumption = of_type(&records, "token_consumption");
    let measured: Vec<_> = consumption
        .iter()
        .filter(|r| r["source"] == "measured")
        .collect();
    let expected = 7 + 21_000 + 4_321;
    match measured.as_slice() {
        [one] => assert_eq!(one["tokens"], expected, "{}", report()),
        _ => panic!("want one measured record: {}", report()),
    }
    let at = records
        .iter()
        .position(|r| r["type"] == "token_consumption" && r["source"] == "measured")
        .unwrap();
    for record in &records[at..] {
        assert_eq!(record["token_consumption_initial"], expected, "{record}");
        assert_eq!(record["token_source"], "measured", "{record}");
    }

    // SessionStart's estimate was on the records before, and the client's overhead was learned
    // from the two numbers.
    let start = of_type(&records, "session_start");
    assert_eq!(start.len(), 1, "{}", report());
    assert_eq!(start[0]["token_source"], "estimated", "{}", report());
    let overhead: Value =
        serde_json::from_slice(&fs::read(env.data().join("budget-overhead.json")).unwrap())
            .unwrap();
    let learned: Vec<&Value> = overhead["clients"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|variants| variants.as_object().unwrap().values())
        .collect();
    match learned.as_slice() {
        [one] => {
            assert_eq!(one["last_measured"], expected, "{overhead}");
            assert_eq!(one["samples"], 1, "{overhead}");
        }
        _ => panic!("want one learned overhead: {overhead}"),
    }
}
