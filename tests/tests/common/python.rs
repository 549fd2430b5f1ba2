//! The Python side of the Fabric interop tests: a virtual environment with the pinned packages of
//! `tests/interop/requirements.txt` (Fabric's published bindings `hyperledger-fabric-protos`,
//! `cryptography`, ...), and running the scripts of `tests/interop/` with time limits.
//!
//! Needs `python3` (with `venv`) and access to PyPI the first time; the virtual environment is
//! kept in `<target>/interop-venv` and rebuilt whenever `tests/interop/requirements.txt` changes.
//! Set `ORDO_INTEROP_PYTHON` to use another interpreter for creating it. A missing interpreter or
//! a failed install fails the test: it is never skipped.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// How long creating the venv and installing the pinned packages may take.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(600);

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `tests/interop`: the scripts and their requirements.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// A command's status and both of its outputs, for a failure message.
pub fn describe(what: &str, output: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs a command to completion with a time limit (killing it past the limit) and returns its
/// output whatever its exit status. Panics if it cannot start or runs out of time.
pub async fn output(what: &str, command: &mut tokio::process::Command, limit: Duration) -> Output {
    command
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    tokio::time::timeout(limit, command.output())
        .await
        .unwrap_or_else(|_| panic!("{what}: did not finish within {limit:?}"))
        .unwrap_or_else(|e| panic!("{what}: could not start: {e}"))
}

/// [`output`], panicking with the command's output if it fails.
pub async fn run(what: &str, command: &mut tokio::process::Command, limit: Duration) -> Output {
    let output = output(what, command, limit).await;
    assert!(output.status.success(), "{}", describe(what, &output));
    output
}

/// Holds an exclusive `flock` on a file until dropped (blocking until it is free), so that test
/// binaries run at once do not build the same venv together.
struct Lock(File);

impl Lock {
    fn acquire(path: &Path) -> Lock {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(
            rc,
            0,
            "locking {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        Lock(file)
    }
}

/// The venv's interpreter, with the pinned requirements installed. Reuses the venv when the
/// requirements it was built from (a copy kept inside it) are unchanged; otherwise rebuilds it.
pub async fn python_env() -> PathBuf {
    let requirements_path = interop_dir().join("requirements.txt");
    let requirements = std::fs::read_to_string(&requirements_path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", requirements_path.display()));
    let target = target_dir();
    std::fs::create_dir_all(&target)
        .unwrap_or_else(|e| panic!("creating {}: {e}", target.display()));
    let venv = target.join("interop-venv");
    let python = venv.join("bin").join("python");
    let stamp = venv.join("ordo-requirements.txt");

    let lock_path = target.join("interop-venv.lock");
    let _lock = tokio::task::spawn_blocking(move || Lock::acquire(&lock_path))
        .await
        .expect("waiting for the venv lock");

    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&requirements) {
        return python;
    }

    eprintln!(
        "interop: creating {} and installing {}",
        venv.display(),
        requirements_path.display()
    );
    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .unwrap_or_else(|e| panic!("removing stale {}: {e}", venv.display()));
    }
    let base = std::env::var("ORDO_INTEROP_PYTHON").unwrap_or_else(|_| "python3".into());
    run(
        "creating the interop venv (python3 -m venv)",
        tokio::process::Command::new(&base)
            .arg("-m")
            .arg("venv")
            .arg(&venv),
        SETUP_TIMEOUT,
    )
    .await;
    run(
        "pip install -r tests/interop/requirements.txt",
        tokio::process::Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "-r",
            ])
            .arg(&requirements_path),
        SETUP_TIMEOUT,
    )
    .await;
    // Only a complete install is recorded, so an interrupted one is redone next time.
    std::fs::write(&stamp, &requirements)
        .unwrap_or_else(|e| panic!("writing {}: {e}", stamp.display()));
    python
}

/// The one JSON line a script prints last on stdout, parsed.
pub fn report(what: &str, output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("{}", describe(&format!("{what} printed nothing"), output)));
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{what}: report is not JSON ({e}): {line}"))
}

/// Field `key` of a script's one-line JSON report.
pub fn json_field<'a>(report: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    report
        .get(key)
        .unwrap_or_else(|| panic!("script report has no {key:?}: {report}"))
}
