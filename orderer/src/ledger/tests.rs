use std::fs::{self, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use ordo_proto::common::{Block, BlockData, BlockHeader, BlockMetadata};
use prost::Message;

use super::{Ledger, LedgerConfig, LedgerError, NAMES};
use crate::store::{self, FRAME_OVERHEAD};

const FRAME_HEADER_LEN: u64 = FRAME_OVERHEAD as u64;

/// The block file whose first block is `base`.
fn block_file_name(base: u64) -> String {
    NAMES.data_file(base)
}

/// The store frame holding `bytes` as block `number`.
fn encode_frame(number: u64, bytes: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    store::encode(&mut frame, number, &[bytes]);
    frame
}

fn block(number: u64, payload_len: usize) -> Block {
    // Vary the payload by block number so reading back the wrong block cannot pass.
    let payload: Vec<u8> = (0..payload_len)
        .map(|i| (i as u64 + number) as u8)
        .collect();
    Block {
        header: Some(BlockHeader {
            number,
            previous_hash: Bytes::from_static(b"previous"),
            data_hash: Bytes::from_static(b"data"),
        }),
        data: Some(BlockData {
            data: vec![Bytes::from(payload)],
        }),
        metadata: Some(BlockMetadata {
            metadata: vec![Bytes::new(); 5],
        }),
    }
}

fn small_files() -> LedgerConfig {
    // Room for about two 100-byte-payload blocks per file.
    LedgerConfig {
        file_bytes: 320,
        cache_bytes: 0,
    }
}

fn append_blocks(ledger: &Ledger, range: std::ops::Range<u64>) {
    for n in range {
        ledger.append(&block(n, 100)).expect("append");
    }
}

fn assert_blocks(ledger: &Ledger, count: u64) {
    assert_eq!(ledger.height(), count);
    for n in 0..count {
        let expected = block(n, 100);
        assert_eq!(ledger.block(n).expect("read").as_ref(), Some(&expected));
        assert_eq!(
            ledger.block_bytes(n).expect("read bytes"),
            Some(Bytes::from(expected.encode_to_vec()))
        );
    }
    assert_eq!(ledger.block(count).expect("read past end"), None);
    assert_eq!(ledger.block_bytes(count).expect("read past end"), None);
}

/// The block files in `dir`, in block order.
fn block_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            let name = p.file_name().expect("name").to_string_lossy();
            name.starts_with("blocks_") && name.ends_with(".dat")
        })
        .collect();
    files.sort();
    files
}

fn block_file_count(dir: &Path) -> usize {
    block_files(dir).len()
}

/// The sparse index files in `dir`, in block order.
fn index_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = block_files(dir)
        .iter()
        .map(|p| p.with_extension("index"))
        .collect();
    files.retain(|p| p.exists());
    files
}

/// A ledger with an index entry every 64 bytes, so that small test blocks get entries.
fn open_densely_indexed(dir: &Path, config: LedgerConfig) -> Ledger {
    Ledger::open_indexed(dir, config, 64).expect("open")
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).expect("metadata").len()
}

fn set_file_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for truncation")
        .set_len(len)
        .expect("truncate");
}

/// Every file in `dir`, by name, with its bytes.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .map(|p| {
            let bytes = fs::read(&p).expect("read");
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

fn quarantine_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().contains(".torn-"))
        .collect();
    files.sort();
    files
}

/// Opens `dir` expecting a refusal for damage at `offset` of `path`, and checks no file changed.
fn assert_refused_unchanged(dir: &Path, config: LedgerConfig, path: &Path, offset: u64) -> String {
    let before = snapshot(dir);
    let message = match Ledger::open(dir, config) {
        Err(LedgerError::Corrupt(message)) => message,
        Err(other) => panic!("expected Corrupt, got {other:?}"),
        Ok(_) => panic!("expected Corrupt, got an open ledger"),
    };
    assert!(
        message.contains(&format!("{} at byte {offset}:", path.display())),
        "{message}"
    );
    assert!(message.contains("nothing was changed on disk"), "{message}");
    assert_eq!(snapshot(dir), before, "recovery changed files: {message}");
    message
}

