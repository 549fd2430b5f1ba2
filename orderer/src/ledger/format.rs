//! The ledger's on-disk format: block file names, block frames and index entries.
//!
//! Block files (`blocks_NNNNNN.dat`, numbered from 0) hold a sequence of frames:
//!
//! ```text
//! [len: u32 BE][crc32c of the block bytes: u32 BE][block bytes: `len` bytes, prost encoding]
//! ```
//!
//! The index (`index.dat`) holds one 16-byte entry per block, entry `n` describing block `n`:
//!
//! ```text
//! [block file number: u32 BE][offset of the frame in that file: u64 BE][block bytes length: u32 BE]
//! ```
//!
//! The index is derived data: recovery can rebuild it from the block files alone.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use bytes::Bytes;
use ordo_proto::common::Block;
use prost::Message;

/// Bytes in a frame before the block bytes: length and checksum.
pub(super) const FRAME_HEADER_LEN: u64 = 8;
/// Bytes in one index entry.
pub(super) const INDEX_ENTRY_LEN: u64 = 16;
/// Name of the index file in the ledger directory.
pub(super) const INDEX_FILE: &str = "index.dat";
/// Scratch name used to replace the index atomically during recovery.
pub(super) const INDEX_TMP_FILE: &str = "index.dat.tmp";

const BLOCK_FILE_PREFIX: &str = "blocks_";
const BLOCK_FILE_SUFFIX: &str = ".dat";

/// Where block `n`'s frame lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct IndexEntry {
    /// Block file number.
    pub file: u32,
    /// Offset of the frame (not of the block bytes) within the block file.
    pub offset: u64,
    /// Length of the block bytes, excluding the frame header.
    pub len: u32,
}

impl IndexEntry {
    /// Offset just past this entry's frame: where the next frame in the same file starts.
    pub fn end(&self) -> u64 {
        self.offset + FRAME_HEADER_LEN + u64::from(self.len)
    }

    pub fn encode(&self) -> [u8; INDEX_ENTRY_LEN as usize] {
        let mut out = [0u8; INDEX_ENTRY_LEN as usize];
        out[0..4].copy_from_slice(&self.file.to_be_bytes());
        out[4..12].copy_from_slice(&self.offset.to_be_bytes());
        out[12..16].copy_from_slice(&self.len.to_be_bytes());
        out
    }

    pub fn decode(raw: &[u8; INDEX_ENTRY_LEN as usize]) -> IndexEntry {
        let [f0, f1, f2, f3, o0, o1, o2, o3, o4, o5, o6, o7, l0, l1, l2, l3] = *raw;
        IndexEntry {
            file: u32::from_be_bytes([f0, f1, f2, f3]),
            offset: u64::from_be_bytes([o0, o1, o2, o3, o4, o5, o6, o7]),
            len: u32::from_be_bytes([l0, l1, l2, l3]),
        }
    }
}

pub(super) fn block_file_name(number: u32) -> String {
    format!("{BLOCK_FILE_PREFIX}{number:06}{BLOCK_FILE_SUFFIX}")
}

