//! What the orderer writes into a channel's log partition. The log stores opaque records; this
//! module gives them meaning. A record is one tag byte and a body:
//!
//! | tag | body                                   | meaning                                     |
//! |-----|----------------------------------------|---------------------------------------------|
//! | 1   | canonical `common.Envelope` bytes      | a transaction, cut by the size/time rules   |
//! | 2   | canonical `common.Envelope` bytes      | a config envelope, cut into a block alone   |
//! | 3   | block number, u64 big-endian           | time-to-cut for that block ("TTC-N")        |

use bytes::{BufMut, Bytes, BytesMut};
use ordo_proto::common::Envelope;
use prost::Message;

const TAG_ENVELOPE: u8 = 1;
const TAG_CONFIG: u8 = 2;
const TAG_TIME_TO_CUT: u8 = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Canonical envelope bytes, exactly what goes into `BlockData.data`.
    Envelope(Bytes),
    Config(Bytes),
    TimeToCut(u64),
}

impl Entry {
    /// The record for an envelope, in its canonical encoding: `Envelope { payload, signature }`
    /// with the payload bytes as received, so its signature still verifies.
    pub fn encode_envelope(envelope: &Envelope, config: bool) -> Bytes {
        let mut buf = BytesMut::with_capacity(1 + envelope.encoded_len());
        buf.put_u8(if config { TAG_CONFIG } else { TAG_ENVELOPE });
        let canonical = Envelope {
            payload: envelope.payload.clone(),
            signature: envelope.signature.clone(),
        };
        // Cannot fail: the buffer was sized for the message.
        canonical
            .encode(&mut buf)
            .expect("buffer sized by encoded_len");
        buf.freeze()
    }

    pub fn encode_time_to_cut(block_number: u64) -> Bytes {
        let mut buf = BytesMut::with_capacity(9);
        buf.put_u8(TAG_TIME_TO_CUT);
        buf.put_u64(block_number);
        buf.freeze()
    }

    /// Decodes a record's payload; `None` for a record this version does not understand, which
    /// every node then ignores alike.
    pub fn decode(record: &Bytes) -> Option<Entry> {
        let (&tag, body) = record.split_first()?;
        match tag {
            TAG_ENVELOPE => Some(Entry::Envelope(record.slice(1..))),
            TAG_CONFIG => Some(Entry::Config(record.slice(1..))),
            TAG_TIME_TO_CUT => Some(Entry::TimeToCut(u64::from_be_bytes(body.try_into().ok()?))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let env = Envelope {
            payload: Bytes::from_static(b"payload"),
            signature: Bytes::from_static(b"sig"),
        };
        let rec = Entry::encode_envelope(&env, false);
        assert_eq!(
            Entry::decode(&rec),
            Some(Entry::Envelope(env.encode_to_vec().into()))
        );
        let rec = Entry::encode_envelope(&env, true);
        assert!(matches!(Entry::decode(&rec), Some(Entry::Config(_))));
        let rec = Entry::encode_time_to_cut(42);
        assert_eq!(Entry::decode(&rec), Some(Entry::TimeToCut(42)));
        assert_eq!(Entry::decode(&Bytes::from_static(&[3, 1])), None);
        assert_eq!(Entry::decode(&Bytes::from_static(&[9])), None);
        assert_eq!(Entry::decode(&Bytes::new()), None);
    }
}
