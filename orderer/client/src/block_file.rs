//! Block files: one marshalled `common.Block`, as Fabric's configtxgen writes a genesis block.

use std::path::Path;

use anyhow::Context;
use ordo_proto::common::Block;
use prost::Message;

/// Writes `block` to `path`, creating the folder it goes in.
pub fn write(path: &Path, block: &Block) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, block.encode_to_vec())
        .with_context(|| format!("writing {}", path.display()))
}
