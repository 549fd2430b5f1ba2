#!/usr/bin/env python3
"""Fabric channel interop test for Ordo: X.509 MSPs, a Fabric genesis block, policies, CONFIG_UPDATE.

Written only with Fabric's published Python bindings (`hyperledger-fabric-protos`, module
`fabric_protos`) and `cryptography`, never with Ordo's code, so that it catches Ordo's misreadings
of Fabric. Fabric's behaviour it expects is that of hyperledger/fabric v3.1.5 (source files named in
the comments; see also /work/shared/FABRIC-CONFIG.md, "the contract", cited as §N).

Subcommands:

  setup --dir D --port P
      Makes two organisations with their own ECDSA P-256 CAs and NodeOUs (OrdererOrg/OrdererMSP,
      Org1/Org1MSP), their identities, the orderer's local MSP folder in Fabric's layout, a genesis
      block for channel `interop` laid out as configtxgen lays it out, and D/orderer.toml.

  run --dir D --endpoint HOST:PORT
      Against an orderer started on D/orderer.toml: broadcasts good and bad transactions and config
      updates and requires Fabric's status for each; delivers the chain and checks every block the
      way a Fabric 3.x peer does (hash chain, data hash, metadata, orderer signatures under
      /Channel/Orderer/BlockValidation, LAST_CONFIG, the recomputed config of config blocks).

  selftest
      Checks the pure parts of this script (signing and low-S, the DER header, signature and
      certificate checks on blocks signed here, policy encodings, compute_update and the update
      application) without any orderer.

On success each subcommand prints one JSON line and exits 0; on failure it prints
`fabric_channel: FAILED: <reason>` to stderr and exits 1.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import re
import sys
import tempfile
import threading
import time

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID
from google.protobuf import json_format, timestamp_pb2

from fabric_protos.common import common_pb2, configtx_pb2, configuration_pb2, policies_pb2
from fabric_protos.msp import identities_pb2, msp_config_pb2, msp_principal_pb2
from fabric_protos.orderer import ab_pb2, ab_pb2_grpc
from fabric_protos.orderer import configuration_pb2 as orderer_config_pb2

# The block-level helpers are shared with the older interop client (same folder).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fabric_blocks import check_der_encoder, data_hash, header_bytes, header_hash  # noqa: E402

CHANNEL = "interop"
U64_MAX = 2**64 - 1
METADATA_SLOTS = len(common_pb2.BlockMetadataIndex.values())

# Deadlines (seconds). Every network call has one.
CONNECT_TIMEOUT_S = 15.0
BROADCAST_TIMEOUT_S = 15.0
# BatchTimeout is 2s, so a block holding a transaction is due within a few seconds.
DELIVER_TIMEOUT_S = 30.0

# Orders of the NIST curves Fabric knows (bccsp/utils/ecdsa.go: P-224, P-256, P-384, P-521).
CURVE_ORDERS = {
    "secp224r1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFF16A2E0B8F03E13DD29455C5C2A3D,
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
    "secp521r1": int(
        "01FF" + "FFFFFFFF" * 7 + "FFFFFFFA"
        "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
}
NODE_OUS = ("client", "peer", "admin", "orderer")
# msp/cert.go isECDSASignedCert.
ECDSA_SIGNATURE_OIDS = (
    SignatureAlgorithmOID.ECDSA_WITH_SHA1,
    SignatureAlgorithmOID.ECDSA_WITH_SHA256,
    SignatureAlgorithmOID.ECDSA_WITH_SHA384,
    SignatureAlgorithmOID.ECDSA_WITH_SHA512,
)


class CheckFailed(Exception):
    """A check against Fabric's behaviour failed."""


def require(condition, message):
    if not condition:
        raise CheckFailed(message)


def status_name(status):
    if status is None:
        return "no status"
    try:
        return f"{common_pb2.Status.Name(status)}({status})"
    except ValueError:
        return f"unknown status {status}"


# ============================================================================================
# ECDSA signatures the way Fabric makes and checks them (§3.5)
# ============================================================================================


def curve_order(public_key):
    name = public_key.curve.name
    require(name in CURVE_ORDERS, f"curve {name} is not one Fabric knows")
    return CURVE_ORDERS[name]


def sign_low_s(private_key, message):
    """ECDSA over SHA-256(message), DER, with s replaced by n - s when it is high: what Fabric's
    SDKs and bccsp do (bccsp/sw/ecdsa.go signECDSA -> utils.ToLowS)."""
    r, s = decode_dss_signature(private_key.sign(message, ec.ECDSA(hashes.SHA256())))
    n = curve_order(private_key.public_key())
    if s > n // 2:
        s = n - s
    return encode_dss_signature(r, s)


def to_high_s(signature, public_key):
    """The same signature with s replaced by n - s: still valid ECDSA, but Fabric rejects it."""
    r, s = decode_dss_signature(signature)
    n = curve_order(public_key)
    high = n - s if s <= n // 2 else s
    return encode_dss_signature(r, high)


def _der_read(data, offset, tag):
    """One strict-DER TLV with the given tag at data[offset:]: (content, next offset)."""
    require(offset < len(data) and data[offset] == tag, f"DER: expected tag {tag:#x}")
    offset += 1
    require(offset < len(data), "DER: truncated length")
    first = data[offset]
    offset += 1
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        require(0 < count <= 4 and offset + count <= len(data), "DER: bad long length")
        raw = data[offset : offset + count]
        require(raw[0] != 0, "DER: length not minimal")
        length = int.from_bytes(raw, "big")
        require(length >= 0x80, "DER: long form for a short length")
        offset += count
    require(offset + length <= len(data), "DER: content runs past the end")
    return data[offset : offset + length], offset + length


def _der_integer(content):
    require(len(content) > 0, "DER: empty INTEGER")
    if len(content) > 1:
        require(
            not (content[0] == 0x00 and content[1] < 0x80)
            and not (content[0] == 0xFF and content[1] >= 0x80),
            "DER: INTEGER not minimally encoded",
        )
    return int.from_bytes(content, "big", signed=True)


def parse_ecdsa_signature_like_go(signature):
    """Go's encoding/asn1 Unmarshal into SEQUENCE{r, s}: strict DER, bytes after the SEQUENCE
    ignored (bccsp/utils.UnmarshalECDSASignature)."""
    body, _rest_ignored = _der_read(signature, 0, 0x30)
    r_content, offset = _der_read(body, 0, 0x02)
    s_content, offset = _der_read(body, offset, 0x02)
    require(offset == len(body), "DER: trailing data inside the signature SEQUENCE")
    return _der_integer(r_content), _der_integer(s_content)


def fabric_verify(public_key, message, signature):
    """identity.Verify of Fabric 3.x for a leaf key: ECDSA (SHA2 family: SHA-256 of the message,
    whatever the curve; low-S required) or Ed25519 (raw message). Raises CheckFailed."""
    require(signature, "empty signature")
    if isinstance(public_key, Ed25519PublicKey):
        try:
            public_key.verify(signature, message)
        except InvalidSignature:
            raise CheckFailed("Ed25519 signature does not verify")
        return
    require(isinstance(public_key, ec.EllipticCurvePublicKey), "key is neither ECDSA nor Ed25519")
    try:
        r, s = parse_ecdsa_signature_like_go(signature)
    except CheckFailed as e:
        raise CheckFailed(f"ECDSA signature is not DER SEQUENCE{{r, s}}: {e}")
    require(r > 0 and s > 0, "ECDSA signature has r or s <= 0")
    n = curve_order(public_key)
    require(s <= n // 2, "ECDSA signature has a high S (Fabric: 'Invalid S. Must be smaller than half the order')")
    digest_message = message  # cryptography hashes it: SHA-256 of the message, as Fabric's SHA2 family
    try:
        public_key.verify(encode_dss_signature(r, s), digest_message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise CheckFailed("ECDSA signature does not verify")


# ============================================================================================
# X.509 material
# ============================================================================================

PEM_RE = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]*)-----\r?\n((?:[A-Za-z0-9+/=]+\r?\n)*)-----END \1-----(?:\r?\n)?",
)


def pem_decode(data):
    """The first PEM block, like Go's pem.Decode: (type, DER, rest after the block) or None."""
    m = PEM_RE.search(data)
    if not m:
        return None
    try:
        der = base64.b64decode(b"".join(m.group(2).split()), validate=True)
    except Exception:
        return None
    return m.group(1).decode(), der, data[m.end() :]


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def name(org_domain, cn, ou=None):
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "California"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "San Francisco"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_domain),
    ]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def make_ca(org_domain, cn):
    """A self-signed ECDSA P-256 root CA: basic constraints CA (critical), key usage with cert
    sign (critical), Subject Key Identifier (Fabric requires CA=true and an SKI, §3.2 step 4)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = name(org_domain, cn)
    now = utcnow()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_leaf(ca_key, ca_cert, org_domain, cn, ou):
    """A leaf signed by the CA: Subject OU `ou` (the NodeOU), key usage digital signature, no
    EKU (Go would then require serverAuth, §3.3), AKI = the CA's SKI. The CA's ECDSA signature is
    whatever cryptography produced, low or high S (Fabric sanitises, §3.4)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(org_domain, cn, ou))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def cert_signature_is_high_s(cert, issuer):
    r, s = decode_dss_signature(cert.signature)
    return s > curve_order(issuer.public_key()) // 2


# ============================================================================================
# Identities (signing) and the MSPs of a channel config (verifying)
# ============================================================================================


