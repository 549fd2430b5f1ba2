//! The node's configuration file (`orderer.toml`). Every field is documented in README.md;
//! relative paths are taken from the folder of the file. (A channel is described by its genesis
//! block, which `orderer genesis` writes from a profile: `ordo_client::profile`.)

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub node: NodeSection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub ledger: LedgerSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub authentication: AuthenticationSection,
    /// TLS on the client port (Fabric's `General.TLS`); it also turns mutual TLS on for the
    /// cluster port.
    #[serde(default)]
    pub tls: TlsSection,
    /// The replicated consensus type's cluster (consensus = "raft").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterSection>,
    /// The channels this node serves, each by its genesis block.
    #[serde(default, rename = "channel")]
    pub channels: Vec<ChannelSection>,
    /// The operations HTTP service (Fabric's `Operations` and `Metrics`): health, metrics,
    /// log level, version.
    #[serde(default)]
    pub operations: OperationsSection,
    /// The admin HTTP port of the channel participation API (Fabric's `Admin`).
    #[serde(default)]
    pub admin: AdminSection,
    /// Fabric's `ChannelParticipation`.
    #[serde(default)]
    pub channel_participation: ChannelParticipationSection,
}

/// Fabric's `Admin`: where the channel participation API is served, and its TLS.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// Address of the admin HTTP server (Fabric's `Admin.ListenAddress`); absent: none is served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Connections served at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Fabric's `Admin.TLS`. With TLS on, `client_auth_required` must be true and
    /// `client_root_cas` name the CAs of the admins' client certificates: any certificate that
    /// chains to them is an admin (Fabric's rule).
    pub tls: TlsSection,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            listen: None,
            max_connections: 16,
            tls: TlsSection::default(),
        }
    }
}

/// Fabric's `ChannelParticipation`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelParticipationSection {
    /// false: every request to the API is answered 503.
    pub enabled: bool,
    /// Largest join request body (multipart form) taken, in bytes.
    pub max_request_body_size: usize,
    /// A removed channel's folder is moved to `<data_dir>/archive/<id>-<unix seconds>` rather
    /// than deleted.
    pub archive_removed_channels: bool,
}

impl Default for ChannelParticipationSection {
    fn default() -> Self {
        ChannelParticipationSection {
            enabled: true,
            max_request_body_size: 1 << 20,
            archive_removed_channels: false,
        }
    }
}

