//! TLS of the operations port from `[operations.tls]`: the server's certificate and key, and
//! the CAs a client certificate must chain to (required, or verified only when sent).
//!
//! The acceptor is fixed for the life of the node. The TLS module's reloading acceptors (new
//! certificates on SIGHUP or file change) are meant to replace [`acceptor`] here once merged:
//! [`crate::http::serve`] takes any acceptor closure.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::http::TlsAcceptorFn;
use crate::setup::config::OperationsTlsSection;

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = read(path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if certificates.is_empty() {
        anyhow::bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certificates)
}

/// The acceptor closure for `[operations.tls]` (which `NodeConfig::check` has checked to name
/// a certificate and key when enabled).
pub fn acceptor(tls: &OperationsTlsSection) -> anyhow::Result<TlsAcceptorFn> {
    let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else {
        anyhow::bail!("operations.tls.enabled needs operations.tls.cert and .key");
    };
    let chain = certificates(cert)?;
    let key = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = if tls.client_root_cas.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for path in &tls.client_root_cas {
            for ca in certificates(path)? {
                roots
                    .add(ca)
                    .with_context(|| format!("{}: not a usable CA certificate", path.display()))?;
            }
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = if tls.client_auth_required {
            verifier
        } else {
            verifier.allow_unauthenticated()
        };
        builder.with_client_cert_verifier(verifier.build().context("client certificate CAs")?)
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .context("operations.tls.cert and .key do not make a TLS identity")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    Ok(Arc::new(move || acceptor.clone()))
}
