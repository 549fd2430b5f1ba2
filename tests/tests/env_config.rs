//! A node configured by environment variables alone (`ORDO_<TABLE>_<KEY>`), as a container is:
//! the real binary, no config file, serving the development channel.

mod common;

use std::process::{Child, Command, Stdio};

use common::{binary, test_batch};
use ordo_orderer::setup::config::NodeConfig;
use ordo_orderer::setup::dev;
use ordo_peer_sim::Client;
use ordo_proto::common::{HeaderType, Status};

/// Every setting of `config` as the `ORDO_` variables that set it.
fn as_variables(config: &NodeConfig) -> Vec<(String, String)> {
    let table: toml::Table = toml::from_str(&config.to_toml().unwrap()).unwrap();
    let mut vars = Vec::new();
    for (section, value) in table {
        match value {
            toml::Value::Table(keys) => {
                for (key, value) in keys {
                    let name = format!("ORDO_{section}_{key}").to_ascii_uppercase();
                    vars.push((name, value.to_string()));
                }
            }
            other => vars.push((
                format!("ORDO_{section}").to_ascii_uppercase(),
                other.to_string(),
            )),
        }
    }
    vars
}

/// Kills the process when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn orderer_from_env(dir: &std::path::Path, vars: &[(String, String)]) -> Command {
    let mut command = Command::new(binary("orderer"));
    command
        .arg("start")
        .current_dir(dir)
        .envs(vars.iter().cloned())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_configured_by_environment_alone_serves_its_channel() {
    let dir = tempfile::tempdir().unwrap();
    let layout =
        dev::prepare_with(dir.path(), "127.0.0.1:0".parse().unwrap(), test_batch()).unwrap();
    let config = NodeConfig::load(&layout.config).unwrap();
    let vars = as_variables(&config);
    assert!(
        vars.iter().any(|(name, _)| name == "ORDO_NODE_MSP_DIR"),
        "{vars:?}"
    );
    std::fs::remove_file(&layout.config).unwrap();

    let mut child = orderer_from_env(dir.path(), &vars).spawn().unwrap();
    let addr = common::wait_listening(&mut child).client;
    let _running = Killed(child);
    let signer =
        ordo_client::msp_dir::signing_identity(&layout.client_msp, dev::CLIENT_MSPID).unwrap();
    let tls = common::client_tls(
        &config.tls,
        layout.tls_ca,
        layout.client_tls_cert,
        layout.client_tls_key,
    );
    assert!(
        tls.tls_ca.is_some(),
        "the development setup runs with TLS on"
    );
    let client = Client::connect_tls(&format!("https://{addr}"), dev::CHANNEL, signer, &tls)
        .await
        .unwrap();
    let envelope = ordo_core::envelope::build(
        &client.signer,
        dev::CHANNEL,
        HeaderType::Message,
        bytes::Bytes::from_static(b"configured from the environment"),
    );
    let answer = client.broadcast_one(envelope).await.unwrap();
    assert_eq!(answer.status, Status::Success as i32, "{answer:?}");
}

#[test]
fn a_misspelt_setting_is_refused_naming_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    let layout =
        dev::prepare_with(dir.path(), "127.0.0.1:0".parse().unwrap(), test_batch()).unwrap();
    let config = NodeConfig::load(&layout.config).unwrap();
    let mut vars = as_variables(&config);
    vars.push(("ORDO_LIMITS_MAX_CONECTIONS".into(), "7".into()));
    let output = orderer_from_env(dir.path(), &vars)
        .arg("--config")
        .arg(&layout.config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("ORDO_LIMITS_MAX_CONECTIONS"), "{stderr}");
    assert!(stderr.contains("max_conections"), "{stderr}");
}
