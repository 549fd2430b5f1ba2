//! Fabric's `authorizeUpdate` (FABRIC-CONFIG.md §5.2–5.3, `common/configtx`): a CONFIG_UPDATE's
//! read set must match the current config, its changed elements (the delta) must each bump their
//! version by one under the *current* element's mod_policy (new elements need version 0 and no
//! policy), and the new tree is rebuilt from the overlay, each group listing its children as its
//! own entry says — so adding or removing a child needs the parent bumped. Also the commit-time
//! re-check of a CONFIG envelope (`Validator.Validate`).
//!
//! Policies are evaluated by the caller's `check(absolute_path, signatures)`.
//! Maps are walked in key order, so when several elements are at fault the error names the
//! first key (Fabric's choice is random).

use std::collections::BTreeMap;

use ordo_proto::common::{
    ChannelHeader, Config, ConfigEnvelope, ConfigGroup, ConfigPolicy, ConfigUpdate,
    ConfigUpdateEnvelope, ConfigValue, Envelope, HeaderType, Payload, SignatureHeader,
};
use prost::Message;

use super::keys::{ADMINS, CHANNEL};
use super::ConfigTxError;
use crate::policies::SignedData;

/// A policy check: `Ok` when the signatures satisfy the policy at the absolute path (e.g.
/// `/Channel/Application/Org1/Admins`); `Err(reason)` otherwise, also for an unknown path.
pub type PolicyCheck<'a> = &'a dyn Fn(&str, &[SignedData]) -> Result<(), String>;

const GROUP_PREFIX: &str = "[Group]  ";
const VALUE_PREFIX: &str = "[Value]  ";
const POLICY_PREFIX: &str = "[Policy] ";
/// The legacy fix: a config that has orderer capabilities gets `Admins` wherever a mod_policy
/// is empty (configs from before mod_policies were always set).
const ORDERER_CAPABILITIES_KEY: &str = "[Value]  /Channel/Orderer/Capabilities";

#[derive(Clone, Copy)]
enum Item<'a> {
    Group(&'a ConfigGroup),
    Value(&'a ConfigValue),
    Policy(&'a ConfigPolicy),
}

/// One flattened element: its parent path (from `Channel`), its own key, and the element.
#[derive(Clone)]
struct Entry<'a> {
    path: Vec<String>,
    key: String,
    item: Item<'a>,
}

impl Entry<'_> {
    fn version(&self) -> u64 {
        match self.item {
            Item::Group(g) => g.version,
            Item::Value(v) => v.version,
            Item::Policy(p) => p.version,
        }
    }

    fn mod_policy(&self) -> &str {
        match self.item {
            Item::Group(g) => &g.mod_policy,
            Item::Value(v) => &v.mod_policy,
            Item::Policy(p) => &p.mod_policy,
        }
    }

    /// The absolute path of this element's mod_policy, resolved as Fabric's `policyForItem`:
    /// absolute as given; relative on the root group against the root; relative on another
    /// group against that group itself; relative on a value or policy against its group.
    fn policy_path(&self) -> String {
        let mp = self.mod_policy();
        if mp.starts_with('/') {
            return mp.to_string();
        }
        let mut base: Vec<&str> = self.path.iter().map(String::as_str).collect();
        // The root group (no parent path) and any group resolve against themselves.
        if base.is_empty() || matches!(self.item, Item::Group(_)) {
            base.push(&self.key);
        }
        format!("/{}/{mp}", base.join("/"))
    }
}

type ConfigMap<'a> = BTreeMap<String, Entry<'a>>;

/// Fabric's config ID rule: 1–249 characters of `[a-zA-Z0-9.-]`, not `.` or `..`.
fn validate_config_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("config ID illegal, cannot be empty".into());
    }
    if id.len() > 249 {
        return Err("config ID illegal, cannot be longer than 249".into());
    }
    if id == "." || id == ".." {
        return Err(format!("name '{id}' for config ID is not allowed"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(format!("config ID '{id}' contains illegal characters"));
    }
    Ok(())
}

fn add_entry<'a>(map: &mut ConfigMap<'a>, entry: Entry<'a>) -> Result<(), ConfigTxError> {
    let prefix = match entry.item {
        Item::Group(_) => GROUP_PREFIX,
        Item::Value(_) => VALUE_PREFIX,
        Item::Policy(_) => POLICY_PREFIX,
    };
    let mut full = String::from(prefix);
    for p in &entry.path {
        full.push('/');
        full.push_str(p);
    }
    full.push('/');
    full.push_str(&entry.key);
    validate_config_id(&entry.key)
        .map_err(|e| ConfigTxError::invalid(&full, format!("illegal characters in key: {e}")))?;
    map.insert(full, entry);
    Ok(())
}

