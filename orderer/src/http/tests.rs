use super::*;
use rustls::pki_types::CertificateDer;

use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request on a new plain connection; the status, headers and body of the answer.
pub(crate) async fn call(
    addr: SocketAddr,
    request: hyper::Request<Full<Bytes>>,
) -> (StatusCode, hyper::HeaderMap, Bytes) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    send(TokioIo::new(tcp), request).await
}

async fn send<I>(
    io: I,
    request: hyper::Request<Full<Bytes>>,
) -> (StatusCode, hyper::HeaderMap, Bytes)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = http1::handshake(io).await.unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, body)
}

pub(crate) fn request(
    method: &str,
    path: &str,
    body: &'static [u8],
) -> hyper::Request<Full<Bytes>> {
    hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

async fn start(router: Router, settings: Settings) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve(listener, router, settings).unwrap()
}

fn echo_router() -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route("/echo", post(|body: Bytes| async move { body }))
}

#[tokio::test]
async fn every_answer_has_a_request_id_echoed_or_made() {
    let server = start(echo_router(), Settings::new("test")).await;
    let (status, headers, body) = call(server.local_addr(), request("GET", "/hello", b"")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"hello");
    let made = headers.get(X_REQUEST_ID).expect("a request id");
    assert_eq!(made.len(), 32, "{made:?}");

    let mut asked = request("GET", "/hello", b"");
    asked
        .headers_mut()
        .insert(X_REQUEST_ID, HeaderValue::from_static("abc-123"));
    let (_, headers, _) = call(server.local_addr(), asked).await;
    assert_eq!(headers.get(X_REQUEST_ID).unwrap(), "abc-123");

    // Not found is answered by the router, and still carries one.
    let (status, headers, _) = call(server.local_addr(), request("GET", "/nope", b"")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(headers.contains_key(X_REQUEST_ID));
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_body_over_the_bound_is_refused_and_a_slow_one_times_out() {
    let settings = Settings {
        max_request_bytes: 8,
        read_timeout: Duration::from_millis(300),
        ..Settings::new("test")
    };
    let server = start(echo_router(), settings).await;
    let (status, _, body) = call(server.local_addr(), request("POST", "/echo", b"12345678")).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"12345678"[..]));
    let (status, _, _) = call(server.local_addr(), request("POST", "/echo", b"123456789")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Headers promise 4 bytes of body that never come.
    let mut tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    tcp.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn connections_over_the_bound_are_closed_as_they_arrive() {
    let settings = Settings {
        max_connections: 1,
        ..Settings::new("test")
    };
    let server = start(echo_router(), settings).await;
    // The first holds its slot for as long as it is open.
    let first = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let (mut held, connection) = http1::handshake(TokioIo::new(first)).await.unwrap();
    tokio::spawn(connection);
    let answer = held
        .send_request(request("GET", "/hello", b""))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);

    let mut second = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    second
        .write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .ok();
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), second.read_to_end(&mut buffer))
        .await
        .expect("closed within 10 s");
    assert!(read.is_err() || buffer.is_empty(), "{buffer:?}");

    // Once the first is gone, a new connection is served.
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let tcp = tokio::net::TcpStream::connect(server.local_addr())
            .await
            .unwrap();
        let served = async {
            let (mut sender, connection) = http1::handshake(TokioIo::new(tcp)).await.ok()?;
            tokio::spawn(connection);
            sender
                .send_request(request("GET", "/hello", b""))
                .await
                .ok()
        }
        .await;
        if served.is_some_and(|r| r.status() == StatusCode::OK) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was not freed"
        );
        tokio::task::yield_now().await;
    }
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn stop_lets_a_request_in_progress_finish_then_refuses_connections() {
    let (entered_tx, entered) = oneshot::channel::<()>();
    let (release, released) = oneshot::channel::<()>();
    let hooks = Arc::new(std::sync::Mutex::new(Some((entered_tx, released))));
    let router = Router::new().route(
        "/slow",
        get(move || {
            let hooks = hooks.clone();
            async move {
                let taken = hooks.lock().unwrap().take();
                if let Some((entered, released)) = taken {
                    let _ = entered.send(());
                    let _ = released.await;
                }
                "done"
            }
        }),
    );
    let server = start(router, Settings::new("test")).await;
    let addr = server.local_addr();
    let pending = tokio::spawn(call(addr, request("GET", "/slow", b"")));
    entered.await.unwrap();
    let stopping = tokio::spawn(server.stop(Duration::from_secs(30)));
    // The listener closes at once, while the request in progress goes on.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still accepting");
        tokio::task::yield_now().await;
    }
    release.send(()).unwrap();
    let (status, _, body) = pending.await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"done"[..]));
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("stopped within 10 s")
        .unwrap();
}

