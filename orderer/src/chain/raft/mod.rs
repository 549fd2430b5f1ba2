//! The replicated consensus type: each channel's chain is a Raft log replicated by openraft
//! across the orderer nodes. An entry holds a batch of records; a record's offset is
//! `raft index << 16 | position in the entry`. Only committed entries (below the commit point)
//! reach the consumer, so every node cuts the same blocks.
//!
//! - [`codec`]: the binary form of an entry, on disk and on the wire;
//! - [`election`]: the election timer with a pre-vote, and the leader's quorum lease;
//! - [`storage`]: openraft's log storage on the segment store, and a metadata-only state machine;
//! - `flush`: the log's fsync thread, so that an append does not stall openraft's core;
//! - the log's newest entries are kept in memory ([`crate::store::Tail`]) for the reads that
//!   follow every append;
//! - [`network`]: the client side of the cluster transport (gRPC `ordo.Cluster`);
//! - [`crate::server::cluster`]: the server side, which also carries the `ordo.Admin` membership
//!   calls.

pub mod codec;
pub mod election;
mod flush;
pub mod leadership;
pub mod network;
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
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use super::{Chain, ChainError, HealthProblem};
use crate::log::{LogError, PartitionConfig, Record, SegmentStore};
use crate::metrics::RaftMetrics;
use election::Election;
use network::{ClusterClients, ForwardError, Network};
use ordo_proto::etcdraft::BlockMetadata;
use prost::Message;
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

/// A channel's replicated partition. Records produced here are gathered into batches, one Raft
/// entry each; a record's offset is `(entry index << 16) | position in the entry`.
pub struct RaftLog {
    channel: String,
    raft: Raft<TypeConfig>,
    election: Arc<Election>,
    reader: LogReader,
    committed: watch::Receiver<u64>,
    queue: mpsc::Sender<Pending>,
    writer: Writer,
    /// Set by `halt`: the writer stops taking records and its writes give up.
    halted: watch::Sender<bool>,
    /// The batching task, awaited by `halt`.
    batching: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The Raft ids of the channel's consenters, in their config order, recorded in every
    /// block's etcdraft metadata.
    consenter_ids: Vec<NodeId>,
    node_id: NodeId,
    metrics: Arc<RaftMetrics>,
    /// When the group was opened, and how long a node may go without a working leader before
    /// the `raft_leader` health check fails (`election_timeout_max_ms`).
    opened: tokio::time::Instant,
    election_timeout: Duration,
}

/// A record waiting for its batch to commit.
struct Pending {
    record: Bytes,
    reply: oneshot::Sender<Result<u64, WriteError>>,
}

/// Why an entry was not written.
#[derive(Clone, Debug, thiserror::Error)]
pub enum WriteError {
    /// This node leads without a quorum: its writes cannot commit.
    #[error("{0}")]
    NoQuorum(String),
    /// No commit in time, no leader known, or the leader refused or was unreachable.
    #[error("{0}")]
    NotCommitted(String),
    /// The chain was halted.
    #[error("the chain is halted")]
    Halted,
}

impl From<WriteError> for ChainError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::Halted => ChainError::Halted,
            e => ChainError::NotCommitted(e.to_string()),
        }
    }
}