class Identity:
    """An X.509 signing identity: mspid, certificate, ECDSA key."""

    def __init__(self, mspid, cert, key):
        self.mspid = mspid
        self.cert = cert
        self.key = key
        # msp.SerializedIdentity{mspid, id_bytes = PEM certificate} (§3.1).
        self.creator = identities_pb2.SerializedIdentity(
            mspid=mspid, id_bytes=cert_pem(cert)
        ).SerializeToString()

    def sign(self, message):
        return sign_low_s(self.key, message)

    @staticmethod
    def load(msp_dir, mspid):
        """From a Fabric MSP folder: signcerts/cert.pem and keystore/priv_sk (PKCS#8 PEM)."""
        with open(os.path.join(msp_dir, "signcerts", "cert.pem"), "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(os.path.join(msp_dir, "keystore", "priv_sk"), "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        return Identity(mspid, cert, key)


class ChannelMSP:
    """The verifying MSP of one org, as decoded from its MSP value (§3.1-§3.3), enough to
    validate the X.509 identities this test meets."""

    def __init__(self, msp_value_bytes, where):
        mc = msp_config_pb2.MSPConfig()
        mc.ParseFromString(msp_value_bytes)
        require(mc.type == 0, f"{where}: MSP type {mc.type} is not FABRIC(0)")
        fc = msp_config_pb2.FabricMSPConfig()
        fc.ParseFromString(mc.config)
        require(fc.name, f"{where}: MSP has no name")
        require(fc.root_certs, f"{where}: MSP has no root certificates")
        self.name = fc.name
        self.roots = [x509.load_pem_x509_certificate(pem) for pem in fc.root_certs]
        self.intermediates = list(fc.intermediate_certs)
        require(not self.intermediates, f"{where}: intermediates are not used by this test")
        self.node_ous = {}
        if fc.HasField("fabric_node_ous") and fc.fabric_node_ous.enable:
            for role in NODE_OUS:
                field = f"{role}_ou_identifier"
                if fc.fabric_node_ous.HasField(field):
                    self.node_ous[role] = getattr(fc.fabric_node_ous, field).organizational_unit_identifier
        self.config = fc

    def validate(self, serialized):
        """DeserializeIdentity + Validate (§3.3) for a leaf issued directly by a root. Returns
        (certificate, NodeOU role). Raises CheckFailed with Fabric's reason."""
        sid = identities_pb2.SerializedIdentity()
        sid.ParseFromString(serialized)
        require(sid.mspid == self.name, f"identity of MSP {sid.mspid!r}, not {self.name!r}")
        decoded = pem_decode(sid.id_bytes)
        require(decoded is not None, "id_bytes is not PEM")
        pem_type, der, rest = decoded
        # What peers require of a creator (msp IsWellFormed): one block, no trailing bytes, type
        # CERTIFICATE (or empty), canonical DER for an ECDSA certificate signature.
        require(rest == b"", "id_bytes has trailing bytes after the PEM block")
        require(pem_type in ("CERTIFICATE", ""), f"id_bytes PEM type is {pem_type!r}")
        cert = x509.load_der_x509_certificate(der)
        if cert.signature_algorithm_oid in ECDSA_SIGNATURE_OIDS:
            r, s = parse_ecdsa_signature_like_go(cert.signature)
            require(
                encode_dss_signature(r, s) == cert.signature,
                "certificate signature is not canonical DER",
            )
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            require(not bc.ca, "identity certificate is a CA")
        except x509.ExtensionNotFound:
            pass
        pk = cert.public_key()
        require(
            isinstance(pk, (ec.EllipticCurvePublicKey, Ed25519PublicKey)),
            "identity key is neither ECDSA nor Ed25519",
        )
        # The chain: a root of this MSP issued it (name and signature), every certificate valid
        # at leaf.NotBefore + 1s (Go x509.Verify with CurrentTime = NotBefore + 1s).
        at = cert.not_valid_before_utc + datetime.timedelta(seconds=1)
        issuer = None
        for root in self.roots:
            try:
                cert.verify_directly_issued_by(root)
            except (ValueError, InvalidSignature, TypeError):
                continue
            issuer = root
            break
        require(issuer is not None, f"certificate does not chain to a root CA of {self.name}")
        for c in (cert, issuer):
            require(
                c.not_valid_before_utc <= at <= c.not_valid_after_utc,
                f"certificate {c.subject.rfc4514_string()} not valid at the leaf's NotBefore + 1s",
            )
        # NodeOUs: exactly one OU resolves to client, peer, admin or orderer (§3.3 step 8b).
        ous = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
        roles = [role for role, ou in self.node_ous.items() if ou in ous]
        if self.node_ous:
            require(
                len(roles) == 1,
                f"certificate OUs {ous} resolve to {len(roles)} of client/peer/admin/orderer, not 1",
            )
        return cert, (roles[0] if roles else None)


def channel_msps(channel_group, section):
    """mspid -> ChannelMSP for the orgs of /Channel/<section>."""
    result = {}
    for org_name, org in channel_group.groups[section].groups.items():
        require("MSP" in org.values, f"/Channel/{section}/{org_name} has no MSP value")
        msp = ChannelMSP(org.values["MSP"].value, f"/Channel/{section}/{org_name}")
        result[msp.name] = msp
    return result


def verify_orderer_signed(channel_group, serialized_creator, message, signature, what):
    """A signature that /Channel/Orderer/BlockValidation (ANY Writers of the orderer orgs, each
    OR('OrdererMSP.member')) accepts, by the orderer node's identity (NodeOU `orderer`).
    Returns the signer's mspid."""
    sid = identities_pb2.SerializedIdentity()
    try:
        sid.ParseFromString(serialized_creator)
    except Exception as e:
        raise CheckFailed(f"{what}: creator is not a SerializedIdentity: {e}")
    orderer_msps = channel_msps(channel_group, "Orderer")
    require(
        sid.mspid in orderer_msps,
        f"{what}: signed by MSP {sid.mspid!r}, not an orderer org of the channel ({sorted(orderer_msps)})",
    )
    try:
        cert, role = orderer_msps[sid.mspid].validate(serialized_creator)
    except CheckFailed as e:
        raise CheckFailed(f"{what}: signer {sid.mspid} is not a valid member: {e}")
    require(role == "orderer", f"{what}: signer certificate has NodeOU {role!r}, want 'orderer'")
    try:
        fabric_verify(cert.public_key(), message, signature)
    except CheckFailed as e:
        raise CheckFailed(f"{what}: signature by {sid.mspid} does not verify: {e}")
    return sid.mspid


# ============================================================================================
# Policies (§1.3, §4.1)
# ============================================================================================

ROLES = {
    "member": msp_principal_pb2.MSPRole.MEMBER,
    "admin": msp_principal_pb2.MSPRole.ADMIN,
    "client": msp_principal_pb2.MSPRole.CLIENT,
    "peer": msp_principal_pb2.MSPRole.PEER,
    "orderer": msp_principal_pb2.MSPRole.ORDERER,
}


def signature_policy_or(*principals):
    """OR('A.role', ...) exactly as Fabric's policydsl encodes it: NOutOf(1, [SignedBy(i)...]),
    each principal appended to identities (no dedup) as ROLE MSPRole, envelope version 0."""
    identities = []
    rules = []
    for i, principal in enumerate(principals):
        mspid, role = principal.rsplit(".", 1)
        identities.append(
            msp_principal_pb2.MSPPrincipal(
                principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
                principal=msp_principal_pb2.MSPRole(
                    msp_identifier=mspid, role=ROLES[role]
                ).SerializeToString(),
            )
        )
        rules.append(policies_pb2.SignaturePolicy(signed_by=i))
    envelope = policies_pb2.SignaturePolicyEnvelope(
        version=0,
        rule=policies_pb2.SignaturePolicy(
            n_out_of=policies_pb2.SignaturePolicy.NOutOf(n=1, rules=rules)
        ),
        identities=identities,
    )
    return policies_pb2.Policy(
        type=policies_pb2.Policy.SIGNATURE, value=envelope.SerializeToString()
    )


def implicit_meta(rule, sub_policy):
    value = policies_pb2.ImplicitMetaPolicy(
        sub_policy=sub_policy, rule=policies_pb2.ImplicitMetaPolicy.Rule.Value(rule)
    )
    return policies_pb2.Policy(
        type=policies_pb2.Policy.IMPLICIT_META, value=value.SerializeToString()
    )


def config_policy(policy):
    return configtx_pb2.ConfigPolicy(policy=policy, mod_policy="Admins")


def config_value(message):
    return configtx_pb2.ConfigValue(value=message.SerializeToString(), mod_policy="Admins")


def capabilities(*names):
    return configuration_pb2.Capabilities(
        capabilities={n: configuration_pb2.Capability() for n in names}
    )


def standard_policies():
    return {
        "Readers": config_policy(implicit_meta("ANY", "Readers")),
        "Writers": config_policy(implicit_meta("ANY", "Writers")),
        "Admins": config_policy(implicit_meta("MAJORITY", "Admins")),
    }


# ============================================================================================
# The channel config, as configtxgen lays it out (internal/configtxgen/encoder/encoder.go)
# ============================================================================================


def msp_value(mspid, ca_cert, tlsca_cert):
    """msp.MSPConfig{FABRIC, FabricMSPConfig} as msp.GetVerifyingMspConfig reads an org's MSP
    folder (cacerts, tlscacerts, config.yaml with NodeOUs whose Certificate is cacerts/ca.pem)."""
    ca = cert_pem(ca_cert)

    def ou(identifier):
        return msp_config_pb2.FabricOUIdentifier(certificate=ca, organizational_unit_identifier=identifier)

    fabric = msp_config_pb2.FabricMSPConfig(
        name=mspid,
        root_certs=[ca],
        tls_root_certs=[cert_pem(tlsca_cert)],
        crypto_config=msp_config_pb2.FabricCryptoConfig(
            signature_hash_family="SHA2", identity_identifier_hash_function="SHA256"
        ),
        fabric_node_ous=msp_config_pb2.FabricNodeOUs(
            enable=True,
            client_ou_identifier=ou("client"),
            peer_ou_identifier=ou("peer"),
            admin_ou_identifier=ou("admin"),
            orderer_ou_identifier=ou("orderer"),
        ),
    )
    return msp_config_pb2.MSPConfig(type=0, config=fabric.SerializeToString())


def channel_group(orderer_org, app_org, port):
    orderer_org_group = configtx_pb2.ConfigGroup(
        mod_policy="Admins",
        values={
            "MSP": config_value(msp_value(orderer_org["mspid"], orderer_org["ca"], orderer_org["tlsca"])),
            "Endpoints": config_value(configuration_pb2.OrdererAddresses(addresses=[f"127.0.0.1:{port}"])),
        },
        policies={
            "Readers": config_policy(signature_policy_or("OrdererMSP.member")),
            "Writers": config_policy(signature_policy_or("OrdererMSP.member")),
            "Admins": config_policy(signature_policy_or("OrdererMSP.admin")),
        },
    )
    orderer_policies = standard_policies()
    orderer_policies["BlockValidation"] = config_policy(implicit_meta("ANY", "Writers"))
    orderer = configtx_pb2.ConfigGroup(
        mod_policy="Admins",
        groups={orderer_org["group"]: orderer_org_group},
        values={
            "ConsensusType": config_value(orderer_config_pb2.ConsensusType(type="solo", metadata=b"")),
            "BatchSize": config_value(
                orderer_config_pb2.BatchSize(
                    max_message_count=10, absolute_max_bytes=10485760, preferred_max_bytes=2097152
                )
            ),
            "BatchTimeout": config_value(orderer_config_pb2.BatchTimeout(timeout="2s")),
            "ChannelRestrictions": config_value(orderer_config_pb2.ChannelRestrictions(max_count=0)),
            "Capabilities": config_value(capabilities("V2_0")),
        },
        policies=orderer_policies,
    )
    app_org_group = configtx_pb2.ConfigGroup(
        mod_policy="Admins",
        values={"MSP": config_value(msp_value(app_org["mspid"], app_org["ca"], app_org["tlsca"]))},
        policies={
            "Readers": config_policy(signature_policy_or("Org1MSP.admin", "Org1MSP.peer", "Org1MSP.client")),
            "Writers": config_policy(signature_policy_or("Org1MSP.admin", "Org1MSP.client")),
            "Admins": config_policy(signature_policy_or("Org1MSP.admin")),
            "Endorsement": config_policy(signature_policy_or("Org1MSP.peer")),
        },
    )
    app_policies = standard_policies()
    app_policies["Endorsement"] = config_policy(implicit_meta("MAJORITY", "Endorsement"))
    app_policies["LifecycleEndorsement"] = config_policy(implicit_meta("MAJORITY", "Endorsement"))
    application = configtx_pb2.ConfigGroup(
        mod_policy="Admins",
        groups={app_org["group"]: app_org_group},
        values={"Capabilities": config_value(capabilities("V2_5"))},
        policies=app_policies,
    )
    return configtx_pb2.ConfigGroup(
        mod_policy="Admins",
        groups={"Orderer": orderer, "Application": application},
        values={
            "HashingAlgorithm": config_value(configuration_pb2.HashingAlgorithm(name="SHA256")),
            "BlockDataHashingStructure": config_value(
                configuration_pb2.BlockDataHashingStructure(width=4294967295)
            ),
            "Capabilities": config_value(capabilities("V3_0")),
        },
        policies=standard_policies(),
    )


def genesis_block(channel, group):
    """Block 0 as common/genesis/genesis.go writes it (§2.1)."""
    nonce = os.urandom(24)
    timestamp = timestamp_pb2.Timestamp(seconds=int(time.time()), nanos=0)
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.CONFIG,
        version=1,
        timestamp=timestamp,
        channel_id=channel,
        # protoutil.SetTxID: hex SHA-256(nonce || creator), the creator being empty here.
        tx_id=hashlib.sha256(nonce).hexdigest(),
        epoch=0,
    )
    signature_header = common_pb2.SignatureHeader(nonce=nonce)
    config_envelope = configtx_pb2.ConfigEnvelope(
        config=configtx_pb2.Config(sequence=0, channel_group=group)
    )
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=signature_header.SerializeToString(),
        ),
        data=config_envelope.SerializeToString(),
    )
    envelope = common_pb2.Envelope(payload=payload.SerializeToString())  # no signature
    block = common_pb2.Block()
    block.header.number = 0
    block.data.data.append(envelope.SerializeToString())
    block.header.data_hash = data_hash(block.data)
    signed_value = common_pb2.OrdererBlockMetadata()
    signed_value.last_config.SetInParent()  # LastConfig{index 0}: present, encodes as 0a 00
    metadata = [b""] * METADATA_SLOTS
    metadata[common_pb2.SIGNATURES] = common_pb2.Metadata(
        value=signed_value.SerializeToString()
    ).SerializeToString()
    metadata[common_pb2.LAST_CONFIG] = common_pb2.Metadata(
        value=common_pb2.LastConfig(index=0).SerializeToString()
    ).SerializeToString()
    block.metadata.metadata.extend(metadata)
    return block


