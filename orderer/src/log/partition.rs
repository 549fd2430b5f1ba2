//! `Partition`: the solo (unreplicated) partition, built on a
//! [`SegmentStore`] with group commit.
//!
//! Produces are queued on a bounded channel (backpressure rather than an
//! unbounded queue) to one dedicated writer thread. The writer takes a
//! request, drains whatever else is already queued (up to a byte cap),
//! appends it all, fsyncs once, and only then advances the high watermark
//! and acknowledges each request. Concurrent producers thus share fsyncs,
//! and readers only ever see records that are durable.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use super::record::{self, Record};
use super::store::{PartitionConfig, SegmentStore, StoreReader};
use super::LogError;

/// Produce requests that may wait for the writer before producers block.
const QUEUE_CAPACITY: usize = 8192;
/// Payload bytes after which the writer stops adding requests to a group,
/// bounding the latency of one group.
const GROUP_MAX_BYTES: usize = 8 << 20;

enum Request {
    Produce(Produce),
    /// Sent by `close` to wake an idle writer so it notices the closed flag.
    Wake,
}

struct Produce {
    payloads: Vec<Bytes>,
    reply: oneshot::Sender<Result<u64, LogError>>,
}

/// A solo partition: durable, ordered, group-committed.
pub struct Partition {
    reader: StoreReader,
    /// `None` once closed.
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    closed: Arc<AtomicBool>,
    high_watermark: watch::Receiver<u64>,
    syncs: Arc<AtomicU64>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Partition {
    /// Opens (creating if needed) the partition in `dir`, recovers it, starts its writer thread.
    pub fn open(dir: &Path, config: PartitionConfig) -> Result<Arc<Partition>, LogError> {
        let store = SegmentStore::open(dir, config)?;
        let reader = store.reader();
        // Recovery leaves only whole, fsynced records: all are committed.
        let (watermark_tx, watermark_rx) = watch::channel(store.next_offset());
        let (requests_tx, requests_rx) = mpsc::channel(QUEUE_CAPACITY);
        let closed = Arc::new(AtomicBool::new(false));
        let syncs = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            store,
            requests: requests_rx,
            high_watermark: watermark_tx,
            closed: Arc::clone(&closed),
            syncs: Arc::clone(&syncs),
            broken: None,
        };
        let handle = std::thread::Builder::new()
            .name("ordo-log-writer".to_string())
            .spawn(move || writer.run())?;
        Ok(Arc::new(Partition {
            reader,
            requests: Mutex::new(Some(requests_tx)),
            closed,
            high_watermark: watermark_rx,
            syncs,
            writer: Mutex::new(Some(handle)),
        }))
    }

    /// Appends one record; resolves with its offset only after an fsync covers it.
    pub async fn produce(&self, payload: Bytes) -> Result<u64, LogError> {
        self.produce_batch(vec![payload]).await
    }

