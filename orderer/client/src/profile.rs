//! The genesis profile file: a TOML file modelled on one profile of Fabric's `configtx.yaml`,
//! read into [`configtx::genesis::Profile`] (organisations' MSPs loaded from their MSP folders
//! with [`crate::msp_dir::load`]), and block 0 written from it as `configtxgen -outputBlock` does.
//!
//! Relative paths are taken from the profile file's folder. Unknown keys are refused. Every key,
//! with its default (FABRIC-CONFIG.md §1.3 gives configtxgen's):
//!
//! ```toml
//! channel_id = "mychannel"           # optional here; required by the time block 0 is written
//!                                    # (write_genesis's channel_id_override replaces it)
//! capabilities = ["V3_0"]            # channel capabilities; default ["V3_0"]
//!
//! [policies]                         # optional; replaces the channel-level defaults (ImplicitMeta
//!                                    # ANY Readers / ANY Writers / MAJORITY Admins) and must then
//!                                    # name Readers, Writers and Admins. Same shape at every level:
//! Readers = { type = "ImplicitMeta", rule = "ANY Readers" }
//! Writers = { type = "Signature", rule = "OR('Org1MSP.member')" }   # Fabric's policy DSL
//!
//! [orderer]
//! type = "solo"                      # required: "solo" or "etcdraft"
//! batch_timeout = "2s"               # Go duration string; default "2s"
//! dedup_window_blocks = 100          # Ordo only (ConsensusType metadata); default unset (100)
//! capabilities = ["V2_0"]            # default ["V2_0"]
//! max_channels = 0                   # ChannelRestrictions.max_count; default 0
//! addresses = []                     # legacy global OrdererAddresses; default []; refused
//!                                    # with channel capability V3_0
//! # [orderer.policies]               # optional; must also name BlockValidation
//!
//! [orderer.batch_size]               # optional, and so is each key
//! max_message_count = 500            # default 500
//! absolute_max_bytes = 10485760      # default 10485760 (10 MiB)
//! preferred_max_bytes = 2097152      # default 2097152 (2 MiB)
//!
//! [orderer.etcdraft.options]         # optional, and so is each key (configtxgen's defaults)
//! tick_interval = "500ms"            # Go duration string; default "500ms"
//! election_tick = 10                 # default 10
//! heartbeat_tick = 1                 # default 1
//! max_inflight_blocks = 5            # default 5
//! snapshot_interval_size = 16777216  # default 16777216 (16 MiB)
//!
//! [[orderer.etcdraft.consenters]]    # required (at least one) with type = "etcdraft" only
//! host = "127.0.0.1"                 # required
//! port = 7051                        # required: the consenter's cluster port
//! client_tls_cert = "crypto/Orderer/orderers/orderer1/tls/server.crt"  # required; PEM file
//! server_tls_cert = "crypto/Orderer/orderers/orderer1/tls/server.crt"  # required; PEM file
//!
//! [[orderer.organizations]]          # at least one
//! name = "OrdererOrg"                # required: the config group's name
//! mspid = "OrdererMSP"               # required
//! msp_dir = "crypto/Orderer/msp"     # required: the organisation's (verifying) MSP folder
//! endpoints = ["127.0.0.1:7050"]     # default []; required non-empty with V3_0
//! node_ous = true                    # NodeOU-style default org policies (admin/orderer/client
//!                                    # roles) rather than member-style; default: whether the
//!                                    # MSP folder's config.yaml enables NodeOUs
//! [orderer.organizations.policies]   # optional; replaces Readers/Writers/Admins
//! Writers = { type = "Signature", rule = "OR('OrdererMSP.member')" }
//!
//! [application]                      # optional section (no Application group without it)
//! capabilities = ["V2_5"]            # default ["V2_5"]
//! # [application.acls]               # optional: API name = policy reference
//! # [application.policies]           # optional; replaces Readers/Writers/Admins/Endorsement/
//! #                                  # LifecycleEndorsement
//!
//! [[application.organizations]]
//! name = "Org1"                      # required
//! mspid = "Org1MSP"                  # required
//! msp_dir = "crypto/Org1/msp"        # required
//! anchor_peers = [{ host = "peer0.org1", port = 7051 }]   # default []
//! node_ous = true                    # as for orderer organisations (admin/peer/client roles)
//! # [application.organizations.policies]   # optional; replaces Readers/Writers/Admins/Endorsement
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{anyhow, bail, Context};
use ordo_core::configtx::genesis::{
    self, default_raft_options, ApplicationProfile, ConsensusProfile, OrdererProfile, OrgProfile,
    Policies, Profile,
};
use ordo_core::configtx::{duration, values::BatchSizeValues};
use ordo_core::policies::dsl;
use ordo_proto::common::Block;
use ordo_proto::etcdraft::{Consenter, Options};
use serde::Deserialize;

