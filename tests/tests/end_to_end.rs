//! End to end with the real binaries: `peer-sim` submits to an `orderer` on an ephemeral port,
//! verifies every block as it follows Deliver, and the chain is read back from block 0.

mod common;

use std::process::{Command, Stdio};

use common::{binary, test_batch, Orderer};
use ordo_peer_sim::ChainVerifier;

#[tokio::test(flavor = "multi_thread")]
async fn peer_sim_submits_verifies_and_reads_the_chain_back() {
    let orderer = Orderer::start(test_batch());
    let output = Command::new(binary("peer-sim"))
        .args(["--endpoint", &orderer.endpoint(), "--msp"])
        .arg(&orderer.client_msp)
        .args(orderer.tls_flags())
        .args([
            "--count",
            "2000",
            "--streams",
            "4",
            "--tx-bytes",
            "200",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "peer-sim failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = common::last_json_line(&output.stdout);
    assert_eq!(report["transactions"], 2000, "{stdout}");

    // Read the whole chain back from block 0 and check it independently of peer-sim's run.
    let client = orderer.client().await;
    let blocks = client.read_chain().await.unwrap();
    let mut verifier = ChainVerifier::new();
    let mut transactions = 0;
    for block in &blocks {
        transactions += verifier.verify(block).unwrap().tx_ids.len();
    }
    // Block 0 holds the genesis config envelope; the rest are the 2000 transactions.
    assert_eq!(transactions, 2001);
    // 100 messages a block at most: the count rule cut at least 20 blocks.
    assert!(blocks.len() > 20, "{} blocks", blocks.len());

    let verify = Command::new(binary("peer-sim"))
        .args(["verify", "--endpoint", &orderer.endpoint(), "--msp"])
        .arg(&orderer.client_msp)
        .args(orderer.tls_flags())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // Its output piped into a reader that has gone (`peer-sim verify | head -0`): a quiet end.
    let mut piped = Command::new(binary("peer-sim"))
        .args(["verify", "--endpoint", &orderer.endpoint(), "--msp"])
        .arg(&orderer.client_msp)
        .args(orderer.tls_flags())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(piped.stdout.take());
    let output = piped.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn clean_shutdown_and_restart_continue_the_chain() {
    let mut orderer = Orderer::start(test_batch());
    let client = orderer.client().await;
    let load = ordo_peer_sim::Load {
        count: 300,
        streams: 2,
        tx_bytes: 100,
        window: 64,
    };
    let first = ordo_peer_sim::submit(&client, &load, std::sync::Arc::new(|| {})).await;
    assert_eq!(first.acked.len(), 300);
    // Let the batch timeout cut what is pending before stopping.
    let before = common::wait_for_txs(&client, &first.acked).await;

    assert!(orderer.terminate().success(), "SIGTERM must exit cleanly");
    orderer.restart();
    let client = orderer.client().await;
    let second = ordo_peer_sim::submit(&client, &load, std::sync::Arc::new(|| {})).await;
    assert_eq!(second.acked.len(), 300);
    let after = common::wait_for_txs(&client, &second.acked).await;
    assert!(after.len() > before.len());
    // The chain after the restart extends the one before it, block for block.
    assert_eq!(&after[..before.len()], &before[..]);
}

#[tokio::test(flavor = "multi_thread")]
async fn deliver_headers_only_keeps_header_and_signatures() {
    use futures::StreamExt;
    use ordo_proto::common::{HeaderType, Status};
    use ordo_proto::orderer::seek_info::SeekContentType;
    use ordo_proto::orderer::{deliver_response, SeekInfo};
    use prost::Message;

    let orderer = Orderer::start(test_batch());
    let client = orderer.client().await;
    let info = SeekInfo {
        start: Some(ordo_core::envelope::specified(0)),
        stop: Some(ordo_core::envelope::specified(0)),
        content_type: SeekContentType::HeaderWithSig as i32,
        ..Default::default()
    };
    let request = ordo_core::envelope::build(
        &orderer.signer(),
        "ordo",
        HeaderType::DeliverSeekInfo,
        info.encode_to_vec().into(),
    );
    let mut stream = client.deliver_request(request).await.unwrap();
    let Some(deliver_response::Type::Block(block)) = stream.next().await.unwrap().unwrap().r#type
    else {
        panic!("expected block 0");
    };
    assert!(block.data.is_none(), "HEADER_WITH_SIG leaves the data out");
    assert_eq!(block.header.unwrap().number, 0);
    assert_eq!(block.metadata.unwrap().metadata.len(), 5);
    let status = stream.next().await.unwrap().unwrap().r#type;
    assert_eq!(
        status,
        Some(deliver_response::Type::Status(Status::Success as i32))
    );
}
