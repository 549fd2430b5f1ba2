//! A Kafka-like partition log: an append-only sequence of opaque records,
//! each identified by a dense `u64` offset.
//!
//! The log knows nothing of what it stores: payloads go in and come out as
//! bytes. Its files are a [`crate::store`] (framed, checksummed, rolled,
//! indexed, recovered), shared with the ledger. Layers, bottom up:
//!
//! * `record`: what a record (offset, timestamp, payload) is in a store entry;
//! * [`SegmentStore`]: one partition directory's records; synchronous, single
//!   writer, concurrent readers through [`StoreReader`], and truncation of a
//!   suffix for a replicated log;
//! * [`Partition`]: the solo (unreplicated) partition, which group-commits
//!   produces on a dedicated writer thread and exposes only durable records.
//!
//! Kept here rather than in the store, because the ledger has no use for
//! them: group commit (many appends, one fsync) and the high watermark that
//! hides records not yet durable.

mod record;

mod partition;
mod store;

pub use partition::Partition;
pub use record::Record;
pub use store::{PartitionConfig, SegmentStore, StoreReader, SyncPoint};

/// Errors of the partition log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt record at offset {offset} in {path}: {reason}")]
    Corrupt {
        offset: u64,
        path: String,
        reason: String,
    },
    #[error("offset {requested} is out of range ({start}..{end})")]
    OutOfRange {
        requested: u64,
        start: u64,
        end: u64,
    },
    #[error("the log cannot take records now: {0}")]
    Unavailable(String),
    #[error("the partition is closed")]
    Closed,
}
