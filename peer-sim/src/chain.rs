//! Verifying a chain as it arrives: hash chain, data hashes, orderer signatures (against the
//! consenters of the configuration in force: the genesis one, then each config block's), and
//! each transaction at most once.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::{anyhow, bail};
use ordo_core::block;
use ordo_core::config::wire::from_block as config_from_block;
use ordo_core::envelope::stored_tx_id;
use ordo_core::identity::Msp;
use ordo_core::policy::ChannelPolicy;
use ordo_proto::common::Block;

#[derive(Default)]
pub struct ChainVerifier {
    /// Who signs blocks: the MSP of the configuration in force (none before the genesis block).
    orderers: Option<Arc<dyn Msp>>,
    previous: Option<[u8; 32]>,
    next: u64,
    seen: HashSet<String>,
}

/// What a verified block held.
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
        if number == 0 {
            // The genesis block is the root of trust (as a peer's join block is): it names the
            // orderers whose signatures every later block must carry.
            let config = config_from_block(block).map_err(|e| anyhow!("genesis block: {e}"))?;
            let policy = ChannelPolicy::new(config).map_err(|e| anyhow!("genesis block: {e}"))?;
            self.orderers = Some(policy.msp().clone());
        } else {
            let orderers = self
                .orderers
                .as_deref()
                .ok_or_else(|| anyhow!("block {number} before the genesis block"))?;
            block::verify_signature(block, orderers)?;
        }
        let mut tx_ids = Vec::with_capacity(data.len());
        for (i, envelope) in data.iter().enumerate() {
            let tx_id = stored_tx_id(envelope)
                .ok_or_else(|| anyhow!("block {number}: transaction {i} does not parse"))?;
            if !self.seen.insert(tx_id.clone()) {
                bail!("block {number}: transaction {tx_id} was already ordered");
            }
            tx_ids.push(tx_id);
        }
        if number > 0 {
            if let Ok(policy) = config_from_block(block).and_then(ChannelPolicy::new) {
                // A config block changes the orderer set from the next block on.
                self.orderers = Some(policy.msp().clone());
            }
        }
        self.previous = Some(hash);
        self.next += 1;
        Ok(VerifiedBlock { number, tx_ids })
    }

    pub fn contains(&self, tx_id: &str) -> bool {
        self.seen.contains(tx_id)
    }
}
