//! The block cutter: Fabric's batch size rules, applied to messages in log order. Pure: no I/O,
//! no clock. Time cuts are decided elsewhere (time-to-cut records) and call [`BlockCutter::cut`].

/// Fabric's `BatchSize`, minus AbsoluteMaxBytes, which limits Broadcast and never cuts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutRules {
    pub max_message_count: u32,
    pub preferred_max_bytes: u32,
}

/// Accumulates a pending batch and says when batches are cut.
#[derive(Debug)]
pub struct BlockCutter<T> {
    rules: CutRules,
    pending: Vec<T>,
    pending_bytes: usize,
}

impl<T> BlockCutter<T> {
    pub fn new(rules: CutRules) -> Self {
        BlockCutter {
            rules,
            pending: Vec::new(),
            pending_bytes: 0,
        }
    }

    /// New rules apply from the next message on (after a config change).
    pub fn set_rules(&mut self, rules: CutRules) {
        self.rules = rules;
    }

    /// Takes the next message, of `size` bytes, and returns the batches it completes (zero, one
    /// or two), in order.
    pub fn ordered(&mut self, message: T, size: usize) -> Vec<Vec<T>> {
        let preferred = self.rules.preferred_max_bytes as usize;
        let mut batches = Vec::new();
        if size > preferred {
            // Too big to share a block: whatever is pending goes first, then it goes alone.
            if !self.pending.is_empty() {
                batches.push(self.cut());
            }
            batches.push(vec![message]);
            return batches;
        }
        if self.pending_bytes + size > preferred {
            batches.push(self.cut());
        }
        self.pending.push(message);
        self.pending_bytes += size;
        if self.pending.len() >= self.rules.max_message_count.max(1) as usize {
            batches.push(self.cut());
        }
        batches
    }

    /// Cuts the pending batch (possibly empty).
    pub fn cut(&mut self) -> Vec<T> {
        self.pending_bytes = 0;
        std::mem::take(&mut self.pending)
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: CutRules = CutRules {
        max_message_count: 3,
        preferred_max_bytes: 100,
    };

    struct Case {
        name: &'static str,
        /// (message id, size) in order
        input: &'static [(u32, usize)],
        /// batches cut, in order, after all input
        cut: &'static [&'static [u32]],
        pending: &'static [u32],
    }

    const CASES: &[Case] = &[
        Case {
            name: "below every limit nothing is cut",
            input: &[(1, 10), (2, 10)],
            cut: &[],
            pending: &[1, 2],
        },
        Case {
            name: "MaxMessageCount cuts when reached",
            input: &[(1, 10), (2, 10), (3, 10), (4, 10)],
            cut: &[&[1, 2, 3]],
            pending: &[4],
        },
        Case {
            name: "a message that would overflow PreferredMaxBytes cuts the pending batch first",
            input: &[(1, 60), (2, 50)],
            cut: &[&[1]],
            pending: &[2],
        },
        Case {
            name: "exactly PreferredMaxBytes does not overflow",
            input: &[(1, 60), (2, 40)],
            cut: &[],
            pending: &[1, 2],
        },
        Case {
            name: "a message over PreferredMaxBytes goes alone, after the pending batch",
            input: &[(1, 10), (2, 101), (3, 10)],
            cut: &[&[1], &[2]],
            pending: &[3],
        },
        Case {
            name: "an oversized message with nothing pending is cut alone",
            input: &[(1, 500)],
            cut: &[&[1]],
            pending: &[],
        },
        Case {
            name: "overflow then count in one message",
            input: &[(1, 90), (2, 5), (3, 50), (4, 5), (5, 5)],
            cut: &[&[1, 2], &[3, 4, 5]],
            pending: &[],
        },
    ];

    #[test]
    fn batch_size_rules() {
        for case in CASES {
            let mut cutter = BlockCutter::new(RULES);
            let mut cut = Vec::new();
            for &(id, size) in case.input {
                cut.extend(cutter.ordered(id, size));
            }
            let expected: Vec<Vec<u32>> = case.cut.iter().map(|b| b.to_vec()).collect();
            assert_eq!(cut, expected, "{}", case.name);
            assert_eq!(
                cutter.has_pending(),
                !case.pending.is_empty(),
                "{}",
                case.name
            );
            assert_eq!(cutter.cut(), case.pending.to_vec(), "{}", case.name);
        }
    }

    #[test]
    fn cut_empties_and_resets_bytes() {
        let mut cutter = BlockCutter::new(RULES);
        assert!(cutter.ordered(1, 90).is_empty());
        assert_eq!(cutter.cut(), vec![1]);
        assert!(!cutter.has_pending());
        // the 90 bytes no longer count
        assert!(cutter.ordered(2, 90).is_empty());
        assert!(cutter.cut().len() == 1);
        assert!(cutter.cut().is_empty());
    }

    #[test]
    fn new_rules_apply_to_later_messages() {
        let mut cutter = BlockCutter::new(RULES);
        cutter.ordered(1, 1);
        cutter.set_rules(CutRules {
            max_message_count: 2,
            preferred_max_bytes: 100,
        });
        assert_eq!(cutter.ordered(2, 1), vec![vec![1, 2]]);
    }
}
