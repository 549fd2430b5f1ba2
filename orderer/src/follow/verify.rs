//! Checking pulled blocks before they are stored (pure): each must be the next one, chain to the
//! last one by hash, carry the hash of its own data, and — past the genesis block — be signed as
//! the channel's /Channel/Orderer/BlockValidation policy in force requires. The join block the
//! operator gave is the anchor: the pulled chain must reach it unchanged, or it is not the
//! channel's.

use ordo_core::block::{self, VerifyError};
use ordo_core::bundle::Bundle;
use ordo_proto::common::Block;

/// Where a pulled chain stands: what the next block must be, and under which config.
pub struct PulledChain {
    next: u64,
    previous_hash: Option<[u8; 32]>,
    /// The configuration in force for the next block; `None` before the genesis block.
    bundle: Option<Bundle>,
    /// The join block's number and header hash, until a block of that number was checked.
    anchor: Option<(u64, [u8; 32])>,
}

/// A block that passed: whether it changed the configuration.
pub struct Checked {
    /// The block's configuration, if it is a config block.
    pub config: Option<Bundle>,
}

impl PulledChain {
    /// A chain pulled into an empty ledger, to reach `join` (block number and header hash).
    pub fn empty(join: (u64, [u8; 32])) -> PulledChain {
        PulledChain {
            next: 0,
            previous_hash: None,
            bundle: None,
            anchor: Some(join),
        }
    }

    /// A chain resumed after the stored block `last`, whose configuration in force is `bundle`;
    /// `join` is the anchor if `last` is below it.
    pub fn after(last: &Block, bundle: Bundle, join: (u64, [u8; 32])) -> PulledChain {
        let header = last.header.clone().unwrap_or_default();
        PulledChain {
            next: header.number + 1,
            previous_hash: Some(block::header_hash(&header)),
            bundle: Some(bundle),
            anchor: (header.number < join.0).then_some(join),
        }
    }

    /// The number of the next block to pull.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Whether the join block has been reached (the node is no longer onboarding).
    pub fn reached_join_block(&self) -> bool {
        self.anchor.is_none()
    }

    /// The join block's number and header hash while it has not been reached: a source must
    /// hold exactly this block before any block below it is taken from it.
    pub fn anchor(&self) -> Option<(u64, [u8; 32])> {
        self.anchor
    }

    /// The configuration in force (`None` before the genesis block).
    pub fn bundle(&self) -> Option<&Bundle> {
        self.bundle.as_ref()
    }

