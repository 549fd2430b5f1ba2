//! The Ordo orderer node: Broadcast → processor → chain (log) → consumer → ledger → Deliver.
//!
//! Owns everything with a clock, a file or a socket around the pure rules of `ordo-core`:
//! - storage: [`store`] (numbered entries in framed, checksummed, rolled files with recovery),
//!   under [`log`] (the Kafka-like partition: offsets, group commit; knows nothing of blocks) and
//!   [`ledger`] (blocks by number);
//! - ordering: [`chain`], one chain per channel of the node's consensus type (solo over a local
//!   partition, raft over a replicated one), owning offsets, membership and shutdown;
//! - run time: [`channel`] (the consumer task: log records → `ordo_core::assembler` → signed
//!   blocks → ledger), [`registrar`] (the channels served, added and removed while running),
//!   [`server`] (the gRPC services: Broadcast, Deliver, cluster transport and admin, connection
//!   and stream bounds), [`node`] (start-up in named steps, the one shutdown), [`follow`] (a
//!   channel this node follows: blocks pulled from its consenters, checked, stored as they came);
//! - setup and admin: [`setup`] (`setup::config`: `orderer.toml`; `setup::dev`: a one-node
//!   development layout), [`status`] (`orderer admin status`), [`tls`] (reloadable TLS
//!   identities for every port, and the dialer of other orderers);
//! - operating: [`http`] (serving an HTTP router: TLS, bounds, request ids, graceful stop),
//!   [`operations`] (`/healthz`, `/metrics`, `/logspec`, `/version`), [`metrics`] (the
//!   Prometheus metrics and the handles the hot paths count through).
//!
//! May import: `ordo-core` for every rule about messages, identities, policies and blocks (none
//! is written twice here), `ordo-client` for MSP folders, development crypto, profiles and block files, `ordo-proto`.
//! Nothing here is imported by `ordo-core`, `ordo-client` or peer-sim.

pub mod chain;
pub mod channel;
pub mod follow;
pub mod http;
pub mod ledger;
pub mod log;
pub mod metrics;
pub mod node;
pub mod operations;
pub mod participation;
pub mod registrar;
pub mod server;
pub mod setup;
pub mod status;
pub mod store;
pub mod tls;
