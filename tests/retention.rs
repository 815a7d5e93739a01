//! Retention (R2.5) through the real binaries: `ctxopt prune` moves old metrics into monthly
//! gzip archives and trims the logs; no record is lost when a prune rotates `metrics.jsonl`
//! while hooks append to it; SessionStart starts a detached prune only when something is due.
//!
//! Archives are read with the system's `gzip -dc`, the way an operator reads them (`zcat`), so
//! the multi-member format is checked against a reader that is not ours.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed step is a test failure"
)]

mod support;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use support::{TestEnv, bin, fixture};

const DAY: Duration = Duration::from_secs(86_400);

/// The record timestamp of `days` ago.
fn stamp(days: u32) -> String {
    ctxopt::record::timestamp((SystemTime::now() - DAY * days).into())
}

/// A metrics line from `days` ago, told apart by `id`.
fn metric(days: u32, id: &str) -> String {
    format!(
        "{{\"timestamp\":\"{}\",\"type\":\"hook_latency\",\"event\":\"PostToolUse\",\"duration_ms\":1.0,\"schema_version\":1,\"session_id\":\"{id}\",\"hook\":\"seed\",\"cohort\":\"stable\"}}\n",
        stamp(days)
    )
}

/// A `hook_execution.log` line from `days` ago.
fn log_line(days: u32, id: &str) -> String {
    format!(
        "{} ctxopt-post-tool-use PostToolUse ok 1.000ms session={id}\n",
        stamp(days)
    )
}

/// The archive of the month `days` ago (the month is the timestamp's `YYYY-MM`).
fn archive_of(env: &TestEnv, days: u32) -> PathBuf {
    env.data()
        .join("archive")
        .join(format!("metrics-{}.jsonl.gz", &stamp(days)[..7]))
}

