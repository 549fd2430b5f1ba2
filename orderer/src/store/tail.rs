//! The newest entries of a store, kept in memory as they were appended. What is appended is read
//! back soon after: a Raft log entry by replication to each follower, by openraft to apply it and
//! by the channel's consumer; a block by every Deliver stream following the chain. Serving those
//! reads from here saves, for each of them, a read of the file (a copy out of the page cache into
//! a zeroed buffer, then its checksum). Older entries, for a reader far behind, come from the file.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// What a tail keeps: an entry with its number, of a size in bytes.
pub trait Numbered: Clone {
    fn number(&self) -> u64;
    fn size(&self) -> usize;
}

impl Numbered for super::Entry {
    fn number(&self) -> u64 {
        self.number
    }
    fn size(&self) -> usize {
        self.body.len()
    }
}

/// The newest entries of one store, consecutive by number, up to a bound in bytes (the newest
/// one is kept whatever its size). Shared by its writer and readers.
pub struct Tail<T> {
    inner: Arc<Mutex<Entries<T>>>,
    max_bytes: usize,
}

impl<T> Clone for Tail<T> {
    fn clone(&self) -> Self {
        Tail {
            inner: self.inner.clone(),
            max_bytes: self.max_bytes,
        }
    }
}

struct Entries<T> {
    entries: VecDeque<T>,
    bytes: usize,
}

impl<T: Numbered> Entries<T> {
    fn first(&self) -> Option<u64> {
        self.entries.front().map(T::number)
    }
}

impl<T: Numbered> Tail<T> {
    /// An empty tail that keeps about `max_bytes` of entries; 0 keeps none.
    pub fn new(max_bytes: usize) -> Tail<T> {
        Tail {
            inner: Arc::new(Mutex::new(Entries {
                entries: VecDeque::new(),
                bytes: 0,
            })),
            max_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries<T>> {
        // Every change leaves the deque consistent, so a panic elsewhere cannot break it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `entry`, just appended; the oldest entries go past the bound. An entry that does
    /// not follow the newest one kept starts the tail afresh.
    pub fn push(&self, entry: T) {
        if self.max_bytes == 0 {
            return;
        }
        let mut tail = self.lock();
        let follows = tail
            .entries
            .back()
            .is_none_or(|last| last.number() + 1 == entry.number());
        if !follows {
            tail.entries.clear();
            tail.bytes = 0;
        }
        tail.bytes += entry.size();
        tail.entries.push_back(entry);
        while tail.bytes > self.max_bytes && tail.entries.len() > 1 {
            if let Some(old) = tail.entries.pop_front() {
                tail.bytes -= old.size();
            }
        }
    }

    /// Forgets the entries numbered `number` or above (the store is truncated there).
    pub fn truncate_from(&self, number: u64) {
        let mut tail = self.lock();
        while tail.entries.back().is_some_and(|e| e.number() >= number) {
            if let Some(gone) = tail.entries.pop_back() {
                tail.bytes -= gone.size();
            }
        }
    }

    /// The entries from `from` up to `end` (exclusive), about `max_bytes` at most but at least
    /// one, if the tail holds `from`; `None` if it does not (read the file then).
    pub fn read(&self, from: u64, end: u64, max_bytes: usize) -> Option<Vec<T>> {
        let tail = self.lock();
        let first = tail.first()?;
        let skip = usize::try_from(from.checked_sub(first)?).ok()?;
        if skip >= tail.entries.len() || from >= end {
            return None;
        }
        let mut bytes = 0;
        let mut out = Vec::new();
        for entry in tail.entries.iter().skip(skip) {
            if entry.number() >= end || (!out.is_empty() && bytes + entry.size() > max_bytes) {
                break;
            }
            bytes += entry.size();
            out.push(entry.clone());
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Entry;
    use bytes::Bytes;

    fn record(number: u64, len: usize) -> Entry {
        Entry {
            number,
            body: Bytes::from(vec![number as u8; len]),
        }
    }

    fn offsets(entries: Option<Vec<Entry>>) -> Option<Vec<u64>> {
        entries.map(|e| e.iter().map(|e| e.number).collect())
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
        let none = Tail::<Entry>::new(0);
        none.push(record(1, 1));
        assert_eq!(offsets(none.read(1, 2, 100)), None);
    }
}
