//! A compiled policy with its path, and the two ways to evaluate it: over signed data (steps 1
//! and 2) or over identities already deserialised, verified and deduplicated (step 2 only, the
//! Broadcast hot path).

use std::sync::Arc;

use super::{
    valid_identities, CompileError, Identities, ImplicitMeta, PolicyError, SignaturePolicy,
    SignedData, Unsatisfied,
};

/// A policy as the manager holds it.
#[derive(Clone, Debug)]
pub struct Policy {
    path: Arc<str>,
    kind: Kind,
}

#[derive(Clone, Debug)]
pub(super) enum Kind {
    Signature(SignaturePolicy),
    ImplicitMeta(ImplicitMeta),
    /// What a lookup of a missing policy returns (Fabric's `rejectPolicy`).
    Reject,
}

impl Policy {
    pub(super) fn new(path: Arc<str>, kind: Kind) -> Policy {
        Policy { path, kind }
    }

    /// A standalone signature policy (e.g. one not held in a config tree).
    pub fn signature(
        path: &str,
        envelope: &ordo_proto::common::SignaturePolicyEnvelope,
    ) -> Result<Policy, CompileError> {
        Ok(Policy::new(
            path.into(),
            Kind::Signature(SignaturePolicy::compile(envelope)?),
        ))
    }

    /// The policy that rejects everything with `no such policy: '<name>'`.
    pub fn reject(name: &str) -> Policy {
        Policy::new(name.into(), Kind::Reject)
    }

    /// The full path (`/Channel/Application/Org1/Admins`), or for a reject policy the name asked for.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Steps 1 and 2 (§4.3): the signatures' valid, distinct signers satisfy the policy.
    pub fn evaluate_signed_data<I: Identities>(
        &self,
        signed: &[SignedData],
        ids: &I,
    ) -> Result<(), PolicyError> {
        if let Kind::Reject = self.kind {
            return Err(self.fail(Unsatisfied::NoSuchPolicy(self.path.clone())));
        }
        // Fabric re-runs step 1 inside every signature sub-policy of an implicit-meta policy;
        // deserialising and verifying are deterministic, so once is the same answer.
        let identities = valid_identities(signed, ids);
        self.evaluate_identities(&identities, ids)
    }

    /// Step 2 only: `identities` must already be valid, verified and deduplicated by signer key
    /// (as [`valid_identities`] leaves them). Allocates nothing on success.
    pub fn evaluate_identities<I: Identities>(
        &self,
        identities: &[I::Identity],
        ids: &I,
    ) -> Result<(), PolicyError> {
        match &self.kind {
            Kind::Signature(policy) => {
                if policy.satisfied_by(identities, ids) {
                    Ok(())
                } else {
                    Err(self.fail(Unsatisfied::Signatures))
                }
            }
            Kind::ImplicitMeta(policy) => policy
                .evaluate(|sub| sub.satisfied_by(identities, ids))
                .map_err(|reason| self.fail(reason)),
            Kind::Reject => Err(self.fail(Unsatisfied::NoSuchPolicy(self.path.clone()))),
        }
    }

    /// Whether the identities satisfy it, without building an error (sub-policy evaluation).
    pub(super) fn satisfied_by<I: Identities>(&self, identities: &[I::Identity], ids: &I) -> bool {
        match &self.kind {
            Kind::Signature(policy) => policy.satisfied_by(identities, ids),
            Kind::ImplicitMeta(policy) => policy
                .evaluate(|sub| sub.satisfied_by(identities, ids))
                .is_ok(),
            Kind::Reject => false,
        }
    }

    fn fail(&self, reason: Unsatisfied) -> PolicyError {
        PolicyError::Unsatisfied {
            path: self.path.clone(),
            reason,
        }
    }
}
