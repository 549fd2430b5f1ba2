//! Pulling blocks over Deliver from the orderers that order a channel: one source at a time,
//! in turn, signed with this node's identity and (with TLS) bound to its cluster certificate.

use std::sync::Arc;

use futures::StreamExt;
use ordo_core::envelope;
use ordo_core::msp::SigningIdentity;
use ordo_proto::common::{Block, HeaderType, Status};
use ordo_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use ordo_proto::orderer::deliver_response;
use ordo_proto::orderer::seek_info::{SeekBehavior, SeekContentType};
use ordo_proto::orderer::{DeliverResponse, SeekInfo};

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

    /// Whether `source` is one of the sources.
    pub fn has_source(&self, source: &str) -> bool {
        self.sources.iter().any(|s| s == source)
    }

    /// The headers (blocks without their data) of blocks `start..=stop`, as `source` holds
    /// them now (it is refused if it has not got them all yet).
    pub async fn headers(&self, source: &str, start: u64, stop: u64) -> Result<Blocks, String> {
        self.deliver(
            source,
            start,
            stop,
            SeekBehavior::FailIfNotReady,
            SeekContentType::HeaderWithSig,
        )
        .await
    }

    /// Blocks from `start` on, following the chain as `source` grows it.
    pub async fn follow(&self, source: &str, start: u64) -> Result<Blocks, String> {
        self.deliver(
            source,
            start,
            u64::MAX,
            SeekBehavior::BlockUntilReady,
            SeekContentType::Block,
        )
        .await
    }

    async fn deliver(
        &self,
        source: &str,
        start: u64,
        stop: u64,
        behavior: SeekBehavior,
        content: SeekContentType,
    ) -> Result<Blocks, String> {
        let channel = crate::tls::dial(self.dialer.as_ref(), source)?;
        let mut client =
            AtomicBroadcastClient::new(channel).max_decoding_message_size(self.max_block_bytes);
        let binding = self
            .dialer
            .as_ref()
            .map(|d| bytes::Bytes::copy_from_slice(&d.tls_cert_hash()))
            .unwrap_or_default();
        let info = SeekInfo {
            start: Some(envelope::specified(start)),
            stop: Some(envelope::specified(stop)),
            behavior: behavior as i32,
            content_type: content as i32,
            ..Default::default()
        };
        let (request, _) = envelope::build_bound(
            &self.signer,
            &self.channel,
            HeaderType::DeliverSeekInfo,
            prost::Message::encode_to_vec(&info).into(),
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
