//! `ctxopt-pre-tool-use`: Claude Code's hook binary. All logic lives in `ctxopt::hook`.

fn main() -> std::process::ExitCode {
    ctxopt::runner::main(ctxopt::hook::Hook::PreToolUse)
}
