//! An orderer node: its channels (the [`Registrar`]) and the gRPC servers in front of them.
//!
//! Start-up runs named steps: open the data folder, then for each channel open its storage,
//! start its chain (of the node's consensus type) and open the channel over them (which rebuilds
//! its assembler state), then start serving. Shutdown is one path, [`Node::stop`], for a caller
//! in code and for SIGTERM/ctrl-c alike.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ordo_core::bundle::{paths, Bundle};
use ordo_core::configtx::etcdraft;
use ordo_core::configtx::values::Consensus as ChannelConsensus;
use ordo_core::msp::SigningIdentity;
use ordo_core::policies::SignedData;
use ordo_proto::etcdraft::Consenter;
use ordo_proto::stored::atomic_broadcast_server::AtomicBroadcastServer;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::chain::raft::network::ClusterClients;
use crate::chain::raft::{Members, Node as RaftNode, NodeId, OpenError, RaftLog, Timing};
use crate::chain::solo::SoloChain;
use crate::chain::Chain;
use crate::channel::{read_genesis, Channel, JoinBlock};
use crate::follow::puller::Puller;
use crate::follow::Follower;
use crate::ledger::{Ledger, LedgerConfig, LedgerError};
use crate::log::{LogError, Partition, PartitionConfig};
use crate::participation::channels::JoinedChannels;
use crate::registrar::Registrar;
use crate::server::cluster::Groups;
use crate::server::connections;
use crate::server::outbox;
use crate::server::{AtomicBroadcastService, ServiceSettings};
use crate::setup::config::{ClusterSection, Consensus, LimitsSection, NodeConfig};
use crate::tls::NodeTls;

pub struct Node {
    registrar: Registrar,
    opener: Arc<ChannelOpener>,
    /// Channels joined and removed through the participation API.
    joined: JoinedChannels,
    local_addr: SocketAddr,
    cluster_addr: Option<SocketAddr>,
    servers: Vec<Served>,
    /// The operations HTTP server (`[operations]`), if it has a listen address.
    operations: Option<crate::http::Server>,
    /// The participation API's HTTP server (`[admin] listen`), if any.
    admin: Option<crate::http::Server>,
    /// How long open streams may go on after the node stops accepting, before they are cut.
    shutdown_grace: Duration,
    /// The node's TLS identities, and the task reloading them (`None` without TLS).
    tls: NodeTls,
    _tls_watch: Option<crate::tls::Watching>,
    _lock: DataDirLock,
}

