//! The Raft log's fsyncs, off openraft's core: `append` returns once its entries are written
//! (readable, as openraft's contract asks), and this thread makes them durable, then tells
//! openraft through the append's callback. Appends that come while an fsync runs share the next
//! one (group commit), so the core goes on replicating while the disk works.

use std::io;
use std::sync::mpsc;

use openraft::storage::LogFlushed;
use tokio::sync::oneshot;

use super::TypeConfig;
use crate::log::{LogError, SyncPoint};

enum Job {
    /// Make the appends up to this point durable, then call back.
    Flush(SyncPoint, LogFlushed<TypeConfig>),
    /// Answered once every flush queued before it is done.
    Barrier(oneshot::Sender<()>),
}

/// The handle of one Raft log's fsync thread; the thread ends when the handle is dropped.
pub struct Flusher {
    jobs: mpsc::Sender<Job>,
}

impl Flusher {
    pub fn start(channel: &str) -> io::Result<Flusher> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("raft-fsync-{channel}"))
            .spawn(move || run(queue))?;
        Ok(Flusher { jobs })
    }

    /// Fsyncs `point` soon, then calls `callback` with the outcome.
    pub fn flush(&self, point: SyncPoint, callback: LogFlushed<TypeConfig>) {
        if let Err(mpsc::SendError(Job::Flush(_, callback))) =
            self.jobs.send(Job::Flush(point, callback))
        {
            callback.log_io_completed(Err(io::Error::other(
                "the raft log's fsync thread has stopped",
            )));
        }
    }

    /// Waits until every flush asked for so far has completed (a truncation must not overtake
    /// the fsync of the entries it removes: openraft would hear of them as flushed after).
    pub async fn drain(&self) {
        let (done, wait) = oneshot::channel();
        if self.jobs.send(Job::Barrier(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

fn run(queue: mpsc::Receiver<Job>) {
    // After a failed fsync nothing written since can be trusted to be durable (a retried fsync
    // may succeed without the lost pages): every later flush fails too, and openraft stops.
    let mut failed: Option<String> = None;
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        jobs.extend(queue.try_iter());
        let mut point = SyncPoint::default();
        for job in &mut jobs {
            if let Job::Flush(covered, _) = job {
                point.merge(std::mem::take(covered));
            }
        }
        if failed.is_none() {
            if let Err(e) = point.sync() {
                failed = Some(format!(
                    "fsync of the raft log failed: {}",
                    LogError::from(e)
                ));
            }
        }
        for job in jobs {
            match job {
                Job::Flush(_, callback) => callback.log_io_completed(match &failed {
                    None => Ok(()),
                    Some(e) => Err(io::Error::other(e.clone())),
                }),
                Job::Barrier(done) => {
                    let _ = done.send(());
                }
            }
        }
    }
}
