//! What a run is measured on: the machine, the orderer processes (CPU time and memory from
//! /proc), and the machine's own signature verification rates (Ed25519 one by one and batched,
//! ECDSA P-256 one by one): the one of the run's identity's kind bounds any orderer that checks
//! every envelope's signature.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
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

/// A signing identity's key algorithm, as its certificate says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureKind {
    Ed25519,
    EcdsaP256,
    EcdsaP384,
}

impl SignatureKind {
    /// The kind of the key certified by `cert_der`.
    pub fn of_certificate(cert_der: &[u8]) -> anyhow::Result<(SignatureKind, Vec<u8>)> {
        use x509_parser::oid_registry as oids;
        let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
            .map_err(|e| anyhow!("the identity's certificate does not parse: {e}"))?;
        let spki = cert.public_key();
        let alg = &spki.algorithm.algorithm;
        let key = spki.subject_public_key.data.to_vec();
        if *alg == oids::OID_SIG_ED25519 {
            return Ok((SignatureKind::Ed25519, key));
        }
        if *alg == oids::OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            match curve {
                Some(c) if c == oids::OID_EC_P256 => return Ok((SignatureKind::EcdsaP256, key)),
                Some(c) if c == oids::OID_NIST_EC_P384 => {
                    return Ok((SignatureKind::EcdsaP384, key))
                }
                _ => {}
            }
        }
        bail!(
            "the identity's key ({}) is neither Ed25519 nor ECDSA P-256/P-384",
            alg.to_id_string()
        )
    }
}

/// Messages with signatures of each measured kind over them.
pub struct VerifySample {
    /// The run's identity's kind.
    pub kind: SignatureKind,
    pub ed25519: Vec<(Vec<u8>, Signature, VerifyingKey)>,
    /// (message, DER signature over SHA-256 of it, uncompressed public point).
    pub ecdsa_p256: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
}

impl VerifySample {
    /// The envelopes' own signatures for the identity's kind (what the orderer verifies), and the
    /// same payloads signed by a throwaway key of each other measured kind. `cert_der` is the
    /// identity's certificate.
    pub fn new(
        envelopes: &[ordo_proto::common::Envelope],
        cert_der: &[u8],
    ) -> anyhow::Result<VerifySample> {
        if envelopes.is_empty() {
            bail!("no envelope to measure signature verification on");
        }
        let (kind, key) = SignatureKind::of_certificate(cert_der)?;
        let ed25519 = if kind == SignatureKind::Ed25519 {
            let key = VerifyingKey::try_from(key.as_slice())
                .map_err(|e| anyhow!("the identity's Ed25519 key: {e}"))?;
            envelopes
                .iter()
                .map(|env| {
                    let signature = Signature::from_slice(&env.signature)
                        .map_err(|e| anyhow!("an envelope's Ed25519 signature: {e}"))?;
                    Ok((env.payload.to_vec(), signature, key))
                })
                .collect::<anyhow::Result<_>>()?
        } else {
            use ed25519_dalek::Signer as _;
            let signer = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
            envelopes
                .iter()
                .map(|env| {
                    let signature = signer.sign(&env.payload);
                    (env.payload.to_vec(), signature, signer.verifying_key())
                })
                .collect()
        };
        let ecdsa_p256 = if kind == SignatureKind::EcdsaP256 {
            envelopes
                .iter()
                .map(|env| (env.payload.to_vec(), env.signature.to_vec(), key.clone()))
                .collect()
        } else {
            use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
            let rng = ring::rand::SystemRandom::new();
            let alg = &ECDSA_P256_SHA256_ASN1_SIGNING;
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng)
                .map_err(|_| anyhow!("generating a P-256 key"))?;
            let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
                .map_err(|_| anyhow!("reading a generated P-256 key"))?;
            let public = pair.public_key().as_ref().to_vec();
            envelopes
                .iter()
                .map(|env| {
                    let signature = pair
                        .sign(&rng, &env.payload)
                        .map_err(|_| anyhow!("signing with a P-256 key"))?;
                    Ok((
                        env.payload.to_vec(),
                        signature.as_ref().to_vec(),
                        public.clone(),
                    ))
                })
                .collect::<anyhow::Result<_>>()?
        };
        Ok(VerifySample {
            kind,
            ed25519,
            ecdsa_p256,
        })
    }
}

