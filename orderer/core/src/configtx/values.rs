//! A `common.Config` read into the values Ordo's rules need, with the checks Fabric's
//! `channelconfig` applies when it builds a bundle (FABRIC-CONFIG.md §1.2): only known value keys
//! per level, each decoded as its message and validated, capabilities known to this orderer.
//! The MSP configurations are kept raw: the MSP module sets them up.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use ordo_proto::common::{
    BlockDataHashingStructure, Capabilities, Config, ConfigGroup, Consortium, HashingAlgorithm,
    OrdererAddresses, Orderers,
};
use ordo_proto::etcdraft::{ConfigMetadata, Consenter, Options};
use ordo_proto::msp::{FabricMspConfig, MspConfig};
use ordo_proto::orderer::{
    consensus_type, BatchSize, BatchTimeout, ChannelRestrictions, ConsensusType, KafkaBrokers,
};
use ordo_proto::ordo::ConsensusOptions;
use ordo_proto::protos::{AcLs, AnchorPeers};
use prost::Message;

use super::keys::*;
use super::{duration, ConfigTxError};

/// Channel capabilities Fabric 3.x knows (`common/capabilities/channel.go`).
pub const CHANNEL_CAPABILITIES: &[&str] = &["V1_1", "V1_3", "V1_4_2", "V1_4_3", "V2_0", "V3_0"];
/// Orderer capabilities (`common/capabilities/orderer.go`).
pub const ORDERER_CAPABILITIES: &[&str] = &["V1_1", "V1_4_2", "V2_0"];
/// Application capabilities (`common/capabilities/application.go`). The orderer does not refuse
/// unknown ones (peers do); they only gate ACLs here.
pub const APPLICATION_CAPABILITIES: &[&str] = &[
    "V1_1",
    "V1_2",
    "V1_3",
    "V1_4_2",
    "V2_0",
    "V2_5",
    "V1_1_PVTDATA_EXPERIMENTAL",
    "V1_1_RESOURCETREE_EXPERIMENTAL",
];

