//! Fuzz cases: what the node does with bytes it did not make. Each case takes arbitrary bytes,
//! must never panic or hang, and checks what it can about the answer. The same functions run under
//! libFuzzer (`libfuzzer/`, nightly, `cargo fuzz`) and, on stable, over the saved corpus and
//! seeded mutations of it (`tests/corpus.rs`, part of `cargo test`).
//!
//! - [`envelope`]: a Broadcast or Deliver request as the node admits it: headers, clock, creator
//!   under the channel's MSPs, signature, policies, and the SeekInfo or config update it carries;
//! - [`config_block`]: a config block as a channel is joined or restarted from one;
//! - [`segment`]: a log segment file found at open (recovery), then read back;
//! - [`ledger`]: a block file found at open, then every block read back.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use ordo_core::bundle::Bundle;
use ordo_core::configtx::update;
use ordo_core::processor;
use ordo_orderer::ledger::{Ledger, LedgerConfig, LedgerError};
use ordo_orderer::log::{LogError, PartitionConfig, SegmentStore};
use ordo_proto::common::{Block, Envelope, HeaderType};
use ordo_proto::orderer::SeekInfo;
use prost::Message;

/// A fuzz case: bytes in, a panic if the node mishandles them.
pub type Case = fn(&[u8]);

/// The targets, by name: what the corpus folders and libFuzzer binaries are called.
pub const TARGETS: &[(&str, Case)] = &[
    ("envelope", envelope),
    ("config_block", config_block),
    ("segment", segment),
    ("ledger", ledger),
];

/// The channel the envelope case admits requests into: the genesis block the seeds were made
/// for (`seeds.sh`), kept beside the corpus.
fn channel() -> &'static Bundle {
    static BUNDLE: OnceLock<Bundle> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/genesis.block");
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("reading the fixture {}: {e}", path.display()));
        let block = Block::decode(bytes.as_slice())
            .unwrap_or_else(|e| panic!("{} is not a block: {e}", path.display()));
        Bundle::from_block(&block)
            .unwrap_or_else(|e| panic!("{} is not a config block: {e}", path.display()))
    })
}

/// A request, through the checks Broadcast and Deliver make before anything is produced or sent.
pub fn envelope(data: &[u8]) {
    let Ok(envelope) = Envelope::decode(data) else {
        return;
    };
    let Ok(parsed) = processor::parse(&envelope) else {
        return;
    };
    // A window of ten years: the seeds' timestamps stay inside it, so the checks after it run.
    let _ = processor::check_timestamp(
        &parsed,
        SystemTime::now(),
        Duration::from_secs(10 * 365 * 24 * 3600),
    );
    let headers = &parsed.headers;
    let bundle = channel();
    if headers.header_type == HeaderType::DeliverSeekInfo as i32 {
        if let Ok(info) = SeekInfo::decode(headers.data.as_ref()) {
            // Re-encoding what decoded must decode to the same message.
            let again = SeekInfo::decode(info.encode_to_vec().as_slice());
            assert_eq!(again.as_ref(), Ok(&info), "SeekInfo does not round-trip");
        }
        let _ = processor::authorize_reader(bundle, headers, &envelope);
        return;
    }
    if headers.header_type == HeaderType::ConfigUpdate as i32 {
        if let Ok(config_update) = update::config_update_envelope(&envelope) {
            let _ = update::config_signatures(&config_update);
        }
        // The whole update path, signatures or not: its parsing is what is under test.
        let _ = bundle.propose_update(&envelope);
    }
    if let Ok(identity) = processor::deserialize(bundle, &headers.creator) {
        let _ = processor::check_expiry(&identity, SystemTime::now());
        if bundle
            .msps()
            .verify(&identity, &envelope.payload, &envelope.signature)
        {
            let _ = bundle.check_writer(&identity);
        }
    }
}

/// A config block, as a join or a restart reads it.
pub fn config_block(data: &[u8]) {
    let Ok(block) = Block::decode(data) else {
        return;
    };
    if let Ok(bundle) = Bundle::from_block(&block) {
        // What a channel reads of its configuration as it starts.
        let _ = bundle.cut_rules();
        let _ = bundle.batch_timeout();
        let _ = bundle.absolute_max_bytes();
        let _ = bundle.dedup_window_blocks();
    }
}

/// Small files and a dense index, so that a few KiB of input span several of each.
const SEGMENT_BYTES: u64 = 4096;
const INDEX_INTERVAL_BYTES: u32 = 256;

/// A folder for one case's files: in memory where the machine has /dev/shm, since recovery
/// fsyncs what it keeps and a disk would make every case slow.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let builder = tempfile::Builder::new();
    if shm.is_dir() {
        if let Ok(dir) = builder.tempdir_in(shm) {
            return dir;
        }
    }
    builder.tempdir().expect("a temporary folder")
}

/// `data` as the one segment of a log, opened (recovery) and read back in full: every record
/// recovery kept reads back in order, or the read is a refusal naming the file.
pub fn segment(data: &[u8]) {
    let dir = scratch();
    std::fs::write(dir.path().join(format!("{:020}.log", 0)), data).expect("writing the segment");
    let config = PartitionConfig {
        segment_bytes: SEGMENT_BYTES,
        index_interval_bytes: INDEX_INTERVAL_BYTES,
        cache_bytes: 0,
    };
    let store = match SegmentStore::open(dir.path(), config) {
        Ok(store) => store,
        Err(e) => return expect_named_refusal(&e),
    };
    let (start, end) = (store.start_offset(), store.next_offset());
    let mut next = start;
    while next < end {
        match store.read(next, 1 << 20) {
            Ok(records) if records.is_empty() => panic!("no record at {next}, below {end}"),
            Ok(records) => {
                for record in &records {
                    assert_eq!(record.offset, next, "records out of order");
                    next += 1;
                }
            }
            // A frame whose checksum holds but whose body is no record.
            Err(e) => return expect_named_refusal(&e),
        }
    }
}

/// A refusal names the file where the damage is.
fn expect_named_refusal(error: &LogError) {
    if let LogError::Corrupt { path, .. } = error {
        assert!(path.ends_with(".log"), "a refusal names its file: {error}");
    }
}

/// `data` as the one block file of a ledger, opened (recovery) and every block read back: each
/// block below the height is there, or its read is a refusal naming the block.
pub fn ledger(data: &[u8]) {
    let dir = scratch();
    std::fs::write(dir.path().join(format!("blocks_{:020}.dat", 0)), data)
        .expect("writing the block file");
    let config = LedgerConfig {
        file_bytes: SEGMENT_BYTES,
        cache_bytes: 0,
    };
    let ledger = match Ledger::open(dir.path(), config) {
        Ok(ledger) => ledger,
        Err(LedgerError::Corrupt(reason)) => {
            assert!(
                reason.contains("blocks_"),
                "a refusal names its file: {reason}"
            );
            return;
        }
        Err(_) => return,
    };
    for number in 0..ledger.height() {
        match ledger.block(number) {
            Ok(Some(_)) => {}
            Ok(None) => panic!(
                "block {number} is below the height {} but absent",
                ledger.height()
            ),
            Err(LedgerError::Corrupt(reason)) => {
                assert!(reason.contains(&format!("block {number}")), "{reason}");
                return;
            }
            Err(e) => panic!("block {number}: {e}"),
        }
    }
}
