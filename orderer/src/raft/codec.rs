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
}
