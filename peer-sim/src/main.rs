//! `peer-sim`: act as Fabric peers against an Ordo orderer.
//!
//! With no subcommand: submit 10,000 transactions to the default local node over concurrent
//! Broadcast streams while following Deliver, verify every block, and report throughput, blocks
//! and submit→delivered latency. Exits non-zero on any verification failure.
//!
//! `peer-sim bench` measures a running network (see `network/bench.sh` and BENCHMARKS.md).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ordo_peer_sim::{submit, ChainVerifier, Client, End, Follower, Load, Percentiles};
use ordo_proto::common::Status;

#[derive(Parser)]
#[command(name = "peer-sim", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Submit load, follow Deliver, verify, report (the default).
    Run(RunArgs),
    /// Read the whole chain from block 0 and verify it.
    Verify(VerifyArgs),
    /// Measure a running network: max rate (closed loop) or a fixed offered rate (`--rate`).
    Bench(Box<ordo_peer_sim::bench::BenchArgs>),
    /// Draw a benchmark suite's open-loop sweeps as latency-throughput PNGs (one per group).
    Plot(ordo_peer_sim::plot::PlotArgs),
}

#[derive(Args, Clone)]
struct Target {
    /// Orderer client address.
    #[arg(long, env = "ORDO_ENDPOINT", default_value = "http://127.0.0.1:7050")]
    endpoint: String,
    /// The client's Fabric MSP folder (signcerts/, keystore/, cacerts/...), as `orderer` prints
    /// on start.
    #[arg(
        long,
        env = "ORDO_MSP",
        default_value = "ordo-data/crypto/Org1/users/User1/msp"
    )]
    msp: PathBuf,
    /// The MSP id the client signs as (an MSP folder does not name its own).
    #[arg(long, env = "ORDO_MSPID", default_value = "Org1MSP")]
    mspid: String,
    #[arg(long, default_value = "ordo")]
    channel: String,
    #[command(flatten)]
    tls: ordo_peer_sim::client::TlsArgs,
}

