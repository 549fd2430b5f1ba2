//! The docker compose network, once: build the image from our own binaries (no registry), bring
//! up 3 containers with TLS on every port, joined to their channel through the participation
//! API, drive peer-sim through one node and verify the chain on every node, then take
//! everything down. Skipped with a notice where no Docker daemon answers; `.ci/run` makes
//! sure one does, and requires the test to run.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::binary;

/// The MSP id docker.sh's client signs as.
const MSPID: &str = "Org1MSP";

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("running a command");
    if !output.status.success() {
        panic!(
            "{:?} failed\nstdout:\n{}\nstderr:\n{}",
            command,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

/// Takes the network down even when an assertion fails.
struct Network<'a> {
    script: &'a Path,
    base: u16,
}

impl Network<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("bash");
        command
            .arg(self.script)
            .args(args)
            .env("ORDO_BIN", binary("orderer").parent().unwrap())
            .env("ORDO_CLIENT_BASE", self.base.to_string())
            // The admin ports (the participation API the script joins the nodes through).
            .env("ORDO_NET_ADMIN_BASE", (self.base + 10).to_string())
            .env("ORDO_NET_TLS", "on");
        command
    }
}

impl Drop for Network<'_> {
    fn drop(&mut self) {
        let _ = self.command(&["down"]).output();
    }
}

/// Whether a Docker daemon answers. Without one the test is skipped with a notice, unless
/// `ORDO_REQUIRE_DOCKER` is set (`.ci/run` sets it after making sure the daemon runs).
fn docker_answers() -> bool {
    let answers = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !answers {
        assert!(
            std::env::var_os("ORDO_REQUIRE_DOCKER").is_none(),
            "ORDO_REQUIRE_DOCKER is set but no Docker daemon answers `docker info`"
        );
        // Straight to the descriptor: the test harness would swallow eprintln! of a passing test.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED compose_network_orders_and_every_node_has_the_chain: no Docker daemon answers"
        );
    }
    answers
}

#[test]
fn compose_network_orders_and_every_node_has_the_chain() {
    if !docker_answers() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let script = root.join("network/docker.sh");
    // Node i is published on base + i: a block held by this test, so no other test takes them.
    let ports = common::ports::PortBlock::reserve();
    let network = Network {
        script: &script,
        base: ports.port(0),
    };
    run(&mut network.command(&["up"]));
    // The client's MSP folder, as docker.sh generates it (cryptogen's Org1 user).
    let msp = root.join("network/.data/docker/crypto/Org1/users/User1/msp");
    // TLS on every port: clients trust the orderer organisation's TLS CA.
    let tls_ca = root.join("network/.data/docker/crypto/Orderer/tlsca/tlsca.pem");
    let endpoint = |i: u16| format!("127.0.0.1:{}", network.base + i);

    let submitted = run(Command::new(binary("peer-sim"))
        .args(["--endpoint", &endpoint(1), "--msp"])
        .arg(&msp)
        .arg("--tls-ca")
        .arg(&tls_ca)
        .args([
            "--mspid",
            MSPID,
            "--count",
            "2000",
            "--streams",
            "4",
            "--tx-bytes",
            "256",
            "--json",
        ]));
    let report = common::last_json_line(&submitted.stdout);
    assert_eq!(report["transactions"], 2000, "{report}");

    // Every node serves the whole, valid chain; the followers may trail the leader briefly.
    let mut reports = Vec::new();
    for i in 1..=3 {
        let deadline = Instant::now() + Duration::from_secs(10);
        let report = loop {
            let verified = run(Command::new(binary("peer-sim"))
                .args(["verify", "--json", "--endpoint", &endpoint(i), "--msp"])
                .arg(&msp)
                .arg("--tls-ca")
                .arg(&tls_ca)
                .args(["--mspid", MSPID]));
            let report = common::last_json_line(&verified.stdout);
            if reports.first().is_none_or(|first| *first == report) {
                break report;
            }
            assert!(
                Instant::now() < deadline,
                "node {i} did not catch up with node 1 within 10 s: {report} vs {}",
                reports[0]
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(report["verified"], true, "node {i}: {report}");
        assert_eq!(report["envelopes"], 2001, "node {i}: {report}");
        reports.push(report);
    }
}
