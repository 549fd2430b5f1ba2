//! Ordo's own election timer, with a pre-vote, and the leader's quorum lease.
//!
//! openraft 0.9's election timer is turned off (`enable_elect = false`) because of how it
//! behaves after a leader dies: its timeout is drawn once per process, so two nodes that collide
//! keep colliding; a follower waits a whole leader lease *and* its timeout before it stands; and a
//! node with a shorter log (a follower lagging in replication) raises the term with an election
//! it cannot win, which costs the others a round. Here instead:
//!
//! - A voter that has heard no leader for a timeout drawn afresh in `[election_min,
//!   election_max]` asks the voters whether they *would* vote for it ([`PreVoteRequest`]); only
//!   with a majority of grants (itself included) does it start a real election
//!   (`raft.trigger().elect()`). A voter grants only when it has itself heard no leader for
//!   `election_min` (so a majority that still hears its leader is never disturbed, and the real
//!   vote is not refused by openraft's lease, which is set to `election_min`) and the candidate's
//!   log is at least as up to date as its own (so the real vote is not refused by log).
//! - So that it takes one round, and soon: a follower whose forward to the leader breaks (under
//!   load that is at once) stands as soon as the leader has been silent for `election_min`; a
//!   voter that refuses only because its own log is ahead stands itself right away; a voter a few
//!   ms short of `election_min` waits for it rather than refusing; and of two nodes with the same
//!   log standing at once, the lower id goes first.
//! - A node cut off from the majority never raises its term, so when it returns it deposes no one.
//! - A leader that has not been acknowledged by a quorum within its lease (`election_max`) knows
//!   it may have been replaced: writes are refused at once ([`Election::quorum_lost`]) instead of
//!   waiting for a commit that cannot come, and `admin status` says so. openraft 0.9 keeps such a
//!   leader in its role until it hears a higher term; this only changes what it admits.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use openraft::{LogId, Raft, RaftMetrics, ServerState};
use ordo_proto::ordo::{PreVoteRequest, PreVoteResponse};
use rand::Rng;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::network::ClusterClients;
use super::{Node, NodeId, Timing, TypeConfig};

/// One group's election timer and quorum watch, shared by the timer task, the transport's server
/// side (which reports leader contact and answers pre-votes) and the writer.
pub struct Election {
    channel: String,
    id: NodeId,
    raft: Raft<TypeConfig>,
    clients: ClusterClients,
    election_min: Duration,
    election_max: Duration,
    /// A node that has just started counts as having heard a leader then: until `election_min`
    /// has passed it grants no pre-vote, as the cluster may well have a leader it has not heard
    /// yet (while it was down the leader's replication to it backed off).
    started: Instant,
    times: Mutex<Times>,
    /// Wakes the timer to stand as soon as the leader has been silent for `election_min`: a
    /// pre-vote was refused because this node's log is ahead, or the leader's connection broke.
    stand_now: Notify,
    /// True during this node's own pre-vote round.
    campaigning: AtomicBool,
    /// True while this node leads without a quorum acknowledgement within the lease.
    quorum_lost: watch::Sender<bool>,
    pre_votes_won: AtomicU64,
    pre_votes_lost: AtomicU64,
}

#[derive(Default)]
struct Times {
    /// When an AppendEntries from a leader this node accepts last arrived; or when it stopped
    /// leading itself.
    heard_leader: Option<Instant>,
    /// When this node last granted a vote or a pre-vote: someone else is standing.
    granted: Option<Instant>,
    /// When this node last started an election.
    stood: Option<Instant>,
    /// When this node last ran a pre-vote round.
    asked: Option<Instant>,
    /// The last thing that restarts the election timer: any of the above, or a pre-vote round
    /// of its own.
    activity: Option<Instant>,
}

