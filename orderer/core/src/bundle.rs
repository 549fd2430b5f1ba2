//! A channel's configuration in force, as Fabric's `channelconfig.Bundle`: the `common.Config`
//! tree, the values read from it, the organisations' MSPs and the compiled policies, built and
//! checked together, so that whoever holds a bundle holds one the channel can run under. Who may
//! write, read, reconfigure and sign blocks is answered here. Pure: no I/O.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ordo_proto::common::{Block, Config, ConfigEnvelope, Envelope, HeaderType};
use prost::Message;

use crate::configtx::values::{ChannelValues, Consensus};
use crate::configtx::{self, etcdraft, ConfigTxError};
use crate::cutter::CutRules;
use crate::envelope::Headers;
use crate::msp::{Identity, MspManager, MspVersion, Principal};
use crate::policies::{Identities, PolicyError, PolicyManager, SignedData};

/// Standard policy paths the orderer evaluates (FABRIC-CONFIG.md §4.5).
pub mod paths {
    pub const CHANNEL_WRITERS: &str = "/Channel/Writers";
    pub const CHANNEL_READERS: &str = "/Channel/Readers";
    pub const ORDERER_WRITERS: &str = "/Channel/Orderer/Writers";
    pub const ORDERER_READERS: &str = "/Channel/Orderer/Readers";
    pub const BLOCK_VALIDATION: &str = "/Channel/Orderer/BlockValidation";
}

/// Why a configuration cannot be run under.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Config(#[from] ConfigTxError),
    #[error("MSP setup: {0}")]
    Msp(String),
    #[error("policies: {0}")]
    Policy(String),
    #[error("not a config block: {0}")]
    NotConfigBlock(String),
}

#[derive(Clone, Debug)]
pub struct Bundle {
    channel_id: String,
    config: Arc<Config>,
    values: Arc<ChannelValues>,
    msps: Arc<MspManager>,
    policies: Arc<PolicyManager>,
}

/// The MSP as the policies see it: identities that do not deserialise are skipped, and a
/// principal's requirements (validity included) are the MSP's.
impl Identities for MspManager {
    type Identity = Identity;

    fn deserialize(&self, creator: &[u8]) -> Result<Identity, String> {
        MspManager::deserialize(self, creator).map_err(|e| e.to_string())
    }

    fn signer_key(&self, identity: &Identity) -> String {
        format!("{}{}", identity.mspid(), identity.id())
    }

    fn verify(&self, identity: &Identity, data: &[u8], signature: &[u8]) -> bool {
        MspManager::verify(self, identity, data, signature)
    }

    fn satisfies(&self, identity: &Identity, principal: &Principal) -> bool {
        MspManager::satisfies(self, identity, principal).is_ok()
    }
}

impl Bundle {
    /// Builds and checks everything `config` says for channel `channel_id`: its values, every
    /// MSP, every policy, and the consensus metadata (etcdraft consenters' TLS certificates
    /// chain to the orderer organisations' TLS CAs).
    pub fn new(channel_id: &str, config: Config) -> Result<Bundle, BundleError> {
        configtx::check_channel_id(channel_id)?;
        let values = ChannelValues::from_config(&config)?;
        let capabilities = values.channel_capabilities();
        let version = MspVersion::from_channel_capabilities(&capabilities);
        let msp_configs: Vec<_> = values
            .all_msp_configs()
            .into_iter()
            .map(|(_, msp)| msp.clone())
            .collect();
        let msps = MspManager::setup(&msp_configs, version)
            .map_err(|e| BundleError::Msp(e.to_string()))?;
        let root = config
            .channel_group
            .as_ref()
            .ok_or_else(|| ConfigTxError::invalid("/Channel", "no channel group"))?;
        let policies = PolicyManager::new(root).map_err(|e| BundleError::Policy(e.to_string()))?;
        if let Consensus::EtcdRaft {
            consenters,
            options,
        } = &values.consensus
        {
            let orderer_msps: Vec<_> = values
                .orderer_orgs
                .iter()
                .filter_map(|org| msps.msp(&org.msp_id))
                .collect();
            let metadata = ordo_proto::etcdraft::ConfigMetadata {
                consenters: consenters.clone(),
                options: options.clone(),
                ordo: None,
            };
            etcdraft::verify_config_metadata(&metadata, &|pem| {
                crate::msp::verify_tls_cert_in(&orderer_msps, pem).map_err(|e| e.to_string())
            })?;
        }
        Ok(Bundle {
            channel_id: channel_id.to_string(),
            config: Arc::new(config),
            values: Arc::new(values),
            msps: Arc::new(msps),
            policies: Arc::new(policies),
        })
    }

