//! The Ordo orderer: Broadcast → log → block cutter → block writer → ledger → Deliver.
//!
//! Layers, bottom up:
//! - [`log`]: the Kafka-like partition (segments, offsets, group commit). Knows nothing of blocks.
//! - [`chain`]: how a channel's records are ordered, one chain per channel of the node's
//!   consensus type (solo: a local partition; raft: a replicated one).
//! - pure logic: [`cutter`] (batch size rules), [`assembler`] (log records → batches, time-to-cut,
//!   config), [`block`] (hashing, verification), [`writer`] (signed blocks), [`validate`] and
//!   [`policy`] (envelope checks, who may do what), [`entry`] (what a log record means).
//! - storage: [`ledger`] (block files + index).
//! - run time: [`channel`] (consumer task), [`registrar`] (the channels served), [`server`]
//!   (Broadcast, Deliver, the cluster transport), [`node`] (start-up in named steps, shutdown).
//! - admin: [`status`] (`orderer admin status` as JSON or a table).
//! - setup: [`config`], [`genesis`], [`dev`], [`identity`], [`envelope`] (client-side building).

pub mod chain;
pub mod channel;
pub mod config;
pub mod dev;
pub mod durable;
pub mod ledger;
pub mod log;
pub mod node;
pub mod registrar;
pub mod server;
pub mod status;
pub mod store;
