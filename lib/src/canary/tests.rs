//! The canary's tests: this file is compiled only as `#[cfg(test)] mod tests;` in `mod.rs`.

#![expect(
    clippy::cast_precision_loss,
    clippy::too_many_lines,
    clippy::type_complexity,
    reason = "tests: small counts, one table of the plan"
)]

use super::*;
use chrono::TimeZone;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

fn file(enabled: bool, percentage: u64) -> CanaryFile {
    CanaryFile {
        enabled,
        percentage,
        duration_minutes: Some(60),
        metrics_threshold: None,
    }
}

fn at(percentage: u64, started: DateTime<Utc>) -> Accepted {
    Accepted {
        enabled: percentage > 0,
        percentage,
        stage_started_at: (percentage > 0).then_some(started),
        ..Accepted::default()
    }
}

fn quiet() -> Environment<'static> {
    Environment {
        slo_target: &|| 0.99,
        restore: &|_| Ok(rollback::Restored::default()),
        notify: &|_| {},
    }
}

fn pass() -> Health {
    Health::Pass(StageNumbers {
        runs: 100,
        ..StageNumbers::default()
    })
}

/// The bucket is the documented "SHA-256 of the id, first 8 bytes big-endian, mod 100".
#[test]
fn the_bucket_is_the_documented_hash() {
    for id in ["0b7c1f00-5f0e-4b7e-9d1a-000000000001", "abc", ""] {
        let hex = sha256_hex(id.as_bytes());
        assert_eq!(
            bucket(id),
            u64::from_str_radix(&hex[..16], 16).unwrap() % 100
        );
    }
    // sha256("abc") = ba7816bf8f01cfea…: 0xba7816bf8f01cfea mod 100.
    assert_eq!(bucket("abc"), 0xba78_16bf_8f01_cfea % 100);
}

#[test]
fn buckets_are_stable_and_shares_match_each_stage() {
    assert_eq!(bucket("abc"), bucket("abc"));
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let ids: Vec<String> = (0..100_000)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            format!(
                "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                rng >> 32,
                rng & 0xffff,
                (rng >> 16) & 0xfff,
                (rng >> 28) & 0xfff,
                rng & 0xffff_ffff_ffff
            )
        })
        .collect();
    for stage in STAGES {
        let state = at(stage, t0());
        let canary = ids
            .iter()
            .filter(|id| state.cohort(id) == Cohort::Canary)
            .count();
        let share = canary as f64 * 100.0 / ids.len() as f64;
        assert!(
            (share - stage as f64).abs() <= 1.0,
            "stage {stage}%: {share:.2}% canary"
        );
    }
    // A canary session at 10% stays in at 50%.
    let ten = at(10, t0());
    let fifty = at(50, t0());
    for id in &ids {
        if ten.cohort(id) == Cohort::Canary {
            assert_eq!(fifty.cohort(id), Cohort::Canary, "{id}");
        }
    }
    assert_eq!(Accepted::default().cohort("x"), Cohort::Stable);
}

