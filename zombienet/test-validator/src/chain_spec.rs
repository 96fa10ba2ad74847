//! The chain spec `build-spec` prints. Zombienet needs one to launch a network, but these
//! nodes run no chain, so it is the smallest spec zombienet accepts: already raw (so zombienet
//! does not try to customise a genesis it does not know), with an id (zombienet puts keystores
//! under `chains/<id>`) and a boot node list (zombienet rewrites it).

/// The chain spec as JSON.
pub fn raw_chain_spec() -> serde_json::Value {
    serde_json::json!({
        "name": "pvf test network",
        "id": "pvf_test",
        "chainType": "Local",
        "bootNodes": [],
        "telemetryEndpoints": null,
        "protocolId": "pvf-test",
        "properties": null,
        "codeSubstitutes": {},
        "genesis": { "raw": { "top": {}, "childrenDefault": {} } }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Zombienet treats a spec as raw, and leaves its genesis alone, when `genesis.raw` exists.
    #[test]
    fn spec_is_raw_and_has_what_zombienet_reads() {
        let spec = raw_chain_spec();
        assert!(spec["genesis"]["raw"].is_object());
        assert_eq!(spec["id"], "pvf_test");
        assert!(spec["bootNodes"].is_array());
    }
}