    /// Appends records contiguously; resolves with the first offset after the covering fsync.
    ///
    /// An empty batch appends nothing and resolves at once with the current
    /// high watermark (the offset the next record will get, once committed
    /// work drains).
    pub async fn produce_batch(&self, payloads: Vec<Bytes>) -> Result<u64, LogError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        if payloads.is_empty() {
            return Ok(self.high_watermark());
        }
        // Reject here what the store would reject, so one bad request cannot
        // fail the other requests of its group.
        if !payloads.iter().all(|p| record::fits(p.len())) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "record payload exceeds 4 GiB",
            )
            .into());
        }
        let sender = lock(&self.requests).clone().ok_or(LogError::Closed)?;
        let (reply, response) = oneshot::channel();
        sender
            .send(Request::Produce(Produce { payloads, reply }))
            .await
            .map_err(|_| LogError::Closed)?;
        // Don't hold the channel open while waiting for the fsync.
        drop(sender);
        response.await.map_err(|_| LogError::Closed)?
    }

    /// One past the last committed (durable) record: records below it are readable.
    pub fn high_watermark(&self) -> u64 {
        *self.high_watermark.borrow()
    }

    pub fn start_offset(&self) -> u64 {
        self.reader.start_offset()
    }

    /// Committed records from `from` (never past the high watermark), up to about max_bytes.
    ///
    /// `from == high_watermark()` gives an empty result; `from` beyond it, or
    /// below `start_offset()`, is [`LogError::OutOfRange`].
    pub fn read(&self, from: u64, max_bytes: usize) -> Result<Vec<Record>, LogError> {
        self.reader
            .read_range(from, self.high_watermark(), max_bytes)
    }

    /// Like read, but waits (long-poll) until at least one committed record at or past `from` exists.
    ///
    /// `from` below `start_offset()` fails at once; a `from` beyond the high
    /// watermark waits until the log reaches it. Resolves with
    /// [`LogError::Closed`] if the partition closes while waiting.
    pub async fn fetch(&self, from: u64, max_bytes: usize) -> Result<Vec<Record>, LogError> {
        let mut watermark = self.high_watermark.clone();
        loop {
            let committed = *watermark.borrow_and_update();
            if from < committed || from < self.start_offset() {
                return self.reader.read_range(from, committed, max_bytes);
            }
            if self.closed.load(Ordering::Acquire) {
                return Err(LogError::Closed);
            }
            if watermark.changed().await.is_err() {
                // The writer is gone, so nothing more will be committed;
                // serve what its last update made available, if anything.
                let committed = *watermark.borrow();
                if from < committed {
                    return self.reader.read_range(from, committed, max_bytes);
                }
                return Err(LogError::Closed);
            }
        }
    }

    /// Watch of the high watermark.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.high_watermark.clone()
    }

    /// Stops accepting produces, lets the writer finish what it has, and joins it. Idempotent.
    ///
    /// Blocks the calling thread until the writer has committed (or failed)
    /// the requests already queued.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Some(sender) = lock(&self.requests).take() {
            // If the queue is full the writer is busy and checks the flag
            // after its current group, so a failed wake-up is harmless.
            let _ = sender.try_send(Request::Wake);
        }
        let handle = lock(&self.writer).take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                tracing::error!("partition writer thread panicked");
            }
        }
    }

    /// Number of fsync rounds the writer has run (one per committed group).
    pub fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.close();
    }
}

/// The writer thread's state: sole owner of the store.
struct Writer {
    store: SegmentStore,
    requests: mpsc::Receiver<Request>,
    high_watermark: watch::Sender<u64>,
    closed: Arc<AtomicBool>,
    syncs: Arc<AtomicU64>,
    /// Set if the store could not be restored to its durable end after a
    /// failure: appending then could leave a hole, so every later request
    /// fails with this reason.
    broken: Option<String>,
}

impl Writer {
    fn run(mut self) {
        while let Some(first) = self.requests.blocking_recv() {
            let group = self.take_group(first);
            self.commit(group);
            if self.closed.load(Ordering::Acquire) {
                break;
            }
        }
        // Refuse new requests, then finish the ones already queued.
        self.requests.close();
        while let Ok(first) = self.requests.try_recv() {
            let group = self.take_group(first);
            self.commit(group);
        }
    }

    /// `first` plus whatever is already queued, up to about `GROUP_MAX_BYTES`.
    fn take_group(&mut self, first: Request) -> Vec<Produce> {
        let mut group = Vec::new();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(request) = next {
            if let Request::Produce(produce) = request {
                bytes += produce.payloads.iter().map(Bytes::len).sum::<usize>();
                group.push(produce);
            }
            if bytes >= GROUP_MAX_BYTES {
                break;
            }
            next = self.requests.try_recv().ok();
        }
        group
    }

