//! Genesis blocks: block 0 of a channel, holding its configuration as a signed CONFIG envelope
//! (the job of Fabric's configtxgen).

use ordo_proto::common::{Block, HeaderType};
use ordo_proto::ordo::ChannelConfig;
use prost::Message;

use crate::envelope;
use crate::identity::Signer;
use crate::writer;

pub fn genesis_block(config: &ChannelConfig, signer: &Signer) -> Block {
    let envelope = envelope::build(
        signer,
        &config.channel_id,
        HeaderType::Config,
        config.encode_to_vec().into(),
    );
    // Stored in its canonical encoding, as every envelope in a block is.
    writer::genesis_block(envelope.encode_to_vec().into())
}
