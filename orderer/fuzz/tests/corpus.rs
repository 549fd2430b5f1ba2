//! Every fuzz case over its saved corpus, then over a fixed number of seeded mutations of it:
//! the part of the fuzzing that runs on a stable toolchain, in CI, where libFuzzer (nightly)
//! may not. A case that panics fails the test, with its input saved for `cargo fuzz run`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Mutations of the corpus per target and run: enough to leave the seeds' happy paths, few
/// enough for seconds of CI.
const MUTATIONS: usize = 3000;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("reading a corpus file");
            (path, bytes)
        })
        .collect()
}

/// One of libFuzzer's simpler moves on `input`, which may borrow from `other`.
fn mutate(rng: &mut StdRng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        let len = out.len();
        match rng.gen_range(0..6) {
            0 if len > 0 => {
                let at = rng.gen_range(0..len);
                out[at] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let at = rng.gen_range(0..len);
                out[at] = rng.gen();
            }
            2 => out.truncate(rng.gen_range(0..=len)),
            3 => {
                let at = rng.gen_range(0..=len);
                let extra: Vec<u8> = (0..rng.gen_range(1..16)).map(|_| rng.gen()).collect();
                out.splice(at..at, extra);
            }
            4 if len > 0 => {
                let from = rng.gen_range(0..len);
                let to = rng.gen_range(from..=len);
                out.drain(from..to);
            }
            _ if !other.is_empty() => {
                // Splice: a piece of another input at a random place.
                let from = rng.gen_range(0..other.len());
                let to = rng.gen_range(from..=other.len().min(from + 64));
                let at = rng.gen_range(0..=out.len());
                out.splice(at..at, other[from..to].iter().copied());
            }
            _ => {}
        }
    }
    out
}

/// Runs `case` on `input`; a panic is saved under target/fuzz-failures and fails the test.
fn run(target: &str, case: fn(&[u8]), input: &[u8], what: &str) {
    if catch_unwind(AssertUnwindSafe(|| case(input))).is_ok() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-failures");
    std::fs::create_dir_all(&dir).expect("creating target/fuzz-failures");
    let path = dir.join(format!("{target}-{}", input.len()));
    std::fs::write(&path, input).expect("saving the failing input");
    panic!(
        "fuzz case {target} panicked on {what}; input saved as {}",
        path.display()
    );
}

fn fuzz(target: &str) {
    let case = ordo_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, case)| *case)
        .expect("a known target");
    let seeds = corpus(target);
    assert!(!seeds.is_empty(), "the corpus of {target} is empty");
    for (path, bytes) in &seeds {
        run(target, case, bytes, &path.display().to_string());
    }
    let mut rng = StdRng::seed_from_u64(target.bytes().map(u64::from).sum());
    for k in 0..MUTATIONS {
        let input = &seeds[rng.gen_range(0..seeds.len())].1;
        let other = &seeds[rng.gen_range(0..seeds.len())].1;
        let mutated = mutate(&mut rng, input, other);
        run(target, case, &mutated, &format!("mutation {k}"));
    }
}

#[test]
fn envelope() {
    fuzz("envelope");
}

#[test]
fn config_block() {
    fuzz("config_block");
}

#[test]
fn segment() {
    fuzz("segment");
}

#[test]
fn ledger() {
    fuzz("ledger");
}

/// Every target has its test here and its libFuzzer binary.
#[test]
fn every_target_is_run() {
    let tests = ["envelope", "config_block", "segment", "ledger"];
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("libfuzzer/Cargo.toml"))
            .expect("reading libfuzzer/Cargo.toml");
    for (name, _) in ordo_fuzz::TARGETS {
        assert!(
            tests.contains(name),
            "{name} has no test in tests/corpus.rs"
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{name} has no binary in libfuzzer/Cargo.toml"
        );
    }
}
