//! Onboarding as Fabric does it, against real binaries over TLS: a fourth node, started with no
//! channel, is joined through the participation API with a later config block of a running raft
//! channel. It pulls the chain from the consenters up to that block, then keeps following, with
//! blocks byte-identical to a consenter's; it orders nothing itself, survives a restart, and
//! moves to another consenter when the one it pulls from dies.

mod common;

use common::admin::{Admin, AdminTls, CHANNELS};
use common::cluster::{submit_all, Cluster, NodeId, Spec};
use common::ports::PortBlock;
use ordo_core::block::last_config_index;
use ordo_orderer::setup::config::{NodeConfig, TlsSection};
use ordo_orderer::setup::dev::{CHANNEL, ORDERER_MSPID};
use ordo_proto::common::{Block, Envelope, HeaderType, Status};
use prost::Message;
use reqwest::StatusCode;

/// A config update of the channel's BatchSize (max_message_count), signed by the orderer
/// organisation's admin: it makes a config block.
fn batch_size_update(cluster: &Cluster, genesis: &Block, count: u32) -> Envelope {
    let admin_msp = cluster.dir.path().join("crypto/Orderer/users/Admin/msp");
    let admin = ordo_client::msp_dir::signing_identity(&admin_msp, ORDERER_MSPID).unwrap();
    common::batch_size_update(genesis, count, &admin)
}

/// Gives node `id` no `[[channel]]` and an admin port with mutual TLS (admins: holders of
/// certificates from the orderer organisation's TLS CA), on `port`.
fn without_channels_with_admin(cluster: &Cluster, id: NodeId, port: u16) -> Admin {
    let node = cluster.node(id);
    let mut config = NodeConfig::load(&node.config).unwrap();
    config.channels.clear();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    config.admin.listen = Some(addr);
    config.admin.tls = TlsSection {
        enabled: true,
        cert: Some(node.tls_dir.join("server.crt")),
        key: Some(node.tls_dir.join("server.key")),
        client_auth_required: true,
        client_root_cas: vec![cluster.dir.path().join("crypto/Orderer/tlsca/tlsca.pem")],
    };
    config.write(&node.config).unwrap();
    Admin::new(addr, AdminTls::orderer_admin(cluster.dir.path()))
}

/// Asserts that each of `follower`'s blocks from `from` on is byte for byte the block of one of
/// `consenters`; returns its height.
async fn assert_pulled_as_stored(
    cluster: &Cluster,
    follower: NodeId,
    consenters: &[NodeId],
    from: usize,
) -> usize {
    let theirs = cluster.ledgers(consenters).await;
    let (_, ours) = cluster.ledgers(&[follower]).await.remove(0);
    for block in &ours[from..] {
        let number = block.header.as_ref().unwrap().number as usize;
        let bytes = block.encode_to_vec();
        assert!(
            theirs
                .iter()
                .any(|(_, chain)| chain.get(number).map(Message::encode_to_vec)
                    == Some(bytes.clone())),
            "node {follower}'s block {number} is none of nodes {consenters:?}'s block"
        );
    }
    ours.len()
}

async fn info(admin: &Admin) -> serde_json::Value {
    let answer = admin.get(&format!("{CHANNELS}/{CHANNEL}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    serde_json::from_str(&answer.body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_joined_with_a_later_config_block_onboards_then_follows() {
    let mut cluster = Cluster::start(Spec {
        nodes: 4,
        ..Spec::three()
    })
    .await;
    let consenters = [1, 2, 3];
    let clients = cluster.clients(&consenters).await;
    let mut acked = submit_all(&clients, 60).await.acked;

    // A config block in the middle of the chain.
    let genesis = cluster.chain(1).await.unwrap().blocks.remove(0);
    let update = batch_size_update(&cluster, &genesis, 20);
    let answer = clients[0].broadcast_one(update).await.unwrap();
    assert_eq!(answer.status, Status::Success as i32, "{}", answer.info);
    acked.extend(submit_all(&clients, 60).await.acked);
    let chain = cluster.wait_converged(&consenters, &acked).await;
    let config_block = chain
        .iter()
        .rev()
        .find(|b| {
            let number = b.header.as_ref().unwrap().number;
            number > 0 && last_config_index(b) == Some(number)
        })
        .expect("a config block after the genesis block")
        .clone();
    let join_number = config_block.header.as_ref().unwrap().number;
    assert!(
        (join_number as usize) < chain.len() - 1,
        "blocks follow the config block"
    );

    let ports = PortBlock::reserve();
    let admin = without_channels_with_admin(&cluster, 4, ports.base);
    cluster.start_node(4).await;
    let joined = admin.join(&config_block.encode_to_vec()).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    let joined: serde_json::Value = serde_json::from_str(&joined.body).unwrap();
    assert_eq!(joined["consensusRelation"], "follower", "{joined}");
    assert!(
        joined["status"] == "onboarding" || joined["status"] == "active",
        "{joined}"
    );

    // It catches up to the consenters, then keeps following them.
    admin.wait_height(CHANNEL, chain.len() as u64).await;
    acked.extend(submit_all(&clients, 60).await.acked);
    cluster.wait_converged(&[1, 2, 3, 4], &acked).await;
    let height = assert_pulled_as_stored(&cluster, 4, &consenters, 0).await;
    let state = info(&admin).await;
    assert_eq!(state["status"], "active", "{state}");
    assert_eq!(state["consensusRelation"], "follower", "{state}");

    // A follower orders nothing: it sends clients to a consenter.
    let follower = cluster.client(4).await;
    let envelope = ordo_core::envelope::build(
        &follower.signer,
        CHANNEL,
        HeaderType::Message,
        bytes::Bytes::from_static(b"to a follower"),
    );
    let refused = follower.broadcast_one(envelope).await.unwrap();
    assert_eq!(
        refused.status,
        Status::ServiceUnavailable as i32,
        "{}",
        refused.info
    );
    assert!(refused.info.contains("follows channel"), "{}", refused.info);

    // Restarted, it resumes from its ledger; with a consenter gone, it pulls from another.
    cluster.terminate(4).await;
    cluster.start_node(4).await;
    cluster.kill9(1);
    let clients = cluster.clients(&[2, 3]).await;
    acked.extend(submit_all(&clients, 60).await.acked);
    cluster.wait_converged(&[2, 3, 4], &acked).await;
    // What it pulled after node 1 died came from the others.
    assert_pulled_as_stored(&cluster, 4, &[2, 3], height).await;
    assert_eq!(info(&admin).await["status"], "active");
}
