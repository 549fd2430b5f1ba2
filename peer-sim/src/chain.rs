//! Verifying a chain as it arrives, as a Fabric peer does: hash chain, data hashes, the orderer
//! signatures against the BlockValidation policy of the configuration in force (the genesis
//! block's, then each config block's from the next block on), and each transaction at most once.

use std::collections::HashSet;

use anyhow::{anyhow, bail};
use ordo_core::block;
use ordo_core::bundle::{config_of_envelope, Bundle};
use ordo_core::envelope::stored_tx_id;
use ordo_proto::common::Block;

#[derive(Default)]
pub struct ChainVerifier {
    /// The configuration in force (none before the genesis block).
    bundle: Option<Bundle>,
    previous: Option<[u8; 32]>,
    next: u64,
    seen: HashSet<String>,
}

/// What a verified block held.
#[derive(Clone, Debug)]
pub struct VerifiedBlock {
    pub number: u64,
    pub tx_ids: Vec<String>,
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of the next block expected.
    pub fn height(&self) -> u64 {
        self.next
    }

    /// The configuration in force for the next block; `None` before the genesis block.
    pub fn bundle(&self) -> Option<&Bundle> {
        self.bundle.as_ref()
    }

    /// Verifies the next block of the chain, starting with the genesis block.
    pub fn verify(&mut self, block: &Block) -> anyhow::Result<VerifiedBlock> {
        let number = block.header.as_ref().map(|h| h.number).unwrap_or(u64::MAX);
        if number != self.next {
            bail!("expected block {}, got block {number}", self.next);
        }
        let hash = block::verify_chain(block, self.previous.as_ref())?;
        let data = block
            .data
            .as_ref()
            .map(|d| d.data.as_slice())
            .unwrap_or(&[]);
        // A config block's configuration rules from the next block on; it is itself signed
        // under the one before it.
        let mut next_bundle = None;
        let mut config_block = false;
        if number == 0 {
            // The genesis block is the root of trust (as a peer's join block is): it is not
            // signed, and it names who signs every later block.
            next_bundle =
                Some(Bundle::from_block(block).map_err(|e| anyhow!("genesis block: {e}"))?);
        } else {
            let bundle = self
                .bundle
                .as_ref()
                .ok_or_else(|| anyhow!("block {number} before the genesis block"))?;
            block::verify_signature(block, bundle)?;
            if let [envelope] = data {
                // Any envelope that is not CONFIG (an ordinary transaction) is no config block.
                if let Ok((channel_id, config)) = config_of_envelope(envelope) {
                    if channel_id != bundle.channel_id() {
                        bail!(
                            "block {number}: config block for channel {channel_id:?}, not {:?}",
                            bundle.channel_id()
                        );
                    }
                    let config = config
                        .config
                        .ok_or_else(|| anyhow!("block {number}: config block without a config"))?;
                    if config.sequence != bundle.sequence() + 1 {
                        bail!(
                            "block {number}: config sequence {} does not follow {}",
                            config.sequence,
                            bundle.sequence()
                        );
                    }
                    // As Fabric 3.x peers: a config block is its own last config.
                    if block::last_config_index(block) != Some(number) {
                        bail!("block {number}: config block whose last-config index is not its own number");
                    }
                    let next = Bundle::new(&channel_id, config)
                        .map_err(|e| anyhow!("block {number}: config block: {e}"))?;
                    next_bundle = Some(next);
                    config_block = true;
                }
            }
        }
        let mut tx_ids = Vec::with_capacity(data.len());
        for (i, envelope) in data.iter().enumerate() {
            let tx_id = match stored_tx_id(envelope) {
                Some(tx_id) => tx_id,
                // The CONFIG envelope an orderer makes of an update has no tx_id (§5.5).
                None if config_block || number == 0 => continue,
                None => bail!("block {number}: transaction {i} does not parse or has no tx_id"),
            };
            if !self.seen.insert(tx_id.clone()) {
                bail!("block {number}: transaction {tx_id} was already ordered");
            }
            tx_ids.push(tx_id);
        }
        if let Some(bundle) = next_bundle {
            self.bundle = Some(bundle);
        }
        self.previous = Some(hash);
        self.next += 1;
        Ok(VerifiedBlock { number, tx_ids })
    }

