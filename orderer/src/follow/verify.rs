//! Checking pulled blocks before they are stored (pure). The join block the operator gave is the
//! anchor. Blocks up to it are taken only once a source's headers have been walked from the next
//! block needed to the join block ([`HeaderWalk`]: each header's `previous_hash` is the hash of
//! the one before, and the last is the join block's), so nothing that does not lead there is ever
//! stored; each full block must then be the one whose header was walked, and carry the hash of
//! its own data. Past the join block, each block must chain to the one before and be signed as
//! the channel's /Channel/Orderer/BlockValidation policy in force requires; config blocks change
//! that config. Below the join block signatures are not checked: the chain of hashes vouches for
//! those blocks (the genesis block is unsigned, and old orderers' certificates may have expired).

use std::collections::VecDeque;

use ordo_core::block::{self, VerifyError};
use ordo_core::bundle::Bundle;
use ordo_core::envelope::Headers;
use ordo_proto::common::{Block, HeaderType};

/// A join block's number and header hash.
pub type Anchor = (u64, [u8; 32]);

/// Walks a source's headers up to the join block. Holds 32 bytes per block walked.
pub struct HeaderWalk {
    next: u64,
    previous_hash: Option<[u8; 32]>,
    join: Anchor,
    hashes: Vec<[u8; 32]>,
    reached: bool,
}

impl HeaderWalk {
    /// The number of the next header wanted.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Takes the next header (a block whose data may be left out); `Ok(true)` once it was the
    /// join block's.
    pub fn take(&mut self, block: &Block) -> Result<bool, VerifyError> {
        let header = block.header.clone().unwrap_or_default();
        let fail = |reason: String| VerifyError {
            number: header.number,
            reason,
        };
        if block.header.is_none() || header.number != self.next || self.reached {
            return Err(fail(format!("expected the header of block {}", self.next)));
        }
        match self.previous_hash {
            Some(previous) if header.previous_hash.as_ref() != previous => {
                return Err(fail(
                    "previous_hash does not match the previous block".into(),
                ))
            }
            None if !header.previous_hash.is_empty() => {
                return Err(fail("genesis block has a previous_hash".into()))
            }
            _ => {}
        }
        let hash = block::header_hash(&header);
        if header.number == self.join.0 {
            if hash != self.join.1 {
                return Err(fail(
                    "differs from the join block: this chain is not the channel's".into(),
                ));
            }
            self.reached = true;
        }
        self.hashes.push(hash);
        self.previous_hash = Some(hash);
        self.next += 1;
        Ok(self.reached)
    }
}

/// Where a pulled chain stands: what the next block must be, and under which config.
pub struct PulledChain {
    next: u64,
    previous_hash: Option<[u8; 32]>,
    join: Anchor,
    /// The configuration in force past the join block: the join block's, then each later
    /// config block's.
    bundle: Bundle,
    /// Header hashes of blocks `next..=join`, once walked.
    trusted: VecDeque<[u8; 32]>,
}

/// A block that passed: whether it changed the configuration.
pub struct Checked {
    /// The block's configuration, if it is a config block past the join block.
    pub config: Option<Bundle>,
}

impl PulledChain {
    /// A chain pulled into an empty ledger, to reach the join block `join` of config `bundle`.
    pub fn empty(join: Anchor, bundle: Bundle) -> PulledChain {
        PulledChain {
            next: 0,
            previous_hash: None,
            join,
            bundle,
            trusted: VecDeque::new(),
        }
    }

    /// A chain resumed after the stored block `last`; `bundle` is the config in force past the
    /// join block (the join block's while `last` is below it).
    pub fn after(last: &Block, bundle: Bundle, join: Anchor) -> PulledChain {
        let header = last.header.clone().unwrap_or_default();
        PulledChain {
            next: header.number + 1,
            previous_hash: Some(block::header_hash(&header)),
            join,
            bundle,
            trusted: VecDeque::new(),
        }
    }

    /// The number of the next block to pull.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Whether the join block is not yet stored.
    pub fn is_onboarding(&self) -> bool {
        self.next <= self.join.0
    }