impl Times {
    /// When a wake-up to stand may act: once none of leader contact, a grant or an election of
    /// its own happened for `election_min`. A lost pre-vote round of its own only holds it for a
    /// quarter of that (the wake-up says the reason it was lost may have gone; a node that
    /// cannot reach anyone must not ask in a loop).
    fn ready_to_stand(&self, election_min: Duration) -> Instant {
        let after = |at: Option<Instant>, wait: Duration| at.map(|at| at + wait);
        [
            after(self.heard_leader, election_min),
            after(self.granted, election_min),
            after(self.stood, election_min),
            after(self.asked, election_min / 4),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or_else(Instant::now)
    }

    fn grant(&mut self) {
        let now = Instant::now();
        self.granted = Some(now);
        self.activity = Some(now);
    }
}

/// What `admin status` reports about the lease.
pub struct Quorum {
    pub ok: bool,
    /// As leader: milliseconds since a quorum last acknowledged it, if one has.
    pub millis_since_quorum_ack: Option<u64>,
    /// Not leader: milliseconds since it last heard a leader, if it has.
    pub millis_since_leader_heard: Option<u64>,
    pub detail: String,
}

impl Election {
    /// Starts the timer and the quorum watch of the group `raft` (whose openraft config must have
    /// `enable_elect = false` and a leader lease of `timing.election_min`).
    pub fn start(
        channel: &str,
        id: NodeId,
        raft: Raft<TypeConfig>,
        clients: ClusterClients,
        timing: &Timing,
    ) -> Arc<Election> {
        let election = Arc::new(Election {
            channel: channel.to_string(),
            id,
            raft,
            clients,
            election_min: timing.election_min,
            election_max: timing.election_max.max(timing.election_min),
            started: Instant::now(),
            times: Mutex::new(Times::default()),
            stand_now: Notify::new(),
            campaigning: AtomicBool::new(false),
            quorum_lost: watch::Sender::new(false),
            pre_votes_won: AtomicU64::new(0),
            pre_votes_lost: AtomicU64::new(0),
        });
        tokio::spawn(election.clone().run_timer());
        tokio::spawn(election.clone().watch_quorum(timing.heartbeat));
        election
    }

    fn times(&self) -> std::sync::MutexGuard<'_, Times> {
        self.times.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An AppendEntries from the current leader was accepted.
    pub fn heard_leader(&self) {
        let now = Instant::now();
        let mut times = self.times();
        times.heard_leader = Some(now);
        times.activity = Some(now);
    }

    /// A forward to the leader failed at the transport: it has probably died. Under load this
    /// is seen at once, long before the election timeout, so the node stands as soon as the
    /// leader has been silent for `election_min` (the earliest the others would grant).
    pub fn leader_unreachable(&self) {
        self.stand_now.notify_one();
    }

    /// This node granted its vote in a real election: someone else is standing, so wait.
    pub fn granted_vote(&self) {
        self.times().grant();
    }

    /// Watches this node's leadership; `true` while it leads without a quorum in its lease.
    pub fn quorum_lost(&self) -> watch::Receiver<bool> {
        self.quorum_lost.subscribe()
    }

    /// Whether this node is connected to a working majority: as leader, acknowledged by a quorum
    /// within its lease; otherwise, it heard a leader within that time.
    pub fn quorum(&self) -> Quorum {
        let metrics = self.raft.metrics().borrow().clone();
        if metrics.state == ServerState::Leader {
            let lost = *self.quorum_lost.borrow();
            let detail = match metrics.millis_since_quorum_ack {
                Some(ms) => format!("quorum acked {ms} ms ago"),
                None => "no quorum ack yet".to_string(),
            };
            return Quorum {
                ok: !lost,
                millis_since_quorum_ack: metrics.millis_since_quorum_ack,
                millis_since_leader_heard: None,
                detail,
            };
        }
        let heard = self.times().heard_leader;
        let quorum = |ok, ms, detail| Quorum {
            ok,
            millis_since_quorum_ack: None,
            millis_since_leader_heard: ms,
            detail,
        };
        match heard {
            Some(at) => {
                let ms = at.elapsed().as_millis() as u64;
                if at.elapsed() <= self.election_max {
                    quorum(true, Some(ms), format!("leader heard {ms} ms ago"))
                } else {
                    quorum(false, Some(ms), format!("no leader heard for {ms} ms"))
                }
            }
            None => quorum(false, None, "no leader heard since start".to_string()),
        }
    }

