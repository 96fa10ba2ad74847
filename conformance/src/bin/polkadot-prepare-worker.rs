//! Polkadot's prepare worker, built from its published crate the way a Polkadot node builds
//! its own worker binary. The version must match what the harness passes as the node version.

polkadot_node_core_pvf_common::decl_worker_main!(
    "prepare-worker",
    polkadot_node_core_pvf_prepare_worker::worker_entrypoint,
    env!("CARGO_PKG_VERSION"),
    "conformance",
);
