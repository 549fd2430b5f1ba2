//! Fabric's MSP folder, as Fabric's `cryptogen`, `fabric-ca-client` and Ordo's own cryptogen
//! lay it out: `cacerts/`, `intermediatecerts/`, `admincerts/`, `crls/`, `tlscacerts/`,
//! `tlsintermediatecerts/` (PEM files, read in name order, several PEM blocks to a file allowed),
//! `config.yaml` (NodeOUs and OU identifiers), and for a signing identity `signcerts/` and
//! `keystore/`. Read into the `msp.FabricMSPConfig` a channel configuration carries.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use bytes::Bytes;
use ordo_core::msp::{Msp, MspVersion, SigningIdentity};
use ordo_proto::msp::{
    FabricCryptoConfig, FabricMspConfig, FabricNodeOUs, FabricOuIdentifier, MspConfig,
};
use prost::Message;
use serde::Deserialize;

/// An MSP folder read from disk.
#[derive(Clone, Debug)]
pub struct MspDir {
    pub path: PathBuf,
    /// The verifying configuration: what a channel configuration lists for the organisation.
    pub config: FabricMspConfig,
    /// `signcerts/` and `keystore/`, when the folder belongs to one identity.
    pub signer: Option<SignerFiles>,
}

/// A signing identity's certificate and the candidate private keys (`keystore/` may hold more
/// than one; the one matching the certificate is the key).
#[derive(Clone, Debug)]
pub struct SignerFiles {
    pub cert_pem: Vec<u8>,
    pub keys: Vec<(PathBuf, Vec<u8>)>,
}

impl MspDir {
    /// `msp.MSPConfig { type: FABRIC, config }`, as the channel configuration's MSP value holds it.
    pub fn msp_config(&self) -> MspConfig {
        MspConfig {
            r#type: 0,
            config: self.config.encode_to_vec().into(),
        }
    }
}

/// `config.yaml`, in Fabric's key names.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConfigYaml {
    #[serde(default)]
    organizational_unit_identifiers: Vec<OuYaml>,
    #[serde(default, rename = "NodeOUs")]
    node_ous: Option<NodeOusYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OuYaml {
    #[serde(default)]
    certificate: String,
    organizational_unit_identifier: String,
}

#[derive(Debug, Deserialize)]
struct NodeOusYaml {
    #[serde(rename = "Enable", default)]
    enable: bool,
    #[serde(rename = "ClientOUIdentifier")]
    client: Option<OuYaml>,
    #[serde(rename = "PeerOUIdentifier")]
    peer: Option<OuYaml>,
    #[serde(rename = "AdminOUIdentifier")]
    admin: Option<OuYaml>,
    #[serde(rename = "OrdererOUIdentifier")]
    orderer: Option<OuYaml>,
}

