//! Fabric's MSP: the X.509 identities of a channel's organisations (`FabricMSPConfig`), how a
//! creator certificate is validated against its organisation's CAs, revocation lists and NodeOUs,
//! how its signatures are checked (ECDSA P-256/P-384 low-S, Ed25519), and whether it satisfies a
//! policy's [`Principal`]. Pure: the configuration arrives as bytes, the clock as an argument.
//!
//! [`MspManager`] holds a channel's [`Msp`]s and deserialises creators into [`Identity`]s;
//! [`SigningIdentity`] is a node's or client's own key.

mod cert;
mod chain;
mod crl;
mod der;
mod error;
mod hash;
mod identity;
mod manager;
mod principal;
mod sanitize;
mod satisfy;
mod setup;
mod signature;
mod signer;
mod tls;
mod validate;
mod version;

pub use error::{IdentityError, MspError};
pub use identity::{Identity, IdentityOu};
pub use manager::MspManager;
pub use principal::{Principal, PrincipalError, Role};
pub use setup::Msp;
pub use signer::SigningIdentity;
pub use tls::verify_tls_cert_in;
pub use version::MspVersion;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
