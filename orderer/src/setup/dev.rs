//! The development setup behind a bare `orderer`: on first start, a data folder with generated
//! identities, a one-channel configuration and its genesis block; on later starts, the same.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::setup::config::{
    BatchSection, ChannelFile, ConsenterSection, NodeConfig, NodeSection, OrganizationSection,
};
use ordo_core::genesis;
use ordo_core::identity::Signer;

pub const CHANNEL: &str = "ordo";

/// Where things are in a development data folder.
pub struct DevLayout {
    pub config: PathBuf,
    pub client_identity: PathBuf,
    pub channel_file: PathBuf,
}

/// Creates the development setup in `data_dir` unless it is already there.
pub fn prepare(data_dir: &Path, listen: SocketAddr) -> anyhow::Result<DevLayout> {
    prepare_with(data_dir, listen, BatchSection::default())
}

/// [`prepare`] with other batch rules (tests use short timeouts and small blocks).
pub fn prepare_with(
    data_dir: &Path,
    listen: SocketAddr,
    batch: BatchSection,
) -> anyhow::Result<DevLayout> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let data_dir = data_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", data_dir.display()))?;
    let layout = DevLayout {
        config: data_dir.join("orderer.toml"),
        client_identity: data_dir.join("crypto/client"),
        channel_file: data_dir.join("channel.toml"),
    };
    if layout.config.exists() {
        return Ok(layout);
    }
    let orderer = Signer::generate("OrdererMSP");
    ordo_client::identity_dir::save(&orderer, &data_dir.join("crypto/orderer"))?;
    // One client identity that may write, read and reconfigure: enough for local use.
    let client = Signer::generate("Org1MSP");
    ordo_client::identity_dir::save(&client, &layout.client_identity)?;
    let client_key = hex::encode(client.public_key());

    let channel = ChannelFile {
        channel_id: CHANNEL.into(),
        dedup_window_blocks: 100,
        batch,
        organizations: vec![OrganizationSection {
            mspid: client.mspid().into(),
            writers: vec![client_key.clone()],
            readers: vec![client_key.clone()],
            admins: vec![client_key],
        }],
        consenters: vec![ConsenterSection {
            id: 1,
            mspid: orderer.mspid().into(),
            public_key: hex::encode(orderer.public_key()),
            client_address: listen.to_string(),
            cluster_address: String::new(),
        }],
    };
    std::fs::write(&layout.channel_file, toml::to_string_pretty(&channel)?)?;
    let genesis_path = data_dir.join(format!("genesis/{CHANNEL}.block"));
    ordo_client::block_file::write(
        &genesis_path,
        &genesis::genesis_block(&channel.to_config()?, &client),
    )?;

    let node = NodeConfig::new(
        NodeSection {
            data_dir: PathBuf::from("."),
            listen,
            identity: PathBuf::from("crypto/orderer"),
            consensus: crate::setup::config::Consensus::Solo,
            id: 1,
            cluster_listen: None,
        },
        vec![PathBuf::from(format!("genesis/{CHANNEL}.block"))],
    );
    node.write(&layout.config)?;
    Ok(layout)
}
