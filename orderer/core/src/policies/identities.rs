//! What policies evaluate through: the channel's identities (the MSP implements this), and
//! Fabric's step 1, turning a signature set into the ordered list of valid, distinct signers.

use std::collections::HashSet;

use super::SignedData;
use crate::msp::Principal;

/// The channel's identities as policies see them.
pub trait Identities {
    type Identity: Clone;

    /// Decodes a creator (a marshalled `msp.SerializedIdentity`) and validates it against the
    /// channel's MSPs. An error only means the signature is skipped.
    fn deserialize(&self, creator: &[u8]) -> Result<Self::Identity, String>;

    /// What makes two identities the same signer: mspid ‖ identity id (Fabric's
    /// `Mspid + Id`, the id being the hex hash of the sanitised certificate).
    fn signer_key(&self, identity: &Self::Identity) -> String;

    /// Whether `signature` by `identity` over `data` is valid.
    fn verify(&self, identity: &Self::Identity, data: &[u8], signature: &[u8]) -> bool;

    /// Whether `identity` satisfies `principal` (its own MSP decides, as in Fabric).
    fn satisfies(&self, identity: &Self::Identity, principal: &Principal) -> bool;
}

/// Fabric's `SignatureSetToValidIdentities`: in order, drop creators that do not deserialise,
/// drop signers already accepted (checked before verifying, so a repeated signer cannot make us
/// verify the same signature many times), drop invalid signatures; keep the rest. A failed
/// signature does not mark its signer, so a later valid one from the same identity still counts.
pub fn valid_identities<I: Identities>(signed: &[SignedData], ids: &I) -> Vec<I::Identity> {
    let mut accepted = HashSet::with_capacity(signed.len());
    let mut out = Vec::with_capacity(signed.len());
    for sd in signed {
        let Ok(identity) = ids.deserialize(&sd.identity) else {
            continue;
        };
        let key = ids.signer_key(&identity);
        if accepted.contains(&key) {
            continue;
        }
        if !ids.verify(&identity, &sd.data, &sd.signature) {
            continue;
        }
        accepted.insert(key);
        out.push(identity);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{sd, signed, Fake};
    use super::*;

    #[test]
    fn step_one_table() {
        // (creator, signature) pairs, and the signer keys accepted in order
        type Case<'a> = (&'a [(&'a str, &'a [u8])], &'a [&'a str]);
        let cases: &[Case] = &[
            (&[], &[]),
            (&[("A:1:", b"ok")], &["A1"]),
            // duplicates count once
            (&[("A:1:", b"ok"), ("A:1:", b"ok")], &["A1"]),
            // a failed signature does not block a later valid one of the same signer
            (&[("A:1:", b"bad"), ("A:1:", b"ok")], &["A1"]),
            // creators that do not deserialise are skipped silently
            (&[("garbage", b"ok"), ("B:2:", b"ok")], &["B2"]),
            // order is kept
            (
                &[("B:2:", b"ok"), ("A:1:", b"ok"), ("B:2:", b"ok")],
                &["B2", "A1"],
            ),
            (&[("A:1:", b"bad")], &[]),
        ];
        for (set, want) in cases {
            let signed: Vec<_> = set.iter().map(|(c, s)| sd(c, s)).collect();
            let got: Vec<String> = valid_identities(&signed, &Fake)
                .iter()
                .map(|i| Fake.signer_key(i))
                .collect();
            assert_eq!(&got, want, "{set:?}");
        }
    }

    #[test]
    fn accepted_signer_is_not_verified_again() {
        // The second entry of an accepted signer is skipped before verification.
        let signed = signed(&["A:1:", "A:1:", "A:1:"]);
        let counting = super::super::testing::Counting::default();
        valid_identities(&signed, &counting);
        assert_eq!(counting.verifies.get(), 1);
    }
}
