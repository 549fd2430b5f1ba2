//! Shared test harness: builds the real binaries once, runs `orderer` processes on ephemeral
//! ports in temporary folders, and cleans up after itself (processes killed, folders removed).

#![allow(dead_code)]

pub mod admin;
pub mod cluster;
pub mod http;
pub mod ports;
pub mod python;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use ordo_core::msp::SigningIdentity;
use ordo_orderer::setup::config::{NodeConfig, TlsSection};
use ordo_orderer::setup::dev;
use ordo_orderer::setup::dev::BatchSection;
use ordo_peer_sim::client::TlsArgs;
use ordo_peer_sim::Client;

/// Path of a workspace binary, built (once per test process) with the same profile as the tests.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let status = Command::new(env!("CARGO"))
            .current_dir(&root)
            .args([
                "build",
                "--quiet",
                "-p",
                "ordo-orderer",
                "-p",
                "ordo-peer-sim",
                "--bins",
            ])
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building the binaries failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        target.join("debug")
    });
    dir.join(name)
}

/// The last line of a `peer-sim … --json` run's stdout, parsed: its report.
pub fn last_json_line(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line in peer-sim's output:\n{text}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// Batch rules for tests: small blocks and a short timeout, so tests run quickly.
pub fn test_batch() -> BatchSection {
    BatchSection {
        max_message_count: 100,
        absolute_max_bytes: 64 << 10,
        preferred_max_bytes: 32 << 10,
        timeout_ms: 100,
        dedup_window_blocks: 100,
    }
}

/// How long an orderer may take to start listening.
const START_WITHIN: Duration = Duration::from_secs(30);

/// The addresses an `orderer` process serves on, as it prints them.
pub struct Listening {
    pub client: SocketAddr,
    /// The operations port, if it serves one (printed before the client address).
    pub operations: Option<SocketAddr>,
}

/// The addresses a just-spawned `orderer` (stdout piped) prints once it serves; kills it and
/// panics if it does not within [`START_WITHIN`].
pub fn wait_listening(child: &mut Child) -> Listening {
    let stdout = child.stdout.take().expect("the orderer's stdout is piped");
    // The addresses it reports, read on a thread of its own so that the wait has a deadline.
    let (found, listening) = std::sync::mpsc::channel();
    let (found_ops, ops_listening) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(Ok(line)) = lines.next() {
            if let Some(addr) = line.strip_prefix("operations listening on ") {
                let _ = found_ops.send(addr.trim().parse::<SocketAddr>());
            } else if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = found.send(addr.trim().parse::<SocketAddr>());
                // Keep draining stdout so the process never blocks on a full pipe.
                lines.for_each(drop);
                return;
            }
        }
    });
    let client = match listening.recv_timeout(START_WITHIN) {
        Ok(addr) => addr.expect("the orderer printed an unreadable address"),
        Err(e) => {
            let _ = child.kill();
            let status = child.wait();
            panic!("orderer did not start listening within {START_WITHIN:?} ({e}): {status:?}");
        }
    };
    let operations = ops_listening
        .try_recv()
        .ok()
        .map(|addr| addr.expect("the orderer printed an unreadable operations address"));
    Listening { client, operations }
}

/// A solo orderer process over a data folder that outlives restarts of the process.
pub struct Orderer {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The MSP folder of a client of Org1MSP (writes and reads).
    pub client_msp: PathBuf,
    /// The MSP folder of the orderer organisation's admin (changes orderer settings).
    pub admin_msp: PathBuf,
    pub genesis_block: PathBuf,
    /// TLS to the client port as the node's config has it (`tls_ca: None`: plain text).
    pub tls: TlsArgs,
    child: Option<Child>,
    pub addr: SocketAddr,
    /// The operations HTTP address, if the config has `[operations] listen`.
    pub ops_addr: Option<SocketAddr>,
    /// Where the process's stderr goes (appended); inherited from the test when `None`.
    pub log_file: Option<PathBuf>,
}

