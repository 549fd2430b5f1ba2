//! Turns a channel's log, record by record, into the batches of its blocks. Pure and
//! deterministic: the same records with the same starting state give the same batches on every
//! node, before or after a crash. Nothing local (clocks, timers, arrival order) decides a cut:
//!
//! - transactions go through the [`BlockCutter`] size rules;
//! - a time-to-cut record TTC-N cuts the pending batch only while block N is the next block;
//!   later or stale TTCs are ignored;
//! - a valid config envelope cuts the pending batch, then goes into a block of its own, and its
//!   configuration applies from the next record on; one that is not valid under the
//!   configuration in force (a concurrent update that lost the race) is dropped;
//! - a transaction admitted under an earlier configuration is checked again under the one in
//!   force (Fabric's resubmission rule) and dropped if that no longer admits it;
//! - a transaction whose tx_id was ordered within the dedup window (see [`crate::dedup`]), or is
//!   already pending, is dropped: a client that resubmits after a failover is not ordered twice.
//!   Config envelopes are exempt; their sequence number already makes a replay invalid.

use bytes::Bytes;

use crate::bundle::Bundle;
use crate::cutter::BlockCutter;
use crate::dedup::{self, TxWindow};
use crate::entry::Entry;
use crate::envelope::Headers;
use crate::processor;

/// The contents of one block to write.
#[derive(Debug)]
pub struct Batch {
    pub number: u64,
    /// Canonical envelope bytes, in log order.
    pub data: Vec<Bytes>,
    /// Offset of the last record this batch consumed.
    pub last_offset: u64,
    /// Set for a config block: the configuration it installs.
    pub config: Option<Bundle>,
}

/// A message of the pending batch.
struct Pending {
    offset: u64,
    /// Canonical envelope bytes.
    envelope: Bytes,
    tx_id: Option<String>,
}

pub struct Assembler {
    bundle: Bundle,
    cutter: BlockCutter<Pending>,
    next_block: u64,
    /// The tx_ids ordered recently or pending, for duplicate suppression.
    recent: TxWindow,
}

impl Assembler {
    /// Starts after block `next_block - 1`, under `bundle`, remembering no tx_id: for a new
    /// channel, or where no earlier block matters.
    pub fn new(bundle: Bundle, next_block: u64) -> Self {
        let recent = TxWindow::new(dedup_window(&bundle));
        Assembler::resume(bundle, next_block, recent)
    }

    /// Starts after block `next_block - 1`, under `bundle`, remembering the tx_ids in `recent`;
    /// after a restart, that is [`TxWindow::rebuild`] over the ledger, so the node drops the same
    /// envelopes as if it had not stopped.
    pub fn resume(bundle: Bundle, next_block: u64, mut recent: TxWindow) -> Self {
        recent.set_window(dedup_window(&bundle));
        let cutter = BlockCutter::new(bundle.cut_rules());
        Assembler {
            bundle,
            cutter,
            next_block,
            recent,
        }
    }

    /// The assembler a node that never stopped would have after block `next_block - 1`, under
    /// `bundle` (the configuration in force). `past(n)` gives block `n`'s data and the dedup
    /// window in force once it was written; the tx_ids of the last blocks are remembered, each
    /// under that window. The one restart rebuild: the node runs it over its ledger, the tests
    /// over the blocks they wrote.
    pub fn rebuild<E>(
        bundle: Bundle,
        next_block: u64,
        mut past: impl FnMut(u64) -> Result<(u32, Vec<Bytes>), E>,
    ) -> Result<Self, E> {
        let recent = TxWindow::rebuild(bundle.dedup_window_blocks(), next_block, |n| {
            let (window, data) = past(n)?;
            let tx_ids = data
                .iter()
                .filter_map(crate::envelope::stored_tx_id)
                .collect();
            Ok(dedup::PastBlock { window, tx_ids })
        })?;
        Ok(Assembler::resume(bundle, next_block, recent))
    }

    pub fn next_block(&self) -> u64 {
        self.next_block
    }