#[derive(Args, Clone)]
struct VerifyArgs {
    #[command(flatten)]
    target: Target,
    /// Print the result as one line of JSON (keys `verified`, `blocks`, `envelopes`) instead of
    /// a sentence. A chain that fails verification is an error either way (stderr, exit 1).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Clone)]
struct RunArgs {
    #[command(flatten)]
    target: Target,
    /// Transactions to submit.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Concurrent Broadcast streams.
    #[arg(long, default_value_t = 8)]
    streams: usize,
    /// Bytes of transaction data per envelope.
    #[arg(long, default_value_t = 1024)]
    tx_bytes: usize,
    /// Seconds to wait for acknowledged transactions to appear in blocks.
    #[arg(long, default_value_t = 60)]
    deliver_timeout: u64,
    /// Print the report as JSON too.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("peer-sim: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tls_ca = match &cli.command {
        None => cli.run.target.tls.tls_ca.is_some(),
        Some(Command::Run(args)) => args.target.tls.tls_ca.is_some(),
        Some(Command::Verify(args)) => args.target.tls.tls_ca.is_some(),
        Some(Command::Bench(args)) => args.tls.tls_ca.is_some(),
        Some(Command::Plot(_)) => true,
    };
    let result = runtime.block_on(async {
        match cli.command {
            None => run(cli.run).await,
            Some(Command::Run(args)) => run(args).await,
            Some(Command::Verify(args)) => verify(args).await,
            Some(Command::Bench(args)) => ordo_peer_sim::bench::run(*args).await.map(drop),
            Some(Command::Plot(args)) => plot(&args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let text = format!("{e:#}");
            eprintln!("peer-sim: {text}");
            // A plain-text client at a TLS port sees its connection dropped, nothing clearer.
            if !tls_ca && text.contains("transport error") {
                eprintln!(
                    "peer-sim: if the orderer serves TLS (the development node does), give its \
                     TLS CA with --tls-ca or ORDO_CLIENT_TLS_CA"
                );
            }
            ExitCode::FAILURE
        }
    }
}

async fn connect(target: &Target) -> anyhow::Result<Client> {
    let signer = ordo_client::msp_dir::signing_identity(&target.msp, &target.mspid)
        .with_context(|| format!("loading the client identity from {}", target.msp.display()))?;
    Client::connect_tls(&target.endpoint, &target.channel, signer, &target.tls).await
}

/// Prints the path of each PNG drawn, one a line (scripts list them).
fn plot(args: &ordo_peer_sim::plot::PlotArgs) -> anyhow::Result<()> {
    for path in ordo_peer_sim::plot::run(args)? {
        ordo_peer_sim::say!("{}", path.display());
    }
    Ok(())
}

async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let client = connect(&args.target).await?;
    let blocks = client.read_chain().await?;
    let mut verifier = ChainVerifier::new();
    let mut txs = 0;
    for block in &blocks {
        txs += verifier.verify(block)?.tx_ids.len();
    }
    if args.json {
        let report = serde_json::json!({
            "verified": true,
            "blocks": blocks.len(),
            "envelopes": txs,
        });
        ordo_peer_sim::say!("{report}");
    } else {
        ordo_peer_sim::say!(
            "verified {} blocks ({} envelopes): hash chain, data hashes, block validation policy, no duplicates",
            blocks.len(),
            txs
        );
    }
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let client = connect(&args.target).await?;

    // Verify the chain as it is, then follow it from there while submitting, verifying each
    // block as it arrives (reading the old chain first keeps it out of the latencies).
    let mut verifier = ChainVerifier::new();
    for block in client.read_chain().await? {
        verifier.verify(&block)?;
    }
    let mut follower = Follower::start(client.clone(), verifier).await?;

    let progress = ProgressBar::new(args.count as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} acknowledged {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let load = Load {
        count: args.count,
        streams: args.streams,
        tx_bytes: args.tx_bytes,
        ..Load::default()
    };
    let started = Instant::now();
    let bar = progress.clone();
    let submitted = submit(&client, &load, Arc::new(move || bar.inc(1))).await;
    progress.finish_and_clear();

    // Wait until every acknowledged transaction is in a delivered block.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.deliver_timeout);
    let delivery = follower
        .until_delivered(submitted.acked.iter().map(|(id, _)| id.clone()), deadline)
        .await;
    drop(follower);
    match delivery.end {
        End::Delivered => {}
        End::Ended(Err(e)) => return Err(e),
        End::Ended(Ok(())) => bail!(
            "Deliver ended with {} acknowledged transactions missing",
            delivery.missing.len()
        ),
        End::TimedOut => bail!(
            "{} acknowledged transactions were not delivered within {}s",
            delivery.missing.len(),
            args.deliver_timeout
        ),
    }
    let mut pending: HashMap<&str, Instant> = submitted
        .acked
        .iter()
        .map(|(id, at)| (id.as_str(), *at))
        .collect();
    let mut latencies = Vec::with_capacity(pending.len());
    let mut blocks = 0u64;
    let mut first_block_with_tx = None;
    let mut last_delivery = started;
    for arrival in &delivery.arrivals {
        if pending.is_empty() {
            break;
        }
        blocks = blocks.max(arrival.number + 1);
        for tx_id in &arrival.tx_ids {
            if let Some(at) = pending.remove(tx_id.as_str()) {
                latencies.push(arrival.at.duration_since(at));
                first_block_with_tx.get_or_insert(arrival.number);
                last_delivery = arrival.at;
            }
        }
    }

    if !submitted.errors.is_empty() {
        bail!("Broadcast failed: {}", submitted.errors.join("; "));
    }
    if !submitted.refused.is_empty() {
        let (status, info) = &submitted.refused[0];
        bail!(
            "{} envelopes were refused (first: {:?} {info})",
            submitted.refused.len(),
            Status::try_from(*status)
        );
    }
    let elapsed = last_delivery.duration_since(started);
    let delivered = latencies.len();
    let latencies = Percentiles::new(latencies);
    let tps = delivered as f64 / elapsed.as_secs_f64().max(1e-9);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    ordo_peer_sim::say!("transactions: {delivered} acknowledged and delivered, each exactly once");
    ordo_peer_sim::say!(
        "blocks:       {} (chain height {blocks}), every one verified",
        blocks - first_block_with_tx.unwrap_or(blocks)
    );
    ordo_peer_sim::say!(
        "throughput:   {tps:.0} tx/s over {:.2}s",
        elapsed.as_secs_f64()
    );
    ordo_peer_sim::say!(
        "latency:      p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (submit → block delivered)",
        ms(latencies.at(50.0)),
        ms(latencies.at(99.0)),
        ms(latencies.max())
    );
    if args.json {
        let report = serde_json::json!({
            "transactions": delivered,
            "seconds": elapsed.as_secs_f64(),
            "tx_per_s": tps,
            "blocks": blocks,
            "latency_ms": { "p50": ms(latencies.at(50.0)), "p99": ms(latencies.at(99.0)), "max": ms(latencies.max()) },
        });
        ordo_peer_sim::say!("{report}");
    }
    if delivered != args.count {
        return Err(anyhow!(
            "only {delivered} of {} transactions were acknowledged",
            args.count
        ));
    }
    Ok(())
}
