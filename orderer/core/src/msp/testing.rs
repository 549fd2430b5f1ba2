//! Test material made with rcgen: an organisation with a root CA, an optional intermediate, a TLS
//! CA and NodeOUs, issuing client/peer/admin/orderer certificates and keys, CRLs, and the MSP
//! configs that name them. Shared with other modules' tests (policies, configtx).

use bytes::Bytes;
use ordo_proto::msp::{
    FabricCryptoConfig, FabricMspConfig, FabricNodeOUs, FabricOuIdentifier, MspConfig,
    SerializedIdentity,
};
use prost::Message;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, RevokedCertParams, SerialNumber,
};
use std::sync::atomic::{AtomicU64, Ordering};

/// The key type of an organisation's CAs and of the certificates it issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    EcdsaP256,
    EcdsaP384,
    Ed25519,
}

impl KeyKind {
    pub(crate) fn generate(self) -> KeyPair {
        let alg = match self {
            KeyKind::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyKind::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyKind::Ed25519 => &rcgen::PKCS_ED25519,
        };
        KeyPair::generate_for(alg).expect("rcgen key")
    }
}

/// A CA: certificate and key.
pub(crate) struct Ca {
    pub cert: Certificate,
    pub key: KeyPair,
}

impl Ca {
    pub(crate) fn pem(&self) -> String {
        self.cert.pem()
    }
}

/// A certificate issued to someone, with its key.
pub(crate) struct Issued {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_pem: String,
    pub serial: u64,
}

static SERIAL: AtomicU64 = AtomicU64::new(1000);

