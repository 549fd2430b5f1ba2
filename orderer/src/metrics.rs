//! The node's Prometheus metrics: what they are called, and the handles the hot paths count
//! through.
//!
//! Names: a metric Fabric's orderer also has keeps Fabric's name and labels
//! (`broadcast_processed_count{channel,type,status}`, `deliver_blocks_sent`,
//! `consensus_etcdraft_is_leader`, `ledger_blockchain_height`, ...), so dashboards made for
//! Fabric work unchanged; a metric only Ordo has is prefixed `ordo_`. Durations are in seconds,
//! sizes in bytes. The process collector adds `process_*` (CPU, resident memory, open and
//! maximum descriptors, threads, start time). README.md, "Operations", lists them all.
//!
//! The hot path takes no lock: a channel's labelled children are resolved once, when the channel
//! opens ([`ChannelMetrics`], [`RaftMetrics`]), and kept; counters, gauges and histograms are
//! atomics. The Broadcast status children, of which a channel only ever sees a few, are resolved
//! on first use (one lock, once) and kept in `OnceLock` slots. A client cannot add series: an
//! envelope naming a channel this node does not serve is counted under `channel=""`.
//!
//! One process is one node, so the registry is process-wide ([`global`]): every part of the
//! node reaches it without a handle threaded through its constructors.

use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use ordo_proto::common::{HeaderType, Status};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Buckets of the latency histograms: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Fabric's buckets for `ledger_blockstorage_commit_time`.
const COMMIT_TIME_BUCKETS: &[f64] = &[0.005, 0.01, 0.015, 0.05, 0.1, 1.0, 10.0];
/// Block sizes: 1 KiB to 64 MiB, by fours.
const BLOCK_BYTES_BUCKETS: &[f64] = &[
    1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0, 67108864.0,
];

/// Every metric family of the node.
pub struct Metrics {
    registry: Registry,
    // Broadcast.
    broadcast_processed: IntCounterVec,
    broadcast_duration: HistogramVec,
    // Deliver.
    deliver_streams_opened: IntCounter,
    deliver_streams_closed: IntCounter,
    deliver_requests_received: IntCounterVec,
    deliver_requests_completed: IntCounterVec,
    deliver_blocks_sent: IntCounterVec,
    deliver_block_duration: HistogramVec,
    open_broadcast_streams: IntGauge,
    open_deliver_streams: IntGauge,
    // Blocks and ledger.
    blocks_ordered: IntCounterVec,
    transactions_ordered: IntCounterVec,
    block_bytes: HistogramVec,
    blockchain_height: IntGaugeVec,
    blockstorage_commit_time: HistogramVec,
    log_bytes: IntGaugeVec,
    ledger_bytes: IntGaugeVec,
    participation_status: IntGaugeVec,
    consensus_relation: IntGaugeVec,
    // Raft.
    raft_cluster_size: IntGaugeVec,
    raft_is_leader: IntGaugeVec,
    raft_leader_changes: IntCounterVec,
    raft_committed_block_number: IntGaugeVec,
    raft_proposal_failures: IntCounterVec,
    raft_commit_duration: HistogramVec,
    /// The Broadcast children of envelopes naming no channel served here.
    unknown_channel: OnceLock<Arc<BroadcastCounters>>,
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

// The constructors below fail only for an invalid or repeated metric name or label; all are
// constants of this file, so a failure is a bug found by the first test that runs.
fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help).expect("a valid metric name");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

