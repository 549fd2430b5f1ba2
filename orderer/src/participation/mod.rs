//! The channel participation API (Fabric's `channelparticipation` REST API, what `osnadmin`
//! talks to): list, inspect, join and remove channels over HTTP on the admin port
//! (`[admin] listen`), under `/participation/v1/`.
//!
//! - [`api`]: the wire shapes (JSON in Fabric's field order, errors, `Accept`, ids), pure;
//! - [`join_block`]: which blocks a channel may be joined with, pure;
//! - [`channels`]: the node's side — joining, removing and reopening channels, on disk.
//!
//! Here: the axum router, the request guard (API enabled, client certificate under TLS,
//! `X-Request-Id`) and the server.

pub mod api;
pub mod channels;
pub mod join_block;

use std::net::SocketAddr;

use anyhow::Context;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::http;
use crate::setup::config::NodeConfig;
use api::BlockId;
use channels::{JoinError, JoinedChannels, RemoveError};

/// The one form part a join request carries (osnadmin names its file `config.block`).
pub const CONFIG_BLOCK_PART: &str = "config-block";

/// What every handler shares.
#[derive(Clone)]
struct Api {
    channels: JoinedChannels,
    enabled: bool,
    /// Admin TLS is on: a request without a verified client certificate gets 401.
    tls: bool,
}

/// The participation API's routes, guarded, with join bodies bounded by `max_body` bytes.
pub fn router(channels: JoinedChannels, enabled: bool, tls: bool, max_body: usize) -> Router {
    let api = Api {
        channels,
        enabled,
        tls,
    };
    Router::new()
        .route(
            api::ROOT,
            get(|| async { redirect() }).fallback(|m: Method| async move { not_allowed(m, "GET") }),
        )
        .route(
            api::CHANNELS,
            get(list)
                .post(join)
                .fallback(|m: Method| async move { not_allowed(m, "GET, POST") }),
        )
        .route(
            "/participation/v1/channels/{channel}",
            get(info)
                .delete(remove)
                .fallback(|m: Method| async move { not_allowed(m, "GET, DELETE") }),
        )
        .route(
            "/participation/v1/channels/{channel}/blocks/{block}",
            get(block).fallback(|m: Method| async move { not_allowed(m, "GET") }),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not found") })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(api.clone(), guard))
        .with_state(api)
}

/// A JSON response.
fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// An error response: `{"error":"…"}`.
fn error(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        api::error_body(text),
    )
        .into_response()
}

fn redirect() -> Response {
    (StatusCode::FOUND, [(header::LOCATION, api::CHANNELS)]).into_response()
}

fn not_allowed(method: Method, allow: &'static str) -> Response {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("invalid request method: {method}"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// The 406 refusal, unless the client accepts JSON.
fn negotiate(headers: &HeaderMap) -> Option<Response> {
    let accept = headers
        .get(header::ACCEPT)
        .map(|v| v.to_str().unwrap_or(""));
    (!api::accepts_json(accept)).then(|| error(StatusCode::NOT_ACCEPTABLE, api::NOT_ACCEPTABLE))
}

/// What runs before every route: the API switch, the admin's client certificate, the request id.
async fn guard(State(api): State<Api>, request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .cloned()
        .unwrap_or_else(|| {
            let id = api::new_request_id(rand::random());
            // A UUID is always a valid header value.
            HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("-"))
        });
    let mut response = if !api.enabled {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "channel participation API is disabled",
        )
    } else if api.tls && !has_client_certificate(&request) {
        StatusCode::UNAUTHORIZED.into_response()
    } else {
        next.run(request).await
    };
    response.headers_mut().insert("x-request-id", id);
    response
}

/// Whether the TLS layer verified a client certificate for this request.
fn has_client_certificate(request: &Request) -> bool {
    request
        .extensions()
        .get::<http::PeerCertificates>()
        .is_some()
}

async fn list(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Some(refused) = negotiate(&headers) {
        return refused;
    }
    let names = api.channels.list();
    json(
        StatusCode::OK,
        api::json_body(&api::ChannelList::of(&names)),
    )
}

async fn info(State(api): State<Api>, Path(channel): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refused) = negotiate(&headers) {
        return refused;
    }
    if let Err(e) = api::check_channel_id(&channel) {
        return error(StatusCode::BAD_REQUEST, &e);
    }
    match api.channels.info(&channel) {
        Some(state) => json(
            StatusCode::OK,
            api::json_body(&api::ChannelInfo::from(&state)),
        ),
        None => error(StatusCode::NOT_FOUND, "channel does not exist"),
    }
}

