#!/usr/bin/env python3
"""Fabric interop client for Ordo.

Talks to an Ordo orderer using only Hyperledger Fabric's published Python bindings
(`hyperledger-fabric-protos`, module `fabric_protos`), the way any Fabric SDK would:

1. Broadcasts one signed ENDORSER_TRANSACTION envelope and requires SUCCESS (200).
2. Broadcasts one envelope with a wrong tx_id on a new stream and requires BAD_REQUEST (400).
3. Delivers the channel from block 0 and reads blocks until the submitted tx_id shows up,
   checking every block on the way: data hash, header hash chain (ASN.1 DER header encoding),
   five metadata slots, the SIGNATURES slot (Metadata -> OrdererBlockMetadata, orderer signatures),
   and that every stored envelope re-parses and is canonically encoded.

Usage:
    fabric_client.py --endpoint HOST:PORT --msp DIR --channel NAME

DIR holds `key.pem` (Ed25519 private key, PKCS#8 PEM) and `mspid` (one line).

On success prints one JSON line describing what was checked and exits 0; on any failure prints
`fabric_client: FAILED: <reason>` to stderr and exits 1.
"""

import argparse
import base64
import hashlib
import json
import os
import sys
import threading
import time

import grpc
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from google.protobuf import timestamp_pb2

from fabric_protos.common import common_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.orderer import ab_pb2, ab_pb2_grpc

# How long to wait for the submitted transaction to be delivered in a block.
DELIVER_TIMEOUT_S = 30.0
# Per-call deadline for the Broadcast exchanges.
BROADCAST_TIMEOUT_S = 15.0
U64_MAX = 2**64 - 1
# common.BlockMetadataIndex has five values: SIGNATURES .. COMMIT_HASH.
METADATA_SLOTS = len(common_pb2.BlockMetadataIndex.values())


class CheckFailed(Exception):
    """A check against the Fabric wire contract failed."""


def require(condition, message):
    if not condition:
        raise CheckFailed(message)


# --------------------------------------------------------------------------------------------
# Identity
# --------------------------------------------------------------------------------------------


class Identity:
    """An Ed25519 client identity loaded from an MSP folder."""

    def __init__(self, msp_dir):
        with open(os.path.join(msp_dir, "key.pem"), "rb") as f:
            pem = f.read()
        key = serialization.load_pem_private_key(pem, password=None)
        require(isinstance(key, Ed25519PrivateKey), f"{msp_dir}/key.pem is not an Ed25519 key")
        with open(os.path.join(msp_dir, "mspid"), encoding="utf-8") as f:
            mspid = f.read().strip()
        require(mspid, f"{msp_dir}/mspid is empty")

        self.key = key
        self.mspid = mspid
        public = key.public_key().public_bytes(
            encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
        )
        # The creator carried in every SignatureHeader: msp.SerializedIdentity with the raw
        # 32-byte Ed25519 public key as id_bytes.
        self.creator = identities_pb2.SerializedIdentity(
            mspid=mspid, id_bytes=public
        ).SerializeToString()

    def sign(self, message):
        # Ed25519 signs the whole message, no pre-hashing.
        return self.key.sign(message)


# --------------------------------------------------------------------------------------------
# Envelopes
# --------------------------------------------------------------------------------------------


def compute_tx_id(nonce, creator):
    """Fabric's tx_id: lowercase hex of SHA-256(nonce || creator)."""
    return hashlib.sha256(nonce + creator).hexdigest()


