//! Raw Ed25519 identities: a creator is `msp.SerializedIdentity { mspid, id_bytes }` where
//! `id_bytes` is the 32-byte public key, and a channel configuration lists its members' keys by
//! role. Keys are read and written as PKCS#8 PEM; the identity folder that holds them on disk is
//! the client crate's (`ordo_client::identity_dir`).

use std::collections::HashSet;

use bytes::Bytes;
use ed25519_dalek::pkcs8::{
    spki::der::pem::LineEnding, DecodePrivateKey, EncodePrivateKey, KeypairBytes,
};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier, VerifyingKey};
use ordo_proto::msp::SerializedIdentity;
use prost::Message;

use super::{Identity, IdentityError, Key, Msp, Role, Signed};
use crate::config::{ChannelConfig, ConfigError};

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
    pub fn from_key_pem(mspid: impl Into<String>, pem: &str) -> Result<Self, IdentityError> {
        let mspid = mspid.into();
        if mspid.is_empty() {
            return Err(IdentityError::EmptySignerMspid);
        }
        let key = SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| IdentityError::PrivateKey(e.to_string()))?;
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

/// Why bytes are not an Ed25519 public key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("an Ed25519 key has 32 bytes, not {0}")]
    Length(usize),
    #[error("not an Ed25519 public key: {0}")]
    Invalid(String),
}

pub fn parse_public_key(bytes: &[u8]) -> Result<VerifyingKey, KeyError> {
    let raw: [u8; 32] = bytes
        .try_into()
        .map_err(|_| KeyError::Length(bytes.len()))?;
    VerifyingKey::from_bytes(&raw).map_err(|e| KeyError::Invalid(e.to_string()))
}

fn verify(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    match Signature::from_slice(signature) {
        Ok(signature) => key.verify(message, &signature).is_ok(),
        Err(_) => false,
    }
}

/// The Ed25519 MSP of a channel: who holds which role, by (organization, role, key). The
/// default one knows nobody; it still decodes creators and checks signatures.
#[derive(Clone, Debug, Default)]
pub struct Ed25519Msp {
    roles: HashSet<(String, Role, [u8; 32])>,
}

impl Ed25519Msp {
    /// Indexes the keys a configuration lists. Orderers read the chain too: a node behind its
    /// peers fetches blocks over Deliver.
    pub fn new(config: &ChannelConfig) -> Result<Self, ConfigError> {
        let mut roles = HashSet::new();
        for org in &config.organizations {
            for (role, keys) in [
                (Role::Writer, &org.writers),
                (Role::Reader, &org.readers),
                (Role::Admin, &org.admins),
            ] {
                for key in keys {
                    let key = parse_public_key(key).map_err(|reason| ConfigError::Key {
                        what: format!("organization {}", org.mspid),
                        reason,
                    })?;
                    roles.insert((org.mspid.clone(), role, key.to_bytes()));
                    roles.insert((org.mspid.clone(), Role::Member, key.to_bytes()));
                }
            }
        }
        for consenter in &config.consenters {
            let key =
                parse_public_key(&consenter.public_key).map_err(|reason| ConfigError::Key {
                    what: format!("consenter {}", consenter.id),
                    reason,
                })?;
            for role in [Role::Orderer, Role::Reader, Role::Member] {
                roles.insert((consenter.mspid.clone(), role, key.to_bytes()));
            }
        }
        Ok(Ed25519Msp { roles })
    }

    fn key(identity: &Identity) -> &VerifyingKey {
        match &identity.key {
            Key::Ed25519(key) => key,
        }
    }
}

impl Msp for Ed25519Msp {
    fn deserialize(&self, creator: &[u8]) -> Result<Identity, IdentityError> {
        let id =
            SerializedIdentity::decode(creator).map_err(IdentityError::NotSerializedIdentity)?;
        if id.mspid.is_empty() {
            return Err(IdentityError::EmptyMspid);
        }
        let key = parse_public_key(&id.id_bytes).map_err(|reason| IdentityError::BadKey {
            mspid: id.mspid.clone(),
            reason,
        })?;
        Ok(Identity {
            mspid: id.mspid,
            serialized: Bytes::copy_from_slice(creator),
            key: Key::Ed25519(key),
        })
    }

    fn verify(&self, identity: &Identity, message: &[u8], signature: &[u8]) -> bool {
        verify(Self::key(identity), message, signature)
    }

    /// One batch verification (about twice as fast per signature), and only if it fails, one by
    /// one, so exactly the bad ones are refused.
    fn verify_batch(&self, items: &[Signed<'_>]) -> Vec<bool> {
        if items.len() > 1 {
            let signatures: Option<Vec<Signature>> = items
                .iter()
                .map(|s| Signature::from_slice(s.signature).ok())
                .collect();
            if let Some(signatures) = signatures {
                let messages: Vec<&[u8]> = items.iter().map(|s| s.message).collect();
                let keys: Vec<VerifyingKey> =
                    items.iter().map(|s| *Self::key(s.identity)).collect();
                if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
                    return vec![true; items.len()];
                }
            }
        }
        items
            .iter()
            .map(|s| self.verify(s.identity, s.message, s.signature))
            .collect()
    }

    fn has_role(&self, identity: &Identity, org: &str, role: Role) -> bool {
        identity.mspid == org
            && self
                .roles
                .contains(&(org.to_string(), role, Self::key(identity).to_bytes()))
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

        let msp = Ed25519Msp::default();
        let creator = msp.deserialize(loaded.creator()).unwrap();
        assert_eq!(creator.mspid(), "Org1MSP");
        assert_eq!(creator.serialized(), signer.creator());
        let sig = signer.sign(b"hello");
        assert!(msp.verify(&creator, b"hello", &sig));
        assert!(!msp.verify(&creator, b"hellO", &sig));
        assert!(!msp.verify(&creator, b"hello", &sig[..63]));
    }

    #[test]
    fn malformed_creators_are_refused() {
        let msp = Ed25519Msp::default();
        assert!(msp.deserialize(b"\xff\xff").is_err());
        let short = SerializedIdentity {
            mspid: "X".into(),
            id_bytes: Bytes::from_static(&[1, 2, 3]),
        }
        .encode_to_vec();
        assert!(msp
            .deserialize(&short)
            .unwrap_err()
            .to_string()
            .contains("32 bytes"));
    }

    #[test]
    fn batch_verification_singles_out_the_bad_signatures() {
        let msp = Ed25519Msp::default();
        let signers: Vec<Signer> = (0..5).map(|_| Signer::generate("Org1MSP")).collect();
        let identities: Vec<Identity> = signers
            .iter()
            .map(|s| msp.deserialize(s.creator()).unwrap())
            .collect();
        let mut signatures: Vec<[u8; 64]> = signers.iter().map(|s| s.sign(b"m")).collect();
        signatures[3][10] ^= 1;
        let items: Vec<Signed> = identities
            .iter()
            .zip(&signatures)
            .map(|(identity, signature)| Signed {
                identity,
                message: b"m",
                signature,
            })
            .collect();
        assert_eq!(
            msp.verify_batch(&items),
            vec![true, true, true, false, true]
        );
        assert_eq!(msp.verify_batch(&items[..3]), vec![true; 3]);
        assert_eq!(msp.verify_batch(&items[3..4]), vec![false]);
    }
}