    /// Checks `block` as the next one, and advances past it.
    pub fn check(&mut self, block: &Block) -> Result<Checked, VerifyError> {
        let number = block.header.as_ref().map_or(0, |h| h.number);
        let fail = |reason: String| VerifyError { number, reason };
        if block.header.is_none() {
            return Err(fail("no header".into()));
        }
        if number != self.next {
            return Err(fail(format!("expected block {}", self.next)));
        }
        let hash = block::verify_chain(block, self.previous_hash.as_ref())?;
        if let Some((join, join_hash)) = self.anchor {
            if number == join && hash != join_hash {
                return Err(fail(
                    "differs from the join block: the chain pulled is not the channel's".into(),
                ));
            }
        }
        // The genesis block is unsigned; it is vouched for by the chain of hashes up to the
        // join block.
        if let Some(bundle) = &self.bundle {
            block::verify_signature(block, bundle)?;
        }
        let is_config = number == 0 || block::last_config_index(block) == Some(number);
        let config = if is_config {
            let config = Bundle::from_block(block)
                .map_err(|e| fail(format!("a config block whose config is unusable: {e}")))?;
            if let Some(bundle) = &self.bundle {
                if config.channel_id() != bundle.channel_id() {
                    return Err(fail(format!(
                        "a config block of channel {}",
                        config.channel_id()
                    )));
                }
            }
            self.bundle = Some(config.clone());
            Some(config)
        } else {
            None
        };
        if self.anchor.is_some_and(|(join, _)| number >= join) {
            self.anchor = None;
        }
        self.next = number + 1;
        self.previous_hash = Some(hash);
        Ok(Checked { config })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use ordo_core::writer::{BlockInfo, BlockWriter};

    /// The development channel's genesis block and a writer signing as its orderer.
    struct Fixture {
        _dev: crate::setup::dev::Fixture,
        genesis: Block,
        writer: BlockWriter,
    }

    fn fixture() -> Fixture {
        let dev = crate::setup::dev::Fixture::new();
        Fixture {
            genesis: dev.genesis.block.clone(),
            writer: BlockWriter::new(dev.signer.clone()),
            _dev: dev,
        }
    }

    /// The genesis block and `n` signed blocks after it.
    fn chain(f: &Fixture, n: u64) -> Vec<Block> {
        chain_of(f, n, "tx")
    }

    /// [`chain`] with transactions named `tag`.
    fn chain_of(f: &Fixture, n: u64, tag: &str) -> Vec<Block> {
        let mut blocks = vec![f.genesis.clone()];
        for number in 1..=n {
            let previous = block::header_hash(blocks.last().unwrap().header.as_ref().unwrap());
            let info = BlockInfo {
                number,
                last_config: 0,
                consenter_metadata: Bytes::new(),
            };
            let data = vec![Bytes::from(format!("{tag} {number}"))];
            blocks.push(f.writer.write(info, &previous, data));
        }
        blocks
    }

    fn anchor(block: &Block) -> (u64, [u8; 32]) {
        let header = block.header.as_ref().unwrap();
        (header.number, block::header_hash(header))
    }

    #[test]
    fn a_whole_chain_up_to_the_join_block_passes_and_ends_onboarding() {
        let f = fixture();
        let blocks = chain(&f, 4);
        let mut pulled = PulledChain::empty(anchor(&blocks[2]));
        for (i, block) in blocks.iter().enumerate() {
            assert_eq!(pulled.reached_join_block(), i > 2, "before block {i}");
            let checked = pulled.check(block).unwrap();
            assert_eq!(checked.config.is_some(), i == 0);
        }
        assert_eq!(pulled.next(), 5);
        assert!(pulled.bundle().is_some());
    }

    #[test]
    fn a_chain_that_does_not_reach_the_join_block_is_refused_there() {
        let f = fixture();
        let blocks = chain(&f, 3);
        let other = chain_of(&f, 3, "other tx");
        let mut pulled = PulledChain::empty(anchor(&other[2]));
        pulled.check(&blocks[0]).unwrap();
        pulled.check(&blocks[1]).unwrap();
        let refused = pulled.check(&blocks[2]).err().expect("a refusal");
        assert_eq!(refused.number, 2);
        assert!(refused.reason.contains("join block"), "{refused}");
        assert!(!pulled.reached_join_block());
    }

    #[test]
    fn gaps_forks_tampered_data_and_bad_signatures_are_refused() {
        let f = fixture();
        let blocks = chain(&f, 3);
        let join = anchor(&blocks[3]);
        let mut pulled = PulledChain::empty(join);
        pulled.check(&blocks[0]).unwrap();

        let gap = pulled.check(&blocks[2]).err().expect("a refusal");
        assert!(gap.reason.contains("expected block 1"), "{gap}");

        let fork = &chain(&f, 1)[1];
        let mut forked = fork.clone();
        forked.header.as_mut().unwrap().previous_hash = Bytes::from_static(&[1; 32]);
        let refused = pulled.check(&forked).err().expect("a refusal");
        assert!(refused.reason.contains("previous_hash"), "{refused}");

        let mut tampered = blocks[1].clone();
        tampered.data.as_mut().unwrap().data[0] = Bytes::from_static(b"not what was signed");
        let refused = pulled.check(&tampered).err().expect("a refusal");
        assert!(refused.reason.contains("data hash"), "{refused}");

        let mut unsigned = blocks[1].clone();
        unsigned.metadata.as_mut().unwrap().metadata[0] = Bytes::new();
        let refused = pulled.check(&unsigned).err().expect("a refusal");
        assert!(refused.reason.to_lowercase().contains("sign"), "{refused}");

        // Nothing refused moved it on.
        pulled.check(&blocks[1]).unwrap();
        assert_eq!(pulled.next(), 2);
    }

    #[test]
    fn a_resumed_chain_continues_after_the_stored_block() {
        let f = fixture();
        let blocks = chain(&f, 3);
        let bundle = Bundle::from_block(&blocks[0]).unwrap();
        let mut pulled = PulledChain::after(&blocks[1], bundle.clone(), anchor(&blocks[2]));
        assert_eq!(pulled.next(), 2);
        assert!(!pulled.reached_join_block());
        pulled.check(&blocks[2]).unwrap();
        assert!(pulled.reached_join_block());
        pulled.check(&blocks[3]).unwrap();

        let past = PulledChain::after(&blocks[3], bundle, anchor(&blocks[2]));
        assert!(past.reached_join_block());
    }
}
