//! A channel's configuration in force: who may write, read and reconfigure, the batch rules, and
//! which orderers sign blocks. Pure: no I/O.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use ordo_proto::common::{Block, Envelope, HeaderType};
use ordo_proto::ordo::ChannelConfig;
use prost::Message;

use crate::cutter::CutRules;
use crate::identity::{parse_public_key, Creator};
use crate::validate::{self, Parsed};

/// An identity as policies name it: (mspid, public key).
type Member = (String, [u8; 32]);

#[derive(Clone, Debug)]
pub struct ChannelPolicy {
    config: ChannelConfig,
    writers: HashSet<Member>,
    readers: HashSet<Member>,
    admins: HashSet<Member>,
    orderers: Vec<Creator>,
}

impl ChannelPolicy {
    /// Checks a configuration and indexes its members.
    pub fn new(config: ChannelConfig) -> Result<Self, String> {
        validate_config(&config)?;
        let mut writers = HashSet::new();
        let mut readers = HashSet::new();
        let mut admins = HashSet::new();
        for org in &config.organizations {
            for (role, keys) in [
                (&mut writers, &org.writers),
                (&mut readers, &org.readers),
                (&mut admins, &org.admins),
            ] {
                for key in keys {
                    let key = parse_public_key(key)
                        .map_err(|e| format!("organization {}: {e}", org.mspid))?;
                    role.insert((org.mspid.clone(), key.to_bytes()));
                }
            }
        }
        let mut orderers = Vec::new();
        for consenter in &config.consenters {
            let key = parse_public_key(&consenter.public_key)
                .map_err(|e| format!("consenter {}: {e}", consenter.id))?;
            // Orderers read the chain too: a node behind its peers fetches blocks over Deliver.
            readers.insert((consenter.mspid.clone(), key.to_bytes()));
            orderers.push(Creator {
                mspid: consenter.mspid.clone(),
                key,
            });
        }
        Ok(ChannelPolicy {
            config,
            writers,
            readers,
            admins,
            orderers,
        })
    }

    pub fn config(&self) -> &ChannelConfig {
        &self.config
    }

    pub fn channel_id(&self) -> &str {
        &self.config.channel_id
    }

    pub fn can_write(&self, creator: &Creator) -> bool {
        self.writers.contains(&member(creator))
    }

    pub fn can_read(&self, creator: &Creator) -> bool {
        self.readers.contains(&member(creator))
    }

    pub fn is_admin(&self, creator: &Creator) -> bool {
        self.admins.contains(&member(creator))
    }

    /// The identities whose signatures a block of this channel may carry.
    pub fn orderers(&self) -> &[Creator] {
        &self.orderers
    }

    pub fn cut_rules(&self) -> CutRules {
        let batch = self.config.batch_size.unwrap_or_default();
        CutRules {
            max_message_count: batch.max_message_count,
            preferred_max_bytes: batch.preferred_max_bytes,
        }
    }

    pub fn absolute_max_bytes(&self) -> u32 {
        self.config
            .batch_size
            .unwrap_or_default()
            .absolute_max_bytes
    }

    pub fn batch_timeout(&self) -> Duration {
        Duration::from_millis(self.config.batch_timeout_ms)
    }

    /// Checks a CONFIG envelope against this configuration: signed by an admin, for this channel,
    /// carrying a valid configuration with the next sequence number. Every node runs it on the
    /// same log records with the same prior config, so every node accepts the same changes.
    pub fn check_config_update(
        &self,
        parsed: &Parsed,
        envelope: &Envelope,
    ) -> Result<ChannelPolicy, String> {
        validate::check_signature(parsed, envelope).map_err(|r| r.info)?;
        if !self.is_admin(&parsed.creator) {
            return Err(format!(
                "{} is not an admin of channel {}",
                parsed.creator.mspid,
                self.channel_id()
            ));
        }
        let next = ChannelConfig::decode(parsed.data.as_ref())
            .map_err(|e| format!("config envelope data is not a ChannelConfig: {e}"))?;
        if next.channel_id != self.config.channel_id {
            return Err(format!(
                "config is for channel {:?}, not {:?}",
                next.channel_id, self.config.channel_id
            ));
        }
        if next.sequence != self.config.sequence + 1 {
            return Err(format!(
                "config sequence {} is not the next one ({})",
                next.sequence,
                self.config.sequence + 1
            ));
        }
        ChannelPolicy::new(next)
    }
}

fn member(creator: &Creator) -> Member {
    (creator.mspid.clone(), creator.key.to_bytes())
}

