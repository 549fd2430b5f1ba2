//! `Store`: the ordered segments of one directory.
//!
//! The store is synchronous and owns no threads. Exactly one owner appends, syncs and truncates
//! (`&mut self`); any number of [`Reader`]s read concurrently from other threads. Readers see
//! only fully written entries: `next_number` is published after an entry's bytes are in its
//! segment. Whether they are durable yet is the owner's to track (it calls [`Store::sync`]).
//!
//! Recovery is described in the module docs of `store`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::frame::{self, Entry};
use super::segment::{self, sync_dir, Segment};
use super::{StoreConfig, StoreError};

/// State shared between the store's owner and its readers.
struct Shared {
    segments: RwLock<Vec<Arc<Segment>>>,
    start_number: AtomicU64,
    /// One past the last appended entry.
    next_number: AtomicU64,
}

impl Shared {
    // Writers only swap whole `Arc`s in and out of the list, so a panic
    // while holding the lock cannot leave it inconsistent: ignore poisoning.
    fn segments(&self) -> RwLockReadGuard<'_, Vec<Arc<Segment>>> {
        self.segments.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn segments_mut(&self) -> RwLockWriteGuard<'_, Vec<Arc<Segment>>> {
        self.segments
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The segments of one store directory.
pub struct Store {
    dir: PathBuf,
    config: StoreConfig,
    reader: Reader,
    /// The last segment, the only one appended to.
    active: Arc<Segment>,
    /// The active segment has appends not yet fsynced.
    unsynced_data: bool,
    /// A segment file was created since the directory was last fsynced.
    unsynced_dir: bool,
    /// Reused encoding buffer.
    scratch: Vec<u8>,
}

impl Store {
    /// Opens (creating if needed) the store in `dir` and recovers it:
    /// the last segment is scanned and a torn tail cut off (kept in a
    /// quarantine file); earlier segments are trusted, apart from a check
    /// that each ends where the next begins. Damage that is not a torn tail
    /// fails with [`StoreError::Corrupt`], naming the file, entry number and
    /// byte, and changes nothing on disk.
    pub fn open(dir: &Path, config: StoreConfig) -> Result<Store, StoreError> {
        fs::create_dir_all(dir)?;
        let names = config.names;
        let mut bases = Vec::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            if let Some(base) = name.to_str().and_then(|n| names.parse_data_file(n)) {
                bases.push(base);
            }
        }
        bases.sort_unstable();

