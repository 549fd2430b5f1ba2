//! One organisation's MSP built from its `FabricMSPConfig` (§3.2): roots (required) and
//! intermediates sanitised, CRLs, CA checks and the internal nodes of the CA tree, TLS CAs, OU
//! identifiers with their certifiers identifiers, NodeOUs, and admins.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use ordo_proto::msp::{FabricMspConfig, FabricOuIdentifier};

use super::cert::{self, Cert};
use super::chain::{self, Usages};
use super::crl::Crl;
use super::error::MspError;
use super::hash::{HashFamily, IdHash};
use super::version::MspVersion;

/// A NodeOU classification: its OU string and, when the config names a CA for it, the
/// certifiers identifier an identity's OU must also carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NodeOu {
    pub ou: String,
    pub certifiers: Option<Vec<u8>>,
}

/// The NodeOUs in force (present only when enabled and at least one is given).
#[derive(Clone, Debug, Default)]
pub(crate) struct NodeOus {
    pub client: Option<NodeOu>,
    pub peer: Option<NodeOu>,
    pub admin: Option<NodeOu>,
    pub orderer: Option<NodeOu>,
}

/// One organisation's verifying MSP (a channel config's `FabricMSPConfig`).
#[derive(Debug)]
pub struct Msp {
    pub(crate) name: String,
    pub(crate) version: MspVersion,
    pub(crate) roots: Vec<Arc<Cert>>,
    pub(crate) intermediates: Vec<Arc<Cert>>,
    /// DER of every CA above some configured intermediate: identities may not be issued by them.
    pub(crate) internal_nodes: HashSet<Vec<u8>>,
    pub(crate) crls: Vec<Crl>,
    /// Sanitised admin certificates (DER).
    pub(crate) admins: Vec<Vec<u8>>,
    /// OU identifiers: (OU string, certifiers identifiers accepted for it).
    pub(crate) ou_identifiers: Vec<(String, Vec<Vec<u8>>)>,
    pub(crate) node_ous: Option<NodeOus>,
    pub(crate) hash_family: Option<HashFamily>,
    pub(crate) id_hash: IdHash,
    tls_root_bytes: Vec<Bytes>,
    tls_intermediate_bytes: Vec<Bytes>,
    pub(crate) tls_roots: Vec<Arc<Cert>>,
    pub(crate) tls_intermediates: Vec<Arc<Cert>>,
}

impl Msp {
    /// Sets up an MSP as Fabric does when a config is loaded; any error rejects the config.
    /// The config's signing identity (present only in a local MSP) is ignored: a node's own key
    /// is a [`super::SigningIdentity`].
    pub fn setup(config: &FabricMspConfig, version: MspVersion) -> Result<Msp, MspError> {
        let name = config.name.clone();
        let fail = |what: String| MspError::Setup {
            msp: name.clone(),
            what,
        };
        let crypto = config.crypto_config.clone().unwrap_or_default();
        let mut msp = Msp {
            name: name.clone(),
            version,
            roots: Vec::new(),
            intermediates: Vec::new(),
            internal_nodes: HashSet::new(),
            crls: Vec::new(),
            admins: Vec::new(),
            ou_identifiers: Vec::new(),
            node_ous: None,
            hash_family: HashFamily::parse(&crypto.signature_hash_family),
            id_hash: IdHash::parse(&crypto.identity_identifier_hash_function),
            tls_root_bytes: config.tls_root_certs.clone(),
            tls_intermediate_bytes: config.tls_intermediate_certs.clone(),
            tls_roots: Vec::new(),
            tls_intermediates: Vec::new(),
        };

        // CAs: parsed, pooled as given, sanitised against those pools, pooled again sanitised.
        if config.root_certs.is_empty() {
            return Err(fail("expected at least one CA certificate".into()));
        }
        let roots = parse_all(&config.root_certs, "root").map_err(&fail)?;
        let intermediates = parse_all(&config.intermediate_certs, "intermediate").map_err(&fail)?;
        msp.roots = dedup(roots.clone());
        msp.intermediates = dedup(intermediates.clone());
        let sanitised_roots = roots
            .iter()
            .map(|c| msp.sanitize_cert(c).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(format!("root CA: {e}")))?;
        let sanitised_intermediates = intermediates
            .iter()
            .map(|c| msp.sanitize_cert(c).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(format!("intermediate CA: {e}")))?;
        msp.roots = dedup(sanitised_roots);
        msp.intermediates = dedup(sanitised_intermediates);

        for (i, bytes) in config.revocation_list.iter().enumerate() {
            msp.crls.push(
                Crl::parse(bytes)
                    .map_err(|e| fail(format!("could not parse RevocationList {i}: {e}")))?,
            );
        }

        msp.finalize_cas().map_err(&fail)?;
        msp.setup_tls_cas(config).map_err(&fail)?;
        for ou in &config.organizational_unit_identifiers {
            let certifiers = msp.certifiers_identifier(&ou.certificate).map_err(|e| {
                fail(format!(
                    "failed getting certificate for OU identifier {}: {e}",
                    ou.organizational_unit_identifier
                ))
            })?;
            match msp
                .ou_identifiers
                .iter_mut()
                .find(|(name, _)| *name == ou.organizational_unit_identifier)
            {
                Some((_, ids)) if ids.contains(&certifiers) => {}
                Some((_, ids)) => ids.push(certifiers),
                None => msp
                    .ou_identifiers
                    .push((ou.organizational_unit_identifier.clone(), vec![certifiers])),
            }
        }
        msp.setup_node_ous(config).map_err(&fail)?;
        msp.setup_admins(config).map_err(&fail)?;
        Ok(msp)
    }

