//! The hook binaries' memory allocator: a bump arena for processes that live for one
//! decision, over the system allocator.
//!
//! A hook allocates a few hundred kilobytes and exits; freeing is wasted work. musl's
//! allocator (mallocng), in the static musl builds the installer prefers on Linux, maps and
//! unmaps pages as a hook's small buffers come and go: 27 `mmap` and 23 `munmap` for one
//! PreToolUse run (BENCHMARKS.md). The arena takes every allocation from one zero-initialised
//! static region (in `.bss`: the kernel maps a page of it only when first touched), by moving
//! a pointer:
//! - freeing the most recent allocation gives its bytes back, and growing or shrinking it
//!   (a `String` or `Vec` being built) happens in place;
//! - any other free is a no-op: the process is about to exit;
//! - when the region is full, or for one allocation of more than a quarter of it, the system
//!   allocator takes over, so a hook that reads a big file still works; memory from there
//!   goes back to it.
//!
//! Thread-safe (one atomic offset, compare-and-swap). The hand-off child, which shares the
//! hook's memory (`process::spawn_detached`), allocates nothing. Not for a long-lived process:
//! the `ctxopt` CLI keeps the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The arena's size. Only the pages a run touches cost anything (`.bss`).
pub const ARENA_BYTES: usize = 64 * 1024 * 1024;
/// Allocations bigger than this go to the system allocator directly.
const LARGE: usize = ARENA_BYTES / 4;

#[repr(C, align(4096))]
struct Region(UnsafeCell<[u8; ARENA_BYTES]>);

// SAFETY: the region's bytes are handed out in disjoint ranges, each to one owner; the offset
// that divides them is atomic.
unsafe impl Sync for Region {}

static REGION: Region = Region(UnsafeCell::new([0; ARENA_BYTES]));

/// The bump allocator: declare it `#[global_allocator]` in a hook binary (see the module doc).
pub struct Arena {
    /// Offset of the first free byte of the region.
    top: AtomicUsize,
    /// Offset past the last byte ever handed out: the region beyond is still all zeroes.
    high: AtomicUsize,
}

