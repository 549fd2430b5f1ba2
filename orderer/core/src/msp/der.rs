//! The few DER shapes the MSP reads and writes itself: the TLV framing, ECDSA signatures
//! (`SEQUENCE { INTEGER r, INTEGER s }`) read the way Go's `encoding/asn1` reads them, and the outer
//! `Certificate` SEQUENCE that sanitising re-assembles around a new signature.

/// One DER element: its tag, its content, and all of its bytes (header included).
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

/// Reads one element with a low tag number and a definite, minimally encoded length (what DER
/// and Go's parser require); returns it and the bytes after it.
pub(crate) fn read_tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    // High tag numbers never occur in the shapes read here.
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        // 0x80 is BER's indefinite length; more than 4 length bytes is nothing sane here.
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        if bytes[0] == 0 {
            return None;
        }
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 {
            return None;
        }
        len
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    let (content, after) = rest.split_at(len);
    Some((
        Tlv {
            tag,
            content,
            raw: &input[..header + len],
        },
        after,
    ))
}

/// Appends a DER element.
pub(crate) fn write_tlv(tag: u8, content: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;

/// An ECDSA signature's two integers as big-endian magnitudes without leading zeros (both > 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EcdsaSig {
    pub r: Vec<u8>,
    pub s: Vec<u8>,
}

/// Reads `SEQUENCE { INTEGER r, INTEGER s }` as Go's `asn1.Unmarshal` does for Fabric: strict DER
/// integers (minimal, non-empty), bytes after the SEQUENCE ignored, extra elements at the end of
/// the SEQUENCE ignored (Go allows them for X.509 extensibility); r and s must be positive.
pub(crate) fn parse_ecdsa_sig(sig: &[u8]) -> Result<EcdsaSig, &'static str> {
    if sig.is_empty() {
        return Err("empty signature");
    }
    let (seq, _trailing) = read_tlv(sig).ok_or("signature is not DER")?;
    if seq.tag != SEQUENCE {
        return Err("signature is not a DER SEQUENCE");
    }
    let (r, rest) = read_tlv(seq.content).ok_or("signature r is not DER")?;
    let (s, _extra) = read_tlv(rest).ok_or("signature s is not DER")?;
    Ok(EcdsaSig {
        r: positive_integer(&r).ok_or("invalid signature, r must be larger than zero")?,
        s: positive_integer(&s).ok_or("invalid signature, s must be larger than zero")?,
    })
}

/// The magnitude of a minimally encoded, strictly positive INTEGER.
fn positive_integer(tlv: &Tlv<'_>) -> Option<Vec<u8>> {
    let c = tlv.content;
    if tlv.tag != INTEGER || c.is_empty() {
        return None;
    }
    // Non-minimal encodings are refused, as Go refuses them.
    if c.len() > 1 && ((c[0] == 0 && c[1] & 0x80 == 0) || (c[0] == 0xff && c[1] & 0x80 != 0)) {
        return None;
    }
    if c[0] & 0x80 != 0 {
        return None; // negative
    }
    let magnitude: Vec<u8> = c.iter().copied().skip_while(|b| *b == 0).collect();
    (!magnitude.is_empty()).then_some(magnitude)
}

