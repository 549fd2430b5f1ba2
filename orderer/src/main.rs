//! The `orderer` command: run a node, or prepare what one needs (keys, genesis blocks).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ordo_orderer::node::Node;
use ordo_orderer::setup::config::{ClusterSection, Consensus, NodeConfig, NodeSection};
use ordo_orderer::setup::dev;

/// Ordo, an ordering service for permissioned blockchains (Hyperledger Fabric's AtomicBroadcast).
///
/// With no subcommand, starts a solo node for local use: data, development keys and one channel
/// ("ordo") under ./ordo-data, clients served on 127.0.0.1:7050.
#[derive(Parser)]
#[command(name = "orderer", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    dev: DevArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node from a config file and `ORDO_<TABLE>_<KEY>` environment variables over it
    /// (see README.md, "Configuration").
    Start {
        /// The config file; without it, every setting comes from the environment.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Overrides node.listen of the config file.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Write a channel's genesis block (a Fabric config block, as configtxgen writes it) from a
    /// profile file (README.md, "Channel profile").
    Genesis {
        /// The profile (TOML, modelled on configtx.yaml).
        #[arg(long)]
        profile: PathBuf,
        /// The channel id; overrides the profile's `channel_id`.
        #[arg(long)]
        channel_id: Option<String>,
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Change or show the membership of a raft cluster, through any node's cluster address;
    /// or (`admin channel ...`) join, list, inspect and remove channels through a node's channel
    /// participation API, as Fabric's osnadmin does.
    Admin {
        /// Cluster address (host:port) of any node (not for `admin channel`).
        #[arg(long)]
        cluster: Option<String>,
        /// TLS to the cluster port (not for `admin channel`, which takes its own).
        #[command(flatten)]
        tls: AdminTls,
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Write a node config (the file `start` reads) from flags; to stdout without --out.
    ///
    /// Paths are written as given: a relative one is taken from the folder of the config file.
    /// Keys not given keep their defaults (README.md, "Configuration").
    Config(Box<ConfigArgs>),
    /// Generate development crypto material as Fabric's cryptogen does: per organisation a CA
    /// and a TLS CA, NodeOUs, and MSP folders for its nodes, its admin and its users.
    Cryptogen(CryptogenArgs),
}

#[derive(Args)]
struct CryptogenArgs {
    /// Output folder; one sub-folder per organisation.
    #[arg(long, short)]
    out: PathBuf,
    /// An orderer organisation, `NAME[:NODES]` (MSP id `<NAME>MSP`); may repeat.
    #[arg(
        long = "orderer-org",
        value_name = "NAME[:NODES]",
        default_value = "Orderer:1"
    )]
    orderer_orgs: Vec<String>,
    /// A peer (application) organisation, `NAME[:USERS]`; may repeat.
    #[arg(
        long = "peer-org",
        value_name = "NAME[:USERS]",
        default_value = "Org1:1"
    )]
    peer_orgs: Vec<String>,
    /// Signing key type: ecdsa (P-256) or ed25519 (needs the V3_0 channel capability).
    #[arg(long, default_value = "ecdsa")]
    key_type: ordo_client::cryptogen::KeyKind,
    /// Extra host names or addresses the nodes' TLS certificates are valid for; may repeat.
    #[arg(long = "host")]
    hosts: Vec<String>,
}

impl CryptogenArgs {
    fn specs(&self) -> anyhow::Result<Vec<ordo_client::cryptogen::OrgSpec>> {
        use ordo_client::cryptogen::{OrgKind, OrgSpec};
        let parse = |text: &str, kind: OrgKind| -> anyhow::Result<OrgSpec> {
            let (name, count) = match text.split_once(':') {
                Some((name, count)) => (
                    name,
                    count.parse().map_err(|_| {
                        anyhow::anyhow!("{text:?}: the count after ':' must be a number")
                    })?,
                ),
                None => (text, 1),
            };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                anyhow::bail!("{text:?}: an organisation name is letters, digits, '-' and '.'");
            }
            let (nodes, users) = match kind {
                OrgKind::Orderer => (count, 0),
                OrgKind::Peer => (1, count),
            };
            Ok(OrgSpec {
                name: name.to_string(),
                kind,
                nodes,
                users,
                hosts: self.hosts.clone(),
            })
        };
        let mut specs = Vec::new();
        for org in &self.orderer_orgs {
            specs.push(parse(org, OrgKind::Orderer)?);
        }
        for org in &self.peer_orgs {
            specs.push(parse(org, OrgKind::Peer)?);
        }
        Ok(specs)
    }
}