        let mut segments = Vec::with_capacity(bases.len().max(1));
        let next_number = match bases.last() {
            None => {
                segments.push(Arc::new(Segment::create(dir, names, 0)?));
                sync_dir(dir)?;
                0
            }
            Some(&last) => {
                let mut rebuilt = Vec::new();
                let opened = open_segments(dir, &config, &bases, &mut segments, &mut rebuilt);
                let count = match opened {
                    Ok(count) => count,
                    Err(e) => {
                        // A refusal leaves the directory as it was, so index files this open
                        // created for earlier segments go again.
                        for segment in &segments {
                            segment.remove_created_index()?;
                        }
                        return Err(e);
                    }
                };
                // Only now that the open succeeded are rebuilt indexes written.
                for segment in rebuilt {
                    segment.write_rebuilt_index()?;
                }
                last + count
            }
        };
        let start_number = segments.first().map_or(0, |s| s.base());
        let active = segments
            .last()
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "store has no segment"))?;
        Ok(Store {
            dir: dir.to_path_buf(),
            config,
            reader: Reader {
                shared: Arc::new(Shared {
                    segments: RwLock::new(segments),
                    start_number: AtomicU64::new(start_number),
                    next_number: AtomicU64::new(next_number),
                }),
            },
            active,
            unsynced_data: false,
            unsynced_dir: false,
            scratch: Vec::new(),
        })
    }

    /// Appends one entry, whose body is the concatenation of `body`'s parts.
    /// `number` must be [`Self::next_number`]: numbers are explicit so that
    /// a replicated log can use its own indexes. Not durable until
    /// [`Self::sync`].
    pub fn append(&mut self, number: u64, body: &[&[u8]]) -> Result<(), StoreError> {
        let next = self.next_number();
        if number != next {
            return Err(StoreError::OutOfRange {
                requested: number,
                start: self.start_number(),
                end: next,
            });
        }
        let body_len = body.iter().map(|part| part.len()).sum();
        let frame_len = frame::frame_len_for(body_len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "entry exceeds 4 GiB"))?
            as u64;
        if self.should_roll(number, frame_len) {
            self.roll()?;
        }
        let relative = u32::try_from(number - self.active.base())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "relative number overflow"))?;

        self.scratch.clear();
        frame::encode(&mut self.scratch, number, body);
        self.unsynced_data = true;
        let appended =
            self.active
                .append(&self.scratch, relative, self.config.index_interval_bytes);
        // Don't keep a huge buffer around after one huge entry.
        if self.scratch.capacity() > 8 << 20 {
            self.scratch = Vec::new();
        }
        appended?;
        self.reader
            .shared
            .next_number
            .store(number + 1, Ordering::Release);
        Ok(())
    }

    /// Makes every appended entry durable: fsyncs the active segment, and
    /// the directory if a segment file was created since the last sync.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.sync_point().sync()?;
        self.unsynced_data = false;
        self.unsynced_dir = false;
        Ok(())
    }

    /// What [`Self::sync`] would fsync now.
    fn sync_point(&self) -> SyncPoint {
        SyncPoint {
            segment: self.unsynced_data.then(|| Arc::clone(&self.active)),
            dir: self.unsynced_dir.then(|| self.dir.clone()),
        }
    }

    /// Takes what [`Self::sync`] would fsync now, to be fsynced by [`SyncPoint::sync`] without
    /// the store (from another thread, while appends go on). Entries appended after this call
    /// are not covered by it.
    pub fn take_sync_point(&mut self) -> SyncPoint {
        let point = self.sync_point();
        self.unsynced_data = false;
        self.unsynced_dir = false;
        point
    }

    /// Removes every entry at or after `number`, deleting whole segments as
    /// needed, so that the next append is at `number`. Durable on return.
    ///
    /// Readers racing with a truncation may still return entries read just
    /// before it; callers only truncate what readers have not been allowed to
    /// see (uncommitted entries).
    pub fn truncate_from(&mut self, number: u64) -> Result<(), StoreError> {
        let (start, next) = (self.start_number(), self.next_number());
        if number < start || number > next {
            return Err(StoreError::OutOfRange {
                requested: number,
                start,
                end: next,
            });
        }
        if number == next {
            return Ok(());
        }
        // Find the cut before changing anything, so a corrupt segment leaves
        // the store untouched.
        let (keep, target) = {
            let segments = self.reader.shared.segments();
            let keep = segments.partition_point(|s| s.base() <= number).max(1);
            (keep, Arc::clone(&segments[keep - 1]))
        };
        let position = target.position_of(number)?;

        // Publish the new end first so readers stop short of the cut.
        self.reader
            .shared
            .next_number
            .store(number, Ordering::Release);
        let removed: Vec<_> = self.reader.shared.segments_mut().drain(keep..).collect();
        // Newest first, so a crash part-way leaves a gap-free prefix.
        for segment in removed.iter().rev() {
            segment.delete()?;
        }
        target.truncate_to(position)?;
        // The target may become sealed later without being rewritten, so its
        // index must be durable too.
        target.sync(true)?;
        // A segment created since the last sync may survive the cut: its entry is owed too.
        if !removed.is_empty() || self.unsynced_dir {
            sync_dir(&self.dir)?;
        }
        self.active = target;
        self.unsynced_data = false;
        self.unsynced_dir = false;
        Ok(())
    }

    /// Entries from `from` up to about `max_bytes` (see [`Reader::read`]).
    pub fn read(&self, from: u64, max_bytes: usize) -> Result<Vec<Entry>, StoreError> {
        self.reader.read(from, max_bytes)
    }

    /// Number of the oldest entry kept.
    pub fn start_number(&self) -> u64 {
        self.reader.start_number()
    }

    /// One past the last appended entry: the number the next append takes.
    pub fn next_number(&self) -> u64 {
        self.reader.next_number()
    }

    /// A cheap, cloneable handle for reading from other threads.
    pub fn reader(&self) -> Reader {
        self.reader.clone()
    }

    fn should_roll(&self, number: u64, frame_len: u64) -> bool {
        let size = self.active.size();
        if size == 0 {
            return false;
        }
        let end = size + frame_len;
        // Index entries hold u32 positions and relative numbers.
        end > self.config.segment_bytes
            || end > u64::from(u32::MAX)
            || number - self.active.base() > u64::from(u32::MAX)
    }

    /// Seals the active segment and starts a new one at `next_number`.
    fn roll(&mut self) -> Result<(), StoreError> {
        // Recovery only scans the last segment, so a segment must be fully
        // durable before another follows it.
        self.active.sync(true)?;
        self.unsynced_data = false;
        let segment = Arc::new(Segment::create(
            &self.dir,
            self.config.names,
            self.next_number(),
        )?);
        self.unsynced_dir = true;
        self.reader.shared.segments_mut().push(Arc::clone(&segment));
        self.active = segment;
        Ok(())
    }
}

