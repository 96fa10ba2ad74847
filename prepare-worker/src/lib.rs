//! The preparation pipeline as a library: decompress, prevalidate, rewrite the code as
//! Polkadot's host does (stack limit, memory import, memory maximum), compile, and for a
//! pre-check, check that the runtime can be linked. The worker binary runs it inside a
//! confined job process; `pvf bench` runs the very same function in-process as the baseline
//! preparation is measured against, so the comparison covers identical work.

pub mod pipeline;
pub mod prevalidate;
pub mod rewrite;

pub use pipeline::{Compiled, compile};
