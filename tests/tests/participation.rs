//! The channel participation API against the real binary, over HTTP as osnadmin talks to it: a
//! node that starts with no channel joins one (a multipart POST built here, not by Ordo's own
//! client), lists, inspects, orders on, removes and re-joins it, keeps it across a restart, and
//! answers bad requests with Fabric's status codes and error texts.

mod common;

use std::time::Duration;

use common::admin::{Admin, AdminTls, CHANNELS};
use common::ports::PortBlock;
use common::{test_batch, Orderer};
use ordo_orderer::setup::config::TlsSection;
use ordo_orderer::setup::dev;
use ordo_proto::common::{HeaderType, Status};
use reqwest::header::HeaderValue;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;

/// A solo node with no `[[channel]]` and the admin port on a reserved port; the development
/// channel's genesis block (channel "ordo") is left for the test to join with.
fn start_without_channels(
    edit: impl FnOnce(&mut ordo_orderer::setup::config::NodeConfig),
) -> (Orderer, PortBlock, Admin, Vec<u8>) {
    let ports = PortBlock::reserve();
    let admin_addr: std::net::SocketAddr = format!("127.0.0.1:{}", ports.base).parse().unwrap();
    let orderer = Orderer::start_configured(test_batch(), |config| {
        config.channels.clear();
        config.admin.listen = Some(admin_addr);
        // The admin port as Fabric's: mutual TLS, admins being the holders of certificates
        // from the orderer organisation's TLS CA.
        let crypto = config.node.data_dir.join("crypto/Orderer");
        config.admin.tls = TlsSection {
            enabled: true,
            cert: config.tls.cert.clone(),
            key: config.tls.key.clone(),
            client_auth_required: true,
            client_root_cas: vec![crypto.join("tlsca/tlsca.pem")],
        };
        edit(config);
    });
    let genesis = std::fs::read(&orderer.genesis_block).unwrap();
    let tls = AdminTls::orderer_admin(orderer.dir.path());
    (orderer, ports, Admin::new(admin_addr, tls), genesis)
}

fn info_json(height: u64) -> String {
    format!(
        "{{\"name\":\"ordo\",\"url\":\"/participation/v1/channels/ordo\",\
         \"consensusRelation\":\"other\",\"status\":\"active\",\"height\":{height}}}\n"
    )
}

const NO_CHANNELS: &str = "{\"systemChannel\":null,\"channels\":null}\n";
const ONE_CHANNEL: &str = "{\"systemChannel\":null,\"channels\":[{\"name\":\"ordo\",\
                           \"url\":\"/participation/v1/channels/ordo\"}]}\n";

