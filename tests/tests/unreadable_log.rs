//! A log record the node cannot read stops the channel: it answers SERVICE_UNAVAILABLE rather
//! than acknowledge envelopes it could never cut into blocks.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{test_batch, wait_for_txs, Orderer};
use futures::StreamExt;
use ordo_core::envelope;
use ordo_peer_sim::{submit, Load};
use ordo_proto::common::{HeaderType, Status};
use ordo_proto::orderer::deliver_response;
use ordo_proto::orderer::seek_info::SeekBehavior;

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_sealed_segment_makes_the_channel_unavailable() {
    let mut orderer = Orderer::start_configured(test_batch(), |config| {
        config.log.segment_bytes = 64 << 10;
    });
    let client = orderer.client().await;
    let load = Load {
        count: 2_000,
        streams: 2,
        tx_bytes: 200,
        window: 16,
    };
    let submitted = submit(&client, &load, Arc::new(|| {})).await;
    assert!(submitted.errors.is_empty(), "{:?}", submitted.errors);
    wait_for_txs(&client, &submitted.acked).await;
    assert!(orderer.terminate().success());

    // The first, sealed, segment gets a flipped byte; without its ledger the node has to read
    // it again to rebuild the chain.
    let channel = orderer.channel_dir();
    let segments: Vec<_> = std::fs::read_dir(channel.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    assert!(segments.len() > 2, "{} segments", segments.len());
    let first = channel.join("log").join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&first).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&first, bytes).unwrap();
    std::fs::remove_dir_all(channel.join("ledger")).unwrap();

    orderer.restart();
    let client = orderer.client().await;
    let signer = orderer.signer();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = client
            .broadcast_one(envelope::build(
                &signer,
                "ordo",
                HeaderType::EndorserTransaction,
                Bytes::from_static(b"after"),
            ))
            .await
            .unwrap();
        if answer.status == Status::ServiceUnavailable as i32 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the channel kept answering {answer:?} with an unreadable log"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // It stays so, and Deliver says so too instead of waiting for blocks that cannot come.
    let answer = client
        .broadcast_one(envelope::build(
            &signer,
            "ordo",
            HeaderType::EndorserTransaction,
            Bytes::from_static(b"again"),
        ))
        .await
        .unwrap();
    assert_eq!(answer.status, Status::ServiceUnavailable as i32);
    let mut follow = client
        .deliver(1, u64::MAX, SeekBehavior::BlockUntilReady)
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), follow.next())
        .await
        .expect("an answer within 10 s")
        .expect("a response")
        .unwrap();
    assert_eq!(
        first.r#type,
        Some(deliver_response::Type::Status(
            Status::ServiceUnavailable as i32
        ))
    );
}
