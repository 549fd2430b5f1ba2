//! A deterministic encoding of config trees: the same bytes as prost's, except that map entries
//! are written in key order (prost follows HashMap order, which changes from run to run). The
//! bytes decode to the same messages, so Fabric reads them as it reads its own (Go, too,
//! writes maps in no fixed order, and nothing compares config bytes); what this buys is a
//! reproducible genesis block for the same profile, timestamp and nonce.
//!
//! Map entries are written with both key and value, as Go does; prost would omit defaults.

use ordo_proto::common::{Config, ConfigEnvelope, ConfigGroup};
use prost::encoding::{encode_key, encode_varint, WireType};
use prost::Message;

/// `ConfigEnvelope` with sorted maps throughout its config.
pub fn encode_config_envelope(envelope: &ConfigEnvelope) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(config) = &envelope.config {
        length_delimited(1, &encode_config(config), &mut out);
    }
    if let Some(last_update) = &envelope.last_update {
        // An Envelope holds no maps: prost's encoding is already deterministic.
        length_delimited(2, &last_update.encode_to_vec(), &mut out);
    }
    out
}

/// `Config` with sorted maps throughout.
pub fn encode_config(config: &Config) -> Vec<u8> {
    let mut out = Vec::new();
    if config.sequence != 0 {
        encode_key(1, WireType::Varint, &mut out);
        encode_varint(config.sequence, &mut out);
    }
    if let Some(group) = &config.channel_group {
        length_delimited(2, &encode_group(group), &mut out);
    }
    out
}

/// `ConfigGroup`: fields in number order, each map's entries by key.
pub fn encode_group(group: &ConfigGroup) -> Vec<u8> {
    let mut out = Vec::new();
    if group.version != 0 {
        encode_key(1, WireType::Varint, &mut out);
        encode_varint(group.version, &mut out);
    }
    let mut keys: Vec<&String> = group.groups.keys().collect();
    keys.sort();
    for key in keys {
        map_entry(2, key, &encode_group(&group.groups[key]), &mut out);
    }
    // ConfigValue and ConfigPolicy hold no maps, so prost encodes them deterministically.
    let mut keys: Vec<&String> = group.values.keys().collect();
    keys.sort();
    for key in keys {
        map_entry(3, key, &group.values[key].encode_to_vec(), &mut out);
    }
    let mut keys: Vec<&String> = group.policies.keys().collect();
    keys.sort();
    for key in keys {
        map_entry(4, key, &group.policies[key].encode_to_vec(), &mut out);
    }
    if !group.mod_policy.is_empty() {
        length_delimited(5, group.mod_policy.as_bytes(), &mut out);
    }
    out
}

fn length_delimited(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// A map entry is a message {1: key, 2: value}.
fn map_entry(tag: u32, key: &str, value: &[u8], out: &mut Vec<u8>) {
    let mut entry = Vec::with_capacity(key.len() + value.len() + 8);
    length_delimited(1, key.as_bytes(), &mut entry);
    length_delimited(2, value, &mut entry);
    length_delimited(tag, &entry, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configtx::genesis::config;
    use crate::configtx::genesis::tests::sample_profile;

    #[test]
    fn decodes_to_the_same_config_and_is_stable() {
        let cfg = config(&sample_profile()).unwrap();
        let bytes = encode_config(&cfg);
        assert_eq!(Config::decode(bytes.as_slice()).unwrap(), cfg);
        // A second build (other HashMap seeds) encodes identically.
        assert_eq!(encode_config(&config(&sample_profile()).unwrap()), bytes);
        let env = ConfigEnvelope {
            config: Some(Config { sequence: 3, ..cfg }),
            last_update: Some(Default::default()),
        };
        let decoded = ConfigEnvelope::decode(encode_config_envelope(&env).as_slice()).unwrap();
        assert_eq!(decoded, env);
        // A group with no content encodes as prost's would: empty.
        assert!(encode_group(&ConfigGroup::default()).is_empty());
    }
}
