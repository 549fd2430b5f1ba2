//! The responses queued for one server stream, bounded by bytes: at most `stream_bytes` for the
//! stream and, beyond each stream's first response, `total_bytes` for all streams sharing a
//! [`Budget`]; and at most `max_streams` streams may have taken a slot ([`Outbox::open`]) at once,
//! each until its response stream is dropped. A response larger than a bound takes the whole
//! bound, so it is queued alone. Bytes are given back when gRPC asks for the next response, that
//! is once the previous one is encoded and handed to HTTP/2, whose flow control then holds the
//! sender back: a slow reader slows its stream, and never grows the node's memory.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// The byte budget shared by the streams of one service.
#[derive(Clone)]
pub struct Budget {
    total: Arc<Semaphore>,
    total_bytes: u32,
    stream_bytes: u32,
    streams: Arc<Semaphore>,
}

impl Budget {
    pub fn new(total_bytes: u32, stream_bytes: u32, max_streams: usize) -> Budget {
        Budget {
            total: Arc::new(Semaphore::new(total_bytes as usize)),
            total_bytes,
            stream_bytes: stream_bytes.min(total_bytes),
            streams: Arc::new(Semaphore::new(max_streams)),
        }
    }

    /// A new stream's queue: its sending half and the stream tonic sends from.
    pub fn outbox<T: prost::Message>(&self) -> (Outbox<T>, Queued<T>) {
        // The byte bounds limit the queue; the count only has to be above what they admit.
        let (tx, rx) = mpsc::channel(1024);
        let slot = Arc::new(OnceLock::new());
        let outbox = Outbox {
            tx,
            budget: self.clone(),
            stream: Arc::new(Semaphore::new(self.stream_bytes as usize)),
            own: Arc::new(Semaphore::new(1)),
            slot: slot.clone(),
        };
        let queued = Queued {
            rx,
            held: None,
            _slot: slot,
        };
        (outbox, queued)
    }
}

type Item<T> = (Result<T, tonic::Status>, Held);
/// The response's bytes of its stream, and either its stream's own slot or bytes of the pool.
type Held = (OwnedSemaphorePermit, OwnedSemaphorePermit);

/// The sending half: waits for room in both bounds before queueing.
pub struct Outbox<T> {
    tx: mpsc::Sender<Item<T>>,
    budget: Budget,
    stream: Arc<Semaphore>,
    /// The one response this stream may queue outside the shared pool.
    own: Arc<Semaphore>,
    /// The stream's slot under `max_streams`, shared with [`Queued`]: it is given back once both
    /// halves are dropped, when nothing of the stream is held any more.
    slot: Slot,
}

type Slot = Arc<OnceLock<OwnedSemaphorePermit>>;

/// The client has gone: its stream was dropped.
#[derive(Debug)]
pub struct Gone;

/// Every stream slot is taken.
#[derive(Debug)]
pub struct Busy;

impl<T: prost::Message> Outbox<T> {
    /// Takes a slot for this stream, if it has none yet; call it before sending what the
    /// stream's slot is for (a stream that only answers statuses needs none).
    pub fn open(&self) -> Result<(), Busy> {
        if self.slot.get().is_some() {
            return Ok(());
        }
        let permit = self
            .budget
            .streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy)?;
        // One task sends on a stream, so the slot is still empty here.
        let _ = self.slot.set(permit);
        Ok(())
    }

    pub async fn send(&self, response: T) -> Result<(), Gone> {
        let size = u32::try_from(response.encoded_len()).unwrap_or(u32::MAX);
        // Stream first: a stream waits for its own reader before taking from the shared pool.
        let stream = self
            .stream
            .clone()
            .acquire_many_owned(size.clamp(1, self.budget.stream_bytes));
        let stream = tokio::select! {
            permit = stream => permit.map_err(|_| Gone)?,
            _ = self.tx.closed() => return Err(Gone),
        };
        // One response per stream is queued outside the shared pool (whichever comes first):
        // readers that stopped reading and hold the pool must not stall the readers that read.
        let shared = self
            .budget
            .total
            .clone()
            .acquire_many_owned(size.clamp(1, self.budget.total_bytes));
        let total = tokio::select! {
            biased;
            permit = self.own.clone().acquire_owned() => permit.map_err(|_| Gone)?,
            permit = shared => permit.map_err(|_| Gone)?,
            _ = self.tx.closed() => return Err(Gone),
        };
        self.tx
            .send((Ok(response), (stream, total)))
            .await
            .map_err(|_| Gone)
    }

    /// Resolves when the client has gone.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

