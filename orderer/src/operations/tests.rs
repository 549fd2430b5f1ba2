use super::*;

use axum::body::Body;
use http_body_util::BodyExt;
use tower::ServiceExt;
use tracing_subscriber::layer::SubscriberExt;

use crate::chain::solo::SoloChain;
use crate::channel::Channel;
use crate::ledger::{Ledger, LedgerConfig};
use crate::log::{Partition, PartitionConfig};

fn state() -> Operations {
    Operations {
        registrar: Registrar::default(),
        data_dir: PathBuf::from("/nonexistent"),
        metrics: true,
        require_client_cert: false,
        log_filter: None,
    }
}

/// A log filter of its own, alive for the rest of the test process.
fn leaked_filter() -> &'static logspec::LogFilter {
    let (layer, handle) =
        tracing_subscriber::reload::Layer::new(tracing_subscriber::EnvFilter::new("info"));
    let subscriber = tracing_subscriber::registry().with(layer);
    Box::leak(Box::new(subscriber));
    Box::leak(Box::new(logspec::LogFilter::new("info".into(), handle)))
}

async fn ask(
    router: &Router,
    method: &str,
    path: &str,
    body: &str,
) -> (StatusCode, Option<String>, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from(body.to_string()))
        .unwrap();
    answer(router, request).await
}

async fn answer(router: &Router, request: Request) -> (StatusCode, Option<String>, Vec<u8>) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, body.to_vec())
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(body)))
}

#[tokio::test]
async fn healthz_is_ok_with_nothing_failing_and_refuses_other_methods() {
    let router = router(state());
    let (status, content_type, body) = ask(&router, "GET", "/healthz", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let answer = json(&body);
    assert_eq!(answer["status"], "OK");
    assert!(answer.get("failed_checks").is_none(), "{answer}");
    let time = answer["time"].as_str().unwrap();
    time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{time}: {e}"));

    let (status, _, body) = ask(&router, "POST", "/healthz", "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body.is_empty());
}

#[tokio::test]
async fn healthz_names_the_checks_a_stopped_channel_fails() {
    let crate::setup::dev::Fixture {
        dir,
        genesis,
        signer,
        ..
    } = crate::setup::dev::Fixture::new();
    let log = Partition::open(&dir.path().join("log"), PartitionConfig::default()).unwrap();
    let ledger = Ledger::open(&dir.path().join("ledger"), LedgerConfig::default()).unwrap();
    let channel = Channel::open(&genesis, ledger, SoloChain::new(log), signer).unwrap();
    let ops = state();
    ops.registrar
        .reserve(channel.id())
        .unwrap()
        .serve(channel.clone());
    let router = router(ops);
    let (status, _, _) = ask(&router, "GET", "/healthz", "").await;
    assert_eq!(status, StatusCode::OK);

    channel.shutdown().await;
    let (status, _, body) = ask(&router, "GET", "/healthz", "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let answer = json(&body);
    assert_eq!(answer["status"], "Service Unavailable");
    let id = channel.id();
    assert_eq!(
        answer["failed_checks"],
        serde_json::json!([
            {"component": format!("channel/{id}/serving"), "reason": "the channel is stopping"},
            {"component": format!("channel/{id}/consensus"), "reason": "the chain is halted"},
        ])
    );
}

#[tokio::test]
async fn version_answers_fabric_s_shape() {
    let router = router(state());
    let (status, _, body) = ask(&router, "GET", "/version", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["Version"], env!("CARGO_PKG_VERSION"));
    let (status, _, body) = ask(&router, "DELETE", "/version", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json(&body),
        serde_json::json!({"Error": "invalid request method: DELETE"})
    );
}

#[tokio::test]
async fn logspec_shows_changes_and_refuses_what_is_not_a_spec() {
    let router = router(Operations {
        log_filter: Some(leaked_filter()),
        ..state()
    });
    let (status, _, body) = ask(&router, "GET", "/logspec", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body), serde_json::json!({"spec": "info"}));

    let spec = r#"{"spec":"warning:orderer.consensus.etcdraft=debug"}"#;
    let (status, _, body) = ask(&router, "PUT", "/logspec", spec).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_empty());
    let (_, _, body) = ask(&router, "GET", "/logspec", "").await;
    assert_eq!(
        json(&body),
        serde_json::json!({"spec": "warning:orderer.consensus.etcdraft=debug"})
    );

    for bad in [r#"{"spec":"loud"}"#, "not json", r#"{"level":"info"}"#] {
        let (status, _, body) = ask(&router, "PUT", "/logspec", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(json(&body)["error"].is_string(), "{bad}");
    }
    let (_, _, body) = ask(&router, "GET", "/logspec", "").await;
    assert_eq!(
        json(&body)["spec"],
        "warning:orderer.consensus.etcdraft=debug"
    );
    let (status, _, body) = ask(&router, "POST", "/logspec", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json(&body),
        serde_json::json!({"error": "invalid request method: POST"})
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text_unless_disabled() {
    let router = router(state());
    let (status, content_type, body) = ask(&router, "GET", "/metrics", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("# TYPE broadcast_processed_count counter") || text.contains("ordo_version"),
        "{text}"
    );
    assert!(text.contains("process_open_fds"), "{text}");

    let disabled = router_without_metrics();
    let (status, _, _) = ask(&disabled, "GET", "/metrics", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn router_without_metrics() -> Router {
    router(Operations {
        metrics: false,
        ..state()
    })
}

#[tokio::test]
async fn with_tls_metrics_and_logspec_need_a_verified_client_certificate() {
    let router = router(Operations {
        require_client_cert: true,
        log_filter: Some(leaked_filter()),
        ..state()
    });
    for path in ["/metrics", "/logspec"] {
        let (status, _, body) = ask(&router, "GET", path, "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(body.is_empty());
        let mut request = Request::builder().uri(path).body(Body::empty()).unwrap();
        request
            .extensions_mut()
            .insert(PeerCertificates(Arc::new(vec![
                rustls::pki_types::CertificateDer::from(vec![1, 2, 3]),
            ])));
        let (status, _, _) = answer(&router, request).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    for path in ["/healthz", "/version"] {
        let (status, _, _) = ask(&router, "GET", path, "").await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn the_operations_server_serves_tls_from_its_files() {
    use crate::http::tests::{call_tls, request, TestPki};
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let section = OperationsSection {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        tls: crate::setup::config::TlsSection {
            enabled: true,
            cert: Some(write("server.crt", &pki.server_pem.0)),
            key: Some(write("server.key", &pki.server_pem.1)),
            client_auth_required: false,
            client_root_cas: vec![write("ca.crt", &pki.ca_pem)],
        },
        ..OperationsSection::default()
    };
    let tls = crate::tls::HttpTls::load(&section.tls, "operations.tls")
        .unwrap()
        .map(|t| t.acceptor().unwrap());
    let server = start(&section, Registrar::default(), dir.path(), tls)
        .await
        .unwrap()
        .expect("a server");
    let addr = server.local_addr();
    let (status, _, _) = call_tls(
        addr,
        pki.client_config(false),
        request("GET", "/healthz", b""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call_tls(
        addr,
        pki.client_config(false),
        request("GET", "/metrics", b""),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = call_tls(
        addr,
        pki.client_config(true),
        request("GET", "/metrics", b""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("ordo_version"));
    server.stop(Duration::from_secs(1)).await;

    // Absent `listen`: no server.
    let none = start(
        &OperationsSection::default(),
        Registrar::default(),
        dir.path(),
        None,
    )
    .await
    .unwrap();
    assert!(none.is_none());
}
