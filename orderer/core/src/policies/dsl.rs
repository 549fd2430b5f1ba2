//! Fabric's signature policy language (`OR('Org1MSP.member', AND('A.admin','B.admin'))`,
//! `OutOf(2, ...)`), as configtxgen profiles write policies, compiled to the
//! `common.SignaturePolicyEnvelope` Fabric's `policydsl.FromString` produces; configtxgen's
//! implicit-meta rule strings (`MAJORITY Admins`); and the `common.Policy` wrappers a genesis
//! config holds.
//!
//! The accepted language: a gate `AND(args)`, `OR(args)` or `OutOf(n, args)` (each name also
//! all-lower- or all-upper-case, as Fabric), one or more comma-separated args, each a nested
//! gate or a principal `'MSPID.role'` (single or double quotes; role `member`, `admin`,
//! `client`, `peer` or `orderer`; MSPID of ASCII letters, digits, `.` and `-`).
//! OutOf's threshold is a decimal literal (a fraction truncates, as Fabric's float-to-int).
//! Fabric evaluates the text with a general expression engine, so it also takes quoted numbers,
//! escapes inside strings and strings that are themselves policy expressions; those are refused
//! here, as is nesting deeper than [`MAX_DEPTH`].

use ordo_proto::common::implicit_meta_policy::Rule;
use ordo_proto::common::policy::PolicyType;
use ordo_proto::common::signature_policy::{NOutOf, Type};
use ordo_proto::common::{ImplicitMetaPolicy, Policy, SignaturePolicy, SignaturePolicyEnvelope};
use ordo_proto::msp::MspPrincipal;
use prost::Message;

use crate::msp::{Principal, Role};

/// Why a policy expression does not compile, with where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("policy {expression:?}: {reason}")]
pub struct DslError {
    pub expression: String,
    pub reason: String,
}

/// Gates nested deeper than this are refused: each gate is two message levels in the encoded
/// envelope, and decoders (prost's included) refuse messages nested past 100 levels.
pub const MAX_DEPTH: usize = 32;

/// Compiles a policy expression (see the module doc).
///
/// As Fabric, principals are appended to `identities` without deduplication, each gate's nested
/// gates first (left to right) and then its own principals: `OR('A.member', AND('B.member',
/// 'C.member'))` gives identities `[B, C, A]` and rule `NOutOf(1, [SignedBy 2, NOutOf(2,
/// [SignedBy 0, SignedBy 1])])`.
pub fn parse(expression: &str) -> Result<SignaturePolicyEnvelope, DslError> {
    let fail = |reason: String| DslError {
        expression: expression.into(),
        reason,
    };
    let mut parser = Parser {
        src: expression.as_bytes(),
        pos: 0,
    };
    let gate = parser.gate(0).map_err(fail)?;
    parser.skip_space();
    if parser.pos != parser.src.len() {
        return Err(fail(format!(
            "unexpected input at offset {} after the policy",
            parser.pos
        )));
    }
    let mut identities = Vec::new();
    let rule = build(&gate, &mut identities).map_err(fail)?;
    Ok(SignaturePolicyEnvelope {
        version: 0,
        rule: Some(rule),
        identities,
    })
}

/// A parsed gate: `n` out of `args`.
struct Gate {
    n: i32,
    args: Vec<Arg>,
}

