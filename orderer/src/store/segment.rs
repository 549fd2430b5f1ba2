//! One segment of a store: a data file of frames, its sparse index, and the scan that reads it
//! back (what a bad frame found at open is, torn tail or damage, is decided in `recovery`).
//!
//! Files are named after the segment's base number (the number of its first entry), zero-padded
//! to 20 digits so that names sort like numbers: `00000000000000001234.log` and
//! `00000000000000001234.index` (with the store's prefix and suffixes).
//!
//! The index holds an entry roughly every `index_interval_bytes` of data: each entry is
//! `[relative number u32 BE][file position u32 BE]`, where the relative number is the entry's
//! number minus the base. Finding an entry is a binary search of the (in-memory) index followed
//! by a short forward scan. The index is a derived cache: the active segment's index is rebuilt
//! on recovery, and a sealed segment's is rebuilt if it is missing or malformed.
//!
//! Concurrency: one writer (the owner of the `Store`) appends and truncates; any number of
//! readers read through an `Arc<Segment>`. Reads use positional I/O (`read_at`), so they share
//! no file cursor with the writer, and they never look past `size`, which is only advanced after
//! the bytes below it are written.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use bytes::Bytes;

use super::frame::{self, Entry, LENGTH_FIELD_LEN};
use super::{Names, StoreError};

const INDEX_ENTRY_LEN: usize = 8;
/// Read size when scanning a whole segment (recovery, index rebuilds, seeks).
const SCAN_CHUNK: usize = 1 << 20;
/// Bounds on the read size used to serve a `read`, which otherwise follows the caller's byte
/// budget.
const MIN_READ_CHUNK: usize = 16 << 10;
const MAX_READ_CHUNK: usize = 4 << 20;

impl Names {
    /// Name of the data file of the segment starting at `base`.
    pub fn data_file(&self, base: u64) -> String {
        format!("{}{base:020}{}", self.prefix, self.data_suffix)
    }

    fn index_file(&self, base: u64) -> String {
        format!("{}{base:020}{}", self.prefix, self.index_suffix)
    }

    /// Name of the file that keeps the torn tail cut off the segment starting at `base`, from
    /// byte `position` on: `00000000000000001234.log.torn-5678`. (If that name is taken, `.1`,
    /// `.2`, ... is appended.) The store ignores these files; they are there for an operator to
    /// inspect or delete.
    pub fn quarantine_file(&self, base: u64, position: u64) -> String {
        format!("{}.torn-{position}", self.data_file(base))
    }

    /// The base number encoded in a data file name, if `name` is one.
    pub(super) fn parse_data_file(&self, name: &str) -> Option<u64> {
        let digits = name
            .strip_prefix(self.prefix)?
            .strip_suffix(self.data_suffix)?;
        if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }
}

pub(super) use crate::store::durable::sync_dir;
pub(super) use recovery::sealed_damage;

mod recovery;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IndexEntry {
    relative: u32,
    position: u32,
}

