//! Development crypto material, as Fabric's `cryptogen` makes it: per organisation a signing CA
//! and a TLS CA, NodeOUs enabled, and MSP folders (see [`crate::msp_dir`]) for its orderers or
//! peers, an admin and client users, each with a TLS key pair. Signing keys are ECDSA P-256 by
//! default or Ed25519 on request; TLS keys are always ECDSA P-256.
//!
//! Layout under the output folder, for an organisation `Org1` (MSP id `Org1MSP`):
//!
//! ```text
//! Org1/msp/                      the organisation's verifying MSP (what a channel config lists)
//! Org1/ca/, Org1/tlsca/          the CAs' certificates and keys
//! Org1/orderers/orderer1/msp/    a node's signing MSP: signcerts/, keystore/priv_sk, ...
//! Org1/orderers/orderer1/tls/    ca.crt, server.crt, server.key (client auth too)
//! Org1/peers/peer1/...           the same, for a peer organisation
//! Org1/users/Admin/msp/, Org1/users/User1/msp/, .../tls/ (client.crt, client.key)
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SignatureAlgorithm,
};

/// The signing key algorithm of the generated identities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    EcdsaP256,
    Ed25519,
}

impl std::str::FromStr for KeyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ecdsa" | "ecdsa-p256" | "p256" => Ok(KeyKind::EcdsaP256),
            "ed25519" => Ok(KeyKind::Ed25519),
            other => Err(format!("unknown key type {other:?} (ecdsa or ed25519)")),
        }
    }
}

impl KeyKind {
    fn algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyKind::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyKind::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }
}

/// Whether an organisation runs orderers or peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrgKind {
    Orderer,
    Peer,
}

/// One organisation to generate.
#[derive(Clone, Debug)]
pub struct OrgSpec {
    /// The group name in the channel config and the folder name; the MSP id is `<name>MSP`.
    pub name: String,
    pub kind: OrgKind,
    /// Orderer or peer nodes.
    pub nodes: u32,
    /// Client users besides the admin.
    pub users: u32,
    /// Host names and IP addresses the nodes' TLS certificates are valid for, besides
    /// `localhost`, `127.0.0.1` and the node's own name.
    pub hosts: Vec<String>,
}

impl OrgSpec {
    pub fn mspid(&self) -> String {
        format!("{}MSP", self.name)
    }
}

/// Where the generated material of an organisation is.
#[derive(Clone, Debug)]
pub struct GeneratedOrg {
    pub name: String,
    pub mspid: String,
    pub kind: OrgKind,
    /// The organisation's verifying MSP folder.
    pub msp: PathBuf,
    /// Node folders (each holding `msp/` and `tls/`), in order.
    pub nodes: Vec<PathBuf>,
    /// `users/Admin`, then `users/User1`...
    pub users: Vec<PathBuf>,
}

