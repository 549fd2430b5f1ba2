//! The replicated consensus type ("raft") with real `orderer` processes on loopback: load through
//! every node, a leader crash, a partitioned leader and a partitioned follower, a restart of the
//! whole cluster, a wiped node, and a node added to a running cluster. In every case each node
//! ends with the same blocks (same header hash at every height, byte for byte apart from each
//! node's own signatures) and every acknowledged transaction is in the chain exactly once.
//!
//! The harness (common/cluster.rs) puts a test-controlled TCP proxy on every orderer-to-orderer
//! link, which is how a node is cut off.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::{
    submit_all, submit_through, Cluster, NodeId, RaftStatus, Spec, Timing, WAIT,
};
use ordo_peer_sim::{Load, Submitted};
use ordo_proto::common::{Block, Status};

/// `count` transactions of 200 bytes, over two Broadcast streams per node.
fn load_of(count: usize) -> Load {
    Load {
        count,
        streams: 2,
        tx_bytes: 200,
        window: 64,
    }
}

/// Waits until `counter` reaches `at_least` (acknowledgements of a load running meanwhile).
async fn wait_for_acks(counter: &AtomicUsize, at_least: usize) {
    let deadline = Instant::now() + WAIT;
    while counter.load(Ordering::Relaxed) < at_least {
        assert!(
            Instant::now() < deadline,
            "only {} of {at_least} transactions acknowledged",
            counter.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Starts `load` through `clients` in the background, counting acknowledgements.
fn spawn_load(
    clients: Vec<ordo_peer_sim::Client>,
    load: Load,
) -> (Arc<AtomicUsize>, tokio::task::JoinHandle<Submitted>) {
    let acks = Arc::new(AtomicUsize::new(0));
    let counter = acks.clone();
    let task = tokio::spawn(async move {
        let on_ack = Arc::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        submit_through(&clients, &load, on_ack).await
    });
    (acks, task)
}

async fn finish(load: tokio::task::JoinHandle<Submitted>) -> Submitted {
    tokio::time::timeout(WAIT, load)
        .await
        .expect("the load did not finish in time")
        .expect("load task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_order_identical_blocks_for_load_through_every_node() {
    let cluster = Cluster::start(Spec::three()).await;
    cluster.wait_for_leader(&[1, 2, 3]).await;

    // Every node takes a third of the load: the leader orders its share itself, the followers
    // forward theirs.
    let clients = cluster.clients(&[1, 2, 3]).await;
    let submitted = submit_all(&clients, 6000).await;

    // Same blocks everywhere, each acknowledged transaction exactly once.
    let chain = cluster.wait_converged(&[1, 2, 3], &submitted.acked).await;
    let chain = common::cluster::Chain::verify(chain).unwrap();
    // Genesis plus blocks of at most 100 transactions.
    assert!(chain.height() > 60, "{} blocks", chain.height());
    let ordered: usize = chain.blocks[1..]
        .iter()
        .map(|b| b.data.as_ref().map_or(0, |d| d.data.len()))
        .sum();
    assert_eq!(ordered, 6000, "only the submitted transactions, once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_killed_under_load_a_new_leader_takes_over_and_nothing_is_lost() {
    let mut cluster = Cluster::start(Spec::three()).await;
    let leader = cluster.wait_for_leader(&[1, 2, 3]).await;
    let survivors: Vec<NodeId> = [1, 2, 3].into_iter().filter(|&id| id != leader).collect();

    // Load through every node, far more than is done before the kill.
    let (acks, load) = spawn_load(cluster.clients(&[1, 2, 3]).await, load_of(12_000));
    wait_for_acks(&acks, 3000).await;
    cluster.kill9(leader);
    let killed_at = Instant::now();
    eprintln!(
        "failover: leader {leader} SIGKILLed after {} acknowledged transactions",
        acks.load(Ordering::Relaxed)
    );

    // Ordering resumes: a transaction submitted through a survivor right after the kill is
    // acknowledged (the survivor retries for up to the produce timeout while no leader is known,
    // and the probe submits again if even that was too short) ...
    let survivor_clients = cluster.clients(&survivors).await;
    let probe = {
        let client = survivor_clients[0].clone();
        tokio::spawn(async move {
            let one = load_of(1);
            loop {
                let attempt =
                    submit_through(std::slice::from_ref(&client), &one, Arc::new(|| {})).await;
                if attempt.acked.len() == 1 {
                    return (attempt, killed_at.elapsed());
                }
                assert!(
                    killed_at.elapsed() < WAIT,
                    "no transaction acknowledged since the kill: {:?} {:?}",
                    attempt.refused,
                    attempt.errors
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let new_leader = cluster.wait_for_leader(&survivors).await;
    assert_ne!(new_leader, leader);
    eprintln!(
        "failover: node {new_leader} leads {:?} after the kill",
        killed_at.elapsed()
    );
    let (probe, acked_after) = probe.await.expect("probe task");
    eprintln!(
        "failover: a transaction submitted through node {} right after the kill acknowledged \
         {acked_after:?} after it",
        survivors[0]
    );
    // ... and delivered by both survivors.
    cluster.wait_converged(&survivors, &probe.acked).await;
    eprintln!(
        "failover: ... and delivered by both survivors {:?} after the kill",
        killed_at.elapsed()
    );

    // The load through the killed node broke; through the survivors it went on or was refused
    // (SERVICE_UNAVAILABLE while no leader was known). Either way, nothing acknowledged is lost.
    let during = finish(load).await;
    assert!(
        !during.errors.is_empty(),
        "the streams to the killed leader should have broken"
    );
    for (status, info) in &during.refused {
        assert_eq!(*status, Status::ServiceUnavailable as i32, "{info}");
    }
    let after = submit_all(&survivor_clients, 1000).await;
    let acked: Vec<_> = [&during.acked, &probe.acked, &after.acked]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    eprintln!(
        "failover: {} transactions acknowledged during the load, {} refused, {} streams broken",
        during.acked.len(),
        during.refused.len(),
        during.errors.len()
    );
    cluster.wait_converged(&survivors, &acked).await;

    // The killed node comes back on its data and catches up to the same blocks.
    cluster.start_node(leader).await;
    cluster.wait_converged(&[1, 2, 3], &acked).await;
}

/// Polls node `id`'s admin status until `ok` holds (`what` says what is awaited).
async fn wait_for_status(
    cluster: &Cluster,
    id: NodeId,
    what: &str,
    ok: impl Fn(&RaftStatus) -> bool,
) -> RaftStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = cluster.status(id).await;
        if let Ok(s) = &status {
            if ok(s) {
                return s.clone();
            }
        }
        assert!(Instant::now() < deadline, "node {id}: {what}: {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that each of `nodes` follows `leader` in `term`.
async fn assert_led_by(cluster: &Cluster, nodes: &[NodeId], leader: NodeId, term: u64) {
    for &id in nodes {
        let status = cluster.status(id).await.unwrap();
        assert_eq!(
            (status.leader, status.term),
            (Some(leader), term),
            "node {id} was disturbed: {status:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitioned_leader_steps_down_orders_nothing_and_disturbs_no_one_after_healing() {
    // A produce timeout far beyond this test's deadlines: the refusals seen here come from the
    // leader's quorum lease, not from waiting the timeout out.
    let spec = Spec {
        timing: Timing {
            produce_timeout_ms: 120_000,
            ..Timing::default()
        },
        ..Spec::three()
    };
    let cluster = Cluster::start(spec).await;
    let before = submit_all(&cluster.clients(&[1, 2, 3]).await, 1500).await;
    cluster.wait_converged(&[1, 2, 3], &before.acked).await;
    // The leader is read after the load, just before it is cut off: on a loaded machine the
    // leadership can move while the load runs.
    let cut = cluster.wait_for_leader(&[1, 2, 3]).await;
    let majority: Vec<NodeId> = [1, 2, 3].into_iter().filter(|&id| id != cut).collect();
    let old_term = cluster.status(cut).await.unwrap().term;

    // Cut the leader off, both ways. Within its lease it reports that it has no quorum ...
    cluster.isolate(cut);
    let cut_height = cluster.chain(cut).await.unwrap().height();
    let lost = wait_for_status(&cluster, cut, "no quorum reported", |s| !s.quorum).await;
    eprintln!("partition: cut-off node {cut}: {lost:?}");

    // ... and refuses Broadcast at once, SERVICE_UNAVAILABLE, without waiting for a commit that
    // cannot come (the bound is far below the produce timeout, and leaves room for a loaded
    // machine).
    let cut_client = cluster.client(cut).await;
    let refused = tokio::time::timeout(
        Duration::from_secs(30),
        submit_through(
            std::slice::from_ref(&cut_client),
            &load_of(20),
            Arc::new(|| {}),
        ),
    )
    .await
    .expect("Broadcast to the cut-off leader was not refused at once");
    assert!(
        refused.acked.is_empty(),
        "the cut-off node acknowledged {} transactions",
        refused.acked.len()
    );
    // (A refusal ends the Broadcast stream, so each stream reports one.)
    assert!(!refused.refused.is_empty(), "{:?}", refused.errors);
    for (status, info) in &refused.refused {
        assert_eq!(*status, Status::ServiceUnavailable as i32, "{info}");
        assert!(info.contains("no quorum"), "{info}");
    }
    eprintln!("partition: Broadcast to it: {:?}", refused.refused[0]);

    // The majority elects another leader and goes on without it.
    let new_leader = cluster.wait_for_leader(&majority).await;
    assert_ne!(new_leader, cut);
    let term = cluster.status(new_leader).await.unwrap().term;
    let during = submit_all(&cluster.clients(&majority).await, 1500).await;
    cluster.wait_converged(&majority, &during.acked).await;

    // The cut-off node never stood for election (it did not raise its term), and its ledger did
    // not move while the others ordered.
    let cut_status = cluster.status(cut).await.unwrap();
    assert_eq!(cut_status.term, old_term, "{cut_status:?}");
    assert!(!cut_status.quorum, "{cut_status:?}");
    let cut_chain = cluster.chain(cut).await.unwrap();
    assert_eq!(
        cut_chain.height(),
        cut_height,
        "the cut-off node wrote blocks"
    );
    let majority_height = cluster.chain(majority[0]).await.unwrap().height();
    assert!(majority_height > cut_height);

    // Healed, it follows the majority's leader in the majority's term: no election, the leader
    // the majority still hears is not deposed.
    cluster.heal(cut);
    let rejoined = wait_for_status(&cluster, cut, "following the new leader", |s| {
        s.state == "Follower" && s.leader == Some(new_leader) && s.term == term && s.quorum
    })
    .await;
    eprintln!("partition: healed, node {cut}: {rejoined:?}");
    assert_led_by(&cluster, &majority, new_leader, term).await;

    // It catches up to the majority's blocks: same hash at every height, nothing it held
    // uncommitted while cut off survives as a divergent block.
    let acked: Vec<_> = before.acked.iter().chain(&during.acked).cloned().collect();
    cluster.wait_converged(&[1, 2, 3], &acked).await;

    // And it serves Broadcast again, still under the same leader and term.
    let after = submit_all(std::slice::from_ref(&cut_client), 300).await;
    cluster.wait_converged(&[1, 2, 3], &after.acked).await;
    assert_led_by(&cluster, &[1, 2, 3], new_leader, term).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn isolated_follower_never_raises_its_term_and_returns_without_an_election() {
    let cluster = Cluster::start(Spec::three()).await;
    cluster.wait_for_leader(&[1, 2, 3]).await;
    let before = submit_all(&cluster.clients(&[1, 2, 3]).await, 600).await;
    cluster.wait_converged(&[1, 2, 3], &before.acked).await;
    // The follower to cut off is chosen after the load: on a loaded machine leadership may
    // have moved during it.
    let leader = cluster.wait_for_leader(&[1, 2, 3]).await;
    let cut = [1, 2, 3].into_iter().find(|&id| id != leader).unwrap();
    let majority: Vec<NodeId> = [1, 2, 3].into_iter().filter(|&id| id != cut).collect();
    let term = cluster.status(leader).await.unwrap().term;
    let start = cluster.status(cut).await.unwrap();

    // Cut off, it hears no leader: its election timer runs out again and again, and each time
    // its pre-vote finds no majority, so it never starts an election.
    cluster.isolate(cut);
    let cut_off = wait_for_status(&cluster, cut, "no quorum, three pre-votes lost", |s| {
        !s.quorum && s.pre_votes_lost >= start.pre_votes_lost + 3
    })
    .await;
    eprintln!("partition: cut-off follower {cut}: {cut_off:?}");
    assert_eq!(cut_off.term, term, "{cut_off:?}");
    assert_eq!(cut_off.pre_votes_won, start.pre_votes_won, "{cut_off:?}");

    // The majority goes on under the same leader meanwhile.
    let during = submit_all(&cluster.clients(&majority).await, 600).await;
    cluster.wait_converged(&majority, &during.acked).await;
    assert_led_by(&cluster, &majority, leader, term).await;

    // Healed, it follows the same leader in the same term and catches up.
    cluster.heal(cut);
    wait_for_status(&cluster, cut, "following the leader again", |s| s.quorum).await;
    let acked: Vec<_> = before.acked.iter().chain(&during.acked).cloned().collect();
    cluster.wait_converged(&[1, 2, 3], &acked).await;
    assert_led_by(&cluster, &[1, 2, 3], leader, term).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_cluster_restarts_and_continues_its_chains() {
    let mut cluster = Cluster::start(Spec::three()).await;
    cluster.wait_for_leader(&[1, 2, 3]).await;
    let first = submit_all(&cluster.clients(&[1, 2, 3]).await, 1500).await;
    cluster.wait_converged(&[1, 2, 3], &first.acked).await;
    let before_stop = cluster.ledgers(&[1, 2, 3]).await;

    // A clean stop of every node, then a start: every node's chain goes on from where it was.
    for id in [1, 2, 3] {
        cluster.terminate(id).await;
    }
    for id in [1, 2, 3] {
        cluster.start_node(id).await;
    }
    cluster.wait_for_leader(&[1, 2, 3]).await;
    let second = submit_all(&cluster.clients(&[1, 2, 3]).await, 1500).await;
    cluster.wait_converged(&[1, 2, 3], &second.acked).await;
    let after_restart = cluster.ledgers(&[1, 2, 3]).await;
    assert_each_extends(&before_stop, &after_restart);

    // A crash of every node under load, then a start.
    let (acks, load) = spawn_load(cluster.clients(&[1, 2, 3]).await, load_of(12_000));
    wait_for_acks(&acks, 2000).await;
    for id in [1, 2, 3] {
        cluster.kill9(id);
    }
    let during = finish(load).await;
    assert!(!during.errors.is_empty(), "the streams should have broken");
    for id in [1, 2, 3] {
        cluster.start_node(id).await;
    }
    // What each node had written before the crash is still there, unchanged.
    let after_crash = cluster.ledgers(&[1, 2, 3]).await;
    assert_each_extends(&after_restart, &after_crash);

    cluster.wait_for_leader(&[1, 2, 3]).await;
    let third = submit_all(&cluster.clients(&[1, 2, 3]).await, 1500).await;
    let acked: Vec<_> = [&first.acked, &second.acked, &during.acked, &third.acked]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    cluster.wait_converged(&[1, 2, 3], &acked).await;
    assert_each_extends(&after_crash, &cluster.ledgers(&[1, 2, 3]).await);
}

/// Asserts that each node's chain in `later` starts with, byte for byte, its chain in `earlier`.
fn assert_each_extends(earlier: &[(NodeId, Vec<Block>)], later: &[(NodeId, Vec<Block>)]) {
    for ((id, old), (later_id, new)) in earlier.iter().zip(later) {
        assert_eq!(id, later_id);
        assert!(
            new.len() >= old.len(),
            "node {id}: {} blocks, {} before",
            new.len(),
            old.len()
        );
        if let Some(changed) = old.iter().zip(new).position(|(a, b)| a != b) {
            panic!("node {id}: block {changed} changed");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wiped_node_rejoins_and_rebuilds_identical_blocks() {
    let mut cluster = Cluster::start(Spec::three()).await;
    let leader = cluster.wait_for_leader(&[1, 2, 3]).await;
    let wiped = [1, 2, 3].into_iter().find(|&id| id != leader).unwrap();
    let others: Vec<NodeId> = [1, 2, 3].into_iter().filter(|&id| id != wiped).collect();
    let first = submit_all(&cluster.clients(&[1, 2, 3]).await, 1500).await;
    cluster.wait_converged(&[1, 2, 3], &first.acked).await;

    // Stop it and lose its disk: Raft log, vote and ledger.
    cluster.terminate(wiped).await;
    let data_dir = cluster.node(wiped).data_dir.clone();
    std::fs::remove_dir_all(&data_dir).unwrap();

    // The others go on meanwhile.
    let second = submit_all(&cluster.clients(&others).await, 1000).await;
    cluster.wait_converged(&others, &second.acked).await;

    // Same config and identity, empty data folder: it gets the whole log again from the
    // others and cuts the same blocks from it.
    cluster.start_node(wiped).await;
    let acked: Vec<_> = first.acked.iter().chain(&second.acked).cloned().collect();
    cluster.wait_converged(&[1, 2, 3], &acked).await;

    // A full member again: Broadcast through it is ordered.
    let third = submit_all(&cluster.clients(&[wiped]).await, 300).await;
    cluster.wait_converged(&[1, 2, 3], &third.acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fourth_node_added_as_learner_and_promoted_catches_up() {
    let spec = Spec {
        nodes: 4,
        // Node 4 is not a consenter: with TLS the others would refuse its cluster calls.
        tls: false,
        ..Spec::three()
    };
    let mut cluster = Cluster::start(spec).await;
    let leader = cluster.wait_for_leader(&[1, 2, 3]).await;
    let first = submit_all(&cluster.clients(&[1, 2, 3]).await, 1500).await;
    cluster.wait_converged(&[1, 2, 3], &first.acked).await;

    // Node 4 is not among its own bootstrap peers: it starts and waits to be added.
    cluster.start_node(4).await;
    let waiting = cluster.status(4).await.unwrap();
    assert_eq!(waiting.leader, None, "{waiting:?}");
    assert!(waiting.voters.is_empty(), "{waiting:?}");

    // Added through a node that is not the leader, which passes the change on to it.
    let via = [1, 2, 3].into_iter().find(|&id| id != leader).unwrap();
    let address = cluster.advertised_address(4).to_string();
    let added = cluster
        .admin(via, &["add-learner", "--id", "4", "--address", &address])
        .await;
    eprintln!("membership: add-learner: {}", added.trim());
    let learner = cluster.status(leader).await.unwrap();
    assert_eq!(learner.learners, vec![4], "{learner:?}");
    // A learner already has the log, so it has the blocks.
    cluster.wait_converged(&[1, 2, 3, 4], &first.acked).await;

    let promoted = cluster.admin(via, &["promote", "--id", "4"]).await;
    eprintln!("membership: promote: {}", promoted.trim());
    let deadline = Instant::now() + WAIT;
    loop {
        let status = cluster.status(4).await.unwrap();
        if status.voters == vec![1, 2, 3, 4] && status.learners.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "node 4 not a voter: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A voter like the others: load through all four, same blocks on all four.
    let second = submit_all(&cluster.clients(&[1, 2, 3, 4]).await, 2000).await;
    let acked: Vec<_> = first.acked.iter().chain(&second.acked).cloned().collect();
    cluster.wait_converged(&[1, 2, 3, 4], &acked).await;
}
