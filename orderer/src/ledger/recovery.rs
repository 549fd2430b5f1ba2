//! Bringing the ledger directory to a consistent state on open.
//!
//! After a crash the last block file may end in a torn frame, and the index (never fsynced) may
//! be missing entries, hold entries for blocks that never became durable, or hold garbage. Block
//! files are the source of truth; the index is trusted only as far as it agrees with them.
//!
//! A torn frame is cut off only once it is known to be one: it is at the end of the last block
//! file and nothing whole and valid follows it. The cut bytes are kept in a quarantine file
//! first. Any other bad frame is damage to acknowledged blocks, and recovery refuses to open the
//! ledger without changing any file.
//!
//! Cost: the index is checked structurally against block file sizes (entries must tile each
//! block file exactly, frame after frame), and only the frames in the last indexed block file are
//! read back and verified. Earlier files were fsynced and closed before the ledger moved on, so a
//! crash cannot have damaged them; reading the whole ledger on every start would make restart
//! time grow with the chain. Media corruption in old files is still caught, by the checksum
//! check on every read.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::format::{
    block_file_name, block_number, find_frame, parse_block_file_name, read_frame, sync_dir, Frame,
    IndexEntry, INDEX_ENTRY_LEN, INDEX_FILE, INDEX_TMP_FILE,
};
use super::LedgerError;

/// The consistent state recovery leaves behind.
pub(super) struct Recovered {
    /// One entry per stored block, in block order.
    pub entries: Vec<IndexEntry>,
    /// Number of the block file to append to: the last one.
    pub file_no: u32,
    /// That file, opened for reading and writing.
    pub file: File,
    /// Its length, which is where the next frame goes.
    pub file_len: u64,
}

pub(super) fn recover(dir: &Path) -> Result<Recovered, LedgerError> {
    fs::create_dir_all(dir)?;
    let mut sizes = block_file_sizes(dir)?;
    if sizes.is_empty() {
        create_block_file(dir, 0)?;
        sizes.insert(0, 0);
    }

    let (stored, index_is_clean) = read_index(dir)?;
    let mut entries = structurally_valid_prefix(&stored, &sizes);
    verify_tail(dir, &mut entries, &sizes)?;
    let kept_from_index = entries.len();
    let (file_no, file_len) = scan_forward(dir, &mut entries, &mut sizes)?;
    // Only said once the rescan succeeded: a refusal changes nothing, the index included.
    if kept_from_index < stored.len() {
        warn!(
            dir = %dir.display(),
            dropped = stored.len() - kept_from_index,
            kept = kept_from_index,
            "ledger index entries did not match the block files; rebuilt them from a rescan"
        );
    }
    let recovered = entries.len() - kept_from_index;
    if recovered > 0 {
        info!(
            dir = %dir.display(),
            recovered,
            "recovered blocks missing from the ledger index"
        );
    }

    if !index_is_clean || kept_from_index < stored.len() || recovered > 0 {
        rewrite_index(dir, &entries)?;
    }

    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join(block_file_name(file_no)))?;
    Ok(Recovered {
        entries,
        file_no,
        file,
        file_len,
    })
}