#[test]
fn the_plan_table() {
    let later = t0() + Duration::minutes(61);
    let early = t0() + Duration::minutes(10);
    let inconclusive = || Health::Inconclusive(StageNumbers::default());
    let failing = || Health::Fail(StageNumbers::default(), String::from("error rate 5% > 1%"));
    let cases: Vec<(
        &str,
        Accepted,
        CanaryFile,
        fn() -> Health,
        DateTime<Utc>,
        Result<Transition, &str>,
    )> = vec![
        (
            "start",
            Accepted::default(),
            file(true, 10),
            pass,
            t0(),
            Ok(Transition::Start),
        ),
        (
            "start skipping",
            Accepted::default(),
            file(true, 50),
            pass,
            t0(),
            Err("starts at 10%"),
        ),
        (
            "promote",
            at(10, t0()),
            file(true, 50),
            pass,
            later,
            Ok(Transition::Promote { from: 10, to: 50 }),
        ),
        (
            "premature",
            at(10, t0()),
            file(true, 50),
            pass,
            early,
            Err("premature"),
        ),
        (
            "skipped stage",
            at(10, t0()),
            file(true, 100),
            pass,
            later,
            Err("skips a stage"),
        ),
        (
            "out of range",
            at(10, t0()),
            file(true, 150),
            pass,
            later,
            Err("out of range"),
        ),
        (
            "not a stage",
            at(10, t0()),
            file(true, 30),
            pass,
            later,
            Err("skips a stage"),
        ),
        (
            "back a stage",
            at(50, t0()),
            file(true, 10),
            pass,
            later,
            Err("abort instead"),
        ),
        (
            "inconclusive",
            at(10, t0()),
            file(true, 50),
            inconclusive,
            later,
            Err("inconclusive"),
        ),
        (
            "failing",
            at(10, t0()),
            file(true, 50),
            failing,
            later,
            Err("not healthy"),
        ),
        (
            "abort early",
            at(50, t0()),
            file(false, 50),
            pass,
            early,
            Ok(Transition::Abort),
        ),
        (
            "abort to 0",
            at(10, t0()),
            file(true, 0),
            pass,
            early,
            Ok(Transition::Abort),
        ),
        (
            "abort at 100 early",
            at(100, t0()),
            file(false, 100),
            pass,
            early,
            Ok(Transition::Abort),
        ),
        (
            "graduate",
            at(100, t0()),
            file(false, 100),
            pass,
            later,
            Ok(Transition::Graduate),
        ),
        (
            "same",
            at(50, t0()),
            file(true, 50),
            pass,
            early,
            Ok(Transition::Same),
        ),
        (
            "off stays off",
            Accepted::default(),
            file(false, 0),
            pass,
            t0(),
            Ok(Transition::Same),
        ),
        (
            "promote to 100",
            at(50, t0()),
            file(true, 100),
            pass,
            later,
            Ok(Transition::Promote { from: 50, to: 100 }),
        ),
    ];
    for (name, accepted, proposed, health, now, expected) in cases {
        let got = judge(&accepted, &proposed, &health, now);
        match (&got, &expected) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{name}"),
            (Err(why), Err(part)) => assert!(why.contains(part), "{name}: {why}"),
            _ => panic!("{name}: got {got:?}, expected {expected:?}"),
        }
    }
}

fn project() -> (tempfile::TempDir, Paths) {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join(".claude/hooks/data")).unwrap();
    let paths = Paths::of_project(dir.path());
    (dir, paths)
}

