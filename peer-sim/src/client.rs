//! A connection to an orderer, as one client identity.

use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use futures::StreamExt;
use ordo_core::envelope;
use ordo_core::msp::SigningIdentity;
use ordo_proto::common::Envelope;
use ordo_proto::common::{Block, Status};
use ordo_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use ordo_proto::orderer::seek_info::SeekBehavior;
use ordo_proto::orderer::{deliver_response, seek_position, SeekOldest, SeekPosition};
use ordo_proto::stored::atomic_broadcast_client::AtomicBroadcastClient as StoredClient;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Blocks can be as large as the channel's limits allow.
const MAX_MESSAGE: usize = 256 << 20;

#[derive(Clone)]
pub struct Client {
    pub endpoint: String,
    pub channel_id: String,
    pub signer: Arc<SigningIdentity>,
    /// SHA-256 of this client's TLS certificate (empty without one): every envelope carries it
    /// in `ChannelHeader.tls_cert_hash`, as an orderer requiring mutual TLS checks.
    pub tls_cert_hash: Bytes,
    grpc: AtomicBroadcastClient<Channel>,
    /// The same connection, reading Deliver's blocks as bytes.
    stored: StoredClient<Channel>,
}

/// TLS to the orderer (Fabric's `--tls --cafile`, and `--certfile`/`--keyfile` for mutual TLS).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TlsArgs {
    /// The CA (PEM) of the orderer's TLS certificate; turns TLS on (the endpoint's scheme
    /// becomes https).
    #[arg(long, env = "ORDO_CLIENT_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// This client's TLS certificate (PEM), for an orderer that requires client certificates.
    #[arg(long, env = "ORDO_CLIENT_TLS_CERT", requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, env = "ORDO_CLIENT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl Client {
    /// A plain-text connection (or TLS trusting no CA, for an `https://` endpoint).
    pub async fn connect(
        endpoint: &str,
        channel_id: &str,
        signer: SigningIdentity,
    ) -> anyhow::Result<Self> {
        Client::connect_tls(endpoint, channel_id, signer, &TlsArgs::default()).await
    }

    /// A connection over TLS as `tls` says (plain text without `tls.tls_ca`).
    pub async fn connect_tls(
        endpoint: &str,
        channel_id: &str,
        signer: SigningIdentity,
        tls: &TlsArgs,
    ) -> anyhow::Result<Self> {
        let address = endpoint
            .split_once("://")
            .map_or(endpoint, |(_, address)| address);
        let scheme = if tls.tls_ca.is_some() || endpoint.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        let endpoint = format!("{scheme}://{address}");
        let mut target = Endpoint::from_shared(endpoint.clone())
            .with_context(|| format!("bad endpoint {endpoint}"))?;
        let mut tls_cert_hash = Bytes::new();
        if let Some(ca) = &tls.tls_ca {
            let read = |path: &PathBuf| {
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))
            };
            let mut config =
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
            if let (Some(cert), Some(key)) = (&tls.tls_cert, &tls.tls_key) {
                let cert_pem = read(cert)?;
                let (_, pem) = x509_parser::pem::parse_x509_pem(&cert_pem).map_err(|e| {
                    anyhow::anyhow!("{}: not a PEM certificate: {e}", cert.display())
                })?;
                tls_cert_hash = Bytes::copy_from_slice(&Sha256::digest(&pem.contents));
                config = config.identity(Identity::from_pem(cert_pem, read(key)?));
            }
            target = target
                .tls_config(config)
                .with_context(|| format!("TLS settings for {endpoint}"))?;
        }
        let channel = target
            .connect()
            .await
            .with_context(|| format!("connecting to {endpoint}"))?;
        let stored = StoredClient::new(channel.clone()).max_decoding_message_size(MAX_MESSAGE);
        let grpc = AtomicBroadcastClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        Ok(Client {
            endpoint,
            channel_id: channel_id.to_string(),
            signer: Arc::new(signer),
            tls_cert_hash,
            grpc,
            stored,
        })
    }

    /// A Deliver request of this client, bound to its TLS certificate.
    pub fn seek(&self, start: SeekPosition, stop: SeekPosition, behavior: i32) -> Envelope {
        envelope::seek_bound(
            &self.signer,
            &self.channel_id,
            start,
            stop,
            behavior,
            self.tls_cert_hash.clone(),
        )
    }

    pub fn grpc(&self) -> AtomicBroadcastClient<Channel> {
        self.grpc.clone()
    }

    /// Sends one envelope on a Broadcast stream of its own and returns the answer.
    pub async fn broadcast_one(
        &self,
        envelope: ordo_proto::common::Envelope,
    ) -> anyhow::Result<ordo_proto::orderer::BroadcastResponse> {
        let mut responses = self
            .grpc()
            .broadcast(futures::stream::iter([envelope]))
            .await
            .context("opening Broadcast")?
            .into_inner();
        responses
            .next()
            .await
            .context("Broadcast ended without an answer")?
            .context("Broadcast stream")
    }

    /// Opens a Deliver stream for blocks `start..=stop` (`u64::MAX` to follow the chain).
    pub async fn deliver(
        &self,
        start: u64,
        stop: u64,
        behavior: SeekBehavior,
    ) -> anyhow::Result<tonic::Streaming<ordo_proto::orderer::DeliverResponse>> {
        self.deliver_request(self.seek_range(start, stop, behavior))
            .await
    }

    /// A Deliver request for blocks `start..=stop`.
    fn seek_range(&self, start: u64, stop: u64, behavior: SeekBehavior) -> Envelope {
        self.seek(
            envelope::specified(start),
            envelope::specified(stop),
            behavior as i32,
        )
    }

    /// Like [`Client::deliver`], with each block as its encoded bytes.
    pub async fn deliver_bytes(
        &self,
        start: u64,
        stop: u64,
        behavior: SeekBehavior,
    ) -> anyhow::Result<tonic::Streaming<ordo_proto::ordo::DeliverFrame>> {
        let request = self.seek_range(start, stop, behavior);
        Ok(self
            .stored
            .clone()
            .deliver(futures::stream::iter([request]))
            .await
            .context("opening Deliver")?
            .into_inner())
    }

    /// Opens a Deliver stream with a request built by the caller (any SeekInfo, or a bad one).
    pub async fn deliver_request(
        &self,
        request: ordo_proto::common::Envelope,
    ) -> anyhow::Result<tonic::Streaming<ordo_proto::orderer::DeliverResponse>> {
        Ok(self
            .grpc()
            .deliver(futures::stream::iter([request]))
            .await
            .context("opening Deliver")?
            .into_inner())
    }

    /// Every block from 0 to the newest, as the orderer has them now.
    pub async fn read_chain(&self) -> anyhow::Result<Vec<Block>> {
        let oldest = SeekPosition {
            r#type: Some(seek_position::Type::Oldest(SeekOldest {})),
        };
        let newest = SeekPosition {
            r#type: Some(seek_position::Type::Newest(Default::default())),
        };
        let request = self.seek(oldest, newest, SeekBehavior::FailIfNotReady as i32);
        let mut stream = self.deliver_request(request).await?;
        let mut blocks = Vec::new();
        while let Some(response) = stream.next().await {
            match response.context("Deliver stream")?.r#type {
                Some(deliver_response::Type::Block(block)) => blocks.push(block),
                Some(deliver_response::Type::Status(s)) if s == Status::Success as i32 => {
                    return Ok(blocks)
                }
                Some(deliver_response::Type::Status(s)) => {
                    anyhow::bail!("Deliver ended with status {:?}", Status::try_from(s))
                }
                None => anyhow::bail!("empty Deliver response"),
            }
        }
        anyhow::bail!("Deliver stream ended without a status")
    }
}
