//! Interop: a Fabric channel made only with Fabric's published Python bindings and `cryptography`
//! (`tests/interop/fabric_channel.py`), served by the real `orderer` binary.
//!
//! `fabric_channel.py setup` makes two organisations with X.509 CAs and NodeOUs, the orderer's
//! local MSP folder in Fabric's layout, a genesis block laid out as Fabric's configtxgen lays it
//! out, and `orderer.toml` (`msp_dir`, `mspid`, the genesis block). The orderer is started on that
//! config; `fabric_channel.py run` then broadcasts transactions signed by X.509 identities (and
//! bad ones, expecting Fabric's status for each), delivers and checks every block as a Fabric
//! peer does (orderer signatures under /Channel/Orderer/BlockValidation, LAST_CONFIG, hash chain),
//! submits a CONFIG_UPDATE (BatchSize to 1 message) as Fabric's tools build it and checks the
//! config block and the blocks cut under it, and checks refused updates (mod_policy, stale
//! versions) get BAD_REQUEST while the node keeps serving.
//!
//! No Ordo code is used to build or check anything Fabric-shaped: the script is the independent
//! judge. The venv and the script runner are in `common/python.rs`.

mod common;

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::python::{describe, interop_dir, json_field, output, python_env, report, run};

/// `setup` makes a handful of keys and certificates.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// `run` waits for about a dozen blocks at 2 s BatchTimeout; each of its Deliver calls has a 30 s
/// deadline of its own.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the orderer may take to accept connections.
const START_WITHIN: Duration = Duration::from_secs(30);

/// The orderer process on a config file, its stdout and stderr in files beside the config; killed
/// and reaped when dropped, so that no test failure leaves it running.
struct Node {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Node {
    fn start(config: &Path) -> Node {
        let dir = config.parent().expect("config file has a folder");
        let stdout = dir.join("orderer.stdout.log");
        let stderr = dir.join("orderer.stderr.log");
        let child = Command::new(common::binary("orderer"))
            .args(["start", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("creating the orderer's stdout log"))
            .stderr(File::create(&stderr).expect("creating the orderer's stderr log"))
            .spawn()
            .expect("starting orderer");
        Node {
            child,
            stdout,
            stderr,
        }
    }

    /// The last lines of the process's output, for failure messages.
    fn logs(&self) -> String {
        let tail = |path: &Path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(60)..].join("\n")
        };
        format!(
            "--- orderer stdout ({}) ---\n{}\n--- orderer stderr ({}) ---\n{}",
            self.stdout.display(),
            tail(&self.stdout),
            self.stderr.display(),
            tail(&self.stderr)
        )
    }

    /// Panics (with the logs) if the process has exited.
    fn assert_running(&mut self, when: &str) {
        if let Some(status) = self.child.try_wait().expect("polling the orderer") {
            panic!("orderer exited {when}: {status}\n{}", self.logs());
        }
    }

    /// Returns once `addr` accepts TCP connections; panics if the process exits first or
    /// `START_WITHIN` passes.
    fn wait_accepting(&mut self, addr: SocketAddr) {
        let deadline = Instant::now() + START_WITHIN;
        loop {
            self.assert_running("before accepting connections");
            if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "orderer does not accept connections on {addr} within {START_WITHIN:?}\n{}",
                self.logs()
            );
            // A refused connection returns at once: pause before the next attempt.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fabric_channel_msp_policies_and_config_update() {
    let python = python_env().await;
    let script = interop_dir().join("fabric_channel.py");
    let ports = common::ports::PortBlock::reserve();
    let port = ports.port(0);
    let dir = tempfile::tempdir().unwrap();

    // The Fabric side: orgs, identities, genesis block, orderer.toml.
    let setup = run(
        "fabric_channel.py setup",
        tokio::process::Command::new(&python)
            .arg(&script)
            .arg("setup")
            .arg("--dir")
            .arg(dir.path())
            .arg("--port")
            .arg(port.to_string())
            .env("PYTHONUNBUFFERED", "1"),
        SETUP_TIMEOUT,
    )
    .await;
    let made = report("fabric_channel.py setup", &setup);
    assert_eq!(
        json_field(&made, "ok"),
        &serde_json::Value::Bool(true),
        "{made}"
    );
    let config = dir.path().join("orderer.toml");
    assert!(config.is_file(), "setup wrote no {}", config.display());

    // The node under test, on exactly that config.
    let mut node = Node::start(&config);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    node.wait_accepting(addr);

    let ran = output(
        "fabric_channel.py run",
        tokio::process::Command::new(&python)
            .arg(&script)
            .arg("run")
            .arg("--dir")
            .arg(dir.path())
            .arg("--endpoint")
            .arg(addr.to_string())
            .env("PYTHONUNBUFFERED", "1"),
        RUN_TIMEOUT,
    )
    .await;
    assert!(
        ran.status.success(),
        "{}\n{}",
        describe("fabric_channel.py run", &ran),
        node.logs()
    );
    eprintln!("{}", String::from_utf8_lossy(&ran.stderr).trim_end());
    let report = report("fabric_channel.py run", &ran);
    println!("fabric_channel.py run: {report}");
    node.assert_running("after the script");

    assert_eq!(
        json_field(&report, "ok"),
        &serde_json::Value::Bool(true),
        "{report}"
    );
    // Fabric's answer to each request, as the script reasons them out from Fabric's source.
    let expected = serde_json::json!({
        "org1_client_tx": 200,
        "high_s": 403,
        "creator_not_pem": 403,
        "unknown_ca": 403,
        "signature_header_unparsable": 400,
        "deliver_unknown_ca": 403,
        "config_update": 200,
        "config_update_not_admin": 400,
        "config_update_stale_version": 400,
        "config_update_stale_read_set": 400,
    });
    assert_eq!(json_field(&report, "statuses"), &expected, "{report}");
    assert_eq!(json_field(&report, "config_sequence"), 1, "{report}");
    assert_eq!(json_field(&report, "max_message_count"), 1, "{report}");
    // 3 transactions before the update, 3 after it, 1 after the refused updates.
    assert_eq!(json_field(&report, "txs"), 7, "{report}");
    let config_blocks = json_field(&report, "config_blocks")
        .as_array()
        .unwrap_or_else(|| panic!("config_blocks is not a list: {report}"));
    assert_eq!(config_blocks.len(), 1, "one config block: {report}");
    let config_block = config_blocks[0]
        .as_u64()
        .unwrap_or_else(|| panic!("config block number: {report}"));
    assert!(
        config_block >= 2,
        "config block before the first transactions: {report}"
    );
    // The config block, 3 blocks of one transaction, the one after the refused updates.
    let height = json_field(&report, "height")
        .as_u64()
        .unwrap_or_else(|| panic!("height: {report}"));
    assert_eq!(height, config_block + 5, "{report}");
    let signatures = json_field(&report, "orderer_signatures_verified")
        .as_u64()
        .unwrap_or_else(|| panic!("orderer_signatures_verified: {report}"));
    assert!(
        signatures >= height - 1,
        "every block after the genesis block is signed: {report}"
    );
    drop(node);
    drop(ports);
}
