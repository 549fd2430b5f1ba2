//! What the orderer writes into a channel's log partition. The log stores opaque records; this
//! module gives them meaning. A record is one tag byte and a body:
//!
//! | tag | body                                        | meaning                                |
//! |-----|---------------------------------------------|----------------------------------------|
//! | 4   | config sequence (u64 big-endian), canonical | a transaction admitted under that      |
//! |     | `common.Envelope` bytes                     | config, cut by the size/time rules     |
//! | 5   | canonical `common.Envelope` bytes           | a CONFIG envelope, cut into a block    |
//! |     |                                             | alone                                  |
//! | 3   | block number, u64 big-endian                | time-to-cut for that block ("TTC-N")   |
//!
//! A transaction carries the sequence of the configuration it was admitted under, so the
//! assembler checks it again if the configuration changed before it was cut (Fabric's
//! resubmission rule). Tags 1 and 2 were the earlier format's and are not read.

use bytes::{BufMut, Bytes, BytesMut};
use ordo_proto::common::Envelope;
use prost::Message;

const TAG_TIME_TO_CUT: u8 = 3;
const TAG_ENVELOPE: u8 = 4;
const TAG_CONFIG: u8 = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Canonical envelope bytes, exactly what goes into `BlockData.data`, and the sequence of
    /// the configuration it was admitted under.
    Envelope {
        sequence: u64,
        envelope: Bytes,
    },
    /// A CONFIG envelope's canonical bytes.
    Config(Bytes),
    TimeToCut(u64),
}

impl Entry {
    /// The record for an envelope, in its canonical encoding: `Envelope { payload, signature }`
    /// with the payload bytes as received, so its signature still verifies.
    pub fn encode_envelope(envelope: &Envelope, sequence: u64) -> Bytes {
        let mut buf = BytesMut::with_capacity(9 + envelope.encoded_len());
        buf.put_u8(TAG_ENVELOPE);
        buf.put_u64(sequence);
        Self::put_canonical(&mut buf, envelope);
        buf.freeze()
    }

    /// The record of a CONFIG envelope.
    pub fn encode_config(envelope: &Envelope) -> Bytes {
        let mut buf = BytesMut::with_capacity(1 + envelope.encoded_len());
        buf.put_u8(TAG_CONFIG);
        Self::put_canonical(&mut buf, envelope);
        buf.freeze()
    }

    fn put_canonical(buf: &mut BytesMut, envelope: &Envelope) {
        let canonical = Envelope {
            payload: envelope.payload.clone(),
            signature: envelope.signature.clone(),
        };
        // Cannot fail: BytesMut grows as needed.
        canonical.encode(buf).expect("BytesMut grows as needed");
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
            TAG_ENVELOPE if body.len() >= 8 => Some(Entry::Envelope {
                sequence: u64::from_be_bytes(body[..8].try_into().ok()?),
                envelope: record.slice(9..),
            }),
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
        let rec = Entry::encode_envelope(&env, 7);
        assert_eq!(
            Entry::decode(&rec),
            Some(Entry::Envelope {
                sequence: 7,
                envelope: env.encode_to_vec().into()
            })
        );
        let rec = Entry::encode_config(&env);
        assert_eq!(
            Entry::decode(&rec),
            Some(Entry::Config(env.encode_to_vec().into()))
        );
        assert_eq!(Entry::decode(&Bytes::from_static(&[4, 0, 0])), None);
        assert_eq!(Entry::decode(&Bytes::from_static(&[1, 0])), None);
        let rec = Entry::encode_time_to_cut(42);
        assert_eq!(Entry::decode(&rec), Some(Entry::TimeToCut(42)));
        assert_eq!(Entry::decode(&Bytes::from_static(&[3, 1])), None);
        assert_eq!(Entry::decode(&Bytes::from_static(&[9])), None);
        assert_eq!(Entry::decode(&Bytes::new()), None);
    }
}
