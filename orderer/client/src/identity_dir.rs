//! Identity folders: `key.pem` (the Ed25519 private key, PKCS#8 PEM, readable by its owner
//! only), `mspid` (one line) and `key.pub` (the public key in hex, for configuration files).

use std::fs;
use std::path::Path;

use anyhow::Context;
use ordo_core::identity::Signer;

/// Loads an identity folder written by [`save`].
pub fn load(dir: &Path) -> anyhow::Result<Signer> {
    let key_path = dir.join("key.pem");
    let pem =
        fs::read_to_string(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
    let mspid_path = dir.join("mspid");
    let mspid = fs::read_to_string(&mspid_path)
        .with_context(|| format!("reading {}", mspid_path.display()))?;
    Signer::from_key_pem(mspid.trim(), &pem).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))
}

/// Writes the identity folder of `signer`.
pub fn save(signer: &Signer, dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key_path = dir.join("key.pem");
    fs::write(&key_path, signer.key_pem().as_bytes())
        .with_context(|| format!("writing {}", key_path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600))?;
    }
    fs::write(dir.join("mspid"), format!("{}\n", signer.mspid()))?;
    fs::write(
        dir.join("key.pub"),
        format!("{}\n", hex::encode(signer.public_key())),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::generate("Org1MSP");
        save(&signer, dir.path()).unwrap();
        let loaded = load(dir.path()).unwrap();
        assert_eq!(loaded.public_key(), signer.public_key());
        assert_eq!(loaded.creator(), signer.creator());
    }

    #[test]
    fn an_empty_mspid_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        save(&Signer::generate("Org1MSP"), dir.path()).unwrap();
        fs::write(dir.path().join("mspid"), "\n").unwrap();
        assert!(format!("{:#}", load(dir.path()).unwrap_err()).contains("empty mspid"));
    }
}
