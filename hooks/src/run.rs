//! `ctxopt-run`: runs one of the project's other hook commands with a timeout, retries,
//! per-hook metrics and a circuit breaker. All logic lives in `ctxopt::wrap`.
//!
//! `no_main`: the C `main` below skips the standard library's start-up work that the runner
//! does not need (see `ctxopt::process`); it runs on every call of a wrapped hook.
#![no_main]

use std::ffi::{c_char, c_int};

/// A bump arena: the process lives for one decision (`ctxopt::arena`).
#[global_allocator]
static ALLOC: ctxopt::arena::Arena = ctxopt::arena::Arena::new();

/// The process entry point, called by the C runtime. The arguments come from `argv`:
/// `std::env::args_os` would be empty on musl without the standard library's `main`.
#[allow(unsafe_code)] // `no_mangle` exports the C `main`; `argv` is the C runtime's.
#[allow(clippy::similar_names)] // `argc` and `argv`: C's own names.
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    ctxopt::process::start();
    // SAFETY: `argc` and `argv` are what the C runtime passed to `main`.
    let args = unsafe { ctxopt::process::args(argc, argv) };
    ctxopt::wrap::run::main(args).into()
}