enum Arg {
    Gate(Gate),
    Principal { mspid: String, role: Role },
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.src.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.src.get(self.pos).copied()
    }

    fn expect(&mut self, want: u8) -> Result<(), String> {
        match self.peek() {
            Some(c) if c == want => {
                self.pos += 1;
                Ok(())
            }
            Some(c) => Err(format!(
                "expected '{}' at offset {}, found '{}'",
                want as char,
                self.pos,
                c.escape_ascii()
            )),
            None => Err(format!("expected '{}', found the end", want as char)),
        }
    }

    /// `[A-Za-z_][A-Za-z0-9_]*`, the shape of a name in Fabric's expression language.
    fn name(&mut self) -> Option<&str> {
        self.skip_space();
        let start = self.pos;
        while self
            .src
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            self.pos += 1;
        }
        let name = std::str::from_utf8(&self.src[start..self.pos]).ok()?;
        let leading_letter = name.as_bytes().first().is_some_and(|c| !c.is_ascii_digit());
        leading_letter.then_some(name)
    }

    fn gate(&mut self, depth: usize) -> Result<Gate, String> {
        if depth >= MAX_DEPTH {
            return Err(format!("gates nested deeper than {MAX_DEPTH}"));
        }
        let at = self.pos;
        #[derive(PartialEq)]
        enum Kind {
            And,
            Or,
            OutOf,
        }
        let kind = match self.name() {
            Some("And" | "and" | "AND") => Kind::And,
            Some("Or" | "or" | "OR") => Kind::Or,
            Some("OutOf" | "outof" | "OUTOF") => Kind::OutOf,
            Some(other) => return Err(format!("unrecognized token '{other}' in policy string")),
            None => return Err(format!("expected AND, OR or OutOf at offset {at}")),
        };
        self.expect(b'(')?;
        let t = if kind == Kind::OutOf {
            let t = self.number()?;
            self.expect(b',')?;
            Some(t)
        } else {
            None
        };
        let mut args = Vec::new();
        if self.peek() == Some(b')') {
            // Fabric: OR() and AND() become OutOf(n) with no args.
            return Err("expected at least two arguments to NOutOf. Given 1".into());
        }
        loop {
            args.push(self.arg(depth)?);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {
                    self.pos += 1;
                    break;
                }
                Some(c) => {
                    return Err(format!(
                        "expected ',' or ')' at offset {}, found '{}'",
                        self.pos,
                        c.escape_ascii()
                    ))
                }
                None => return Err("expected ')', found the end".into()),
            }
        }
        let len = args.len() as i64;
        let t = match kind {
            Kind::And => len,
            Kind::Or => 1,
            Kind::OutOf => t.unwrap_or_default(),
        };
        // Fabric's bound: 0 <= t <= n+1 (t = n+1 is allowed and can never be met).
        if t < 0 || t > len + 1 {
            return Err(format!("invalid t-out-of-n predicate, t {t}, n {len}"));
        }
        let n = i32::try_from(t).map_err(|_| format!("too many arguments: {len}"))?;
        Ok(Gate { n, args })
    }

    /// OutOf's threshold: a decimal literal, an optional `-`; a fraction is truncated toward
    /// zero, as Fabric's float-to-int conversion does.
    fn number(&mut self) -> Result<i64, String> {
        self.skip_space();
        let start = self.pos;
        if self.src.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let digits = |p: &mut Self| {
            let s = p.pos;
            while p.src.get(p.pos).is_some_and(u8::is_ascii_digit) {
                p.pos += 1;
            }
            p.pos > s
        };
        if !digits(self) {
            return Err(format!("expected a number at offset {start}"));
        }
        let mut fraction = false;
        if self.src.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if !digits(self) {
                return Err(format!("bad number at offset {start}"));
            }
            fraction = true;
        }
        let text = std::str::from_utf8(&self.src[start..self.pos]).map_err(|e| e.to_string())?;
        if fraction {
            let value: f64 = text.parse().map_err(|_| format!("bad number {text}"))?;
            // Saturating; anything out of i32 range fails the bound check.
            Ok(value.trunc() as i64)
        } else {
            text.parse().map_err(|_| format!("bad number {text}"))
        }
    }

    fn arg(&mut self, depth: usize) -> Result<Arg, String> {
        match self.peek() {
            Some(quote @ (b'\'' | b'"')) => {
                self.pos += 1;
                let start = self.pos;
                while let Some(&c) = self.src.get(self.pos) {
                    if c == quote {
                        break;
                    }
                    if c == b'\\' {
                        return Err(format!("escapes are not supported (offset {})", self.pos));
                    }
                    self.pos += 1;
                }
                if self.src.get(self.pos) != Some(&quote) {
                    return Err(format!("unterminated string at offset {}", start - 1));
                }
                let text =
                    std::str::from_utf8(&self.src[start..self.pos]).map_err(|e| e.to_string())?;
                self.pos += 1;
                let (mspid, role) = principal(text)?;
                Ok(Arg::Principal { mspid, role })
            }
            Some(_) => Ok(Arg::Gate(self.gate(depth + 1)?)),
            None => Err("expected an argument, found the end".into()),
        }
    }
}

