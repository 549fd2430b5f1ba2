//! A channel's append-only block store.
//!
//! Blocks are kept as prost-encoded bytes in a [`crate::store`], entry number = block number:
//! files `blocks_<first block, 20 digits>.dat`, each with its sparse `.index`. The store frames,
//! checksums, rolls, indexes and recovers them (a torn tail is quarantined and cut, damage is a
//! refusal naming the file and byte); the ledger neither hashes nor validates the chain, and
//! only insists that block numbers are contiguous.
//!
//! Durability: a block is fsynced before it becomes visible to readers (the height) or
//! [`Ledger::append`] returns. Unlike the log, the ledger never truncates and never groups
//! fsyncs: each block is one write and one sync.
//!
//! Concurrency: one appender at a time (the store's writer is behind a mutex) and any number of
//! readers, which use positional reads and so never contend with the writer for a file cursor.

#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use ordo_proto::common::Block;
use prost::Message;
use tokio::sync::watch;

use crate::store::{Entry, Names, Reader, Store, StoreConfig, StoreError, Tail};

/// File names of a ledger: `blocks_00000000000000001234.dat` with its `.index`.
const NAMES: Names = Names {
    prefix: "blocks_",
    data_suffix: ".dat",
    index_suffix: ".index",
    noun: "block",
};

/// Bytes of block file between two sparse index entries: a read scans at most about this far
/// past the block it wants.
const INDEX_INTERVAL_BYTES: u32 = 4096;

/// Tunables for a [`Ledger`].
#[derive(Clone, Debug)]
pub struct LedgerConfig {
    /// A block file that would grow past this many bytes is closed and a new one started. A
    /// single block larger than this still goes into a file of its own.
    pub file_bytes: u64,
    /// Bytes of the newest blocks kept in memory for the readers following the chain.
    pub cache_bytes: usize,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            file_bytes: 64 * 1024 * 1024,
            cache_bytes: 16 << 20,
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
    /// Files of the ledger format before the shared store (`index.dat`, `blocks_NNNNNN.dat`):
    /// read as empty, the channel would write its blocks again beside them.
    #[error("{0} is a ledger file of an earlier Ordo format, which this version does not read")]
    OldFormat(String),
}

impl From<StoreError> for LedgerError {
    fn from(error: StoreError) -> LedgerError {
        match error {
            StoreError::Io(e) => LedgerError::Io(e),
            StoreError::Corrupt {
                number,
                path,
                position,
                reason,
            } => LedgerError::Corrupt(format!(
                "block {number} in {path} at byte {position}: {reason}"
            )),
            // Reads ask only below the height, which the store has reached.
            StoreError::OutOfRange { .. } => LedgerError::Corrupt(error.to_string()),
        }
    }
}

/// A channel's block store. `Send + Sync`; share it as `Arc<Ledger>`.
pub struct Ledger {
    dir: PathBuf,
    writer: Mutex<Writer>,
    reader: Reader,
    /// The newest blocks, as stored.
    recent: Tail<Entry>,
    /// Blocks below it are durable and readable.
    height: watch::Sender<u64>,
}

/// State only the appender touches.
struct Writer {
    store: Store,
    /// Set after an I/O error left the block file in an unknown state (for instance a failed
    /// fsync, after which the kernel may have dropped the dirty pages). Appending on top of that
    /// could acknowledge blocks that are not durable, so the ledger refuses until reopened, which
    /// runs recovery.
    failed: bool,
}

impl Ledger {
    /// Opens the ledger in `dir`, creating it if needed and recovering from any crash.
    pub fn open(dir: &Path, config: LedgerConfig) -> Result<Ledger, LedgerError> {
        Ledger::open_indexed(dir, config, INDEX_INTERVAL_BYTES)
    }

