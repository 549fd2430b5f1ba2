//! A channel's configuration in force and who may do what under it: the batch rules, and the
//! writer, reader, admin and orderer roles, answered by the channel's [`Msp`]. Pure: no I/O.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{ChannelConfig, ConfigError};
use crate::cutter::CutRules;
use crate::identity::{Ed25519Msp, Identity, Msp, Role};

// Where the node finds a configuration; the functions are the wire module's.

#[derive(Clone, Debug)]
pub struct ChannelPolicy {
    config: ChannelConfig,
    msp: Arc<dyn Msp>,
}

impl ChannelPolicy {
    /// Checks a configuration and indexes its members.
    pub fn new(config: ChannelConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let msp = Arc::new(Ed25519Msp::new(&config)?);
        Ok(ChannelPolicy { config, msp })
    }

    pub fn config(&self) -> &ChannelConfig {
        &self.config
    }

    pub fn channel_id(&self) -> &str {
        &self.config.channel_id
    }

    /// The channel's identity provider: signatures and roles under this configuration.
    pub fn msp(&self) -> &Arc<dyn Msp> {
        &self.msp
    }

    pub fn can_write(&self, identity: &Identity) -> bool {
        self.msp.has_role(identity, identity.mspid(), Role::Writer)
    }

    pub fn can_read(&self, identity: &Identity) -> bool {
        self.msp.has_role(identity, identity.mspid(), Role::Reader)
    }

    pub fn is_admin(&self, identity: &Identity) -> bool {
        self.msp.has_role(identity, identity.mspid(), Role::Admin)
    }

    /// Whether `identity` may sign this channel's blocks.
    pub fn is_orderer(&self, identity: &Identity) -> bool {
        self.msp.has_role(identity, identity.mspid(), Role::Orderer)
    }

    pub fn cut_rules(&self) -> CutRules {
        let batch = self.config.batch_size;
        CutRules {
            max_message_count: batch.max_message_count,
            preferred_max_bytes: batch.preferred_max_bytes,
        }
    }

    pub fn absolute_max_bytes(&self) -> u32 {
        self.config.batch_size.absolute_max_bytes
    }

    pub fn batch_timeout(&self) -> Duration {
        self.config.batch_timeout
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{BatchSize, Consenter, Organization};
    use crate::identity::Signer;
    use ordo_proto::ordo as proto;

    /// A channel "ch": Org1MSP with `writer` (who also reads) and `admin`, one consenter.
    pub(crate) fn config(admin: &Signer, writer: &Signer, orderer: &Signer) -> ChannelConfig {
        ChannelConfig {
            channel_id: "ch".into(),
            sequence: 0,
            batch_size: BatchSize {
                max_message_count: 10,
                absolute_max_bytes: 1000,
                preferred_max_bytes: 500,
            },
            batch_timeout: Duration::from_millis(100),
            organizations: vec![Organization {
                mspid: "Org1MSP".into(),
                writers: vec![writer.public_key().to_vec().into()],
                readers: vec![writer.public_key().to_vec().into()],
                admins: vec![admin.public_key().to_vec().into()],
            }],
            consenters: vec![Consenter {
                id: 1,
                mspid: "OrdererMSP".into(),
                public_key: orderer.public_key().to_vec().into(),
                ..Default::default()
            }],
            dedup_window_blocks: 0,
        }
    }

    #[test]
    fn roles_are_by_mspid_and_key() {
        let admin = Signer::generate("Org1MSP");
        let writer = Signer::generate("Org1MSP");
        let orderer = Signer::generate("OrdererMSP");
        let policy = ChannelPolicy::new(config(&admin, &writer, &orderer)).unwrap();
        let identity = |s: &Signer| policy.msp().deserialize(s.creator()).unwrap();
        assert!(policy.can_write(&identity(&writer)));
        assert!(!policy.can_write(&identity(&admin)));
        assert!(policy.can_read(&identity(&orderer)));
        assert!(policy.is_orderer(&identity(&orderer)));
        assert!(!policy.is_orderer(&identity(&writer)));
        assert!(policy.is_admin(&identity(&admin)));
        assert!(policy
            .msp()
            .has_role(&identity(&admin), "Org1MSP", Role::Member));
        assert!(!policy
            .msp()
            .has_role(&identity(&admin), "OrdererMSP", Role::Member));
        // Same key under another MSP is someone else.
        let impostor = writer.with_mspid("Org2MSP");
        assert!(!policy.can_write(&identity(&impostor)));
    }

    #[test]
    fn configurations_are_checked_and_keys_read() {
        let (a, w, o) = (
            Signer::generate("Org1MSP"),
            Signer::generate("Org1MSP"),
            Signer::generate("OrdererMSP"),
        );
        let mut bad_key = config(&a, &w, &o);
        bad_key.organizations[0].writers[0] = vec![1, 2, 3].into();
        let refused = ChannelPolicy::new(bad_key).unwrap_err().to_string();
        assert!(refused.contains("organization Org1MSP: an Ed25519 key has 32 bytes"));
        let mut no_consenters = config(&a, &w, &o);
        no_consenters.consenters.clear();
        assert!(ChannelPolicy::new(no_consenters).is_err());
        let mut wire = config(&a, &w, &o).to_proto();
        let valid = |wire: &proto::ChannelConfig| ChannelConfig::try_from(wire)?.validate();
        valid(&wire).unwrap();
        wire.batch_size = None;
        assert!(valid(&wire).is_err());
    }
}
