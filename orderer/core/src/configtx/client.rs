//! The client side of a config update, as Fabric's `configtxlator compute_update` and
//! `peer channel signconfigtx` / `update` make one: the update of a value, its ConfigSignatures
//! and the CONFIG_UPDATE envelope that carries them.

use bytes::Bytes;
use ordo_proto::common::{
    Config, ConfigGroup, ConfigSignature, ConfigUpdate, ConfigUpdateEnvelope, ConfigValue,
    Envelope, HeaderType, SignatureHeader,
};
use prost::Message;

use super::keys::CHANNEL;
use super::ConfigTxError;
use crate::envelope;
use crate::msp::SigningIdentity;

/// The update that sets value `key` of the group at `path` (below /Channel, e.g.
/// `["Orderer"]`) to `value`, keeping its mod_policy: the read set pins the versions of the
/// groups on the way, the write set carries the value at its version + 1.
pub fn value_update(
    current: &Config,
    channel_id: &str,
    path: &[&str],
    key: &str,
    value: Bytes,
) -> Result<ConfigUpdate, ConfigTxError> {
    let mut group = current
        .channel_group
        .as_ref()
        .ok_or_else(|| ConfigTxError::invalid(format!("/{CHANNEL}"), "no channel group"))?;
    let mut versions = vec![group.version];
    let mut at = format!("/{CHANNEL}");
    for name in path {
        at = format!("{at}/{name}");
        group = group
            .groups
            .get(*name)
            .ok_or_else(|| ConfigTxError::invalid(&at, "no such group"))?;
        versions.push(group.version);
    }
    let existing = group
        .values
        .get(key)
        .ok_or_else(|| ConfigTxError::invalid(format!("{at}/{key}"), "no such value"))?;
    let changed = ConfigValue {
        version: existing.version + 1,
        value,
        mod_policy: existing.mod_policy.clone(),
    };
    // Built from the innermost group out: each level holds only the next one.
    let mut read = ConfigGroup {
        version: versions[path.len()],
        ..Default::default()
    };
    let mut write = read.clone();
    write.values.insert(key.to_string(), changed);
    for (depth, name) in path.iter().enumerate().rev() {
        let wrap = |inner: ConfigGroup| ConfigGroup {
            version: versions[depth],
            groups: [(name.to_string(), inner)].into(),
            ..Default::default()
        };
        read = wrap(read);
        write = wrap(write);
    }
    Ok(ConfigUpdate {
        channel_id: channel_id.to_string(),
        read_set: Some(read),
        write_set: Some(write),
        ..Default::default()
    })
}

/// `update` signed by each of `signers` (ConfigSignatures over signature_header ‖ update), in
/// a CONFIG_UPDATE envelope that `submitter` signs.
pub fn update_envelope(
    update: &ConfigUpdate,
    signers: &[&SigningIdentity],
    submitter: &SigningIdentity,
) -> Envelope {
    let config_update: Bytes = update.encode_to_vec().into();
    let signatures = signers
        .iter()
        .map(|signer| {
            let signature_header: Bytes = SignatureHeader {
                creator: signer.serialized().clone(),
                nonce: envelope::nonce(),
            }
            .encode_to_vec()
            .into();
            let mut message = Vec::with_capacity(signature_header.len() + config_update.len());
            message.extend_from_slice(&signature_header);
            message.extend_from_slice(&config_update);
            ConfigSignature {
                signature: signer.sign(&message).into(),
                signature_header,
            }
        })
        .collect();
    let data = ConfigUpdateEnvelope {
        config_update,
        signatures,
    };
    envelope::build(
        submitter,
        &update.channel_id,
        HeaderType::ConfigUpdate,
        data.encode_to_vec().into(),
    )
}
