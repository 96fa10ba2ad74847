//! The execute side's runtime as a library: the host functions, the guest allocator, PoV
//! decompression and [`runtime::Runtime`], which instantiates a loaded module and runs
//! `validate_block`. The worker binary runs it in job processes forked from each artifact's
//! holder process; `pvf bench` runs the very same code in-process as its baseline, so the
//! comparison differs only by the processes, the sandbox and the IPC around it.

pub mod allocator;
pub mod host_functions;
pub mod pov;
pub mod runtime;