/// The file number encoded in a block file name, or None for any other file.
pub(super) fn parse_block_file_name(name: &str) -> Option<u32> {
    let digits = name
        .strip_prefix(BLOCK_FILE_PREFIX)?
        .strip_suffix(BLOCK_FILE_SUFFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Builds the frame for already-encoded block bytes whose length fits in the `u32` length field.
pub(super) fn encode_frame(block_bytes: &[u8], len: u32) -> Vec<u8> {
    let mut frame = Vec::with_capacity(FRAME_HEADER_LEN as usize + block_bytes.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&crc32c::crc32c(block_bytes).to_be_bytes());
    frame.extend_from_slice(block_bytes);
    frame
}

/// What was found at a frame position.
pub(super) enum Frame {
    /// A whole frame whose checksum matches; holds the block bytes.
    Valid(Bytes),
    /// The position is exactly the end of the data: no frame, and nothing torn.
    End,
    /// A torn or corrupt frame; holds a description for logs and errors.
    Invalid(String),
}

/// Reads and checks the frame at `offset`, treating `limit` as the end of the data.
///
/// `limit` is normally the file length; bounding the length field by it keeps a corrupt length
/// from making us allocate an arbitrary amount of memory.
pub(super) fn read_frame(file: &File, offset: u64, limit: u64) -> io::Result<Frame> {
    if offset >= limit {
        return Ok(Frame::End);
    }
    if limit - offset < FRAME_HEADER_LEN {
        return Ok(Frame::Invalid(format!(
            "frame header cut short: {} of {FRAME_HEADER_LEN} bytes present",
            limit - offset
        )));
    }
    let mut header = [0u8; FRAME_HEADER_LEN as usize];
    if !read_exact_or_eof(file, &mut header, offset)? {
        return Ok(Frame::Invalid("frame header cut short".to_owned()));
    }
    let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
    let len = u32::from_be_bytes([l0, l1, l2, l3]);
    let crc = u32::from_be_bytes([c0, c1, c2, c3]);

    let available = limit - offset - FRAME_HEADER_LEN;
    if u64::from(len) > available {
        return Ok(Frame::Invalid(format!(
            "frame claims {len} block bytes but only {available} are present"
        )));
    }
    // `len` is at most `available`, which fitted in memory-addressable file space.
    let mut body = vec![0u8; len as usize];
    if !read_exact_or_eof(file, &mut body, offset + FRAME_HEADER_LEN)? {
        return Ok(Frame::Invalid(format!(
            "frame claims {len} block bytes but the file ends sooner"
        )));
    }
    let actual = crc32c::crc32c(&body);
    if actual != crc {
        return Ok(Frame::Invalid(format!(
            "checksum mismatch: frame says {crc:#010x}, block bytes give {actual:#010x}"
        )));
    }
    Ok(Frame::Valid(Bytes::from(body)))
}

/// A whole frame with a matching checksum, found by [`find_frame`].
pub(super) struct FoundFrame {
    /// Offset of the frame in its block file.
    pub position: u64,
    /// The block number it holds, if its bytes decode as a block.
    pub block: Option<u64>,
}

/// The first whole, checksummed frame at or after `from` in `file` (whose data ends at
/// `limit`), where a bad frame was found while block `due` was expected there.
///
/// A non-empty frame at `from` itself counts whatever it holds: its checksum matched, so it is
/// not a torn write. (An all-zero header reads as an empty frame with a matching checksum, which
/// is why empty frames never count.) Past `from` the search slides byte by byte, and a candidate
/// must announce, in the first bytes of its block, a block number that could follow `due`; that
/// check comes before reading and hashing the frame, which keeps the slide about linear in the
/// bytes searched.
pub(super) fn find_frame(
    file: &File,
    from: u64,
    limit: u64,
    due: u64,
) -> io::Result<Option<FoundFrame>> {
    if let Frame::Valid(bytes) = read_frame(file, from, limit)? {
        if !bytes.is_empty() {
            return Ok(Some(FoundFrame {
                position: from,
                block: block_number(&bytes).ok(),
            }));
        }
    }
    // A later frame takes at least a header's worth of bytes per block.
    let plausible = due..=due.saturating_add((limit - from) / FRAME_HEADER_LEN);
    // The frame header and enough of the block bytes to read its number.
    const PEEK: u64 = FRAME_HEADER_LEN + 24;
    const WINDOW: u64 = 1 << 20;
    let mut window = from + 1;
    while window + FRAME_HEADER_LEN < limit {
        let window_end = (window + WINDOW).min(limit);
        let read_end = (window_end + PEEK).min(limit);
        let mut buf = vec![0u8; (read_end - window) as usize];
        file.read_exact_at(&mut buf, window)?;
        for i in 0..(window_end - window) as usize {
            let Some(&[l0, l1, l2, l3, ..]) = buf.get(i..) else {
                break;
            };
            let position = window + i as u64;
            let len = u64::from(u32::from_be_bytes([l0, l1, l2, l3]));
            let end = position + FRAME_HEADER_LEN + len;
            if len == 0 || end > limit {
                continue;
            }
            let body = buf.get(i + FRAME_HEADER_LEN as usize..).unwrap_or_default();
            if !announced_block_number(body).is_some_and(|n| plausible.contains(&n)) {
                continue;
            }
            if let Frame::Valid(bytes) = read_frame(file, position, end)? {
                return Ok(Some(FoundFrame {
                    position,
                    block: block_number(&bytes).ok(),
                }));
            }
        }
        window = window_end;
    }
    Ok(None)
}

/// The block number at the start of prost-encoded block bytes, read without decoding the block:
/// `Block.header` (field 1, length-delimited: tag 0x0a) comes first, and its first field is
/// `number` (field 1, varint: tag 0x08). None if `bytes` do not start that way (which includes
/// block 0, whose zero number is not encoded).
fn announced_block_number(bytes: &[u8]) -> Option<u64> {
    let rest = bytes.strip_prefix(&[0x0a])?;
    let (_, rest) = varint(rest)?;
    let rest = rest.strip_prefix(&[0x08])?;
    varint(rest).map(|(number, _)| number)
}

/// A protobuf varint at the start of `bytes`, and the bytes after it.
fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

/// `read_exact_at`, but reports a short file as `false` rather than an error: to the ledger a
/// file ending early is a torn frame, not an I/O failure.
fn read_exact_or_eof(file: &File, buf: &mut [u8], offset: u64) -> io::Result<bool> {
    match file.read_exact_at(buf, offset) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// The number in an encoded block's header.
pub(super) fn block_number(block_bytes: &Bytes) -> Result<u64, String> {
    let block =
        Block::decode(block_bytes.clone()).map_err(|e| format!("block does not decode: {e}"))?;
    block
        .header
        .map(|h| h.number)
        .ok_or_else(|| "block has no header".to_owned())
}

pub(super) use crate::durable::sync_dir;