/// The cluster port of a node with TLS on takes only mutual TLS, with a client certificate
/// from a CA the cluster trusts (an orderer org's TLS CA, or `cluster.root_cas`).
#[derive(Args)]
struct AdminTls {
    /// The CA of the node's cluster TLS certificate (PEM); turns TLS on.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<PathBuf>,
    /// The client certificate (PEM) to present.
    #[arg(long, requires = "tls_ca")]
    tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, requires = "tls_ca")]
    tls_key: Option<PathBuf>,
}

#[derive(Subcommand)]
enum AdminAction {
    /// Add a node as a learner: it receives the log and catches up, but does not vote.
    AddLearner {
        #[arg(long)]
        id: u64,
        /// The new node's cluster address.
        #[arg(long)]
        address: String,
    },
    /// Make a learner a voter.
    Promote {
        #[arg(long)]
        id: u64,
    },
    /// Remove a node from the voters.
    Remove {
        #[arg(long)]
        id: u64,
    },
    /// Show each channel's Raft state, leader, members and log indexes as this node sees them.
    Status {
        /// Print one line of JSON (for scripts) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The channel participation API of one node (`[admin] listen`), as osnadmin uses it.
    Channel(ChannelArgs),
}

#[derive(Args)]
struct ChannelArgs {
    /// The node's admin address (host:port).
    #[arg(long, value_name = "HOST:PORT")]
    admin_address: String,
    /// The CA (PEM) of the admin port's TLS certificate; with it, https is used.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// The admin's client certificate and key (PEM), for the admin port's mutual TLS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    #[command(subcommand)]
    action: ChannelAction,
}

#[derive(Subcommand)]
enum ChannelAction {
    /// Join a channel with its config block (the genesis block, as `orderer genesis` writes it).
    Join {
        #[arg(long, value_name = "FILE")]
        config_block: PathBuf,
    },
    /// List the channels the node serves.
    List,
    /// Show one channel: relation, status, height.
    Info {
        #[arg(long)]
        channel_id: String,
    },
    /// Stop a channel and delete (or archive) its data on that node.
    Remove {
        #[arg(long)]
        channel_id: String,
    },
}

#[derive(Args)]
struct ConfigArgs {
    /// The file to write; without it, the config goes to stdout.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// node.data_dir: where logs and ledgers live.
    #[arg(long)]
    data_dir: PathBuf,
    /// node.listen: client gRPC address.
    #[arg(long)]
    listen: SocketAddr,
    /// node.msp_dir: this node's MSP folder.
    #[arg(long)]
    msp_dir: PathBuf,
    /// node.mspid: the MSP id of this node's identity.
    #[arg(long)]
    mspid: String,
    /// node.consensus.
    #[arg(long, value_enum, default_value_t = Consensus::Solo)]
    consensus: Consensus,
    /// node.id: this node's Raft id in channels whose consenters do not list it.
    #[arg(long, default_value_t = 1)]
    id: u64,
    /// node.cluster_listen: cluster gRPC address (raft).
    #[arg(long)]
    cluster_listen: Option<SocketAddr>,
    /// cluster.address: this node's cluster address as consenters list it (raft; default: the
    /// cluster_listen address).
    #[arg(long, value_name = "HOST:PORT")]
    cluster_address: Option<String>,
    /// The genesis block of a channel to serve; repeatable.
    #[arg(long, value_name = "FILE")]
    genesis: Vec<PathBuf>,
    /// cluster.heartbeat_ms (raft).
    #[arg(long)]
    heartbeat_ms: Option<u64>,
    /// cluster.election_timeout_min_ms (raft).
    #[arg(long)]
    election_timeout_min_ms: Option<u64>,
    /// cluster.election_timeout_max_ms (raft).
    #[arg(long)]
    election_timeout_max_ms: Option<u64>,
    /// cluster.produce_timeout_ms (raft).
    #[arg(long)]
    produce_timeout_ms: Option<u64>,
    /// log.segment_bytes.
    #[arg(long)]
    segment_bytes: Option<u64>,
    /// tls.enabled = false: plain-text ports (TLS is on by default, from the cryptogen folder
    /// next to --msp-dir: `../tls/server.crt` and `../tls/server.key`).
    #[arg(long)]
    no_tls: bool,
    /// tls.cert (default: `<msp-dir>/../tls/server.crt`).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// tls.key (default: `<msp-dir>/../tls/server.key`).
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// tls.client_auth_required: clients must present TLS certificates (mutual TLS).
    #[arg(long)]
    tls_client_auth: bool,
    /// tls.client_root_cas: a CA (PEM file) client certificates may chain to; repeatable.
    #[arg(long, value_name = "FILE")]
    tls_client_root_ca: Vec<PathBuf>,
    /// cluster.cert (raft; default: tls.cert).
    #[arg(long)]
    cluster_cert: Option<PathBuf>,
    /// cluster.key (raft; default: tls.key).
    #[arg(long)]
    cluster_key: Option<PathBuf>,
    /// cluster.root_cas: a CA (PEM file) cluster peers' certificates may chain to; repeatable.
    #[arg(long, value_name = "FILE")]
    cluster_root_ca: Vec<PathBuf>,
    /// operations.listen: the operations HTTP address (/healthz, /metrics, /logspec, /version).
    #[arg(long)]
    operations_listen: Option<SocketAddr>,
    /// admin.listen: the channel participation API's address. With TLS on, the admin port uses
    /// the node's TLS certificate and requires client certificates of --admin-client-root-ca.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// admin.tls.client_root_cas: a CA (PEM file) admins' client certificates chain to;
    /// repeatable; needed with --admin-listen unless --no-tls.
    #[arg(long, value_name = "FILE")]
    admin_client_root_ca: Vec<PathBuf>,
}

impl ConfigArgs {
    fn into_config(self) -> anyhow::Result<NodeConfig> {
        let raft = self.consensus == Consensus::Raft;
        // cryptogen puts a node's tls/ beside its msp/.
        let tls_dir = self
            .msp_dir
            .parent()
            .map(|p| p.join("tls"))
            .unwrap_or_else(|| PathBuf::from("tls"));
        let tls = ordo_orderer::setup::config::TlsSection {
            enabled: !self.no_tls,
            cert: Some(self.tls_cert.unwrap_or_else(|| tls_dir.join("server.crt"))),
            key: Some(self.tls_key.unwrap_or_else(|| tls_dir.join("server.key"))),
            client_auth_required: self.tls_client_auth,
            client_root_cas: self.tls_client_root_ca,
        };
        let cluster_tls = (self.cluster_cert, self.cluster_key, self.cluster_root_ca);
        let mut config = NodeConfig::new(
            NodeSection {
                data_dir: self.data_dir,
                listen: self.listen,
                msp_dir: self.msp_dir,
                mspid: self.mspid,
                consensus: self.consensus,
                id: self.id,
                cluster_listen: self.cluster_listen,
            },
            self.genesis,
        );
        if let Some(listen) = self.admin_listen {
            config.admin.listen = Some(listen);
            if tls.enabled {
                if self.admin_client_root_ca.is_empty() {
                    anyhow::bail!(
                        "--admin-listen with TLS on needs --admin-client-root-ca: the CA whose \
                         client certificates are admins (or --no-tls)"
                    );
                }
                config.admin.tls = ordo_orderer::setup::config::TlsSection {
                    enabled: true,
                    cert: tls.cert.clone(),
                    key: tls.key.clone(),
                    client_auth_required: true,
                    client_root_cas: self.admin_client_root_ca,
                };
            }
        }
        config.tls = tls;
        if let Some(segment_bytes) = self.segment_bytes {
            config.log.segment_bytes = segment_bytes;
        }
        config.operations.listen = self.operations_listen;
        let timings = [
            self.heartbeat_ms,
            self.election_timeout_min_ms,
            self.election_timeout_max_ms,
            self.produce_timeout_ms,
        ];
        if raft {
            let defaults = ClusterSection::default();
            config.cluster = Some(ClusterSection {
                address: self.cluster_address.clone(),
                dial: Default::default(),
                heartbeat_ms: self.heartbeat_ms.unwrap_or(defaults.heartbeat_ms),
                election_timeout_min_ms: self
                    .election_timeout_min_ms
                    .unwrap_or(defaults.election_timeout_min_ms),
                election_timeout_max_ms: self
                    .election_timeout_max_ms
                    .unwrap_or(defaults.election_timeout_max_ms),
                produce_timeout_ms: self
                    .produce_timeout_ms
                    .unwrap_or(defaults.produce_timeout_ms),
                cert: cluster_tls.0,
                key: cluster_tls.1,
                root_cas: cluster_tls.2,
            });
        } else if config.node.cluster_listen.is_some()
            || self.cluster_address.is_some()
            || timings.iter().any(Option::is_some)
            || cluster_tls.0.is_some()
            || cluster_tls.1.is_some()
            || !cluster_tls.2.is_empty()
        {
            anyhow::bail!(
                "--cluster-listen, --cluster-address, the cluster timings and TLS files are for \
                 --consensus raft"
            );
        }
        config.check().map_err(anyhow::Error::msg)?;
        Ok(config)
    }
}

#[derive(Args)]
struct DevArgs {
    /// Data folder of the development node.
    #[arg(long, env = "ORDO_DATA", default_value = "ordo-data")]
    data_dir: PathBuf,
    /// Client gRPC address of the development node.
    #[arg(long, env = "ORDO_LISTEN", default_value = "127.0.0.1:7050")]
    listen: SocketAddr,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Reloadable, for the operations service's `PUT /logspec`.
    ordo_orderer::operations::logspec::init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orderer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => {
            let layout = dev::prepare(&cli.dev.data_dir, cli.dev.listen)?;
            let mut config = NodeConfig::load(&layout.config)?;
            config.node.listen = cli.dev.listen;
            println!("data:               {}", config.node.data_dir.display());
            println!(
                "client MSP:         {} ({})",
                layout.client_msp.display(),
                dev::CLIENT_MSPID
            );
            println!(
                "orderer admin MSP:  {} ({})",
                layout.admin_msp.display(),
                dev::ORDERER_MSPID
            );
            println!(
                "channel:            {} ({})",
                dev::CHANNEL,
                layout.genesis_block.display()
            );
            if config.tls.enabled {
                println!("TLS CA:             {}", layout.tls_ca.display());
            }
            serve(config)
        }
        Some(Command::Start { config, listen }) => {
            let (mut config, overrides) =
                NodeConfig::load_with(config.as_deref(), std::env::vars())?;
            for o in &overrides {
                tracing::info!(setting = %o.setting, variable = %o.variable, "setting from the environment");
            }
            if let Some(listen) = listen {
                config.node.listen = listen;
            }
            serve(config)
        }
        Some(Command::Genesis {
            profile,
            channel_id,
            output,
        }) => {
            let profile = ordo_client::profile::load(&profile)?;
            let block =
                ordo_client::profile::write_genesis(&profile, channel_id.as_deref(), &output)?;
            let id = channel_id.unwrap_or(profile.channel_id);
            println!(
                "wrote the genesis block of channel {id} ({} bytes) to {}",
                prost::Message::encoded_len(&block),
                output.display()
            );
            Ok(())
        }
        Some(Command::Admin {
            action: AdminAction::Channel(args),
            ..
        }) => channel_admin(args),
        Some(Command::Admin {
            cluster,
            tls,
            action,
        }) => {
            let cluster =
                cluster.context("--cluster is required (the cluster address of a node)")?;
            admin(&cluster, &tls, action)
        }
        Some(Command::Config(args)) => {
            let out = args.out.clone();
            let config = args.into_config()?;
            match out {
                Some(out) => {
                    config.write(&out)?;
                    println!("wrote the node config to {}", out.display());
                }
                None => print!("{}", config.to_toml()?),
            }
            Ok(())
        }
        Some(Command::Cryptogen(args)) => {
            let made = ordo_client::cryptogen::generate(&args.out, &args.specs()?, args.key_type)?;
            for org in made {
                println!("{} ({}): {}", org.name, org.mspid, org.msp.display());
                for node in org.nodes.iter().chain(&org.users) {
                    println!("  {}", node.display());
                }
            }
            Ok(())
        }
    }
}

