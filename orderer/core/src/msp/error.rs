//! What can go wrong setting up an MSP and reading an identity, said with the MSP's name and,
//! where one is at hand, the certificate's subject.

/// Why an MSP (or a channel's set of MSPs, or a signing identity) could not be set up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MspError {
    /// The MSP config is not usable; `what` says which part and why.
    #[error("MSP {msp}: {what}")]
    Setup { msp: String, what: String },
    /// Only the X.509 (FABRIC, type 0) MSP exists here.
    #[error(
        "MSP config type {0} is not supported (only type 0, FABRIC; IDEMIX is not implemented)"
    )]
    UnsupportedType(i32),
    #[error("MSP config does not decode as a FabricMSPConfig: {0}")]
    Decode(String),
    #[error("Attempted to define two different versions of MSP: {0}")]
    Duplicate(String),
    /// A certificate handed to [`super::Msp::sanitize`] or [`super::Msp::verify_tls_cert`].
    #[error("MSP {msp}: certificate {subject}: {what}")]
    Certificate {
        msp: String,
        subject: String,
        what: String,
    },
    #[error("signing identity of {mspid}: {what}")]
    Signer { mspid: String, what: String },
}

/// Why a creator (a marshalled `SerializedIdentity`) does not deserialise.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("could not deserialize a SerializedIdentity: {0}")]
    Decode(String),
    #[error("MSP {0} is not defined on channel")]
    UnknownMsp(String),
    #[error("MSP {msp}: could not decode the PEM structure of the identity")]
    NotPem { msp: String },
    #[error("MSP {msp}: the identity's certificate does not parse: {why}")]
    Parse { msp: String, why: String },
    /// The certificate parsed but cannot be an identity of this MSP (its key cannot be imported,
    /// or, for an ECDSA-signed certificate, it does not chain to the MSP's CAs).
    #[error("MSP {msp}: identity {subject}: {why}")]
    Certificate {
        msp: String,
        subject: String,
        why: String,
    },
}
