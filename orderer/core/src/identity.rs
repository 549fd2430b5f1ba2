//! Identities: Ed25519 keys wrapped in Fabric's `SerializedIdentity`.
//!
//! A creator is `msp.SerializedIdentity { mspid, id_bytes }` where `id_bytes` is the raw 32-byte
//! Ed25519 public key. Keys are read and written as PKCS#8 PEM; the identity folder that holds
//! them on disk is the client crate's (`ordo_client::identity_dir`).

use bytes::Bytes;
use ed25519_dalek::pkcs8::{
    spki::der::pem::LineEnding, DecodePrivateKey, EncodePrivateKey, KeypairBytes,
};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier, VerifyingKey};
use ordo_proto::msp::SerializedIdentity;
use prost::Message;

/// A private key with the identity it signs as.
#[derive(Clone)]
pub struct Signer {
    mspid: String,
    key: SigningKey,
    creator: Bytes,
}

impl Signer {
    pub fn new(mspid: impl Into<String>, key: SigningKey) -> Self {
        let mspid = mspid.into();
        let creator = serialize_identity(&mspid, &key.verifying_key());
        Signer {
            mspid,
            key,
            creator,
        }
    }

    pub fn generate(mspid: impl Into<String>) -> Self {
        Self::new(mspid, SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// Reads a PKCS#8 PEM Ed25519 private key (the `key.pem` of an identity folder).
    pub fn from_key_pem(mspid: impl Into<String>, pem: &str) -> Result<Self, String> {
        let mspid = mspid.into();
        if mspid.is_empty() {
            return Err("empty mspid".into());
        }
        let key = SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}"))?;
        Ok(Self::new(mspid, key))
    }

    /// The private key as PKCS#8 v1 PEM (no public key inside): the form OpenSSL and Python's
    /// cryptography read.
    pub fn key_pem(&self) -> String {
        KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        }
        .to_pkcs8_pem(LineEnding::LF)
        // Encoding 32 bytes of key into a fixed DER structure has no failure case.
        .map(|pem| pem.to_string())
        .unwrap_or_default()
    }

    /// The same key under another MSP id (for tests of identity checks).
    #[cfg(test)]
    pub(crate) fn with_mspid(&self, mspid: &str) -> Signer {
        Signer::new(mspid, self.key.clone())
    }

    pub fn mspid(&self) -> &str {
        &self.mspid
    }

    /// The marshalled `SerializedIdentity`, as it goes in a `SignatureHeader.creator`.
    pub fn creator(&self) -> &Bytes {
        &self.creator
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Signer({}, {})",
            self.mspid,
            hex::encode(self.public_key())
        )
    }
}

pub fn serialize_identity(mspid: &str, key: &VerifyingKey) -> Bytes {
    SerializedIdentity {
        mspid: mspid.to_string(),
        id_bytes: Bytes::copy_from_slice(key.as_bytes()),
    }
    .encode_to_vec()
    .into()
}

/// An envelope's creator, decoded.
#[derive(Clone, Debug)]
pub struct Creator {
    pub mspid: String,
    pub key: VerifyingKey,
}

impl Creator {
    pub fn parse(creator: &[u8]) -> Result<Creator, String> {
        let id = SerializedIdentity::decode(creator)
            .map_err(|e| format!("creator is not a SerializedIdentity: {e}"))?;
        if id.mspid.is_empty() {
            return Err("creator has an empty mspid".into());
        }
        let key =
            parse_public_key(&id.id_bytes).map_err(|e| format!("creator of {}: {e}", id.mspid))?;
        Ok(Creator {
            mspid: id.mspid,
            key,
        })
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        verify(&self.key, message, signature)
    }
}

pub fn parse_public_key(bytes: &[u8]) -> Result<VerifyingKey, String> {
    let raw: [u8; 32] = bytes
        .try_into()
        .map_err(|_| format!("an Ed25519 key has 32 bytes, not {}", bytes.len()))?;
    VerifyingKey::from_bytes(&raw).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

pub fn verify(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    match Signature::from_slice(signature) {
        Ok(signature) => key.verify(message, &signature).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_and_signatures_verify() {
        let signer = Signer::generate("Org1MSP");
        let loaded = Signer::from_key_pem("Org1MSP", &signer.key_pem()).unwrap();
        assert_eq!(loaded.public_key(), signer.public_key());
        assert_eq!(loaded.creator(), signer.creator());

        let creator = Creator::parse(loaded.creator()).unwrap();
        assert_eq!(creator.mspid, "Org1MSP");
        let sig = signer.sign(b"hello");
        assert!(creator.verify(b"hello", &sig));
        assert!(!creator.verify(b"hellO", &sig));
        assert!(!creator.verify(b"hello", &sig[..63]));
    }

    #[test]
    fn malformed_creators_are_refused() {
        assert!(Creator::parse(b"\xff\xff").is_err());
        let short = SerializedIdentity {
            mspid: "X".into(),
            id_bytes: Bytes::from_static(&[1, 2, 3]),
        }
        .encode_to_vec();
        assert!(Creator::parse(&short).unwrap_err().contains("32 bytes"));
    }
}
