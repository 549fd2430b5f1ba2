//! The MSP's two hash choices (`FabricCryptoConfig`): the family signatures are digested with, and
//! the function identity IDs and certifiers identifiers are computed with.

use sha2::Digest;

/// `signature_hash_family`: the 256-bit digest ECDSA signatures are made over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HashFamily {
    Sha2,
    Sha3,
}

impl HashFamily {
    /// None for a family Fabric does not know: every ECDSA verification then fails, as in Fabric.
    pub(crate) fn parse(name: &str) -> Option<HashFamily> {
        match name {
            "" | "SHA2" => Some(HashFamily::Sha2),
            "SHA3" => Some(HashFamily::Sha3),
            _ => None,
        }
    }

    pub(crate) fn digest(self, message: &[u8]) -> [u8; 32] {
        match self {
            HashFamily::Sha2 => sha2::Sha256::digest(message).into(),
            HashFamily::Sha3 => sha3::Sha3_256::digest(message).into(),
        }
    }
}

/// `identity_identifier_hash_function`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IdHash {
    Sha256,
    Sha384,
    Sha3_256,
    Sha3_384,
    /// A name Fabric does not know: identity IDs then cannot be computed (an error where used).
    Unknown(String),
}

impl IdHash {
    pub(crate) fn parse(name: &str) -> IdHash {
        match name {
            "" | "SHA256" => IdHash::Sha256,
            "SHA384" => IdHash::Sha384,
            "SHA3_256" => IdHash::Sha3_256,
            "SHA3_384" => IdHash::Sha3_384,
            other => IdHash::Unknown(other.to_owned()),
        }
    }

    /// The hash of the concatenation of `parts`.
    pub(crate) fn hash<'a>(
        &self,
        parts: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Vec<u8>, String> {
        fn run<'b, D: Digest>(parts: impl IntoIterator<Item = &'b [u8]>) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        Ok(match self {
            IdHash::Sha256 => run::<sha2::Sha256>(parts),
            IdHash::Sha384 => run::<sha2::Sha384>(parts),
            IdHash::Sha3_256 => run::<sha3::Sha3_256>(parts),
            IdHash::Sha3_384 => run::<sha3::Sha3_384>(parts),
            IdHash::Unknown(name) => return Err(format!("hash function {name} is not supported")),
        })
    }
}
