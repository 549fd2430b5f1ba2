//! What a client can make the node hold is bounded: connections (in all and per address, with
//! handshake and idle timeouts) and the bytes queued for slow Deliver readers. Clients within the
//! limits keep being served while others hit them.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{test_batch, wait_for_txs, Orderer};
use futures::StreamExt;
use ordo_core::envelope;
use ordo_orderer::setup::dev::BatchSection;
use ordo_peer_sim::{submit, Client, Load};
use ordo_proto::orderer::deliver_response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// HTTP/2's connection preface and an empty SETTINGS frame: a client that opens HTTP/2 and then
/// says nothing more.
const HTTP2_START: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether the node serves this connection: after HTTP/2's start it answers with its own
/// SETTINGS; a refused connection is closed at once (end of stream or reset).
async fn is_served(stream: &mut TcpStream) -> bool {
    if stream.write_all(HTTP2_START).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
        Ok(Ok(n)) => n > 0,
        Ok(Err(_)) => false,
        Err(_) => panic!("the node neither served nor closed a connection within 10 s"),
    }
}

/// Opens `count` connections from `source` that start HTTP/2 and go quiet; returns those served.
async fn hold(source: &str, to: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut served = Vec::new();
    for _ in 0..count {
        let mut stream = connect_from(source, to).await;
        if is_served(&mut stream).await {
            served.push(stream);
        }
    }
    served
}

