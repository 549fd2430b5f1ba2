//! etcdraft's consensus metadata (FABRIC-CONFIG.md §7.1): decoding ConsensusType.metadata,
//! `VerifyConfigMetadata`, the one-consenter-at-a-time update rule, and the Raft ids a block's
//! consenter metadata carries. Certificates are checked by the caller's closure (chain to the
//! orderer orgs' TLS CAs, expiry ignored for the whole set; newly added consenters must in
//! addition not be expired, which the caller checks for [`ConsenterChange::added`]). The quorum
//! check on removal needs the live cluster and is the chain's.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use ordo_proto::etcdraft::{BlockMetadata, ConfigMetadata, Consenter};
use prost::Message;

use super::{duration, ConfigTxError};

const ELEMENT: &str = "/Channel/Orderer/ConsensusType";

fn err(reason: impl Into<String>) -> ConfigTxError {
    ConfigTxError::invalid(ELEMENT, reason)
}

pub fn decode_config_metadata(metadata: &[u8]) -> Result<ConfigMetadata, ConfigTxError> {
    ConfigMetadata::decode(metadata)
        .map_err(|e| err(format!("etcdraft metadata does not decode: {e}")))
}

/// The dial address of a consenter, `host:port` (as etcdraft formats it, no IPv6 brackets).
pub fn endpoint(consenter: &Consenter) -> String {
    format!("{}:{}", consenter.host, consenter.port)
}

/// `VerifyConfigMetadata`: options present and sane, a non-empty consenter set, each consenter's
/// client and server certificate accepted by `verify_cert` (given the PEM bytes), and no
/// certificate used by two consenters.
pub fn verify_config_metadata(
    metadata: &ConfigMetadata,
    verify_cert: &dyn Fn(&[u8]) -> Result<(), String>,
) -> Result<(), ConfigTxError> {
    let o = metadata
        .options
        .as_ref()
        .ok_or_else(|| err("nil Raft config metadata options"))?;
    if o.heartbeat_tick == 0 || o.election_tick == 0 || o.max_inflight_blocks == 0 {
        return Err(err(format!(
            "none of HeartbeatTick ({}), ElectionTick ({}) and MaxInflightBlocks ({}) can be zero",
            o.heartbeat_tick, o.election_tick, o.max_inflight_blocks
        )));
    }
    if o.election_tick <= o.heartbeat_tick {
        return Err(err(format!(
            "ElectionTick ({}) must be greater than HeartbeatTick ({})",
            o.election_tick, o.heartbeat_tick
        )));
    }
    match duration::parse_nanos(&o.tick_interval) {
        Err(e) => {
            return Err(err(format!(
                "failed to parse TickInterval ({}) to time duration: {e}",
                o.tick_interval
            )))
        }
        Ok(0) => return Err(err("TickInterval cannot be zero")),
        Ok(_) => {}
    }
    if metadata.consenters.is_empty() {
        return Err(err("empty consenter set"));
    }
    for c in &metadata.consenters {
        for (kind, cert) in [
            ("client", &c.client_tls_cert),
            ("server", &c.server_tls_cert),
        ] {
            verify_cert(cert).map_err(|e| {
                err(format!(
                    "consenter {} has invalid certificate: verifying tls {kind} cert: {e}",
                    endpoint(c)
                ))
            })?;
        }
    }
    // A consenter may use one certificate for both roles, but no certificate may reappear in
    // a later consenter in either role.
    let mut seen: HashSet<&Bytes> = HashSet::new();
    for c in &metadata.consenters {
        if seen.contains(&c.server_tls_cert) || seen.contains(&c.client_tls_cert) {
            return Err(err(format!(
                "duplicate consenter: {} reuses a certificate of an earlier consenter",
                endpoint(c)
            )));
        }
        seen.insert(&c.server_tls_cert);
        seen.insert(&c.client_tls_cert);
    }
    Ok(())
}

/// How the consenter set changes, membership compared by exact client certificate bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsenterChange {
    /// Index in the new set of the one added consenter.
    pub added: Option<usize>,
    /// Index in the old set of the one removed consenter.
    pub removed: Option<usize>,
}

impl ConsenterChange {
    /// One added and one removed: a certificate rotation, which keeps the Raft id.
    pub fn is_rotation(&self) -> bool {
        self.added.is_some() && self.removed.is_some()
    }
}

