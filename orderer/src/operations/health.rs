//! `/healthz`: the node's health checks, one set per channel, named
//! `channel/<channel>/<check>` in `failed_checks`:
//! - `serving`: the channel stopped serving (its log or ledger could not be read or written);
//! - `consensus`: its chain can order nothing more (halted, or the raft core stopped);
//! - `log` (solo): the last append to its log failed (a full disk, an I/O error) and none has
//!   succeeded since;
//! - `raft_leader` (raft): this node has had no working leader for longer than an election
//!   timeout (`cluster.election_timeout_max_ms`).

use serde::Serialize;

use crate::registrar::Registrar;

/// A check that fails, as Fabric's healthz answers it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FailedCheck {
    pub component: String,
    pub reason: String,
}

/// The checks that fail now, by channel id.
pub fn failed_checks(registrar: &Registrar) -> Vec<FailedCheck> {
    let mut channels = registrar.channels();
    channels.sort_by(|a, b| a.id().cmp(b.id()));
    channels
        .iter()
        .flat_map(|channel| {
            channel
                .failed_checks()
                .into_iter()
                .map(|(check, reason)| FailedCheck {
                    component: format!("channel/{}/{check}", channel.id()),
                    reason,
                })
        })
        .collect()
}

/// Fabric's healthz answer.
#[derive(Debug, Serialize)]
pub struct HealthStatus {
    pub status: &'static str,
    /// When the checks ran, RFC 3339 with nanoseconds (Go's RFC3339Nano).
    pub time: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_checks: Vec<FailedCheck>,
}

impl HealthStatus {
    pub fn of(failed_checks: Vec<FailedCheck>) -> HealthStatus {
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        HealthStatus {
            status: if failed_checks.is_empty() {
                "OK"
            } else {
                "Service Unavailable"
            },
            time,
            failed_checks,
        }
    }

    pub fn ok(&self) -> bool {
        self.failed_checks.is_empty()
    }
}