/// Reads until the node closes the connection; panics if it stays open past `deadline`.
async fn closed_within(stream: &mut TcpStream, deadline: Duration) {
    let mut buf = [0u8; 4096];
    let until = tokio::time::Instant::now() + deadline;
    loop {
        match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the node kept the connection open past {deadline:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_limits_are_refused_while_served_clients_go_on() {
    let orderer = Orderer::start_configured(test_batch(), |config| {
        config.limits.max_connections = 50;
        config.limits.max_connections_per_ip = 30;
        config.limits.handshake_timeout_ms = 2_000;
        // The raw connections below speak plain HTTP/2.
        config.tls.enabled = false;
    });
    // A well-behaved client, connected before the flood.
    let client = orderer.client().await;
    let first = client
        .broadcast_one(envelope::build(
            &orderer.signer(),
            "ordo",
            ordo_proto::common::HeaderType::EndorserTransaction,
            bytes::Bytes::from_static(b"before"),
        ))
        .await
        .unwrap();
    assert_eq!(first.status, ordo_proto::common::Status::Success as i32);

    // One address gets its share and no more.
    let from_a = hold("127.0.0.2", orderer.addr, 40).await;
    assert_eq!(
        from_a.len(),
        30,
        "connections from one address beyond its share"
    );
    // Another address fills what is left of the node's total: 50 - 1 - 30.
    let from_b = hold("127.0.0.3", orderer.addr, 30).await;
    assert_eq!(from_b.len(), 19, "connections beyond the node's total");
    // Nobody else gets in now, not even the good client's address.
    let mut late = connect_from("127.0.0.1", orderer.addr).await;
    assert!(!is_served(&mut late).await, "a connection over the total");

    // The client connected before is served throughout.
    let load = Load {
        count: 500,
        streams: 2,
        tx_bytes: 100,
        window: 16,
    };
    let submitted = submit(&client, &load, Arc::new(|| {})).await;
    assert!(submitted.errors.is_empty(), "{:?}", submitted.errors);
    assert_eq!(submitted.acked.len(), 500);
    wait_for_txs(&client, &submitted.acked).await;

    // A client that connects and never starts HTTP/2 is closed after the handshake timeout.
    drop(from_b);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut silent = loop {
        let mut probe = connect_from("127.0.0.4", orderer.addr).await;
        // Wait until the slots of the dropped connections are free again: then it is served.
        if is_served(&mut probe).await {
            drop(probe);
            break connect_from("127.0.0.4", orderer.addr).await;
        }
        assert!(Instant::now() < deadline, "freed slots were not reused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let connected = Instant::now();
    closed_within(&mut silent, Duration::from_secs(10)).await;
    assert!(
        connected.elapsed() >= Duration::from_millis(1_900),
        "closed after {:?}, before the handshake timeout",
        connected.elapsed()
    );
    drop(from_a);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_without_streams_is_closed_after_the_idle_timeout() {
    let orderer = Orderer::start_configured(test_batch(), |config| {
        config.limits.idle_timeout_ms = 1_000;
        // The raw connection below speaks plain HTTP/2.
        config.tls.enabled = false;
    });
    let connected = Instant::now();
    let mut idle = connect_from("127.0.0.1", orderer.addr).await;
    assert!(is_served(&mut idle).await);
    closed_within(&mut idle, Duration::from_secs(15)).await;
    assert!(
        connected.elapsed() >= Duration::from_millis(900),
        "closed after {:?}, before the idle timeout",
        connected.elapsed()
    );

    // A client with a stream open (a Deliver waiting for the next block) is not idle.
    let client = orderer.client().await;
    let mut follow = client
        .deliver_request(envelope::seek(
            &orderer.signer(),
            "ordo",
            envelope::specified(1),
            envelope::specified(u64::MAX),
            0,
        ))
        .await
        .unwrap();
    let started = Instant::now();
    // Order a transaction after three idle timeouts: the waiting stream still gets it.
    let later = tokio::spawn({
        let client = client.clone();
        let signer = orderer.signer();
        async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            client
                .broadcast_one(envelope::build(
                    &signer,
                    "ordo",
                    ordo_proto::common::HeaderType::EndorserTransaction,
                    bytes::Bytes::from_static(b"later"),
                ))
                .await
                .unwrap()
        }
    });
    let block = tokio::time::timeout(Duration::from_secs(30), follow.next())
        .await
        .expect("block 1 within 30 s")
        .expect("the stream is open")
        .expect("no error");
    assert!(matches!(
        block.r#type,
        Some(deliver_response::Type::Block(_))
    ));
    assert!(started.elapsed() >= Duration::from_secs(3));
    later.await.unwrap();
}

/// Resident memory of a process, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kib << 10
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_deliver_readers_hold_bounded_memory() {
    // Blocks of about 1 MiB.
    let batch = BatchSection {
        max_message_count: 100,
        absolute_max_bytes: 2 << 20,
        preferred_max_bytes: 1 << 20,
        timeout_ms: 100,
        dedup_window_blocks: 100,
    };
    let orderer = Orderer::start_configured(batch, |config| {
        config.limits.deliver_stream_bytes = 2 << 20;
        config.limits.deliver_total_bytes = 16 << 20;
        config.limits.max_deliver_streams = 21;
    });
    let client = orderer.client().await;
    let load = Load {
        count: 4_000,
        streams: 4,
        tx_bytes: 10 << 10,
        window: 16,
    };
    let submitted = submit(&client, &load, Arc::new(|| {})).await;
    assert!(submitted.errors.is_empty(), "{:?}", submitted.errors);
    let chain = wait_for_txs(&client, &submitted.acked).await;
    assert!(chain.len() > 30, "{} blocks", chain.len());
    drop(chain);

    let before = rss_bytes(orderer.pid());
    // Readers that take one block and then nothing more, each on a connection of its own.
    const READERS: usize = 20;
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let reader =
            Client::connect_tls(&orderer.endpoint(), "ordo", orderer.signer(), &orderer.tls)
                .await
                .unwrap();
        let mut stream = reader
            .deliver_request(envelope::seek(
                &orderer.signer(),
                "ordo",
                envelope::specified(0),
                envelope::specified(u64::MAX),
                0,
            ))
            .await
            .unwrap();
        let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("block 0 within 10 s");
        assert!(first.is_some());
        readers.push((reader, stream));
    }
    // Unbounded queues would fill within milliseconds (the blocks are read from local files);
    // watch the node for two seconds while nobody reads.
    let mut peak = 0;
    for _ in 0..20 {
        peak = peak.max(rss_bytes(orderer.pid()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let grown = peak.saturating_sub(before);
    eprintln!(
        "{READERS} stalled readers: node RSS {} MiB before, peak {} MiB",
        before >> 20,
        peak >> 20
    );
    // 16 MiB queued in all, plus per stream the block it queues outside the pool and what gRPC
    // and HTTP/2 hold of the one being sent: about 3 blocks. Unbounded, the readers would hold
    // the whole chain each (20 × 40 MiB).
    let bound = 160u64 << 20;
    assert!(
        grown < bound,
        "{READERS} stalled readers grew the node by {} MiB (bound {} MiB)",
        grown >> 20,
        bound >> 20
    );

    // A slow reader is slowed, not cut off: it still gets every block.
    let (_reader, mut stream) = readers.pop().unwrap();
    let height = client.read_chain().await.unwrap().len();
    let mut received = 1;
    while received < height {
        match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
            Ok(Some(Ok(response))) => {
                if let Some(deliver_response::Type::Block(_)) = response.r#type {
                    received += 1;
                }
            }
            other => panic!("reader cut off after {received} blocks: {other:?}"),
        }
    }

    // With 20 readers open, one more Deliver stream is served and the next is refused.
    // (Streams that follow the chain: they stay open.)
    let seek = || {
        envelope::seek(
            &orderer.signer(),
            "ordo",
            envelope::specified(0),
            envelope::specified(u64::MAX),
            0,
        )
    };
    let mut last_one = client.deliver_request(seek()).await.unwrap();
    let first = last_one.next().await.unwrap().unwrap();
    assert!(matches!(
        first.r#type,
        Some(deliver_response::Type::Block(_))
    ));
    let mut refused = client.deliver_request(seek()).await.unwrap();
    let answer = refused.next().await.unwrap().unwrap();
    assert_eq!(
        answer.r#type,
        Some(deliver_response::Type::Status(
            ordo_proto::common::Status::ServiceUnavailable as i32
        ))
    );
    drop(readers);
}
