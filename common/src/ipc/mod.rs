//! Host–worker IPC.

pub mod frame;