    /// A walk of the headers still to be trusted, if blocks up to the join block are still
    /// needed and their headers have not been walked.
    pub fn walk(&self) -> Option<HeaderWalk> {
        (self.is_onboarding() && self.trusted.is_empty()).then(|| HeaderWalk {
            next: self.next,
            previous_hash: self.previous_hash,
            join: self.join,
            hashes: Vec::new(),
            reached: false,
        })
    }

    /// Trusts the headers of a walk that reached the join block.
    pub fn trust(&mut self, walk: HeaderWalk) {
        if walk.reached && walk.hashes.len() as u64 == self.join.0 + 1 - self.next {
            self.trusted = walk.hashes.into();
        }
    }

    /// The number of the join block.
    pub fn join_number(&self) -> u64 {
        self.join.0
    }

    /// The configuration in force past the join block.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
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
        let config = if number <= self.join.0 {
            match self.trusted.front() {
                Some(trusted) if *trusted == hash => {}
                Some(_) => {
                    return Err(fail(
                        "is not the block whose header led to the join block".into(),
                    ))
                }
                None => {
                    return Err(fail(
                        "its header has not been walked to the join block".into(),
                    ))
                }
            }
            self.trusted.pop_front();
            None
        } else {
            block::verify_signature(block, &self.bundle)?;
            if is_config_block(block) {
                let config = Bundle::from_block(block)
                    .map_err(|e| fail(format!("a config block whose config is unusable: {e}")))?;
                if config.channel_id() != self.bundle.channel_id() {
                    return Err(fail(format!(
                        "a config block of channel {}",
                        config.channel_id()
                    )));
                }
                self.bundle = config.clone();
                Some(config)
            } else {
                None
            }
        };
        self.next = number + 1;
        self.previous_hash = Some(hash);
        Ok(Checked { config })
    }
}