/// A gRPC server running, and how to stop it.
struct Served {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

/// Serves `router` on `listener`, within `limits`, until told to stop (or dropped).
fn serve(
    router: tonic::transport::server::Router,
    listener: tokio::net::TcpListener,
    limits: connections::Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Served {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(router.serve_with_incoming_shutdown(
        connections::incoming(listener, limits, tls),
        async {
            let _ = stopped.await;
        },
    ));
    Served { stop, task }
}

/// The HTTP/2 settings of both servers: streams per connection, and pings that find dead peers.
fn server_builder(limits: &LimitsSection) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .max_concurrent_streams(limits.max_streams_per_connection)
        .http2_keepalive_interval(Some(Duration::from_millis(limits.keepalive_interval_ms)))
        .http2_keepalive_timeout(Some(Duration::from_millis(limits.keepalive_timeout_ms)))
}

/// The node's refusal to start on a damaged log or ledger: what was found (naming file and
/// offset), then what the operator can do about it.
fn refusal(error: anyhow::Error, context: String, repair: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{context}: {error:#}. The node refuses to start rather than lose acknowledged data. \
         {repair}"
    )
}

const SOLO_LOG_REPAIR: &str = "A solo node holds the only copy of its log: restore the damaged \
    segment file from a backup, then start the node again.";

/// Repair of a damaged Raft log from the other replicas. The node must not cut committed entries
/// itself: they may count towards a commit or a vote the others relied on. Nor may it simply
/// come back empty as a voter: an entry that only it and the leader held would be lost if the
/// leader then failed, since the empty replica would help elect a node without it. Removed
/// first and re-added as a learner, it votes again only once it has every entry.
fn raft_log_repair(channel_dir: &Path, id: u64) -> String {
    format!(
        "To repair this replica from the others: while the other nodes are up and have a leader, \
         remove it from the cluster through another node (`orderer admin --cluster OTHER remove \
         --id {id}`), move this channel's directory {} (its Raft log, vote and ledger) aside, \
         start this node again, add it back as a learner (`orderer admin --cluster OTHER \
         add-learner --id {id} --address THIS_CLUSTER_ADDRESS`) and, once it has caught up, \
         promote it (`orderer admin --cluster OTHER promote --id {id}`). Repair one node at a time.",
        channel_dir.display()
    )
}

/// Repair of a damaged ledger, which is derived from the channel's log.
fn ledger_repair(ledger_dir: &Path) -> String {
    format!(
        "The blocks are cut from the channel's log: to rebuild them, move {} aside and start \
         the node again; it cuts the blocks again from its log.",
        ledger_dir.display()
    )
}

/// How the node's consensus type starts a channel's chain.
enum ChainStarter {
    Solo,
    Raft {
        timing: Timing,
        /// This node's cluster address, as channels' consenters list it.
        address: String,
        /// This node's Raft id in a channel whose consenters do not list it.
        default_id: NodeId,
        /// Consenter addresses this node dials elsewhere (`cluster.dial`).
        dial: BTreeMap<String, String>,
        clients: ClusterClients,
        /// Every raft channel's group, served by the cluster service.
        groups: Groups,
        /// With TLS: the public key of this node's cluster certificate, which identifies it
        /// among a channel's consenters (their `server_tls_cert`), as Fabric's detectSelfID.
        /// Without TLS, the address identifies it.
        own_key: Option<Vec<u8>>,
    },
}

impl ChainStarter {
    fn new(config: &NodeConfig, tls: &NodeTls) -> anyhow::Result<ChainStarter> {
        Ok(match config.node.consensus {
            Consensus::Solo => ChainStarter::Solo,
            Consensus::Raft => {
                let cluster = config
                    .cluster
                    .as_ref()
                    .context("consensus \"raft\" needs a [cluster] section")?;
                let address = match (&cluster.address, config.node.cluster_listen) {
                    (Some(address), _) => address.clone(),
                    (None, Some(listen)) => listen.to_string(),
                    (None, None) => anyhow::bail!("consensus \"raft\" needs node.cluster_listen"),
                };
                let (clients, groups, own_key) = match &tls.cluster {
                    Some(cluster) => (
                        ClusterClients::new(Some(cluster.dialer.clone())),
                        Groups::with_tls(cluster.dialer.clone()),
                        Some(
                            cluster
                                .port
                                .credentials
                                .public_key()
                                .map_err(anyhow::Error::msg)
                                .context("reading the cluster TLS certificate's public key")?,
                        ),
                    ),
                    None => (ClusterClients::default(), Groups::default(), None),
                };
                ChainStarter::Raft {
                    timing: timing(cluster),
                    address,
                    default_id: config.node.id,
                    dial: cluster.dial.clone(),
                    clients,
                    groups,
                    own_key,
                }
            }
        })
    }
}

fn timing(cluster: &ClusterSection) -> Timing {
    Timing {
        heartbeat: Duration::from_millis(cluster.heartbeat_ms),
        election_min: Duration::from_millis(cluster.election_timeout_min_ms),
        election_max: Duration::from_millis(cluster.election_timeout_max_ms),
        produce_timeout: Duration::from_millis(cluster.produce_timeout_ms),
    }
}

/// What opening a channel needs: where its data goes, how its storage is configured, the chain
/// starter of the node's type, and the node's signing identity.
pub(crate) struct ChannelOpener {
    data_dir: PathBuf,
    log: PartitionConfig,
    ledger: LedgerConfig,
    chains: ChainStarter,
    signer: Arc<SigningIdentity>,
    tls: NodeTls,
}

impl ChannelOpener {
    /// Opens a channel: its chain (over its log), its ledger, then the channel over both.
    pub(crate) async fn open(&self, genesis: &JoinBlock) -> anyhow::Result<Arc<Channel>> {
        let id = genesis.channel_id();
        check_signer(&self.signer, &genesis.bundle)?;
        // Its orgs' TLS roots are trusted before its Raft group dials or is dialled.
        self.tls.add_channel(&genesis.bundle);
        let dir = self.data_dir.join("channels").join(id);
        let chain = self.start_chain(id, &dir, &genesis.bundle).await?;
        let signer = SigningIdentity::clone(&self.signer);
        let opened = self
            .open_ledger(id, &dir)
            .and_then(|ledger| Channel::open(genesis, ledger, chain.clone(), signer));
        match opened {
            Ok(channel) => Ok(channel),
            Err(e) => {
                // Its log may have started threads and tasks: end them before refusing.
                self.forget_chain(id);
                chain.halt().await;
                Err(e)
            }
        }
    }

