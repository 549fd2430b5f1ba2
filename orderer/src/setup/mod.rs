//! What a node needs before it runs: its configuration file (`orderer.toml`, and the channel
//! file `orderer genesis` reads), its `ORDO_` environment overrides, and the one-node
//! development layout.

pub mod config;
pub mod dev;
pub mod env;
