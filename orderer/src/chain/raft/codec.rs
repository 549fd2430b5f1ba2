//! Ordo's binary encoding of a Raft log entry, used both on disk (an entry is the payload of the
//! partition record at offset = its Raft index) and on the wire (AppendEntries).
//!
//! `[kind u8][term u64][leader node u64][index u64][body]`, integers big-endian; the body is the
//! record for a normal entry, empty for a blank one, and JSON for a membership change (rare).

use bytes::{BufMut, Bytes, BytesMut};
use openraft::{CommittedLeaderId, EntryPayload, LogId};

use super::{Entry, NodeId};

const BLANK: u8 = 0;
const NORMAL: u8 = 1;
const MEMBERSHIP: u8 = 2;
const HEADER: usize = 25;

pub fn encode(entry: &Entry) -> Bytes {
    let (kind, body): (u8, Bytes) = match &entry.payload {
        EntryPayload::Blank => (BLANK, Bytes::new()),
        EntryPayload::Normal(record) => (NORMAL, record.clone()),
        EntryPayload::Membership(m) => (
            MEMBERSHIP,
            // Cannot fail: a membership is maps of integers and strings.
            serde_json::to_vec(m).expect("membership serializes").into(),
        ),
    };
    let mut buf = BytesMut::with_capacity(HEADER + body.len());
    buf.put_u8(kind);
    buf.put_u64(entry.log_id.leader_id.term);
    buf.put_u64(entry.log_id.leader_id.node_id);
    buf.put_u64(entry.log_id.index);
    buf.put_slice(&body);
    buf.freeze()
}

pub fn decode(bytes: &Bytes) -> Result<Entry, String> {
    if bytes.len() < HEADER {
        return Err(format!("raft entry of {} bytes is truncated", bytes.len()));
    }
    let word = |at: usize| {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&bytes[at..at + 8]);
        u64::from_be_bytes(raw)
    };
    let log_id = LogId::new(CommittedLeaderId::<NodeId>::new(word(1), word(9)), word(17));
    let body = bytes.slice(HEADER..);
    let payload = match bytes[0] {
        BLANK => EntryPayload::Blank,
        NORMAL => EntryPayload::Normal(body),
        MEMBERSHIP => EntryPayload::Membership(
            serde_json::from_slice(&body).map_err(|e| format!("membership entry: {e}"))?,
        ),
        kind => return Err(format!("unknown raft entry kind {kind}")),
    };
    Ok(Entry { log_id, payload })
}

/// The record of a normal entry, without decoding the rest; `None` for blank and membership.
pub fn record(bytes: &Bytes) -> Option<Bytes> {
    (bytes.len() >= HEADER && bytes[0] == NORMAL).then(|| bytes.slice(HEADER..))
}

/// Records per normal entry, at most: a record's offset is `(raft index << 16) | position`.
pub const MAX_BATCH_RECORDS: usize = 1 << POSITION_BITS;
pub const POSITION_BITS: u32 = 16;

/// The offset of the record at `position` in the entry at `index`.
pub fn offset(index: u64, position: usize) -> u64 {
    (index << POSITION_BITS) | position as u64
}

/// The entry index and position an offset names.
pub fn split_offset(offset: u64) -> (u64, usize) {
    (
        offset >> POSITION_BITS,
        (offset & ((1 << POSITION_BITS) - 1)) as usize,
    )
}

/// A normal entry's data: several records, each `[length u32][bytes]`, so one Raft round (one
/// append, one fsync per replica) commits many records.
pub fn encode_batch(records: &[Bytes]) -> Bytes {
    let size = records.iter().map(|r| 4 + r.len()).sum();
    let mut buf = BytesMut::with_capacity(size);
    for record in records {
        buf.put_u32(record.len() as u32);
        buf.put_slice(record);
    }
    buf.freeze()
}

pub fn decode_batch(data: &Bytes) -> Result<Vec<Bytes>, String> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let Some(header) = data.get(at..at + 4) else {
            return Err("record batch: truncated length".into());
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let end = at + 4 + len;
        if end > data.len() {
            return Err("record batch: truncated record".into());
        }
        records.push(data.slice(at + 4..end));
        at = end;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{BasicNode, Membership};
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn round_trips_every_kind() {
        let log_id = LogId::new(CommittedLeaderId::new(3, 2), 17);
        let nodes = BTreeMap::from([(1, BasicNode::new("a:1")), (2, BasicNode::new("b:2"))]);
        let membership = Membership::new(vec![BTreeSet::from([1, 2])], nodes);
        for payload in [
            EntryPayload::Blank,
            EntryPayload::Normal(Bytes::from_static(b"record")),
            EntryPayload::Membership(membership),
        ] {
            let entry = Entry { log_id, payload };
            let bytes = encode(&entry);
            assert_eq!(decode(&bytes).unwrap(), entry);
        }
        let normal = encode(&Entry {
            log_id,
            payload: EntryPayload::Normal(Bytes::from_static(b"r")),
        });
        assert_eq!(record(&normal), Some(Bytes::from_static(b"r")));
        assert!(decode(&Bytes::from_static(b"short")).is_err());
    }

    #[test]
    fn batches_and_offsets() {
        let records = vec![
            Bytes::from_static(b"a"),
            Bytes::new(),
            Bytes::from_static(b"ccc"),
        ];
        assert_eq!(decode_batch(&encode_batch(&records)).unwrap(), records);
        assert!(decode_batch(&Bytes::from_static(&[0, 0, 0, 9, 1])).is_err());
        assert_eq!(split_offset(offset(7, 3)), (7, 3));
        assert!(offset(7, MAX_BATCH_RECORDS - 1) < offset(8, 0));
    }
}
