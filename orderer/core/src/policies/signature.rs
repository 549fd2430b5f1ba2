//! A compiled signature policy (`common.SignaturePolicyEnvelope`, Fabric's cauthdsl) and its
//! step 2: greedy matching of an ordered list of valid identities against the rule.

use ordo_proto::common::{signature_policy, SignaturePolicyEnvelope};
use prost::Message;

use super::{CompileError, Identities};
use crate::msp::Principal;

/// A signature policy ready to evaluate.
#[derive(Clone, Debug)]
pub struct SignaturePolicy {
    rule: Rule,
    /// `None` for a principal that does not decode: Fabric's MSP fails such a principal at every
    /// evaluation rather than rejecting the config, so it is kept as one no identity satisfies.
    principals: Vec<Option<Principal>>,
}

#[derive(Clone, Debug)]
enum Rule {
    /// An index into `principals`, range-checked at compile time.
    SignedBy(usize),
    NOutOf {
        n: i32,
        rules: Vec<Rule>,
    },
}

impl SignaturePolicy {
    /// Compiles a marshalled `SignaturePolicyEnvelope` (a `Policy.value` of type SIGNATURE).
    pub fn decode(value: &[u8]) -> Result<SignaturePolicy, CompileError> {
        let envelope =
            SignaturePolicyEnvelope::decode(value).map_err(|e| CompileError::Decode {
                what: "SignaturePolicy",
                reason: e.to_string(),
            })?;
        SignaturePolicy::compile(&envelope)
    }

    /// Compiles an envelope: version 0 only, every `signed_by` within `identities`.
    pub fn compile(envelope: &SignaturePolicyEnvelope) -> Result<SignaturePolicy, CompileError> {
        if envelope.version != 0 {
            return Err(CompileError::Version(envelope.version));
        }
        let rule = envelope.rule.as_ref().ok_or(CompileError::EmptyRule)?;
        let rule = compile_rule(rule, envelope.identities.len())?;
        let principals = envelope
            .identities
            .iter()
            .map(|p| Principal::from_proto(p).ok())
            .collect();
        Ok(SignaturePolicy { rule, principals })
    }

    /// Step 2: whether these identities (valid, distinct, in signature order) satisfy the rule.
    /// Allocation-free for up to 128 identities (the `used` flags fit one integer).
    pub fn satisfied_by<I: Identities>(&self, identities: &[I::Identity], ids: &I) -> bool {
        let eval = Eval {
            principals: &self.principals,
            identities,
            ids,
        };
        if identities.len() <= 128 {
            eval.rule(&self.rule, &mut 0u128)
        } else {
            eval.rule(&self.rule, &mut vec![false; identities.len()])
        }
    }
}

fn compile_rule(
    rule: &ordo_proto::common::SignaturePolicy,
    len: usize,
) -> Result<Rule, CompileError> {
    use signature_policy::Type;
    match &rule.r#type {
        None => Err(CompileError::UnknownRuleType),
        Some(Type::SignedBy(index)) => match usize::try_from(*index) {
            Ok(i) if i < len => Ok(Rule::SignedBy(i)),
            _ => Err(CompileError::IndexOutOfRange { index: *index, len }),
        },
        Some(Type::NOutOf(n_out_of)) => Ok(Rule::NOutOf {
            n: n_out_of.n,
            rules: n_out_of
                .rules
                .iter()
                .map(|r| compile_rule(r, len))
                .collect::<Result<_, _>>()?,
        }),
    }
}

/// Which identities a SignedBy leaf has taken during one evaluation.
trait Used: Clone {
    fn is_used(&self, i: usize) -> bool;
    fn mark(&mut self, i: usize);
    fn set_to(&mut self, other: &Self);
}

impl Used for u128 {
    fn is_used(&self, i: usize) -> bool {
        self >> i & 1 == 1
    }
    fn mark(&mut self, i: usize) {
        *self |= 1 << i;
    }
    fn set_to(&mut self, other: &Self) {
        *self = *other;
    }
}

impl Used for Vec<bool> {
    fn is_used(&self, i: usize) -> bool {
        self.get(i).copied().unwrap_or(true)
    }
    fn mark(&mut self, i: usize) {
        if let Some(u) = self.get_mut(i) {
            *u = true;
        }
    }
    fn set_to(&mut self, other: &Self) {
        self.clone_from(other);
    }
}

struct Eval<'a, I: Identities> {
    principals: &'a [Option<Principal>],
    identities: &'a [I::Identity],
    ids: &'a I,
}

