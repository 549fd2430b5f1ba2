//! A deserialised X.509 identity of a channel MSP: the sanitised certificate, its key parsed once
//! for verification, its ID, its OUs, and the outcome of Validate (computed once, as Fabric
//! caches it per identity).

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use super::cert::{self, Cert};
use super::error::IdentityError;
use super::setup::Msp;
use super::signature::VerifyKey;

/// An OU of an identity, paired with the certifiers identifier of the chain that issued it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityOu {
    /// The subject OU attribute value.
    pub ou: String,
    /// H(chain[1] ‖ … ‖ root), the issuing chain's identifier.
    pub certifiers: Bytes,
}

/// A deserialised identity; cheap to clone.
#[derive(Clone, Debug)]
pub struct Identity(pub(crate) Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    pub mspid: String,
    pub id: String,
    pub serialized: Bytes,
    pub cert: Arc<Cert>,
    pub key: VerifyKey,
    pub ous: Vec<IdentityOu>,
    pub validation: Result<(), String>,
}

impl Identity {
    /// The MSP ID the identity was deserialised under.
    pub fn mspid(&self) -> &str {
        &self.0.mspid
    }

    /// Lowercase hex of H(sanitised DER), H the MSP's identity_identifier_hash_function.
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The creator bytes as received (a marshalled `SerializedIdentity`).
    pub fn serialized(&self) -> &Bytes {
        &self.0.serialized
    }

    /// The sanitised certificate.
    pub fn certificate_der(&self) -> &[u8] {
        &self.0.cert.der
    }

    /// The certificate's NotAfter (the Broadcast expiration filter's input).
    pub fn not_after(&self) -> Option<SystemTime> {
        self.0.cert.not_after_time()
    }

    /// The subject OUs with their certifiers identifiers (empty when the certificate has no
    /// chain in its MSP).
    pub fn ous(&self) -> &[IdentityOu] {
        &self.0.ous
    }

    /// The certificate subject, for messages.
    pub fn subject(&self) -> &str {
        &self.0.cert.subject
    }
}

impl Msp {
    /// DeserializeIdentity's per-MSP part (§3.3 steps 3–6) and Validate.
    pub(crate) fn deserialize_id_bytes(
        &self,
        serialized: Bytes,
        id_bytes: &[u8],
    ) -> Result<Identity, IdentityError> {
        let block = cert::first_pem_block(id_bytes).ok_or_else(|| IdentityError::NotPem {
            msp: self.name.clone(),
        })?;
        let parsed = Cert::from_der(block.contents()).map_err(|why| IdentityError::Parse {
            msp: self.name.clone(),
            why,
        })?;
        let refuse = |why: String| IdentityError::Certificate {
            msp: self.name.clone(),
            subject: parsed.subject.clone(),
            why,
        };
        let key = VerifyKey::import(&parsed.key, self.hash_family).map_err(refuse)?;
        let cert = Arc::new(self.sanitize_cert(&parsed).map_err(refuse)?);
        let id = self
            .id_hash
            .hash([cert.der.as_slice()])
            .map_err(|e| refuse(format!("failed hashing raw certificate: {e}")))?;
        let (validation, ous) = self.validate_with_ous(&cert);
        Ok(Identity(Arc::new(Inner {
            mspid: self.name.clone(),
            id: hex::encode(id),
            serialized,
            cert,
            key,
            ous,
            validation,
        })))
    }
}
