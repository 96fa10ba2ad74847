//! The runtime-interface ABI: how arguments and results cross between guest and host.
//!
//! A slice argument is a packed `i64`, `ptr | len << 32`; a fixed-size argument is an `i32`
//! pointer to its bytes. A fixed-size result is written into a block from the guest's own
//! allocator and returned as an `i32` pointer; a variable-size or SCALE-encoded result the
//! same way, returned packed. Any pointer outside memory is an error, which traps.

use wasmtime::{AsContextMut, Caller};

use super::{HostError, HostState, with_allocator};

/// Splits a packed `ptr | len << 32`.
pub fn unpack(packed: u64) -> (u32, u32) {
    (packed as u32, (packed >> 32) as u32)
}

/// Packs a pointer and a length.
pub fn pack(ptr: u32, len: u32) -> u64 {
    u64::from(ptr) | (u64::from(len) << 32)
}

/// Copies `len` bytes at `ptr` out of the guest's memory.
pub fn read(caller: &Caller<'_, HostState>, ptr: u32, len: u32) -> Result<Vec<u8>, HostError> {
    let memory = caller.data().memory.ok_or(HostError::NotReady)?;
    let start = ptr as usize;
    memory
        .data(caller)
        .get(start..start + len as usize)
        .map(<[u8]>::to_vec)
        .ok_or(HostError::OutOfBounds)
}

/// Copies the slice named by a packed `ptr | len << 32`.
pub fn read_slice(caller: &Caller<'_, HostState>, packed: u64) -> Result<Vec<u8>, HostError> {
    let (ptr, len) = unpack(packed);
    read(caller, ptr, len)
}

/// Copies the `N` bytes at `ptr`.
pub fn read_array<const N: usize>(
    caller: &Caller<'_, HostState>,
    ptr: u32,
) -> Result<[u8; N], HostError> {
    let bytes = read(caller, ptr, N as u32)?;
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes);
    Ok(out)
}

/// Places `bytes` in a block from the guest's allocator and returns its address.
pub fn write_new(caller: &mut Caller<'_, HostState>, bytes: &[u8]) -> wasmtime::Result<u32> {
    let len = u32::try_from(bytes.len()).map_err(|_| HostError::OutOfBounds)?;
    let ptr = with_allocator(caller.as_context_mut(), |alloc, heap| {
        alloc.allocate(heap, len)
    })?;
    let memory = caller.data().memory.ok_or(HostError::NotReady)?;
    memory
        .write(caller, ptr as usize, bytes)
        .map_err(|_| HostError::OutOfBounds)?;
    Ok(ptr)
}

/// Places `bytes` like [`write_new`] and returns them packed as `ptr | len << 32`.
pub fn write_new_packed(caller: &mut Caller<'_, HostState>, bytes: &[u8]) -> wasmtime::Result<u64> {
    let ptr = write_new(caller, bytes)?;
    Ok(pack(ptr, bytes.len() as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_and_length_pack_low_and_high() {
        assert_eq!(unpack(0x0000_0005_0000_0010), (0x10, 5));
        assert_eq!(pack(0x10, 5), 0x0000_0005_0000_0010);
        assert_eq!(unpack(pack(u32::MAX, u32::MAX)), (u32::MAX, u32::MAX));
    }
}
