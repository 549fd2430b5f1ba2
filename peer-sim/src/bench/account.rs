//! Matching submitted transactions to the blocks that delivered them: pure bookkeeping over
//! timestamps, no I/O, so that every rule of the accounting is unit-tested.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::follow::Arrival;
pub use crate::load::{Answer, Sent};

/// The longest stretch with no block delivered: from the start of the load to the first block,
/// or between two consecutive blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    pub duration: Duration,
    /// The block delivered at the end of the gap.
    pub until_block: u64,
    /// When the gap started, from the start of the load.
    pub from_start: Duration,
}

/// What became of the run's transactions.
#[derive(Clone, Debug, Default)]
pub struct Accounting {
    /// Submit → delivered latency of each of our transactions, at its first delivery.
    pub latencies: Vec<Duration>,
    /// Submit → SUCCESS answer of each acknowledged transaction, delivered or not: what a
    /// client waits for before it may forget the envelope.
    pub ack_latencies: Vec<Duration>,
    /// Our transactions found in delivered blocks (each counted once).
    pub delivered: usize,
    /// Envelopes handed to a stream; the rest were never sent.
    pub sent: usize,
    pub acked: usize,
    pub refused: usize,
    pub unanswered: usize,
    /// Acknowledged but in no delivered block: a broken promise.
    pub lost: Vec<String>,
    /// Delivered in more than one block (the verifier refuses such a chain; counted regardless).
    pub duplicated: Vec<String>,
    /// Delivered although not acknowledged (refused, or answered by a stream that then broke).
    pub delivered_unacked: usize,
    /// Transactions in the delivered blocks that this run did not submit.
    pub foreign: usize,
    /// Blocks delivered, and how many of them held our transactions.
    pub blocks: usize,
    pub blocks_with_ours: usize,
    pub first_delivery: Option<Instant>,
    pub last_delivery: Option<Instant>,
    pub longest_gap: Option<Gap>,
    /// Our transactions delivered in each second since the start of the load.
    pub per_second: Vec<u64>,
}

impl Accounting {
    /// Delivered transactions per second, from the start of the load to the last delivery.
    pub fn throughput(&self, start: Instant) -> f64 {
        match self.last_delivery {
            Some(last) if self.delivered > 0 => {
                self.delivered as f64 / last.duration_since(start).as_secs_f64().max(1e-9)
            }
            _ => 0.0,
        }
    }
}

