//! Fabric's MSP: the X.509 identities of a channel's organisations (`FabricMSPConfig`), how a
//! creator certificate is validated against its organisation's CAs, revocation lists and NodeOUs,
//! how its signatures are checked (ECDSA P-256/P-384 low-S, Ed25519), and whether it satisfies a
//! policy's [`Principal`]. Pure: the configuration arrives as bytes, the clock as an argument.

mod principal;

pub use principal::{Principal, PrincipalError, Role};