    /// Appends a group, fsyncs once, then publishes and acknowledges it; on
    /// failure rolls the store back to its durable end and fails the group.
    fn commit(&mut self, group: Vec<Produce>) {
        if group.is_empty() {
            return;
        }
        if let Some(reason) = &self.broken {
            for produce in group {
                let error = io::Error::other(reason.clone());
                let _ = produce.reply.send(Err(error.into()));
            }
            return;
        }
        let durable_end = self.store.next_offset();
        let mut first_offsets = Vec::with_capacity(group.len());
        let result = self
            .append_group(&group, &mut first_offsets)
            .and_then(|()| {
                self.syncs.fetch_add(1, Ordering::Relaxed);
                self.store.sync()
            });
        match result {
            Ok(()) => {
                self.high_watermark.send_replace(self.store.next_offset());
                for (produce, first) in group.into_iter().zip(first_offsets) {
                    // A producer that stopped waiting is no concern here.
                    let _ = produce.reply.send(Ok(first));
                }
            }
            Err(error) => {
                tracing::error!(%error, requests = group.len(), "partition append failed");
                if let Err(rollback) = self.store.truncate_from(durable_end) {
                    tracing::error!(
                        error = %rollback,
                        durable_end,
                        "cannot roll the partition back to its durable end; refusing further appends"
                    );
                    self.broken = Some(format!(
                        "partition unusable after a failed append ({error}) and failed rollback ({rollback})"
                    ));
                }
                for produce in group {
                    let _ = produce.reply.send(Err(duplicate(&error)));
                }
            }
        }
    }

    fn append_group(
        &mut self,
        group: &[Produce],
        first_offsets: &mut Vec<u64>,
    ) -> Result<(), LogError> {
        let timestamp_ms = now_ms();
        for produce in group {
            first_offsets.push(self.store.next_offset());
            for payload in &produce.payloads {
                let offset = self.store.next_offset();
                self.store.append(offset, timestamp_ms, payload)?;
            }
        }
        Ok(())
    }
}

