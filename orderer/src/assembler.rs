//! Turns a channel's log, record by record, into the batches of its blocks. Pure and
//! deterministic: the same records with the same starting state give the same batches on every
//! node, before or after a crash. Nothing local (clocks, timers, arrival order) decides a cut:
//!
//! - transactions go through the [`BlockCutter`] size rules;
//! - a time-to-cut record TTC-N cuts the pending batch only while block N is the next block;
//!   later or stale TTCs are ignored;
//! - a valid config envelope cuts the pending batch, then goes into a block of its own, and its
//!   configuration applies from the next record on.

use bytes::Bytes;
use ordo_proto::common::Envelope;
use prost::Message;

use crate::cutter::BlockCutter;
use crate::entry::Entry;
use crate::policy::ChannelPolicy;
use crate::validate;

/// The contents of one block to write.
#[derive(Debug)]
pub struct Batch {
    pub number: u64,
    /// Canonical envelope bytes, in log order.
    pub data: Vec<Bytes>,
    /// Offset of the last record this batch consumed.
    pub last_offset: u64,
    /// Set for a config block: the configuration it installs.
    pub config: Option<ChannelPolicy>,
}

pub struct Assembler {
    policy: ChannelPolicy,
    cutter: BlockCutter<(u64, Bytes)>,
    next_block: u64,
}

impl Assembler {
    /// Starts after block `next_block - 1`, under `policy`.
    pub fn new(policy: ChannelPolicy, next_block: u64) -> Self {
        let cutter = BlockCutter::new(policy.cut_rules());
        Assembler {
            policy,
            cutter,
            next_block,
        }
    }

    pub fn next_block(&self) -> u64 {
        self.next_block
    }

    pub fn has_pending(&self) -> bool {
        self.cutter.has_pending()
    }

    pub fn policy(&self) -> &ChannelPolicy {
        &self.policy
    }