/// At most one consenter added and at most one removed.
pub fn consenter_change(
    old: &[Consenter],
    new: &[Consenter],
) -> Result<ConsenterChange, ConfigTxError> {
    let old_certs: HashSet<&Bytes> = old.iter().map(|c| &c.client_tls_cert).collect();
    let new_certs: HashSet<&Bytes> = new.iter().map(|c| &c.client_tls_cert).collect();
    let added: Vec<usize> = (0..new.len())
        .filter(|&i| !old_certs.contains(&new[i].client_tls_cert))
        .collect();
    let removed: Vec<usize> = (0..old.len())
        .filter(|&i| !new_certs.contains(&old[i].client_tls_cert))
        .collect();
    if added.len() > 1 || removed.len() > 1 {
        let names = |set: &[Consenter], idx: &[usize]| {
            idx.iter().map(|&i| endpoint(&set[i])).collect::<Vec<_>>()
        };
        return Err(err(format!(
            "update of more than one consenter at a time is not supported, requested changes: added {:?}, removed {:?}",
            names(new, &added),
            names(old, &removed)
        )));
    }
    Ok(ConsenterChange {
        added: added.first().copied(),
        removed: removed.first().copied(),
    })
}

/// Raft ids of a new chain: 1..n in consenter order, next id n + 1.
pub fn initial_block_metadata(consenters: &[Consenter]) -> BlockMetadata {
    let n = consenters.len() as u64;
    BlockMetadata {
        consenter_ids: (1..=n).collect(),
        next_consenter_id: n + 1,
        raft_index: 0,
        ordo_position: 0,
    }
}

