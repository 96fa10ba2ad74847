//! The host functions a validation function may import, and stubs for the rest.
//!
//! | import (module `env`) | version | behaviour |
//! |---|---|---|
//! | `ext_allocator_malloc_version_1` | 1 | [`crate::allocator`] |
//! | `ext_allocator_free_version_1` | 1 | [`crate::allocator`] |
//! | `ext_panic_handler_abort_on_panic_version_1` | 1 | ends the call: Invalid with the message |
//! | anything else | — | a stub: calling it ends the job as Internal, naming it |

use wasmtime::{
    AsContext, AsContextMut, Caller, Engine, ExternType, Linker, Memory, Module, StoreContextMut,
    StoreLimits,
};

use crate::allocator::{AllocError, FreeingBump, Heap, PAGE_SIZE};

/// Host functions this host implements.
const SUPPORTED: &[&str] = &[
    "ext_allocator_malloc_version_1",
    "ext_allocator_free_version_1",
    "ext_panic_handler_abort_on_panic_version_1",
];

/// Per-call state the host functions share.
pub struct HostState {
    /// Bounds memory growth to the executor parameters.
    pub limits: StoreLimits,
    /// The instance's memory, once instantiated.
    pub memory: Option<Memory>,
    /// The memory bound in pages.
    pub max_pages: u64,
    /// The guest heap allocator, once instantiated.
    pub allocator: Option<FreeingBump>,
}

/// A host function ended the call. Traps and these are told apart when the call returns.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The guest called an import this host does not implement.
    #[error("call to unsupported host function `{0}`")]
    Unsupported(String),
    /// The guest panicked and said why.
    #[error("guest panicked: {0}")]
    Panic(String),
    /// The allocator refused.
    #[error("allocator: {0}")]
    Allocator(#[from] AllocError),
    /// A pointer or length from the guest is outside its memory.
    #[error("host function argument out of bounds")]
    OutOfBounds,
    /// A host function ran before the instance had its memory and allocator.
    #[error("host function called before instantiation finished")]
    NotReady,
}

/// A linker with every supported host function and a stub for every other function import
/// of `module`.
pub fn linker(engine: &Engine, module: &Module) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    linker.func_wrap("env", "ext_allocator_malloc_version_1", malloc)?;
    linker.func_wrap("env", "ext_allocator_free_version_1", free)?;
    linker.func_wrap(
        "env",
        "ext_panic_handler_abort_on_panic_version_1",
        abort_on_panic,
    )?;
    let mut stubbed = std::collections::HashSet::new();
    for import in module.imports() {
        let ExternType::Func(ty) = import.ty() else {
            continue;
        };
        let supported = import.module() == "env" && SUPPORTED.contains(&import.name());
        // A module may import the same function more than once; link it once.
        if supported || !stubbed.insert((import.module(), import.name())) {
            continue;
        }
        let name = format!("{}:{}", import.module(), import.name());
        linker.func_new(import.module(), import.name(), ty, move |_, _, _| {
            Err(wasmtime::Error::new(HostError::Unsupported(name.clone())))
        })?;
    }
    Ok(linker)
}

fn malloc(mut caller: Caller<'_, HostState>, size: u32) -> wasmtime::Result<u32> {
    with_allocator(&mut caller, |alloc, heap| alloc.allocate(heap, size))
}

fn free(mut caller: Caller<'_, HostState>, ptr: u32) -> wasmtime::Result<()> {
    with_allocator(&mut caller, |alloc, heap| alloc.deallocate(heap, ptr))
}

fn abort_on_panic(caller: Caller<'_, HostState>, message: u64) -> wasmtime::Result<()> {
    let bytes = read_slice(&caller, message)?;
    Err(wasmtime::Error::new(HostError::Panic(
        String::from_utf8_lossy(&bytes).into_owned(),
    )))
}

/// Reads the guest slice named by a packed `ptr | len << 32`.
fn read_slice(caller: &Caller<'_, HostState>, packed: u64) -> Result<Vec<u8>, HostError> {
    let memory = caller.data().memory.ok_or(HostError::NotReady)?;
    let (ptr, len) = (packed as u32 as usize, (packed >> 32) as usize);
    memory
        .data(caller)
        .get(ptr..ptr.saturating_add(len))
        .map(<[u8]>::to_vec)
        .ok_or(HostError::OutOfBounds)
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

    fn max_pages(&self) -> u64 {
        let declared = self.memory.ty(self.store.as_context()).maximum();
        declared.map_or(self.max_pages, |d| d.min(self.max_pages))
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