use crate::{block_file, msp_dir};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    #[serde(default)]
    channel_id: String,
    #[serde(default = "channel_capabilities")]
    capabilities: Vec<String>,
    policies: Option<BTreeMap<String, PolicyFile>>,
    orderer: OrdererFile,
    application: Option<ApplicationFile>,
}

fn channel_capabilities() -> Vec<String> {
    vec!["V3_0".into()]
}
fn orderer_capabilities() -> Vec<String> {
    vec!["V2_0".into()]
}
fn application_capabilities() -> Vec<String> {
    vec!["V2_5".into()]
}
fn batch_timeout() -> String {
    "2s".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(rename = "type")]
    kind: PolicyKind,
    rule: String,
}

/// configtx.yaml's policy types, spelt as there.
#[derive(Debug, Deserialize)]
enum PolicyKind {
    ImplicitMeta,
    Signature,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ConsensusKind {
    Solo,
    Etcdraft,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrdererFile {
    #[serde(rename = "type")]
    kind: ConsensusKind,
    #[serde(default = "batch_timeout")]
    batch_timeout: String,
    dedup_window_blocks: Option<u32>,
    #[serde(default = "orderer_capabilities")]
    capabilities: Vec<String>,
    #[serde(default)]
    max_channels: u64,
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    batch_size: BatchSizeFile,
    etcdraft: Option<EtcdRaftFile>,
    #[serde(default)]
    organizations: Vec<OrdererOrgFile>,
    policies: Option<BTreeMap<String, PolicyFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct BatchSizeFile {
    max_message_count: u32,
    absolute_max_bytes: u32,
    preferred_max_bytes: u32,
}

impl Default for BatchSizeFile {
    fn default() -> Self {
        BatchSizeFile {
            max_message_count: 500,
            absolute_max_bytes: 10 * 1024 * 1024,
            preferred_max_bytes: 2 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EtcdRaftFile {
    #[serde(default)]
    options: OptionsFile,
    #[serde(default)]
    consenters: Vec<ConsenterFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct OptionsFile {
    tick_interval: String,
    election_tick: u32,
    heartbeat_tick: u32,
    max_inflight_blocks: u32,
    snapshot_interval_size: u32,
}

impl Default for OptionsFile {
    fn default() -> Self {
        let o = default_raft_options();
        OptionsFile {
            tick_interval: o.tick_interval,
            election_tick: o.election_tick,
            heartbeat_tick: o.heartbeat_tick,
            max_inflight_blocks: o.max_inflight_blocks,
            snapshot_interval_size: o.snapshot_interval_size,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsenterFile {
    host: String,
    port: u32,
    client_tls_cert: PathBuf,
    server_tls_cert: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrdererOrgFile {
    name: String,
    mspid: String,
    msp_dir: PathBuf,
    #[serde(default)]
    endpoints: Vec<String>,
    node_ous: Option<bool>,
    policies: Option<BTreeMap<String, PolicyFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplicationFile {
    #[serde(default = "application_capabilities")]
    capabilities: Vec<String>,
    acls: Option<BTreeMap<String, String>>,
    #[serde(default)]
    organizations: Vec<ApplicationOrgFile>,
    policies: Option<BTreeMap<String, PolicyFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplicationOrgFile {
    name: String,
    mspid: String,
    msp_dir: PathBuf,
    #[serde(default)]
    anchor_peers: Vec<AnchorPeerFile>,
    node_ous: Option<bool>,
    policies: Option<BTreeMap<String, PolicyFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnchorPeerFile {
    host: String,
    port: i32,
}

/// Reads the profile file at `path` (see the module doc), loading every organisation's MSP
/// folder and every consenter certificate, and checks that it makes a valid channel config.
/// The channel id may still be empty (the file need not name one).
pub fn load(path: &Path) -> anyhow::Result<Profile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the profile {}", path.display()))?;
    let file: ProfileFile =
        toml::from_str(&text).with_context(|| format!("parsing the profile {}", path.display()))?;
    // Relative paths are the profile's: a profile and its crypto folder move together.
    let base = path.parent().unwrap_or(Path::new(""));
    let profile = Reader { base }
        .profile(file)
        .with_context(|| format!("in the profile {}", path.display()))?;
    // configtxgen's own checks (defaults present, V3_0 endpoints, values that decode), so a bad
    // profile is refused here rather than when block 0 is written or joined.
    genesis::config(&profile).map_err(|e| anyhow!("in the profile {}: {e}", path.display()))?;
    Ok(profile)
}

/// Builds block 0 of `profile` (for `channel_id_override` if given, else the profile's channel
/// id), as configtxgen does: dated now, a fresh 24-byte nonce. Checks that an orderer could
/// run the channel from it (every MSP sets up, every policy compiles, every consenter's TLS
/// certificate chains to an orderer organisation's TLS CA), then writes it to `out`.
pub fn write_genesis(
    profile: &Profile,
    channel_id_override: Option<&str>,
    out: &Path,
) -> anyhow::Result<Block> {
    let mut profile = profile.clone();
    if let Some(id) = channel_id_override {
        profile.channel_id = id.to_string();
    }
    if profile.channel_id.is_empty() {
        bail!("no channel id: the profile names none (channel_id) and none was given");
    }
    let nonce_bytes = ordo_core::envelope::nonce();
    let mut nonce = [0u8; 24];
    // envelope::nonce is 24 bytes; a shorter one would leave zeros, never panic.
    let n = nonce_bytes.len().min(nonce.len());
    nonce[..n].copy_from_slice(&nonce_bytes[..n]);
    let block = genesis::genesis_block(&profile, SystemTime::now(), nonce)
        .map_err(|e| anyhow!("channel {}: {e}", profile.channel_id))?;
    ordo_core::bundle::Bundle::from_block(&block)
        .map_err(|e| anyhow!("channel {}: block 0 would not run: {e}", profile.channel_id))?;
    block_file::write(out, &block)?;
    Ok(block)
}

struct Reader<'a> {
    base: &'a Path,
}

impl Reader<'_> {
    fn path(&self, p: &Path) -> PathBuf {
        self.base.join(p)
    }

    fn profile(&self, f: ProfileFile) -> anyhow::Result<Profile> {
        let orderer = self.orderer(f.orderer)?;
        let application = f.application.map(|a| self.application(a)).transpose()?;
        let mut profile = Profile::new(f.channel_id, orderer, application);
        profile.channel_capabilities = f.capabilities;
        profile.policies = policies("policies", f.policies)?;
        Ok(profile)
    }

    fn orderer(&self, f: OrdererFile) -> anyhow::Result<OrdererProfile> {
        let consensus = match (f.kind, f.etcdraft) {
            (ConsensusKind::Solo, None) => ConsensusProfile::Solo,
            (ConsensusKind::Solo, Some(_)) => {
                bail!("orderer.etcdraft: given, but orderer.type is \"solo\"")
            }
            (ConsensusKind::Etcdraft, None) => {
                bail!("orderer.etcdraft.consenters: required with orderer.type = \"etcdraft\"")
            }
            (ConsensusKind::Etcdraft, Some(raft)) => self.etcdraft(raft)?,
        };
        let batch_timeout =
            duration::parse(&f.batch_timeout).map_err(|e| anyhow!("orderer.batch_timeout: {e}"))?;
        if f.organizations.is_empty() {
            bail!("orderer.organizations: at least one orderer organisation is required");
        }
        let orgs = f
            .organizations
            .into_iter()
            .enumerate()
            .map(|(i, org)| {
                let key = format!("orderer.organizations[{i}]");
                let mut o = self.org(&key, &org.name, &org.mspid, &org.msp_dir, org.node_ous)?;
                o.endpoints = org.endpoints;
                o.policies = policies(&format!("{key}.policies"), org.policies)?;
                Ok(o)
            })
            .collect::<anyhow::Result<_>>()?;
        let mut o = OrdererProfile::new(consensus, orgs);
        o.batch_size = BatchSizeValues {
            max_message_count: f.batch_size.max_message_count,
            absolute_max_bytes: f.batch_size.absolute_max_bytes,
            preferred_max_bytes: f.batch_size.preferred_max_bytes,
        };
        o.batch_timeout = batch_timeout;
        o.max_channels = f.max_channels;
        o.dedup_window_blocks = f.dedup_window_blocks;
        o.capabilities = f.capabilities;
        o.addresses = f.addresses;
        o.policies = policies("orderer.policies", f.policies)?;
        Ok(o)
    }

    fn etcdraft(&self, f: EtcdRaftFile) -> anyhow::Result<ConsensusProfile> {
        duration::parse(&f.options.tick_interval)
            .map_err(|e| anyhow!("orderer.etcdraft.options.tick_interval: {e}"))?;
        if f.consenters.is_empty() {
            bail!("orderer.etcdraft.consenters: at least one consenter is required");
        }
        let consenters = f
            .consenters
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let read = |name: &str, p: &Path| -> anyhow::Result<bytes::Bytes> {
                    let path = self.path(p);
                    let pem = std::fs::read(&path).with_context(|| {
                        format!(
                            "orderer.etcdraft.consenters[{i}].{name}: reading {}",
                            path.display()
                        )
                    })?;
                    match pem::parse(&pem) {
                        Ok(block) if block.tag() == "CERTIFICATE" => {}
                        Ok(block) => bail!(
                            "orderer.etcdraft.consenters[{i}].{name}: {} holds a {}, not a certificate",
                            path.display(),
                            block.tag()
                        ),
                        Err(_) => bail!(
                            "orderer.etcdraft.consenters[{i}].{name}: {} is not a PEM file",
                            path.display()
                        ),
                    }
                    Ok(pem.into())
                };
                Ok(Consenter {
                    client_tls_cert: read("client_tls_cert", &c.client_tls_cert)?,
                    server_tls_cert: read("server_tls_cert", &c.server_tls_cert)?,
                    host: c.host,
                    port: c.port,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let o = f.options;
        Ok(ConsensusProfile::EtcdRaft {
            consenters,
            options: Options {
                tick_interval: o.tick_interval,
                election_tick: o.election_tick,
                heartbeat_tick: o.heartbeat_tick,
                max_inflight_blocks: o.max_inflight_blocks,
                snapshot_interval_size: o.snapshot_interval_size,
            },
        })
    }

    fn application(&self, f: ApplicationFile) -> anyhow::Result<ApplicationProfile> {
        let orgs = f
            .organizations
            .into_iter()
            .enumerate()
            .map(|(i, org)| {
                let key = format!("application.organizations[{i}]");
                let mut o = self.org(&key, &org.name, &org.mspid, &org.msp_dir, org.node_ous)?;
                o.anchor_peers = org
                    .anchor_peers
                    .into_iter()
                    .map(|a| (a.host, a.port))
                    .collect();
                o.policies = policies(&format!("{key}.policies"), org.policies)?;
                Ok(o)
            })
            .collect::<anyhow::Result<_>>()?;
        let mut a = ApplicationProfile::new(orgs);
        a.capabilities = f.capabilities;
        a.acls = f.acls;
        a.policies = policies("application.policies", f.policies)?;
        Ok(a)
    }

    /// An organisation with its MSP folder loaded; `node_ous` defaults to the folder's.
    fn org(
        &self,
        key: &str,
        name: &str,
        mspid: &str,
        msp_dir: &Path,
        node_ous: Option<bool>,
    ) -> anyhow::Result<OrgProfile> {
        if name.is_empty() {
            bail!("{key}.name: must not be empty");
        }
        let folder =
            msp_dir::load(&self.path(msp_dir), mspid).with_context(|| format!("{key}.msp_dir"))?;
        let mut org = OrgProfile::new(name, folder.msp_config());
        // As Fabric's MSP setup: NodeOUs are on only if enabled and at least one OU is given.
        org.node_ous = node_ous.unwrap_or_else(|| {
            folder.config.fabric_node_ous.as_ref().is_some_and(|n| {
                n.enable
                    && (n.client_ou_identifier.is_some()
                        || n.peer_ou_identifier.is_some()
                        || n.admin_ou_identifier.is_some()
                        || n.orderer_ou_identifier.is_some())
            })
        });
        Ok(org)
    }
}

/// A `policies` table compiled: each rule through Fabric's policy DSL or implicit-meta syntax.
fn policies(
    key: &str,
    table: Option<BTreeMap<String, PolicyFile>>,
) -> anyhow::Result<Option<Policies>> {
    let Some(table) = table else {
        return Ok(None);
    };
    table
        .into_iter()
        .map(|(name, p)| {
            let policy = match p.kind {
                PolicyKind::ImplicitMeta => {
                    dsl::implicit_meta(&p.rule).map(|m| dsl::implicit_meta_policy(&m))
                }
                PolicyKind::Signature => dsl::parse(&p.rule).map(|e| dsl::signature_policy(&e)),
            }
            .map_err(|e| anyhow!("{key}.{name}: {e}"))?;
            Ok((name, policy))
        })
        .collect::<anyhow::Result<_>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cryptogen::{self, KeyKind, OrgKind, OrgSpec};
    use ordo_core::bundle::Bundle;
    use ordo_core::configtx::values::Consensus;
    use prost::Message;

    /// A temp folder holding `crypto/` (an orderer org of three nodes and a peer org) and a
    /// profile written there.
    fn setup(profile: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        cryptogen::generate(
            &dir.path().join("crypto"),
            &[
                OrgSpec {
                    name: "Orderer".into(),
                    kind: OrgKind::Orderer,
                    nodes: 3,
                    users: 0,
                    hosts: vec![],
                },
                OrgSpec {
                    name: "Org1".into(),
                    kind: OrgKind::Peer,
                    nodes: 1,
                    users: 1,
                    hosts: vec![],
                },
            ],
            KeyKind::EcdsaP256,
        )
        .unwrap();
        let path = dir.path().join("profile.toml");
        std::fs::write(&path, profile).unwrap();
        (dir, path)
    }

    const RAFT: &str = r#"
channel_id = "mychannel"
[orderer]
type = "etcdraft"
batch_timeout = "250ms"
dedup_window_blocks = 7
[orderer.batch_size]
max_message_count = 42
preferred_max_bytes = 65536
[[orderer.etcdraft.consenters]]
host = "127.0.0.1"
port = 7151
client_tls_cert = "crypto/Orderer/orderers/orderer1/tls/server.crt"
server_tls_cert = "crypto/Orderer/orderers/orderer1/tls/server.crt"
[[orderer.etcdraft.consenters]]
host = "127.0.0.1"
port = 7152
client_tls_cert = "crypto/Orderer/orderers/orderer2/tls/server.crt"
server_tls_cert = "crypto/Orderer/orderers/orderer2/tls/server.crt"
[[orderer.organizations]]
name = "OrdererOrg"
mspid = "OrdererMSP"
msp_dir = "crypto/Orderer/msp"
endpoints = ["127.0.0.1:7051", "127.0.0.1:7052"]
[application]
[[application.organizations]]
name = "Org1"
mspid = "Org1MSP"
msp_dir = "crypto/Org1/msp"
anchor_peers = [{ host = "peer0.org1", port = 7051 }]
[application.organizations.policies]
Readers = { type = "Signature", rule = "OR('Org1MSP.member')" }
Writers = { type = "Signature", rule = "OR('Org1MSP.member')" }
Admins = { type = "Signature", rule = "OR('Org1MSP.admin')" }
Endorsement = { type = "Signature", rule = "OR('Org1MSP.peer')" }
"#;

    #[test]
    fn an_etcdraft_profile_makes_a_runnable_genesis_block() {
        let (dir, path) = setup(RAFT);
        let profile = load(&path).unwrap();
        assert_eq!(profile.channel_id, "mychannel");
        assert_eq!(profile.channel_capabilities, ["V3_0"]);
        // The MSP folders made by cryptogen enable NodeOUs.
        assert!(profile.orderer.orgs[0].node_ous);
        let out = dir.path().join("out/genesis.block");
        let block = write_genesis(&profile, Some("other"), &out).unwrap();
        let read = Block::decode(std::fs::read(&out).unwrap().as_slice()).unwrap();
        assert_eq!(read, block);

        let bundle = Bundle::from_block(&read).unwrap();
        assert_eq!(bundle.channel_id(), "other");
        let rules = bundle.cut_rules();
        assert_eq!(rules.max_message_count, 42);
        assert_eq!(rules.preferred_max_bytes, 65536);
        assert_eq!(bundle.absolute_max_bytes(), 10 * 1024 * 1024);
        assert_eq!(
            bundle.batch_timeout(),
            std::time::Duration::from_millis(250)
        );
        assert_eq!(bundle.dedup_window_blocks(), 7);
        let v = bundle.values();
        assert!(v.has_channel_capability("V3_0"));
        assert!(v.orderer_capabilities.contains("V2_0"));
        assert_eq!(v.orderer_orgs.len(), 1);
        assert_eq!(v.orderer_orgs[0].name, "OrdererOrg");
        assert_eq!(v.orderer_orgs[0].msp_id, "OrdererMSP");
        assert_eq!(v.orderer_orgs[0].endpoints.len(), 2);
        let app = v.application.as_ref().unwrap();
        assert!(app.capabilities.contains("V2_5"));
        assert_eq!(app.orgs[0].msp_id, "Org1MSP");
        assert_eq!(app.orgs[0].anchor_peers[0].port, 7051);
        let Consensus::EtcdRaft {
            consenters,
            options,
        } = &v.consensus
        else {
            panic!("{:?}", v.consensus)
        };
        assert_eq!(consenters.len(), 2);
        assert_eq!(consenters[1].port, 7152);
        let cert = std::fs::read(
            dir.path()
                .join("crypto/Orderer/orderers/orderer2/tls/server.crt"),
        )
        .unwrap();
        assert_eq!(consenters[1].server_tls_cert.as_ref(), cert.as_slice());
        assert_eq!(options.as_ref().unwrap(), &default_raft_options());
    }

    #[test]
    fn a_minimal_solo_profile_takes_the_defaults() {
        let (dir, path) = setup(
            r#"
[orderer]
type = "solo"
[[orderer.organizations]]
name = "OrdererOrg"
mspid = "OrdererMSP"
msp_dir = "crypto/Orderer/msp"
endpoints = ["127.0.0.1:7050"]
node_ous = false
[policies]
Readers = { type = "ImplicitMeta", rule = "ANY Readers" }
Writers = { type = "ImplicitMeta", rule = "ANY Writers" }
Admins = { type = "ImplicitMeta", rule = "ANY Admins" }
"#,
        );
        let profile = load(&path).unwrap();
        assert!(!profile.orderer.orgs[0].node_ous);
        assert!(profile.application.is_none());
        let out = dir.path().join("genesis.block");
        let error = write_genesis(&profile, None, &out).unwrap_err().to_string();
        assert!(error.contains("no channel id"), "{error}");
        let block = write_genesis(&profile, Some("solo"), &out).unwrap();
        let bundle = Bundle::from_block(&block).unwrap();
        assert_eq!(bundle.values().consensus, Consensus::Solo);
        assert_eq!(bundle.cut_rules().max_message_count, 500);
        assert_eq!(bundle.cut_rules().preferred_max_bytes, 2 * 1024 * 1024);
        assert_eq!(bundle.batch_timeout(), std::time::Duration::from_secs(2));
        assert!(bundle.values().application.is_none());
    }

    fn refusal(profile: &str) -> String {
        let (_dir, path) = setup(profile);
        let error = format!("{:#}", load(&path).unwrap_err());
        assert!(error.contains("profile.toml"), "{error}");
        error
    }

    #[test]
    fn bad_profiles_are_refused_naming_the_key() {
        let e = refusal(&RAFT.replace("dedup_window_blocks", "dedup_window"));
        assert!(e.contains("unknown field `dedup_window`"), "{e}");
        let e = refusal(&RAFT.replace("port = 7151", "port = 7151\ntls = 1"));
        assert!(e.contains("unknown field `tls`"), "{e}");
        let e = refusal(&RAFT.replace("\"250ms\"", "\"250 ms\""));
        assert!(e.contains("orderer.batch_timeout"), "{e}");
        let e = refusal(&RAFT.replace("OR('Org1MSP.admin')", "OR('Org1MSP.boss')"));
        assert!(
            e.contains("application.organizations[0].policies.Admins"),
            "{e}"
        );
        let e = refusal(&RAFT.replace(
            "[application]",
            "[policies]\nReaders = { type = \"ImplicitMeta\", rule = \"SOME Readers\" }\n[application]",
        ));
        assert!(e.contains("policies.Readers") && e.contains("SOME"), "{e}");
        let e = refusal(&RAFT.replace("type = \"etcdraft\"", "type = \"kafka\""));
        assert!(e.contains("unknown variant `kafka`"), "{e}");
        let e = refusal(&RAFT.replace("crypto/Org1/msp", "crypto/Org9/msp"));
        assert!(e.contains("application.organizations[0].msp_dir"), "{e}");
        let e = refusal(&RAFT.replace("orderer2/tls/server.crt", "orderer2/tls/server.key"));
        assert!(
            e.contains("orderer.etcdraft.consenters[1].client_tls_cert")
                && e.contains("PRIVATE KEY, not a certificate"),
            "{e}"
        );
        let e = refusal(&RAFT.replace("orderer1/tls/server.crt", "orderer1/tls/none.crt"));
        assert!(
            e.contains("orderer.etcdraft.consenters[0].client_tls_cert"),
            "{e}"
        );
        // configtxgen's checks: V3_0 requires orderer endpoints.
        let e = refusal(&RAFT.replace("endpoints = [\"127.0.0.1:7051\", \"127.0.0.1:7052\"]", ""));
        assert!(e.contains("endpoints"), "{e}");
    }
}
