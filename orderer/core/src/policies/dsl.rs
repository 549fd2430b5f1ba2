//! Fabric's signature policy language (`OR('Org1MSP.member', AND('A.admin','B.admin'))`,
//! `OutOf(2, ...)`), as configtxgen profiles write policies, compiled to the
//! `common.SignaturePolicyEnvelope` Fabric's `policydsl` produces.

use ordo_proto::common::SignaturePolicyEnvelope;

/// Why a policy expression does not compile, with where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("policy {expression:?}: {reason}")]
pub struct DslError {
    pub expression: String,
    pub reason: String,
}

/// Compiles a policy expression (see the module doc).
pub fn parse(expression: &str) -> Result<SignaturePolicyEnvelope, DslError> {
    Err(DslError {
        expression: expression.into(),
        reason: "the policy language is not implemented yet".into(),
    })
}