    pub fn has_pending(&self) -> bool {
        self.cutter.has_pending()
    }

    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// Consumes the record at `offset` and returns the batches it completes, in order.
    pub fn consume(&mut self, offset: u64, record: &Bytes) -> Vec<Batch> {
        let mut batches = Vec::new();
        match Entry::decode(record) {
            Some(Entry::Envelope {
                sequence,
                envelope: bytes,
            }) => {
                let Some((size, tx_id)) = inspect(&bytes) else {
                    tracing::warn!(offset, "skipping an undecodable envelope record");
                    return batches;
                };
                if sequence != self.bundle.sequence() {
                    if let Err(refused) = processor::recheck_transaction(&self.bundle, &bytes) {
                        tracing::warn!(offset, sequence, reason = %refused.info, "dropping a transaction the configuration in force no longer admits");
                        return batches;
                    }
                }
                if let Some(tx_id) = &tx_id {
                    if self.recent.contains(tx_id) {
                        tracing::debug!(offset, %tx_id, "dropping an envelope already ordered");
                        return batches;
                    }
                    self.recent.add_pending(tx_id.clone());
                }
                let message = Pending {
                    offset,
                    envelope: bytes,
                    tx_id,
                };
                for cut in self.cutter.ordered(message, size) {
                    batches.push(self.seal(cut, None));
                }
            }
            Some(Entry::Config(bytes)) => {
                match processor::recheck_config_record(&self.bundle, &bytes) {
                    Ok(bundle) => {
                        if self.cutter.has_pending() {
                            let pending = self.cutter.cut();
                            batches.push(self.seal(pending, None));
                        }
                        self.cutter.set_rules(bundle.cut_rules());
                        // The config block already counts under its own window, as on restart.
                        self.recent.set_window(dedup_window(&bundle));
                        self.bundle = bundle.clone();
                        // Remembered like any block's, so a restarted node's window (read from the
                        // ledger) holds the same ids.
                        let tx_id = crate::envelope::stored_tx_id(&bytes);
                        let message = Pending {
                            offset,
                            envelope: bytes,
                            tx_id,
                        };
                        batches.push(self.seal(vec![message], Some(bundle)));
                    }
                    Err(refused) => {
                        tracing::warn!(offset, reason = %refused.info, "ignoring a config record")
                    }
                }
            }
            Some(Entry::TimeToCut(number)) => {
                if number == self.next_block && self.cutter.has_pending() {
                    let pending = self.cutter.cut();
                    let mut batch = self.seal(pending, None);
                    batch.last_offset = offset;
                    batches.push(batch);
                }
            }
            None => tracing::warn!(offset, "ignoring a record of an unknown kind"),
        }
        batches
    }

    fn seal(&mut self, messages: Vec<Pending>, config: Option<Bundle>) -> Batch {
        let last_offset = messages.last().map(|m| m.offset).unwrap_or_default();
        let number = self.next_block;
        self.next_block += 1;
        let mut data = Vec::with_capacity(messages.len());
        let mut tx_ids = Vec::with_capacity(messages.len());
        for message in messages {
            data.push(message.envelope);
            tx_ids.extend(message.tx_id);
        }
        self.recent.block_cut(tx_ids);
        Batch {
            number,
            data,
            last_offset,
            config,
        }
    }
}

fn dedup_window(bundle: &Bundle) -> u32 {
    bundle.dedup_window_blocks()
}

