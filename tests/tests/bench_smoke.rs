//! The benchmark harness cannot rot: `network/bench.sh --smoke` runs every step of the full suite
//! (solo and 3-node networks, max rate at three sizes, an open-loop sweep, a leader kill) with
//! tiny counts, on the debug binaries, in temporary folders and on ports of its own.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Runs, in suite order (bench.sh names them so).
const RUNS: [&str; 11] = [
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
];

/// The charts `peer-sim plot` draws, one per open-loop sweep.
const CHARTS: [&str; 2] = ["solo-latency.png", "raft3-latency.png"];

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
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(
        rows.len(),
        RUNS.len() + 1,
        "header and one row per run:\n{table}"
    );
    for (row, run) in rows[1..].iter().zip(RUNS) {
        assert!(
            row.starts_with(&format!("| {run} |")),
            "{row} is not run {run}"
        );
    }
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

    for run in RUNS {
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
        }
        assert!(field("/machine/cores").as_u64().unwrap() >= 1);
        assert!(field("/verify_rate/single_per_s").as_f64().unwrap() > 0.0);
        assert!(field("/verify_rate/batch_per_s").as_f64().unwrap() > 0.0);
        assert_eq!(field("/channel/max_message_count"), 500);
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
