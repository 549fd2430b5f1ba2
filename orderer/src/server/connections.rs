//! Accepting client connections within bounds: at most `max_connections` at once (and at most
//! `max_connections_per_ip` from one address), each of which must open HTTP/2 within the
//! handshake timeout (with TLS: finish the TLS handshake, then open HTTP/2, within it) and is
//! closed after the idle timeout with no stream open. A connection over a
//! limit is closed at once, so the kernel's backlog and the node's descriptors never fill up with
//! clients that take a slot and say nothing.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::task::AtomicWaker;
use futures::Stream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::tls::PeerCertificates;

/// What every HTTP/2 client sends first (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// How often a refusal is logged at most: an attacker must not be able to flood the log.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How long accepting pauses after the listener fails (out of descriptors): retrying at once
/// would spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Clone, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub handshake_timeout: Duration,
    /// `None`: a connection may stay without streams (the cluster port, whose peers keep one
    /// connection for unary calls).
    pub idle_timeout: Option<Duration>,
}

/// The accepted connections of `listener` that opened HTTP/2 in time, for tonic's
/// `serve_with_incoming`. Accepting stops when the stream is dropped.
pub fn incoming(
    listener: TcpListener,
    limits: Limits,
    tls: Option<TlsAcceptor>,
) -> impl Stream<Item = io::Result<Connection>> + Send + 'static {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(accept(listener, limits, tls, tx));
    ReceiverStream::new(rx)
}

async fn accept(
    listener: TcpListener,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    ready: mpsc::Sender<io::Result<Connection>>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = Arc::new(PerIp::default());
    // One log line per interval for each kind of refusal.
    let mut failures = RefusalLog::default();
    let mut over_total = RefusalLog::default();
    let mut over_ip = RefusalLog::default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = ready.closed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                failures.note(|count| {
                    tracing::warn!(error = %e, failures = count, "accepting a connection failed");
                });
                tokio::select! {
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    _ = ready.closed() => return,
                }
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            over_total.note(|count| {
                tracing::warn!(
                    limit = limits.max_connections,
                    refused = count,
                    "connection limit reached: refusing connections (limits.max_connections)"
                );
            });
            continue;
        };
        let Some(ip_slot) = per_ip.acquire(peer.ip(), limits.max_connections_per_ip) else {
            drop(stream);
            over_ip.note(|count| {
                tracing::warn!(
                    %peer,
                    limit = limits.max_connections_per_ip,
                    refused = count,
                    "per-address connection limit reached: refusing connections \
                     (limits.max_connections_per_ip)"
                );
            });
            continue;
        };
        let ready = ready.clone();
        let limits = limits.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match handshake(stream, &limits, tls).await {
                Ok((stream, preface)) => {
                    let peer_certificates = stream.peer_certificates();
                    let peer_public_key = peer_certificates
                        .as_ref()
                        .and_then(|certs| certs.leaf())
                        .and_then(|leaf| crate::tls::public_key_of_der(leaf).ok())
                        .map(Arc::new);
                    let connection = Connection {
                        peer_certificates,
                        peer_public_key,
                        stream,
                        preface,
                        idle: limits.idle_timeout.map(IdleClose::new),
                        activity: Arc::new(Activity::default()),
                        _slots: (slot, ip_slot),
                    };
                    let _ = ready.send(Ok(connection)).await;
                }
                Err(e) => tracing::debug!(%peer, error = %e, "connection closed before HTTP/2"),
            }
        });
    }
}

/// Does the TLS handshake (if any) and reads the HTTP/2 preface, both within the handshake
/// timeout; the preface is replayed to the server.
async fn handshake(
    stream: TcpStream,
    limits: &Limits,
    tls: Option<TlsAcceptor>,
) -> io::Result<(Transport, Bytes)> {
    // Small messages must not wait for more to fill a packet (as gRPC servers do by default).
    stream.set_nodelay(true)?;
    let mut preface = [0u8; PREFACE.len()];
    let opening = async {
        let mut stream = match tls {
            Some(acceptor) => {
                Transport::Tls(Box::new(acceptor.accept(stream).await.map_err(|e| {
                    io::Error::new(e.kind(), format!("TLS handshake failed: {e}"))
                })?))
            }
            None => Transport::Plain(stream),
        };
        stream.read_exact(&mut preface).await?;
        io::Result::Ok(stream)
    };
    let stream = tokio::time::timeout(limits.handshake_timeout, opening)
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no TLS handshake and HTTP/2 preface within {:?}",
                    limits.handshake_timeout
                ),
            )
        })??;
    if &preface != PREFACE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the client does not speak HTTP/2",
        ));
    }
    Ok((stream, Bytes::from_static(PREFACE)))
}

