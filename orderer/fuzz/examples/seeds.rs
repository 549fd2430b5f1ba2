//! Writes the fuzz corpus's seeds, and the channel the envelope case admits requests into
//! (`fixtures/genesis.block`), from the data folder of a development node (`orderer` with no
//! subcommand) that peer-sim has sent transactions to; `seeds.sh` does all of it.
//!
//!     cargo run -p ordo-fuzz --example seeds -- DATA_DIR orderer/fuzz

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use bytes::Bytes;
use ordo_core::bundle::Bundle;
use ordo_core::configtx::client;
use ordo_core::envelope;
use ordo_orderer::ledger::{Ledger, LedgerConfig};
use ordo_orderer::log::{PartitionConfig, SegmentStore};
use ordo_proto::common::{Block, BlockData, BlockHeader, BlockMetadata, Envelope};
use ordo_proto::orderer::seek_info::SeekBehavior;
use ordo_proto::orderer::{seek_position, BatchTimeout, SeekNewest, SeekOldest, SeekPosition};
use prost::Message;

const CHANNEL: &str = "ordo";

fn main() -> anyhow::Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [data, out] = args.as_slice() else {
        bail!("usage: seeds DATA_DIR FUZZ_DIR");
    };
    let ledger = Ledger::open(
        &data.join("channels").join(CHANNEL).join("ledger"),
        LedgerConfig::default(),
    )
    .context("opening the development node's ledger")?;
    if ledger.height() < 2 {
        bail!("the ledger has no transactions yet: run peer-sim against the node first");
    }
    let write = |target: &str, name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let dir = out.join("corpus").join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), bytes).with_context(|| format!("writing {target}/{name}"))
    };

    // The channel, for the envelope case and as config-block seeds.
    let genesis = ledger.block_bytes(0)?.context("no block 0")?;
    std::fs::create_dir_all(out.join("fixtures"))?;
    std::fs::write(out.join("fixtures/genesis.block"), &genesis)?;
    write("config_block", "genesis", &genesis)?;
    let bundle = Bundle::from_block(&Block::decode(genesis.clone())?)?;

    // Transactions as the node received them.
    let mut transactions: Vec<Bytes> = Vec::new();
    for number in 1..ledger.height().min(3) {
        let block = ledger.block(number)?.context("a block below the height")?;
        transactions.extend(block.data.unwrap_or_default().data.into_iter().take(2));
    }
    for (k, tx) in transactions.iter().enumerate() {
        write("envelope", &format!("transaction-{k}"), tx)?;
    }

    // Deliver requests and a config update, signed by the development node's identities.
    let user = msp(data, "Org1/users/User1/msp", "Org1MSP")?;
    let admin = msp(data, "Orderer/users/Admin/msp", "OrdererMSP")?;
    let position = |t: seek_position::Type| SeekPosition { r#type: Some(t) };
    let seeks = [
        (
            "seek-follow",
            envelope::specified(0),
            envelope::specified(u64::MAX),
            SeekBehavior::BlockUntilReady,
        ),
        (
            "seek-oldest-newest",
            position(seek_position::Type::Oldest(SeekOldest {})),
            position(seek_position::Type::Newest(SeekNewest {})),
            SeekBehavior::FailIfNotReady,
        ),
    ];
    for (name, start, stop, behavior) in seeks {
        let seek = envelope::seek(&user, CHANNEL, start, stop, behavior as i32);
        write("envelope", name, &seek.encode_to_vec())?;
    }
    let timeout = BatchTimeout {
        timeout: "1s".to_string(),
    };
    let update = client::value_update(
        bundle.config(),
        CHANNEL,
        &["Orderer"],
        "BatchTimeout",
        timeout.encode_to_vec().into(),
    )?;
    let update: Envelope = client::update_envelope(&update, &[&admin], &admin);
    write("envelope", "config-update", &update.encode_to_vec())?;

    // A log of a few records, whole and with a torn last frame.
    let scratch = tempfile::tempdir()?;
    let log_dir = scratch.path().join("log");
    let mut log = SegmentStore::open(
        &log_dir,
        PartitionConfig {
            segment_bytes: 1 << 20,
            index_interval_bytes: 256,
            cache_bytes: 0,
        },
    )?;
    for (offset, tx) in transactions.iter().enumerate() {
        log.append(offset as u64, 1_700_000_000_000 + offset as i64, tx)?;
    }
    log.sync()?;
    drop(log);
    let segment = std::fs::read(log_dir.join(format!("{:020}.log", 0)))?;
    write("segment", "records", &segment)?;
    write("segment", "torn", &segment[..segment.len() - 7])?;

    // A ledger of small blocks, one transaction each.
    let ledger_dir = scratch.path().join("ledger");
    let small = Ledger::open(
        &ledger_dir,
        LedgerConfig {
            file_bytes: 1 << 20,
            cache_bytes: 0,
        },
    )?;
    for (number, tx) in transactions.iter().enumerate().take(3) {
        small.append(&Block {
            header: Some(BlockHeader {
                number: number as u64,
                previous_hash: vec![number as u8; 32].into(),
                data_hash: vec![0xda; 32].into(),
            }),
            data: Some(BlockData {
                data: vec![tx.clone()],
            }),
            metadata: Some(BlockMetadata {
                metadata: vec![Bytes::new(); 5],
            }),
        })?;
    }
    drop(small);
    let blocks = std::fs::read(ledger_dir.join(format!("blocks_{:020}.dat", 0)))?;
    write("ledger", "blocks", &blocks)?;
    write("ledger", "torn", &blocks[..blocks.len() - 5])?;
    println!("seeds written under {}", out.join("corpus").display());
    Ok(())
}

fn msp(data: &Path, folder: &str, mspid: &str) -> anyhow::Result<ordo_core::msp::SigningIdentity> {
    let dir = data.join("crypto").join(folder);
    ordo_client::msp_dir::signing_identity(&dir, mspid)
        .with_context(|| format!("loading {}", dir.display()))
}
