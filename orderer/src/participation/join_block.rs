//! Which blocks a channel may be joined with (Fabric's `ValidateJoinBlock`): one CONFIG
//! envelope, metadata, a data hash that matches, a config that builds, an application channel.
//! Pure: the node opens the channel only after this has passed.

use ordo_core::block;
use ordo_core::bundle::Bundle;
use ordo_proto::common::{Block, HeaderType};

/// Checks a join block and returns its channel's config. The channel id is the one in the
/// block's CONFIG envelope (osnadmin does not send one of its own).
pub fn validate(block: &Block) -> Result<Bundle, String> {
    let data = block
        .data
        .as_ref()
        .map(|d| d.data.as_slice())
        .unwrap_or(&[]);
    let [envelope] = data else {
        return Err(format!(
            "block must contain exactly one envelope, it has {}",
            data.len()
        ));
    };
    let (_, headers) = ordo_core::envelope::Headers::of_canonical(envelope)
        .map_err(|e| format!("the block's envelope: {e}"))?;
    if headers.header_type != HeaderType::Config as i32 {
        return Err(format!(
            "block is not a config block: its envelope is of type {}, not CONFIG (1)",
            headers.header_type
        ));
    }
    if block
        .metadata
        .as_ref()
        .is_none_or(|m| m.metadata.is_empty())
    {
        return Err("block metadata is empty".into());
    }
    let header = block.header.as_ref().ok_or("block has no header")?;
    if header.data_hash.as_ref() != block::data_hash(data) {
        return Err("block data hash does not match the data".into());
    }
    // Fabric's own refusals first, before the bundle's (which refuses a system channel too).
    let (_, config) = ordo_core::bundle::config_of_envelope(envelope)?;
    let groups = config
        .config
        .and_then(|c| c.channel_group)
        .map(|g| g.groups)
        .unwrap_or_default();
    if groups.contains_key("Consortiums") {
        return Err("system channel not supported (config has a Consortiums group)".into());
    }
    if !groups.contains_key("Application") {
        return Err("config has no Application group; an application channel is required".into());
    }
    Bundle::from_block(block).map_err(|e| format!("cannot build a bundle: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_core::msp::SigningIdentity;
    use ordo_proto::common::{BlockData, BlockMetadata};

    /// A development channel's genesis block, and a signer of its client org.
    fn genesis() -> (Block, SigningIdentity) {
        let fixture = crate::setup::dev::Fixture::new();
        let (layout, genesis) = (&fixture.layout, fixture.genesis);
        let signer = ordo_client::msp_dir::signing_identity(
            &layout.client_msp,
            crate::setup::dev::CLIENT_MSPID,
        )
        .unwrap();
        (genesis.block, signer)
    }

    fn rehash(block: &mut Block) {
        let data = block.data.clone().unwrap_or_default().data;
        block.header.as_mut().unwrap().data_hash = block::data_hash(&data).to_vec().into();
    }

    #[test]
    fn a_genesis_block_is_accepted() {
        let (block, _) = genesis();
        let bundle = validate(&block).unwrap();
        assert_eq!(bundle.channel_id(), crate::setup::dev::CHANNEL);
    }

    #[test]
    fn blocks_that_cannot_start_a_channel_are_refused() {
        let (good, signer) = genesis();
        let refused = |block: &Block| validate(block).unwrap_err();

        let mut empty = good.clone();
        empty.data = Some(BlockData { data: vec![] });
        rehash(&mut empty);
        assert!(refused(&empty).contains("exactly one envelope"));

        let mut two = good.clone();
        let envelope = two.data.as_ref().unwrap().data[0].clone();
        two.data.as_mut().unwrap().data.push(envelope);
        rehash(&mut two);
        assert!(refused(&two).contains("exactly one envelope, it has 2"));

        let mut normal = good.clone();
        let tx = ordo_core::envelope::build(
            &signer,
            crate::setup::dev::CHANNEL,
            HeaderType::Message,
            bytes::Bytes::from_static(b"tx"),
        );
        normal.data = Some(BlockData {
            data: vec![prost::Message::encode_to_vec(&tx).into()],
        });
        rehash(&mut normal);
        assert!(
            refused(&normal).contains("not a config block"),
            "{}",
            refused(&normal)
        );

        let mut bare = good.clone();
        bare.metadata = Some(BlockMetadata { metadata: vec![] });
        assert!(refused(&bare).contains("metadata is empty"));

        let mut tampered = good.clone();
        tampered.header.as_mut().unwrap().data_hash = vec![0; 32].into();
        assert!(refused(&tampered).contains("data hash"));
    }

    /// The development channel's config, changed by `edit`, as a genesis block.
    fn with_config(edit: impl FnOnce(&mut ordo_proto::common::ConfigGroup)) -> Block {
        let (block, _) = genesis();
        let mut config = Bundle::from_block(&block).unwrap().config().clone();
        edit(config.channel_group.as_mut().unwrap());
        ordo_core::configtx::genesis::genesis_block_from_config(
            &config,
            "other",
            std::time::SystemTime::now(),
            [7; 24],
        )
        .unwrap()
    }

    #[test]
    fn only_application_channels_are_joined() {
        let system = with_config(|root| {
            root.groups.insert("Consortiums".into(), Default::default());
        });
        let refused = validate(&system).unwrap_err();
        assert!(
            refused.contains("system channel not supported"),
            "{refused}"
        );
        let orderer_only = with_config(|root| {
            root.groups.remove("Application");
        });
        let refused = validate(&orderer_only).unwrap_err();
        assert!(refused.contains("no Application group"), "{refused}");
        assert_eq!(
            validate(&with_config(|_| {})).unwrap().channel_id(),
            "other"
        );
    }
}
