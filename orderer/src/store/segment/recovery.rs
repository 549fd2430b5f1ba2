//! The recovery scan's decision about a bad frame: a torn tail (cut off, after its bytes are
//! kept in a quarantine file) or damage (a refusal naming the file and byte, nothing changed).

use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::super::frame::{self, FRAME_OVERHEAD, LENGTH_FIELD_LEN};
use super::super::{Names, StoreError};
use super::{Segment, SCAN_CHUNK};
use crate::store::durable;

/// A whole frame with a matching checksum found by [`Segment::find_frame`].
struct FoundFrame {
    position: u64,
    number: u64,
}

/// Why a bad frame in a sealed segment fails an open.
pub(in crate::store) fn sealed_damage() -> &'static str {
    "the segment is sealed (a later one follows it), so this is damage, not a torn write; \
     nothing was changed on disk"
}

impl Segment {
    /// Opens the active (last) segment: scans every frame and rewrites the
    /// index from the scan. Returns the segment and the number of entries it
    /// holds.
    ///
    /// A bad frame is only cut off if it is a torn tail (the remains of a
    /// last write that did not complete): nothing whole and valid follows it.
    /// The cut bytes are first kept in a quarantine file beside the segment
    /// (see [`Names::quarantine_file`]). A bad frame followed by a valid one
    /// is damage to acknowledged data: the open fails with
    /// [`StoreError::Corrupt`] and no file is changed.
    pub(in crate::store) fn open_active(
        dir: &Path,
        names: Names,
        base: u64,
        interval: u32,
    ) -> Result<(Self, u64), StoreError> {
        let segment = Segment::open(dir, names, base)?;
        let scan = segment.scan(interval)?;
        if let Some((position, reason)) = &scan.bad {
            let position = *position;
            let number = base + scan.count;
            let noun = names.noun;
            if let Some(found) = segment.find_frame(position, number)? {
                let after = if found.position == position {
                    format!(
                        "the frame there is whole and its checksum matches (it holds {noun} {})",
                        found.number
                    )
                } else {
                    format!(
                        "a whole, valid frame ({noun} {}) follows at byte {}",
                        found.number, found.position
                    )
                };
                return Err(segment.refuse(
                    number,
                    position,
                    format!(
                        "{reason}; {after}, so this is damage, not a torn write; nothing was \
                         changed on disk"
                    ),
                ));
            }
            let cut_bytes = segment.size() - position;
            let quarantine = segment.quarantine_tail(dir, position)?;
            tracing::warn!(
                path = %segment.data_path.display(),
                number,
                position,
                cut_bytes,
                quarantine = %quarantine.display(),
                %reason,
                "cutting a torn tail; the cut bytes are kept in the quarantine file"
            );
            segment.data.set_len(position)?;
            segment.size.store(position, Ordering::Release);
        }
        // What survived may have been written but never fsynced before a
        // process crash; it is about to be served as durable.
        segment.data.sync_data()?;
        segment.write_index(&scan.entries)?;
        *segment.index_mut() = scan.entries;
        Ok((segment, scan.count))
    }

    /// The refusal to open for damage at byte `position` (entry `number`),
    /// after removing an index file the open created.
    pub(in crate::store) fn refuse(
        &self,
        number: u64,
        position: u64,
        reason: String,
    ) -> StoreError {
        if let Err(e) = self.remove_created_index() {
            return e.into();
        }
        StoreError::Corrupt {
            number,
            path: self.data_path.display().to_string(),
            position,
            reason,
        }
    }

    /// Removes the index file if this open created it: part of leaving the
    /// directory as it was when an open is refused.
    pub(in crate::store) fn remove_created_index(&self) -> io::Result<()> {
        if !self.index_created {
            return Ok(());
        }
        match fs::remove_file(&self.index_path) {
            // Already removed, by the refusal itself.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            removed => removed,
        }
    }

    /// The first whole frame with a matching checksum at or after byte
    /// `from`, where a bad frame for entry `expected` was found.
    ///
    /// A frame at `from` itself counts whatever number it carries (its
    /// checksum matched, so it is not a torn write). Past `from` the slide
    /// goes byte by byte, and a candidate must carry a number that a later
    /// entry of this segment could have; that cheap check comes before the
    /// checksum, so random bytes are rejected without hashing and the slide
    /// stays about linear in the bytes left.
    fn find_frame(&self, from: u64, expected: u64) -> Result<Option<FoundFrame>, StoreError> {
        let size = self.size();
        let overhead = FRAME_OVERHEAD as u64;
        // Every entry takes at least `overhead` bytes.
        let plausible = expected..=expected.saturating_add((size - from) / overhead);
        let mut window = from;
        while window + overhead <= size {
            let window_end = (window + SCAN_CHUNK as u64).min(size);
            // Take a header's worth past the window, so every candidate
            // starting inside it has its whole header in `buf`.
            let read_end = (window_end + overhead).min(size);
            let mut buf = vec![0; (read_end - window) as usize];
            self.data.read_exact_at(&mut buf, window)?;
            for i in 0..(window_end - window) as usize {
                let Some(header) = buf.get(i..i + FRAME_OVERHEAD) else {
                    break;
                };
                let header: [u8; FRAME_OVERHEAD] = frame::array(header);
                let position = window + i as u64;
                let Ok(frame_len) = frame::frame_len(frame::array(&header[..LENGTH_FIELD_LEN]))
                else {
                    continue;
                };
                if position + frame_len as u64 > size {
                    continue;
                }
                let number = frame::announced_number(&header);
                if position != from && !plausible.contains(&number) {
                    continue;
                }
                if self.crc_of(position + 8, position + frame_len as u64)?
                    == frame::stored_crc(&header)
                {
                    return Ok(Some(FoundFrame { position, number }));
                }
            }
            window = window_end;
        }
        Ok(None)
    }

    /// CRC32C of the data bytes in `start..end`, read in bounded chunks (a
    /// candidate frame found by [`Self::find_frame`] may announce gigabytes).
    fn crc_of(&self, start: u64, end: u64) -> io::Result<u32> {
        let mut crc = 0;
        let mut at = start;
        let mut buf = vec![0; SCAN_CHUNK.min((end - start) as usize)];
        while at < end {
            let n = SCAN_CHUNK.min((end - at) as usize);
            self.data.read_exact_at(&mut buf[..n], at)?;
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            at += n as u64;
        }
        Ok(crc)
    }

    /// Copies the data bytes from `from` to the end into a new quarantine
    /// file in `dir` and makes it durable, so that cutting them off destroys
    /// nothing. Returns the quarantine file's path.
    fn quarantine_tail(&self, dir: &Path, from: u64) -> io::Result<PathBuf> {
        let name = self.names.quarantine_file(self.base, from);
        durable::keep_tail(dir, &name, &self.data, from, self.size())
    }
}
