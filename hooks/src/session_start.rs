//! `ctxopt-session-start`: Claude Code's hook binary. All logic lives in `ctxopt::hook`.
//!
//! `no_main`: the C `main` below skips the standard library's start-up work that a hook
//! does not need (see `ctxopt::process`); it runs on every tool call.
#![no_main]

use std::ffi::{c_char, c_int};

/// A bump arena: the process lives for one decision (`ctxopt::arena`).
#[global_allocator]
static ALLOC: ctxopt::arena::Arena = ctxopt::arena::Arena::new();

/// The process entry point, called by the C runtime.
#[allow(unsafe_code)] // `no_mangle` exports the C `main`; nothing else is unsafe here.
#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    ctxopt::process::start();
    ctxopt::runner::main(ctxopt::hook::Hook::SessionStart).into()
}