    pub fn pre_votes(&self) -> (u64, u64) {
        (
            self.pre_votes_won.load(Ordering::Relaxed),
            self.pre_votes_lost.load(Ordering::Relaxed),
        )
    }

    /// Answers a pre-vote: would this node vote for `request.candidate` in an election now?
    pub async fn answer_pre_vote(&self, request: &PreVoteRequest) -> PreVoteResponse {
        let refuse = |reason: String| PreVoteResponse {
            granted: false,
            reason,
        };
        let theirs: Option<LogId<NodeId>> = match serde_json::from_slice(&request.last_log_id) {
            Ok(log_id) => log_id,
            Err(e) => return refuse(format!("undecodable last log id: {e}")),
        };
        let metrics = self.raft.metrics().borrow().clone();
        if metrics.state == ServerState::Leader {
            return refuse(format!(
                "node {} leads term {}",
                self.id, metrics.current_term
            ));
        }
        let ours = self.raft.data_metrics().borrow().last_log;
        if theirs < ours {
            // This node is more up to date and, the candidate says, the leader is silent: this
            // node should stand (once it too has heard nothing for `election_min`) rather than
            // wait for its own timeout.
            if is_voter(&metrics, self.id) {
                self.stand_now.notify_one();
            }
            return refuse(format!(
                "node {}'s log ({ours:?}) is ahead of the candidate's ({theirs:?})",
                self.id
            ));
        }
        // Two nodes with the same log standing at once would split the vote (each grants the
        // other's pre-vote, then votes for itself): the lower id goes first.
        if theirs == ours && self.campaigning.load(Ordering::Relaxed) && self.id < request.candidate
        {
            return refuse(format!(
                "node {} stands too, with the same log, and goes first",
                self.id
            ));
        }
        let mut waited = false;
        loop {
            let silent = self.silent_for();
            if silent >= self.election_min {
                break;
            }
            // The leader's last messages reach the nodes a little apart (a follower that lags
            // gets them later): a node that is about to find the leader silent too waits for
            // that rather than refusing, which would cost the candidate a round.
            let left = self.election_min - silent;
            if waited || left > self.election_min / 4 {
                return refuse(format!(
                    "node {} heard its leader {} ms ago",
                    self.id,
                    silent.as_millis()
                ));
            }
            waited = true;
            tokio::time::sleep(left).await;
        }
        if waited && self.raft.metrics().borrow().state == ServerState::Leader {
            return refuse(format!("node {} leads", self.id));
        }
        // Someone else is about to stand: give it the time to win before standing too, which
        // would split the vote.
        self.times().grant();
        PreVoteResponse {
            granted: true,
            reason: String::new(),
        }
    }

    /// How long since this node last heard a leader, or since it started.
    fn silent_for(&self) -> Duration {
        self.times().heard_leader.unwrap_or(self.started).elapsed()
    }

