//! `ext_allocator_*`: the guest heap, served by [`crate::allocator::FreeingBump`] over the
//! instance's memory.

use wasmtime::{AsContext, AsContextMut, Caller, Linker, Memory, StoreContextMut};

use super::{HostError, HostState};
use crate::allocator::{AllocError, FreeingBump, Heap, PAGE_SIZE};

/// Defines the allocator functions.
pub fn register(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "ext_allocator_malloc_version_1", malloc)?;
    linker.func_wrap("env", "ext_allocator_free_version_1", free)?;
    Ok(())
}

fn malloc(mut caller: Caller<'_, HostState>, size: u32) -> wasmtime::Result<u32> {
    with_allocator(&mut caller, |alloc, heap| alloc.allocate(heap, size))
}

fn free(mut caller: Caller<'_, HostState>, ptr: u32) -> wasmtime::Result<()> {
    with_allocator(&mut caller, |alloc, heap| alloc.deallocate(heap, ptr))
}

/// Runs an allocator operation against the caller's memory.
pub fn with_allocator<T: AsContextMut<Data = HostState>, R>(
    mut store: T,
    op: impl FnOnce(&mut FreeingBump, &mut WasmHeap<'_>) -> Result<R, AllocError>,
) -> wasmtime::Result<R> {
    let mut ctx = store.as_context_mut();
    let memory = ctx.data().memory.ok_or(HostError::NotReady)?;
    let max_pages = ctx.data().max_pages;
    let mut allocator = ctx.data_mut().allocator.take().ok_or(HostError::NotReady)?;
    let result = op(
        &mut allocator,
        &mut WasmHeap {
            memory,
            store: ctx.as_context_mut(),
            max_pages,
        },
    );
    ctx.data_mut().allocator = Some(allocator);
    result.map_err(|e| wasmtime::Error::new(HostError::Allocator(e)))
}

/// A wasmtime memory seen through the allocator's [`Heap`] interface.
pub struct WasmHeap<'a> {
    memory: Memory,
    store: StoreContextMut<'a, HostState>,
    max_pages: u64,
}

impl Heap for WasmHeap<'_> {
    fn size(&self) -> u64 {
        self.memory.data_size(self.store.as_context()) as u64
    }

    /// The executor's bound alone, as in Polkadot's host: preparation drops a module's
    /// declared maximum.
    fn max_pages(&self) -> u64 {
        self.max_pages
    }

    fn read_u64(&self, at: u32) -> Option<u64> {
        let at = at as usize;
        let bytes = self.memory.data(self.store.as_context()).get(at..at + 8)?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    }

    fn write_u64(&mut self, at: u32, value: u64) -> bool {
        let at = at as usize;
        match self
            .memory
            .data_mut(self.store.as_context_mut())
            .get_mut(at..at + 8)
        {
            Some(slot) => {
                slot.copy_from_slice(&value.to_le_bytes());
                true
            }
            None => false,
        }
    }

    fn grow_to(&mut self, pages: u64) -> bool {
        let current = self.size() / PAGE_SIZE;
        pages >= current
            && self
                .memory
                .grow(self.store.as_context_mut(), pages - current)
                .is_ok()
    }
}
