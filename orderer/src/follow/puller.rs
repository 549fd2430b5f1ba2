//! Pulling blocks over Deliver from the orderers that order a channel: one source at a time,
//! in turn, signed with this node's identity and (with TLS) bound to its cluster certificate.

use std::sync::Arc;

use futures::StreamExt;
use ordo_core::envelope;
use ordo_core::msp::SigningIdentity;
use ordo_proto::common::{Block, Status};
use ordo_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use ordo_proto::orderer::deliver_response;
use ordo_proto::orderer::seek_info::SeekBehavior;
use ordo_proto::orderer::DeliverResponse;

use crate::tls::Dialer;

/// Reaches a channel's consenters to pull its blocks.
pub struct Puller {
    channel: String,
    signer: Arc<SigningIdentity>,
    dialer: Option<Dialer>,
    /// Dial addresses of the consenters, in the config's order.
    sources: Vec<String>,
    turn: usize,
    /// The largest block accepted.
    max_block_bytes: usize,
}

/// Blocks arriving from one source.
pub struct Blocks {
    source: String,
    stream: tonic::Streaming<DeliverResponse>,
}

impl Puller {
    /// A puller with no sources yet ([`Puller::configure`]).
    pub fn new(channel: &str, signer: Arc<SigningIdentity>, dialer: Option<Dialer>) -> Puller {
        Puller {
            channel: channel.to_string(),
            signer,
            dialer,
            sources: Vec::new(),
            turn: 0,
            max_block_bytes: 0,
        }
    }

    /// Whom to pull from (the consenters' dial addresses, as the configuration in force lists
    /// them), and the largest block to take.
    pub fn configure(&mut self, sources: Vec<String>, max_block_bytes: usize) {
        if sources != self.sources {
            self.sources = sources;
            self.turn = 0;
        }
        self.max_block_bytes = max_block_bytes;
    }

    /// The next source in turn, if there is any.
    pub fn next_source(&mut self) -> Option<String> {
        let source = self
            .sources
            .get(self.turn % self.sources.len().max(1))?
            .clone();
        self.turn = self.turn.wrapping_add(1);
        Some(source)
    }

    /// Block `number` as `source` holds it now (refused if it has not got it yet).
    pub async fn block(&self, source: &str, number: u64) -> Result<Block, String> {
        let mut blocks = self
            .deliver(source, number, number, SeekBehavior::FailIfNotReady)
            .await?;
        blocks.next().await
    }

    /// Blocks from `start` on, following the chain as `source` grows it.
    pub async fn follow(&self, source: &str, start: u64) -> Result<Blocks, String> {
        self.deliver(source, start, u64::MAX, SeekBehavior::BlockUntilReady)
            .await
    }

    async fn deliver(
        &self,
        source: &str,
        start: u64,
        stop: u64,
        behavior: SeekBehavior,
    ) -> Result<Blocks, String> {
        let channel = crate::tls::dial(self.dialer.as_ref(), source)?;
        let mut client =
            AtomicBroadcastClient::new(channel).max_decoding_message_size(self.max_block_bytes);
        let binding = self
            .dialer
            .as_ref()
            .map(|d| bytes::Bytes::copy_from_slice(&d.tls_cert_hash()))
            .unwrap_or_default();
        let request = envelope::seek_bound(
            &self.signer,
            &self.channel,
            envelope::specified(start),
            envelope::specified(stop),
            behavior as i32,
            binding,
        );
        let stream = client
            .deliver(futures::stream::iter([request]))
            .await
            .map_err(|status| format!("Deliver refused: {}", status.message()))?
            .into_inner();
        Ok(Blocks {
            source: source.to_string(),
            stream,
        })
    }
}

impl Blocks {
    /// The next block; an error when the stream ends, breaks, or answers with a status.
    pub async fn next(&mut self) -> Result<Block, String> {
        match self.stream.next().await {
            Some(Ok(DeliverResponse {
                r#type: Some(deliver_response::Type::Block(block)),
            })) => Ok(block),
            Some(Ok(DeliverResponse {
                r#type: Some(deliver_response::Type::Status(status)),
            })) => Err(format!(
                "{} answered {}",
                self.source,
                Status::try_from(status)
                    .map_or_else(|_| status.to_string(), |s| s.as_str_name().to_string())
            )),
            Some(Ok(DeliverResponse { r#type: None })) => {
                Err(format!("{} sent an empty answer", self.source))
            }
            Some(Err(status)) => Err(format!(
                "the Deliver stream from {} broke: {}",
                self.source,
                status.message()
            )),
            None => Err(format!("{} ended the Deliver stream", self.source)),
        }
    }
}
