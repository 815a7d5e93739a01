//! File metadata as the caches and the skills discovery read it ([`Meta`]), and `stat`s
//! relative to an open directory ([`Dir`]).
//!
//! SessionStart `stat`s two files per skill (`SKILL.md`, `skill.json`): 400 calls for 200
//! skills. A full path makes the kernel walk every component each time; `fstatat` from the
//! open skills directory walks two. On the benchmark machine that halves the cost of a call
//! (≈ 2.2 → 1.1 µs, BENCHMARKS.md). The standard library has no `*at` calls, hence libc here.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

/// What ctxopt reads of a file's `stat` (symlinks followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    ctime: i64,
    ctime_nsec: i64,
    ino: u64,
    dev: u64,
    mode: u32,
}

impl Meta {
    /// From the standard library's metadata.
    #[must_use]
    pub fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec(),
            ino: meta.ino(),
            dev: meta.dev(),
            mode: meta.mode(),
        }
    }

    /// `stat` of `path`, following symlinks.
    pub fn path(path: &Path) -> io::Result<Self> {
        std::fs::metadata(path).map(|m| Self::of(&m))
    }

    /// Size in bytes.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Modification time, seconds.
    #[must_use]
    pub fn mtime(&self) -> i64 {
        self.mtime
    }

    /// Modification time, nanoseconds part.
    #[must_use]
    pub fn mtime_nsec(&self) -> i64 {
        self.mtime_nsec
    }

    /// Status change time, seconds.
    #[must_use]
    pub fn ctime(&self) -> i64 {
        self.ctime
    }

    /// Status change time, nanoseconds part.
    #[must_use]
    pub fn ctime_nsec(&self) -> i64 {
        self.ctime_nsec
    }

    /// Inode number.
    #[must_use]
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// Device number.
    #[must_use]
    pub fn dev(&self) -> u64 {
        self.dev
    }

    /// File type and permission bits.
    #[must_use]
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// A regular file.
    #[must_use]
    #[allow(clippy::useless_conversion, reason = "mode_t is u16 on macOS")]
    pub fn is_file(&self) -> bool {
        self.mode & u32::from(libc::S_IFMT) == u32::from(libc::S_IFREG)
    }

    /// A directory.
    #[must_use]
    #[allow(clippy::useless_conversion, reason = "mode_t is u16 on macOS")]
    pub fn is_dir(&self) -> bool {
        self.mode & u32::from(libc::S_IFMT) == u32::from(libc::S_IFDIR)
    }
}

/// An open directory to `stat` files under.
#[derive(Debug)]
pub struct Dir(OwnedFd);

impl Dir {
    /// Opens `path` as a directory; `None` when it is not one or cannot be opened.
    #[must_use]
    pub fn open(path: &Path) -> Option<Self> {
        let path = CString::new(path.as_os_str().as_bytes()).ok()?;
        #[cfg(target_os = "linux")]
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
        #[cfg(not(target_os = "linux"))]
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
        // SAFETY: `path` is NUL-terminated and outlives the call.
        let fd = unsafe { libc::open(path.as_ptr(), flags) };
        // SAFETY: a non-negative `fd` was just returned by open and is owned by nobody else.
        (fd >= 0).then(|| Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// `stat` of `rel` under this directory, following symlinks (as `std::fs::metadata`).
    pub fn stat(&self, rel: &Path) -> io::Result<Meta> {
        let rel = CString::new(rel.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: the descriptor is open, `rel` is NUL-terminated and `st` is writable; both
        // outlive the call.
        if unsafe { libc::fstatat(self.0.as_raw_fd(), rel.as_ptr(), &raw mut st, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Meta {
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime: st.st_mtime,
            mtime_nsec: st.st_mtime_nsec,
            ctime: st.st_ctime,
            ctime_nsec: st.st_ctime_nsec,
            ino: st.st_ino,
            #[allow(clippy::useless_conversion, reason = "dev_t is i32 on macOS")]
            dev: u64::try_from(st.st_dev).unwrap_or(0),
            #[allow(clippy::useless_conversion, reason = "mode_t is u16 on macOS")]
            mode: u32::from(st.st_mode),
        })
    }
}

/// `std::fs::read` without its last `read`: std reads the file's size from `fstat`, then reads
/// once more to see the end. One byte more room than the size makes the first `read` come back
/// short at the end of a regular file, which is the end: one system call fewer per small state
/// file, of which a hook reads several. A file that grew meanwhile is read to its new end.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let size = file
        .metadata()
        .map_or(0, |m| usize::try_from(m.len()).unwrap_or(0));
    let mut buf = vec![0; size + 1];
    let mut filled = 0;
    loop {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if filled < buf.len() {
                    // Short of the room given: the end of a regular file.
                    break;
                }
                buf.resize(buf.len() * 2, 0);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_under_a_dir_is_the_standard_librarys() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("a")).unwrap();
        std::fs::write(tmp.path().join("a/f.md"), "hello").unwrap();
        std::os::unix::fs::symlink("f.md", tmp.path().join("a/link")).unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        for rel in ["a/f.md", "a/link", "a"] {
            let ours = dir.stat(Path::new(rel)).unwrap();
            assert_eq!(ours, Meta::path(&tmp.path().join(rel)).unwrap(), "{rel}");
        }
        assert!(dir.stat(Path::new("a/f.md")).unwrap().is_file());
        assert!(dir.stat(Path::new("a")).unwrap().is_dir());
        let missing = dir.stat(Path::new("a/none")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert!(Dir::open(&tmp.path().join("a/f.md")).is_none());
    }

    #[test]
    fn read_gives_the_whole_file() {
        let tmp = tempfile::tempdir().unwrap();
        for size in [0, 1, 31, 32, 33, 4096, 100_000] {
            let path = tmp.path().join(format!("f{size}"));
            let bytes: Vec<u8> = (0..size)
                .map(|i: usize| u8::try_from(i % 251).unwrap())
                .collect();
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(super::read(&path).unwrap(), bytes, "size {size}");
        }
        let err = super::read(&tmp.path().join("none")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
