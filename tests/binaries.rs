//! Properties of the built binaries themselves: what they link and how the CLI presents itself.

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
