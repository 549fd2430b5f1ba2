//! A run's report: a human summary on stdout, a JSON file per run, and a row of the suite's
//! markdown table.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use ordo_core::bundle::Bundle;
use ordo_core::configtx::values::Consensus;
use serde::Serialize;
use serde_json::json;

use super::account::Accounting;
use super::fanout::FanoutReport;
use super::machine::{Machine, ProcSample, SignatureKind, VerifyRate};
use crate::load::Pace;
use crate::stats::LatencySummary;

/// The channel's block rules (from the configuration in force when the run starts) and the
/// orderers' durability setting.
#[derive(Clone, Debug, Serialize)]
pub struct ChannelSettings {
    pub channel_id: String,
    pub consenters: usize,
    /// ConsensusType: `solo` or `etcdraft`.
    pub consensus: String,
    pub max_message_count: u32,
    pub preferred_max_bytes: u32,
    pub absolute_max_bytes: u32,
    pub batch_timeout_ms: u64,
    pub fsync: String,
}

impl ChannelSettings {
    pub fn from_bundle(bundle: &Bundle, fsync: &str) -> Self {
        let values = bundle.values();
        let batch = values.batch_size;
        ChannelSettings {
            channel_id: bundle.channel_id().to_string(),
            consenters: match &values.consensus {
                Consensus::Solo => 1,
                Consensus::EtcdRaft { consenters, .. } => consenters.len(),
            },
            consensus: values.consensus.type_name().to_string(),
            max_message_count: batch.max_message_count,
            preferred_max_bytes: batch.preferred_max_bytes,
            absolute_max_bytes: batch.absolute_max_bytes,
            batch_timeout_ms: u64::try_from(values.batch_timeout.as_millis()).unwrap_or(u64::MAX),
            fsync: fsync.to_string(),
        }
    }
}

/// One orderer process over the run.
#[derive(Clone, Debug, Serialize)]
pub struct ProcessReport {
    pub pid: u32,
    /// CPU seconds spent during the run; `None` if the process was gone at either end.
    pub cpu_seconds: Option<f64>,
    pub peak_rss_kib: Option<u64>,
    /// Alive when the run ended.
    pub survived: bool,
    /// Resident set growth from the middle of the run to its end (flat memory: about 0).
    pub rss_growth_second_half_kib: Option<i64>,
    /// (seconds since the load started, resident KiB), once a second.
    pub rss_samples: Vec<(f64, u64)>,
}

impl ProcessReport {
    pub fn new(
        pid: u32,
        before: Option<ProcSample>,
        after: Option<ProcSample>,
        rss_samples: &[(f64, u64)],
    ) -> Self {
        let growth = match rss_samples {
            [.., last] if rss_samples.len() >= 4 => {
                let middle = rss_samples[rss_samples.len() / 2];
                Some(last.1 as i64 - middle.1 as i64)
            }
            _ => None,
        };
        ProcessReport {
            pid,
            cpu_seconds: match (before, after) {
                (Some(b), Some(a)) => Some(a.cpu_seconds - b.cpu_seconds),
                _ => None,
            },
            peak_rss_kib: after.or(before).map(|s| s.peak_rss_kib),
            survived: after.is_some(),
            rss_growth_second_half_kib: growth,
            rss_samples: rss_samples.to_vec(),
        }
    }
}

/// Everything a run measured, as [`super::run`] hands it over.
pub struct Inputs {
    pub label: String,
    pub tags: Vec<String>,
    pub machine: Machine,
    pub settings: ChannelSettings,
    pub endpoints: Vec<String>,
    pub deliver_endpoint: String,
    pub pace: Pace,
    /// Envelopes prepared (and offered).
    pub offered: usize,
    pub tx_bytes: usize,
    pub streams: usize,
    pub verify_rate: Option<VerifyRate>,
    pub start: Instant,
    pub accounting: Accounting,
    /// Submit → block delivered.
    pub latencies: LatencySummary,
    /// Submit → SUCCESS answer on the Broadcast stream.
    pub ack_latencies: LatencySummary,
    pub outcome_errors: Vec<String>,
    pub send_seconds: f64,
    pub max_send_lag: Duration,
    pub processes: Vec<ProcessReport>,
    pub peer_sim_cpu_seconds: Option<f64>,
    pub follow_error: Option<String>,
    /// The extra Deliver followers (`--followers`), if any.
    pub fanout: Option<FanoutReport>,
}

