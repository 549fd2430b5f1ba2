//! One segment of a partition: a `.log` file of record frames and its sparse
//! `.index`.
//!
//! Files are named after the segment's base offset (the offset of its first
//! record), zero-padded to 20 digits so that names sort like offsets:
//! `00000000000000001234.log` and `00000000000000001234.index`.
//!
//! The index holds an entry roughly every `index_interval_bytes` of log: each
//! entry is `[relative offset u32 BE][file position u32 BE]`, where the
//! relative offset is the record's offset minus the base offset. Finding a
//! record is a binary search of the (in-memory) index followed by a short
//! forward scan. The index is a derived cache: the active segment's index is
//! rebuilt on recovery, and a sealed segment's is rebuilt if it is missing or
//! malformed.
//!
//! Concurrency: one writer (the owner of the `SegmentStore`) appends and
//! truncates; any number of readers read through an `Arc<Segment>`. Reads use
//! positional I/O (`read_at`), so they share no file cursor with the writer,
//! and they never look past `size`, which is only advanced after the bytes
//! below it are written.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use bytes::Bytes;

use super::record::{self, Record, FRAME_OVERHEAD, LENGTH_FIELD_LEN};
use super::LogError;
use crate::durable;

const INDEX_ENTRY_LEN: usize = 8;
/// Read size when scanning a whole segment (recovery, index rebuilds, seeks).
const SCAN_CHUNK: usize = 1 << 20;
/// Bounds on the read size used to serve a `read`, which otherwise follows
/// the caller's byte budget.
const MIN_READ_CHUNK: usize = 16 << 10;
const MAX_READ_CHUNK: usize = 4 << 20;

/// Name of the log file of the segment starting at `base_offset`.
pub(super) fn log_file_name(base_offset: u64) -> String {
    format!("{base_offset:020}.log")
}

fn index_file_name(base_offset: u64) -> String {
    format!("{base_offset:020}.index")
}

/// Name of the file that keeps the torn tail cut off the segment starting at
/// `base_offset`, from byte `position` on: `00000000000000001234.log.torn-5678`.
/// (If that name is taken, `.1`, `.2`, ... is appended.) The store ignores
/// these files; they are there for an operator to inspect or delete.
pub(super) fn quarantine_name(base_offset: u64, position: u64) -> String {
    format!("{}.torn-{position}", log_file_name(base_offset))
}

pub(super) use crate::durable::sync_dir;

/// The base offset encoded in a segment log file name, if `name` is one.
pub(super) fn parse_log_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IndexEntry {
    relative_offset: u32,
    position: u32,
}