    /// The election timer: after a fresh random timeout without leader contact (or other timer
    /// activity), a pre-vote round, and the real election if a majority would grant it.
    async fn run_timer(self: Arc<Self>) {
        let started = self.started;
        let mut metrics = self.raft.metrics();
        'timer: loop {
            let timeout = rand::thread_rng().gen_range(self.election_min..=self.election_max);
            let mut woken = false;
            loop {
                let since = self.times().activity.unwrap_or(started);
                let due = since + timeout;
                if Instant::now() >= due {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = self.stand_now.notified() => {
                        woken = true;
                        break;
                    }
                    changed = metrics.changed() => {
                        // The Raft node stopped: so does its timer.
                        if changed.is_err() {
                            return;
                        }
                    }
                }
            }
            if woken {
                // Stand once this node has heard no leader (nor stood, nor granted a pre-vote)
                // for `election_min`: before that the others would refuse it. Unless that
                // changes meanwhile: a leader is alive, someone else stands, or the wake-up was
                // stale (`Notify` keeps one while the timer is busy).
                let give_up = Instant::now() + self.election_min;
                loop {
                    let ready = self
                        .times()
                        .ready_to_stand(self.election_min)
                        .max(self.started + self.election_min);
                    if Instant::now() >= ready {
                        break;
                    }
                    if ready > give_up {
                        continue 'timer;
                    }
                    tokio::time::sleep_until(ready).await;
                }
            }
            let m = self.raft.metrics().borrow().clone();
            if m.running_state.is_err() {
                return;
            }
            if m.state == ServerState::Leader || !is_voter(&m, self.id) {
                // Leaders and learners never stand; restart the timeout.
                self.times().activity = Some(Instant::now());
                continue;
            }
            let asked = Instant::now();
            {
                let mut times = self.times();
                times.activity = Some(asked);
                times.asked = Some(asked);
            }
            self.campaigning.store(true, Ordering::Relaxed);
            let won = self.pre_vote(&m).await && self.still_leaderless(&m, asked);
            self.campaigning.store(false, Ordering::Relaxed);
            if won {
                self.pre_votes_won.fetch_add(1, Ordering::Relaxed);
                tracing::info!(channel = %self.channel, term = m.current_term, "pre-vote won: standing for election");
                if let Err(e) = self.raft.trigger().elect().await {
                    tracing::warn!(channel = %self.channel, error = %e, "could not start an election");
                    return;
                }
                let now = Instant::now();
                let mut times = self.times();
                times.stood = Some(now);
                times.activity = Some(now);
            } else {
                self.pre_votes_lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Whether nothing has changed since a pre-vote round started at `asked` with metrics `m`:
    /// a leader elected meanwhile (this node heard it, or took its vote) makes the won round
    /// stale, and standing then would raise the term over that leader and depose it.
    fn still_leaderless(&self, m: &RaftMetrics<NodeId, Node>, asked: Instant) -> bool {
        let now = self.raft.metrics().borrow().clone();
        let heard = self.times().heard_leader.is_some_and(|at| at >= asked);
        !heard && now.vote == m.vote && now.state != ServerState::Leader
    }

    /// Asks every other voter; true once a majority of every configuration (joint ones during a
    /// membership change) would grant, this node included.
    async fn pre_vote(&self, m: &RaftMetrics<NodeId, Node>) -> bool {
        let membership = m.membership_config.membership().clone();
        let configs: Vec<BTreeSet<NodeId>> = membership.get_joint_config().clone();
        let last_log_id = self.raft.data_metrics().borrow().last_log;
        let last_log_id = match serde_json::to_vec(&last_log_id) {
            Ok(json) => json,
            Err(_) => return false,
        };
        let mut granted = BTreeSet::from([self.id]);
        if has_quorum(&configs, &granted) {
            return true;
        }
        let mut asks = FuturesUnordered::new();
        for id in membership.voter_ids().filter(|&id| id != self.id) {
            let Some(node) = membership.get_node(&id) else {
                continue;
            };
            let request = PreVoteRequest {
                channel: self.channel.clone(),
                candidate: self.id,
                term: m.current_term,
                last_log_id: last_log_id.clone().into(),
            };
            let address = node.addr.clone();
            let clients = self.clients.clone();
            // Bounded like an election's vote request: a peer that does not answer in time
            // counts as a refusal.
            let ttl = self.election_min;
            asks.push(async move {
                let answer = tokio::time::timeout(ttl, clients.pre_vote(&address, request)).await;
                (id, answer)
            });
        }
        while let Some((id, answer)) = asks.next().await {
            match answer {
                Ok(Ok(response)) if response.granted => {
                    granted.insert(id);
                    if has_quorum(&configs, &granted) {
                        return true;
                    }
                }
                Ok(Ok(response)) => {
                    tracing::debug!(channel = %self.channel, node = id, reason = %response.reason, "pre-vote refused");
                }
                Ok(Err(e)) => {
                    tracing::debug!(channel = %self.channel, node = id, error = %e, "pre-vote not answered");
                }
                Err(_) => {
                    tracing::debug!(channel = %self.channel, node = id, "pre-vote timed out");
                }
            }
        }
        false
    }

    /// Keeps `quorum_lost` current: openraft's metrics are refreshed at least every tick (1.5 ×
    /// heartbeat), and sampled here every half heartbeat.
    async fn watch_quorum(self: Arc<Self>, heartbeat: Duration) {
        let mut metrics = self.raft.metrics();
        let mut interval = tokio::time::interval((heartbeat / 2).max(Duration::from_millis(10)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // (term, since when) of this node's current leadership.
        let mut leading: Option<(u64, Instant)> = None;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                changed = metrics.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            let m = metrics.borrow_and_update().clone();
            let lost = if m.state == ServerState::Leader {
                let since = match leading {
                    Some((term, since)) if term == m.current_term => since,
                    _ => {
                        tracing::info!(channel = %self.channel, term = m.current_term, "leading");
                        let now = Instant::now();
                        leading = Some((m.current_term, now));
                        now
                    }
                };
                let lease = self.election_max.as_millis() as u64;
                match m.millis_since_quorum_ack {
                    Some(ms) => ms > lease,
                    // Not acknowledged yet in this term: give it its lease from the election.
                    None => since.elapsed() > self.election_max,
                }
            } else {
                if leading.take().is_some() {
                    // A node that just stopped leading counts as having heard a leader (itself):
                    // openraft's lease on its vote holds as long, so its vote would be refused.
                    self.heard_leader();
                }
                false
            };
            self.quorum_lost.send_if_modified(|current| {
                if *current != lost {
                    if lost {
                        tracing::warn!(channel = %self.channel, "leader without quorum: refusing writes");
                    } else {
                        tracing::info!(channel = %self.channel, "quorum regained");
                    }
                    *current = lost;
                    true
                } else {
                    false
                }
            });
        }
    }
}

fn is_voter(m: &RaftMetrics<NodeId, Node>, id: NodeId) -> bool {
    m.membership_config
        .membership()
        .voter_ids()
        .any(|v| v == id)
}

/// A majority of each configuration is in `granted`.
fn has_quorum(configs: &[BTreeSet<NodeId>], granted: &BTreeSet<NodeId>) -> bool {
    !configs.is_empty()
        && configs
            .iter()
            .all(|config| config.intersection(granted).count() * 2 > config.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_told_to_stand_waits_for_silence_not_for_its_own_lost_round() {
        let min = Duration::from_millis(400);
        let now = Instant::now();
        let ago = |ms| now - Duration::from_millis(ms);
        let times = Times {
            heard_leader: Some(ago(450)),
            asked: Some(ago(20)),
            ..Times::default()
        };
        // The leader has been silent long enough; its own round 20 ms ago only holds it 100 ms.
        assert_eq!(
            times.ready_to_stand(min),
            ago(20) + Duration::from_millis(100)
        );
        // A grant of someone else's pre-vote holds it a whole election_min.
        let times = Times {
            granted: Some(ago(50)),
            ..times
        };
        assert_eq!(times.ready_to_stand(min), ago(50) + min);
    }

    #[test]
    fn quorum_is_a_majority_of_every_configuration() {
        let three = vec![BTreeSet::from([1, 2, 3])];
        assert!(!has_quorum(&three, &BTreeSet::from([1])));
        assert!(has_quorum(&three, &BTreeSet::from([1, 3])));
        let joint = vec![BTreeSet::from([1, 2, 3]), BTreeSet::from([1, 2, 3, 4])];
        assert!(!has_quorum(&joint, &BTreeSet::from([1, 2])));
        assert!(has_quorum(&joint, &BTreeSet::from([1, 2, 4])));
        assert!(has_quorum(&[BTreeSet::from([1])], &BTreeSet::from([1])));
        assert!(!has_quorum(&[], &BTreeSet::from([1])));
    }
}
