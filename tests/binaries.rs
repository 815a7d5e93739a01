//! Properties of the built binaries themselves: what they link and how the CLI presents itself.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed step must fail the test at once"
)]

mod support;

use support::{TestEnv, bin};

/// clap stays out of the hook binaries: they start on every tool call, and a clap-based
/// binary pays for it at start-up. Debug builds keep symbol names, so any linked clap code
/// would show up as `clap_builder` in the file.
#[test]
fn hook_binaries_do_not_link_clap() {
    for hook in [
        "ctxopt-session-start",
        "ctxopt-pre-tool-use",
        "ctxopt-post-tool-use",
    ] {
        let bytes = std::fs::read(bin(hook)).unwrap();
        assert!(
            !bytes.windows(12).any(|w| w == b"clap_builder"),
            "{hook} links clap"
        );
    }
    let cli = std::fs::read(bin("ctxopt")).unwrap();
    assert!(
        cli.windows(12).any(|w| w == b"clap_builder"),
        "the check itself must be able to fail"
    );
}

#[test]
fn cli_help_lists_the_commands_and_exit_codes() {
    let env = TestEnv::new();
    let out = env.run_with(
        {
            let mut c = env.command(&bin("ctxopt"));
            c.arg("--help");
            c
        },
        b"",
    );
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for word in [
        "install",
        "uninstall",
        "prune",
        "Exit codes: 0 ok, 1 problems found, 2 could not run",
    ] {
        assert!(help.contains(word), "{help}");
    }
}

#[test]
fn cli_usage_error_exits_2() {
    let env = TestEnv::new();
    let mut cmd = env.command(&bin("ctxopt"));
    cmd.arg("no-such-command");
    let out = env.run_with(cmd, b"");
    assert_eq!(out.status.code(), Some(2));
}

/// A PreToolUse input whose reply is a denial printed on stdout: a Write into the project's
/// settings.
fn deny_input(env: &TestEnv) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "session_id": "s-process-start",
        "transcript_path": env.tmp.path().join("t.jsonl"),
        "cwd": env.project,
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": "Write",
        "tool_use_id": "toolu_process_start",
        "tool_input": {
            "file_path": env.project.join(".claude/settings.json"),
            "content": "{}"
        }
    }))
    .unwrap()
}

/// The hook binaries define their own C `main` (`ctxopt::process`). Like the standard
/// library's, theirs ignores SIGPIPE: a reply written to a pipe whose reader is gone is an
/// error the hook ignores, not a death by signal.
#[test]
fn a_closed_stdout_pipe_does_not_kill_a_hook() {
    use std::os::unix::process::ExitStatusExt as _;
    let env = TestEnv::new();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = env.command(&bin("ctxopt-pre-tool-use"));
    cmd.stdout(writer)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&deny_input(&env)).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), None, "killed by a signal: {out:?}");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let audit = std::fs::read_to_string(env.data().join("audit.log")).unwrap();
    assert!(audit.contains("\"action\":\"deny\""), "{audit}");
}
