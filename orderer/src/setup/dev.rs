//! The development setup behind a bare `orderer`: on first start, a data folder with generated
//! crypto material (Fabric's MSP folders, as `orderer cryptogen` makes them), a one-channel
//! Fabric genesis block (as `orderer genesis` makes it) and the node config; on later starts,
//! the same.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use ordo_client::cryptogen::{self, KeyKind, OrgKind, OrgSpec};
use ordo_core::configtx::genesis::{
    self, ApplicationProfile, ConsensusProfile, OrdererProfile, OrgProfile, Profile,
};
use ordo_core::configtx::values::BatchSizeValues;
use rand::RngCore;

use crate::setup::config::{NodeConfig, NodeSection, TlsSection};

pub const CHANNEL: &str = "ordo";
/// The MSP ids of the development organisations.
pub const ORDERER_MSPID: &str = "OrdererMSP";
pub const CLIENT_MSPID: &str = "Org1MSP";
/// The node's TLS folder (cryptogen's server.crt, server.key, ca.crt), under `crypto/`.
const ORDERER_TLS: &str = "Orderer/orderers/orderer1/tls";

/// The development channel's block rules.
#[derive(Clone, Copy, Debug)]
pub struct BatchSection {
    pub max_message_count: u32,
    pub absolute_max_bytes: u32,
    pub preferred_max_bytes: u32,
    pub timeout_ms: u64,
    /// Ordo's duplicate-suppression window, in blocks (0: off).
    pub dedup_window_blocks: u32,
}

impl Default for BatchSection {
    /// configtxgen's defaults (500 messages, 10 MiB, 2 MiB, 2 s) and Ordo's window of 100 blocks.
    fn default() -> Self {
        BatchSection {
            max_message_count: 500,
            absolute_max_bytes: 10 << 20,
            preferred_max_bytes: 2 << 20,
            timeout_ms: 2000,
            dedup_window_blocks: 100,
        }
    }
}

/// Where things are in a development data folder.
pub struct DevLayout {
    pub config: PathBuf,
    /// A client of Org1MSP (may write and read).
    pub client_msp: PathBuf,
    /// The orderer organisation's admin (may change the channel's orderer settings).
    pub admin_msp: PathBuf,
    pub genesis_block: PathBuf,
    /// The CA of the node's TLS certificate (clients trust it: `peer-sim --tls-ca`).
    pub tls_ca: PathBuf,
    /// The Org1 client's TLS certificate and key (for mutual TLS: `--tls-cert`, `--tls-key`).
    pub client_tls_cert: PathBuf,
    pub client_tls_key: PathBuf,
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
    let crypto = data_dir.join("crypto");
    let layout = DevLayout {
        config: data_dir.join("orderer.toml"),
        client_msp: crypto.join("Org1/users/User1/msp"),
        admin_msp: crypto.join("Orderer/users/Admin/msp"),
        genesis_block: data_dir.join(format!("genesis/{CHANNEL}.block")),
        tls_ca: crypto.join(format!("{ORDERER_TLS}/ca.crt")),
        client_tls_cert: crypto.join("Org1/users/User1/tls/client.crt"),
        client_tls_key: crypto.join("Org1/users/User1/tls/client.key"),
    };
    if layout.config.exists() {
        return Ok(layout);
    }
    let orgs = [
        OrgSpec {
            name: "Orderer".into(),
            kind: OrgKind::Orderer,
            nodes: 1,
            users: 0,
            hosts: Vec::new(),
        },
        OrgSpec {
            name: "Org1".into(),
            kind: OrgKind::Peer,
            nodes: 1,
            users: 1,
            hosts: Vec::new(),
        },
    ];
    let made = cryptogen::generate(&crypto, &orgs, KeyKind::EcdsaP256)?;
    let org_profile = |i: usize| -> anyhow::Result<OrgProfile> {
        let folder = ordo_client::msp_dir::load(&made[i].msp, &made[i].mspid)?;
        let mut org = OrgProfile::new(&made[i].name, folder.msp_config());
        org.node_ous = true;
        Ok(org)
    };
    let mut orderer_org = org_profile(0)?;
    orderer_org.endpoints = vec![listen.to_string()];
    let mut orderer = OrdererProfile::new(ConsensusProfile::Solo, vec![orderer_org]);
    orderer.batch_size = BatchSizeValues {
        max_message_count: batch.max_message_count,
        absolute_max_bytes: batch.absolute_max_bytes,
        preferred_max_bytes: batch.preferred_max_bytes,
    };
    orderer.batch_timeout = Duration::from_millis(batch.timeout_ms);
    orderer.dedup_window_blocks = Some(batch.dedup_window_blocks);
    let profile = Profile::new(
        CHANNEL,
        orderer,
        Some(ApplicationProfile::new(vec![org_profile(1)?])),
    );
    let mut nonce = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut nonce);
    let block = genesis::genesis_block(&profile, SystemTime::now(), nonce)
        .context("making the development channel's genesis block")?;
    ordo_client::block_file::write(&layout.genesis_block, &block)?;

    let mut node = NodeConfig::new(
        NodeSection {
            data_dir: PathBuf::from("."),
            listen,
            msp_dir: PathBuf::from("crypto/Orderer/orderers/orderer1/msp"),
            mspid: ORDERER_MSPID.into(),
            consensus: crate::setup::config::Consensus::Solo,
            id: 1,
            cluster_listen: None,
        },
        vec![PathBuf::from(format!("genesis/{CHANNEL}.block"))],
    );
    // TLS on, as a Fabric orderer is run: the node's cryptogen TLS certificate.
    node.tls = TlsSection {
        enabled: true,
        cert: Some(PathBuf::from(format!("crypto/{ORDERER_TLS}/server.crt"))),
        key: Some(PathBuf::from(format!("crypto/{ORDERER_TLS}/server.key"))),
        client_auth_required: false,
        client_root_cas: Vec::new(),
    };
    node.write(&layout.config)?;
    Ok(layout)
}

/// The development channel for unit tests: its folder (removed on drop), genesis block and the
/// node's signing identity.
#[cfg(test)]
pub(crate) struct Fixture {
    pub dir: tempfile::TempDir,
    pub layout: DevLayout,
    pub genesis: crate::channel::JoinBlock,
    pub signer: ordo_core::msp::SigningIdentity,
}

#[cfg(test)]
impl Fixture {
    pub(crate) fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let layout = prepare_with(
            dir.path(),
            "127.0.0.1:0".parse().unwrap(),
            Default::default(),
        )
        .unwrap();
        let genesis = crate::channel::read_genesis(&layout.genesis_block).unwrap();
        let config = super::config::NodeConfig::load(&layout.config).unwrap();
        let signer =
            ordo_client::msp_dir::signing_identity(&config.node.msp_dir, &config.node.mspid)
                .unwrap();
        Fixture {
            dir,
            layout,
            genesis,
            signer,
        }
    }
}