# ============================================================================================
# configtxlator compute_update (internal/configtxlator/update/update.go), re-implemented
# ============================================================================================


def _map_update(original, updated, same_fields):
    """Policies or values: (read, write, same, members changed)."""
    read, write, same = {}, {}, {}
    members = False
    for key, orig in original.items():
        if key not in updated:
            members = True
            continue
        upd = updated[key]
        if orig.mod_policy == upd.mod_policy and same_fields(orig, upd):
            same[key] = type(orig)(version=orig.version)
            continue
        new = type(orig)()
        new.CopyFrom(upd)
        new.version = orig.version + 1
        write[key] = new
    for key, upd in updated.items():
        if key in original:
            continue
        members = True
        new = type(upd)()
        new.CopyFrom(upd)
        new.version = 0
        write[key] = new
    return read, write, same, members


def _policy_same(a, b):
    return a.HasField("policy") == b.HasField("policy") and a.policy == b.policy


def _value_same(a, b):
    return a.value == b.value


def _groups_update(original, updated):
    read, write, same = {}, {}, {}
    members = False
    for key, orig in original.items():
        if key not in updated:
            members = True
            continue
        group_read, group_write, changed = _group_update(orig, updated[key])
        if not changed:
            same[key] = group_read
            continue
        read[key] = group_read
        write[key] = group_write
    for key, upd in updated.items():
        if key in original:
            continue
        members = True
        _, group_write, _ = _group_update(configtx_pb2.ConfigGroup(), upd)
        write[key] = configtx_pb2.ConfigGroup(
            version=0,
            mod_policy=upd.mod_policy,
            policies=dict(group_write.policies),
            values=dict(group_write.values),
            groups=dict(group_write.groups),
        )
    return read, write, same, members


def _group_update(original, updated):
    rp, wp, sp, pm = _map_update(original.policies, updated.policies, _policy_same)
    rv, wv, sv, vm = _map_update(original.values, updated.values, _value_same)
    rg, wg, sg, gm = _groups_update(original.groups, updated.groups)
    if not (pm or vm or gm or original.mod_policy != updated.mod_policy):
        if not (rp or wp or rv or wv or rg or wg):
            return (
                configtx_pb2.ConfigGroup(version=original.version),
                configtx_pb2.ConfigGroup(version=original.version),
                False,
            )
        return (
            configtx_pb2.ConfigGroup(version=original.version, policies=rp, values=rv, groups=rg),
            configtx_pb2.ConfigGroup(version=original.version, policies=wp, values=wv, groups=wg),
            True,
        )
    for same, r, w in ((sp, rp, wp), (sv, rv, wv), (sg, rg, wg)):
        for key, element in same.items():
            r[key] = element
            w[key] = element
    return (
        configtx_pb2.ConfigGroup(version=original.version, policies=rp, values=rv, groups=rg),
        configtx_pb2.ConfigGroup(
            version=original.version + 1,
            policies=wp,
            values=wv,
            groups=wg,
            mod_policy=updated.mod_policy,
        ),
        True,
    )


def compute_update(channel, original_config, updated_config):
    """`configtxlator compute_update --channel_id channel`: ConfigUpdate{channel_id, read_set,
    write_set} taking original_config to updated_config."""
    read_set, write_set, changed = _group_update(
        original_config.channel_group, updated_config.channel_group
    )
    require(changed, "compute_update: no differences detected between original and updated config")
    return configtx_pb2.ConfigUpdate(channel_id=channel, read_set=read_set, write_set=write_set)


# ============================================================================================
# Applying an update as the orderer does (common/configtx: validator.go, update.go, configmap.go),
# policies aside: read-set versions, delta set, version rules, rebuild of the tree (§5.2, §5.3)
# ============================================================================================


def _flatten(group, path="/Channel", result=None):
    result = {} if result is None else result
    result["[Group]  " + path] = group
    for key, child in group.groups.items():
        _flatten(child, path + "/" + key, result)
    for key, value in group.values.items():
        result["[Value]  " + path + "/" + key] = value
    for key, policy in group.policies.items():
        result["[Policy] " + path + "/" + key] = policy
    return result


def _rebuild(path, config_map, fix_mod_policies):
    key = "[Group]  " + path
    require(key in config_map, f"missing group at path: {key}")
    entry = config_map[key]
    group = configtx_pb2.ConfigGroup(version=entry.version, mod_policy=entry.mod_policy)
    for name_ in entry.groups:
        group.groups[name_].CopyFrom(_rebuild(path + "/" + name_, config_map, fix_mod_policies))
    for name_ in entry.values:
        vkey = "[Value]  " + path + "/" + name_
        require(vkey in config_map, f"missing value at path: {vkey}")
        group.values[name_].CopyFrom(config_map[vkey])
    for name_ in entry.policies:
        pkey = "[Policy] " + path + "/" + name_
        require(pkey in config_map, f"missing policy at path: {pkey}")
        group.policies[name_].CopyFrom(config_map[pkey])
    if fix_mod_policies:
        if not group.mod_policy:
            group.mod_policy = "Admins"
        for element in list(group.values.values()) + list(group.policies.values()):
            if not element.mod_policy:
                element.mod_policy = "Admins"
    return group


