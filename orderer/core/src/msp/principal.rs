//! Who a signature policy names: `msp.MSPPrincipal` decoded into a domain type, so evaluation never
//! touches protobuf.

use bytes::Bytes;
use ordo_proto::msp as proto;
use prost::Message;

/// An identity's role within its MSP (`MSPRole.MSPRoleType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Member,
    Admin,
    Client,
    Peer,
    Orderer,
}

/// A policy principal (`msp.MSPPrincipal`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// ROLE: an identity of MSP `mspid` holding `role`.
    Role { mspid: String, role: Role },
    /// ORGANIZATION_UNIT: a valid identity of `mspid` with OU `ou`, certified by the CA chain whose
    /// hash is `certifiers`.
    OrganizationUnit {
        mspid: String,
        ou: String,
        certifiers: Bytes,
    },
    /// IDENTITY: exactly this certificate (a marshalled `SerializedIdentity`).
    Identity { mspid: String, id_bytes: Bytes },
    /// ANONYMITY: NOMINAL (`anonymous == false`) is satisfied by any X.509 identity, ANONYMOUS by none.
    Anonymity { anonymous: bool },
    /// COMBINED: every one of these (never empty).
    Combined(Vec<Principal>),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    #[error("principal does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("unknown principal classification {0}")]
    Classification(i32),
    #[error("invalid MSP role type {0}")]
    RoleType(i32),
    #[error("invalid anonymity type {0}")]
    AnonymityType(i32),
    #[error("empty combined principal")]
    EmptyCombined,
}

impl Role {
    pub fn from_proto(role: i32) -> Result<Role, PrincipalError> {
        use proto::msp_role::MspRoleType as T;
        Ok(
            match T::try_from(role).map_err(|_| PrincipalError::RoleType(role))? {
                T::Member => Role::Member,
                T::Admin => Role::Admin,
                T::Client => Role::Client,
                T::Peer => Role::Peer,
                T::Orderer => Role::Orderer,
            },
        )
    }

    pub fn to_proto(self) -> proto::msp_role::MspRoleType {
        use proto::msp_role::MspRoleType as T;
        match self {
            Role::Member => T::Member,
            Role::Admin => T::Admin,
            Role::Client => T::Client,
            Role::Peer => T::Peer,
            Role::Orderer => T::Orderer,
        }
    }

    /// The name used in Fabric's policy language (`'Org1MSP.admin'`).
    pub fn dsl_name(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Client => "client",
            Role::Peer => "peer",
            Role::Orderer => "orderer",
        }
    }
}

impl Principal {
    pub fn from_proto(principal: &proto::MspPrincipal) -> Result<Principal, PrincipalError> {
        use proto::msp_principal::Classification as C;
        let class = principal.principal_classification;
        let bytes = principal.principal.clone();
        Ok(
            match C::try_from(class).map_err(|_| PrincipalError::Classification(class))? {
                C::Role => {
                    let role = proto::MspRole::decode(bytes)?;
                    Principal::Role {
                        mspid: role.msp_identifier,
                        role: Role::from_proto(role.role)?,
                    }
                }
                C::OrganizationUnit => {
                    let ou = proto::OrganizationUnit::decode(bytes)?;
                    Principal::OrganizationUnit {
                        mspid: ou.msp_identifier,
                        ou: ou.organizational_unit_identifier,
                        certifiers: ou.certifiers_identifier,
                    }
                }
                C::Identity => {
                    let identity = proto::SerializedIdentity::decode(bytes)?;
                    Principal::Identity {
                        mspid: identity.mspid,
                        id_bytes: identity.id_bytes,
                    }
                }
                C::Anonymity => {
                    use proto::msp_identity_anonymity::MspIdentityAnonymityType as A;
                    let a = proto::MspIdentityAnonymity::decode(bytes)?;
                    let kind = A::try_from(a.anonymity_type)
                        .map_err(|_| PrincipalError::AnonymityType(a.anonymity_type))?;
                    Principal::Anonymity {
                        anonymous: kind == A::Anonymous,
                    }
                }
                C::Combined => {
                    let combined = proto::CombinedPrincipal::decode(bytes)?;
                    if combined.principals.is_empty() {
                        return Err(PrincipalError::EmptyCombined);
                    }
                    Principal::Combined(
                        combined
                            .principals
                            .iter()
                            .map(Principal::from_proto)
                            .collect::<Result<_, _>>()?,
                    )
                }
            },
        )
    }

    /// A ROLE principal as the policy language writes it.
    pub fn role(mspid: impl Into<String>, role: Role) -> proto::MspPrincipal {
        proto::MspPrincipal {
            principal_classification: proto::msp_principal::Classification::Role as i32,
            principal: proto::MspRole {
                msp_identifier: mspid.into(),
                role: role.to_proto() as i32,
            }
            .encode_to_vec()
            .into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip() {
        for role in [
            Role::Member,
            Role::Admin,
            Role::Client,
            Role::Peer,
            Role::Orderer,
        ] {
            let decoded = Principal::from_proto(&Principal::role("Org1MSP", role)).unwrap();
            assert_eq!(
                decoded,
                Principal::Role {
                    mspid: "Org1MSP".into(),
                    role
                }
            );
        }
        let bad = proto::MspPrincipal {
            principal_classification: 9,
            principal: Bytes::new(),
        };
        assert_eq!(
            Principal::from_proto(&bad),
            Err(PrincipalError::Classification(9))
        );
    }
}