fn counters(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric name");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

fn gauges(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid metric name");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

fn histograms(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let metric = HistogramVec::new(opts, labels).expect("a valid metric name");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

const CHANNEL: &[&str] = &["channel"];
/// Fabric's Deliver labels; an orderer serves whole blocks, unfiltered.
const DELIVER: &[&str] = &["channel", "filtered", "data_type"];
const DELIVER_FILTERED: &str = "false";
const DELIVER_DATA_TYPE: &str = "block";

impl Metrics {
    /// A fresh set of families on a registry of its own (with the process collector).
    pub fn new() -> Metrics {
        let r = Registry::new();
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("the process collector registers once");
        let version = gauges(
            &r,
            "ordo_version",
            "The version of this node: 1, with the version as a label.",
            &["version"],
        );
        version
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let open_streams = gauges(
            &r,
            "ordo_open_streams",
            "gRPC streams open now, by service (broadcast, deliver).",
            &["service"],
        );
        Metrics {
            open_broadcast_streams: open_streams.with_label_values(&["broadcast"]),
            open_deliver_streams: open_streams.with_label_values(&["deliver"]),
            broadcast_processed: counters(
                &r,
                "broadcast_processed_count",
                "The number of transactions processed.",
                &["channel", "type", "status"],
            ),
            broadcast_duration: histograms(
                &r,
                "ordo_broadcast_duration_seconds",
                "From an envelope's arrival to its answer (committed or refused), in seconds.",
                CHANNEL,
                LATENCY_BUCKETS,
            ),
            deliver_streams_opened: counter(
                &r,
                "deliver_streams_opened",
                "The number of GRPC streams that have been opened for the deliver service.",
            ),
            deliver_streams_closed: counter(
                &r,
                "deliver_streams_closed",
                "The number of GRPC streams that have been closed for the deliver service.",
            ),
            deliver_requests_received: counters(
                &r,
                "deliver_requests_received",
                "The number of deliver requests that have been received.",
                DELIVER,
            ),
            deliver_requests_completed: counters(
                &r,
                "deliver_requests_completed",
                "The number of deliver requests that have been completed.",
                &["channel", "filtered", "data_type", "success"],
            ),
            deliver_blocks_sent: counters(
                &r,
                "deliver_blocks_sent",
                "The number of blocks sent by the deliver service.",
                DELIVER,
            ),
            deliver_block_duration: histograms(
                &r,
                "ordo_deliver_block_duration_seconds",
                "Reading a block from the ledger and queueing it on a Deliver stream (waiting \
                 for room while the reader is slow), in seconds.",
                CHANNEL,
                LATENCY_BUCKETS,
            ),
            blocks_ordered: counters(
                &r,
                "ordo_blocks_ordered",
                "Blocks cut and written to the ledger since the process started.",
                CHANNEL,
            ),
            transactions_ordered: counters(
                &r,
                "ordo_transactions_ordered",
                "Envelopes (transactions and config) in the blocks written since the process \
                 started.",
                CHANNEL,
            ),
            block_bytes: histograms(
                &r,
                "ordo_block_size_bytes",
                "Size of each block written, in bytes.",
                CHANNEL,
                BLOCK_BYTES_BUCKETS,
            ),
            blockchain_height: gauges(
                &r,
                "ledger_blockchain_height",
                "Height of the chain in blocks.",
                CHANNEL,
            ),
            blockstorage_commit_time: histograms(
                &r,
                "ledger_blockstorage_commit_time",
                "Time taken in seconds for committing the block to storage.",
                CHANNEL,
                COMMIT_TIME_BUCKETS,
            ),
            log_bytes: gauges(
                &r,
                "ordo_log_bytes",
                "Bytes of the channel's log (its files on disk), as of the last scrape.",
                CHANNEL,
            ),
            ledger_bytes: gauges(
                &r,
                "ordo_ledger_bytes",
                "Bytes of the channel's ledger (its files on disk), as of the last scrape.",
                CHANNEL,
            ),
            participation_status: gauges(
                &r,
                "participation_status",
                "The channel participation status of the node: 0 if inactive, 1 if active, 2 \
                 if onboarding, 3 if failed.",
                CHANNEL,
            ),
            consensus_relation: gauges(
                &r,
                "participation_consensus_relation",
                "The channel participation consensus relation of the node: 0 if other, 1 if \
                 consenter, 2 if follower, 3 if config-tracker.",
                CHANNEL,
            ),
            raft_cluster_size: gauges(
                &r,
                "consensus_etcdraft_cluster_size",
                "Number of nodes in this channel.",
                CHANNEL,
            ),
            raft_is_leader: gauges(
                &r,
                "consensus_etcdraft_is_leader",
                "The leadership status of the current node: 1 if it is the leader else 0.",
                CHANNEL,
            ),
            raft_leader_changes: counters(
                &r,
                "consensus_etcdraft_leader_changes",
                "The number of leader changes since process start.",
                CHANNEL,
            ),
            raft_committed_block_number: gauges(
                &r,
                "consensus_etcdraft_committed_block_number",
                "The block number of the latest block committed.",
                CHANNEL,
            ),
            raft_proposal_failures: counters(
                &r,
                "consensus_etcdraft_proposal_failures",
                "The number of proposal failures.",
                CHANNEL,
            ),
            raft_commit_duration: histograms(
                &r,
                "ordo_raft_commit_duration_seconds",
                "From a batch of records handed to Raft to its commit by a majority, in seconds.",
                CHANNEL,
                LATENCY_BUCKETS,
            ),
            unknown_channel: OnceLock::new(),
            registry: r,
        }
    }

    /// Every metric in Prometheus' text exposition format (version 0.0.4).
    pub fn text(&self) -> String {
        let families = self.registry.gather();
        let mut out = Vec::new();
        // Writing into a Vec fails only on a family the encoder cannot express, which the
        // constructors above do not make.
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// The handles of channel `channel` of consensus type `kind` ("solo", "raft").
    pub fn channel(&self, channel: &str, kind: &str) -> ChannelMetrics {
        let child = |vec: &IntCounterVec| vec.with_label_values(&[channel]);
        let gauge = |vec: &IntGaugeVec| vec.with_label_values(&[channel]);
        let histogram = |vec: &HistogramVec| vec.with_label_values(&[channel]);
        let deliver = &[channel, DELIVER_FILTERED, DELIVER_DATA_TYPE];
        ChannelMetrics {
            channel: channel.to_string(),
            broadcast: Arc::new(BroadcastCounters::new(channel)),
            broadcast_duration: histogram(&self.broadcast_duration),
            deliver: DeliverCounters::new(self, channel),
            deliver_blocks_sent: self.deliver_blocks_sent.with_label_values(deliver),
            deliver_block_duration: histogram(&self.deliver_block_duration),
            blocks_ordered: child(&self.blocks_ordered),
            transactions_ordered: child(&self.transactions_ordered),
            block_bytes: histogram(&self.block_bytes),
            height: gauge(&self.blockchain_height),
            commit_time: histogram(&self.blockstorage_commit_time),
            log_bytes: gauge(&self.log_bytes),
            ledger_bytes: gauge(&self.ledger_bytes),
            status: gauge(&self.participation_status),
            relation: gauge(&self.consensus_relation),
            committed_block_number: (kind == "raft")
                .then(|| gauge(&self.raft_committed_block_number)),
        }
    }

    /// The handles of the raft group of channel `channel`.
    pub fn raft(&self, channel: &str) -> RaftMetrics {
        RaftMetrics {
            channel: channel.to_string(),
            cluster_size: self.raft_cluster_size.with_label_values(&[channel]),
            is_leader: self.raft_is_leader.with_label_values(&[channel]),
            leader_changes: self.raft_leader_changes.with_label_values(&[channel]),
            proposal_failures: self.raft_proposal_failures.with_label_values(&[channel]),
            commit_duration: self.raft_commit_duration.with_label_values(&[channel]),
        }
    }

    /// The Broadcast counters of envelopes that name no channel served here, or none at all.
    pub fn unknown_channel(&self) -> Arc<BroadcastCounters> {
        self.unknown_channel
            .get_or_init(|| Arc::new(BroadcastCounters::new("")))
            .clone()
    }

    /// Deliver requests for a channel not served here.
    pub fn deliver_unknown_channel(&self) -> DeliverCounters {
        DeliverCounters::new(self, "")
    }

    /// A Deliver stream opened; the guard counts it open until dropped.
    pub fn deliver_stream(&self) -> StreamGuard {
        self.deliver_streams_opened.inc();
        StreamGuard::open(
            self.open_deliver_streams.clone(),
            Some(self.deliver_streams_closed.clone()),
        )
    }

    /// A Broadcast stream opened; the guard counts it open until dropped.
    pub fn broadcast_stream(&self) -> StreamGuard {
        StreamGuard::open(self.open_broadcast_streams.clone(), None)
    }

    /// Drops every series of channel `channel` (it stopped being served here): a removed
    /// channel leaves nothing behind, and one joined again under the name starts afresh.
    fn forget_channel(&self, channel: &str, broadcast: &BroadcastCounters) {
        let labels = [channel];
        for vec in [
            &self.broadcast_duration,
            &self.deliver_block_duration,
            &self.block_bytes,
            &self.blockstorage_commit_time,
        ] {
            let _ = vec.remove_label_values(&labels);
        }
        for vec in [&self.blocks_ordered, &self.transactions_ordered] {
            let _ = vec.remove_label_values(&labels);
        }
        for vec in [
            &self.blockchain_height,
            &self.log_bytes,
            &self.ledger_bytes,
            &self.participation_status,
            &self.consensus_relation,
            &self.raft_committed_block_number,
        ] {
            let _ = vec.remove_label_values(&labels);
        }
        let deliver = [channel, DELIVER_FILTERED, DELIVER_DATA_TYPE];
        let _ = self.deliver_requests_received.remove_label_values(&deliver);
        let _ = self.deliver_blocks_sent.remove_label_values(&deliver);
        for success in ["true", "false"] {
            let _ = self.deliver_requests_completed.remove_label_values(&[
                channel,
                DELIVER_FILTERED,
                DELIVER_DATA_TYPE,
                success,
            ]);
        }
        for (t, kind) in TYPES.iter().enumerate() {
            for (s, status) in STATUSES.iter().enumerate() {
                if broadcast.slots[t][s].get().is_some() {
                    let _ = self
                        .broadcast_processed
                        .remove_label_values(&[channel, kind, status]);
                }
            }
        }
    }

    fn forget_raft(&self, channel: &str) {
        let _ = self.raft_cluster_size.remove_label_values(&[channel]);
        let _ = self.raft_is_leader.remove_label_values(&[channel]);
        let _ = self.raft_leader_changes.remove_label_values(&[channel]);
        let _ = self.raft_proposal_failures.remove_label_values(&[channel]);
        let _ = self.raft_commit_duration.remove_label_values(&[channel]);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Fabric's `type` label values: the header types an envelope can carry, then "" for an
/// envelope whose header could not be read or names another type.
const TYPES: [&str; 8] = [
    "MESSAGE",
    "CONFIG",
    "CONFIG_UPDATE",
    "ENDORSER_TRANSACTION",
    "ORDERER_TRANSACTION",
    "DELIVER_SEEK_INFO",
    "CHAINCODE_PACKAGE",
    "",
];
const STATUSES: [&str; 9] = [
    "SUCCESS",
    "BAD_REQUEST",
    "FORBIDDEN",
    "NOT_FOUND",
    "REQUEST_ENTITY_TOO_LARGE",
    "INTERNAL_SERVER_ERROR",
    "NOT_IMPLEMENTED",
    "SERVICE_UNAVAILABLE",
    "UNKNOWN",
];

fn type_slot(header_type: Option<i32>) -> usize {
    match header_type.and_then(|t| HeaderType::try_from(t).ok()) {
        Some(t) => (t as usize).min(TYPES.len() - 1),
        None => TYPES.len() - 1,
    }
}

fn status_slot(status: Status) -> usize {
    match status {
        Status::Success => 0,
        Status::BadRequest => 1,
        Status::Forbidden => 2,
        Status::NotFound => 3,
        Status::RequestEntityTooLarge => 4,
        Status::InternalServerError => 5,
        Status::NotImplemented => 6,
        Status::ServiceUnavailable => 7,
        Status::Unknown => 8,
    }
}

/// One channel's `broadcast_processed_count` children, resolved on first use.
pub struct BroadcastCounters {
    channel: String,
    slots: [[OnceLock<IntCounter>; STATUSES.len()]; TYPES.len()],
}

impl BroadcastCounters {
    fn new(channel: &str) -> BroadcastCounters {
        BroadcastCounters {
            channel: channel.to_string(),
            slots: Default::default(),
        }
    }

    /// Counts one envelope answered `status`; `header_type` is its header's, if readable.
    pub fn processed(&self, header_type: Option<i32>, status: Status) {
        let (t, s) = (type_slot(header_type), status_slot(status));
        self.slots[t][s]
            .get_or_init(|| {
                global().broadcast_processed.with_label_values(&[
                    self.channel.as_str(),
                    TYPES[t],
                    STATUSES[s],
                ])
            })
            .inc();
    }
}

/// One channel's Deliver request counters.
#[derive(Clone)]
pub struct DeliverCounters {
    received: IntCounter,
    succeeded: IntCounter,
    failed: IntCounter,
}

impl DeliverCounters {
    fn new(metrics: &Metrics, channel: &str) -> DeliverCounters {
        let completed = |success: &str| {
            metrics.deliver_requests_completed.with_label_values(&[
                channel,
                DELIVER_FILTERED,
                DELIVER_DATA_TYPE,
                success,
            ])
        };
        DeliverCounters {
            received: metrics.deliver_requests_received.with_label_values(&[
                channel,
                DELIVER_FILTERED,
                DELIVER_DATA_TYPE,
            ]),
            succeeded: completed("true"),
            failed: completed("false"),
        }
    }

    pub fn received(&self) {
        self.received.inc();
    }

    pub fn completed(&self, success: bool) {
        if success {
            self.succeeded.inc();
        } else {
            self.failed.inc();
        }
    }
}

/// Fabric's participation status values.
#[derive(Clone, Copy, Debug)]
pub enum ParticipationStatus {
    Inactive = 0,
    Active = 1,
    Onboarding = 2,
    Failed = 3,
}

/// Fabric's consensus relation values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsensusRelation {
    Other = 0,
    Consenter = 1,
    Follower = 2,
    ConfigTracker = 3,
}

impl ConsensusRelation {
    /// The name the participation API reports (`consensusRelation`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConsensusRelation::Other => "other",
            ConsensusRelation::Consenter => "consenter",
            ConsensusRelation::Follower => "follower",
            ConsensusRelation::ConfigTracker => "config-tracker",
        }
    }
}

/// The handles of one channel, resolved when it opens.
pub struct ChannelMetrics {
    channel: String,
    pub broadcast: Arc<BroadcastCounters>,
    broadcast_duration: Histogram,
    pub deliver: DeliverCounters,
    deliver_blocks_sent: IntCounter,
    deliver_block_duration: Histogram,
    blocks_ordered: IntCounter,
    transactions_ordered: IntCounter,
    block_bytes: Histogram,
    height: IntGauge,
    commit_time: Histogram,
    log_bytes: IntGauge,
    ledger_bytes: IntGauge,
    status: IntGauge,
    relation: IntGauge,
    committed_block_number: Option<IntGauge>,
}

impl ChannelMetrics {
    /// An envelope admitted to the channel was answered `status` after `took`.
    pub fn broadcast_answered(&self, header_type: i32, status: Status, took: Duration) {
        self.broadcast.processed(Some(header_type), status);
        self.broadcast_duration.observe(took.as_secs_f64());
    }

    /// A block was queued on a Deliver stream, `took` after it was asked of the ledger.
    pub fn block_sent(&self, took: Duration) {
        self.deliver_blocks_sent.inc();
        self.deliver_block_duration.observe(took.as_secs_f64());
    }

    /// Block `number`, of `transactions` envelopes and `bytes` bytes, was written to the ledger
    /// in `took`.
    pub fn block_written(&self, number: u64, transactions: usize, bytes: usize, took: Duration) {
        self.blocks_ordered.inc();
        self.transactions_ordered.inc_by(transactions as u64);
        self.block_bytes.observe(bytes as f64);
        self.commit_time.observe(took.as_secs_f64());
        self.set_height(number + 1);
    }

    pub fn set_height(&self, height: u64) {
        self.height.set(clamp(height));
        if let Some(committed) = &self.committed_block_number {
            committed.set(clamp(height.saturating_sub(1)));
        }
    }

    pub fn set_storage_bytes(&self, log: u64, ledger: u64) {
        self.log_bytes.set(clamp(log));
        self.ledger_bytes.set(clamp(ledger));
    }

    pub fn set_participation(&self, status: ParticipationStatus, relation: ConsensusRelation) {
        self.status.set(status as i64);
        self.relation.set(relation as i64);
    }

    pub fn set_status(&self, status: ParticipationStatus) {
        self.status.set(status as i64);
    }

    /// Drops the channel's series (see [`Metrics::forget_channel`]).
    pub fn forget(&self) {
        global().forget_channel(&self.channel, &self.broadcast);
    }
}

/// The handles of one channel's raft group.
pub struct RaftMetrics {
    channel: String,
    pub cluster_size: IntGauge,
    pub is_leader: IntGauge,
    pub leader_changes: IntCounter,
    pub proposal_failures: IntCounter,
    commit_duration: Histogram,
}

impl RaftMetrics {
    /// A batch was committed `took` after it was handed to Raft.
    pub fn committed(&self, took: Duration) {
        self.commit_duration.observe(took.as_secs_f64());
    }

    pub fn forget(&self) {
        global().forget_raft(&self.channel);
    }
}

/// A stream counted open for as long as this lives.
pub struct StreamGuard {
    open: IntGauge,
    closed: Option<IntCounter>,
}

impl StreamGuard {
    fn open(open: IntGauge, closed: Option<IntCounter>) -> StreamGuard {
        open.inc();
        StreamGuard { open, closed }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.open.dec();
        if let Some(closed) = &self.closed {
            closed.inc();
        }
    }
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_counts_into_its_labels_and_forgets_them() {
        let metrics = global();
        let channel = metrics.channel("metrics-test", "raft");
        channel.block_written(4, 10, 2048, Duration::from_millis(2));
        channel.broadcast_answered(
            HeaderType::EndorserTransaction as i32,
            Status::Success,
            Duration::from_millis(3),
        );
        channel.broadcast.processed(None, Status::BadRequest);
        metrics
            .unknown_channel()
            .processed(Some(3), Status::NotFound);
        let text = metrics.text();
        for line in [
            "ordo_transactions_ordered{channel=\"metrics-test\"} 10",
            "ledger_blockchain_height{channel=\"metrics-test\"} 5",
            "consensus_etcdraft_committed_block_number{channel=\"metrics-test\"} 4",
            "broadcast_processed_count{channel=\"metrics-test\",status=\"SUCCESS\",type=\"ENDORSER_TRANSACTION\"} 1",
            "broadcast_processed_count{channel=\"metrics-test\",status=\"BAD_REQUEST\",type=\"\"} 1",
            "broadcast_processed_count{channel=\"\",status=\"NOT_FOUND\",type=\"ENDORSER_TRANSACTION\"}",
            "ordo_broadcast_duration_seconds_count{channel=\"metrics-test\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(text.contains("process_resident_memory_bytes"));
        channel.forget();
        assert!(!metrics.text().contains("\"metrics-test\""));
    }

    #[test]
    fn stream_guards_count_open_streams() {
        // A registry of its own: other tests open streams on the global one meanwhile.
        let metrics = Metrics::new();
        let open = || metrics.open_deliver_streams.get();
        let guard = metrics.deliver_stream();
        assert_eq!(open(), 1);
        drop(guard);
        assert_eq!(open(), 0);
        assert_eq!(metrics.deliver_streams_closed.get(), 1);
    }
}
