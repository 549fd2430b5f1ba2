//! A channel's configuration as the rules read it, apart from how it is encoded. The wire form
//! today is `ordo_proto::ordo::ChannelConfig` ([`wire`]); Fabric's `common.Config` is meant to be
//! a second encoding of the same types.

pub mod wire;

use std::time::Duration;

use bytes::Bytes;

use crate::identity::KeyError;

/// A channel's configuration. Member keys stay encoded as the configuration carries them; the
/// identity layer reads them ([`crate::identity::Ed25519Msp::new`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelConfig {
    pub channel_id: String,
    /// Incremented by every change; a change must carry the current sequence + 1.
    pub sequence: u64,
    pub batch_size: BatchSize,
    /// Time from the first message of a pending batch to a time-to-cut.
    pub batch_timeout: Duration,
    /// Blocks whose tx_ids duplicate suppression remembers; 0 turns it off.
    pub dedup_window_blocks: u32,
    pub organizations: Vec<Organization>,
    pub consenters: Vec<Consenter>,
}

/// Fabric's block cutting rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchSize {
    pub max_message_count: u32,
    pub absolute_max_bytes: u32,
    pub preferred_max_bytes: u32,
}

/// An organization and its members' keys, by role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Organization {
    pub mspid: String,
    pub writers: Vec<Bytes>,
    pub readers: Vec<Bytes>,
    pub admins: Vec<Bytes>,
}

/// An orderer node that signs the channel's blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consenter {
    pub id: u64,
    pub mspid: String,
    pub public_key: Bytes,
    pub client_address: String,
    pub cluster_address: String,
}

/// Why a configuration is refused: it does not decode, breaks a structural rule, or lists a key
/// that is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Decode(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {reason}")]
    Key { what: String, reason: KeyError },
}

impl ChannelConfig {
    /// Structural checks: a valid channel id, usable batch rules, at least one consenter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let id = &self.channel_id;
        let invalid = |reason: String| Err(ConfigError::Invalid(reason));
        check_channel_id(id)?;
        let batch = self.batch_size;
        if batch.max_message_count == 0 {
            return invalid(format!(
                "channel {id}: max_message_count must be at least 1"
            ));
        }
        if batch.absolute_max_bytes == 0 || batch.preferred_max_bytes == 0 {
            return invalid(format!("channel {id}: byte limits must be positive"));
        }
        if batch.preferred_max_bytes > batch.absolute_max_bytes {
            return invalid(format!(
                "channel {id}: preferred_max_bytes ({}) exceeds absolute_max_bytes ({})",
                batch.preferred_max_bytes, batch.absolute_max_bytes
            ));
        }
        if self.batch_timeout.is_zero() {
            return invalid(format!("channel {id}: batch_timeout_ms must be positive"));
        }
        if self.consenters.is_empty() {
            return invalid(format!("channel {id}: no consenters"));
        }
        Ok(())
    }
}

/// The channel id rule as a check, with its message.
pub(crate) fn check_channel_id(id: &str) -> Result<(), ConfigError> {
    if valid_channel_id(id) {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!(
            "channel id {id:?} must be 1-249 characters of a-z, 0-9, '.', '-', starting with a letter"
        )))
    }
}

/// Fabric's channel name rule.
pub fn valid_channel_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('a'..='z'))
        && id.len() < 250
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ids() {
        assert!(valid_channel_id("ordo"));
        assert!(valid_channel_id("my-channel.1"));
        assert!(!valid_channel_id(""));
        assert!(!valid_channel_id("1abc"));
        assert!(!valid_channel_id("Upper"));
    }
}