/// `MSPID.role`, as Fabric's `^([[:alnum:].-]+)([.])(admin|member|client|peer|orderer)$`: the
/// role follows the last `.`, and the MSP ID may itself contain dots.
fn principal(text: &str) -> Result<(String, Role), String> {
    let bad = || format!("error parsing principal {text}");
    let (mspid, role) = text.rsplit_once('.').ok_or_else(bad)?;
    let role = match role {
        "member" => Role::Member,
        "admin" => Role::Admin,
        "client" => Role::Client,
        "peer" => Role::Peer,
        "orderer" => Role::Orderer,
        _ => return Err(bad()),
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
    if mspid.is_empty() || !mspid.chars().all(valid) {
        return Err(bad());
    }
    Ok((mspid.to_string(), role))
}

/// Fabric's order: nested gates are evaluated (and append their principals) before the gate
/// turns its own principal strings into SignedBy leaves.
fn build(gate: &Gate, identities: &mut Vec<MspPrincipal>) -> Result<SignaturePolicy, String> {
    let mut rules = Vec::with_capacity(gate.args.len());
    for arg in &gate.args {
        rules.push(match arg {
            Arg::Gate(inner) => Some(build(inner, identities)?),
            Arg::Principal { .. } => None,
        });
    }
    for (slot, arg) in rules.iter_mut().zip(&gate.args) {
        if let Arg::Principal { mspid, role } = arg {
            let index =
                i32::try_from(identities.len()).map_err(|_| "too many principals".to_string())?;
            identities.push(Principal::role(mspid.as_str(), *role));
            *slot = Some(SignaturePolicy {
                r#type: Some(Type::SignedBy(index)),
            });
        }
    }
    Ok(SignaturePolicy {
        r#type: Some(Type::NOutOf(NOutOf {
            n: gate.n,
            rules: rules.into_iter().flatten().collect(),
        })),
    })
}

/// configtxgen's implicit-meta rule string: `RULE SubPolicy`, exactly two tokens split on single
/// spaces, RULE one of `ANY`, `ALL`, `MAJORITY` (Fabric's `ImplicitMetaFromString`).
pub fn implicit_meta(expression: &str) -> Result<ImplicitMetaPolicy, DslError> {
    let fail = |reason: String| DslError {
        expression: expression.into(),
        reason,
    };
    let tokens: Vec<&str> = expression.split(' ').collect();
    let [rule, sub_policy] = tokens[..] else {
        return Err(fail(format!(
            "expected two space separated tokens, but got {}",
            tokens.len()
        )));
    };
    let rule = match rule {
        "ANY" => Rule::Any,
        "ALL" => Rule::All,
        "MAJORITY" => Rule::Majority,
        other => {
            return Err(fail(format!(
                "unknown rule type '{other}', expected ALL, ANY, or MAJORITY"
            )))
        }
    };
    Ok(ImplicitMetaPolicy {
        sub_policy: sub_policy.into(),
        rule: rule as i32,
    })
}

/// A SIGNATURE `common.Policy` holding `envelope`.
pub fn signature_policy(envelope: &SignaturePolicyEnvelope) -> Policy {
    Policy {
        r#type: PolicyType::Signature as i32,
        value: envelope.encode_to_vec().into(),
    }
}