/// Reads the MSP folder `dir` for MSP id `mspid` (the folder does not name its MSP; Fabric takes
/// the id from the orderer's or the profile's configuration).
pub fn load(dir: &Path, mspid: &str) -> anyhow::Result<MspDir> {
    if mspid.is_empty() {
        bail!("{}: an MSP id is required", dir.display());
    }
    if !dir.is_dir() {
        bail!("{} is not an MSP folder", dir.display());
    }
    let root_certs = pem_files(&dir.join("cacerts"))?;
    if root_certs.is_empty() {
        bail!("{}: cacerts/ holds no certificate", dir.display());
    }
    let yaml_path = dir.join("config.yaml");
    let yaml: ConfigYaml = if yaml_path.exists() {
        let text = fs::read_to_string(&yaml_path)
            .with_context(|| format!("reading {}", yaml_path.display()))?;
        serde_yaml_ng::from_str(&text)
            .with_context(|| format!("parsing {}", yaml_path.display()))?
    } else {
        ConfigYaml::default()
    };
    let ou = |o: &OuYaml| -> anyhow::Result<FabricOuIdentifier> {
        let certificate = if o.certificate.is_empty() {
            Bytes::new()
        } else {
            let path = dir.join(&o.certificate);
            fs::read(&path)
                .with_context(|| format!("reading {} (named in config.yaml)", path.display()))?
                .into()
        };
        Ok(FabricOuIdentifier {
            certificate,
            organizational_unit_identifier: o.organizational_unit_identifier.clone(),
        })
    };
    let fabric_node_ous = match &yaml.node_ous {
        None => None,
        Some(n) => Some(FabricNodeOUs {
            enable: n.enable,
            client_ou_identifier: n.client.as_ref().map(ou).transpose()?,
            peer_ou_identifier: n.peer.as_ref().map(ou).transpose()?,
            admin_ou_identifier: n.admin.as_ref().map(ou).transpose()?,
            orderer_ou_identifier: n.orderer.as_ref().map(ou).transpose()?,
        }),
    };
    let config = FabricMspConfig {
        name: mspid.to_string(),
        root_certs,
        intermediate_certs: pem_files(&dir.join("intermediatecerts"))?,
        admins: pem_files(&dir.join("admincerts"))?,
        revocation_list: pem_files(&dir.join("crls"))?,
        signing_identity: None,
        organizational_unit_identifiers: yaml
            .organizational_unit_identifiers
            .iter()
            .map(ou)
            .collect::<anyhow::Result<_>>()?,
        // What Fabric's getMspConfig always writes.
        crypto_config: Some(FabricCryptoConfig {
            signature_hash_family: "SHA2".into(),
            identity_identifier_hash_function: "SHA256".into(),
        }),
        tls_root_certs: pem_files(&dir.join("tlscacerts"))?,
        tls_intermediate_certs: pem_files(&dir.join("tlsintermediatecerts"))?,
        fabric_node_ous,
    };
    let signcerts = pem_files(&dir.join("signcerts"))?;
    let signer = match signcerts.as_slice() {
        [] => None,
        [cert] => Some(SignerFiles {
            cert_pem: cert.to_vec(),
            keys: files(&dir.join("keystore"))?
                .into_iter()
                .map(|path| {
                    Ok((
                        path.clone(),
                        fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
                    ))
                })
                .collect::<anyhow::Result<_>>()?,
        }),
        more => bail!(
            "{}: signcerts/ holds {} certificates; a signing identity has one",
            dir.display(),
            more.len()
        ),
    };
    Ok(MspDir {
        path: dir.to_path_buf(),
        config,
        signer,
    })
}

/// The regular files of `dir` in name order; none if it does not exist.
fn files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// Every PEM block of every file in `dir`, each as a PEM of its own (as Fabric splits them).
fn pem_files(dir: &Path) -> anyhow::Result<Vec<Bytes>> {
    let mut out = Vec::new();
    for path in files(dir)? {
        let text = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let blocks =
            pem::parse_many(&text).with_context(|| format!("{} is not PEM", path.display()))?;
        if blocks.is_empty() {
            bail!("{} holds no PEM block", path.display());
        }
        for block in blocks {
            let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
            out.push(Bytes::from(pem::encode_config(&block, config)));
        }
    }
    Ok(out)
}

/// The signing identity of MSP folder `dir` (its `signcerts/` and `keystore/`), as MSP `mspid`:
/// the certificate is sanitised by the folder's own CAs, as Fabric's local MSP does. Of several
/// keys in `keystore/`, the one matching the certificate is taken.
pub fn signing_identity(dir: &Path, mspid: &str) -> anyhow::Result<SigningIdentity> {
    let folder = load(dir, mspid)?;
    let Some(signer) = &folder.signer else {
        bail!("{}: signcerts/ holds no certificate", dir.display());
    };
    let msp = Msp::setup(&folder.config, MspVersion::V3_0)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let mut refusals = Vec::new();
    for (path, key) in &signer.keys {
        match SigningIdentity::new(&msp, &signer.cert_pem, key) {
            Ok(identity) => return Ok(identity),
            Err(e) => refusals.push(format!("{}: {e}", path.display())),
        }
    }
    if refusals.is_empty() {
        bail!("{}: keystore/ holds no key", dir.display());
    }
    bail!(
        "{}: no key in keystore/ signs for the certificate ({})",
        dir.display(),
        refusals.join("; ")
    )
}