    /// The MSP ID.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The MSP version this MSP was set up with.
    pub fn version(&self) -> MspVersion {
        self.version
    }

    /// tls_root_certs as configured (PEM).
    pub fn tls_root_certs(&self) -> &[Bytes] {
        &self.tls_root_bytes
    }

    /// tls_intermediate_certs as configured (PEM).
    pub fn tls_intermediate_certs(&self) -> &[Bytes] {
        &self.tls_intermediate_bytes
    }

    /// Whether NodeOUs classify this MSP's identities.
    pub fn node_ous_enabled(&self) -> bool {
        self.node_ous.is_some()
    }

    /// Every root and intermediate: CA, with a SKI, chaining (checked at its own NotBefore + 1
    /// s), not revoked; then the internal nodes of the tree.
    fn finalize_cas(&mut self) -> Result<(), String> {
        for ca in self.roots.iter().chain(&self.intermediates) {
            let serial = hex::encode(&ca.serial);
            if !ca.is_ca() {
                return Err(format!(
                    "CA Certificate did not have the CA attribute, (SN: {serial}, subject {})",
                    ca.subject
                ));
            }
            if ca.ski.is_none() {
                return Err(format!(
                    "CA Certificate problem with Subject Key Identifier extension, (SN: {serial}, subject {}): subjectKeyIdentifier not found in certificate",
                    ca.subject
                ));
            }
            let chain = self
                .unique_chain(ca, &self.roots, &self.intermediates, Usages::ServerAuth)
                .map_err(|e| format!("CA Certificate is not valid, (SN: {serial}, subject {}): could not obtain certification chain: {e}", ca.subject))?;
            if chain.len() > 1 {
                self.check_crls(ca, &chain).map_err(|e| {
                    format!(
                        "CA Certificate is not valid, (SN: {serial}, subject {}): {e}",
                        ca.subject
                    )
                })?;
            }
        }
        let mut internal = HashSet::new();
        for ca in &self.intermediates {
            let chain = self
                .unique_chain(ca, &self.roots, &self.intermediates, Usages::ServerAuth)
                .map_err(|e| format!("failed getting validation chain for {}: {e}", ca.subject))?;
            for above in &chain[1..] {
                internal.insert(above.der.clone());
            }
        }
        self.internal_nodes = internal;
        Ok(())
    }

