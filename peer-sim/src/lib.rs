//! Simulated Fabric peers: sign and submit envelopes over Broadcast, follow Deliver, verify every
//! block, and account for every acknowledged transaction.

pub mod bench;
pub mod chain;
pub mod client;
pub mod follow;
pub mod load;
pub mod out;
pub mod plot;
pub mod stats;
pub mod submit;

pub use chain::{ChainVerifier, VerifiedBlock};
pub use client::Client;
pub use follow::{Arrival, Delivery, End, Follower};
pub use load::{no_ack, OnAck};
pub use stats::{LatencySummary, Percentiles};
pub use submit::{submit, submit_through, Load, Submitted};
