//! The node's HTTP servers (operations, channel participation): one way to serve an axum
//! [`Router`] on a TCP listener, over HTTP/1.1 or HTTP/2 (hyper-util picks by the connection's
//! preface), optionally behind TLS, within bounds a client cannot exceed.
//!
//! What every server gets from [`serve`], so that handlers need not think of it:
//! - TLS through an acceptor closure called once per accepted connection (a reloaded certificate
//!   takes effect for new connections), and the client's verified certificate chain, if any, in
//!   each request's extensions as [`PeerCertificates`];
//! - an `X-Request-Id` on every response: the request's own if it sent a sane one, else a new
//!   one (also in the request's extensions as [`RequestId`]);
//! - bounds: connections at once (more are closed as they arrive), streams per HTTP/2
//!   connection, bytes of a request body, and Fabric's timeouts: the request (headers and body,
//!   and the TLS handshake) must arrive within `read_timeout`; the handler must answer within
//!   `write_timeout`, and a response the client does not read for `write_timeout` is dropped; a
//!   connection without a request in progress for `read_timeout` is closed (so an idle one,
//!   HTTP/1 or HTTP/2, or one that never sends a byte, does not hold its slot);
//! - a graceful stop ([`Server::stop`]): no new connections, requests in progress may finish
//!   for a grace period, then what is left is cut.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_io_timeout::TimeoutStream;
use tower::ServiceExt;

/// Makes the TLS acceptor for one new connection (the TLS module's closures reload their
/// certificates; a fixed one just clones its acceptor).
pub type TlsAcceptorFn = Arc<dyn Fn() -> tokio_rustls::TlsAcceptor + Send + Sync>;

/// The certificate chain a TLS client presented and the server verified (leaf first), in a
/// request's extensions; absent without TLS or without a client certificate.
pub use crate::tls::PeerCertificates;

/// The request id answered in `X-Request-Id`, for handlers that log it.
#[derive(Clone, Debug)]
pub struct RequestId(pub HeaderValue);

pub const X_REQUEST_ID: &str = "x-request-id";

/// The bounds and transport of one server.
#[derive(Clone)]
pub struct Settings {
    /// For logs: which server this is ("operations", "participation").
    pub name: &'static str,
    /// Connections served at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Concurrent requests on one HTTP/2 connection.
    pub max_streams_per_connection: u32,
    /// Bytes of one request body; a larger one is answered 413.
    pub max_request_bytes: usize,
    /// The TLS handshake, and then each request's headers and body, must arrive within this
    /// (Fabric: 10 s); an idle keep-alive connection is closed after it too.
    pub read_timeout: Duration,
    /// A handler must answer within this, and a response may wait this long for the client to
    /// read it (Fabric: 2 min).
    pub write_timeout: Duration,
    /// TLS for every connection, if set.
    pub tls: Option<TlsAcceptorFn>,
}

impl Settings {
    /// Fabric's timeouts (10 s read, 2 min write) and modest bounds, without TLS.
    pub fn new(name: &'static str) -> Settings {
        Settings {
            name,
            max_connections: 64,
            max_streams_per_connection: 32,
            max_request_bytes: 1 << 20,
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(120),
            tls: None,
        }
    }
}

/// A running server.
pub struct Server {
    local_addr: SocketAddr,
    stop: oneshot::Sender<Duration>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets requests in progress finish for up to `grace`, then closes every
    /// connection; all of it is over when this resolves.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(grace);
        let _ = self.task.await;
    }
}

/// Serves `router` on `listener` until [`Server::stop`] (or until the server is dropped, which
/// stops it at once).
pub fn serve(listener: TcpListener, router: Router, settings: Settings) -> std::io::Result<Server> {
    let local_addr = listener.local_addr()?;
    let router = router
        .layer(middleware::from_fn_with_state(
            Bounds {
                read_timeout: settings.read_timeout,
                write_timeout: settings.write_timeout,
                max_request_bytes: settings.max_request_bytes,
            },
            bound_request,
        ))
        // The body was read under the bound already; extractors need not cut it again.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn(request_id));
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(accept_loop(listener, router, settings, stopped));
    Ok(Server {
        local_addr,
        stop,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    settings: Settings,
    mut stopped: oneshot::Receiver<Duration>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.max_streams_per_connection);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    // Set on stop: every connection finishes the requests it has, then closes.
    let (stopping, stop_watch) = watch::channel(false);
    let mut connections = JoinSet::new();
    let grace = loop {
        tokio::select! {
            grace = &mut stopped => break grace.unwrap_or_default(),
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, remote) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, most likely: the next accept may succeed once some
                        // connection closes; a brief pause keeps this from spinning meanwhile.
                        tracing::warn!(server = settings.name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::debug!(server = settings.name, %remote, "connection refused: max_connections reached");
                    continue;
                };
                let connection = Connection {
                    builder: builder.clone(),
                    router: router.clone(),
                    settings: settings.clone(),
                    remote,
                };
                let stop = stop_watch.clone();
                connections.spawn(async move {
                    connection.serve(tcp, stop).await;
                    drop(slot);
                });
            }
        }
    };
    drop(listener);
    stopping.send_replace(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::debug!(
            server = settings.name,
            "connections cut after the shutdown grace"
        );
    }
    connections.shutdown().await;
}