    fn setup_tls_cas(&mut self, config: &FabricMspConfig) -> Result<(), String> {
        self.tls_roots = dedup(parse_all(&config.tls_root_certs, "TLS root")?);
        self.tls_intermediates = dedup(parse_all(
            &config.tls_intermediate_certs,
            "TLS intermediate",
        )?);
        for ca in self.tls_roots.iter().chain(&self.tls_intermediates) {
            let serial = hex::encode(&ca.serial);
            if !ca.is_ca() {
                return Err(format!(
                    "TLS CA Certificate did not have the CA attribute, (SN: {serial}, subject {})",
                    ca.subject
                ));
            }
            if ca.ski.is_none() {
                return Err(format!(
                    "TLS CA Certificate problem with Subject Key Identifier extension, (SN: {serial}, subject {})",
                    ca.subject
                ));
            }
            let chain = self
                .unique_chain(
                    ca,
                    &self.tls_roots,
                    &self.tls_intermediates,
                    Usages::ServerAuth,
                )
                .map_err(|e| {
                    format!(
                        "TLS CA Certificate is not valid, (SN: {serial}, subject {}): {e}",
                        ca.subject
                    )
                })?;
            if chain.len() > 1 {
                self.check_crls(ca, &chain)
                    .map_err(|e| format!("TLS CA Certificate is not valid, (SN: {serial}): {e}"))?;
            }
        }
        Ok(())
    }

    /// H(chain) of a configured root or intermediate given as PEM: [root] for a root, the
    /// intermediate's validation chain otherwise.
    fn certifiers_identifier(&self, pem: &[u8]) -> Result<Vec<u8>, String> {
        let der = cert::first_pem_block(pem)
            .ok_or("could not decode the PEM structure of the certificate")?
            .into_contents();
        let parsed = Cert::from_der(&der)?;
        let sanitised = self.sanitize_cert(&parsed)?;
        if self.roots.iter().any(|r| r.der == sanitised.der) {
            return self.id_hash.hash([sanitised.der.as_slice()]);
        }
        if !self.intermediates.iter().any(|r| r.der == sanitised.der) {
            return Err(format!(
                "Failed adding OU. Certificate [{}] not in root or intermediate certs.",
                sanitised.subject
            ));
        }
        let sanitised = Arc::new(sanitised);
        let chain = self.validation_chain(&sanitised, true)?;
        self.id_hash.hash(chain.iter().map(|c| c.der.as_slice()))
    }

    fn setup_node_ous(&mut self, config: &FabricMspConfig) -> Result<(), String> {
        let Some(cfg) = &config.fabric_node_ous else {
            return Ok(());
        };
        if self.version == MspVersion::V1_0 {
            return Ok(());
        }
        let one = |id: &Option<FabricOuIdentifier>| -> Result<Option<NodeOu>, String> {
            let Some(id) = id else { return Ok(None) };
            let certifiers = if id.certificate.is_empty() {
                None
            } else {
                Some(self.certifiers_identifier(&id.certificate)?)
            };
            Ok(Some(NodeOu {
                ou: id.organizational_unit_identifier.clone(),
                certifiers,
            }))
        };
        let mut ous = NodeOus {
            client: one(&cfg.client_ou_identifier)?,
            peer: one(&cfg.peer_ou_identifier)?,
            ..NodeOus::default()
        };
        if self.version.four_node_ous() {
            ous.admin = one(&cfg.admin_ou_identifier)?;
            ous.orderer = one(&cfg.orderer_ou_identifier)?;
            let any = ous.client.is_some()
                || ous.peer.is_some()
                || ous.admin.is_some()
                || ous.orderer.is_some();
            self.node_ous = (cfg.enable && any).then_some(ous);
        } else {
            // MSP 1.1/1.3: both the client and the peer OU are required.
            let named = |o: &Option<NodeOu>| o.as_ref().is_some_and(|o| !o.ou.is_empty());
            if !named(&ous.client) {
                return Err(
                    "Failed setting up NodeOUs. ClientOU must be different from nil.".into(),
                );
            }
            if !named(&ous.peer) {
                return Err("Failed setting up NodeOUs. PeerOU must be different from nil.".into());
            }
            self.node_ous = cfg.enable.then_some(ous);
        }
        Ok(())
    }

