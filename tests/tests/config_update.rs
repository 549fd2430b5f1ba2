//! A configuration change travels through the log: it is cut into a block of its own, its batch
//! rules apply to what follows, and it is still in force after a restart.

mod common;

use std::sync::Arc;

use common::{test_batch, wait_for_txs, Orderer};
use ordo_core::block::last_config_index;
use ordo_core::config::wire::from_block as config_from_block;
use ordo_core::envelope::{build, stored_tx_id};
use ordo_peer_sim::{submit, Load};
use ordo_proto::common::{HeaderType, Status};
use prost::Message;

#[tokio::test(flavor = "multi_thread")]
async fn config_block_stands_alone_and_its_rules_apply() {
    let mut orderer = Orderer::start(test_batch());
    let client = orderer.client().await;
    let admin = orderer.signer(); // the development client is the channel's admin too

    let chain = client.read_chain().await.unwrap();
    let mut config = config_from_block(&chain[0]).unwrap().to_proto();
    config.sequence = 1;
    config.batch_size.as_mut().unwrap().max_message_count = 5;
    let update = build(
        &admin,
        "ordo",
        HeaderType::Config,
        config.encode_to_vec().into(),
    );
    let update_id = stored_tx_id(&update.encode_to_vec().into()).unwrap();
    let answer = client.broadcast_one(update).await.unwrap();
    assert_eq!(answer.status, Status::Success as i32, "{}", answer.info);

    let load = Load {
        count: 40,
        streams: 1,
        tx_bytes: 50,
        window: 40,
    };
    let submitted = submit(&client, &load, Arc::new(|| {})).await;
    assert_eq!(submitted.acked.len(), 40);
    let chain = wait_for_txs(&client, &submitted.acked).await;

    let config_block = chain
        .iter()
        .find(|b| {
            b.data.as_ref().is_some_and(|d| {
                d.data
                    .iter()
                    .any(|e| stored_tx_id(e).as_deref() == Some(update_id.as_str()))
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

    // A replayed (stale) config update is refused at Broadcast.
    let stale = build(
        &admin,
        "ordo",
        HeaderType::Config,
        config.encode_to_vec().into(),
    );
    let answer = client.broadcast_one(stale).await.unwrap();
    assert_eq!(answer.status, Status::BadRequest as i32);
}