def make_envelope(identity, channel, header_type, data, tx_id=None):
    """Builds and signs an Envelope. Returns (envelope, tx_id actually put in the header).

    `tx_id=None` computes the correct id; any other value is used as is (for bad requests).
    """
    nonce = os.urandom(24)
    if tx_id is None:
        tx_id = compute_tx_id(nonce, identity.creator)

    timestamp = timestamp_pb2.Timestamp()
    timestamp.GetCurrentTime()
    channel_header = common_pb2.ChannelHeader(
        type=header_type,
        version=0,
        timestamp=timestamp,
        channel_id=channel,
        tx_id=tx_id,
        epoch=0,
    )
    signature_header = common_pb2.SignatureHeader(creator=identity.creator, nonce=nonce)
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=signature_header.SerializeToString(),
        ),
        data=data,
    )
    payload_bytes = payload.SerializeToString()
    envelope = common_pb2.Envelope(payload=payload_bytes, signature=identity.sign(payload_bytes))
    return envelope, tx_id


def status_name(status):
    try:
        return f"{common_pb2.Status.Name(status)}({status})"
    except ValueError:
        return f"unknown status {status}"


# --------------------------------------------------------------------------------------------
# Broadcast
# --------------------------------------------------------------------------------------------


def broadcast_one(stub, envelope):
    """Sends one envelope on a new Broadcast stream and returns its BroadcastResponse."""
    responses = stub.Broadcast(iter([envelope]), timeout=BROADCAST_TIMEOUT_S)
    try:
        response = next(responses)
    except StopIteration:
        raise CheckFailed("Broadcast stream ended without a response")
    except grpc.RpcError as e:
        raise CheckFailed(f"Broadcast failed: {e.code()}: {e.details()}")
    finally:
        responses.cancel()
    return response


# --------------------------------------------------------------------------------------------
# Block checks
# --------------------------------------------------------------------------------------------


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
        require(got == expected, f"DER self-test: INTEGER {value} -> {got}, want {expected}")
    require(der_length(200).hex() == "81c8", "DER self-test: length 200")
    require(der_length(300).hex() == "82012c", "DER self-test: length 300")


def check_signatures_metadata(block):
    """The SIGNATURES slot: a Metadata whose value is an OrdererBlockMetadata and whose
    signatures each verify over value || signature_header || header_bytes.
    Returns the number of orderer signatures verified."""
    n = block.header.number
    metadata = common_pb2.Metadata()
    try:
        metadata.ParseFromString(block.metadata.metadata[common_pb2.SIGNATURES])
    except Exception as e:
        raise CheckFailed(f"block {n}: SIGNATURES metadata does not parse as common.Metadata: {e}")
    orderer_metadata = common_pb2.OrdererBlockMetadata()
    try:
        orderer_metadata.ParseFromString(metadata.value)
    except Exception as e:
        raise CheckFailed(
            f"block {n}: SIGNATURES value does not parse as common.OrdererBlockMetadata: {e}"
        )
    # The consenter metadata is itself a marshalled Metadata (Ordo's value inside).
    if orderer_metadata.consenter_metadata:
        try:
            common_pb2.Metadata().ParseFromString(orderer_metadata.consenter_metadata)
        except Exception as e:
            raise CheckFailed(f"block {n}: consenter_metadata is not a common.Metadata: {e}")
    require(
        orderer_metadata.last_config.index <= n,
        f"block {n}: last_config.index {orderer_metadata.last_config.index} is in the future",
    )

    # Blocks cut by the orderer must be signed; verify every signature present.
    if n > 0:
        require(len(metadata.signatures) > 0, f"block {n}: SIGNATURES metadata has no signature")
    hb = header_bytes(block.header)
    for i, sig in enumerate(metadata.signatures):
        sig_header = common_pb2.SignatureHeader()
        sig_header.ParseFromString(sig.signature_header)
        require(len(sig_header.nonce) == 24, f"block {n}: signature {i} nonce is not 24 bytes")
        signer = identities_pb2.SerializedIdentity()
        signer.ParseFromString(sig_header.creator)
        require(
            len(signer.id_bytes) == 32,
            f"block {n}: signature {i} creator is not a raw Ed25519 public key",
        )
        try:
            Ed25519PublicKey.from_public_bytes(signer.id_bytes).verify(
                sig.signature, metadata.value + sig.signature_header + hb
            )
        except InvalidSignature:
            raise CheckFailed(
                f"block {n}: orderer signature {i} (by {signer.mspid}) does not verify "
                "over value || signature_header || header_bytes"
            )
    return len(metadata.signatures)


