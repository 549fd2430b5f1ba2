//! Ordo's pure core: everything about Fabric's messages and the ordering rules that can be
//! decided without a clock, a file or a socket. The node, peer-sim and the tests share it, so a
//! rule is written once and tested here on its own.
//!
//! Owns: [`envelope`] (building and decoding envelope headers, tx_id), [`identity`] (creators
//! and signers), [`policy`] (a channel's configuration in force and who may do what),
//! [`validate`] (the Broadcast checks, answered with Fabric statuses), [`entry`] (what a log
//! record means), [`cutter`] and [`assembler`] (log records → batches), [`dedup`] (the tx_id
//! window), [`block`] (hashing and verification), [`writer`] (signed blocks), [`genesis`].
//!
//! May not import: tokio, tonic, files or sockets (`std::fs`, `std::net`), nor any other Ordo
//! crate than `ordo-proto`. Time enters as arguments.

pub mod assembler;
pub mod block;
pub mod cutter;
pub mod dedup;
pub mod entry;
pub mod envelope;
pub mod genesis;
pub mod identity;
pub mod policy;
pub mod validate;
pub mod writer;
