//! `ctxopt-run`: runs one of the project's other hook commands with a timeout, retries,
//! per-hook metrics and a circuit breaker. All logic lives in `ctxopt::wrap`.

fn main() -> std::process::ExitCode {
    ctxopt::wrap::run::main()
}
