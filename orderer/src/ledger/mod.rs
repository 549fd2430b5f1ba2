//! A channel's append-only block store.
//!
//! Blocks are kept as prost-encoded bytes in checksummed frames in a series of block files, with
//! an index mapping block numbers to frames (the exact layout is documented in `format.rs`). The
//! ledger neither hashes nor validates the chain; it only insists that block numbers are
//! contiguous.
//!
//! Durability: a block is fsynced into its block file before it becomes visible to readers or
//! [`Ledger::append`] returns. The index is written but not fsynced; [`Ledger::open`] repairs it
//! from the block files (see `recovery.rs`).
//!
//! Concurrency: one appender at a time (the writer state is behind a mutex) and any number of
//! readers, which use positional reads and so never contend with the writer for a file cursor.

mod format;
mod recovery;
#[cfg(test)]
mod tests;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};

use bytes::Bytes;
use ordo_proto::common::Block;
use prost::Message;
use tokio::sync::watch;
use tracing::warn;

use format::{block_file_name, encode_frame, read_frame, Frame, IndexEntry, INDEX_ENTRY_LEN};

/// Tunables for a [`Ledger`].
#[derive(Clone, Debug)]
pub struct LedgerConfig {
    /// A block file that would grow past this many bytes is closed and a new one started. A
    /// single block larger than this still goes into a file of its own.
    pub file_bytes: u64,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            file_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("ledger is corrupt: {0}")]
    Corrupt(String),
    #[error("block {got} appended where block {expected} was due")]
    OutOfOrder { expected: u64, got: u64 },
}

/// A channel's block store. `Send + Sync`; share it as `Arc<Ledger>`.
pub struct Ledger {
    dir: PathBuf,
    config: LedgerConfig,
    writer: Mutex<Writer>,
    index: RwLock<Index>,
    height: watch::Sender<u64>,
}

/// State only the appender touches.
struct Writer {
    /// Number of the next block to append.
    next: u64,
    file_no: u32,
    file: Arc<File>,
    /// Where the next frame goes in `file`.
    file_len: u64,
    index_file: File,
    /// Set after an I/O error left the block file in an unknown state (for instance a failed
    /// fsync, after which the kernel may have dropped the dirty pages). Appending on top of that
    /// could acknowledge blocks that are not durable, so the ledger refuses until reopened, which
    /// runs recovery.
    failed: bool,
}

/// What readers need, published by the appender only once a block is durable.
struct Index {
    entries: Vec<IndexEntry>,
    /// The block file being appended to, shared with the writer. Deliver streams mostly read
    /// the newest blocks, so this saves them an open() per block; older files are opened per read.
    current_no: u32,
    current: Arc<File>,
}