    /// Starts the channel's chain of the node's consensus type, over its log in `dir/log`.
    async fn start_chain(
        &self,
        id: &str,
        dir: &Path,
        genesis: &Bundle,
    ) -> anyhow::Result<Arc<dyn Chain>> {
        let log_dir = dir.join("log");
        let kind = genesis.values().consensus.type_name();
        match (&self.chains, &genesis.values().consensus) {
            (ChainStarter::Solo, ChannelConsensus::Solo) => {
                let partition = Partition::open(&log_dir, self.log.clone()).map_err(|e| {
                    let context = format!("opening the log of channel {id}");
                    match e {
                        LogError::Corrupt { .. } => refusal(e.into(), context, SOLO_LOG_REPAIR),
                        e => anyhow::Error::new(e).context(context),
                    }
                })?;
                Ok(SoloChain::new(partition))
            }
            (
                ChainStarter::Raft {
                    timing,
                    address,
                    default_id,
                    dial,
                    clients,
                    groups,
                    own_key,
                },
                ChannelConsensus::EtcdRaft { consenters, .. },
            ) => {
                // Raft ids as etcdraft assigns them to a new chain: 1..n in consenter order.
                let ids = etcdraft::initial_block_metadata(consenters).consenter_ids;
                let members: BTreeMap<NodeId, RaftNode> = ids
                    .iter()
                    .zip(consenters)
                    .map(|(&id, c)| {
                        let endpoint = etcdraft::endpoint(c);
                        let address = dial.get(&endpoint).unwrap_or(&endpoint);
                        (id, RaftNode::new(address))
                    })
                    .collect();
                let own = own_position(consenters, own_key.as_deref(), address);
                let client_certs: Vec<bytes::Bytes> = consenters
                    .iter()
                    .map(|c| c.client_tls_cert.clone())
                    .collect();
                groups.authorize(id, &client_certs);
                // A consenter bootstraps an empty group with its fellow consenters; another
                // node waits, under its configured id, to be added.
                let (node_id, bootstrap) = match own {
                    Some(i) => (ids[i], Some(members)),
                    None => (*default_id, None),
                };
                let group = RaftLog::open(
                    id,
                    &log_dir,
                    node_id,
                    self.log.clone(),
                    timing,
                    Members {
                        bootstrap,
                        consenter_ids: ids,
                    },
                    clients.clone(),
                )
                .await
                .map_err(|e| {
                    let context = format!("starting the raft group of channel {id}");
                    match e {
                        OpenError::Log(e @ LogError::Corrupt { .. }) => {
                            refusal(e.into(), context, &raft_log_repair(dir, node_id))
                        }
                        e => anyhow::Error::new(e).context(context),
                    }
                })?;
                groups.insert(group.clone());
                Ok(group)
            }
            (ChainStarter::Solo, _) | (ChainStarter::Raft { .. }, _) => anyhow::bail!(
                "channel {id} is of consensus type {kind:?}, which this node (node.consensus \
                 = \"{}\") does not run",
                match self.chains {
                    ChainStarter::Solo => "solo",
                    ChainStarter::Raft { .. } => "raft",
                }
            ),
        }
    }

    /// Stops serving the cluster traffic of channel `id` (raft).
    pub(crate) fn forget_chain(&self, id: &str) {
        if let ChainStarter::Raft { groups, .. } = &self.chains {
            groups.remove(id);
        }
    }

    /// Whether this node is one of the consenters a config of channel `bundle` lists (a raft
    /// node identified as the chain identifies itself); solo channels have none.
    pub(crate) fn is_consenter(&self, bundle: &Bundle) -> bool {
        match (&self.chains, &bundle.values().consensus) {
            (
                ChainStarter::Raft {
                    address, own_key, ..
                },
                ChannelConsensus::EtcdRaft { consenters, .. },
            ) => own_position(consenters, own_key.as_deref(), address).is_some(),
            _ => false,
        }
    }

