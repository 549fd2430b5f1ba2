//! The client-facing gRPC service, Fabric's `orderer.AtomicBroadcast`, over the node's channels.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use ordo_proto::common::Envelope;
use ordo_proto::orderer::atomic_broadcast_server::AtomicBroadcast;
use ordo_proto::orderer::{BroadcastResponse, DeliverResponse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::channel::Channel;
use crate::{broadcast, deliver};

/// The channels a node serves, by id.
#[derive(Clone, Default)]
pub struct Channels(Arc<HashMap<String, Arc<Channel>>>);

impl Channels {
    pub fn new(channels: impl IntoIterator<Item = Arc<Channel>>) -> Self {
        Channels(Arc::new(
            channels
                .into_iter()
                .map(|c| (c.id().to_string(), c))
                .collect(),
        ))
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Channel>> {
        self.0.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Channel>> {
        self.0.values()
    }

    /// The largest envelope any channel accepts: the gRPC message limit must let it through, so
    /// that an oversized one gets REQUEST_ENTITY_TOO_LARGE rather than a transport error.
    pub fn max_envelope_bytes(&self) -> usize {
        self.iter()
            .map(|c| c.policy().absolute_max_bytes() as usize)
            .max()
            .unwrap_or(0)
    }
}

pub struct AtomicBroadcastService {
    channels: Channels,
}

impl AtomicBroadcastService {
    pub fn new(channels: Channels) -> Self {
        AtomicBroadcastService { channels }
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Each stream is served by a task of its own, writing into a small bounded queue: a slow or
/// stalled client holds back only itself.
const STREAM_QUEUE: usize = 64;

#[tonic::async_trait]
impl AtomicBroadcast for AtomicBroadcastService {
    type BroadcastStream = ResponseStream<BroadcastResponse>;
    type DeliverStream = ResponseStream<DeliverResponse>;

    async fn broadcast(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::BroadcastStream>, Status> {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        tokio::spawn(broadcast::serve(
            self.channels.clone(),
            request.into_inner(),
            tx,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn deliver(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverStream>, Status> {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        tokio::spawn(deliver::serve(
            self.channels.clone(),
            request.into_inner(),
            tx,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
