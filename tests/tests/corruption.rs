//! Corruption on disk: a node whose log or ledger has a flipped byte in the middle refuses to
//! start, says which file and where, and leaves every file exactly as it was; once the damage is
//! repaired it starts with every acknowledged transaction. Solo: the byte put back, or the ledger
//! moved aside to be cut again from the log. Raft: the channel directory moved aside, and the
//! replica rebuilt from the others.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::{submit_all, Cluster, Spec};
use common::{test_batch, wait_for_txs, Orderer};
use ordo_peer_sim::{submit, Load, Submitted};
use ordo_proto::common::Block;

/// How long a node that refuses to start may take to exit.
const EXIT_WITHIN: Duration = Duration::from_secs(30);

async fn load(orderer: &Orderer) -> (Submitted, Vec<Block>) {
    let client = orderer.client().await;
    let load = Load {
        count: 2_000,
        streams: 2,
        tx_bytes: 200,
        window: 64,
    };
    let submitted = submit(&client, &load, Arc::new(|| {})).await;
    assert_eq!(submitted.acked.len(), 2_000, "{:?}", submitted.errors);
    let chain = wait_for_txs(&client, &submitted.acked).await;
    (submitted, chain)
}

/// The last file in `dir` whose name starts with `prefix` and ends with `suffix`.
fn last_file(dir: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .collect();
    files.sort();
    files
        .pop()
        .unwrap_or_else(|| panic!("no {prefix}*{suffix} file in {}", dir.display()))
}

/// `path` relative to the channel directory, as the refusal names it (under the data folder,
/// however that was spelled in the config).
fn channel_relative(path: &Path) -> String {
    let parts: Vec<_> = path.components().rev().take(4).collect();
    let parts: Vec<_> = parts
        .iter()
        .rev()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect();
    parts.join("/")
}

/// Every file under `dir`, by path, with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

/// Flips one bit in the middle of `path` (well inside its records: whole ones follow).
fn flip_middle_byte(path: &Path) -> usize {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x04;
    std::fs::write(path, &bytes).unwrap();
    at
}

/// Runs the orderer on `config`, expecting it to exit by itself; returns how it exited and what
/// it wrote to stderr.
fn run_expecting_exit(config: &Path) -> (ExitStatus, String) {
    let mut child = Command::new(common::binary("orderer"))
        .args(["start", "--config"])
        .arg(config)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting orderer");
    let mut stderr = child.stderr.take().unwrap();
    // Read on a thread so a chatty process cannot block on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stderr.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + EXIT_WITHIN;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the orderer did not exit within {EXIT_WITHIN:?} on a corrupt disk");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, reader.join().unwrap())
}

/// Starts the orderer on `config` and checks that it refuses: it exits with an error naming
/// `damaged`, says it changed nothing and gives `hint`, and the files under `data` are as they
/// were.
fn assert_refuses_to_start(config: &Path, data: &Path, damaged: &Path, hint: &str) {
    let before = snapshot(data);
    let (status, stderr) = run_expecting_exit(config);
    assert!(!status.success(), "started on a damaged disk: {stderr}");
    for expected in [
        &channel_relative(damaged),
        "nothing was changed on disk",
        hint,
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in: {stderr}");
    }
    eprintln!("refusal: {}", stderr.trim());
    assert_eq!(snapshot(data), before, "files changed by a refused start");
}

#[tokio::test(flavor = "multi_thread")]
async fn flipped_byte_in_the_active_log_segment_refuses_to_start() {
    let mut orderer = Orderer::start(test_batch());
    let (submitted, chain) = load(&orderer).await;
    assert!(orderer.terminate().success());

    let log_dir = orderer.channel_dir().join("log");
    let segment = last_file(&log_dir, "", ".log");
    let clean = std::fs::read(&segment).unwrap();
    let at = flip_middle_byte(&segment);
    assert_refuses_to_start(
        &orderer.config,
        orderer.dir.path(),
        &segment,
        "restore the damaged segment file from a backup",
    );

    // Nothing was lost: putting the byte back is the whole repair.
    let mut repaired = std::fs::read(&segment).unwrap();
    repaired[at] = clean[at];
    std::fs::write(&segment, &repaired).unwrap();
    orderer.restart();
    let client = orderer.client().await;
    let after = wait_for_txs(&client, &submitted.acked).await;
    assert_eq!(&after[..chain.len()], &chain[..]);
}

