//! Verifying an identity's signature as Fabric's BCCSP does (§3.5): ECDSA over a 256-bit digest
//! with strict DER, bytes after the signature ignored, positive r and s, and low S required (a
//! high-S signature is refused, never normalised); Ed25519 pure over the message. The key is
//! parsed once, when the identity is deserialised.

use ring::signature as ring_sig;

use super::cert::{Curve, PublicKey};
use super::der;
use super::hash::HashFamily;

/// A leaf's public key, ready to verify with.
#[derive(Clone, Debug)]
pub(crate) enum VerifyKey {
    Ecdsa {
        curve: Curve,
        /// The SEC1 point, as ring takes it.
        point: Vec<u8>,
        /// Pre-parsed for the SHA3 family, which ring cannot do (verify_prehash).
        prehash: Option<PrehashKey>,
    },
    Ed25519(ed25519_dalek::VerifyingKey),
    /// RSA leaves deserialise but can never verify (Fabric passes no PSS options).
    Rsa,
}

#[derive(Clone, Debug)]
pub(crate) enum PrehashKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl VerifyKey {
    /// Imports a certificate's key (Fabric's `KeyImport`): ECDSA on P-256/P-384, Ed25519, RSA.
    pub(crate) fn import(key: &PublicKey, family: Option<HashFamily>) -> Result<VerifyKey, String> {
        match key {
            PublicKey::Ecdsa { curve, point } => {
                let prehash = match (family, curve) {
                    (Some(HashFamily::Sha3), Curve::P256) => Some(PrehashKey::P256(
                        p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                            .map_err(|_| "invalid P-256 public key")?,
                    )),
                    (Some(HashFamily::Sha3), Curve::P384) => Some(PrehashKey::P384(
                        p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                            .map_err(|_| "invalid P-384 public key")?,
                    )),
                    _ => None,
                };
                Ok(VerifyKey::Ecdsa {
                    curve: *curve,
                    point: point.clone(),
                    prehash,
                })
            }
            PublicKey::Ed25519(k) => ed25519_dalek::VerifyingKey::from_bytes(k)
                .map(VerifyKey::Ed25519)
                .map_err(|_| "invalid Ed25519 public key".to_string()),
            PublicKey::Rsa(_) => Ok(VerifyKey::Rsa),
            PublicKey::EcdsaOtherCurve(c) => Err(format!(
                "failed to import certificate's public key: ECDSA curve {c} is not supported"
            )),
            PublicKey::Other(a) => Err(format!(
                "failed to import certificate's public key: algorithm {a} is not supported"
            )),
        }
    }

    /// Whether `signature` is a valid signature by this key over `message`.
    /// `family` None (an unknown signature_hash_family) fails every ECDSA check, as in Fabric.
    pub(crate) fn verify(
        &self,
        family: Option<HashFamily>,
        ed25519_allowed: bool,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        match self {
            VerifyKey::Ecdsa {
                curve,
                point,
                prehash,
            } => {
                let Some(family) = family else { return false };
                let Some(canonical) = low_s_der(*curve, signature) else {
                    return false;
                };
                match (family, prehash) {
                    (HashFamily::Sha2, _) => {
                        let alg = match curve {
                            Curve::P256 => &ring_sig::ECDSA_P256_SHA256_ASN1,
                            Curve::P384 => &ring_sig::ECDSA_P384_SHA256_ASN1,
                        };
                        ring_sig::UnparsedPublicKey::new(alg, point)
                            .verify(message, &canonical)
                            .is_ok()
                    }
                    (HashFamily::Sha3, Some(key)) => verify_prehash(key, message, &canonical),
                    (HashFamily::Sha3, None) => false,
                }
            }
            // Go's `ed25519.Verify` is RFC 8032's cofactorless check, as is dalek's `verify`.
            VerifyKey::Ed25519(key) => {
                use ed25519_dalek::Verifier;
                ed25519_allowed
                    && ed25519_dalek::Signature::from_slice(signature)
                        .map(|s| key.verify(message, &s).is_ok())
                        .unwrap_or(false)
            }
            VerifyKey::Rsa => false,
        }
    }
}

fn verify_prehash(key: &PrehashKey, message: &[u8], der_sig: &[u8]) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let digest = HashFamily::Sha3.digest(message);
    match key {
        PrehashKey::P256(k) => p256::ecdsa::Signature::from_der(der_sig)
            .map(|s| k.verify_prehash(&digest, &s).is_ok())
            .unwrap_or(false),
        PrehashKey::P384(k) => p384::ecdsa::Signature::from_der(der_sig)
            .map(|s| k.verify_prehash(&digest, &s).is_ok())
            .unwrap_or(false),
    }
}

/// The canonical DER of a signature that passes Fabric's decoding and low-S rules, else None.
fn low_s_der(curve: Curve, signature: &[u8]) -> Option<Vec<u8>> {
    let sig = der::parse_ecdsa_sig(signature).ok()?;
    if !curve.is_low_s(&sig.s) {
        return None;
    }
    Some(der::encode_ecdsa_sig(&sig))
}

/// An ECDSA signature with S made low (`n - s` when high), canonical DER; for signing and for
/// sanitising certificates.
pub(crate) fn normalise_low_s(curve: Curve, signature: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut sig = der::parse_ecdsa_sig(signature)?;
    sig.s = curve.to_low_s(&sig.s);
    Ok(der::encode_ecdsa_sig(&sig))
}

/// Whether an ECDSA signature's S is high (tests construct such signatures).
#[cfg(test)]
pub(crate) fn is_high_s(curve: Curve, signature: &[u8]) -> bool {
    der::parse_ecdsa_sig(signature)
        .map(|s| !curve.is_low_s(&s.s))
        .unwrap_or(false)
}
