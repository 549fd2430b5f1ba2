//! Why a policy does not compile or is not satisfied. Messages follow Fabric's wording, and
//! every error names the policy's path, so a caller can report it as Fabric would
//! (`reason.to_string()`) or with where (`to_string()`).

use std::sync::Arc;

/// Why a policy in the config does not compile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("policy was nil")]
    Nil,
    #[error("has unknown policy type: {0}")]
    UnknownType(i32),
    #[error("Error unmarshalling to {what}: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("This evaluator only understands messages of version 0, but version was {0}")]
    Version(i32),
    #[error("Empty policy element")]
    EmptyRule,
    #[error("Unknown type: a signature policy with neither signed_by nor n_out_of")]
    UnknownRuleType,
    #[error("identity index out of range, requested {index}, but identities length is {len}")]
    IndexOutOfRange { index: i32, len: usize },
}

/// Why a signature set does not satisfy a policy.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unsatisfied {
    #[error("signature set did not satisfy policy")]
    Signatures,
    #[error(
        "implicit policy evaluation failed - {satisfied} sub-policies were satisfied, but this \
         policy requires {required} of the '{sub_policy}' sub-policies to be satisfied"
    )]
    ImplicitMeta {
        satisfied: usize,
        required: usize,
        sub_policy: Arc<str>,
    },
    #[error("no such policy: '{0}'")]
    NoSuchPolicy(Arc<str>),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// `path` is the policy's full path, e.g. `/Channel/Application/Org1/Admins`.
    #[error("policy {path} did not compile: {reason}")]
    Compile { path: String, reason: CompileError },
    /// `path` is the evaluated policy's full path (for a missing policy, the name asked for).
    #[error("policy {path}: {reason}")]
    Unsatisfied { path: Arc<str>, reason: Unsatisfied },
}

impl PolicyError {
    /// The reason alone, worded as Fabric's error is (for a missing policy, `no such policy`).
    pub fn unsatisfied(&self) -> Option<&Unsatisfied> {
        match self {
            PolicyError::Unsatisfied { reason, .. } => Some(reason),
            PolicyError::Compile { .. } => None,
        }
    }
}