    /// Opens a channel this node follows (Fabric's follower): it joined with a later config
    /// block, or is not among the consenters; its ledger fills with blocks pulled from them.
    pub(crate) fn follow(&self, join: &JoinBlock) -> anyhow::Result<Arc<Channel>> {
        let id = join.channel_id();
        let (ChainStarter::Raft { dial, .. }, ChannelConsensus::EtcdRaft { .. }) =
            (&self.chains, &join.bundle.values().consensus)
        else {
            anyhow::bail!(
                "channel {id} can only be joined with its genesis block: only a raft node can \
                 follow a raft channel by pulling its blocks"
            );
        };
        // Its orgs' TLS roots are trusted before its consenters are dialled.
        self.tls.add_channel(&join.bundle);
        let ledger = self.open_ledger(id, &self.data_dir.join("channels").join(id))?;
        let puller = Puller::new(id, self.signer.clone(), self.tls.dialer());
        Channel::follow(
            join,
            ledger,
            Follower::new(puller, dial.clone(), self.tls.clone()),
        )
    }

    /// Opens the channel's ledger in `dir/ledger`.
    fn open_ledger(&self, id: &str, dir: &Path) -> anyhow::Result<Ledger> {
        let ledger_dir = dir.join("ledger");
        Ledger::open(&ledger_dir, self.ledger.clone()).map_err(|e| {
            let context = format!("opening the ledger of channel {id}");
            match e {
                LedgerError::Corrupt(_) | LedgerError::OldFormat(_) => {
                    refusal(e.into(), context, &ledger_repair(&ledger_dir))
                }
                e => anyhow::Error::new(e).context(context),
            }
        })
    }
}

/// Which of `consenters` this node is: with TLS, the one whose server certificate has the public
/// key of this node's cluster certificate (Fabric's detectSelfID); without, the one at its
/// cluster address.
fn own_position(consenters: &[Consenter], own_key: Option<&[u8]>, address: &str) -> Option<usize> {
    match own_key {
        Some(key) => consenters
            .iter()
            .position(|c| crate::tls::public_key_of_pem(&c.server_tls_cert).as_deref() == Ok(key)),
        None => consenters
            .iter()
            .position(|c| etcdraft::endpoint(c) == address),
    }
}

/// Refuses a channel whose blocks this node could not sign: its identity must satisfy the
/// channel's /Channel/Orderer/BlockValidation policy, or peers would reject every block.
fn check_signer(signer: &SigningIdentity, bundle: &Bundle) -> anyhow::Result<()> {
    let probe = b"ordo: can this identity sign the channel's blocks?";
    let signed = SignedData {
        data: bytes::Bytes::from_static(probe),
        identity: signer.serialized().clone(),
        signature: signer.sign(probe).into(),
    };
    bundle
        .evaluate(paths::BLOCK_VALIDATION, &[signed])
        .with_context(|| {
            format!(
                "channel {}: this node's identity ({}) cannot sign its blocks",
                bundle.channel_id(),
                signer.mspid()
            )
        })
}

/// Creates and locks the data folder, so that two nodes never write the same files.
fn open_data_dir(data_dir: &Path) -> anyhow::Result<DataDirLock> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    DataDirLock::acquire(data_dir)
}