fn write_unsigned(magnitude: &[u8], out: &mut Vec<u8>) {
    let trimmed: Vec<u8> = magnitude.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.is_empty() || trimmed[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(&trimmed);
    write_tlv(INTEGER, &content, out);
}

/// Canonical DER of an ECDSA signature.
pub(crate) fn encode_ecdsa_sig(sig: &EcdsaSig) -> Vec<u8> {
    let mut body = Vec::with_capacity(sig.r.len() + sig.s.len() + 6);
    write_unsigned(&sig.r, &mut body);
    write_unsigned(&sig.s, &mut body);
    let mut out = Vec::with_capacity(body.len() + 3);
    write_tlv(SEQUENCE, &body, &mut out);
    out
}

/// Big-endian magnitude comparison (leading zeros ignored).
pub(crate) fn cmp_magnitude(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let a: &[u8] = &a[a.iter().take_while(|x| **x == 0).count()..];
    let b: &[u8] = &b[b.iter().take_while(|x| **x == 0).count()..];
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// `a - b` for big-endian magnitudes with `a >= b`.
pub(crate) fn sub_magnitude(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = a.to_vec();
    let mut borrow = 0i16;
    for i in 0..out.len() {
        let ai = out.len() - 1 - i;
        let bv = if i < b.len() {
            i16::from(b[b.len() - 1 - i])
        } else {
            0
        };
        let mut v = i16::from(out[ai]) - bv - borrow;
        borrow = 0;
        if v < 0 {
            v += 256;
            borrow = 1;
        }
        out[ai] = v as u8;
    }
    out
}

/// `a >> 1` for a big-endian magnitude.
pub(crate) fn half_magnitude(a: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    let mut carry = 0u8;
    for b in a {
        out.push((b >> 1) | carry);
        carry = (b & 1) << 7;
    }
    out
}

/// The three parts of an X.509 `Certificate` SEQUENCE, as their raw bytes.
pub(crate) struct CertParts<'a> {
    pub tbs: &'a [u8],
    pub algorithm: &'a [u8],
    /// The BIT STRING's content after its unused-bits octet.
    pub signature: &'a [u8],
}

pub(crate) fn split_certificate(der: &[u8]) -> Option<CertParts<'_>> {
    let (outer, _) = read_tlv(der)?;
    if outer.tag != SEQUENCE {
        return None;
    }
    let (tbs, rest) = read_tlv(outer.content)?;
    let (algorithm, rest) = read_tlv(rest)?;
    let (signature, _) = read_tlv(rest)?;
    if signature.tag != BIT_STRING || signature.content.first() != Some(&0) {
        return None;
    }
    Some(CertParts {
        tbs: tbs.raw,
        algorithm: algorithm.raw,
        signature: &signature.content[1..],
    })
}

/// The certificate with the same TBSCertificate and algorithm and a new signature value.
pub(crate) fn rebuild_certificate(parts: &CertParts<'_>, signature: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0);
    bits.extend_from_slice(signature);
    let mut body = Vec::with_capacity(parts.tbs.len() + parts.algorithm.len() + bits.len() + 8);
    body.extend_from_slice(parts.tbs);
    body.extend_from_slice(parts.algorithm);
    write_tlv(BIT_STRING, &bits, &mut body);
    let mut out = Vec::with_capacity(body.len() + 5);
    write_tlv(SEQUENCE, &body, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_signatures_read_like_go() {
        let sig = EcdsaSig {
            r: vec![0x80, 1],
            s: vec![5],
        };
        let der = encode_ecdsa_sig(&sig);
        assert_eq!(der, [0x30, 8, 2, 3, 0, 0x80, 1, 2, 1, 5]);
        let mut trailing = der.clone();
        trailing.extend_from_slice(b"junk");
        assert_eq!(parse_ecdsa_sig(&trailing).unwrap(), sig);
        // Non-minimal integer, zero, negative, empty: refused.
        assert!(parse_ecdsa_sig(&[0x30, 7, 2, 2, 0, 1, 2, 1, 5]).is_err());
        assert!(parse_ecdsa_sig(&[0x30, 6, 2, 1, 0, 2, 1, 5]).is_err());
        assert!(parse_ecdsa_sig(&[0x30, 6, 2, 1, 0x81, 2, 1, 5]).is_err());
        assert!(parse_ecdsa_sig(&[]).is_err());
        assert!(parse_ecdsa_sig(&[0x30, 0x80, 2, 1, 1, 2, 1, 5, 0, 0]).is_err());
    }

    #[test]
    fn magnitudes() {
        assert_eq!(sub_magnitude(&[1, 0], &[1]), vec![0, 0xff]);
        assert_eq!(half_magnitude(&[3, 1]), vec![1, 0x80]);
        assert_eq!(cmp_magnitude(&[0, 5], &[5]), std::cmp::Ordering::Equal);
        assert_eq!(cmp_magnitude(&[1, 0], &[0xff]), std::cmp::Ordering::Greater);
    }
}
