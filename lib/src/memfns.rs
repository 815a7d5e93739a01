//! `memcmp`, `bcmp` and `memcpy` for the static musl builds, where musl's are slow for what
//! Rust asks of them.
//!
//! - musl's `memcmp` compares one byte per step. Rust calls it for every comparison of byte
//!   strings: `Ord` and `Eq` of `str`, `[u8]` and `Path` keys, so every insert into a
//!   `BTreeMap<PathBuf, _>`. SessionStart's caches are maps keyed by paths that share a long
//!   prefix (`/home/…/project/.claude/skills/`), and with musl's byte loop `memcmp` was 17 % of
//!   its samples (`perf`, 200 skills; BENCHMARKS.md). [`compare`] takes eight bytes a step.
//! - musl's x86-64 `memcpy` aligns the destination a byte at a time, copies with `rep movsq`,
//!   and the tail a byte at a time, each step a microcoded instruction: slow for the short
//!   copies Rust makes (strings, small structs). [`copy`] copies up to 32 bytes with two
//!   overlapping loads and stores and hands the rest to one `rep movsb` (fast on CPUs with
//!   ERMS/FSRM, and never slower than musl's `rep movsq`).
//!
//! glibc's are vectorised, so only musl builds export these; [`compare`] is tested on every
//! target, [`copy`] on x86-64.
//!
//! In a static link the program's own definition wins: the linker takes an archive member of
//! `libc.a` only for a symbol still undefined. musl's `memcmp.o` and `bcmp.o` define nothing
//! else; its x86-64 `memcpy.o` also defines `__memcpy_fwd` (for `memmove`), so that is defined
//! here too. `bcmp` keeps `memcmp`'s full ordering: the compiler may fold the two identical
//! functions into one symbol.
#![allow(unsafe_code)]
// C's names: `a`, `b`, `n`, `dst`, `src`.
#![allow(clippy::many_single_char_names)]

/// Compares the `n` bytes at `a` and `b` as unsigned bytes, the way C's `memcmp` does:
/// negative, zero or positive as the first differing byte of `a` is less, equal or greater.
///
/// Eight bytes per step, read unaligned and compared as big-endian integers, whose order is
/// the order of their bytes; the rest one byte at a time.
///
/// # Safety
///
/// `a` and `b` must be valid for reads of `n` bytes.
#[must_use]
#[inline]
pub unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: `i + 8 <= n`, and both are valid for `n` bytes (the caller's contract).
        let (x, y) = unsafe {
            (
                a.add(i).cast::<u64>().read_unaligned(),
                b.add(i).cast::<u64>().read_unaligned(),
            )
        };
        if x != y {
            return if u64::from_be(x) < u64::from_be(y) {
                -1
            } else {
                1
            };
        }
        i += 8;
    }
    while i < n {
        // SAFETY: `i < n`, as above.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// Copies `n` bytes from `src` to `dst`, which do not overlap: C's `memcpy`.
///
/// Up to 32 bytes as two overlapping loads and stores of the widest fitting size (no loop,
/// which the compiler could turn back into a `memcpy` call); more with one `rep movsb`.
/// x86-64 only: only musl's x86-64 `memcpy` is replaced.
///
/// # Safety
///
/// `src` must be valid for reads and `dst` for writes of `n` bytes, and the two ranges must
/// not overlap.
#[cfg(target_arch = "x86_64")]
#[inline]
pub unsafe fn copy(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY (every block below): each access is within the first or last `k` bytes of the
    // ranges, with `k <= n`; loads happen before stores, so the overlap of the two halves is
    // harmless; `src` and `dst` are valid and disjoint (the caller's contract).
    unsafe {
        if n <= 16 {
            if n >= 8 {
                let (a, b) = (
                    src.cast::<u64>().read_unaligned(),
                    src.add(n - 8).cast::<u64>().read_unaligned(),
                );
                dst.cast::<u64>().write_unaligned(a);
                dst.add(n - 8).cast::<u64>().write_unaligned(b);
            } else if n >= 4 {
                let (a, b) = (
                    src.cast::<u32>().read_unaligned(),
                    src.add(n - 4).cast::<u32>().read_unaligned(),
                );
                dst.cast::<u32>().write_unaligned(a);
                dst.add(n - 4).cast::<u32>().write_unaligned(b);
            } else if n > 0 {
                let (a, b, c) = (*src, *src.add(n / 2), *src.add(n - 1));
                *dst = a;
                *dst.add(n / 2) = b;
                *dst.add(n - 1) = c;
            }
            return;
        }
        if n <= 32 {
            let (a, b) = (
                src.cast::<u128>().read_unaligned(),
                src.add(n - 16).cast::<u128>().read_unaligned(),
            );
            dst.cast::<u128>().write_unaligned(a);
            dst.add(n - 16).cast::<u128>().write_unaligned(b);
            return;
        }
        copy_long(dst, src, n);
    }
}

/// `copy` of more than 32 bytes: one `rep movsb`.
///
/// # Safety
///
/// As [`copy`].
#[cfg(target_arch = "x86_64")]
#[inline]
unsafe fn copy_long(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: `rep movsb` copies rcx bytes from [rsi] to [rdi], forwards (the direction flag
    // is clear at every function boundary by the ABI); the ranges are valid and disjoint (the
    // caller's contract).
    unsafe {
        core::arch::asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dst => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags),
        );
    }
}

