//! A replicated ("raft") Ordo network for tests: several real `orderer` processes on loopback,
//! every orderer-to-orderer connection passing through a TCP proxy that the test controls, so a
//! test can crash, restart, wipe or cut off any node.
//!
//! # Cluster addresses and proxies
//!
//! A node is configured with the cluster addresses of its peers; here every such address is a
//! proxy bound (and held) by the test, one per direction `(from, to)`: node 1 reaches node 2 at
//! link (1, 2), node 2 reaches node 1 at link (2, 1), and so on. The nodes themselves listen on
//! `127.0.0.1:0`; once a node prints its real cluster address the proxies leading to it are
//! pointed there (again after every restart). No port is reserved-then-released, so there is no
//! race with other processes for ports.
//!
//! One proxy per direction is what makes a partition real both ways: to cut node X off, every
//! link from X and every link to X drops its connections and refuses new ones, so X neither
//! reaches nor is reached by anyone, while the links among the other nodes keep working.
//!
//! This works because a bootstrapped node takes its peers' addresses from the first membership
//! entry of its own log (written by `initialize` from its own config): all nodes write that entry
//! with the same log id (index 0, term 0), so replication never replaces it, and each node keeps
//! its own view of where its peers are. A membership change (add-learner, promote) writes a new
//! entry carrying the leader's view, which every node then adopts; after that, traffic to a node
//! flows through the links *from the leader* of that time. It still all flows, but cutting a node
//! off is no longer exact, so tests that change membership do not partition. Link (X, X) is node
//! X's own address in its config: it is what others use once they learn X's address from a
//! membership entry written by X as leader, and what `add-learner` is given for a new node.
//!
//! The admin service (`ordo.Admin`, also on the cluster port) is called directly on the node's
//! real cluster address, so the test can see a node's state even while it is cut off.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ordo_client::cryptogen::{self, KeyKind, OrgKind, OrgSpec};
use ordo_core::block;
use ordo_core::configtx::genesis::{
    self, default_raft_options, ApplicationProfile, ConsensusProfile, OrdererProfile, OrgProfile,
    Profile,
};
use ordo_core::configtx::values::BatchSizeValues;
use ordo_orderer::setup::config::{ClusterSection, Consensus, NodeConfig, NodeSection, TlsSection};
use ordo_orderer::setup::dev::{BatchSection, CHANNEL, CLIENT_MSPID};
use ordo_peer_sim::client::TlsArgs;
use ordo_peer_sim::{ChainVerifier, Client, Load, Submitted};
use ordo_proto::common::{Block, BlockMetadataIndex};
use ordo_proto::etcdraft::Consenter;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{binary, test_batch};

pub type NodeId = u64;

/// How long any wait in these tests may take before it fails the test.
pub const WAIT: Duration = Duration::from_secs(60);

/// Raft timings written into every node's `[cluster]` section: short, so tests run quickly, yet
/// long enough that debug builds of six nodes sharing two busy cores keep their leases (a leader
/// that goes a lease without a majority's acknowledgement stops taking envelopes).
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub produce_timeout_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat_ms: 100,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            // Long enough to ride out an election, so a Broadcast through a follower waits for
            // the next leader rather than failing while the old one is gone.
            produce_timeout_ms: 8000,
        }
    }
}

/// What a network is made of.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Nodes 1..=bootstrap are the channel's consenters (its etcdraft metadata lists them).
    pub bootstrap: u64,
    /// Nodes bootstrap+1..=nodes are prepared (an identity of the orderer organisation) but
    /// not consenters: they wait to be added with `orderer admin add-learner`.
    pub nodes: u64,
    pub timing: Timing,
    pub batch: BatchSection,
    /// TLS on every port (the default). With it a cluster peer is known by its certificate, and
    /// only consenters may send cluster traffic, so a node added by `orderer admin add-learner`
    /// (not a consenter) could not forward or campaign: such tests run without TLS.
    pub tls: bool,
}

