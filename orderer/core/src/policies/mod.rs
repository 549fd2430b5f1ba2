//! Fabric's policies: signature policies (n-out-of over principals) and implicit-meta policies
//! (ANY / ALL / MAJORITY of a sub-policy over child groups), compiled from the channel
//! configuration into a manager that answers a policy path over a set of signatures, with
//! Fabric's evaluation semantics (`common/policies`, `common/cauthdsl`). Pure.
//!
//! Evaluation goes through [`Identities`], which the channel's MSP implements: policies never
//! see certificates, only decoded identities, their signer keys and principal checks.
//!
//! Where this knowingly differs from Fabric (none changes which configs compile or which
//! signature sets pass, except the DSL's refusals):
//! - an implicit-meta policy over signed data runs step 1 once, not once per signature
//!   sub-policy (deserialising and verifying are deterministic, so the answer is the same);
//! - a principal that does not decode is kept as one nobody satisfies, where Fabric's MSP fails
//!   it at each evaluation: same outcome, no config refused for it;
//! - `get("/Channel")` rejects, where Fabric's slice would panic;
//! - the DSL accepts only literal arguments (see [`dsl`]): Fabric's expression engine also
//!   accepts quoted numbers, escapes and strings that are themselves expressions.

pub mod dsl;
mod error;
mod identities;
mod implicit_meta;
mod manager;
mod policy;
mod signature;
#[cfg(test)]
mod testing;

pub use error::{CompileError, PolicyError, Unsatisfied};
pub use identities::{valid_identities, Identities};
pub use implicit_meta::ImplicitMeta;
pub use manager::PolicyManager;
pub use policy::Policy;
pub use signature::SignaturePolicy;

use bytes::Bytes;

/// One signature a policy is evaluated over (Fabric's `SignedData`): `signature` by the creator
/// `identity` (a marshalled `msp.SerializedIdentity`) over `data`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedData {
    pub data: Bytes,
    pub identity: Bytes,
    pub signature: Bytes,
}
