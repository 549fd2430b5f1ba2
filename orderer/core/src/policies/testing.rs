//! A fake channel MSP for the tests: a creator is the text `mspid:id:role,role`, every identity
//! is a member of its MSP plus the listed roles, and a signature is valid iff it is `ok`.

use std::cell::Cell;

use bytes::Bytes;

use super::{Identities, SignedData};
use crate::msp::{Principal, Role};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeId {
    pub mspid: String,
    pub id: String,
    pub roles: Vec<Role>,
}

fn role(name: &str) -> Result<Role, String> {
    Ok(match name {
        "admin" => Role::Admin,
        "client" => Role::Client,
        "peer" => Role::Peer,
        "orderer" => Role::Orderer,
        "member" => Role::Member,
        other => return Err(format!("bad role {other}")),
    })
}

/// An identity as the fake decodes it (for `evaluate_identities` tests).
pub fn id(creator: &str) -> FakeId {
    Fake.deserialize(creator.as_bytes()).unwrap()
}

pub fn sd(creator: &str, signature: &[u8]) -> SignedData {
    SignedData {
        data: Bytes::from_static(b"data"),
        identity: Bytes::copy_from_slice(creator.as_bytes()),
        signature: Bytes::copy_from_slice(signature),
    }
}

/// Valid signatures by each creator.
pub fn signed(creators: &[&str]) -> Vec<SignedData> {
    creators.iter().map(|c| sd(c, b"ok")).collect()
}

pub struct Fake;

impl Identities for Fake {
    type Identity = FakeId;

    fn deserialize(&self, creator: &[u8]) -> Result<FakeId, String> {
        let text = std::str::from_utf8(creator).map_err(|e| e.to_string())?;
        let mut parts = text.split(':');
        let (Some(mspid), Some(id), Some(roles), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not mspid:id:roles".into());
        };
        let roles = roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(role)
            .collect::<Result<_, _>>()?;
        Ok(FakeId {
            mspid: mspid.into(),
            id: id.into(),
            roles,
        })
    }

    fn signer_key(&self, identity: &FakeId) -> String {
        format!("{}{}", identity.mspid, identity.id)
    }

    fn verify(&self, _: &FakeId, data: &[u8], signature: &[u8]) -> bool {
        data == b"data" && signature == b"ok"
    }

    fn satisfies(&self, identity: &FakeId, principal: &Principal) -> bool {
        match principal {
            Principal::Role { mspid, role } => {
                *mspid == identity.mspid && (*role == Role::Member || identity.roles.contains(role))
            }
            _ => false,
        }
    }
}

/// The fake, counting signature verifications.
#[derive(Default)]
pub struct Counting {
    pub verifies: Cell<usize>,
}

impl Identities for Counting {
    type Identity = FakeId;

    fn deserialize(&self, creator: &[u8]) -> Result<FakeId, String> {
        Fake.deserialize(creator)
    }
    fn signer_key(&self, identity: &FakeId) -> String {
        Fake.signer_key(identity)
    }
    fn verify(&self, identity: &FakeId, data: &[u8], signature: &[u8]) -> bool {
        self.verifies.set(self.verifies.get() + 1);
        Fake.verify(identity, data, signature)
    }
    fn satisfies(&self, identity: &FakeId, principal: &Principal) -> bool {
        Fake.satisfies(identity, principal)
    }
}
