//! `SegmentStore`: a partition's records in a [`Store`] (offsets are entry numbers, see
//! `record`), with the store's errors told in the log's terms. Recovery, rolling, the sparse
//! index and truncation are the store's; what stays here is what a record is.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::record::{self, Record};
use super::LogError;
pub use crate::store::SyncPoint;
use crate::store::{Entry, Names, Reader, Store, StoreConfig, StoreError};

/// File names of a partition: `00000000000000001234.log` with its `.index`.
const NAMES: Names = Names {
    prefix: "",
    data_suffix: ".log",
    index_suffix: ".index",
    noun: "record",
};

/// Sizing of a partition's files.
#[derive(Clone, Debug)]
pub struct PartitionConfig {
    /// A new segment is started when appending would grow the active one
    /// past this many bytes (a single larger record gets a segment alone).
    pub segment_bytes: u64,
    /// Bytes of log between two sparse index entries.
    pub index_interval_bytes: u32,
    /// Bytes of the newest records a replicated log keeps in memory (`log.cache_bytes`).
    pub cache_bytes: usize,
}

impl Default for PartitionConfig {
    fn default() -> Self {
        PartitionConfig {
            segment_bytes: 64 << 20,
            index_interval_bytes: 4096,
            cache_bytes: 8 << 20,
        }
    }
}

impl From<StoreError> for LogError {
    fn from(error: StoreError) -> LogError {
        match error {
            StoreError::Io(e) => LogError::Io(e),
            StoreError::Corrupt {
                number,
                path,
                position,
                reason,
            } => LogError::Corrupt {
                offset: number,
                path,
                reason: format!("at byte {position}: {reason}"),
            },
            StoreError::OutOfRange {
                requested,
                start,
                end,
            } => LogError::OutOfRange {
                requested,
                start,
                end,
            },
        }
    }
}

/// The segments of one partition directory. Synchronous, one owner appends, syncs and
/// truncates; [`StoreReader`]s read from other threads.
pub struct SegmentStore {
    store: Store,
    reader: StoreReader,
}

impl SegmentStore {
    /// Opens (creating if needed) the partition in `dir` and recovers it (see `store`): a torn
    /// tail of the last segment is cut off, kept in a quarantine file; damage that is not a torn
    /// tail fails with [`LogError::Corrupt`], naming the file, record offset and byte, and
    /// changes nothing on disk.
    pub fn open(dir: &Path, config: PartitionConfig) -> Result<SegmentStore, LogError> {
        let store = Store::open(
            dir,
            StoreConfig {
                names: NAMES,
                segment_bytes: config.segment_bytes,
                index_interval_bytes: config.index_interval_bytes,
            },
        )?;
        let reader = StoreReader {
            reader: store.reader(),
            dir: Arc::new(dir.to_path_buf()),
        };
        Ok(SegmentStore { store, reader })
    }

    /// Appends one record. `offset` must be [`Self::next_offset`]: offsets
    /// are explicit so that a replicated log can use its own indexes.
    /// Not durable until [`Self::sync`].
    pub fn append(
        &mut self,
        offset: u64,
        timestamp_ms: i64,
        payload: &[u8],
    ) -> Result<(), LogError> {
        let timestamp = timestamp_ms.to_be_bytes();
        Ok(self
            .store
            .append(offset, &record::body(&timestamp, payload))?)
    }

    /// Makes every appended record durable.
    pub fn sync(&mut self) -> Result<(), LogError> {
        Ok(self.store.sync()?)
    }

    /// What [`Self::sync`] would fsync now, to be fsynced later without the store (see
    /// [`SyncPoint`]); records appended after this call are not covered.
    pub fn take_sync_point(&mut self) -> SyncPoint {
        self.store.take_sync_point()
    }

    /// Removes every record at or after `offset`, so that the next append is
    /// at `offset`. Durable on return. Callers only truncate what readers
    /// have not been allowed to see (uncommitted records): readers racing
    /// with it may still return records read just before.
    pub fn truncate_from(&mut self, offset: u64) -> Result<(), LogError> {
        Ok(self.store.truncate_from(offset)?)
    }

    /// Records from `from` up to about `max_bytes` (see [`StoreReader::read`]).
    pub fn read(&self, from: u64, max_bytes: usize) -> Result<Vec<Record>, LogError> {
        self.reader.read(from, max_bytes)
    }

    /// Offset of the oldest record kept.
    pub fn start_offset(&self) -> u64 {
        self.store.start_number()
    }

    /// One past the last appended record: the offset the next append takes.
    pub fn next_offset(&self) -> u64 {
        self.store.next_number()
    }

    /// A cheap, cloneable handle for reading from other threads.
    pub fn reader(&self) -> StoreReader {
        self.reader.clone()
    }
}