fn flatten_group<'a>(
    map: &mut ConfigMap<'a>,
    path: &[String],
    key: &str,
    group: &'a ConfigGroup,
) -> Result<(), ConfigTxError> {
    add_entry(
        map,
        Entry {
            path: path.to_vec(),
            key: key.into(),
            item: Item::Group(group),
        },
    )?;
    let mut here = path.to_vec();
    here.push(key.into());
    for (k, child) in &group.groups {
        flatten_group(map, &here, k, child)?;
    }
    for (k, v) in &group.values {
        add_entry(
            map,
            Entry {
                path: here.clone(),
                key: k.clone(),
                item: Item::Value(v),
            },
        )?;
    }
    for (k, p) in &group.policies {
        add_entry(
            map,
            Entry {
                path: here.clone(),
                key: k.clone(),
                item: Item::Policy(p),
            },
        )?;
    }
    Ok(())
}

/// Flattens a tree rooted at `Channel` into `[Group]  /Channel/...`-style keys (§5.2).
fn map_config(root: Option<&ConfigGroup>) -> Result<ConfigMap<'_>, ConfigTxError> {
    let mut map = ConfigMap::new();
    if let Some(root) = root {
        flatten_group(&mut map, &[], CHANNEL, root)?;
    }
    Ok(map)
}

/// The ConfigSignatures of an update as SignedData: data = signature_header ‖ config_update
/// (the received bytes), identity = the header's creator. The outer envelope's signature is
/// not among them. A signature header that does not decode fails the whole update.
pub fn config_signatures(update: &ConfigUpdateEnvelope) -> Result<Vec<SignedData>, ConfigTxError> {
    update
        .signatures
        .iter()
        .enumerate()
        .map(|(i, sig)| {
            let header = SignatureHeader::decode(sig.signature_header.as_ref()).map_err(|e| {
                ConfigTxError::invalid(
                    format!("config update signature {i}"),
                    format!("signature header does not decode: {e}"),
                )
            })?;
            let mut data =
                Vec::with_capacity(sig.signature_header.len() + update.config_update.len());
            data.extend_from_slice(&sig.signature_header);
            data.extend_from_slice(&update.config_update);
            Ok(SignedData {
                data: data.into(),
                identity: header.creator,
                signature: sig.signature.clone(),
            })
        })
        .collect()
}

/// The ConfigUpdateEnvelope a CONFIG_UPDATE envelope carries (`EnvelopeToConfigUpdate`): the
/// payload's channel header must say CONFIG_UPDATE.
pub fn config_update_envelope(envelope: &Envelope) -> Result<ConfigUpdateEnvelope, ConfigTxError> {
    let bad = |reason: String| ConfigTxError::invalid("config update envelope", reason);
    let payload = Payload::decode(envelope.payload.as_ref())
        .map_err(|e| bad(format!("payload does not decode: {e}")))?;
    let header = payload
        .header
        .ok_or_else(|| bad("envelope must have a Header".into()))?;
    let channel_header = ChannelHeader::decode(header.channel_header.as_ref())
        .map_err(|e| bad(format!("channel header does not decode: {e}")))?;
    if channel_header.r#type != HeaderType::ConfigUpdate as i32 {
        return Err(bad(format!(
            "invalid type {}, expected CONFIG_UPDATE",
            channel_header.r#type
        )));
    }
    ConfigUpdateEnvelope::decode(payload.data.as_ref())
        .map_err(|e| bad(format!("ConfigUpdateEnvelope does not decode: {e}")))
}