/// The consenter metadata after a config moves from `old` to `new` consenters (`prev` is the
/// last block's; `None` for a new chain, when ids are 1..n over `new`): kept consenters keep
/// their id, an added one takes next_consenter_id (which then advances), a rotated one takes
/// the removed one's id. raft_index is carried over; the chain updates it.
pub fn next_block_metadata(
    prev: Option<&BlockMetadata>,
    old: &[Consenter],
    new: &[Consenter],
) -> Result<BlockMetadata, ConfigTxError> {
    let Some(prev) = prev else {
        return Ok(initial_block_metadata(new));
    };
    if prev.consenter_ids.len() != old.len() {
        return Err(err(format!(
            "block metadata lists {} consenter ids for {} consenters",
            prev.consenter_ids.len(),
            old.len()
        )));
    }
    let change = consenter_change(old, new)?;
    let id_by_cert: HashMap<&Bytes, u64> = old
        .iter()
        .zip(&prev.consenter_ids)
        .map(|(c, id)| (&c.client_tls_cert, *id))
        .collect();
    let mut next = prev.clone();
    let mut ids = Vec::with_capacity(new.len());
    for (i, c) in new.iter().enumerate() {
        let id = if Some(i) == change.added {
            match change.removed {
                Some(r) => prev.consenter_ids[r],
                None => {
                    let id = next.next_consenter_id;
                    next.next_consenter_id =
                        id.checked_add(1).ok_or_else(|| err("Raft ids exhausted"))?;
                    id
                }
            }
        } else {
            // Not added, so its certificate is among the old ones.
            id_by_cert
                .get(&c.client_tls_cert)
                .copied()
                .ok_or_else(|| err(format!("consenter {} has no Raft id", endpoint(c))))?
        };
        ids.push(id);
    }
    next.consenter_ids = ids;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configtx::genesis::default_raft_options;
    use crate::configtx::genesis::tests::consenter;

    fn set(ns: &[u32]) -> Vec<Consenter> {
        ns.iter().map(|n| consenter(*n)).collect()
    }

    #[test]
    fn ids_for_a_new_chain() {
        let md = next_block_metadata(None, &[], &set(&[1, 2, 3])).unwrap();
        assert_eq!(md.consenter_ids, [1, 2, 3]);
        assert_eq!(md.next_consenter_id, 4);
    }

    fn start() -> BlockMetadata {
        BlockMetadata {
            consenter_ids: vec![1, 2, 3],
            next_consenter_id: 4,
            raft_index: 17,
            ordo_position: 0,
        }
    }

    #[test]
    fn add_remove_rotate() {
        let old = set(&[1, 2, 3]);
        let added = next_block_metadata(Some(&start()), &old, &set(&[1, 2, 3, 4])).unwrap();
        assert_eq!(
            (
                added.consenter_ids.as_slice(),
                added.next_consenter_id,
                added.raft_index
            ),
            (&[1, 2, 3, 4][..], 5, 17)
        );
        let removed = next_block_metadata(Some(&start()), &old, &set(&[1, 3])).unwrap();
        assert_eq!(
            (removed.consenter_ids.as_slice(), removed.next_consenter_id),
            (&[1, 3][..], 4)
        );
        // Rotation: consenter 2 gets a new client certificate and keeps id 2.
        let mut rotated = set(&[1, 2, 3]);
        rotated[1].client_tls_cert = Bytes::from_static(b"new client cert");
        let change = consenter_change(&old, &rotated).unwrap();
        assert!(change.is_rotation());
        let md = next_block_metadata(Some(&start()), &old, &rotated).unwrap();
        assert_eq!(
            (md.consenter_ids.as_slice(), md.next_consenter_id),
            (&[1, 2, 3][..], 4)
        );
        // Reordering is no change.
        let md = next_block_metadata(Some(&start()), &old, &set(&[3, 1, 2])).unwrap();
        assert_eq!(md.consenter_ids, [3, 1, 2]);
    }

    #[test]
    fn more_than_one_change_refused() {
        let old = set(&[1, 2, 3]);
        let e = next_block_metadata(Some(&start()), &old, &set(&[1, 2, 3, 4, 5])).unwrap_err();
        assert!(e.to_string().contains("more than one consenter"), "{e}");
        assert!(consenter_change(&old, &set(&[1])).is_err());
        assert!(consenter_change(&old, &set(&[1, 4, 5])).is_err());
        let bad_prev = BlockMetadata {
            consenter_ids: vec![1],
            ..start()
        };
        assert!(next_block_metadata(Some(&bad_prev), &old, &old).is_err());
    }

    fn metadata() -> ConfigMetadata {
        ConfigMetadata {
            consenters: set(&[1, 2, 3]),
            options: Some(default_raft_options()),
            ordo: None,
        }
    }

    #[test]
    fn verify_accepts_and_sees_every_cert() {
        let seen = std::cell::RefCell::new(0);
        verify_config_metadata(&metadata(), &|_| {
            *seen.borrow_mut() += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(*seen.borrow(), 6);
        // One certificate for both roles of one consenter is fine.
        let mut md = metadata();
        md.consenters[0].server_tls_cert = md.consenters[0].client_tls_cert.clone();
        verify_config_metadata(&md, &|_| Ok(())).unwrap();
        assert_eq!(endpoint(&md.consenters[0]), "orderer1.example.com:7050");
    }

    #[test]
    fn verify_refusals() {
        let ok = |_: &[u8]| Ok(());
        let refuse = |edit: &dyn Fn(&mut ConfigMetadata), want: &str| {
            let mut md = metadata();
            edit(&mut md);
            let e = verify_config_metadata(&md, &ok).unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        };
        refuse(&|m| m.options = None, "nil Raft config metadata options");
        refuse(
            &|m| m.options.as_mut().unwrap().heartbeat_tick = 0,
            "can be zero",
        );
        refuse(
            &|m| m.options.as_mut().unwrap().max_inflight_blocks = 0,
            "can be zero",
        );
        refuse(
            &|m| m.options.as_mut().unwrap().election_tick = 1,
            "must be greater than HeartbeatTick",
        );
        refuse(
            &|m| m.options.as_mut().unwrap().tick_interval = "fast".into(),
            "failed to parse TickInterval",
        );
        refuse(
            &|m| m.options.as_mut().unwrap().tick_interval = "0".into(),
            "TickInterval cannot be zero",
        );
        refuse(&|m| m.consenters.clear(), "empty consenter set");
        refuse(
            &|m| m.consenters[2].server_tls_cert = m.consenters[0].client_tls_cert.clone(),
            "duplicate consenter",
        );
        refuse(
            &|m| m.consenters[1].client_tls_cert = m.consenters[0].server_tls_cert.clone(),
            "duplicate consenter",
        );
        let e = verify_config_metadata(&metadata(), &|pem| {
            if pem == b"server cert 2" {
                Err("unknown authority".into())
            } else {
                Ok(())
            }
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("consenter orderer2.example.com:7050 has invalid certificate: verifying tls server cert: unknown authority"), "{e}");
        assert!(decode_config_metadata(&[0xff]).is_err());
    }
}
