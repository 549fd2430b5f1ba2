//! Deliver: stream a channel's blocks from the ledger to a reader.
//!
//! Each request on the stream is a signed envelope carrying a SeekInfo. Blocks of the range are
//! sent in order, then a SUCCESS status, and the stream stays open for the next request. A failure
//! ends the stream with its status: BAD_REQUEST (malformed), NOT_FOUND (unknown channel, or a
//! block not there under FAIL_IF_NOT_READY), FORBIDDEN (signature or readers policy, re-checked
//! before every block), SERVICE_UNAVAILABLE (the channel cannot serve).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use ordo_proto::common::{Envelope, HeaderType, Status};
use ordo_proto::orderer::seek_info::{SeekBehavior, SeekContentType};
use ordo_proto::orderer::{seek_position, SeekInfo, SeekPosition};
use ordo_proto::ordo::{deliver_frame, DeliverFrame};
use prost::Message;
use tonic::Streaming;

use crate::channel::Channel;
use crate::registrar::Registrar;
use crate::server;
use crate::server::binding::Binding;
use crate::server::outbox::Outbox;
use ordo_core::msp::Identity;
use ordo_core::processor::{self, Rejection};

type Sender = Outbox<DeliverFrame>;

pub async fn serve(
    registrar: Registrar,
    time_window: Duration,
    mut inbound: Streaming<Envelope>,
    tx: Sender,
    binding: Option<Binding>,
) {
    while let Some(request) = inbound.next().await {
        let outcome = match request {
            Ok(request) => match binding.map(|b| b.check(&request)) {
                Some(Err(refusal)) => Err(Ended::Refused(refusal)),
                _ => serve_request(&registrar, time_window, &request, &tx).await,
            },
            Err(status) => match server::refusal_of(&status) {
                Some(rejection) => Err(Ended::Refused(rejection)),
                None => return,
            },
        };
        let status = match outcome {
            Ok(()) => Status::Success,
            Err(Ended::ClientGone) => return,
            Err(Ended::Refused(r)) => {
                tracing::debug!(status = ?r.status, info = %r.info, "deliver request refused");
                r.status
            }
        };
        let response = DeliverFrame {
            r#type: Some(deliver_frame::Type::Status(status as i32)),
        };
        if tx.send(response).await.is_err() || status != Status::Success {
            return;
        }
    }
}

enum Ended {
    ClientGone,
    Refused(Rejection),
}

impl From<Rejection> for Ended {
    fn from(r: Rejection) -> Self {
        Ended::Refused(r)
    }
}

/// A checked request: the channel, who asks, and the range.
struct Seek {
    channel: Arc<Channel>,
    reader: Identity,
    /// The creator as sent: decoded again under each new configuration.
    creator: bytes::Bytes,
    /// The configuration sequence `reader` was last checked under.
    checked_at: u64,
    info: SeekInfo,
}

fn check(
    registrar: &Registrar,
    time_window: Duration,
    request: &Envelope,
) -> Result<Seek, Rejection> {
    let parsed = processor::parse(request)?;
    processor::check_timestamp(&parsed, SystemTime::now(), time_window)?;
    let headers = &parsed.headers;
    if headers.header_type != HeaderType::DeliverSeekInfo as i32 {
        return Err(Rejection::bad_request(format!(
            "a Deliver request has header type DELIVER_SEEK_INFO, not {}",
            headers.header_type
        )));
    }
    let channel = registrar.get(&headers.channel_id).ok_or_else(|| {
        Rejection::new(
            Status::NotFound,
            format!("channel {} does not exist", headers.channel_id),
        )
    })?;
    let bundle = channel.bundle();
    let reader = processor::authorize_reader(&bundle, headers, request)?;
    check_not_expired(&reader)?;
    let info = SeekInfo::decode(headers.data.as_ref())
        .map_err(|e| Rejection::bad_request(format!("payload data is not a SeekInfo: {e}")))?;
    Ok(Seek {
        channel: channel.clone(),
        reader,
        creator: headers.creator.clone(),
        checked_at: bundle.sequence(),
        info,
    })
}

/// Fabric ends a Deliver session once its client's certificate has expired.
fn check_not_expired(reader: &Identity) -> Result<(), Rejection> {
    match reader.not_after() {
        Some(not_after) if not_after < SystemTime::now() => {
            Err(Rejection::forbidden("deliver client identity expired"))
        }
        _ => Ok(()),
    }
}

impl Seek {
    /// The readers policy again, if the configuration changed since it was last checked.
    fn recheck(&mut self) -> Result<(), Rejection> {
        check_not_expired(&self.reader)?;
        let bundle = self.channel.bundle();
        if bundle.sequence() == self.checked_at {
            return Ok(());
        }
        self.reader = processor::deserialize(&bundle, &self.creator)?;
        processor::check_reader(&bundle, &self.reader)
            .map_err(|e| Rejection::forbidden(format!("no longer allowed to read: {}", e.info)))?;
        self.checked_at = bundle.sequence();
        Ok(())
    }
}

