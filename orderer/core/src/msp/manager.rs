//! A channel's MSPs by ID (Fabric's MSP manager): deserialising creators (cached), validation,
//! signature checks one by one or in a batch, and principal satisfaction.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use ordo_proto::msp::{FabricMspConfig, MspConfig, SerializedIdentity};
use prost::Message;

use super::error::{IdentityError, MspError};
use super::identity::Identity;
use super::principal::Principal;
use super::setup::Msp;
use super::signature::VerifyKey;
use super::version::MspVersion;

/// Deserialised creators kept; past this the cache is cleared (a crude bound that keeps a busy
/// client's chain validation to once per 4096 distinct creators).
const CACHE_LIMIT: usize = 4096;

/// The MSPs of one channel.
#[derive(Debug)]
pub struct MspManager {
    msps: Vec<Msp>,
    version: MspVersion,
    cache: Mutex<HashMap<Bytes, Result<Identity, IdentityError>>>,
}

impl MspManager {
    /// Sets up every org's MSP. Only FABRIC (type 0) configs are accepted; one MSP ID defined
    /// twice must carry identical configs (and is set up once).
    pub fn setup(configs: &[MspConfig], version: MspVersion) -> Result<MspManager, MspError> {
        let mut seen: Vec<(String, &MspConfig)> = Vec::new();
        let mut msps = Vec::new();
        for config in configs {
            if config.r#type != 0 {
                return Err(MspError::UnsupportedType(config.r#type));
            }
            let fabric = FabricMspConfig::decode(config.config.clone())
                .map_err(|e| MspError::Decode(e.to_string()))?;
            if let Some((_, earlier)) = seen.iter().find(|(name, _)| *name == fabric.name) {
                if *earlier != config {
                    return Err(MspError::Duplicate(fabric.name));
                }
                continue;
            }
            if fabric.name.is_empty() {
                return Err(MspError::Setup {
                    msp: String::new(),
                    what: "the MSP name is empty".into(),
                });
            }
            msps.push(Msp::setup(&fabric, version)?);
            seen.push((fabric.name, config));
        }
        Ok(MspManager {
            msps,
            version,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The MSP version every MSP of the channel was set up with.
    pub fn version(&self) -> MspVersion {
        self.version
    }

    /// The MSP with this ID, if the channel defines it.
    pub fn msp(&self, mspid: &str) -> Option<&Msp> {
        self.msps.iter().find(|m| m.name() == mspid)
    }

    /// The channel's MSP IDs, in config order.
    pub fn mspids(&self) -> impl Iterator<Item = &str> {
        self.msps.iter().map(Msp::name)
    }

    /// DeserializeIdentity (§3.3) plus Validate, whose outcome the identity keeps. Results, good
    /// or bad, are cached by the creator bytes.
    pub fn deserialize(&self, creator: &[u8]) -> Result<Identity, IdentityError> {
        if let Ok(cache) = self.cache.lock() {
            if let Some(hit) = cache.get(creator) {
                return hit.clone();
            }
        }
        let result = self.deserialize_uncached(creator);
        // A poisoned lock only loses the cache, never the answer.
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(Bytes::copy_from_slice(creator), result.clone());
        }
        result
    }

    fn deserialize_uncached(&self, creator: &[u8]) -> Result<Identity, IdentityError> {
        let sid = SerializedIdentity::decode(creator)
            .map_err(|e| IdentityError::Decode(e.to_string()))?;
        let msp = self
            .msp(&sid.mspid)
            .ok_or_else(|| IdentityError::UnknownMsp(sid.mspid.clone()))?;
        msp.deserialize_id_bytes(Bytes::copy_from_slice(creator), &sid.id_bytes)
    }

    /// The stored Validate outcome.
    pub fn validate(&self, identity: &Identity) -> Result<(), String> {
        identity.0.validation.clone()
    }

    /// Whether `signature` is the identity's over `message` (§3.5).
    pub fn verify(&self, identity: &Identity, message: &[u8], signature: &[u8]) -> bool {
        let family = self.msp(identity.mspid()).and_then(|m| m.hash_family);
        identity
            .0
            .key
            .verify(family, self.version.accepts_ed25519(), message, signature)
    }

    /// One answer per item, false exactly for the bad ones. Ed25519 items are checked together
    /// with batch verification, falling back to one by one when the batch fails.
    pub fn verify_batch(&self, items: &[(&Identity, &[u8], &[u8])]) -> Vec<bool> {
        let mut out = vec![false; items.len()];
        let mut ed = Vec::new();
        for (i, (id, message, signature)) in items.iter().enumerate() {
            match &id.0.key {
                VerifyKey::Ed25519(key) if self.version.accepts_ed25519() => {
                    match ed25519_dalek::Signature::from_slice(signature) {
                        Ok(sig) => ed.push((i, *key, sig)),
                        Err(_) => out[i] = false,
                    }
                }
                _ => out[i] = self.verify(id, message, signature),
            }
        }
        if ed.is_empty() {
            return out;
        }
        let messages: Vec<&[u8]> = ed.iter().map(|(i, _, _)| items[*i].1).collect();
        let sigs: Vec<_> = ed.iter().map(|(_, _, s)| *s).collect();
        let keys: Vec<_> = ed.iter().map(|(_, k, _)| *k).collect();
        if ed25519_dalek::verify_batch(&messages, &sigs, &keys).is_ok() {
            for (i, _, _) in &ed {
                out[*i] = true;
            }
        } else {
            for (i, _, _) in &ed {
                let (id, message, signature) = items[*i];
                out[*i] = self.verify(id, message, signature);
            }
        }
        out
    }

    /// Whether the identity satisfies the principal, judged by the identity's own MSP (§4.3).
    pub fn satisfies(&self, identity: &Identity, principal: &Principal) -> Result<(), String> {
        let msp = self
            .msp(identity.mspid())
            .ok_or_else(|| format!("MSP {} is not defined on channel", identity.mspid()))?;
        msp.satisfies(identity, principal)
    }
}