impl AdminSection {
    /// Admin TLS is all or nothing: a certificate, a key and client CAs, with client auth.
    fn check(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err("admin.max_connections must be above 0".into());
        }
        let tls = &self.tls;
        if !tls.enabled {
            return Ok(());
        }
        if !tls.client_auth_required {
            return Err(
                "admin.tls.enabled requires admin.tls.client_auth_required = true (as Fabric's \
                 Admin.TLS.ClientAuthRequired): the client certificate is the only proof that a \
                 caller is an admin"
                    .into(),
            );
        }
        if tls.cert.is_none() || tls.key.is_none() {
            return Err("admin.tls.enabled needs admin.tls.cert and admin.tls.key".into());
        }
        if tls.client_root_cas.is_empty() {
            return Err(
                "admin.tls.enabled needs admin.tls.client_root_cas (the CAs of the admins' \
                 client certificates)"
                    .into(),
            );
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Where logs and ledgers live: `<data_dir>/channels/<channel>/{log,ledger}`.
    pub data_dir: PathBuf,
    /// Client (AtomicBroadcast) gRPC address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// This node's MSP folder (Fabric's `General.LocalMSPDir`): its signing identity signs the
    /// blocks and config envelopes this node writes.
    pub msp_dir: PathBuf,
    /// The MSP id of that identity (Fabric's `General.LocalMSPID`).
    pub mspid: String,
    /// Consensus type: "solo" (one node, unreplicated log) or "raft" (the log replicated
    /// across the nodes of `[cluster]`).
    #[serde(default)]
    pub consensus: Consensus,
    /// This node's Raft id in a channel whose consenters do not list it (it waits to be added
    /// with `orderer admin add-learner`); where they list it, its id is the consenter's.
    #[serde(default = "default_node_id")]
    pub id: u64,
    /// Address of the cluster (orderer-to-orderer and admin) gRPC service; raft only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_listen: Option<SocketAddr>,
}

fn default_node_id() -> u64 {
    1
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// This node's cluster address as the channels' etcdraft consenters list it (`host:port`);
    /// by default `node.cluster_listen`. A channel whose consenters include it starts with
    /// them as its Raft group (ids 1..n in consenter order, as etcdraft assigns them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Where this node dials a consenter whose channel-config address (`host:port`, the key)
    /// it reaches by another address (the value): behind NAT, a port forward or a proxy.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub dial: std::collections::BTreeMap<String, String>,
    /// Leader heartbeat interval.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// A follower that hears no leader for a random time in this range starts an election.
    #[serde(default = "default_election_min_ms")]
    pub election_timeout_min_ms: u64,
    #[serde(default = "default_election_max_ms")]
    pub election_timeout_max_ms: u64,
    /// How long Broadcast waits for a leader to commit an envelope before SERVICE_UNAVAILABLE.
    #[serde(default = "default_produce_timeout_ms")]
    pub produce_timeout_ms: u64,
    /// With `[tls]` enabled, the cluster port always uses mutual TLS: this node's certificate
    /// (PEM), server and client alike, on the cluster port (Fabric's
    /// `General.Cluster.ServerCertificate`/`ClientCertificate`); default `tls.cert`. Its public
    /// key identifies this node among a channel's consenters (their `server_tls_cert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// Its private key (PEM); default `tls.key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// CA certificates (PEM files) cluster peers' certificates must chain to, besides the
    /// channels' orderer orgs' TLS roots and intermediates (Fabric's `General.Cluster.RootCAs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub root_cas: Vec<PathBuf>,
}

impl Default for ClusterSection {
    /// The default timings.
    fn default() -> Self {
        ClusterSection {
            address: None,
            dial: Default::default(),
            heartbeat_ms: default_heartbeat_ms(),
            election_timeout_min_ms: default_election_min_ms(),
            election_timeout_max_ms: default_election_max_ms(),
            produce_timeout_ms: default_produce_timeout_ms(),
            cert: None,
            key: None,
            root_cas: Vec::new(),
        }
    }
}

fn default_heartbeat_ms() -> u64 {
    100
}
fn default_election_min_ms() -> u64 {
    400
}
fn default_election_max_ms() -> u64 {
    800
}
fn default_produce_timeout_ms() -> u64 {
    5000
}

/// A node's consensus type: how its channels' records get their total order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Consensus {
    /// One node, its local unreplicated log.
    #[default]
    Solo,
    /// The log replicated across the nodes of `[cluster]`.
    Raft,
}

impl std::fmt::Display for Consensus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Consensus::Solo => "solo",
            Consensus::Raft => "raft",
        })
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// Size at which a log segment file is rolled.
    pub segment_bytes: u64,
    /// Bytes of each raft channel's newest log entries kept in memory for the reads that follow
    /// an append (replication, apply, block cutting); 0 reads everything from the files.
    #[serde(default = "default_log_cache_bytes")]
    pub cache_bytes: usize,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            segment_bytes: 64 << 20,
            cache_bytes: default_log_cache_bytes(),
        }
    }
}