/// Structural checks on a channel configuration.
pub fn validate_config(config: &ChannelConfig) -> Result<(), String> {
    let id = &config.channel_id;
    if !valid_channel_id(id) {
        return Err(format!(
            "channel id {id:?} must be 1-249 characters of a-z, 0-9, '.', '-', starting with a letter"
        ));
    }
    let batch = config
        .batch_size
        .ok_or_else(|| format!("channel {id}: no batch_size"))?;
    if batch.max_message_count == 0 {
        return Err(format!(
            "channel {id}: max_message_count must be at least 1"
        ));
    }
    if batch.absolute_max_bytes == 0 || batch.preferred_max_bytes == 0 {
        return Err(format!("channel {id}: byte limits must be positive"));
    }
    if batch.preferred_max_bytes > batch.absolute_max_bytes {
        return Err(format!(
            "channel {id}: preferred_max_bytes ({}) exceeds absolute_max_bytes ({})",
            batch.preferred_max_bytes, batch.absolute_max_bytes
        ));
    }
    if config.batch_timeout_ms == 0 {
        return Err(format!("channel {id}: batch_timeout_ms must be positive"));
    }
    if config.consenters.is_empty() {
        return Err(format!("channel {id}: no consenters"));
    }
    Ok(())
}

/// Fabric's channel name rule.
pub fn valid_channel_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('a'..='z'))
        && id.len() < 250
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '.' | '-'))
}

/// The configuration carried by a config block (its single CONFIG envelope).
pub fn config_from_block(block: &Block) -> Result<ChannelConfig, String> {
    let data = block
        .data
        .as_ref()
        .and_then(|d| d.data.first())
        .ok_or("config block has no data")?;
    config_from_envelope(data)
}

pub fn config_from_envelope(envelope: &Bytes) -> Result<ChannelConfig, String> {
    let envelope = Envelope::decode(envelope.as_ref()).map_err(|e| e.to_string())?;
    let parsed = validate::parse(&envelope).map_err(|r| r.info)?;
    if parsed.header_type != HeaderType::Config as i32 {
        return Err("not a CONFIG envelope".into());
    }
    ChannelConfig::decode(parsed.data.as_ref()).map_err(|e| e.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::envelope::build;
    use crate::identity::Signer;
    use ordo_proto::ordo::{BatchSize, Consenter, Organization};

    /// A channel "ch": Org1MSP with `writer` (who also reads) and `admin`, one consenter.
    pub(crate) fn config(admin: &Signer, writer: &Signer, orderer: &Signer) -> ChannelConfig {
        ChannelConfig {
            channel_id: "ch".into(),
            sequence: 0,
            batch_size: Some(BatchSize {
                max_message_count: 10,
                absolute_max_bytes: 1000,
                preferred_max_bytes: 500,
            }),
            batch_timeout_ms: 100,
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
        let creator = |s: &Signer| Creator::parse(s.creator()).unwrap();
        assert!(policy.can_write(&creator(&writer)));
        assert!(!policy.can_write(&creator(&admin)));
        assert!(policy.can_read(&creator(&orderer)));
        assert!(policy.is_admin(&creator(&admin)));
        // Same key under another MSP is someone else.
        let impostor = writer.with_mspid("Org2MSP");
        assert!(!policy.can_write(&creator(&impostor)));
    }

    #[test]
    fn config_updates_need_an_admin_and_the_next_sequence() {
        let admin = Signer::generate("Org1MSP");
        let writer = Signer::generate("Org1MSP");
        let orderer = Signer::generate("OrdererMSP");
        let policy = ChannelPolicy::new(config(&admin, &writer, &orderer)).unwrap();
        let mut next = policy.config().clone();
        next.sequence = 1;
        next.batch_timeout_ms = 50;
        let update = |signer: &Signer, cfg: &ChannelConfig| {
            let env = build(signer, "ch", HeaderType::Config, cfg.encode_to_vec().into());
            let parsed = validate::parse(&env).unwrap();
            policy.check_config_update(&parsed, &env)
        };
        assert_eq!(
            update(&admin, &next).unwrap().batch_timeout(),
            Duration::from_millis(50)
        );
        assert!(update(&writer, &next).unwrap_err().contains("not an admin"));
        let mut stale = next.clone();
        stale.sequence = 0;
        assert!(update(&admin, &stale).unwrap_err().contains("sequence"));
        let mut broken = next.clone();
        broken.batch_size = None;
        assert!(update(&admin, &broken).is_err());
    }

    #[test]
    fn channel_ids() {
        assert!(valid_channel_id("ordo"));
        assert!(valid_channel_id("my-channel.1"));
        assert!(!valid_channel_id(""));
        assert!(!valid_channel_id("1abc"));
        assert!(!valid_channel_id("Upper"));
    }
}
