//! An orderer node: its channels and the gRPC server in front of them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ordo_proto::orderer::atomic_broadcast_server::AtomicBroadcastServer;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::chain::raft::network::ClusterClients;
use crate::chain::raft::{Node as RaftNode, OpenError, RaftLog, Timing};
use crate::chain::solo::SoloChain;
use crate::chain::Chain;
use crate::channel::{read_genesis, Channel};
use crate::config::{Consensus, LimitsSection, NodeConfig};
use crate::ledger::{Ledger, LedgerConfig, LedgerError};
use crate::log::{LogError, Partition, PartitionConfig};
use crate::server::cluster::Groups;
use crate::server::connections;
use crate::server::outbox;
use crate::server::{AtomicBroadcastService, Channels, ServiceSettings};

pub struct Node {
    channels: Channels,
    local_addr: SocketAddr,
    cluster_addr: Option<SocketAddr>,
    stop_servers: Vec<oneshot::Sender<()>>,
    servers: Vec<JoinHandle<Result<(), tonic::transport::Error>>>,
    _lock: DataDirLock,
}

type Served = JoinHandle<Result<(), tonic::transport::Error>>;

/// Serves `router` on `listener`, within `limits`, until the returned sender fires (or is
/// dropped).
fn serve(
    router: tonic::transport::server::Router,
    listener: tokio::net::TcpListener,
    limits: connections::Limits,
) -> (oneshot::Sender<()>, Served) {
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(router.serve_with_incoming_shutdown(
        connections::incoming(listener, limits),
        async {
            let _ = stopped.await;
        },
    ));
    (stop, handle)
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

impl Node {
    /// Opens every channel of the config and starts serving clients.
    pub async fn start(config: &NodeConfig) -> anyhow::Result<Node> {
        // A config built in code has not been through `NodeConfig::load`.
        config.check().map_err(anyhow::Error::msg)?;
        let data_dir = &config.node.data_dir;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let lock = DataDirLock::acquire(data_dir)?;
        // The client and the cluster port each accept up to max_connections.
        raise_descriptor_limit(2 * config.limits.max_connections);
        let signer = ordo_client::identity_dir::load(&config.node.identity)?;
        let raft = config.node.consensus == Consensus::Raft;
        let clients = ClusterClients::default();
        let cluster = config.cluster.clone();
        let bootstrap = cluster.as_ref().and_then(|c| {
            c.peers.iter().any(|p| p.id == config.node.id).then(|| {
                c.peers
                    .iter()
                    .map(|p| (p.id, RaftNode::new(&p.address)))
                    .collect::<std::collections::BTreeMap<_, _>>()
            })
        });
        let timing = cluster.as_ref().map(|c| Timing {
            heartbeat: std::time::Duration::from_millis(c.heartbeat_ms),
            election_min: std::time::Duration::from_millis(c.election_timeout_min_ms),
            election_max: std::time::Duration::from_millis(c.election_timeout_max_ms),
            produce_timeout: std::time::Duration::from_millis(c.produce_timeout_ms),
        });

        let mut groups = Vec::new();
        let mut channels = Vec::new();
        for section in &config.channels {
            let genesis = read_genesis(&section.genesis_block)?;
            let id = genesis.channel_id().to_string();
            let dir = data_dir.join("channels").join(&id);
            let log_config = PartitionConfig {
                segment_bytes: config.log.segment_bytes,
                ..Default::default()
            };
            let chain: Arc<dyn Chain> = match (raft, &timing) {
                (true, Some(timing)) => {
                    let group = RaftLog::open(
                        &id,
                        &dir.join("log"),
                        config.node.id,
                        log_config,
                        timing,
                        bootstrap.clone(),
                        clients.clone(),
                    )
                    .await
                    .map_err(|e| {
                        let context = format!("starting the raft group of channel {id}");
                        match e {
                            OpenError::Log(e @ LogError::Corrupt { .. }) => {
                                refusal(e.into(), context, &raft_log_repair(&dir, config.node.id))
                            }
                            e => anyhow::Error::new(e).context(context),
                        }
                    })?;
                    groups.push(group.clone());
                    group
                }
                _ => {
                    SoloChain::new(Partition::open(&dir.join("log"), log_config).map_err(|e| {
                        let context = format!("opening the log of channel {id}");
                        match e {
                            LogError::Corrupt { .. } => refusal(e.into(), context, SOLO_LOG_REPAIR),
                            e => anyhow::Error::new(e).context(context),
                        }
                    })?)
                }
            };
            let ledger_dir = dir.join("ledger");
            let ledger = Ledger::open(
                &ledger_dir,
                LedgerConfig {
                    file_bytes: config.ledger.file_bytes,
                },
            )
            .map_err(|e| {
                let context = format!("opening the ledger of channel {id}");
                match e {
                    LedgerError::Corrupt(_) => {
                        refusal(e.into(), context, &ledger_repair(&ledger_dir))
                    }
                    e => anyhow::Error::new(e).context(context),
                }
            })?;
            channels.push(Channel::open(&genesis, ledger, chain, signer.clone())?);
        }
        let channels = Channels::new(channels);

        let listener = tokio::net::TcpListener::bind(config.node.listen)
            .await
            .with_context(|| format!("binding {}", config.node.listen))?;
        let local_addr = listener.local_addr()?;
        // Leave room over the largest envelope for the gRPC framing of a request.
        let max_message = channels.max_envelope_bytes() + (64 << 10);
        let settings = ServiceSettings {
            time_window: Duration::from_secs(config.authentication.time_window_s),
            broadcast_stream_bytes: config.limits.broadcast_stream_bytes,
            deliver_budget: outbox::Budget::new(
                config.limits.deliver_total_bytes,
                config.limits.deliver_stream_bytes,
                config.limits.max_deliver_streams,
            ),
        };
        let service =
            AtomicBroadcastServer::new(AtomicBroadcastService::new(channels.clone(), settings))
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(usize::MAX);
        let client_limits = connections::Limits {
            max_connections: config.limits.max_connections,
            max_connections_per_ip: config.limits.max_connections_per_ip,
            handshake_timeout: Duration::from_millis(config.limits.handshake_timeout_ms),
            idle_timeout: Some(Duration::from_millis(config.limits.idle_timeout_ms)),
        };
        let mut stop_servers = Vec::new();
        let mut servers = Vec::new();
        let mut cluster_addr = None;
        if let (true, Some(cluster_listen)) = (raft, config.node.cluster_listen) {
            let listener = tokio::net::TcpListener::bind(cluster_listen)
                .await
                .with_context(|| format!("binding the cluster address {cluster_listen}"))?;
            cluster_addr = Some(listener.local_addr()?);
            let groups = Groups::new(groups);
            let router = server_builder(&config.limits)
                .add_service(
                    ordo_proto::ordo::cluster_server::ClusterServer::new(groups.clone())
                        .max_decoding_message_size(usize::MAX)
                        .max_encoding_message_size(usize::MAX),
                )
                .add_service(ordo_proto::ordo::admin_server::AdminServer::new(groups));
            let (stop, handle) = serve(
                router,
                listener,
                connections::Limits {
                    // Cluster peers keep a connection open between unary calls.
                    idle_timeout: None,
                    ..client_limits.clone()
                },
            );
            stop_servers.push(stop);
            servers.push(handle);
            tracing::info!(cluster_addr = ?cluster_addr, node = config.node.id, "serving the cluster");
        }
        let router = server_builder(&config.limits).add_service(service);
        let (stop, handle) = serve(router, listener, client_limits);
        stop_servers.push(stop);
        servers.push(handle);
        tracing::info!(%local_addr, channels = config.channels.len(), "serving AtomicBroadcast");
        Ok(Node {
            channels,
            local_addr,
            cluster_addr,
            stop_servers,
            servers,
            _lock: lock,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn cluster_addr(&self) -> Option<SocketAddr> {
        self.cluster_addr
    }

    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// Stops serving, then stops every channel; what was acknowledged is already on disk.
    pub async fn stop(self) {
        for stop in self.stop_servers {
            let _ = stop.send(());
        }
        // Streams that never end (a Deliver following the chain) must not hold shutdown up.
        for server in self.servers {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), server).await;
        }
        for channel in self.channels.iter() {
            channel.shutdown().await;
        }
    }
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