/// Decompresses every gzip member of `path` with the system's gzip.
fn gunzip(path: &Path) -> String {
    let out = Command::new("gzip").arg("-dc").arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "gzip -dc {}: {:?}",
        path.display(),
        out
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every line of every archive, then every line of `metrics.jsonl`.
fn all_metric_lines(env: &TestEnv) -> Vec<String> {
    let mut lines = Vec::new();
    if let Ok(entries) = fs::read_dir(env.data().join("archive")) {
        for entry in entries {
            lines.extend(gunzip(&entry.unwrap().path()).lines().map(str::to_owned));
        }
    }
    let current = fs::read_to_string(env.data().join("metrics.jsonl")).unwrap_or_default();
    lines.extend(current.lines().map(str::to_owned));
    lines
}

fn write_data(env: &TestEnv, name: &str, content: &str) {
    fs::create_dir_all(env.data()).unwrap();
    fs::write(env.data().join(name), content).unwrap();
}

fn prune(env: &TestEnv, args: &[&str]) -> std::process::Output {
    env.command(&bin("ctxopt"))
        .arg("prune")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn prune_json(env: &TestEnv) -> Value {
    let out = prune(env, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Polls `done` every 20 ms for up to `limit`.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    done()
}

#[test]
fn prune_archives_old_metrics_and_keeps_new_ones() {
    let env = TestEnv::new();
    let old: String = (0..3).map(|i| metric(40, &format!("old{i}"))).collect();
    let new: String = (0..2).map(|i| metric(1, &format!("new{i}"))).collect();
    write_data(&env, "metrics.jsonl", &format!("{old}{new}"));
    let new_log = log_line(1, "new");
    write_data(
        &env,
        "hook_execution.log",
        &format!("{}{new_log}", log_line(8, "old")),
    );

    let report = prune_json(&env);

    let archive = archive_of(&env, 40);
    assert_eq!(gunzip(&archive), old);
    assert_eq!(
        fs::read_to_string(env.data().join("metrics.jsonl")).unwrap(),
        new
    );
    assert_eq!(env.hook_log(), new_log);
    assert_eq!(report["skipped"], false);
    assert_eq!(report["metrics"]["archived"], 3);
    assert_eq!(report["metrics"]["kept"], 2);
    assert_eq!(report["metrics"]["archives"][0]["records"], 3);
    assert_eq!(
        report["metrics"]["archives"][0]["path"],
        archive.display().to_string()
    );
    assert_eq!(report["hook_log"]["dropped"], 1);
    assert_eq!(report["hook_log"]["kept"], 1);

    let again = prune_json(&env);
    assert_eq!(again["metrics"]["archived"], 0);
    assert_eq!(
        gunzip(&archive),
        old,
        "a second prune must not touch the archive"
    );
}

#[test]
fn prune_prints_what_it_did_per_file() {
    let env = TestEnv::new();
    write_data(
        &env,
        "metrics.jsonl",
        &format!("{}{}", metric(40, "a"), metric(1, "b")),
    );

    let out = prune(&env, &[]);

    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("metrics.jsonl: 1 archived, 1 kept"), "{text}");
    assert!(
        text.contains(&format!(
            "archive/metrics-{}.jsonl.gz: +1 records",
            &stamp(40)[..7]
        )),
        "{text}"
    );
    assert!(
        text.contains("hook_execution.log: 0 dropped, 0 kept"),
        "{text}"
    );
}

#[test]
fn prune_quiet_prints_nothing() {
    let env = TestEnv::new();
    write_data(&env, "metrics.jsonl", &metric(40, "a"));
    let out = prune(&env, &["--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    assert!(archive_of(&env, 40).exists());
}

#[test]
fn prune_with_an_unparseable_policy_could_not_run() {
    let env = TestEnv::new();
    let old = metric(40, "a");
    write_data(&env, "metrics.jsonl", &old);
    fs::write(env.project.join(".claude/ctxopt.json"), "{").unwrap();

    let out = prune(&env, &["--json"]);

    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("ctxopt: failed to parse policy file"),
        "{stderr}"
    );
    assert_eq!(
        fs::read_to_string(env.data().join("metrics.jsonl")).unwrap(),
        old,
        "nothing may change when the command could not run"
    );
}

/// How many hook processes append at once, and how many runs each.
const APPENDERS: usize = 16;
const RUNS_EACH: usize = 500;
/// Lines every PostToolUse run appends: `tool_use`, `hook_execution`, `hook_latency`.
const LINES_PER_RUN: usize = 3;
const SEEDED: usize = 200;

#[test]
fn no_record_is_lost_when_prune_rotates_under_concurrent_appends() {
    let env = TestEnv::new();
    // metrics_days 0: every prune archives everything already written, so each one during the
    // run is a real rotation racing the appenders, not a no-op.
    fs::create_dir_all(env.project.join(".claude")).unwrap();
    fs::write(
        env.project.join(".claude/ctxopt.json"),
        r#"{"retention":{"metrics_days":0}}"#,
    )
    .unwrap();
    let seeded: String = (0..SEEDED)
        .map(|i| metric(40, &format!("seed{i}")))
        .collect();
    write_data(&env, "metrics.jsonl", &seeded);
    let seeded_log: String = (0..SEEDED)
        .map(|i| log_line(8, &format!("seed{i}")))
        .collect();
    write_data(&env, "hook_execution.log", &seeded_log);

    let input: Value = serde_json::from_slice(&fixture("hooks/PostToolUse/bash.json")).unwrap();
    let env = Arc::new(env);
    let appending = Arc::new(AtomicBool::new(true));
    let appenders: Vec<_> = (0..APPENDERS)
        .map(|worker| {
            let env = Arc::clone(&env);
            let mut input = input.clone();
            thread::spawn(move || {
                for run in 0..RUNS_EACH {
                    input["session_id"] = Value::from(format!("w{worker}-{run}"));
                    let stdin = serde_json::to_vec(&input).unwrap();
                    let mut child = env
                        .command(&bin("ctxopt-post-tool-use"))
                        .stdin(Stdio::piped())
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap();
                    child.stdin.take().unwrap().write_all(&stdin).unwrap();
                    let out = child.wait_with_output().unwrap();
                    assert!(out.status.success(), "{out:?}");
                    assert!(out.stderr.is_empty(), "hook fault: {out:?}");
                }
            })
        })
        .collect();

    let mut rotations = 0;
    let mut prunes = 0;
    let pruning = {
        let appending = Arc::clone(&appending);
        move || {
            while appending.load(Ordering::SeqCst) {
                let report = prune_json(&env);
                prunes += 1;
                if report["metrics"]["archived"].as_u64().unwrap() > 0 {
                    rotations += 1;
                }
                thread::sleep(Duration::from_millis(50));
            }
            (env, prunes, rotations)
        }
    };
    let pruning = thread::spawn(pruning);
    for appender in appenders {
        appender.join().unwrap();
    }
    appending.store(false, Ordering::SeqCst);
    let (env, prunes, rotations) = pruning.join().unwrap();
    assert!(
        rotations >= 3,
        "only {rotations} of {prunes} prunes rotated metrics.jsonl; the race was not exercised"
    );

    let lines = all_metric_lines(&env);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for line in &lines {
        let record: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"));
        let session = record["session_id"].as_str().unwrap().to_owned();
        *seen.entry(session).or_default() += 1;
    }
    assert_eq!(
        lines.len(),
        SEEDED + APPENDERS * RUNS_EACH * LINES_PER_RUN,
        "lines lost or duplicated"
    );
    for i in 0..SEEDED {
        assert_eq!(seen.get(&format!("seed{i}")), Some(&1), "seed{i}");
    }
    for worker in 0..APPENDERS {
        for run in 0..RUNS_EACH {
            let session = format!("w{worker}-{run}");
            assert_eq!(seen.get(&session), Some(&LINES_PER_RUN), "{session}");
        }
    }

    let log = env.hook_log();
    assert_eq!(
        log.lines().count(),
        APPENDERS * RUNS_EACH,
        "hook log lines lost"
    );
    assert!(
        !log.contains("session=seed"),
        "old hook log lines were not dropped"
    );
}

#[test]
fn session_start_starts_a_prune_when_the_oldest_record_is_due() {
    let env = TestEnv::new();
    let old = metric(40, "old");
    let new = metric(1, "new");
    write_data(&env, "metrics.jsonl", &format!("{old}{new}"));

    let out = env.run_hook(
        "ctxopt-session-start",
        &fixture("hooks/SessionStart/startup.json"),
    );

    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    assert!(env.data().join("state/prune-requested").exists());
    let archive = archive_of(&env, 40);
    let metrics = env.data().join("metrics.jsonl");
    let finished = wait_until(Duration::from_secs(10), || {
        archive.exists()
            && !fs::read_to_string(&metrics).unwrap().contains("\"old\"")
            && prune_lock_is_free(&env)
    });
    assert!(finished, "the detached prune did not run");
    assert_eq!(gunzip(&archive), old);
    let records = env.records();
    assert!(records.iter().any(|r| r["session_id"] == "new"));
    assert!(
        records.iter().any(|r| r["type"] == "session_start"),
        "the hook's own records must survive the prune that raced them"
    );
}

#[test]
fn session_start_does_not_start_a_prune_for_fresh_records() {
    let env = TestEnv::new();
    write_data(&env, "metrics.jsonl", &metric(1, "fresh"));
    write_data(&env, "hook_execution.log", &log_line(1, "fresh"));

    let out = env.run_hook(
        "ctxopt-session-start",
        &fixture("hooks/SessionStart/startup.json"),
    );

    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    assert!(!env.data().join("state/prune-requested").exists());
    assert!(!env.data().join("archive").exists());
}

/// Whether no prune holds `state/prune.lock` (a prune that has not started yet counts as free).
fn prune_lock_is_free(env: &TestEnv) -> bool {
    let Ok(file) = File::options()
        .write(true)
        .open(env.data().join("state/prune.lock"))
    else {
        return true;
    };
    file.try_lock().is_ok()
}