/// What the cutter needs of a canonical envelope: its size as Fabric's rules count it,
/// `len(payload) + len(signature)`, and its tx_id; `None` if it is not an envelope.
fn inspect(canonical: &Bytes) -> Option<(usize, Option<String>)> {
    let (envelope, headers) = Headers::of_canonical(canonical).ok()?;
    let size = envelope.payload.len() + envelope.signature.len();
    Some((size, Some(headers.tx_id).filter(|id| !id.is_empty())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestChannel;
    use std::collections::HashMap;

    type Fixture = TestChannel;

    /// Channel "ch": at most 3 messages a block, a dedup window of 2 blocks.
    fn fixture() -> Fixture {
        fixture_with_window(2)
    }

    fn fixture_with_window(window: u32) -> Fixture {
        TestChannel::with(|profile| {
            profile.orderer.batch_size.max_message_count = 3;
            profile.orderer.batch_size.absolute_max_bytes = 100_000;
            profile.orderer.batch_size.preferred_max_bytes = 50_000;
            profile.orderer.dedup_window_blocks = Some(window);
        })
    }

    fn tx(f: &Fixture) -> Bytes {
        Entry::encode_envelope(&f.tx(&f.client), 0)
    }

    /// The record of a config update of BatchSize's max_message_count, against `bundle`.
    fn config_record(f: &Fixture, bundle: &Bundle, max_count: u32) -> Bytes {
        let update = TestChannel::batch_size_update(
            bundle,
            max_count,
            &[&f.orderer_admin],
            &f.orderer_admin,
        );
        f.config_record(bundle, &update)
    }

    /// The bundle `record` installs over `bundle`.
    fn applied(bundle: &Bundle, record: &Bytes) -> Bundle {
        let Some(Entry::Config(canonical)) = Entry::decode(record) else {
            panic!("not a config record");
        };
        processor::recheck_config_record(bundle, &canonical).unwrap()
    }

    /// Transactions named by letter: a record can be fed again to play a client resubmitting
    /// the same envelope. Unnamed envelopes (config) show as "?".
    struct Named {
        records: HashMap<&'static str, Bytes>,
        names: HashMap<Bytes, &'static str>,
    }

    impl Named {
        fn new(f: &Fixture, names: &[&'static str]) -> Named {
            let records: HashMap<_, _> = names.iter().map(|&n| (n, tx(f))).collect();
            let names = records
                .iter()
                .map(|(&n, r)| (Entry::decode(r).map(envelope_body).unwrap(), n))
                .collect();
            Named { records, names }
        }

        fn tx(&self, name: &str) -> Bytes {
            self.records[name].clone()
        }

        fn of(&self, data: &[Bytes]) -> Vec<&'static str> {
            data.iter()
                .map(|b| self.names.get(b).copied().unwrap_or("?"))
                .collect()
        }
    }

    fn envelope_body(entry: Entry) -> Bytes {
        match entry {
            Entry::Envelope { envelope: b, .. } | Entry::Config(b) => b,
            Entry::TimeToCut(_) => panic!("not an envelope"),
        }
    }

    /// Feeds records from offset 0 and returns each block as (number, transaction names).
    fn run_named(
        assembler: &mut Assembler,
        named: &Named,
        records: &[Bytes],
    ) -> Vec<(u64, Vec<&'static str>)> {
        let mut out = Vec::new();
        for (offset, record) in records.iter().enumerate() {
            for b in assembler.consume(offset as u64, record) {
                out.push((b.number, named.of(&b.data)));
            }
        }
        out
    }

    /// Feeds records from offset 0 and returns (block number, messages, last offset, is config).
    fn run(assembler: &mut Assembler, records: &[Bytes]) -> Vec<(u64, usize, u64, bool)> {
        let mut out = Vec::new();
        for (offset, record) in records.iter().enumerate() {
            for b in assembler.consume(offset as u64, record) {
                out.push((b.number, b.data.len(), b.last_offset, b.config.is_some()));
            }
        }
        out
    }

    #[test]
    fn time_to_cut_only_for_the_next_block() {
        let f = fixture();
        let mut a = Assembler::new(f.bundle.clone(), 1);
        let records = [
            tx(&f),
            Entry::encode_time_to_cut(2), // future block: ignored
            Entry::encode_time_to_cut(1), // cuts block 1
            Entry::encode_time_to_cut(1), // stale: ignored
            Entry::encode_time_to_cut(2), // nothing pending: ignored
            tx(&f),
        ];
        assert_eq!(run(&mut a, &records), vec![(1, 1, 2, false)]);
        assert!(a.has_pending());
        assert_eq!(a.next_block(), 2);
    }

    #[test]
    fn count_rule_cuts_and_offsets_follow_the_last_message() {
        let f = fixture();
        let mut a = Assembler::new(f.bundle.clone(), 1);
        let records: Vec<Bytes> = (0..7).map(|_| tx(&f)).collect();
        assert_eq!(
            run(&mut a, &records),
            vec![(1, 3, 2, false), (2, 3, 5, false)]
        );
    }

    #[test]
    fn config_is_cut_alone_and_applies_after() {
        let f = fixture();
        let mut a = Assembler::new(f.bundle.clone(), 1);
        let records = [
            tx(&f),
            config_record(&f, &f.bundle, 2),
            tx(&f),
            tx(&f), // new max_message_count 2 cuts here
        ];
        assert_eq!(
            run(&mut a, &records),
            vec![(1, 1, 0, false), (2, 1, 1, true), (3, 2, 3, false)]
        );
        assert_eq!(a.bundle().sequence(), 1);
    }

    #[test]
    fn invalid_config_records_are_ignored_by_everyone() {
        let f = fixture();
        let mut a = Assembler::new(f.bundle.clone(), 1);
        let first = config_record(&f, &f.bundle, 2);
        // Signed by the client instead of the orderer that made it.
        let Some(Entry::Config(canonical)) = Entry::decode(&first) else {
            panic!("not a config record");
        };
        let (mut envelope, _) = Headers::of_canonical(&canonical).unwrap();
        envelope.signature = f.client.sign(&envelope.payload).into();
        let records = [
            Entry::encode_config(&envelope),
            first.clone(),
            first,                           // the same update again: its sequence is past
            Bytes::from_static(&[42, 1, 2]), // unknown kind
        ];
        assert_eq!(run(&mut a, &records), vec![(1, 1, 1, true)]);
        assert_eq!(a.next_block(), 2);
    }

    #[test]
    fn replay_from_a_block_boundary_cuts_the_same_blocks() {
        // What a restart does: resume after the last block's offset with the pending batch rebuilt.
        let f = fixture();
        let bundle = f.bundle.clone();
        let records: Vec<Bytes> = vec![
            tx(&f),
            tx(&f),
            tx(&f),
            tx(&f),
            Entry::encode_time_to_cut(2),
            tx(&f),
            Entry::encode_time_to_cut(1), // stale
            Entry::encode_time_to_cut(3),
        ];
        let mut whole = Assembler::new(bundle.clone(), 1);
        let all = run(&mut whole, &records);
        assert_eq!(
            all,
            vec![(1, 3, 2, false), (2, 1, 4, false), (3, 1, 7, false)]
        );

        let mut resumed = Assembler::new(bundle, 2);
        let mut after = Vec::new();
        for (offset, record) in records.iter().enumerate().skip(3) {
            for b in resumed.consume(offset as u64, record) {
                after.push((b.number, b.data.len(), b.last_offset, b.config.is_some()));
            }
        }
        assert_eq!(after, all[1..].to_vec());
    }

    #[test]
    fn a_resubmission_is_dropped_within_the_window_and_accepted_after() {
        let f = fixture(); // window: 2 blocks
        let t = Named::new(&f, &["a", "b", "c"]);
        let mut asm = Assembler::new(f.bundle.clone(), 1);
        let records = [
            t.tx("a"),
            Entry::encode_time_to_cut(1),
            t.tx("a"), // in block 1: dropped
            t.tx("b"),
            Entry::encode_time_to_cut(2),
            t.tx("a"), // in block 1, still within blocks 1-2: dropped
            t.tx("c"),
            Entry::encode_time_to_cut(3),
            t.tx("a"), // the window is now blocks 2-3: ordered again
            Entry::encode_time_to_cut(4),
        ];
        assert_eq!(
            run_named(&mut asm, &t, &records),
            vec![
                (1, vec!["a"]),
                (2, vec!["b"]),
                (3, vec!["c"]),
                (4, vec!["a"])
            ]
        );
    }

    #[test]
    fn duplicates_within_the_pending_batch_are_dropped() {
        let f = fixture();
        let t = Named::new(&f, &["a", "b", "c"]);
        let mut asm = Assembler::new(f.bundle.clone(), 1);
        let records = [
            t.tx("a"),
            t.tx("a"),
            t.tx("b"),
            t.tx("a"),
            t.tx("c"), // third distinct message: the count rule cuts
        ];
        assert_eq!(
            run_named(&mut asm, &t, &records),
            vec![(1, vec!["a", "b", "c"])]
        );
        assert!(!asm.has_pending());
    }

    #[test]
    fn window_zero_orders_everything() {
        let f = fixture_with_window(0);
        let t = Named::new(&f, &["a"]);
        let mut asm = Assembler::new(f.bundle.clone(), 1);
        let records = [
            t.tx("a"),
            t.tx("a"),
            Entry::encode_time_to_cut(1),
            t.tx("a"),
            Entry::encode_time_to_cut(2),
        ];
        assert_eq!(
            run_named(&mut asm, &t, &records),
            vec![(1, vec!["a", "a"]), (2, vec!["a"])]
        );
    }

    #[test]
    fn a_config_change_applies_the_new_window() {
        let f = fixture();
        let t = Named::new(&f, &["a", "b"]);
        let mut asm = Assembler::new(f.bundle.clone(), 1);
        let smaller = f.config_record(&f.bundle, &f.dedup_window_update(&f.bundle, 1));
        let after = applied(&f.bundle, &smaller);
        let off = f.config_record(&after, &f.dedup_window_update(&after, 0));
        let records = [
            t.tx("a"),
            Entry::encode_time_to_cut(1),
            smaller,   // block 2; the window holds only it
            t.tx("a"), // block 1 is forgotten: ordered
            Entry::encode_time_to_cut(3),
            t.tx("a"), // in block 3: dropped
            off,
            t.tx("a"),
            t.tx("a"),
            Entry::encode_time_to_cut(5),
        ];
        assert_eq!(
            run_named(&mut asm, &t, &records),
            vec![
                (1, vec!["a"]),
                (2, vec!["?"]),
                (3, vec!["a"]),
                (4, vec!["?"]),
                (5, vec!["a", "a"])
            ]
        );
    }

    /// A block as the ledger holds it, with what a restart reads back from it.
    struct Written {
        number: u64,
        data: Vec<Bytes>,
        /// `None` for the genesis block, which consumed no record.
        last_offset: Option<u64>,
        /// The window in force once it is written.
        window: u32,
        /// The configuration in force once it is written.
        config: Bundle,
    }

    #[test]
    fn replay_after_a_restart_drops_the_same_envelopes() {
        let f = fixture(); // window 2, at most 3 messages a block
        let t = Named::new(&f, &["a", "b", "c", "d", "e", "g", "h"]);
        let wider = f.config_record(&f.bundle, &f.dedup_window_update(&f.bundle, 5));
        let records = vec![
            t.tx("a"),
            t.tx("b"),
            Entry::encode_time_to_cut(1),
            t.tx("a"), // dropped
            t.tx("c"),
            t.tx("b"), // dropped
            t.tx("d"),
            t.tx("e"), // count cut: block 2
            t.tx("a"), // dropped
            t.tx("g"),
            Entry::encode_time_to_cut(3),
            t.tx("a"), // block 1 left the window: ordered (block 4, cut by the config)
            wider,     // block 5; the window grows to 5
            t.tx("g"), // in block 3: dropped
            t.tx("c"), // block 2 left the window before it grew: ordered
            Entry::encode_time_to_cut(6),
            t.tx("a"), // in block 4: dropped
            t.tx("h"),
            Entry::encode_time_to_cut(7),
        ];

        // The node that never stops, from a ledger holding the genesis block.
        let genesis = Written {
            number: 0,
            data: vec![],
            last_offset: None,
            window: f.bundle.dedup_window_blocks(),
            config: f.bundle.clone(),
        };
        let mut ledger = vec![genesis];
        let mut in_force = f.bundle.clone();
        let mut whole = resume(&ledger);
        for (offset, record) in records.iter().enumerate() {
            for batch in whole.consume(offset as u64, record) {
                if let Some(bundle) = &batch.config {
                    in_force = bundle.clone();
                }
                ledger.push(Written {
                    number: batch.number,
                    data: batch.data,
                    last_offset: Some(batch.last_offset),
                    window: in_force.dedup_window_blocks(),
                    config: in_force.clone(),
                });
            }
        }
        let blocks: Vec<_> = ledger[1..].iter().map(|w| t.of(&w.data)).collect();
        assert_eq!(
            blocks,
            vec![
                vec!["a", "b"],
                vec!["c", "d", "e"],
                vec!["g"],
                vec!["a"],
                vec!["?"],
                vec!["c"],
                vec!["h"],
            ]
        );

        // A restart after each block: resume after its last offset with the window rebuilt from
        // the ledger, and cut the rest.
        for restart in 1..ledger.len() {
            let mut resumed = resume(&ledger[..restart]);
            let from = ledger[restart - 1].last_offset.map_or(0, |o| o + 1);
            let mut after = Vec::new();
            for (offset, record) in records.iter().enumerate().skip(from as usize) {
                for b in resumed.consume(offset as u64, record) {
                    after.push((b.number, t.of(&b.data), Some(b.last_offset)));
                }
            }
            let expected: Vec<_> = ledger[restart..]
                .iter()
                .map(|w| (w.number, t.of(&w.data), w.last_offset))
                .collect();
            assert_eq!(after, expected, "restart after block {}", restart - 1);
        }
    }

    /// What `Channel::open` does: the assembler after the last block of `ledger`, under the
    /// configuration in force, remembering what the ledger says it should.
    fn resume(ledger: &[Written]) -> Assembler {
        let last = ledger.last().unwrap();
        let bundle = last.config.clone();
        Assembler::rebuild(bundle, last.number + 1, |n| {
            let block = &ledger[n as usize];
            Ok::<_, ()>((block.window, block.data.clone()))
        })
        .unwrap()
    }
}