/// An IMPLICIT_META `common.Policy` holding `policy`.
pub fn implicit_meta_policy(policy: &ImplicitMetaPolicy) -> Policy {
    Policy {
        r#type: PolicyType::ImplicitMeta as i32,
        value: policy.encode_to_vec().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by(i: i32) -> SignaturePolicy {
        SignaturePolicy {
            r#type: Some(Type::SignedBy(i)),
        }
    }
    fn out_of(n: i32, rules: Vec<SignaturePolicy>) -> SignaturePolicy {
        SignaturePolicy {
            r#type: Some(Type::NOutOf(NOutOf { n, rules })),
        }
    }
    fn env(rule: SignaturePolicy, ids: &[(&str, Role)]) -> SignaturePolicyEnvelope {
        SignaturePolicyEnvelope {
            version: 0,
            rule: Some(rule),
            identities: ids.iter().map(|(m, r)| Principal::role(*m, *r)).collect(),
        }
    }

    use Role::*;

    #[test]
    fn parses_as_fabric() {
        let cases: Vec<(&str, SignaturePolicyEnvelope)> = vec![
            (
                "OR('A.member', 'B.member')",
                env(
                    out_of(1, vec![by(0), by(1)]),
                    &[("A", Member), ("B", Member)],
                ),
            ),
            (
                "AND('A.member', 'B.member')",
                env(
                    out_of(2, vec![by(0), by(1)]),
                    &[("A", Member), ("B", Member)],
                ),
            ),
            (
                "OutOf(1, 'A.member', 'B.member')",
                env(
                    out_of(1, vec![by(0), by(1)]),
                    &[("A", Member), ("B", Member)],
                ),
            ),
            (
                "OutOf(2, 'A.member', 'B.member')",
                env(
                    out_of(2, vec![by(0), by(1)]),
                    &[("A", Member), ("B", Member)],
                ),
            ),
            (
                "AND('A.client', 'B.peer')",
                env(out_of(2, vec![by(0), by(1)]), &[("A", Client), ("B", Peer)]),
            ),
            (
                "or('A.orderer')",
                env(out_of(1, vec![by(0)]), &[("A", Orderer)]),
            ),
            (
                "outof(0, \"A.admin\")",
                env(out_of(0, vec![by(0)]), &[("A", Admin)]),
            ),
            // n may be len+1 (never satisfiable), as Fabric allows
            (
                "OUTOF(3, 'A.member', 'B.member')",
                env(
                    out_of(3, vec![by(0), by(1)]),
                    &[("A", Member), ("B", Member)],
                ),
            ),
            // fractions truncate toward zero
            (
                "OutOf(1.9, 'A.member')",
                env(out_of(1, vec![by(0)]), &[("A", Member)]),
            ),
            // no deduplication of principals
            (
                "AND('A.member', 'A.member')",
                env(
                    out_of(2, vec![by(0), by(1)]),
                    &[("A", Member), ("A", Member)],
                ),
            ),
            // Fabric's TestComplex1: nested gates take the first indices
            (
                "OR('A.member', AND('B.member', 'C.member'))",
                env(
                    out_of(1, vec![by(2), out_of(2, vec![by(0), by(1)])]),
                    &[("B", Member), ("C", Member), ("A", Member)],
                ),
            ),
            // Fabric's TestComplex2
            (
                "OR(AND('A.member', 'B.member'), OR('C.admin', 'D.member'))",
                env(
                    out_of(
                        1,
                        vec![out_of(2, vec![by(0), by(1)]), out_of(1, vec![by(2), by(3)])],
                    ),
                    &[("A", Member), ("B", Member), ("C", Admin), ("D", Member)],
                ),
            ),
            // MSP IDs with dots and dashes (Fabric's TestMSPIDWIthSpecialChars)
            (
                "OR('MSP.member', 'MSP.WITH.DOTS.member', 'MSP-WITH-DASHES.member')",
                env(
                    out_of(1, vec![by(0), by(1), by(2)]),
                    &[
                        ("MSP", Member),
                        ("MSP.WITH.DOTS", Member),
                        ("MSP-WITH-DASHES", Member),
                    ],
                ),
            ),
            (
                " \n OR ( 'A.member' ) \t",
                env(out_of(1, vec![by(0)]), &[("A", Member)]),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn encodes_as_fabric() {
        // Hand-encoded: rule NOutOf{n 1, rules [signed_by 0 (encoded: a oneof), signed_by 1]},
        // then two MSPPrincipals (classification ROLE = 0 omitted) of MSPRole{"A"/"B", MEMBER}.
        let got = parse("OR('A.member','B.member')").unwrap().encode_to_vec();
        let want = hex::decode(
            "120c120a08011202080012020801\
             1a0512030a01411a0512030a0142",
        )
        .unwrap();
        assert_eq!(hex::encode(&got), hex::encode(&want));
        let policy = signature_policy(&parse("OR('A.member','B.member')").unwrap());
        assert_eq!(policy.r#type, 1);
        assert_eq!(&policy.value[..], &want[..]);
    }

    #[test]
    fn refuses_bad_input() {
        let cases = [
            "",
            "'A.member'",                      // a principal is not a policy
            "OR('A.member', Bmember)",         // unknown name
            "OR('A.member', 'Bmember')",       // no role
            "OR('A.superuser')",               // unknown role
            "OR('A.MEMBER')",                  // roles are lower case
            "OR('.member')",                   // empty MSP ID
            "OR('A B.member')",                // bad MSP ID character
            "OR('A.member)",                   // unterminated quote
            "OR('A.member\")",                 // mismatched quotes
            "OR(`A.member`)",                  // backquotes
            r"OR('A.member', '\'B.member\'')", // escapes
            "OR('A.member'",                   // unclosed gate
            "OR('A.member',)",                 // trailing comma
            "OR()",
            "AND()",
            "OutOf(1)",
            "OutOf('A.member')",     // no threshold
            "OutOf(-1, 'A.member')", // t < 0
            "OutOf(3, 'A.member')",  // t > n+1
            "OutOf(x, 'A.member')",
            "OutOf(1, 2)", // a number is not a principal
            "OR(1, 'A.member')",
            "Or('A.member') extra",
            "oR('A.member')", // mixed case gate names are not Fabric's
            "NOT('A.member')",
        ];
        for text in cases {
            let err = parse(text).expect_err(text);
            assert_eq!(err.expression, text);
        }
        let deep = "OR(".repeat(MAX_DEPTH + 1) + "'A.member'" + &")".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).is_err());
        let ok = "OR(".repeat(MAX_DEPTH) + "'A.member'" + &")".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn implicit_meta_rules() {
        let ok = [
            ("ANY Readers", Rule::Any, "Readers"),
            ("ALL Writers", Rule::All, "Writers"),
            ("MAJORITY Admins", Rule::Majority, "Admins"),
            ("MAJORITY Endorsement", Rule::Majority, "Endorsement"),
            // Fabric accepts an empty sub-policy name (it then resolves to nothing)
            ("ANY ", Rule::Any, ""),
        ];
        for (text, rule, sub) in ok {
            let got = implicit_meta(text).unwrap();
            assert_eq!(
                (got.rule, got.sub_policy.as_str()),
                (rule as i32, sub),
                "{text}"
            );
        }
        for text in [
            "",
            "ANY",
            "ANY  Readers",
            "any Readers",
            "SOME Readers",
            "ANY Readers x",
        ] {
            assert!(implicit_meta(text).is_err(), "{text}");
        }
        let p = implicit_meta_policy(&implicit_meta("MAJORITY Admins").unwrap());
        assert_eq!(p.r#type, 3);
        assert_eq!(
            ImplicitMetaPolicy::decode(p.value).unwrap(),
            ImplicitMetaPolicy {
                sub_policy: "Admins".into(),
                rule: 2
            }
        );
    }
}
