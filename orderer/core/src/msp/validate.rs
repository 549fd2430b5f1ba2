//! Validate (§3.3): whether a (sanitised) certificate is a valid identity of this MSP — key
//! algorithm, not a CA, one chain at NotBefore + 1 s issued by a CA at the bottom of the tree, not
//! revoked, OU identifiers and NodeOUs. Expiry is never checked here, as in Fabric.

use std::sync::Arc;

use bytes::Bytes;

use super::cert::{Cert, PublicKey};
use super::chain::Usages;
use super::identity::IdentityOu;
use super::setup::{Msp, NodeOu};

impl Msp {
    /// Go's `getValidationChain`: the unique chain, of length ≥ 2, whose parent (chain[1], or
    /// chain[0] for an intermediate's own chain) is not an internal node.
    pub(crate) fn validation_chain(
        &self,
        cert: &Arc<Cert>,
        of_intermediate: bool,
    ) -> Result<Vec<Arc<Cert>>, String> {
        let chain = self
            .unique_chain(cert, &self.roots, &self.intermediates, Usages::ServerAuth)
            .map_err(|e| format!("failed getting validation chain: {e}"))?;
        if chain.len() < 2 {
            return Err(format!(
                "expected a chain of length at least 2, got {}",
                chain.len()
            ));
        }
        let parent = &chain[if of_intermediate { 0 } else { 1 }];
        if self.internal_nodes.contains(&parent.der) {
            return Err(format!(
                "invalid validation chain. Parent certificate should be a leaf of the certification tree ({} is issued by {}, which has intermediates below it)",
                cert.subject, parent.subject
            ));
        }
        Ok(chain)
    }

    /// An identity's chain: it may not be a CA.
    fn identity_chain(&self, cert: &Arc<Cert>) -> Result<Vec<Arc<Cert>>, String> {
        if cert.is_ca() {
            return Err("An X509 certificate with Basic Constraint: Certificate Authority equals true cannot be used as an identity".into());
        }
        self.validation_chain(cert, false)
    }

    /// Revocation: a CRL whose AKI is chain[1]'s SKI, listing the serial, and signed by chain[1].
    /// A CRL whose signature does not verify is skipped.
    pub(crate) fn check_crls(&self, cert: &Cert, chain: &[Arc<Cert>]) -> Result<(), String> {
        let Some(issuer) = chain.get(1) else {
            return Ok(());
        };
        let ski = issuer.ski.as_ref().ok_or(
            "could not obtain Subject Key Identifier for signer cert: subjectKeyIdentifier not found in certificate",
        )?;
        for crl in &self.crls {
            let aki = crl.aki.as_ref().ok_or(
                "could not obtain Authority Key Identifier for crl: authorityKeyIdentifier not found",
            )?;
            if aki == ski && crl.revoked.contains(&cert.serial) && crl.signed_by(issuer) {
                return Err("The certificate has been revoked".into());
            }
        }
        Ok(())
    }

    /// Full Validate of a certificate (used for admins at setup).
    pub(crate) fn validate_cert(&self, cert: &Arc<Cert>) -> Result<(), String> {
        self.validate_with_ous(cert).0
    }

    /// Validate's outcome, and the identity's OUs with their certifiers identifiers (empty when
    /// no chain exists, as Fabric's `GetOrganizationalUnits` returns nothing then).
    pub(crate) fn validate_with_ous(
        &self,
        cert: &Arc<Cert>,
    ) -> (Result<(), String>, Vec<IdentityOu>) {
        let chain = self.identity_chain(cert);
        let ous = match &chain {
            Ok(chain) => match self
                .id_hash
                .hash(chain[1..].iter().map(|c| c.der.as_slice()))
            {
                Ok(certifiers) => {
                    let certifiers = Bytes::from(certifiers);
                    cert.ous
                        .iter()
                        .map(|ou| IdentityOu {
                            ou: ou.clone(),
                            certifiers: certifiers.clone(),
                        })
                        .collect()
                }
                Err(_) => Vec::new(),
            },
            Err(_) => Vec::new(),
        };
        let result = (|| {
            let supported = match cert.key {
                PublicKey::Ecdsa { .. } | PublicKey::EcdsaOtherCurve(_) => true,
                PublicKey::Ed25519(_) => self.version.accepts_ed25519(),
                _ => false,
            };
            if !supported {
                return Err(format!(
                    "could not validate identity's public key algorithm: {} is not supported",
                    cert.key.algorithm_name()
                ));
            }
            let chain = chain
                .as_ref()
                .map_err(|e| format!("could not obtain certification chain: {e}"))?;
            self.check_crls(cert, chain).map_err(|e| {
                format!("could not validate identity against certification chain: {e}")
            })?;
            self.check_ous(&ous)
                .map_err(|e| format!("could not validate identity's OUs: {e}"))
        })();
        (result, ous)
    }

    fn check_ous(&self, ous: &[IdentityOu]) -> Result<(), String> {
        let list = || {
            ous.iter()
                .map(|o| o.ou.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.ou_identifiers.is_empty() {
            let found = ous.iter().any(|ou| {
                self.ou_identifiers.iter().any(|(name, ids)| {
                    *name == ou.ou && ids.iter().any(|id| id[..] == ou.certifiers[..])
                })
            });
            if !found {
                if ous.is_empty() {
                    return Err(
                        "the identity certificate does not contain an Organizational Unit (OU)"
                            .into(),
                    );
                }
                return Err(format!(
                    "none of the identity's organizational units [{}] are in MSP {}",
                    list(),
                    self.name
                ));
            }
        }
        let Some(node_ous) = &self.node_ous else {
            return Ok(());
        };
        // Fabric keys the classifications by OU string, so one string configured twice counts once.
        let mut classes: Vec<&NodeOu> = Vec::new();
        for o in [
            &node_ous.client,
            &node_ous.peer,
            &node_ous.admin,
            &node_ous.orderer,
        ]
        .into_iter()
        .flatten()
        {
            match classes.iter_mut().find(|c| c.ou == o.ou) {
                Some(c) => *c = o,
                None => classes.push(o),
            }
        }
        let mut count = 0;
        for ou in ous {
            let Some(class) = classes.iter().find(|c| c.ou == ou.ou) else {
                continue;
            };
            if let Some(certifiers) = &class.certifiers {
                if certifiers[..] != ou.certifiers[..] {
                    return Err(format!(
                        "certifiersIdentifier does not match: [{}], MSP: [{}]",
                        list(),
                        self.name
                    ));
                }
            }
            count += 1;
            if count > 1 {
                break;
            }
        }
        let roles = if self.version.four_node_ous() {
            "client, peer, orderer, or admin"
        } else {
            "client or peer"
        };
        match count {
            0 => Err(format!(
                "the identity does not have an OU that resolves to {roles} role. OUs: [{}], MSP: [{}]",
                list(),
                self.name
            )),
            1 => Ok(()),
            _ => Err(format!(
                "the identity must have exactly one {roles} OU role to be valid, not a combination of them. OUs: [{}], MSP: [{}]",
                list(),
                self.name
            )),
        }
    }
}