impl<I: Identities> Eval<'_, I> {
    fn rule<U: Used>(&self, rule: &Rule, used: &mut U) -> bool {
        match rule {
            // The first unused identity that satisfies the principal takes this leaf (greedy).
            Rule::SignedBy(p) => {
                let Some(Some(principal)) = self.principals.get(*p) else {
                    return false;
                };
                for (i, identity) in self.identities.iter().enumerate() {
                    if !used.is_used(i) && self.ids.satisfies(identity, principal) {
                        used.mark(i);
                        return true;
                    }
                }
                false
            }
            // Every rule runs (no short-circuit) on a scratch copy, kept only if it succeeds.
            Rule::NOutOf { n, rules } => {
                let mut count: i64 = 0;
                let mut scratch = used.clone();
                for rule in rules {
                    scratch.set_to(used);
                    if self.rule(rule, &mut scratch) {
                        count += 1;
                        used.set_to(&scratch);
                    }
                }
                count >= i64::from(*n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{id, Fake};
    use super::*;
    use crate::msp::Role;
    use ordo_proto::common::signature_policy::{NOutOf, Type};
    use ordo_proto::common::SignaturePolicy as Proto;

    fn by(i: i32) -> Proto {
        Proto {
            r#type: Some(Type::SignedBy(i)),
        }
    }
    fn out_of(n: i32, rules: Vec<Proto>) -> Proto {
        Proto {
            r#type: Some(Type::NOutOf(NOutOf { n, rules })),
        }
    }
    fn envelope(rule: Proto, principals: &[(&str, Role)]) -> SignaturePolicyEnvelope {
        SignaturePolicyEnvelope {
            version: 0,
            rule: Some(rule),
            identities: principals
                .iter()
                .map(|(m, r)| Principal::role(*m, *r))
                .collect(),
        }
    }
    fn check(policy: &SignaturePolicy, creators: &[&str]) -> bool {
        let identities: Vec<_> = creators.iter().map(|c| id(c)).collect();
        policy.satisfied_by(&identities, &Fake)
    }

    use Role::{Admin, Member};

    #[test]
    fn evaluation_table() {
        let a = ("A", Member);
        let b = ("B", Member);
        let c = ("C", Member);
        let a_admin = ("A", Admin);
        // (rule, principals, identities, satisfied)
        type Case<'a> = (Proto, Vec<(&'a str, Role)>, Vec<&'a str>, bool);
        let cases: Vec<Case> = vec![
            // OR
            (
                out_of(1, vec![by(0), by(1)]),
                vec![a, b],
                vec!["B:1:"],
                true,
            ),
            (
                out_of(1, vec![by(0), by(1)]),
                vec![a, b],
                vec!["C:1:"],
                false,
            ),
            (out_of(1, vec![by(0), by(1)]), vec![a, b], vec![], false),
            // AND
            (
                out_of(2, vec![by(0), by(1)]),
                vec![a, b],
                vec!["A:1:", "B:1:"],
                true,
            ),
            (
                out_of(2, vec![by(0), by(1)]),
                vec![a, b],
                vec!["A:1:"],
                false,
            ),
            // 2 out of 3
            (
                out_of(2, vec![by(0), by(1), by(2)]),
                vec![a, b, c],
                vec!["C:1:", "A:1:"],
                true,
            ),
            (
                out_of(2, vec![by(0), by(1), by(2)]),
                vec![a, b, c],
                vec!["C:1:"],
                false,
            ),
            (
                out_of(3, vec![by(0), by(1), by(2)]),
                vec![a, b, c],
                vec!["C:1:", "A:1:", "B:1:"],
                true,
            ),
            // n greater than the rules can never be met
            (out_of(2, vec![by(0)]), vec![a], vec!["A:1:", "A:2:"], false),
            // AND('A.member','A.member') needs two distinct A identities
            (
                out_of(2, vec![by(0), by(1)]),
                vec![a, a],
                vec!["A:1:"],
                false,
            ),
            (
                out_of(2, vec![by(0), by(1)]),
                vec![a, a],
                vec!["A:1:", "A:2:"],
                true,
            ),
            // n <= 0 is always true, even with no rules or no signers
            (out_of(0, vec![]), vec![], vec![], true),
            (out_of(-3, vec![by(0)]), vec![a], vec![], true),
            (out_of(0, vec![by(0)]), vec![a], vec!["B:1:"], true),
            // NOutOf(1, []) rejects all
            (out_of(1, vec![]), vec![], vec!["A:1:"], false),
            // Greedy: the admin is first and is taken by the member leaf, so the admin leaf
            // finds nobody, although assigning the other way round would have worked.
            (
                out_of(2, vec![by(0), by(1)]),
                vec![a, a_admin],
                vec!["A:1:admin", "A:2:"],
                false,
            ),
            // ...while with the admin listed last the greedy order works.
            (
                out_of(2, vec![by(0), by(1)]),
                vec![a, a_admin],
                vec!["A:2:", "A:1:admin"],
                true,
            ),
            // Nested: OR(A, AND(B, C)); a failing inner gate's picks are discarded.
            (
                out_of(1, vec![by(0), out_of(2, vec![by(1), by(2)])]),
                vec![a, b, c],
                vec!["B:1:", "C:1:"],
                true,
            ),
            (
                out_of(1, vec![by(0), out_of(2, vec![by(1), by(2)])]),
                vec![a, b, c],
                vec!["B:1:"],
                false,
            ),
            // A failing inner AND must not consume B for the later leaf.
            (
                out_of(2, vec![out_of(2, vec![by(1), by(2)]), by(1), by(0)]),
                vec![a, b, c],
                vec!["B:1:", "A:1:"],
                true,
            ),
            (
                out_of(1, vec![out_of(2, vec![by(1), by(2)]), by(1)]),
                vec![a, b, c],
                vec!["B:1:"],
                true,
            ),
            // Evaluating every rule: OR consumes for each success, so a later sibling gate
            // (here the outer AND's second rule) cannot reuse them.
            (
                out_of(2, vec![out_of(1, vec![by(0), by(0)]), by(0)]),
                vec![a],
                vec!["A:1:", "A:2:"],
                false,
            ),
            (
                out_of(2, vec![out_of(1, vec![by(0), by(0)]), by(0)]),
                vec![a],
                vec!["A:1:", "A:2:", "A:3:"],
                true,
            ),
        ];
        for (i, (rule, principals, creators, want)) in cases.into_iter().enumerate() {
            let policy = SignaturePolicy::compile(&envelope(rule, &principals)).unwrap();
            assert_eq!(check(&policy, &creators), want, "case {i}: {creators:?}");
        }
    }

    #[test]
    fn more_than_128_identities() {
        // 200 identities of A: the slow path (a Vec of flags) agrees with the fast one.
        let creators: Vec<String> = (0..200).map(|i| format!("A:{i}:")).collect();
        let creators: Vec<&str> = creators.iter().map(String::as_str).collect();
        let all: Vec<Proto> = (0..200).map(|_| by(0)).collect();
        let policy =
            SignaturePolicy::compile(&envelope(out_of(200, all.clone()), &[("A", Member)]))
                .unwrap();
        assert!(check(&policy, &creators));
        assert!(!check(&policy, &creators[..199]));
        let policy =
            SignaturePolicy::compile(&envelope(out_of(2, vec![by(0), by(0)]), &[("A", Member)]))
                .unwrap();
        assert!(check(&policy, &creators));
    }

    #[test]
    fn undecodable_principal_is_never_satisfied() {
        let mut env = envelope(
            out_of(1, vec![by(0), by(1)]),
            &[("A", Member), ("B", Member)],
        );
        env.identities[0].principal_classification = 42;
        let policy = SignaturePolicy::compile(&env).unwrap();
        assert!(!check(&policy, &["A:1:"]));
        assert!(check(&policy, &["B:1:"]));
    }

    #[test]
    fn compile_errors() {
        let a = [("A", Member)];
        let cases: Vec<(SignaturePolicyEnvelope, CompileError)> = vec![
            (
                envelope(by(1), &a),
                CompileError::IndexOutOfRange { index: 1, len: 1 },
            ),
            (
                envelope(by(-1), &a),
                CompileError::IndexOutOfRange { index: -1, len: 1 },
            ),
            (
                envelope(out_of(1, vec![by(0), by(5)]), &a),
                CompileError::IndexOutOfRange { index: 5, len: 1 },
            ),
            (
                envelope(by(0), &[]),
                CompileError::IndexOutOfRange { index: 0, len: 0 },
            ),
            (
                envelope(Proto { r#type: None }, &a),
                CompileError::UnknownRuleType,
            ),
            (
                envelope(out_of(1, vec![Proto { r#type: None }]), &a),
                CompileError::UnknownRuleType,
            ),
            (
                SignaturePolicyEnvelope {
                    version: 1,
                    ..envelope(by(0), &a)
                },
                CompileError::Version(1),
            ),
            (
                SignaturePolicyEnvelope {
                    rule: None,
                    ..envelope(by(0), &a)
                },
                CompileError::EmptyRule,
            ),
        ];
        for (env, want) in cases {
            assert_eq!(SignaturePolicy::compile(&env).unwrap_err(), want);
        }
        assert!(matches!(
            SignaturePolicy::decode(b"\xff\xff"),
            Err(CompileError::Decode { .. })
        ));
    }
}