def apply_update(channel, current_config, config_update):
    """The channel group Fabric's orderer computes from a ConfigUpdate, or CheckFailed with the
    reason Fabric would give (mod_policy evaluation is left to the orderer under test)."""
    require(
        config_update.channel_id == channel,
        f"ConfigUpdate for channel '{config_update.channel_id}' but envelope for channel '{channel}'",
    )
    current = _flatten(current_config.channel_group)
    read_set = _flatten(config_update.read_set) if config_update.HasField("read_set") else {}
    write_set = _flatten(config_update.write_set) if config_update.HasField("write_set") else {}
    for key, element in read_set.items():
        require(key in current, f"existing config does not contain element for {key} but was in the read set")
        require(
            current[key].version == element.version,
            f"proposed update requires that key {key} be at version {element.version}, "
            f"but it is currently at version {current[key].version}",
        )
    delta = {
        key: element
        for key, element in write_set.items()
        if not (key in read_set and read_set[key].version == element.version)
    }
    require(delta, "delta set was empty -- update would have no effect")
    for key, element in delta.items():
        require(element.mod_policy, f"invalid mod_policy for element {key}: mod_policy not set")
        if key not in current:
            require(element.version == 0, f"attempted to set key {key} to version {element.version}, but key does not exist")
            continue
        require(
            element.version == current[key].version + 1,
            f"attempt to set key {key} to version {element.version}, but key is at version {current[key].version}",
        )
    result = dict(current)
    result.update(delta)
    for key in write_set:
        require(key in result, f"writeset contained key {key} which did not appear in proposed config")
    return _rebuild("/Channel", result, "[Value]  /Channel/Orderer/Capabilities" in result)


def updated_config(config, mutate):
    """A copy of config with mutate(copy.channel_group) applied (the "modified config" a Fabric
    admin edits before compute_update)."""
    copy = configtx_pb2.Config()
    copy.CopyFrom(config)
    mutate(copy.channel_group)
    return copy


def set_max_message_count(count):
    def mutate(group):
        value = group.groups["Orderer"].values["BatchSize"]
        batch = orderer_config_pb2.BatchSize()
        batch.ParseFromString(value.value)
        batch.max_message_count = count
        value.value = batch.SerializeToString()

    return mutate


def batch_size_of(group):
    batch = orderer_config_pb2.BatchSize()
    batch.ParseFromString(group.groups["Orderer"].values["BatchSize"].value)
    return batch


# ============================================================================================
# Envelopes
# ============================================================================================


def tx_id_of(nonce, creator):
    """Fabric's tx_id: lowercase hex SHA-256(nonce || creator) (protoutil.ComputeTxID)."""
    return hashlib.sha256(nonce + creator).hexdigest()


def make_envelope(identity, header_type, data, *, with_tx_id=True, creator=None, channel=CHANNEL,
                  signature_header_bytes=None):
    """A signed Envelope. Returns (envelope, tx_id).

    ENDORSER_TRANSACTION carries tx_id = SHA-256(nonce || creator); DELIVER_SEEK_INFO and
    CONFIG_UPDATE carry none, as Fabric's CLI makes them (protoutil.CreateSignedEnvelope)."""
    creator = identity.creator if creator is None else creator
    nonce = os.urandom(24)
    tx_id = tx_id_of(nonce, creator) if with_tx_id else ""
    timestamp = timestamp_pb2.Timestamp()
    timestamp.GetCurrentTime()
    channel_header = common_pb2.ChannelHeader(
        type=header_type, version=0, timestamp=timestamp, channel_id=channel, tx_id=tx_id, epoch=0
    )
    if signature_header_bytes is None:
        signature_header_bytes = common_pb2.SignatureHeader(creator=creator, nonce=nonce).SerializeToString()
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=signature_header_bytes,
        ),
        data=data,
    )
    payload_bytes = payload.SerializeToString()
    return common_pb2.Envelope(payload=payload_bytes, signature=identity.sign(payload_bytes)), tx_id


def endorser_tx(identity, label, **kwargs):
    data = f"fabric_channel {label} ".encode() + os.urandom(8).hex().encode()
    return make_envelope(identity, common_pb2.ENDORSER_TRANSACTION, data, **kwargs)


def config_update_envelope(config_update, signers, submitter):
    """The CONFIG_UPDATE envelope `peer channel signconfigtx` + `peer channel update` produce:
    ConfigUpdateEnvelope{config_update, one ConfigSignature per signer (signature over
    signature_header || config_update)}, in an envelope of type CONFIG_UPDATE signed by the
    submitter."""
    update_bytes = config_update.SerializeToString()
    signatures = []
    for signer in signers:
        sh = common_pb2.SignatureHeader(creator=signer.creator, nonce=os.urandom(24)).SerializeToString()
        signatures.append(configtx_pb2.ConfigSignature(signature_header=sh, signature=signer.sign(sh + update_bytes)))
    update_envelope = configtx_pb2.ConfigUpdateEnvelope(config_update=update_bytes, signatures=signatures)
    envelope, _ = make_envelope(
        submitter, common_pb2.CONFIG_UPDATE, update_envelope.SerializeToString(), with_tx_id=False
    )
    return envelope


def parse_envelope(raw, where):
    envelope = common_pb2.Envelope()
    try:
        envelope.ParseFromString(raw)
        payload = common_pb2.Payload()
        payload.ParseFromString(envelope.payload)
        channel_header = common_pb2.ChannelHeader()
        channel_header.ParseFromString(payload.header.channel_header)
        signature_header = common_pb2.SignatureHeader()
        signature_header.ParseFromString(payload.header.signature_header)
    except Exception as e:
        raise CheckFailed(f"{where}: envelope does not parse down to its headers: {e}")
    return envelope, payload, channel_header, signature_header


# ============================================================================================
# The chain as a Fabric 3.x peer checks it (§2.2, §6.2)
# ============================================================================================


class Chain:
    """Every block delivered so far, checked in order, with the config in force."""

    def __init__(self, genesis_bytes):
        self.genesis_bytes = genesis_bytes
        genesis = common_pb2.Block()
        genesis.ParseFromString(genesis_bytes)
        _, payload, _, _ = parse_envelope(genesis.data.data[0], "genesis.block")
        envelope = configtx_pb2.ConfigEnvelope()
        envelope.ParseFromString(payload.data)
        self.config = envelope.config
        self.config_block = 0
        self.blocks = []
        self.txs = {}  # tx_id -> (block number, envelope bytes)
        self.signatures = 0
        self.config_blocks = []

    def height(self):
        return len(self.blocks)

    def add(self, block):
        """Checks one block (the next) and records it. Returns a dict describing it."""
        n = block.header.number
        require(n == self.height(), f"expected block {self.height()}, got block {n}")
        if n == 0:
            # The join block is stored verbatim (§2.1).
            require(
                block.SerializeToString() == self.genesis_bytes,
                "block 0 is not the genesis block the node was configured with, byte for byte",
            )
            self.blocks.append(block)
            return {"number": 0, "config": True, "txs": []}

        require(block.header.data_hash == data_hash(block.data), f"block {n}: data_hash does not match its data")
        previous = self.blocks[-1]
        require(
            block.header.previous_hash == header_hash(previous.header),
            f"block {n}: previous_hash is not SHA-256 of block {n - 1}'s DER header",
        )
        require(
            len(block.metadata.metadata) == METADATA_SLOTS,
            f"block {n}: {len(block.metadata.metadata)} metadata entries, want {METADATA_SLOTS}",
        )
        require(len(block.data.data) > 0, f"block {n}: no envelopes")
        parsed = [parse_envelope(raw, f"block {n} tx {i}") for i, raw in enumerate(block.data.data)]
        for i, (_, _, chdr, _) in enumerate(parsed):
            require(chdr.channel_id == CHANNEL, f"block {n} tx {i}: channel_id {chdr.channel_id!r}")
        is_config = parsed[0][2].type == common_pb2.CONFIG

        # The signed metadata, under the config in force before this block.
        signed_last_config = self._check_signatures(block)
        info = {"number": n, "config": is_config, "txs": []}
        if is_config:
            require(len(block.data.data) == 1, f"block {n}: a config block holds {len(block.data.data)} envelopes")
            require(signed_last_config == n, f"config block {n}: signed LAST_CONFIG is {signed_last_config}, want its own number")
            info.update(self._check_config_envelope(n, block.data.data[0]))
            self.config_block = n
            self.config_blocks.append(n)
        else:
            require(
                signed_last_config == self.config_block,
                f"block {n}: signed LAST_CONFIG is {signed_last_config}, the config in force is block {self.config_block}",
            )
            for i, (raw, (envelope, _, chdr, _)) in enumerate(zip(block.data.data, parsed)):
                # protoutil.VerifyTransactionsAreWellFormed (3.x peers).
                require(envelope.payload and envelope.signature, f"block {n} tx {i}: empty payload or signature")
                require(envelope.SerializeToString() == raw, f"block {n} tx {i}: envelope is not canonically encoded")
                require(chdr.type != common_pb2.CONFIG, f"block {n} tx {i}: a CONFIG envelope among others")
                require(chdr.tx_id not in self.txs, f"block {n}: tx {chdr.tx_id} is already in block {self.txs.get(chdr.tx_id, (None,))[0]}")
                self.txs[chdr.tx_id] = (n, raw)
                info["txs"].append(chdr.tx_id)
        # The deprecated unsigned LAST_CONFIG slot is not trusted, but must not contradict.
        unsigned = block.metadata.metadata[common_pb2.LAST_CONFIG]
        if unsigned:
            md = common_pb2.Metadata()
            md.ParseFromString(unsigned)
            lc = common_pb2.LastConfig()
            lc.ParseFromString(md.value)
            require(lc.index == signed_last_config, f"block {n}: unsigned LAST_CONFIG {lc.index} != signed {signed_last_config}")
        self.blocks.append(block)
        return info

    def _check_signatures(self, block):
        n = block.header.number
        metadata = common_pb2.Metadata()
        try:
            metadata.ParseFromString(block.metadata.metadata[common_pb2.SIGNATURES])
            value = common_pb2.OrdererBlockMetadata()
            value.ParseFromString(metadata.value)
        except Exception as e:
            raise CheckFailed(f"block {n}: SIGNATURES is not Metadata{{OrdererBlockMetadata}}: {e}")
        require(value.HasField("last_config"), f"block {n}: OrdererBlockMetadata has no last_config")
        require(metadata.signatures, f"block {n}: no orderer signature")
        hb = header_bytes(block.header)
        for i, sig in enumerate(metadata.signatures):
            sh = common_pb2.SignatureHeader()
            try:
                sh.ParseFromString(sig.signature_header)
            except Exception as e:
                raise CheckFailed(f"block {n} signature {i}: signature_header does not parse: {e}")
            require(sh.nonce, f"block {n} signature {i}: empty nonce")
            verify_orderer_signed(
                self.config.channel_group,
                sh.creator,
                metadata.value + sig.signature_header + hb,
                sig.signature,
                f"block {n} signature {i}",
            )
            self.signatures += 1
        return value.last_config.index

    def _check_config_envelope(self, n, raw):
        envelope, payload, chdr, sh = parse_envelope(raw, f"config block {n}")
        require(chdr.epoch == 0, f"config block {n}: epoch {chdr.epoch}")
        require(sh.nonce and sh.creator, f"config block {n}: empty nonce or creator")
        signer = verify_orderer_signed(
            self.config.channel_group, sh.creator, envelope.payload, envelope.signature,
            f"config block {n} CONFIG envelope",
        )
        config_envelope = configtx_pb2.ConfigEnvelope()
        config_envelope.ParseFromString(payload.data)
        new = config_envelope.config
        require(
            new.sequence == self.config.sequence + 1,
            f"config block {n}: sequence {new.sequence}, want {self.config.sequence + 1}",
        )
        require(config_envelope.HasField("last_update"), f"config block {n}: no last_update")
        # What every peer does on commit (§5.5): recompute the config from last_update and compare.
        _, lu_payload, lu_chdr, _ = parse_envelope(
            config_envelope.last_update.SerializeToString(), f"config block {n} last_update"
        )
        require(lu_chdr.type == common_pb2.CONFIG_UPDATE, f"config block {n}: last_update is of type {lu_chdr.type}")
        update_envelope = configtx_pb2.ConfigUpdateEnvelope()
        update_envelope.ParseFromString(lu_payload.data)
        config_update = configtx_pb2.ConfigUpdate()
        config_update.ParseFromString(update_envelope.config_update)
        expected = apply_update(CHANNEL, self.config, config_update)
        require(
            new.channel_group == expected,
            f"config block {n}: channel_group differs from the config last_update produces",
        )
        self.config = new
        return {"sequence": new.sequence, "signer": signer, "last_update": config_envelope.last_update}