/// Applies `update` to `current` for channel `channel_id` as Fabric's `authorizeUpdate` and
/// `configMapToConfig` do, giving the next config (sequence + 1). Every error is BAD_REQUEST.
pub fn authorize_update(
    current: &Config,
    channel_id: &str,
    update: &ConfigUpdateEnvelope,
    check: PolicyCheck<'_>,
) -> Result<Config, ConfigTxError> {
    let current_root = current
        .channel_group
        .as_ref()
        .ok_or_else(|| ConfigTxError::invalid("current config", "nil channel group"))?;
    if !super::valid_channel_id(channel_id) {
        return Err(ConfigTxError::invalid(
            "channel id",
            format!("bad channel ID: '{channel_id}' contains illegal characters"),
        ));
    }
    let current_map = map_config(Some(current_root))?;

    let config_update = ConfigUpdate::decode(update.config_update.as_ref()).map_err(|e| {
        ConfigTxError::invalid(
            "config update",
            format!("ConfigUpdate does not decode: {e}"),
        )
    })?;
    if config_update.channel_id != channel_id {
        return Err(ConfigTxError::invalid(
            "config update",
            format!(
                "ConfigUpdate for channel '{}' but envelope for channel '{channel_id}'",
                config_update.channel_id
            ),
        ));
    }

    let read_set = map_config(config_update.read_set.as_ref())?;
    for (key, entry) in &read_set {
        let existing = current_map.get(key).ok_or_else(|| {
            ConfigTxError::invalid(
                key,
                format!(
                    "existing config does not contain element for {key} but was in the read set"
                ),
            )
        })?;
        if existing.version() != entry.version() {
            return Err(ConfigTxError::invalid(
                key,
                format!(
                    "proposed update requires that key {key} be at version {}, but it is currently at version {}",
                    entry.version(),
                    existing.version()
                ),
            ));
        }
    }

    let write_set = map_config(config_update.write_set.as_ref())?;
    let delta: ConfigMap<'_> = write_set
        .iter()
        .filter(|(key, entry)| {
            read_set
                .get(*key)
                .is_none_or(|read| read.version() != entry.version())
        })
        .map(|(k, e)| (k.clone(), e.clone()))
        .collect();

    let signatures = config_signatures(update)?;
    verify_delta(&delta, &current_map, &signatures, check)?;

    let mut result = current_map.clone();
    result.extend(delta);
    if let Some(key) = write_set.keys().find(|k| !result.contains_key(*k)) {
        // Unreachable by construction (every write-set key is in the delta or the current
        // config); kept because Fabric checks it.
        return Err(ConfigTxError::invalid(
            key,
            format!("writeset contained key {key} which did not appear in proposed config"),
        ));
    }

    let fix_mod_policies = result.contains_key(ORDERER_CAPABILITIES_KEY);
    let root = rebuild(&format!("/{CHANNEL}"), &result, fix_mod_policies)?;
    let sequence = current.sequence.checked_add(1).ok_or_else(|| {
        ConfigTxError::invalid("current config", "sequence cannot advance past u64::MAX")
    })?;
    Ok(Config {
        sequence,
        channel_group: Some(root),
    })
}

fn verify_delta(
    delta: &ConfigMap<'_>,
    current: &ConfigMap<'_>,
    signatures: &[SignedData],
    check: PolicyCheck<'_>,
) -> Result<(), ConfigTxError> {
    if delta.is_empty() {
        return Err(ConfigTxError::invalid(
            "config update",
            "delta set was empty -- update would have no effect",
        ));
    }
    for (key, entry) in delta {
        validate_mod_policy(entry.mod_policy()).map_err(|e| {
            ConfigTxError::invalid(key, format!("invalid mod_policy for element {key}: {e}"))
        })?;
        let Some(existing) = current.get(key) else {
            if entry.version() != 0 {
                return Err(ConfigTxError::invalid(
                    key,
                    format!(
                        "attempted to set key {key} to version {}, but key does not exist",
                        entry.version()
                    ),
                ));
            }
            continue;
        };
        if entry.version() != existing.version().wrapping_add(1) {
            return Err(ConfigTxError::invalid(
                key,
                format!(
                    "attempt to set key {key} to version {}, but key is at version {}",
                    entry.version(),
                    existing.version()
                ),
            ));
        }
        if existing.mod_policy().is_empty() {
            // Fabric looks up the empty name and finds no policy.
            return Err(ConfigTxError::invalid(
                key,
                format!("unexpected missing policy  for item {key}"),
            ));
        }
        let policy = existing.policy_path();
        check(&policy, signatures).map_err(|reason| ConfigTxError::PolicyNotSatisfied {
            key: key.clone(),
            policy,
            reason,
        })?;
    }
    Ok(())
}

/// A new mod_policy must be non-empty and each `/`-separated part (one leading `/` dropped) a
/// valid config ID.
fn validate_mod_policy(mod_policy: &str) -> Result<(), String> {
    if mod_policy.is_empty() {
        return Err("mod_policy not set".into());
    }
    let trimmed = mod_policy.strip_prefix('/').unwrap_or(mod_policy);
    for (i, part) in trimmed.split('/').enumerate() {
        validate_config_id(part).map_err(|e| format!("path element at {i} is invalid: {e}"))?;
    }
    Ok(())
}