impl Orderer {
    /// Prepares a development setup with `batch` rules and starts the binary on it.
    pub fn start(batch: BatchSection) -> Orderer {
        Orderer::start_configured(batch, |_| {})
    }

    /// [`Orderer::start`], with the node config changed by `edit` first.
    pub fn start_configured(batch: BatchSection, edit: impl FnOnce(&mut NodeConfig)) -> Orderer {
        Orderer::launch(batch, false, edit)
    }

    /// [`Orderer::start_configured`] with the operations service on an ephemeral port and the
    /// process's log in `log_file` (at `RUST_LOG=info`).
    pub fn start_with_operations(
        batch: BatchSection,
        edit: impl FnOnce(&mut NodeConfig),
    ) -> Orderer {
        Orderer::launch(batch, true, edit)
    }

    fn launch(
        batch: BatchSection,
        operations: bool,
        edit: impl FnOnce(&mut NodeConfig),
    ) -> Orderer {
        let dir = tempfile::tempdir().unwrap();
        let layout = dev::prepare_with(dir.path(), "127.0.0.1:0".parse().unwrap(), batch).unwrap();
        let text = std::fs::read_to_string(&layout.config).unwrap();
        let mut config: NodeConfig = toml::from_str(&text).unwrap();
        if operations {
            config.operations.listen = Some("127.0.0.1:0".parse().unwrap());
        }
        edit(&mut config);
        config.write(&layout.config).unwrap();
        let tls = client_tls(
            &config.tls,
            layout.tls_ca,
            layout.client_tls_cert,
            layout.client_tls_key,
        );
        let log_file = operations.then(|| dir.path().join("stderr.log"));
        let mut orderer = Orderer {
            dir,
            config: layout.config,
            client_msp: layout.client_msp,
            admin_msp: layout.admin_msp,
            genesis_block: layout.genesis_block,
            tls,
            child: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            ops_addr: None,
            log_file,
        };
        orderer.restart();
        orderer
    }

    /// What the process logged so far (with [`Orderer::log_file`]).
    pub fn log(&self) -> String {
        self.log_file
            .as_ref()
            .map(|path| std::fs::read_to_string(path).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Starts the process (again), on a fresh ephemeral port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let (stderr, level) = match &self.log_file {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap();
                (Stdio::from(file), "info")
            }
            None => (Stdio::inherit(), "warn"),
        };
        let mut child = Command::new(binary("orderer"))
            .args(["start", "--config"])
            .arg(&self.config)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", level)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("starting orderer");
        let listening = wait_listening(&mut child);
        let addr = listening.client;
        self.addr = addr;
        self.ops_addr = listening.operations;
        self.child = Some(child);
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("not running").id()
    }

    /// The folder of the channel's log and ledger.
    pub fn channel_dir(&self) -> PathBuf {
        self.dir.path().join("channels").join(dev::CHANNEL)
    }

    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.tls_ca.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// peer-sim's TLS flags for this node (none with TLS off).
    pub fn tls_flags(&self) -> Vec<std::ffi::OsString> {
        tls_flags(&self.tls)
    }

    /// A gRPC channel to the client port, over TLS when the node has it on.
    pub async fn grpc_channel(&self) -> tonic::transport::Channel {
        grpc_channel(&self.endpoint(), &self.tls).await
    }

    /// SIGKILL: no shutdown path runs, as in a crash or power loss of the process.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("not running");
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        for _ in 0..100 {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        panic!("orderer did not exit within 10s of SIGTERM");
    }

    /// The Org1 client's signing identity.
    pub fn signer(&self) -> SigningIdentity {
        ordo_client::msp_dir::signing_identity(&self.client_msp, dev::CLIENT_MSPID).unwrap()
    }

    /// The orderer organisation's admin.
    pub fn admin(&self) -> SigningIdentity {
        ordo_client::msp_dir::signing_identity(&self.admin_msp, dev::ORDERER_MSPID).unwrap()
    }

