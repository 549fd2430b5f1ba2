//! A connection to an orderer, as one client identity.

use std::sync::Arc;

use anyhow::Context;
use futures::StreamExt;
use ordo_core::envelope;
use ordo_core::msp::SigningIdentity;
use ordo_proto::common::{Block, Status};
use ordo_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use ordo_proto::orderer::seek_info::SeekBehavior;
use ordo_proto::orderer::{deliver_response, seek_position, SeekOldest, SeekPosition};
use tonic::transport::Channel;

/// Blocks can be as large as the channel's limits allow.
const MAX_MESSAGE: usize = 256 << 20;

#[derive(Clone)]
pub struct Client {
    pub endpoint: String,
    pub channel_id: String,
    pub signer: Arc<SigningIdentity>,
    grpc: AtomicBroadcastClient<Channel>,
}

impl Client {
    pub async fn connect(
        endpoint: &str,
        channel_id: &str,
        signer: SigningIdentity,
    ) -> anyhow::Result<Self> {
        let endpoint = if endpoint.contains("://") {
            endpoint.to_string()
        } else {
            format!("http://{endpoint}")
        };
        let grpc = AtomicBroadcastClient::connect(endpoint.clone())
            .await
            .with_context(|| format!("connecting to {endpoint}"))?
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        Ok(Client {
            endpoint,
            channel_id: channel_id.to_string(),
            signer: Arc::new(signer),
            grpc,
        })
    }

    pub fn grpc(&self) -> AtomicBroadcastClient<Channel> {
        self.grpc.clone()
    }

    /// Sends one envelope on a Broadcast stream of its own and returns the answer.
    pub async fn broadcast_one(
        &self,
        envelope: ordo_proto::common::Envelope,
    ) -> anyhow::Result<ordo_proto::orderer::BroadcastResponse> {
        let mut responses = self
            .grpc()
            .broadcast(futures::stream::iter([envelope]))
            .await
            .context("opening Broadcast")?
            .into_inner();
        responses
            .next()
            .await
            .context("Broadcast ended without an answer")?
            .context("Broadcast stream")
    }

    /// Opens a Deliver stream for blocks `start..=stop` (`u64::MAX` to follow the chain).
    pub async fn deliver(
        &self,
        start: u64,
        stop: u64,
        behavior: SeekBehavior,
    ) -> anyhow::Result<tonic::Streaming<ordo_proto::orderer::DeliverResponse>> {
        let request = envelope::seek(
            &self.signer,
            &self.channel_id,
            envelope::specified(start),
            envelope::specified(stop),
            behavior as i32,
        );
        self.deliver_request(request).await
    }

    /// Opens a Deliver stream with a request built by the caller (any SeekInfo, or a bad one).
    pub async fn deliver_request(
        &self,
        request: ordo_proto::common::Envelope,
    ) -> anyhow::Result<tonic::Streaming<ordo_proto::orderer::DeliverResponse>> {
        Ok(self
            .grpc()
            .deliver(futures::stream::iter([request]))
            .await
            .context("opening Deliver")?
            .into_inner())
    }

    /// Every block from 0 to the newest, as the orderer has them now.
    pub async fn read_chain(&self) -> anyhow::Result<Vec<Block>> {
        let oldest = SeekPosition {
            r#type: Some(seek_position::Type::Oldest(SeekOldest {})),
        };
        let newest = SeekPosition {
            r#type: Some(seek_position::Type::Newest(Default::default())),
        };
        let request = envelope::seek(
            &self.signer,
            &self.channel_id,
            oldest,
            newest,
            SeekBehavior::FailIfNotReady as i32,
        );
        let mut stream = self.deliver_request(request).await?;
        let mut blocks = Vec::new();
        while let Some(response) = stream.next().await {
            match response.context("Deliver stream")?.r#type {
                Some(deliver_response::Type::Block(block)) => blocks.push(block),
                Some(deliver_response::Type::Status(s)) if s == Status::Success as i32 => {
                    return Ok(blocks)
                }
                Some(deliver_response::Type::Status(s)) => {
                    anyhow::bail!("Deliver ended with status {:?}", Status::try_from(s))
                }
                None => anyhow::bail!("empty Deliver response"),
            }
        }
        anyhow::bail!("Deliver stream ended without a status")
    }
}
