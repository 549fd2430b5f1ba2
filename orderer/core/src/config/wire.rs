//! The configuration's wire encoding, `ordo_proto::ordo::ChannelConfig`, to and from the domain
//! types, and where a configuration is found: the CONFIG envelope of a config block.

use std::time::Duration;

use bytes::Bytes;
use ordo_proto::common::{Block, HeaderType};
use ordo_proto::ordo as proto;
use prost::Message;

use super::{check_channel_id, BatchSize, ChannelConfig, ConfigError, Consenter, Organization};
use crate::envelope::Headers;

impl TryFrom<&proto::ChannelConfig> for ChannelConfig {
    type Error = ConfigError;

    /// Fails only where the wire form can say what the domain cannot: no batch size.
    fn try_from(config: &proto::ChannelConfig) -> Result<Self, ConfigError> {
        let Some(batch) = config.batch_size else {
            // The id is checked first, as the structural checks order it.
            check_channel_id(&config.channel_id)?;
            return Err(ConfigError::Invalid(format!(
                "channel {}: no batch_size",
                config.channel_id
            )));
        };
        Ok(ChannelConfig {
            channel_id: config.channel_id.clone(),
            sequence: config.sequence,
            batch_size: BatchSize {
                max_message_count: batch.max_message_count,
                absolute_max_bytes: batch.absolute_max_bytes,
                preferred_max_bytes: batch.preferred_max_bytes,
            },
            batch_timeout: Duration::from_millis(config.batch_timeout_ms),
            dedup_window_blocks: config.dedup_window_blocks,
            organizations: config
                .organizations
                .iter()
                .map(|o| Organization {
                    mspid: o.mspid.clone(),
                    writers: o.writers.clone(),
                    readers: o.readers.clone(),
                    admins: o.admins.clone(),
                })
                .collect(),
            consenters: config
                .consenters
                .iter()
                .map(|c| Consenter {
                    id: c.id,
                    mspid: c.mspid.clone(),
                    public_key: c.public_key.clone(),
                    client_address: c.client_address.clone(),
                    cluster_address: c.cluster_address.clone(),
                })
                .collect(),
        })
    }
}

impl From<&ChannelConfig> for proto::ChannelConfig {
    fn from(config: &ChannelConfig) -> Self {
        proto::ChannelConfig {
            channel_id: config.channel_id.clone(),
            sequence: config.sequence,
            batch_size: Some(proto::BatchSize {
                max_message_count: config.batch_size.max_message_count,
                absolute_max_bytes: config.batch_size.absolute_max_bytes,
                preferred_max_bytes: config.batch_size.preferred_max_bytes,
            }),
            // Lossless: the domain value was read from milliseconds.
            batch_timeout_ms: config.batch_timeout.as_millis() as u64,
            organizations: config
                .organizations
                .iter()
                .map(|o| proto::Organization {
                    mspid: o.mspid.clone(),
                    writers: o.writers.clone(),
                    readers: o.readers.clone(),
                    admins: o.admins.clone(),
                })
                .collect(),
            consenters: config
                .consenters
                .iter()
                .map(|c| proto::Consenter {
                    id: c.id,
                    mspid: c.mspid.clone(),
                    public_key: c.public_key.clone(),
                    client_address: c.client_address.clone(),
                    cluster_address: c.cluster_address.clone(),
                })
                .collect(),
            dedup_window_blocks: config.dedup_window_blocks,
        }
    }
}

impl ChannelConfig {
    /// The wire form.
    pub fn to_proto(&self) -> proto::ChannelConfig {
        self.into()
    }

    /// Decodes the wire form (the data of a CONFIG envelope).
    pub fn decode(data: &[u8]) -> Result<ChannelConfig, ConfigError> {
        let config = proto::ChannelConfig::decode(data).map_err(|e| {
            ConfigError::Decode(format!("config envelope data is not a ChannelConfig: {e}"))
        })?;
        ChannelConfig::try_from(&config)
    }

    /// The wire bytes, as a CONFIG envelope carries them.
    pub fn encode(&self) -> Bytes {
        self.to_proto().encode_to_vec().into()
    }
}

/// The configuration carried by a config block (its single CONFIG envelope).
pub fn from_block(block: &Block) -> Result<ChannelConfig, ConfigError> {
    let data = block
        .data
        .as_ref()
        .and_then(|d| d.data.first())
        .ok_or_else(|| ConfigError::Decode("config block has no data".into()))?;
    from_envelope(data)
}

/// The configuration carried by a canonical CONFIG envelope.
pub fn from_envelope(envelope: &Bytes) -> Result<ChannelConfig, ConfigError> {
    let (_, headers) =
        Headers::of_canonical(envelope).map_err(|e| ConfigError::Decode(e.to_string()))?;
    if headers.header_type != HeaderType::Config as i32 {
        return Err(ConfigError::Decode("not a CONFIG envelope".into()));
    }
    ChannelConfig::decode(&headers.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_round_trips() {
        let wire = proto::ChannelConfig {
            channel_id: "ch".into(),
            sequence: 3,
            batch_size: Some(proto::BatchSize {
                max_message_count: 10,
                absolute_max_bytes: 1000,
                preferred_max_bytes: 500,
            }),
            batch_timeout_ms: 250,
            organizations: vec![proto::Organization {
                mspid: "Org1MSP".into(),
                writers: vec![Bytes::from_static(&[1; 32])],
                readers: vec![],
                admins: vec![Bytes::from_static(&[2; 32])],
            }],
            consenters: vec![proto::Consenter {
                id: 1,
                mspid: "OrdererMSP".into(),
                public_key: Bytes::from_static(&[3; 32]),
                client_address: "a:1".into(),
                cluster_address: "a:2".into(),
            }],
            dedup_window_blocks: 4,
        };
        let domain = ChannelConfig::try_from(&wire).unwrap();
        assert_eq!(domain.batch_timeout, Duration::from_millis(250));
        assert_eq!(domain.to_proto(), wire);
        assert_eq!(
            ChannelConfig::decode(&wire.encode_to_vec()).unwrap(),
            domain
        );
        let no_batch = proto::ChannelConfig {
            batch_size: None,
            ..wire
        };
        assert_eq!(
            ChannelConfig::try_from(&no_batch).unwrap_err().to_string(),
            "channel ch: no batch_size"
        );
    }
}