#[test]
fn a_file_edited_past_the_plan_is_not_obeyed_and_said_once() {
    let (_dir, paths) = project();
    let session = (0..1000)
        .map(|i| format!("s-{i}"))
        .find(|s| bucket(s) < 10)
        .unwrap();
    fs::write(&paths.file, r#"{"enabled": true, "percentage": 10}"#).unwrap();
    let o = observe(&paths, &session, t0(), &quiet());
    assert_eq!(o.cohort, Cohort::Canary);
    assert_eq!(
        o.system_messages,
        ["ctxopt canary: started at 10% (now 10%)."]
    );
    assert_eq!(load(&paths).stage_started_at, Some(t0()));
    // Unchanged: nothing said.
    assert!(
        observe(&paths, &session, t0(), &quiet())
            .system_messages
            .is_empty()
    );
    // Jumped to 100 at once: refused, the last accepted state stays, said once.
    fs::write(&paths.file, r#"{"enabled": true, "percentage": 100}"#).unwrap();
    let o = observe(
        &paths,
        "stable-session-zz",
        t0() + Duration::minutes(5),
        &quiet(),
    );
    assert_eq!(o.records.len(), 1);
    assert!(
        o.system_messages[0].contains("skips a stage"),
        "{:?}",
        o.system_messages
    );
    assert_eq!(load(&paths).percentage, 10);
    assert!(
        observe(&paths, &session, t0(), &quiet())
            .system_messages
            .is_empty()
    );
    // Abort is always accepted.
    fs::write(&paths.file, r#"{"enabled": false, "percentage": 100}"#).unwrap();
    let o = observe(&paths, &session, t0() + Duration::minutes(6), &quiet());
    assert_eq!(o.cohort, Cohort::Stable);
    assert_eq!(load(&paths).ended.as_deref(), Some("aborted"));
    assert!(!paths.history.exists(), "an abort is not a graduation");
}

#[test]
fn graduation_is_logged_in_the_history() {
    let (_dir, paths) = project();
    save(&paths, &at(100, t0())).unwrap();
    fs::write(&paths.file, r#"{"enabled": false, "percentage": 100}"#).unwrap();
    let o = observe(&paths, "x", t0() + Duration::minutes(61), &quiet());
    assert!(
        o.system_messages[0].contains("graduated"),
        "{:?}",
        o.system_messages
    );
    let history = fs::read_to_string(&paths.history).unwrap();
    assert!(
        history.starts_with("Canary graduated at 2026-11-25T11:01:00Z"),
        "{history}"
    );
    assert_eq!(load(&paths).ended.as_deref(), Some("graduated"));
}

#[test]
fn stage_health_reads_the_canary_cohort_since_the_stage_began() {
    let (_dir, paths) = project();
    let accepted = at(50, t0());
    let canary = (0..1000)
        .map(|i| format!("c-{i}"))
        .find(|s| bucket(s) < 50)
        .unwrap();
    let stable = (0..1000)
        .map(|i| format!("s-{i}"))
        .find(|s| bucket(s) >= 50)
        .unwrap();
    let mut lines = String::new();
    let line = |t: DateTime<Utc>, s: &str, body: &str| {
        format!(
            "{{\"timestamp\":\"{}\",{body},\"session_id\":\"{s}\"}}\n",
            record::timestamp(t)
        )
    };
    // Before the stage: ignored.
    lines.push_str(&line(
        t0() - Duration::minutes(1),
        &canary,
        r#""type":"hook_execution","success":false"#,
    ));
    for i in 0..30 {
        let t = t0() + Duration::seconds(i);
        lines.push_str(&line(
            t,
            &canary,
            r#""type":"hook_execution","success":true"#,
        ));
        lines.push_str(&line(
            t,
            &canary,
            r#""type":"hook_latency","duration_ms":3.5"#,
        ));
        lines.push_str(&line(
            t,
            &stable,
            r#""type":"hook_execution","success":false"#,
        ));
    }
    fs::write(&paths.metrics, &lines).unwrap();
    let health = stage_health(&paths, &accepted, t0() + Duration::minutes(61));
    let Health::Pass(n) = health else {
        panic!("{health:?}")
    };
    assert_eq!(
        (n.runs, n.failures, n.canary_sessions, n.stable_sessions),
        (30, 0, 1, 1)
    );
    assert_eq!(n.latency_p95_ms, Some(3.5));
    lines.push_str(&line(
        t0() + Duration::minutes(2),
        &canary,
        r#""type":"hook_execution","success":false"#,
    ));
    fs::write(&paths.metrics, &lines).unwrap();
    assert!(matches!(
        stage_health(&paths, &accepted, t0() + Duration::minutes(61)),
        Health::Fail(_, why) if why.contains("error rate")
    ));
}

#[test]
fn the_rule_judges_the_resulting_file_of_a_write_and_an_edit() {
    use crate::guard::Exception;
    let (_dir, paths) = project();
    let project = paths.file.parent().unwrap().parent().unwrap().to_path_buf();
    let rule = Rule::new(&project, t0());
    let write = |content: &str| ToolCall {
        tool_name: String::from("Write"),
        tool_input: serde_json::json!({"file_path": paths.file, "content": content}),
        tool_use_id: None,
    };
    assert!(
        rule.decide(&write(r#"{"enabled": true, "percentage": 10}"#))
            .is_ok()
    );
    let refused = rule
        .decide(&write(r#"{"enabled": true, "percentage": 100}"#))
        .unwrap_err();
    assert!(
        refused.contains("starts at 10%") && refused.contains("Allowed now: starting at 10%"),
        "{refused}"
    );
    assert!(
        rule.decide(&write("{not json"))
            .unwrap_err()
            .contains("not a valid canary file")
    );
    fs::write(&paths.file, r#"{"enabled": true, "percentage": 10}"#).unwrap();
    save(&paths, &at(10, t0())).unwrap();
    let edit = ToolCall {
        tool_name: String::from("Edit"),
        tool_input: serde_json::json!({"file_path": paths.file, "old_string": "10", "new_string": "100"}),
        tool_use_id: None,
    };
    assert!(rule.decide(&edit).unwrap_err().contains("skips a stage"));
    let abort = ToolCall {
        tool_name: String::from("Edit"),
        tool_input: serde_json::json!({"file_path": paths.file, "old_string": "true", "new_string": "false"}),
        tool_use_id: None,
    };
    assert_eq!(rule.decide(&abort), Ok(String::from("canary: aborted")));
}

mod rollback_tests {
    use super::super::rollback::{self, Rollup};
    use super::*;

    fn canary_numbers(runs: u64, failures: u64, latencies: u64, slow: u64) -> Rollup {
        let mut r = Rollup::default();
        r.cohorts.insert(
            String::from("canary"),
            rollback::CohortNumbers {
                runs,
                failures,
                latencies,
                slow,
                ..rollback::CohortNumbers::default()
            },
        );
        r
    }

    #[test]
    fn each_trigger_and_its_threshold() {
        let a = at(10, t0());
        let none = |r: &Rollup| rollback::crossed(r, &a, &|| 0.99).map(|t| t.name);
        assert_eq!(
            none(&canary_numbers(100, 1, 100, 5)),
            None,
            "1% and 5% are not over"
        );
        assert_eq!(none(&canary_numbers(100, 2, 100, 0)), Some("error_rate"));
        assert_eq!(none(&canary_numbers(100, 0, 100, 6)), Some("latency_p95"));
        assert_eq!(
            none(&canary_numbers(10, 5, 10, 10)),
            None,
            "too few samples for rates"
        );
        let mut r = canary_numbers(0, 0, 0, 0);
        r.criticals = vec![t0(); 3];
        assert_eq!(none(&r), Some("critical_errors"));
        r.criticals.pop();
        assert_eq!(none(&r), None);
        let mut r = canary_numbers(0, 0, 0, 0);
        r.cohorts.get_mut("canary").unwrap().max_estimated = Some(45_000);
        let t = rollback::crossed(&r, &a, &|| 0.99).unwrap();
        assert_eq!(t.name, "initial_tokens_stage");
        assert!(t.message.contains("(estimated)"), "{}", t.message);
        r.cohorts.get_mut("canary").unwrap().max_measured = Some(50_001);
        let t = rollback::crossed(&r, &a, &|| 0.99).unwrap();
        assert_eq!(t.name, "initial_tokens");
        assert!(t.message.contains("(measured)"), "{}", t.message);
        // The error budget with a stricter SLO than the stage's error rate.
        let loose = Accepted {
            error_rate: 0.5,
            ..at(10, t0())
        };
        assert_eq!(
            rollback::crossed(&canary_numbers(100, 2, 100, 0), &loose, &|| 0.99).map(|t| t.name),
            Some("error_budget")
        );
    }

    /// The SLO target (a read of the policy file in the hooks) is asked only when the canary
    /// has failures, and a target outside 0–1 is clamped, not a budget below zero.
    #[test]
    fn the_slo_target_is_asked_only_for_failures() {
        let loose = Accepted {
            error_rate: 0.5,
            ..at(10, t0())
        };
        let asked = std::cell::Cell::new(0);
        let target = || {
            asked.set(asked.get() + 1);
            0.99
        };
        assert_eq!(
            rollback::crossed(&canary_numbers(100, 0, 100, 0), &loose, &target),
            None
        );
        assert_eq!(asked.get(), 0, "no failures: not asked");
        assert_eq!(
            rollback::crossed(&canary_numbers(100, 2, 100, 0), &loose, &target).map(|t| t.name),
            Some("error_budget")
        );
        assert_eq!(asked.get(), 1);
        assert_eq!(
            rollback::crossed(&canary_numbers(100, 1, 100, 0), &loose, &|| 1.5).map(|t| t.name),
            Some("error_budget"),
            "clamped to 1: any failure spends the whole budget"
        );
        assert_eq!(
            rollback::crossed(&canary_numbers(100, 2, 100, 0), &loose, &|| -3.0),
            None,
            "clamped to 0: the budget is every run"
        );
    }

    #[test]
    fn the_rollup_reads_only_new_lines_and_resets_per_stage() {
        let (_dir, paths) = project();
        let a = at(10, t0());
        let canary = (0..1000)
            .map(|i| format!("c-{i}"))
            .find(|s| bucket(s) < 10)
            .unwrap();
        let old = format!(
            "{{\"timestamp\":\"{}\",\"type\":\"hook_execution\",\"success\":false,\"session_id\":\"{canary}\"}}\n",
            record::timestamp(t0() - Duration::minutes(1))
        );
        fs::write(&paths.metrics, &old).unwrap();
        let r = rollback::update(&paths, &a, t0()).unwrap();
        assert_eq!(
            r.canary().runs,
            0,
            "records before the stage are not its own"
        );
        let new = format!(
            "{{\"timestamp\":\"{}\",\"type\":\"hook_execution\",\"success\":false,\"session_id\":\"{canary}\"}}\n{{\"partial",
            record::timestamp(t0() + Duration::seconds(5))
        );
        fs::write(&paths.metrics, format!("{old}{new}")).unwrap();
        let r = rollback::update(&paths, &a, t0()).unwrap();
        assert_eq!((r.canary().runs, r.canary().failures), (1, 1));
        let again = rollback::update(&paths, &a, t0()).unwrap();
        assert_eq!(again.canary().runs, 1, "nothing new, nothing counted twice");
        let next_stage = at(50, t0() + Duration::hours(2));
        let r = rollback::update(&paths, &next_stage, t0()).unwrap();
        assert_eq!(r.canary().runs, 0);
    }

    /// The rollup is a log of states: the last complete line counts (a line being appended,
    /// without its newline yet, does not), a stale line only makes the next run fold again
    /// (never twice), and a long log is rewritten to its last line.
    #[test]
    fn the_rollup_log_keeps_whole_states_and_is_compacted() {
        let (_dir, paths) = project();
        let a = at(10, t0());
        let canary = (0..1000)
            .map(|i| format!("c-{i}"))
            .find(|s| bucket(s) < 10)
            .unwrap();
        let line = |secs: i64, success: bool| {
            format!(
                "{{\"timestamp\":\"{}\",\"type\":\"hook_execution\",\"success\":{success},\"session_id\":\"{canary}\"}}\n",
                record::timestamp(t0() + Duration::seconds(secs))
            )
        };
        let log = paths.state.with_file_name("canary-rollup.jsonl");
        fs::write(&paths.metrics, "").unwrap();
        rollback::update(&paths, &a, t0()).unwrap();
        fs::write(&paths.metrics, line(1, true) + &line(2, false)).unwrap();
        let r = rollback::update(&paths, &a, t0()).unwrap();
        assert_eq!((r.canary().runs, r.canary().failures), (2, 1));
        let states = fs::read_to_string(&log).unwrap();
        assert_eq!(states.lines().count(), 2, "{states}");
        // A stale state appended last (another run that started earlier): folded again from its
        // offset, counted once.
        let first = states.lines().next().unwrap().to_owned();
        fs::write(&log, format!("{states}{first}\n{{\"stage\":")).unwrap();
        let r = rollback::update(&paths, &a, t0()).unwrap();
        assert_eq!((r.canary().runs, r.canary().failures), (2, 1));
        // Past the compaction size the log becomes its last line.
        let filler = format!("{first}\n")
            .repeat(usize::try_from(rollback::ROLLUP_COMPACT_BYTES).unwrap() / first.len() + 1);
        fs::write(&log, filler).unwrap();
        let r = rollback::update(&paths, &a, t0()).unwrap();
        assert_eq!(r.canary().runs, 2);
        assert_eq!(fs::read_to_string(&log).unwrap().lines().count(), 1);
        // Lines of other records, and fields of unexpected types, do not break the fold.
        let odd = format!(
            "{{\"timestamp\":\"{}\",\"type\":\"tool_use\",\"success\":true}}\n{{\"timestamp\":\"{}\",\"type\":\"hook_execution\",\"success\":\"no\",\"session_id\":\"{canary}\"}}\n",
            record::timestamp(t0() + Duration::seconds(3)),
            record::timestamp(t0() + Duration::seconds(4))
        );
        let before = fs::read_to_string(&paths.metrics).unwrap();
        fs::write(&paths.metrics, before + &odd).unwrap();
        let r = rollback::update(&paths, &a, t0()).unwrap();
        assert_eq!((r.canary().runs, r.canary().failures), (3, 1));
    }

    #[test]
    fn one_rollback_however_many_notice() {
        let (_dir, paths) = project();
        fs::write(&paths.file, r#"{"enabled": true, "percentage": 10}"#).unwrap();
        save(&paths, &at(10, t0())).unwrap();
        let trigger = rollback::Trigger {
            name: "critical_errors",
            value: 3.0,
            threshold: 3.0,
            message: String::from("3 Critical errors within 5 minutes"),
        };
        let restore = |_: &str| {
            Ok(rollback::Restored {
                files: vec![String::from(".claude/settings.json")],
                logged: false,
            })
        };
        let first = rollback::roll_back(&paths, &trigger, t0(), &restore).unwrap();
        assert!(first.is_some());
        let second = rollback::roll_back(&paths, &trigger, t0(), &restore).unwrap();
        assert!(second.is_none());
        let log = fs::read_to_string(paths.history.with_file_name("rollback.log")).unwrap();
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(
            log.contains("trigger=automatic (critical_errors value=3")
                && log.contains(".claude/settings.json")
        );
        let state = load(&paths);
        assert!(!state.enabled);
        assert_eq!(state.ended.as_deref(), Some("rolled-back"));
        let file: CanaryFile = serde_json::from_slice(&fs::read(&paths.file).unwrap()).unwrap();
        assert!(!file.enabled);
        assert!(!paths.history.exists(), "a rollback is not a graduation");
    }
}
