//! Reports a raft group's leadership to the node's metrics, as openraft's own metrics change:
//! whether this node leads, how often the leader changed, how many voters the group has.

use std::sync::Arc;

use openraft::{Raft, ServerState};
use tokio::task::JoinHandle;

use super::TypeConfig;
use crate::metrics::RaftMetrics;

/// Follows `raft`'s metrics until its core stops.
pub fn report(raft: Raft<TypeConfig>, metrics: Arc<RaftMetrics>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut watch = raft.metrics();
        let mut leader = None;
        loop {
            {
                let m = watch.borrow_and_update();
                metrics
                    .is_leader
                    .set(i64::from(m.state == ServerState::Leader));
                let voters = m.membership_config.membership().voter_ids().count();
                metrics.cluster_size.set(voters as i64);
                // Every new leader counts, the first one too (as Fabric's leader_changes does);
                // a spell without one does not.
                if m.current_leader.is_some() && m.current_leader != leader {
                    metrics.leader_changes.inc();
                    leader = m.current_leader;
                }
            }
            if watch.changed().await.is_err() {
                break;
            }
        }
        metrics.is_leader.set(0);
    })
}