/// Creates an empty block file and makes its directory entry durable.
pub(super) fn create_block_file(dir: &Path, number: u32) -> io::Result<File> {
    // `create_new`: recovery leaves the ledger appending to its last block file, so an existing
    // file here means something other than this ledger wrote into the directory.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.join(block_file_name(number)))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Sizes of the block files present, by file number. The numbers must run from 0 without gaps:
/// the ledger never leaves a gap, so one means files were removed by hand, and guessing which
/// blocks survive would be worse than refusing to open.
fn block_file_sizes(dir: &Path) -> Result<BTreeMap<u32, u64>, LedgerError> {
    let mut sizes = BTreeMap::new();
    for dir_entry in fs::read_dir(dir)? {
        let dir_entry = dir_entry?;
        let Some(number) = dir_entry
            .file_name()
            .to_str()
            .and_then(parse_block_file_name)
        else {
            continue;
        };
        sizes.insert(number, dir_entry.metadata()?.len());
    }
    for (expected, &number) in (0u32..).zip(sizes.keys()) {
        if number != expected {
            return Err(LedgerError::Corrupt(format!(
                "block file {} is missing but {} exists",
                block_file_name(expected),
                block_file_name(number)
            )));
        }
    }
    Ok(sizes)
}

/// The stored index entries, and whether the file held exactly whole entries.
fn read_index(dir: &Path) -> Result<(Vec<IndexEntry>, bool), LedgerError> {
    let raw = match fs::read(dir.join(INDEX_FILE)) {
        Ok(raw) => raw,
        // A missing index is just an empty one: the scan rebuilds it.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
        Err(e) => return Err(e.into()),
    };
    let chunks = raw.chunks_exact(INDEX_ENTRY_LEN as usize);
    let whole = chunks.remainder().is_empty();
    let entries = chunks
        .filter_map(|chunk| chunk.try_into().ok())
        .map(IndexEntry::decode)
        .collect();
    Ok((entries, whole))
}

/// The longest prefix of `stored` whose entries tile the block files: each frame starts where
/// the previous one ended, a new file starts only once the previous one is exactly used up, and
/// no frame runs past the end of its file.
fn structurally_valid_prefix(stored: &[IndexEntry], sizes: &BTreeMap<u32, u64>) -> Vec<IndexEntry> {
    let mut valid = Vec::with_capacity(stored.len());
    let (mut file, mut offset) = (0u32, 0u64);
    for entry in stored {
        let continues_file = entry.file == file && entry.offset == offset;
        let starts_next_file = Some(entry.file) == file.checked_add(1)
            && entry.offset == 0
            && sizes.get(&file) == Some(&offset);
        if !(continues_file || starts_next_file) {
            break;
        }
        match sizes.get(&entry.file) {
            Some(&size) if entry.end() <= size => {}
            _ => break,
        }
        valid.push(*entry);
        (file, offset) = (entry.file, entry.end());
    }
    valid
}

/// Reads back every indexed frame in the last indexed block file (the only one a crash can have
/// touched) and cuts `entries` at the first that is not a whole, checksummed frame of the right
/// length holding the right block number.
fn verify_tail(
    dir: &Path,
    entries: &mut Vec<IndexEntry>,
    sizes: &BTreeMap<u32, u64>,
) -> Result<(), LedgerError> {
    let Some(last) = entries.last().copied() else {
        return Ok(());
    };
    let first_in_file = entries
        .iter()
        .rposition(|e| e.file != last.file)
        .map_or(0, |i| i + 1);
    let file = File::open(dir.join(block_file_name(last.file)))?;
    let size = sizes.get(&last.file).copied().unwrap_or(0);
    for number in first_in_file..entries.len() {
        let entry = entries[number];
        let ok = match read_frame(&file, entry.offset, size)? {
            Frame::Valid(bytes) => {
                bytes.len() == entry.len as usize && block_number(&bytes) == Ok(number as u64)
            }
            Frame::End | Frame::Invalid(_) => false,
        };
        if !ok {
            entries.truncate(number);
            break;
        }
    }
    Ok(())
}

/// Appends to `entries` every further whole, valid, correctly numbered frame after the last
/// indexed one, moving on through later block files, up to the end of the last one or to a bad
/// frame (see [`cut_torn_tail`]). Returns the block file to append to and its length.
fn scan_forward(
    dir: &Path,
    entries: &mut Vec<IndexEntry>,
    sizes: &mut BTreeMap<u32, u64>,
) -> Result<(u32, u64), LedgerError> {
    let (mut file_no, mut offset) = entries.last().map_or((0, 0), |e| (e.file, e.end()));
    let mut file = File::open(dir.join(block_file_name(file_no)))?;
    let mut size = sizes.get(&file_no).copied().unwrap_or(0);
    loop {
        let next_number = entries.len() as u64;
        let problem = match read_frame(&file, offset, size)? {
            Frame::End => {
                let Some(next_file) = file_no.checked_add(1).filter(|n| sizes.contains_key(n))
                else {
                    return Ok((file_no, offset));
                };
                file_no = next_file;
                offset = 0;
                file = File::open(dir.join(block_file_name(file_no)))?;
                size = sizes.get(&file_no).copied().unwrap_or(0);
                continue;
            }
            Frame::Invalid(reason) => reason,
            Frame::Valid(bytes) => match block_number(&bytes) {
                Ok(number) if number == next_number => {
                    // `read_frame` bounded the length by the file size, and a frame that was
                    // written had a `u32` length, so this cannot fail for a valid frame.
                    let len = u32::try_from(bytes.len()).map_err(|_| {
                        LedgerError::Corrupt(format!("frame of {} bytes", bytes.len()))
                    })?;
                    let entry = IndexEntry {
                        file: file_no,
                        offset,
                        len,
                    };
                    offset = entry.end();
                    entries.push(entry);
                    continue;
                }
                Ok(number) => {
                    format!("frame holds block {number} where block {next_number} was due")
                }
                Err(reason) => reason,
            },
        };
        cut_torn_tail(dir, file_no, offset, size, next_number, &problem, sizes)?;
        return Ok((file_no, offset));
    }
}

/// Decides, before changing anything, what the bad frame at `offset` in block file `file_no`
/// (where block `due` was expected) is. A torn tail (the last write, cut short: nothing whole and
/// valid after it, in this file or a later one) is copied into a quarantine file and then cut
/// off. Anything else is damage to blocks that were acknowledged: the open fails, naming the file
/// and offset, and every file is left as it was.
fn cut_torn_tail(
    dir: &Path,
    file_no: u32,
    offset: u64,
    size: u64,
    due: u64,
    problem: &str,
    sizes: &mut BTreeMap<u32, u64>,
) -> Result<(), LedgerError> {
    let path = dir.join(block_file_name(file_no));
    let damage = |why: String| {
        LedgerError::Corrupt(format!(
            "block {due} in {} at byte {offset}: {problem}; {why}, so this is damage, not a torn \
             write; nothing was changed on disk",
            path.display()
        ))
    };
    // Every frame is fsynced before the next is written, and a new block file is only started
    // after that, so only the end of the last block file can be torn.
    if let Some((&later, _)) = sizes
        .range((Bound::Excluded(file_no), Bound::Unbounded))
        .next()
    {
        return Err(damage(format!(
            "block file {} follows it",
            block_file_name(later)
        )));
    }
    let file = File::open(&path)?;
    if let Some(found) = find_frame(&file, offset, size, due)? {
        let what = match found.block {
            Some(number) => format!("block {number}"),
            None => "bytes that are not a block".to_owned(),
        };
        return Err(damage(if found.position == offset {
            format!("the frame there is whole and its checksum matches (it holds {what})")
        } else {
            format!(
                "a whole, valid frame ({what}) follows at byte {}",
                found.position
            )
        }));
    }

    let quarantine = quarantine_tail(dir, &file, file_no, offset, size)?;
    warn!(
        file = %path.display(),
        offset,
        cut_bytes = size - offset,
        quarantine = %quarantine.display(),
        reason = problem,
        "cutting the torn tail of a ledger block file; the cut bytes are kept in the quarantine file"
    );
    let file = OpenOptions::new().write(true).open(&path)?;
    file.set_len(offset)?;
    file.sync_all()?;
    sizes.insert(file_no, offset);
    Ok(())
}

/// Name of the file that keeps the torn tail cut off block file `file_no` from `offset` on:
/// `blocks_000003.dat.torn-5678` (`.1`, `.2`, ... appended if taken). Recovery ignores these
/// files; they are there for an operator to inspect or delete.
pub(super) fn quarantine_name(file_no: u32, offset: u64) -> String {
    format!("{}.torn-{offset}", block_file_name(file_no))
}

/// Copies `file`'s bytes from `from` to `size` into a new quarantine file and makes it durable,
/// so that cutting them off destroys nothing. Returns its path.
fn quarantine_tail(
    dir: &Path,
    file: &File,
    file_no: u32,
    from: u64,
    size: u64,
) -> io::Result<PathBuf> {
    crate::durable::keep_tail(dir, &quarantine_name(file_no, from), file, from, size)
}

/// Replaces the index with `entries`, atomically so a crash leaves either version.
fn rewrite_index(dir: &Path, entries: &[IndexEntry]) -> Result<(), LedgerError> {
    let tmp_path = dir.join(INDEX_TMP_FILE);
    let mut raw = Vec::with_capacity(entries.len() * INDEX_ENTRY_LEN as usize);
    for entry in entries {
        raw.extend_from_slice(&entry.encode());
    }
    let mut tmp = File::create(&tmp_path)?;
    tmp.write_all(&raw)?;
    tmp.sync_all()?;
    fs::rename(&tmp_path, dir.join(INDEX_FILE))?;
    sync_dir(dir)?;
    Ok(())
}
