//! Bad input: every refusal gets its Fabric status, a refused envelope never reaches the chain,
//! and a well-behaved client on another stream keeps being served throughout.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{test_batch, wait_for_txs, Orderer};
use futures::StreamExt;
use ordo_core::envelope::{self, build};
use ordo_core::msp::SigningIdentity as Signer;
use ordo_peer_sim::{submit, Client, Load};
use ordo_proto::common::{Envelope, HeaderType, Status};
use ordo_proto::orderer::deliver_response;
use ordo_proto::orderer::seek_info::SeekBehavior;
use prost::Message;
use tokio::io::AsyncWriteExt;

/// Sends one envelope on a new Broadcast stream; returns its status and whether the orderer then
/// closed the stream (Fabric closes after the first non-SUCCESS answer).
async fn broadcast_one(client: &Client, envelope: Envelope) -> (Status, bool) {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tx.send(envelope).await.unwrap();
    let mut responses = client
        .grpc()
        .broadcast(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let first = responses.next().await.unwrap().unwrap();
    // Keep our side open: only the orderer may end the stream here.
    let closed = matches!(
        tokio::time::timeout(Duration::from_secs(5), responses.next()).await,
        Ok(None) | Ok(Some(Err(_)))
    );
    drop(tx);
    (Status::try_from(first.status).unwrap(), closed)
}

async fn deliver_status(client: &Client, request: Envelope) -> Status {
    let mut stream = client.deliver_request(request).await.unwrap();
    while let Some(response) = stream.next().await {
        if let Some(deliver_response::Type::Status(s)) = response.unwrap().r#type {
            return Status::try_from(s).unwrap();
        }
    }
    panic!("Deliver ended without a status");
}

fn tx(signer: &Signer, channel: &str) -> Envelope {
    build(
        signer,
        channel,
        HeaderType::EndorserTransaction,
        Bytes::from_static(b"tx"),
    )
}

/// Re-signs a payload changed by `edit`, so only the edited property is wrong.
fn resigned(signer: &Signer, mut envelope: Envelope, edit: impl FnOnce(&mut Vec<u8>)) -> Envelope {
    let mut payload = envelope.payload.to_vec();
    edit(&mut payload);
    envelope.signature = signer.sign(&payload).into();
    envelope.payload = payload.into();
    envelope
}

/// Re-dates an envelope's channel header to `unix_seconds` and re-signs it.
fn dated(signer: &Signer, envelope: Envelope, unix_seconds: i64) -> Envelope {
    use ordo_proto::common::{ChannelHeader, Payload};
    let mut payload = Payload::decode(envelope.payload.as_ref()).unwrap();
    let header = payload.header.as_mut().unwrap();
    let mut channel_header = ChannelHeader::decode(header.channel_header.as_ref()).unwrap();
    channel_header.timestamp = Some(prost_types::Timestamp {
        seconds: unix_seconds,
        nanos: 0,
    });
    header.channel_header = channel_header.encode_to_vec().into();
    resigned(signer, envelope, |bytes| *bytes = payload.encode_to_vec())
}

/// A transaction whose creator is `creator`, signed by `signer`.
fn with_creator(signer: &Signer, creator: Bytes) -> Envelope {
    use ordo_proto::common::{Payload, SignatureHeader};
    let envelope = tx(signer, "ordo");
    let mut payload = Payload::decode(envelope.payload.as_ref()).unwrap();
    let header = payload.header.as_mut().unwrap();
    let mut signature_header = SignatureHeader::decode(header.signature_header.as_ref()).unwrap();
    signature_header.creator = creator;
    header.signature_header = signature_header.encode_to_vec().into();
    resigned(signer, envelope, |bytes| *bytes = payload.encode_to_vec())
}

/// An identity of an organisation named Org1MSP whose CA the channel does not know.
fn stranger(dir: &std::path::Path) -> Signer {
    use ordo_client::cryptogen::{generate, KeyKind, OrgKind, OrgSpec};
    let spec = OrgSpec {
        name: "Org1".into(),
        kind: OrgKind::Peer,
        nodes: 0,
        users: 1,
        hosts: vec![],
    };
    let made = generate(dir, &[spec], KeyKind::EcdsaP256).unwrap();
    ordo_client::msp_dir::signing_identity(&made[0].users[1].join("msp"), "Org1MSP").unwrap()
}

