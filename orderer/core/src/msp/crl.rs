//! A revocation list from the MSP config (PEM or DER), reduced to what validation consults: its
//! Authority Key Identifier, the revoked serial numbers, and its signature for checking under the
//! issuing CA.

use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use super::cert::{self, Cert, SigAlg};
use super::der;

#[derive(Clone, Debug)]
pub(crate) struct Crl {
    /// None when the CRL has no AKI key identifier: Fabric then fails every validation.
    pub aki: Option<Vec<u8>>,
    /// Revoked serials, big-endian magnitudes without leading zeros.
    pub revoked: Vec<Vec<u8>>,
    tbs: Vec<u8>,
    sig_alg: SigAlg,
    signature: Vec<u8>,
}

impl Crl {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Crl, String> {
        let der = match cert::first_pem_block(bytes) {
            Some(p) => p.into_contents(),
            None => bytes.to_vec(),
        };
        let (_, crl) = CertificateRevocationList::from_der(&der).map_err(|e| e.to_string())?;
        let sig_alg = SigAlg::from_oid(&crl.signature_algorithm.algorithm);
        let mut signature = crl.signature_value.data.to_vec();
        if sig_alg.is_ecdsa() {
            // Fabric re-encodes ECDSA CRL signatures canonically at setup, failing if they do
            // not decode.
            signature = der::encode_ecdsa_sig(&der::parse_ecdsa_sig(&signature)?);
        }
        let aki = crl
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            });
        Ok(Crl {
            aki,
            revoked: crl
                .iter_revoked_certificates()
                .map(|r| {
                    r.raw_serial()
                        .iter()
                        .copied()
                        .skip_while(|b| *b == 0)
                        .collect()
                })
                .collect(),
            tbs: crl.tbs_cert_list.as_ref().to_vec(),
            sig_alg,
            signature,
        })
    }

    /// Whether `issuer`'s key signed this CRL.
    pub(crate) fn signed_by(&self, issuer: &Cert) -> bool {
        cert::verify_signed(&self.sig_alg, &self.tbs, &self.signature, &issuer.key).is_ok()
    }
}
