//! The frame codec: how one entry is laid out in a store file.
//!
//! A store file is a plain concatenation of frames, one per entry. All integers are big-endian:
//!
//! ```text
//! +------------+------------+------------+-----------------+
//! | length u32 | crc32c u32 | number u64 | body bytes      |
//! +------------+------------+------------+-----------------+
//!               \__________ `length` bytes ______________/
//!                            \___ covered by crc32c _____/
//! ```
//!
//! * `length` counts every byte after the length field itself, so a reader can step from frame
//!   to frame without looking at bodies. Its minimum is 12 (an empty body).
//! * `crc32c` (Castagnoli) covers number and body, so a torn write or a flipped bit anywhere after
//!   the length field is detected. A corrupted length field is caught either because the frame
//!   then runs past the end of the file, or because the CRC no longer matches the bytes it spans.
//! * `number` is the entry's place in the store (a log offset, a block number). It is stored in
//!   every frame so that scans check contiguity, an index entry pointing at the wrong frame is
//!   noticed instead of serving the wrong entry, and recovery can tell a plausible frame from
//!   random bytes without hashing them.
//!
//! What a body means is the caller's business.

use bytes::Bytes;

/// Size of the `length` field that starts every frame.
pub(super) const LENGTH_FIELD_LEN: usize = 4;
/// Bytes of a frame that are not body: length, crc, number.
pub const FRAME_OVERHEAD: usize = 4 + 4 + 8;
/// Smallest legal value of the `length` field (an empty body).
const MIN_LENGTH: usize = FRAME_OVERHEAD - LENGTH_FIELD_LEN;
/// Largest body whose frame length still fits the u32 `length` field.
const MAX_BODY_LEN: usize = u32::MAX as usize - MIN_LENGTH;

/// One entry of a store: an opaque body at its number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub number: u64,
    pub body: Bytes,
}

/// Total encoded size of a frame carrying `body_len` bytes, or `None` if the body is too large
/// for the format.
pub fn frame_len_for(body_len: usize) -> Option<usize> {
    (body_len <= MAX_BODY_LEN).then(|| FRAME_OVERHEAD + body_len)
}

/// Appends the frame for one entry to `out`; the body is given in parts (a caller's own header
/// and its payload), so it needs no copy of its own. The caller must have checked the size with
/// [`frame_len_for`].
pub fn encode(out: &mut Vec<u8>, number: u64, body: &[&[u8]]) {
    let body_len: usize = body.iter().map(|part| part.len()).sum();
    debug_assert!(body_len <= MAX_BODY_LEN);
    let length = (MIN_LENGTH + body_len) as u32;
    let start = out.len();
    out.extend_from_slice(&length.to_be_bytes());
    // Placeholder for the CRC, filled in once the covered bytes are in place.
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&number.to_be_bytes());
    for part in body {
        out.extend_from_slice(part);
    }
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

/// Total frame size (including the length field) announced by a frame's first four bytes.
pub(super) fn frame_len(length_field: [u8; LENGTH_FIELD_LEN]) -> Result<usize, String> {
    let length = u32::from_be_bytes(length_field) as usize;
    if length < MIN_LENGTH {
        return Err(format!(
            "length field {length} is below the minimum of {MIN_LENGTH}"
        ));
    }
    Ok(LENGTH_FIELD_LEN + length)
}

/// The number a frame header claims, read before its checksum is checked.
pub(super) fn announced_number(header: &[u8; FRAME_OVERHEAD]) -> u64 {
    u64::from_be_bytes(array(&header[8..16]))
}

/// The checksum a frame header claims.
pub(super) fn stored_crc(header: &[u8; FRAME_OVERHEAD]) -> u32 {
    u32::from_be_bytes(array(&header[4..8]))
}

/// Decodes one complete frame, verifying its length and CRC. The body shares `frame`'s buffer
/// (no copy).
pub(super) fn decode(frame: Bytes) -> Result<Entry, String> {
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
    Ok(Entry {
        number: u64::from_be_bytes(array(&frame[8..16])),
        body: frame.slice(FRAME_OVERHEAD..),
    })
}

/// Copies a slice of exactly `N` bytes into an array (callers slice with constant ranges after
/// checking the length, so the copy cannot fail).
pub(super) fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(number: u64, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, number, &[body]);
        out
    }

    #[test]
    fn round_trip() {
        let bytes = encoded(42, b"hello");
        assert_eq!(Some(bytes.len()), frame_len_for(5));
        assert_eq!(
            frame_len([bytes[0], bytes[1], bytes[2], bytes[3]]),
            Ok(bytes.len())
        );
        let entry = decode(Bytes::from(bytes)).expect("decodes");
        assert_eq!(entry.number, 42);
        assert_eq!(&entry.body[..], b"hello");
    }

    #[test]
    fn body_parts_are_concatenated() {
        let mut parts = Vec::new();
        encode(&mut parts, 7, &[b"he", b"", b"llo"]);
        assert_eq!(parts, encoded(7, b"hello"));
    }

    #[test]
    fn empty_body_round_trips() {
        let bytes = encoded(0, b"");
        assert_eq!(bytes.len(), FRAME_OVERHEAD);
        let entry = decode(Bytes::from(bytes)).expect("decodes");
        assert!(entry.body.is_empty());
    }

    #[test]
    fn layout_is_as_documented() {
        let bytes = encoded(1, b"xy");
        assert_eq!(&bytes[0..4], &14u32.to_be_bytes());
        assert_eq!(&bytes[4..8], &crc32c::crc32c(&bytes[8..]).to_be_bytes());
        assert_eq!(&bytes[8..16], &1u64.to_be_bytes());
        assert_eq!(&bytes[16..], b"xy");
        let header = array(&bytes[..FRAME_OVERHEAD]);
        assert_eq!(announced_number(&header), 1);
        assert_eq!(stored_crc(&header), crc32c::crc32c(&bytes[8..]));
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let clean = encoded(9, b"payload bytes");
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
        assert!(frame_len(11u32.to_be_bytes()).is_err());
    }
}
