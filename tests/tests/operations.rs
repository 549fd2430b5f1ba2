//! The operations service against the real binary: `/healthz` names the failing check when a
//! channel's log cannot be written and when a raft channel has no leader; `/metrics` parses as
//! Prometheus text and counts what peer-sim ordered, also through a real Prometheus server;
//! `/logspec` changes the log level at run time.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::cluster::{Cluster, Spec};
use common::http::{get, put};
use common::{test_batch, wait_for_txs, Orderer};
use ordo_core::envelope;
use ordo_orderer::setup::dev::CHANNEL;
use ordo_peer_sim::{submit, Load};
use ordo_proto::common::{HeaderType, Status};

/// How long any wait here may take.
const WAIT: Duration = Duration::from_secs(60);

/// Polls `/healthz` on `addr` until `done` holds for its status and JSON body.
async fn wait_for_health(
    addr: std::net::SocketAddr,
    what: &str,
    done: impl Fn(u16, &serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = get(addr, "/healthz").await;
        let body = answer.json();
        if done(answer.status, &body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: /healthz on {addr} still answers {} {body}",
            answer.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A failed check of `body` whose component is `component`, if there is one.
fn failed_check<'a>(body: &'a serde_json::Value, component: &str) -> Option<&'a serde_json::Value> {
    body["failed_checks"]
        .as_array()?
        .iter()
        .find(|check| check["component"] == component)
}

/// A small tmpfs, mounted for the life of the value: a file system that can be filled, so the
/// node's writes fail for real (ENOSPC), which root's privileges do not get around (a read-only
/// folder would not stop root, nor the writes to files the node already holds open).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(bytes: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed ({status}): this test fills a small file system, which \
             needs root (CAP_SYS_ADMIN), as CI runs"
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system with a file of zeros until it is full; returns the file.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        for chunk in [1 << 20, 4096, 1] {
            let zeros = vec![0u8; chunk];
            while file.write_all(&zeros).is_ok() {}
        }
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily, in case something still holds a file in it; the folder is removed after.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_names_the_channel_whose_log_cannot_be_written() {
    let disk = Tmpfs::mount(64 << 20);
    let data = disk.path().join("data");
    let orderer = Orderer::start_with_operations(test_batch(), |config| {
        config.node.data_dir = data.clone();
        // Small segments, so that the node's files on the full disk are small too.
        config.log.segment_bytes = 1 << 20;
    });
    let ops = orderer.ops_addr.expect("the operations address");
    let healthy = get(ops, "/healthz").await;
    assert_eq!(healthy.status, 200, "{}", healthy.text());
    let body = healthy.json();
    assert_eq!(body["status"], "OK");
    assert!(body.get("failed_checks").is_none(), "{body}");

    let client = orderer.client().await;
    let signer = orderer.signer();
    // Larger than a page: an envelope cannot slip into the unused end of a page the node's
    // files already have, so the first one after the disk is full fails.
    let tx = |i: u8| {
        envelope::build(
            &signer,
            CHANNEL,
            HeaderType::EndorserTransaction,
            Bytes::from(vec![i; 8192]),
        )
    };
    let first = client.broadcast_one(tx(0)).await.unwrap();
    assert_eq!(first.status, Status::Success as i32, "{first:?}");
    // Its block written: nothing is pending when the disk fills.
    let deadline = Instant::now() + WAIT;
    while value(
        &scrape(ops).await,
        "ordo_blocks_ordered",
        &[("channel", CHANNEL)],
    ) < 1.0
    {
        assert!(Instant::now() < deadline, "block 1 was not written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    disk.fill();
    let refused = client.broadcast_one(tx(1)).await.unwrap();
    assert_eq!(
        refused.status,
        Status::ServiceUnavailable as i32,
        "{refused:?}"
    );

    let healthz = get(ops, "/healthz").await;
    assert_eq!(healthz.status, 503, "{}", healthz.text());
    let body = healthz.json();
    assert_eq!(body["status"], "Service Unavailable");
    let component = format!("channel/{CHANNEL}/log");
    let failed = failed_check(&body, &component)
        .unwrap_or_else(|| panic!("no failed check {component}: {body}"));
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason.contains("No space left on device"),
        "the reason names the fault: {reason}"
    );
    drop(orderer);
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_names_a_raft_channel_without_a_leader() {
    let mut cluster = Cluster::start(Spec::three()).await;
    let leader = cluster.wait_for_leader(&[1, 2, 3]).await;
    for id in 1..=3 {
        let ops = cluster.node(id).ops_addr.expect("operations address");
        wait_for_health(ops, "a 3-node cluster with a leader", |status, _| {
            status == 200
        })
        .await;
    }
    // Leadership as the metrics tell it: one leader among three voters (the metrics follow
    // Raft's state a moment later than the admin status does).
    let deadline = Instant::now() + WAIT;
    loop {
        let mut leaders = Vec::new();
        let mut settled = true;
        for id in 1..=3 {
            let scrape = scrape(cluster.node(id).ops_addr.unwrap()).await;
            let of = |name| value(&scrape, name, &[("channel", CHANNEL)]);
            if of("consensus_etcdraft_is_leader") == 1.0 {
                leaders.push(id);
            }
            settled &= of("consensus_etcdraft_cluster_size") == 3.0
                && of("consensus_etcdraft_leader_changes") >= 1.0;
        }
        if settled && leaders == [leader] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the metrics show leaders {leaders:?}, not node {leader} alone"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Two of three stopped: the one left has no working leader.
    let left = if leader == 1 { 2 } else { 1 };
    for id in (1..=3).filter(|&id| id != left) {
        cluster.kill9(id);
    }
    let ops = cluster.node(left).ops_addr.unwrap();
    let component = format!("channel/{CHANNEL}/raft_leader");
    let body = wait_for_health(ops, "2 of 3 nodes stopped", |status, body| {
        status == 503 && failed_check(body, &component).is_some()
    })
    .await;
    let reason = failed_check(&body, &component).unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("election timeout"), "{reason}");
}

/// `/metrics` of `addr`, parsed as Prometheus text.
async fn scrape(addr: std::net::SocketAddr) -> prometheus_parse::Scrape {
    let answer = get(addr, "/metrics").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let lines = answer
        .text()
        .lines()
        .map(|l| Ok(l.to_string()))
        .collect::<Vec<_>>();
    prometheus_parse::Scrape::parse(lines.into_iter()).expect("Prometheus text format")
}

/// The sum of the samples of `name` whose labels include `labels` (0 if there is none).
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// Orders `count` transactions through peer-sim and waits until all are in the chain;
/// returns the chain's height.
async fn order(orderer: &Orderer, count: usize) -> u64 {
    let client = orderer.client().await;
    let load = Load {
        count,
        streams: 2,
        tx_bytes: 200,
        window: 16,
    };
    let submitted = submit(&client, &load, Arc::new(|| {})).await;
    assert!(submitted.errors.is_empty(), "{:?}", submitted.errors);
    assert!(submitted.refused.is_empty(), "{:?}", submitted.refused);
    assert_eq!(submitted.acked.len(), count);
    wait_for_txs(&client, &submitted.acked).await.len() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_peer_sim_ordered() {
    let orderer = Orderer::start_with_operations(test_batch(), |_| {});
    let ops = orderer.ops_addr.expect("the operations address");
    let height = order(&orderer, 500).await;

    let scrape = scrape(ops).await;
    let channel = [("channel", CHANNEL)];
    assert_eq!(value(&scrape, "ordo_transactions_ordered", &channel), 500.0);
    assert_eq!(
        value(
            &scrape,
            "broadcast_processed_count",
            &[("channel", CHANNEL), ("status", "SUCCESS")]
        ),
        500.0
    );
    assert_eq!(
        value(&scrape, "ledger_blockchain_height", &channel),
        height as f64
    );
    // The blocks after the genesis block, each cut here.
    assert_eq!(
        value(&scrape, "ordo_blocks_ordered", &channel),
        (height - 1) as f64
    );
    assert!(value(&scrape, "deliver_blocks_sent", &channel) >= height as f64);
    assert!(value(&scrape, "ordo_broadcast_duration_seconds_count", &channel) >= 500.0);
    assert!(value(&scrape, "ordo_log_bytes", &channel) > 0.0);
    assert!(value(&scrape, "ordo_ledger_bytes", &channel) > 0.0);
    assert_eq!(value(&scrape, "participation_status", &channel), 1.0);
    assert!(value(&scrape, "process_open_fds", &[]) > 0.0);
    assert!(value(&scrape, "process_resident_memory_bytes", &[]) > 0.0);
    for documented in ["broadcast_processed_count", "ordo_block_size_bytes"] {
        assert!(
            scrape.docs.contains_key(documented),
            "no HELP for {documented}"
        );
    }

    let version = get(ops, "/version").await;
    assert_eq!(version.status, 200);
    assert!(version.json()["Version"].is_string());
}

/// A Prometheus server process, killed when dropped.
struct Prometheus {
    child: Child,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
    _port: common::ports::PortBlock,
}

impl Prometheus {
    /// Starts Debian's `prometheus` scraping `target` every second.
    async fn start(target: std::net::SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: ordo\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        // Prometheus takes no port 0: a port of a block held for the test.
        let port = common::ports::PortBlock::reserve();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{}", port.port(0)).parse().unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting prometheus: {e} (Debian's prometheus package; .ci/run installs it)"
                )
            });
        let prometheus = Prometheus {
            child,
            addr,
            _dir: dir,
            _port: port,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = common::http::request(addr, "GET", "/-/ready", "").await;
            if ready.is_ok_and(|a| a.status == 200) {
                return prometheus;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus was not ready within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The value of the instant query `query`, if it has exactly one sample.
    async fn query(&self, query: &str) -> Option<f64> {
        let encoded: String = query
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let answer = get(self.addr, &format!("/api/v1/query?query={encoded}")).await;
        let body = answer.json();
        assert_eq!(body["status"], "success", "{body}");
        let result = body["data"]["result"].as_array()?;
        let [sample] = result.as_slice() else {
            return None;
        };
        sample["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prometheus_server_scrapes_the_ordered_transactions() {
    let orderer = Orderer::start_with_operations(test_batch(), |_| {});
    let ops = orderer.ops_addr.expect("the operations address");
    order(&orderer, 300).await;

    let prometheus = Prometheus::start(ops).await;
    let deadline = Instant::now() + WAIT;
    let query = format!("ordo_transactions_ordered{{channel=\"{CHANNEL}\"}}");
    let acked =
        format!("sum(broadcast_processed_count{{channel=\"{CHANNEL}\",status=\"SUCCESS\"}})");
    loop {
        let ordered = prometheus.query(&query).await;
        if ordered == Some(300.0) {
            assert_eq!(prometheus.query(&acked).await, Some(300.0));
            assert_eq!(prometheus.query("up{job=\"ordo\"}").await, Some(1.0));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus has {query} = {ordered:?}, not 300, after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logspec_changes_the_level_at_run_time() {
    let orderer = Orderer::start_with_operations(test_batch(), |_| {});
    let ops = orderer.ops_addr.expect("the operations address");
    let client = orderer.client().await;
    let signer = orderer.signer();
    // An envelope for a channel this node does not serve: refused, which broadcast logs at
    // debug.
    let refused = || {
        envelope::build(
            &signer,
            "no-such-channel",
            HeaderType::EndorserTransaction,
            Bytes::from_static(b"x"),
        )
    };
    let answer = client.broadcast_one(refused()).await.unwrap();
    assert_eq!(answer.status, Status::NotFound as i32);

    let spec = get(ops, "/logspec").await;
    assert_eq!(spec.status, 200);
    assert_eq!(spec.json(), serde_json::json!({"spec": "info"}));
    assert!(!orderer.log().contains("envelope refused"));

    let bad = put(ops, "/logspec", r#"{"spec":"shouting"}"#).await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("shouting"));

    let set = put(
        ops,
        "/logspec",
        r#"{"spec":"info:orderer.common.broadcast=debug"}"#,
    )
    .await;
    assert_eq!(set.status, 204, "{}", set.text());
    assert_eq!(
        get(ops, "/logspec").await.json(),
        serde_json::json!({"spec": "info:orderer.common.broadcast=debug"})
    );
    let answer = client.broadcast_one(refused()).await.unwrap();
    assert_eq!(answer.status, Status::NotFound as i32);
    let deadline = Instant::now() + WAIT;
    while !orderer.log().contains("envelope refused") {
        assert!(
            Instant::now() < deadline,
            "no debug line after the level was raised:\n{}",
            orderer.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(orderer.log().contains("DEBUG"));
}