/// C's `memcmp`, replacing musl's (see the module doc).
///
/// # Safety
///
/// `a` and `b` must be valid for reads of `n` bytes.
#[cfg(all(target_os = "linux", target_env = "musl"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(
    a: *const std::ffi::c_void,
    b: *const std::ffi::c_void,
    n: usize,
) -> std::ffi::c_int {
    // SAFETY: forwarded; the caller's contract is the same.
    unsafe { compare(a.cast(), b.cast(), n) }
}

/// C's `bcmp` (zero when equal), which the compiler calls for equality tests.
///
/// # Safety
///
/// `a` and `b` must be valid for reads of `n` bytes.
#[cfg(all(target_os = "linux", target_env = "musl"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(
    a: *const std::ffi::c_void,
    b: *const std::ffi::c_void,
    n: usize,
) -> std::ffi::c_int {
    // SAFETY: forwarded; the caller's contract is the same.
    unsafe { compare(a.cast(), b.cast(), n) }
}

/// C's `memcpy`, replacing musl's x86-64 one (see the module doc).
///
/// # Safety
///
/// `src` must be valid for reads and `dst` for writes of `n` bytes, not overlapping.
#[cfg(all(target_os = "linux", target_env = "musl", target_arch = "x86_64"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(
    dst: *mut std::ffi::c_void,
    src: *const std::ffi::c_void,
    n: usize,
) -> *mut std::ffi::c_void {
    // SAFETY: forwarded; the caller's contract is the same.
    unsafe { copy(dst.cast(), src.cast(), n) };
    dst
}

/// musl's forward copy, which its x86-64 `memmove` calls when the destination starts before
/// the source; defined in musl's `memcpy.o`, so it must be defined here too for the linker to
/// leave that member out. Our `memcpy` copies forwards (`rep movsb`; the short cases load
/// before they store), which is all `memmove` needs of it.
///
/// # Safety
///
/// `src` must be valid for reads and `dst` for writes of `n` bytes; they may overlap only with
/// `dst` before `src`.
#[cfg(all(target_os = "linux", target_env = "musl", target_arch = "x86_64"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __memcpy_fwd(
    dst: *mut std::ffi::c_void,
    src: *const std::ffi::c_void,
    n: usize,
) -> *mut std::ffi::c_void {
    // SAFETY: forwarded; `memcpy` copies forwards (see above).
    unsafe { memcpy(dst, src, n) }
}

#[cfg(test)]
mod tests {
    use super::compare;
    #[cfg(target_arch = "x86_64")]
    use super::copy;
    use proptest::prelude::*;

    fn reference(a: &[u8], b: &[u8]) -> i32 {
        match a.cmp(b) {
            std::cmp::Ordering::Less => -1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => 1,
        }
    }

    fn ours(a: &[u8], b: &[u8]) -> i32 {
        assert_eq!(a.len(), b.len());
        // SAFETY: both slices are valid for their length.
        unsafe { compare(a.as_ptr(), b.as_ptr(), a.len()) }.signum()
    }

    #[test]
    fn every_position_and_both_directions_of_a_difference() {
        for len in 0..40 {
            let a: Vec<u8> = (0..len)
                .map(|i| u8::try_from(i * 7 % 251).unwrap())
                .collect();
            assert_eq!(ours(&a, &a), 0, "len {len}");
            for at in 0..len {
                for (x, y) in [(0x00, 0xff), (0x7f, 0x80), (0x41, 0x42)] {
                    let (mut lo, mut hi) = (a.clone(), a.clone());
                    lo[at] = x;
                    hi[at] = y;
                    // A later byte pulling the other way must not matter.
                    if at + 1 < len {
                        lo[at + 1] = 0xff;
                        hi[at + 1] = 0x00;
                    }
                    assert_eq!(ours(&lo, &hi), -1, "len {len} at {at}");
                    assert_eq!(ours(&hi, &lo), 1, "len {len} at {at}");
                }
            }
        }
    }

    #[test]
    fn unaligned_starts() {
        let buf: Vec<u8> = (0..64u8).collect();
        let mut other = buf.clone();
        other[40] = 0;
        for start in 0..8 {
            assert_eq!(ours(&buf[start..], &buf[start..]), 0);
            assert_eq!(ours(&other[start..], &buf[start..]), -1);
        }
    }

    proptest! {
        #[test]
        fn agrees_with_slice_ordering(a in proptest::collection::vec(any::<u8>(), 0..80),
                                      flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3)) {
            let mut b = a.clone();
            for (at, value) in flips {
                if !b.is_empty() {
                    let at = at % b.len();
                    b[at] = value;
                }
            }
            prop_assert_eq!(ours(&a, &b), reference(&a, &b));
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn copies_every_length_and_offset_exactly() {
        let src: Vec<u8> = (0..300u32)
            .map(|i| u8::try_from(i * 31 % 256).unwrap())
            .collect();
        for len in 0..=260 {
            for offset in [0, 1, 3, 7, 8, 15] {
                let mut dst = vec![0xEEu8; 300];
                // SAFETY: both ranges are within their vectors, which are distinct.
                unsafe { copy(dst.as_mut_ptr().add(offset), src.as_ptr().add(offset), len) };
                assert_eq!(
                    &dst[offset..offset + len],
                    &src[offset..offset + len],
                    "len {len} at {offset}"
                );
                assert!(
                    dst[..offset].iter().all(|&b| b == 0xEE),
                    "before, len {len}"
                );
                assert!(
                    dst[offset + len..].iter().all(|&b| b == 0xEE),
                    "after, len {len}"
                );
            }
        }
    }
}
