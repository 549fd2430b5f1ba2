//! Fabric's channel configuration (`common.Config`): its tree read into the values Ordo's rules
//! use, config updates (`CONFIG_UPDATE`) checked and applied as Fabric's configtx does, and the
//! genesis block configtxgen would write. Pure.
//!
//! - [`values`]: a `Config` read into [`ChannelValues`], with channelconfig's checks.
//! - [`update`]: `authorizeUpdate` (read set, delta set, mod_policies, rebuild) and the
//!   commit-time re-check of a CONFIG envelope.
//! - [`validate_new`]: what may not change between two configs (`Bundle.ValidateNew`).
//! - [`etcdraft`]: etcdraft's consensus metadata, its checks and Raft ids.
//! - [`genesis`]: configtxgen's channel config and block 0 from a profile.
//! - [`duration`]: Go duration strings.
//!
//! Policy checks and TLS certificate verification are not done here: callers pass them in as
//! closures, so this module needs neither the MSP nor the policy engine.

pub mod client;
pub mod duration;
pub mod etcdraft;
pub mod genesis;
pub mod update;
pub mod validate_new;
pub mod values;

pub use update::{
    authorize_update, check_config_envelope, config_signatures, config_update_envelope,
    propose_config_update,
};
pub use validate_new::validate_new;
pub use values::ChannelValues;

/// Why a configuration, a config update or a profile was refused. `element` names the part of
/// the config at fault (a path such as `/Channel/Orderer/BatchSize`, or a flattened key such as
/// `[Value]  /Channel/Orderer/BatchSize`); `reason` carries Fabric's wording where Fabric has one.
///
/// For a Broadcast caller every one of these is `BAD_REQUEST` (Fabric's `ClassifyError`: any
/// configtx, bundle, ValidateNew or consensus-metadata failure, an unsatisfied mod_policy
/// included); only the /Channel/Writers filter, which is not applied here, answers FORBIDDEN.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigTxError {
    /// A config element is malformed or breaks a rule.
    #[error("{element}: {reason}")]
    Invalid { element: String, reason: String },
    /// An existing element changed without its current mod_policy being satisfied.
    #[error("policy for {key} not satisfied: {policy}: {reason}")]
    PolicyNotSatisfied {
        key: String,
        policy: String,
        reason: String,
    },
}

impl ConfigTxError {
    pub(crate) fn invalid(element: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigTxError::Invalid {
            element: element.into(),
            reason: reason.into(),
        }
    }
}

/// Standard group and value keys (`common/channelconfig`).
pub mod keys {
    pub const CHANNEL: &str = "Channel";
    pub const ORDERER: &str = "Orderer";
    pub const APPLICATION: &str = "Application";
    pub const CONSORTIUMS: &str = "Consortiums";

    pub const HASHING_ALGORITHM: &str = "HashingAlgorithm";
    pub const BLOCK_DATA_HASHING_STRUCTURE: &str = "BlockDataHashingStructure";
    pub const ORDERER_ADDRESSES: &str = "OrdererAddresses";
    pub const CONSORTIUM: &str = "Consortium";
    pub const CAPABILITIES: &str = "Capabilities";
    pub const ORDERERS: &str = "Orderers";

    pub const CONSENSUS_TYPE: &str = "ConsensusType";
    pub const BATCH_SIZE: &str = "BatchSize";
    pub const BATCH_TIMEOUT: &str = "BatchTimeout";
    pub const CHANNEL_RESTRICTIONS: &str = "ChannelRestrictions";
    pub const KAFKA_BROKERS: &str = "KafkaBrokers";

    pub const MSP: &str = "MSP";
    pub const ENDPOINTS: &str = "Endpoints";
    pub const ANCHOR_PEERS: &str = "AnchorPeers";
    pub const ACLS: &str = "ACLs";

    pub const READERS: &str = "Readers";
    pub const WRITERS: &str = "Writers";
    pub const ADMINS: &str = "Admins";
    pub const BLOCK_VALIDATION: &str = "BlockValidation";
    pub const ENDORSEMENT: &str = "Endorsement";
    pub const LIFECYCLE_ENDORSEMENT: &str = "LifecycleEndorsement";
}

/// Fabric's channel name rule: 1-249 characters of a-z, 0-9, '.', '-', starting with a letter.
pub fn valid_channel_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('a'..='z'))
        && id.len() < 250
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '.' | '-'))
}

/// [`valid_channel_id`] as a check, with its message.
pub fn check_channel_id(id: &str) -> Result<(), ConfigTxError> {
    if valid_channel_id(id) {
        Ok(())
    } else {
        Err(ConfigTxError::invalid(
            "channel id",
            format!(
                "bad channel ID: {id:?} must be 1-249 characters of a-z, 0-9, '.', '-', \
                 starting with a letter"
            ),
        ))
    }
}

#[cfg(test)]
mod channel_id_tests {
    use super::valid_channel_id;

    #[test]
    fn channel_ids() {
        assert!(valid_channel_id("ordo"));
        assert!(valid_channel_id("my-channel.1"));
        assert!(!valid_channel_id(""));
        assert!(!valid_channel_id("1abc"));
        assert!(!valid_channel_id("Upper"));
    }
}