/// Matches `tx_ids[i]`, submitted as `sent[i]` (`None`: never sent), against the blocks in the
/// order they arrived. `start` is when the load began.
pub fn account(
    start: Instant,
    tx_ids: &[String],
    sent: &[Option<Sent>],
    arrivals: &[Arrival],
) -> Accounting {
    assert_eq!(
        tx_ids.len(),
        sent.len(),
        "one submission record per transaction"
    );
    let index: HashMap<&str, usize> = tx_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut out = Accounting {
        blocks: arrivals.len(),
        ..Accounting::default()
    };
    for s in sent.iter().flatten() {
        out.sent += 1;
        match s.answer {
            Answer::Acked => {
                out.acked += 1;
                if let Some(answered) = s.answered_at {
                    out.ack_latencies
                        .push(answered.saturating_duration_since(s.at));
                }
            }
            Answer::Refused(_) => out.refused += 1,
            Answer::Unanswered => out.unanswered += 1,
        }
    }

    let mut delivered = vec![false; tx_ids.len()];
    let mut previous = start;
    for arrival in arrivals {
        let duration = arrival.at.saturating_duration_since(previous);
        if out.longest_gap.is_none_or(|g| duration > g.duration) {
            out.longest_gap = Some(Gap {
                duration,
                until_block: arrival.number,
                from_start: previous.saturating_duration_since(start),
            });
        }
        previous = previous.max(arrival.at);

        let mut ours = 0;
        for tx_id in &arrival.tx_ids {
            let Some(&i) = index.get(tx_id.as_str()) else {
                out.foreign += 1;
                continue;
            };
            if std::mem::replace(&mut delivered[i], true) {
                out.duplicated.push(tx_id.clone());
                continue;
            }
            ours += 1;
            out.delivered += 1;
            match sent[i] {
                Some(s) => {
                    out.latencies
                        .push(arrival.at.saturating_duration_since(s.at));
                    if s.answer != Answer::Acked {
                        out.delivered_unacked += 1;
                    }
                }
                // Ordered without being sent cannot happen; count it as unacknowledged.
                None => out.delivered_unacked += 1,
            }
        }
        if ours > 0 {
            out.blocks_with_ours += 1;
            out.first_delivery.get_or_insert(arrival.at);
            out.last_delivery = Some(arrival.at);
            let second = arrival.at.saturating_duration_since(start).as_secs() as usize;
            if out.per_second.len() <= second {
                out.per_second.resize(second + 1, 0);
            }
            out.per_second[second] += ours;
        }
    }

    out.lost = sent
        .iter()
        .zip(&delivered)
        .enumerate()
        .filter(|(_, (s, &d))| {
            !d && matches!(
                s,
                Some(Sent {
                    answer: Answer::Acked,
                    ..
                })
            )
        })
        .map(|(i, _)| tx_ids[i].clone())
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("tx{i}")).collect()
    }

    fn arrival(start: Instant, ms: u64, number: u64, txs: &[&str]) -> Arrival {
        Arrival {
            number,
            tx_ids: txs.iter().map(|s| s.to_string()).collect(),
            at: start + Duration::from_millis(ms),
        }
    }

    fn sent(start: Instant, ms: u64, answer: Answer) -> Option<Sent> {
        let at = start + Duration::from_millis(ms);
        Some(Sent {
            at,
            answer,
            answered_at: (answer != Answer::Unanswered).then_some(at + Duration::from_millis(5)),
        })
    }

    fn answered(start: Instant, ms: u64, answer: Answer, after_ms: u64) -> Option<Sent> {
        let at = start + Duration::from_millis(ms);
        Some(Sent {
            at,
            answer,
            answered_at: Some(at + Duration::from_millis(after_ms)),
        })
    }

    #[test]
    fn latency_is_submit_to_delivery_of_the_containing_block() {
        let t0 = Instant::now();
        let tx = ids(3);
        let s = vec![
            sent(t0, 0, Answer::Acked),
            sent(t0, 10, Answer::Acked),
            sent(t0, 20, Answer::Acked),
        ];
        // Blocks may arrive in any relation to the answers; only the send time counts.
        let a = vec![
            arrival(t0, 50, 1, &["tx1", "tx0"]),
            arrival(t0, 1250, 2, &["tx2"]),
        ];
        let acc = account(t0, &tx, &s, &a);
        let ms = Duration::from_millis;
        assert_eq!(acc.latencies, vec![ms(40), ms(50), ms(1230)]);
        assert_eq!((acc.delivered, acc.acked, acc.sent), (3, 3, 3));
        assert!(acc.lost.is_empty() && acc.duplicated.is_empty());
        assert_eq!((acc.blocks, acc.blocks_with_ours), (2, 2));
        assert_eq!(acc.per_second, vec![2, 1]);
        assert_eq!(acc.last_delivery, Some(t0 + ms(1250)));
        assert!((acc.throughput(t0) - 3.0 / 1.25).abs() < 1e-9);
    }

    #[test]
    fn acknowledged_but_undelivered_is_lost_and_unacknowledged_is_not() {
        let t0 = Instant::now();
        let tx = ids(5);
        let s = vec![
            sent(t0, 0, Answer::Acked),
            sent(t0, 0, Answer::Acked),
            sent(t0, 0, Answer::Unanswered),
            sent(t0, 0, Answer::Refused(503)),
            None,
        ];
        let a = vec![arrival(t0, 100, 1, &["tx0", "tx2"])];
        let acc = account(t0, &tx, &s, &a);
        assert_eq!(acc.lost, vec!["tx1".to_string()]);
        assert_eq!(acc.delivered, 2);
        assert_eq!(acc.delivered_unacked, 1);
        assert_eq!(
            (acc.acked, acc.refused, acc.unanswered, acc.sent),
            (2, 1, 1, 4)
        );
    }

    #[test]
    fn duplicates_and_foreign_transactions_are_counted_not_timed() {
        let t0 = Instant::now();
        let tx = ids(2);
        let s = vec![sent(t0, 0, Answer::Acked), sent(t0, 0, Answer::Acked)];
        let a = vec![
            arrival(t0, 10, 1, &["tx0", "someone-else"]),
            arrival(t0, 20, 2, &["tx0", "tx1"]),
        ];
        let acc = account(t0, &tx, &s, &a);
        assert_eq!(acc.duplicated, vec!["tx0".to_string()]);
        assert_eq!(acc.foreign, 1);
        assert_eq!(acc.delivered, 2);
        assert_eq!(acc.latencies.len(), 2);
    }

    #[test]
    fn ack_latency_is_submit_to_success_answer_of_acknowledged_envelopes_only() {
        let t0 = Instant::now();
        let tx = ids(5);
        let s = vec![
            answered(t0, 0, Answer::Acked, 30),
            answered(t0, 10, Answer::Acked, 7),
            // Refused and unanswered envelopes have no acknowledgement to time.
            answered(t0, 10, Answer::Refused(503), 2),
            sent(t0, 20, Answer::Unanswered),
            None,
        ];
        // Acknowledged but never delivered still has its acknowledgement latency, and the
        // blocks have no say in it.
        let a = vec![arrival(t0, 900, 1, &["tx1"])];
        let acc = account(t0, &tx, &s, &a);
        let ms = Duration::from_millis;
        assert_eq!(acc.ack_latencies, vec![ms(30), ms(7)]);
        assert_eq!(acc.latencies, vec![ms(890)]);
        assert_eq!(acc.lost, vec!["tx0".to_string()]);
    }

    #[test]
    fn longest_gap_is_between_consecutive_blocks() {
        let t0 = Instant::now();
        let tx = ids(4);
        let s: Vec<_> = (0..4).map(|_| sent(t0, 0, Answer::Acked)).collect();
        let a = vec![
            arrival(t0, 100, 1, &["tx0"]),
            arrival(t0, 200, 2, &["tx1"]),
            // a config block, or one of others' transactions: still a delivered block
            arrival(t0, 300, 3, &[]),
            arrival(t0, 1700, 4, &["tx2"]),
            arrival(t0, 1800, 5, &["tx3"]),
        ];
        let acc = account(t0, &tx, &s, &a);
        let gap = acc.longest_gap.unwrap();
        assert_eq!(gap.duration, Duration::from_millis(1400));
        assert_eq!(gap.until_block, 4);
        assert_eq!(gap.from_start, Duration::from_millis(300));
        assert_eq!((acc.blocks, acc.blocks_with_ours), (5, 4));

        // Before the first block, the wait since the start of the load is the gap.
        let first = account(t0, &tx, &s, &a[..1]);
        assert_eq!(
            first.longest_gap.unwrap().duration,
            Duration::from_millis(100)
        );
        assert_eq!(first.longest_gap.unwrap().from_start, Duration::ZERO);
        assert_eq!(first.lost.len(), 3);
        assert_eq!(account(t0, &tx, &s, &[]).longest_gap, None);
    }
}
