//! Consenter TLS certificates (§7.1): a certificate is accepted when it chains to the TLS roots
//! through the TLS intermediates, allows clientAuth or serverAuth, and expiry is ignored (checked
//! at its NotBefore + 1 s).

use std::sync::Arc;

use super::cert::{self, Cert};
use super::chain::{self, Usages};
use super::error::MspError;
use super::setup::Msp;

impl Msp {
    /// Verifies a TLS certificate (PEM or DER) against this MSP's TLS CAs.
    pub fn verify_tls_cert(&self, pem_or_der: &[u8]) -> Result<(), MspError> {
        verify_tls_cert_in(&[self], pem_or_der)
    }
}

/// Verifies a TLS certificate against the union of several MSPs' TLS CAs, as etcdraft checks a
/// consenter against all orderer orgs.
pub fn verify_tls_cert_in(msps: &[&Msp], pem_or_der: &[u8]) -> Result<(), MspError> {
    let names = msps.iter().map(|m| m.name()).collect::<Vec<_>>().join(",");
    let fail = |subject: String, what: String| MspError::Certificate {
        msp: names.clone(),
        subject,
        what,
    };
    let der = cert::der_from_pem_or_der(pem_or_der)
        .ok_or_else(|| fail("?".into(), "TLS certificate is neither PEM nor DER".into()))?;
    let leaf = Arc::new(Cert::from_der(&der).map_err(|e| fail("?".into(), e))?);
    let roots: Vec<_> = msps
        .iter()
        .flat_map(|m| m.tls_roots.iter().cloned())
        .collect();
    let intermediates: Vec<_> = msps
        .iter()
        .flat_map(|m| m.tls_intermediates.iter().cloned())
        .collect();
    chain::verify(
        &leaf,
        &roots,
        &intermediates,
        leaf.check_time(),
        Usages::ClientOrServer,
    )
    .map(|_| ())
    .map_err(|e| {
        fail(
            leaf.subject.clone(),
            format!("TLS certificate does not verify: {e}"),
        )
    })
}