fn admin(cluster: &str, tls: &AdminTls, action: AdminAction) -> anyhow::Result<()> {
    use ordo_orderer::status::StatusView;
    use ordo_proto::ordo::admin_client::AdminClient;
    use ordo_proto::ordo::{MemberChange, StatusRequest};
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let dialer = match (&tls.tls_ca, &tls.tls_cert, &tls.tls_key) {
            (Some(ca), Some(cert), Some(key)) => {
                let credentials =
                    ordo_orderer::tls::Credentials::load(ordo_orderer::tls::TlsFiles {
                        cert: cert.clone(),
                        key: key.clone(),
                        roots: vec![ca.clone()],
                    })?;
                Some(ordo_orderer::tls::Dialer::new(credentials)?)
            }
            _ => None,
        };
        let channel =
            ordo_orderer::tls::dial(dialer.as_ref(), cluster).map_err(anyhow::Error::msg)?;
        let mut client = AdminClient::new(channel);
        let change = |node_id, address: String| MemberChange {
            node_id,
            address,
            channel: String::new(),
        };
        if let AdminAction::Status { json } = action {
            let reply = client
                .status(StatusRequest {})
                .await
                .map_err(|e| anyhow::anyhow!("{cluster}: {}", e.message()))?
                .into_inner();
            let view = StatusView::from(&reply);
            if json {
                println!("{}", view.to_json());
            } else {
                print!("{}", view.to_table());
            }
            return Ok(());
        }
        let reply = match action {
            AdminAction::AddLearner { id, address } => {
                client.add_learner(change(id, address)).await
            }
            AdminAction::Promote { id } => client.promote(change(id, String::new())).await,
            AdminAction::Remove { id } => client.remove(change(id, String::new())).await,
            AdminAction::Status { .. } => unreachable!("answered above"),
            AdminAction::Channel(_) => unreachable!("answered by channel_admin"),
        }
        .map_err(|e| anyhow::anyhow!("{cluster}: {}", e.message()))?
        .into_inner();
        print!("{}", reply.message);
        if !reply.ok {
            anyhow::bail!("the change did not apply everywhere");
        }
        Ok(())
    })
}

