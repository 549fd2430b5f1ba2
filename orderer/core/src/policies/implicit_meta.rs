//! An implicit-meta policy (`common.ImplicitMetaPolicy`): ANY / ALL / MAJORITY of one named
//! sub-policy across a group's child groups, resolved when the manager is built.

use std::collections::BTreeMap;
use std::sync::Arc;

use ordo_proto::common::implicit_meta_policy::Rule;
use ordo_proto::common::ImplicitMetaPolicy as Proto;
use prost::Message;

use super::{CompileError, Policy, PolicyManager, Unsatisfied};

#[derive(Clone, Debug)]
pub struct ImplicitMeta {
    sub_policy: Arc<str>,
    /// One per child group, in child-name order; a missing one is a reject policy and counts.
    subs: Vec<Arc<Policy>>,
    threshold: usize,
}

impl ImplicitMeta {
    /// Compiles a marshalled `ImplicitMetaPolicy` of a group whose child groups' managers are
    /// `children`.
    pub(super) fn decode(
        value: &[u8],
        children: &BTreeMap<String, PolicyManager>,
    ) -> Result<ImplicitMeta, CompileError> {
        let definition = Proto::decode(value).map_err(|e| CompileError::Decode {
            what: "ImplicitMetaPolicy",
            reason: e.to_string(),
        })?;
        let subs: Vec<Arc<Policy>> = children
            .values()
            .map(|m| m.get(&definition.sub_policy).0)
            .collect();
        let m = subs.len();
        // As Fabric: a rule value outside the enum leaves the threshold at 0 (see `evaluate`),
        // and no child groups make the threshold 0 whatever the rule.
        let threshold = match Rule::try_from(definition.rule) {
            _ if m == 0 => 0,
            Ok(Rule::Any) => 1,
            Ok(Rule::All) => m,
            Ok(Rule::Majority) => m / 2 + 1,
            Err(_) => 0,
        };
        Ok(ImplicitMeta {
            sub_policy: definition.sub_policy.into(),
            subs,
            threshold,
        })
    }

    pub fn threshold(&self) -> usize {
        self.threshold
    }

    pub fn sub_policy(&self) -> &str {
        &self.sub_policy
    }

    /// Evaluates the sub-policies in order, each on the whole signature set (each with its own
    /// `used` state), until the threshold is reached.
    pub(super) fn evaluate(
        &self,
        mut satisfied: impl FnMut(&Policy) -> bool,
    ) -> Result<(), Unsatisfied> {
        // Fabric's loop exactly: success is checked only after a satisfied sub-policy, and at the
        // end as `remaining == 0`. So with no children it passes, and with a threshold of 0 over
        // children (an unknown rule value) it passes only if no sub-policy is satisfied.
        let mut count = 0;
        for sub in &self.subs {
            if satisfied(sub) {
                count += 1;
                if count == self.threshold {
                    return Ok(());
                }
            }
        }
        if count == self.threshold {
            return Ok(());
        }
        Err(Unsatisfied::ImplicitMeta {
            satisfied: count,
            required: self.threshold,
            sub_policy: self.sub_policy.clone(),
        })
    }
}