/// Checks the quarantine file for a tail cut from `offset` of block file 0 holds `cut`.
fn assert_quarantined(dir: &Path, offset: u64, cut: &[u8]) {
    let quarantine = dir.join(NAMES.quarantine_file(0, offset));
    assert_eq!(quarantine_files(dir), vec![quarantine.clone()]);
    assert_eq!(fs::read(&quarantine).expect("read quarantine"), cut);
}

#[test]
fn ledger_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Ledger>();
}

#[test]
fn empty_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open(&dir.path().join("chan"), LedgerConfig::default()).expect("open");
    assert_eq!(ledger.height(), 0);
    assert_eq!(ledger.last_block().expect("last"), None);
    assert_eq!(ledger.block(0).expect("read"), None);
}

/// The newest blocks come from memory, the older ones from the files, and they read the same.
#[test]
fn kept_blocks_read_as_the_stored_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    // About three blocks of 100-byte payloads.
    let config = LedgerConfig {
        cache_bytes: 500,
        ..small_files()
    };
    let ledger = Ledger::open(dir.path(), config).expect("open");
    append_blocks(&ledger, 0..10);
    assert_blocks(&ledger, 10);
    // Damage every block file at the first block it holds: a block read from its file fails...
    for path in block_files(dir.path()) {
        let mut bytes = fs::read(&path).expect("read");
        // Within the first block's body, past its frame header.
        bytes[40] ^= 0xff;
        fs::write(&path, &bytes).expect("write");
    }
    assert!(
        ledger.block_bytes(0).is_err(),
        "block 0 is read from its file"
    );
    // ...while the newest are served as they were appended.
    let last_file_first = ledger.height() - 2;
    assert_eq!(
        ledger.block_bytes(last_file_first).expect("read"),
        Some(Bytes::from(block(last_file_first, 100).encode_to_vec()))
    );
    assert_eq!(
        ledger.block_bytes(9).expect("read"),
        Some(Bytes::from(block(9, 100).encode_to_vec()))
    );
}

#[test]
fn append_and_read_across_file_rolls_then_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let ledger = Ledger::open(dir.path(), small_files()).expect("open");
        append_blocks(&ledger, 0..10);
        assert_blocks(&ledger, 10);
        assert_eq!(ledger.last_block().expect("last"), Some(block(9, 100)));
    }
    assert!(block_file_count(dir.path()) >= 4, "block files should roll");
    for path in block_files(dir.path()) {
        assert!(file_len(&path) <= 320);
    }
    assert_eq!(
        index_files(dir.path()).len(),
        block_file_count(dir.path()),
        "every block file has its index"
    );

    let ledger = Ledger::open(dir.path(), small_files()).expect("reopen");
    assert_blocks(&ledger, 10);
    append_blocks(&ledger, 10..13);
    assert_blocks(&ledger, 13);
}

#[test]
fn block_larger_than_file_size_gets_its_own_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open(
        dir.path(),
        LedgerConfig {
            file_bytes: 50,
            cache_bytes: 0,
        },
    )
    .expect("open");
    append_blocks(&ledger, 0..3);
    assert_eq!(block_file_count(dir.path()), 3);
    drop(ledger);
    let ledger = Ledger::open(
        dir.path(),
        LedgerConfig {
            file_bytes: 50,
            cache_bytes: 0,
        },
    )
    .expect("reopen");
    assert_blocks(&ledger, 3);
}

#[test]
fn out_of_order_append_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open(dir.path(), LedgerConfig::default()).expect("open");
    match ledger.append(&block(1, 10)) {
        Err(LedgerError::OutOfOrder {
            expected: 0,
            got: 1,
        }) => {}
        other => panic!("expected OutOfOrder, got {other:?}"),
    }
    ledger.append(&block(0, 10)).expect("append 0");
    match ledger.append(&block(0, 10)) {
        Err(LedgerError::OutOfOrder {
            expected: 1,
            got: 0,
        }) => {}
        other => panic!("expected OutOfOrder, got {other:?}"),
    }
    assert_eq!(ledger.height(), 1);
    // A rejected append leaves the ledger usable.
    ledger.append(&block(1, 10)).expect("append 1");
    assert_eq!(ledger.height(), 2);
}

