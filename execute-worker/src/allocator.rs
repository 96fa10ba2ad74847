//! The guest heap allocator behind `ext_allocator_malloc_version_1` and
//! `ext_allocator_free_version_1`: a freeing-bump allocator with the semantics of
//! Polkadot's host, because where an allocation fails decides a verdict.
//!
//! Blocks are powers of two from 8 bytes to 32 MiB (23 size classes), each behind an 8-byte
//! little-endian header. An occupied header has bit 32 set and the size class below it; a
//! free header holds the next free header's address (`u32::MAX` ends the list). Freed blocks
//! go onto a per-class list and are reused first; otherwise the bump pointer advances, and
//! memory grows (doubling, capped at the maximum) when it runs out. Any error poisons the
//! allocator for the rest of the call.

/// Wasm page size.
pub const PAGE_SIZE: u64 = 65_536;
/// The largest single allocation.
pub const MAX_ALLOCATION: u32 = 32 * 1024 * 1024;
/// Header in front of every block.
const HEADER_SIZE: u32 = 8;
/// The smallest block.
const MIN_BLOCK: u32 = 8;
/// Size classes: 8 << 0 ..= 8 << 22 (32 MiB).
const N_ORDERS: usize = 23;
/// Marks the end of a free list.
const NIL: u32 = u32::MAX;
/// Set in an occupied block's header.
const OCCUPIED: u64 = 1 << 32;
/// Memory a 32-bit Wasm module can address, in pages.
const MAX_WASM_PAGES: u64 = 65_536;

/// Why an allocation or free failed. Every one is the guest's fault and traps.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllocError {
    /// An earlier error poisoned the allocator.
    #[error("the allocator has been poisoned")]
    Poisoned,
    /// Linear memory became smaller between calls.
    #[error("memory shrank")]
    MemoryShrank,
    /// More than [`MAX_ALLOCATION`] bytes were requested.
    #[error("requested allocation of {0} bytes is too large")]
    TooLarge(u32),
    /// Memory cannot grow to fit the allocation.
    #[error("allocator ran out of space")]
    OutOfSpace,
    /// A free of a pointer that is not an allocated block (including a double free).
    #[error("invalid free of {0:#x}")]
    InvalidFree(u32),
    /// A header the allocator relies on was overwritten.
    #[error("corrupt heap: {0}")]
    Corrupt(&'static str),
}

/// The linear memory the allocator manages.
pub trait Heap {
    /// Current size in bytes.
    fn size(&self) -> u64;
    /// The most pages memory may grow to.
    fn max_pages(&self) -> u64;
    /// Reads a little-endian u64, or `None` if out of bounds.
    fn read_u64(&self, at: u32) -> Option<u64>;
    /// Writes a little-endian u64; `false` if out of bounds.
    fn write_u64(&mut self, at: u32, value: u64) -> bool;
    /// Grows memory to `pages` pages; `false` if it cannot.
    fn grow_to(&mut self, pages: u64) -> bool;
}

/// Allocator state for one instance.
#[derive(Debug)]
pub struct FreeingBump {
    bumper: u64,
    free_lists: [u32; N_ORDERS],
    allocated: u64,
    last_memory_size: u64,
    poisoned: bool,
}

impl FreeingBump {
    /// An allocator whose heap starts at `heap_base` (the guest's `__heap_base`), rounded up
    /// to 8 bytes.
    pub fn new(heap_base: u32) -> Self {
        Self {
            bumper: u64::from(heap_base).next_multiple_of(u64::from(MIN_BLOCK)),
            free_lists: [NIL; N_ORDERS],
            allocated: 0,
            last_memory_size: 0,
            poisoned: false,
        }
    }

    /// Allocates `size` bytes and returns the block's address.
    pub fn allocate(&mut self, heap: &mut impl Heap, size: u32) -> Result<u32, AllocError> {
        self.guarded(heap, |this, heap| this.try_allocate(heap, size))
    }

    /// Frees the block at `ptr`.
    pub fn deallocate(&mut self, heap: &mut impl Heap, ptr: u32) -> Result<(), AllocError> {
        self.guarded(heap, |this, heap| this.try_deallocate(heap, ptr))
    }