impl IndexEntry {
    fn encode(self) -> [u8; INDEX_ENTRY_LEN] {
        let mut out = [0; INDEX_ENTRY_LEN];
        out[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..].copy_from_slice(&self.position.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> IndexEntry {
        IndexEntry {
            relative_offset: u32::from_be_bytes(record::array(&bytes[..4])),
            position: u32::from_be_bytes(record::array(&bytes[4..8])),
        }
    }
}

/// Whether a record starting at `position` gets an index entry, given the
/// position of the last indexed record (the segment start counts as indexed).
fn needs_index_entry(position: u64, last_indexed: u64, interval: u32) -> bool {
    position > 0 && position - last_indexed >= u64::from(interval)
}

/// Where a read stopped within one segment.
pub(super) struct SegmentRead {
    /// The offset the next record after those returned would have.
    pub next_offset: u64,
    /// True if the byte budget stopped the read (the caller must not go on
    /// to the next segment, or it would skip a record).
    pub budget_exhausted: bool,
}

/// A whole frame with a matching checksum found by [`Segment::find_frame`].
struct FoundFrame {
    position: u64,
    offset: u64,
}

/// What a full scan of a segment found.
struct Scan {
    entries: Vec<IndexEntry>,
    records: u64,
    /// Position and description of the first torn or corrupt frame.
    bad: Option<(u64, String)>,
}

pub(super) struct Segment {
    base_offset: u64,
    log_path: PathBuf,
    index_path: PathBuf,
    log: File,
    index_file: File,
    /// Bytes of `log` holding complete records. Stored with `Release` only
    /// after those bytes are written, so a reader loading it with `Acquire`
    /// never sees a partial frame.
    size: AtomicU64,
    index: RwLock<Vec<IndexEntry>>,
}

impl Segment {
    /// Creates an empty segment, replacing any leftover files of that name
    /// (they can only be the remains of a truncated-away segment).
    pub(super) fn create(dir: &Path, base_offset: u64) -> io::Result<Segment> {
        let log_path = dir.join(log_file_name(base_offset));
        let index_path = dir.join(index_file_name(base_offset));
        let open = |path: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
        };
        Ok(Segment {
            base_offset,
            log: open(&log_path)?,
            index_file: open(&index_path)?,
            log_path,
            index_path,
            size: AtomicU64::new(0),
            index: RwLock::new(Vec::new()),
        })
    }

    /// Opens an existing segment. Its index is not loaded yet: call
    /// [`Segment::load_index`] (sealed) or [`Segment::recover`] (active).
    fn open(dir: &Path, base_offset: u64) -> io::Result<Segment> {
        let log_path = dir.join(log_file_name(base_offset));
        let index_path = dir.join(index_file_name(base_offset));
        let log = OpenOptions::new().read(true).write(true).open(&log_path)?;
        let index_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&index_path)?;
        let size = log.metadata()?.len();
        Ok(Segment {
            base_offset,
            log_path,
            index_path,
            log,
            index_file,
            size: AtomicU64::new(size),
            index: RwLock::new(Vec::new()),
        })
    }

    /// Opens a sealed segment, trusting its records. Its index is loaded from
    /// disk, or rebuilt by a scan if the file is malformed.
    pub(super) fn open_sealed(
        dir: &Path,
        base_offset: u64,
        interval: u32,
    ) -> Result<Self, LogError> {
        let had_index = dir.join(index_file_name(base_offset)).exists();
        let segment = Segment::open(dir, base_offset)?;
        let parsed = if had_index {
            parse_index(&fs::read(&segment.index_path)?, segment.size())
        } else {
            Err("the index file is missing".to_string())
        };
        match parsed {
            Ok(entries) => *segment.index_mut() = entries,
            Err(reason) => {
                tracing::warn!(
                    path = %segment.index_path.display(),
                    %reason,
                    "rebuilding malformed segment index"
                );
                let scan = segment.scan(interval)?;
                if let Some((position, reason)) = &scan.bad {
                    // Sealed records are not cut at open; reads that reach
                    // this point will report the corruption.
                    tracing::warn!(
                        path = %segment.log_path.display(),
                        position,
                        %reason,
                        "corrupt record in sealed segment"
                    );
                }
                segment.write_index(&scan.entries)?;
                segment.index_file.sync_data()?;
                *segment.index_mut() = scan.entries;
            }
        }
        Ok(segment)
    }