/// Whether a block is a config block: its one envelope is of type CONFIG (signed data, unlike
/// the LAST_CONFIG metadata).
fn is_config_block(block: &Block) -> bool {
    let data = block
        .data
        .as_ref()
        .map(|d| d.data.as_slice())
        .unwrap_or(&[]);
    match data {
        [envelope] => Headers::of_canonical(envelope)
            .is_ok_and(|(_, headers)| headers.header_type == HeaderType::Config as i32),
        _ => false,
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

    fn anchor(block: &Block) -> Anchor {
        let header = block.header.as_ref().unwrap();
        (header.number, block::header_hash(header))
    }

    fn header_only(block: &Block) -> Block {
        Block {
            data: None,
            ..block.clone()
        }
    }

    /// Walks `blocks`' headers from `pulled`'s next block and trusts them.
    fn walk_and_trust(pulled: &mut PulledChain, blocks: &[Block]) {
        let mut walk = pulled.walk().expect("headers to walk");
        for block in &blocks[walk.next() as usize..] {
            if walk.take(&header_only(block)).unwrap() {
                break;
            }
        }
        pulled.trust(walk);
    }

    #[test]
    fn blocks_up_to_the_join_block_pass_once_their_headers_led_there() {
        let f = fixture();
        let blocks = chain(&f, 4);
        let bundle = Bundle::from_block(&blocks[0]).unwrap();
        let mut pulled = PulledChain::empty(anchor(&blocks[2]), bundle);
        let unwalked = pulled.check(&blocks[0]).err().expect("a refusal");
        assert!(unwalked.reason.contains("not been walked"), "{unwalked}");
        walk_and_trust(&mut pulled, &blocks);
        assert!(pulled.walk().is_none());
        for (i, block) in blocks.iter().enumerate() {
            assert_eq!(pulled.is_onboarding(), i <= 2, "before block {i}");
            let checked = pulled.check(block).unwrap();
            assert!(checked.config.is_none());
        }
        assert_eq!(pulled.next(), 5);
    }

    #[test]
    fn headers_that_do_not_lead_to_the_join_block_are_refused_and_nothing_is_trusted() {
        let f = fixture();
        let blocks = chain(&f, 3);
        let other = chain_of(&f, 3, "other tx");
        let bundle = Bundle::from_block(&blocks[0]).unwrap();
        let mut pulled = PulledChain::empty(anchor(&other[2]), bundle);
        let mut walk = pulled.walk().unwrap();
        assert!(!walk.take(&header_only(&blocks[0])).unwrap());
        assert!(!walk.take(&header_only(&blocks[1])).unwrap());
        let refused = walk.take(&header_only(&blocks[2])).expect_err("a refusal");
        assert_eq!(refused.number, 2);
        assert!(refused.reason.contains("join block"), "{refused}");
        // A gap is refused too.
        let mut walk = pulled.walk().unwrap();
        let gap = walk.take(&header_only(&blocks[1])).expect_err("a refusal");
        assert!(
            gap.reason.contains("expected the header of block 0"),
            "{gap}"
        );
        pulled.trust(walk);
        assert!(pulled.walk().is_some(), "an unfinished walk trusts nothing");
    }

    #[test]
    fn a_full_block_other_than_its_walked_header_is_refused() {
        let f = fixture();
        let blocks = chain(&f, 2);
        let bundle = Bundle::from_block(&blocks[0]).unwrap();
        let mut pulled = PulledChain::empty(anchor(&blocks[2]), bundle);
        walk_and_trust(&mut pulled, &blocks);
        pulled.check(&blocks[0]).unwrap();

        let mut tampered = blocks[1].clone();
        tampered.data.as_mut().unwrap().data[0] = Bytes::from_static(b"not what was hashed");
        let refused = pulled.check(&tampered).err().expect("a refusal");
        assert!(refused.reason.contains("data hash"), "{refused}");

        let other = &chain_of(&f, 1, "other tx")[1];
        let refused = pulled.check(other).err().expect("a refusal");
        assert!(refused.reason.contains("header led"), "{refused}");

        // Nothing refused moved it on.
        pulled.check(&blocks[1]).unwrap();
        pulled.check(&blocks[2]).unwrap();
        assert!(!pulled.is_onboarding());
    }

    #[test]
    fn past_the_join_block_gaps_forks_and_unsigned_blocks_are_refused() {
        let f = fixture();
        let blocks = chain(&f, 3);
        let bundle = Bundle::from_block(&blocks[0]).unwrap();
        let mut pulled = PulledChain::after(&blocks[1], bundle, anchor(&blocks[1]));
        assert!(!pulled.is_onboarding());
        assert!(pulled.walk().is_none());

        let gap = pulled.check(&blocks[3]).err().expect("a refusal");
        assert!(gap.reason.contains("expected block 2"), "{gap}");

        let mut forked = blocks[2].clone();
        forked.header.as_mut().unwrap().previous_hash = Bytes::from_static(&[1; 32]);
        let refused = pulled.check(&forked).err().expect("a refusal");
        assert!(refused.reason.contains("previous_hash"), "{refused}");

        let mut unsigned = blocks[2].clone();
        unsigned.metadata.as_mut().unwrap().metadata[0] = Bytes::new();
        let refused = pulled.check(&unsigned).err().expect("a refusal");
        assert!(refused.reason.to_lowercase().contains("sign"), "{refused}");

        pulled.check(&blocks[2]).unwrap();
        pulled.check(&blocks[3]).unwrap();
        assert_eq!(pulled.next(), 4);
    }

    #[test]
    fn a_resumed_onboarding_walks_from_the_stored_block() {
        let f = fixture();
        let blocks = chain(&f, 3);
        let bundle = Bundle::from_block(&blocks[0]).unwrap();
        let mut pulled = PulledChain::after(&blocks[0], bundle, anchor(&blocks[2]));
        assert!(pulled.is_onboarding());
        let mut walk = pulled.walk().unwrap();
        assert_eq!(walk.next(), 1);
        // The walk starts after the stored block.
        assert!(walk.take(&header_only(&blocks[2])).is_err());
        walk_and_trust(&mut pulled, &blocks);
        for block in &blocks[1..] {
            pulled.check(block).unwrap();
        }
        assert!(!pulled.is_onboarding());
    }
}