/// `recurseConfigMap`: the group at `path` with its children as *its own entry* lists them, each
/// child taken from the map.
fn rebuild(path: &str, map: &ConfigMap<'_>, fix: bool) -> Result<ConfigGroup, ConfigTxError> {
    let group_key = format!("{GROUP_PREFIX}{path}");
    let group = match map.get(&group_key).map(|e| e.item) {
        Some(Item::Group(g)) => g,
        _ => {
            return Err(ConfigTxError::invalid(
                &group_key,
                format!("missing group at path: {group_key}"),
            ))
        }
    };
    let mut out = ConfigGroup {
        version: group.version,
        groups: Default::default(),
        values: Default::default(),
        policies: Default::default(),
        mod_policy: group.mod_policy.clone(),
    };
    for key in group.groups.keys() {
        out.groups
            .insert(key.clone(), rebuild(&format!("{path}/{key}"), map, fix)?);
    }
    for key in group.values.keys() {
        let value_key = format!("{VALUE_PREFIX}{path}/{key}");
        match map.get(&value_key).map(|e| e.item) {
            Some(Item::Value(v)) => {
                out.values.insert(key.clone(), v.clone());
            }
            _ => {
                return Err(ConfigTxError::invalid(
                    &value_key,
                    format!("missing value at path: {value_key}"),
                ))
            }
        }
    }
    for key in group.policies.keys() {
        let policy_key = format!("{POLICY_PREFIX}{path}/{key}");
        match map.get(&policy_key).map(|e| e.item) {
            Some(Item::Policy(p)) => {
                out.policies.insert(key.clone(), p.clone());
            }
            _ => {
                return Err(ConfigTxError::invalid(
                    &policy_key,
                    format!("missing policy at path: {policy_key}"),
                ))
            }
        }
    }
    if fix {
        if out.mod_policy.is_empty() {
            out.mod_policy = ADMINS.into();
        }
        for v in out.values.values_mut() {
            if v.mod_policy.is_empty() {
                v.mod_policy = ADMINS.into();
            }
        }
        for p in out.policies.values_mut() {
            if p.mod_policy.is_empty() {
                p.mod_policy = ADMINS.into();
            }
        }
    }
    Ok(out)
}

/// `ProposeConfigUpdate`'s configtx part: the ConfigEnvelope {next config, last_update: the
/// received CONFIG_UPDATE envelope} the orderer will wrap in its CONFIG envelope.
pub fn propose_config_update(
    current: &Config,
    channel_id: &str,
    update: &Envelope,
    check: PolicyCheck<'_>,
) -> Result<ConfigEnvelope, ConfigTxError> {
    let update_envelope = config_update_envelope(update)?;
    let config = authorize_update(current, channel_id, &update_envelope, check)?;
    Ok(ConfigEnvelope {
        config: Some(config),
        last_update: Some(update.clone()),
    })
}

