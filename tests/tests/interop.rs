//! Interop: a script using Fabric's published Python bindings (`hyperledger-fabric-protos`,
//! installed into a virtual environment by the test setup) submits an envelope and parses
//! delivered blocks.
//!
//! The script (`tests/interop/fabric_client.py`) builds and signs its envelopes with Fabric's own
//! generated classes, broadcasts one good and one bad transaction, then delivers the chain and
//! checks every block (data hash, DER header hash chain, metadata, signatures). Afterwards the
//! chain is read back from Rust to check the Python-submitted transaction is there exactly once.
//!
//! The virtual environment and the script runner are in `common/python.rs`.

mod common;

use std::time::Duration;

use common::python::{describe, interop_dir, json_field, python_env, run};
use ordo_core::envelope::stored_tx_id;
use ordo_orderer::setup::dev;

/// How long the script may take in all (its own Deliver timeout is 30 s).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread")]
async fn fabric_python_bindings_broadcast_and_deliver() {
    let python = python_env().await;
    let orderer = common::Orderer::start(common::test_batch());

    let script = interop_dir().join("fabric_client.py");
    let output = run(
        "fabric_client.py",
        tokio::process::Command::new(&python)
            .arg(&script)
            .arg("--endpoint")
            .arg(orderer.addr.to_string())
            .arg("--msp")
            .arg(&orderer.client_identity)
            .arg("--channel")
            .arg(dev::CHANNEL)
            .env("PYTHONUNBUFFERED", "1"),
        SCRIPT_TIMEOUT,
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{}", String::from_utf8_lossy(&output.stderr).trim_end());
    println!("fabric_client.py: {}", stdout.trim_end());

    // The script prints exactly one JSON line.
    let line = stdout
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("{}", describe("fabric_client.py printed nothing", &output)));
    let report: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("script report is not JSON ({e}): {line}"));
    assert_eq!(
        json_field(&report, "ok"),
        &serde_json::Value::Bool(true),
        "{report}"
    );
    let tx_id = json_field(&report, "tx_id")
        .as_str()
        .unwrap_or_else(|| panic!("tx_id is not a string: {report}"))
        .to_string();
    assert!(
        tx_id.len() == 64
            && tx_id
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "tx_id is not lowercase hex SHA-256: {tx_id:?}"
    );
    let found_in = json_field(&report, "block")
        .as_u64()
        .unwrap_or_else(|| panic!("block is not a number: {report}"));
    assert!(found_in >= 1, "tx reported in the genesis block: {report}");

    // Read the chain back from Rust: the Python-submitted tx is in exactly one block, the one the
    // script reported, exactly once.
    let chain = orderer
        .client()
        .await
        .read_chain()
        .await
        .expect("reading the chain");
    let holding: Vec<(u64, usize)> = chain
        .iter()
        .map(|block| {
            let number = block.header.as_ref().expect("block header").number;
            let count = block
                .data
                .as_ref()
                .map(|d| {
                    d.data
                        .iter()
                        .filter(|e| stored_tx_id(e).as_deref() == Some(&tx_id))
                        .count()
                })
                .unwrap_or(0);
            (number, count)
        })
        .filter(|&(_, count)| count > 0)
        .collect();
    assert_eq!(
        holding,
        vec![(found_in, 1)],
        "tx {tx_id} should be in exactly one block (block {found_in}, once); found (block, count): {holding:?}"
    );
}