impl Spec {
    pub fn three() -> Spec {
        Spec {
            bootstrap: 3,
            nodes: 3,
            timing: Timing::default(),
            batch: test_batch(),
            tls: true,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Proxies

/// Where a proxy forwards to, and whether it lets anything through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Route {
    target: Option<SocketAddr>,
    open: bool,
}

/// A TCP forwarder on an ephemeral loopback port, held for the life of the test. While closed,
/// or while its target is unknown (the node is down), it accepts and immediately drops
/// connections, as an unreachable peer would look to gRPC; closing it also cuts the connections
/// it is carrying.
struct Proxy {
    addr: SocketAddr,
    route: Arc<watch::Sender<Route>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn bind() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a proxy");
        let addr = listener.local_addr().unwrap();
        let route = Arc::new(watch::Sender::new(Route {
            target: None,
            open: true,
        }));
        let accept = tokio::spawn(Self::accept_loop(listener, route.clone()));
        Proxy {
            addr,
            route,
            accept,
        }
    }

    async fn accept_loop(listener: TcpListener, route: Arc<watch::Sender<Route>>) {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                continue;
            };
            let mut changes = route.subscribe();
            let current = *changes.borrow_and_update();
            let (Some(target), true) = (current.target, current.open) else {
                continue; // dropped: refused
            };
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(target).await else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                tokio::select! {
                    _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                    // Cut when closed or re-pointed, and when the proxy goes away.
                    _ = changes.wait_for(|r| *r != current) => {}
                }
            });
        }
    }

    fn set_target(&self, target: Option<SocketAddr>) {
        self.route.send_modify(|r| r.target = target);
    }

    fn set_open(&self, open: bool) {
        self.route.send_modify(|r| r.open = open);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Nodes

/// One orderer node: its files, and its process while it runs.
pub struct ClusterNode {
    pub id: NodeId,
    /// The node's folder: orderer.toml, identity/, data/, stderr.log.
    pub home: PathBuf,
    pub config: PathBuf,
    pub data_dir: PathBuf,
    child: Option<Child>,
    /// Client (AtomicBroadcast) address of the running process.
    pub addr: Option<SocketAddr>,
    /// Real cluster (and admin) address of the running process, behind the proxies.
    pub cluster_addr: Option<SocketAddr>,
    /// The node's TLS folder (cryptogen's server.crt, server.key, ca.crt).
    pub tls_dir: PathBuf,
    /// Whether its ports use TLS.
    pub tls: bool,
    /// Operations HTTP address of the running process.
    pub ops_addr: Option<SocketAddr>,
}

impl ClusterNode {
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The client port.
    pub fn endpoint(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
                .unwrap_or_else(|| panic!("node {} is not running", self.id))
        )
    }

    /// SIGKILL: no shutdown path runs, as in a crash of the process or the machine.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.addr = None;
        self.cluster_addr = None;
        self.ops_addr = None;
    }

    /// SIGTERM, and the exit status of the clean shutdown (10 s at most).
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("node {} is not running", self.id));
        self.addr = None;
        self.cluster_addr = None;
        self.ops_addr = None;
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("node {} did not exit within 10 s of SIGTERM", self.id);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stderr_path(&self) -> PathBuf {
        self.home.join("stderr.log")
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A node's Raft state as its admin `Status` call reports it (for the one channel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftStatus {
    /// "Leader", "Follower", "Candidate", "Learner"...
    pub state: String,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    /// As leader: acknowledged by a quorum within its lease; otherwise: heard a leader lately.
    pub quorum: bool,
    /// Pre-vote rounds this node ran that a majority would (won) or would not (lost) grant.
    pub pre_votes_won: u64,
    pub pre_votes_lost: u64,
}

