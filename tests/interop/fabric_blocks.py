"""Fabric block hashing, written from Fabric's definitions (FABRIC-WIRE.md), independent of
Ordo's code: the DER encoding of a block header, the header hash and the data hash."""

import hashlib

U64_MAX = 2**64 - 1


def _require(condition, message):
    if not condition:
        raise AssertionError(message)


def der_length(n):
    """DER length octets: short form below 128, else long form with minimal big-endian bytes."""
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_tlv(tag, content):
    return bytes([tag]) + der_length(len(content)) + content


def der_unsigned_integer(value):
    """DER INTEGER of a non-negative value: minimal two's-complement big-endian bytes, so a
    leading 0x00 is added when the top bit would otherwise read as a sign."""
    body = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    if body[0] & 0x80:
        body = b"\x00" + body
    return der_tlv(0x02, body)


def header_bytes(header):
    """ASN.1 DER of SEQUENCE { number INTEGER, previous_hash OCTET STRING, data_hash OCTET STRING }."""
    return der_tlv(
        0x30,
        der_unsigned_integer(header.number)
        + der_tlv(0x04, header.previous_hash)
        + der_tlv(0x04, header.data_hash),
    )


def header_hash(header):
    return hashlib.sha256(header_bytes(header)).digest()


def data_hash(block_data):
    h = hashlib.sha256()
    for entry in block_data.data:
        h.update(entry)
    return h.digest()


def check_der_encoder():
    """Self-test of the DER encoder on known encodings (so a bug here can't hide one in Ordo)."""
    cases = {
        0: "020100",
        1: "020101",
        127: "02017f",
        128: "02020080",
        256: "02020100",
        U64_MAX: "0209" + "00" + "ff" * 8,
    }
    for value, expected in cases.items():
        got = der_unsigned_integer(value).hex()
        _require(got == expected, f"DER self-test: INTEGER {value} -> {got}, want {expected}")
    _require(der_length(200).hex() == "81c8", "DER self-test: length 200")
    _require(der_length(300).hex() == "82012c", "DER self-test: length 300")
