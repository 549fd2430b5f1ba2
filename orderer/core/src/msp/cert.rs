//! An X.509 certificate parsed once into the owned facts the MSP needs (chain building, CA checks,
//! OUs, revocation, keys), and the check that one certificate's (or CRL's) signature was made by
//! another's key. Parsing is x509-parser's; signatures are ring's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::{self as oids, Oid};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::der;

/// A certificate's signature algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SigAlg {
    EcdsaSha1,
    EcdsaSha256,
    EcdsaSha384,
    EcdsaSha512,
    Ed25519,
    RsaSha1,
    RsaSha256,
    RsaSha384,
    RsaSha512,
    Other(String),
}

impl SigAlg {
    pub(crate) fn from_oid(oid: &Oid<'_>) -> SigAlg {
        if *oid == oids::OID_SIG_ECDSA_WITH_SHA256 {
            SigAlg::EcdsaSha256
        } else if *oid == oids::OID_SIG_ECDSA_WITH_SHA384 {
            SigAlg::EcdsaSha384
        } else if *oid == oids::OID_SIG_ECDSA_WITH_SHA512 {
            SigAlg::EcdsaSha512
        } else if oid.to_id_string() == "1.2.840.10045.4.1" {
            SigAlg::EcdsaSha1
        } else if *oid == oids::OID_SIG_ED25519 {
            SigAlg::Ed25519
        } else if *oid == oids::OID_PKCS1_SHA256WITHRSA {
            SigAlg::RsaSha256
        } else if *oid == oids::OID_PKCS1_SHA384WITHRSA {
            SigAlg::RsaSha384
        } else if *oid == oids::OID_PKCS1_SHA512WITHRSA {
            SigAlg::RsaSha512
        } else if *oid == oids::OID_PKCS1_SHA1WITHRSA {
            SigAlg::RsaSha1
        } else {
            SigAlg::Other(oid.to_id_string())
        }
    }

    /// Fabric sanitises (low-S re-encodes) exactly the ECDSA-signed certificates.
    pub(crate) fn is_ecdsa(&self) -> bool {
        matches!(
            self,
            SigAlg::EcdsaSha1 | SigAlg::EcdsaSha256 | SigAlg::EcdsaSha384 | SigAlg::EcdsaSha512
        )
    }
}

/// The curves whose keys this MSP can use (ring verifies exactly these two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
}

const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
const P384_ORDER: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

impl Curve {
    /// The group order n, big-endian.
    pub(crate) fn order(self) -> &'static [u8] {
        match self {
            Curve::P256 => &P256_ORDER,
            Curve::P384 => &P384_ORDER,
        }
    }

    /// Whether `s` is at most ⌊n/2⌋ (Fabric's low-S rule).
    pub(crate) fn is_low_s(self, s: &[u8]) -> bool {
        der::cmp_magnitude(s, &der::half_magnitude(self.order())) != std::cmp::Ordering::Greater
    }

    /// `s` replaced by `n - s` when it is high.
    pub(crate) fn to_low_s(self, s: &[u8]) -> Vec<u8> {
        if self.is_low_s(s) {
            s.to_vec()
        } else {
            der::sub_magnitude(self.order(), s)
        }
    }
}

/// A certificate's subject public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// An uncompressed (or compressed) SEC1 point on a supported curve.
    Ecdsa {
        curve: Curve,
        point: Vec<u8>,
    },
    /// An ECDSA key on a curve ring cannot use (P-224, P-521, ...): named by its OID.
    EcdsaOtherCurve(String),
    Ed25519([u8; 32]),
    /// The DER `RSAPublicKey` (the BIT STRING's content), as ring takes it.
    Rsa(Vec<u8>),
    Other(String),
}

impl PublicKey {
    /// Go's name for the key's algorithm, as Fabric's messages print it.
    pub(crate) fn algorithm_name(&self) -> &'static str {
        match self {
            PublicKey::Ecdsa { .. } | PublicKey::EcdsaOtherCurve(_) => "ECDSA",
            PublicKey::Ed25519(_) => "Ed25519",
            PublicKey::Rsa(_) => "RSA",
            PublicKey::Other(_) => "unknown",
        }
    }
}

/// Which extended key usages a certificate lists (only when it has the extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Eku {
    pub any: bool,
    pub server_auth: bool,
    pub client_auth: bool,
}