    /// Opens the active (last) segment: scans every record and rewrites the
    /// index from the scan. Returns the segment and the number of records it
    /// holds.
    ///
    /// A bad frame is only cut off if it is a torn tail (the remains of a
    /// last write that did not complete): nothing whole and valid follows it.
    /// The cut bytes are first kept in a quarantine file beside the segment
    /// (see [`quarantine_name`]). A bad frame followed by a valid one is
    /// damage to acknowledged data: the open fails with
    /// [`LogError::Corrupt`] and no file is changed.
    pub(super) fn open_active(
        dir: &Path,
        base_offset: u64,
        interval: u32,
    ) -> Result<(Self, u64), LogError> {
        // Opening creates a missing index file; a refusal removes it again,
        // so that it leaves the directory as it found it.
        let had_index = dir.join(index_file_name(base_offset)).exists();
        let segment = Segment::open(dir, base_offset)?;
        let scan = segment.scan(interval)?;
        if let Some((position, reason)) = &scan.bad {
            let position = *position;
            let offset = base_offset + scan.records;
            if let Some(found) = segment.find_frame(position, offset)? {
                let after = if found.position == position {
                    "the frame there is whole and its checksum matches".to_string()
                } else {
                    format!(
                        "a whole, valid record (offset {}) follows at byte {}",
                        found.offset, found.position
                    )
                };
                if !had_index {
                    fs::remove_file(&segment.index_path)?;
                }
                return Err(segment.corrupt(
                    offset,
                    format!(
                        "{reason} (at byte {position}); {after}, so this is damage, not a torn \
                         write; nothing was changed on disk"
                    ),
                ));
            }
            let cut_bytes = segment.size() - position;
            let quarantine = segment.quarantine_tail(dir, position)?;
            tracing::warn!(
                path = %segment.log_path.display(),
                offset,
                position,
                cut_bytes,
                quarantine = %quarantine.display(),
                %reason,
                "cutting the torn tail of the partition log; the cut bytes are kept in the \
                 quarantine file"
            );
            segment.log.set_len(position)?;
            segment.size.store(position, Ordering::Release);
        }
        // What survived may have been written but never fsynced before a
        // process crash; it is about to be served as committed.
        segment.log.sync_data()?;
        segment.write_index(&scan.entries)?;
        *segment.index_mut() = scan.entries;
        Ok((segment, scan.records))
    }

    /// The first whole frame with a matching checksum at or after byte
    /// `from`, where a bad frame for record `expected` was found.
    ///
    /// A frame at `from` itself counts whatever offset it carries (its
    /// checksum matched, so it is not a torn write). Past `from` the slide
    /// goes byte by byte, and a candidate must carry an offset that a later
    /// record of this segment could have; that cheap check comes before the
    /// checksum, so random bytes are rejected without hashing and the slide
    /// stays about linear in the bytes left.
    fn find_frame(&self, from: u64, expected: u64) -> Result<Option<FoundFrame>, LogError> {
        let size = self.size();
        let overhead = FRAME_OVERHEAD as u64;
        // Every record takes at least `overhead` bytes.
        let plausible = expected..=expected.saturating_add((size - from) / overhead);
        let mut window = from;
        while window + overhead <= size {
            let window_end = (window + SCAN_CHUNK as u64).min(size);
            // Take a header's worth past the window, so every candidate
            // starting inside it has its whole header in `buf`.
            let read_end = (window_end + overhead).min(size);
            let mut buf = vec![0; (read_end - window) as usize];
            self.log.read_exact_at(&mut buf, window)?;
            for i in 0..(window_end - window) as usize {
                let Some(header) = buf.get(i..i + FRAME_OVERHEAD) else {
                    break;
                };
                let position = window + i as u64;
                let Ok(frame_len) = record::frame_len(record::array(&header[..LENGTH_FIELD_LEN]))
                else {
                    continue;
                };
                if position + frame_len as u64 > size {
                    continue;
                }
                let offset = u64::from_be_bytes(record::array(&header[8..16]));
                if position != from && !plausible.contains(&offset) {
                    continue;
                }
                let stored_crc = u32::from_be_bytes(record::array(&header[4..8]));
                if self.crc_of(position + 8, position + frame_len as u64)? == stored_crc {
                    return Ok(Some(FoundFrame { position, offset }));
                }
            }
            window = window_end;
        }
        Ok(None)
    }

    /// CRC32C of the log bytes in `start..end`, read in bounded chunks (a
    /// candidate frame found by [`Self::find_frame`] may announce gigabytes).
    fn crc_of(&self, start: u64, end: u64) -> io::Result<u32> {
        let mut crc = 0;
        let mut at = start;
        let mut buf = vec![0; SCAN_CHUNK.min((end - start) as usize)];
        while at < end {
            let n = SCAN_CHUNK.min((end - at) as usize);
            self.log.read_exact_at(&mut buf[..n], at)?;
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            at += n as u64;
        }
        Ok(crc)
    }