/// Orders `count` transactions on "ordo", each acknowledged SUCCESS.
async fn order(orderer: &Orderer, count: usize) {
    let client = orderer.client().await;
    let signer = orderer.signer();
    for i in 0..count {
        let envelope = ordo_core::envelope::build(
            &signer,
            dev::CHANNEL,
            HeaderType::Message,
            bytes::Bytes::from(format!("tx {i}")),
        );
        let answer = client.broadcast_one(envelope).await.unwrap();
        assert_eq!(answer.status, Status::Success as i32, "{answer:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn join_list_info_order_remove_rejoin_and_restart() {
    let (mut orderer, _ports, admin, genesis) = start_without_channels(|_| {});

    let list = admin.get(CHANNELS).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body, NO_CHANNELS);
    assert_eq!(list.headers["cache-control"], "no-store");
    assert_eq!(list.headers["content-type"], "application/json");
    assert!(list.headers.contains_key("x-request-id"));

    let joined = admin.join(&genesis).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    assert_eq!(
        joined.headers["location"],
        "/participation/v1/channels/ordo"
    );
    assert_eq!(joined.body, info_json(1));
    assert!(orderer.channel_dir().join("join.block").is_file());

    let again = admin.join(&genesis).await;
    assert_eq!(
        again.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{}",
        again.body
    );
    assert_eq!(again.headers["allow"], "GET, DELETE");
    assert_eq!(
        again.body,
        "{\"error\":\"cannot join: channel already exists\"}\n"
    );

    assert_eq!(admin.get(CHANNELS).await.body, ONE_CHANNEL);

    // The joined channel orders, and its blocks verify from block 0.
    order(&orderer, 5).await;
    admin.wait_height(dev::CHANNEL, 2).await;
    let client = orderer.client().await;
    let blocks = client.read_chain().await.unwrap();
    let mut verifier = ordo_peer_sim::ChainVerifier::new();
    let mut transactions = 0;
    for block in &blocks {
        transactions += verifier.verify(block).unwrap().tx_ids.len();
    }
    assert_eq!(transactions, 6, "the genesis config and 5 transactions");
    let info = admin.get(&format!("{CHANNELS}/ordo")).await;
    assert_eq!(info.body, info_json(blocks.len() as u64));
    // The blocks endpoint serves the stored bytes.
    let oldest = admin
        .http
        .get(format!("{}{CHANNELS}/ordo/blocks/oldest", admin.base))
        .send()
        .await
        .unwrap();
    assert_eq!(oldest.status(), StatusCode::OK);
    assert_eq!(oldest.headers()["content-type"], "application/octet-stream");
    assert_eq!(oldest.bytes().await.unwrap().as_ref(), genesis.as_slice());

    // Kept across a restart, from the join block in its folder.
    orderer.terminate();
    orderer.restart();
    let info = admin.get(&format!("{CHANNELS}/ordo")).await;
    assert_eq!(info.body, info_json(blocks.len() as u64));
    order(&orderer, 1).await;

    let removed = admin.delete(&format!("{CHANNELS}/ordo")).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    assert!(removed.body.is_empty());
    assert!(
        !orderer.channel_dir().exists(),
        "the channel's folder is deleted"
    );
    assert_eq!(admin.get(CHANNELS).await.body, NO_CHANNELS);
    let gone = admin.get(&format!("{CHANNELS}/ordo")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.body, "{\"error\":\"channel does not exist\"}\n");
    let gone = admin.delete(&format!("{CHANNELS}/ordo")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let not_served = orderer
        .client()
        .await
        .broadcast_one(ordo_core::envelope::build(
            &orderer.signer(),
            dev::CHANNEL,
            HeaderType::Message,
            bytes::Bytes::from_static(b"late"),
        ))
        .await
        .unwrap();
    assert_eq!(not_served.status, Status::NotFound as i32);

    // The same name again: a new channel from its genesis block.
    let rejoined = admin.join(&genesis).await;
    assert_eq!(rejoined.status, StatusCode::CREATED, "{}", rejoined.body);
    assert_eq!(rejoined.body, info_json(1));
    order(&orderer, 1).await;
    admin.wait_height(dev::CHANNEL, 2).await;

    // A restart with nothing joined comes back with nothing.
    assert_eq!(
        admin.delete(&format!("{CHANNELS}/ordo")).await.status,
        StatusCode::NO_CONTENT
    );
    orderer.terminate();
    orderer.restart();
    assert_eq!(admin.get(CHANNELS).await.body, NO_CHANNELS);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_channel_is_archived_when_configured() {
    let (orderer, _ports, admin, genesis) =
        start_without_channels(|c| c.channel_participation.archive_removed_channels = true);
    assert_eq!(admin.join(&genesis).await.status, StatusCode::CREATED);
    assert_eq!(
        admin.delete(&format!("{CHANNELS}/ordo")).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(!orderer.channel_dir().exists());
    let archived: Vec<_> = std::fs::read_dir(orderer.dir.path().join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(archived.len(), 1, "{archived:?}");
    let name = archived[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with("ordo-"), "{name}");
    assert!(archived[0].join("join.block").is_file());
    assert!(archived[0].join("ledger").is_dir());
    // The name is free again.
    assert_eq!(admin.join(&genesis).await.status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_fabrics_status_codes() {
    let (orderer, _ports, admin, genesis) =
        start_without_channels(|c| c.channel_participation.max_request_body_size = 64 << 10);
    let error = |text: &str| format!("{{\"error\":\"{text}\"}}\n");

    let root = admin.get("/participation/v1/").await;
    assert_eq!(root.status, StatusCode::FOUND);
    assert_eq!(root.headers["location"], CHANNELS);

    // Not multipart.
    let json = admin
        .send(
            admin
                .http
                .post(format!("{}{CHANNELS}", admin.base))
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
    assert_eq!(json.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json.body,
        error("unsupported Content-Type: [application/json]")
    );

    // A form without the part, or with one too many.
    let other = Form::new().part("block", Part::bytes(genesis.clone()).file_name("x"));
    let missing = admin.post_form(other).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.body,
        error("form does not contains part key: config-block")
    );
    let two = Form::new()
        .part(
            "config-block",
            Part::bytes(genesis.clone()).file_name("config.block"),
        )
        .text("extra", "1");
    let two = admin.post_form(two).await;
    assert_eq!(two.status, StatusCode::BAD_REQUEST);
    assert_eq!(two.body, error("form contains too many parts"));

    // Too large for max_request_body_size.
    let large = admin.join(&vec![0u8; 128 << 10]).await;
    assert_eq!(large.status, StatusCode::BAD_REQUEST, "{}", large.body);
    assert!(
        large.body.contains("cannot read form from request body"),
        "{}",
        large.body
    );

    // Not a block at all.
    let garbage = admin.join(&[0xff; 16]).await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert!(
        garbage
            .body
            .starts_with("{\"error\":\"cannot unmarshal file part config-block"),
        "{}",
        garbage.body
    );

    // A block of transactions, not a config block.
    let mut block: ordo_proto::common::Block = prost::Message::decode(genesis.as_slice()).unwrap();
    let tx = ordo_core::envelope::build(
        &orderer.signer(),
        dev::CHANNEL,
        HeaderType::Message,
        bytes::Bytes::from_static(b"tx"),
    );
    let data = vec![bytes::Bytes::from(prost::Message::encode_to_vec(&tx))];
    block.header.as_mut().unwrap().data_hash = ordo_core::block::data_hash(&data).to_vec().into();
    block.data = Some(ordo_proto::common::BlockData { data });
    let normal = admin.join(&prost::Message::encode_to_vec(&block)).await;
    assert_eq!(normal.status, StatusCode::BAD_REQUEST);
    assert!(
        normal
            .body
            .starts_with("{\"error\":\"invalid join block: block is not a config block"),
        "{}",
        normal.body
    );
    // A tampered data hash.
    let mut tampered: ordo_proto::common::Block =
        prost::Message::decode(genesis.as_slice()).unwrap();
    tampered.header.as_mut().unwrap().data_hash = vec![0; 32].into();
    let tampered = admin.join(&prost::Message::encode_to_vec(&tampered)).await;
    assert_eq!(tampered.status, StatusCode::BAD_REQUEST);
    assert!(
        tampered
            .body
            .contains("invalid join block: block data hash"),
        "{}",
        tampered.body
    );
    // Nothing was joined by any of them.
    assert_eq!(admin.get(CHANNELS).await.body, NO_CHANNELS);
    assert!(!orderer.channel_dir().exists());

    // Unknown channel, bad channel id, bad block id.
    let unknown = admin.get(&format!("{CHANNELS}/nosuch")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body, error("channel does not exist"));
    let bad = admin.get(&format!("{CHANNELS}/Bad_Id")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body
            .starts_with("{\"error\":\"invalid channel ID: 'Bad_Id'"),
        "{}",
        bad.body
    );
    let bad_block = admin.get(&format!("{CHANNELS}/nosuch/blocks/first")).await;
    assert_eq!(bad_block.status, StatusCode::BAD_REQUEST);

    // Wrong methods.
    let put = admin
        .send(admin.http.put(format!("{}{CHANNELS}/ordo", admin.base)))
        .await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(put.headers["allow"], "GET, DELETE");
    let patch = admin
        .send(admin.http.patch(format!("{}{CHANNELS}", admin.base)))
        .await;
    assert_eq!(patch.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(patch.headers["allow"], "GET, POST");
    let post_block = admin
        .send(
            admin
                .http
                .post(format!("{}{CHANNELS}/ordo/blocks/newest", admin.base)),
        )
        .await;
    assert_eq!(post_block.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post_block.headers["allow"], "GET");

    // Content negotiation, and the request id echoed.
    let html = admin
        .send(
            admin
                .http
                .get(format!("{}{CHANNELS}", admin.base))
                .header("accept", "text/html")
                .header("x-request-id", "req-42"),
        )
        .await;
    assert_eq!(html.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(
        html.body,
        error("response Content-Type is application/json only")
    );
    assert_eq!(
        html.headers["x-request-id"],
        HeaderValue::from_static("req-42")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_api_answers_503() {
    let (_orderer, _ports, admin, genesis) =
        start_without_channels(|c| c.channel_participation.enabled = false);
    for answer in [admin.get(CHANNELS).await, admin.join(&genesis).await] {
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            answer.body,
            "{\"error\":\"channel participation API is disabled\"}\n"
        );
    }
}

/// Runs `orderer admin channel --admin-address ADDR ARGS` and returns its exit success and
/// stdout.
fn osnadmin(admin: &Admin, args: &[&str]) -> (bool, String) {
    let address = admin.base.trim_start_matches("https://");
    let output = std::process::Command::new(common::binary("orderer"))
        .args(["admin", "channel", "--admin-address", address, "--tls-ca"])
        .arg(&admin.tls.ca)
        .arg("--tls-cert")
        .arg(&admin.tls.cert)
        .arg("--tls-key")
        .arg(&admin.tls.key)
        .args(args)
        .output()
        .expect("running orderer admin channel");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn orderer_admin_channel_is_ordos_osnadmin() {
    let (orderer, _ports, admin, _) = start_without_channels(|_| {});
    let block = orderer.genesis_block.to_string_lossy().into_owned();
    let (ok, out) = osnadmin(&admin, &["join", "--config-block", &block]);
    assert!(ok, "{out}");
    assert!(out.starts_with("Status: 201\n"), "{out}");
    assert!(out.contains("\"consensusRelation\": \"other\""), "{out}");
    let (ok, out) = osnadmin(&admin, &["list"]);
    assert!(ok && out.contains("\"name\": \"ordo\""), "{out}");
    let (ok, out) = osnadmin(&admin, &["info", "--channel-id", "ordo"]);
    assert!(ok && out.contains("\"height\": 1"), "{out}");
    let (ok, out) = osnadmin(&admin, &["remove", "--channel-id", "ordo"]);
    assert!(ok, "{out}");
    assert_eq!(out, "Status: 204\n");
    let (ok, out) = osnadmin(&admin, &["info", "--channel-id", "ordo"]);
    assert!(!ok, "{out}");
    assert!(out.starts_with("Status: 404\n"), "{out}");
    assert!(out.contains("channel does not exist"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_certificates_from_another_ca_or_none_are_refused() {
    let (orderer, ports, admin, _) = start_without_channels(|_| {});
    assert_eq!(admin.get(CHANNELS).await.status, StatusCode::OK);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", ports.base).parse().unwrap();
    // Org1's user certificate chains to Org1's TLS CA, not to the admins' CA.
    let other = Admin::new(addr, AdminTls::org1_user(orderer.dir.path()));
    let refused = other
        .http
        .get(format!("{}{CHANNELS}", other.base))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");
    // No client certificate at all: the handshake fails too.
    let ca = std::fs::read(&admin.tls.ca).unwrap();
    let anonymous = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let refused = anonymous
        .get(format!("{}{CHANNELS}", admin.base))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");
    // Plain HTTP is not served on the admin port.
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}{CHANNELS}"))
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    assert!(
        plain
            .as_ref()
            .map_or(true, |r| r.status() != StatusCode::OK),
        "{plain:?}"
    );
}