impl IndexEntry {
    fn encode(self) -> [u8; INDEX_ENTRY_LEN] {
        let mut out = [0; INDEX_ENTRY_LEN];
        out[..4].copy_from_slice(&self.relative.to_be_bytes());
        out[4..].copy_from_slice(&self.position.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> IndexEntry {
        IndexEntry {
            relative: u32::from_be_bytes(frame::array(&bytes[..4])),
            position: u32::from_be_bytes(frame::array(&bytes[4..8])),
        }
    }
}

/// Whether an entry starting at `position` gets an index entry, given the
/// position of the last indexed entry (the segment start counts as indexed).
fn needs_index_entry(position: u64, last_indexed: u64, interval: u32) -> bool {
    position > 0 && position - last_indexed >= u64::from(interval)
}

/// Where a read stopped within one segment.
pub(super) struct SegmentRead {
    /// The number the next entry after those returned would have.
    pub next_number: u64,
    /// True if the byte budget stopped the read (the caller must not go on
    /// to the next segment, or it would skip an entry).
    pub budget_exhausted: bool,
}

/// What a full scan of a segment found.
struct Scan {
    entries: Vec<IndexEntry>,
    count: u64,
    /// Position and description of the first torn or corrupt frame.
    bad: Option<(u64, String)>,
}

pub(super) struct Segment {
    names: Names,
    base: u64,
    data_path: PathBuf,
    index_path: PathBuf,
    data: File,
    index_file: File,
    /// Bytes of `data` holding complete frames. Stored with `Release` only
    /// after those bytes are written, so a reader loading it with `Acquire`
    /// never sees a partial frame.
    size: AtomicU64,
    index: RwLock<Vec<IndexEntry>>,
    /// The index file did not exist before this segment was opened (opening
    /// creates it): a refusal removes it again, to leave the directory as it
    /// found it.
    index_created: bool,
}

impl Segment {
    /// Creates an empty segment, replacing any leftover files of that name
    /// (they can only be the remains of a truncated-away segment).
    pub(super) fn create(dir: &Path, names: Names, base: u64) -> io::Result<Segment> {
        let data_path = dir.join(names.data_file(base));
        let index_path = dir.join(names.index_file(base));
        let open = |path: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
        };
        Ok(Segment {
            names,
            base,
            data: open(&data_path)?,
            index_file: open(&index_path)?,
            data_path,
            index_path,
            size: AtomicU64::new(0),
            index: RwLock::new(Vec::new()),
            index_created: false,
        })
    }

    /// Opens an existing segment. Its index is not loaded yet: call
    /// [`Segment::open_sealed`] or [`Segment::open_active`].
    fn open(dir: &Path, names: Names, base: u64) -> io::Result<Segment> {
        let data_path = dir.join(names.data_file(base));
        let index_path = dir.join(names.index_file(base));
        let index_created = !index_path.exists();
        let data = OpenOptions::new().read(true).write(true).open(&data_path)?;
        let index_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&index_path)?;
        let size = data.metadata()?.len();
        Ok(Segment {
            names,
            base,
            data_path,
            index_path,
            data,
            index_file,
            size: AtomicU64::new(size),
            index: RwLock::new(Vec::new()),
            index_created,
        })
    }

    /// Opens a sealed segment (one that another follows), trusting its
    /// frames. Its index is loaded from disk, or rebuilt by a scan if the
    /// file is missing or malformed (the `bool` says so: the caller writes it
    /// with [`Self::write_rebuilt_index`] once the whole open succeeded); a
    /// bad frame found by that scan cannot be a torn write (the segment was
    /// fsynced before the next was created), so it fails the open and no
    /// file is changed.
    pub(super) fn open_sealed(
        dir: &Path,
        names: Names,
        base: u64,
        interval: u32,
    ) -> Result<(Self, bool), StoreError> {
        let segment = Segment::open(dir, names, base)?;
        let parsed = if segment.index_created {
            Err("the index file is missing".to_string())
        } else {
            parse_index(&fs::read(&segment.index_path)?, segment.size())
        };
        match parsed {
            Ok(entries) => {
                *segment.index_mut() = entries;
                Ok((segment, false))
            }
            Err(reason) => {
                let scan = segment.scan(interval)?;
                if let Some((position, bad)) = scan.bad {
                    return Err(segment.refuse(
                        base + scan.count,
                        position,
                        format!("{bad}; {}", sealed_damage()),
                    ));
                }
                tracing::warn!(
                    path = %segment.index_path.display(),
                    %reason,
                    "rebuilding a malformed segment index"
                );
                *segment.index_mut() = scan.entries;
                Ok((segment, true))
            }
        }
    }

    /// Writes and syncs the index rebuilt by [`Self::open_sealed`].
    pub(super) fn write_rebuilt_index(&self) -> io::Result<()> {
        let entries = self.index().clone();
        self.write_index(&entries)?;
        self.index_file.sync_data()
    }

    pub(super) fn base(&self) -> u64 {
        self.base
    }