# ============================================================================================
# Broadcast and Deliver, each with a deadline
# ============================================================================================


def broadcast(stub, envelopes):
    """Sends envelopes on one Broadcast stream; returns one BroadcastResponse per envelope."""
    done = threading.Event()

    def requests():
        yield from envelopes
        done.wait(BROADCAST_TIMEOUT_S)

    responses = stub.Broadcast(requests(), timeout=BROADCAST_TIMEOUT_S)
    result = []
    try:
        for response in responses:
            result.append(response)
            if len(result) == len(envelopes):
                break
    except grpc.RpcError as e:
        raise CheckFailed(f"Broadcast failed after {len(result)} responses: {e.code()}: {e.details()}")
    finally:
        done.set()
        responses.cancel()
    require(len(result) == len(envelopes), f"Broadcast stream ended after {len(result)} of {len(envelopes)} responses")
    return result


def expect_status(stub, envelope, want, what):
    (response,) = broadcast(stub, [envelope])
    require(
        response.status == want,
        f"{what}: {status_name(response.status)} {response.info!r}, want {status_name(want)}",
    )
    return response


def seek(position):
    if position == "oldest":
        return ab_pb2.SeekPosition(oldest=ab_pb2.SeekOldest())
    if position == "newest":
        return ab_pb2.SeekPosition(newest=ab_pb2.SeekNewest())
    return ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=position))


def deliver(stub, identity, start, stop, until=None, timeout=DELIVER_TIMEOUT_S):
    """One Deliver stream (SeekInfo signed by identity, BLOCK_UNTIL_READY). Reads blocks until
    until(blocks) holds (returns (blocks, None)) or a status arrives (returns (blocks, status))."""
    seek_info = ab_pb2.SeekInfo(
        start=seek(start), stop=seek(stop), behavior=ab_pb2.SeekInfo.BLOCK_UNTIL_READY
    )
    request, _ = make_envelope(identity, common_pb2.DELIVER_SEEK_INFO, seek_info.SerializeToString(), with_tx_id=False)
    done = threading.Event()

    def requests():
        yield request
        done.wait(timeout)

    responses = stub.Deliver(requests(), timeout=timeout)
    blocks = []
    try:
        for response in responses:
            kind = response.WhichOneof("Type")
            if kind == "status":
                return blocks, response.status
            require(kind == "block", "Deliver response with neither block nor status")
            blocks.append(response.block)
            if until is not None and until(blocks):
                return blocks, None
        raise CheckFailed(f"Deliver stream ended without a status ({len(blocks)} blocks read)")
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise CheckFailed(f"Deliver: nothing more within {timeout:.0f}s ({len(blocks)} blocks read)")
        raise CheckFailed(f"Deliver failed: {e.code()}: {e.details()}")
    finally:
        done.set()
        responses.cancel()


def follow(stub, identity, chain, until):
    """Delivers from the chain's height on, adding (checking) each block, until until(infos)."""
    infos = []

    def step(blocks):
        infos.append(chain.add(blocks[-1]))
        return until(infos)

    _, status = deliver(stub, identity, chain.height(), U64_MAX, until=step)
    require(status is None, f"Deliver ended with {status_name(status)} at height {chain.height()}")
    return infos


def has_all(tx_ids):
    wanted = set(tx_ids)
    return lambda infos: wanted <= {t for info in infos for t in info["txs"]}


# ============================================================================================
# setup
# ============================================================================================


