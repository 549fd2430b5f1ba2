//! Duplicate suppression: the tx_ids a channel ordered recently, so that an envelope a client
//! resubmits (after a failover, say) is not ordered twice. Pure: no I/O, no clock.
//!
//! The window is counted in whole blocks and moves only when a block is cut, so what it holds is a
//! function of the log alone and every node drops the same envelopes. Its size comes from the
//! channel configuration (`dedup_window_blocks`, 0 = off). After a block `b` is cut, the window
//! holds `k_b = min(k_{b-1} + 1, W_b)` blocks, where `W_b` is the size in force once `b` is
//! written (a config block sets its own). A window that grows therefore fills up with new blocks
//! rather than bringing back forgotten ones; [`TxWindow::rebuild`] follows the same rule, so a
//! node that restarts remembers exactly what it would have without the restart.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};

/// The tx_ids of the last blocks cut (at most the window) and of the pending batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxWindow {
    window: usize,
    /// tx_ids of each remembered block, oldest first.
    blocks: VecDeque<Vec<String>>,
    /// How many remembered blocks hold each tx_id: blocks ordered before suppression was on, or
    /// after an id left the window, may repeat one, and forgetting one block must not forget it.
    remembered: HashMap<String, usize>,
    pending: HashSet<String>,
}

/// What [`TxWindow::rebuild`] needs to know of a block already written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PastBlock {
    /// The window in force once this block was written (for a config block, the one it installs).
    pub window: u32,
    /// The tx_ids of its envelopes, in block order.
    pub tx_ids: Vec<String>,
}

impl TxWindow {
    /// An empty window of `window` blocks.
    pub fn new(window: u32) -> Self {
        TxWindow {
            window: window as usize,
            ..Default::default()
        }
    }

    /// Rebuilds, on restart, the window a node that never stopped would hold before block
    /// `next_block`. `window` is the size in force now; `read(n)` describes block `n`. Only the
    /// blocks the window holds are read, plus at most one that a window of 0 cut off.
    pub fn rebuild<E>(
        window: u32,
        next_block: u64,
        mut read: impl FnMut(u64) -> Result<PastBlock, E>,
    ) -> Result<TxWindow, E> {
        // k = min(next_block, min over past blocks j of W_j + (distance of j from the last
        // block)); only the blocks within the current bound can lower it, and those are the ones
        // the window holds, so one walk back finds both the bound and the contents.
        let mut held = u64::from(window).min(next_block);
        let mut newest_first = Vec::new();
        let mut distance = 0;
        while distance < held {
            let block = read(next_block - 1 - distance)?;
            held = held.min(u64::from(block.window) + distance);
            if distance < held {
                newest_first.push(block.tx_ids);
            }
            distance += 1;
        }
        let mut rebuilt = TxWindow::new(window);
        for tx_ids in newest_first.into_iter().rev() {
            rebuilt.block_cut(tx_ids);
        }
        Ok(rebuilt)
    }

    pub fn window(&self) -> u32 {
        // Cannot truncate: it was set from a u32.
        self.window as u32
    }

    /// Whether `tx_id` was ordered within the window or is in the pending batch. Always false
    /// when suppression is off.
    pub fn contains(&self, tx_id: &str) -> bool {
        self.remembered.contains_key(tx_id) || self.pending.contains(tx_id)
    }

    /// Records a tx_id that joined the pending batch. Ignored when suppression is off.
    pub fn add_pending(&mut self, tx_id: String) {
        if self.window > 0 {
            self.pending.insert(tx_id);
        }
    }

    /// Slides the window by one block: the tx_ids of the block just cut (pending or not) are
    /// remembered, and the oldest block is forgotten if the window is full.
    pub fn block_cut(&mut self, tx_ids: Vec<String>) {
        for tx_id in &tx_ids {
            self.pending.remove(tx_id);
        }
        if self.window == 0 {
            return;
        }
        for tx_id in &tx_ids {
            *self.remembered.entry(tx_id.clone()).or_default() += 1;
        }
        self.blocks.push_back(tx_ids);
        self.trim();
    }

    /// Applies a new window size (a config change). Shrinking forgets the oldest blocks now;
    /// growing keeps what is remembered and lets later blocks fill the window.
    pub fn set_window(&mut self, window: u32) {
        self.window = window as usize;
        if self.window == 0 {
            self.pending.clear();
        }
        self.trim();
    }