impl Ledger {
    /// Opens the ledger in `dir`, creating it if needed and recovering from any crash.
    pub fn open(dir: &Path, config: LedgerConfig) -> Result<Ledger, LedgerError> {
        let recovered = recovery::recover(dir)?;
        let index_file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(format::INDEX_FILE))?;
        let height = recovered.entries.len() as u64;
        let file = Arc::new(recovered.file);
        Ok(Ledger {
            dir: dir.to_path_buf(),
            config,
            writer: Mutex::new(Writer {
                next: height,
                file_no: recovered.file_no,
                file: Arc::clone(&file),
                file_len: recovered.file_len,
                index_file,
                failed: false,
            }),
            index: RwLock::new(Index {
                entries: recovered.entries,
                current_no: recovered.file_no,
                current: file,
            }),
            height: watch::Sender::new(height),
        })
    }

    /// Number of blocks stored (= next block number).
    pub fn height(&self) -> u64 {
        self.read_index().entries.len() as u64
    }

    /// Appends and fsyncs; concurrent readers see it only once durable.
    pub fn append(&self, block: &Block) -> Result<(), LedgerError> {
        // A panic while holding the lock may have left a half-written frame; treat it like an
        // I/O failure rather than carrying on.
        let mut writer = self.writer.lock().map_err(|_| writer_failed())?;
        if writer.failed {
            return Err(writer_failed());
        }
        let Some(header) = block.header.as_ref() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "block has no header").into());
        };
        if header.number != writer.next {
            return Err(LedgerError::OutOfOrder {
                expected: writer.next,
                got: header.number,
            });
        }

        let block_bytes = block.encode_to_vec();
        let len = u32::try_from(block_bytes.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("block of {} bytes is too large to store", block_bytes.len()),
            )
        })?;
        let frame = encode_frame(&block_bytes, len);

        let entry = match self.write_frame(&mut writer, &frame, len) {
            Ok(entry) => entry,
            Err(e) => {
                writer.failed = true;
                return Err(e.into());
            }
        };

        // The block is durable from here on, so a failed index write must not fail the append:
        // recovery rebuilds missing index entries from the block files.
        let index_pos = writer.next * INDEX_ENTRY_LEN;
        if let Err(e) = writer.index_file.write_all_at(&entry.encode(), index_pos) {
            warn!(
                dir = %self.dir.display(),
                block = writer.next,
                error = %e,
                "failed to write ledger index entry; it will be rebuilt on next open"
            );
        }

        writer.next += 1;
        {
            let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
            if index.current_no != entry.file {
                index.current_no = entry.file;
                index.current = Arc::clone(&writer.file);
            }
            index.entries.push(entry);
        }
        self.height.send_replace(writer.next);
        Ok(())
    }

    /// Writes and fsyncs one frame, starting a new block file first if the current one would
    /// grow past the configured size. Returns the frame's index entry.
    fn write_frame(&self, writer: &mut Writer, frame: &[u8], len: u32) -> io::Result<IndexEntry> {
        let frame_len = frame.len() as u64;
        if writer.file_len > 0 && writer.file_len + frame_len > self.config.file_bytes {
            let next_no = writer.file_no.checked_add(1).ok_or_else(|| {
                io::Error::new(io::ErrorKind::StorageFull, "out of block file numbers")
            })?;
            // The old file needs no sync here: every frame in it was fsynced when appended.
            writer.file = Arc::new(recovery::create_block_file(&self.dir, next_no)?);
            writer.file_no = next_no;
            writer.file_len = 0;
        }
        let entry = IndexEntry {
            file: writer.file_no,
            offset: writer.file_len,
            len,
        };
        writer.file.write_all_at(frame, entry.offset)?;
        writer.file.sync_data()?;
        writer.file_len = entry.end();
        Ok(entry)
    }

    /// The encoded bytes of block `number`, or None past the end.
    pub fn block_bytes(&self, number: u64) -> Result<Option<Bytes>, LedgerError> {
        let (entry, shared) = {
            let index = self.read_index();
            let Some(entry) = usize::try_from(number)
                .ok()
                .and_then(|i| index.entries.get(i))
                .copied()
            else {
                return Ok(None);
            };
            let shared = (entry.file == index.current_no).then(|| Arc::clone(&index.current));
            (entry, shared)
        };

        let path = self.dir.join(block_file_name(entry.file));
        let opened;
        let file = match &shared {
            Some(file) => file.as_ref(),
            None => {
                opened = File::open(&path)?;
                &opened
            }
        };
        // Bounding the read by the entry's end means a frame header whose length disagrees
        // with the index shows up as corruption rather than as a read of some other block.
        match read_frame(file, entry.offset, entry.end())? {
            Frame::Valid(bytes) if bytes.len() == entry.len as usize => Ok(Some(bytes)),
            Frame::Valid(bytes) => Err(LedgerError::Corrupt(format!(
                "block {number} in {} at offset {}: index says {} bytes, frame holds {}",
                path.display(),
                entry.offset,
                entry.len,
                bytes.len()
            ))),
            Frame::End => Err(LedgerError::Corrupt(format!(
                "block {number} in {} at offset {}: no frame there",
                path.display(),
                entry.offset
            ))),
            Frame::Invalid(reason) => Err(LedgerError::Corrupt(format!(
                "block {number} in {} at offset {}: {reason}",
                path.display(),
                entry.offset
            ))),
        }
    }

    /// Decoded block `number`, or None past the end.
    pub fn block(&self, number: u64) -> Result<Option<Block>, LedgerError> {
        let Some(bytes) = self.block_bytes(number)? else {
            return Ok(None);
        };
        Block::decode(bytes)
            .map(Some)
            .map_err(|e| LedgerError::Corrupt(format!("block {number} does not decode: {e}")))
    }

    /// The last block, if any.
    pub fn last_block(&self) -> Result<Option<Block>, LedgerError> {
        match self.height().checked_sub(1) {
            Some(last) => self.block(last),
            None => Ok(None),
        }
    }

    /// Watch of height(): Deliver streams wait on it for new blocks.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.height.subscribe()
    }

    fn read_index(&self) -> RwLockReadGuard<'_, Index> {
        // The index is only ever modified by a push, which cannot leave it half-updated, so a
        // poisoned lock still guards consistent data.
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }
}

fn writer_failed() -> LedgerError {
    LedgerError::Io(io::Error::other(
        "ledger writer stopped after an earlier failure; reopen the ledger to recover",
    ))
}