#[tokio::test(flavor = "multi_thread")]
async fn flipped_byte_in_the_ledger_refuses_to_start_and_the_ledger_is_cut_again_from_the_log() {
    let mut orderer = Orderer::start(test_batch());
    let (submitted, chain) = load(&orderer).await;
    assert!(orderer.terminate().success());

    let ledger_dir = orderer.channel_dir().join("ledger");
    let block_file = last_file(&ledger_dir, "blocks_", ".dat");
    flip_middle_byte(&block_file);
    assert_refuses_to_start(
        &orderer.config,
        orderer.dir.path(),
        &block_file,
        "cuts the blocks again from its log",
    );

    // The repair the message suggests: the blocks are cut again from the log, the same ones.
    let aside = orderer.dir.path().join("damaged-ledger");
    std::fs::rename(&ledger_dir, &aside).unwrap();
    orderer.restart();
    let client = orderer.client().await;
    let rebuilt = wait_for_txs(&client, &submitted.acked).await;
    assert!(rebuilt.len() >= chain.len());
    for (old, new) in chain.iter().zip(&rebuilt) {
        // Signatures may differ (each signing is fresh); what the chain commits to may not.
        assert_eq!(old.header, new.header);
        assert_eq!(old.data, new.data);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupt_raft_replica_refuses_to_start_and_is_repaired_from_the_others() {
    let mut cluster = Cluster::start(Spec::three()).await;
    let leader = cluster.wait_for_leader(&[1, 2, 3]).await;
    let damaged = [1, 2, 3].into_iter().find(|&id| id != leader).unwrap();
    let others: Vec<_> = [1, 2, 3].into_iter().filter(|&id| id != damaged).collect();
    let first = submit_all(&cluster.clients(&[1, 2, 3]).await, 1500).await;
    cluster.wait_converged(&[1, 2, 3], &first.acked).await;
    cluster.terminate(damaged).await;

    let node = cluster.node(damaged);
    let channel_dir = node
        .data_dir
        .join("channels")
        .join(ordo_orderer::setup::dev::CHANNEL);
    let segment = last_file(&channel_dir.join("log"), "", ".log");
    flip_middle_byte(&segment);
    assert_refuses_to_start(
        &node.config,
        &node.data_dir,
        &segment,
        "To repair this replica from the others",
    );

    // The repair the message suggests, while the others go on: out of the cluster, the damaged
    // folder aside, back as a learner, promoted once caught up.
    let id = damaged.to_string();
    let removed = cluster.admin(others[0], &["remove", "--id", &id]).await;
    eprintln!("repair: remove: {}", removed.trim());
    let home = cluster.node(damaged).home.clone();
    std::fs::rename(&channel_dir, home.join("damaged-channel")).unwrap();
    let second = submit_all(&cluster.clients(&others).await, 500).await;
    cluster.start_node(damaged).await;
    let address = cluster.advertised_address(damaged).to_string();
    let added = cluster
        .admin(
            others[0],
            &["add-learner", "--id", &id, "--address", &address],
        )
        .await;
    eprintln!("repair: add-learner: {}", added.trim());
    let acked: Vec<_> = first.acked.iter().chain(&second.acked).cloned().collect();
    cluster.wait_converged(&[1, 2, 3], &acked).await;
    let promoted = cluster.admin(others[0], &["promote", "--id", &id]).await;
    eprintln!("repair: promote: {}", promoted.trim());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = cluster.status(damaged).await.unwrap();
        if status.voters == vec![1, 2, 3] && status.learners.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node {damaged} not a voter again: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let third = submit_all(&cluster.clients(&[1, 2, 3]).await, 300).await;
    let acked: Vec<_> = acked.iter().chain(&third.acked).cloned().collect();
    cluster.wait_converged(&[1, 2, 3], &acked).await;
}