/// A copy of `error` for each request of a failed group (`io::Error` is not
/// `Clone`; its kind and message are kept).
fn duplicate(error: &LogError) -> LogError {
    match error {
        LogError::Io(e) => LogError::Io(io::Error::new(e.kind(), e.to_string())),
        LogError::Unavailable(reason) => LogError::Unavailable(reason.clone()),
        LogError::Corrupt {
            offset,
            path,
            reason,
        } => LogError::Corrupt {
            offset: *offset,
            path: path.clone(),
            reason: reason.clone(),
        },
        LogError::OutOfRange {
            requested,
            start,
            end,
        } => LogError::OutOfRange {
            requested: *requested,
            start: *start,
            end: *end,
        },
        LogError::Closed => LogError::Closed,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

// The guarded values (an optional sender or join handle) are only ever
// taken or cloned, so a poisoned lock still holds a usable value.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::time::Duration;

    fn config() -> PartitionConfig {
        PartitionConfig {
            segment_bytes: 16 << 10,
            index_interval_bytes: 512,
            ..Default::default()
        }
    }

    fn payload(task: usize, i: usize) -> Bytes {
        Bytes::from(format!("task {task} record {i}"))
    }

    #[test]
    fn partition_and_its_futures_are_thread_safe() {
        fn assert_send_sync<T: Send + Sync>(_: &T) {}
        fn assert_send<T: Send>(_: &T) {}
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = Partition::open(dir.path(), config()).expect("open");
        assert_send_sync(&partition);
        assert_send(&partition.produce(Bytes::new()));
        assert_send(&partition.produce_batch(Vec::new()));
        assert_send(&partition.fetch(0, 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_produces_share_fsyncs_and_survive_reopen() {
        const TASKS: usize = 8;
        const PER_TASK: usize = 500;
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = Partition::open(dir.path(), config()).expect("open");

        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let partition = Arc::clone(&partition);
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::with_capacity(PER_TASK);
                for i in 0..PER_TASK {
                    let offset = partition.produce(payload(task, i)).await.expect("produce");
                    // Acknowledged means committed, hence readable.
                    assert!(partition.high_watermark() > offset);
                    acked.push((offset, task, i));
                }
                acked
            }));
        }
        let mut acked = Vec::new();
        for task in tasks {
            acked.extend(task.await.expect("task"));
        }

        let total = TASKS * PER_TASK;
        let offsets: HashSet<u64> = acked.iter().map(|&(offset, _, _)| offset).collect();
        assert_eq!(offsets.len(), total, "offsets are distinct");
        assert_eq!(offsets.iter().max(), Some(&(total as u64 - 1)));
        assert_eq!(partition.high_watermark(), total as u64);
        let syncs = partition.sync_count();
        eprintln!("{total} records committed with {syncs} fsyncs");
        assert!(syncs < total as u64, "{syncs} fsyncs for {total} records");

        partition.close();
        assert!(matches!(
            partition.produce(Bytes::from_static(b"late")).await,
            Err(LogError::Closed)
        ));
        partition.close(); // idempotent
        drop(partition);

        let reopened = Partition::open(dir.path(), config()).expect("reopen");
        assert_eq!(reopened.high_watermark(), total as u64);
        let mut records = Vec::new();
        while (records.len()) < total {
            let batch = reopened.read(records.len() as u64, 64 << 10).expect("read");
            records.extend(batch);
        }
        for (offset, task, i) in acked {
            let record = &records[offset as usize];
            assert_eq!(record.offset, offset);
            assert_eq!(record.payload, payload(task, i));
        }
    }

    #[tokio::test]
    async fn produce_batch_is_contiguous_and_read_stops_at_watermark() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = Partition::open(dir.path(), config()).expect("open");
        assert_eq!(
            partition
                .produce(Bytes::from_static(b"a"))
                .await
                .expect("produce"),
            0
        );
        let batch = vec![Bytes::from_static(b"b"), Bytes::from_static(b"c")];
        assert_eq!(partition.produce_batch(batch).await.expect("batch"), 1);
        assert_eq!(partition.produce_batch(Vec::new()).await.expect("empty"), 3);
        assert_eq!(partition.high_watermark(), 3);
        assert_eq!(partition.start_offset(), 0);

        let records = partition.read(0, 1 << 20).expect("read");
        let payloads: Vec<&[u8]> = records.iter().map(|r| &r.payload[..]).collect();
        assert_eq!(payloads, [b"a", b"b", b"c"]);
        assert!(records[0].timestamp_ms > 0);
        assert!(partition.read(3, 100).expect("at end").is_empty());
        assert!(matches!(
            partition.read(4, 100),
            Err(LogError::OutOfRange {
                requested: 4,
                start: 0,
                end: 3
            })
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fetch_waits_for_a_produce() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = Partition::open(dir.path(), config()).expect("open");
        partition
            .produce(Bytes::from_static(b"first"))
            .await
            .expect("produce");
        let mut watermark = partition.subscribe();
        assert_eq!(*watermark.borrow_and_update(), 1);

        let mut waiting = Box::pin(partition.fetch(1, 1024));
        assert!(
            futures::poll!(waiting.as_mut()).is_pending(),
            "fetch past the end must wait"
        );

        partition
            .produce(Bytes::from_static(b"second"))
            .await
            .expect("produce");
        let records = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("fetch resolves")
            .expect("fetch");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].offset, 1);
        assert_eq!(&records[0].payload[..], b"second");
        watermark.changed().await.expect("watermark moved");
        assert_eq!(*watermark.borrow(), 2);

        // An immediate fetch below the watermark does not wait.
        assert_eq!(partition.fetch(0, 1).await.expect("fetch").len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_wakes_waiting_fetches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = Partition::open(dir.path(), config()).expect("open");
        let mut waiting = Box::pin(partition.fetch(0, 1024));
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        partition.close();
        let result = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("fetch resolves");
        assert!(matches!(result, Err(LogError::Closed)));
    }

    #[test]
    fn dropping_the_last_handle_stops_the_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = Partition::open(dir.path(), config()).expect("open");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime
            .block_on(partition.produce(Bytes::from_static(b"x")))
            .expect("produce");
        let mut watermark = partition.subscribe();
        assert_eq!(*watermark.borrow_and_update(), 1);
        drop(partition);
        // The writer owned the watermark's sender: it is gone once the
        // thread has exited.
        assert!(runtime.block_on(watermark.changed()).is_err());
    }
}
