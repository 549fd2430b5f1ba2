//! The one source of fixed ports for tests that must name ports up front (scripts that take a
//! base port, a compose file that publishes ports). Everything else binds port 0 and reads the
//! bound address back (the orderer prints it; the cluster proxies hold theirs).
//!
//! A [`PortBlock`] is a run of consecutive loopback ports, below the kernel's ephemeral range
//! (so no port-0 bind anywhere on the machine is handed one), that were free when reserved and
//! are held for the life of the block by an exclusive `flock` on a file named after the block.
//! The lock is per open file, so it keeps apart the tests of one binary (threads) as well as
//! test binaries run one after another or at once; the kernel drops it when the process dies,
//! so a crashed test leaves nothing stale.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// Blocks are carved from here: below Linux's default ephemeral range (32768-60999).
const FIRST: u16 = 20_000;
const END: u16 = 32_000;
/// Every block spans this many ports, whatever the caller needs of it.
pub const BLOCK: u16 = 50;

/// Ports `base..base + BLOCK`, held until dropped.
pub struct PortBlock {
    pub base: u16,
    _lock: File,
}

impl PortBlock {
    /// Reserves a block whose ports are all free now. Panics if none is left.
    pub fn reserve() -> PortBlock {
        let dir = std::env::temp_dir().join("ordo-test-ports");
        std::fs::create_dir_all(&dir).expect("creating the port lock folder");
        let blocks = (END - FIRST) / BLOCK;
        // Start at a different block in each process, so that concurrent binaries rarely
        // contend for the same lock; then try every block in turn.
        let start = (std::process::id() % u32::from(blocks)) as u16;
        for k in 0..blocks {
            let base = FIRST + ((start + k) % blocks) * BLOCK;
            let Some(lock) = try_lock(dir.join(format!("{base}.lock"))) else {
                continue;
            };
            if (base..base + BLOCK).all(free) {
                return PortBlock { base, _lock: lock };
            }
        }
        panic!("no free block of {BLOCK} ports in {FIRST}..{END}");
    }

    /// Port `base + offset`.
    pub fn port(&self, offset: u16) -> u16 {
        assert!(offset < BLOCK, "port {offset} is beyond the block");
        self.base + offset
    }
}

/// The file, exclusively locked by this open file (`None`: someone holds it).
fn try_lock(path: PathBuf) -> Option<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    // SAFETY: flock on a descriptor this function owns.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    locked.then_some(file)
}

/// Whether nothing holds `port` on loopback now.
fn free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_held_at_once_do_not_overlap() {
        let a = PortBlock::reserve();
        let b = PortBlock::reserve();
        assert!(a.base + BLOCK <= b.base || b.base + BLOCK <= a.base);
    }
}