/// The owned facts of one parsed certificate.
#[derive(Clone, Debug)]
pub(crate) struct Cert {
    pub der: Vec<u8>,
    pub tbs: Vec<u8>,
    pub sig_alg: SigAlg,
    pub signature: Vec<u8>,
    pub subject_raw: Vec<u8>,
    pub issuer_raw: Vec<u8>,
    /// The subject, printable, for error messages.
    pub subject: String,
    pub spki_raw: Vec<u8>,
    pub key: PublicKey,
    /// Validity, seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    pub version3: bool,
    /// Basic constraints when present: (CA, path length constraint).
    pub basic_constraints: Option<(bool, Option<u32>)>,
    pub ski: Option<Vec<u8>>,
    /// Key usage when present and non-empty: whether it allows keyCertSign (Go's
    /// `CheckSignatureFrom` refuses a parent whose key usage lacks it).
    pub key_cert_sign: Option<bool>,
    pub eku: Option<Eku>,
    pub ous: Vec<String>,
    pub common_name: Option<String>,
    /// The serial number's magnitude, big-endian without leading zeros.
    pub serial: Vec<u8>,
    pub has_san: bool,
    pub has_name_constraints: bool,
    /// A critical extension Go's verifier does not handle (Go then refuses the leaf).
    pub unhandled_critical: Option<String>,
}

impl Cert {
    /// Parses DER; trailing bytes are refused, as Go's `x509.ParseCertificate` refuses them.
    pub(crate) fn from_der(der: &[u8]) -> Result<Cert, String> {
        let (rest, x) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err("trailing data after the certificate".into());
        }
        let parts = der::split_certificate(der).ok_or("certificate framing is not DER")?;
        let mut cert = Cert {
            der: der.to_vec(),
            tbs: parts.tbs.to_vec(),
            sig_alg: SigAlg::from_oid(&x.signature_algorithm.algorithm),
            signature: parts.signature.to_vec(),
            subject_raw: x.subject().as_raw().to_vec(),
            issuer_raw: x.issuer().as_raw().to_vec(),
            subject: x.subject().to_string(),
            spki_raw: x.public_key().raw.to_vec(),
            key: public_key(x.public_key()),
            not_before: x.validity().not_before.timestamp(),
            not_after: x.validity().not_after.timestamp(),
            version3: x.version().0 == 2,
            basic_constraints: None,
            ski: None,
            key_cert_sign: None,
            eku: None,
            ous: x
                .subject()
                .iter_organizational_unit()
                .filter_map(|a| a.as_str().ok().map(str::to_owned))
                .collect(),
            common_name: x
                .subject()
                .iter_common_name()
                .next()
                .and_then(|a| a.as_str().ok().map(str::to_owned)),
            serial: x
                .raw_serial()
                .iter()
                .copied()
                .skip_while(|b| *b == 0)
                .collect(),
            has_san: false,
            has_name_constraints: false,
            unhandled_critical: None,
        };
        for ext in x.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::ParseError { error } => {
                    return Err(format!(
                        "extension {} does not parse: {error}",
                        ext.oid.to_id_string()
                    ))
                }
                ParsedExtension::BasicConstraints(bc) => {
                    cert.basic_constraints = Some((bc.ca, bc.path_len_constraint))
                }
                ParsedExtension::SubjectKeyIdentifier(ki) => cert.ski = Some(ki.0.to_vec()),
                ParsedExtension::ExtendedKeyUsage(e) => {
                    cert.eku = Some(Eku {
                        any: e.any,
                        server_auth: e.server_auth,
                        client_auth: e.client_auth,
                    })
                }
                ParsedExtension::KeyUsage(ku) if ku.flags != 0 => {
                    cert.key_cert_sign = Some(ku.key_cert_sign())
                }
                ParsedExtension::SubjectAlternativeName(_) => cert.has_san = true,
                ParsedExtension::NameConstraints(_) => cert.has_name_constraints = true,
                _ => {}
            }
            if ext.critical && !handled_by_go(&ext.oid) && cert.unhandled_critical.is_none() {
                cert.unhandled_critical = Some(ext.oid.to_id_string());
            }
        }
        Ok(cert)
    }

    /// Go's `IsCA`: basic constraints present with CA=true.
    pub(crate) fn is_ca(&self) -> bool {
        matches!(self.basic_constraints, Some((true, _)))
    }

    /// NotBefore + 1 s: the instant Fabric verifies a certificate's chain at.
    pub(crate) fn check_time(&self) -> i64 {
        self.not_before.saturating_add(1)
    }

    pub(crate) fn not_after_time(&self) -> Option<SystemTime> {
        unix_to_system_time(self.not_after)
    }

    /// Whether `self` and `other` are the same CA for chain building (Go's `alreadyInChain`
    /// compares subject and key).
    pub(crate) fn same_entity(&self, other: &Cert) -> bool {
        self.subject_raw == other.subject_raw && self.spki_raw == other.spki_raw
    }

    /// Checks that `parent`'s key made this certificate's signature (Go's `CheckSignatureFrom`
    /// minus the CA test, which the chain builder does).
    pub(crate) fn signed_by(&self, parent: &PublicKey) -> Result<(), String> {
        verify_signed(&self.sig_alg, &self.tbs, &self.signature, parent)
    }
}