#[test]
fn torn_tail_recovered_and_appending_continues() {
    let last_frame_len = FRAME_HEADER_LEN + block(4, 100).encoded_len() as u64;
    // Leave the last frame cut in its body, and cut in its header.
    for left in [last_frame_len - 3, 5] {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(dir.path(), LedgerConfig::default()).expect("open");
        append_blocks(&ledger, 0..5);
        drop(ledger);

        let path = dir.path().join(block_file_name(0));
        let raw = fs::read(&path).expect("read block file");
        let full = raw.len() as u64;
        let frame_start = full - last_frame_len;
        set_file_len(&path, frame_start + left);

        let ledger = Ledger::open(dir.path(), LedgerConfig::default()).expect("reopen");
        assert_blocks(&ledger, 4);
        assert_eq!(file_len(&path), frame_start, "torn frame cut off");
        assert_quarantined(
            dir.path(),
            frame_start,
            &raw[frame_start as usize..(frame_start + left) as usize],
        );

        append_blocks(&ledger, 4..6);
        assert_blocks(&ledger, 6);
        drop(ledger);
        let ledger = Ledger::open(dir.path(), LedgerConfig::default()).expect("reopen again");
        assert_blocks(&ledger, 6);
        assert_eq!(quarantine_files(dir.path()).len(), 1);
    }
}

#[test]
fn zero_filled_tail_is_a_torn_tail() {
    let last_frame_len = FRAME_HEADER_LEN as usize + block(4, 100).encoded_len();
    // Zeros after the last frame (a preallocated or extended file), and zeros over the last
    // frame with the file length kept (the write reached the size but not the data).
    for over_last_frame in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(dir.path(), LedgerConfig::default()).expect("open");
        append_blocks(&ledger, 0..5);
        drop(ledger);
        let path = dir.path().join(block_file_name(0));
        let mut raw = fs::read(&path).expect("read block file");
        let cut_at = if over_last_frame {
            let start = raw.len() - last_frame_len;
            raw[start..].fill(0);
            start
        } else {
            let start = raw.len();
            raw.resize(start + 4096, 0);
            start
        };
        fs::write(&path, &raw).expect("write block file");

        let ledger = Ledger::open(dir.path(), LedgerConfig::default()).expect("reopen");
        let kept = if over_last_frame { 4 } else { 5 };
        assert_blocks(&ledger, kept);
        assert_eq!(file_len(&path), cut_at as u64);
        assert_quarantined(dir.path(), cut_at as u64, &raw[cut_at..]);
        append_blocks(&ledger, kept..7);
        assert_blocks(&ledger, 7);
    }
}

#[test]
fn random_garbage_tail_is_a_torn_tail() {
    // Deciding slides over every byte of the tail; this keeps that cheap for a tail with no
    // frame in it.
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open(dir.path(), LedgerConfig::default()).expect("open");
    append_blocks(&ledger, 0..5);
    drop(ledger);
    let path = dir.path().join(block_file_name(0));
    let mut raw = fs::read(&path).expect("read block file");
    let clean_len = raw.len();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    raw.extend((0..(4 << 20)).map(|_| {
        // xorshift64: deterministic bytes without a dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as u8
    }));
    fs::write(&path, &raw).expect("write block file");

    let ledger = Ledger::open(dir.path(), LedgerConfig::default()).expect("reopen");
    assert_blocks(&ledger, 5);
    assert_eq!(file_len(&path), clean_len as u64);
    assert_quarantined(dir.path(), clean_len as u64, &raw[clean_len..]);
}

#[test]
fn mid_file_corruption_refuses_to_open_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open(dir.path(), LedgerConfig::default()).expect("open");
    append_blocks(&ledger, 0..6);
    drop(ledger);
    let path = dir.path().join(block_file_name(0));
    let clean = fs::read(&path).expect("read block file");
    let frame_len = FRAME_HEADER_LEN as usize + block(1, 100).encoded_len();
    let genesis_len = FRAME_HEADER_LEN as usize + block(0, 100).encoded_len();
    let victim_start = genesis_len + 2 * frame_len;

    // Block 3 of 6, with the index and without it (recovery then scans from block 0): one
    // flipped bit in the length, the checksum, the frame's block number and the block bytes.
    for without_index in [false, true] {
        if without_index {
            for index in index_files(dir.path()) {
                fs::remove_file(index).expect("remove index");
            }
        }
        for at in [3, 6, 10, 60] {
            let mut raw = clean.clone();
            raw[victim_start + at] ^= 0x01;
            fs::write(&path, &raw).expect("write block file");
            let message = assert_refused_unchanged(
                dir.path(),
                LedgerConfig::default(),
                &path,
                victim_start as u64,
            );
            assert!(message.starts_with("block 3 in "), "{message}");
            assert!(
                message.contains(&format!(
                    "(block 4) follows at byte {}",
                    victim_start + frame_len
                )),
                "{message}"
            );
        }
    }

    // Nothing was lost, so repairing the byte is enough.
    fs::write(&path, &clean).expect("repair");
    let ledger = Ledger::open(dir.path(), LedgerConfig::default()).expect("reopen");
    assert_blocks(&ledger, 6);
    assert!(quarantine_files(dir.path()).is_empty());
}

