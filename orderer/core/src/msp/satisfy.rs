//! Whether an identity satisfies a policy principal (§4.3), judged by the identity's own MSP.

use bytes::Bytes;

use super::identity::Identity;
use super::principal::{Principal, Role};
use super::setup::Msp;
use super::version::MspVersion;

impl Msp {
    pub(crate) fn satisfies(&self, id: &Identity, principal: &Principal) -> Result<(), String> {
        match principal {
            Principal::Combined(all) => {
                if self.version <= MspVersion::V1_1 {
                    return Err("invalid principal type COMBINED for this MSP version".into());
                }
                if all.is_empty() {
                    return Err("No principals in CombinedPrincipal".into());
                }
                all.iter().try_for_each(|p| self.satisfies(id, p))
            }
            Principal::Anonymity { anonymous } => {
                if self.version <= MspVersion::V1_1 {
                    return Err("invalid principal type ANONYMITY for this MSP version".into());
                }
                if *anonymous {
                    Err("Principal is anonymous, but X.509 MSP does not support anonymous identities".into())
                } else {
                    Ok(())
                }
            }
            Principal::Role { mspid, role } => {
                self.same_msp(mspid, id)?;
                self.satisfies_role(id, *role)
            }
            Principal::Identity { mspid, id_bytes } => {
                if *mspid != self.name {
                    return Err(format!(
                        "invalid identity principal: expected MSP ID {}, received {mspid}",
                        self.name
                    ));
                }
                let principal = self
                    .deserialize_id_bytes(Bytes::new(), id_bytes)
                    .map_err(|e| format!("invalid identity principal, not a certificate: {e}"))?;
                if principal.certificate_der() != id.certificate_der() {
                    return Err("The identities do not match".into());
                }
                principal.0.validation.clone()
            }
            Principal::OrganizationUnit {
                mspid,
                ou,
                certifiers,
            } => {
                self.same_msp(mspid, id)?;
                id.0.validation.clone()?;
                if id
                    .ous()
                    .iter()
                    .any(|o| o.ou == *ou && o.certifiers == *certifiers)
                {
                    Ok(())
                } else {
                    Err("The identities do not match".into())
                }
            }
        }
    }

    fn same_msp(&self, mspid: &str, id: &Identity) -> Result<(), String> {
        if mspid != self.name {
            return Err(format!(
                "the identity is a member of a different MSP (expected {mspid}, got {})",
                id.mspid()
            ));
        }
        Ok(())
    }

    fn is_admin(&self, id: &Identity) -> bool {
        self.admins.iter().any(|a| a[..] == *id.certificate_der())
    }

    fn satisfies_role(&self, id: &Identity, role: Role) -> Result<(), String> {
        let valid = || {
            id.0.validation.clone().map_err(|e| {
                format!(
                    "The identity is not valid under this MSP [{}]: {e}",
                    self.name
                )
            })
        };
        let four = self.version.four_node_ous();
        match role {
            Role::Member => valid(),
            Role::Admin => {
                if self.is_admin(id) {
                    return Ok(());
                }
                if !four || self.node_ous.is_none() {
                    return Err("This identity is not an admin".into());
                }
                valid()?;
                self.has_ou_role(id, role).map_err(|e| {
                    format!(
                        "The identity is not an admin under this MSP [{}]: {e}",
                        self.name
                    )
                })
            }
            Role::Orderer if !four || self.node_ous.is_none() => {
                Err("invalid MSP role type 4 (ORDERER) without NodeOUs".into())
            }
            Role::Client | Role::Peer | Role::Orderer => {
                valid()?;
                self.has_ou_role(id, role).map_err(|e| {
                    format!(
                        "The identity is not a [{}] under this MSP [{}]: {e}",
                        role.dsl_name(),
                        self.name
                    )
                })
            }
        }
    }

    /// Fabric's `hasOURole`: some OU string equals the role's NodeOU (certifiers not re-checked).
    fn has_ou_role(&self, id: &Identity, role: Role) -> Result<(), String> {
        let ous = self
            .node_ous
            .as_ref()
            .ok_or("NodeOUs not activated. Cannot tell apart identities.")?;
        let node_ou = match role {
            Role::Client => &ous.client,
            Role::Peer => &ous.peer,
            Role::Admin => &ous.admin,
            Role::Orderer => &ous.orderer,
            Role::Member => {
                return Err("Invalid MSPRoleType. It must be CLIENT, PEER, ADMIN or ORDERER".into())
            }
        };
        let node_ou = node_ou.as_ref().ok_or_else(|| {
            format!(
                "cannot test for classification, node ou for type [{}], not defined, msp: [{}]",
                role.dsl_name(),
                self.name
            )
        })?;
        if id.ous().iter().any(|o| o.ou == node_ou.ou) {
            Ok(())
        } else {
            Err(format!(
                "The identity does not contain OU [{}], MSP: [{}]",
                role.dsl_name(),
                self.name
            ))
        }
    }
}