fn unix_to_system_time(secs: i64) -> Option<SystemTime> {
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    }
}

/// The critical extensions Go's `x509` package understands (others make a leaf unverifiable).
fn handled_by_go(oid: &Oid<'_>) -> bool {
    [
        oids::OID_X509_EXT_KEY_USAGE,
        oids::OID_X509_EXT_BASIC_CONSTRAINTS,
        oids::OID_X509_EXT_SUBJECT_ALT_NAME,
        oids::OID_X509_EXT_NAME_CONSTRAINTS,
        oids::OID_X509_EXT_CERTIFICATE_POLICIES,
        oids::OID_X509_EXT_EXTENDED_KEY_USAGE,
        oids::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
        oids::OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER,
        oids::OID_X509_EXT_CRL_DISTRIBUTION_POINTS,
    ]
    .iter()
    .any(|h| h == oid)
}

fn public_key(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> PublicKey {
    let alg = &spki.algorithm.algorithm;
    let bits = spki.subject_public_key.data.to_vec();
    if *alg == oids::OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        match curve {
            Some(c) if c == oids::OID_EC_P256 => PublicKey::Ecdsa {
                curve: Curve::P256,
                point: bits,
            },
            Some(c) if c == oids::OID_NIST_EC_P384 => PublicKey::Ecdsa {
                curve: Curve::P384,
                point: bits,
            },
            Some(c) => PublicKey::EcdsaOtherCurve(c.to_id_string()),
            None => PublicKey::EcdsaOtherCurve("unnamed curve".into()),
        }
    } else if *alg == oids::OID_SIG_ED25519 {
        match <[u8; 32]>::try_from(bits.as_slice()) {
            Ok(k) => PublicKey::Ed25519(k),
            Err(_) => PublicKey::Other("Ed25519 key of the wrong length".into()),
        }
    } else if *alg == oids::OID_PKCS1_RSAENCRYPTION {
        PublicKey::Rsa(bits)
    } else {
        PublicKey::Other(alg.to_id_string())
    }
}