impl Node {
    /// Opens every channel of the config and starts serving clients.
    pub async fn start(config: &NodeConfig) -> anyhow::Result<Node> {
        // A config built in code has not been through `NodeConfig::load`.
        config.check().map_err(anyhow::Error::msg)?;
        let lock = open_data_dir(&config.node.data_dir)?;
        // The client and the cluster port each accept up to max_connections.
        raise_descriptor_limit(2 * config.limits.max_connections);
        let signer =
            ordo_client::msp_dir::signing_identity(&config.node.msp_dir, &config.node.mspid)
                .context("loading this node's signing identity (node.msp_dir, node.mspid)")?;
        let tls = NodeTls::from_config(config)?;
        let opener = ChannelOpener {
            data_dir: config.node.data_dir.clone(),
            log: PartitionConfig {
                segment_bytes: config.log.segment_bytes,
                cache_bytes: config.log.cache_bytes,
                ..Default::default()
            },
            ledger: LedgerConfig {
                file_bytes: config.ledger.file_bytes,
                cache_bytes: config.ledger.cache_bytes,
            },
            chains: ChainStarter::new(config, &tls)?,
            signer: Arc::new(signer),
            tls: tls.clone(),
        };
        let opener = Arc::new(opener);
        let registrar = Registrar::default();
        let mut configured = std::collections::HashSet::new();
        let mut admin = None;
        // First, so that `/healthz` and `/metrics` answer while the channels open.
        let operations_tls = tls.operations.as_ref().map(|t| t.acceptor()).transpose()?;
        let operations = crate::operations::start(
            &config.operations,
            registrar.clone(),
            &config.node.data_dir,
            operations_tls,
        )
        .await?;
        let serving = async {
            for section in &config.channels {
                let genesis = read_genesis(&section.genesis_block)?;
                configured.insert(genesis.channel_id().to_string());
                let reservation = registrar.reserve(genesis.channel_id())?;
                reservation.serve(opener.open(&genesis).await?);
            }
            let joined = JoinedChannels::new(
                registrar.clone(),
                opener.clone(),
                config.node.data_dir.clone(),
                configured.clone(),
                config.channel_participation.archive_removed_channels,
            );
            // Channels joined through the participation API on an earlier run.
            for join_block in joined.stored()? {
                joined.reopen(&join_block).await.with_context(|| {
                    format!("reopening the joined channel of {}", join_block.display())
                })?;
            }
            if let Some(listen) = config.admin.listen {
                let admin_tls = tls.admin.as_ref().map(|t| t.acceptor()).transpose()?;
                admin = Some(
                    crate::participation::serve(config, listen, joined.clone(), admin_tls).await?,
                );
            }
            // One budget for the Deliver streams of both ports.
            let deliver_budget = outbox::Budget::new(
                config.limits.deliver_total_bytes,
                config.limits.deliver_stream_bytes,
                config.limits.max_deliver_streams,
            );
            let (local_addr, client_server) = serve_clients(
                config,
                &registrar,
                opener.signer.clone(),
                &deliver_budget,
                &tls,
            )
            .await?;
            let mut servers = vec![client_server];
            let mut cluster_addr = None;
            if let (ChainStarter::Raft { groups, .. }, Some(listen)) =
                (&opener.chains, config.node.cluster_listen)
            {
                let (addr, served) = serve_cluster(
                    config,
                    listen,
                    groups.clone(),
                    &registrar,
                    opener.signer.clone(),
                    &deliver_budget,
                    &tls,
                )
                .await?;
                cluster_addr = Some(addr);
                servers.push(served);
            }
            anyhow::Ok((local_addr, cluster_addr, servers, joined))
        };
        let (local_addr, cluster_addr, servers, joined) = match serving.await {
            Ok(served) => served,
            Err(e) => {
                if let Some(admin) = admin.take() {
                    admin.stop(Duration::ZERO).await;
                }
                // The channels opened so far must not run on once the data folder is unlocked.
                for channel in registrar.channels() {
                    registrar.remove(channel.id()).await;
                }
                return Err(e);
            }
        };
        let tls_watch = tls.watch(&registrar);
        Ok(Node {
            registrar,
            opener,
            joined,
            local_addr,
            cluster_addr,
            servers,
            operations,
            admin,
            shutdown_grace: Duration::from_millis(config.limits.shutdown_grace_ms),
            tls,
            _tls_watch: tls_watch,
            _lock: lock,
        })
    }

    /// The operations server's address, if it runs.
    pub fn operations_addr(&self) -> Option<SocketAddr> {
        self.operations.as_ref().map(|server| server.local_addr())
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn cluster_addr(&self) -> Option<SocketAddr> {
        self.cluster_addr
    }

    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    /// The node's TLS identities (for the HTTP servers' acceptors, and the dialer of other
    /// orderers: `crate::tls::dial(node.tls().dialer().as_ref(), address)`).
    pub fn tls(&self) -> &NodeTls {
        &self.tls
    }

    /// The participation API's address (`[admin] listen`), if it is served.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|a| a.local_addr())
    }