/// Read access to a [`SegmentStore`] from any thread.
#[derive(Clone)]
pub struct StoreReader {
    reader: Reader,
    /// For naming the partition when a record does not decode.
    dir: Arc<PathBuf>,
}

impl StoreReader {
    pub fn start_offset(&self) -> u64 {
        self.reader.start_number()
    }

    pub fn next_offset(&self) -> u64 {
        self.reader.next_number()
    }

    /// Records from `from` to the end, up to about `max_bytes` of encoded
    /// records; at least one record if any exists at `from`, whatever its
    /// size. `from == next_offset()` gives an empty result.
    pub fn read(&self, from: u64, max_bytes: usize) -> Result<Vec<Record>, LogError> {
        self.read_range(from, u64::MAX, max_bytes)
    }

    /// Like [`Self::read`], but never returns a record at or past `end`.
    /// `from` past `min(end, next_offset())` is out of range.
    pub fn read_range(
        &self,
        from: u64,
        end: u64,
        max_bytes: usize,
    ) -> Result<Vec<Record>, LogError> {
        let entries = self.reader.read_range(from, end, max_bytes)?;
        entries.into_iter().map(|e| self.decode(e)).collect()
    }

    fn decode(&self, entry: Entry) -> Result<Record, LogError> {
        let offset = entry.number;
        record::decode(entry).map_err(|reason| LogError::Corrupt {
            offset,
            path: self.dir.display().to_string(),
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    // Recovery, rolling, truncation and concurrent reads are the store's, and tested there;
    // these check that records go through it whole and that its errors keep their facts.
    use super::*;
    use std::fs;

    fn config() -> PartitionConfig {
        PartitionConfig {
            segment_bytes: 1024,
            index_interval_bytes: 128,
            ..Default::default()
        }
    }

    fn payload(offset: u64) -> Vec<u8> {
        format!("record-{offset:05}-{}", "x".repeat((offset % 37) as usize)).into_bytes()
    }

    fn fill(store: &mut SegmentStore, count: u64) {
        for _ in 0..count {
            let offset = store.next_offset();
            store
                .append(offset, -(offset as i64), &payload(offset))
                .expect("append");
        }
        store.sync().expect("sync");
    }

    fn assert_records(records: &[Record], from: u64) {
        for (i, record) in records.iter().enumerate() {
            let offset = from + i as u64;
            assert_eq!(record.offset, offset);
            assert_eq!(record.timestamp_ms, -(offset as i64));
            assert_eq!(record.payload[..], payload(offset)[..], "offset {offset}");
        }
    }

    #[test]
    fn records_survive_rolls_truncation_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = SegmentStore::open(dir.path(), config()).expect("open");
        fill(&mut store, 200);
        assert_records(&store.read(0, usize::MAX).expect("read"), 0);
        let reader = store.reader();
        assert_records(&reader.read_range(50, 60, usize::MAX).expect("read"), 50);
        assert_eq!(
            reader.read_range(50, 60, usize::MAX).expect("read").len(),
            10
        );
        store.truncate_from(120).expect("truncate");
        fill(&mut store, 5);
        drop(store);

        let store = SegmentStore::open(dir.path(), config()).expect("reopen");
        assert_eq!((store.start_offset(), store.next_offset()), (0, 125));
        assert_records(&store.read(0, usize::MAX).expect("read"), 0);
        assert!(matches!(
            store.read(126, 1),
            Err(LogError::OutOfRange {
                requested: 126,
                start: 0,
                end: 125
            })
        ));
    }

    #[test]
    fn max_bytes_counts_whole_record_frames() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = SegmentStore::open(dir.path(), config()).expect("open");
        fill(&mut store, 20);
        let budget = record::frame_len(payload(0).len()) + record::frame_len(payload(1).len());
        assert_eq!(store.read(0, budget).expect("read").len(), 2);
        assert_eq!(store.read(0, budget - 1).expect("read").len(), 1);
    }

    #[test]
    fn corruption_names_offset_file_and_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = SegmentStore::open(dir.path(), config()).expect("open");
        fill(&mut store, 10);
        drop(store);
        let segment = dir.path().join(NAMES.data_file(0));
        let mut bytes = fs::read(&segment).expect("read");
        let second = record::frame_len(payload(0).len());
        bytes[second + 20] ^= 0x01;
        fs::write(&segment, &bytes).expect("write");

        let err = SegmentStore::open(dir.path(), config())
            .err()
            .expect("refuses");
        match &err {
            LogError::Corrupt {
                offset,
                path,
                reason,
            } => {
                assert_eq!(*offset, 1);
                assert_eq!(path, &segment.display().to_string());
                assert!(reason.starts_with(&format!("at byte {second}: ")), "{err}");
                assert!(reason.contains("nothing was changed on disk"), "{err}");
            }
            other => panic!("expected Corrupt, got {other}"),
        }
    }
}
