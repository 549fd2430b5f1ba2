//! A store: numbered, opaque entries in framed, checksummed, rolled files with a sparse index
//! and crash recovery. The log (records by offset, whose uncommitted tail Raft may cut) and the
//! ledger (blocks by number, append only) both keep their data in one; the store knows nothing
//! of what an entry means.
//!
//! Layers, bottom up:
//!
//! * `frame`: the on-disk frame (length, CRC32C, entry number, body);
//! * `segment`: one data file of frames, named after its first entry's number, with its sparse
//!   `.index` and the scan that reads it back; `segment::recovery` decides what a bad frame found
//!   at open is (torn tail or damage);
//! * `files` ([`Store`], [`Reader`]): the ordered segments of one directory: open and recover,
//!   append, sync, roll, truncate; one writer, concurrent readers;
//! * `durable`: directory fsyncs and the copy of a torn tail made before it is cut;
//! * `tail` ([`Tail`]): the newest entries in memory, for the reads that follow an append.
//!
//! Recovery rules (the same for every user):
//! * a segment is fsynced (data and index) before the next one is created, so every segment but
//!   the last is complete on disk: such a *sealed* segment is never cut, and a bad frame found in
//!   one at open is a refusal;
//! * only the last segment can have a torn tail (an incomplete or unsynced last write): a bad
//!   frame there with nothing whole and valid after it. Its bytes are first copied, durably, to
//!   `<file>.torn-<byte>` beside it, then cut off;
//! * a bad frame followed by a whole, valid one is damage to acknowledged data: the open fails
//!   with [`StoreError::Corrupt`], naming the file and byte, and no file is changed (an index
//!   the open rebuilt is written only once the whole open succeeded).
//!
//! Cost: the last segment is read whole at open; a sealed one only from its last index entry on
//! (to check it ends where the next begins), or whole if its index must be rebuilt, so restart
//! time does not grow with the data kept. Damage elsewhere in a sealed segment shows on the read
//! that reaches it, as [`StoreError::Corrupt`], never as a skipped entry.
//!
//! What stays with the users: when to fsync (the log group-commits, the ledger syncs each block),
//! what a reader may see (the log's high watermark, the ledger's height), and what an entry holds.

mod durable;
mod files;
mod frame;
mod segment;
mod tail;

pub use files::{Reader, Store, SyncPoint};
pub use frame::{encode, frame_len_for, Entry, FRAME_OVERHEAD};
pub use tail::{Numbered, Tail};

/// How a store's files are named, and what its entries are called in messages.
#[derive(Clone, Copy, Debug)]
pub struct Names {
    /// Starts every data and index file name (`blocks_`), possibly empty.
    pub prefix: &'static str,
    /// Ends data file names (`.log`).
    pub data_suffix: &'static str,
    /// Ends index file names (`.index`).
    pub index_suffix: &'static str,
    /// What one entry is, for refusals ("record", "block").
    pub noun: &'static str,
}

/// Sizing and naming of a store's files.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub names: Names,
    /// A new segment is started when appending would grow the active one past this many bytes
    /// (a single larger entry gets a segment alone).
    pub segment_bytes: u64,
    /// Bytes of data between two sparse index entries.
    pub index_interval_bytes: u32,
}

/// Errors of a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Damage: what is on disk is not what was acknowledged. `number` is the entry where it was
    /// found (or that is missing), `position` the byte of `path` where it starts.
    #[error("corrupt entry {number} in {path} at byte {position}: {reason}")]
    Corrupt {
        number: u64,
        path: String,
        position: u64,
        reason: String,
    },
    #[error("entry {requested} is out of range ({start}..{end})")]
    OutOfRange {
        requested: u64,
        start: u64,
        end: u64,
    },
}