def check_block(block, previous):
    """Checks one delivered block against its predecessor (None for block 0).
    Returns ({tx_id: envelope bytes} for the envelopes it holds, orderer signatures verified)."""
    n = block.header.number
    expected_number = 0 if previous is None else previous.header.number + 1
    require(n == expected_number, f"expected block {expected_number}, got block {n}")

    # Data hash: SHA-256 of all envelopes, concatenated in order.
    require(
        block.header.data_hash == data_hash(block.data),
        f"block {n}: data_hash {block.header.data_hash.hex()} != "
        f"recomputed {data_hash(block.data).hex()}",
    )
    # Hash chain over the DER-encoded headers.
    if previous is None:
        require(block.header.previous_hash == b"", "block 0: previous_hash is not empty")
    else:
        want = header_hash(previous.header)
        require(
            block.header.previous_hash == want,
            f"block {n}: previous_hash {block.header.previous_hash.hex()} != "
            f"hash of block {n - 1}'s header {want.hex()}",
        )

    require(
        len(block.metadata.metadata) == METADATA_SLOTS,
        f"block {n}: {len(block.metadata.metadata)} metadata entries, want {METADATA_SLOTS}",
    )
    signatures = check_signatures_metadata(block)

    # Every stored transaction must be a canonical Envelope that re-parses down to its header.
    txs = {}
    for i, raw in enumerate(block.data.data):
        envelope = common_pb2.Envelope()
        envelope.ParseFromString(raw)
        require(
            envelope.SerializeToString() == raw,
            f"block {n} tx {i}: stored Envelope is not canonically encoded",
        )
        require(envelope.payload and envelope.signature, f"block {n} tx {i}: empty payload or signature")
        payload = common_pb2.Payload()
        payload.ParseFromString(envelope.payload)
        channel_header = common_pb2.ChannelHeader()
        channel_header.ParseFromString(payload.header.channel_header)
        txs[channel_header.tx_id] = raw
    return txs, signatures


# --------------------------------------------------------------------------------------------
# Deliver
# --------------------------------------------------------------------------------------------


