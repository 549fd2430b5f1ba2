//! Interop: a script using Fabric's published Python bindings (`hyperledger-fabric-protos`,
//! installed into a virtual environment by the test setup) submits an envelope and parses
//! delivered blocks.
//!
//! The script (`tests/interop/fabric_client.py`) builds and signs its envelopes with Fabric's own
//! generated classes, broadcasts one good and one bad transaction, then delivers the chain and
//! checks every block (data hash, DER header hash chain, metadata, signatures). Afterwards the
//! chain is read back from Rust to check the Python-submitted transaction is there exactly once.
//!
//! Needs `python3` (with `venv`) and access to PyPI the first time; the virtual environment is
//! kept in `<target>/interop-venv` and rebuilt whenever `tests/interop/requirements.txt` changes.
//! Set `ORDO_INTEROP_PYTHON` to use another interpreter for creating it. A missing interpreter or
//! a failed install fails the test: it is never skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use ordo_core::envelope::stored_tx_id;
use ordo_orderer::setup::dev;

/// How long the script may take in all (its own Deliver timeout is 30 s).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long creating the venv and installing the pinned packages may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(600);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn describe(what: &str, output: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs a command to completion with a time limit, panicking with its output if it fails.
async fn run(what: &str, command: &mut tokio::process::Command, limit: Duration) -> Output {
    command
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    let output = tokio::time::timeout(limit, command.output())
        .await
        .unwrap_or_else(|_| panic!("{what}: did not finish within {limit:?}"))
        .unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    assert!(output.status.success(), "{}", describe(what, &output));
    output
}

/// The venv's interpreter, with the pinned requirements installed. Reuses the venv when the
/// requirements it was built from (a copy kept inside it) are unchanged; otherwise rebuilds it.
async fn python_env() -> PathBuf {
    let requirements_path = interop_dir().join("requirements.txt");
    let requirements = std::fs::read_to_string(&requirements_path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", requirements_path.display()));
    let venv = target_dir().join("interop-venv");
    let python = venv.join("bin").join("python");
    let stamp = venv.join("ordo-requirements.txt");

    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&requirements) {
        return python;
    }

    eprintln!(
        "interop: creating {} and installing {}",
        venv.display(),
        requirements_path.display()
    );
    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .unwrap_or_else(|e| panic!("removing stale {}: {e}", venv.display()));
    }
    let base = std::env::var("ORDO_INTEROP_PYTHON").unwrap_or_else(|_| "python3".into());
    run(
        "creating the interop venv (python3 -m venv)",
        tokio::process::Command::new(&base)
            .arg("-m")
            .arg("venv")
            .arg(&venv),
        SETUP_TIMEOUT,
    )
    .await;
    run(
        "pip install -r tests/interop/requirements.txt",
        tokio::process::Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "-r",
            ])
            .arg(&requirements_path),
        SETUP_TIMEOUT,
    )
    .await;
    // Only a complete install is recorded, so an interrupted one is redone next time.
    std::fs::write(&stamp, &requirements)
        .unwrap_or_else(|e| panic!("writing {}: {e}", stamp.display()));
    python
}

/// Field `key` of the script's one-line JSON report.
fn json_field<'a>(report: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    report
        .get(key)
        .unwrap_or_else(|| panic!("script report has no {key:?}: {report}"))
}

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