    /// The bundle of a config block: its one CONFIG envelope's `ConfigEnvelope.config`, for the
    /// channel its header names.
    pub fn from_block(block: &Block) -> Result<Bundle, BundleError> {
        let not = |reason: String| BundleError::NotConfigBlock(reason);
        let data = block
            .data
            .as_ref()
            .map(|d| d.data.as_slice())
            .unwrap_or(&[]);
        let [envelope] = data else {
            return Err(not(format!(
                "a config block holds one envelope, this one {}",
                data.len()
            )));
        };
        let (channel_id, config) = config_of_envelope(envelope).map_err(not)?;
        Bundle::new(&channel_id, config.config.unwrap_or_default())
    }

    pub fn channel_id(&self) -> &str {
        &self.channel_id
    }

    pub fn sequence(&self) -> u64 {
        self.config.sequence
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn values(&self) -> &ChannelValues {
        &self.values
    }

    pub fn msps(&self) -> &Arc<MspManager> {
        &self.msps
    }

    pub fn policies(&self) -> &PolicyManager {
        &self.policies
    }

    pub fn cut_rules(&self) -> CutRules {
        let batch = self.values.batch_size;
        CutRules {
            max_message_count: batch.max_message_count,
            preferred_max_bytes: batch.preferred_max_bytes,
        }
    }

    pub fn absolute_max_bytes(&self) -> u32 {
        self.values.batch_size.absolute_max_bytes
    }

    pub fn batch_timeout(&self) -> Duration {
        self.values.batch_timeout
    }

    /// Blocks whose tx_ids duplicate suppression remembers (0: off).
    pub fn dedup_window_blocks(&self) -> u32 {
        self.values.dedup_window_blocks
    }

    /// The policy Broadcast checks: /Channel/Writers, or /Channel/Orderer/Writers while the
    /// channel is in maintenance.
    pub fn writers_path(&self) -> &'static str {
        if self.values.maintenance {
            paths::ORDERER_WRITERS
        } else {
            paths::CHANNEL_WRITERS
        }
    }

    /// The policy Deliver checks.
    pub fn readers_path(&self) -> &'static str {
        if self.values.maintenance {
            paths::ORDERER_READERS
        } else {
            paths::CHANNEL_READERS
        }
    }

    /// Whether `identity` (whose signature the caller verified) satisfies the writers policy.
    pub fn check_writer(&self, identity: &Identity) -> Result<(), PolicyError> {
        self.policies.evaluate_identities(
            self.writers_path(),
            std::slice::from_ref(identity),
            self.msps.as_ref(),
        )
    }

    /// Whether `identity` (whose signature the caller verified) satisfies the readers policy.
    pub fn check_reader(&self, identity: &Identity) -> Result<(), PolicyError> {
        self.policies.evaluate_identities(
            self.readers_path(),
            std::slice::from_ref(identity),
            self.msps.as_ref(),
        )
    }

    /// Evaluates policy `path` over signatures (deserialised, deduplicated and verified here).
    pub fn evaluate(&self, path: &str, signed: &[SignedData]) -> Result<(), PolicyError> {
        self.policies
            .evaluate_signed_data(path, signed, self.msps.as_ref())
    }

    /// The configtx policy check: a mod_policy path over ConfigSignatures.
    fn mod_policy_check(&self) -> impl Fn(&str, &[SignedData]) -> Result<(), String> + '_ {
        move |path, signed| self.evaluate(path, signed).map_err(|e| e.to_string())
    }

    /// A CONFIG_UPDATE envelope applied to this configuration, as Fabric's
    /// `ProposeConfigUpdate`: authorised by the mod_policies of what it changes, the result a
    /// configuration the channel can run under and may move to. Returns the `ConfigEnvelope` to
    /// order and the bundle it installs. Every refusal is BAD_REQUEST for the client.
    pub fn propose_update(
        &self,
        update: &Envelope,
    ) -> Result<(ConfigEnvelope, Bundle), BundleError> {
        let check = self.mod_policy_check();
        let proposed = configtx::update::propose_config_update(
            &self.config,
            &self.channel_id,
            update,
            &check,
        )?;
        let next = self.successor(proposed.config.clone().unwrap_or_default())?;
        Ok((proposed, next))
    }

    /// The commit-time check of a CONFIG envelope's `ConfigEnvelope` (Fabric's
    /// `Validator.Validate`): the next sequence, and exactly what its last_update gives when
    /// applied to this configuration. Returns the bundle it installs.
    pub fn apply(&self, envelope: &ConfigEnvelope) -> Result<Bundle, BundleError> {
        let check = self.mod_policy_check();
        let config = configtx::update::check_config_envelope(
            &self.config,
            envelope,
            &self.channel_id,
            &check,
        )?;
        self.successor(config)
    }

    /// `config` as the next configuration: a full bundle that keeps what may not change.
    fn successor(&self, config: Config) -> Result<Bundle, BundleError> {
        let next = Bundle::new(&self.channel_id, config)?;
        configtx::validate_new::validate_new(&self.values, &next.values)?;
        if let (
            Consensus::EtcdRaft {
                consenters: old, ..
            },
            Consensus::EtcdRaft {
                consenters: new, ..
            },
        ) = (&self.values.consensus, &next.values.consensus)
        {
            // The Raft group is the genesis consenters (changed with `orderer admin`); a config
            // naming others would not be the group that orders it.
            if old != new {
                return Err(ConfigTxError::invalid(
                    "/Channel/Orderer/ConsensusType",
                    "changing the etcdraft consenters by a config update is not supported yet",
                )
                .into());
            }
        }
        Ok(next)
    }
}

