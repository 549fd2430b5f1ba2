//! Consensus types: how a channel's records get their total order. Every type offers the same
//! produce/fetch interface, so the cutter, writer, ledger and server never know which one runs.
//!
//! - solo: one node, its local unreplicated [`Partition`];
//! - raft: the partition replicated across orderer nodes ([`crate::raft::RaftLog`]).

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::log::{LogError, Partition, Record};

/// A channel's ordered, committed record stream.
pub trait OrderedLog: Send + Sync + 'static {
    /// Appends a record; resolves with its offset once it is committed (durable, acks=all).
    fn produce(&self, record: Bytes) -> BoxFuture<'_, Result<u64, LogError>>;
    /// Committed records from `from`, waiting until there is at least one.
    fn fetch(&self, from: u64, max_bytes: usize) -> BoxFuture<'_, Result<Vec<Record>, LogError>>;
    /// One past the last record stored on this node (committed or not): a ledger must never be
    /// ahead of it.
    fn local_end(&self) -> u64;
    /// Stops the log; pending produces fail.
    fn close(&self);
}

impl OrderedLog for Partition {
    fn produce(&self, record: Bytes) -> BoxFuture<'_, Result<u64, LogError>> {
        Box::pin(Partition::produce(self, record))
    }

    fn fetch(&self, from: u64, max_bytes: usize) -> BoxFuture<'_, Result<Vec<Record>, LogError>> {
        Box::pin(Partition::fetch(self, from, max_bytes))
    }

    fn local_end(&self) -> u64 {
        Partition::high_watermark(self)
    }

    fn close(&self) {
        Partition::close(self)
    }
}
