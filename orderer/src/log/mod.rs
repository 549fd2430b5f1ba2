//! A Kafka-like partition log: an append-only sequence of opaque records,
//! each identified by a dense `u64` offset, stored in a directory of segment
//! files.
//!
//! The log knows nothing of what it stores: payloads go in and come out as
//! bytes. Layers, bottom up:
//!
//! * `record`: the framed, CRC32C-checked on-disk record format;
//! * `segment`: one `<base offset>.log` file with its sparse `.index`;
//! * [`SegmentStore`]: the ordered segments of one partition directory, with
//!   crash recovery, rolling and truncation; synchronous, single writer,
//!   concurrent readers through [`StoreReader`];
//! * [`Partition`]: the solo (unreplicated) partition, which group-commits
//!   produces on a dedicated writer thread and exposes only durable records.
//!
//! A replicated mode can later drive a [`SegmentStore`] directly: appends take
//! explicit offsets and [`SegmentStore::truncate_from`] removes a suffix.

mod record;

mod partition;
mod segment;
mod store;

pub use partition::Partition;
pub use record::Record;
pub use store::{PartitionConfig, SegmentStore, StoreReader};

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