async fn join(State(api): State<Api>, request: Request) -> Response {
    if let Some(refused) = negotiate(request.headers()) {
        return refused;
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if !api::is_multipart_form(content_type.as_deref()) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "unsupported Content-Type: [{}]",
                content_type.unwrap_or_default()
            ),
        );
    }
    let block = match read_join_form(request).await {
        Ok(bytes) => bytes,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let block: ordo_proto::common::Block = match prost::Message::decode(block.as_ref()) {
        Ok(block) => block,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("cannot unmarshal file part {CONFIG_BLOCK_PART} into a block: {e}"),
            )
        }
    };
    let bundle = match join_block::validate(&block) {
        Ok(bundle) => bundle,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid join block: {e}")),
    };
    match api.channels.join(block, bundle).await {
        Ok(state) => {
            let mut response = json(
                StatusCode::CREATED,
                api::json_body(&api::ChannelInfo::from(&state)),
            );
            if let Ok(location) = HeaderValue::from_str(&api::channel_url(&state.name)) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Err(e @ JoinError::Exists) => {
            let mut response = error(StatusCode::METHOD_NOT_ALLOWED, &e.to_string());
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, DELETE"));
            response
        }
        Err(e @ JoinError::Pending(_)) => error(StatusCode::CONFLICT, &e.to_string()),
        Err(e @ JoinError::Refused(_)) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// The bytes of the join form's one `config-block` part; anything else in the form is refused.
async fn read_join_form(request: Request) -> Result<bytes::Bytes, String> {
    let unreadable = |e: &dyn std::fmt::Display| format!("cannot read form from request body: {e}");
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| unreadable(&e.body_text()))?;
    let (mut block, mut parts) = (None, 0);
    while let Some(field) = form.next_field().await.map_err(|e| unreadable(&e))? {
        parts += 1;
        if field.name() == Some(CONFIG_BLOCK_PART) && block.is_none() {
            block = Some(field.bytes().await.map_err(|e| unreadable(&e))?);
        }
    }
    let block =
        block.ok_or_else(|| format!("form does not contains part key: {CONFIG_BLOCK_PART}"))?;
    if parts > 1 {
        return Err("form contains too many parts".into());
    }
    Ok(block)
}

async fn remove(State(api): State<Api>, Path(channel): Path<String>) -> Response {
    if let Err(e) = api::check_channel_id(&channel) {
        return error(StatusCode::BAD_REQUEST, &e);
    }
    match api.channels.remove(&channel).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e @ RemoveError::NotFound) => error(StatusCode::NOT_FOUND, &e.to_string()),
        Err(e @ RemoveError::Pending(_)) => error(StatusCode::CONFLICT, &e.to_string()),
        Err(e @ RemoveError::Refused(_)) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// GET a block of a channel's ledger (Fabric 3.1.2's blocks endpoint), as stored.
async fn block(State(api): State<Api>, Path((channel, id)): Path<(String, String)>) -> Response {
    if let Err(e) = api::check_channel_id(&channel) {
        return error(StatusCode::BAD_REQUEST, &e);
    }
    let id = match api::parse_block_id(&id) {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let Some(channel) = api.channels.get(&channel) else {
        return error(StatusCode::NOT_FOUND, "channel does not exist");
    };
    let ledger = channel.ledger().clone();
    let read = tokio::task::spawn_blocking(move || -> Result<Option<bytes::Bytes>, String> {
        let height = ledger.height();
        let number = match id {
            BlockId::Oldest => 0,
            BlockId::Newest => height.saturating_sub(1),
            BlockId::Number(n) => n,
            BlockId::Config => {
                let last = ledger.last_block().map_err(|e| e.to_string())?;
                match last.as_ref().map(|b| {
                    ordo_core::block::last_config_index(b)
                        .unwrap_or(b.header.as_ref().map_or(0, |h| h.number))
                }) {
                    Some(n) => n,
                    None => return Ok(None),
                }
            }
        };
        ledger.block_bytes(number).map_err(|e| e.to_string())
    })
    .await;
    match read {
        Ok(Ok(Some(bytes))) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            Body::from(bytes),
        )
            .into_response(),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "block not found"),
        Ok(Err(e)) => error(StatusCode::NOT_FOUND, &e),
        Err(e) => error(StatusCode::NOT_FOUND, &e.to_string()),
    }
}

/// Serves the participation API on `listen` (`[admin]`, `[channel_participation]`); `tls` is
/// the acceptor of `[admin.tls]` (client certificates required), `None` with it off.
pub async fn serve(
    config: &NodeConfig,
    listen: SocketAddr,
    channels: JoinedChannels,
    tls: Option<http::TlsAcceptorFn>,
) -> anyhow::Result<http::Server> {
    let participation = &config.channel_participation;
    let router = router(
        channels,
        participation.enabled,
        tls.is_some(),
        participation.max_request_body_size,
    );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the admin address {listen}"))?;
    let settings = http::Settings {
        max_connections: config.admin.max_connections,
        // A backstop far over the API's own limit, which answers as Fabric does (400, "cannot
        // read form from request body") while reading the form.
        max_request_bytes: participation.max_request_body_size.saturating_add(1 << 20),
        tls,
        ..http::Settings::new("participation")
    };
    let server = http::serve(listener, router, settings)?;
    tracing::info!(addr = %server.local_addr(), "serving the channel participation API");
    Ok(server)
}
