//! Solo: one node orders alone, over its local unreplicated [`Partition`]; an offset is the
//! partition's dense record counter.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::future::BoxFuture;
use ordo_proto::ordo::SoloMetadata;
use prost::Message;

use super::{Chain, ChainError, HealthProblem};
use crate::log::{LogError, Partition, Record};

pub struct SoloChain {
    partition: Arc<Partition>,
    halted: AtomicBool,
    /// Set while the last append to the log failed (disk full, I/O error): the `log` health
    /// check fails until an append succeeds again. The flag spares a successful append the lock.
    append_failing: AtomicBool,
    append_failure: Mutex<Option<String>>,
}

impl SoloChain {
    pub fn new(partition: Arc<Partition>) -> Arc<SoloChain> {
        Arc::new(SoloChain {
            partition,
            halted: AtomicBool::new(false),
            append_failing: AtomicBool::new(false),
            append_failure: Mutex::new(None),
        })
    }

    fn failure(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.append_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the `log` health check up to date with the outcome of an append.
    fn note_append(&self, result: &Result<u64, LogError>) {
        match result {
            Ok(_) => {
                if self.append_failing.swap(false, Ordering::AcqRel) {
                    *self.failure() = None;
                }
            }
            // Closing is the node stopping the chain, not the log failing.
            Err(LogError::Closed) => {}
            Err(e) => {
                *self.failure() = Some(e.to_string());
                self.append_failing.store(true, Ordering::Release);
            }
        }
    }
}

impl Chain for SoloChain {
    fn kind(&self) -> &'static str {
        "solo"
    }

    /// Solo has no consenters: Fabric reports its one node's relation as `other`.
    fn consensus_relation(&self) -> crate::metrics::ConsensusRelation {
        crate::metrics::ConsensusRelation::Other
    }

    fn order(&self, record: Bytes) -> BoxFuture<'_, Result<u64, ChainError>> {
        Box::pin(async move {
            let result = self.partition.produce(record).await;
            self.note_append(&result);
            Ok(result?)
        })
    }

    fn wait_ready(&self) -> BoxFuture<'_, Result<(), ChainError>> {
        // The local partition takes records as long as it is open.
        Box::pin(async move { self.errored().map_or(Ok(()), |_| Err(ChainError::Halted)) })
    }

    fn errored(&self) -> Option<String> {
        self.halted
            .load(Ordering::Acquire)
            .then(|| "the chain is halted".to_string())
    }

    fn halt(&self) -> BoxFuture<'_, ()> {
        self.halted.store(true, Ordering::Release);
        let partition = self.partition.clone();
        Box::pin(async move {
            // `close` joins the writer thread once it has committed what is queued: a blocking
            // wait, kept off the runtime's threads.
            if tokio::task::spawn_blocking(move || partition.close())
                .await
                .is_err()
            {
                tracing::error!("closing the partition panicked");
            }
        })
    }

    fn fetch(&self, from: u64, max_bytes: usize) -> BoxFuture<'_, Result<Vec<Record>, ChainError>> {
        Box::pin(async move { Ok(self.partition.fetch(from, max_bytes).await?) })
    }

    fn local_end(&self) -> u64 {
        self.partition.high_watermark()
    }

    fn block_metadata(&self, last_offset: u64) -> Bytes {
        SoloMetadata {
            last_offset: Some(last_offset),
        }
        .encode_to_vec()
        .into()
    }

    fn resume_after(&self, metadata: &[u8]) -> Option<u64> {
        let last = SoloMetadata::decode(metadata).ok()?.last_offset?;
        Some(last + 1)
    }

    fn health(&self) -> Option<HealthProblem> {
        if !self.append_failing.load(Ordering::Acquire) {
            return None;
        }
        let reason = self.failure().clone()?;
        Some(HealthProblem {
            check: "log",
            reason: format!("the last append to the channel's log failed: {reason}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::PartitionConfig;

    #[tokio::test]
    async fn metadata_round_trips_and_halt_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let chain =
            SoloChain::new(Partition::open(dir.path(), PartitionConfig::default()).unwrap());
        assert_eq!(chain.order(Bytes::from_static(b"a")).await.unwrap(), 0);
        assert_eq!(chain.order(Bytes::from_static(b"b")).await.unwrap(), 1);
        assert_eq!(chain.resume_after(&chain.block_metadata(1)), Some(2));
        assert_eq!(chain.resume_after(&[]), None);
        chain.wait_ready().await.unwrap();
        assert!(chain.errored().is_none());

        chain.halt().await;
        chain.halt().await;
        assert!(chain.errored().is_some());
        assert!(matches!(chain.wait_ready().await, Err(ChainError::Halted)));
        assert!(matches!(
            chain.order(Bytes::from_static(b"c")).await,
            Err(ChainError::Halted)
        ));
        // What was ordered before the halt is durable.
        let reopened = Partition::open(dir.path(), PartitionConfig::default()).unwrap();
        assert_eq!(reopened.high_watermark(), 2);
    }
}
