//! The identity layer: creators (the bytes of `msp.SerializedIdentity`) decoded into
//! [`Identity`]s, their signatures checked, and their roles in an organization answered, all
//! through one trait, [`Msp`], so that callers (policy, the Broadcast processor, block
//! verification, the assembler) never see a key type.
//!
//! [`Ed25519Msp`] is the implementation in use: raw Ed25519 keys, roles listed by key in the
//! channel configuration. A Fabric X.509 MSP (certificates chained to an organization's CA, roles
//! from NodeOUs, ECDSA P-256) is meant to be a second implementation with its own [`Key`] variant;
//! nothing outside this module matches on the key.

mod ed25519;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

pub use ed25519::{parse_public_key, serialize_identity, Ed25519Msp, KeyError, Signer};

/// A decoded creator. Equal identities have equal serialized bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    mspid: String,
    serialized: Bytes,
    key: Key,
}

/// The verification material of an identity, by kind of MSP.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Key {
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl Identity {
    /// The MSP id the creator claims (roles are only ever answered within it).
    pub fn mspid(&self) -> &str {
        &self.mspid
    }

    /// The marshalled `SerializedIdentity` this was decoded from.
    pub fn serialized(&self) -> &Bytes {
        &self.serialized
    }
}

/// What an identity may be in an organization, as the channel configuration lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Any of the organization's identities.
    Member,
    Admin,
    /// A consenter: signs blocks.
    Orderer,
    Writer,
    Reader,
}

/// One signature to check: who, over what.
#[derive(Clone, Copy, Debug)]
pub struct Signed<'a> {
    pub identity: &'a Identity,
    pub message: &'a [u8],
    pub signature: &'a [u8],
}

/// Why a creator, a key or a private key is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("creator is not a SerializedIdentity: {0}")]
    NotSerializedIdentity(prost::DecodeError),
    #[error("creator has an empty mspid")]
    EmptyMspid,
    #[error("creator of {mspid}: {reason}")]
    BadKey { mspid: String, reason: KeyError },
    #[error("empty mspid")]
    EmptySignerMspid,
    #[error("not an Ed25519 PKCS#8 key: {0}")]
    PrivateKey(String),
}

/// A membership service provider: decodes creators, checks signatures and answers roles.
pub trait Msp: Send + Sync + std::fmt::Debug {
    /// Decodes a creator. Needs no channel state, so it can run before the channel is known.
    fn deserialize(&self, creator: &[u8]) -> Result<Identity, IdentityError>;

    /// Whether `signature` is `identity`'s over `message`.
    fn verify(&self, identity: &Identity, message: &[u8], signature: &[u8]) -> bool;

    /// [`Msp::verify`] for many signatures; exactly the bad ones are false. An implementation
    /// may verify them together when that is cheaper.
    fn verify_batch(&self, items: &[Signed<'_>]) -> Vec<bool> {
        items
            .iter()
            .map(|s| self.verify(s.identity, s.message, s.signature))
            .collect()
    }

    /// Whether `identity` holds `role` in organization `org`.
    fn has_role(&self, identity: &Identity, org: &str, role: Role) -> bool;
}

/// Creators already decoded, by their bytes: decompressing an Ed25519 key costs about as much as
/// a signature check, and a client sends many envelopes under one identity. One cache decodes
/// through one [`Msp`].
#[derive(Debug)]
pub struct CreatorCache {
    msp: Arc<dyn Msp>,
    identities: HashMap<Bytes, Identity>,
}

impl Default for CreatorCache {
    /// A cache decoding raw Ed25519 creators.
    fn default() -> Self {
        CreatorCache::new(Arc::new(Ed25519Msp::default()))
    }
}

impl CreatorCache {
    /// Identities remembered, at most; past it the cache starts over.
    const CAPACITY: usize = 1024;

    pub fn new(msp: Arc<dyn Msp>) -> Self {
        CreatorCache {
            msp,
            identities: HashMap::new(),
        }
    }

    pub fn get(&mut self, creator: &Bytes) -> Result<Identity, IdentityError> {
        if let Some(identity) = self.identities.get(creator) {
            return Ok(identity.clone());
        }
        let identity = self.msp.deserialize(creator)?;
        if self.identities.len() >= Self::CAPACITY {
            self.identities.clear();
        }
        self.identities.insert(creator.clone(), identity.clone());
        Ok(identity)
    }
}