/// A Deliver request for block 0.
fn seek_block_0(signer: &Signer) -> Envelope {
    envelope::seek(
        signer,
        "ordo",
        envelope::specified(0),
        envelope::specified(0),
        0,
    )
}

/// 2001-09-09 and 2100-01-01.
const LONG_AGO: i64 = 1_000_000_000;
const FAR_AHEAD: i64 = 4_102_444_800;

#[tokio::test(flavor = "multi_thread")]
async fn each_rejection_has_its_status_and_good_clients_are_unaffected() {
    let orderer = Orderer::start(test_batch());
    let client = orderer.client().await;
    let signer = orderer.signer();
    let elsewhere = tempfile::tempdir().unwrap();
    let stranger = stranger(elsewhere.path());
    // A member of Org1 (a peer), but not one of its writers (admins and clients).
    let peer = ordo_client::msp_dir::signing_identity(
        &orderer.dir.path().join("crypto/Org1/peers/peer1/msp"),
        "Org1MSP",
    )
    .unwrap();

    // A well-behaved client submitting throughout.
    let good = {
        let client = client.clone();
        tokio::spawn(async move {
            let load = Load {
                count: 3_000,
                streams: 2,
                tx_bytes: 100,
                window: 16,
            };
            submit(&client, &load, Arc::new(|| {})).await
        })
    };

    let garbage = Envelope {
        payload: Bytes::from_static(b"\x0a\xff\xff not protobuf"),
        signature: Bytes::from_static(b"sig"),
    };
    let unsigned = Envelope {
        signature: Bytes::new(),
        ..tx(&signer, "ordo")
    };
    let oversize = build(
        &signer,
        "ordo",
        HeaderType::EndorserTransaction,
        Bytes::from(vec![7u8; 65 << 10]),
    );
    let unknown_channel = tx(&signer, "nosuchchannel");
    let mut forged = tx(&signer, "ordo");
    forged.signature = stranger.sign(&forged.payload).into();
    let other_ca = tx(&stranger, "ordo");
    let not_a_writer = tx(&peer, "ordo");
    let not_pem = with_creator(
        &signer,
        ordo_proto::msp::SerializedIdentity {
            mspid: "Org1MSP".into(),
            id_bytes: Bytes::from_static(b"not a certificate"),
        }
        .encode_to_vec()
        .into(),
    );
    // Swap the tx_id for another valid-looking one and re-sign: only the tx_id is wrong.
    let wrong_tx_id = {
        let envelope = tx(&signer, "ordo");
        let id = envelope::stored_tx_id(&envelope.encode_to_vec().into()).unwrap();
        let other = envelope::tx_id(b"another nonce", signer.serialized());
        resigned(&signer, envelope, |payload| {
            let at = payload
                .windows(id.len())
                .position(|w| w == id.as_bytes())
                .unwrap();
            payload[at..at + id.len()].copy_from_slice(other.as_bytes());
        })
    };
    let seek_on_broadcast = envelope::seek(
        &signer,
        "ordo",
        envelope::specified(0),
        envelope::specified(0),
        0,
    );
    let config_sent_directly = build(
        &orderer.admin(),
        "ordo",
        HeaderType::Config,
        Bytes::from_static(b"x"),
    );
    // A config update signed by a client, not by the orderer organisation's admins.
    let update_by_client = {
        let genesis = std::fs::read(&orderer.genesis_block).unwrap();
        let genesis = ordo_proto::common::Block::decode(genesis.as_slice()).unwrap();
        let bundle = ordo_core::bundle::Bundle::from_block(&genesis).unwrap();
        let update = ordo_core::configtx::client::value_update(
            bundle.config(),
            "ordo",
            &["Orderer"],
            "BatchTimeout",
            ordo_proto::orderer::BatchTimeout {
                timeout: "1s".into(),
            }
            .encode_to_vec()
            .into(),
        )
        .unwrap();
        ordo_core::configtx::client::update_envelope(&update, &[&signer], &signer)
    };

    let cases = [
        ("undecodable payload", garbage, Status::BadRequest),
        ("empty signature", unsigned, Status::BadRequest),
        (
            "over AbsoluteMaxBytes",
            oversize,
            Status::RequestEntityTooLarge,
        ),
        ("unknown channel", unknown_channel, Status::NotFound),
        ("signature by another key", forged, Status::Forbidden),
        ("certificate of another CA", other_ca, Status::Forbidden),
        ("creator not PEM", not_pem, Status::Forbidden),
        ("creator not a writer", not_a_writer, Status::Forbidden),
        (
            "tx_id not SHA-256(nonce ‖ creator)",
            wrong_tx_id,
            Status::BadRequest,
        ),
        (
            "a Deliver request on Broadcast",
            seek_on_broadcast,
            Status::BadRequest,
        ),
        (
            "a CONFIG envelope sent directly",
            config_sent_directly,
            Status::BadRequest,
        ),
        (
            "a config update without the admins' signatures",
            update_by_client,
            Status::BadRequest,
        ),
        (
            "dated 2001",
            dated(&signer, tx(&signer, "ordo"), LONG_AGO),
            Status::BadRequest,
        ),
        (
            "dated 2100",
            dated(&signer, tx(&signer, "ordo"), FAR_AHEAD),
            Status::BadRequest,
        ),
    ];
    for (name, envelope, expected) in cases {
        let (status, closed) = broadcast_one(&client, envelope).await;
        assert_eq!(status, expected, "{name}");
        assert!(closed, "{name}: the stream should end after a refusal");
    }

    // Garbage that is not even gRPC, and a client that connects and goes silent.
    let mut raw = tokio::net::TcpStream::connect(orderer.addr).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n\x00\xff garbage")
        .await
        .unwrap();
    drop(raw);
    let _silent = tokio::net::TcpStream::connect(orderer.addr).await.unwrap();

    // Deliver refusals.
    let deliver_cases = [
        (
            "unknown channel",
            envelope::seek(
                &signer,
                "nosuchchannel",
                envelope::specified(0),
                envelope::specified(0),
                0,
            ),
            Status::NotFound,
        ),
        (
            "reader not allowed",
            envelope::seek(
                &stranger,
                "ordo",
                envelope::specified(0),
                envelope::specified(0),
                0,
            ),
            Status::Forbidden,
        ),
        (
            "block not there under FAIL_IF_NOT_READY",
            envelope::seek(
                &signer,
                "ordo",
                envelope::specified(1_000_000),
                envelope::specified(1_000_000),
                SeekBehavior::FailIfNotReady as i32,
            ),
            Status::NotFound,
        ),
        (
            "start after stop",
            envelope::seek(
                &signer,
                "ordo",
                envelope::specified(2),
                envelope::specified(1),
                0,
            ),
            Status::BadRequest,
        ),
        (
            "not a SeekInfo",
            build(
                &signer,
                "ordo",
                HeaderType::DeliverSeekInfo,
                Bytes::from_static(b"\xff\xff"),
            ),
            Status::BadRequest,
        ),
        (
            "not a Deliver request",
            tx(&signer, "ordo"),
            Status::BadRequest,
        ),
        (
            "dated 2001",
            dated(&signer, seek_block_0(&signer), LONG_AGO),
            Status::BadRequest,
        ),
        (
            "dated 2100",
            dated(&signer, seek_block_0(&signer), FAR_AHEAD),
            Status::BadRequest,
        ),
        (
            "a finished range",
            envelope::seek(
                &signer,
                "ordo",
                envelope::specified(0),
                envelope::specified(0),
                0,
            ),
            Status::Success,
        ),
    ];
    for (name, request, expected) in deliver_cases {
        assert_eq!(
            deliver_status(&client, request).await,
            expected,
            "Deliver: {name}"
        );
    }

    // The good client was served throughout, and nothing refused reached the chain.
    let good = good.await.unwrap();
    assert!(good.errors.is_empty(), "{:?}", good.errors);
    assert!(good.refused.is_empty(), "{:?}", good.refused);
    assert_eq!(good.acked.len(), 3_000);
    let chain = wait_for_txs(&client, &good.acked).await;
    let transactions: usize = chain
        .iter()
        .skip(1)
        .map(|b| b.data.as_ref().map_or(0, |d| d.data.len()))
        .sum();
    assert_eq!(
        transactions, 3_000,
        "only the good client's transactions are in the chain"
    );
}