    /// Joining and removing channels at run time (what the participation API calls).
    pub fn joined(&self) -> &JoinedChannels {
        &self.joined
    }

    /// Starts serving the channel of the genesis block `genesis_block` while the node runs: its
    /// data goes where a configured channel's would, so configuring it later resumes it. Returns
    /// its id. The node's gRPC message limit was set at start: a channel added now with a larger
    /// `absolute_max_bytes` gets a transport error, not REQUEST_ENTITY_TOO_LARGE, above it.
    pub async fn add_channel(&self, genesis_block: &Path) -> anyhow::Result<String> {
        let genesis = read_genesis(genesis_block)?;
        let id = genesis.channel_id().to_string();
        // Held before any file is opened: a second instance of the channel (served, or being
        // opened or removed) would otherwise open the same files.
        let reservation = self.registrar.reserve(&id)?;
        reservation.serve(self.opener.open(&genesis).await?);
        tracing::info!(channel = %id, "channel added");
        Ok(id)
    }

    /// Stops serving channel `id` while the node runs: Broadcast and Deliver answer NOT_FOUND for
    /// it from now on, and its chain is halted when this resolves. Its data stays on disk.
    /// Returns whether it was served.
    pub async fn remove_channel(&self, id: &str) -> bool {
        let Some((channel, held)) = self.registrar.take(id) else {
            return false;
        };
        channel.shutdown().await;
        // Still held: no new instance of the channel can have registered a chain of its own.
        self.opener.forget_chain(id);
        drop(held);
        tracing::info!(channel = %id, "channel removed");
        true
    }

    /// The one shutdown: stops accepting, lets open streams finish for up to
    /// `limits.shutdown_grace_ms` (then cuts them: a Deliver following the chain never ends by
    /// itself), then stops every channel, awaiting its consumer and chain (solo: the log's
    /// writer has committed what it had queued). What was acknowledged is already on disk.
    pub async fn stop(self) {
        if let Some(operations) = self.operations {
            operations.stop(self.shutdown_grace).await;
        }
        if let Some(admin) = self.admin {
            admin.stop(self.shutdown_grace).await;
        }
        let tasks: Vec<_> = self
            .servers
            .into_iter()
            .map(|served| {
                let _ = served.stop.send(());
                served.task
            })
            .collect();
        let deadline = tokio::time::Instant::now() + self.shutdown_grace;
        for mut task in tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
            }
        }
        for channel in self.registrar.channels() {
            self.registrar.remove(channel.id()).await;
        }
        tracing::info!("node stopped");
    }
}

/// Starts the client service (AtomicBroadcast) on `node.listen`.
async fn serve_clients(
    config: &NodeConfig,
    registrar: &Registrar,
    signer: Arc<SigningIdentity>,
    deliver_budget: &outbox::Budget,
    tls: &NodeTls,
) -> anyhow::Result<(SocketAddr, Served)> {
    let listener = tokio::net::TcpListener::bind(config.node.listen)
        .await
        .with_context(|| format!("binding {}", config.node.listen))?;
    let local_addr = listener.local_addr()?;
    let service = atomic_broadcast(
        config,
        registrar,
        signer,
        deliver_budget,
        tls.client.is_some() && tls.client_auth_required,
        true,
    );
    let router = server_builder(&config.limits).add_service(service);
    let acceptor = tls.client.as_ref().map(|c| c.acceptor.clone());
    let served = serve(router, listener, client_limits(&config.limits), acceptor);
    tracing::info!(%local_addr, channels = config.channels.len(), tls = tls.client.is_some(), "serving AtomicBroadcast");
    Ok((local_addr, served))
}

/// The AtomicBroadcast service over the node's channels; with `tls_binding`, requests must carry
/// the hash of the client's TLS certificate; without `broadcast`, it serves Deliver only.
fn atomic_broadcast(
    config: &NodeConfig,
    registrar: &Registrar,
    signer: Arc<SigningIdentity>,
    deliver_budget: &outbox::Budget,
    tls_binding: bool,
    broadcast: bool,
) -> AtomicBroadcastServer<AtomicBroadcastService> {
    // Leave room over the largest envelope for the gRPC framing of a request.
    let max_message = registrar.max_envelope_bytes() + (64 << 10);
    let settings = ServiceSettings {
        signer,
        time_window: Duration::from_secs(config.authentication.time_window_s),
        broadcast_stream_bytes: config.limits.broadcast_stream_bytes,
        deliver_budget: deliver_budget.clone(),
        tls_binding,
        broadcast,
    };
    AtomicBroadcastServer::new(AtomicBroadcastService::new(registrar.clone(), settings))
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(usize::MAX)
}

