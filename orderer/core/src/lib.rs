//! Ordo's pure core: everything about Fabric's messages and the ordering rules that can be
//! decided without a file or a socket, and without the clock except to date a new envelope. The
//! node, peer-sim and the tests share it, so a rule is written once and tested here on its own.
//!
//! Owns: [`envelope`] (building envelopes, and the one decoder of their headers), [`msp`]
//! (Fabric's X.509 MSP: creators, certificate validation, signatures, principals), [`policies`]
//! (signature and implicit-meta policies), [`configtx`] (Fabric's channel configuration: its
//! values, config updates, genesis blocks), [`bundle`] (the configuration in force: who may do
//! what), [`processor`] (every Broadcast admission rule, answered with Fabric statuses),
//! [`entry`] (what a log record means), [`cutter`] and [`assembler`] (log records → batches),
//! [`dedup`] (the tx_id window), [`block`] (hashing and verification), [`writer`] (signed
//! blocks).
//!
//! Errors are typed per layer: [`envelope::HeaderError`], [`msp::IdentityError`],
//! [`msp::MspError`], [`policies::PolicyError`], [`configtx::ConfigTxError`],
//! [`bundle::BundleError`], [`block::VerifyError`], and [`processor::Rejection`] for what a
//! client is answered.
//!
//! May not import: tokio, tonic, files or sockets (`std::fs`, `std::net`), nor any other Ordo
//! crate than `ordo-proto`. Time enters as arguments, except where a client builds an envelope
//! (`envelope::build` stamps it with the clock, as a Fabric SDK does).

pub mod assembler;
pub mod block;
pub mod bundle;
pub mod configtx;
pub mod cutter;
pub mod dedup;
pub mod entry;
pub mod envelope;
pub mod msp;
pub mod policies;
pub mod processor;
pub mod writer;

#[cfg(test)]
pub(crate) mod testing;
