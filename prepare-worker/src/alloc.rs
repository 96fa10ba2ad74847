//! A global allocator that counts live bytes and ends the job process when a limit is
//! crossed, so preparation's memory is bounded by the executor parameters without
//! `RLIMIT_AS` (which breaks wasmtime's virtual memory reservations).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Exit code of a job process that crossed its memory limit.
pub const EXIT_OUT_OF_MEMORY: i32 = 93;

/// The system allocator with a live-byte limit.
pub struct LimitedAllocator {
    live: AtomicUsize,
    limit: AtomicUsize,
}

impl LimitedAllocator {
    /// No limit until [`set_limit`] is called in a job process.
    pub const fn new() -> Self {
        Self {
            live: AtomicUsize::new(0),
            limit: AtomicUsize::new(usize::MAX),
        }
    }

    fn grow(&self, bytes: usize) {
        let live = self.live.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if live > self.limit.load(Ordering::Relaxed) {
            // Allocating, unwinding or logging here could recurse; leave with a code the
            // worker recognises.
            // SAFETY: _exit never returns and is async-signal-safe.
            unsafe { libc::_exit(EXIT_OUT_OF_MEMORY) };
        }
    }
}

/// Sets the live-byte limit; call it in the job process only, where it counts from the
/// bytes already live.
pub fn set_limit(bytes: u64) {
    let allocator = &crate::ALLOCATOR;
    let live = allocator.live.load(Ordering::Relaxed);
    let limit = usize::try_from(bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(live);
    allocator.limit.store(limit, Ordering::Relaxed);
}

// SAFETY: every call forwards to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for LimitedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.grow(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.grow(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.live.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            self.grow(new_size - layout.size());
        } else {
            self.live
                .fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