def deliver_until(stub, identity, channel, tx_id):
    """Delivers from block 0 (stop: block u64 max, BLOCK_UNTIL_READY) until a block holding
    `tx_id` arrives. Returns (blocks checked, orderer signatures verified, number of the block
    holding tx_id, its envelope bytes)."""
    seek_info = ab_pb2.SeekInfo(
        start=ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=0)),
        stop=ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=U64_MAX)),
        behavior=ab_pb2.SeekInfo.BLOCK_UNTIL_READY,
    )
    request, _ = make_envelope(
        identity, channel, common_pb2.DELIVER_SEEK_INFO, seek_info.SerializeToString()
    )

    # Keep our side of the stream open until we are done (a half-close is not a cancel, but an
    # open request stream is how Fabric clients behave).
    done = threading.Event()

    def requests():
        yield request
        done.wait()

    responses = stub.Deliver(requests(), timeout=DELIVER_TIMEOUT_S)
    previous = None
    blocks = 0
    signatures = 0
    try:
        for response in responses:
            kind = response.WhichOneof("Type")
            if kind == "status":
                raise CheckFailed(
                    f"Deliver ended with {status_name(response.status)} before tx {tx_id} "
                    f"arrived ({blocks} blocks read)"
                )
            require(kind == "block", "Deliver response with neither block nor status")
            block = response.block
            txs, verified = check_block(block, previous)
            blocks += 1
            signatures += verified
            previous = block
            if tx_id in txs:
                return blocks, signatures, block.header.number, txs[tx_id]
        raise CheckFailed(f"Deliver stream ended before tx {tx_id} arrived ({blocks} blocks read)")
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise CheckFailed(
                f"tx {tx_id} not delivered within {DELIVER_TIMEOUT_S:.0f}s ({blocks} blocks read)"
            )
        raise CheckFailed(f"Deliver failed: {e.code()}: {e.details()}")
    finally:
        done.set()
        responses.cancel()


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def run(args):
    check_der_encoder()
    identity = Identity(args.msp)

    with grpc.insecure_channel(args.endpoint) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=10)
        except grpc.FutureTimeoutError:
            raise CheckFailed(f"cannot connect to {args.endpoint}")
        stub = ab_pb2_grpc.AtomicBroadcastStub(channel)

        # 1. A well-formed transaction must be accepted.
        data = b"hello from fabric_protos " + os.urandom(8).hex().encode()
        envelope, tx_id = make_envelope(
            identity, args.channel, common_pb2.ENDORSER_TRANSACTION, data
        )
        response = broadcast_one(stub, envelope)
        require(
            response.status == common_pb2.SUCCESS,
            f"Broadcast of tx {tx_id}: {status_name(response.status)} {response.info!r}, "
            "want SUCCESS(200)",
        )

        # 2. A transaction whose tx_id does not match SHA-256(nonce || creator) is a bad request.
        bad, _ = make_envelope(
            identity, args.channel, common_pb2.ENDORSER_TRANSACTION, b"bad tx_id", tx_id="0" * 64
        )
        response = broadcast_one(stub, bad)
        require(
            response.status == common_pb2.BAD_REQUEST,
            f"Broadcast with a wrong tx_id: {status_name(response.status)} {response.info!r}, "
            "want BAD_REQUEST(400)",
        )

        # 3. Read the chain until our transaction is in it, checking every block.
        blocks, signatures, found_in, stored = deliver_until(stub, identity, args.channel, tx_id)

    # The stored envelope is exactly the one we sent: same payload bytes, same signature.
    stored_env = common_pb2.Envelope()
    stored_env.ParseFromString(stored)
    require(stored_env.payload == envelope.payload, f"tx {tx_id}: stored payload differs from sent")
    require(stored_env.signature == envelope.signature, f"tx {tx_id}: stored signature differs")
    payload = common_pb2.Payload()
    payload.ParseFromString(stored_env.payload)
    channel_header = common_pb2.ChannelHeader()
    channel_header.ParseFromString(payload.header.channel_header)
    require(channel_header.tx_id == tx_id, f"stored tx_id {channel_header.tx_id!r} != {tx_id}")
    require(channel_header.channel_id == args.channel, "stored channel_id differs")
    require(channel_header.type == common_pb2.ENDORSER_TRANSACTION, "stored header type differs")
    require(payload.data == data, "stored payload data differs")

    print(
        json.dumps(
            {
                "ok": True,
                "tx_id": tx_id,
                "block": found_in,
                "blocks_read": blocks,
                "orderer_signatures_verified": signatures,
                "bad_request_status": int(common_pb2.BAD_REQUEST),
                "checked": [
                    "broadcast_success",
                    "broadcast_bad_tx_id",
                    "data_hash",
                    "header_hash_chain",
                    "metadata_slots",
                    "signatures_metadata",
                    "orderer_signatures",
                    "canonical_envelopes",
                    "stored_envelope",
                ],
            },
            sort_keys=True,
        ),
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="orderer address, host:port")
    parser.add_argument("--msp", required=True, help="folder with key.pem and mspid")
    parser.add_argument("--channel", required=True, help="channel name")
    args = parser.parse_args()
    started = time.monotonic()
    try:
        run(args)
    except CheckFailed as e:
        print(f"fabric_client: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # anything unexpected is a failure too, with its traceback
        import traceback

        traceback.print_exc()
        print(f"fabric_client: FAILED: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"fabric_client: ok in {time.monotonic() - started:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
