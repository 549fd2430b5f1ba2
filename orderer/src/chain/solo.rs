//! Solo: one node orders alone, over its local unreplicated [`Partition`]; an offset is the
//! partition's dense record counter.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use ordo_proto::ordo::SoloMetadata;
use prost::Message;

use super::{Chain, ChainError};
use crate::log::{Partition, Record};

pub struct SoloChain {
    partition: Arc<Partition>,
    halted: AtomicBool,
}

impl SoloChain {
    pub fn new(partition: Arc<Partition>) -> Arc<SoloChain> {
        Arc::new(SoloChain {
            partition,
            halted: AtomicBool::new(false),
        })
    }
}

impl Chain for SoloChain {
    fn kind(&self) -> &'static str {
        "solo"
    }

    fn order(&self, record: Bytes) -> BoxFuture<'_, Result<u64, ChainError>> {
        Box::pin(async move { Ok(self.partition.produce(record).await?) })
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
