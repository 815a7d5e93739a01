//! What the standard library's `main` wrapper does at process start, done by hand for the hook
//! binaries, which define the C `main` themselves (`#![no_main]`).
//!
//! Rust's generated `main` (`lang_start`) also sets up the main thread's stack guard, which
//! on glibc reads and parses `/proc/self/maps`, and a signal stack for the stack-overflow
//! message: about twenty system calls and ≈ 60 µs per process on the benchmark machine
//! (BENCHMARKS.md), paid on every tool call. The hooks keep the two parts that matter to
//! them, here: standard descriptors that are open, and `SIGPIPE` ignored so that a closed
//! stdout is an error to handle, not a death by signal. What they give up is the stack
//! overflow message: an overflow still ends the process (`SIGSEGV`), which Claude Code treats
//! like any other non-blocking hook error.
//!
//! The only `unsafe` in the library: two libc calls with no pointers kept.
#![allow(unsafe_code)]

/// Prepares the process the way the standard library's `main` wrapper would: see the module
/// doc. Call first thing in a `#![no_main]` binary's `main`.
pub fn start() {
    sanitize_standard_fds();
    ignore_sigpipe();
}

/// Opens `/dev/null` on any of descriptors 0–2 that is closed, so that a file opened later can
/// never become stdout or stderr (a reply printed into `metrics.jsonl`).
fn sanitize_standard_fds() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is a valid array of three `pollfd` for the duration of the call, and a
    // zero timeout makes the call return at once.
    let polled = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    if polled == -1 {
        // EINTR or a platform without poll on these fds (the standard library falls back to
        // `fcntl` here); `fcntl(F_GETFD)` tells a closed descriptor by EBADF.
        for fd in 0..3 {
            // SAFETY: F_GETFD on any integer is defined; it reads no memory.
            if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
                open_dev_null();
            }
        }
        return;
    }
    for pfd in fds {
        if pfd.revents & libc::POLLNVAL != 0 {
            open_dev_null();
        }
    }
}

/// Opens `/dev/null` read-write; the kernel gives it the lowest free descriptor, which is the
/// closed standard one being filled.
fn open_dev_null() {
    // SAFETY: the path is a NUL-terminated static string; the descriptor is deliberately
    // leaked, it is the process's stdin, stdout or stderr from now on.
    unsafe {
        libc::open(c"/dev/null".as_ptr(), libc::O_RDWR, 0);
    }
}

/// `SIGPIPE` ignored, as the standard library does: writing to a stdout whose reader is gone
/// returns `EPIPE` (which the hooks ignore) instead of killing the process. Child processes
/// started through `std::process::Command` get the default disposition back.
fn ignore_sigpipe() {
    // SAFETY: installs the predefined SIG_IGN disposition; no handler code runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}
