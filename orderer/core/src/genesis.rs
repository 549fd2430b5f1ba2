//! Genesis blocks: block 0 of a channel, holding its configuration as a signed CONFIG envelope
//! (the job of Fabric's configtxgen).

use ordo_proto::common::{Block, HeaderType};
use prost::Message;

use crate::config::ChannelConfig;
use crate::envelope;
use crate::identity::Signer;
use crate::writer;

/// Block 0 of the channel `config` describes, its CONFIG envelope signed by `signer`.
pub fn genesis_block(config: &ChannelConfig, signer: &Signer) -> Block {
    let envelope = envelope::build(
        signer,
        &config.channel_id,
        HeaderType::Config,
        config.to_proto().encode_to_vec().into(),
    );
    // Stored in its canonical encoding, as every envelope in a block is.
    writer::genesis_block(envelope.encode_to_vec().into())
}
