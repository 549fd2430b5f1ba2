//! What `configtxgen -outputBlock` writes (FABRIC-CONFIG.md §1.3, §2.1), from a domain profile:
//! the channel config tree with configtxgen's default policies, and block 0 holding it in an
//! unsigned CONFIG envelope. The CLI layer reads a profile file into [`Profile`] and compiles any
//! policy strings; this module only assembles protos. Every element is written at version 0.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ordo_proto::common::{
    implicit_meta_policy, policy, signature_policy, Block, BlockData, BlockDataHashingStructure,
    BlockHeader, BlockMetadata, Capabilities, Capability, ChannelHeader, Config, ConfigEnvelope,
    ConfigGroup, ConfigPolicy, ConfigValue, Envelope, HashingAlgorithm, Header, HeaderType,
    ImplicitMetaPolicy, LastConfig, Metadata, OrdererAddresses, OrdererBlockMetadata, Payload,
    Policy, SignatureHeader, SignaturePolicy, SignaturePolicyEnvelope,
};
use ordo_proto::etcdraft::{ConfigMetadata, Consenter, Options};
use ordo_proto::msp::{FabricMspConfig, MspConfig};
use ordo_proto::orderer::{BatchSize, BatchTimeout, ChannelRestrictions, ConsensusType};
use ordo_proto::ordo::ConsensusOptions;
use ordo_proto::protos::{AcLs, AnchorPeer, AnchorPeers, ApiResource};
use prost::Message;
use sha2::{Digest, Sha256};

use super::keys::*;
use super::values::{BatchSizeValues, ChannelValues};
use super::{duration, ConfigTxError};
use crate::msp::{Principal, Role};

/// A policy set at one level: name → policy. When given it replaces the defaults entirely, as a
/// configtxgen profile's `Policies` section does, and must hold Readers, Writers and Admins.
pub type Policies = BTreeMap<String, Policy>;