impl RaftStatus {
    /// The status of the reply's first channel group (the cluster tests run one channel).
    fn from_reply(reply: &ordo_proto::ordo::StatusReply) -> Option<RaftStatus> {
        let g = reply.groups.first()?;
        let state = match ordo_proto::ordo::RaftState::try_from(g.state).ok()? {
            ordo_proto::ordo::RaftState::Leader => "Leader",
            ordo_proto::ordo::RaftState::Follower => "Follower",
            ordo_proto::ordo::RaftState::Candidate => "Candidate",
            ordo_proto::ordo::RaftState::Learner => "Learner",
            ordo_proto::ordo::RaftState::Shutdown => "Shutdown",
            ordo_proto::ordo::RaftState::Unspecified => return None,
        };
        Some(RaftStatus {
            state: state.to_string(),
            term: g.term,
            leader: g.leader,
            voters: g.voters.clone(),
            learners: g.learners.clone(),
            quorum: g.quorum,
            pre_votes_won: g.pre_votes_won,
            pre_votes_lost: g.pre_votes_lost,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The network

pub struct Cluster {
    /// Everything lives here: crypto, genesis block, one folder per node. Removed on drop.
    pub dir: tempfile::TempDir,
    /// The MSP folder of a client of Org1MSP.
    pub client_msp: PathBuf,
    pub spec: Spec,
    /// By node id.
    pub nodes: BTreeMap<NodeId, ClusterNode>,
    /// By direction (from, to); (x, x) is node x's own advertised address.
    links: BTreeMap<(NodeId, NodeId), Proxy>,
    /// How clients reach the client ports: the orderer org's TLS CA.
    pub tls: TlsArgs,
    /// An orderer-org TLS identity the cluster ports accept (mutual TLS) for admin calls.
    pub admin_tls: TlsArgs,
}

impl Cluster {
    /// Prepares a network (crypto, channel config and genesis block, node configs) and starts
    /// the bootstrap nodes.
    pub async fn start(spec: Spec) -> Cluster {
        let mut cluster = Cluster::prepare(spec).await;
        for id in 1..=cluster.spec.bootstrap {
            cluster.start_node(id).await;
        }
        cluster
    }

    async fn prepare(spec: Spec) -> Cluster {
        assert!(spec.bootstrap >= 1 && spec.nodes >= spec.bootstrap);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let ids: Vec<NodeId> = (1..=spec.nodes).collect();

        let mut links = BTreeMap::new();
        for &from in &ids {
            for &to in &ids {
                links.insert((from, to), Proxy::bind().await);
            }
        }

        // One orderer organisation with every prepared node, one application organisation
        // with a client.
        let orgs = [
            OrgSpec {
                name: "Orderer".into(),
                kind: OrgKind::Orderer,
                nodes: spec.nodes as u32,
                users: 0,
                hosts: vec![],
            },
            OrgSpec {
                name: "Org1".into(),
                kind: OrgKind::Peer,
                nodes: 0,
                users: 1,
                hosts: vec![],
            },
        ];
        let crypto = root.join("crypto");
        let made = cryptogen::generate(&crypto, &orgs, KeyKind::EcdsaP256).unwrap();
        let client_msp = made[1].users[1].join("msp");

        // The consenters: nodes 1..=bootstrap at their advertised addresses (the proxies in
        // front of them), each identified by its TLS certificate.
        let consenters = (1..=spec.bootstrap)
            .map(|id| {
                let tls =
                    std::fs::read(made[0].nodes[id as usize - 1].join("tls/server.crt")).unwrap();
                let advertised = links[&(id, id)].addr;
                Consenter {
                    host: advertised.ip().to_string(),
                    port: advertised.port().into(),
                    client_tls_cert: tls.clone().into(),
                    server_tls_cert: tls.into(),
                }
            })
            .collect();
        let org = |i: usize| {
            let folder = ordo_client::msp_dir::load(&made[i].msp, &made[i].mspid).unwrap();
            let mut org = OrgProfile::new(&made[i].name, folder.msp_config());
            org.node_ous = true;
            org
        };
        let mut orderer_org = org(0);
        orderer_org.endpoints = (1..=spec.bootstrap)
            .map(|id| links[&(id, id)].addr.to_string())
            .collect();
        let mut orderer = OrdererProfile::new(
            ConsensusProfile::EtcdRaft {
                consenters,
                options: default_raft_options(),
            },
            vec![orderer_org],
        );
        orderer.batch_size = BatchSizeValues {
            max_message_count: spec.batch.max_message_count,
            absolute_max_bytes: spec.batch.absolute_max_bytes,
            preferred_max_bytes: spec.batch.preferred_max_bytes,
        };
        orderer.batch_timeout = Duration::from_millis(spec.batch.timeout_ms);
        orderer.dedup_window_blocks = Some(spec.batch.dedup_window_blocks);
        let profile = Profile::new(
            CHANNEL,
            orderer,
            Some(ApplicationProfile::new(vec![org(1)])),
        );
        let genesis_path = root.join("genesis.block");
        let block =
            genesis::genesis_block(&profile, std::time::SystemTime::now(), [9; 24]).unwrap();
        ordo_client::block_file::write(&genesis_path, &block).unwrap();

        let mut nodes = BTreeMap::new();
        for &id in &ids {
            let home = root.join(format!("node{id}"));
            std::fs::create_dir_all(&home).unwrap();
            let tls_dir = made[0].nodes[id as usize - 1].join("tls");
            let node = ClusterNode {
                id,
                config: home.join("orderer.toml"),
                data_dir: home.join("data"),
                home,
                child: None,
                addr: None,
                cluster_addr: None,
                tls_dir: tls_dir.clone(),
                tls: spec.tls,
                ops_addr: None,
            };
            // Node `id` reaches node `peer` through the link (id, peer), so links can be cut
            // one by one.
            let dial = ids
                .iter()
                .map(|&peer| {
                    let advertised = links[&(peer, peer)].addr.to_string();
                    (advertised, links[&(id, peer)].addr.to_string())
                })
                .collect();
            let msp = made[0].nodes[id as usize - 1].join("msp");
            let mut config = node_config(
                id,
                msp,
                links[&(id, id)].addr,
                dial,
                &spec.timing,
                &genesis_path,
            );
            // TLS on every port, from the node's cryptogen TLS folder.
            config.tls = TlsSection {
                enabled: spec.tls,
                cert: Some(tls_dir.join("server.crt")),
                key: Some(tls_dir.join("server.key")),
                ..TlsSection::default()
            };
            config.write(&node.config).unwrap();
            nodes.insert(id, node);
        }

        let node1_tls = made[0].nodes[0].join("tls");
        let (tls, admin_tls) = if spec.tls {
            (
                TlsArgs {
                    tls_ca: Some(node1_tls.join("ca.crt")),
                    ..TlsArgs::default()
                },
                TlsArgs {
                    tls_ca: Some(node1_tls.join("ca.crt")),
                    tls_cert: Some(node1_tls.join("server.crt")),
                    tls_key: Some(node1_tls.join("server.key")),
                },
            )
        } else {
            (TlsArgs::default(), TlsArgs::default())
        };
        Cluster {
            dir,
            client_msp,
            spec,
            nodes,
            links,
            tls,
            admin_tls,
        }
    }

    pub fn node(&self, id: NodeId) -> &ClusterNode {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut ClusterNode {
        self.nodes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Ids of the nodes whose process runs.
    pub fn running(&self) -> Vec<NodeId> {
        self.nodes
            .values()
            .filter(|n| n.is_running())
            .map(|n| n.id)
            .collect()
    }

    /// The address other nodes are told node `id` is at (for `add-learner`).
    pub fn advertised_address(&self, id: NodeId) -> SocketAddr {
        self.links[&(id, id)].addr
    }

    /// Starts node `id`'s process on its config and data, and points the links to it at its
    /// new cluster port.
    pub async fn start_node(&mut self, id: NodeId) {
        let node = self.node_mut(id);
        assert!(!node.is_running(), "node {id} is already running");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.stderr_path())
            .unwrap();
        let mut child = Command::new(binary("orderer"))
            .args(["start", "--config"])
            .arg(&node.config)
            // ORDO_TEST_RUST_LOG=... logs more into each node's stderr.log (with ORDO_KEEP_FAILED).
            .env(
                "RUST_LOG",
                std::env::var("ORDO_TEST_RUST_LOG").unwrap_or_else(|_| "warn".to_string()),
            )
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("starting orderer");
        let stdout = child.stdout.take().unwrap();
        // The binary prints `cluster listening on ADDR`, then `listening on ADDR`.
        let read = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut cluster_addr = None;
            let mut ops_addr = None;
            while let Some(Ok(line)) = lines.next() {
                if let Some(addr) = line.strip_prefix("operations listening on ") {
                    ops_addr = Some(addr.trim().parse::<SocketAddr>().unwrap());
                } else if let Some(addr) = line.strip_prefix("cluster listening on ") {
                    cluster_addr = Some(addr.trim().parse::<SocketAddr>().unwrap());
                } else if let Some(addr) = line.strip_prefix("listening on ") {
                    let addr: SocketAddr = addr.trim().parse().unwrap();
                    // Keep draining stdout so the process never blocks on a full pipe.
                    std::thread::spawn(move || lines.for_each(drop));
                    return Some((addr, cluster_addr, ops_addr));
                }
            }
            None
        });
        let started = tokio::time::timeout(WAIT, read).await;
        let Ok(Ok(Some((addr, Some(cluster_addr), ops_addr)))) = started else {
            let _ = child.kill();
            let status = child.wait();
            let log = std::fs::read_to_string(node.stderr_path()).unwrap_or_default();
            panic!("node {id} did not start ({status:?}):\n{log}");
        };
        node.child = Some(child);
        node.addr = Some(addr);
        node.cluster_addr = Some(cluster_addr);
        node.ops_addr = ops_addr;
        for ((_, to), proxy) in &self.links {
            if *to == id {
                proxy.set_target(Some(cluster_addr));
            }
        }
    }

    /// SIGKILL node `id`.
    pub fn kill9(&mut self, id: NodeId) {
        self.node_mut(id).kill9();
    }

    /// SIGTERM node `id`; panics unless it exits cleanly.
    pub async fn terminate(&mut self, id: NodeId) {
        let status = self.node_mut(id).terminate().await;
        assert!(
            status.success(),
            "node {id} exited with {status} on SIGTERM"
        );
    }

    /// Cuts node `id` off: every link from it and to it drops its connections and refuses new
    /// ones. The node keeps running and serving its clients.
    pub fn isolate(&self, id: NodeId) {
        self.set_links(id, false);
    }

    /// Undoes [`Cluster::isolate`].
    pub fn heal(&self, id: NodeId) {
        self.set_links(id, true);
    }

    fn set_links(&self, id: NodeId, open: bool) {
        for ((from, to), proxy) in &self.links {
            if *from == id || *to == id {
                proxy.set_open(open);
            }
        }
    }

    pub async fn client(&self, id: NodeId) -> Client {
        let signer =
            ordo_client::msp_dir::signing_identity(&self.client_msp, CLIENT_MSPID).unwrap();
        Client::connect_tls(&self.node(id).endpoint(), CHANNEL, signer, &self.tls)
            .await
            .unwrap_or_else(|e| panic!("connecting to node {id}: {e:#}"))
    }

    pub async fn clients(&self, ids: &[NodeId]) -> Vec<Client> {
        let mut clients = Vec::new();
        for &id in ids {
            clients.push(self.client(id).await);
        }
        clients
    }

    /// Node `id`'s Raft state, asked directly on its real cluster address.
    pub async fn status(&self, id: NodeId) -> anyhow::Result<RaftStatus> {
        use ordo_proto::ordo::admin_client::AdminClient;
        use ordo_proto::ordo::StatusRequest;
        let addr = self
            .node(id)
            .cluster_addr
            .ok_or_else(|| anyhow::anyhow!("node {id} is not running"))?;
        let mut admin = AdminClient::new(self.admin_channel(&addr.to_string())?);
        let reply = tokio::time::timeout(Duration::from_secs(5), admin.status(StatusRequest {}))
            .await??
            .into_inner();
        RaftStatus::from_reply(&reply)
            .ok_or_else(|| anyhow::anyhow!("unexpected status: {reply:?}"))
    }

    /// Waits until the nodes `among` all follow the same leader (one of them) in the same term,
    /// and that leader has its quorum; returns its id.
    pub async fn wait_for_leader(&self, among: &[NodeId]) -> NodeId {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut seen = Vec::new();
            for &id in among {
                seen.push(self.status(id).await.ok());
            }
            if let Some(Some(first)) = seen.first() {
                let agreed = seen.iter().all(|s| {
                    s.as_ref()
                        .is_some_and(|s| s.leader == first.leader && s.term == first.term)
                });
                if let (true, Some(leader)) = (agreed, first.leader) {
                    let position = among.iter().position(|&id| id == leader);
                    if let Some(i) = position {
                        if seen[i]
                            .as_ref()
                            .is_some_and(|s| s.state == "Leader" && s.quorum)
                        {
                            return leader;
                        }
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "nodes {among:?} did not agree on a leader among them: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A channel to a cluster port with the admin TLS identity (mutual TLS).
    pub fn admin_channel(&self, addr: &str) -> anyhow::Result<tonic::transport::Channel> {
        let tls = &self.admin_tls;
        if tls.tls_ca.is_none() {
            return ordo_orderer::tls::dial(None, addr).map_err(anyhow::Error::msg);
        }
        let credentials = ordo_orderer::tls::Credentials::load(ordo_orderer::tls::TlsFiles {
            cert: tls.tls_cert.clone().unwrap(),
            key: tls.tls_key.clone().unwrap(),
            roots: vec![tls.tls_ca.clone().unwrap()],
        })?;
        let dialer = ordo_orderer::tls::Dialer::new(credentials)?;
        ordo_orderer::tls::dial(Some(&dialer), addr).map_err(anyhow::Error::msg)
    }

    /// Runs `orderer admin --cluster <node's cluster address> ARGS` and returns its output.
    pub async fn admin(&self, through: NodeId, args: &[&str]) -> String {
        let addr = self.node(through).cluster_addr.expect("node not running");
        let mut command = tokio::process::Command::new(binary("orderer"));
        command
            .args(["admin", "--cluster", &addr.to_string()])
            .args(super::tls_flags(&self.admin_tls))
            .args(args)
            .env("RUST_LOG", "warn");
        let output = tokio::time::timeout(WAIT, command.output())
            .await
            .expect("orderer admin timed out")
            .expect("running orderer admin");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "orderer admin {args:?} through node {through} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// Reads node `id`'s chain from block 0 and verifies it (hash chain, signatures, each
    /// transaction at most once).
    pub async fn chain(&self, id: NodeId) -> anyhow::Result<Chain> {
        let blocks = self.client(id).await.read_chain().await?;
        Chain::verify(blocks)
    }

    /// Each node's chain as it is now (block 0 to its newest), verified, by node id.
    pub async fn ledgers(&self, ids: &[NodeId]) -> Vec<(NodeId, Vec<Block>)> {
        let mut ledgers = Vec::new();
        for &id in ids {
            let chain = self
                .chain(id)
                .await
                .unwrap_or_else(|e| panic!("reading node {id}'s chain: {e:#}"));
            ledgers.push((id, chain.blocks));
        }
        ledgers
    }

    /// Waits until every node of `ids` has every transaction of `acked` and all have the same
    /// height, checking all along that their blocks are the same at every height they share
    /// (panics at the first divergent block, missing or duplicated transaction). Returns the
    /// common chain.
    pub async fn wait_converged<T>(&self, ids: &[NodeId], acked: &[(String, T)]) -> Vec<Block> {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut chains = Vec::new();
            let mut unread = None;
            for &id in ids {
                match self.chain(id).await {
                    Ok(chain) => chains.push((id, chain)),
                    Err(e) => unread = Some(format!("node {id}: {e:#}")),
                }
            }
            let mut waiting_for = unread;
            if waiting_for.is_none() {
                for (id, chain) in &chains[1..] {
                    assert_same_blocks(chains[0].0, &chains[0].1.blocks, *id, &chain.blocks);
                }
                for (id, chain) in &chains {
                    let missing = acked.iter().filter(|(tx, _)| !chain.contains(tx)).count();
                    if missing > 0 {
                        waiting_for = Some(format!(
                            "node {id}: {missing} acknowledged transactions not in its chain"
                        ));
                    }
                }
                let heights: Vec<usize> = chains.iter().map(|(_, c)| c.blocks.len()).collect();
                if waiting_for.is_none() && heights.iter().any(|h| *h != heights[0]) {
                    waiting_for = Some(format!("heights differ: {heights:?}"));
                }
            }
            match waiting_for {
                None => return chains.swap_remove(0).1.blocks,
                Some(reason) => assert!(
                    Instant::now() < deadline,
                    "nodes {ids:?} did not converge within {WAIT:?}: {reason}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of every node's stderr, to explain a failure.
    fn logs_tail(&self) -> String {
        let mut out = String::new();
        for node in self.nodes.values() {
            let log = std::fs::read_to_string(node.stderr_path()).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            // A panic in the node (a Rust panic message and the line after it) wherever it is.
            for (i, line) in lines.iter().enumerate() {
                if line.contains("panicked at") {
                    let _ = writeln!(out, "--- node {} panicked ---", node.id);
                    for line in &lines[i..(i + 3).min(lines.len())] {
                        let _ = writeln!(out, "{line}");
                    }
                }
            }
            let _ = writeln!(out, "--- node {} stderr (last lines) ---", node.id);
            for line in &lines[lines.len().saturating_sub(20)..] {
                let _ = writeln!(out, "{line}");
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs_tail());
            // ORDO_KEEP_FAILED=1 keeps a failed test's folder (node logs, data) to look into.
            if std::env::var_os("ORDO_KEEP_FAILED").is_some() {
                let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
                eprintln!("kept {}", dir.keep().display());
            }
        }
        // Processes first (ClusterNode's drop kills them), then the folder (TempDir's drop).
        self.nodes.clear();
    }
}

/// A node's config, as network/local.sh has `orderer config` write it (both serialise a
/// [`NodeConfig`]): ephemeral client and cluster ports, paths relative to the node's folder
/// except the shared genesis block.
fn node_config(
    id: NodeId,
    msp_dir: PathBuf,
    advertised: SocketAddr,
    dial: BTreeMap<String, String>,
    timing: &Timing,
    genesis: &Path,
) -> NodeConfig {
    let mut config = NodeConfig::new(
        NodeSection {
            data_dir: "data".into(),
            listen: "127.0.0.1:0".parse().unwrap(),
            msp_dir,
            mspid: "OrdererMSP".into(),
            consensus: Consensus::Raft,
            id,
            cluster_listen: Some("127.0.0.1:0".parse().unwrap()),
        },
        vec![genesis.to_path_buf()],
    );
    config.cluster = Some(ClusterSection {
        address: Some(advertised.to_string()),
        dial,
        heartbeat_ms: timing.heartbeat_ms,
        election_timeout_min_ms: timing.election_timeout_min_ms,
        election_timeout_max_ms: timing.election_timeout_max_ms,
        produce_timeout_ms: timing.produce_timeout_ms,
        ..ClusterSection::default()
    });
    // Every node serves `/healthz` and `/metrics` (tests/tests/operations.rs reads them).
    config.operations.listen = Some("127.0.0.1:0".parse().unwrap());
    config
}

// ---------------------------------------------------------------------------------------------
// Chains

/// A chain read from a node, verified.
pub struct Chain {
    pub blocks: Vec<Block>,
    verifier: ChainVerifier,
}

impl Chain {
    pub fn verify(blocks: Vec<Block>) -> anyhow::Result<Chain> {
        let mut verifier = ChainVerifier::new();
        for block in &blocks {
            verifier.verify(block)?;
        }
        Ok(Chain { blocks, verifier })
    }

    pub fn contains(&self, tx_id: &str) -> bool {
        self.verifier.contains(tx_id)
    }

    pub fn height(&self) -> u64 {
        self.blocks.len() as u64
    }
}

/// Asserts that two nodes' chains hold the same blocks at every height both have: same header
/// (so the same header hash), same data, same metadata except the signatures themselves, which
/// each node makes with its own key over the same signed value.
pub fn assert_same_blocks(a_id: NodeId, a: &[Block], b_id: NodeId, b: &[Block]) {
    for (x, y) in a.iter().zip(b) {
        let header = x.header.clone().unwrap_or_default();
        let number = header.number;
        let divergent = |what: &str| -> String {
            format!("node {a_id} and node {b_id} have a different block {number}: {what} differs")
        };
        assert_eq!(
            block::header_hash(&header),
            block::header_hash(&y.header.clone().unwrap_or_default()),
            "{}",
            divergent("header hash")
        );
        assert_eq!(x.header, y.header, "{}", divergent("header"));
        assert_eq!(x.data, y.data, "{}", divergent("data"));
        let slots = |block: &Block| block.metadata.clone().unwrap_or_default().metadata;
        let (x_slots, y_slots) = (slots(x), slots(y));
        assert_eq!(x_slots.len(), y_slots.len(), "{}", divergent("metadata"));
        for (slot, (p, q)) in x_slots.iter().zip(&y_slots).enumerate() {
            if slot != BlockMetadataIndex::Signatures as usize {
                assert_eq!(p, q, "{}", divergent(&format!("metadata slot {slot}")));
            }
        }
        let signed =
            |block: &Block| block::metadata(block, BlockMetadataIndex::Signatures).map(|m| m.value);
        assert_eq!(
            signed(x),
            signed(y),
            "{}",
            divergent("signed orderer metadata")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Load

/// `load.count` transactions split evenly over `clients` (each gets `load.streams` streams), all
/// at once; `on_ack` counts acknowledgements as they come. The results, merged.
pub use ordo_peer_sim::submit_through;

/// A small load, every transaction of which must be acknowledged.
pub async fn submit_all(clients: &[Client], count: usize) -> Submitted {
    let load = Load {
        count,
        streams: 2,
        tx_bytes: 200,
        window: 64,
    };
    let submitted = tokio::time::timeout(WAIT, submit_through(clients, &load, Arc::new(|| {})))
        .await
        .unwrap_or_else(|_| panic!("a load of {count} transactions did not finish in time"));
    assert!(
        submitted.refused.is_empty() && submitted.errors.is_empty(),
        "{} of {count} acknowledged; refused: {:?}; errors: {:?}",
        submitted.acked.len(),
        submitted.refused.first(),
        submitted.errors.first()
    );
    assert_eq!(submitted.acked.len(), count);
    submitted
}
