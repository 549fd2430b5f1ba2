//! File changes made durable: a directory's entries fsynced, and a torn tail kept in a file of
//! its own before the file it is cut from is truncated, so recovery destroys nothing.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Makes entries created in or removed from `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Copies `file`'s bytes from `from` to `size` into a new file `name` in `dir` (`name.1`,
/// `name.2`, ... if taken: a later crash can tear the file at the same offset again) and makes
/// it durable. Returns its path.
pub fn keep_tail(dir: &Path, name: &str, file: &File, from: u64, size: u64) -> io::Result<PathBuf> {
    let mut path = dir.join(name);
    let mut attempt = 1;
    let mut out = loop {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(out) => break out,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                path = dir.join(format!("{name}.{attempt}"));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    };
    const CHUNK: u64 = 1 << 20;
    let mut buf = vec![0u8; CHUNK.min(size.saturating_sub(from)) as usize];
    let mut at = from;
    while at < size {
        let n = CHUNK.min(size - at) as usize;
        file.read_exact_at(&mut buf[..n], at)?;
        out.write_all(&buf[..n])?;
        at += n as u64;
    }
    out.sync_all()?;
    sync_dir(dir)?;
    Ok(path)
}
