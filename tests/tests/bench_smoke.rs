//! The benchmark harness cannot rot: `network/bench.sh --smoke` runs every step of the full suite
//! (solo and 3-node networks, max rate at three sizes, an open-loop sweep, a leader kill; the
//! other key type, TLS, fan-out, acknowledgement latency, the latency point, repeated failover,
//! many idle and busy channels; the charts) with tiny counts, on the debug binaries, in
//! temporary folders and on ports of its own.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Runs with a row in the main table, in suite order (bench.sh names them so). The latency
/// point's steps follow them: `raft3-lowlat-rate-<pct>%`, as many as it took.
const RUNS: [&str; 17] = [
    "solo-max-1024",
    "solo-max-250",
    "solo-max-3584",
    "solo-rate-50%",
    "solo-rate-100%",
    "raft3-max-1024",
    "raft3-max-250",
    "raft3-max-3584",
    "raft3-rate-50%",
    "raft3-rate-100%",
    "raft3-leader-kill",
    "solo-max-1024-ed25519",
    "raft3-max-1024-ed25519",
    "solo-max-1024-tls-on",
    "raft3-max-1024-tls-on",
    "raft3-max-1024-followers16",
    "raft3-ack-4x8",
];

/// The latency point's first step, which always runs.
const LOW_LATENCY_FIRST: &str = "raft3-lowlat-rate-10%";

/// Rows of the tables after the main one, and how many cells each has.
const EXTRA_ROWS: [(&str, usize); 4] = [
    ("raft3-latency-point", 9),
    ("raft3-failover", 5),
    ("raft3-idle-channels", 6),
    ("raft3-busy-channels", 6),
];

/// The busy-channels step's runs (2 channels in the smoke), JSON reports only.
const BUSY_RUNS: [&str; 2] = ["raft3-busy2-ch1", "raft3-busy2-ch2"];

/// The charts `peer-sim plot` draws, one per open-loop sweep.
const CHARTS: [&str; 3] = [
    "solo-latency.png",
    "raft3-latency.png",
    "raft3-lowlat-latency.png",
];

