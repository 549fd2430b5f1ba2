//! The client-facing gRPC service, Fabric's `orderer.AtomicBroadcast`, over the node's channels.

pub mod binding;
pub mod broadcast;
pub mod cluster;
pub mod connections;
pub mod deliver;
pub mod outbox;

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use ordo_proto::common::Envelope;
use ordo_proto::orderer::BroadcastResponse;
use ordo_proto::ordo::DeliverFrame;
use ordo_proto::stored::atomic_broadcast_server::AtomicBroadcast;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use connections::{ConnectionInfo, StreamGuard};
use ordo_core::processor::Rejection;

/// The channels the services look requests up in: the node's registrar (named so here to keep
/// the services' signatures as they are).
use crate::registrar::Registrar;

/// The Fabric status for a request message that could not be received, or `None` if the
/// stream broke (the client is gone and there is no one to answer). Logged at debug: a client
/// can cause it at will.
pub(crate) fn refusal_of(status: &tonic::Status) -> Option<Rejection> {
    // A status made from a transport error (a reset stream, a broken connection) carries it as
    // its source; tonic's own decode refusals carry none.
    let transport = std::error::Error::source(status).is_some();
    let rejection = match (transport, status.code()) {
        // tonic's answer to a message over the decode limit, before reading its body.
        (false, tonic::Code::OutOfRange | tonic::Code::ResourceExhausted) => Rejection::new(
            ordo_proto::common::Status::RequestEntityTooLarge,
            format!("message refused: {}", status.message()),
        ),
        // tonic's answer to bytes that are not a protobuf message or a gRPC frame.
        (false, tonic::Code::Internal | tonic::Code::InvalidArgument) => Rejection::bad_request(
            format!("message could not be decoded: {}", status.message()),
        ),
        _ => {
            tracing::debug!(code = ?status.code(), message = status.message(), "request stream broke");
            return None;
        }
    };
    tracing::debug!(status = ?rejection.status, info = %rejection.info, "unreadable request message");
    Some(rejection)
}

/// What the service needs besides its channels.
#[derive(Clone)]
pub struct ServiceSettings {
    /// This node's identity: it signs the CONFIG envelopes made of config updates.
    pub signer: std::sync::Arc<ordo_core::msp::SigningIdentity>,
    /// Fabric's clock-skew window for envelope timestamps (zero: off).
    pub time_window: Duration,
    /// Bytes of envelopes one Broadcast stream may have awaiting their commit.
    pub broadcast_stream_bytes: usize,
    /// Bytes of blocks Deliver streams may queue, and how many streams may.
    pub deliver_budget: outbox::Budget,
    /// Envelopes must carry their connection's client certificate hash (`tls.enabled` and
    /// `tls.client_auth_required`).
    pub tls_binding: bool,
    /// Whether Broadcast is served (not on the cluster port, whose AtomicBroadcast is there for
    /// followers' Deliver).
    pub broadcast: bool,
}

pub struct AtomicBroadcastService {
    registrar: Registrar,
    settings: ServiceSettings,
}

impl AtomicBroadcastService {
    pub fn new(registrar: Registrar, settings: ServiceSettings) -> Self {
        AtomicBroadcastService {
            registrar,
            settings,
        }
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Broadcast answers queued per stream: they are small, so a count bounds their bytes.
const BROADCAST_QUEUE: usize = 64;

/// A response stream that keeps its connection busy for as long as it lives, that is until
/// hyper has sent or dropped the last of it (the idle timeout closes only connections without
/// streams).
struct Guarded<S> {
    stream: S,
    _guard: Option<StreamGuard>,
}

impl<S> Guarded<S> {
    fn new<T>(request: &Request<T>, stream: S) -> Guarded<S> {
        let guard = request
            .extensions()
            .get::<ConnectionInfo>()
            .map(|info| info.activity.stream());
        Guarded {
            stream,
            _guard: guard,
        }
    }
}

impl<S: Stream + Unpin> Stream for Guarded<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<S::Item>> {
        Pin::new(&mut self.stream).poll_next(cx)
    }
}

#[tonic::async_trait]
impl AtomicBroadcast for AtomicBroadcastService {
    type BroadcastStream = ResponseStream<BroadcastResponse>;
    type DeliverStream = ResponseStream<DeliverFrame>;

    /// Each stream is served by a task of its own, writing into a bounded queue: a slow or
    /// stalled client holds back only itself.
    async fn broadcast(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::BroadcastStream>, Status> {
        if !self.settings.broadcast {
            return Err(Status::unimplemented(
                "Broadcast is served on the client port, not on the cluster port",
            ));
        }
        let (tx, rx) = mpsc::channel(BROADCAST_QUEUE);
        let responses = Guarded::new(&request, ReceiverStream::new(rx));
        let binding = binding::Binding::of(&request, self.settings.tls_binding);
        let open = crate::metrics::global().broadcast_stream();
        let served = broadcast::serve(
            self.registrar.clone(),
            self.settings.clone(),
            request.into_inner(),
            tx,
            binding,
        );
        tokio::spawn(async move {
            served.await;
            drop(open);
        });
        Ok(Response::new(Box::pin(responses)))
    }

    async fn deliver(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverStream>, Status> {
        let (outbox, queued) = self.settings.deliver_budget.outbox();
        let responses = Guarded::new(&request, queued);
        let binding = binding::Binding::of(&request, self.settings.tls_binding);
        let open = crate::metrics::global().deliver_stream();
        let served = deliver::serve(
            self.registrar.clone(),
            self.settings.time_window,
            request.into_inner(),
            outbox,
            binding,
        );
        tokio::spawn(async move {
            served.await;
            drop(open);
        });
        Ok(Response::new(Box::pin(responses)))
    }
}