/// The fsyncs that make a store's appends up to some point durable, taken out of the store by
/// [`Store::take_sync_point`].
#[derive(Default)]
pub struct SyncPoint {
    /// The active segment then, if it had unsynced appends.
    segment: Option<Arc<Segment>>,
    /// The store's directory, if a segment file was created since its last fsync.
    dir: Option<PathBuf>,
}

impl SyncPoint {
    /// Makes the appends it covers durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        if let Some(segment) = &self.segment {
            segment.sync(false)?;
        }
        if let Some(dir) = &self.dir {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// Covers `later`'s appends too, so that one [`Self::sync`] serves both. Only the later
    /// active segment needs its fsync: a roll fsyncs a segment whole before the next one starts.
    pub fn merge(&mut self, later: SyncPoint) {
        if later.segment.is_some() {
            self.segment = later.segment;
        }
        if later.dir.is_some() {
            self.dir = later.dir;
        }
    }
}

/// Opens the segments starting at `bases` (sorted, at least one) into `segments`: the sealed
/// ones trusted but checked to end where the next begins, the last one recovered. Sealed
/// segments whose index was rebuilt go into `rebuilt` too. Returns the number of entries in the
/// last segment.
fn open_segments(
    dir: &Path,
    config: &StoreConfig,
    bases: &[u64],
    segments: &mut Vec<Arc<Segment>>,
    rebuilt: &mut Vec<Arc<Segment>>,
) -> Result<u64, StoreError> {
    let (names, interval) = (config.names, config.index_interval_bytes);
    let Some((&last, sealed)) = bases.split_last() else {
        return Ok(0);
    };
    for (i, &base) in sealed.iter().enumerate() {
        let (segment, index_rebuilt) = Segment::open_sealed(dir, names, base, interval)?;
        let segment = Arc::new(segment);
        segments.push(Arc::clone(&segment));
        if index_rebuilt {
            rebuilt.push(Arc::clone(&segment));
        }
        // A missing or overlapping segment would otherwise only show when a read reaches it;
        // checking the ends costs a short scan per segment.
        let end = match segment.end_number() {
            Ok(end) => end,
            Err(StoreError::Corrupt {
                number,
                position,
                reason,
                ..
            }) => {
                return Err(segment.refuse(
                    number,
                    position,
                    format!("{reason}; {}", segment::sealed_damage()),
                ))
            }
            Err(e) => return Err(e),
        };
        let next_base = bases[i + 1];
        if end != next_base {
            return Err(segment.refuse(
                end.min(next_base),
                segment.size(),
                format!(
                    "the segment ends at {noun} {end} but the next segment file, {}, starts at \
                     {noun} {next_base}; nothing was changed on disk",
                    names.data_file(next_base),
                    noun = names.noun,
                ),
            ));
        }
    }
    let (active, count) = Segment::open_active(dir, names, last, interval)?;
    segments.push(Arc::new(active));
    Ok(count)
}

/// Read access to a [`Store`] from any thread.
#[derive(Clone)]
pub struct Reader {
    shared: Arc<Shared>,
}

impl Reader {
    pub fn start_number(&self) -> u64 {
        self.shared.start_number.load(Ordering::Acquire)
    }

    pub fn next_number(&self) -> u64 {
        self.shared.next_number.load(Ordering::Acquire)
    }