    fn open_indexed(
        dir: &Path,
        config: LedgerConfig,
        index_interval_bytes: u32,
    ) -> Result<Ledger, LedgerError> {
        refuse_old_format(dir)?;
        let store = Store::open(
            dir,
            StoreConfig {
                names: NAMES,
                segment_bytes: config.file_bytes,
                index_interval_bytes,
            },
        )?;
        // Recovery leaves only whole, fsynced blocks.
        let height = store.next_number();
        Ok(Ledger {
            dir: dir.to_path_buf(),
            reader: store.reader(),
            recent: Tail::new(config.cache_bytes),
            writer: Mutex::new(Writer {
                store,
                failed: false,
            }),
            height: watch::Sender::new(height),
        })
    }

    /// Number of blocks stored (= next block number).
    pub fn height(&self) -> u64 {
        *self.height.borrow()
    }

    /// Appends and fsyncs; concurrent readers see it only once durable. Returns its encoded size.
    pub fn append(&self, block: &Block) -> Result<usize, LedgerError> {
        // A panic while holding the lock may have left a half-written frame; treat it like an
        // I/O failure rather than carrying on.
        let mut writer = self.writer.lock().map_err(|_| writer_failed())?;
        if writer.failed {
            return Err(writer_failed());
        }
        let Some(header) = block.header.as_ref() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "block has no header").into());
        };
        let next = writer.store.next_number();
        if header.number != next {
            return Err(LedgerError::OutOfOrder {
                expected: next,
                got: header.number,
            });
        }
        let block_bytes = Bytes::from(block.encode_to_vec());
        if crate::store::frame_len_for(block_bytes.len()).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("block of {} bytes is too large to store", block_bytes.len()),
            )
            .into());
        }
        let written = writer
            .store
            .append(next, &[&block_bytes])
            .and_then(|()| writer.store.sync());
        if let Err(e) = written {
            writer.failed = true;
            return Err(e.into());
        }
        let size = block_bytes.len();
        // Under the writer's lock, so the tail follows the file's order.
        self.recent.push(Entry {
            number: next,
            body: block_bytes,
        });
        self.height.send_replace(next + 1);
        Ok(size)
    }

    /// The encoded bytes of block `number`, or None past the end.
    pub fn block_bytes(&self, number: u64) -> Result<Option<Bytes>, LedgerError> {
        if number >= self.height() {
            return Ok(None);
        }
        if let Some(mut kept) = self.recent.read(number, number + 1, 0) {
            if let Some(entry) = kept.pop() {
                return Ok(Some(entry.body));
            }
        }
        // A zero budget still returns the one block asked for.
        let mut entries = self.reader.read_range(number, number + 1, 0)?;
        match entries.pop() {
            Some(entry) => Ok(Some(entry.body)),
            None => Err(LedgerError::Corrupt(format!(
                "block {number} is below the height but not in {}",
                self.dir.display()
            ))),
        }
    }

    /// Decoded block `number`, or None past the end.
    pub fn block(&self, number: u64) -> Result<Option<Block>, LedgerError> {
        let Some(bytes) = self.block_bytes(number)? else {
            return Ok(None);
        };
        let block = Block::decode(bytes)
            .map_err(|e| LedgerError::Corrupt(format!("block {number} does not decode: {e}")))?;
        // Appends check this; a mismatch here means the frame is not the block it claims.
        let stored = block.header.as_ref().map(|h| h.number);
        if stored != Some(number) {
            return Err(LedgerError::Corrupt(format!(
                "block {number} in {} holds a block numbered {stored:?}",
                self.dir.display()
            )));
        }
        Ok(Some(block))
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
}

fn writer_failed() -> LedgerError {
    LedgerError::Io(io::Error::other(
        "ledger writer stopped after an earlier failure; reopen the ledger to recover",
    ))
}

/// Refuses a folder that holds the ledger files of the format before the shared store.
fn refuse_old_format(dir: &Path) -> Result<(), LedgerError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        let old_data = name
            .strip_prefix(NAMES.prefix)
            .and_then(|rest| rest.strip_suffix(NAMES.data_suffix))
            .is_some_and(|digits| digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()));
        if name == "index.dat" || old_data {
            return Err(LedgerError::OldFormat(
                dir.join(&*name).display().to_string(),
            ));
        }
    }
    Ok(())
}