/// Why a channel's Raft log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The log on disk is unreadable or damaged (a [`LogError::Corrupt`] asks for repair).
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("invalid raft config: {0}")]
    Config(#[from] openraft::ConfigError),
    #[error("starting the raft node: {0}")]
    Start(#[from] openraft::error::Fatal<NodeId>),
}

/// Batches written at once: enough to keep the pipeline to the leader full.
const BATCHES_IN_FLIGHT: usize = 8;
/// Bytes of records gathered into one entry, at most (the last record may pass it).
const MAX_BATCH_BYTES: usize = 256 << 10;
/// Records queued for batching; producers wait beyond it (backpressure).
const QUEUE: usize = 16 * 1024;

/// Writes entries through the leader.
#[derive(Clone)]
struct Writer {
    channel: String,
    raft: Raft<TypeConfig>,
    clients: ClusterClients,
    election: Arc<Election>,
    /// True while this node leads without a quorum: its writes cannot commit.
    quorum_lost: watch::Receiver<bool>,
    /// True once the chain is halted.
    halted: watch::Receiver<bool>,
    produce_timeout: Duration,
    /// How long one attempt may take before the write is retried (about an election): a
    /// forward to a leader that died or was cut off then finds the new leader.
    attempt_timeout: Duration,
    metrics: Arc<RaftMetrics>,
}

/// Who a channel's Raft group is made of, as its config says.
pub struct Members {
    /// The initial members, if this node is one of them (it then bootstraps an empty group).
    pub bootstrap: Option<BTreeMap<NodeId, Node>>,
    /// The Raft ids of the channel's consenters, in config order (recorded in block metadata).
    pub consenter_ids: Vec<NodeId>,
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
        members: Members,
        clients: ClusterClients,
    ) -> Result<Arc<RaftLog>, OpenError> {
        let Members {
            bootstrap,
            consenter_ids,
        } = members;
        let cache_bytes = log_config.cache_bytes;
        let store = SegmentStore::open(dir, log_config)?;
        let empty = store.next_offset() == store.start_offset();
        let log_store = LogStore::open(store, dir, channel, cache_bytes)?;
        let reader = log_store.reader();
        let (committed_tx, committed) = watch::channel(0);
        let heartbeat = timing.heartbeat.as_millis() as u64;
        let election_min = timing.election_min.as_millis() as u64;
        let config = openraft::Config {
            cluster_name: format!("ordo-{channel}"),
            heartbeat_interval: heartbeat,
            // Elections are started by [`Election`]'s timer, after a pre-vote. openraft's own
            // timeouts then only set its leader lease (`election_timeout_max`: a follower that
            // heard its leader within it refuses to vote), which must not outlast the silence
            // after which our voters grant a pre-vote (`election_min`), or a won pre-vote could
            // still lose the election; and the vote RPC timeout (`election_timeout_min`).
            enable_elect: false,
            election_timeout_min: (heartbeat + election_min) / 2,
            election_timeout_max: election_min,
            // The Raft log is the partition: never snapshot it away.
            snapshot_policy: openraft::SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: u64::MAX,
            purge_batch_size: 1,
            // Keeps one AppendEntries (at most ~4 MiB) well inside openraft's RPC timeout, which
            // is the heartbeat interval.
            max_payload_entries: 16,
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
        let election = Election::start(channel, node_id, raft.clone(), clients.clone(), timing);
        let metrics = Arc::new(crate::metrics::global().raft(channel));
        leadership::report(raft.clone(), metrics.clone());
        let (halted, halted_rx) = watch::channel(false);
        let writer = Writer {
            channel: channel.to_string(),
            raft: raft.clone(),
            clients,
            election: election.clone(),
            quorum_lost: election.quorum_lost(),
            halted: halted_rx,
            produce_timeout: timing.produce_timeout,
            attempt_timeout: timing.election_max,
            metrics: metrics.clone(),
        };
        let (queue, pending) = mpsc::channel(QUEUE);
        let batching = tokio::spawn(writer.clone().run(pending));
        Ok(Arc::new(RaftLog {
            channel: channel.to_string(),
            raft,
            election,
            reader,
            committed,
            queue,
            writer,
            halted,
            batching: std::sync::Mutex::new(Some(batching)),
            consenter_ids,
            node_id,
            metrics,
            opened: tokio::time::Instant::now(),
            election_timeout: timing.election_max,
        }))
    }

    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    pub fn election(&self) -> &Election {
        &self.election
    }

    /// Writes an entry forwarded by another node: only here, as leader (never forwarded again,
    /// so a record does not travel in circles while leadership moves), and refused at once while
    /// this leader has no quorum.
    pub async fn write_forwarded(&self, entry: Bytes) -> Result<u64, WriteError> {
        self.writer.write_here(entry).await
    }

    /// Committed records from offset `from`: the records of the committed normal entries from
    /// there on; blank and membership entries hold none.
    async fn committed_records(
        &self,
        from: u64,
        max_bytes: usize,
    ) -> Result<Vec<Record>, LogError> {
        let (mut index, mut skip) = codec::split_offset(from);
        let mut committed = self.committed.clone();
        loop {
            let end = *committed.borrow_and_update();
            if index < end {
                let raw = self.reader.read_raw(index, end, max_bytes)?;
                // Applied entries are stored here, so a read below the commit point finds some.
                let Some(last) = raw.last().map(|r| r.offset) else {
                    return Err(LogError::Unavailable(format!(
                        "entry {index} is committed but missing"
                    )));
                };
                let mut records = Vec::new();
                for entry in raw {
                    let Some(data) = codec::record(&entry.payload) else {
                        continue;
                    };
                    let batch = codec::decode_batch(&data).map_err(|reason| LogError::Corrupt {
                        offset: entry.offset,
                        path: format!("channel {} raft log", self.channel),
                        reason,
                    })?;
                    // Resuming inside an entry skips the records before the resume point.
                    let first = if entry.offset == index { skip } else { 0 };
                    for (position, payload) in batch.into_iter().enumerate().skip(first) {
                        records.push(Record {
                            offset: codec::offset(entry.offset, position),
                            timestamp_ms: entry.timestamp_ms,
                            payload,
                        });
                    }
                }
                if !records.is_empty() {
                    return Ok(records);
                }
                index = last + 1;
                skip = 0;
                continue;
            }
            if committed.changed().await.is_err() {
                return Err(LogError::Closed);
            }
        }
    }
}

impl Writer {
    /// Gathers queued records into batches and writes them, a few batches at a time. Once
    /// halted, waits for the batches in flight (they give up at once) and ends; records still
    /// queued are answered "halted".
    async fn run(self, mut pending: mpsc::Receiver<Pending>) {
        let slots = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
        let mut halted = self.halted.clone();
        loop {
            // Take a slot first: while all are busy, records pile up into a bigger next batch.
            let first = tokio::select! {
                _ = halted.wait_for(|h| *h) => break,
                taken = async {
                    let slot = slots.clone().acquire_owned().await.ok()?;
                    Some((slot, pending.recv().await?))
                } => taken,
            };
            let Some((slot, first)) = first else {
                break;
            };
            let mut bytes = first.record.len();
            let mut batch = vec![first];
            while batch.len() < codec::MAX_BATCH_RECORDS && bytes < MAX_BATCH_BYTES {
                match pending.try_recv() {
                    Ok(next) => {
                        bytes += next.record.len();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            let writer = self.clone();
            tokio::spawn(async move {
                let records: Vec<Bytes> = batch.iter().map(|p| p.record.clone()).collect();
                let started = tokio::time::Instant::now();
                let result = writer.write(codec::encode_batch(&records)).await;
                match &result {
                    Ok(_) => writer.metrics.committed(started.elapsed()),
                    Err(WriteError::Halted) => {}
                    Err(_) => writer.metrics.proposal_failures.inc(),
                }
                for (position, waiting) in batch.into_iter().enumerate() {
                    let answer = match &result {
                        Ok(index) => Ok(codec::offset(*index, position)),
                        Err(e) => Err(e.clone()),
                    };
                    let _ = waiting.reply.send(answer);
                }
                drop(slot);
            });
        }
        pending.close();
        while let Ok(waiting) = pending.try_recv() {
            let _ = waiting.reply.send(Err(WriteError::Halted));
        }
        // Every slot back: the batches in flight have answered.
        let _all = slots.acquire_many(BATCHES_IN_FLIGHT as u32).await;
    }

    /// Writes one entry through the leader: here if this node leads, else forwarded to it.
    /// Resolves with its Raft index once committed, or fails with the reason it is not.
    async fn write(&self, entry: Bytes) -> Result<u64, WriteError> {
        let deadline = tokio::time::Instant::now() + self.produce_timeout;
        loop {
            if *self.halted.borrow() {
                return Err(WriteError::Halted);
            }
            if *self.quorum_lost.borrow() {
                return Err(self.no_quorum());
            }
            let mut metrics = self.raft.metrics();
            let leader_before = metrics.borrow_and_update().current_leader;
            let attempt = async {
                match self.raft.client_write(entry.clone()).await {
                    Ok(response) => Ok(response.log_id.index),
                    Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                        match forward.leader_node {
                            Some(leader) => self
                                .clients
                                .forward(&leader.addr, &self.channel, entry.clone())
                                .await
                                .map_err(|e| {
                                    if let ForwardError::Unreachable(_) = e {
                                        self.election.leader_unreachable();
                                    }
                                    e.to_string()
                                }),
                            None => Err("no leader is known".to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                }
            };
            // Each attempt is bounded, not only the retries: a forward to a leader that died or
            // was cut off hangs until its connection breaks, and a leader cut off from the
            // majority keeps its role (openraft 0.9 does not step down on losing quorum), so its
            // client_write neither commits nor fails until the partition heals. After about an
            // election the write is retried, through the new leader; and a leader here that loses
            // its quorum gives up at once (see `election`). A batch given up on may still commit:
            // a retried one is then ordered twice, and duplicate suppression drops the repeated
            // envelopes; a given-up one answers SERVICE_UNAVAILABLE, as any lost answer can.
            let attempt_deadline = deadline.min(tokio::time::Instant::now() + self.attempt_timeout);
            let mut quorum_lost = self.quorum_lost.clone();
            let mut halted = self.halted.clone();
            let error = tokio::select! {
                result = tokio::time::timeout_at(attempt_deadline, attempt) => match result {
                    Ok(Ok(offset)) => return Ok(offset),
                    Ok(Err(e)) => e,
                    Err(_) => "no commit within an attempt".to_string(),
                },
                _ = quorum_lost.wait_for(|lost| *lost) => return Err(self.no_quorum()),
                _ = halted.wait_for(|h| *h) => return Err(WriteError::Halted),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(WriteError::NotCommitted(format!(
                    "channel {}: not committed within {:?}: {error}",
                    self.channel, self.produce_timeout
                )));
            }
            // Retry as soon as this node knows another leader (or none, on its way to the next):
            // after a leader dies that is what the write waits for; a short pause otherwise.
            let _ = tokio::time::timeout(
                Duration::from_millis(50),
                metrics.wait_for(|m| m.current_leader != leader_before),
            )
            .await;
        }
    }

    /// Why a leader that has lost its quorum takes no write.
    fn no_quorum(&self) -> WriteError {
        WriteError::NoQuorum(format!(
            "channel {}: this node leads but has no quorum: not acknowledged by a majority \
             within its lease of {:?}",
            self.channel, self.attempt_timeout
        ))
    }

    /// Writes `entry` on this node only (see [`RaftLog::write_forwarded`]).
    async fn write_here(&self, entry: Bytes) -> Result<u64, WriteError> {
        if *self.halted.borrow() {
            return Err(WriteError::Halted);
        }
        if *self.quorum_lost.borrow() {
            return Err(self.no_quorum());
        }
        let mut quorum_lost = self.quorum_lost.clone();
        tokio::select! {
            written = self.raft.client_write(entry) => written
                .map(|w| w.log_id.index)
                .map_err(|e| WriteError::NotCommitted(e.to_string())),
            _ = quorum_lost.wait_for(|lost| *lost) => Err(self.no_quorum()),
        }
    }
}

impl Chain for RaftLog {
    fn kind(&self) -> &'static str {
        "raft"
    }

    fn order(&self, record: Bytes) -> BoxFuture<'_, Result<u64, ChainError>> {
        Box::pin(async move {
            if *self.halted.borrow() {
                return Err(ChainError::Halted);
            }
            let (reply, answer) = oneshot::channel();
            self.queue
                .send(Pending { record, reply })
                .await
                .map_err(|_| ChainError::Halted)?;
            Ok(answer.await.map_err(|_| ChainError::Halted)??)
        })
    }

    fn wait_ready(&self) -> BoxFuture<'_, Result<(), ChainError>> {
        // A follower forwards, and the writer itself waits for a leader (up to the produce
        // timeout); only what fails at once is told here.
        Box::pin(async move {
            if *self.halted.borrow() {
                return Err(ChainError::Halted);
            }
            if *self.writer.quorum_lost.borrow() {
                return Err(self.writer.no_quorum().into());
            }
            Ok(())
        })
    }

    fn errored(&self) -> Option<String> {
        if *self.halted.borrow() {
            return Some("the chain is halted".into());
        }
        // openraft's core stops for good on a storage failure.
        match &self.raft.metrics().borrow().running_state {
            Ok(()) => None,
            Err(fatal) => Some(format!("the raft node stopped: {fatal}")),
        }
    }

    fn halt(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.halted.send_replace(true);
            let batching = self
                .batching
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(batching) = batching {
                let _ = batching.await;
            }
            // Ends the Raft core (and with it the election timer and quorum watch, which end
            // when its metrics do); an already stopped core answers at once.
            if let Err(e) = self.raft.shutdown().await {
                tracing::debug!(channel = %self.channel, error = %e, "raft shutdown");
            }
            self.metrics.forget();
        })
    }

    fn fetch(&self, from: u64, max_bytes: usize) -> BoxFuture<'_, Result<Vec<Record>, ChainError>> {
        Box::pin(async move { Ok(self.committed_records(from, max_bytes).await?) })
    }

    fn local_end(&self) -> u64 {
        codec::offset(self.reader.end(), 0)
    }

    fn block_metadata(&self, last_offset: u64) -> Bytes {
        let (raft_index, position) = codec::split_offset(last_offset);
        let next_consenter_id = self.consenter_ids.iter().max().map_or(1, |&id| id + 1);
        BlockMetadata {
            consenter_ids: self.consenter_ids.clone(),
            next_consenter_id,
            raft_index,
            ordo_position: position as u32,
        }
        .encode_to_vec()
        .into()
    }

    fn resume_after(&self, metadata: &[u8]) -> Option<u64> {
        let metadata = BlockMetadata::decode(metadata).ok()?;
        let position = usize::try_from(metadata.ordo_position).ok()?;
        // Raft indexes start at 1: 0 is what a message of another type decodes to.
        if position >= codec::MAX_BATCH_RECORDS || metadata.raft_index == 0 {
            return None;
        }
        // The next position of the same entry: past its last record, reading skips on to the
        // next entry.
        Some(codec::offset(metadata.raft_index, position) + 1)
    }

    /// `raft_leader`: this node has had no working leader for longer than an election timeout
    /// (as a follower it heard none; as leader no quorum acknowledged it within its lease).
    fn health(&self) -> Option<HealthProblem> {
        // Just opened, it may simply not have heard the leader yet.
        if *self.halted.borrow() || self.opened.elapsed() < self.election_timeout {
            return None;
        }
        let quorum = self.election.quorum();
        (!quorum.ok).then(|| HealthProblem {
            check: "raft_leader",
            reason: format!(
                "no working raft leader for longer than the election timeout of {:?}: {}",
                self.election_timeout, quorum.detail
            ),
        })
    }

    fn consensus_relation(&self) -> crate::metrics::ConsensusRelation {
        use crate::metrics::ConsensusRelation;
        let metrics = self.raft.metrics();
        let voter = metrics
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == self.node_id);
        if voter {
            ConsensusRelation::Consenter
        } else {
            ConsensusRelation::Follower
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::solo::SoloChain;
    use crate::log::Partition;

    #[tokio::test]
    async fn a_single_node_group_orders_resumes_from_its_metadata_and_halts_completely() {
        let dir = tempfile::tempdir().unwrap();
        let timing = Timing {
            heartbeat: Duration::from_millis(50),
            election_min: Duration::from_millis(150),
            election_max: Duration::from_millis(300),
            produce_timeout: Duration::from_secs(20),
        };
        let members = BTreeMap::from([(1, Node::new("127.0.0.1:1"))]);
        let chain = RaftLog::open(
            "ordo",
            dir.path(),
            1,
            PartitionConfig::default(),
            &timing,
            Members {
                bootstrap: Some(members),
                consenter_ids: vec![1],
            },
            ClusterClients::default(),
        )
        .await
        .unwrap();
        let offset = tokio::time::timeout(
            Duration::from_secs(30),
            chain.order(Bytes::from_static(b"a")),
        )
        .await
        .expect("ordered within 30 s")
        .unwrap();
        let (index, position) = codec::split_offset(offset);
        assert!(index > 0 && position == 0, "offset {offset:#x}");
        assert_eq!(
            chain.resume_after(&chain.block_metadata(offset)),
            Some(offset + 1)
        );
        // The last record of a full entry resumes at the next entry.
        let last = codec::offset(index, codec::MAX_BATCH_RECORDS - 1);
        assert_eq!(
            chain.resume_after(&chain.block_metadata(last)),
            Some(codec::offset(index + 1, 0))
        );
        // Solo's metadata is not raft's: a ledger written under one type is refused by the other.
        let partition = Partition::open(&dir.path().join("solo"), PartitionConfig::default());
        let solo = SoloChain::new(partition.unwrap());
        assert_eq!(chain.resume_after(&solo.block_metadata(7)), None);
        assert_eq!(solo.resume_after(&chain.block_metadata(offset)), None);
        solo.halt().await;

        chain.halt().await;
        chain.halt().await;
        assert!(chain.errored().is_some());
        assert!(matches!(chain.wait_ready().await, Err(ChainError::Halted)));
        assert!(matches!(
            chain.order(Bytes::from_static(b"b")).await,
            Err(ChainError::Halted)
        ));
        assert!(chain.batching.lock().unwrap().is_none());
    }
}
