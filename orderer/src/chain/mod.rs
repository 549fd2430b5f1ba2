//! The chain seam (Fabric's consenter/chain): each channel has a chain of the node's consensus
//! type, which owns how the channel's records get their total order — ordering, offsets,
//! membership and shutdown. The consumer, writer, ledger and server only see this interface, so
//! they never know which type runs.
//!
//! - [`solo`]: one node, its local unreplicated [`crate::log::Partition`];
//! - [`raft`]: the log replicated across orderer nodes ([`raft::RaftLog`]).
//!
//! An offset is the type's own business: a dense counter in solo, `raft index << 16 | position`
//! in raft. The consumer only passes it back (to fetch from it, or to record it in a block's
//! consenter metadata, which the type encodes and decodes itself).

pub mod raft;
pub mod solo;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::log::{LogError, Record};

/// Why a chain did not order or read a record.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The chain was halted (the node or the channel is stopping).
    #[error("the chain is halted")]
    Halted,
    /// The record was not committed (no leader, no quorum, a timeout); it may be retried.
    #[error("{0}")]
    NotCommitted(String),
    /// The chain's log failed (an I/O error, a corrupt record).
    #[error(transparent)]
    Log(LogError),
}

impl From<LogError> for ChainError {
    fn from(error: LogError) -> Self {
        match error {
            LogError::Closed => ChainError::Halted,
            error => ChainError::Log(error),
        }
    }
}

/// A health check the chain fails (`/healthz`): which check, and why.
#[derive(Clone, Debug)]
pub struct HealthProblem {
    pub check: &'static str,
    pub reason: String,
}

/// A channel's ordered, committed record stream, as one consensus type provides it.
pub trait Chain: Send + Sync + 'static {
    /// The consensus type's name, for logs and refusals.
    fn kind(&self) -> &'static str;

    /// Orders a record (an envelope, a config update or a time-to-cut: all take the same path,
    /// so there is no separate `configure`); resolves with its offset once it is committed
    /// (durable, acks=all).
    fn order(&self, record: Bytes) -> BoxFuture<'_, Result<u64, ChainError>>;

    /// Resolves once the chain can take a record, or fails with why it cannot (Fabric's
    /// `WaitReady`): halted, or (raft) leading without a quorum.
    fn wait_ready(&self) -> BoxFuture<'_, Result<(), ChainError>>;

    /// Why the chain can no longer order anything, if it cannot (Fabric's `Errored`).
    fn errored(&self) -> Option<String>;

    /// Stops the chain: no record is taken from now on, pending orders fail, and when this
    /// resolves every task and thread of the chain has ended. Idempotent.
    fn halt(&self) -> BoxFuture<'_, ()>;

    /// Committed records from `from`, waiting until there is at least one.
    fn fetch(&self, from: u64, max_bytes: usize) -> BoxFuture<'_, Result<Vec<Record>, ChainError>>;

    /// One past the last record stored on this node (committed or not): a ledger must never be
    /// ahead of it.
    fn local_end(&self) -> u64;

    /// A block's consenter metadata, for a block whose last record is at `last_offset`.
    fn block_metadata(&self, last_offset: u64) -> Bytes;

    /// The offset to resume consuming at after a block with this consenter metadata; `None` if
    /// it is not this type's (unreadable, or written under another type).
    fn resume_after(&self, metadata: &[u8]) -> Option<u64>;

    /// A health check of the type's own that fails now, if one does (besides [`Chain::errored`]).
    fn health(&self) -> Option<HealthProblem> {
        None
    }

    /// This node's part in ordering the channel (Fabric's consensus relation).
    fn consensus_relation(&self) -> crate::metrics::ConsensusRelation {
        crate::metrics::ConsensusRelation::Consenter
    }
}