def write(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


NODE_OU_CONFIG = b"""NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: orderer
"""


def write_msp(folder, ca_cert, tlsca_cert, cert=None, key=None):
    """A Fabric MSP folder: cacerts/ca.pem, tlscacerts/tlsca.pem, config.yaml (NodeOUs) and, for
    a signing MSP, signcerts/cert.pem and keystore/priv_sk (PKCS#8 PEM)."""
    write(os.path.join(folder, "cacerts", "ca.pem"), cert_pem(ca_cert))
    write(os.path.join(folder, "tlscacerts", "tlsca.pem"), cert_pem(tlsca_cert))
    write(os.path.join(folder, "config.yaml"), NODE_OU_CONFIG)
    if cert is not None:
        write(os.path.join(folder, "signcerts", "cert.pem"), cert_pem(cert))
        write(os.path.join(folder, "keystore", "priv_sk"), key_pem(key), 0o600)


def make_org(group, mspid, domain):
    ca_key, ca = make_ca(domain, f"ca.{domain}")
    tlsca_key, tlsca = make_ca(domain, f"tlsca.{domain}")
    return {
        "group": group,
        "mspid": mspid,
        "domain": domain,
        "ca_key": ca_key,
        "ca": ca,
        "tlsca_key": tlsca_key,
        "tlsca": tlsca,
    }


def make_tls_server(org, cn):
    """The orderer's TLS server certificate from its org's TLS CA, valid for 127.0.0.1 and
    localhost (the address the test dials), EKU serverAuth."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(org["domain"], cn))
        .issuer_name(org["tlsca"].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName(cn),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(org["tlsca_key"], hashes.SHA256())
    )
    return key, cert


def setup(args):
    d = os.path.abspath(args.dir)
    os.makedirs(d, exist_ok=True)
    orderer_org = make_org("OrdererOrg", "OrdererMSP", "example.com")
    org1 = make_org("Org1", "Org1MSP", "org1.example.com")
    # A CA that no org of the channel names, and a client it certifies that claims Org1MSP.
    rogue = make_org("Rogue", "Org1MSP", "org1.example.com")

    identities = {}
    high_s = {}

    def identity(label, org, cn, ou, folder):
        key, cert = make_leaf(org["ca_key"], org["ca"], org["domain"], cn, ou)
        write_msp(folder, org["ca"], org["tlsca"], cert, key)
        identities[label] = {"mspid": org["mspid"], "msp_dir": os.path.relpath(folder, d), "ou": ou}
        high_s[label] = cert_signature_is_high_s(cert, org["ca"])

    # The orderer node's local MSP (General.LocalMSPDir), Fabric's layout.
    identity("orderer", orderer_org, "orderer0.example.com", "orderer", os.path.join(d, "orderer", "msp"))
    identity("orderer_admin", orderer_org, "Admin@example.com", "admin", os.path.join(d, "users", "Admin@example.com", "msp"))
    identity("org1_admin", org1, "Admin@org1.example.com", "admin", os.path.join(d, "users", "Admin@org1.example.com", "msp"))
    identity("org1_client", org1, "User1@org1.example.com", "client", os.path.join(d, "users", "User1@org1.example.com", "msp"))
    identity("rogue_client", rogue, "User1@org1.example.com", "client", os.path.join(d, "users", "rogue", "msp"))
    # The orgs' verifying MSP folders, as configtxgen reads them.
    for org in (orderer_org, org1):
        write_msp(os.path.join(d, "organizations", org["group"], "msp"), org["ca"], org["tlsca"])

    # The orderer's TLS (Fabric's General.TLS): clients dial it with the orderer org's TLS CA.
    tls_key, tls_cert = make_tls_server(orderer_org, "orderer0.example.com")
    write(os.path.join(d, "orderer", "tls", "server.crt"), cert_pem(tls_cert))
    write(os.path.join(d, "orderer", "tls", "server.key"), key_pem(tls_key), 0o600)
    write(os.path.join(d, "orderer", "tls", "ca.crt"), cert_pem(orderer_org["tlsca"]))

    block = genesis_block(CHANNEL, channel_group(orderer_org, org1, args.port))
    write(os.path.join(d, "genesis.block"), block.SerializeToString())
    write(
        os.path.join(d, "orderer.toml"),
        f"""[node]
data_dir = "data"            # relative paths are taken from the config file's folder
listen = "127.0.0.1:{args.port}"
msp_dir = "orderer/msp"      # Fabric's General.LocalMSPDir
mspid = "OrdererMSP"         # Fabric's General.LocalMSPID

[tls]                        # Fabric's General.TLS
enabled = true
cert = "orderer/tls/server.crt"
key = "orderer/tls/server.key"

[[channel]]
genesis_block = "genesis.block"
""".encode(),
    )
    write(os.path.join(d, "identities.json"), json.dumps(identities, indent=2, sort_keys=True).encode() + b"\n")
    print(
        json.dumps(
            {
                "ok": True,
                "dir": d,
                "channel": CHANNEL,
                "port": args.port,
                "genesis_block": os.path.join(d, "genesis.block"),
                "config": os.path.join(d, "orderer.toml"),
                "identities": sorted(identities),
                "ca_signature_high_s": high_s,
            },
            sort_keys=True,
        ),
        flush=True,
    )


def load_identities(d):
    with open(os.path.join(d, "identities.json"), encoding="utf-8") as f:
        table = json.load(f)
    return {
        label: Identity.load(os.path.join(d, entry["msp_dir"]), entry["mspid"])
        for label, entry in table.items()
    }


# ============================================================================================
# run
# ============================================================================================


def run(args):
    check_der_encoder()
    d = os.path.abspath(args.dir)
    ids = load_identities(d)
    client = ids["org1_client"]
    admin = ids["orderer_admin"]
    with open(os.path.join(d, "genesis.block"), "rb") as f:
        chain = Chain(f.read())
    genesis_config = chain.config
    statuses = {}

    with open(os.path.join(d, "orderer", "tls", "ca.crt"), "rb") as f:
        credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
    with grpc.secure_channel(args.endpoint, credentials) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=CONNECT_TIMEOUT_S)
        except grpc.FutureTimeoutError:
            raise CheckFailed(f"cannot connect to {args.endpoint}")
        stub = ab_pb2_grpc.AtomicBroadcastStub(channel)

        # (a) Three transactions by the Org1 client, on one stream: /Channel/Writers = ANY Writers
        # -> Application/Writers -> Org1 Writers OR('Org1MSP.admin','Org1MSP.client'): satisfied.
        sent = [endorser_tx(client, f"a{i}") for i in range(3)]
        for i, response in enumerate(broadcast(stub, [env for env, _ in sent])):
            require(response.status == common_pb2.SUCCESS, f"tx a{i}: {status_name(response.status)} {response.info!r}, want SUCCESS(200)")
        statuses["org1_client_tx"] = common_pb2.SUCCESS

        # (b) Bad transactions, each on its own stream.
        # High S: identity.Verify rejects it (§3.5), so the only signer drops out of the signature
        # set and /Channel/Writers fails in the SigFilter: permission denied -> FORBIDDEN.
        good, _ = endorser_tx(client, "high-s")
        high = common_pb2.Envelope(payload=good.payload, signature=to_high_s(good.signature, client.key.public_key()))
        expect_status(stub, high, common_pb2.FORBIDDEN, "tx with a high-S signature")
        statuses["high_s"] = common_pb2.FORBIDDEN
        # id_bytes not PEM. Fabric 3.1.5: the Broadcast filters are EmptyReject, Size, Expiration
        # (crypto.ExpiresAt of an unparsable certificate is the zero time: "never expires", passes),
        # then SigFilter, where DeserializeIdentity fails, the identity is skipped silently
        # (policies.SignatureSetToValidIdentities) and /Channel/Writers fails -> ErrPermissionDenied
        # -> FORBIDDEN (broadcast.ClassifyError). Nothing on that path answers BAD_REQUEST.
        not_pem = identities_pb2.SerializedIdentity(mspid="Org1MSP", id_bytes=client.cert.public_bytes(serialization.Encoding.DER)).SerializeToString()
        env, _ = endorser_tx(client, "not-pem", creator=not_pem)
        expect_status(stub, env, common_pb2.FORBIDDEN, "tx whose creator id_bytes is DER, not PEM")
        statuses["creator_not_pem"] = common_pb2.FORBIDDEN
        # A certificate from a CA that Org1MSP does not list: sanitising an ECDSA-signed
        # certificate builds its chain, which fails, so DeserializeIdentity fails (§3.3 step 5);
        # the identity is skipped and /Channel/Writers fails -> FORBIDDEN (§4.3, §5.5).
        env, _ = endorser_tx(ids["rogue_client"], "unknown-ca")
        expect_status(stub, env, common_pb2.FORBIDDEN, "tx by a certificate of a CA not in the channel config")
        statuses["unknown_ca"] = common_pb2.FORBIDDEN
        # A SignatureHeader that does not unmarshal: the channel header parses (so the channel is
        # found), then the expiration filter's EnvelopeAsSignedData fails, an ordinary error ->
        # BAD_REQUEST.
        env, _ = endorser_tx(client, "bad-sig-header", signature_header_bytes=b"\x0a\x05ab")
        expect_status(stub, env, common_pb2.BAD_REQUEST, "tx whose SignatureHeader does not parse")
        statuses["signature_header_unparsable"] = common_pb2.BAD_REQUEST

        # Deliver by an identity the channel does not know: /Channel/Readers fails -> FORBIDDEN.
        _, status = deliver(stub, ids["rogue_client"], 0, 0)
        require(status == common_pb2.FORBIDDEN, f"Deliver by an unknown CA's certificate: {status_name(status)}, want FORBIDDEN(403)")
        statuses["deliver_unknown_ca"] = common_pb2.FORBIDDEN

        # (c) Deliver from block 0 until the three transactions are in, checking every block.
        follow(stub, client, chain, has_all([t for _, t in sent]))
        for env, tx_id in sent:
            block_number, stored = chain.txs[tx_id]
            require(stored == env.SerializeToString(), f"tx {tx_id}: stored envelope differs from the one sent")
        # None of the rejected transactions made it into the chain.
        require(len(chain.txs) == 3, f"{len(chain.txs)} transactions in the chain, want the 3 accepted ones")

        # (d) CONFIG_UPDATE: BatchSize.max_message_count 10 -> 1, computed as configtxlator does,
        # signed by the OrdererOrg admin (mod_policy Admins -> /Channel/Orderer/Admins, MAJORITY
        # of OR('OrdererMSP.admin')), submitted by that admin (a member, so /Channel/Writers holds).
        update = compute_update(CHANNEL, chain.config, updated_config(chain.config, set_max_message_count(1)))
        update_env = config_update_envelope(update, [admin], admin)
        expect_status(stub, update_env, common_pb2.SUCCESS, "CONFIG_UPDATE by the OrdererOrg admin")
        statuses["config_update"] = common_pb2.SUCCESS
        (info,) = follow(stub, client, chain, lambda infos: len(infos) >= 1)
        require(info["config"], f"block {info['number']} after the CONFIG_UPDATE is not a config block")
        require(info["sequence"] == 1, f"config block {info['number']}: sequence {info['sequence']}, want 1")
        require(
            info["last_update"].SerializeToString() == update_env.SerializeToString(),
            f"config block {info['number']}: last_update is not the CONFIG_UPDATE envelope sent",
        )
        batch = batch_size_of(chain.config.channel_group)
        require(batch.max_message_count == 1, f"config block: max_message_count {batch.max_message_count}, want 1")
        require(chain.config.channel_group.groups["Orderer"].values["BatchSize"].version == 1, "BatchSize version is not 1")
        config_block = info["number"]

        # Three more transactions: with max_message_count 1, one block each.
        sent_after = [endorser_tx(client, f"d{i}") for i in range(3)]
        for i, response in enumerate(broadcast(stub, [env for env, _ in sent_after])):
            require(response.status == common_pb2.SUCCESS, f"tx d{i}: {status_name(response.status)} {response.info!r}")
        infos = follow(stub, client, chain, has_all([t for _, t in sent_after]))
        require(
            [len(i["txs"]) for i in infos] == [1, 1, 1] and not any(i["config"] for i in infos),
            f"after max_message_count 1: blocks {[(i['number'], len(i['txs'])) for i in infos]}, want 3 blocks of 1",
        )
        require(
            [i["number"] for i in infos] == [config_block + 1, config_block + 2, config_block + 3],
            f"the 3 transactions are in blocks {[i['number'] for i in infos]}, want the 3 after config block {config_block}",
        )

        # (e) Updates Fabric refuses inside config processing: BAD_REQUEST (§5.5).
        # Signed (and submitted) by the Org1 client only: /Channel/Writers holds (client is an
        # Org1 Writer), the versions are right (BatchSize 1 -> 2), but the existing element's
        # mod_policy /Channel/Orderer/Admins is not satisfied.
        update = compute_update(CHANNEL, chain.config, updated_config(chain.config, set_max_message_count(2)))
        expect_status(stub, config_update_envelope(update, [client], client), common_pb2.BAD_REQUEST, "CONFIG_UPDATE signed by the Org1 client only")
        statuses["config_update_not_admin"] = common_pb2.BAD_REQUEST
        # Stale: computed against the genesis config, so it writes BatchSize version 1 again while
        # BatchSize is at version 1 (version must be current + 1).
        stale = compute_update(CHANNEL, genesis_config, updated_config(genesis_config, set_max_message_count(2)))
        expect_status(stub, config_update_envelope(stale, [admin], admin), common_pb2.BAD_REQUEST, "stale CONFIG_UPDATE (BatchSize version 1 again)")
        statuses["config_update_stale_version"] = common_pb2.BAD_REQUEST
        # Stale read set: it requires BatchSize at version 0 (it is at 1) and writes version 1.
        stale_read = configtx_pb2.ConfigUpdate()
        stale_read.CopyFrom(stale)
        stale_read.read_set.groups["Orderer"].values["BatchSize"].version = 0
        expect_status(stub, config_update_envelope(stale_read, [admin], admin), common_pb2.BAD_REQUEST, "CONFIG_UPDATE with a stale read set")
        statuses["config_update_stale_read_set"] = common_pb2.BAD_REQUEST

        # The node keeps serving: a normal transaction still gets SUCCESS, in the next block, with
        # the same config in force (no config block came from the refused updates).
        last, last_id = endorser_tx(client, "e")
        expect_status(stub, last, common_pb2.SUCCESS, "tx after the refused updates")
        infos = follow(stub, client, chain, has_all([last_id]))
        require(
            [i["number"] for i in infos] == [config_block + 4] and not infos[0]["config"],
            f"after the refused updates: blocks {[(i['number'], i['config']) for i in infos]}, want one normal block {config_block + 4}",
        )
        require(chain.config.sequence == 1 and chain.config_blocks == [config_block], "config changed by a refused update")

        # The whole chain once more, oldest -> newest: exactly what was seen, then SUCCESS.
        blocks, status = deliver(stub, client, "oldest", "newest")
        require(status == common_pb2.SUCCESS, f"Deliver oldest..newest ended with {status_name(status)}, want SUCCESS(200)")
        require(
            [b.SerializeToString() for b in blocks] == [b.SerializeToString() for b in chain.blocks],
            f"Deliver oldest..newest: {len(blocks)} blocks differing from the {chain.height()} seen block by block",
        )

    print(
        json.dumps(
            {
                "ok": True,
                "channel": CHANNEL,
                "height": chain.height(),
                "blocks_checked": chain.height(),
                "blocks_redelivered": len(blocks),
                "config_blocks": chain.config_blocks,
                "config_sequence": chain.config.sequence,
                "max_message_count": batch_size_of(chain.config.channel_group).max_message_count,
                "txs": len(chain.txs),
                "orderer_signatures_verified": chain.signatures,
                "statuses": {k: int(v) for k, v in statuses.items()},
                "checked": [
                    "broadcast_x509_client",
                    "high_s_rejected",
                    "creator_not_pem_rejected",
                    "unknown_ca_rejected",
                    "unparsable_signature_header_rejected",
                    "deliver_unknown_ca_rejected",
                    "genesis_block_verbatim",
                    "hash_chain",
                    "data_hash",
                    "metadata_slots",
                    "orderer_signatures_block_validation",
                    "last_config",
                    "canonical_envelopes",
                    "config_update_applied",
                    "config_recomputed_from_last_update",
                    "batch_size_1_cuts",
                    "config_update_mod_policy_rejected",
                    "config_update_stale_rejected",
                    "keeps_serving",
                    "deliver_oldest_newest",
                ],
            },
            sort_keys=True,
        ),
        flush=True,
    )


# ============================================================================================
# selftest: the pure parts, without an orderer
# ============================================================================================


def orderer_sign_block(block, identity, last_config):
    """Signs block as Fabric's blockwriter does (§6.1), for the self-test."""
    value = common_pb2.OrdererBlockMetadata(
        last_config=common_pb2.LastConfig(index=last_config),
        consenter_metadata=common_pb2.Metadata().SerializeToString(),
    )
    value.last_config.SetInParent()
    value_bytes = value.SerializeToString()
    sh = common_pb2.SignatureHeader(creator=identity.creator, nonce=os.urandom(24)).SerializeToString()
    signature = identity.sign(value_bytes + sh + header_bytes(block.header))
    metadata = [b""] * METADATA_SLOTS
    metadata[common_pb2.SIGNATURES] = common_pb2.Metadata(
        value=value_bytes, signatures=[common_pb2.MetadataSignature(signature_header=sh, signature=signature)]
    ).SerializeToString()
    metadata[common_pb2.LAST_CONFIG] = common_pb2.Metadata(
        value=common_pb2.LastConfig(index=last_config).SerializeToString()
    ).SerializeToString()
    del block.metadata.metadata[:]
    block.metadata.metadata.extend(metadata)


def next_block(previous, envelopes):
    block = common_pb2.Block()
    block.header.number = previous.header.number + 1
    block.header.previous_hash = header_hash(previous.header)
    block.data.data.extend(envelopes)
    block.header.data_hash = data_hash(block.data)
    return block


def expect_failure(what, fn, contains=None):
    try:
        fn()
    except CheckFailed as e:
        if contains is not None:
            require(contains in str(e), f"selftest {what}: failed for another reason: {e}")
        return str(e)
    raise CheckFailed(f"selftest {what}: was accepted, must be refused")


def selftest(_args):
    done = []

    check_der_encoder()
    # The DER header of an all-empty header 0, and of a header with hashes.
    h = common_pb2.BlockHeader(number=0)
    require(header_bytes(h).hex() == "3007020100" "0400" "0400", "selftest: DER of an empty header 0")
    h = common_pb2.BlockHeader(number=128, previous_hash=b"\x01" * 32, data_hash=b"\x02" * 32)
    require(
        header_bytes(h).hex() == "3048" "02020080" "0420" + "01" * 32 + "0420" + "02" * 32,
        "selftest: DER of header 128",
    )
    done.append("der_header")

    # Curve orders and low-S: (r, n - s) still verifies (so n is right), Fabric's rule refuses it.
    for curve in (ec.SECP224R1(), ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()):
        key = ec.generate_private_key(curve)
        for i in range(16):
            message = os.urandom(40)
            sig = sign_low_s(key, message)
            r, s = decode_dss_signature(sig)
            require(s <= curve_order(key.public_key()) // 2, f"selftest: {curve.name} signature {i} is high S")
            fabric_verify(key.public_key(), message, sig)
            high = to_high_s(sig, key.public_key())
            key.public_key().verify(high, message, ec.ECDSA(hashes.SHA256()))  # valid ECDSA ...
            expect_failure("high S", lambda: fabric_verify(key.public_key(), message, high), "high S")  # ... refused
            expect_failure("wrong message", lambda: fabric_verify(key.public_key(), message + b"x", sig))
            # Go ignores bytes after the DER SEQUENCE; a non-minimal INTEGER is refused.
            fabric_verify(key.public_key(), message, sig + b"\x00\x01")
    expect_failure("non-minimal integer", lambda: parse_ecdsa_signature_like_go(bytes.fromhex("30080202000102020001")), "minimally")
    done.append("low_s_signing_and_verify")

    # Policy encodings, against bytes worked out by hand from the DSL rules (§1.3, §4.1).
    p = signature_policy_or("OrdererMSP.member")
    want = "1208" "1206" "0801" "1202" "0800" "1a0e" "120c" "0a0a" + b"OrdererMSP".hex()
    require(p.type == 1 and p.value.hex() == want, f"selftest: OR('OrdererMSP.member') encodes as {p.value.hex()}")
    p = signature_policy_or("Org1MSP.admin", "Org1MSP.client")
    env = policies_pb2.SignaturePolicyEnvelope()
    env.ParseFromString(p.value)
    role = msp_principal_pb2.MSPRole()
    role.ParseFromString(env.identities[1].principal)
    require(
        env.rule.n_out_of.n == 1
        and [r.signed_by for r in env.rule.n_out_of.rules] == [0, 1]
        and env.rule.n_out_of.rules[0].WhichOneof("Type") == "signed_by"
        and role.msp_identifier == "Org1MSP" and role.role == msp_principal_pb2.MSPRole.CLIENT,
        "selftest: OR('Org1MSP.admin','Org1MSP.client')",
    )
    require(implicit_meta("MAJORITY", "Admins").value.hex() == "0a06" + b"Admins".hex() + "1002", "selftest: MAJORITY Admins")
    require(implicit_meta("ANY", "Readers").value.hex() == "0a07" + b"Readers".hex(), "selftest: ANY Readers")
    done.append("policy_encoding")

    with tempfile.TemporaryDirectory() as d:
        ns = argparse.Namespace(dir=d, port=7050)
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            setup(ns)
        ids = load_identities(d)
        with open(os.path.join(d, "genesis.block"), "rb") as f:
            genesis_bytes = f.read()
        genesis = common_pb2.Block()
        genesis.ParseFromString(genesis_bytes)

        # Block 0 layout (§2.1).
        require(len(genesis.metadata.metadata) == 5, "selftest: genesis metadata slots")
        require(genesis.metadata.metadata[0].hex() == "0a020a00", "selftest: genesis SIGNATURES bytes")
        require(genesis.metadata.metadata[1] == b"", "selftest: genesis LAST_CONFIG bytes")
        env, payload, chdr, sh = parse_envelope(genesis.data.data[0], "genesis")
        require(env.signature == b"" and sh.creator == b"" and len(sh.nonce) == 24, "selftest: genesis signature header")
        require(chdr.type == common_pb2.CONFIG and chdr.version == 1 and chdr.timestamp.nanos == 0, "selftest: genesis channel header")
        require(chdr.tx_id == tx_id_of(sh.nonce, b""), "selftest: genesis tx_id")
        require(genesis.header.data_hash == hashlib.sha256(genesis.data.data[0]).digest(), "selftest: genesis data hash")
        done.append("genesis_layout")

        # The identities validate in the channel MSPs with the roles they were made for, and
        # the rogue one does not.
        chain = Chain(genesis_bytes)
        group = chain.config.channel_group
        orderer_msps = channel_msps(group, "Orderer")
        app_msps = channel_msps(group, "Application")
        require(orderer_msps["OrdererMSP"].validate(ids["orderer"].creator)[1] == "orderer", "selftest: orderer role")
        require(orderer_msps["OrdererMSP"].validate(ids["orderer_admin"].creator)[1] == "admin", "selftest: orderer admin role")
        require(app_msps["Org1MSP"].validate(ids["org1_client"].creator)[1] == "client", "selftest: client role")
        require(app_msps["Org1MSP"].validate(ids["org1_admin"].creator)[1] == "admin", "selftest: org1 admin role")
        expect_failure("rogue CA", lambda: app_msps["Org1MSP"].validate(ids["rogue_client"].creator), "does not chain")
        not_pem = identities_pb2.SerializedIdentity(mspid="Org1MSP", id_bytes=ids["org1_client"].cert.public_bytes(serialization.Encoding.DER)).SerializeToString()
        expect_failure("id_bytes not PEM", lambda: app_msps["Org1MSP"].validate(not_pem), "not PEM")
        trailing = identities_pb2.SerializedIdentity(mspid="Org1MSP", id_bytes=cert_pem(ids["org1_client"].cert) + b"x").SerializeToString()
        expect_failure("trailing bytes", lambda: app_msps["Org1MSP"].validate(trailing), "trailing")
        done.append("msp_validation")

        # A chain signed here the way Fabric's orderer signs passes the block checks ...
        tx, tx_id = endorser_tx(ids["org1_client"], "selftest")
        require(tx_id == tx_id_of(parse_envelope(tx.SerializeToString(), "tx")[3].nonce, ids["org1_client"].creator), "selftest: tx_id")
        chain.add(genesis)
        b1 = next_block(genesis, [tx.SerializeToString()])
        orderer_sign_block(b1, ids["orderer"], 0)
        require(chain.add(b1)["txs"] == [tx_id], "selftest: block 1")

        # ... and each kind of fault is caught.
        def faulty(mutate, signer=ids["orderer"], last_config=0, resign=True):
            block = next_block(b1, [endorser_tx(ids["org1_client"], "f")[0].SerializeToString()])
            if resign:
                orderer_sign_block(block, signer, last_config)
            mutate(block)
            probe = Chain(genesis_bytes)
            probe.add(genesis)
            probe.add(b1)
            return lambda: probe.add(block)

        def high_s_signature(block):
            md = common_pb2.Metadata()
            md.ParseFromString(block.metadata.metadata[0])
            md.signatures[0].signature = to_high_s(md.signatures[0].signature, ids["orderer"].key.public_key())
            block.metadata.metadata[0] = md.SerializeToString()

        def tamper_data(block):
            block.data.data[0] = block.data.data[0] + b"\x00"

        def tamper_header(block):
            block.header.previous_hash = b"\x00" * 32

        def four_slots(block):
            del block.metadata.metadata[4]

        def noncanonical(block):
            # The same envelope with its fields in reverse order: parses, but is not canonical.
            e = common_pb2.Envelope()
            e.ParseFromString(block.data.data[0])
            raw = b"\x12" + _varint(len(e.signature)) + e.signature + b"\x0a" + _varint(len(e.payload)) + e.payload
            block.data.data[0] = raw
            block.header.data_hash = data_hash(block.data)
            orderer_sign_block(block, ids["orderer"], 0)

        expect_failure("high-S block signature", faulty(high_s_signature), "high S")
        expect_failure("block signed by the admin", faulty(lambda b: None, signer=ids["orderer_admin"]), "NodeOU 'admin'")
        expect_failure("block signed by Org1", faulty(lambda b: None, signer=ids["org1_client"]), "not an orderer org")
        expect_failure("block signed by a rogue CA", faulty(lambda b: None, signer=Identity("OrdererMSP", ids["rogue_client"].cert, ids["rogue_client"].key)), "does not chain")
        expect_failure("wrong LAST_CONFIG", faulty(lambda b: None, last_config=1), "LAST_CONFIG")
        expect_failure("data changed", faulty(tamper_data), "data_hash")
        expect_failure("broken hash chain", faulty(tamper_header), "previous_hash")
        expect_failure("4 metadata slots", faulty(four_slots), "metadata entries")
        expect_failure("non-canonical envelope", faulty(noncanonical), "canonically")
        done.append("block_checks")

        # compute_update gives exactly the read and write sets configtxlator gives (update.go).
        update = compute_update(CHANNEL, chain.config, updated_config(chain.config, set_max_message_count(1)))
        new_batch = orderer_config_pb2.BatchSize(max_message_count=1, absolute_max_bytes=10485760, preferred_max_bytes=2097152)
        want_read = configtx_pb2.ConfigGroup(version=0, groups={"Orderer": configtx_pb2.ConfigGroup(version=0)})
        want_write = configtx_pb2.ConfigGroup(
            version=0,
            groups={
                "Orderer": configtx_pb2.ConfigGroup(
                    version=0,
                    values={"BatchSize": configtx_pb2.ConfigValue(version=1, value=new_batch.SerializeToString(), mod_policy="Admins")},
                )
            },
        )
        require(update.channel_id == CHANNEL and update.read_set == want_read, f"selftest: read_set {json_format.MessageToJson(update.read_set)}")
        require(update.write_set == want_write, f"selftest: write_set {json_format.MessageToJson(update.write_set)}")
        # Adding an org bumps its parent group and carries the unchanged siblings at their versions.
        def add_org(g):
            g.groups["Application"].groups["Org2"].CopyFrom(configtx_pb2.ConfigGroup(mod_policy="Admins"))
        add = compute_update(CHANNEL, chain.config, updated_config(chain.config, add_org))
        app_w = add.write_set.groups["Application"]
        require(
            app_w.version == 1 and app_w.mod_policy == "Admins" and app_w.groups["Org1"] == configtx_pb2.ConfigGroup(version=0)
            and "Org2" in app_w.groups and set(app_w.values) == {"Capabilities"} and add.read_set.groups["Application"].version == 0,
            "selftest: compute_update of an added org",
        )
        done.append("compute_update")

        # Applying: the BatchSize update yields the genesis config with only BatchSize changed ...
        result = apply_update(CHANNEL, chain.config, update)
        expected = configtx_pb2.ConfigGroup()
        expected.CopyFrom(chain.config.channel_group)
        expected.groups["Orderer"].values["BatchSize"].CopyFrom(want_write.groups["Orderer"].values["BatchSize"])
        require(result == expected, "selftest: apply_update of the BatchSize update")
        # ... and a config envelope carrying it passes the config block checks; a wrong one fails.
        admin = ids["orderer_admin"]
        update_env = config_update_envelope(update, [admin], admin)

        def config_block(group, previous, signer=ids["orderer"]):
            ce = configtx_pb2.ConfigEnvelope(config=configtx_pb2.Config(sequence=1, channel_group=group), last_update=update_env)
            e, _ = make_envelope(signer, common_pb2.CONFIG, ce.SerializeToString(), with_tx_id=False)
            block = next_block(previous, [e.SerializeToString()])
            orderer_sign_block(block, ids["orderer"], block.header.number)
            return block

        b2 = config_block(result, b1)
        require(chain.add(b2)["sequence"] == 1 and batch_size_of(chain.config.channel_group).max_message_count == 1, "selftest: config block")
        wrong = configtx_pb2.ConfigGroup()
        wrong.CopyFrom(result)
        wrong.groups["Orderer"].values["BatchSize"].version = 2
        probe = Chain(genesis_bytes)
        probe.add(genesis)
        probe.add(b1)
        expect_failure("config not what last_update produces", lambda: probe.add(config_block(wrong, b1)), "differs")
        probe = Chain(genesis_bytes)
        probe.add(genesis)
        probe.add(b1)
        expect_failure("config envelope signed by the admin", lambda: probe.add(config_block(result, b1, signer=admin)), "NodeOU 'admin'")
        # The refused updates of `run` are refused by the structural rules too.
        stale = compute_update(CHANNEL, Chain(genesis_bytes).config, updated_config(Chain(genesis_bytes).config, set_max_message_count(2)))
        expect_failure("stale version", lambda: apply_update(CHANNEL, chain.config, stale), "is at version 1")
        stale_read = configtx_pb2.ConfigUpdate()
        stale_read.CopyFrom(stale)
        stale_read.read_set.groups["Orderer"].values["BatchSize"].version = 0
        expect_failure("stale read set", lambda: apply_update(CHANNEL, chain.config, stale_read), "currently at version 1")
        again = compute_update(CHANNEL, chain.config, updated_config(chain.config, set_max_message_count(2)))
        require(again.write_set.groups["Orderer"].values["BatchSize"].version == 2, "selftest: second update writes version 2")
        apply_update(CHANNEL, chain.config, again)
        done.append("apply_update_and_config_blocks")

    print(json.dumps({"ok": True, "selftest": done}, sort_keys=True), flush=True)


def _varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# ============================================================================================
# Main
# ============================================================================================


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup", help="make the orgs, identities, genesis block and orderer.toml")
    p.add_argument("--dir", required=True)
    p.add_argument("--port", required=True, type=int)
    p = sub.add_parser("run", help="drive an orderer started on <dir>/orderer.toml")
    p.add_argument("--dir", required=True)
    p.add_argument("--endpoint", required=True, help="host:port")
    sub.add_parser("selftest", help="check this script's pure parts")
    args = parser.parse_args()
    started = time.monotonic()
    try:
        {"setup": setup, "run": run, "selftest": selftest}[args.command](args)
    except CheckFailed as e:
        print(f"fabric_channel: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # anything unexpected is a failure too, with its traceback
        import traceback

        traceback.print_exc()
        print(f"fabric_channel: FAILED: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"fabric_channel: {args.command} ok in {time.monotonic() - started:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