/// Verifies a certificate or CRL signature (`alg` over `tbs`) under `key`. Certificate
/// signatures may be high-S: Go accepts them there, and so does ring.
pub(crate) fn verify_signed(
    alg: &SigAlg,
    tbs: &[u8],
    signature: &[u8],
    key: &PublicKey,
) -> Result<(), String> {
    use ring::signature as r;
    let (ring_alg, key_bytes): (&dyn r::VerificationAlgorithm, &[u8]) = match (alg, key) {
        (SigAlg::EcdsaSha256, PublicKey::Ecdsa { curve, point }) => (
            match curve {
                Curve::P256 => &r::ECDSA_P256_SHA256_ASN1,
                Curve::P384 => &r::ECDSA_P384_SHA256_ASN1,
            },
            point,
        ),
        (SigAlg::EcdsaSha384, PublicKey::Ecdsa { curve, point }) => (
            match curve {
                Curve::P256 => &r::ECDSA_P256_SHA384_ASN1,
                Curve::P384 => &r::ECDSA_P384_SHA384_ASN1,
            },
            point,
        ),
        (SigAlg::EcdsaSha512, PublicKey::Ecdsa { curve, point }) => {
            return verify_ecdsa_sha512(*curve, point, tbs, signature)
        }
        (SigAlg::Ed25519, PublicKey::Ed25519(k)) => (&r::ED25519, k.as_slice()),
        (SigAlg::RsaSha256, PublicKey::Rsa(k)) => (&r::RSA_PKCS1_2048_8192_SHA256, k),
        (SigAlg::RsaSha384, PublicKey::Rsa(k)) => (&r::RSA_PKCS1_2048_8192_SHA384, k),
        (SigAlg::RsaSha512, PublicKey::Rsa(k)) => (&r::RSA_PKCS1_2048_8192_SHA512, k),
        (alg, key) => {
            return Err(format!(
                "signature algorithm {alg:?} with a {} key is not supported",
                key.algorithm_name()
            ))
        }
    };
    // ring wants the exact DER SEQUENCE; Go tolerates bytes after it, so re-encode ECDSA first.
    let canonical;
    let signature = if alg.is_ecdsa() {
        let parsed = der::parse_ecdsa_sig(signature)?;
        canonical = der::encode_ecdsa_sig(&parsed);
        canonical.as_slice()
    } else {
        signature
    };
    r::UnparsedPublicKey::new(ring_alg, key_bytes)
        .verify(tbs, signature)
        .map_err(|_| "signature does not verify".to_string())
}

/// ECDSA with SHA-512 (which ring lacks), through the RustCrypto curves' prehash verification.
fn verify_ecdsa_sha512(
    curve: Curve,
    point: &[u8],
    tbs: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use sha2::Digest;
    let digest = sha2::Sha512::digest(tbs);
    let sig = der::encode_ecdsa_sig(&der::parse_ecdsa_sig(signature)?);
    let ok = match curve {
        Curve::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .ok()
            .zip(p256::ecdsa::Signature::from_der(&sig).ok())
            .is_some_and(|(k, s)| k.verify_prehash(&digest, &s).is_ok()),
        Curve::P384 => p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .ok()
            .zip(p384::ecdsa::Signature::from_der(&sig).ok())
            .is_some_and(|(k, s)| k.verify_prehash(&digest, &s).is_ok()),
    };
    if ok {
        Ok(())
    } else {
        Err("signature does not verify".into())
    }
}

/// The first PEM block's contents, as Go's `pem.Decode` finds it: text before it is skipped, the
/// block type and anything after it are not looked at.
pub(crate) fn first_pem_block(input: &[u8]) -> Option<pem::Pem> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let start = input.windows(BEGIN.len()).position(|w| w == BEGIN)?;
    let text = &input[start..];
    // Cut at the end of the first block's END line so that what follows never matters.
    let end_marker = b"-----END ";
    let end = text
        .windows(end_marker.len())
        .position(|w| w == end_marker)?;
    let line_end = text[end + end_marker.len()..]
        .windows(5)
        .position(|w| w == b"-----")
        .map(|p| end + end_marker.len() + p + 5)?;
    pem::parse(&text[..line_end]).ok()
}

/// A certificate given as PEM (first block) or DER.
pub(crate) fn der_from_pem_or_der(input: &[u8]) -> Option<Vec<u8>> {
    match first_pem_block(input) {
        Some(p) => Some(p.into_contents()),
        None if input.first() == Some(&0x30) => Some(input.to_vec()),
        None => None,
    }
}

/// PEM("CERTIFICATE", der) with 64-character lines and a trailing newline, as Go writes it.
pub(crate) fn to_pem(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_sha512_signatures_verify_without_ring() {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        use sha2::Digest;
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let tbs = b"to be signed";
        let sig: p256::ecdsa::Signature = key.sign_prehash(&sha2::Sha512::digest(tbs)).unwrap();
        let public = PublicKey::Ecdsa {
            curve: Curve::P256,
            point: key
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        };
        let der = sig.to_der().as_bytes().to_vec();
        assert!(verify_signed(&SigAlg::EcdsaSha512, tbs, &der, &public).is_ok());
        assert!(verify_signed(&SigAlg::EcdsaSha512, b"other", &der, &public).is_err());
        assert!(verify_signed(&SigAlg::EcdsaSha1, tbs, &der, &public).is_err());
    }
}