/// A request message sent as the given bytes, whatever they are.
#[derive(Clone, Debug, Default, PartialEq)]
struct Raw(Vec<u8>);

impl prost::Message for Raw {
    fn encode_raw(&self, buf: &mut impl bytes::BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// Random bytes that cannot be an Envelope: they open with field 1 (`payload`, bytes) encoded
/// as a varint.
fn undecodable(len: usize) -> Raw {
    let mut bytes = vec![0x08, 0x07];
    bytes.extend((2..len).map(|_| rand::random::<u8>()));
    Raw(bytes)
}

/// Opens `method` of AtomicBroadcast, sends `messages` and returns the first `answers`
/// responses, or the gRPC status the call ended with.
async fn raw_call<R: prost::Message + Default + 'static>(
    orderer: &Orderer,
    method: &'static str,
    messages: Vec<Raw>,
    answers: usize,
) -> Result<Vec<R>, tonic::Status> {
    let channel = orderer.grpc_channel().await;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(method);
    let codec = tonic_prost::ProstCodec::<Raw, R>::default();
    // Keep the request side open: only the orderer may end the call.
    let requests = futures::stream::iter(messages).chain(futures::stream::pending());
    let mut responses = grpc
        .streaming(tonic::Request::new(requests), path, codec)
        .await?
        .into_inner();
    let mut received = Vec::new();
    while received.len() < answers {
        let next = tokio::time::timeout(Duration::from_secs(10), responses.next())
            .await
            .expect("an answer within 10 s");
        received.push(next.expect("a response, not the end of the stream")?);
    }
    Ok(received)
}

#[tokio::test(flavor = "multi_thread")]
async fn unreadable_and_oversized_messages_get_an_answer() {
    let orderer = Orderer::start(test_batch());
    let client = orderer.client().await;
    // The node's limit is AbsoluteMaxBytes (64 KiB here) plus framing room.
    let oversized = || undecodable(4 << 20);

    let broadcast = "/orderer.AtomicBroadcast/Broadcast";
    for (name, message, expected) in [
        ("undecodable", undecodable(2_000), Status::BadRequest),
        ("oversized", oversized(), Status::RequestEntityTooLarge),
    ] {
        let answers: Vec<ordo_proto::orderer::BroadcastResponse> =
            raw_call(&orderer, broadcast, vec![message], 1)
                .await
                .unwrap();
        assert_eq!(
            answers[0].status, expected as i32,
            "Broadcast, {name}: {answers:?}"
        );
        assert!(
            !answers[0].info.is_empty(),
            "Broadcast, {name}: the answer says why"
        );
    }

    // On one stream, the envelopes before an unreadable message are answered first, in order.
    let signer = orderer.signer();
    let good = || Raw(tx(&signer, "ordo").encode_to_vec());
    let answers: Vec<ordo_proto::orderer::BroadcastResponse> = raw_call(
        &orderer,
        broadcast,
        vec![good(), good(), undecodable(100)],
        3,
    )
    .await
    .unwrap();
    let statuses: Vec<i32> = answers.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses,
        [Status::Success, Status::Success, Status::BadRequest].map(|s| s as i32)
    );

    let deliver = "/orderer.AtomicBroadcast/Deliver";
    for (name, message, expected) in [
        ("undecodable", undecodable(2_000), Status::BadRequest),
        ("oversized", oversized(), Status::RequestEntityTooLarge),
    ] {
        let answers: Vec<ordo_proto::orderer::DeliverResponse> =
            raw_call(&orderer, deliver, vec![message], 1).await.unwrap();
        assert_eq!(
            answers[0].r#type,
            Some(deliver_response::Type::Status(expected as i32)),
            "Deliver, {name}"
        );
    }

    // The node still orders.
    let good = client
        .broadcast_one(tx(&orderer.signer(), "ordo"))
        .await
        .unwrap();
    assert_eq!(good.status, Status::Success as i32);
}