#[test]
fn lost_index_entries_rebuilt_from_block_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = open_densely_indexed(dir.path(), small_files());
    append_blocks(&ledger, 0..10);
    drop(ledger);
    let indexes = index_files(dir.path());
    assert_eq!(indexes.len(), block_file_count(dir.path()));
    let clean: Vec<Vec<u8>> = indexes.iter().map(|p| fs::read(p).expect("read")).collect();
    assert!(
        clean.iter().all(|raw| !raw.is_empty()),
        "every file is indexed"
    );

    // A torn entry in every index: each is rebuilt from its block file.
    for index in &indexes {
        set_file_len(index, 5);
    }
    let ledger = open_densely_indexed(dir.path(), small_files());
    assert_blocks(&ledger, 10);
    let rebuilt: Vec<Vec<u8>> = indexes.iter().map(|p| fs::read(p).expect("read")).collect();
    assert_eq!(rebuilt, clean);
    drop(ledger);

    // No index at all.
    for index in &indexes {
        fs::remove_file(index).expect("remove index");
    }
    let ledger = open_densely_indexed(dir.path(), small_files());
    assert_blocks(&ledger, 10);
    append_blocks(&ledger, 10..12);
    assert_blocks(&ledger, 12);
    drop(ledger);

    // Garbage where entries should be (what an unsynced index can hold after power loss).
    for index in index_files(dir.path()) {
        let mut raw = fs::read(&index).expect("read index");
        raw.extend_from_slice(&[0; 16]);
        fs::write(&index, raw).expect("write index");
    }
    let ledger = open_densely_indexed(dir.path(), small_files());
    assert_blocks(&ledger, 12);
}

#[test]
fn flipped_byte_in_last_frame_is_a_torn_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open(dir.path(), LedgerConfig::default()).expect("open");
    append_blocks(&ledger, 0..5);
    drop(ledger);

    let path = dir.path().join(block_file_name(0));
    let mut raw = fs::read(&path).expect("read block file");
    let last_frame_len = FRAME_HEADER_LEN as usize + block(4, 100).encoded_len();
    let frame_start = raw.len() - last_frame_len;
    raw[frame_start + FRAME_HEADER_LEN as usize + 50] ^= 0x01;
    fs::write(&path, &raw).expect("write block file");

    // Nothing follows it, so it cannot be told from a torn write: cut, but kept aside.
    let ledger = Ledger::open(dir.path(), LedgerConfig::default()).expect("reopen");
    assert_blocks(&ledger, 4);
    assert_eq!(file_len(&path), frame_start as u64);
    assert_quarantined(dir.path(), frame_start as u64, &raw[frame_start..]);
    append_blocks(&ledger, 4..5);
    assert_blocks(&ledger, 5);
}

#[test]
fn frame_with_wrong_block_number_refuses_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open(dir.path(), LedgerConfig::default()).expect("open");
    append_blocks(&ledger, 0..3);
    drop(ledger);

    // A valid frame holding block 7 where block 3 is due: whole and checksummed, so not a torn
    // write.
    let path = dir.path().join(block_file_name(0));
    let good_len = file_len(&path);
    let mut raw = fs::read(&path).expect("read block file");
    for n in [7, 3] {
        raw.extend_from_slice(&encode_frame(n, &block(n, 100).encode_to_vec()));
    }
    fs::write(&path, &raw).expect("write block file");

    let message = assert_refused_unchanged(dir.path(), LedgerConfig::default(), &path, good_len);
    assert!(message.contains("(it holds block 7)"), "{message}");
}

