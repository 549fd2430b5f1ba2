//! A node's or client's own signing identity: its certificate (sanitised by its MSP) and private
//! key, signing as Fabric does (ECDSA over a 256-bit digest with low S, DER; Ed25519 raw).

use std::time::SystemTime;

use bytes::Bytes;
use ordo_proto::msp::SerializedIdentity;
use prost::Message;

use super::cert::{self, Cert, PublicKey};
use super::error::MspError;
use super::hash::HashFamily;
use super::setup::Msp;

#[derive(Clone)]
enum SignKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// A signing identity.
#[derive(Clone)]
pub struct SigningIdentity {
    mspid: String,
    cert_der: Vec<u8>,
    serialized: Bytes,
    key: SignKey,
    family: HashFamily,
    not_after: Option<SystemTime>,
}

impl std::fmt::Debug for SigningIdentity {
    // The private key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("mspid", &self.mspid)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl SigningIdentity {
    /// The identity of `msp` (the holder's local MSP): the certificate is sanitised by it and
    /// signatures use its hash family. Keys: PKCS#8 ("PRIVATE KEY") or SEC1 ("EC PRIVATE KEY")
    /// ECDSA P-256/P-384, PKCS#8 Ed25519; the key must match the certificate.
    pub fn new(msp: &Msp, cert_pem: &[u8], key_pem: &[u8]) -> Result<SigningIdentity, MspError> {
        let fail = |what: String| MspError::Signer {
            mspid: msp.name().to_owned(),
            what,
        };
        let cert = parse_cert(cert_pem).map_err(&fail)?;
        let sanitised = msp.sanitize_cert(&cert).map_err(&fail)?;
        let family = msp
            .hash_family
            .ok_or_else(|| fail("the MSP's signature hash family is not supported".into()))?;
        Self::build(msp.name(), sanitised, key_pem, family)
    }

    /// An identity whose certificate is used as given (SHA-2 signatures): for a client that
    /// holds only its own certificate and key.
    pub fn without_msp(
        mspid: &str,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<SigningIdentity, MspError> {
        let cert = parse_cert(cert_pem).map_err(|what| MspError::Signer {
            mspid: mspid.to_owned(),
            what,
        })?;
        Self::build(mspid, cert, key_pem, HashFamily::Sha2)
    }

    fn build(
        mspid: &str,
        cert: Cert,
        key_pem: &[u8],
        family: HashFamily,
    ) -> Result<SigningIdentity, MspError> {
        let fail = |what: String| MspError::Signer {
            mspid: mspid.to_owned(),
            what,
        };
        let key = parse_key(key_pem).map_err(&fail)?;
        let matches = match (&key, &cert.key) {
            (SignKey::P256(k), PublicKey::Ecdsa { point, .. }) => {
                k.verifying_key().to_encoded_point(false).as_bytes() == point.as_slice()
            }
            (SignKey::P384(k), PublicKey::Ecdsa { point, .. }) => {
                k.verifying_key().to_encoded_point(false).as_bytes() == point.as_slice()
            }
            (SignKey::Ed25519(k), PublicKey::Ed25519(public)) => {
                k.verifying_key().as_bytes() == public
            }
            _ => false,
        };
        if !matches {
            return Err(fail(format!(
                "the private key does not match the certificate {}",
                cert.subject
            )));
        }
        let serialized = SerializedIdentity {
            mspid: mspid.to_owned(),
            id_bytes: cert::to_pem(&cert.der).into(),
        }
        .encode_to_vec()
        .into();
        Ok(SigningIdentity {
            mspid: mspid.to_owned(),
            not_after: cert.not_after_time(),
            cert_der: cert.der,
            serialized,
            key,
            family,
        })
    }

    /// ECDSA: DER of (r, low s) over SHA-256 (or SHA3-256) of the message; Ed25519: 64 bytes.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        use p256::ecdsa::signature::Signer;
        match &self.key {
            SignKey::P256(k) => {
                let digest = self.family.digest(message);
                // Signing a 32-byte digest with a valid key cannot fail; an empty signature
                // (which every verifier refuses) is the safe answer if it ever did.
                let sig: Result<p256::ecdsa::Signature, _> = k.sign_prehash(&digest);
                sig.map(|s| s.normalize_s().unwrap_or(s).to_der().as_bytes().to_vec())
                    .unwrap_or_default()
            }
            SignKey::P384(k) => {
                let digest = self.family.digest(message);
                let sig: Result<p384::ecdsa::Signature, _> = k.sign_prehash(&digest);
                sig.map(|s| s.normalize_s().unwrap_or(s).to_der().as_bytes().to_vec())
                    .unwrap_or_default()
            }
            SignKey::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
        }
    }

    /// The marshalled SerializedIdentity (mspid, PEM of the sanitised certificate).
    pub fn serialized(&self) -> &Bytes {
        &self.serialized
    }

    /// The MSP ID written into [`Self::serialized`].
    pub fn mspid(&self) -> &str {
        &self.mspid
    }

    /// The (sanitised) certificate.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The certificate's NotAfter; the caller refuses an expired local identity.
    pub fn not_after(&self) -> Option<SystemTime> {
        self.not_after
    }
}

fn parse_cert(cert_pem: &[u8]) -> Result<Cert, String> {
    let der = cert::der_from_pem_or_der(cert_pem).ok_or("certificate is neither PEM nor DER")?;
    Cert::from_der(&der)
}

fn parse_key(key_pem: &[u8]) -> Result<SignKey, String> {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let block = cert::first_pem_block(key_pem).ok_or("private key is not PEM")?;
    let der = block.contents();
    match block.tag() {
        "PRIVATE KEY" => {
            if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
                Ok(SignKey::P256(k.into()))
            } else if let Ok(k) = p384::SecretKey::from_pkcs8_der(der) {
                Ok(SignKey::P384(k.into()))
            } else if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
                Ok(SignKey::Ed25519(Box::new(k)))
            } else {
                Err("PKCS#8 private key is neither ECDSA P-256/P-384 nor Ed25519".into())
            }
        }
        "EC PRIVATE KEY" => {
            if let Ok(k) = p256::SecretKey::from_sec1_der(der) {
                Ok(SignKey::P256(k.into()))
            } else if let Ok(k) = p384::SecretKey::from_sec1_der(der) {
                Ok(SignKey::P384(k.into()))
            } else {
                Err("SEC1 private key is neither P-256 nor P-384".into())
            }
        }
        other => Err(format!("unsupported private key PEM type {other:?}")),
    }
}