/// The channel id and `ConfigEnvelope` a CONFIG envelope (canonical bytes) carries.
pub fn config_of_envelope(envelope: &Bytes) -> Result<(String, ConfigEnvelope), String> {
    let (_, headers) = Headers::of_canonical(envelope).map_err(|e| e.to_string())?;
    if headers.header_type != HeaderType::Config as i32 {
        return Err(format!(
            "envelope of type {} is not a CONFIG envelope",
            headers.header_type
        ));
    }
    let config =
        ConfigEnvelope::decode(headers.data).map_err(|e| format!("ConfigEnvelope: {e}"))?;
    Ok((headers.channel_id, config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configtx::client::update_envelope;
    use crate::configtx::genesis::OrgProfile;
    use crate::msp::testing::{KeyKind, TestOrg};
    use crate::msp::SigningIdentity;
    use crate::testing::{TestChannel, CHANNEL};
    use ordo_proto::common::{ConfigGroup, ConfigPolicy, ConfigUpdate, ConfigValue};

    /// A group as a read set names it: its version, and its members' keys at their versions.
    fn shell(group: &ConfigGroup) -> ConfigGroup {
        ConfigGroup {
            version: group.version,
            groups: group
                .groups
                .iter()
                .map(|(k, g)| {
                    let empty = ConfigGroup {
                        version: g.version,
                        ..Default::default()
                    };
                    (k.clone(), empty)
                })
                .collect(),
            values: group
                .values
                .iter()
                .map(|(k, v)| {
                    let empty = ConfigValue {
                        version: v.version,
                        ..Default::default()
                    };
                    (k.clone(), empty)
                })
                .collect(),
            policies: group
                .policies
                .iter()
                .map(|(k, p)| {
                    let empty = ConfigPolicy {
                        version: p.version,
                        ..Default::default()
                    };
                    (k.clone(), empty)
                })
                .collect(),
            mod_policy: String::new(),
        }
    }

    /// The update that replaces /Channel/Application by `next` (a bumped version), as
    /// configtxlator's compute_update lays it out: everything kept is in both sets at its version.
    fn application_update(bundle: &Bundle, next: ConfigGroup) -> ConfigUpdate {
        let root = bundle.config().channel_group.as_ref().unwrap();
        let current = &root.groups["Application"];
        let read = shell(current);
        let mut write = shell(current);
        write.version = next.version;
        write.mod_policy = current.mod_policy.clone();
        for (name, group) in &next.groups {
            if !current.groups.contains_key(name) {
                write.groups.insert(name.clone(), group.clone());
            }
        }
        let wrap = |g: ConfigGroup| ConfigGroup {
            version: root.version,
            groups: [("Application".to_string(), g)].into(),
            ..Default::default()
        };
        ConfigUpdate {
            channel_id: CHANNEL.into(),
            read_set: Some(wrap(read)),
            write_set: Some(wrap(write)),
            ..Default::default()
        }
    }

    fn apply(bundle: &Bundle, update: &Envelope) -> Result<Bundle, BundleError> {
        let (proposed, next) = bundle.propose_update(update)?;
        // What every node checks when it consumes the CONFIG envelope gives the same.
        let applied = bundle.apply(&proposed)?;
        assert_eq!(applied.config(), next.config());
        Ok(next)
    }

    #[test]
    fn an_organisation_added_by_its_admins_may_write() {
        let ch = TestChannel::new();
        let org2 = TestOrg::new("Org2MSP", KeyKind::EcdsaP256);
        // Org2's group as a profile with it would hold it.
        let with_org2 = TestChannel::with(|profile| {
            let mut org = OrgProfile::new("Org2", org2.channel_config());
            org.node_ous = true;
            profile.application.as_mut().unwrap().orgs.push(org);
        });
        let root = with_org2.bundle.config().channel_group.clone().unwrap();
        let mut next = root.groups["Application"].clone();
        next.version += 1;
        let update = application_update(&ch.bundle, next);
        let issued = org2.client("User1@org2");

        // Before: Org2 is no identity of the channel.
        let creator = org2.creator(&issued);
        assert!(ch.bundle.msps().deserialize(&creator).is_err());
        // /Channel/Application's mod_policy is MAJORITY of its orgs' Admins: Org1's admin alone.
        let by_client = update_envelope(&update, &[&ch.client], &ch.client);
        let refused = apply(&ch.bundle, &by_client).unwrap_err();
        assert!(
            refused.to_string().contains("/Channel/Application"),
            "{refused}"
        );
        let next = apply(
            &ch.bundle,
            &update_envelope(&update, &[&ch.admin], &ch.admin),
        )
        .unwrap();
        assert_eq!(next.sequence(), 1);
        let msp = next.msps().msp("Org2MSP").unwrap();
        let client =
            SigningIdentity::new(msp, issued.cert_pem.as_bytes(), issued.key_pem.as_bytes())
                .unwrap();
        let identity = next.msps().deserialize(client.serialized()).unwrap();
        next.check_writer(&identity).unwrap();
        // Org1 is still there, unchanged.
        let org1 = next.msps().deserialize(ch.client.serialized()).unwrap();
        next.check_writer(&org1).unwrap();
    }

    #[test]
    fn a_policy_changed_by_the_org_admin_applies() {
        let ch = TestChannel::new();
        let root = ch.bundle.config().channel_group.clone().unwrap();
        let org1 = &root.groups["Application"].groups["Org1"];
        // Org1's Writers narrowed to its admins: the client may no longer write.
        let mut writers = org1.policies["Writers"].clone();
        writers.version += 1;
        writers.policy = Some(crate::policies::dsl::signature_policy(
            &crate::policies::dsl::parse("OR('Org1MSP.admin')").unwrap(),
        ));
        let mut write_org1 = shell(org1);
        write_org1.policies.insert("Writers".into(), writers);
        let nest = |org: ConfigGroup| ConfigGroup {
            version: root.version,
            groups: [(
                "Application".to_string(),
                ConfigGroup {
                    version: root.groups["Application"].version,
                    groups: [("Org1".to_string(), org)].into(),
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        };
        let update = ConfigUpdate {
            channel_id: CHANNEL.into(),
            read_set: Some(nest(shell(org1))),
            write_set: Some(nest(write_org1)),
            ..Default::default()
        };
        // The policy's mod_policy is Org1's Admins.
        let by_orderer_admin = update_envelope(&update, &[&ch.orderer_admin], &ch.orderer_admin);
        assert!(apply(&ch.bundle, &by_orderer_admin).is_err());
        let next = apply(
            &ch.bundle,
            &update_envelope(&update, &[&ch.admin], &ch.admin),
        )
        .unwrap();
        let client = next.msps().deserialize(ch.client.serialized()).unwrap();
        assert!(next.check_writer(&client).is_err());
        let admin = next.msps().deserialize(ch.admin.serialized()).unwrap();
        next.check_writer(&admin).unwrap();
    }
}