    /// Copies the log bytes from `from` to the end into a new quarantine
    /// file in `dir` and makes it durable, so that cutting them off destroys
    /// nothing. Returns the quarantine file's path.
    fn quarantine_tail(&self, dir: &Path, from: u64) -> io::Result<PathBuf> {
        let name = quarantine_name(self.base_offset, from);
        durable::keep_tail(dir, &name, &self.log, from, self.size())
    }

    pub(super) fn base_offset(&self) -> u64 {
        self.base_offset
    }

    /// Bytes of complete records in the log file.
    pub(super) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub(super) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Appends one encoded frame whose record is `relative_offset` past the
    /// base. The caller guarantees the frame starts below 4 GiB.
    pub(super) fn append(
        &self,
        frame: &[u8],
        relative_offset: u32,
        interval: u32,
    ) -> io::Result<()> {
        let position = self.size();
        self.log.write_all_at(frame, position)?;
        let last_indexed = self.index().last().map_or(0, |e| u64::from(e.position));
        if needs_index_entry(position, last_indexed, interval) {
            let entry = IndexEntry {
                relative_offset,
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

    /// Flushes the log file (and optionally the index) to stable storage.
    pub(super) fn sync(&self, include_index: bool) -> io::Result<()> {
        self.log.sync_data()?;
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
        self.log.set_len(position)
    }

    /// Removes both files. Readers holding the segment keep their open
    /// handles, which stay readable on Unix.
    pub(super) fn delete(&self) -> io::Result<()> {
        fs::remove_file(&self.log_path)?;
        match fs::remove_file(&self.index_path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Byte position where the record `offset` starts, or the segment's end
    /// if `offset` is one past its last record.
    pub(super) fn position_of(&self, offset: u64) -> Result<u64, LogError> {
        let (position, mut expected) = self.seek(offset);
        let mut cursor = Cursor::new(self, position, self.size(), SCAN_CHUNK);
        while expected < offset {
            let frame_start = cursor.position;
            match cursor.next(expected) {
                Ok(Some(_)) => expected += 1,
                Ok(None) => {
                    return Err(
                        self.corrupt(expected, format!("segment ends before offset {offset}"))
                    )
                }
                Err(e) => return Err(self.scan_error(e, expected, frame_start)),
            }
        }
        Ok(cursor.position)
    }

    /// The offset one past the segment's last record, found by reading
    /// forward from the last index entry (a short scan).
    pub(super) fn end_offset(&self) -> Result<u64, LogError> {
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

    /// Appends to `out` this segment's records in `from..end`, stopping once
    /// `*used` (encoded bytes returned so far) would pass `max_bytes`; the
    /// first record of a read is always returned whatever its size.
    pub(super) fn read(
        &self,
        from: u64,
        end: u64,
        max_bytes: usize,
        used: &mut usize,
        out: &mut Vec<Record>,
    ) -> Result<SegmentRead, LogError> {
        let from = from.max(self.base_offset);
        let (position, mut expected) = self.seek(from);
        let chunk = max_bytes
            .saturating_sub(*used)
            .clamp(MIN_READ_CHUNK, MAX_READ_CHUNK);
        let mut cursor = Cursor::new(self, position, self.size(), chunk);
        while expected < end {
            if !out.is_empty() && *used >= max_bytes {
                return Ok(SegmentRead {
                    next_offset: expected,
                    budget_exhausted: true,
                });
            }
            let frame_start = cursor.position;
            let (record, frame_len) = match cursor.next(expected) {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(e) => return Err(self.scan_error(e, expected, frame_start)),
            };
            if record.offset < from {
                expected += 1;
                continue;
            }
            if !out.is_empty() && *used + frame_len > max_bytes {
                return Ok(SegmentRead {
                    next_offset: expected,
                    budget_exhausted: true,
                });
            }
            expected += 1;
            *used += frame_len;
            out.push(record);
        }
        Ok(SegmentRead {
            next_offset: expected,
            budget_exhausted: false,
        })
    }

    /// The indexed position at or before `offset`, with the offset of the
    /// record found there.
    fn seek(&self, offset: u64) -> (u64, u64) {
        let relative = offset.saturating_sub(self.base_offset);
        let index = self.index();
        let i = index.partition_point(|e| u64::from(e.relative_offset) <= relative);
        match i.checked_sub(1).map(|i| index[i]) {
            Some(entry) => (
                u64::from(entry.position),
                self.base_offset + u64::from(entry.relative_offset),
            ),
            None => (0, self.base_offset),
        }
    }

    /// Reads every frame from the start, building a fresh index.
    fn scan(&self, interval: u32) -> Result<Scan, LogError> {
        let mut cursor = Cursor::new(self, 0, self.size(), SCAN_CHUNK);
        let mut scan = Scan {
            entries: Vec::new(),
            records: 0,
            bad: None,
        };
        let mut last_indexed = 0;
        loop {
            let position = cursor.position;
            match cursor.next(self.base_offset + scan.records) {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(scan),
                Err(ScanError::Bad(reason)) => {
                    scan.bad = Some((position, reason));
                    return Ok(scan);
                }
                Err(ScanError::Io(e)) => return Err(e.into()),
            }
            if needs_index_entry(position, last_indexed, interval) {
                match (u32::try_from(scan.records), u32::try_from(position)) {
                    (Ok(relative_offset), Ok(position)) => scan.entries.push(IndexEntry {
                        relative_offset,
                        position,
                    }),
                    _ => {
                        scan.bad = Some((position, "segment exceeds 4 GiB".to_string()));
                        return Ok(scan);
                    }
                }
                last_indexed = position;
            }
            scan.records += 1;
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

    fn corrupt(&self, offset: u64, reason: String) -> LogError {
        LogError::Corrupt {
            offset,
            path: self.log_path.display().to_string(),
            reason,
        }
    }

    fn scan_error(&self, error: ScanError, offset: u64, position: u64) -> LogError {
        match error {
            ScanError::Io(e) => e.into(),
            ScanError::Bad(reason) => {
                self.corrupt(offset, format!("{reason} (at byte {position})"))
            }
        }
    }
}

/// Checks an index file read from disk against the log it indexes.
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
        .all(|w| w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position);
    if !increasing {
        return Err("entries are not strictly increasing".to_string());
    }
    if entries
        .last()
        .is_some_and(|e| u64::from(e.position) >= log_size)
    {
        return Err("an entry points past the end of the log".to_string());
    }
    Ok(entries)
}

enum ScanError {
    Io(io::Error),
    /// A torn, corrupt or out-of-sequence frame.
    Bad(String),
}

/// Walks the frames of a segment from a known frame boundary, reading the
/// file in chunks so that small records cost no syscall each.
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

    /// The next record (with its frame length), which must carry offset
    /// `expected`; `None` at the end of the readable bytes.
    fn next(&mut self, expected: u64) -> Result<Option<(Record, usize)>, ScanError> {
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
        let frame_len = record::frame_len(record::array(&prefix)).map_err(ScanError::Bad)?;
        if frame_len as u64 > remaining {
            return Err(ScanError::Bad(format!(
                "frame of {frame_len} bytes runs past the end of the segment ({remaining} bytes left)"
            )));
        }
        let Some(frame) = self.fill(frame_len)? else {
            return Ok(None);
        };
        let record = record::decode(frame).map_err(ScanError::Bad)?;
        if record.offset != expected {
            return Err(ScanError::Bad(format!(
                "found offset {} where {expected} was expected",
                record.offset
            )));
        }
        self.position += frame_len as u64;
        Ok(Some((record, frame_len)))
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
        match self.segment.log.read_exact_at(&mut data, self.position) {
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

    fn append(segment: &Segment, offset: u64, payload: &[u8], interval: u32) {
        let mut frame = Vec::new();
        record::encode(&mut frame, offset, 0, payload);
        let relative = u32::try_from(offset - segment.base_offset()).expect("small");
        segment.append(&frame, relative, interval).expect("append");
    }

    fn read_all(segment: &Segment, from: u64) -> Vec<Record> {
        let mut out = Vec::new();
        let mut used = 0;
        segment
            .read(from, u64::MAX, usize::MAX, &mut used, &mut out)
            .expect("read");
        out
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(log_file_name(1234), "00000000000000001234.log");
        assert_eq!(parse_log_file_name("00000000000000001234.log"), Some(1234));
        assert_eq!(parse_log_file_name("1234.log"), None);
        assert_eq!(parse_log_file_name("00000000000000001234.index"), None);
    }

    #[test]
    fn sparse_index_finds_every_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = Segment::create(dir.path(), 100).expect("create");
        for i in 0..200u64 {
            append(&segment, 100 + i, &[i as u8; 50], 256);
        }
        let entries = segment.index().len();
        assert!(entries > 10 && entries < 100, "{entries} index entries");
        for i in 0..200u64 {
            let records = read_all(&segment, 100 + i);
            assert_eq!(records.len(), (200 - i) as usize);
            assert_eq!(records[0].offset, 100 + i);
            assert_eq!(records[0].payload[..], [i as u8; 50]);
        }
        assert_eq!(segment.position_of(300).expect("end"), segment.size());
    }

    #[test]
    fn reopened_sealed_segment_uses_or_rebuilds_its_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = Segment::create(dir.path(), 0).expect("create");
        for i in 0..100u64 {
            append(&segment, i, b"0123456789", 100);
        }
        let expected = segment.index().clone();
        drop(segment);

        let reopened = Segment::open_sealed(dir.path(), 0, 100).expect("open");
        assert_eq!(*reopened.index(), expected);
        drop(reopened);

        // A malformed index (odd length) is rebuilt from the log.
        let index_path = dir.path().join(index_file_name(0));
        fs::write(&index_path, [1, 2, 3]).expect("write");
        let reopened = Segment::open_sealed(dir.path(), 0, 100).expect("open");
        assert_eq!(*reopened.index(), expected);
        assert_eq!(read_all(&reopened, 57)[0].offset, 57);
    }

    #[test]
    fn truncate_drops_records_and_index_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = Segment::create(dir.path(), 0).expect("create");
        for i in 0..50u64 {
            append(&segment, i, b"abcdefghij", 64);
        }
        let position = segment.position_of(20).expect("position");
        segment.truncate_to(position).expect("truncate");
        assert_eq!(read_all(&segment, 0).len(), 20);
        assert!(segment.index().iter().all(|e| e.relative_offset < 20));
        append(&segment, 20, b"new", 64);
        let records = read_all(&segment, 19);
        assert_eq!(records.len(), 2);
        assert_eq!(&records[1].payload[..], b"new");
    }

    #[test]
    fn sealed_corruption_is_reported_not_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = Segment::create(dir.path(), 0).expect("create");
        for i in 0..10u64 {
            append(&segment, i, b"abcdefghij", 4096);
        }
        let position = segment.position_of(5).expect("position");
        // Flip a payload byte of record 5.
        segment
            .log
            .write_all_at(&[0xff], position + record::FRAME_OVERHEAD as u64)
            .expect("write");
        let mut out = Vec::new();
        let mut used = 0;
        let err = segment
            .read(0, u64::MAX, usize::MAX, &mut used, &mut out)
            .err()
            .expect("corruption detected");
        assert!(matches!(err, LogError::Corrupt { offset: 5, .. }), "{err}");
    }
}
