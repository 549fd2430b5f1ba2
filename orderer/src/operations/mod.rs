//! The operations service, as Fabric's (FABRIC-CONFIG.md §8): one HTTP port with
//! - `GET /healthz`: 200 `{"status":"OK","time":…}`, or 503 naming the failed checks
//!   ([`health`]); another method 405;
//! - `GET|PUT /logspec`: the log filter in Fabric's spec syntax ([`logspec`]);
//! - `GET /version`: `{"CommitSHA":…,"Version":…}`;
//! - `GET /metrics`: Prometheus' text format ([`crate::metrics`]), unless `metrics =
//!   "disabled"`.
//!
//! With TLS on the port, `/metrics` and `/logspec` answer 401 to a client without a verified
//! certificate; `/healthz` and `/version` never ask for one.

pub mod health;
pub mod logspec;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::json;

use crate::http::{self, PeerCertificates};
use crate::metrics::{self, ParticipationStatus};
use crate::registrar::Registrar;
use crate::setup::config::{MetricsProvider, OperationsSection};

/// What the handlers read.
#[derive(Clone)]
pub struct Operations {
    pub registrar: Registrar,
    /// `node.data_dir`: a channel's files are under `channels/<id>/{log,ledger}`.
    pub data_dir: PathBuf,
    pub metrics: bool,
    /// Whether `/metrics` and `/logspec` ask for a verified client certificate (TLS is on).
    pub require_client_cert: bool,
    /// The log filter `/logspec` changes (`None`: this process has none to change).
    pub log_filter: Option<&'static logspec::LogFilter>,
}

/// Starts the operations server of `[operations]`, if it has a `listen` address.
/// `tls` is the acceptor of `[operations.tls]` (`crate::tls::HttpTls`), `None` with it off.
pub async fn start(
    section: &OperationsSection,
    registrar: Registrar,
    data_dir: &Path,
    tls: Option<http::TlsAcceptorFn>,
) -> anyhow::Result<Option<http::Server>> {
    let Some(listen) = section.listen else {
        return Ok(None);
    };
    let state = Operations {
        registrar,
        data_dir: data_dir.to_path_buf(),
        metrics: section.metrics == MetricsProvider::Prometheus,
        require_client_cert: tls.is_some(),
        log_filter: logspec::installed(),
    };
    let settings = http::Settings {
        name: "operations",
        max_connections: section.max_connections,
        max_streams_per_connection: section.max_streams_per_connection,
        max_request_bytes: section.max_request_bytes,
        read_timeout: Duration::from_millis(section.read_timeout_ms),
        write_timeout: Duration::from_millis(section.write_timeout_ms),
        tls,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the operations address {listen}"))?;
    let server = http::serve(listener, router(state), settings)?;
    tracing::info!(addr = %server.local_addr(), "serving operations");
    Ok(Some(server))
}

/// The operations routes over `state`.
pub fn router(state: Operations) -> Router {
    let mut guarded = Router::new().route("/logspec", any(logspec_handler));
    if state.metrics {
        guarded = guarded.route("/metrics", any(metrics_handler));
    }
    if state.require_client_cert {
        guarded = guarded.layer(middleware::from_fn(require_client_cert));
    }
    Router::new()
        .route("/healthz", any(healthz))
        .route("/version", any(version))
        .merge(guarded)
        .with_state(state)
}

/// Fabric's `RequireCert`: 401, with an empty body, to a client without a verified certificate.
async fn require_client_cert(request: Request, next: Next) -> Response {
    if request.extensions().get::<PeerCertificates>().is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    next.run(request).await
}

async fn healthz(State(ops): State<Operations>, method: Method) -> Response {
    if method != Method::GET {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let status = health::HealthStatus::of(health::failed_checks(&ops.registrar));
    let code = if status.ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(status)).into_response()
}

async fn version(method: Method) -> Response {
    if method != Method::GET {
        let error = format!("invalid request method: {method}");
        return (StatusCode::BAD_REQUEST, Json(json!({ "Error": error }))).into_response();
    }
    let mut answer = serde_json::Map::new();
    // Set by a build that knows its commit (`ORDO_COMMIT_SHA=… cargo build`); omitted if not.
    if let Some(sha) = option_env!("ORDO_COMMIT_SHA").filter(|s| !s.is_empty()) {
        answer.insert("CommitSHA".into(), sha.into());
    }
    answer.insert("Version".into(), env!("CARGO_PKG_VERSION").into());
    Json(answer).into_response()
}

fn logspec_error(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

async fn logspec_handler(
    State(ops): State<Operations>,
    method: Method,
    body: axum::body::Bytes,
) -> Response {
    match method {
        Method::GET => {
            let spec = ops.log_filter.map(|f| f.spec()).unwrap_or_default();
            if spec.is_empty() {
                Json(json!({})).into_response()
            } else {
                Json(json!({ "spec": spec })).into_response()
            }
        }
        Method::PUT => {
            #[derive(serde::Deserialize)]
            struct Spec {
                spec: String,
            }
            let spec: Spec = match serde_json::from_slice(&body) {
                Ok(spec) => spec,
                Err(e) => return logspec_error(e.to_string()),
            };
            let Some(filter) = ops.log_filter else {
                return logspec_error("this process has no log filter to change".into());
            };
            match filter.set(&spec.spec) {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => logspec_error(e.to_string()),
            }
        }
        method => logspec_error(format!("invalid request method: {method}")),
    }
}

/// Bytes of the regular files under `dir` (0 if it is missing).
fn folder_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => folder_bytes(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Brings the gauges read at scrape time up to date: each channel's bytes on disk and its
/// participation status and relation.
fn refresh(ops: &Operations) {
    for channel in ops.registrar.channels() {
        let dir = ops.data_dir.join("channels").join(channel.id());
        let m = channel.metrics();
        m.set_storage_bytes(
            folder_bytes(&dir.join("log")),
            folder_bytes(&dir.join("ledger")),
        );
        // Failed: it stopped serving (a raft channel between leaders is still active).
        let status = if !channel.is_healthy() {
            ParticipationStatus::Failed
        } else if channel.is_onboarding() {
            ParticipationStatus::Onboarding
        } else {
            ParticipationStatus::Active
        };
        m.set_participation(status, channel.consensus_relation());
    }
}

async fn metrics_handler(State(ops): State<Operations>) -> Response {
    let ops = Arc::new(ops);
    let text = tokio::task::spawn_blocking(move || {
        refresh(&ops);
        metrics::global().text()
    })
    .await;
    match text {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("gathering the metrics failed: {e}"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests;
