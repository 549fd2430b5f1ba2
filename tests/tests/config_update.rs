//! A configuration change travels through the log: it is cut into a block of its own, its batch
//! rules apply to what follows, and it is still in force after a restart.

mod common;

use std::sync::Arc;

use common::{test_batch, wait_for_txs, Orderer};
use ordo_core::block::last_config_index;
use ordo_core::bundle::config_of_envelope;
use ordo_core::configtx::client::update_envelope;
use ordo_peer_sim::{submit, Load};
use ordo_proto::common::{Block, Envelope, Status};
use prost::Message;

/// An update of /Channel/Orderer/BatchSize's max_message_count, by the orderer org's admin.
fn batch_size_update(genesis: &Block, count: u32, orderer: &Orderer) -> Envelope {
    common::batch_size_update(genesis, count, &orderer.admin())
}

#[tokio::test(flavor = "multi_thread")]
async fn config_block_stands_alone_and_its_rules_apply() {
    let mut orderer = Orderer::start(test_batch());
    let client = orderer.client().await;
    let chain = client.read_chain().await.unwrap();
    let update = batch_size_update(&chain[0], 5, &orderer);
    let answer = client.broadcast_one(update.clone()).await.unwrap();
    assert_eq!(answer.status, Status::Success as i32, "{}", answer.info);
    // Signed by the Org1 client only: BatchSize's mod_policy (/Channel/Orderer/Admins) fails.
    let client_signer = orderer.signer();
    let by_client = update_envelope(
        &config_update_of(&update),
        &[&client_signer],
        &client_signer,
    );
    let refused = client.broadcast_one(by_client).await.unwrap();
    assert_eq!(
        refused.status,
        Status::BadRequest as i32,
        "{}",
        refused.info
    );

    let load = Load {
        count: 40,
        streams: 1,
        tx_bytes: 50,
        window: 40,
    };
    let submitted = submit(&client, &load, Arc::new(|| {})).await;
    assert_eq!(submitted.acked.len(), 40);
    let chain = wait_for_txs(&client, &submitted.acked).await;

    // The config block: its CONFIG envelope carries the update as its last_update.
    let config_block = chain
        .iter()
        .skip(1)
        .find(|b| {
            b.data.as_ref().is_some_and(|d| {
                d.data.iter().any(|e| {
                    config_of_envelope(e)
                        .is_ok_and(|(_, config)| config.last_update.as_ref() == Some(&update))
                })
            })
        })
        .expect("the config envelope is in the chain");
    let config_number = config_block.header.as_ref().unwrap().number;
    assert_eq!(
        config_block.data.as_ref().unwrap().data.len(),
        1,
        "a config block holds only the config"
    );
    assert_eq!(last_config_index(config_block), Some(config_number));
    for block in chain.iter().skip(config_number as usize + 1) {
        assert!(block.data.as_ref().unwrap().data.len() <= 5);
        assert_eq!(last_config_index(block), Some(config_number));
    }

    // After a restart the new rules are still the ones in force.
    orderer.terminate();
    orderer.restart();
    let client = orderer.client().await;
    let more = submit(&client, &load, Arc::new(|| {})).await;
    let chain = wait_for_txs(&client, &more.acked).await;
    assert!(chain.iter().skip(config_number as usize + 1).all(|b| b
        .data
        .as_ref()
        .unwrap()
        .data
        .len()
        <= 5));

    // A replayed (stale) config update is refused at Broadcast: BatchSize moved on.
    let answer = client.broadcast_one(update).await.unwrap();
    assert_eq!(answer.status, Status::BadRequest as i32, "{}", answer.info);
}

/// The ConfigUpdate a CONFIG_UPDATE envelope carries.
fn config_update_of(update: &Envelope) -> ordo_proto::common::ConfigUpdate {
    use ordo_proto::common::{ConfigUpdate, ConfigUpdateEnvelope, Payload};
    let payload = Payload::decode(update.payload.clone()).unwrap();
    let envelope = ConfigUpdateEnvelope::decode(payload.data).unwrap();
    ConfigUpdate::decode(envelope.config_update).unwrap()
}