    /// Entries from `from` to the end, up to about `max_bytes` of encoded
    /// frames; at least one entry if any exists at `from`, whatever its
    /// size. `from == next_number()` gives an empty result.
    pub fn read(&self, from: u64, max_bytes: usize) -> Result<Vec<Entry>, StoreError> {
        self.read_range(from, u64::MAX, max_bytes)
    }

    /// Like [`Self::read`], but never returns an entry at or past `end`.
    /// `from` past `min(end, next_number())` is out of range.
    pub fn read_range(
        &self,
        from: u64,
        end: u64,
        max_bytes: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let start = self.start_number();
        let end = end.min(self.next_number());
        if from < start || from > end {
            return Err(StoreError::OutOfRange {
                requested: from,
                start,
                end,
            });
        }
        if from == end {
            return Ok(Vec::new());
        }
        // Take the segments we need and drop the lock before any I/O.
        let segments: Vec<Arc<Segment>> = {
            let all = self.shared.segments();
            let first = all.partition_point(|s| s.base() <= from).saturating_sub(1);
            let last = all.partition_point(|s| s.base() < end);
            all[first..last.max(first)].to_vec()
        };

        let mut out = Vec::new();
        let mut used = 0;
        for (i, segment) in segments.iter().enumerate() {
            let read = segment.read(from, end, max_bytes, &mut used, &mut out)?;
            if read.budget_exhausted || read.next_number >= end {
                break;
            }
            // The segment ended before `end`: the next one must continue
            // exactly there, or entries are missing.
            if segments
                .get(i + 1)
                .is_some_and(|next| next.base() == read.next_number)
            {
                continue;
            }
            if self.next_number() < end {
                // Truncated under us: stopping short is correct.
                break;
            }
            return Err(segment.corrupt(
                read.next_number,
                segment.size(),
                format!("{}s are missing at the end of the segment", segment.noun()),
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Names;
    use std::io::Write;

    const NAMES: Names = Names {
        prefix: "",
        data_suffix: ".log",
        index_suffix: ".index",
        noun: "record",
    };

    fn small_config() -> StoreConfig {
        StoreConfig {
            names: NAMES,
            segment_bytes: 1024,
            index_interval_bytes: 128,
        }
    }

    fn payload(offset: u64) -> Vec<u8> {
        format!("record-{offset:05}-{}", "x".repeat((offset % 37) as usize)).into_bytes()
    }

    fn fill(store: &mut Store, count: u64) {
        for _ in 0..count {
            let offset = store.next_number();
            store.append(offset, &[&payload(offset)]).expect("append");
        }
        store.sync().expect("sync");
    }

    fn assert_records(records: &[Entry], from: u64) {
        for (i, record) in records.iter().enumerate() {
            let offset = from + i as u64;
            assert_eq!(record.number, offset);
            assert_eq!(record.body[..], payload(offset)[..], "offset {offset}");
        }
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<_> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn empty_directory_opens_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("p0"), small_config()).expect("open");
        assert_eq!((store.start_number(), store.next_number()), (0, 0));
        assert!(store.read(0, 1024).expect("read").is_empty());
        assert!(matches!(
            store.read(1, 1024),
            Err(StoreError::OutOfRange { requested: 1, .. })
        ));
    }

    #[test]
    fn append_and_read_across_segment_rolls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path(), small_config()).expect("open");
        fill(&mut store, 300);
        assert!(segment_files(dir.path()).len() > 5, "segments rolled");
        assert_eq!(store.next_number(), 300);

        let all = store.read(0, usize::MAX).expect("read all");
        assert_eq!(all.len(), 300);
        assert_records(&all, 0);
        for from in [1, 17, 99, 150, 298, 299] {
            let records = store.read(from, usize::MAX).expect("read");
            assert_eq!(records.len(), (300 - from) as usize);
            assert_records(&records, from);
        }
        assert!(store.read(300, 10).expect("read at end").is_empty());
        assert!(matches!(
            store.append(301, &[b"gap"]),
            Err(StoreError::OutOfRange {
                requested: 301,
                end: 300,
                ..
            })
        ));

        // Everything survives a reopen, and appends continue.
        drop(store);
        let mut store = Store::open(dir.path(), small_config()).expect("reopen");
        assert_eq!(store.next_number(), 300);
        fill(&mut store, 10);
        let records = store.read(250, usize::MAX).expect("read");
        assert_eq!(records.len(), 60);
        assert_records(&records, 250);
    }

    #[test]
    fn max_bytes_is_honoured_with_at_least_one_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path(), small_config()).expect("open");
        fill(&mut store, 100);
        // Each frame is 16 bytes of overhead plus a payload of at least 12.
        let records = store.read(10, 200).expect("read");
        assert!(
            !records.is_empty() && records.len() < 10,
            "{}",
            records.len()
        );
        let bytes: usize = records
            .iter()
            .map(|r| r.body.len() + frame::FRAME_OVERHEAD)
            .sum();
        assert!(bytes <= 200);
        assert_records(&records, 10);

