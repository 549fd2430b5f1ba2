//! What a log record is inside a store entry.
//!
//! The entry's number is the record's offset; its body is
//!
//! ```text
//! +------------------+-----------------+
//! | timestamp_ms i64 | payload bytes   |
//! +------------------+-----------------+
//! ```
//!
//! (big-endian), so a record's frame on disk is the store's frame around these bytes (see
//! `store::frame`).

use bytes::Bytes;

use crate::store::{self, Entry};

const TIMESTAMP_LEN: usize = 8;

/// One record of the log: an opaque payload stamped with its offset and the
/// wall-clock time (milliseconds since the Unix epoch) it was appended at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub timestamp_ms: i64,
    pub payload: Bytes,
}

/// A replicated log's newest records are kept in memory by offset.
impl crate::store::Numbered for Record {
    fn number(&self) -> u64 {
        self.offset
    }
    fn size(&self) -> usize {
        self.payload.len()
    }
}

/// Whether a payload of `payload_len` bytes fits the format.
pub(super) fn fits(payload_len: usize) -> bool {
    payload_len
        .checked_add(TIMESTAMP_LEN)
        .and_then(store::frame_len_for)
        .is_some()
}

/// Encoded bytes of a record's frame with a `payload_len`-byte payload: what read budgets count.
#[cfg(test)]
pub(super) fn frame_len(payload_len: usize) -> usize {
    store::FRAME_OVERHEAD + TIMESTAMP_LEN + payload_len
}

/// The entry body's parts for a record (no copy of the payload).
pub(super) fn body<'a>(timestamp: &'a [u8; TIMESTAMP_LEN], payload: &'a [u8]) -> [&'a [u8]; 2] {
    [timestamp, payload]
}

/// The record an entry holds; the payload shares the entry's buffer. Fails if the body is too
/// short to hold a timestamp (a frame the log did not write).
pub(super) fn decode(entry: Entry) -> Result<Record, String> {
    let Some(timestamp) = entry.body.get(..TIMESTAMP_LEN) else {
        return Err(format!(
            "a record body of {} bytes is too short for its timestamp",
            entry.body.len()
        ));
    };
    let mut bytes = [0; TIMESTAMP_LEN];
    bytes.copy_from_slice(timestamp);
    Ok(Record {
        offset: entry.number,
        timestamp_ms: i64::from_be_bytes(bytes),
        payload: entry.body.slice(TIMESTAMP_LEN..),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let timestamp = (-7i64).to_be_bytes();
        let body: Vec<u8> = body(&timestamp, b"hello").concat();
        let record = decode(Entry {
            number: 42,
            body: Bytes::from(body),
        })
        .expect("decodes");
        assert_eq!(record.offset, 42);
        assert_eq!(record.timestamp_ms, -7);
        assert_eq!(&record.payload[..], b"hello");
    }

    #[test]
    fn short_body_is_rejected() {
        let entry = Entry {
            number: 0,
            body: Bytes::from_static(b"1234567"),
        };
        assert!(decode(entry).is_err());
    }

    #[test]
    fn oversized_payload_does_not_fit() {
        assert!(fits(0));
        assert!(!fits(u32::MAX as usize));
    }
}