    /// Number of blocks remembered.
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }

    fn trim(&mut self) {
        while self.blocks.len() > self.window {
            let Some(oldest) = self.blocks.pop_front() else {
                break;
            };
            for tx_id in oldest {
                if let Entry::Occupied(mut count) = self.remembered.entry(tx_id) {
                    *count.get_mut() -= 1;
                    if *count.get() == 0 {
                        count.remove();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[derive(Clone, Copy)]
    enum Op {
        Pending(&'static str),
        Cut(&'static [&'static str]),
        Window(u32),
    }
    use Op::*;

    struct Case {
        name: &'static str,
        window: u32,
        ops: &'static [Op],
        known: &'static [&'static str],
        unknown: &'static [&'static str],
        blocks: usize,
    }

    const CASES: &[Case] = &[
        Case {
            name: "pending ids are known before their block is cut",
            window: 2,
            ops: &[Pending("a"), Pending("b")],
            known: &["a", "b"],
            unknown: &["c"],
            blocks: 0,
        },
        Case {
            name: "cut ids stay known within the window",
            window: 2,
            ops: &[Pending("a"), Cut(&["a"]), Cut(&["b"])],
            known: &["a", "b"],
            unknown: &[],
            blocks: 2,
        },
        Case {
            name: "the window slides by whole blocks",
            window: 2,
            ops: &[Cut(&["a", "b"]), Cut(&["c"]), Cut(&["d"])],
            known: &["c", "d"],
            unknown: &["a", "b"],
            blocks: 2,
        },
        Case {
            name: "an id in two blocks is kept until both are forgotten",
            window: 2,
            ops: &[Cut(&["a"]), Cut(&["a"]), Cut(&["b"])],
            known: &["a", "b"],
            unknown: &[],
            blocks: 2,
        },
        Case {
            name: "window 0 remembers nothing, pending or cut",
            window: 0,
            ops: &[Pending("a"), Cut(&["a"]), Pending("b")],
            known: &[],
            unknown: &["a", "b"],
            blocks: 0,
        },
        Case {
            name: "shrinking forgets the oldest blocks at once",
            window: 3,
            ops: &[Cut(&["a"]), Cut(&["b"]), Cut(&["c"]), Window(1)],
            known: &["c"],
            unknown: &["a", "b"],
            blocks: 1,
        },
        Case {
            name: "growing fills up with later blocks",
            window: 1,
            ops: &[
                Cut(&["a"]),
                Cut(&["b"]),
                Window(3),
                Cut(&["c"]),
                Cut(&["d"]),
            ],
            known: &["b", "c", "d"],
            unknown: &["a"],
            blocks: 3,
        },
        Case {
            name: "turning suppression off forgets everything",
            window: 2,
            ops: &[Cut(&["a"]), Pending("b"), Window(0)],
            known: &[],
            unknown: &["a", "b"],
            blocks: 0,
        },
    ];

    fn apply(window: &mut TxWindow, op: Op) {
        match op {
            Pending(id) => window.add_pending(id.into()),
            Cut(ids) => window.block_cut(ids.iter().map(|s| s.to_string()).collect()),
            Window(n) => window.set_window(n),
        }
    }

    #[test]
    fn window_rules() {
        for case in CASES {
            let mut window = TxWindow::new(case.window);
            for &op in case.ops {
                apply(&mut window, op);
            }
            for id in case.known {
                assert!(window.contains(id), "{}: {id} should be known", case.name);
            }
            for id in case.unknown {
                assert!(
                    !window.contains(id),
                    "{}: {id} should be unknown",
                    case.name
                );
            }
            assert_eq!(window.blocks(), case.blocks, "{}", case.name);
        }
    }

    /// Window in force after each block, genesis first: growth, shrinking, and turning off and
    /// on again, each from several distances.
    const HISTORIES: &[&[u32]] = &[
        &[3, 3, 3, 3, 3, 3],
        &[0, 0, 2, 2, 2],
        &[1, 1, 1, 4, 4, 4, 4, 4, 4],
        &[5, 5, 5, 5, 5, 5, 5, 2, 2, 2, 6, 6, 6, 6, 6, 6, 6, 6],
        &[4, 4, 4, 0, 4, 4, 4, 4, 4, 1, 3, 3, 3],
        &[2, 2, 9, 9, 9, 9, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9],
    ];

    fn block_tx_ids(number: u64) -> Vec<String> {
        vec![format!("tx{number}a"), format!("tx{number}b")]
    }

    #[test]
    fn rebuild_matches_a_node_that_never_stopped() {
        for history in HISTORIES {
            let mut live = TxWindow::new(history[0]);
            for (number, &window) in history.iter().enumerate() {
                live.set_window(window);
                live.block_cut(block_tx_ids(number as u64));

                let next_block = number as u64 + 1;
                let mut reads = 0;
                let rebuilt = TxWindow::rebuild(window, next_block, |n| {
                    reads += 1;
                    Ok::<_, ()>(PastBlock {
                        window: history[n as usize],
                        tx_ids: block_tx_ids(n),
                    })
                })
                .unwrap();
                assert_eq!(
                    rebuilt, live,
                    "history {history:?}, before block {next_block}"
                );
                assert!(
                    reads <= live.blocks() + 1,
                    "history {history:?}, before block {next_block}: {reads} reads"
                );
            }
        }
    }

    #[test]
    fn rebuild_passes_read_errors_on() {
        let result = TxWindow::rebuild(3, 10, |_| Err::<PastBlock, _>("lost"));
        assert_eq!(result, Err("lost"));
        // Nothing to read when suppression is off.
        let off = TxWindow::rebuild(0, 10, |_| Err::<PastBlock, _>("lost"));
        assert_eq!(off, Ok(TxWindow::new(0)));
    }

    #[test]
    fn tx_id_of_an_envelope() {
        use ordo_proto::common::{Envelope, Payload};
        use prost::Message;

        let ch = crate::testing::TestChannel::new();
        let (env, tx_id) = crate::envelope::build_with_tx_id(
            &ch.client,
            "ch",
            ordo_proto::common::HeaderType::EndorserTransaction,
            Bytes::from_static(b"x"),
        );
        assert_eq!(
            crate::envelope::stored_tx_id(&env.encode_to_vec().into()),
            Some(tx_id)
        );
        assert_eq!(
            crate::envelope::stored_tx_id(&Bytes::from_static(b"\xff")),
            None
        );
        let no_header = Envelope {
            payload: Payload::default().encode_to_vec().into(),
            signature: Bytes::new(),
        };
        assert_eq!(
            crate::envelope::stored_tx_id(&no_header.encode_to_vec().into()),
            None
        );
    }
}
