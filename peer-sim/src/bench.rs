//! `peer-sim bench`: measure a running network. Envelopes are signed before the clock starts;
//! the load goes over many Broadcast streams spread over every endpoint, closed loop (max rate)
//! or open loop (`--rate`); one endpoint's Deliver is followed from the current height and every
//! block verified; each transaction is timed from its submission to the delivery of the block
//! that holds it. Every run also records the machine, the channel's batch rules, the orderer
//! processes' CPU time and memory, and the machine's own signature verification rates (Ed25519
//! and ECDSA P-256; the identity's kind bounds the orderer).

pub mod account;
pub mod fanout;
pub mod machine;
pub mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use tokio::task::JoinHandle;

use crate::chain::ChainVerifier;
use crate::client::Client;
use crate::follow::{End, Follower};
use crate::load::{self, Pace};
use crate::stats::Percentiles;
use machine::{Machine, ProcSample};
use report::{ChannelSettings, ProcessReport, Report};

#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// Orderer client addresses; repeat or separate with commas. Streams are spread over all.
    #[arg(long = "endpoint", env = "ORDO_ENDPOINT", value_delimiter = ',', num_args = 1..,
          default_value = "http://127.0.0.1:7050")]
    pub endpoints: Vec<String>,
    /// Endpoint whose Deliver is followed (default: the first endpoint).
    #[arg(long)]
    pub deliver_endpoint: Option<String>,
    /// The client's Fabric MSP folder (signcerts/, keystore/, cacerts/...).
    #[arg(
        long,
        env = "ORDO_MSP",
        default_value = "ordo-data/crypto/Org1/users/User1/msp"
    )]
    pub msp: PathBuf,
    /// The MSP id the client signs as.
    #[arg(long, env = "ORDO_MSPID", default_value = "Org1MSP")]
    pub mspid: String,
    #[arg(long, default_value = "ordo")]
    pub channel: String,
    #[command(flatten)]
    pub tls: crate::client::TlsArgs,
    /// Name of the run in reports and the JSON file name.
    #[arg(long, default_value = "bench")]
    pub label: String,
    /// Open loop: offer this many transactions per second (default: closed loop, max rate).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open loop: seconds of load (the run signs rate × duration envelopes).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Closed loop: transactions in all.
    #[arg(long, default_value_t = 100_000)]
    pub count: usize,
    /// Bytes of transaction data per envelope.
    #[arg(long, default_value_t = 1024)]
    pub tx_bytes: usize,
    /// Concurrent Broadcast streams (each on its own connection).
    #[arg(long, default_value_t = 32)]
    pub streams: usize,
    /// Closed loop: envelopes each stream keeps unanswered.
    #[arg(long, default_value_t = 128)]
    pub window: usize,
    /// Extra Deliver clients (each on its own connection to the Deliver endpoint) that follow
    /// the chain for the whole run, counting blocks and bytes only, as peers pulling blocks; the
    /// run fails if one does not reach the last block the verifying follower saw.
    #[arg(long, default_value_t = 0)]
    pub followers: usize,
    /// Seconds to wait, after the last answer, for acknowledged transactions to be delivered.
    #[arg(long, default_value_t = 30)]
    pub deliver_timeout: u64,
    /// An orderer process to account CPU time and memory for; repeat for each node.
    #[arg(long = "orderer-pid")]
    pub orderer_pids: Vec<u32>,
    /// Seconds spent measuring verify rates (a third each: Ed25519 single, Ed25519 batched,
    /// ECDSA P-256 single); 0 skips.
    #[arg(long, default_value_t = 1.0)]
    pub verify_seconds: f64,
    /// Whether the orderers fsync before acknowledging (recorded, not set, here).
    #[arg(long, default_value = "on")]
    pub fsync: String,
    /// Free-form KEY=VALUE recorded with the run (e.g. commit=abc123); repeatable.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Once ready to load (envelopes signed, verify rates measured, streams connected, Deliver
    /// followed), print "bench LABEL: ready" and wait until this file exists: lines up the loads
    /// of concurrent runs (one per channel, say) without their preparation.
    #[arg(long)]
    pub start_when: Option<PathBuf>,
    /// Folder for the run's JSON report.
    #[arg(long, default_value = "bench-results")]
    pub out_dir: PathBuf,
    /// Markdown table to append the run's row to (written with a header if new).
    #[arg(long)]
    pub summary: Option<PathBuf>,
    /// Print the report on stdout as one line of JSON (what the report file holds, and its path
    /// as `report_file`); the human report then goes to stderr.
    #[arg(long)]
    pub json: bool,
}

impl BenchArgs {
    fn pace(&self) -> anyhow::Result<Pace> {
        match self.rate {
            Some(rate) if rate > 0.0 && rate.is_finite() => Ok(Pace::Open { rate }),
            Some(rate) => {
                bail!("--rate must be a positive number of transactions a second, not {rate}")
            }
            None => Ok(Pace::Closed {
                window: self.window.max(1),
            }),
        }
    }

