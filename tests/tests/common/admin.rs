//! A client of an orderer's admin port (the channel participation API) over mutual TLS, as
//! osnadmin talks to it: requests built here with reqwest, not by Ordo's own client.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;

pub const CHANNELS: &str = "/participation/v1/channels";

/// A client of the admin port over mutual TLS: the orderer organisation's TLS CA, and a client
/// certificate (the orderer admin's, issued by that CA, unless a test wants another).
pub struct Admin {
    pub base: String,
    pub http: reqwest::Client,
    pub tls: AdminTls,
}

/// The files of an admin client's TLS.
#[derive(Clone)]
pub struct AdminTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl AdminTls {
    /// The orderer organisation admin's TLS files in the development crypto under `dir`.
    pub fn orderer_admin(dir: &Path) -> AdminTls {
        let crypto = dir.join("crypto/Orderer");
        AdminTls {
            ca: crypto.join("tlsca/tlsca.pem"),
            cert: crypto.join("users/Admin/tls/client.crt"),
            key: crypto.join("users/Admin/tls/client.key"),
        }
    }

    /// Org1's user: a good certificate, but from another CA than the admins'.
    pub fn org1_user(dir: &Path) -> AdminTls {
        AdminTls {
            cert: dir.join("crypto/Org1/users/User1/tls/client.crt"),
            key: dir.join("crypto/Org1/users/User1/tls/client.key"),
            ..AdminTls::orderer_admin(dir)
        }
    }
}

/// An answer, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Admin {
    pub fn new(addr: std::net::SocketAddr, tls: AdminTls) -> Admin {
        let ca = std::fs::read(&tls.ca).unwrap();
        let mut identity = std::fs::read(&tls.cert).unwrap();
        identity.extend(std::fs::read(&tls.key).unwrap());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            // The API's 302 is asserted, not followed.
            .redirect(reqwest::redirect::Policy::none())
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .identity(reqwest::Identity::from_pem(&identity).unwrap())
            .build()
            .unwrap();
        Admin {
            base: format!("https://{addr}"),
            http,
            tls,
        }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("an HTTP answer");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post_form(&self, form: Form) -> Answer {
        self.send(
            self.http
                .post(format!("{}{CHANNELS}", self.base))
                .multipart(form),
        )
        .await
    }

    /// Joins with `block` as osnadmin sends it: one file part `config-block`.
    pub async fn join(&self, block: &[u8]) -> Answer {
        let part = Part::bytes(block.to_vec()).file_name("config.block");
        self.post_form(Form::new().part("config-block", part)).await
    }

    /// Waits (30 s at most) until channel `id` reports at least `height` blocks.
    pub async fn wait_height(&self, id: &str, height: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let info = self.get(&format!("{CHANNELS}/{id}")).await;
            if info.status == StatusCode::OK {
                let json: serde_json::Value = serde_json::from_str(&info.body).unwrap();
                if json["height"].as_u64().unwrap() >= height {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "channel {id} did not reach height {height}: {}",
                info.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
