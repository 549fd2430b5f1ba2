//! The newest entries of a Raft log, kept in memory as they were appended. Every entry is read
//! back soon after it is written — by replication to each follower, by openraft to apply it, by
//! the channel's consumer to cut blocks — and serving those reads from here saves a read of the
//! segment file (a copy out of the page cache into a zeroed buffer) for each of them. Older
//! entries, for a follower far behind or a restarted consumer, come from the file.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::log::Record;

/// The newest entries of one log, consecutive by index, up to a bound in bytes (the newest one
/// is kept whatever its size). Shared by its writer and readers.
#[derive(Clone)]
pub struct Tail {
    inner: Arc<Mutex<Entries>>,
    max_bytes: usize,
}

#[derive(Default)]
struct Entries {
    records: VecDeque<Record>,
    bytes: usize,
}

impl Entries {
    fn first(&self) -> Option<u64> {
        self.records.front().map(|r| r.offset)
    }
}

impl Tail {
    /// An empty tail that keeps about `max_bytes` of entries; 0 keeps none.
    pub fn new(max_bytes: usize) -> Tail {
        Tail {
            inner: Default::default(),
            max_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // Every change leaves the deque consistent, so a panic elsewhere cannot break it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `record`, just appended to the log; the oldest entries go past the bound. A
    /// record that does not follow the newest one kept starts the tail afresh.
    pub fn push(&self, record: Record) {
        if self.max_bytes == 0 {
            return;
        }
        let mut tail = self.lock();
        let follows = tail
            .records
            .back()
            .is_none_or(|last| last.offset + 1 == record.offset);
        if !follows {
            tail.records.clear();
            tail.bytes = 0;
        }
        tail.bytes += record.payload.len();
        tail.records.push_back(record);
        while tail.bytes > self.max_bytes && tail.records.len() > 1 {
            if let Some(old) = tail.records.pop_front() {
                tail.bytes -= old.payload.len();
            }
        }
    }

    /// Forgets the entries at or after `index` (the log is truncated there).
    pub fn truncate_from(&self, index: u64) {
        let mut tail = self.lock();
        while tail.records.back().is_some_and(|r| r.offset >= index) {
            if let Some(gone) = tail.records.pop_back() {
                tail.bytes -= gone.payload.len();
            }
        }
    }

    /// The entries from `from` up to `end` (exclusive), about `max_bytes` at most but at least
    /// one, if the tail holds `from`; `None` if it does not (read the file then).
    pub fn read(&self, from: u64, end: u64, max_bytes: usize) -> Option<Vec<Record>> {
        let tail = self.lock();
        let first = tail.first()?;
        let skip = usize::try_from(from.checked_sub(first)?).ok()?;
        if skip >= tail.records.len() || from >= end {
            return None;
        }
        let mut bytes = 0;
        let mut out = Vec::new();
        for record in tail.records.iter().skip(skip) {
            if record.offset >= end || (!out.is_empty() && bytes + record.payload.len() > max_bytes)
            {
                break;
            }
            bytes += record.payload.len();
            out.push(record.clone());
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn record(offset: u64, len: usize) -> Record {
        Record {
            offset,
            timestamp_ms: 0,
            payload: Bytes::from(vec![offset as u8; len]),
        }
    }

    fn offsets(records: Option<Vec<Record>>) -> Option<Vec<u64>> {
        records.map(|r| r.iter().map(|r| r.offset).collect())
    }

    #[test]
    fn serves_what_it_holds_within_the_range_and_byte_budget() {
        let tail = Tail::new(100);
        for i in 5..10 {
            tail.push(record(i, 10));
        }
        assert_eq!(offsets(tail.read(4, 10, 100)), None, "before the tail");
        assert_eq!(offsets(tail.read(10, 20, 100)), None, "past the tail");
        assert_eq!(offsets(tail.read(6, 9, 100)), Some(vec![6, 7, 8]));
        assert_eq!(offsets(tail.read(6, 20, 25)), Some(vec![6, 7]));
        // At least one, whatever its size.
        assert_eq!(offsets(tail.read(7, 20, 1)), Some(vec![7]));
    }

    #[test]
    fn truncation_and_gaps_forget_entries_and_the_bound_evicts_the_oldest() {
        let tail = Tail::new(100);
        for i in 1..=4 {
            tail.push(record(i, 10));
        }
        tail.truncate_from(3);
        assert_eq!(offsets(tail.read(1, 10, 100)), Some(vec![1, 2]));
        tail.push(record(3, 10));
        assert_eq!(offsets(tail.read(1, 10, 100)), Some(vec![1, 2, 3]));
        // A record that does not follow starts afresh.
        tail.push(record(9, 10));
        assert_eq!(offsets(tail.read(1, 10, 100)), None);
        assert_eq!(offsets(tail.read(9, 10, 100)), Some(vec![9]));
        // Past the bound the oldest go, the newest always stays.
        tail.push(record(10, 95));
        assert_eq!(offsets(tail.read(9, 20, usize::MAX)), None);
        assert_eq!(offsets(tail.read(10, 20, usize::MAX)), Some(vec![10]));
        tail.push(record(11, 500));
        assert_eq!(offsets(tail.read(11, 20, usize::MAX)), Some(vec![11]));
        // A bound of 0 keeps nothing.
        let none = Tail::new(0);
        none.push(record(1, 1));
        assert_eq!(offsets(none.read(1, 2, 100)), None);
    }
}