/// One accepted connection, and what serving it needs.
struct Connection {
    builder: auto::Builder<TokioExecutor>,
    router: Router,
    settings: Settings,
    remote: SocketAddr,
}

impl Connection {
    async fn serve(self, tcp: tokio::net::TcpStream, stop: watch::Receiver<bool>) {
        // A response the client does not read: each write may wait `write_timeout`. Reads are
        // bounded by the TLS and header timeouts, `bound_request` and the idle check, so that a
        // slow handler is not mistaken for a slow client.
        let mut io = TimeoutStream::new(tcp);
        io.set_write_timeout(Some(self.settings.write_timeout));
        let io = Box::pin(io);
        match self.settings.tls.clone() {
            None => self.serve_http(io, None, stop).await,
            Some(acceptor) => {
                let handshake = acceptor().accept(io);
                let tls = match tokio::time::timeout(self.settings.read_timeout, handshake).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(server = self.settings.name, remote = %self.remote, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(server = self.settings.name, remote = %self.remote, "TLS handshake timed out");
                        return;
                    }
                };
                let certificates = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .filter(|chain| !chain.is_empty())
                    .map(|chain| PeerCertificates(Arc::new(chain.to_vec())));
                self.serve_http(tls, certificates, stop).await
            }
        }
    }

    async fn serve_http<I>(
        self,
        io: I,
        certificates: Option<PeerCertificates>,
        mut stop: watch::Receiver<bool>,
    ) where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            builder,
            router,
            settings,
            remote,
        } = self;
        let activity = Activity::new();
        let requests = activity.clone();
        let service =
            hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                let in_progress = requests.begin();
                request.extensions_mut().insert(ConnectInfo(remote));
                if let Some(certificates) = &certificates {
                    request.extensions_mut().insert(certificates.clone());
                }
                let router = router.clone();
                async move {
                    let response: Result<Response, Infallible> =
                        router.oneshot(request.map(Body::new)).await;
                    drop(in_progress);
                    response
                }
            });
        let mut connection = std::pin::pin!(builder.serve_connection(TokioIo::new(io), service));
        let mut closing = false;
        loop {
            // While a request is in progress, look again after a read timeout.
            let idle_at = activity
                .idle_deadline(settings.read_timeout)
                .unwrap_or_else(|| Instant::now() + settings.read_timeout);
            tokio::select! {
                ended = connection.as_mut() => {
                    if let Err(e) = ended {
                        tracing::debug!(server = settings.name, %remote, error = %e, "connection ended");
                    }
                    return;
                }
                _ = stop.wait_for(|stop| *stop), if !closing => {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
                _ = tokio::time::sleep_until(idle_at), if !closing => {
                    let idle = activity
                        .idle_deadline(settings.read_timeout)
                        .is_some_and(|at| at <= Instant::now());
                    if idle {
                        tracing::debug!(server = settings.name, %remote, "idle connection closed");
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// Whether a connection has a request in progress, or since when it has had none.
struct Activity {
    /// Requests in progress, and when the last one ended (or the connection began).
    state: std::sync::Mutex<(usize, Instant)>,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            state: std::sync::Mutex::new((0, Instant::now())),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, Instant)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request started; it is in progress until the guard is dropped (its answer is ready).
    fn begin(self: &Arc<Self>) -> RequestGuard {
        self.lock().0 += 1;
        RequestGuard(self.clone())
    }

    /// When the connection will have been idle for `timeout`, if it is idle now.
    fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        let (in_progress, since) = *self.lock();
        (in_progress == 0).then_some(since + timeout)
    }
}

struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.0 -= 1;
        state.1 = Instant::now();
    }
}

#[derive(Clone, Copy)]
struct Bounds {
    read_timeout: Duration,
    write_timeout: Duration,
    max_request_bytes: usize,
}

/// Reads the whole request body under the byte bound and the read timeout, then lets the
/// handler answer within the write timeout.
async fn bound_request(
    axum::extract::State(bounds): axum::extract::State<Bounds>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > bounds.max_request_bytes as u64) {
        return too_large(bounds.max_request_bytes);
    }
    let limited = http_body_util::Limited::new(body, bounds.max_request_bytes);
    let bytes = match tokio::time::timeout(bounds.read_timeout, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return too_large(bounds.max_request_bytes)
        }
        Ok(Err(e)) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("reading the request body failed: {e}"),
            )
                .into_response()
        }
        Err(_) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {:?}",
                    bounds.read_timeout
                ),
            )
                .into_response()
        }
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    match tokio::time::timeout(bounds.write_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no answer within {:?}", bounds.write_timeout),
        )
            .into_response(),
    }
}

fn too_large(max: usize) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is over {max} bytes"),
    )
        .into_response()
}

/// Request ids a client may choose: short, printable, no spaces.
fn acceptable_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
}

fn new_request_id() -> HeaderValue {
    let id: [u8; 16] = rand::random();
    HeaderValue::from_str(&hex::encode(id)).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// Echoes the client's `X-Request-Id`, or makes one, on every response.
async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(X_REQUEST_ID)
        .filter(|v| acceptable_id(v))
        .cloned()
        .unwrap_or_else(new_request_id);
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    response.headers_mut().insert(X_REQUEST_ID, id);
    response
}

#[cfg(test)]
pub(crate) mod tests;