/// Duplicate suppression window when ConsensusOptions leaves it unset.
pub const DEFAULT_DEDUP_WINDOW_BLOCKS: u32 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgorithm {
    Sha256,
    Sha3_256,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSizeValues {
    pub max_message_count: u32,
    pub absolute_max_bytes: u32,
    pub preferred_max_bytes: u32,
}

/// The consensus type and its decoded metadata. Only the types Ordo runs are representable.
#[derive(Clone, Debug, PartialEq)]
pub enum Consensus {
    Solo,
    EtcdRaft {
        consenters: Vec<Consenter>,
        /// Absent options are refused by `etcdraft::verify_config_metadata`, not here: Fabric
        /// builds the bundle and checks the metadata separately.
        options: Option<Options>,
    },
}

impl Consensus {
    /// The ConsensusType.type string.
    pub fn type_name(&self) -> &'static str {
        match self {
            Consensus::Solo => "solo",
            Consensus::EtcdRaft { .. } => "etcdraft",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrdererOrg {
    /// The group name (configtxgen's `Name`), not necessarily the MSP ID.
    pub name: String,
    pub msp_id: String,
    pub msp: MspConfig,
    pub endpoints: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorPeer {
    pub host: String,
    pub port: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ApplicationOrg {
    pub name: String,
    pub msp_id: String,
    pub msp: MspConfig,
    pub anchor_peers: Vec<AnchorPeer>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ApplicationValues {
    pub capabilities: BTreeSet<String>,
    /// API name → absolute policy path (a relative reference resolved under
    /// `/Channel/Application`); `None` when the ACLs value is absent.
    pub acls: Option<BTreeMap<String, String>>,
    pub orgs: Vec<ApplicationOrg>,
}

/// What Ordo reads from a channel config. Orgs are sorted by group name.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelValues {
    pub sequence: u64,
    pub hashing_algorithm: HashAlgorithm,
    pub channel_capabilities: BTreeSet<String>,
    /// The global OrdererAddresses (legacy; forbidden with V3_0).
    pub orderer_addresses: Vec<String>,
    pub consortium: Option<String>,
    pub orderer_capabilities: BTreeSet<String>,
    pub consensus: Consensus,
    pub maintenance: bool,
    pub batch_size: BatchSizeValues,
    pub batch_timeout: Duration,
    pub max_channels: u64,
    /// 0 turns duplicate suppression off.
    pub dedup_window_blocks: u32,
    pub orderer_orgs: Vec<OrdererOrg>,
    pub application: Option<ApplicationValues>,
}

impl ChannelValues {
    /// Reads and validates `config`. Ordo needs an Orderer group (an orderer cannot serve a
    /// channel without one); a `Consortiums` group (2.x system channels only) is refused, as Ordo
    /// has no system channel.
    pub fn from_config(config: &Config) -> Result<ChannelValues, ConfigTxError> {
        let root = config.channel_group.as_ref().ok_or_else(|| {
            ConfigTxError::invalid("/Channel", "config must contain a channel group")
        })?;
        pre_validate(root)?;
        let path = "/Channel";
        check_keys(
            path,
            root,
            &[
                HASHING_ALGORITHM,
                BLOCK_DATA_HASHING_STRUCTURE,
                ORDERER_ADDRESSES,
                CONSORTIUM,
                CAPABILITIES,
                ORDERERS,
            ],
        )?;
        let hashing: HashingAlgorithm = decode_value(path, root, HASHING_ALGORITHM)?;
        let hashing_algorithm = match hashing.name.as_str() {
            "SHA256" => HashAlgorithm::Sha256,
            "SHA3_256" => HashAlgorithm::Sha3_256,
            other => {
                return Err(ConfigTxError::invalid(
                    format!("{path}/{HASHING_ALGORITHM}"),
                    format!("Unknown hashing algorithm type: {other}"),
                ))
            }
        };
        let width: BlockDataHashingStructure =
            decode_value(path, root, BLOCK_DATA_HASHING_STRUCTURE)?;
        if width.width != u32::MAX {
            return Err(ConfigTxError::invalid(
                format!("{path}/{BLOCK_DATA_HASHING_STRUCTURE}"),
                "BlockDataHashStructure width only supported at MaxUint32 in this version",
            ));
        }
        let channel_capabilities = capabilities(path, root, "Channel", Some(CHANNEL_CAPABILITIES))?;
        let has = |c: &str| channel_capabilities.contains(c);
        let org_endpoints = has("V1_4_2") || has("V1_4_3") || has("V2_0") || has("V3_0");
        let v3 = has("V3_0");
        let addresses: OrdererAddresses = decode_value(path, root, ORDERER_ADDRESSES)?;
        if !org_endpoints && addresses.addresses.is_empty() {
            return Err(ConfigTxError::invalid(
                format!("{path}/{ORDERER_ADDRESSES}"),
                "Must set some OrdererAddresses",
            ));
        }
        if v3 && !addresses.addresses.is_empty() {
            return Err(ConfigTxError::invalid(
                format!("{path}/{ORDERER_ADDRESSES}"),
                "global OrdererAddresses are not allowed with V3_0 capability, use org specific addresses only",
            ));
        }
        let consortium: Consortium = decode_value(path, root, CONSORTIUM)?;
        let _: Orderers = decode_value(path, root, ORDERERS)?;

        for name in root.groups.keys() {
            match name.as_str() {
                ORDERER | APPLICATION => {}
                CONSORTIUMS => {
                    return Err(ConfigTxError::invalid(
                        format!("{path}/{CONSORTIUMS}"),
                        "the Consortiums group belongs to a system channel, which Ordo does not support",
                    ))
                }
                other => {
                    return Err(ConfigTxError::invalid(
                        format!("{path}/{other}"),
                        format!("Disallowed channel group: {other}"),
                    ))
                }
            }
        }
        let orderer_group = root.groups.get(ORDERER).ok_or_else(|| {
            ConfigTxError::invalid("/Channel/Orderer", "config has no Orderer group")
        })?;
        let orderer = read_orderer(orderer_group, org_endpoints, v3)?;
        let application = root
            .groups
            .get(APPLICATION)
            .map(read_application)
            .transpose()?;

        let values = ChannelValues {
            sequence: config.sequence,
            hashing_algorithm,
            channel_capabilities,
            orderer_addresses: addresses.addresses,
            consortium: (!consortium.name.is_empty()).then_some(consortium.name),
            orderer_capabilities: orderer.capabilities,
            consensus: orderer.consensus,
            maintenance: orderer.maintenance,
            batch_size: orderer.batch_size,
            batch_timeout: orderer.batch_timeout,
            max_channels: orderer.max_channels,
            dedup_window_blocks: orderer.dedup_window_blocks,
            orderer_orgs: orderer.orgs,
            application,
        };
        values.check_duplicate_msps()?;
        Ok(values)
    }

    pub fn application_orgs(&self) -> &[ApplicationOrg] {
        self.application.as_ref().map_or(&[], |a| a.orgs.as_slice())
    }

    /// Every org's MSP configuration once per MSP ID, orderer orgs first (two orgs naming the
    /// same MSP ID carry identical configurations, which `from_config` checked).
    pub fn all_msp_configs(&self) -> Vec<(&str, &MspConfig)> {
        let mut seen = BTreeSet::new();
        self.orderer_orgs
            .iter()
            .map(|o| (o.msp_id.as_str(), &o.msp))
            .chain(
                self.application_orgs()
                    .iter()
                    .map(|o| (o.msp_id.as_str(), &o.msp)),
            )
            .filter(|(id, _)| seen.insert(*id))
            .collect()
    }

    pub fn channel_capabilities(&self) -> Vec<&str> {
        self.channel_capabilities
            .iter()
            .map(String::as_str)
            .collect()
    }

    pub fn has_channel_capability(&self, name: &str) -> bool {
        self.channel_capabilities.contains(name)
    }

    /// Where the channel's orderers are reached: the orgs' Endpoints when any org has them
    /// (V1_4_2+), otherwise the global OrdererAddresses, as Fabric's clients choose.
    pub fn orderer_endpoints(&self) -> Vec<String> {
        let per_org: Vec<String> = self
            .orderer_orgs
            .iter()
            .flat_map(|o| o.endpoints.iter().cloned())
            .collect();
        if per_org.is_empty() {
            self.orderer_addresses.clone()
        } else {
            per_org
        }
    }

    /// `Attempted to define two different versions of MSP`: one MSP ID, one configuration.
    fn check_duplicate_msps(&self) -> Result<(), ConfigTxError> {
        let mut by_id: BTreeMap<&str, &MspConfig> = BTreeMap::new();
        let orgs = self
            .orderer_orgs
            .iter()
            .map(|o| (o.msp_id.as_str(), &o.msp, &o.name))
            .chain(
                self.application_orgs()
                    .iter()
                    .map(|o| (o.msp_id.as_str(), &o.msp, &o.name)),
            );
        for (id, msp, name) in orgs {
            if let Some(previous) = by_id.insert(id, msp) {
                if previous != msp {
                    return Err(ConfigTxError::invalid(
                        format!("org {name}"),
                        format!("Attempted to define two different versions of MSP: {id}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `channelconfig.preValidate`: channel or application capabilities need orderer capabilities.
fn pre_validate(root: &ConfigGroup) -> Result<(), ConfigTxError> {
    if let Some(orderer) = root.groups.get(ORDERER) {
        if !orderer.values.contains_key(CAPABILITIES) {
            if root.values.contains_key(CAPABILITIES) {
                return Err(ConfigTxError::invalid(
                    "/Channel/Capabilities",
                    "cannot enable channel capabilities without orderer support first",
                ));
            }
            if let Some(app) = root.groups.get(APPLICATION) {
                if app.values.contains_key(CAPABILITIES) {
                    return Err(ConfigTxError::invalid(
                        "/Channel/Application/Capabilities",
                        "cannot enable application capabilities without orderer support first",
                    ));
                }
            }
        }
    }
    Ok(())
}

struct OrdererSection {
    capabilities: BTreeSet<String>,
    consensus: Consensus,
    maintenance: bool,
    batch_size: BatchSizeValues,
    batch_timeout: Duration,
    max_channels: u64,
    dedup_window_blocks: u32,
    orgs: Vec<OrdererOrg>,
}

fn read_orderer(
    group: &ConfigGroup,
    org_endpoints: bool,
    v3: bool,
) -> Result<OrdererSection, ConfigTxError> {
    let path = "/Channel/Orderer";
    check_keys(
        path,
        group,
        &[
            CONSENSUS_TYPE,
            BATCH_SIZE,
            BATCH_TIMEOUT,
            CHANNEL_RESTRICTIONS,
            KAFKA_BROKERS,
            ORDERERS,
            CAPABILITIES,
        ],
    )?;
    let capabilities = capabilities(path, group, "Orderer", Some(ORDERER_CAPABILITIES))?;

    let size: BatchSize = decode_value(path, group, BATCH_SIZE)?;
    let size_err = |reason: String| ConfigTxError::invalid(format!("{path}/{BATCH_SIZE}"), reason);
    for (field, value) in [
        ("max message count", size.max_message_count),
        ("absolute max bytes", size.absolute_max_bytes),
        ("preferred max bytes", size.preferred_max_bytes),
    ] {
        if value == 0 {
            return Err(size_err(format!(
                "Attempted to set the batch size {field} to an invalid value: 0"
            )));
        }
    }
    if size.preferred_max_bytes > size.absolute_max_bytes {
        return Err(size_err(format!(
            "Attempted to set the batch size preferred max bytes ({}) greater than the absolute max bytes ({}).",
            size.preferred_max_bytes, size.absolute_max_bytes
        )));
    }

    let timeout: BatchTimeout = decode_value(path, group, BATCH_TIMEOUT)?;
    let timeout_err =
        |reason: String| ConfigTxError::invalid(format!("{path}/{BATCH_TIMEOUT}"), reason);
    let nanos = duration::parse_nanos(&timeout.timeout).map_err(|e| {
        timeout_err(format!(
            "Attempted to set the batch timeout to a invalid value: {e}"
        ))
    })?;
    if nanos <= 0 {
        return Err(timeout_err(format!(
            "Attempted to set the batch timeout to a non-positive value: {}",
            duration::format_nanos(nanos)
        )));
    }
    // Positive, so the conversion cannot fail.
    let batch_timeout = Duration::from_nanos(nanos.unsigned_abs());

    let restrictions: ChannelRestrictions = decode_value(path, group, CHANNEL_RESTRICTIONS)?;
    let _: KafkaBrokers = decode_value(path, group, KAFKA_BROKERS)?;
    let _: Orderers = decode_value(path, group, ORDERERS)?;

    let consensus_type: ConsensusType = decode_value(path, group, CONSENSUS_TYPE)?;
    let ct_path = format!("{path}/{CONSENSUS_TYPE}");
    let maintenance = match consensus_type::State::try_from(consensus_type.state) {
        Ok(consensus_type::State::Normal) => false,
        Ok(consensus_type::State::Maintenance) => true,
        Err(_) => {
            return Err(ConfigTxError::invalid(
                &ct_path,
                format!("unknown consensus state {}", consensus_type.state),
            ))
        }
    };
    let (consensus, options) = match consensus_type.r#type.as_str() {
        "solo" => {
            let options = ConsensusOptions::decode(consensus_type.metadata.as_ref())
                .map_err(|e| ConfigTxError::invalid(&ct_path, format!("solo metadata: {e}")))?;
            (Consensus::Solo, options)
        }
        "etcdraft" => {
            let md = ConfigMetadata::decode(consensus_type.metadata.as_ref())
                .map_err(|e| ConfigTxError::invalid(&ct_path, format!("etcdraft metadata: {e}")))?;
            (
                Consensus::EtcdRaft {
                    consenters: md.consenters,
                    options: md.options,
                },
                md.ordo.unwrap_or_default(),
            )
        }
        other => {
            return Err(ConfigTxError::invalid(
                &ct_path,
                format!(
                    "consensus type {other:?} is not supported by Ordo (supported: solo, etcdraft)"
                ),
            ))
        }
    };

    let mut orgs = Vec::new();
    for (name, org) in &group.groups {
        orgs.push(read_orderer_org(name, org, org_endpoints)?);
    }
    orgs.sort_by(|a, b| a.name.cmp(&b.name));
    if v3 {
        let missing: Vec<&str> = orgs
            .iter()
            .filter(|o| o.endpoints.is_empty())
            .map(|o| o.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(ConfigTxError::invalid(
                path,
                format!("some orderer organizations endpoints are empty: {missing:?}"),
            ));
        }
    }

    Ok(OrdererSection {
        capabilities,
        consensus,
        maintenance,
        batch_size: BatchSizeValues {
            max_message_count: size.max_message_count,
            absolute_max_bytes: size.absolute_max_bytes,
            preferred_max_bytes: size.preferred_max_bytes,
        },
        batch_timeout,
        max_channels: restrictions.max_count,
        dedup_window_blocks: options
            .dedup_window_blocks
            .unwrap_or(DEFAULT_DEDUP_WINDOW_BLOCKS),
        orgs,
    })
}

fn read_orderer_org(
    name: &str,
    group: &ConfigGroup,
    org_endpoints: bool,
) -> Result<OrdererOrg, ConfigTxError> {
    let path = format!("/Channel/Orderer/{name}");
    if !group.groups.is_empty() {
        return Err(ConfigTxError::invalid(
            path,
            "OrdererOrg config does not allow sub-groups",
        ));
    }
    if !org_endpoints && group.values.contains_key(ENDPOINTS) {
        return Err(ConfigTxError::invalid(
            &path,
            format!("Orderer Org {name} cannot contain endpoints value until V1_4_2+ capabilities have been enabled"),
        ));
    }
    check_keys(&path, group, &[MSP, ENDPOINTS])?;
    let (msp, msp_id) = read_msp(&path, name, group)?;
    let endpoints: OrdererAddresses = decode_value(&path, group, ENDPOINTS)?;
    Ok(OrdererOrg {
        name: name.into(),
        msp_id,
        msp,
        endpoints: endpoints.addresses,
    })
}

fn read_application(group: &ConfigGroup) -> Result<ApplicationValues, ConfigTxError> {
    let path = "/Channel/Application";
    check_keys(path, group, &[ACLS, CAPABILITIES])?;
    let capabilities = capabilities(path, group, "Application", None)?;
    let acl_capable = ["V1_2", "V1_3", "V1_4_2", "V2_0", "V2_5"]
        .iter()
        .any(|c| capabilities.contains(*c));
    let acls = match group.values.get(ACLS) {
        None => None,
        Some(_) if !acl_capable => {
            return Err(ConfigTxError::invalid(
                format!("{path}/{ACLS}"),
                "ACLs may not be specified without the required capability",
            ))
        }
        Some(_) => {
            let acls: AcLs = decode_value(path, group, ACLS)?;
            Some(
                acls.acls
                    .into_iter()
                    .map(|(api, resource)| {
                        let policy = if resource.policy_ref.starts_with('/') {
                            resource.policy_ref
                        } else {
                            format!("{path}/{}", resource.policy_ref)
                        };
                        (api, policy)
                    })
                    .collect(),
            )
        }
    };
    let mut orgs = Vec::new();
    for (name, org) in &group.groups {
        let org_path = format!("{path}/{name}");
        if !org.groups.is_empty() {
            return Err(ConfigTxError::invalid(
                org_path,
                "ApplicationOrg config does not allow sub-groups",
            ));
        }
        check_keys(&org_path, org, &[MSP, ANCHOR_PEERS])?;
        let (msp, msp_id) = read_msp(&org_path, name, org)?;
        let anchors: AnchorPeers = decode_value(&org_path, org, ANCHOR_PEERS)?;
        orgs.push(ApplicationOrg {
            name: name.clone(),
            msp_id,
            msp,
            anchor_peers: anchors
                .anchor_peers
                .into_iter()
                .map(|a| AnchorPeer {
                    host: a.host,
                    port: a.port,
                })
                .collect(),
        });
    }
    orgs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ApplicationValues {
        capabilities,
        acls,
        orgs,
    })
}

/// The org's MSPConfig and its MSP ID. Full setup is the MSP module's; the ID is read here
/// because ValidateNew and policies need it. Only X.509 (FABRIC) MSPs are accepted: Ordo has no
/// Idemix MSP.
fn read_msp(
    path: &str,
    org: &str,
    group: &ConfigGroup,
) -> Result<(MspConfig, String), ConfigTxError> {
    let msp: MspConfig = decode_value(path, group, MSP)?;
    let element = format!("{path}/{MSP}");
    if msp.r#type != 0 {
        return Err(ConfigTxError::invalid(
            element,
            format!(
                "MSP type {} of org {org} is not supported (Ordo sets up X.509 MSPs only)",
                msp.r#type
            ),
        ));
    }
    let fabric = FabricMspConfig::decode(msp.config.as_ref())
        .map_err(|e| ConfigTxError::invalid(&element, format!("FabricMSPConfig: {e}")))?;
    if fabric.name.is_empty() {
        return Err(ConfigTxError::invalid(
            element,
            format!("MSP for org {org} has empty MSP ID"),
        ));
    }
    Ok((msp, fabric.name))
}

/// `Unexpected key <k>`: a level accepts only its standard value keys.
fn check_keys(path: &str, group: &ConfigGroup, allowed: &[&str]) -> Result<(), ConfigTxError> {
    let mut keys: Vec<&String> = group.values.keys().collect();
    keys.sort();
    for key in keys {
        if !allowed.contains(&key.as_str()) {
            return Err(ConfigTxError::invalid(
                format!("{path}/{key}"),
                format!("Unexpected key {key}"),
            ));
        }
    }
    Ok(())
}

/// Decodes a value by key; an absent key reads as the empty message (as Fabric's
/// `DeserializeProtoValuesFromGroup` leaves it) and must then pass the level's checks.
fn decode_value<M: Message + Default>(
    path: &str,
    group: &ConfigGroup,
    key: &str,
) -> Result<M, ConfigTxError> {
    let bytes = group
        .values
        .get(key)
        .map_or(Bytes::new(), |v| v.value.clone());
    M::decode(bytes).map_err(|e| {
        ConfigTxError::invalid(
            format!("{path}/{key}"),
            format!("value does not decode: {e}"),
        )
    })
}

/// The capability names at one level; `known` set means an unknown name is refused
/// (`<Type> capability <X> is required but not supported`).
fn capabilities(
    path: &str,
    group: &ConfigGroup,
    kind: &str,
    known: Option<&[&str]>,
) -> Result<BTreeSet<String>, ConfigTxError> {
    let caps: Capabilities = decode_value(path, group, CAPABILITIES)?;
    let names: BTreeSet<String> = caps.capabilities.into_keys().collect();
    if let Some(known) = known {
        if let Some(unknown) = names.iter().find(|n| !known.contains(&n.as_str())) {
            return Err(ConfigTxError::invalid(
                format!("{path}/{CAPABILITIES}"),
                format!("{kind} capability {unknown} is required but not supported"),
            ));
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configtx::genesis::config;
    use crate::configtx::genesis::tests::{sample_profile, set_value};
    use ordo_proto::common::{Capability, ConfigValue};

    fn sample() -> Config {
        config(&sample_profile()).unwrap()
    }

    fn refused(cfg: &Config) -> String {
        ChannelValues::from_config(cfg).unwrap_err().to_string()
    }

    #[test]
    fn configtxgen_shaped_config_decodes() {
        let v = ChannelValues::from_config(&sample()).unwrap();
        assert_eq!(v.sequence, 0);
        assert_eq!(v.hashing_algorithm, HashAlgorithm::Sha256);
        assert_eq!(v.channel_capabilities(), vec!["V3_0"]);
        assert_eq!(
            crate::msp::MspVersion::from_channel_capabilities(&v.channel_capabilities()),
            crate::msp::MspVersion::V3_0
        );
        assert!(v.orderer_capabilities.contains("V2_0"));
        assert_eq!(v.batch_size.max_message_count, 500);
        assert_eq!(v.batch_size.absolute_max_bytes, 10 * 1024 * 1024);
        assert_eq!(v.batch_size.preferred_max_bytes, 2 * 1024 * 1024);
        assert_eq!(v.batch_timeout, Duration::from_secs(2));
        assert_eq!(v.dedup_window_blocks, DEFAULT_DEDUP_WINDOW_BLOCKS);
        assert!(
            matches!(v.consensus, Consensus::EtcdRaft { ref consenters, .. } if consenters.len() == 3)
        );
        assert_eq!(v.orderer_orgs.len(), 1);
        assert_eq!(v.orderer_orgs[0].msp_id, "OrdererMSP");
        assert_eq!(v.orderer_endpoints(), vec!["127.0.0.1:7050".to_string()]);
        let names: Vec<&str> = v
            .application_orgs()
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(names, ["Org1", "Org2"]);
        assert_eq!(v.application_orgs()[0].anchor_peers[0].port, 7051);
        let acls = v.application.as_ref().unwrap().acls.as_ref().unwrap();
        assert_eq!(acls["event/Block"], "/Channel/Application/Readers");
        let ids: Vec<&str> = v.all_msp_configs().iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, ["OrdererMSP", "Org1MSP", "Org2MSP"]);
    }

    #[test]
    fn unexpected_key_refused() {
        let mut cfg = sample();
        set_value(&mut cfg, &["Orderer"], "Bogus", Bytes::new());
        assert!(refused(&cfg).contains("Unexpected key Bogus"));
        let mut cfg = sample();
        set_value(
            &mut cfg,
            &["Application", "Org1"],
            "Endpoints",
            Bytes::new(),
        );
        assert!(refused(&cfg).contains("Unexpected key Endpoints"));
    }

    #[test]
    fn bad_hashing_algorithm_refused() {
        let mut cfg = sample();
        let v = HashingAlgorithm { name: "MD5".into() }.encode_to_vec();
        set_value(&mut cfg, &[], HASHING_ALGORITHM, v.into());
        assert!(refused(&cfg).contains("Unknown hashing algorithm type: MD5"));
        let mut cfg = sample();
        let v = BlockDataHashingStructure { width: 7 }.encode_to_vec();
        set_value(&mut cfg, &[], BLOCK_DATA_HASHING_STRUCTURE, v.into());
        assert!(refused(&cfg).contains("MaxUint32"));
    }

    fn batch(max: u32, abs: u32, pref: u32) -> Bytes {
        BatchSize {
            max_message_count: max,
            absolute_max_bytes: abs,
            preferred_max_bytes: pref,
        }
        .encode_to_vec()
        .into()
    }

    #[test]
    fn batch_size_rules() {
        let mut cfg = sample();
        set_value(&mut cfg, &["Orderer"], BATCH_SIZE, batch(10, 100, 200));
        assert!(refused(&cfg)
            .contains("preferred max bytes (200) greater than the absolute max bytes (100)"));
        let mut cfg = sample();
        set_value(&mut cfg, &["Orderer"], BATCH_SIZE, batch(0, 100, 50));
        assert!(refused(&cfg).contains("max message count to an invalid value: 0"));
        let mut cfg = sample();
        cfg.channel_group
            .as_mut()
            .unwrap()
            .groups
            .get_mut("Orderer")
            .unwrap()
            .values
            .remove(BATCH_SIZE);
        assert!(refused(&cfg).contains("invalid value: 0"));
    }

    #[test]
    fn batch_timeout_rules() {
        for (text, want) in [
            ("0s", "non-positive value: 0s"),
            ("-1s", "non-positive value: -1s"),
            ("2 seconds", "a invalid value: time:"),
            ("", "a invalid value"),
        ] {
            let mut cfg = sample();
            let v = BatchTimeout {
                timeout: text.into(),
            }
            .encode_to_vec();
            set_value(&mut cfg, &["Orderer"], BATCH_TIMEOUT, v.into());
            let err = refused(&cfg);
            assert!(err.contains(want), "{text}: {err}");
            assert!(err.starts_with("/Channel/Orderer/BatchTimeout"), "{err}");
        }
    }

    fn caps(names: &[&str]) -> Bytes {
        Capabilities {
            capabilities: names
                .iter()
                .map(|n| (n.to_string(), Capability {}))
                .collect(),
        }
        .encode_to_vec()
        .into()
    }

    #[test]
    fn capability_rules() {
        let mut cfg = sample();
        set_value(&mut cfg, &[], CAPABILITIES, caps(&["V9_9"]));
        assert!(refused(&cfg).contains("Channel capability V9_9 is required but not supported"));
        let mut cfg = sample();
        set_value(&mut cfg, &["Orderer"], CAPABILITIES, caps(&["V3_0"]));
        assert!(refused(&cfg).contains("Orderer capability V3_0 is required but not supported"));
        // Application capabilities are the peers' to refuse.
        let mut cfg = sample();
        set_value(
            &mut cfg,
            &["Application"],
            CAPABILITIES,
            caps(&["V2_5", "V9_9"]),
        );
        ChannelValues::from_config(&cfg).unwrap();
        // Ordering: no channel capabilities without orderer capabilities.
        let mut cfg = sample();
        cfg.channel_group
            .as_mut()
            .unwrap()
            .groups
            .get_mut("Orderer")
            .unwrap()
            .values
            .remove(CAPABILITIES);
        assert!(refused(&cfg).contains("without orderer support first"));
        // ACLs need application V1_2+.
        let mut cfg = sample();
        set_value(&mut cfg, &["Application"], CAPABILITIES, caps(&["V1_1"]));
        assert!(refused(&cfg).contains("ACLs may not be specified"));
    }

    #[test]
    fn orderer_address_rules() {
        // V3_0 forbids global addresses and requires org endpoints.
        let mut cfg = sample();
        let addrs = OrdererAddresses {
            addresses: vec!["o:7050".into()],
        }
        .encode_to_vec();
        set_value(&mut cfg, &[], ORDERER_ADDRESSES, addrs.clone().into());
        assert!(refused(&cfg).contains("not allowed with V3_0"));
        let mut cfg = sample();
        set_value(
            &mut cfg,
            &["Orderer", "OrdererOrg"],
            ENDPOINTS,
            Bytes::new(),
        );
        assert!(refused(&cfg).contains("endpoints are empty"));
        // V2_0: global addresses allowed and optional; endpoints allowed.
        let mut cfg = sample();
        set_value(&mut cfg, &[], CAPABILITIES, caps(&["V2_0"]));
        set_value(
            &mut cfg,
            &["Orderer", "OrdererOrg"],
            ENDPOINTS,
            Bytes::new(),
        );
        ChannelValues::from_config(&cfg).unwrap();
        // V1_3: addresses required, org endpoints forbidden.
        let mut cfg = sample();
        set_value(&mut cfg, &[], CAPABILITIES, caps(&["V1_3"]));
        assert!(refused(&cfg).contains("Must set some OrdererAddresses"));
        set_value(&mut cfg, &[], ORDERER_ADDRESSES, addrs.into());
        assert!(refused(&cfg).contains("cannot contain endpoints value until V1_4_2"));
        cfg.channel_group
            .as_mut()
            .unwrap()
            .groups
            .get_mut("Orderer")
            .unwrap()
            .groups
            .get_mut("OrdererOrg")
            .unwrap()
            .values
            .remove(ENDPOINTS);
        let v = ChannelValues::from_config(&cfg).unwrap();
        assert_eq!(v.orderer_endpoints(), vec!["o:7050".to_string()]);
        assert_eq!(
            crate::msp::MspVersion::from_channel_capabilities(&v.channel_capabilities()),
            crate::msp::MspVersion::V1_3
        );
    }

    #[test]
    fn unknown_consensus_type_refused() {
        for kind in ["kafka", "BFT", ""] {
            let mut cfg = sample();
            let v = ConsensusType {
                r#type: kind.into(),
                ..Default::default()
            }
            .encode_to_vec();
            set_value(&mut cfg, &["Orderer"], CONSENSUS_TYPE, v.into());
            assert!(refused(&cfg).contains("is not supported by Ordo"), "{kind}");
        }
        let mut cfg = sample();
        let opts = ConsensusOptions {
            dedup_window_blocks: Some(0),
        }
        .encode_to_vec();
        let v = ConsensusType {
            r#type: "solo".into(),
            metadata: opts.into(),
            state: 0,
        }
        .encode_to_vec();
        set_value(&mut cfg, &["Orderer"], CONSENSUS_TYPE, v.into());
        let values = ChannelValues::from_config(&cfg).unwrap();
        assert_eq!(values.consensus, Consensus::Solo);
        assert_eq!(values.dedup_window_blocks, 0);
    }

    #[test]
    fn group_rules() {
        let mut cfg = sample();
        cfg.channel_group
            .as_mut()
            .unwrap()
            .groups
            .insert("Other".into(), ConfigGroup::default());
        assert!(refused(&cfg).contains("Disallowed channel group: Other"));
        let mut cfg = sample();
        cfg.channel_group
            .as_mut()
            .unwrap()
            .groups
            .get_mut("Application")
            .unwrap()
            .groups
            .get_mut("Org1")
            .unwrap()
            .groups
            .insert("x".into(), ConfigGroup::default());
        assert!(refused(&cfg).contains("does not allow sub-groups"));
        let mut cfg = sample();
        cfg.channel_group.as_mut().unwrap().groups.remove("Orderer");
        assert!(refused(&cfg).contains("no Orderer group"));
        // Two orgs, one MSP ID, different configs.
        let mut cfg = sample();
        let org2_msp = cfg.channel_group.as_ref().unwrap().groups["Application"].groups["Org2"]
            .values[MSP]
            .clone();
        let mut fabric =
            FabricMspConfig::decode(MspConfig::decode(org2_msp.value.clone()).unwrap().config)
                .unwrap();
        fabric.name = "Org1MSP".into();
        let msp = MspConfig {
            r#type: 0,
            config: fabric.encode_to_vec().into(),
        };
        cfg.channel_group
            .as_mut()
            .unwrap()
            .groups
            .get_mut("Application")
            .unwrap()
            .groups
            .get_mut("Org2")
            .unwrap()
            .values
            .insert(
                MSP.into(),
                ConfigValue {
                    value: msp.encode_to_vec().into(),
                    ..org2_msp
                },
            );
        assert!(refused(&cfg).contains("two different versions of MSP"));
    }
}
