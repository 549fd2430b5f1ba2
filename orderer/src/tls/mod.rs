//! TLS for every port: PEM files loaded into rustls configurations (ring provider, TLS 1.2 and
//! 1.3) whose certificates, keys and trusted roots can be replaced while the node runs.
//!
//! A [`Credentials`] is one identity (certificate chain and key) with the roots it trusts: the
//! configured files plus the roots of the node's channels. Server and client configs built from
//! it consult its current state at each handshake, so a reload (SIGHUP or a changed file,
//! [`watch`]) applies to new connections without a restart, and a failed reload keeps the old
//! state. [`Dialer`] is the client side, a tonic connector over the same state.

mod credentials;
mod dialer;
mod identity;
mod node_tls;
mod pem;
mod watch;

pub use credentials::{ClientAuth, Credentials, TlsFiles, ALPN_H2};
pub use dialer::{dial, Dialer, CLUSTER_CONNECTION_WINDOW, CLUSTER_STREAM_WINDOW};
pub use identity::{cert_hash, public_key_of_der, public_key_of_pem, PeerCertificates};
pub use node_tls::{
    all_org_roots, orderer_org_roots, ClusterTls, HttpTls, NodeTls, PortTls, Watching,
};
pub use pem::TlsError;
pub use watch::{refresh, watch, RootsSource, RELOAD_POLL};

/// The one crypto provider of the node's TLS.
pub(crate) fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