    fn setup_admins(&mut self, config: &FabricMspConfig) -> Result<(), String> {
        for (i, pem) in config.admins.iter().enumerate() {
            let der = cert::first_pem_block(pem)
                .ok_or_else(|| format!("admin {i}: could not decode the PEM structure"))?
                .into_contents();
            let parsed = Cert::from_der(&der).map_err(|e| format!("admin {i}: {e}"))?;
            let sanitised = self
                .sanitize_cert(&parsed)
                .map_err(|e| format!("admin {i} ({}): {e}", parsed.subject))?;
            self.admins.push(sanitised.der);
        }
        let admin_ou = self.node_ous.as_ref().and_then(|n| n.admin.as_ref());
        if self.version.four_node_ous() && self.admins.is_empty() && admin_ou.is_none() {
            return Err(
                "administrators must be declared when no admin ou classification is set".into(),
            );
        }
        for (i, der) in self.admins.iter().enumerate() {
            let admin = Arc::new(Cert::from_der(der).map_err(|e| format!("admin {i}: {e}"))?);
            match &self.node_ous {
                Some(ous) if self.version.four_node_ous() => {
                    let has =
                        |o: &Option<NodeOu>| o.as_ref().is_some_and(|o| admin.ous.contains(&o.ou));
                    if !has(&ous.client) && !has(&ous.admin) {
                        return Err(format!(
                            "admin {i} is invalid: {} carries neither the client nor the admin OU",
                            admin.subject
                        ));
                    }
                }
                Some(ous) => {
                    // MSP 1.1/1.3: an admin must satisfy the CLIENT role (valid, with the client OU).
                    self.validate_cert(&admin)
                        .map_err(|e| format!("admin {i} is invalid: {e}"))?;
                    let client = ous.client.as_ref().map(|o| o.ou.as_str()).unwrap_or("");
                    if !admin.ous.iter().any(|x| x == client) {
                        return Err(format!("admin {i} is invalid: not a client"));
                    }
                }
                None => {
                    self.validate_cert(&admin)
                        .map_err(|e| format!("admin {i} is invalid: {e}"))?;
                }
            }
        }
        Ok(())
    }

    /// Go's `getUniqueValidationChain`: exactly one chain at the certificate's NotBefore + 1 s,
    /// and Fabric's legacy name-constraints rule.
    pub(crate) fn unique_chain(
        &self,
        cert: &Arc<Cert>,
        roots: &[Arc<Cert>],
        intermediates: &[Arc<Cert>],
        usages: Usages,
    ) -> Result<Vec<Arc<Cert>>, String> {
        let mut chains = chain::verify(cert, roots, intermediates, cert.check_time(), usages)
            .map_err(|e| format!("the supplied identity is not valid: {e}"))?;
        if chains.len() != 1 {
            return Err(format!(
                "this MSP only supports a single validation chain, got {}",
                chains.len()
            ));
        }
        let chain = chains.pop().unwrap_or_default();
        if chain.len() >= 2
            && !chain[0].has_san
            && chain[0].common_name.as_deref().is_some_and(valid_hostname)
            && chain[1..].iter().any(|c| c.has_name_constraints)
        {
            return Err("the supplied identity is not valid: a certificate without SANs relies on the legacy Common Name under name constraints".into());
        }
        Ok(chain)
    }
}

fn parse_all(certs: &[Bytes], what: &str) -> Result<Vec<Arc<Cert>>, String> {
    certs
        .iter()
        .enumerate()
        .map(|(i, pem)| {
            let der = cert::first_pem_block(pem)
                .ok_or_else(|| format!("{what} certificate {i}: could not decode pem bytes"))?
                .into_contents();
            Cert::from_der(&der)
                .map(Arc::new)
                .map_err(|e| format!("{what} certificate {i}: {e}"))
        })
        .collect()
}

/// A cert pool holds each certificate once (Go's `CertPool.AddCert`).
fn dedup(certs: Vec<Arc<Cert>>) -> Vec<Arc<Cert>> {
    let mut out: Vec<Arc<Cert>> = Vec::with_capacity(certs.len());
    for c in certs {
        if !out.iter().any(|o| o.der == c.der) {
            out.push(c);
        }
    }
    out
}

/// Go's `validHostname` as Fabric copies it, for the legacy name-constraints rule.
fn valid_hostname(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return false;
    }
    host.split('.').enumerate().all(|(i, part)| {
        !part.is_empty()
            && ((i == 0 && part == "*")
                || part.chars().enumerate().all(|(j, c)| {
                    c.is_ascii_alphanumeric() || (c == '-' && j != 0) || c == '_' || c == ':'
                }))
    })
}