    fn transactions(&self) -> usize {
        match self.rate {
            Some(rate) => (rate * self.duration).round().max(1.0) as usize,
            None => self.count.max(1),
        }
    }
}

/// Runs one benchmark, prints its report and writes it to `out_dir`. Fails if the chain does
/// not verify, or an acknowledged transaction was lost or ordered twice.
pub async fn run(args: BenchArgs) -> anyhow::Result<Report> {
    let pace = args.pace()?;
    let endpoints: Vec<String> = args
        .endpoints
        .iter()
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    if endpoints.is_empty() {
        bail!("no endpoint given");
    }
    let signer = ordo_client::msp_dir::signing_identity(&args.msp, &args.mspid)
        .with_context(|| format!("loading the client identity from {}", args.msp.display()))?;
    let machine = Machine::detect();

    // The chain as it is, verified: the configuration in force tells the batch rules and
    // consenters.
    let deliver_endpoint = args
        .deliver_endpoint
        .clone()
        .unwrap_or_else(|| endpoints[0].clone());
    let follower_client =
        Client::connect_tls(&deliver_endpoint, &args.channel, signer.clone(), &args.tls).await?;
    let mut verifier = ChainVerifier::new();
    let chain = follower_client.read_chain().await?;
    for block in &chain {
        verifier.verify(block)?;
    }
    drop(chain);
    let bundle = verifier
        .bundle()
        .ok_or_else(|| anyhow!("the channel has no genesis block"))?;
    let settings = ChannelSettings::from_bundle(bundle, &args.fsync);

    let count = args.transactions();
    eprintln!(
        "bench {}: signing {count} envelopes of {} bytes...",
        args.label, args.tx_bytes
    );
    let prepared = {
        let tls_cert_hash = follower_client.tls_cert_hash.clone();
        let (signer, channel, tx_bytes, cores) = (
            signer.clone(),
            args.channel.clone(),
            args.tx_bytes,
            machine.cores,
        );
        tokio::task::spawn_blocking(move || {
            load::presign_bound(&signer, &channel, count, tx_bytes, cores, &tls_cert_hash)
        })
        .await?
    };
    let verify_rate = if args.verify_seconds > 0.0 {
        let sample = machine::VerifySample::new(
            &prepared.envelopes[..prepared.envelopes.len().min(256)],
            signer.certificate_der(),
        )?;
        let (cores, seconds) = (machine.cores, args.verify_seconds);
        Some(
            tokio::task::spawn_blocking(move || machine::verify_rate(&sample, cores, seconds))
                .await?,
        )
    } else {
        None
    };

    let mut clients = Vec::with_capacity(args.streams.max(1));
    for s in 0..args.streams.max(1) {
        let endpoint = &endpoints[s % endpoints.len()];
        clients
            .push(Client::connect_tls(endpoint, &args.channel, signer.clone(), &args.tls).await?);
    }

    let height = verifier.height();
    let mut follower = Follower::start(follower_client, verifier).await?;
    let fanout = if args.followers > 0 {
        let mut clients = Vec::with_capacity(args.followers);
        for _ in 0..args.followers {
            clients.push(
                Client::connect_tls(&deliver_endpoint, &args.channel, signer.clone(), &args.tls)
                    .await?,
            );
        }
        Some(fanout::Fanout::start(clients, height).await?)
    } else {
        None
    };

    if let Some(file) = &args.start_when {
        wait_for_file(&args.label, file).await?;
    }

    let self_pid = std::process::id();
    let before: Vec<Option<ProcSample>> = args
        .orderer_pids
        .iter()
        .map(|&pid| machine::sample_process(pid))
        .collect();
    let self_before = machine::sample_process(self_pid);
    let (stop_sampling, rss_sampler) = sample_rss(args.orderer_pids.clone());

    eprintln!("bench {}: load started", args.label);
    let start = Instant::now();
    let expected_secs = match pace {
        Pace::Open { rate } => count as f64 / rate,
        Pace::Closed { .. } => 0.0,
    };
    // Closed loop ends when the orderer has answered; the deadline only catches a hung run.
    let answers_deadline = start
        + Duration::from_secs_f64(expected_secs)
        + Duration::from_secs(args.deliver_timeout.max(1) * 4);
    let outcome = load::drive(
        clients,
        load::Envelopes::Presigned(prepared.envelopes),
        pace,
        start,
        Some(answers_deadline),
        load::no_ack(),
    )
    .await;

    // Collect blocks until every acknowledged transaction has been delivered (or time is up).
    let acked = outcome
        .sent
        .iter()
        .zip(&prepared.tx_ids)
        .filter(|(s, _)| {
            matches!(
                s,
                Some(load::Sent {
                    answer: load::Answer::Acked,
                    ..
                })
            )
        })
        .map(|(_, id)| id.clone());
    let deliver_deadline = tokio::time::Instant::now() + Duration::from_secs(args.deliver_timeout);
    let delivery = follower.until_delivered(acked, deliver_deadline).await;
    drop(follower);
    let arrivals = delivery.arrivals;
    // The fan-out had the whole run; it gets the deliver timeout again to catch up.
    let fanout = match fanout {
        Some(fanout) => {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(args.deliver_timeout);
            Some(
                fanout
                    .finish(arrivals.last().map(|a| a.number), deadline)
                    .await,
            )
        }
        None => None,
    };
    let follow_error = match delivery.end {
        End::Ended(Err(e)) => Some(format!("{e:#}")),
        End::Ended(Ok(())) => Some("Deliver stream ended".to_string()),
        End::Delivered | End::TimedOut => None,
    };
    let _ = stop_sampling.send(());
    let rss_samples = rss_sampler.await.unwrap_or_default();
    let after: Vec<Option<ProcSample>> = args
        .orderer_pids
        .iter()
        .map(|&pid| machine::sample_process(pid))
        .collect();
    let self_after = machine::sample_process(self_pid);

    let accounting = account::account(start, &prepared.tx_ids, &outcome.sent, &arrivals);
    let processes = args
        .orderer_pids
        .iter()
        .enumerate()
        .map(|(k, &pid)| ProcessReport::new(pid, before[k], after[k], &rss_samples[k]))
        .collect();
    let report = Report::new(report::Inputs {
        label: args.label.clone(),
        tags: args.tags.clone(),
        machine,
        settings,
        endpoints,
        deliver_endpoint,
        pace,
        offered: count,
        tx_bytes: args.tx_bytes,
        streams: args.streams.max(1),
        verify_rate,
        start,
        latencies: Percentiles::new(accounting.latencies.clone()).summary(),
        ack_latencies: Percentiles::new(accounting.ack_latencies.clone()).summary(),
        accounting,
        outcome_errors: outcome.errors,
        send_seconds: outcome.finished.duration_since(start).as_secs_f64(),
        max_send_lag: outcome.max_lag,
        processes,
        peer_sim_cpu_seconds: match (self_before, self_after) {
            (Some(b), Some(a)) => Some(a.cpu_seconds - b.cpu_seconds),
            _ => None,
        },
        follow_error: follow_error.clone(),
        fanout,
    });

    let path = report.write_json(&args.out_dir)?;
    if args.json {
        eprint!("{}", report.render_text());
        eprintln!("report:      {}", path.display());
        let mut json = report.to_json();
        json["report_file"] = serde_json::Value::from(path.display().to_string());
        crate::say!("{json}");
    } else {
        crate::out::print(&report.render_text());
        crate::say!("report:      {}", path.display());
    }
    if let Some(summary) = &args.summary {
        report.append_row(summary)?;
    }

    if let Some(e) = follow_error {
        bail!("following Deliver failed: {e}");
    }
    let acc = &report.accounting;
    if !acc.lost.is_empty() {
        bail!(
            "{} acknowledged transactions were not delivered within {}s (first: {})",
            acc.lost.len(),
            args.deliver_timeout,
            acc.lost[0]
        );
    }
    if !acc.duplicated.is_empty() {
        bail!("{} transactions were delivered twice", acc.duplicated.len());
    }
    if acc.delivered == 0 {
        bail!("no transaction was delivered");
    }
    if let Some(fanout) = &report.inputs.fanout {
        if let Some(&k) = fanout.behind().first() {
            let t = &fanout.each[k];
            bail!(
                "{} of {} followers did not reach block {} within {}s (follower {k}: last block {}{})",
                fanout.behind().len(),
                fanout.followers,
                fanout.target_block.unwrap_or(0),
                args.deliver_timeout,
                t.last_block.map_or("none".to_string(), |b| b.to_string()),
                t.error.as_ref().map_or(String::new(), |e| format!(", {e}")),
            );
        }
    }
    Ok(report)
}

/// How long a run waits for its `--start-when` file: far longer than any preparation, short
/// enough that a run whose script died does not linger.
const START_WAIT: Duration = Duration::from_secs(600);

async fn wait_for_file(label: &str, file: &std::path::Path) -> anyhow::Result<()> {
    eprintln!("bench {label}: ready");
    let give_up = Instant::now() + START_WAIT;
    while !file.exists() {
        if Instant::now() > give_up {
            bail!(
                "{} did not appear within {}s (--start-when)",
                file.display(),
                START_WAIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Per process, (seconds since sampling began, resident KiB).
type RssSamples = Vec<Vec<(f64, u64)>>;

/// Samples each process's resident set every second until told to stop.
fn sample_rss(pids: Vec<u32>) -> (tokio::sync::oneshot::Sender<()>, JoinHandle<RssSamples>) {
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let start = Instant::now();
        let mut samples = vec![Vec::new(); pids.len()];
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = &mut stopped => break,
            }
            let t = start.elapsed().as_secs_f64();
            for (k, &pid) in pids.iter().enumerate() {
                if let Some(s) = machine::sample_process(pid) {
                    samples[k].push((t, s.rss_kib));
                }
            }
        }
        samples
    });
    (stop, task)
}