fn client_limits(limits: &LimitsSection) -> connections::Limits {
    connections::Limits {
        max_connections: limits.max_connections,
        max_connections_per_ip: limits.max_connections_per_ip,
        handshake_timeout: Duration::from_millis(limits.handshake_timeout_ms),
        idle_timeout: Some(Duration::from_millis(limits.idle_timeout_ms)),
    }
}

/// Starts the cluster service (the Raft transport and the membership calls) on `listen`, with
/// AtomicBroadcast beside it: followers pull blocks from consenters at their cluster addresses,
/// the ones the channel config lists, over the same mutual TLS.
async fn serve_cluster(
    config: &NodeConfig,
    listen: SocketAddr,
    groups: Groups,
    registrar: &Registrar,
    signer: Arc<SigningIdentity>,
    deliver_budget: &outbox::Budget,
    tls: &NodeTls,
) -> anyhow::Result<(SocketAddr, Served)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the cluster address {listen}"))?;
    let cluster_addr = listener.local_addr()?;
    let router = server_builder(&config.limits)
        // Raft entries and forwarded batches are up to megabytes: with HTTP/2's default 64 KiB
        // windows each one waits for dozens of window updates from a busy peer. Only members
        // reach this port (mutual TLS), so the bytes it may buffer are bounded by the cluster.
        .initial_stream_window_size(crate::tls::CLUSTER_STREAM_WINDOW)
        .initial_connection_window_size(crate::tls::CLUSTER_CONNECTION_WINDOW)
        .add_service(
            ordo_proto::ordo::cluster_server::ClusterServer::new(groups.clone())
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(ordo_proto::ordo::admin_server::AdminServer::new(groups))
        .add_service(atomic_broadcast(
            config,
            registrar,
            signer,
            deliver_budget,
            tls.cluster.is_some(),
            false,
        ));
    let served = serve(
        router,
        listener,
        connections::Limits {
            // Cluster peers keep a connection open between unary calls.
            idle_timeout: None,
            ..client_limits(&config.limits)
        },
        // Always mutual TLS when TLS is on: a cluster peer is known by its certificate.
        tls.cluster.as_ref().map(|c| c.port.acceptor.clone()),
    );
    tracing::info!(%cluster_addr, node = config.node.id, "serving the cluster");
    Ok((cluster_addr, served))
}

/// Descriptors the node needs besides client connections: files, cluster links, listeners.
const DESCRIPTOR_RESERVE: u64 = 1024;

/// Raises the soft descriptor limit to the hard one (as Go's runtime does for Fabric's orderer),
/// and warns if `max_connections` could still run the node out of descriptors.
fn raise_descriptor_limit(max_connections: usize) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read only the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    if max_connections as u64 + DESCRIPTOR_RESERVE > limit.rlim_cur {
        tracing::warn!(
            descriptors = limit.rlim_cur,
            max_connections,
            "limits.max_connections leaves too few file descriptors for the node's own files"
        );
    }
}

/// An exclusive lock on a data folder, so two nodes never write the same files.
struct DataDirLock {
    _file: std::fs::File,
}

impl DataDirLock {
    fn acquire(dir: &Path) -> anyhow::Result<Self> {
        use std::os::unix::io::AsRawFd;
        let path = dir.join("LOCK");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: flock on a descriptor we own; released when the file is closed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            anyhow::bail!("{} is in use by another orderer process", dir.display());
        }
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::dev::BatchSection;
    use ordo_core::envelope;
    use ordo_proto::common::{HeaderType, Status};
    use ordo_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;
    use ordo_proto::orderer::seek_info::SeekBehavior;
    use ordo_proto::orderer::{deliver_response, BroadcastResponse};