    pub fn contains(&self, tx_id: &str) -> bool {
        self.seen.contains(tx_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use ordo_client::cryptogen::{self, KeyKind, OrgKind, OrgSpec};
    use ordo_client::msp_dir;
    use ordo_core::configtx::genesis::{
        self, ApplicationProfile, ConsensusProfile, OrdererProfile, OrgProfile, Profile,
    };
    use ordo_core::msp::SigningIdentity;
    use ordo_core::writer::{BlockInfo, BlockWriter};
    use ordo_proto::common::{ConfigEnvelope, HeaderType};
    use prost::Message;
    use std::time::SystemTime;

    struct Net {
        _dir: tempfile::TempDir,
        profile: Profile,
        orderer: SigningIdentity,
        client: SigningIdentity,
    }

    fn net() -> Net {
        let dir = tempfile::tempdir().unwrap();
        let spec = |name: &str, kind| OrgSpec {
            name: name.into(),
            kind,
            nodes: 1,
            users: 1,
            hosts: vec![],
        };
        let made = cryptogen::generate(
            dir.path(),
            &[
                spec("Orderer", OrgKind::Orderer),
                spec("Org1", OrgKind::Peer),
            ],
            KeyKind::EcdsaP256,
        )
        .unwrap();
        let org = |i: usize, name: &str| {
            let folder = msp_dir::load(&made[i].msp, &made[i].mspid).unwrap();
            let mut org = OrgProfile::new(name, folder.msp_config());
            org.node_ous = true;
            org
        };
        let mut orderer_org = org(0, "OrdererOrg");
        orderer_org.endpoints = vec!["127.0.0.1:7050".into()];
        let profile = Profile::new(
            "ordo",
            OrdererProfile::new(ConsensusProfile::Solo, vec![orderer_org]),
            Some(ApplicationProfile::new(vec![org(1, "Org1")])),
        );
        let orderer =
            msp_dir::signing_identity(&made[0].nodes[0].join("msp"), "OrdererMSP").unwrap();
        let client = msp_dir::signing_identity(&made[1].users[1].join("msp"), "Org1MSP").unwrap();
        Net {
            _dir: dir,
            profile,
            orderer,
            client,
        }
    }

    fn hash(block: &Block) -> [u8; 32] {
        block::header_hash(block.header.as_ref().unwrap())
    }

    fn tx(client: &SigningIdentity) -> Bytes {
        ordo_core::envelope::build(
            client,
            "ordo",
            HeaderType::EndorserTransaction,
            Bytes::from_static(b"tx"),
        )
        .encode_to_vec()
        .into()
    }

    fn info(number: u64, last_config: u64) -> BlockInfo {
        BlockInfo {
            number,
            last_config,
            consenter_metadata: Bytes::new(),
        }
    }

    #[test]
    fn follows_the_configuration_in_force() {
        let n = net();
        let genesis = genesis::genesis_block(&n.profile, SystemTime::now(), [1; 24]).unwrap();
        let writer = BlockWriter::new(n.orderer.clone());
        let mut verifier = ChainVerifier::new();
        assert!(verifier.bundle().is_none());
        assert_eq!(verifier.verify(&genesis).unwrap().tx_ids.len(), 1);
        assert_eq!(
            verifier.bundle().unwrap().cut_rules().max_message_count,
            500
        );

        let one = writer.write(
            info(1, 0),
            &hash(&genesis),
            vec![tx(&n.client), tx(&n.client)],
        );
        assert_eq!(verifier.verify(&one).unwrap().tx_ids.len(), 2);

        // A config block: the new batch rules hold from the next block on.
        let mut changed = n.profile.clone();
        changed.orderer.batch_size.max_message_count = 7;
        let mut config = genesis::config(&changed).unwrap();
        config.sequence = 1;
        let envelope = ConfigEnvelope {
            config: Some(config),
            last_update: None,
        };
        let config_tx =
            ordo_core::envelope::config_envelope(&n.orderer, "ordo", &envelope, SystemTime::now());
        let two = writer.write(
            info(2, 2),
            &hash(&one),
            vec![config_tx.encode_to_vec().into()],
        );
        assert!(verifier.verify(&two).unwrap().tx_ids.is_empty());
        assert_eq!(verifier.bundle().unwrap().cut_rules().max_message_count, 7);
        assert_eq!(verifier.bundle().unwrap().sequence(), 1);

        let three = writer.write(info(3, 2), &hash(&two), vec![tx(&n.client)]);
        verifier.verify(&three).unwrap();
        assert_eq!(verifier.height(), 4);

        // A config block that does not follow the sequence in force is refused.
        let stale = writer.write(
            info(4, 4),
            &hash(&three),
            vec![config_tx.encode_to_vec().into()],
        );
        let error = verifier.verify(&stale).unwrap_err().to_string();
        assert!(
            error.contains("config sequence 1 does not follow 1"),
            "{error}"
        );

        // Nor one that does not name itself as the last config block (Fabric 3.x peers).
        let mut config = genesis::config(&changed).unwrap();
        config.sequence = 2;
        let envelope = ConfigEnvelope {
            config: Some(config),
            last_update: None,
        };
        let config_tx =
            ordo_core::envelope::config_envelope(&n.orderer, "ordo", &envelope, SystemTime::now());
        let misnamed = writer.write(
            info(4, 2),
            &hash(&three),
            vec![config_tx.encode_to_vec().into()],
        );
        let error = verifier.verify(&misnamed).unwrap_err().to_string();
        assert!(error.contains("last-config index"), "{error}");
        assert_eq!(verifier.height(), 4);
    }

    #[test]
    fn refuses_bad_blocks() {
        let n = net();
        let genesis = genesis::genesis_block(&n.profile, SystemTime::now(), [1; 24]).unwrap();
        let mut verifier = ChainVerifier::new();
        let orphan =
            BlockWriter::new(n.orderer.clone()).write(info(0, 0), &[], vec![tx(&n.client)]);
        assert!(verifier
            .verify(&orphan)
            .unwrap_err()
            .to_string()
            .contains("genesis block"));
        verifier.verify(&genesis).unwrap();

        // Signed by a peer organisation's client: not the BlockValidation policy's orderers.
        let forged = BlockWriter::new(n.client.clone()).write(
            info(1, 0),
            &hash(&genesis),
            vec![tx(&n.client)],
        );
        let error = verifier.verify(&forged).unwrap_err().to_string();
        assert!(error.contains("block validation policy"), "{error}");

        let writer = BlockWriter::new(n.orderer.clone());
        let unlinked = writer.write(info(1, 0), &[0; 32], vec![tx(&n.client)]);
        assert!(verifier
            .verify(&unlinked)
            .unwrap_err()
            .to_string()
            .contains("previous_hash"));

        let skipped = writer.write(info(2, 0), &hash(&genesis), vec![tx(&n.client)]);
        assert!(verifier
            .verify(&skipped)
            .unwrap_err()
            .to_string()
            .contains("expected block 1"));

        let again = tx(&n.client);
        let twice = writer.write(info(1, 0), &hash(&genesis), vec![again.clone(), again]);
        assert!(verifier
            .verify(&twice)
            .unwrap_err()
            .to_string()
            .contains("already ordered"));
    }
}
