//! The client side: tonic channels to other orderers over TLS with this node's identity. The
//! endpoint keeps its `http://` scheme; the connector does the TLS handshake, with the current
//! client certificate and roots, each time tonic (re)connects.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tonic::transport::{Channel, Endpoint, Uri};

use super::credentials::{Credentials, ALPN_H2};
use super::pem::TlsError;

/// How long dialling another orderer may take (TCP and TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// HTTP/2 pings on connections to other orderers, and how long an answer may take.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 flow-control windows between orderers (both directions: the cluster port's server and
/// every dial), sized for Raft entries and pulled blocks of megabytes.
pub const CLUSTER_STREAM_WINDOW: u32 = 8 << 20;
pub const CLUSTER_CONNECTION_WINDOW: u32 = 32 << 20;

/// Dials other orderers with one identity.
#[derive(Clone, Debug)]
pub struct Dialer {
    credentials: Arc<Credentials>,
    config: Arc<rustls::ClientConfig>,
}

impl Dialer {
    pub fn new(credentials: Arc<Credentials>) -> Result<Dialer, TlsError> {
        let config = credentials.client_config(&[ALPN_H2])?;
        Ok(Dialer {
            credentials,
            config,
        })
    }

    pub fn credentials(&self) -> &Arc<Credentials> {
        &self.credentials
    }

    /// SHA-256 of the certificate presented now (DER): what `ChannelHeader.tls_cert_hash` of this
    /// node's Deliver requests must carry where the other node requires client certificates.
    pub fn tls_cert_hash(&self) -> [u8; 32] {
        let chain = self.credentials.chain();
        super::identity::cert_hash(chain.first().map_or(&[][..], |c| c.as_ref()))
    }

    /// A lazy channel to `address` (`host:port`) over TLS: it connects on first use and again
    /// after a broken connection.
    pub fn channel(&self, endpoint: Endpoint) -> Channel {
        endpoint.connect_with_connector_lazy(Connector {
            config: self.config.clone(),
        })
    }
}

/// The one way this node reaches another orderer (its cluster port, or its client port to pull
/// blocks): a lazy tonic channel to `address` (`host:port`), over TLS with `dialer`'s identity
/// when TLS is on, plain HTTP/2 otherwise.
pub fn dial(dialer: Option<&Dialer>, address: &str) -> Result<Channel, String> {
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| format!("bad orderer address {address:?}: {e}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        // A peer gone without closing (a cut link, a dead machine) fails the streams open to
        // it, rather than leaving a follower waiting on them for ever.
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .initial_stream_window_size(CLUSTER_STREAM_WINDOW)
        .initial_connection_window_size(CLUSTER_CONNECTION_WINDOW);
    Ok(match dialer {
        Some(dialer) => dialer.channel(endpoint),
        None => endpoint.connect_lazy(),
    })
}

/// A tonic connector: TCP, then a TLS handshake naming the URI's host.
#[derive(Clone)]
struct Connector {
    config: Arc<rustls::ClientConfig>,
}

type Connecting =
    Pin<Box<dyn Future<Output = std::io::Result<TokioIo<TlsStream<TcpStream>>>> + Send>>;

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let config = self.config.clone();
        Box::pin(async move {
            let invalid =
                |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
            let host = uri
                .host()
                .ok_or_else(|| invalid(format!("{uri}: no host")))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri.port_u16().unwrap_or(443);
            let name = ServerName::try_from(host.clone())
                .map_err(|e| invalid(format!("{host}: not a TLS server name: {e}")))?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok(TokioIo::new(tls))
        })
    }
}