impl Arena {
    /// An arena with nothing allocated.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            top: AtomicUsize::new(0),
            high: AtomicUsize::new(0),
        }
    }

    fn base() -> usize {
        REGION.0.get() as usize
    }

    /// Whether `ptr` came from the region.
    fn owns(ptr: *mut u8) -> bool {
        let p = ptr as usize;
        p >= Self::base() && p < Self::base() + ARENA_BYTES
    }

    /// Bytes handed out so far (for tests and diagnostics).
    pub fn used(&self) -> usize {
        self.top.load(Ordering::Relaxed)
    }

    /// A block of the region for `layout` (null when it does not fit), and whether its bytes
    /// were never handed out before (still zero).
    fn bump(&self, layout: Layout) -> (*mut u8, bool) {
        if layout.size() > LARGE {
            return (std::ptr::null_mut(), false);
        }
        let base = Self::base();
        let mut top = self.top.load(Ordering::Relaxed);
        loop {
            // Align the absolute address; the region itself is page-aligned.
            let start = (base + top).next_multiple_of(layout.align()) - base;
            let Some(end) = start.checked_add(layout.size()) else {
                return (std::ptr::null_mut(), false);
            };
            if end > ARENA_BYTES {
                return (std::ptr::null_mut(), false);
            }
            match self
                .top
                .compare_exchange_weak(top, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    let fresh = self.high.fetch_max(end, Ordering::Relaxed) <= start;
                    return ((base + start) as *mut u8, fresh);
                }
                Err(now) => top = now,
            }
        }
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every pointer returned is either a fresh, suitably aligned range of the region that
// no other allocation overlaps (the offset only moves past it, or back over it when its owner
// frees it as the most recent allocation), or the system allocator's.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let (ptr, _) = self.bump(layout);
        if ptr.is_null() {
            // SAFETY: forwarded unchanged; `layout` has a non-zero size (GlobalAlloc's contract).
            unsafe { System.alloc(layout) }
        } else {
            ptr
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let (ptr, fresh) = self.bump(layout);
        if ptr.is_null() {
            // SAFETY: as in `alloc`.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // Bytes never handed out are still the zeroes of `.bss` (writing them would only
        // fault their pages in); bytes given back by a free may be reused dirty.
        if !fresh {
            // SAFETY: `ptr` is valid for `layout.size()` bytes, ours alone.
            unsafe { ptr.write_bytes(0, layout.size()) };
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !Self::owns(ptr) {
            // SAFETY: not the region's, so the system allocator's, with this layout.
            unsafe { System.dealloc(ptr, layout) };
            return;
        }
        // The most recent allocation: give its bytes back. Otherwise leave them.
        let start = ptr as usize - Self::base();
        let _ = self.top.compare_exchange(
            start + layout.size(),
            start,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if Self::owns(ptr) {
            let start = ptr as usize - Self::base();
            let old_end = start + layout.size();
            // The most recent allocation grows or shrinks where it is, when it fits.
            if new_size <= LARGE
                && let Some(new_end) = start.checked_add(new_size)
                && new_end <= ARENA_BYTES
                && self
                    .top
                    .compare_exchange(old_end, new_end, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                self.high.fetch_max(new_end, Ordering::Relaxed);
                return ptr;
            }
            if new_size <= layout.size() {
                return ptr;
            }
        }
        // Anywhere else: a new block, the bytes copied, the old one freed.
        // SAFETY: `layout.align()` is a valid alignment and `new_size` is non-zero and does
        // not overflow when rounded up to it (GlobalAlloc::realloc's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as in `alloc`.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size and do not overlap (`new` is
            // a fresh allocation).
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    // The tests use their own `Arena` values over the one shared region, so they run one at a
    // time, and each treats the whole region as handed out before (an earlier test wrote it).
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    const fn used_arena() -> Arena {
        Arena {
            top: AtomicUsize::new(0),
            high: AtomicUsize::new(ARENA_BYTES),
        }
    }

    #[test]
    fn allocations_are_aligned_disjoint_and_the_last_one_is_given_back() {
        let _serial = SERIAL.lock().unwrap();
        let arena = used_arena();
        unsafe {
            let a = arena.alloc(layout(3, 1));
            let b = arena.alloc(layout(16, 16));
            assert_eq!(b as usize % 16, 0);
            assert!(b as usize >= a as usize + 3);
            let used = arena.used();
            let c = arena.alloc(layout(100, 8));
            assert!(c as usize >= b as usize + 16);
            arena.dealloc(c, layout(100, 8));
            assert_eq!(arena.used(), used, "the most recent block is given back");
            arena.dealloc(a, layout(3, 1));
            assert_eq!(arena.used(), used, "an older block is left");
        }
    }

    #[test]
    fn the_last_block_grows_in_place_and_others_move_with_their_bytes() {
        let _serial = SERIAL.lock().unwrap();
        let arena = used_arena();
        unsafe {
            let a = arena.alloc(layout(8, 8));
            a.copy_from_nonoverlapping(b"abcdefgh".as_ptr(), 8);
            let grown = arena.realloc(a, layout(8, 8), 4096);
            assert_eq!(grown, a, "in place");
            let b = arena.alloc(layout(8, 8));
            let moved = arena.realloc(a, layout(4096, 8), 8192);
            assert_ne!(moved, a);
            assert!(moved as usize > b as usize);
            assert_eq!(std::slice::from_raw_parts(moved, 8), b"abcdefgh");
            let zeroed = arena.alloc_zeroed(layout(64, 8));
            assert!(
                std::slice::from_raw_parts(zeroed, 64)
                    .iter()
                    .all(|&x| x == 0)
            );
            // Bytes given back and handed out again are zeroed too.
            let dirty = arena.alloc(layout(64, 8));
            dirty.write_bytes(0xAA, 64);
            arena.dealloc(dirty, layout(64, 8));
            let again = arena.alloc_zeroed(layout(64, 8));
            assert_eq!(again, dirty);
            assert!(
                std::slice::from_raw_parts(again, 64)
                    .iter()
                    .all(|&x| x == 0)
            );
        }
    }

    #[test]
    fn only_bytes_never_handed_out_count_as_fresh() {
        let _serial = SERIAL.lock().unwrap();
        let at = ARENA_BYTES - 4096;
        let arena = Arena {
            top: AtomicUsize::new(at),
            high: AtomicUsize::new(at),
        };
        let (a, fresh) = arena.bump(layout(64, 8));
        assert!(fresh);
        unsafe { arena.dealloc(a, layout(64, 8)) };
        let (b, fresh) = arena.bump(layout(32, 8));
        assert_eq!(a, b);
        assert!(!fresh, "given back and handed out again");
        // Grown in place past the old high-water mark: what follows is not fresh either.
        let grown = unsafe { arena.realloc(b, layout(32, 8), 128) };
        assert_eq!(grown, b);
        unsafe { arena.dealloc(grown, layout(128, 8)) };
        let (c, fresh) = arena.bump(layout(128, 8));
        assert_eq!(c, b);
        assert!(!fresh);
        let (_, fresh) = arena.bump(layout(8, 8));
        assert!(fresh, "past everything handed out so far");
    }

    #[test]
    fn a_large_block_and_a_full_arena_go_to_the_system_allocator() {
        let _serial = SERIAL.lock().unwrap();
        let arena = used_arena();
        unsafe {
            let big = arena.alloc(layout(LARGE + 1, 8));
            assert!(!big.is_null());
            assert!(!Arena::owns(big));
            big.write_bytes(7, LARGE + 1);
            arena.dealloc(big, layout(LARGE + 1, 8));
            // Fill the arena, then one more.
            let full = Arena {
                top: AtomicUsize::new(ARENA_BYTES - 8),
                high: AtomicUsize::new(ARENA_BYTES),
            };
            let last = full.alloc(layout(8, 8));
            assert!(Arena::owns(last));
            let over = full.alloc(layout(16, 8));
            assert!(!over.is_null());
            assert!(!Arena::owns(over));
            // A block of the region that must grow past its end moves out.
            let moved = full.realloc(last, layout(8, 8), 64);
            assert!(!Arena::owns(moved));
            full.dealloc(moved, layout(64, 8));
            full.dealloc(over, layout(16, 8));
        }
    }

    #[test]
    fn threads_get_disjoint_blocks() {
        static SHARED: Arena = used_arena();
        let _serial = SERIAL.lock().unwrap();
        let handles: Vec<_> = (0..4u8)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut blocks = Vec::new();
                    for _ in 0..1000 {
                        let p = unsafe { SHARED.alloc(layout(24, 8)) };
                        unsafe { p.write_bytes(t, 24) };
                        blocks.push(p as usize);
                    }
                    std::thread::yield_now();
                    for &p in &blocks {
                        let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, 24) };
                        assert!(bytes.iter().all(|&b| b == t), "another thread wrote here");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}
