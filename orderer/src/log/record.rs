//! The on-disk record format.
//!
//! A segment's `.log` file is a plain concatenation of frames, one per record.
//! All integers are big-endian:
//!
//! ```text
//! +------------+------------+------------+------------------+-----------------+
//! | length u32 | crc32c u32 | offset u64 | timestamp_ms i64 | payload bytes   |
//! +------------+------------+------------+------------------+-----------------+
//!               \___________________ `length` bytes ______________________/
//!                            \_______________ covered by crc32c _____________/
//! ```
//!
//! * `length` counts every byte after the length field itself, so a reader can
//!   step from frame to frame without decoding payloads. Its minimum is 20 (an
//!   empty payload).
//! * `crc32c` (Castagnoli) covers offset, timestamp and payload, so a torn write
//!   or a flipped bit anywhere after the length field is detected. A corrupted
//!   length field is caught either because the frame then runs past the end of
//!   the file, or because the CRC no longer matches the bytes it now spans.
//! * `offset` is stored in every record so that scans can check contiguity and
//!   an index entry pointing at the wrong frame is noticed instead of serving
//!   the wrong record.

use bytes::Bytes;

/// Size of the `length` field that starts every frame.
pub(super) const LENGTH_FIELD_LEN: usize = 4;
/// Bytes of a frame that are not payload: length, crc, offset, timestamp.
pub(super) const FRAME_OVERHEAD: usize = 4 + 4 + 8 + 8;
/// Smallest legal value of the `length` field (an empty payload).
const MIN_LENGTH: usize = FRAME_OVERHEAD - LENGTH_FIELD_LEN;
/// Largest payload whose frame length still fits the u32 `length` field.
pub(super) const MAX_PAYLOAD_LEN: usize = u32::MAX as usize - MIN_LENGTH;

/// One record of the log: an opaque payload stamped with its offset and the
/// wall-clock time (milliseconds since the Unix epoch) it was appended at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub timestamp_ms: i64,
    pub payload: Bytes,
}

/// Total encoded size of a frame carrying `payload_len` bytes, or `None` if
/// the payload is too large for the format.
pub(super) fn frame_len_for(payload_len: usize) -> Option<usize> {
    (payload_len <= MAX_PAYLOAD_LEN).then(|| FRAME_OVERHEAD + payload_len)
}

/// Appends the frame for one record to `out`. The caller must have checked
/// the payload size with [`frame_len_for`].
pub(super) fn encode(out: &mut Vec<u8>, offset: u64, timestamp_ms: i64, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_PAYLOAD_LEN);
    let length = (MIN_LENGTH + payload.len()) as u32;
    let start = out.len();
    out.extend_from_slice(&length.to_be_bytes());
    // Placeholder for the CRC, filled in once the covered bytes are in place.
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

/// Total frame size (including the length field) announced by a frame's
/// first four bytes.
pub(super) fn frame_len(length_field: [u8; LENGTH_FIELD_LEN]) -> Result<usize, String> {
    let length = u32::from_be_bytes(length_field) as usize;
    if length < MIN_LENGTH {
        return Err(format!(
            "length field {length} is below the minimum of {MIN_LENGTH}"
        ));
    }
    Ok(LENGTH_FIELD_LEN + length)
}

/// Decodes one complete frame, verifying its length and CRC. The payload
/// shares `frame`'s buffer (no copy).
pub(super) fn decode(frame: Bytes) -> Result<Record, String> {
    if frame.len() < FRAME_OVERHEAD {
        return Err(format!("frame of {} bytes is too short", frame.len()));
    }
    let announced = frame_len(array(&frame[0..4]))?;
    if announced != frame.len() {
        return Err(format!(
            "length field announces {announced} bytes but the frame has {}",
            frame.len()
        ));
    }
    let stored_crc = u32::from_be_bytes(array(&frame[4..8]));
    let actual_crc = crc32c::crc32c(&frame[8..]);
    if stored_crc != actual_crc {
        return Err(format!(
            "crc mismatch: stored {stored_crc:#010x}, computed {actual_crc:#010x}"
        ));
    }
    Ok(Record {
        offset: u64::from_be_bytes(array(&frame[8..16])),
        timestamp_ms: i64::from_be_bytes(array(&frame[16..24])),
        payload: frame.slice(FRAME_OVERHEAD..),
    })
}

/// Copies a slice of exactly `N` bytes into an array (callers slice with
/// constant ranges after checking the length).
pub(super) fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(offset: u64, ts: i64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, offset, ts, payload);
        out
    }

    #[test]
    fn round_trip() {
        let bytes = encoded(42, -7, b"hello");
        assert_eq!(Some(bytes.len()), frame_len_for(5));
        assert_eq!(
            frame_len([bytes[0], bytes[1], bytes[2], bytes[3]]),
            Ok(bytes.len())
        );
        let record = decode(Bytes::from(bytes)).expect("decodes");
        assert_eq!(record.offset, 42);
        assert_eq!(record.timestamp_ms, -7);
        assert_eq!(&record.payload[..], b"hello");
    }

    #[test]
    fn empty_payload_round_trips() {
        let bytes = encoded(0, 0, b"");
        assert_eq!(bytes.len(), FRAME_OVERHEAD);
        let record = decode(Bytes::from(bytes)).expect("decodes");
        assert!(record.payload.is_empty());
    }

    #[test]
    fn layout_is_as_documented() {
        let bytes = encoded(1, 2, b"xy");
        assert_eq!(&bytes[0..4], &22u32.to_be_bytes());
        assert_eq!(&bytes[4..8], &crc32c::crc32c(&bytes[8..]).to_be_bytes());
        assert_eq!(&bytes[8..16], &1u64.to_be_bytes());
        assert_eq!(&bytes[16..24], &2i64.to_be_bytes());
        assert_eq!(&bytes[24..], b"xy");
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let clean = encoded(9, 1234, b"payload bytes");
        for i in 0..clean.len() {
            let mut bytes = clean.clone();
            bytes[i] ^= 0x10;
            assert!(
                decode(Bytes::from(bytes)).is_err(),
                "flip at byte {i} undetected"
            );
        }
    }

    #[test]
    fn short_length_is_rejected() {
        assert!(frame_len(3u32.to_be_bytes()).is_err());
    }
}
