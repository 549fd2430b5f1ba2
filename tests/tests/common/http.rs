//! A minimal HTTP/1.1 client for the nodes' HTTP ports (operations) and Prometheus' API: one
//! request per connection, every call bounded by a deadline.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// How long one request may take before it fails the test.
const WITHIN: Duration = Duration::from_secs(20);

/// An answer: status code and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: the body is not JSON: {}", self.text()))
    }
}

/// `method path` on `addr` with `body`; an error if the connection or the request fails.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<Answer> {
    let call = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(connection);
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok(Answer { status, body })
    };
    tokio::time::timeout(WITHIN, call)
        .await
        .map_err(|_| anyhow::anyhow!("{method} {path} on {addr}: no answer within {WITHIN:?}"))?
}

pub async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, "")
        .await
        .unwrap_or_else(|e| panic!("GET {path} on {addr}: {e:#}"))
}

pub async fn put(addr: SocketAddr, path: &str, body: &str) -> Answer {
    request(addr, "PUT", path, body)
        .await
        .unwrap_or_else(|e| panic!("PUT {path} on {addr}: {e:#}"))
}
