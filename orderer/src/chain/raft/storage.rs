//! openraft's storage, on the channel's partition: the Raft log *is* the partition (an entry's
//! Raft index is its record offset), so nothing is written twice. The vote is a small file
//! replaced atomically. The state machine holds only metadata (applied index, membership):
//! applying an entry just moves the commit point that consumers read up to.

use std::fmt::Debug;
use std::io::{self, Cursor, Write};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership, Vote,
};
use tokio::sync::watch;

use super::flush::Flusher;
use super::{codec, Entry, Node, NodeId, TypeConfig};
use crate::log::{LogError, Record, SegmentStore, StoreReader, SyncPoint};
use crate::store::Tail;

type StorageResult<T> = Result<T, StorageError<NodeId>>;

fn io_error(e: impl Into<LogError>) -> io::Error {
    io::Error::other(e.into().to_string())
}

/// The Raft log over a segment store.
pub struct LogStore {
    store: Arc<Mutex<SegmentStore>>,
    reader: LogReader,
    vote_path: PathBuf,
    flusher: Flusher,
}

/// A cheap, concurrent reader of the Raft log: the newest entries from memory, older ones
/// from the segment files.
#[derive(Clone)]
pub struct LogReader {
    reader: StoreReader,
    tail: Tail<Record>,
}

impl LogStore {
    /// The Raft log of `channel` over `store`, with its vote kept in `dir` and its newest
    /// `cache_bytes` of entries in memory; starts the log's fsync thread.
    pub fn open(
        store: SegmentStore,
        dir: &Path,
        channel: &str,
        cache_bytes: usize,
    ) -> Result<Self, LogError> {
        let reader = LogReader {
            reader: store.reader(),
            tail: Tail::new(cache_bytes),
        };
        Ok(LogStore {
            store: Arc::new(Mutex::new(store)),
            reader,
            vote_path: dir.join("vote.json"),
            flusher: Flusher::start(channel)?,
        })
    }

    pub fn reader(&self) -> LogReader {
        self.reader.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SegmentStore> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl LogReader {
    /// One past the last entry stored here (committed or not).
    pub fn end(&self) -> u64 {
        self.reader.next_offset()
    }

    /// Raw entries (encoded) from `from` up to `end`, about `max_bytes` at most (at least one).
    pub fn read_raw(&self, from: u64, end: u64, max_bytes: usize) -> Result<Vec<Record>, LogError> {
        match self.tail.read(from, end, max_bytes) {
            Some(records) => Ok(records),
            None => self.reader.read_range(from, end, max_bytes),
        }
    }

    fn entries(&self, start: u64, end: u64) -> Result<Vec<Entry>, io::Error> {
        let mut entries = Vec::new();
        let mut next = start;
        while next < end {
            let records = self.read_raw(next, end, 4 << 20).map_err(io_error)?;
            if records.is_empty() {
                break;
            }
            for record in records {
                next = record.offset + 1;
                entries.push(codec::decode(&record.payload).map_err(io::Error::other)?);
            }
        }
        Ok(entries)
    }

    fn last_log_id(&self) -> Result<Option<LogId<NodeId>>, io::Error> {
        let end = self.end();
        if end == self.reader.start_offset() {
            return Ok(None);
        }
        Ok(self.entries(end - 1, end)?.pop().map(|e| e.log_id))
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry>> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s + 1,
            Bound::Unbounded => self.reader.start_offset(),
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e + 1,
            Bound::Excluded(&e) => e,
            Bound::Unbounded => self.end(),
        }
        .min(self.end());
        self.entries(start, end)
            .map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry>> {
        self.reader.try_get_log_entries(range).await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last = self
            .reader
            .last_log_id()
            .map_err(|e| StorageIOError::read_logs(&e))?;
        // Ordo never purges by snapshot: the log is the partition, kept by Ordo's own retention.
        Ok(LogState {
            last_purged_log_id: None,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        let json = serde_json::to_vec(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        write_atomically(&self.vote_path, &json).map_err(|e| StorageIOError::write_vote(&e))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        match std::fs::read(&self.vote_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StorageIOError::read_vote(&e).into()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageIOError::read_vote(&e).into()),
        }
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Written here (readable on return, as openraft requires), made durable by the
        // flusher: openraft's core goes on replicating meanwhile.
        let written = (|| -> Result<SyncPoint, LogError> {
            let mut store = self.lock();
            let now = now_ms();
            for entry in entries {
                let (offset, payload) = (entry.log_id.index, codec::encode(&entry));
                store.append(offset, now, &payload)?;
                // Under the store's lock, so the tail follows the file's order.
                self.reader.tail.push(Record {
                    offset,
                    timestamp_ms: now,
                    payload,
                });
            }
            Ok(store.take_sync_point())
        })();
        match written {
            Ok(point) => {
                self.flusher.flush(point, callback);
                Ok(())
            }
            Err(e) => {
                let e = io_error(e);
                let error = StorageIOError::write_logs(&e);
                callback.log_io_completed(Err(e));
                Err(error.into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        tracing::info!(from = log_id.index, "truncating uncommitted raft entries");
        self.flusher.drain().await;
        let mut store = self.lock();
        // The tail first: a reader must not find there what the file no longer has.
        self.reader.tail.truncate_from(log_id.index);
        store
            .truncate_from(log_id.index)
            .map_err(|e| StorageIOError::write_logs(&io_error(e)).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        // Snapshots are off, so openraft has no reason to purge; the partition is kept whole.
        tracing::debug!(upto = log_id.index, "ignoring a raft purge");
        Ok(())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Writes a small file so that a crash leaves either the old or the new content.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The state machine: where the commit point is, and the membership.
pub struct StateMachine {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
    /// One past the last applied (committed) index: consumers read below it.
    committed: watch::Sender<u64>,
}

impl StateMachine {
    pub fn new(committed: watch::Sender<u64>) -> Self {
        StateMachine {
            last_applied: None,
            membership: StoredMembership::default(),
            committed,
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, Node>)> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<u64>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        for entry in entries {
            if let EntryPayload::Membership(m) = &entry.payload {
                self.membership = StoredMembership::new(Some(entry.log_id), m.clone());
            }
            self.last_applied = Some(entry.log_id);
            responses.push(entry.log_id.index);
        }
        if let Some(last) = self.last_applied {
            self.committed.send_replace(last.index + 1);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            last_applied: self.last_applied,
            membership: self.membership.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        _snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        // Never expected (nothing is purged, so a follower always gets the entries themselves);
        // keep the metadata consistent if it happens anyway.
        tracing::warn!(last = ?meta.last_log_id, "installing a metadata-only raft snapshot");
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        Ok(None)
    }
}

pub struct SnapshotBuilder {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("meta-{}", self.last_applied.map_or(0, |l| l.index)),
        };
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(Vec::new())),
        })
    }
}
