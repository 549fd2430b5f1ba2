//! What a run is measured on: the machine, the orderer processes (CPU time and memory from
//! /proc), and the machine's own Ed25519 verification rate, the bound on any orderer that
//! checks every envelope's signature.

use std::thread;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub kernel: String,
}

impl Machine {
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            cores: thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            kernel,
        }
    }
}

/// A process's CPU time and memory at one moment.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ProcSample {
    /// User + system CPU seconds since the process started.
    pub cpu_seconds: f64,
    pub rss_kib: u64,
    /// Peak resident set size over the process's life (VmHWM).
    pub peak_rss_kib: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`; `None` once the process is gone.
pub fn sample_process(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ticks = cpu_ticks(&stat)?;
    Some(ProcSample {
        cpu_seconds: ticks as f64 / clock_ticks_per_second(),
        rss_kib: status_kib(&status, "VmRSS")?,
        peak_rss_kib: status_kib(&status, "VmHWM")?,
    })
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field 2) is
/// in parentheses and may hold spaces, so fields are counted from its closing parenthesis.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 (state) is the first here
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `Key:  1234 kB` line of `/proc/PID/status`.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Ed25519 verifications per second on every core at once, one by one and in batches.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct VerifyRate {
    pub threads: usize,
    pub message_bytes: usize,
    pub single_per_s: f64,
    pub batch_per_s: f64,
    pub batch_size: usize,
}

const BATCH: usize = 64;

/// Verifies `signed` — (message, signature, key) triples, e.g. the run's own envelopes — on
/// `threads` threads for `seconds` each way: single `verify`, then `verify_batch` of 64.
pub fn verify_rate(
    signed: &[(Vec<u8>, Signature, VerifyingKey)],
    threads: usize,
    seconds: f64,
) -> VerifyRate {
    assert!(!signed.is_empty(), "nothing to verify");
    let threads = threads.max(1);
    let budget = Duration::from_secs_f64(seconds.max(0.01) / 2.0);
    let messages: Vec<&[u8]> = signed.iter().map(|(m, _, _)| m.as_slice()).collect();
    let signatures: Vec<Signature> = signed.iter().map(|(_, s, _)| *s).collect();
    let keys: Vec<VerifyingKey> = signed.iter().map(|(_, _, k)| *k).collect();

    let single = on_all_threads(threads, budget, || {
        for (message, signature, key) in signed {
            assert!(
                key.verify(message, signature).is_ok(),
                "a benchmark signature does not verify"
            );
        }
        signed.len()
    });
    let batch = on_all_threads(threads, budget, || {
        let mut done = 0;
        for start in (0..signed.len()).step_by(BATCH) {
            let end = (start + BATCH).min(signed.len());
            ed25519_dalek::verify_batch(
                &messages[start..end],
                &signatures[start..end],
                &keys[start..end],
            )
            .expect("a benchmark batch does not verify");
            done += end - start;
        }
        done
    });
    VerifyRate {
        threads,
        message_bytes: messages.iter().map(|m| m.len()).sum::<usize>() / messages.len(),
        single_per_s: single,
        batch_per_s: batch,
        batch_size: BATCH,
    }
}

/// Runs `round` (returning the operations it did) on every thread until `budget` has passed;
/// returns operations per second over all threads.
fn on_all_threads(threads: usize, budget: Duration, round: impl Fn() -> usize + Sync) -> f64 {
    let started = Instant::now();
    let total: usize = thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = 0;
                    while started.elapsed() < budget {
                        done += round();
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    });
    total as f64 / started.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn parses_proc_stat_with_spaces_in_the_name() {
        let stat = "4242 (tokio runtime) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 12345 1000000 500 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(325));
        let status = "Name:\torderer\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(204800));
        assert_eq!(status_kib(status, "VmRSS"), Some(102400));
        assert_eq!(status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn samples_this_process() {
        let me = sample_process(std::process::id()).expect("/proc/self");
        assert!(me.rss_kib > 0 && me.peak_rss_kib >= me.rss_kib);
        assert!(sample_process(u32::MAX).is_none());
    }

    #[test]
    fn measures_a_verify_rate() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let signed: Vec<_> = (0..8u8)
            .map(|i| {
                let message = vec![i; 100];
                let signature = key.sign(&message);
                (message, signature, key.verifying_key())
            })
            .collect();
        let rate = verify_rate(&signed, 2, 0.05);
        assert!(rate.single_per_s > 0.0 && rate.batch_per_s > 0.0);
        assert_eq!(rate.message_bytes, 100);
    }
}