        let one = store.read(42, 1).expect("read");
        assert_eq!(one.len(), 1);
        assert_records(&one, 42);

        // A record larger than the budget and the segment size is served alone.
        let big = vec![7u8; 5000];
        store.append(100, &[&big]).expect("append big");
        store.append(101, &[b"after"]).expect("append");
        store.sync().expect("sync");
        let records = store.read(100, 10).expect("read");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].body.len(), 5000);
        // Budget boundaries never skip a record when crossing segments.
        let mut from = 0;
        while from < store.next_number() {
            let records = store.read(from, 300).expect("read");
            assert_eq!(records[0].number, from);
            from += records.len() as u64;
        }
    }

    /// Every file in `dir`, by name, with its bytes.
    fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files: Vec<_> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .map(|p| {
                let bytes = fs::read(&p).expect("read");
                (p, bytes)
            })
            .collect();
        files.sort();
        files
    }

    fn quarantine_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<_> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.to_string_lossy().contains(".torn-"))
            .collect();
        files.sort();
        files
    }

    /// A store of at least 60 records over several segments, with at least
    /// 10 in the last, dropped; returns the last segment's base offset and
    /// file, and the number of records.
    fn closed_store(dir: &Path) -> (u64, PathBuf, u64) {
        let mut store = Store::open(dir, small_config()).expect("open");
        fill(&mut store, 60);
        while store.next_number() - store.active.base() < 10 {
            fill(&mut store, 1);
        }
        let (base, count) = (store.active.base(), store.next_number());
        drop(store);
        (base, segment_files(dir).pop().expect("a segment"), count)
    }

    /// Reopens a store whose last segment had a torn tail from byte `cut_at`
    /// on, and checks every record before it survived and the quarantine
    /// file holds exactly the cut bytes.
    fn assert_torn_tail_recovered(dir: &Path, base: u64, cut_at: u64, records: u64, cut: &[u8]) {
        let mut store = Store::open(dir, small_config()).expect("reopen");
        assert_eq!(store.next_number(), records);
        let all = store.read(0, usize::MAX).expect("read");
        assert_eq!(all.len() as u64, records);
        assert_records(&all, 0);
        let last = segment_files(dir).pop().expect("a segment");
        assert_eq!(fs::metadata(&last).expect("metadata").len(), cut_at);
        let quarantine = dir.join(NAMES.quarantine_file(base, cut_at));
        assert_eq!(quarantine_files(dir), vec![quarantine.clone()]);
        assert_eq!(fs::read(&quarantine).expect("quarantine"), cut);

        // Appending goes on from there, and a clean reopen cuts nothing more.
        fill(&mut store, 5);
        drop(store);
        let store = Store::open(dir, small_config()).expect("reopen again");
        assert_eq!(store.next_number(), records + 5);
        assert_records(&store.read(0, usize::MAX).expect("read"), 0);
        assert_eq!(quarantine_files(dir).len(), 1);
    }

    #[test]
    fn write_cut_short_is_a_torn_tail_and_is_quarantined() {
        // Cut inside the last frame's payload, and inside its length field.
        for keep in [None, Some(2)] {
            let dir = tempfile::tempdir().expect("tempdir");
            let (base, last, count) = closed_store(dir.path());
            let store = Store::open(dir.path(), small_config()).expect("open");
            let last_start = store.active.position_of(count - 1).expect("position");
            drop(store);
            let bytes = fs::read(&last).expect("read");
            let end = keep.map_or(bytes.len() - 5, |k| last_start as usize + k);
            let file = fs::OpenOptions::new()
                .write(true)
                .open(&last)
                .expect("open");
            file.set_len(end as u64).expect("cut");
            assert_torn_tail_recovered(
                dir.path(),
                base,
                last_start,
                count - 1,
                &bytes[last_start as usize..end],
            );
        }
    }

    #[test]
    fn zero_filled_tail_is_a_torn_tail() {
        // Zeros after the last record (a preallocated or extended file).
        let dir = tempfile::tempdir().expect("tempdir");
        let (base, last, count) = closed_store(dir.path());
        let clean_len = fs::metadata(&last).expect("metadata").len();
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&last)
            .expect("open");
        file.write_all(&[0; 4096]).expect("write");
        drop(file);
        assert_torn_tail_recovered(dir.path(), base, clean_len, count, &[0; 4096]);

        // Zeros over the last two records, the file length unchanged: their
        // write reached the file size but not the data blocks.
        let dir = tempfile::tempdir().expect("tempdir");
        let (base, last, count) = closed_store(dir.path());
        let store = Store::open(dir.path(), small_config()).expect("open");
        let from = store.active.position_of(count - 2).expect("position");
        drop(store);
        let mut bytes = fs::read(&last).expect("read");
        bytes[from as usize..].fill(0);
        fs::write(&last, &bytes).expect("write");
        assert_torn_tail_recovered(dir.path(), base, from, count - 2, &bytes[from as usize..]);
    }

    #[test]
    fn random_garbage_tail_is_a_torn_tail() {
        // Deciding slides over every byte of the tail; this keeps that cheap
        // for a tail with no frame in it.
        let dir = tempfile::tempdir().expect("tempdir");
        let (base, last, count) = closed_store(dir.path());
        let clean_len = fs::metadata(&last).expect("metadata").len();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let garbage: Vec<u8> = (0..(4 << 20))
            .map(|_| {
                // xorshift64: deterministic bytes without a dependency.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&last)
            .expect("open");
        file.write_all(&garbage).expect("write");
        drop(file);
        assert_torn_tail_recovered(dir.path(), base, clean_len, count, &garbage);
    }

    #[test]
    fn a_second_tear_at_the_same_byte_keeps_the_first_quarantine_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (base, last, count) = closed_store(dir.path());
        let clean_len = fs::metadata(&last).expect("metadata").len();
        for garbage in [[0u8, 0], [0, 1]] {
            let mut file = fs::OpenOptions::new()
                .append(true)
                .open(&last)
                .expect("open");
            file.write_all(&garbage).expect("write");
            drop(file);
            let store = Store::open(dir.path(), small_config()).expect("reopen");
            assert_eq!(store.next_number(), count);
        }
        let first = dir.path().join(NAMES.quarantine_file(base, clean_len));
        let second = PathBuf::from(format!("{}.1", first.display()));
        assert_eq!(
            quarantine_files(dir.path()),
            vec![first.clone(), second.clone()]
        );
        assert_eq!(fs::read(&first).expect("read"), [0, 0]);
        assert_eq!(fs::read(&second).expect("read"), [0, 1]);
    }

    #[test]
    fn mid_segment_corruption_refuses_to_open_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (base, last, count) = closed_store(dir.path());
        let store = Store::open(dir.path(), small_config()).expect("open");
        // A record in the middle of the last segment, with whole records after it.
        let victim = base + (count - base) / 2;
        assert!(victim + 2 < count, "records follow the victim");
        let position = store.active.position_of(victim).expect("position");
        drop(store);
        let clean = fs::read(&last).expect("read");

        // One flipped bit in the length, checksum, number and (twice) body.
        for field_byte in [3, 6, 15, 20, frame::FRAME_OVERHEAD + 3] {
            let mut bytes = clean.clone();
            bytes[position as usize + field_byte] ^= 0x01;
            fs::write(&last, &bytes).expect("write");
            let before = snapshot(dir.path());

            let err = Store::open(dir.path(), small_config())
                .err()
                .expect("corruption refuses to open");
            match &err {
                StoreError::Corrupt { number, path, .. } => {
                    assert_eq!(*number, victim, "{err}");
                    assert_eq!(path, &last.display().to_string(), "{err}");
                }
                other => panic!("expected Corrupt, got {other}"),
            }
            let message = err.to_string();
            assert!(
                message.contains(&format!("at byte {position}")),
                "{message}"
            );
            assert!(message.contains("nothing was changed"), "{message}");
            assert_eq!(
                snapshot(dir.path()),
                before,
                "byte {field_byte}: files changed"
            );
        }

        // The same without the (derived) index file: it is not left behind.
        fs::remove_file(last.with_extension("index")).expect("remove index");
        let before = snapshot(dir.path());
        assert!(Store::open(dir.path(), small_config()).is_err());
        assert_eq!(
            snapshot(dir.path()),
            before,
            "files changed without an index"
        );

        // Nothing was lost, so repairing the byte is enough.
        fs::write(&last, &clean).expect("repair");
        let store = Store::open(dir.path(), small_config()).expect("reopen");
        assert_eq!(store.next_number(), count);
        assert_records(&store.read(0, usize::MAX).expect("read"), 0);
        assert!(quarantine_files(dir.path()).is_empty());
    }

    #[test]
    fn flipped_byte_in_the_last_record_is_a_torn_tail() {
        // Nothing follows it, so it cannot be told from a write that did not
        // complete: it is cut, but kept in the quarantine file.
        let dir = tempfile::tempdir().expect("tempdir");
        let (base, last, count) = closed_store(dir.path());
        let store = Store::open(dir.path(), small_config()).expect("open");
        let position = store.active.position_of(count - 1).expect("position");
        drop(store);
        let mut bytes = fs::read(&last).expect("read");
        bytes[position as usize + frame::FRAME_OVERHEAD + 3] ^= 0x01;
        fs::write(&last, &bytes).expect("write");
        let cut = &bytes[position as usize..];
        assert_torn_tail_recovered(dir.path(), base, position, count - 1, cut);
    }

    #[test]
    fn out_of_sequence_offset_is_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path(), small_config()).expect("open");
        fill(&mut store, 3);
        drop(store);
        // A well-formed frame carrying the wrong offset: whole and checksummed,
        // so not the remains of a torn write.
        let last = segment_files(dir.path()).pop().expect("a segment");
        let clean_len = fs::metadata(&last).expect("metadata").len();
        let mut frame = Vec::new();
        frame::encode(&mut frame, 7, &[b"stray"]);
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&last)
            .expect("open");
        file.write_all(&frame).expect("write");
        drop(file);
        let before = snapshot(dir.path());
        let err = Store::open(dir.path(), small_config())
            .err()
            .expect("refuses");
        assert!(
            matches!(err, StoreError::Corrupt { number: 3, .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains(&format!("at byte {clean_len}")),
            "{err}"
        );
        assert_eq!(snapshot(dir.path()), before);
    }

    #[test]
    fn missing_segment_refuses_to_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path(), small_config()).expect("open");
        fill(&mut store, 200);
        drop(store);
        let files = segment_files(dir.path());
        assert!(files.len() > 4, "segments rolled");
        fs::remove_file(&files[2]).expect("remove a segment");
        let before = snapshot(dir.path());
        let err = Store::open(dir.path(), small_config())
            .err()
            .expect("a gap refuses to open");
        match &err {
            StoreError::Corrupt { path, reason, .. } => {
                assert_eq!(path, &files[1].display().to_string(), "{err}");
                let next = files[3].file_name().expect("name").to_string_lossy();
                assert!(reason.contains(&*next), "{err}");
            }
            other => panic!("expected Corrupt, got {other}"),
        }
        assert_eq!(snapshot(dir.path()), before);
    }

    #[test]
    fn bad_frame_in_a_sealed_segment_refuses_to_open_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path(), small_config()).expect("open");
        fill(&mut store, 200);
        drop(store);
        let files = segment_files(dir.path());
        assert!(files.len() > 4, "segments rolled");
        let sealed = &files[1];
        let clean = fs::read(sealed).expect("read");
        let refused = |at: u64| {
            let before = snapshot(dir.path());
            let err = Store::open(dir.path(), small_config())
                .err()
                .expect("refuses");
            match &err {
                StoreError::Corrupt {
                    path,
                    position,
                    reason,
                    ..
                } => {
                    assert_eq!(path, &sealed.display().to_string(), "{err}");
                    assert_eq!(*position, at, "{err}");
                    assert!(reason.contains("the segment is sealed"), "{err}");
                    assert!(reason.contains("nothing was changed on disk"), "{err}");
                }
                other => panic!("expected Corrupt, got {other}"),
            }
            assert_eq!(snapshot(dir.path()), before, "files changed: {err}");
        };

        // In its last frame, past its last index entry: found by the check of where it ends.
        let last_start = {
            let store = Store::open(dir.path(), small_config()).expect("open");
            let segments = store.reader.shared.segments();
            let next_base = segments[2].base();
            segments[1].position_of(next_base - 1).expect("position")
        };
        let mut bytes = clean.clone();
        let end = bytes.len();
        bytes[end - 3] ^= 0x01;
        fs::write(sealed, &bytes).expect("write");
        refused(last_start);

        // Anywhere, once the indexes are lost: found by the scan that rebuilds them, which then
        // neither writes them nor leaves new index files behind.
        let mut bytes = clean.clone();
        bytes[frame::FRAME_OVERHEAD + 2] ^= 0x01;
        fs::write(sealed, &bytes).expect("write");
        for file in &files {
            fs::remove_file(file.with_extension("index")).expect("remove index");
        }
        refused(0);

        // Repaired, it opens with every record, and the indexes are back.
        fs::write(sealed, &clean).expect("repair");
        let store = Store::open(dir.path(), small_config()).expect("reopen");
        assert_records(&store.read(0, usize::MAX).expect("read"), 0);
        assert!(files.iter().all(|f| f.with_extension("index").exists()));
    }

    #[test]
    fn truncate_from_across_segment_boundary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path(), small_config()).expect("open");
        fill(&mut store, 200);
        let segments_before = segment_files(dir.path()).len();
        // Cut in the middle of an early segment, dropping several whole ones.
        store.truncate_from(45).expect("truncate");
        assert_eq!(store.next_number(), 45);
        assert!(segment_files(dir.path()).len() < segments_before);
        assert_records(&store.read(0, usize::MAX).expect("read"), 0);
        assert_eq!(store.read(0, usize::MAX).expect("read").len(), 45);
        assert!(store.read(46, 100).is_err());

        fill(&mut store, 100);
        let records = store.read(0, usize::MAX).expect("read");
        assert_eq!(records.len(), 145);
        assert_records(&records, 0);

        // Cutting exactly at a segment's base keeps no stray records.
        let base = store.reader.shared.segments()[2].base();
        store.truncate_from(base).expect("truncate at base");
        fill(&mut store, 3);
        assert_records(&store.read(0, usize::MAX).expect("read"), 0);
        assert_eq!(store.next_number(), base + 3);

        drop(store);
        let store = Store::open(dir.path(), small_config()).expect("reopen");
        assert_eq!(store.next_number(), base + 3);
        assert_records(&store.read(0, usize::MAX).expect("read"), 0);
    }

    #[test]
    fn truncate_everything_and_bounds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path(), small_config()).expect("open");
        fill(&mut store, 80);
        assert!(store.truncate_from(81).is_err());
        store.truncate_from(80).expect("no-op");
        store.truncate_from(0).expect("truncate all");
        assert_eq!(store.next_number(), 0);
        assert_eq!(segment_files(dir.path()).len(), 1);
        fill(&mut store, 2);
        assert_records(&store.read(0, usize::MAX).expect("read"), 0);
    }

    #[test]
    fn readers_on_other_threads_see_consistent_prefixes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path(), small_config()).expect("open");
        let reader = store.reader();
        let handle = std::thread::spawn(move || {
            let mut seen = 0;
            while seen < 500 {
                let records = reader.read(seen, 512).expect("concurrent read");
                assert_records(&records, seen);
                seen += records.len() as u64;
            }
        });
        for offset in 0..500 {
            store.append(offset, &[&payload(offset)]).expect("append");
        }
        handle.join().expect("reader thread");
    }
}