#[test]
fn bench_suite_smoke() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let bin_dir = common::binary("orderer").parent().unwrap().to_path_buf();
    let net = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    // Ports held by this test alone: solo on base, node i on base + i, its cluster port on
    // base + 10 + i, its participation API on base + 20 + i, its operations on base + 30 + i.
    let ports = common::ports::PortBlock::reserve();
    let client_base = ports.port(0);

    let output = Command::new(root.join("network/bench.sh"))
        .arg("--smoke")
        .current_dir(root)
        .env("ORDO_BIN", &bin_dir)
        .env("ORDO_NET_DIR", net.path().join("bench"))
        .env("ORDO_CLIENT_BASE", client_base.to_string())
        .env("ORDO_NET_CLUSTER_BASE", ports.port(10).to_string())
        .env("ORDO_NET_ADMIN_BASE", ports.port(20).to_string())
        .env("ORDO_NET_OPS_BASE", ports.port(30).to_string())
        .env("BENCH_OUT", out.path())
        // The defaults the assertions below expect, whatever the caller's environment says.
        .env("ORDO_KEY_TYPE", "ecdsa")
        .env("ORDO_NET_TLS", "off")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running network/bench.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench.sh --smoke failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        !net.path().join("bench").exists(),
        "bench.sh left its networks behind"
    );

    let suite = only_entry(out.path());
    let table = std::fs::read_to_string(suite.join("table.md")).unwrap();
    // The main table: from its header to the first line that is not a table's.
    let rows: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with("| run |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(
        rows.len() > RUNS.len(),
        "one row per run and at least one latency-point step:\n{table}"
    );
    for (row, run) in rows.iter().zip(RUNS) {
        assert!(
            row.starts_with(&format!("| {run} |")),
            "{row} is not run {run}"
        );
    }
    let low_latency: Vec<String> = rows[RUNS.len()..]
        .iter()
        .map(|row| {
            row.split(" | ")
                .next()
                .unwrap()
                .trim_start_matches("| ")
                .to_string()
        })
        .collect();
    assert_eq!(low_latency[0], LOW_LATENCY_FIRST, "{table}");
    for run in &low_latency {
        assert!(
            run.starts_with("raft3-lowlat-rate-"),
            "{run}: not a latency-point step"
        );
    }
    for (name, cells) in EXTRA_ROWS {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no row {name} in table.md:\n{table}"));
        assert_eq!(
            row.matches(" | ").count() + 1,
            cells,
            "{name}: cells of {row}"
        );
    }
    let failover = table
        .lines()
        .find(|l| l.starts_with("| raft3-failover |"))
        .unwrap();
    assert!(
        failover.ends_with("| 0 / 0 |"),
        "failover lost or duplicated: {failover}"
    );
    assert!(stdout.contains("raft3-leader-kill"), "the table is printed");

    // One latency-throughput chart per sweep, named in table.md.
    for chart in CHARTS {
        let png = std::fs::read(suite.join(chart)).unwrap_or_else(|e| panic!("{chart}: {e}"));
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{chart} is not a PNG"
        );
        assert!(table.contains(chart), "table.md names {chart}:\n{table}");
    }

    for run in RUNS
        .iter()
        .copied()
        .chain(low_latency.iter().map(String::as_str))
    {
        let report = report_of(&suite, run);
        let field = |path: &str| report.pointer(path).unwrap_or(&Value::Null).clone();
        assert!(
            field("/delivered").as_u64().unwrap() > 0,
            "{run}: nothing delivered"
        );
        assert_eq!(field("/lost"), 0, "{run}: acknowledged transactions lost");
        assert_eq!(field("/duplicated"), 0, "{run}: transactions ordered twice");
        for p in ["p50", "p95", "p99", "p99.9", "max"] {
            let ms = field(&format!("/latency_ms/{p}")).as_f64().unwrap();
            assert!(ms > 0.0, "{run}: latency {p} {ms}");
            let ack = field(&format!("/ack_latency_ms/{p}")).as_f64().unwrap();
            assert!(ack > 0.0, "{run}: acknowledgement latency {p} {ack}");
        }
        let tags = field("/tags");
        let tagged = |tag: &str| tags.as_array().unwrap().iter().any(|t| t == tag);
        let key_type = if run.ends_with("-ed25519") {
            "ed25519"
        } else {
            "ecdsa"
        };
        assert!(tagged(&format!("key_type={key_type}")), "{run}: {tags}");
        let tls = if run.ends_with("-tls-on") {
            "on"
        } else {
            "off"
        };
        assert!(tagged(&format!("tls={tls}")), "{run}: {tags}");
        if run.ends_with("-followers16") {
            assert_eq!(field("/followers/count"), 16, "{run}");
            assert_eq!(field("/followers/reached"), 16, "{run}");
            assert!(
                field("/followers/bytes_total").as_u64().unwrap() > 0,
                "{run}"
            );
        } else {
            assert_eq!(field("/followers"), Value::Null, "{run}");
        }
        assert!(field("/machine/cores").as_u64().unwrap() >= 1);
        assert!(field("/verify_rate/single_per_s").as_f64().unwrap() > 0.0);
        assert!(field("/verify_rate/batch_per_s").as_f64().unwrap() > 0.0);
        let (count, timeout) = if run.starts_with("raft3-lowlat-") {
            (100, 20)
        } else {
            (500, 500)
        };
        assert_eq!(field("/channel/max_message_count"), count, "{run}");
        assert_eq!(field("/channel/batch_timeout_ms"), timeout, "{run}");
        assert_eq!(field("/channel/fsync"), "on");
        let nodes = if run.starts_with("solo") { 1 } else { 3 };
        assert_eq!(field("/channel/consenters"), nodes, "{run}");
        let orderers = field("/orderers");
        assert_eq!(
            orderers.as_array().unwrap().len(),
            nodes,
            "{run}: orderer processes"
        );
        let gone = orderers
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["survived"] == false)
            .count();
        let killed = usize::from(run == "raft3-leader-kill");
        assert_eq!(gone, killed, "{run}: orderers that did not survive");
        assert!(field("/longest_block_gap_ms").as_f64().is_some());
        if run.ends_with("-ack-4x8") {
            assert_eq!(field("/load/streams"), 4, "{run}");
        }
        if run.contains("-rate-") || run.ends_with("leader-kill") {
            assert_eq!(field("/load/mode"), "open");
        } else {
            assert_eq!(field("/load/mode"), "closed");
            assert_eq!(
                field("/answers/acked"),
                field("/load/transactions"),
                "{run}"
            );
        }
    }
    check_busy_runs(&suite);
}

/// Each busy channel's run delivered on its own channel, with nothing lost.
fn check_busy_runs(suite: &Path) {
    for (k, run) in BUSY_RUNS.iter().enumerate() {
        let report = report_of(suite, run);
        assert!(
            report["delivered"].as_u64().unwrap() > 0,
            "{run}: nothing delivered"
        );
        assert_eq!(report["lost"], 0, "{run}");
        assert_eq!(report["duplicated"], 0, "{run}");
        assert_eq!(
            report["channel"]["channel_id"],
            format!("busy{}", k + 1),
            "{run}"
        );
    }
}

fn only_entry(dir: &Path) -> PathBuf {
    let entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "one suite folder: {entries:?}");
    entries.into_iter().next().unwrap()
}

/// The JSON report of a run (its file name is the label, sanitised, and a timestamp).
fn report_of(suite: &Path, run: &str) -> Value {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(suite).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.extension().is_some_and(|e| e == "json") {
            let report: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            if report["label"] == run {
                found.push(report);
            }
        }
    }
    assert_eq!(found.len(), 1, "one report for {run}");
    found.pop().unwrap()
}