/// A channel profile. Build with [`Profile::new`] for configtxgen's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub channel_id: String,
    /// Default `["V3_0"]`, as configtxgen's 3.x samples. V3_0 forbids global orderer addresses
    /// and requires Endpoints on every orderer org; use `["V2_0"]` for a 2.x-compatible channel.
    pub channel_capabilities: Vec<String>,
    pub policies: Option<Policies>,
    pub orderer: OrdererProfile,
    pub application: Option<ApplicationProfile>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ConsensusProfile {
    Solo,
    EtcdRaft {
        consenters: Vec<Consenter>,
        options: Options,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrdererProfile {
    pub consensus: ConsensusProfile,
    pub batch_size: BatchSizeValues,
    pub batch_timeout: Duration,
    /// ChannelRestrictions.max_count (configtxgen's MaxChannels, default 0).
    pub max_channels: u64,
    /// Ordo's duplicate-suppression window; `None` leaves it unset (the default applies).
    pub dedup_window_blocks: Option<u32>,
    /// Default `["V2_0"]`.
    pub capabilities: Vec<String>,
    /// Global OrdererAddresses (legacy; refused with V3_0). Default empty.
    pub addresses: Vec<String>,
    pub orgs: Vec<OrgProfile>,
    /// Replaces Readers/Writers/Admins/BlockValidation when given (BlockValidation required).
    pub policies: Option<Policies>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ApplicationProfile {
    pub orgs: Vec<OrgProfile>,
    /// Default `["V2_5"]`.
    pub capabilities: Vec<String>,
    /// API name → policy reference; written only when non-empty.
    pub acls: Option<BTreeMap<String, String>>,
    pub policies: Option<Policies>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrgProfile {
    /// The group name (configtxgen's `Name`).
    pub name: String,
    /// A FABRIC (X.509) MSPConfig; its FabricMSPConfig.name is the MSP ID the default policies
    /// name.
    pub msp: MspConfig,
    /// Orderer orgs: Endpoints (`host:port`). Ignored for application orgs.
    pub endpoints: Vec<String>,
    /// Application orgs: AnchorPeers. Ignored for orderer orgs.
    pub anchor_peers: Vec<(String, i32)>,
    pub policies: Option<Policies>,
    /// Chooses the integration template's NodeOU-based defaults (admin/peer/client/orderer
    /// roles) over sampleconfig's member/admin ones.
    pub node_ous: bool,
}

/// etcdraft options as configtxgen's defaults.
pub fn default_raft_options() -> Options {
    Options {
        tick_interval: "500ms".into(),
        election_tick: 10,
        heartbeat_tick: 1,
        max_inflight_blocks: 5,
        snapshot_interval_size: 16 * 1024 * 1024,
    }
}

impl Profile {
    pub fn new(
        channel_id: impl Into<String>,
        orderer: OrdererProfile,
        application: Option<ApplicationProfile>,
    ) -> Profile {
        Profile {
            channel_id: channel_id.into(),
            channel_capabilities: vec!["V3_0".into()],
            policies: None,
            orderer,
            application,
        }
    }
}

impl OrdererProfile {
    pub fn new(consensus: ConsensusProfile, orgs: Vec<OrgProfile>) -> OrdererProfile {
        OrdererProfile {
            consensus,
            batch_size: BatchSizeValues {
                max_message_count: 500,
                absolute_max_bytes: 10 * 1024 * 1024,
                preferred_max_bytes: 2 * 1024 * 1024,
            },
            batch_timeout: Duration::from_secs(2),
            max_channels: 0,
            dedup_window_blocks: None,
            capabilities: vec!["V2_0".into()],
            addresses: Vec::new(),
            orgs,
            policies: None,
        }
    }
}

impl ApplicationProfile {
    pub fn new(orgs: Vec<OrgProfile>) -> ApplicationProfile {
        ApplicationProfile {
            orgs,
            capabilities: vec!["V2_5".into()],
            acls: None,
            policies: None,
        }
    }
}

impl OrgProfile {
    pub fn new(name: impl Into<String>, msp: MspConfig) -> OrgProfile {
        OrgProfile {
            name: name.into(),
            msp,
            endpoints: Vec::new(),
            anchor_peers: Vec::new(),
            policies: None,
            node_ous: false,
        }
    }
}

/// The channel config configtxgen would write for `profile` (sequence 0), checked by reading
/// it back with [`ChannelValues::from_config`] so a bad profile fails here, not at join.
pub fn config(profile: &Profile) -> Result<Config, ConfigTxError> {
    let v3 = profile.channel_capabilities.iter().any(|c| c == "V3_0");
    let mut channel = group(policies_or(
        "/Channel",
        profile.policies.as_ref(),
        level_defaults(),
        &[],
    )?);
    channel.values.insert(
        HASHING_ALGORITHM.into(),
        value(HashingAlgorithm {
            name: "SHA256".into(),
        }),
    );
    channel.values.insert(
        BLOCK_DATA_HASHING_STRUCTURE.into(),
        value(BlockDataHashingStructure { width: u32::MAX }),
    );
    if !profile.orderer.addresses.is_empty() {
        if v3 {
            return Err(ConfigTxError::invalid(
                "/Channel/OrdererAddresses",
                "global orderer endpoints exist, but can not be used with V3_0 capability",
            ));
        }
        let mut v = value(OrdererAddresses {
            addresses: profile.orderer.addresses.clone(),
        });
        // configtxgen lets the orderer admins, not the channel admins, change these.
        v.mod_policy = "/Channel/Orderer/Admins".into();
        channel.values.insert(ORDERER_ADDRESSES.into(), v);
    }
    if !profile.channel_capabilities.is_empty() {
        channel.values.insert(
            CAPABILITIES.into(),
            capabilities(&profile.channel_capabilities),
        );
    }
    channel
        .groups
        .insert(ORDERER.into(), orderer_group(&profile.orderer, v3)?);
    if let Some(app) = &profile.application {
        channel
            .groups
            .insert(APPLICATION.into(), application_group(app)?);
    }
    let config = Config {
        sequence: 0,
        channel_group: Some(channel),
    };
    ChannelValues::from_config(&config)?;
    Ok(config)
}

fn orderer_group(profile: &OrdererProfile, v3: bool) -> Result<ConfigGroup, ConfigTxError> {
    let mut defaults = level_defaults();
    defaults.insert(
        BLOCK_VALIDATION.into(),
        implicit_meta(implicit_meta_policy::Rule::Any, WRITERS),
    );
    let mut g = group(policies_or(
        "/Channel/Orderer",
        profile.policies.as_ref(),
        defaults,
        &[BLOCK_VALIDATION],
    )?);
    let b = profile.batch_size;
    g.values.insert(
        BATCH_SIZE.into(),
        value(BatchSize {
            max_message_count: b.max_message_count,
            absolute_max_bytes: b.absolute_max_bytes,
            preferred_max_bytes: b.preferred_max_bytes,
        }),
    );
    g.values.insert(
        BATCH_TIMEOUT.into(),
        value(BatchTimeout {
            timeout: duration::format(profile.batch_timeout),
        }),
    );
    g.values.insert(
        CHANNEL_RESTRICTIONS.into(),
        value(ChannelRestrictions {
            max_count: profile.max_channels,
        }),
    );
    if !profile.capabilities.is_empty() {
        g.values
            .insert(CAPABILITIES.into(), capabilities(&profile.capabilities));
    }
    let ordo = profile.dedup_window_blocks.map(|w| ConsensusOptions {
        dedup_window_blocks: Some(w),
    });
    let (kind, metadata) = match &profile.consensus {
        ConsensusProfile::Solo => ("solo", ordo.map(|o| o.encode_to_vec()).unwrap_or_default()),
        ConsensusProfile::EtcdRaft {
            consenters,
            options,
        } => (
            "etcdraft",
            ConfigMetadata {
                consenters: consenters.clone(),
                options: Some(options.clone()),
                ordo,
            }
            .encode_to_vec(),
        ),
    };
    g.values.insert(
        CONSENSUS_TYPE.into(),
        value(ConsensusType {
            r#type: kind.into(),
            metadata: metadata.into(),
            state: 0,
        }),
    );
    for org in &profile.orgs {
        let path = format!("/Channel/Orderer/{}", org.name);
        let mspid = msp_id(&path, &org.msp)?;
        let defaults = if org.node_ous {
            let rw = [Role::Admin, Role::Orderer, Role::Client];
            org_policies(&mspid, &rw, &rw, None)
        } else {
            org_policies(&mspid, &[Role::Member], &[Role::Member], None)
        };
        let mut og = group(policies_or(&path, org.policies.as_ref(), defaults, &[])?);
        og.values.insert(MSP.into(), value(org.msp.clone()));
        if !org.endpoints.is_empty() {
            og.values.insert(
                ENDPOINTS.into(),
                value(OrdererAddresses {
                    addresses: org.endpoints.clone(),
                }),
            );
        } else if v3 {
            return Err(ConfigTxError::invalid(
                path,
                format!(
                    "orderer endpoints for organization {} are missing and must be configured when capability V3_0 is enabled",
                    org.name
                ),
            ));
        }
        insert_org(&mut g, &org.name, og)?;
    }
    Ok(g)
}

fn application_group(profile: &ApplicationProfile) -> Result<ConfigGroup, ConfigTxError> {
    let mut defaults = level_defaults();
    for name in [ENDORSEMENT, LIFECYCLE_ENDORSEMENT] {
        defaults.insert(
            name.into(),
            implicit_meta(implicit_meta_policy::Rule::Majority, ENDORSEMENT),
        );
    }
    let mut g = group(policies_or(
        "/Channel/Application",
        profile.policies.as_ref(),
        defaults,
        &[],
    )?);
    if let Some(acls) = profile.acls.as_ref().filter(|a| !a.is_empty()) {
        let acls = AcLs {
            acls: acls
                .iter()
                .map(|(api, policy_ref)| {
                    let resource = ApiResource {
                        policy_ref: policy_ref.clone(),
                    };
                    (api.clone(), resource)
                })
                .collect(),
        };
        g.values.insert(ACLS.into(), value(acls));
    }
    if !profile.capabilities.is_empty() {
        g.values
            .insert(CAPABILITIES.into(), capabilities(&profile.capabilities));
    }
    for org in &profile.orgs {
        let path = format!("/Channel/Application/{}", org.name);
        let mspid = msp_id(&path, &org.msp)?;
        let defaults = if org.node_ous {
            org_policies(
                &mspid,
                &[Role::Admin, Role::Peer, Role::Client],
                &[Role::Admin, Role::Client],
                Some(&[Role::Peer]),
            )
        } else {
            org_policies(
                &mspid,
                &[Role::Member],
                &[Role::Member],
                Some(&[Role::Member]),
            )
        };
        let mut og = group(policies_or(&path, org.policies.as_ref(), defaults, &[])?);
        og.values.insert(MSP.into(), value(org.msp.clone()));
        if !org.anchor_peers.is_empty() {
            let anchors = AnchorPeers {
                anchor_peers: org
                    .anchor_peers
                    .iter()
                    .map(|(host, port)| AnchorPeer {
                        host: host.clone(),
                        port: *port,
                    })
                    .collect(),
            };
            og.values.insert(ANCHOR_PEERS.into(), value(anchors));
        }
        insert_org(&mut g, &org.name, og)?;
    }
    Ok(g)
}

fn insert_org(parent: &mut ConfigGroup, name: &str, org: ConfigGroup) -> Result<(), ConfigTxError> {
    if parent.groups.insert(name.into(), org).is_some() {
        return Err(ConfigTxError::invalid(
            name,
            "organization defined twice in the profile",
        ));
    }
    Ok(())
}

/// Block 0 for `profile`.
pub fn genesis_block(
    profile: &Profile,
    timestamp: SystemTime,
    nonce: [u8; 24],
) -> Result<Block, ConfigTxError> {
    genesis_block_from_config(&config(profile)?, &profile.channel_id, timestamp, nonce)
}

/// Block 0 holding `config`, laid out byte for byte as configtxgen does (§2.1): an unsigned
/// CONFIG envelope (channel header version 1, tx_id = hex SHA-256(nonce), empty creator),
/// sequence 0 and no last_update, and five metadata slots of which SIGNATURES and LAST_CONFIG
/// say "last config 0".
pub fn genesis_block_from_config(
    config: &Config,
    channel_id: &str,
    timestamp: SystemTime,
    nonce: [u8; 24],
) -> Result<Block, ConfigTxError> {
    if !super::valid_channel_id(channel_id) {
        return Err(ConfigTxError::invalid(
            "channel id",
            format!("{channel_id:?} must be 1-249 characters of a-z, 0-9, '.', '-', starting with a letter"),
        ));
    }
    // Seconds only: configtxgen zeroes the nanos.
    let seconds = match timestamp.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // Before 1970: floor, as Go's Unix() does.
        Err(e) => {
            let d = e.duration();
            -i64::try_from(d.as_secs()).unwrap_or(i64::MAX) - i64::from(d.subsec_nanos() > 0)
        }
    };
    let creator = Bytes::new();
    let mut hasher = Sha256::new();
    hasher.update(nonce);
    hasher.update(&creator);
    let tx_id = hex::encode(hasher.finalize());
    let channel_header = ChannelHeader {
        r#type: HeaderType::Config as i32,
        version: 1,
        timestamp: Some(prost_types::Timestamp { seconds, nanos: 0 }),
        channel_id: channel_id.into(),
        tx_id,
        epoch: 0,
        ..Default::default()
    };
    let signature_header = SignatureHeader {
        creator,
        nonce: Bytes::copy_from_slice(&nonce),
    };
    let envelope_config = ConfigEnvelope {
        config: Some(Config {
            sequence: 0,
            channel_group: config.channel_group.clone(),
        }),
        last_update: None,
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: channel_header.encode_to_vec().into(),
            signature_header: signature_header.encode_to_vec().into(),
        }),
        // Sorted maps: the same profile, time and nonce give the same block.
        data: envelope_config.encode_to_vec().into(),
    };
    let envelope = Envelope {
        payload: payload.encode_to_vec().into(),
        signature: Bytes::new(),
    };
    let data = vec![Bytes::from(envelope.encode_to_vec())];
    let mut metadata = vec![Bytes::new(); crate::block::METADATA_SLOTS];
    metadata[0] = Metadata {
        value: OrdererBlockMetadata {
            last_config: Some(LastConfig { index: 0 }),
            consenter_metadata: Bytes::new(),
        }
        .encode_to_vec()
        .into(),
        signatures: Vec::new(),
    }
    .encode_to_vec()
    .into();
    metadata[1] = Metadata {
        value: LastConfig { index: 0 }.encode_to_vec().into(),
        signatures: Vec::new(),
    }
    .encode_to_vec()
    .into();
    Ok(Block {
        header: Some(BlockHeader {
            number: 0,
            previous_hash: Bytes::new(),
            data_hash: Bytes::copy_from_slice(&crate::block::data_hash(&data)),
        }),
        data: Some(BlockData { data }),
        metadata: Some(BlockMetadata { metadata }),
    })
}

/// The number of the last config block a block names (`protoutil.GetLastConfigIndexFromBlock`):
/// the OrdererBlockMetadata signed in SIGNATURES when its value is non-empty, else the legacy
/// LAST_CONFIG slot. Unlike `crate::block::last_config_index` this never falls back when the
/// SIGNATURES slot is present but malformed: Fabric fails there.
pub fn last_config_index(block: &Block) -> Result<u64, ConfigTxError> {
    let slot = |i: usize| -> Result<Metadata, ConfigTxError> {
        let raw = block
            .metadata
            .as_ref()
            .and_then(|m| m.metadata.get(i))
            .ok_or_else(|| {
                ConfigTxError::invalid("block metadata", format!("no metadata at index [{i}]"))
            })?;
        Metadata::decode(raw.as_ref()).map_err(|e| {
            ConfigTxError::invalid(
                "block metadata",
                format!("error unmarshalling metadata at index [{i}]: {e}"),
            )
        })
    };
    let signatures = slot(0)?;
    if signatures.value.is_empty() {
        let lc = LastConfig::decode(slot(1)?.value.as_ref()).map_err(|e| {
            ConfigTxError::invalid(
                "block metadata",
                format!("error unmarshalling LastConfig: {e}"),
            )
        })?;
        return Ok(lc.index);
    }
    let obm = OrdererBlockMetadata::decode(signatures.value.as_ref()).map_err(|e| {
        ConfigTxError::invalid(
            "block metadata",
            format!("failed to unmarshal orderer block metadata: {e}"),
        )
    })?;
    obm.last_config.map(|l| l.index).ok_or_else(|| {
        ConfigTxError::invalid(
            "block metadata",
            "orderer block metadata has no last_config",
        )
    })
}

fn msp_id(path: &str, msp: &MspConfig) -> Result<String, ConfigTxError> {
    let fabric = FabricMspConfig::decode(msp.config.as_ref()).map_err(|e| {
        ConfigTxError::invalid(format!("{path}/MSP"), format!("FabricMSPConfig: {e}"))
    })?;
    Ok(fabric.name)
}

fn group(policies: BTreeMap<String, ConfigPolicy>) -> ConfigGroup {
    ConfigGroup {
        version: 0,
        groups: BTreeMap::new(),
        values: BTreeMap::new(),
        policies,
        mod_policy: ADMINS.into(),
    }
}

fn value<M: Message>(message: M) -> ConfigValue {
    ConfigValue {
        version: 0,
        value: message.encode_to_vec().into(),
        mod_policy: ADMINS.into(),
    }
}

fn capabilities(names: &[String]) -> ConfigValue {
    value(Capabilities {
        capabilities: names.iter().map(|n| (n.clone(), Capability {})).collect(),
    })
}

/// The given policies, or the defaults; configtxgen requires Readers, Writers and Admins (and
/// the names in `also_required`) wherever it writes policies.
fn policies_or(
    path: &str,
    given: Option<&Policies>,
    defaults: Policies,
    also_required: &[&str],
) -> Result<BTreeMap<String, ConfigPolicy>, ConfigTxError> {
    let chosen = given.cloned().unwrap_or(defaults);
    for name in [READERS, WRITERS, ADMINS].iter().chain(also_required) {
        if !chosen.contains_key(*name) {
            return Err(ConfigTxError::invalid(
                path,
                format!("no {name} policy defined"),
            ));
        }
    }
    Ok(chosen
        .into_iter()
        .map(|(name, policy)| {
            (
                name,
                ConfigPolicy {
                    version: 0,
                    policy: Some(policy),
                    mod_policy: ADMINS.into(),
                },
            )
        })
        .collect())
}

/// ANY Readers / ANY Writers / MAJORITY Admins.
fn level_defaults() -> Policies {
    use implicit_meta_policy::Rule;
    BTreeMap::from([
        (READERS.into(), implicit_meta(Rule::Any, READERS)),
        (WRITERS.into(), implicit_meta(Rule::Any, WRITERS)),
        (ADMINS.into(), implicit_meta(Rule::Majority, ADMINS)),
    ])
}

fn org_policies(
    mspid: &str,
    readers: &[Role],
    writers: &[Role],
    endorsement: Option<&[Role]>,
) -> Policies {
    let mut p = BTreeMap::from([
        (READERS.into(), signed_by_any(mspid, readers)),
        (WRITERS.into(), signed_by_any(mspid, writers)),
        (ADMINS.into(), signed_by_any(mspid, &[Role::Admin])),
    ]);
    if let Some(roles) = endorsement {
        p.insert(ENDORSEMENT.into(), signed_by_any(mspid, roles));
    }
    p
}

pub(crate) fn implicit_meta(rule: implicit_meta_policy::Rule, sub_policy: &str) -> Policy {
    Policy {
        r#type: policy::PolicyType::ImplicitMeta as i32,
        value: ImplicitMetaPolicy {
            sub_policy: sub_policy.into(),
            rule: rule as i32,
        }
        .encode_to_vec()
        .into(),
    }
}

/// `OR('<mspid>.<role>', ...)` as the policy language compiles it: NOutOf(1, SignedBy 0..n)
/// over one ROLE principal per role, envelope version 0.
pub(crate) fn signed_by_any(mspid: &str, roles: &[Role]) -> Policy {
    let rules = (0..roles.len())
        .map(|i| SignaturePolicy {
            r#type: Some(signature_policy::Type::SignedBy(i as i32)),
        })
        .collect();
    let envelope = SignaturePolicyEnvelope {
        version: 0,
        rule: Some(SignaturePolicy {
            r#type: Some(signature_policy::Type::NOutOf(signature_policy::NOutOf {
                n: 1,
                rules,
            })),
        }),
        identities: roles.iter().map(|r| Principal::role(mspid, *r)).collect(),
    };
    Policy {
        r#type: policy::PolicyType::Signature as i32,
        value: envelope.encode_to_vec().into(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ordo_proto::msp::MspPrincipal;

    pub(crate) fn msp(id: &str) -> MspConfig {
        MspConfig {
            r#type: 0,
            config: FabricMspConfig {
                name: id.into(),
                root_certs: vec![Bytes::from(format!("root of {id}"))],
                ..Default::default()
            }
            .encode_to_vec()
            .into(),
        }
    }

    pub(crate) fn consenter(n: u32) -> Consenter {
        Consenter {
            host: format!("orderer{n}.example.com"),
            port: 7050,
            client_tls_cert: Bytes::from(format!("client cert {n}")),
            server_tls_cert: Bytes::from(format!("server cert {n}")),
        }
    }

    /// Shaped as configtxgen's SampleAppChannelEtcdRaft: one orderer org, two peer orgs.
    pub(crate) fn sample_profile() -> Profile {
        let mut orderer_org = OrgProfile::new("OrdererOrg", msp("OrdererMSP"));
        orderer_org.endpoints = vec!["127.0.0.1:7050".into()];
        let mut org1 = OrgProfile::new("Org1", msp("Org1MSP"));
        org1.anchor_peers = vec![("peer0.org1".into(), 7051)];
        org1.node_ous = true;
        let org2 = OrgProfile::new("Org2", msp("Org2MSP"));
        let mut app = ApplicationProfile::new(vec![org1, org2]);
        app.acls = Some(BTreeMap::from([
            (
                "event/Block".to_string(),
                "/Channel/Application/Readers".to_string(),
            ),
            ("peer/Propose".to_string(), "Writers".to_string()),
        ]));
        let orderer = OrdererProfile::new(
            ConsensusProfile::EtcdRaft {
                consenters: (1..=3).map(consenter).collect(),
                options: default_raft_options(),
            },
            vec![orderer_org],
        );
        Profile::new("mychannel", orderer, Some(app))
    }

    /// Sets (or adds) the value `key` of the group at `path` under /Channel.
    pub(crate) fn set_value(cfg: &mut Config, path: &[&str], key: &str, bytes: Bytes) {
        let mut g = cfg.channel_group.as_mut().unwrap();
        for p in path {
            g = g.groups.get_mut(*p).unwrap();
        }
        g.values.entry(key.into()).or_default().value = bytes;
    }

    fn implicit(p: &ConfigPolicy) -> (i32, String) {
        let policy = p.policy.as_ref().unwrap();
        assert_eq!(policy.r#type, policy::PolicyType::ImplicitMeta as i32);
        let m = ImplicitMetaPolicy::decode(policy.value.clone()).unwrap();
        (m.rule, m.sub_policy)
    }

    fn signature_roles(p: &ConfigPolicy) -> Vec<(String, Role)> {
        let policy = p.policy.as_ref().unwrap();
        assert_eq!(policy.r#type, policy::PolicyType::Signature as i32);
        let env = SignaturePolicyEnvelope::decode(policy.value.clone()).unwrap();
        assert_eq!(env.version, 0);
        let Some(signature_policy::Type::NOutOf(n)) = env.rule.unwrap().r#type else {
            panic!("not an NOutOf")
        };
        assert_eq!(n.n, 1);
        for (i, r) in n.rules.iter().enumerate() {
            assert_eq!(r.r#type, Some(signature_policy::Type::SignedBy(i as i32)));
        }
        assert_eq!(n.rules.len(), env.identities.len());
        env.identities
            .iter()
            .map(|p: &MspPrincipal| match Principal::from_proto(p).unwrap() {
                Principal::Role { mspid, role } => (mspid, role),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn all_versions_zero(g: &ConfigGroup, path: &str) {
        assert_eq!(g.version, 0, "{path}");
        assert_eq!(g.mod_policy, "Admins", "{path}");
        for (k, v) in &g.values {
            assert_eq!(v.version, 0, "{path}/{k}");
            if k != ORDERER_ADDRESSES {
                assert_eq!(v.mod_policy, "Admins", "{path}/{k}");
            }
        }
        for (k, p) in &g.policies {
            assert_eq!(p.version, 0, "{path}/{k}");
            assert_eq!(p.mod_policy, "Admins", "{path}/{k}");
        }
        for (k, c) in &g.groups {
            all_versions_zero(c, &format!("{path}/{k}"));
        }
    }

    #[test]
    fn block_zero_layout() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let nonce = [7u8; 24];
        let block = genesis_block(&sample_profile(), t, nonce).unwrap();
        let header = block.header.as_ref().unwrap();
        assert_eq!(header.number, 0);
        assert!(header.previous_hash.is_empty());
        let data = &block.data.as_ref().unwrap().data;
        assert_eq!(data.len(), 1);
        assert_eq!(
            header.data_hash.as_ref(),
            Sha256::digest(&data[0]).as_slice()
        );
        let md = &block.metadata.as_ref().unwrap().metadata;
        assert_eq!(md.len(), 5);
        assert_eq!(md[0].as_ref(), [0x0a, 0x02, 0x0a, 0x00]);
        assert!(md[1].is_empty());
        assert!(md[2..].iter().all(|m| m.is_empty()));
        assert_eq!(last_config_index(&block), Ok(0));
        assert_eq!(crate::block::last_config_index(&block), Some(0));

        let env = Envelope::decode(data[0].clone()).unwrap();
        assert!(env.signature.is_empty());
        assert_eq!(env.encode_to_vec(), data[0].to_vec());
        let payload = Payload::decode(env.payload).unwrap();
        let h = payload.header.unwrap();
        let ch = ChannelHeader::decode(h.channel_header).unwrap();
        assert_eq!(ch.r#type, HeaderType::Config as i32);
        assert_eq!(ch.version, 1);
        assert_eq!(ch.epoch, 0);
        assert_eq!(ch.channel_id, "mychannel");
        assert_eq!(
            ch.timestamp,
            Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0
            })
        );
        assert_eq!(ch.tx_id, hex::encode(Sha256::digest(nonce)));
        let sh = SignatureHeader::decode(h.signature_header).unwrap();
        assert!(sh.creator.is_empty());
        assert_eq!(sh.nonce.as_ref(), nonce);
        let ce = ConfigEnvelope::decode(payload.data).unwrap();
        assert!(ce.last_update.is_none());
        let cfg = ce.config.unwrap();
        assert_eq!(cfg.sequence, 0);
        assert_eq!(cfg, config(&sample_profile()).unwrap());
        all_versions_zero(cfg.channel_group.as_ref().unwrap(), "/Channel");
        // Reproducible bytes.
        assert_eq!(genesis_block(&sample_profile(), t, nonce).unwrap(), block);
    }

    #[test]
    fn default_policies_everywhere() {
        use implicit_meta_policy::Rule;
        let cfg = config(&sample_profile()).unwrap();
        let root = cfg.channel_group.unwrap();
        let (any, maj) = (Rule::Any as i32, Rule::Majority as i32);
        let levels = [
            (&root, vec![READERS, WRITERS, ADMINS]),
            (
                &root.groups[ORDERER],
                vec![READERS, WRITERS, ADMINS, BLOCK_VALIDATION],
            ),
            (
                &root.groups[APPLICATION],
                vec![READERS, WRITERS, ADMINS, ENDORSEMENT, LIFECYCLE_ENDORSEMENT],
            ),
        ];
        for (g, names) in levels {
            let mut have: Vec<&str> = g.policies.keys().map(String::as_str).collect();
            have.sort();
            let mut want = names.clone();
            want.sort();
            assert_eq!(have, want);
            assert_eq!(implicit(&g.policies[READERS]), (any, READERS.into()));
            assert_eq!(implicit(&g.policies[WRITERS]), (any, WRITERS.into()));
            assert_eq!(implicit(&g.policies[ADMINS]), (maj, ADMINS.into()));
        }
        assert_eq!(
            implicit(&root.groups[ORDERER].policies[BLOCK_VALIDATION]),
            (any, WRITERS.into())
        );
        let app = &root.groups[APPLICATION];
        assert_eq!(
            implicit(&app.policies[ENDORSEMENT]),
            (maj, ENDORSEMENT.into())
        );
        assert_eq!(
            implicit(&app.policies[LIFECYCLE_ENDORSEMENT]),
            (maj, ENDORSEMENT.into())
        );

        let r = |m: &str, role| (m.to_string(), role);
        // sampleconfig-style orderer org (no NodeOUs).
        let oo = &root.groups[ORDERER].groups["OrdererOrg"];
        assert_eq!(
            signature_roles(&oo.policies[READERS]),
            [r("OrdererMSP", Role::Member)]
        );
        assert_eq!(
            signature_roles(&oo.policies[WRITERS]),
            [r("OrdererMSP", Role::Member)]
        );
        assert_eq!(
            signature_roles(&oo.policies[ADMINS]),
            [r("OrdererMSP", Role::Admin)]
        );
        assert!(!oo.policies.contains_key(ENDORSEMENT));
        // NodeOU peer org.
        let o1 = &app.groups["Org1"];
        assert_eq!(
            signature_roles(&o1.policies[READERS]),
            [
                r("Org1MSP", Role::Admin),
                r("Org1MSP", Role::Peer),
                r("Org1MSP", Role::Client)
            ]
        );
        assert_eq!(
            signature_roles(&o1.policies[WRITERS]),
            [r("Org1MSP", Role::Admin), r("Org1MSP", Role::Client)]
        );
        assert_eq!(
            signature_roles(&o1.policies[ENDORSEMENT]),
            [r("Org1MSP", Role::Peer)]
        );
        assert_eq!(
            signature_roles(&o1.policies[ADMINS]),
            [r("Org1MSP", Role::Admin)]
        );
        // sampleconfig peer org.
        let o2 = &app.groups["Org2"];
        for name in [READERS, WRITERS, ENDORSEMENT] {
            assert_eq!(
                signature_roles(&o2.policies[name]),
                [r("Org2MSP", Role::Member)]
            );
        }
        assert_eq!(
            signature_roles(&o2.policies[ADMINS]),
            [r("Org2MSP", Role::Admin)]
        );

        // Values configtxgen always writes.
        let o = &root.groups[ORDERER];
        for key in [
            CONSENSUS_TYPE,
            BATCH_SIZE,
            BATCH_TIMEOUT,
            CHANNEL_RESTRICTIONS,
            CAPABILITIES,
        ] {
            assert!(o.values.contains_key(key), "{key}");
        }
        let t = BatchTimeout::decode(o.values[BATCH_TIMEOUT].value.clone()).unwrap();
        assert_eq!(t.timeout, "2s");
        assert!(!root.values.contains_key(ORDERER_ADDRESSES));
        let w = BlockDataHashingStructure::decode(
            root.values[BLOCK_DATA_HASHING_STRUCTURE].value.clone(),
        )
        .unwrap();
        assert_eq!(w.width, u32::MAX);
    }

    #[test]
    fn profile_refusals() {
        let mut p = sample_profile();
        p.orderer.addresses = vec!["o:7050".into()];
        assert!(config(&p).unwrap_err().to_string().contains("V3_0"));
        p.channel_capabilities = vec!["V2_0".into()];
        let cfg = config(&p).unwrap();
        let v = &cfg.channel_group.as_ref().unwrap().values[ORDERER_ADDRESSES];
        assert_eq!(v.mod_policy, "/Channel/Orderer/Admins");

        let mut p = sample_profile();
        p.orderer.orgs[0].endpoints.clear();
        assert!(config(&p)
            .unwrap_err()
            .to_string()
            .contains("endpoints for organization OrdererOrg are missing"));

        let mut p = sample_profile();
        p.orderer.policies = Some(level_defaults());
        assert!(config(&p)
            .unwrap_err()
            .to_string()
            .contains("no BlockValidation policy"));

        let mut p = sample_profile();
        p.policies = Some(BTreeMap::from([(
            ADMINS.to_string(),
            implicit_meta(implicit_meta_policy::Rule::Any, ADMINS),
        )]));
        assert!(config(&p)
            .unwrap_err()
            .to_string()
            .contains("no Readers policy"));

        let p = sample_profile();
        assert!(genesis_block(
            &Profile {
                channel_id: "Bad".into(),
                ..p
            },
            UNIX_EPOCH,
            [0; 24]
        )
        .is_err());
    }

    #[test]
    fn solo_with_dedup_window() {
        let mut p = sample_profile();
        p.orderer.consensus = ConsensusProfile::Solo;
        p.orderer.dedup_window_blocks = Some(7);
        let v = ChannelValues::from_config(&config(&p).unwrap()).unwrap();
        assert_eq!(v.consensus, crate::configtx::values::Consensus::Solo);
        assert_eq!(v.dedup_window_blocks, 7);
    }

    #[test]
    fn last_config_index_rules() {
        let mut block = genesis_block(&sample_profile(), UNIX_EPOCH, [0; 24]).unwrap();
        let md = &mut block.metadata.as_mut().unwrap().metadata;
        md[0] = Bytes::new();
        md[1] = Metadata {
            value: LastConfig { index: 4 }.encode_to_vec().into(),
            signatures: vec![],
        }
        .encode_to_vec()
        .into();
        assert_eq!(last_config_index(&block), Ok(4));
        let md = &mut block.metadata.as_mut().unwrap().metadata;
        md[0] = Bytes::from_static(&[0xff]);
        assert!(last_config_index(&block).is_err());
    }
}