    pub async fn client(&self) -> Client {
        Client::connect_tls(&self.endpoint(), dev::CHANNEL, self.signer(), &self.tls)
            .await
            .unwrap()
    }
}

impl Drop for Orderer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// How a client reaches a node whose `[tls]` is `tls`: the CA with TLS on, and the client
/// certificate when the node requires one.
pub fn client_tls(
    tls: &TlsSection,
    ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
) -> TlsArgs {
    if !tls.enabled {
        return TlsArgs::default();
    }
    let mutual = tls.client_auth_required;
    TlsArgs {
        tls_ca: Some(ca),
        tls_cert: mutual.then_some(client_cert),
        tls_key: mutual.then_some(client_key),
    }
}

/// peer-sim's flags for `tls`.
pub fn tls_flags(tls: &TlsArgs) -> Vec<std::ffi::OsString> {
    let mut flags = Vec::new();
    for (flag, path) in [
        ("--tls-ca", &tls.tls_ca),
        ("--tls-cert", &tls.tls_cert),
        ("--tls-key", &tls.tls_key),
    ] {
        if let Some(path) = path {
            flags.push(flag.into());
            flags.push(path.clone().into_os_string());
        }
    }
    flags
}

/// A gRPC channel to `endpoint` with `tls` (plain without a CA).
pub async fn grpc_channel(endpoint: &str, tls: &TlsArgs) -> tonic::transport::Channel {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let mut target = Endpoint::from_shared(endpoint.to_string()).unwrap();
    if let Some(ca) = &tls.tls_ca {
        let mut config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(std::fs::read(ca).unwrap()));
        if let (Some(cert), Some(key)) = (&tls.tls_cert, &tls.tls_key) {
            config = config.identity(Identity::from_pem(
                std::fs::read(cert).unwrap(),
                std::fs::read(key).unwrap(),
            ));
        }
        target = target.tls_config(config).unwrap();
    }
    target.connect().await.unwrap()
}

/// Follows the chain until every `tx_id` is in it (30 s at most), verifying every block, and
/// returns the chain read back from block 0. Panics on a missing or duplicated transaction.
pub async fn wait_for_txs<T>(
    client: &Client,
    acked: &[(String, T)],
) -> Vec<ordo_proto::common::Block> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut follower = ordo_peer_sim::Follower::start(client.clone(), Default::default())
        .await
        .expect("following Deliver");
    let delivery = follower
        .until_delivered(acked.iter().map(|(id, _)| id.clone()), deadline)
        .await;
    match delivery.end {
        ordo_peer_sim::End::Delivered => {}
        end => panic!(
            "{} acknowledged transactions are not in the chain ({end:?})",
            delivery.missing.len()
        ),
    }
    drop(follower);
    let blocks = client.read_chain().await.unwrap();
    let mut verifier = ordo_peer_sim::ChainVerifier::new();
    for block in &blocks {
        verifier.verify(block).unwrap();
    }
    blocks
}

/// A config update of the channel's /Channel/Orderer/BatchSize max_message_count against the
/// config of `genesis`, signed by `admin` (one of the orderer organisation's admins).
pub fn batch_size_update(
    genesis: &ordo_proto::common::Block,
    count: u32,
    admin: &SigningIdentity,
) -> ordo_proto::common::Envelope {
    use ordo_core::bundle::Bundle;
    use ordo_core::configtx::client::{update_envelope, value_update};
    use prost::Message;
    let bundle = Bundle::from_block(genesis).unwrap();
    let values = &bundle.config().channel_group.as_ref().unwrap().groups["Orderer"].values;
    let mut batch =
        ordo_proto::orderer::BatchSize::decode(values["BatchSize"].value.clone()).unwrap();
    batch.max_message_count = count;
    let update = value_update(
        bundle.config(),
        bundle.channel_id(),
        &["Orderer"],
        "BatchSize",
        batch.encode_to_vec().into(),
    )
    .unwrap();
    update_envelope(&update, &[admin], admin)
}
