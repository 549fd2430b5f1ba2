//! Who a TLS peer is: the certificates it presented, the public key that identifies a cluster
//! member (Fabric compares SubjectPublicKeyInfo DER, so a renewed certificate over the same key
//! pair keeps its identity), and the hash a ChannelHeader binds an envelope to.

use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};

/// The verified certificate chain a TLS client presented (leaf first); put into each request's
/// extensions by the servers that use TLS.
#[derive(Clone, Debug, Default)]
pub struct PeerCertificates(pub Arc<Vec<CertificateDer<'static>>>);

impl PeerCertificates {
    pub fn leaf(&self) -> Option<&CertificateDer<'static>> {
        self.0.first()
    }
}

/// The SubjectPublicKeyInfo (DER) of a DER certificate.
pub fn public_key_of_der(der: &[u8]) -> Result<Vec<u8>, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok(cert.tbs_certificate.subject_pki.raw.to_vec())
}

/// The SubjectPublicKeyInfo (DER) of a PEM certificate (as consenters carry them), or of DER.
pub fn public_key_of_pem(pem_or_der: &[u8]) -> Result<Vec<u8>, String> {
    match super::pem::certificates_of(pem_or_der) {
        Ok(certs) => public_key_of_der(&certs[0]),
        Err(_) => public_key_of_der(pem_or_der),
    }
}

/// Fabric's `tls_cert_hash`: SHA-256 of the client's TLS leaf certificate (DER).
pub fn cert_hash(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(key: &rcgen::KeyPair, name: &str) -> rcgen::Certificate {
        rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(key)
            .unwrap()
    }

    #[test]
    fn a_renewed_certificate_over_the_same_key_has_the_same_public_key() {
        let key = rcgen::KeyPair::generate().unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let first = cert(&key, "a");
        let renewed = cert(&key, "b");
        let stranger = cert(&other, "a");
        assert_ne!(first.der().as_ref(), renewed.der().as_ref());
        let pk = |c: &rcgen::Certificate| public_key_of_pem(c.pem().as_bytes()).unwrap();
        assert_eq!(pk(&first), pk(&renewed));
        assert_ne!(pk(&first), pk(&stranger));
        assert_eq!(public_key_of_der(first.der()).unwrap(), pk(&first));
        assert_eq!(pk(&first), key.public_key_der());
        assert!(public_key_of_pem(b"not a certificate").is_err());
    }
}