    /// Runs an operation, poisoning the allocator if it fails.
    fn guarded<H: Heap, R>(
        &mut self,
        heap: &mut H,
        op: impl FnOnce(&mut Self, &mut H) -> Result<R, AllocError>,
    ) -> Result<R, AllocError> {
        if self.poisoned {
            return Err(AllocError::Poisoned);
        }
        let result = if heap.size() < self.last_memory_size {
            Err(AllocError::MemoryShrank)
        } else {
            op(self, heap)
        };
        self.last_memory_size = heap.size();
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn try_allocate(&mut self, heap: &mut impl Heap, size: u32) -> Result<u32, AllocError> {
        if size > MAX_ALLOCATION {
            return Err(AllocError::TooLarge(size));
        }
        let block = size.max(MIN_BLOCK).next_power_of_two();
        let order = (block.trailing_zeros() - MIN_BLOCK.trailing_zeros()) as usize;
        let header = match self.free_lists[order] {
            NIL => self.bump(heap, block)?,
            head => {
                if u64::from(head) + u64::from(HEADER_SIZE + block) > heap.size() {
                    return Err(AllocError::Corrupt("free list points outside memory"));
                }
                let word = heap
                    .read_u64(head)
                    .ok_or(AllocError::Corrupt("free list points outside memory"))?;
                if word & OCCUPIED != 0 {
                    return Err(AllocError::Corrupt("free list points to an occupied block"));
                }
                self.free_lists[order] = word as u32;
                head
            }
        };
        if !heap.write_u64(header, OCCUPIED | order as u64) {
            return Err(AllocError::Corrupt("header outside memory"));
        }
        self.allocated += u64::from(HEADER_SIZE + block);
        Ok(header + HEADER_SIZE)
    }

    /// Takes a fresh block from the bump pointer, growing memory if needed.
    fn bump(&mut self, heap: &mut impl Heap, block: u32) -> Result<u32, AllocError> {
        let header = self.bumper;
        let end = header + u64::from(HEADER_SIZE + block);
        if end > heap.size() {
            let current = heap.size() / PAGE_SIZE;
            let max = heap.max_pages().min(MAX_WASM_PAGES);
            let required = end.div_ceil(PAGE_SIZE);
            if current >= max || required > max {
                return Err(AllocError::OutOfSpace);
            }
            if !heap.grow_to((current * 2).min(max).max(required)) {
                return Err(AllocError::OutOfSpace);
            }
        }
        self.bumper = end;
        u32::try_from(header).map_err(|_| AllocError::OutOfSpace)
    }

    fn try_deallocate(&mut self, heap: &mut impl Heap, ptr: u32) -> Result<(), AllocError> {
        let header = ptr
            .checked_sub(HEADER_SIZE)
            .ok_or(AllocError::InvalidFree(ptr))?;
        let word = heap.read_u64(header).ok_or(AllocError::InvalidFree(ptr))?;
        if word & OCCUPIED == 0 {
            return Err(AllocError::InvalidFree(ptr));
        }
        let order = (word as u32) as usize;
        if order >= N_ORDERS {
            return Err(AllocError::Corrupt("invalid size class in header"));
        }
        if !heap.write_u64(header, u64::from(self.free_lists[order])) {
            return Err(AllocError::InvalidFree(ptr));
        }
        self.free_lists[order] = header;
        let block = u64::from(HEADER_SIZE + (MIN_BLOCK << order));
        self.allocated = self
            .allocated
            .checked_sub(block)
            .ok_or(AllocError::Corrupt("more freed than allocated"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A heap backed by a Vec, for testing without wasmtime.
    struct VecHeap {
        bytes: Vec<u8>,
        max_pages: u64,
    }

    impl VecHeap {
        fn new(pages: u64, max_pages: u64) -> Self {
            Self {
                bytes: vec![0; (pages * PAGE_SIZE) as usize],
                max_pages,
            }
        }
    }

    impl Heap for VecHeap {
        fn size(&self) -> u64 {
            self.bytes.len() as u64
        }
        fn max_pages(&self) -> u64 {
            self.max_pages
        }
        fn read_u64(&self, at: u32) -> Option<u64> {
            let at = at as usize;
            let bytes = self.bytes.get(at..at + 8)?;
            Some(u64::from_le_bytes(bytes.try_into().ok()?))
        }
        fn write_u64(&mut self, at: u32, value: u64) -> bool {
            let at = at as usize;
            match self.bytes.get_mut(at..at + 8) {
                Some(slot) => {
                    slot.copy_from_slice(&value.to_le_bytes());
                    true
                }
                None => false,
            }
        }
        fn grow_to(&mut self, pages: u64) -> bool {
            if pages > self.max_pages {
                return false;
            }
            self.bytes.resize((pages * PAGE_SIZE) as usize, 0);
            true
        }
    }

    #[test]
    fn first_allocation_follows_the_aligned_heap_base() {
        let mut heap = VecHeap::new(1, 16);
        let mut alloc = FreeingBump::new(13);
        assert_eq!(alloc.allocate(&mut heap, 1).unwrap(), 16 + 8);
        // The next block starts after the 8-byte header and the 8-byte minimum block.
        assert_eq!(alloc.allocate(&mut heap, 0).unwrap(), 16 + 16 + 8);
    }

    #[test]
    fn sizes_round_to_powers_of_two_and_freed_blocks_are_reused() {
        let mut heap = VecHeap::new(1, 16);
        let mut alloc = FreeingBump::new(0);
        let a = alloc.allocate(&mut heap, 100).unwrap(); // 128-byte block
        let b = alloc.allocate(&mut heap, 100).unwrap();
        assert_eq!(b - a, 128 + 8);
        alloc.deallocate(&mut heap, a).unwrap();
        assert_eq!(
            alloc.allocate(&mut heap, 65).unwrap(),
            a,
            "same class is reused"
        );
        let c = alloc.allocate(&mut heap, 64).unwrap();
        assert_eq!(
            c,
            b + 128 + 8,
            "a smaller class is not served from the 128 list"
        );
    }

    #[test]
    fn memory_grows_by_doubling_up_to_the_maximum() {
        let mut heap = VecHeap::new(1, 3);
        let mut alloc = FreeingBump::new(0);
        alloc.allocate(&mut heap, 40_000).unwrap(); // 64 KiB block + header: needs 2 pages
        assert_eq!(heap.size(), 2 * PAGE_SIZE);
        alloc.allocate(&mut heap, 40_000).unwrap(); // needs 3 pages; doubling capped at 3
        assert_eq!(heap.size(), 3 * PAGE_SIZE);
        assert_eq!(
            alloc.allocate(&mut heap, 40_000),
            Err(AllocError::OutOfSpace)
        );
        assert_eq!(alloc.allocate(&mut heap, 1), Err(AllocError::Poisoned));
    }

    #[test]
    fn too_large_and_double_free_are_errors_that_poison() {
        let mut heap = VecHeap::new(1, 1024);
        let mut alloc = FreeingBump::new(0);
        assert_eq!(
            alloc.allocate(&mut heap, MAX_ALLOCATION + 1),
            Err(AllocError::TooLarge(MAX_ALLOCATION + 1))
        );
        let mut alloc = FreeingBump::new(0);
        let p = alloc.allocate(&mut heap, 8).unwrap();
        alloc.deallocate(&mut heap, p).unwrap();
        assert_eq!(
            alloc.deallocate(&mut heap, p),
            Err(AllocError::InvalidFree(p))
        );
        assert_eq!(alloc.allocate(&mut heap, 8), Err(AllocError::Poisoned));
        let mut alloc = FreeingBump::new(0);
        assert_eq!(
            alloc.deallocate(&mut heap, 4),
            Err(AllocError::InvalidFree(4))
        );
    }

    #[test]
    fn a_shrunk_memory_is_an_error() {
        let mut heap = VecHeap::new(2, 4);
        let mut alloc = FreeingBump::new(0);
        alloc.allocate(&mut heap, 8).unwrap();
        heap.bytes.truncate(PAGE_SIZE as usize);
        assert_eq!(alloc.allocate(&mut heap, 8), Err(AllocError::MemoryShrank));
    }
}
