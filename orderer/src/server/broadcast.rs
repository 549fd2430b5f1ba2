//! Broadcast: admit each envelope (`ordo_core::processor`), produce it to its channel's log, answer
//! once committed. This module only streams and batches; the rules are the processor's.
//!
//! Answers come in request order, one per envelope. Envelopes that have already arrived are
//! validated together, so their signatures are checked in one batch; commits are awaited
//! concurrently (up to [`IN_FLIGHT`] per stream) so a stream is not limited to one fsync per
//! envelope. As Fabric does, the stream ends after its first non-SUCCESS answer, and nothing
//! after a refused envelope is produced or read.

use std::time::SystemTime;

use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use ordo_proto::common::{Envelope, Status};
use ordo_proto::orderer::BroadcastResponse;
use tokio::sync::mpsc;
use tonic::Streaming;

use crate::registrar::Registrar;
use crate::server::binding::Binding;
use crate::server::{self, ServiceSettings};
use ordo_core::processor::{self, ChannelView, Processor, Rejection};

/// Envelopes of one stream whose commit is awaited at once (their bytes are bounded too, by
/// `limits.broadcast_stream_bytes`).
const IN_FLIGHT: usize = 1024;
/// Most envelopes validated (and signature-checked) together.
const VERIFY_BATCH: usize = 64;

pub async fn serve(
    registrar: Registrar,
    settings: ServiceSettings,
    mut inbound: Streaming<Envelope>,
    tx: mpsc::Sender<Result<BroadcastResponse, tonic::Status>>,
    binding: Option<Binding>,
) {
    let mut in_flight = FuturesOrdered::new();
    // Bytes of the envelopes awaiting their commit: no more are read past the bound.
    let mut held = 0usize;
    let mut reading = true;
    let processor = Processor::new(settings.signer.clone(), settings.time_window);
    loop {
        tokio::select! {
            // Answers first: they free room for more envelopes.
            biased;
            Some((bytes, answer)) = in_flight.next(), if !in_flight.is_empty() => {
                let answer: Result<(), Rejection> = answer;
                held -= bytes;
                let response = match answer {
                    Ok(()) => BroadcastResponse { status: Status::Success as i32, info: String::new() },
                    Err(r) => BroadcastResponse { status: r.status as i32, info: r.info },
                };
                let failed = response.status != Status::Success as i32;
                if tx.send(Ok(response)).await.is_err() || failed {
                    break;
                }
            }
            message = inbound.next(),
                if reading && in_flight.len() < IN_FLIGHT && held < settings.broadcast_stream_bytes =>
            {
                let mut batch = Vec::new();
                // A message that could not be received ends the stream after the envelopes
                // before it, with an answer of its own if the client is still there.
                let mut unreadable = None;
                // Take what has already arrived, without waiting for more, up to the batch size
                // and the stream's byte bound.
                let mut next = Some(message);
                let mut gathered = 0;
                while let Some(message) = next.take() {
                    match message {
                        Some(Ok(envelope)) => {
                            gathered += envelope.payload.len() + envelope.signature.len();
                            batch.push(envelope);
                        }
                        Some(Err(status)) => {
                            unreadable = server::refusal_of(&status);
                            reading = false;
                        }
                        None => reading = false,
                    }
                    let room = batch.len() < VERIFY_BATCH.min(IN_FLIGHT - in_flight.len())
                        && held + gathered < settings.broadcast_stream_bytes;
                    if reading && room {
                        next = inbound.next().now_or_never();
                    }
                }
                // An envelope not bound to this connection's certificate ends the stream there,
                // as an unreadable message does.
                if let Some(binding) = &binding {
                    if let Some((i, refusal)) = batch
                        .iter()
                        .enumerate()
                        .find_map(|(i, e)| binding.check(e).err().map(|r| (i, r)))
                    {
                        batch.truncate(i);
                        unreadable = Some(refusal);
                        reading = false;
                    }
                }
                let arrived = std::time::Instant::now();
                let admitted = processor.admit(SystemTime::now(), &batch, |id| {
                    registrar.get(id).map(|channel| ChannelView {
                        handle: channel.clone(),
                        bundle: channel.bundle(),
                        healthy: channel.is_healthy(),
                    })
                });
                let refused = admitted.last().is_some_and(|a| a.is_err());
                let unreadable = unreadable.filter(|_| !refused).map(Err);
                // Results are in batch order; an unreadable message, if any, comes last.
                for (i, admitted) in admitted.into_iter().chain(unreadable).enumerate() {
                    match admitted {
                        Ok(admitted) => {
                            let (channel, record) = (admitted.channel, admitted.record);
                            let header_type = admitted.header_type;
                            let bytes = record.len();
                            held += bytes;
                            in_flight.push_back(
                                async move {
                                    let answer = channel.order(record).await.map(|_| ()).map_err(|e| {
                                        tracing::warn!(channel = %channel.id(), error = %e, "produce failed");
                                        Rejection::new(Status::ServiceUnavailable, format!("the envelope was not ordered: {e}"))
                                    });
                                    let status = if answer.is_ok() { Status::Success } else { Status::ServiceUnavailable };
                                    channel.metrics().broadcast_answered(header_type, status, arrived.elapsed());
                                    (bytes, answer)
                                }
                                .boxed(),
                            )
                        }
                        Err(rejection) => {
                            count_refusal(&registrar, batch.get(i), rejection.status);
                            tracing::debug!(status = ?rejection.status, info = %rejection.info, "envelope refused");
                            in_flight.push_back(futures::future::ready((0, Err(rejection))).boxed());
                            reading = false;
                            break;
                        }
                    }
                }
            }
            else => break,
        }
    }
}

/// Counts a refused envelope under its channel if this node serves it, else under channel ""
/// (so that a client naming made-up channels cannot add metric series).
fn count_refusal(registrar: &Registrar, envelope: Option<&Envelope>, status: Status) {
    let headers = envelope
        .and_then(|e| processor::parse(e).ok())
        .map(|parsed| parsed.headers);
    let counters = headers
        .as_ref()
        .and_then(|h| registrar.get(&h.channel_id))
        .map(|channel| channel.metrics().broadcast.clone())
        .unwrap_or_else(|| crate::metrics::global().unknown_channel());
    counters.processed(headers.map(|h| h.header_type), status);
}