fn default_log_cache_bytes() -> usize {
    8 << 20
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerSection {
    /// Size at which a block file is rolled.
    pub file_bytes: u64,
    /// Bytes of each channel's newest blocks kept in memory for the Deliver streams that follow
    /// the chain; 0 reads every block from the files.
    #[serde(default = "default_ledger_cache_bytes")]
    pub cache_bytes: usize,
}

impl Default for LedgerSection {
    fn default() -> Self {
        LedgerSection {
            file_bytes: 64 << 20,
            cache_bytes: default_ledger_cache_bytes(),
        }
    }
}

fn default_ledger_cache_bytes() -> usize {
    16 << 20
}

/// Bounds on what clients can make the node hold: connections, streams, buffered bytes.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Client connections served at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Client connections from one IP address at once.
    pub max_connections_per_ip: usize,
    /// A connection that has not started HTTP/2 within this is closed.
    pub handshake_timeout_ms: u64,
    /// A client connection with no open stream for this long is closed.
    pub idle_timeout_ms: u64,
    /// HTTP/2 pings go out this often on a connection; one unanswered for
    /// `keepalive_timeout_ms` closes it.
    pub keepalive_interval_ms: u64,
    pub keepalive_timeout_ms: u64,
    /// Concurrent streams (Broadcast or Deliver calls) on one connection.
    pub max_streams_per_connection: u32,
    /// Bytes of envelopes one Broadcast stream may have awaiting their commit; reading the
    /// stream pauses past it (an envelope is taken whatever its size while under it).
    pub broadcast_stream_bytes: usize,
    /// Bytes of blocks queued for one Deliver stream (a larger block is queued alone).
    pub deliver_stream_bytes: u32,
    /// Bytes of blocks queued for all Deliver streams together, beyond one block per stream.
    pub deliver_total_bytes: u32,
    /// Deliver streams open at once on all connections; more are answered SERVICE_UNAVAILABLE.
    pub max_deliver_streams: usize,
    /// On shutdown, how long open streams may go on once the node stops accepting, before they
    /// are cut (a Deliver following the chain never ends by itself); 0 cuts them at once.
    pub shutdown_grace_ms: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_connections: 4096,
            max_connections_per_ip: 1024,
            handshake_timeout_ms: 10_000,
            idle_timeout_ms: 300_000,
            keepalive_interval_ms: 60_000,
            keepalive_timeout_ms: 20_000,
            max_streams_per_connection: 256,
            broadcast_stream_bytes: 64 << 20,
            deliver_stream_bytes: 4 << 20,
            deliver_total_bytes: 256 << 20,
            max_deliver_streams: 1024,
            shutdown_grace_ms: 2000,
        }
    }
}

impl LimitsSection {
    /// Every bound must let something through: a zero would refuse every client (or, for the
    /// keepalive, ping without pause).
    fn check(&self) -> Result<(), String> {
        let values = [
            ("max_connections", self.max_connections as u64),
            ("max_connections_per_ip", self.max_connections_per_ip as u64),
            ("handshake_timeout_ms", self.handshake_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("keepalive_interval_ms", self.keepalive_interval_ms),
            ("keepalive_timeout_ms", self.keepalive_timeout_ms),
            (
                "max_streams_per_connection",
                self.max_streams_per_connection.into(),
            ),
            ("broadcast_stream_bytes", self.broadcast_stream_bytes as u64),
            ("deliver_stream_bytes", self.deliver_stream_bytes.into()),
            ("deliver_total_bytes", self.deliver_total_bytes.into()),
            ("max_deliver_streams", self.max_deliver_streams as u64),
        ];
        match values.iter().find(|(_, value)| *value == 0) {
            Some((name, _)) => Err(format!("limits.{name} must be above 0")),
            None => Ok(()),
        }
    }
}

/// Fabric's `General.Authentication`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthenticationSection {
    /// Envelopes (Broadcast and Deliver) dated further than this from the node's clock are
    /// refused with BAD_REQUEST; 0 turns the check off.
    pub time_window_s: u64,
}

impl Default for AuthenticationSection {
    fn default() -> Self {
        AuthenticationSection { time_window_s: 900 }
    }
}

/// Fabric's `General.TLS`: TLS on the client port, optionally with client certificates.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// TLS on the client port, and mutual TLS on the cluster port (default off, as Fabric's).
    pub enabled: bool,
    /// This node's TLS certificate chain (PEM, leaf first) and its key (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// Clients must present a certificate that chains to `client_root_cas` or to a served
    /// channel's orgs' TLS roots/intermediates; envelopes must then carry the certificate's
    /// hash in `ChannelHeader.tls_cert_hash`.
    pub client_auth_required: bool,
    /// Extra CA certificates (PEM files) client certificates may chain to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_root_cas: Vec<PathBuf>,
}

impl TlsSection {
    fn check(&self) -> Result<(), String> {
        if self.enabled && (self.cert.is_none() || self.key.is_none()) {
            return Err("tls.enabled needs tls.cert and tls.key".into());
        }
        Ok(())
    }
}

