//! Crash: SIGKILL the orderer under load, restart it on the same data, and check that every
//! transaction acknowledged before the kill is in the chain exactly once and that the chain goes
//! on with valid hashes.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{test_batch, wait_for_txs, Orderer};
use ordo_peer_sim::{submit, Load};

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_under_load_loses_no_acknowledged_transaction() {
    let mut orderer = Orderer::start(test_batch());
    let client = orderer.client().await;

    // Far more load than can finish before the kill.
    let load = Load {
        count: 200_000,
        streams: 4,
        tx_bytes: 200,
        window: 128,
    };
    let acks = Arc::new(AtomicUsize::new(0));
    let counter = acks.clone();
    let submitting = {
        let client = client.clone();
        tokio::spawn(async move {
            submit(
                &client,
                &load,
                Arc::new(move || {
                    counter.fetch_add(1, Ordering::Relaxed);
                }),
            )
            .await
        })
    };
    // Kill mid-stream, once a good number of envelopes were acknowledged.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while acks.load(Ordering::Relaxed) < 3_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} envelopes acknowledged within 60 s",
            acks.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    orderer.kill9();
    let submitted = submitting.await.unwrap();
    assert!(
        !submitted.errors.is_empty(),
        "the streams should have broken when the orderer died"
    );
    assert!(submitted.acked.len() >= 3_000);
    assert!(submitted.acked.len() < 200_000);

    orderer.restart();
    let client = orderer.client().await;
    // Every acknowledged transaction, exactly once (wait_for_txs verifies each block, the hash
    // chain across the crash, and refuses duplicates).
    let chain = wait_for_txs(&client, &submitted.acked).await;

    // The chain goes on after the crash.
    let more = submit(
        &client,
        &Load {
            count: 500,
            streams: 2,
            tx_bytes: 200,
            window: 64,
        },
        Arc::new(|| {}),
    )
    .await;
    assert_eq!(more.acked.len(), 500);
    let longer = wait_for_txs(&client, &more.acked).await;
    assert!(longer.len() > chain.len());
    assert_eq!(&longer[..chain.len()], &chain[..]);
}
