//! Sanitising (§3.4): an ECDSA-signed certificate is re-encoded with the low-S form of its
//! signature (S measured against the order of the *parent's* curve), so identity IDs, admin
//! comparisons and serialisation are the same for both encodings of one signature.

use std::sync::Arc;

use super::cert::{Cert, PublicKey};
use super::chain::Usages;
use super::der;
use super::error::MspError;
use super::setup::Msp;
use super::signature::normalise_low_s;

impl Msp {
    /// The sanitised DER of a certificate (DER, or PEM whose first block is used).
    pub fn sanitize(&self, cert_der: &[u8]) -> Result<Vec<u8>, MspError> {
        let der =
            super::cert::der_from_pem_or_der(cert_der).ok_or_else(|| MspError::Certificate {
                msp: self.name.clone(),
                subject: "?".into(),
                what: "neither PEM nor DER".into(),
            })?;
        let cert = Cert::from_der(&der).map_err(|what| MspError::Certificate {
            msp: self.name.clone(),
            subject: "?".into(),
            what,
        })?;
        self.sanitize_cert(&cert)
            .map(|c| c.der)
            .map_err(|what| MspError::Certificate {
                msp: self.name.clone(),
                subject: cert.subject.clone(),
                what,
            })
    }

    /// Fabric's `sanitizeCert`: the parent is the certificate itself for a self-signed CA (which
    /// must then chain to itself), else chain[1] of its unique chain in this MSP.
    pub(crate) fn sanitize_cert(&self, cert: &Cert) -> Result<Cert, String> {
        if !cert.sig_alg.is_ecdsa() {
            return Ok(cert.clone());
        }
        if cert.is_ca() && cert.signed_by(&cert.key).is_ok() {
            let sanitised = Arc::new(resign(cert, &cert.key)?);
            self.unique_chain(
                &sanitised,
                std::slice::from_ref(&sanitised),
                &self.intermediates,
                Usages::ServerAuth,
            )?;
            return Ok((*sanitised).clone());
        }
        let as_arc = Arc::new(cert.clone());
        let chain = self.unique_chain(
            &as_arc,
            &self.roots,
            &self.intermediates,
            Usages::ServerAuth,
        )?;
        let parent = chain.get(1).ok_or_else(|| {
            format!(
                "failed to traverse certificate verification chain for leaf or intermediate certificate, with subject {}",
                cert.subject
            )
        })?;
        resign(cert, &parent.key)
    }
}

/// The certificate with its signature's S made low for `parent`'s curve.
fn resign(cert: &Cert, parent: &PublicKey) -> Result<Cert, String> {
    let PublicKey::Ecdsa { curve, .. } = parent else {
        return Err(format!(
            "an ECDSA-signed certificate whose issuer key is {}",
            parent.algorithm_name()
        ));
    };
    let low = normalise_low_s(*curve, &cert.signature)?;
    if low == cert.signature {
        return Ok(cert.clone());
    }
    let parts = der::split_certificate(&cert.der).ok_or("certificate framing is not DER")?;
    let rebuilt = der::rebuild_certificate(&parts, &low);
    Cert::from_der(&rebuilt).map_err(|e| format!("re-encoded certificate does not parse: {e}"))
}