/// The operations service (Fabric's `Operations` and `Metrics` sections): `/healthz`,
/// `/metrics`, `/logspec` and `/version` on one HTTP port of its own.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperationsSection {
    /// Address of the operations HTTP server (Fabric's `Operations.ListenAddress`); port 0 picks
    /// a free port. Absent: no operations server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Fabric's `Metrics.Provider`: "prometheus" serves `/metrics`, "disabled" does not (it then
    /// answers 404).
    pub metrics: MetricsProvider,
    /// Connections served at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Concurrent requests on one HTTP/2 connection.
    pub max_streams_per_connection: u32,
    /// Bytes of one request body (a `/logspec` PUT); more is answered 413.
    pub max_request_bytes: usize,
    /// The TLS handshake and each request (headers and body) must arrive within this; an idle
    /// connection is closed after it (Fabric: 10 s).
    pub read_timeout_ms: u64,
    /// A request must be answered, and its answer read by the client, within this (Fabric: 2 min).
    pub write_timeout_ms: u64,
    /// TLS on the operations port (Fabric's `Operations.TLS`). With TLS on, `/metrics` and
    /// `/logspec` answer 401 to a client without a verified certificate; `/healthz` and
    /// `/version` never ask for one. Without `client_auth_required`, a client certificate is
    /// verified only if one is sent (against `client_root_cas`).
    pub tls: TlsSection,
}

impl Default for OperationsSection {
    fn default() -> Self {
        OperationsSection {
            listen: None,
            metrics: MetricsProvider::Prometheus,
            max_connections: 64,
            max_streams_per_connection: 32,
            max_request_bytes: 1 << 20,
            read_timeout_ms: 10_000,
            write_timeout_ms: 120_000,
            tls: TlsSection::default(),
        }
    }
}