/// `orderer admin channel ...`: one request to a node's participation API; prints the HTTP
/// status and the JSON answer (indented), as osnadmin does. Fails on an error status.
fn channel_admin(args: ChannelArgs) -> anyhow::Result<()> {
    const CHANNELS: &str = "participation/v1/channels";
    let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60));
    let scheme = match &args.tls_ca {
        Some(ca) => {
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            builder = builder
                .tls_built_in_root_certs(false)
                .add_root_certificate(reqwest::Certificate::from_pem(&pem).context("--tls-ca")?);
            "https"
        }
        None => "http",
    };
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let mut pem = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
        pem.extend(std::fs::read(key).with_context(|| format!("reading {}", key.display()))?);
        builder =
            builder.identity(reqwest::Identity::from_pem(&pem).context("--tls-cert/--tls-key")?);
    }
    let client = builder.build().context("building the HTTP client")?;
    let base = format!("{scheme}://{}/{CHANNELS}", args.admin_address);
    let request = match args.action {
        ChannelAction::Join { config_block } => {
            let block = std::fs::read(&config_block)
                .with_context(|| format!("reading {}", config_block.display()))?;
            let part = reqwest::multipart::Part::bytes(block).file_name("config.block");
            client
                .post(&base)
                .multipart(reqwest::multipart::Form::new().part("config-block", part))
        }
        ChannelAction::List => client.get(&base),
        ChannelAction::Info { channel_id } => client.get(format!("{base}/{channel_id}")),
        ChannelAction::Remove { channel_id } => client.delete(format!("{base}/{channel_id}")),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let response = request
            .send()
            .await
            .with_context(|| format!("sending the request to {}", args.admin_address))?;
        let status = response.status();
        let body = response.text().await.context("reading the answer")?;
        println!("Status: {}", status.as_u16());
        if !body.is_empty() {
            match serde_json::from_str::<serde_json::Value>(&body) {
                Ok(json) => println!("{}", serde_json::to_string_pretty(&json)?),
                Err(_) => println!("{body}"),
            }
        }
        if !status.is_success() {
            anyhow::bail!("the node answered {status}");
        }
        Ok(())
    })
}

fn serve(config: NodeConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let node = Node::start(&config).await?;
        // Tests and scripts read these lines to find ephemeral ports.
        if let Some(operations) = node.operations_addr() {
            println!("operations listening on {operations}");
        }
        if let Some(cluster) = node.cluster_addr() {
            println!("cluster listening on {cluster}");
        }
        if let Some(admin) = node.admin_addr() {
            println!("admin listening on {admin}");
        }
        println!("listening on {}", node.local_addr());
        shutdown_signal().await;
        tracing::info!("shutting down");
        node.stop().await;
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "SIGTERM cannot be caught; stop with SIGINT");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