/// Validity of everything generated: from a few minutes ago (clock skew between machines) for
/// ten years, as Fabric's cryptogen.
fn validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(3650);
}

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(common_name: &str, organisation: &str, kind: KeyKind) -> anyhow::Result<Ca> {
        let key = KeyPair::generate_for(kind.algorithm())?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name(common_name, organisation, None);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        // Fabric's CAs carry both; Go's chain rule then lets their leaves serve either role.
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        validity(&mut params);
        let cert = params.self_signed(&key)?;
        Ok(Ca { cert, key })
    }

    /// A leaf certificate and its key.
    fn issue(
        &self,
        common_name: &str,
        organisation: &str,
        ou: Option<&str>,
        kind: KeyKind,
        tls_hosts: Option<&[String]>,
    ) -> anyhow::Result<(String, String)> {
        let key = KeyPair::generate_for(kind.algorithm())?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name(common_name, organisation, ou);
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if let Some(hosts) = tls_hosts {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            params.subject_alt_names = hosts
                .iter()
                .map(|h| match h.parse() {
                    Ok(ip) => Ok(SanType::IpAddress(ip)),
                    Err(_) => Ok(SanType::DnsName(h.clone().try_into()?)),
                })
                .collect::<Result<_, rcgen::Error>>()?;
        }
        validity(&mut params);
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

fn name(common_name: &str, organisation: &str, ou: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, organisation);
    if let Some(ou) = ou {
        dn.push(DnType::OrganizationalUnitName, ou);
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

/// NodeOUs, each OU certified by the organisation's CA (`cacerts/ca.pem`).
const CONFIG_YAML: &str = "NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: orderer
";

fn write(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

/// A private key file, readable by its owner only.
fn write_key(path: &Path, pem: &str) -> anyhow::Result<()> {
    write(path, pem)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
    }
    Ok(())
}

/// Generates `orgs` under `out`, which must not hold a previous run's material for them.
pub fn generate(out: &Path, orgs: &[OrgSpec], kind: KeyKind) -> anyhow::Result<Vec<GeneratedOrg>> {
    orgs.iter()
        .map(|org| generate_org(out, org, kind))
        .collect()
}

fn generate_org(out: &Path, spec: &OrgSpec, kind: KeyKind) -> anyhow::Result<GeneratedOrg> {
    let root = out.join(&spec.name);
    if root.exists() {
        anyhow::bail!(
            "{} exists; remove it to generate {} again",
            root.display(),
            spec.name
        );
    }
    let org = &spec.name;
    let ca = Ca::new(&format!("ca.{org}"), org, kind)?;
    let tlsca = Ca::new(&format!("tlsca.{org}"), org, KeyKind::EcdsaP256)?;
    let (ca_pem, tlsca_pem) = (ca.cert.pem(), tlsca.cert.pem());
    write(&root.join("ca/ca.pem"), &ca_pem)?;
    write_key(&root.join("ca/priv_sk"), &ca.key.serialize_pem())?;
    write(&root.join("tlsca/tlsca.pem"), &tlsca_pem)?;
    write_key(&root.join("tlsca/priv_sk"), &tlsca.key.serialize_pem())?;

    // The verifying MSP, and the common part of every identity's MSP folder.
    let verifying = |dir: &Path| -> anyhow::Result<()> {
        write(&dir.join("cacerts/ca.pem"), &ca_pem)?;
        write(&dir.join("tlscacerts/tlsca.pem"), &tlsca_pem)?;
        write(&dir.join("config.yaml"), CONFIG_YAML)
    };
    let msp = root.join("msp");
    verifying(&msp)?;

    let identity = |dir: &Path, cn: &str, ou: &str, tls: TlsRole| -> anyhow::Result<()> {
        let msp = dir.join("msp");
        verifying(&msp)?;
        let (cert, key) = ca.issue(cn, org, Some(ou), kind, None)?;
        write(&msp.join(format!("signcerts/{cn}-cert.pem")), &cert)?;
        write_key(&msp.join("keystore/priv_sk"), &key)?;
        let mut hosts = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            cn.to_string(),
        ];
        hosts.extend(spec.hosts.iter().cloned());
        let (tls_cert, tls_key) = tlsca.issue(cn, org, None, KeyKind::EcdsaP256, Some(&hosts))?;
        let tls_dir = dir.join("tls");
        write(&tls_dir.join("ca.crt"), &tlsca_pem)?;
        let stem = match tls {
            TlsRole::Server => "server",
            TlsRole::Client => "client",
        };
        write(&tls_dir.join(format!("{stem}.crt")), &tls_cert)?;
        write_key(&tls_dir.join(format!("{stem}.key")), &tls_key)
    };

    let (folder, prefix, ou) = match spec.kind {
        OrgKind::Orderer => ("orderers", "orderer", "orderer"),
        OrgKind::Peer => ("peers", "peer", "peer"),
    };
    let mut nodes = Vec::new();
    for i in 1..=spec.nodes {
        let dir = root.join(folder).join(format!("{prefix}{i}"));
        identity(&dir, &format!("{prefix}{i}"), ou, TlsRole::Server)?;
        nodes.push(dir);
    }
    let mut users = Vec::new();
    let admin = root.join("users/Admin");
    identity(&admin, "Admin", "admin", TlsRole::Client)?;
    users.push(admin);
    for i in 1..=spec.users {
        let dir = root.join(format!("users/User{i}"));
        identity(&dir, &format!("User{i}"), "client", TlsRole::Client)?;
        users.push(dir);
    }
    Ok(GeneratedOrg {
        name: spec.name.clone(),
        mspid: spec.mspid(),
        kind: spec.kind,
        msp,
        nodes,
        users,
    })
}

#[derive(Clone, Copy)]
enum TlsRole {
    Server,
    Client,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msp_dir;

    #[test]
    fn generated_folders_load_as_fabric_msps() {
        let out = tempfile::tempdir().unwrap();
        let orgs = [
            OrgSpec {
                name: "Orderer".into(),
                kind: OrgKind::Orderer,
                nodes: 2,
                users: 0,
                hosts: vec!["orderer.example.com".into()],
            },
            OrgSpec {
                name: "Org1".into(),
                kind: OrgKind::Peer,
                nodes: 1,
                users: 2,
                hosts: vec![],
            },
        ];
        let made = generate(out.path(), &orgs, KeyKind::EcdsaP256).unwrap();
        assert_eq!(made[0].nodes.len(), 2);
        assert_eq!(made[1].users.len(), 3);
        let org = msp_dir::load(&made[1].msp, &made[1].mspid).unwrap();
        assert_eq!(org.config.name, "Org1MSP");
        assert_eq!(org.config.root_certs.len(), 1);
        assert_eq!(org.config.tls_root_certs.len(), 1);
        let node_ous = org.config.fabric_node_ous.as_ref().unwrap();
        assert!(node_ous.enable);
        let admin_ou = node_ous.admin_ou_identifier.as_ref().unwrap();
        assert_eq!(admin_ou.organizational_unit_identifier, "admin");
        assert_eq!(admin_ou.certificate, org.config.root_certs[0]);
        assert!(org.signer.is_none());
        let user = msp_dir::load(&made[1].users[1].join("msp"), "Org1MSP").unwrap();
        let signer = user.signer.unwrap();
        assert_eq!(signer.keys.len(), 1);
        assert!(
            String::from_utf8_lossy(&signer.cert_pem).starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert!(made[0].nodes[1].join("tls/server.key").exists());
        // A second run does not overwrite keys.
        assert!(generate(out.path(), &orgs[..1], KeyKind::Ed25519).is_err());
        let ed = generate(&out.path().join("ed"), &orgs[1..], KeyKind::Ed25519).unwrap();
        assert!(msp_dir::load(&ed[0].users[0].join("msp"), "Org1MSP")
            .unwrap()
            .signer
            .is_some());
    }

    #[test]
    fn a_folder_without_cacerts_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let error = msp_dir::load(dir.path(), "Org1MSP")
            .unwrap_err()
            .to_string();
        assert!(error.contains("cacerts/ holds no certificate"), "{error}");
    }
}
