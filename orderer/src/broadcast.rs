//! Broadcast: validate each envelope, produce it to its channel's log, answer once committed.
//!
//! Answers come in request order, one per envelope. Validation runs in order as envelopes
//! arrive; commits are awaited concurrently (up to [`IN_FLIGHT`] per stream) so a stream is not
//! limited to one fsync per envelope. As Fabric does, the stream ends after its first non-SUCCESS
//! answer, and nothing after a refused envelope is read.

use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use ordo_proto::common::{Envelope, Status};
use ordo_proto::orderer::BroadcastResponse;
use tokio::sync::mpsc;
use tonic::Streaming;

use crate::server::Channels;
use crate::validate::{self, Rejection};

/// Envelopes of one stream whose commit is awaited at once.
const IN_FLIGHT: usize = 1024;

pub async fn serve(
    channels: Channels,
    mut inbound: Streaming<Envelope>,
    tx: mpsc::Sender<Result<BroadcastResponse, tonic::Status>>,
) {
    let mut in_flight = FuturesOrdered::new();
    let mut reading = true;
    loop {
        tokio::select! {
            // Answers first: they free room for more envelopes.
            biased;
            Some(answer) = in_flight.next(), if !in_flight.is_empty() => {
                let answer: Result<(), Rejection> = answer;
                let response = match answer {
                    Ok(()) => BroadcastResponse { status: Status::Success as i32, info: String::new() },
                    Err(r) => BroadcastResponse { status: r.status as i32, info: r.info },
                };
                let failed = response.status != Status::Success as i32;
                if tx.send(Ok(response)).await.is_err() || failed {
                    break;
                }
            }
            message = inbound.next(), if reading && in_flight.len() < IN_FLIGHT => {
                match message {
                    Some(Ok(envelope)) => match admit(&channels, &envelope) {
                        Ok((channel, record)) => in_flight.push_back(
                            async move {
                                channel.produce(record).await.map(|_| ()).map_err(|e| {
                                    tracing::warn!(channel = %channel.id(), error = %e, "produce failed");
                                    Rejection::new(Status::ServiceUnavailable, format!("the log did not take the envelope: {e}"))
                                })
                            }
                            .boxed(),
                        ),
                        Err(rejection) => {
                            tracing::debug!(status = ?rejection.status, info = %rejection.info, "envelope refused");
                            in_flight.push_back(futures::future::ready(Err(rejection)).boxed());
                            reading = false;
                        }
                    },
                    // The client hung up or the stream broke: answer what was taken, then stop.
                    Some(Err(_)) | None => reading = false,
                }
            }
            else => break,
        }
    }
}

fn admit(
    channels: &Channels,
    envelope: &Envelope,
) -> Result<(std::sync::Arc<crate::channel::Channel>, bytes::Bytes), Rejection> {
    let parsed = validate::parse(envelope)?;
    let channel = channels.get(&parsed.channel_id).ok_or_else(|| {
        Rejection::new(
            Status::NotFound,
            format!("channel {} does not exist", parsed.channel_id),
        )
    })?;
    if !channel.is_healthy() {
        return Err(Rejection::new(
            Status::ServiceUnavailable,
            format!("channel {} is not serving", parsed.channel_id),
        ));
    }
    let record = channel.admit(envelope, &parsed)?;
    Ok((channel.clone(), record))
}
