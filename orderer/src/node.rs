//! An orderer node: its channels and the gRPC server in front of them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use ordo_proto::orderer::atomic_broadcast_server::AtomicBroadcastServer;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

use crate::channel::{read_genesis, Channel};
use crate::config::NodeConfig;
use crate::consensus::OrderedLog;
use crate::identity::Signer;
use crate::ledger::{Ledger, LedgerConfig};
use crate::log::{Partition, PartitionConfig};
use crate::server::{AtomicBroadcastService, Channels};

pub struct Node {
    channels: Channels,
    local_addr: SocketAddr,
    stop_server: oneshot::Sender<()>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    _lock: DataDirLock,
}

impl Node {
    /// Opens every channel of the config and starts serving clients.
    pub async fn start(config: &NodeConfig) -> anyhow::Result<Node> {
        let data_dir = &config.node.data_dir;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let lock = DataDirLock::acquire(data_dir)?;
        let signer = Signer::load(&config.node.identity)?;

        let mut channels = Vec::new();
        for section in &config.channels {
            let genesis = read_genesis(&section.genesis_block)?;
            let id = crate::policy::config_from_block(&genesis)
                .map_err(|e| anyhow::anyhow!(e))?
                .channel_id;
            let dir = data_dir.join("channels").join(&id);
            let partition = Partition::open(
                &dir.join("log"),
                PartitionConfig {
                    segment_bytes: config.log.segment_bytes,
                    ..Default::default()
                },
            )
            .with_context(|| format!("opening the log of channel {id}"))?;
            let ledger = Ledger::open(
                &dir.join("ledger"),
                LedgerConfig {
                    file_bytes: config.ledger.file_bytes,
                },
            )
            .with_context(|| format!("opening the ledger of channel {id}"))?;
            let log: Arc<dyn OrderedLog> = partition;
            channels.push(Channel::open(&genesis, ledger, log, signer.clone())?);
        }
        let channels = Channels::new(channels);

        let listener = tokio::net::TcpListener::bind(config.node.listen)
            .await
            .with_context(|| format!("binding {}", config.node.listen))?;
        let local_addr = listener.local_addr()?;
        // Leave room over the largest envelope for the gRPC framing of a request.
        let max_message = channels.max_envelope_bytes() + (64 << 10);
        let service = AtomicBroadcastServer::new(AtomicBroadcastService::new(channels.clone()))
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(usize::MAX);
        let (stop_server, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                }),
        );
        tracing::info!(%local_addr, channels = config.channels.len(), "serving AtomicBroadcast");
        Ok(Node {
            channels,
            local_addr,
            stop_server,
            server,
            _lock: lock,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// Stops serving, then stops every channel; what was acknowledged is already on disk.
    pub async fn stop(self) {
        let _ = self.stop_server.send(());
        // Streams that never end (a Deliver following the chain) must not hold shutdown up.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.server).await;
        for channel in self.channels.iter() {
            channel.shutdown().await;
        }
    }
}

/// An exclusive lock on a data folder, so two nodes never write the same files.
struct DataDirLock {
    _file: std::fs::File,
}

impl DataDirLock {
    fn acquire(dir: &Path) -> anyhow::Result<Self> {
        use std::os::unix::io::AsRawFd;
        let path = dir.join("LOCK");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: flock on a descriptor we own; released when the file is closed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            anyhow::bail!("{} is in use by another orderer process", dir.display());
        }
        Ok(DataDirLock { _file: file })
    }
}