    /// Bytes of complete frames in the data file.
    pub(super) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// What one entry is called in messages.
    pub(super) fn noun(&self) -> &'static str {
        self.names.noun
    }

    /// Appends one encoded frame whose entry is `relative` past the
    /// base. The caller guarantees the frame starts below 4 GiB.
    pub(super) fn append(&self, frame: &[u8], relative: u32, interval: u32) -> io::Result<()> {
        let position = self.size();
        self.data.write_all_at(frame, position)?;
        let last_indexed = self.index().last().map_or(0, |e| u64::from(e.position));
        if needs_index_entry(position, last_indexed, interval) {
            let entry = IndexEntry {
                relative,
                position: u32::try_from(position).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "segment position past 4 GiB")
                })?,
            };
            let mut index = self.index_mut();
            let at = (index.len() * INDEX_ENTRY_LEN) as u64;
            self.index_file.write_all_at(&entry.encode(), at)?;
            index.push(entry);
        }
        self.size
            .store(position + frame.len() as u64, Ordering::Release);
        Ok(())
    }

    /// Flushes the data file (and optionally the index) to stable storage.
    pub(super) fn sync(&self, include_index: bool) -> io::Result<()> {
        self.data.sync_data()?;
        if include_index {
            self.index_file.sync_data()?;
        }
        Ok(())
    }

    /// Cuts the segment so it ends at byte `position` (a frame boundary).
    pub(super) fn truncate_to(&self, position: u64) -> io::Result<()> {
        // Shrink the readable size first so readers stop before the cut.
        self.size.store(position, Ordering::Release);
        let mut index = self.index_mut();
        index.retain(|e| u64::from(e.position) < position);
        self.index_file
            .set_len((index.len() * INDEX_ENTRY_LEN) as u64)?;
        drop(index);
        self.data.set_len(position)
    }

    /// Removes both files. Readers holding the segment keep their open
    /// handles, which stay readable on Unix.
    pub(super) fn delete(&self) -> io::Result<()> {
        fs::remove_file(&self.data_path)?;
        match fs::remove_file(&self.index_path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Byte position where the entry `number` starts, or the segment's end
    /// if `number` is one past its last entry.
    pub(super) fn position_of(&self, number: u64) -> Result<u64, StoreError> {
        let (position, mut expected) = self.seek(number);
        let mut cursor = Cursor::new(self, position, self.size(), SCAN_CHUNK);
        while expected < number {
            let frame_start = cursor.position;
            match cursor.next(expected) {
                Ok(Some(_)) => expected += 1,
                Ok(None) => {
                    return Err(self.corrupt(
                        expected,
                        cursor.position,
                        format!("the segment ends before {} {number}", self.names.noun),
                    ))
                }
                Err(e) => return Err(self.scan_error(e, expected, frame_start)),
            }
        }
        Ok(cursor.position)
    }

    /// The number one past the segment's last entry, found by reading
    /// forward from the last index entry (a short scan).
    pub(super) fn end_number(&self) -> Result<u64, StoreError> {
        let (position, mut expected) = self.seek(u64::MAX);
        let mut cursor = Cursor::new(self, position, self.size(), SCAN_CHUNK);
        loop {
            let frame_start = cursor.position;
            match cursor.next(expected) {
                Ok(Some(_)) => expected += 1,
                Ok(None) => return Ok(expected),
                Err(e) => return Err(self.scan_error(e, expected, frame_start)),
            }
        }
    }

    /// Appends to `out` this segment's entries in `from..end`, stopping once
    /// `*used` (encoded bytes returned so far) would pass `max_bytes`; the
    /// first entry of a read is always returned whatever its size.
    pub(super) fn read(
        &self,
        from: u64,
        end: u64,
        max_bytes: usize,
        used: &mut usize,
        out: &mut Vec<Entry>,
    ) -> Result<SegmentRead, StoreError> {
        let from = from.max(self.base);
        let (position, mut expected) = self.seek(from);
        let chunk = max_bytes
            .saturating_sub(*used)
            .clamp(MIN_READ_CHUNK, MAX_READ_CHUNK);
        let mut cursor = Cursor::new(self, position, self.size(), chunk);
        while expected < end {
            if !out.is_empty() && *used >= max_bytes {
                return Ok(SegmentRead {
                    next_number: expected,
                    budget_exhausted: true,
                });
            }
            let frame_start = cursor.position;
            let (entry, frame_len) = match cursor.next(expected) {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(e) => return Err(self.scan_error(e, expected, frame_start)),
            };
            if entry.number < from {
                expected += 1;
                continue;
            }
            if !out.is_empty() && *used + frame_len > max_bytes {
                return Ok(SegmentRead {
                    next_number: expected,
                    budget_exhausted: true,
                });
            }
            expected += 1;
            *used += frame_len;
            out.push(entry);
        }
        Ok(SegmentRead {
            next_number: expected,
            budget_exhausted: false,
        })
    }

    /// The indexed position at or before `number`, with the number of the
    /// entry found there.
    fn seek(&self, number: u64) -> (u64, u64) {
        let relative = number.saturating_sub(self.base);
        let index = self.index();
        let i = index.partition_point(|e| u64::from(e.relative) <= relative);
        match i.checked_sub(1).map(|i| index[i]) {
            Some(entry) => (
                u64::from(entry.position),
                self.base + u64::from(entry.relative),
            ),
            None => (0, self.base),
        }
    }

    /// Reads every frame from the start, building a fresh index.
    fn scan(&self, interval: u32) -> Result<Scan, StoreError> {
        let mut cursor = Cursor::new(self, 0, self.size(), SCAN_CHUNK);
        let mut scan = Scan {
            entries: Vec::new(),
            count: 0,
            bad: None,
        };
        let mut last_indexed = 0;
        loop {
            let position = cursor.position;
            match cursor.next(self.base + scan.count) {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(scan),
                Err(ScanError::Bad(reason)) => {
                    scan.bad = Some((position, reason));
                    return Ok(scan);
                }
                Err(ScanError::Io(e)) => return Err(e.into()),
            }
            if needs_index_entry(position, last_indexed, interval) {
                match (u32::try_from(scan.count), u32::try_from(position)) {
                    (Ok(relative), Ok(position)) => {
                        scan.entries.push(IndexEntry { relative, position })
                    }
                    _ => {
                        scan.bad = Some((position, "segment exceeds 4 GiB".to_string()));
                        return Ok(scan);
                    }
                }
                last_indexed = position;
            }
            scan.count += 1;
        }
    }

    /// Replaces the index file's contents with `entries`.
    fn write_index(&self, entries: &[IndexEntry]) -> io::Result<()> {
        let bytes: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
        self.index_file.set_len(0)?;
        self.index_file.write_all_at(&bytes, 0)
    }

    // A panic while holding the index lock cannot leave the vector half
    // updated (entries are only pushed or retained), so poisoning is ignored.
    fn index(&self) -> std::sync::RwLockReadGuard<'_, Vec<IndexEntry>> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn index_mut(&self) -> std::sync::RwLockWriteGuard<'_, Vec<IndexEntry>> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn corrupt(&self, number: u64, position: u64, reason: String) -> StoreError {
        StoreError::Corrupt {
            number,
            path: self.data_path.display().to_string(),
            position,
            reason,
        }
    }

    fn scan_error(&self, error: ScanError, number: u64, position: u64) -> StoreError {
        match error {
            ScanError::Io(e) => e.into(),
            ScanError::Bad(reason) => self.corrupt(number, position, reason),
        }
    }
}

/// Checks an index file read from disk against the data file it indexes.
fn parse_index(bytes: &[u8], log_size: u64) -> Result<Vec<IndexEntry>, String> {
    let chunks = bytes.chunks_exact(INDEX_ENTRY_LEN);
    if !chunks.remainder().is_empty() {
        return Err(format!(
            "length {} is not a multiple of {INDEX_ENTRY_LEN}",
            bytes.len()
        ));
    }
    let entries: Vec<IndexEntry> = chunks.map(IndexEntry::decode).collect();
    let increasing = entries
        .windows(2)
        .all(|w| w[0].relative < w[1].relative && w[0].position < w[1].position);
    if !increasing {
        return Err("entries are not strictly increasing".to_string());
    }
    if entries
        .last()
        .is_some_and(|e| u64::from(e.position) >= log_size)
    {
        return Err("an entry points past the end of the data file".to_string());
    }
    Ok(entries)
}

enum ScanError {
    Io(io::Error),
    /// A torn, corrupt or out-of-sequence frame.
    Bad(String),
}

/// Walks the frames of a segment from a known frame boundary, reading the
/// file in chunks so that small entries cost no syscall each.
struct Cursor<'a> {
    segment: &'a Segment,
    /// File position of the next frame.
    position: u64,
    /// Bytes of the file that may be read.
    limit: u64,
    buf: Bytes,
    /// File position of `buf[0]`.
    buf_start: u64,
    chunk: usize,
}

