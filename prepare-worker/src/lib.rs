//! The preparation pipeline as a library: decompress, prevalidate, instrument the stack,
//! compile. The worker binary runs it inside a confined job process; `pvf bench` runs the
//! very same function in-process as the baseline preparation is measured against, so the
//! comparison covers identical work.

pub mod instrument;
pub mod pipeline;
pub mod prevalidate;

pub use pipeline::{Compiled, compile};