/// The receiving half, for tonic: each response's bytes are held until the next one is asked for.
pub struct Queued<T> {
    rx: mpsc::Receiver<Item<T>>,
    held: Option<Held>,
    _slot: Slot,
}

impl<T> Stream for Queued<T> {
    type Item = Result<T, tonic::Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.held = None;
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some((item, held))) => {
                this.held = Some(held);
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{FutureExt, StreamExt};
    use ordo_proto::common::Envelope;
    use std::time::Duration;

    fn message(bytes: usize) -> Envelope {
        Envelope {
            payload: vec![7; bytes].into(),
            signature: Default::default(),
        }
    }

    /// Whether `send` completes at once, without the reader taking anything.
    async fn sends_now(outbox: &Outbox<Envelope>, bytes: usize) -> bool {
        outbox.send(message(bytes)).now_or_never().is_some()
    }

    #[tokio::test]
    async fn a_stream_queues_up_to_its_bytes_and_a_big_message_alone() {
        let budget = Budget::new(1 << 20, 10_000, 4);
        let (outbox, mut queued) = budget.outbox::<Envelope>();
        assert!(sends_now(&outbox, 4_000).await);
        assert!(sends_now(&outbox, 4_000).await);
        assert!(!sends_now(&outbox, 4_000).await, "over the stream's bytes");
        // Taking the first two frees their bytes once the next is asked for.
        queued.next().await.unwrap().unwrap();
        queued.next().await.unwrap().unwrap();
        assert!(futures::poll!(queued.next()).is_pending());
        assert!(
            sends_now(&outbox, 50_000).await,
            "larger than the bound: alone"
        );
        assert!(!sends_now(&outbox, 10).await);
    }

    #[tokio::test]
    async fn streams_share_the_total_beyond_their_first_response() {
        let budget = Budget::new(10_000, 8_000, 4);
        let (a, _qa) = budget.outbox::<Envelope>();
        let (b, mut qb) = budget.outbox::<Envelope>();
        assert!(sends_now(&a, 1_000).await, "a's first: outside the total");
        assert!(sends_now(&a, 6_000).await);
        assert!(sends_now(&b, 1_000).await, "b's first: outside the total");
        assert!(!sends_now(&b, 5_000).await, "a holds most of the total");
        assert!(sends_now(&b, 3_000).await);
        // b's reader taking its responses frees b's bytes, not a's.
        qb.next().await.unwrap().unwrap();
        qb.next().await.unwrap().unwrap();
        let _ = qb.next().now_or_never();
        assert!(sends_now(&b, 5_000).await, "b's first again");
        assert!(!sends_now(&b, 4_000).await);
        assert!(sends_now(&b, 2_500).await);
    }

    #[tokio::test]
    async fn a_reader_that_reads_goes_on_while_others_hold_the_pool() {
        let budget = Budget::new(10_000, 9_000, 4);
        let (stalled, _never_read) = budget.outbox::<Envelope>();
        assert!(sends_now(&stalled, 1_000).await);
        assert!(sends_now(&stalled, 7_000).await, "the pool is now taken");
        let (reader, mut queued) = budget.outbox::<Envelope>();
        let reader = Arc::new(reader);
        assert!(sends_now(&reader, 3_000).await);
        let waiting = tokio::spawn({
            let reader = reader.clone();
            async move { reader.send(message(3_000)).await }
        });
        // Taking the first response and asking for the next frees the stream's own slot.
        queued.next().await.unwrap().unwrap();
        let next = tokio::time::timeout(Duration::from_secs(5), queued.next())
            .await
            .expect("the waiting send goes through");
        assert!(next.unwrap().is_ok());
        waiting.await.unwrap().unwrap();
    }

    #[test]
    fn a_stream_slot_is_held_until_both_halves_are_gone() {
        let budget = Budget::new(1_000, 1_000, 1);
        let (a, queued_a) = budget.outbox::<Envelope>();
        let (b, _queued_b) = budget.outbox::<Envelope>();
        a.open().unwrap();
        a.open().unwrap();
        assert!(b.open().is_err(), "the only slot is a's");
        drop(a);
        assert!(b.open().is_err(), "a's responses may still be queued");
        drop(queued_a);
        b.open().unwrap();
    }

    #[tokio::test]
    async fn a_dropped_reader_ends_a_waiting_send() {
        let budget = Budget::new(1_000, 1_000, 4);
        let (outbox, queued) = budget.outbox::<Envelope>();
        assert!(sends_now(&outbox, 1_000).await);
        let waiting = tokio::spawn(async move { outbox.send(message(10)).await });
        drop(queued);
        let result = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the send ends")
            .expect("task");
        assert!(result.is_err());
    }
}