fn next_serial() -> u64 {
    SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// How to issue a certificate.
#[derive(Clone, Debug)]
pub(crate) struct IssueOpts {
    pub cn: String,
    pub ous: Vec<String>,
    /// Issued by the root even when an intermediate exists.
    pub by_root: bool,
    /// Validity as (year, year) when not the default 1975..4096.
    pub years: Option<(i32, i32)>,
    pub kind: Option<KeyKind>,
    pub eku: Vec<ExtendedKeyUsagePurpose>,
}

impl IssueOpts {
    pub(crate) fn new(cn: &str, ous: &[&str]) -> IssueOpts {
        IssueOpts {
            cn: cn.into(),
            ous: ous.iter().map(|s| s.to_string()).collect(),
            by_root: false,
            years: None,
            kind: None,
            eku: Vec::new(),
        }
    }
}

/// An organisation: `root` → optional `intermediate` → identities; `tls` issues TLS certificates.
pub(crate) struct TestOrg {
    pub mspid: String,
    pub kind: KeyKind,
    pub root: Ca,
    pub intermediate: Option<Ca>,
    pub tls: Ca,
    /// NodeOUs enabled in [`TestOrg::msp_config`] (client, peer, admin, orderer).
    pub node_ous: bool,
    /// PEM admin certificates put in the config.
    pub admins: Vec<String>,
    /// DER CRLs put in the config.
    pub crls: Vec<Vec<u8>>,
    pub signature_hash_family: String,
}

pub(crate) fn ca(cn: &str, kind: KeyKind, parent: Option<&Ca>) -> Ca {
    let key = kind.generate();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.serial_number = Some(SerialNumber::from(next_serial()));
    params.use_authority_key_identifier_extension = parent.is_some();
    let cert = match parent {
        Some(p) => params.signed_by(&key, &p.cert, &p.key),
        None => params.self_signed(&key),
    }
    .expect("rcgen CA");
    Ca { cert, key }
}

impl TestOrg {
    /// Root CA only, NodeOUs on.
    pub(crate) fn new(mspid: &str, kind: KeyKind) -> TestOrg {
        TestOrg {
            mspid: mspid.into(),
            kind,
            root: ca(&format!("ca.{mspid}"), kind, None),
            intermediate: None,
            tls: ca(&format!("tlsca.{mspid}"), kind, None),
            node_ous: true,
            admins: Vec::new(),
            crls: Vec::new(),
            signature_hash_family: "SHA2".into(),
        }
    }

    /// Root → intermediate, identities issued by the intermediate.
    pub(crate) fn with_intermediate(mspid: &str, kind: KeyKind) -> TestOrg {
        let mut org = TestOrg::new(mspid, kind);
        org.intermediate = Some(ca(&format!("ica.{mspid}"), kind, Some(&org.root)));
        org
    }

    pub(crate) fn issue_with(&self, opts: &IssueOpts) -> Issued {
        let issuer = match (&self.intermediate, opts.by_root) {
            (Some(i), false) => i,
            _ => &self.root,
        };
        issue_by(issuer, opts, opts.kind.unwrap_or(self.kind))
    }

    pub(crate) fn issue(&self, cn: &str, ous: &[&str]) -> Issued {
        self.issue_with(&IssueOpts::new(cn, ous))
    }

    pub(crate) fn client(&self, cn: &str) -> Issued {
        self.issue(cn, &["client"])
    }
    pub(crate) fn peer(&self, cn: &str) -> Issued {
        self.issue(cn, &["peer"])
    }
    pub(crate) fn admin(&self, cn: &str) -> Issued {
        self.issue(cn, &["admin"])
    }
    pub(crate) fn orderer(&self, cn: &str) -> Issued {
        self.issue(cn, &["orderer"])
    }

    /// A TLS certificate from the TLS CA (serverAuth and clientAuth).
    pub(crate) fn tls_cert(&self, cn: &str) -> Issued {
        let mut opts = IssueOpts::new(cn, &[]);
        opts.eku = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        issue_by(&self.tls, &opts, self.kind)
    }

    /// A CRL by the issuing CA (intermediate if any) revoking `serials`.
    pub(crate) fn crl(&self, serials: &[u64]) -> Vec<u8> {
        let issuer = self.intermediate.as_ref().unwrap_or(&self.root);
        crl_by(issuer, serials)
    }

    pub(crate) fn msp_config(&self) -> FabricMspConfig {
        let ou = |name: &str| {
            Some(FabricOuIdentifier {
                certificate: Bytes::new(),
                organizational_unit_identifier: name.into(),
            })
        };
        FabricMspConfig {
            name: self.mspid.clone(),
            root_certs: vec![self.root.pem().into()],
            intermediate_certs: self.intermediate.iter().map(|i| i.pem().into()).collect(),
            admins: self.admins.iter().map(|a| a.clone().into()).collect(),
            revocation_list: self.crls.iter().map(|c| c.clone().into()).collect(),
            signing_identity: None,
            organizational_unit_identifiers: Vec::new(),
            crypto_config: Some(FabricCryptoConfig {
                signature_hash_family: self.signature_hash_family.clone(),
                identity_identifier_hash_function: "SHA256".into(),
            }),
            tls_root_certs: vec![self.tls.pem().into()],
            tls_intermediate_certs: Vec::new(),
            fabric_node_ous: self.node_ous.then(|| FabricNodeOUs {
                enable: true,
                client_ou_identifier: ou("client"),
                peer_ou_identifier: ou("peer"),
                admin_ou_identifier: ou("admin"),
                orderer_ou_identifier: ou("orderer"),
            }),
        }
    }

    /// The config as a channel carries it (`MSPConfig{type: FABRIC}`).
    pub(crate) fn channel_config(&self) -> MspConfig {
        wrap(&self.msp_config())
    }

    /// A creator for `issued` in this org.
    pub(crate) fn creator(&self, issued: &Issued) -> Vec<u8> {
        creator(&self.mspid, issued.cert_pem.as_bytes())
    }
}

pub(crate) fn wrap(config: &FabricMspConfig) -> MspConfig {
    MspConfig {
        r#type: 0,
        config: config.encode_to_vec().into(),
    }
}

pub(crate) fn creator(mspid: &str, id_bytes: &[u8]) -> Vec<u8> {
    SerializedIdentity {
        mspid: mspid.into(),
        id_bytes: Bytes::copy_from_slice(id_bytes),
    }
    .encode_to_vec()
}

pub(crate) fn issue_by(issuer: &Ca, opts: &IssueOpts, kind: KeyKind) -> Issued {
    let key = kind.generate();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, opts.cn.as_str());
    // rcgen keeps one value per attribute type, so further OUs go in under the OU OID spelled
    // as a custom type (the same attribute on the wire).
    for (i, ou) in opts.ous.iter().enumerate() {
        let ty = if i == 0 {
            DnType::OrganizationalUnitName
        } else {
            DnType::CustomDnType(vec![2, 5, 4, 11])
        };
        params.distinguished_name.push(ty, ou.as_str());
    }
    let serial = next_serial();
    params.serial_number = Some(SerialNumber::from(serial));
    params.use_authority_key_identifier_extension = true;
    params.extended_key_usages = opts.eku.clone();
    if let Some((from, to)) = opts.years {
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(to, 1, 1);
    }
    let cert = params
        .signed_by(&key, &issuer.cert, &issuer.key)
        .expect("rcgen leaf");
    Issued {
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
        key_pem: key.serialize_pem(),
        serial,
    }
}

pub(crate) fn crl_by(issuer: &Ca, serials: &[u64]) -> Vec<u8> {
    let params = CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2020, 1, 1),
        next_update: rcgen::date_time_ymd(2030, 1, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: rcgen::date_time_ymd(2020, 1, 1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: issuer.cert.params().key_identifier_method.clone(),
    };
    params
        .signed_by(&issuer.cert, &issuer.key)
        .expect("rcgen CRL")
        .der()
        .to_vec()
}