    /// Consumes the record at `offset` and returns the batches it completes, in order.
    pub fn consume(&mut self, offset: u64, record: &Bytes) -> Vec<Batch> {
        let mut batches = Vec::new();
        match Entry::decode(record) {
            Some(Entry::Envelope(bytes)) => {
                let Some(size) = envelope_size(&bytes) else {
                    tracing::warn!(offset, "skipping an undecodable envelope record");
                    return batches;
                };
                for cut in self.cutter.ordered((offset, bytes), size) {
                    batches.push(self.seal(cut, None));
                }
            }
            Some(Entry::Config(bytes)) => match self.check_config(&bytes) {
                Ok(policy) => {
                    if self.cutter.has_pending() {
                        let pending = self.cutter.cut();
                        batches.push(self.seal(pending, None));
                    }
                    self.cutter.set_rules(policy.cut_rules());
                    self.policy = policy.clone();
                    batches.push(self.seal(vec![(offset, bytes)], Some(policy)));
                }
                Err(reason) => tracing::warn!(offset, %reason, "ignoring a config record"),
            },
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

    fn seal(&mut self, messages: Vec<(u64, Bytes)>, config: Option<ChannelPolicy>) -> Batch {
        let last_offset = messages.last().map(|(o, _)| *o).unwrap_or_default();
        let number = self.next_block;
        self.next_block += 1;
        Batch {
            number,
            data: messages.into_iter().map(|(_, b)| b).collect(),
            last_offset,
            config,
        }
    }

    fn check_config(&self, bytes: &Bytes) -> Result<ChannelPolicy, String> {
        let envelope = Envelope::decode(bytes.as_ref()).map_err(|e| e.to_string())?;
        let parsed = validate::parse(&envelope).map_err(|r| r.info)?;
        self.policy.check_config_update(&parsed, &envelope)
    }
}

/// `len(payload) + len(signature)`, what Fabric's size rules count.
fn envelope_size(canonical: &Bytes) -> Option<usize> {
    let envelope = Envelope::decode(canonical.clone()).ok()?;
    Some(envelope.payload.len() + envelope.signature.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::build;
    use crate::identity::Signer;
    use ordo_proto::common::HeaderType;
    use ordo_proto::ordo::{BatchSize, ChannelConfig, Consenter, Organization};

    struct Fixture {
        admin: Signer,
        writer: Signer,
        config: ChannelConfig,
    }

    fn fixture() -> Fixture {
        let admin = Signer::generate("Org1MSP");
        let writer = Signer::generate("Org1MSP");
        let orderer = Signer::generate("OrdererMSP");
        let config = ChannelConfig {
            channel_id: "ch".into(),
            sequence: 0,
            batch_size: Some(BatchSize {
                max_message_count: 3,
                absolute_max_bytes: 100_000,
                preferred_max_bytes: 50_000,
            }),
            batch_timeout_ms: 100,
            organizations: vec![Organization {
                mspid: "Org1MSP".into(),
                writers: vec![writer.public_key().to_vec().into()],
                readers: vec![],
                admins: vec![admin.public_key().to_vec().into()],
            }],
            consenters: vec![Consenter {
                id: 1,
                mspid: "OrdererMSP".into(),
                public_key: orderer.public_key().to_vec().into(),
                ..Default::default()
            }],
        };
        Fixture {
            admin,
            writer,
            config,
        }
    }

    fn tx(f: &Fixture) -> Bytes {
        let env = build(
            &f.writer,
            "ch",
            HeaderType::EndorserTransaction,
            Bytes::from_static(b"x"),
        );
        Entry::encode_envelope(&env, false)
    }

    fn config_record(f: &Fixture, signer: &Signer, sequence: u64, max_count: u32) -> Bytes {
        let mut next = f.config.clone();
        next.sequence = sequence;
        next.batch_size.as_mut().unwrap().max_message_count = max_count;
        let env = build(
            signer,
            "ch",
            HeaderType::Config,
            next.encode_to_vec().into(),
        );
        Entry::encode_envelope(&env, true)
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
        let mut a = Assembler::new(ChannelPolicy::new(f.config.clone()).unwrap(), 1);
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
        let mut a = Assembler::new(ChannelPolicy::new(f.config.clone()).unwrap(), 1);
        let records: Vec<Bytes> = (0..7).map(|_| tx(&f)).collect();
        assert_eq!(
            run(&mut a, &records),
            vec![(1, 3, 2, false), (2, 3, 5, false)]
        );
    }

    #[test]
    fn config_is_cut_alone_and_applies_after() {
        let f = fixture();
        let mut a = Assembler::new(ChannelPolicy::new(f.config.clone()).unwrap(), 1);
        let records = [
            tx(&f),
            config_record(&f, &f.admin, 1, 2),
            tx(&f),
            tx(&f), // new max_message_count 2 cuts here
        ];
        assert_eq!(
            run(&mut a, &records),
            vec![(1, 1, 0, false), (2, 1, 1, true), (3, 2, 3, false)]
        );
        assert_eq!(a.policy().config().sequence, 1);
    }

    #[test]
    fn invalid_config_records_are_ignored_by_everyone() {
        let f = fixture();
        let mut a = Assembler::new(ChannelPolicy::new(f.config.clone()).unwrap(), 1);
        let records = [
            config_record(&f, &f.writer, 1, 2), // not an admin
            config_record(&f, &f.admin, 5, 2),  // wrong sequence
            Bytes::from_static(&[42, 1, 2]),    // unknown kind
        ];
        assert!(run(&mut a, &records).is_empty());
        assert_eq!(a.next_block(), 1);
    }

    #[test]
    fn replay_from_a_block_boundary_cuts_the_same_blocks() {
        // What a restart does: resume after the last block's offset with the pending batch rebuilt.
        let f = fixture();
        let policy = ChannelPolicy::new(f.config.clone()).unwrap();
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
        let mut whole = Assembler::new(policy.clone(), 1);
        let all = run(&mut whole, &records);
        assert_eq!(
            all,
            vec![(1, 3, 2, false), (2, 1, 4, false), (3, 1, 7, false)]
        );

        let mut resumed = Assembler::new(policy, 2);
        let mut after = Vec::new();
        for (offset, record) in records.iter().enumerate().skip(3) {
            for b in resumed.consume(offset as u64, record) {
                after.push((b.number, b.data.len(), b.last_offset, b.config.is_some()));
            }
        }
        assert_eq!(after, all[1..].to_vec());
    }
}