    /// Broadcasts one envelope to `channel` and returns the answer.
    async fn broadcast(node: &Node, signer: &SigningIdentity, channel: &str) -> BroadcastResponse {
        let mut client = AtomicBroadcastClient::connect(format!("http://{}", node.local_addr()))
            .await
            .unwrap();
        let envelope = envelope::build(
            signer,
            channel,
            HeaderType::Message,
            bytes::Bytes::from_static(b"hello"),
        );
        let mut answers = client
            .broadcast(futures::stream::iter([envelope]))
            .await
            .unwrap()
            .into_inner();
        answers.message().await.unwrap().expect("an answer")
    }

    #[tokio::test]
    async fn a_channel_added_to_a_running_node_is_served_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let batch = BatchSection {
            timeout_ms: 50,
            ..BatchSection::default()
        };
        let layout =
            crate::setup::dev::prepare_with(dir.path(), "127.0.0.1:0".parse().unwrap(), batch)
                .unwrap();
        let mut config = NodeConfig::load(&layout.config).unwrap();
        // This test's clients speak plain HTTP/2 (TLS has tests of its own).
        config.tls.enabled = false;
        let client = ordo_client::msp_dir::signing_identity(
            &layout.client_msp,
            crate::setup::dev::CLIENT_MSPID,
        )
        .unwrap();
        let node = Node::start(&config).await.unwrap();

        // A second channel, with the development channel's config under another id.
        let dev = read_genesis(&layout.genesis_block).unwrap();
        let genesis_path = dir.path().join("second.block");
        let second = ordo_core::configtx::genesis::genesis_block_from_config(
            dev.bundle.config(),
            "second",
            std::time::SystemTime::now(),
            [1; 24],
        )
        .unwrap();
        ordo_client::block_file::write(&genesis_path, &second).unwrap();
        let not_yet = broadcast(&node, &client, "second").await;
        assert_eq!(not_yet.status, Status::NotFound as i32, "{not_yet:?}");

        assert_eq!(node.add_channel(&genesis_path).await.unwrap(), "second");
        let refused = node.add_channel(&genesis_path).await.unwrap_err();
        assert!(
            refused.to_string().contains("already served"),
            "{refused:#}"
        );
        let ordered = broadcast(&node, &client, "second").await;
        assert_eq!(ordered.status, Status::Success as i32, "{ordered:?}");
        let channel = node.registrar().get("second").unwrap();
        let ledger = channel.ledger().clone();
        let mut height = ledger.subscribe();
        tokio::time::timeout(Duration::from_secs(10), height.wait_for(|&h| h >= 2))
            .await
            .expect("block 1 of the added channel")
            .unwrap();
        // A Deliver stream following the chain: once it has block 1 it waits for block 2, which
        // will not come before the removal.
        let mut deliver = AtomicBroadcastClient::connect(format!("http://{}", node.local_addr()))
            .await
            .unwrap();
        let seek = envelope::seek(
            &client,
            "second",
            envelope::specified(1),
            envelope::specified(u64::MAX),
            SeekBehavior::BlockUntilReady as i32,
        );
        let mut waiting = deliver
            .deliver(futures::stream::iter([seek]))
            .await
            .unwrap()
            .into_inner();
        let first = waiting.message().await.unwrap().and_then(|r| r.r#type);
        assert!(
            matches!(first, Some(deliver_response::Type::Block(_))),
            "{first:?}"
        );

        assert!(node.remove_channel("second").await);
        // It is told the channel stopped, rather than wait for ever.
        let told = tokio::time::timeout(Duration::from_secs(10), waiting.message())
            .await
            .expect("an answer within 10 s")
            .unwrap()
            .and_then(|response| response.r#type);
        assert_eq!(
            told,
            Some(deliver_response::Type::Status(
                Status::ServiceUnavailable as i32
            ))
        );
        assert!(!node.remove_channel("second").await);
        // Its chain is halted: nothing more is ordered on it.
        assert!(channel
            .order(bytes::Bytes::from_static(b"late"))
            .await
            .is_err());
        assert!(!channel.is_healthy());
        let gone = broadcast(&node, &client, "second").await;
        assert_eq!(gone.status, Status::NotFound as i32, "{gone:?}");
        // The configured channel is served throughout.
        let still = broadcast(&node, &client, crate::setup::dev::CHANNEL).await;
        assert_eq!(still.status, Status::Success as i32, "{still:?}");
        node.stop().await;
    }
}