/// Resolves a seek position against the current height (`None` for a missing position).
fn resolve(position: Option<&SeekPosition>, height: u64) -> Option<u64> {
    Some(match position?.r#type.as_ref()? {
        seek_position::Type::Oldest(_) => 0,
        seek_position::Type::Newest(_) => height.saturating_sub(1),
        seek_position::Type::Specified(s) => s.number,
        seek_position::Type::NextCommit(_) => height,
    })
}

async fn serve_request(
    registrar: &Registrar,
    time_window: Duration,
    request: &Envelope,
    tx: &Sender,
) -> Result<(), Ended> {
    let mut seek = match check(registrar, time_window, request) {
        Ok(seek) => seek,
        Err(rejection) => {
            // Under its channel if this node serves it, else under "": a client naming made-up
            // channels cannot add metric series.
            let counters = processor::parse(request)
                .ok()
                .and_then(|parsed| registrar.get(&parsed.headers.channel_id))
                .map(|channel| channel.metrics().deliver.clone())
                .unwrap_or_else(|| crate::metrics::global().deliver_unknown_channel());
            counters.received();
            counters.completed(false);
            return Err(rejection.into());
        }
    };
    let counters = seek.channel.metrics().deliver.clone();
    counters.received();
    let served = serve_seek(&mut seek, tx).await;
    counters.completed(served.is_ok());
    served
}

/// Streams the blocks of a checked request.
async fn serve_seek(seek: &mut Seek, tx: &Sender) -> Result<(), Ended> {
    tx.open().map_err(|_| {
        Rejection::new(
            Status::ServiceUnavailable,
            "too many Deliver streams are open (limits.max_deliver_streams)",
        )
    })?;
    let ledger = seek.channel.ledger().clone();
    let height = ledger.height();
    let start = resolve(seek.info.start.as_ref(), height)
        .ok_or_else(|| Rejection::bad_request("SeekInfo has no start position"))?;
    let stop = resolve(seek.info.stop.as_ref(), height)
        .ok_or_else(|| Rejection::bad_request("SeekInfo has no stop position"))?;
    if start > stop {
        return Err(Rejection::bad_request(format!("start {start} is after stop {stop}")).into());
    }
    let fail_if_not_ready = seek.info.behavior == SeekBehavior::FailIfNotReady as i32;
    let headers_only = seek.info.content_type == SeekContentType::HeaderWithSig as i32;
    let mut heights = ledger.subscribe();
    let mut health = seek.channel.health();

    let mut number = start;
    loop {
        // Wait for the block, or fail at once if asked to.
        while *heights.borrow_and_update() <= number {
            if fail_if_not_ready {
                return Err(Rejection::new(
                    Status::NotFound,
                    format!("block {number} is not there yet"),
                )
                .into());
            }
            if !seek.channel.is_healthy() {
                return Err(
                    Rejection::new(Status::ServiceUnavailable, "the channel stopped").into(),
                );
            }
            tokio::select! {
                changed = heights.changed() => if changed.is_err() {
                    return Err(Rejection::new(Status::ServiceUnavailable, "the channel closed").into());
                },
                // Checked again at the top of the loop.
                _ = health.changed() => {}
                _ = tx.closed() => return Err(Ended::ClientGone),
            }
        }
        // The readers policy may have changed since the request was accepted.
        seek.recheck()?;
        let asked = std::time::Instant::now();
        let block = read_block(seek, &ledger, number, headers_only)?;
        let response = DeliverFrame {
            r#type: Some(deliver_frame::Type::Block(block)),
        };
        if tx.send(response).await.is_err() {
            return Err(Ended::ClientGone);
        }
        seek.channel.metrics().block_sent(asked.elapsed());
        if number == stop {
            return Ok(());
        }
        number += 1;
    }
}

/// Block `number` as the ledger stored it, or, for a reader that asked for headers and signatures
/// only, without its data.
fn read_block(
    seek: &Seek,
    ledger: &crate::ledger::Ledger,
    number: u64,
    headers_only: bool,
) -> Result<bytes::Bytes, Rejection> {
    let unreadable = |e: &dyn std::fmt::Display| {
        tracing::error!(channel = %seek.channel.id(), block = number, error = %e, "ledger read failed");
        Rejection::new(Status::ServiceUnavailable, "the ledger could not be read")
    };
    let vanished = || Rejection::new(Status::ServiceUnavailable, "block vanished from the ledger");
    if !headers_only {
        return ledger
            .block_bytes(number)
            .map_err(|e| unreadable(&e))?
            .ok_or_else(vanished);
    }
    let mut block = ledger
        .block(number)
        .map_err(|e| unreadable(&e))?
        .ok_or_else(vanished)?;
    block.data = None;
    Ok(block.encode_to_vec().into())
}