impl OperationsSection {
    fn check(&self) -> Result<(), String> {
        let values = [
            ("max_connections", self.max_connections as u64),
            (
                "max_streams_per_connection",
                self.max_streams_per_connection.into(),
            ),
            ("max_request_bytes", self.max_request_bytes as u64),
            ("read_timeout_ms", self.read_timeout_ms),
            ("write_timeout_ms", self.write_timeout_ms),
        ];
        if let Some((name, _)) = values.iter().find(|(_, value)| *value == 0) {
            return Err(format!("operations.{name} must be above 0"));
        }
        let tls = &self.tls;
        if tls.enabled && (tls.cert.is_none() || tls.key.is_none()) {
            return Err("operations.tls.enabled needs operations.tls.cert and .key".into());
        }
        if tls.client_auth_required && (!tls.enabled || tls.client_root_cas.is_empty()) {
            return Err(
                "operations.tls.client_auth_required needs operations.tls.enabled and \
                        operations.tls.client_root_cas"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Fabric's `Metrics.Provider` (statsd is not offered).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsProvider {
    #[default]
    Prometheus,
    Disabled,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSection {
    /// Genesis block written by `orderer genesis`.
    pub genesis_block: PathBuf,
}

impl NodeConfig {
    /// Reads a node config, making its relative paths relative to the file's folder.
    pub fn load(path: &Path) -> anyhow::Result<NodeConfig> {
        Ok(NodeConfig::load_with(Some(path), std::iter::empty())?.0)
    }

    /// Reads a node config from the file at `path` (if any) with the settings of the `ORDO_`
    /// variables among `env` over it ([`super::env`]); relative paths are taken from the file's
    /// folder (without a file, from the working folder). Returns what the variables set.
    pub fn load_with(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<(NodeConfig, Vec<super::env::Override>)> {
        let (mut table, source, base) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let table: toml::Table =
                    toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
                let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
                (table, path.display().to_string(), base)
            }
            None => (
                toml::Table::new(),
                "the environment".to_string(),
                PathBuf::from("."),
            ),
        };
        let overrides = super::env::apply(&mut table, env).map_err(anyhow::Error::msg)?;
        // An error in a value the environment gave must name its variable.
        let source = match overrides.as_slice() {
            [] => source,
            set => format!(
                "{source} with {}",
                set.iter()
                    .map(|o| o.variable.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut config: NodeConfig = table.try_into().map_err(|e| anyhow!("{source}: {e}"))?;
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut config.node.data_dir);
        resolve(&mut config.node.msp_dir);
        for channel in &mut config.channels {
            resolve(&mut channel.genesis_block);
        }
        let tls = &mut config.tls;
        tls.cert.iter_mut().for_each(resolve);
        tls.key.iter_mut().for_each(resolve);
        tls.client_root_cas.iter_mut().for_each(resolve);
        if let Some(cluster) = &mut config.cluster {
            cluster.cert.iter_mut().for_each(resolve);
            cluster.key.iter_mut().for_each(resolve);
            cluster.root_cas.iter_mut().for_each(resolve);
        }
        for tls in [&mut config.operations.tls, &mut config.admin.tls] {
            for path in tls.cert.iter_mut().chain(tls.key.iter_mut()) {
                resolve(path);
            }
            for path in &mut tls.client_root_cas {
                resolve(path);
            }
        }
        config.check().map_err(|e| anyhow!("{source}: {e}"))?;
        Ok((config, overrides))
    }

    /// A config of `node` serving the channels of `genesis_blocks`, every other section at its
    /// default (no `[cluster]`).
    pub fn new(node: NodeSection, genesis_blocks: Vec<PathBuf>) -> NodeConfig {
        NodeConfig {
            node,
            log: LogSection::default(),
            ledger: LedgerSection::default(),
            limits: LimitsSection::default(),
            authentication: AuthenticationSection::default(),
            tls: TlsSection::default(),
            cluster: None,
            channels: genesis_blocks
                .into_iter()
                .map(|genesis_block| ChannelSection { genesis_block })
                .collect(),
            operations: OperationsSection::default(),
            admin: AdminSection::default(),
            channel_participation: ChannelParticipationSection::default(),
        }
    }

    /// What [`NodeConfig::load`] and [`crate::node::Node::start`] refuse besides unreadable
    /// TOML: a config that does not fit its consensus type (raft without a cluster address or
    /// `[cluster]`, solo with either), admin TLS without client authentication, a zero limit.
    /// A node may start with no channel: channels are then joined through the participation
    /// API.
    pub fn check(&self) -> Result<(), String> {
        match self.node.consensus {
            Consensus::Solo => {
                // A solo node would ignore them: refuse rather than run unreplicated unawares.
                if self.cluster.is_some() {
                    return Err("consensus \"solo\" takes no [cluster] section (is \
                                node.consensus = \"raft\" missing?)"
                        .into());
                }
                if self.node.cluster_listen.is_some() {
                    return Err("consensus \"solo\" takes no node.cluster_listen (is \
                                node.consensus = \"raft\" missing?)"
                        .into());
                }
            }
            Consensus::Raft => {
                if self.node.cluster_listen.is_none() {
                    return Err("consensus \"raft\" needs node.cluster_listen".into());
                }
                if self.cluster.is_none() {
                    return Err("consensus \"raft\" needs a [cluster] section".into());
                }
            }
        }
        self.admin.check()?;
        if self.channel_participation.max_request_body_size == 0 {
            return Err("channel_participation.max_request_body_size must be above 0".into());
        }
        self.tls.check()?;
        self.operations.check()?;
        self.limits.check()
    }

    /// The config as TOML, as [`NodeConfig::load`] reads it. Paths are written as they are: a
    /// relative one is taken from the folder of the file it ends up in.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        toml::to_string_pretty(self).context("serialising the node config")
    }

    /// Writes the config to `path` (the one way node configs are written: `orderer config`,
    /// the development setup and the tests all come through here).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, self.to_toml()?).with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_node_config_loads_back_with_paths_from_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = NodeConfig::new(
            NodeSection {
                data_dir: "data".into(),
                listen: "127.0.0.1:7051".parse().unwrap(),
                msp_dir: "../crypto/orderer1/msp".into(),
                mspid: "OrdererMSP".into(),
                consensus: Consensus::Raft,
                id: 2,
                cluster_listen: Some("127.0.0.1:7151".parse().unwrap()),
            },
            vec!["genesis/ordo.block".into()],
        );
        config.cluster = Some(ClusterSection {
            heartbeat_ms: 50,
            address: Some("orderer1:7150".into()),
            ..ClusterSection::default()
        });
        config.log.segment_bytes = 1 << 16;
        let path = dir.path().join("orderer.toml");
        config.write(&path).unwrap();

        let back = NodeConfig::load(&path).unwrap();
        assert_eq!(back.node.data_dir, dir.path().join("data"));
        assert_eq!(back.node.msp_dir, dir.path().join("../crypto/orderer1/msp"));
        assert_eq!(back.node.id, 2);
        assert_eq!(back.node.cluster_listen, config.node.cluster_listen);
        assert_eq!(
            back.channels[0].genesis_block,
            dir.path().join("genesis/ordo.block")
        );
        assert_eq!(back.log.segment_bytes, 1 << 16);
        let cluster = back.cluster.unwrap();
        assert_eq!(cluster.heartbeat_ms, 50);
        assert_eq!(cluster.election_timeout_min_ms, 400);
        assert_eq!(cluster.produce_timeout_ms, 5000);
        assert_eq!(cluster.address.as_deref(), Some("orderer1:7150"));

        config.cluster = None;
        assert!(config.check().unwrap_err().contains("[cluster]"));
    }

    #[test]
    fn a_config_that_does_not_fit_its_consensus_type_is_refused() {
        let node = |consensus, cluster_listen: Option<&str>| NodeSection {
            data_dir: "data".into(),
            listen: "127.0.0.1:7051".parse().unwrap(),
            msp_dir: "msp".into(),
            mspid: "OrdererMSP".into(),
            consensus,
            id: 1,
            cluster_listen: cluster_listen.map(|a| a.parse().unwrap()),
        };
        let config = |consensus, cluster_listen, cluster: Option<ClusterSection>| {
            let mut config = NodeConfig::new(node(consensus, cluster_listen), vec!["g".into()]);
            config.cluster = cluster;
            config
        };
        let listen = Some("127.0.0.1:7151");
        config(Consensus::Solo, None, None).check().unwrap();
        config(Consensus::Raft, listen, Some(ClusterSection::default()))
            .check()
            .unwrap();
        let refused = |c: NodeConfig| c.check().unwrap_err();
        assert!(refused(config(Consensus::Raft, listen, None)).contains("needs a [cluster]"));
        assert!(refused(config(
            Consensus::Raft,
            None,
            Some(ClusterSection::default())
        ))
        .contains("needs node.cluster_listen"));
        assert!(refused(config(
            Consensus::Solo,
            None,
            Some(ClusterSection::default())
        ))
        .contains("takes no [cluster]"));
        assert!(refused(config(Consensus::Solo, listen, None)).contains("takes no node.cluster"));

        // The TOML spelling is unchanged; an unknown type is refused by name.
        let text = |consensus: &str| {
            format!(
                "[node]\ndata_dir = \"d\"\nlisten = \"127.0.0.1:1\"\nmsp_dir = \"m\"\n\
                 mspid = \"OrdererMSP\"\n\
                 consensus = \"{consensus}\"\n"
            )
        };
        let solo: NodeConfig = toml::from_str(&text("solo")).unwrap();
        assert_eq!(solo.node.consensus, Consensus::Solo);
        let raft: NodeConfig = toml::from_str(&text("raft")).unwrap();
        assert_eq!(raft.node.consensus, Consensus::Raft);
        assert!(toml::from_str::<NodeConfig>(&text("kafka"))
            .unwrap_err()
            .to_string()
            .contains("kafka"));
        let written = config(Consensus::Raft, listen, Some(ClusterSection::default()));
        assert!(written.to_toml().unwrap().contains("consensus = \"raft\""));
    }

    /// Every table a config can have is one the environment can set keys of.
    #[test]
    fn every_table_is_reachable_from_the_environment() {
        fn walk(table: &toml::Table, prefix: &str, found: &mut Vec<String>) {
            for (key, value) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                // A map-valued setting (`cluster.dial`) is one key, set whole.
                if let (toml::Value::Table(inner), false) = (value, MAP_SETTINGS.contains(&&*path))
                {
                    found.push(path.clone());
                    walk(inner, &path, found);
                }
            }
        }
        const MAP_SETTINGS: &[&str] = &["cluster.dial"];
        let mut config = NodeConfig::new(
            NodeSection {
                data_dir: "d".into(),
                listen: "127.0.0.1:1".parse().unwrap(),
                msp_dir: "m".into(),
                mspid: "OrdererMSP".into(),
                consensus: Consensus::Raft,
                id: 1,
                cluster_listen: Some("127.0.0.1:2".parse().unwrap()),
            },
            vec!["g".into()],
        );
        let mut cluster = ClusterSection::default();
        cluster.dial.insert("a:1".into(), "b:1".into());
        config.cluster = Some(cluster);
        let table: toml::Table = toml::from_str(&config.to_toml().unwrap()).unwrap();
        let mut found = Vec::new();
        walk(&table, "", &mut found);
        found.retain(|t| !super::super::env::TABLES.contains(&t.as_str()));
        assert!(
            found.is_empty(),
            "tables missing from env::TABLES: {found:?}"
        );

        let (from_env, overrides) = NodeConfig::load_with(
            None,
            [
                ("ORDO_NODE_DATA_DIR", "/var/ordo"),
                ("ORDO_NODE_LISTEN", "0.0.0.0:7050"),
                ("ORDO_NODE_MSP_DIR", "/etc/ordo/msp"),
                ("ORDO_NODE_MSPID", "OrdererMSP"),
                (
                    "ORDO_CHANNEL",
                    "[{ genesis_block = \"/etc/ordo/g.block\" }]",
                ),
                ("ORDO_LIMITS_MAX_CONNECTIONS", "7"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .unwrap();
        assert_eq!(overrides.len(), 6);
        assert_eq!(from_env.limits.max_connections, 7);
        assert_eq!(from_env.node.data_dir, PathBuf::from("/var/ordo"));
        let typo = NodeConfig::load_with(
            None,
            [("ORDO_LIMITS_MAX_CONECTIONS", "7")].map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .unwrap_err();
        assert!(
            typo.to_string().contains("ORDO_LIMITS_MAX_CONECTIONS"),
            "{typo:#}"
        );
    }

    #[test]
    fn no_channel_is_fine_and_admin_tls_needs_client_auth() {
        let text = "[node]\ndata_dir = \"d\"\nlisten = \"127.0.0.1:1\"\nmsp_dir = \"m\"\n\
                    mspid = \"OrdererMSP\"\n[admin]\nlisten = \"127.0.0.1:9443\"\n";
        let mut config: NodeConfig = toml::from_str(text).unwrap();
        config.check().unwrap();
        assert!(config.channels.is_empty());
        assert!(config.channel_participation.enabled);
        assert_eq!(config.channel_participation.max_request_body_size, 1 << 20);
        config.admin.tls.enabled = true;
        assert!(config
            .check()
            .unwrap_err()
            .contains("requires admin.tls.client_auth_required"));
        config.admin.tls.client_auth_required = true;
        assert!(config.check().unwrap_err().contains("admin.tls.cert"));
        config.admin.tls.cert = Some("c".into());
        config.admin.tls.key = Some("k".into());
        assert!(config.check().unwrap_err().contains("tls.client_root_cas"));
        config.admin.tls.client_root_cas = vec!["ca".into()];
        config.check().unwrap();
    }

    #[test]
    fn limits_default_and_refuse_zero() {
        let limits: LimitsSection = toml::from_str("max_connections = 10").unwrap();
        assert_eq!(limits.max_connections, 10);
        assert_eq!(limits.max_deliver_streams, 1024);
        assert_eq!(limits.shutdown_grace_ms, 2000);
        limits.check().unwrap();
        let zero: LimitsSection = toml::from_str("deliver_total_bytes = 0").unwrap();
        assert_eq!(
            zero.check().unwrap_err(),
            "limits.deliver_total_bytes must be above 0"
        );
    }
}