/// A CA, a server certificate for "localhost" and a client certificate, both issued by it.
pub(crate) struct TestPki {
    pub ca: CertificateDer<'static>,
    pub server: (
        CertificateDer<'static>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ),
    pub client: (
        CertificateDer<'static>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ),
    /// PEM of the CA certificate, and of the server's certificate and key.
    pub ca_pem: String,
    pub server_pem: (String, String),
}

impl TestPki {
    pub fn new() -> TestPki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf = |name: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
            let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
            let pem = (cert.pem(), key.serialize_pem());
            let der = (
                cert.der().clone(),
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            );
            (der, pem)
        };
        let (server, server_pem) = leaf("localhost");
        TestPki {
            server,
            client: leaf("client").0,
            ca: ca.der().clone(),
            ca_pem: ca.pem(),
            server_pem,
        }
    }

    fn roots(&self) -> Arc<rustls::RootCertStore> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        Arc::new(roots)
    }

    /// A server config that verifies a client certificate if one is sent.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            self.roots(),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.server.0.clone()], self.server.1.clone_key())
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }

    pub fn client_config(&self, with_cert: bool) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(self.roots());
        Arc::new(if with_cert {
            builder
                .with_client_auth_cert(vec![self.client.0.clone()], self.client.1.clone_key())
                .unwrap()
        } else {
            builder.with_no_client_auth()
        })
    }
}

/// One request over TLS.
pub(crate) async fn call_tls(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    request: hyper::Request<Full<Bytes>>,
) -> (StatusCode, hyper::HeaderMap, Bytes) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    send(TokioIo::new(tls), request).await
}

#[tokio::test]
async fn a_verified_client_chain_reaches_the_handler() {
    let pki = TestPki::new();
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config());
    let router = Router::new().route(
        "/who",
        get(
            |certs: Option<axum::Extension<PeerCertificates>>| async move {
                match certs {
                    Some(axum::Extension(PeerCertificates(chain))) => {
                        format!("{} certs", chain.len())
                    }
                    None => "anonymous".to_string(),
                }
            },
        ),
    );
    let settings = Settings {
        tls: Some(Arc::new(move || acceptor.clone())),
        ..Settings::new("test")
    };
    let server = start(router, settings).await;
    let (status, headers, body) = call_tls(
        server.local_addr(),
        pki.client_config(true),
        request("GET", "/who", b""),
    )
    .await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"1 certs"[..]));
    assert!(headers.contains_key(X_REQUEST_ID));
    let (_, _, body) = call_tls(
        server.local_addr(),
        pki.client_config(false),
        request("GET", "/who", b""),
    )
    .await;
    assert_eq!(&body[..], b"anonymous");

    // A plain-text client gets no HTTP answer from a TLS port.
    let mut plain = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    plain
        .write_all(b"GET /who HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut answer))
        .await
        .expect("closed within 10 s");
    assert!(!String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"));
    server.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_frees_its_slot() {
    let settings = Settings {
        max_connections: 1,
        read_timeout: Duration::from_millis(300),
        ..Settings::new("test")
    };
    let server = start(echo_router(), settings).await;
    // Never a byte: the slot is held only until the read timeout.
    let mut silent = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let mut buffer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut buffer))
        .await
        .expect("closed within 10 s");
    assert!(closed.is_err() || buffer.is_empty(), "{buffer:?}");

    // A kept-alive connection that answered a request and then idles is closed too.
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let (mut sender, connection) = http1::handshake(TokioIo::new(tcp)).await.unwrap();
    let connection = tokio::spawn(connection);
    let answer = sender
        .send_request(request("GET", "/hello", b""))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    tokio::time::timeout(Duration::from_secs(10), connection)
        .await
        .expect("the idle connection closed within 10 s")
        .unwrap()
        .ok();
    let (status, _, _) = call(server.local_addr(), request("GET", "/hello", b"")).await;
    assert_eq!(status, StatusCode::OK);
    server.stop(Duration::from_secs(1)).await;
}