#[test]
fn corruption_in_earlier_file_refuses_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open(dir.path(), small_files()).expect("open");
    append_blocks(&ledger, 0..10);
    drop(ledger);
    assert!(block_file_count(dir.path()) >= 4);

    // Lose the indexes, so recovery must scan the sealed files, and damage the second block
    // file's first frame. Whatever follows in that file, the third shows this is not a torn tail.
    for index in index_files(dir.path()) {
        fs::remove_file(index).expect("remove index");
    }
    let path = block_files(dir.path())[1].clone();
    let mut raw = fs::read(&path).expect("read block file");
    raw[FRAME_HEADER_LEN as usize + 20] ^= 0xff;
    fs::write(&path, &raw).expect("write block file");

    let message = assert_refused_unchanged(dir.path(), small_files(), &path, 0);
    assert!(message.contains("so this is damage"), "{message}");
}

#[test]
fn missing_block_file_refuses_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open(dir.path(), small_files()).expect("open");
    append_blocks(&ledger, 0..10);
    drop(ledger);
    fs::remove_file(&block_files(dir.path())[1]).expect("remove block file");
    match Ledger::open(dir.path(), small_files()) {
        Err(LedgerError::Corrupt(_)) => {}
        Err(other) => panic!("expected Corrupt, got {other:?}"),
        Ok(_) => panic!("expected Corrupt, got an open ledger"),
    }
}

#[test]
fn read_detects_corruption_in_an_old_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = open_densely_indexed(dir.path(), small_files());
    append_blocks(&ledger, 0..10);
    drop(ledger);

    // Recovery reads a sealed file only from its last index entry on (to check where it ends),
    // so damage before that opens; the read must still catch it.
    let path = dir.path().join(block_file_name(0));
    let mut raw = fs::read(&path).expect("read block file");
    raw[FRAME_HEADER_LEN as usize + 20] ^= 0xff;
    fs::write(&path, &raw).expect("write block file");

    let ledger = open_densely_indexed(dir.path(), small_files());
    assert_eq!(ledger.height(), 10);
    assert!(matches!(ledger.block(0), Err(LedgerError::Corrupt(_))));
    assert_eq!(ledger.block(9).expect("read"), Some(block(9, 100)));
}

#[test]
fn subscribe_sees_height_advance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open(dir.path(), LedgerConfig::default()).expect("open");
    let mut rx = ledger.subscribe();
    assert_eq!(*rx.borrow_and_update(), 0);
    assert!(!rx.has_changed().expect("sender alive"));

    append_blocks(&ledger, 0..2);
    assert!(rx.has_changed().expect("sender alive"));
    assert_eq!(*rx.borrow_and_update(), 2);

    // A rejected append does not notify.
    assert!(ledger.append(&block(5, 10)).is_err());
    assert!(!rx.has_changed().expect("sender alive"));

    // A subscriber on a reopened ledger starts at the recovered height.
    drop(rx);
    drop(ledger);
    let ledger = Ledger::open(dir.path(), LedgerConfig::default()).expect("reopen");
    assert_eq!(*ledger.subscribe().borrow(), 2);
}

#[test]
fn concurrent_readers_see_only_complete_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Arc::new(Ledger::open(dir.path(), small_files()).expect("open"));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || {
                let rx = ledger.subscribe();
                loop {
                    let height = *rx.borrow();
                    for n in 0..height {
                        assert_eq!(ledger.block(n).expect("read"), Some(block(n, 100)));
                    }
                    if height == 40 {
                        break;
                    }
                    std::thread::yield_now();
                }
            })
        })
        .collect();
    append_blocks(&ledger, 0..40);
    for reader in readers {
        reader.join().expect("reader thread");
    }
}

#[test]
fn a_ledger_of_the_earlier_format_is_refused_not_read_as_empty() {
    for old in ["index.dat", "blocks_000000.dat"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(old), b"old").unwrap();
        let refused = Ledger::open(dir.path(), LedgerConfig::default())
            .err()
            .unwrap();
        assert!(
            matches!(&refused, LedgerError::OldFormat(path) if path.ends_with(old)),
            "{refused}"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "nothing written beside {old}");
    }
}