/// The commit-time check of a CONFIG envelope's payload (`Validator.Validate`): sequence is
/// current + 1, and re-running authorizeUpdate on last_update yields an equal channel group
/// (maps compare as maps). Returns the config to adopt.
pub fn check_config_envelope(
    current: &Config,
    envelope: &ConfigEnvelope,
    channel_id: &str,
    check: PolicyCheck<'_>,
) -> Result<Config, ConfigTxError> {
    let config = envelope.config.as_ref().ok_or_else(|| {
        ConfigTxError::invalid("config envelope", "config envelope has nil config")
    })?;
    if config.sequence != current.sequence.wrapping_add(1) {
        return Err(ConfigTxError::invalid(
            "config envelope",
            format!(
                "config currently at sequence {}, cannot validate config at sequence {}",
                current.sequence, config.sequence
            ),
        ));
    }
    let last_update = envelope.last_update.as_ref().ok_or_else(|| {
        ConfigTxError::invalid("config envelope", "config envelope has no last_update")
    })?;
    let update = config_update_envelope(last_update)?;
    let produced = authorize_update(current, channel_id, &update, check)?;
    if produced.channel_group != config.channel_group {
        return Err(ConfigTxError::invalid(
            "config envelope",
            "ConfigEnvelope LastUpdate did not produce the supplied config result",
        ));
    }
    Ok(produced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configtx::genesis::tests::{msp, sample_profile};
    use crate::configtx::genesis::{config, implicit_meta, signed_by_any};
    use crate::configtx::values::ChannelValues;
    use crate::msp::Role;
    use bytes::Bytes;
    use ordo_proto::common::{implicit_meta_policy, ConfigSignature, Header};
    use ordo_proto::orderer::BatchSize;
    use std::cell::RefCell;

    fn current() -> Config {
        config(&sample_profile()).unwrap()
    }

    fn group_at<'a>(root: &'a ConfigGroup, path: &[&str]) -> &'a ConfigGroup {
        path.iter().fold(root, |g, p| &g.groups[*p])
    }

    /// A bare group at `g`'s version, no children: what a read/write set lists as a parent.
    fn shell(g: &ConfigGroup) -> ConfigGroup {
        ConfigGroup {
            version: g.version,
            mod_policy: g.mod_policy.clone(),
            ..Default::default()
        }
    }

    /// A read set's view of a group being modified: its children as shells, its values and
    /// policies as they are (all at their current versions), as configtxlator computes it.
    fn read_group(g: &ConfigGroup) -> ConfigGroup {
        let mut r = shell(g);
        for (k, c) in &g.groups {
            r.groups.insert(k.clone(), shell(c));
        }
        r.values = g.values.clone();
        r.policies = g.policies.clone();
        r
    }

    fn envelope(channel: &str, read: ConfigGroup, write: ConfigGroup) -> ConfigUpdateEnvelope {
        let update = ConfigUpdate {
            channel_id: channel.into(),
            read_set: Some(read),
            write_set: Some(write),
            ..Default::default()
        };
        let header = SignatureHeader {
            creator: Bytes::from_static(b"admin"),
            nonce: Bytes::from_static(b"n"),
        };
        ConfigUpdateEnvelope {
            config_update: update.encode_to_vec().into(),
            signatures: vec![ConfigSignature {
                signature_header: header.encode_to_vec().into(),
                signature: Bytes::from_static(b"sig"),
            }],
        }
    }

    /// Records each checked path; denies the paths in `deny`.
    struct Recorder {
        seen: RefCell<Vec<String>>,
        deny: Vec<&'static str>,
    }

    impl Recorder {
        fn new(deny: &[&'static str]) -> Recorder {
            Recorder {
                seen: RefCell::new(Vec::new()),
                deny: deny.to_vec(),
            }
        }
        fn check(&self, path: &str, signed: &[SignedData]) -> Result<(), String> {
            assert_eq!(signed.len(), 1);
            assert_eq!(signed[0].identity.as_ref(), b"admin");
            self.seen.borrow_mut().push(path.into());
            if self.deny.contains(&path) {
                Err("signature set did not satisfy policy".into())
            } else {
                Ok(())
            }
        }
    }

    fn batch_size_update(cur: &Config, version: u64, max: u32) -> ConfigUpdateEnvelope {
        let root = cur.channel_group.as_ref().unwrap();
        let orderer = group_at(root, &["Orderer"]);
        let mut read = shell(root);
        read.groups.insert("Orderer".into(), shell(orderer));
        let mut write = read.clone();
        let mut value = orderer.values["BatchSize"].clone();
        value.version = version;
        value.value = BatchSize {
            max_message_count: max,
            absolute_max_bytes: 10 * 1024 * 1024,
            preferred_max_bytes: 2 * 1024 * 1024,
        }
        .encode_to_vec()
        .into();
        write
            .groups
            .get_mut("Orderer")
            .unwrap()
            .values
            .insert("BatchSize".into(), value);
        envelope("mychannel", read, write)
    }

    #[test]
    fn batch_size_change_accepted() {
        let cur = current();
        let rec = Recorder::new(&[]);
        let next = authorize_update(
            &cur,
            "mychannel",
            &batch_size_update(&cur, 1, 42),
            &|p, s| rec.check(p, s),
        )
        .unwrap();
        assert_eq!(next.sequence, cur.sequence + 1);
        assert_eq!(*rec.seen.borrow(), ["/Channel/Orderer/Admins"]);
        let v = ChannelValues::from_config(&next).unwrap();
        assert_eq!(v.batch_size.max_message_count, 42);
        let root = next.channel_group.as_ref().unwrap();
        assert_eq!(root.groups["Orderer"].values["BatchSize"].version, 1);
        // Everything else unchanged.
        assert_eq!(
            root.groups["Application"],
            cur.channel_group.as_ref().unwrap().groups["Application"]
        );
        assert_eq!(root.groups["Orderer"].version, 0);
    }

    #[test]
    fn old_mod_policy_is_checked() {
        let cur = current();
        // The write set proposes a laxer mod_policy; the current one (Admins → /Channel/Orderer/Admins) governs.
        let mut upd = batch_size_update(&cur, 1, 42);
        let mut cu = ConfigUpdate::decode(upd.config_update.clone()).unwrap();
        cu.write_set
            .as_mut()
            .unwrap()
            .groups
            .get_mut("Orderer")
            .unwrap()
            .values
            .get_mut("BatchSize")
            .unwrap()
            .mod_policy = "/Channel/Readers".into();
        upd.config_update = cu.encode_to_vec().into();
        let rec = Recorder::new(&["/Channel/Orderer/Admins"]);
        let err = authorize_update(&cur, "mychannel", &upd, &|p, s| rec.check(p, s)).unwrap_err();
        assert_eq!(*rec.seen.borrow(), ["/Channel/Orderer/Admins"]);
        assert!(
            matches!(err, ConfigTxError::PolicyNotSatisfied { ref key, .. } if key == "[Value]  /Channel/Orderer/BatchSize"),
            "{err}"
        );
    }

    #[test]
    fn stale_read_set_names_key() {
        let cur = current();
        let mut upd = batch_size_update(&cur, 1, 42);
        let mut cu = ConfigUpdate::decode(upd.config_update.clone()).unwrap();
        cu.read_set
            .as_mut()
            .unwrap()
            .groups
            .get_mut("Orderer")
            .unwrap()
            .version = 3;
        upd.config_update = cu.encode_to_vec().into();
        let err = authorize_update(&cur, "mychannel", &upd, &|_, _| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "key [Group]  /Channel/Orderer be at version 3, but it is currently at version 0"
            ),
            "{err}"
        );
        // An element the config lacks.
        let mut cu = ConfigUpdate::decode(upd.config_update.clone()).unwrap();
        cu.read_set
            .as_mut()
            .unwrap()
            .groups
            .insert("Nope".into(), ConfigGroup::default());
        upd.config_update = cu.encode_to_vec().into();
        let err = authorize_update(&cur, "mychannel", &upd, &|_, _| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not contain element for [Group]  /Channel/Nope"),
            "{err}"
        );
    }

    #[test]
    fn unbumped_change_has_no_effect() {
        let cur = current();
        // In the read set at version 0 and written at version 0 (with other content): not in
        // the delta, so nothing changes and the update is refused as empty.
        let mut upd = batch_size_update(&cur, 0, 42);
        let mut cu = ConfigUpdate::decode(upd.config_update.clone()).unwrap();
        let stored =
            cur.channel_group.as_ref().unwrap().groups["Orderer"].values["BatchSize"].clone();
        cu.read_set
            .as_mut()
            .unwrap()
            .groups
            .get_mut("Orderer")
            .unwrap()
            .values
            .insert("BatchSize".into(), stored);
        upd.config_update = cu.encode_to_vec().into();
        let err = authorize_update(&cur, "mychannel", &upd, &|_, _| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("delta set was empty"), "{err}");
        // Without it in the read set, the write is in the delta and needs version 1.
        let err = authorize_update(
            &cur,
            "mychannel",
            &batch_size_update(&cur, 0, 42),
            &|_, _| Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("attempt to set key [Value]  /Channel/Orderer/BatchSize to version 0, but key is at version 0"), "{err}");
    }

    #[test]
    fn version_jump_refused() {
        let cur = current();
        let err = authorize_update(
            &cur,
            "mychannel",
            &batch_size_update(&cur, 2, 42),
            &|_, _| Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("to version 2, but key is at version 0"),
            "{err}"
        );
    }

    fn new_org() -> ConfigGroup {
        let mut g = ConfigGroup {
            mod_policy: "Admins".into(),
            ..Default::default()
        };
        for (name, role) in [
            ("Readers", Role::Member),
            ("Writers", Role::Member),
            ("Admins", Role::Admin),
            ("Endorsement", Role::Member),
        ] {
            g.policies.insert(
                name.into(),
                ConfigPolicy {
                    version: 0,
                    policy: Some(signed_by_any("Org3MSP", &[role])),
                    mod_policy: "Admins".into(),
                },
            );
        }
        g.values.insert(
            "MSP".into(),
            ConfigValue {
                version: 0,
                value: msp("Org3MSP").encode_to_vec().into(),
                mod_policy: "Admins".into(),
            },
        );
        g
    }

    fn add_org_update(cur: &Config, bump: bool, org_version: u64) -> ConfigUpdateEnvelope {
        let root = cur.channel_group.as_ref().unwrap();
        let app = group_at(root, &["Application"]);
        let mut read = shell(root);
        let app_read = read_group(app);
        read.groups.insert("Application".into(), app_read.clone());
        let mut write = shell(root);
        let mut app_write = app_read;
        if bump {
            app_write.version += 1;
        }
        let mut org = new_org();
        org.version = org_version;
        app_write.groups.insert("Org3".into(), org);
        write.groups.insert("Application".into(), app_write);
        envelope("mychannel", read, write)
    }

    #[test]
    fn adding_an_org_requires_bumping_the_parent() {
        let cur = current();
        let rec = Recorder::new(&[]);
        // Without the bump the new org is validated (version 0, no policy) but not listed by
        // its unchanged parent.
        let next = authorize_update(
            &cur,
            "mychannel",
            &add_org_update(&cur, false, 0),
            &|p, s| rec.check(p, s),
        )
        .unwrap();
        assert!(!next.channel_group.as_ref().unwrap().groups["Application"]
            .groups
            .contains_key("Org3"));
        assert!(rec.seen.borrow().is_empty());
        // With it, under the Application group's own Admins.
        let rec = Recorder::new(&[]);
        let next = authorize_update(
            &cur,
            "mychannel",
            &add_org_update(&cur, true, 0),
            &|p, s| rec.check(p, s),
        )
        .unwrap();
        let app = &next.channel_group.as_ref().unwrap().groups["Application"];
        assert_eq!(app.version, 1);
        assert_eq!(app.groups["Org3"], new_org());
        assert!(app.groups.contains_key("Org1") && app.groups.contains_key("Org2"));
        assert_eq!(*rec.seen.borrow(), ["/Channel/Application/Admins"]);
        let v = ChannelValues::from_config(&next).unwrap();
        assert_eq!(v.application_orgs().len(), 3);
        // Denied parent policy → refused.
        let rec = Recorder::new(&["/Channel/Application/Admins"]);
        let err = authorize_update(
            &cur,
            "mychannel",
            &add_org_update(&cur, true, 0),
            &|p, s| rec.check(p, s),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("policy for [Group]  /Channel/Application not satisfied"),
            "{err}"
        );
    }

    #[test]
    fn new_element_must_be_version_zero() {
        let cur = current();
        let err = authorize_update(
            &cur,
            "mychannel",
            &add_org_update(&cur, true, 1),
            &|_, _| Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("attempted to set key [Group]  /Channel/Application/Org3 to version 1, but key does not exist"), "{err}");
    }

    #[test]
    fn removing_an_org_by_bumping_the_group() {
        let cur = current();
        let root = cur.channel_group.as_ref().unwrap();
        let app = group_at(root, &["Application"]);
        let mut read = shell(root);
        let mut app_read = read_group(app);
        app_read.groups.remove("Org2");
        read.groups.insert("Application".into(), app_read.clone());
        let mut write = shell(root);
        let mut app_write = app_read;
        app_write.version = 1;
        write.groups.insert("Application".into(), app_write);
        let rec = Recorder::new(&[]);
        let next = authorize_update(
            &cur,
            "mychannel",
            &envelope("mychannel", read, write),
            &|p, s| rec.check(p, s),
        )
        .unwrap();
        let app = &next.channel_group.as_ref().unwrap().groups["Application"];
        let orgs: Vec<&String> = app.groups.keys().collect();
        assert_eq!(orgs, ["Org1"]);
        assert_eq!(app.policies.len(), 5);
        // Only the parent's policy: the removed subtree's own mod_policy is not consulted.
        assert_eq!(*rec.seen.borrow(), ["/Channel/Application/Admins"]);
    }

    #[test]
    fn wrong_channel_refused() {
        let cur = current();
        let mut upd = batch_size_update(&cur, 1, 42);
        let mut cu = ConfigUpdate::decode(upd.config_update.clone()).unwrap();
        cu.channel_id = "other".into();
        upd.config_update = cu.encode_to_vec().into();
        let err = authorize_update(&cur, "mychannel", &upd, &|_, _| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ConfigUpdate for channel 'other' but envelope for channel 'mychannel'"),
            "{err}"
        );
    }

    #[test]
    fn changing_a_policy() {
        let cur = current();
        let root = cur.channel_group.as_ref().unwrap();
        let org1 = group_at(root, &["Application", "Org1"]);
        let mut read = shell(root);
        let mut app = shell(&root.groups["Application"]);
        app.groups.insert("Org1".into(), shell(org1));
        read.groups.insert("Application".into(), app);
        let mut write = read.clone();
        let newp = ConfigPolicy {
            version: 1,
            policy: Some(implicit_meta(implicit_meta_policy::Rule::Any, "Writers")),
            mod_policy: "Admins".into(),
        };
        write
            .groups
            .get_mut("Application")
            .unwrap()
            .groups
            .get_mut("Org1")
            .unwrap()
            .policies
            .insert("Writers".into(), newp.clone());
        let rec = Recorder::new(&[]);
        let next = authorize_update(
            &cur,
            "mychannel",
            &envelope("mychannel", read, write),
            &|p, s| rec.check(p, s),
        )
        .unwrap();
        assert_eq!(
            next.channel_group.as_ref().unwrap().groups["Application"].groups["Org1"].policies
                ["Writers"],
            newp
        );
        assert_eq!(*rec.seen.borrow(), ["/Channel/Application/Org1/Admins"]);
    }

    #[test]
    fn bad_keys_and_mod_policies() {
        let cur = current();
        let root = cur.channel_group.as_ref().unwrap();
        let mut write = shell(root);
        write.version = 1;
        write
            .values
            .insert("bad key!".into(), ConfigValue::default());
        let err = authorize_update(
            &cur,
            "mychannel",
            &envelope("mychannel", shell(root), write),
            &|_, _| Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("illegal characters"), "{err}");
        let mut write = shell(root);
        write.mod_policy = "/Channel/../Admins".into();
        write.version = 1;
        let err = authorize_update(
            &cur,
            "mychannel",
            &envelope("mychannel", shell(root), write),
            &|_, _| Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("invalid mod_policy for element [Group]  /Channel"),
            "{err}"
        );
    }

    fn wrap(update: &ConfigUpdateEnvelope) -> Envelope {
        let ch = ChannelHeader {
            r#type: HeaderType::ConfigUpdate as i32,
            channel_id: "mychannel".into(),
            ..Default::default()
        };
        let payload = Payload {
            header: Some(Header {
                channel_header: ch.encode_to_vec().into(),
                signature_header: Bytes::new(),
            }),
            data: update.encode_to_vec().into(),
        };
        Envelope {
            payload: payload.encode_to_vec().into(),
            signature: Bytes::new(),
        }
    }

    #[test]
    fn commit_time_recheck() {
        let cur = current();
        let env = wrap(&batch_size_update(&cur, 1, 42));
        let proposed = propose_config_update(&cur, "mychannel", &env, &|_, _| Ok(())).unwrap();
        let adopted = check_config_envelope(&cur, &proposed, "mychannel", &|_, _| Ok(())).unwrap();
        assert_eq!(Some(&adopted), proposed.config.as_ref());

        let mut tampered = proposed.clone();
        tampered
            .config
            .as_mut()
            .unwrap()
            .channel_group
            .as_mut()
            .unwrap()
            .groups
            .get_mut("Orderer")
            .unwrap()
            .values
            .get_mut("BatchTimeout")
            .unwrap()
            .version = 9;
        let err = check_config_envelope(&cur, &tampered, "mychannel", &|_, _| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("did not produce the supplied config result"),
            "{err}"
        );

        let mut wrong_seq = proposed.clone();
        wrong_seq.config.as_mut().unwrap().sequence = 5;
        assert!(
            check_config_envelope(&cur, &wrong_seq, "mychannel", &|_, _| Ok(()))
                .unwrap_err()
                .to_string()
                .contains("cannot validate config at sequence 5")
        );

        let mut no_update = proposed.clone();
        no_update.last_update = None;
        assert!(check_config_envelope(&cur, &no_update, "mychannel", &|_, _| Ok(())).is_err());

        // A last_update that is not a CONFIG_UPDATE.
        let mut payload = Payload::decode(env.payload.clone()).unwrap();
        let ch = ChannelHeader {
            r#type: HeaderType::Config as i32,
            ..Default::default()
        };
        payload.header.as_mut().unwrap().channel_header = ch.encode_to_vec().into();
        let not_update = Envelope {
            payload: payload.encode_to_vec().into(),
            signature: Bytes::new(),
        };
        let err =
            propose_config_update(&cur, "mychannel", &not_update, &|_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("expected CONFIG_UPDATE"), "{err}");

        // The signatures must still satisfy the policy at commit.
        assert!(
            check_config_envelope(&cur, &proposed, "mychannel", &|_, _| Err("no".into())).is_err()
        );
    }

    #[test]
    fn signatures_as_signed_data() {
        let cur = current();
        let upd = batch_size_update(&cur, 1, 42);
        let sd = config_signatures(&upd).unwrap();
        let mut data = upd.signatures[0].signature_header.to_vec();
        data.extend_from_slice(&upd.config_update);
        assert_eq!(sd[0].data.as_ref(), data.as_slice());
        assert_eq!(sd[0].signature.as_ref(), b"sig");
        let mut bad = upd.clone();
        bad.signatures[0].signature_header = Bytes::from_static(&[0xff, 0xff]);
        assert!(config_signatures(&bad).is_err());
    }

    #[test]
    fn legacy_empty_mod_policies_fixed() {
        let mut cur = current();
        let root = cur.channel_group.as_mut().unwrap();
        root.groups
            .get_mut("Application")
            .unwrap()
            .values
            .get_mut("ACLs")
            .unwrap()
            .mod_policy
            .clear();
        let next = authorize_update(
            &cur,
            "mychannel",
            &batch_size_update(&cur, 1, 42),
            &|_, _| Ok(()),
        )
        .unwrap();
        assert_eq!(
            next.channel_group.unwrap().groups["Application"].values["ACLs"].mod_policy,
            "Admins"
        );
    }

    #[test]
    fn policy_paths_resolve() {
        let g = ConfigGroup {
            mod_policy: "Admins".into(),
            ..Default::default()
        };
        let v = ConfigValue {
            mod_policy: "Org1/Admins".into(),
            ..Default::default()
        };
        let abs = ConfigValue {
            mod_policy: "/Channel/Orderer/Admins".into(),
            ..Default::default()
        };
        let root = Entry {
            path: vec![],
            key: "Channel".into(),
            item: Item::Group(&g),
        };
        assert_eq!(root.policy_path(), "/Channel/Admins");
        let org = Entry {
            path: vec!["Channel".into(), "Application".into()],
            key: "Org1".into(),
            item: Item::Group(&g),
        };
        assert_eq!(org.policy_path(), "/Channel/Application/Org1/Admins");
        let val = Entry {
            path: vec!["Channel".into(), "Application".into()],
            key: "ACLs".into(),
            item: Item::Value(&v),
        };
        assert_eq!(val.policy_path(), "/Channel/Application/Org1/Admins");
        let val = Entry {
            path: vec!["Channel".into()],
            key: "OrdererAddresses".into(),
            item: Item::Value(&abs),
        };
        assert_eq!(val.policy_path(), "/Channel/Orderer/Admins");
    }
}
