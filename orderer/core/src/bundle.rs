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