impl<'a> Cursor<'a> {
    fn new(segment: &'a Segment, position: u64, limit: u64, chunk: usize) -> Cursor<'a> {
        Cursor {
            segment,
            position,
            limit,
            buf: Bytes::new(),
            buf_start: position,
            chunk,
        }
    }

    /// The next entry (with its frame length), which must carry number
    /// `expected`; `None` at the end of the readable bytes.
    fn next(&mut self, expected: u64) -> Result<Option<(Entry, usize)>, ScanError> {
        if self.position >= self.limit {
            return Ok(None);
        }
        let remaining = self.limit - self.position;
        if remaining < LENGTH_FIELD_LEN as u64 {
            return Err(ScanError::Bad(format!(
                "{remaining} trailing bytes are too few for a frame"
            )));
        }
        let Some(prefix) = self.fill(LENGTH_FIELD_LEN)? else {
            return Ok(None);
        };
        let frame_len = frame::frame_len(frame::array(&prefix)).map_err(ScanError::Bad)?;
        if frame_len as u64 > remaining {
            return Err(ScanError::Bad(format!(
                "frame of {frame_len} bytes runs past the end of the segment ({remaining} bytes left)"
            )));
        }
        let Some(frame) = self.fill(frame_len)? else {
            return Ok(None);
        };
        let entry = frame::decode(frame).map_err(ScanError::Bad)?;
        if entry.number != expected {
            let noun = self.segment.names.noun;
            return Err(ScanError::Bad(format!(
                "the frame holds {noun} {} where {noun} {expected} was due",
                entry.number
            )));
        }
        self.position += frame_len as u64;
        Ok(Some((entry, frame_len)))
    }

    /// The `n` bytes at `position` (the caller checked they are below
    /// `limit`), reading from the file if the buffer does not hold them.
    /// `None` if the file was truncated concurrently under the reader.
    fn fill(&mut self, n: usize) -> Result<Option<Bytes>, ScanError> {
        let start = (self.position - self.buf_start) as usize;
        if start + n <= self.buf.len() {
            return Ok(Some(self.buf.slice(start..start + n)));
        }
        let available = usize::try_from(self.limit - self.position).unwrap_or(usize::MAX);
        let mut data = vec![0; n.max(self.chunk).min(available)];
        match self.segment.data.read_exact_at(&mut data, self.position) {
            Ok(()) => {}
            Err(e)
                if e.kind() == io::ErrorKind::UnexpectedEof
                    && self.segment.size() < self.position + n as u64 =>
            {
                return Ok(None);
            }
            Err(e) => return Err(ScanError::Io(e)),
        }
        self.buf = Bytes::from(data);
        self.buf_start = self.position;
        Ok(Some(self.buf.slice(..n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FRAME_OVERHEAD;

    const NAMES: Names = Names {
        prefix: "",
        data_suffix: ".log",
        index_suffix: ".index",
        noun: "record",
    };

    fn append(segment: &Segment, offset: u64, payload: &[u8], interval: u32) {
        let mut frame = Vec::new();
        frame::encode(&mut frame, offset, &[payload]);
        let relative = u32::try_from(offset - segment.base()).expect("small");
        segment.append(&frame, relative, interval).expect("append");
    }

    fn read_all(segment: &Segment, from: u64) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut used = 0;
        segment
            .read(from, u64::MAX, usize::MAX, &mut used, &mut out)
            .expect("read");
        out
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(NAMES.data_file(1234), "00000000000000001234.log");
        assert_eq!(
            NAMES.parse_data_file("00000000000000001234.log"),
            Some(1234)
        );
        assert_eq!(NAMES.parse_data_file("1234.log"), None);
        assert_eq!(NAMES.parse_data_file("00000000000000001234.index"), None);
        let blocks = Names {
            prefix: "blocks_",
            data_suffix: ".dat",
            ..NAMES
        };
        assert_eq!(blocks.data_file(7), "blocks_00000000000000000007.dat");
        assert_eq!(blocks.parse_data_file(&blocks.data_file(7)), Some(7));
        assert_eq!(blocks.parse_data_file("00000000000000000007.dat"), None);
    }

    #[test]
    fn sparse_index_finds_every_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = Segment::create(dir.path(), NAMES, 100).expect("create");
        for i in 0..200u64 {
            append(&segment, 100 + i, &[i as u8; 50], 256);
        }
        let entries = segment.index().len();
        assert!(entries > 10 && entries < 100, "{entries} index entries");
        for i in 0..200u64 {
            let records = read_all(&segment, 100 + i);
            assert_eq!(records.len(), (200 - i) as usize);
            assert_eq!(records[0].number, 100 + i);
            assert_eq!(records[0].body[..], [i as u8; 50]);
        }
        assert_eq!(segment.position_of(300).expect("end"), segment.size());
    }

    #[test]
    fn reopened_sealed_segment_uses_or_rebuilds_its_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = Segment::create(dir.path(), NAMES, 0).expect("create");
        for i in 0..100u64 {
            append(&segment, i, b"0123456789", 100);
        }
        let expected = segment.index().clone();
        drop(segment);

        let (reopened, rebuilt) = Segment::open_sealed(dir.path(), NAMES, 0, 100).expect("open");
        assert!(!rebuilt);
        assert_eq!(*reopened.index(), expected);
        drop(reopened);

        // A malformed index (odd length) is rebuilt from the log.
        let index_path = dir.path().join(NAMES.index_file(0));
        fs::write(&index_path, [1, 2, 3]).expect("write");
        let (reopened, rebuilt) = Segment::open_sealed(dir.path(), NAMES, 0, 100).expect("open");
        assert!(rebuilt);
        assert_eq!(*reopened.index(), expected);
        reopened.write_rebuilt_index().expect("write index");
        assert_eq!(
            fs::read(&index_path).expect("read").len(),
            expected.len() * 8
        );
        assert_eq!(read_all(&reopened, 57)[0].number, 57);
    }

    #[test]
    fn truncate_drops_records_and_index_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = Segment::create(dir.path(), NAMES, 0).expect("create");
        for i in 0..50u64 {
            append(&segment, i, b"abcdefghij", 64);
        }
        let position = segment.position_of(20).expect("position");
        segment.truncate_to(position).expect("truncate");
        assert_eq!(read_all(&segment, 0).len(), 20);
        assert!(segment.index().iter().all(|e| e.relative < 20));
        append(&segment, 20, b"new", 64);
        let records = read_all(&segment, 19);
        assert_eq!(records.len(), 2);
        assert_eq!(&records[1].body[..], b"new");
    }

    #[test]
    fn sealed_corruption_is_reported_not_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = Segment::create(dir.path(), NAMES, 0).expect("create");
        for i in 0..10u64 {
            append(&segment, i, b"abcdefghij", 4096);
        }
        let position = segment.position_of(5).expect("position");
        // Flip a payload byte of record 5.
        segment
            .data
            .write_all_at(&[0xff], position + FRAME_OVERHEAD as u64)
            .expect("write");
        let mut out = Vec::new();
        let mut used = 0;
        let err = segment
            .read(0, u64::MAX, usize::MAX, &mut used, &mut out)
            .err()
            .expect("corruption detected");
        assert!(
            matches!(err, StoreError::Corrupt { number: 5, .. }),
            "{err}"
        );
    }
}