pub struct Report {
    pub inputs: Inputs,
    pub accounting: Accounting,
    pub throughput: f64,
    pub seconds: f64,
    pub unix_time: u64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Report {
    pub fn new(mut inputs: Inputs) -> Report {
        let accounting = std::mem::take(&mut inputs.accounting);
        let throughput = accounting.throughput(inputs.start);
        let seconds = accounting
            .last_delivery
            .map_or(0.0, |t| t.duration_since(inputs.start).as_secs_f64());
        Report {
            inputs,
            accounting,
            throughput,
            seconds,
            unix_time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// Delivered throughput as a fraction of the machine's one-by-one verify rate for the
    /// identity's signature kind.
    pub fn fraction_of_verify_bound(&self) -> Option<f64> {
        let bound = self.inputs.verify_rate?.bound_per_s?;
        (bound > 0.0).then(|| self.throughput / bound)
    }

    pub fn offered_rate(&self) -> Option<f64> {
        match self.inputs.pace {
            Pace::Open { rate } => Some(rate),
            Pace::Closed { .. } => None,
        }
    }

    /// Orderer CPU time (all given processes) per delivered transaction, in microseconds.
    pub fn orderer_cpu_us_per_tx(&self) -> Option<f64> {
        let cpu: Option<f64> = self.inputs.processes.iter().map(|p| p.cpu_seconds).sum();
        let cpu = cpu.or_else(|| {
            // A killed process has no end figure: count what the survivors spent.
            let alive: Vec<f64> = self
                .inputs
                .processes
                .iter()
                .filter_map(|p| p.cpu_seconds)
                .collect();
            (!alive.is_empty()).then(|| alive.iter().sum())
        })?;
        (self.accounting.delivered > 0).then(|| cpu * 1e6 / self.accounting.delivered as f64)
    }

    fn peak_rss_mib(&self) -> Option<f64> {
        self.inputs
            .processes
            .iter()
            .filter_map(|p| p.peak_rss_kib)
            .max()
            .map(|k| k as f64 / 1024.0)
    }

    fn not_acked(&self) -> usize {
        let a = &self.accounting;
        self.inputs.offered - a.acked
    }

    pub fn render_text(&self) -> String {
        let i = &self.inputs;
        let a = &self.accounting;
        let s = &i.settings;
        let mut out = String::new();
        let mode = match self.offered_rate() {
            Some(rate) => format!("open loop, {rate:.0} tx/s offered"),
            None => "closed loop (max rate)".to_string(),
        };
        let _ = writeln!(out, "── bench {} ──", i.label);
        let _ = writeln!(
            out,
            "machine:     {} cores, {} (Linux {})",
            i.machine.cores, i.machine.cpu_model, i.machine.kernel
        );
        let _ = writeln!(
            out,
            "channel:     {} ({}, {} consenter(s)); blocks of ≤{} tx / ≤{} B preferred, timeout {} ms; fsync {}",
            s.channel_id, s.consensus, s.consenters, s.max_message_count, s.preferred_max_bytes, s.batch_timeout_ms, s.fsync
        );
        let _ = writeln!(
            out,
            "load:        {mode}; {} tx of {} B over {} streams to {}; Deliver from {}",
            i.offered,
            i.tx_bytes,
            i.streams,
            i.endpoints.join(", "),
            i.deliver_endpoint
        );
        let _ = writeln!(
            out,
            "answers:     {} acked, {} refused, {} unanswered, {} never sent (sending took {:.2}s, worst lag behind schedule {:.1} ms)",
            a.acked, a.refused, a.unanswered, i.offered - a.sent, i.send_seconds, ms(i.max_send_lag)
        );
        let _ = writeln!(
            out,
            "delivered:   {} tx in {} verified blocks; {} acked lost, {} duplicated, {} delivered unacked",
            a.delivered, a.blocks, a.lost.len(), a.duplicated.len(), a.delivered_unacked
        );
        let _ = writeln!(
            out,
            "throughput:  {:.0} tx/s over {:.2}s (delivered in verified blocks)",
            self.throughput, self.seconds
        );
        let l = i.latencies.millis();
        let latency: Vec<String> = l.iter().map(|(name, v)| format!("{name} {v:.1}")).collect();
        let _ = writeln!(
            out,
            "latency ms:  {} (submit → block delivered)",
            latency.join(", ")
        );
        let ack: Vec<String> = i
            .ack_latencies
            .millis()
            .iter()
            .map(|(name, v)| format!("{name} {v:.1}"))
            .collect();
        let _ = writeln!(
            out,
            "ack ms:      {} (submit → SUCCESS answer)",
            ack.join(", ")
        );
        if let Some(f) = &i.fanout {
            let (fewest, most) = f.blocks_range();
            let target = f
                .target_block
                .map_or("no block".to_string(), |b| format!("block {b}"));
            let _ = writeln!(
                out,
                "followers:   {} more Deliver clients: {fewest}–{most} blocks each, {} blocks and {:.1} MiB in all; {} of {} reached {target}",
                f.followers,
                f.blocks_total(),
                f.bytes_total() as f64 / (1024.0 * 1024.0),
                f.followers - f.behind().len(),
                f.followers,
            );
        }
        if let Some(gap) = a.longest_gap {
            let _ = writeln!(
                out,
                "block gap:   longest {:.0} ms with no block delivered (from {:.2}s into the run, until block {})",
                ms(gap.duration), gap.from_start.as_secs_f64(), gap.until_block
            );
        }
        if let Some(v) = i.verify_rate {
            let kind = match v.identity_signature {
                SignatureKind::Ed25519 => "Ed25519",
                SignatureKind::EcdsaP256 => "ECDSA P-256",
                SignatureKind::EcdsaP384 => "ECDSA P-384 (not measured)",
            };
            let bound = self
                .fraction_of_verify_bound()
                .map_or("—".to_string(), |f| format!("{:.1}%", f * 100.0));
            let _ = writeln!(
                out,
                "verify:      on {} threads: Ed25519 {:.0}/s one by one, {:.0}/s in batches of {}; ECDSA P-256 {:.0}/s one by one; identity signs {kind}: throughput = {bound} of its one-by-one bound",
                v.threads, v.single_per_s, v.batch_per_s, v.batch_size, v.ecdsa_p256_single_per_s,
            );
        }
        for p in &i.processes {
            let cpu = p
                .cpu_seconds
                .map_or("—".into(), |c| format!("{c:.2} CPU s"));
            let rss = p.peak_rss_kib.map_or("—".into(), |k| {
                format!("peak RSS {:.0} MiB", k as f64 / 1024.0)
            });
            let growth = p.rss_growth_second_half_kib.map_or(String::new(), |g| {
                format!(", RSS {:+.1} MiB over the second half", g as f64 / 1024.0)
            });
            let state = if p.survived { "" } else { " (gone by the end)" };
            let _ = writeln!(out, "orderer {}:{state} {cpu}, {rss}{growth}", p.pid);
        }
        if let Some(us) = self.orderer_cpu_us_per_tx() {
            let _ = writeln!(out, "cost:        {us:.1} orderer CPU µs per delivered tx");
        }
        if let Some(c) = i.peer_sim_cpu_seconds {
            let _ = writeln!(
                out,
                "peer-sim:    {c:.2} CPU s ({:.1} µs per delivered tx)",
                c * 1e6 / a.delivered.max(1) as f64
            );
        }
        for e in i.outcome_errors.iter().take(5) {
            let _ = writeln!(out, "stream:      {e}");
        }
        if i.outcome_errors.len() > 5 {
            let _ = writeln!(out, "stream:      … {} more", i.outcome_errors.len() - 5);
        }
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        let i = &self.inputs;
        let a = &self.accounting;
        let millis = |l: &LatencySummary| -> serde_json::Map<String, serde_json::Value> {
            l.millis()
                .iter()
                .map(|(name, v)| (name.to_string(), json!(v)))
                .collect()
        };
        json!({
            "label": i.label,
            "unix_time": self.unix_time,
            "tags": i.tags,
            "machine": i.machine,
            "channel": i.settings,
            "load": {
                "mode": if self.offered_rate().is_some() { "open" } else { "closed" },
                "offered_tx_per_s": self.offered_rate(),
                "transactions": i.offered,
                "tx_bytes": i.tx_bytes,
                "streams": i.streams,
                "endpoints": i.endpoints,
                "deliver_endpoint": i.deliver_endpoint,
                "send_seconds": i.send_seconds,
                "max_send_lag_ms": ms(i.max_send_lag),
            },
            "answers": {
                "sent": a.sent,
                "acked": a.acked,
                "refused": a.refused,
                "unanswered": a.unanswered,
                "stream_errors": i.outcome_errors,
            },
            "delivered": a.delivered,
            "blocks": a.blocks,
            "blocks_with_ours": a.blocks_with_ours,
            "lost": a.lost.len(),
            "lost_tx_ids": a.lost.iter().take(20).collect::<Vec<_>>(),
            "duplicated": a.duplicated.len(),
            "delivered_unacked": a.delivered_unacked,
            "foreign": a.foreign,
            "seconds": self.seconds,
            "tx_per_s": self.throughput,
            "per_second": a.per_second,
            "latency_ms": millis(&i.latencies),
            "ack_latency_ms": millis(&i.ack_latencies),
            "longest_block_gap_ms": a.longest_gap.map(|g| ms(g.duration)),
            "longest_block_gap_from_s": a.longest_gap.map(|g| g.from_start.as_secs_f64()),
            "verify_rate": i.verify_rate,
            "fraction_of_verify_bound": self.fraction_of_verify_bound(),
            "orderers": i.processes,
            "orderer_cpu_us_per_tx": self.orderer_cpu_us_per_tx(),
            "peer_sim_cpu_seconds": i.peer_sim_cpu_seconds,
            "follow_error": i.follow_error,
            "followers": i.fanout.as_ref().map(|f| json!({
                "count": f.followers,
                "target_block": f.target_block,
                "reached": f.followers - f.behind().len(),
                "blocks_total": f.blocks_total(),
                "bytes_total": f.bytes_total(),
                "each": f.each,
            })),
        })
    }

    /// Writes `DIR/<label>-<unix time>.json`; returns its path.
    pub fn write_json(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let name: String = self
            .inputs
            .label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{name}-{}.json", self.unix_time));
        let text = serde_json::to_string_pretty(&self.to_json())?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    pub const TABLE_HEADER: &'static str = "| run | nodes | tx B | offered tx/s | delivered tx/s | of verify bound | p50 ms | p95 ms | p99 ms | p99.9 ms | max ms | ack p50 ms | ack p99 ms | longest block gap ms | not acked | lost / dup | orderer CPU µs/tx | peak RSS MiB |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";

    pub fn table_row(&self) -> String {
        let i = &self.inputs;
        let a = &self.accounting;
        let l = &i.latencies;
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or("—".to_string(), |v| format!("{v:.digits$}"))
        };
        format!(
            "| {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} / {} | {} | {} |\n",
            i.label,
            i.settings.consenters,
            i.tx_bytes,
            self.offered_rate().map_or("max".into(), |r| format!("{r:.0}")),
            format_thousands(self.throughput),
            self.fraction_of_verify_bound().map_or("—".into(), |f| format!("{:.1}%", f * 100.0)),
            ms(l.p50),
            ms(l.p95),
            ms(l.p99),
            ms(l.p999),
            ms(l.max),
            ms(i.ack_latencies.p50),
            ms(i.ack_latencies.p99),
            opt(a.longest_gap.map(|g| ms(g.duration)), 0),
            self.not_acked(),
            a.lost.len(),
            a.duplicated.len(),
            opt(self.orderer_cpu_us_per_tx(), 1),
            opt(self.peak_rss_mib(), 0),
        )
    }

    /// Appends this run's row to a markdown table, starting it with a header if it is new.
    pub fn append_row(&self, path: &Path) -> anyhow::Result<()> {
        let new = !path.exists() || std::fs::metadata(path).map_or(true, |m| m.len() == 0);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        if new {
            file.write_all(Self::TABLE_HEADER.as_bytes())?;
        }
        file.write_all(self.table_row().as_bytes())?;
        Ok(())
    }
}

/// `12345.6` → `12,346`.
fn format_thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::format_thousands;

    #[test]
    fn thousands_separators() {
        assert_eq!(format_thousands(0.4), "0");
        assert_eq!(format_thousands(999.0), "999");
        assert_eq!(format_thousands(12345.6), "12,346");
        assert_eq!(format_thousands(1234567.0), "1,234,567");
    }
}
