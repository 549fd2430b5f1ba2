//! The client side of Ordo around the pure core: what a node's tools, peer-sim and the tests
//! read from and write to disk: Fabric MSP folders, development crypto (cryptogen), genesis
//! profiles and block files.
//!
//! May not import: the node crate (`ordo-orderer`) or openraft.

pub mod block_file;
pub mod cryptogen;
pub mod msp_dir;
pub mod profile;
