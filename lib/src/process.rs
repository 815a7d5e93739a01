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
//! The supervisor of `ctxopt-run` waits here too ([`poll_readable`], [`exit_fd`],
//! [`kill_group`], also the MCP health check's): one thread polling the command's pipes and its exit, instead of helper
//! threads whose start and wake-up cost more than the command they watch.
//!
//! The only `unsafe` in the library: these libc calls, no pointer kept past a call.
#![allow(unsafe_code)]

/// Prepares the process the way the standard library's `main` wrapper would: see the module
/// doc. Call first thing in a `#![no_main]` binary's `main`.
pub fn start() {
    sanitize_standard_fds();
    ignore_sigpipe();
}

/// The program's arguments from the C `main`'s `argc` and `argv`, the program name first.
///
/// A `#![no_main]` binary cannot rely on `std::env::args_os`: it works on glibc, which hands
/// `argc`/`argv` to initialisers, but is empty on musl, where only std's own `main` would
/// have recorded them.
///
/// # Safety
///
/// `argv` must point to `argc` valid NUL-terminated strings, as the C runtime passes to `main`
/// (a null `argv` or a negative `argc` gives no arguments).
#[must_use]
#[allow(clippy::similar_names)] // `argc` and `argv`: C's own names.
pub unsafe fn args(
    argc: std::ffi::c_int,
    argv: *const *const std::ffi::c_char,
) -> Vec<std::ffi::OsString> {
    use std::os::unix::ffi::OsStrExt as _;
    let count = usize::try_from(argc).unwrap_or(0);
    if argv.is_null() {
        return Vec::new();
    }
    (0..count)
        .map_while(|i| {
            // SAFETY: the caller vouches for `argc` entries of `argv`.
            let arg = unsafe { *argv.add(i) };
            // SAFETY: a non-null entry is a NUL-terminated string (the caller's contract).
            (!arg.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(arg) })
        })
        .map(|arg| std::ffi::OsStr::from_bytes(arg.to_bytes()).to_owned())
        .collect()
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

/// Waits until one of `fds` can be read without blocking (data, end of file or an error), at
/// most `timeout`; returns, per descriptor, whether it is ready. Interrupted waits count as a
/// timeout (the caller loops).
#[must_use]
pub fn poll_readable(fds: &[std::os::fd::RawFd], timeout: std::time::Duration) -> Vec<bool> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let millis = i32::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
    let count = libc::nfds_t::try_from(polled.len()).unwrap_or(0);
    // SAFETY: `polled` is a valid array of `count` pollfd for the duration of the call.
    let ready = unsafe { libc::poll(polled.as_mut_ptr(), count, millis) };
    if ready <= 0 {
        return vec![false; fds.len()];
    }
    polled
        .iter()
        .map(|p| p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0)
        .collect()
}

/// A descriptor that becomes readable when process `pid` (a child of this process) exits:
/// a pidfd on Linux 5.3 and later; `None` elsewhere, where the caller polls `try_wait`.
#[must_use]
pub fn exit_fd(pid: u32) -> Option<std::os::fd::OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::FromRawFd as _;
        let pid = libc::pid_t::try_from(pid).ok()?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
        // SAFETY: `fd` was just returned by pidfd_open and is owned by nobody else.
        Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// The signals ctxopt sends a process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSignal {
    /// SIGTERM: stop, with a chance to clean up.
    Term,
    /// SIGKILL.
    Kill,
}

/// Sends `signal` to every process of group `pgid` (`killpg`); whether the kernel accepted
/// it (a group already gone is `false`).
#[must_use]
pub fn kill_group(pgid: u32, signal: GroupSignal) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    let signal = match signal {
        GroupSignal::Term => libc::SIGTERM,
        GroupSignal::Kill => libc::SIGKILL,
    };
    // SAFETY: killpg takes a process group id and a signal number; no memory is involved.
    unsafe { libc::killpg(pgid, signal) == 0 }
}