/// Connections open per address.
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

impl PerIp {
    fn acquire(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<IpSlot> {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            table: self.clone(),
            ip,
        })
    }
}

struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Counts events between log lines, so a flood produces one line per interval.
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    count: u64,
}

impl RefusalLog {
    fn note(&mut self, log: impl FnOnce(u64)) {
        self.count += 1;
        if self
            .last
            .is_none_or(|at| at.elapsed() >= REFUSAL_LOG_INTERVAL)
        {
            log(self.count);
            self.last = Some(Instant::now());
            self.count = 0;
        }
    }
}

/// The streams open on a connection, so that it can be closed once idle. A request handler
/// holds a [`StreamGuard`] for as long as its stream is served.
#[derive(Default)]
pub struct Activity {
    open: AtomicUsize,
    /// Streams ended so far: the idle clock restarts after each, however short the stream was.
    ended: AtomicU64,
    /// The connection's reader, woken when the last stream ends to start the idle clock.
    waker: AtomicWaker,
}

impl Activity {
    pub fn stream(self: &Arc<Self>) -> StreamGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        StreamGuard(self.clone())
    }
}

pub struct StreamGuard(Arc<Activity>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.ended.fetch_add(1, Ordering::AcqRel);
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.waker.wake();
        }
    }
}

/// Connection facts tonic puts into every request's extensions.
#[derive(Clone)]
pub struct ConnectionInfo {
    pub tcp: TcpConnectInfo,
    pub activity: Arc<Activity>,
    /// With TLS, the client's verified certificate chain (leaf first), if it sent one.
    pub peer_certificates: Option<PeerCertificates>,
    /// The public key (SubjectPublicKeyInfo DER) of that chain's leaf, read once per
    /// connection: cluster calls are authorised by it.
    pub peer_public_key: Option<Arc<Vec<u8>>>,
}

/// A connection's byte stream: plain TCP, or TLS over it.
enum Transport {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Transport {
    fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(tcp) => tcp,
            Transport::Tls(tls) => tls.get_ref().0,
        }
    }

    fn peer_certificates(&self) -> Option<PeerCertificates> {
        match self {
            Transport::Plain(_) => None,
            Transport::Tls(tls) => tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|chain| PeerCertificates(Arc::new(chain.to_vec()))),
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(s) => s.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// The idle clock: it runs from the connection's start or its last stream's end, while no
/// stream is open.
struct IdleClose {
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    /// `Activity::ended` when the clock was last started.
    started_after: u64,
}

impl IdleClose {
    fn new(timeout: Duration) -> IdleClose {
        IdleClose {
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            started_after: 0,
        }
    }

    /// True once the connection has had no stream for the whole timeout.
    fn expired(&mut self, activity: &Activity, cx: &mut Context<'_>) -> bool {
        activity.waker.register(cx.waker());
        if activity.open.load(Ordering::Acquire) > 0 {
            return false;
        }
        let ended = activity.ended.load(Ordering::Acquire);
        if ended != self.started_after {
            self.sleep.as_mut().reset(Instant::now() + self.timeout);
            self.started_after = ended;
        }
        self.sleep.as_mut().poll(cx).is_ready()
    }
}

/// An accepted client connection: the TCP stream with its preface put back, holding its slots
/// under the limits until it is dropped.
pub struct Connection {
    stream: Transport,
    peer_certificates: Option<PeerCertificates>,
    peer_public_key: Option<Arc<Vec<u8>>>,
    preface: Bytes,
    idle: Option<IdleClose>,
    activity: Arc<Activity>,
    _slots: (OwnedSemaphorePermit, IpSlot),
}

impl Connected for Connection {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        ConnectionInfo {
            tcp: self.stream.tcp().connect_info(),
            activity: self.activity.clone(),
            peer_certificates: self.peer_certificates.clone(),
            peer_public_key: self.peer_public_key.clone(),
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.preface.is_empty() {
            let n = this.preface.len().min(buf.remaining());
            buf.put_slice(&this.preface.split_to(n));
            return Poll::Ready(Ok(()));
        }
        if let Some(idle) = &mut this.idle {
            if idle.expired(&this.activity, cx) {
                tracing::debug!(peer = ?this.stream.tcp().peer_addr().ok(), "closing an idle connection");
                // End of stream: the server closes the connection.
                return Poll::Ready(Ok(()));
            }
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
