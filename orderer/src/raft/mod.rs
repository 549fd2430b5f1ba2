//! The replicated consensus type: each channel's partition is a Raft log replicated by openraft
//! across the orderer nodes. An entry's Raft index is its record offset; only committed entries
//! (below the commit point) reach the consumer, so every node cuts the same blocks.
//!
//! - [`codec`]: the binary form of an entry, on disk and on the wire;
//! - [`storage`]: openraft's log storage on the segment store, and a metadata-only state machine;
//! - [`network`]: the client side of the cluster transport (gRPC `ordo.Cluster`);
//! - [`service`]: the server side, which also carries the `ordo.Admin` membership calls.

pub mod codec;
pub mod network;
pub mod service;
pub mod storage;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft};
use tokio::sync::watch;

use crate::consensus::OrderedLog;
use crate::log::{LogError, PartitionConfig, Record, SegmentStore};
use network::{ClusterClients, Network};
use storage::{LogReader, LogStore, StateMachine};

pub type NodeId = u64;
pub type Node = BasicNode;

openraft::declare_raft_types!(
    /// openraft's types for Ordo: a record in, its offset out.
    pub TypeConfig:
        D = Bytes,
        R = u64,
        NodeId = NodeId,
        Node = BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type Entry = openraft::Entry<TypeConfig>;

/// Timing of the Raft groups, from the node's `[cluster]` config.
#[derive(Clone, Debug)]
pub struct Timing {
    pub heartbeat: Duration,
    pub election_min: Duration,
    pub election_max: Duration,
    /// How long a produce may wait for a leader before SERVICE_UNAVAILABLE.
    pub produce_timeout: Duration,
}

/// A channel's replicated partition.
pub struct RaftLog {
    channel: String,
    raft: Raft<TypeConfig>,
    reader: LogReader,
    committed: watch::Receiver<u64>,
    clients: ClusterClients,
    produce_timeout: Duration,
}

impl RaftLog {
    /// Opens the channel's Raft log in `dir` and starts its Raft node. With `bootstrap` members
    /// and an empty log, the group is initialized with them (every bootstrap node does the same,
    /// which openraft allows); a node that joins later is left uninitialized for the leader to
    /// add.
    pub async fn open(
        channel: &str,
        dir: &Path,
        node_id: NodeId,
        log_config: PartitionConfig,
        timing: &Timing,
        bootstrap: Option<BTreeMap<NodeId, Node>>,
        clients: ClusterClients,
    ) -> anyhow::Result<Arc<RaftLog>> {
        let store = SegmentStore::open(dir, log_config)?;
        let empty = store.next_offset() == store.start_offset();
        let log_store = LogStore::open(store, dir);
        let reader = log_store.reader();
        let (committed_tx, committed) = watch::channel(0);
        let config = openraft::Config {
            cluster_name: format!("ordo-{channel}"),
            heartbeat_interval: timing.heartbeat.as_millis() as u64,
            election_timeout_min: timing.election_min.as_millis() as u64,
            election_timeout_max: timing.election_max.as_millis() as u64,
            // The Raft log is the partition: never snapshot it away.
            snapshot_policy: openraft::SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: u64::MAX,
            purge_batch_size: 1,
            max_payload_entries: 4096,
            ..Default::default()
        };
        let config = Arc::new(config.validate()?);
        let network = Network::new(channel, clients.clone());
        let raft = Raft::new(
            node_id,
            config,
            network,
            log_store,
            StateMachine::new(committed_tx),
        )
        .await?;
        if let (true, Some(members)) = (empty, bootstrap) {
            if let Err(e) = raft.initialize(members).await {
                tracing::info!(channel, error = %e, "raft group not initialized here");
            }
        }
        Ok(Arc::new(RaftLog {
            channel: channel.to_string(),
            raft,
            reader,
            committed,
            clients,
            produce_timeout: timing.produce_timeout,
        }))
    }

    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Writes a record through the leader: here if this node leads, else forwarded to it.
    async fn write(&self, record: Bytes) -> Result<u64, LogError> {
        let deadline = tokio::time::Instant::now() + self.produce_timeout;
        loop {
            let attempt = match self.raft.client_write(record.clone()).await {
                Ok(response) => return Ok(response.log_id.index),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                    match forward.leader_node {
                        Some(leader) => {
                            self.clients
                                .forward(&leader.addr, &self.channel, record.clone())
                                .await
                        }
                        None => Err("no leader is known".to_string()),
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            let error = match attempt {
                Ok(offset) => return Ok(offset),
                Err(e) => e,
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(LogError::Unavailable(format!(
                    "channel {}: not committed within {:?}: {error}",
                    self.channel, self.produce_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Committed records from `from`: blank and membership entries are skipped.
    async fn committed_records(
        &self,
        mut from: u64,
        max_bytes: usize,
    ) -> Result<Vec<Record>, LogError> {
        let mut committed = self.committed.clone();
        loop {
            let end = *committed.borrow_and_update();
            if from < end {
                let raw = self.reader.read_raw(from, end, max_bytes)?;
                // Applied entries are stored here, so a read below the commit point finds some.
                let Some(last) = raw.last().map(|r| r.offset) else {
                    return Err(LogError::Unavailable(format!(
                        "entry {from} is committed but missing"
                    )));
                };
                let records: Vec<Record> = raw
                    .into_iter()
                    .filter_map(|r| {
                        codec::record(&r.payload).map(|payload| Record {
                            offset: r.offset,
                            timestamp_ms: r.timestamp_ms,
                            payload,
                        })
                    })
                    .collect();
                if !records.is_empty() {
                    return Ok(records);
                }
                from = last + 1;
                continue;
            }
            if committed.changed().await.is_err() {
                return Err(LogError::Closed);
            }
        }
    }
}

impl OrderedLog for RaftLog {
    fn produce(&self, record: Bytes) -> BoxFuture<'_, Result<u64, LogError>> {
        Box::pin(self.write(record))
    }

    fn fetch(&self, from: u64, max_bytes: usize) -> BoxFuture<'_, Result<Vec<Record>, LogError>> {
        Box::pin(self.committed_records(from, max_bytes))
    }

    fn local_end(&self) -> u64 {
        self.reader.end()
    }

    fn close(&self) {
        let raft = self.raft.clone();
        tokio::spawn(async move {
            let _ = raft.shutdown().await;
        });
    }
}