/// Makes this process (on Linux: this thread) yield the CPU to everything else: `SCHED_IDLE` on
/// Linux, nice 19 elsewhere. For the work a hook starts detached ([`spawn_detached`]'s child does
/// this before `execv`; on Linux x86-64 as the same raw system call): on a small machine the hook that started it — and Claude Code's
/// own start-up — must not wait behind it. Two system calls at most, safe between `fork` and
/// `exec`. Best effort; a failure changes nothing.
pub fn yield_to_foreground() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sched_param is a plain C struct of integers (more fields on musl than on
        // glibc), for which all zeroes is a valid value.
        let param: libc::sched_param = unsafe { std::mem::zeroed() };
        // The system call, not libc's wrapper: musl's `sched_setscheduler` is a stub that
        // returns ENOSYS. SAFETY: `param` is a valid sched_param for the duration of the call;
        // pid 0 is this process.
        if unsafe {
            libc::syscall(
                libc::SYS_sched_setscheduler,
                0,
                libc::SCHED_IDLE,
                &raw const param,
            )
        } == 0
        {
            return;
        }
    }
    // SAFETY: setpriority takes plain integers; who 0 is this process.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
    }
}

/// Starts `program` with `args` detached and does not wait for it: its own process group,
/// stdin, stdout and stderr on `/dev/null` (it holds none of the hook's pipes, which Claude
/// Code waits on), `SCHED_IDLE` (nice 19 elsewhere) from before its first instruction. For the
/// work a hook hands off (the hourly backup, `prune`, the webhook).
///
/// Not `std::process::Command`: glibc's `posix_spawn` makes the hook wait while the child
/// resets every signal handler and execs (≈ 0.3 ms on the benchmark machine), and the child
/// would run at normal priority until its own `main`. On Linux x86-64 the child shares the
/// hook's memory until its `execve` and the hook does not wait for it (the private module
/// `shared`); elsewhere a plain `fork` and `execv`, with only async-signal-safe calls between
/// them. The child is never reaped by the hook: the hook exits right after and init adopts it.
///
/// In a hook process ([`defer_hand_offs`]) the start waits for [`run_hand_offs`], which the
/// runner calls once the records are written, just before the reply: where it is a `fork`, a
/// fork marks every page of the hook copy-on-write, and each page the hook then touches costs a
/// fault (≈ 60 of them, ≈ 0.3 ms, on SessionStart). The checks that can fail are made here, at
/// once.
pub fn spawn_detached(
    program: &std::path::Path,
    arguments: &[&std::ffi::OsStr],
) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt as _;
    let c_string = |s: &std::ffi::OsStr| {
        CString::new(s.as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let owned: Vec<CString> = std::iter::once(c_string(program.as_os_str()))
        .chain(arguments.iter().map(|a| c_string(a)))
        .collect::<Result<_, _>>()?;
    // A missing or non-executable program is this call's error, not a silent child exit.
    // SAFETY: the path is NUL-terminated and outlives the call.
    if unsafe { libc::access(owned[0].as_ptr(), libc::X_OK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if DEFER.load(std::sync::atomic::Ordering::Relaxed)
        && let Ok(mut queue) = DEFERRED.lock()
    {
        queue.push(owned);
        return Ok(());
    }
    fork_exec(&owned)
}

/// Whether [`spawn_detached`] waits for [`run_hand_offs`] (hook processes only).
static DEFER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// The hand-offs waiting for [`run_hand_offs`].
static DEFERRED: std::sync::Mutex<Vec<Vec<std::ffi::CString>>> = std::sync::Mutex::new(Vec::new());

/// From now on, [`spawn_detached`] queues its forks for [`run_hand_offs`]. For the hook
/// binaries, whose runner calls `run_hand_offs` as its last step.
pub fn defer_hand_offs() {
    DEFER.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Starts the queued hand-offs; the failures, as sentences for the hook's stderr line.
#[must_use]
pub fn run_hand_offs() -> Vec<String> {
    let queue = DEFERRED
        .lock()
        .map(|mut q| std::mem::take(&mut *q))
        .unwrap_or_default();
    queue
        .iter()
        .filter_map(|argv| {
            fork_exec(argv).err().map(|err| {
                format!(
                    "could not start {}: {err}",
                    argv.first()
                        .map_or_else(String::new, |p| p.to_string_lossy().into_owned())
                )
            })
        })
        .collect()
}

/// `fork`, then in the child: own process group, `/dev/null` on 0–2, [`yield_to_foreground`],
/// SIGPIPE default, `execv(argv[0], argv)`.
fn fork_exec(owned: &[std::ffi::CString]) -> std::io::Result<()> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    return shared::spawn(owned);
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    fork_and_exec(owned)
}

/// [`fork_exec`] by `fork`, then `execv`.
#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn fork_and_exec(owned: &[std::ffi::CString]) -> std::io::Result<()> {
    let mut argv: Vec<*const libc::c_char> = owned.iter().map(|s| s.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: fork has no preconditions; the child below makes only async-signal-safe calls on
    // memory prepared before the fork, then execs or exits.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => {
            // SAFETY: see above; every pointer was built before the fork and is still valid in
            // the child's copy of the address space.
            unsafe {
                libc::setpgid(0, 0);
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if null >= 0 {
                    for fd in 0..3 {
                        libc::dup2(null, fd);
                    }
                    if null > 2 {
                        libc::close(null);
                    }
                }
                yield_to_foreground();
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::execv(argv[0], argv.as_ptr());
                libc::_exit(127)
            }
        }
        _ => Ok(()),
    }
}

/// [`fork_exec`] on Linux x86-64: `clone(CLONE_VM)` without `CLONE_VFORK`, the child on a stack
/// of its own, making raw system calls until its `execve`.
///
/// Why: a `fork` copies the page tables of everything the hook has touched and makes its pages
/// copy-on-write, and the hook's exit then tears its address space down; `vfork` avoids the
/// copy but makes the hook wait for the child's `execve`. Sharing the memory costs the hook one
/// `clone`, and since the child still holds the address space when the hook exits, the
/// teardown happens in the child's `execve`, off the hook's path (≈ 0.1 ms of a backup-due
/// SessionStart, BENCHMARKS.md).
///
/// What keeps it sound: the child runs only [`shared::child`], which makes `syscall`
/// instructions (no libc call, so no `errno` write into the hook's thread-local storage, no
/// lock, no allocation) on data leaked for it: the argument strings, their pointer array and
/// its stack are never freed, so the hook cannot reuse that memory while the child reads it.
/// The environment is glibc's `environ`, which the hook does not change. Signal dispositions
/// are the child's own copy (no `CLONE_SIGHAND`); a fault in the child kills the child only (a
/// process of its own, no `CLONE_THREAD`).
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod shared {
    use std::ffi::{CString, c_char, c_void};

    unsafe extern "C" {
        /// glibc's environment.
        static environ: *const *const c_char;
    }

    /// What the child needs, leaked for it.
    #[repr(C)]
    struct Spawn {
        argv: *const *const c_char,
        envp: *const *const c_char,
    }

    /// A `struct sigaction` of the kernel (handler, flags, restorer, mask) all zero: `SIG_DFL`.
    static DEFAULT_ACTION: [u64; 4] = [0; 4];
    /// `struct sched_param` with priority 0, as `SCHED_IDLE` requires.
    static IDLE_PARAM: i32 = 0;
    /// Bytes of the child's stack; it makes a handful of calls without locals of any size.
    const STACK: usize = 16 * 1024;

    /// One system call, four arguments; the kernel's return value (`-errno` on failure).
    ///
    /// # Safety
    ///
    /// The arguments must be valid for system call `n`.
    #[inline]
    unsafe fn syscall4(n: libc::c_long, a1: usize, a2: usize, a3: usize, a4: usize) -> i64 {
        let ret: i64;
        // SAFETY: the x86-64 Linux system call convention: number in rax, arguments in rdi,
        // rsi, rdx, r10; rcx and r11 clobbered; no stack use. The caller vouches for the
        // arguments.
        unsafe {
            core::arch::asm!(
                "syscall",
                inlateout("rax") n => ret,
                in("rdi") a1,
                in("rsi") a2,
                in("rdx") a3,
                in("r10") a4,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }

    /// The child: own process group, `/dev/null` on 0–2, `SCHED_IDLE`, `SIGPIPE` default,
    /// `execve`; `exit(127)` when that fails.
    extern "C" fn child(arg: *mut c_void) -> i32 {
        // SAFETY: `arg` is the leaked `Spawn` of `spawn`, valid for the process's life; every
        // pointer passed below is a leaked or static NUL-terminated string, array or struct.
        unsafe {
            let spawn = &*arg.cast::<Spawn>();
            syscall4(libc::SYS_setpgid, 0, 0, 0, 0);
            let at_fdcwd = (libc::AT_FDCWD as isize).cast_unsigned();
            let null = syscall4(
                libc::SYS_openat,
                at_fdcwd,
                c"/dev/null".as_ptr() as usize,
                libc::O_RDWR as usize,
                0,
            );
            if let Ok(null) = usize::try_from(null) {
                for fd in 0..3 {
                    syscall4(libc::SYS_dup2, null, fd, 0, 0);
                }
                if null > 2 {
                    syscall4(libc::SYS_close, null, 0, 0, 0);
                }
            }
            syscall4(
                libc::SYS_sched_setscheduler,
                0,
                libc::SCHED_IDLE as usize,
                (&raw const IDLE_PARAM) as usize,
                0,
            );
            // Idle only now that the hook's pipes are released: Claude Code waits for their
            // end. A task that makes itself idle keeps its CPU until the next scheduler tick
            // (up to 4 ms here): the hook, which may share that CPU, gets it back at once.
            syscall4(libc::SYS_sched_yield, 0, 0, 0, 0);
            syscall4(
                libc::SYS_rt_sigaction,
                libc::SIGPIPE as usize,
                (&raw const DEFAULT_ACTION) as usize,
                0,
                8,
            );
            syscall4(
                libc::SYS_execve,
                *spawn.argv as usize,
                spawn.argv as usize,
                spawn.envp as usize,
                0,
            );
            syscall4(libc::SYS_exit, 127, 0, 0, 0);
        }
        127
    }

    pub(super) fn spawn(owned: &[CString]) -> std::io::Result<()> {
        let strings: &'static [CString] = Vec::leak(owned.to_vec());
        let argv: &'static [*const c_char] = Vec::leak(
            strings
                .iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect(),
        );
        // SAFETY: reading glibc's `environ` pointer; the hook does not change its environment.
        let envp = unsafe { environ };
        let spawn: &'static mut Spawn = Box::leak(Box::new(Spawn {
            argv: argv.as_ptr(),
            envp,
        }));
        let stack: &'static mut [std::mem::MaybeUninit<u8>] =
            Box::leak(Box::new_uninit_slice(STACK));
        let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
        // SAFETY: `child` runs on its own 16-aligned stack and reads only the leaked `spawn`
        // (see the module doc for why sharing the memory is sound).
        let pid = unsafe {
            libc::clone(
                child,
                top as *mut c_void,
                libc::CLONE_VM | libc::SIGCHLD,
                std::ptr::from_mut(spawn).cast(),
            )
        };
        if pid == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn args_come_from_argc_and_argv() {
        let strings = [c"ctxopt-run", c"--", c"/bin/echo", c"a b"];
        let mut argv: Vec<*const std::ffi::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        argv.push(std::ptr::null());
        // SAFETY: `argv` holds 4 NUL-terminated strings and a terminating null.
        let got = unsafe { super::args(4, argv.as_ptr()) };
        assert_eq!(got, ["ctxopt-run", "--", "/bin/echo", "a b"]);
        // SAFETY: as above; fewer than there are, none, and a null argv.
        assert_eq!(unsafe { super::args(1, argv.as_ptr()) }, ["ctxopt-run"]);
        assert!(unsafe { super::args(0, argv.as_ptr()) }.is_empty());
        assert!(unsafe { super::args(-1, argv.as_ptr()) }.is_empty());
        assert!(unsafe { super::args(3, std::ptr::null()) }.is_empty());
    }

    /// On a thread of its own (the policy is per thread on Linux), so the test runner is not
    /// slowed down.
    #[test]
    fn yielding_makes_the_thread_idle_or_nice() {
        std::thread::spawn(|| {
            super::yield_to_foreground();
            #[cfg(target_os = "linux")]
            {
                // The system call: musl's `sched_getscheduler` is a stub (ENOSYS).
                // SAFETY: sched_getscheduler takes a pid; 0 is this thread.
                let policy = unsafe { libc::syscall(libc::SYS_sched_getscheduler, 0) };
                assert_eq!(policy, libc::c_long::from(libc::SCHED_IDLE));
            }
            #[cfg(not(target_os = "linux"))]
            {
                // SAFETY: getpriority takes plain integers.
                let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
                assert_eq!(nice, 19);
            }
        })
        .join()
        .unwrap();
    }
    /// The detached child: its own process group, stdio on /dev/null, idle scheduling — and
    /// the call returns before the child is done.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_detached_child_is_idle_silent_and_on_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let script = format!(
            "sleep 0.2; {{ readlink /proc/$$/fd/2; cut -d' ' -f5,41 /proc/$$/stat; grep SigIgn /proc/$$/status; }} > {}.tmp; mv {0}.tmp {0}",
            out.display()
        );
        let started = std::time::Instant::now();
        super::spawn_detached(
            std::path::Path::new("/bin/sh"),
            &["-c".as_ref(), script.as_ref()],
        )
        .unwrap();
        assert!(started.elapsed() < std::time::Duration::from_millis(150));
        let deadline = started + std::time::Duration::from_secs(10);
        while !out.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&out).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("/dev/null"));
        let fields: Vec<&str> = lines.next().unwrap().split(' ').collect();
        // SAFETY: getpgrp takes nothing.
        let ours = unsafe { libc::getpgrp() };
        assert_ne!(fields[0], ours.to_string(), "its own process group");
        assert_eq!(fields[1], libc::SCHED_IDLE.to_string());
        // SIGPIPE (13) is ignored in this process (the standard library's start-up) and must
        // not stay ignored in the child, which exec'd a program that expects the default.
        let ignored = lines.next().unwrap().split_whitespace().nth(1).unwrap();
        let ignored = u64::from_str_radix(ignored, 16).unwrap();
        assert_eq!(
            ignored & (1 << (libc::SIGPIPE - 1)),
            0,
            "SIGPIPE back to default"
        );
        assert!(super::spawn_detached(std::path::Path::new("/nonexistent/ctxopt"), &[]).is_err());
    }
}

/// Replaces glibc's `_dl_get_origin` in statically linked builds, where glibc's start-up calls
/// it once (`_dl_non_dynamic_init`) to learn the executable's directory, for `$ORIGIN` in the
/// paths of a later `dlopen`: a `readlink("/proc/self/exe")`, ≈ 25 µs per hook process on the
/// benchmark machine (BENCHMARKS.md). ctxopt never `dlopen`s a library by `$ORIGIN`, and glibc's
/// own answer for "unknown" is `(char *) -1`, which this returns: the dynamic loader of a static
/// binary then just does not expand `$ORIGIN`.
///
/// The linker takes this definition instead of libc.a's `dl-origin.o`, which defines nothing
/// else. Should a future glibc pull that object in for another symbol, the static link fails
/// with a duplicate definition and `install/install.sh` falls back to its dynamic build;
/// should it rename the function, this one is simply unused. Dynamic builds never see it.
#[cfg(all(target_os = "linux", target_env = "gnu", target_feature = "crt-static"))]
#[unsafe(no_mangle)]
extern "C" fn _dl_get_origin() -> *const std::ffi::c_char {
    usize::MAX as *const std::ffi::c_char
}