/// Signature verifications per second on every core at once: Ed25519 one by one and in
/// batches, ECDSA P-256 one by one (Fabric verifies ECDSA one signature at a time).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct VerifyRate {
    pub threads: usize,
    pub message_bytes: usize,
    /// The run's identity's signature kind: the orderer verifies one such signature per envelope.
    pub identity_signature: SignatureKind,
    /// One-by-one verifications per second of the identity's kind: the bound on an orderer that
    /// checks every envelope's signature (`None` for a kind not measured, P-384).
    pub bound_per_s: Option<f64>,
    /// Ed25519, one by one.
    pub single_per_s: f64,
    /// Ed25519, in batches of `batch_size`.
    pub batch_per_s: f64,
    pub batch_size: usize,
    /// ECDSA P-256 with SHA-256, DER signatures, one by one.
    pub ecdsa_p256_single_per_s: f64,
}

const BATCH: usize = 64;

/// Verifies `sample` on `threads` threads for `seconds` in all, a third each way: Ed25519
/// single `verify`, Ed25519 `verify_batch` of 64, ECDSA P-256 single.
///
/// The sample's signatures are valid by construction (the run's own, or made just now); one
/// that does not verify would make the figures meaningless, so it panics (caught by the
/// caller's `spawn_blocking`) rather than report them.
pub fn verify_rate(sample: &VerifySample, threads: usize, seconds: f64) -> VerifyRate {
    let threads = threads.max(1);
    let budget = Duration::from_secs_f64(seconds.max(0.01) / 3.0);
    let signed = &sample.ed25519;
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
    let ecdsa = on_all_threads(threads, budget, || {
        use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
        for (message, signature, key) in &sample.ecdsa_p256 {
            assert!(
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key)
                    .verify(message, signature)
                    .is_ok(),
                "a benchmark ECDSA signature does not verify"
            );
        }
        sample.ecdsa_p256.len()
    });
    VerifyRate {
        threads,
        message_bytes: messages.iter().map(|m| m.len()).sum::<usize>() / messages.len().max(1),
        identity_signature: sample.kind,
        bound_per_s: match sample.kind {
            SignatureKind::Ed25519 => Some(single),
            SignatureKind::EcdsaP256 => Some(ecdsa),
            SignatureKind::EcdsaP384 => None,
        },
        single_per_s: single,
        batch_per_s: batch,
        batch_size: BATCH,
        ecdsa_p256_single_per_s: ecdsa,
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
    use ordo_client::{cryptogen, msp_dir};
    use ordo_core::msp::SigningIdentity;

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

    fn sample_for(kind: cryptogen::KeyKind) -> (VerifySample, SigningIdentity) {
        let dir = tempfile::tempdir().unwrap();
        let made = cryptogen::generate(
            dir.path(),
            &[cryptogen::OrgSpec {
                name: "Org1".into(),
                kind: cryptogen::OrgKind::Peer,
                nodes: 0,
                users: 1,
                hosts: vec![],
            }],
            kind,
        )
        .unwrap();
        let signer = msp_dir::signing_identity(&made[0].users[1].join("msp"), "Org1MSP").unwrap();
        let prepared = crate::load::presign(&signer, "ordo", 8, 100, 2);
        let sample = VerifySample::new(&prepared.envelopes, signer.certificate_der()).unwrap();
        (sample, signer)
    }

    #[test]
    fn measures_the_verify_rates_of_both_kinds() {
        for (kind, expected) in [
            (cryptogen::KeyKind::EcdsaP256, SignatureKind::EcdsaP256),
            (cryptogen::KeyKind::Ed25519, SignatureKind::Ed25519),
        ] {
            let (sample, _) = sample_for(kind);
            assert_eq!(sample.kind, expected);
            assert_eq!(sample.ed25519.len(), 8);
            assert_eq!(sample.ecdsa_p256.len(), 8);
            let rate = verify_rate(&sample, 2, 0.06);
            assert!(rate.single_per_s > 0.0 && rate.batch_per_s > 0.0);
            assert!(rate.ecdsa_p256_single_per_s > 0.0);
            assert_eq!(rate.identity_signature, expected);
            let bound = match expected {
                SignatureKind::Ed25519 => rate.single_per_s,
                _ => rate.ecdsa_p256_single_per_s,
            };
            assert_eq!(rate.bound_per_s, Some(bound));
            assert!(rate.message_bytes > 100);
        }
    }

    #[test]
    fn a_sample_needs_envelopes_and_a_certificate() {
        let (_, signer) = sample_for(cryptogen::KeyKind::EcdsaP256);
        assert!(VerifySample::new(&[], signer.certificate_der()).is_err());
        let envelope = ordo_proto::common::Envelope::default();
        let error = VerifySample::new(&[envelope], b"not DER").err().unwrap();
        assert!(
            error.to_string().contains("certificate does not parse"),
            "{error}"
        );
    }
}
