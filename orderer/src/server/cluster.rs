//! The server side of the cluster transport (`ordo.Cluster`) and the membership calls
//! (`ordo.Admin`), over every channel's Raft group on this node.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest,
};
use openraft::{BasicNode, ChangeMembers, ServerState};
use ordo_proto::ordo::admin_client::AdminClient;
use ordo_proto::ordo::admin_server::Admin;
use ordo_proto::ordo::cluster_server::Cluster;
use ordo_proto::ordo::{
    AdminReply, ForwardRequest, ForwardResponse, GroupStatus, MemberChange, PreVoteRequest,
    PreVoteResponse, RaftMessage, RaftState, StatusReply, StatusRequest,
};
use serde::Serialize;
use tonic::{Request, Response, Status};

use crate::chain::raft::{codec, NodeId, RaftLog, TypeConfig};
use crate::chain::Chain;

/// The Raft groups of this node, by channel; a channel added to or removed from the running
/// node adds or removes its group.
#[derive(Clone, Default)]
pub struct Groups {
    groups: Arc<RwLock<HashMap<String, Arc<RaftLog>>>>,
    /// With TLS: who may send each channel's cluster traffic, by the public keys (SPKI DER) of
    /// its consenters' client certificates. Without TLS (`None`) anyone who reaches the port.
    members: Option<Members>,
    /// How membership calls reach the leader (TLS with this node's identity, or plain).
    dialer: Option<crate::tls::Dialer>,
}

/// A certificate's SubjectPublicKeyInfo (DER).
type PublicKey = Vec<u8>;
/// The consenters' client-certificate keys, by channel.
type Members = Arc<RwLock<HashMap<String, Vec<PublicKey>>>>;

/// Fabric's words for a cluster peer whose certificate is not a consenter's.
const NOT_A_CONSENTER: &str = "certificate extracted from TLS connection isn't authorized";

impl Groups {
    /// Groups whose cluster traffic must come from a consenter, identified by the client
    /// certificate of the mutual-TLS connection; `dialer` reaches other nodes.
    pub fn with_tls(dialer: crate::tls::Dialer) -> Groups {
        Groups {
            groups: Default::default(),
            members: Some(Default::default()),
            dialer: Some(dialer),
        }
    }

    pub fn insert(&self, group: Arc<RaftLog>) {
        self.groups
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(group.channel().to_string(), group);
    }

    /// Sets who may send channel `channel`'s cluster traffic: the consenters' client TLS
    /// certificates (PEM, as the etcdraft metadata carries them). A certificate that does not
    /// parse admits no one.
    pub fn authorize(&self, channel: &str, client_certs: &[bytes::Bytes]) {
        let Some(members) = &self.members else {
            return;
        };
        let keys = client_certs
            .iter()
            .filter_map(|pem| match crate::tls::public_key_of_pem(pem) {
                Ok(key) => Some(key),
                Err(e) => {
                    tracing::warn!(%channel, error = %e, "a consenter's client TLS certificate is unusable");
                    None
                }
            })
            .collect();
        members
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(channel.to_string(), keys);
    }

    /// Refuses a cluster call for `channel` unless its TLS client certificate has the public key
    /// of one of the channel's consenters (Fabric identifies cluster members so, never by
    /// address).
    fn check_sender<T>(&self, request: &Request<T>, channel: &str) -> Result<(), Status> {
        let Some(members) = &self.members else {
            return Ok(());
        };
        let key = request
            .extensions()
            .get::<crate::server::connections::ConnectionInfo>()
            .and_then(|info| info.peer_public_key.clone())
            .ok_or_else(|| Status::permission_denied(NOT_A_CONSENTER))?;
        let members = members.read().unwrap_or_else(|e| e.into_inner());
        match members.get(channel) {
            Some(keys) if keys.contains(&*key) => Ok(()),
            Some(_) => Err(Status::permission_denied(NOT_A_CONSENTER)),
            None => Err(Status::not_found(format!(
                "no channel {channel} on this node"
            ))),
        }
    }

    pub fn remove(&self, channel: &str) {
        self.groups
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(channel);
        if let Some(members) = &self.members {
            members
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(channel);
        }
    }

    /// The channels with a group here, sorted.
    fn channels(&self) -> Vec<String> {
        let mut channels: Vec<String> = self
            .groups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        channels.sort();
        channels
    }

    fn get(&self, channel: &str) -> Result<Arc<RaftLog>, Status> {
        self.groups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(channel)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no channel {channel} on this node")))
    }

    fn raft(&self, channel: &str) -> Result<openraft::Raft<TypeConfig>, Status> {
        Ok(self.get(channel)?.raft().clone())
    }
}

fn json_reply<T: Serialize>(channel: String, value: &T) -> Result<Response<RaftMessage>, Status> {
    let json = serde_json::to_vec(value).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(RaftMessage {
        channel,
        json: json.into(),
        entries: Vec::new(),
    }))
}

fn from_json<T: serde::de::DeserializeOwned>(message: &RaftMessage) -> Result<T, Status> {
    serde_json::from_slice(&message.json)
        .map_err(|e| Status::invalid_argument(format!("undecodable raft message: {e}")))
}

#[tonic::async_trait]
impl Cluster for Groups {
    async fn append_entries(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.check_sender(&request, &request.get_ref().channel)?;
        let message = request.into_inner();
        let mut rpc: AppendEntriesRequest<TypeConfig> = from_json(&message)?;
        rpc.entries = message
            .entries
            .iter()
            .map(codec::decode)
            .collect::<Result<_, _>>()
            .map_err(Status::invalid_argument)?;
        let group = self.get(&message.channel)?;
        // From the leader this node follows (or a newer one): it is alive, whatever time the
        // entries then take to store. A stale leader's messages carry a smaller vote.
        let following = group.raft().metrics().borrow().vote;
        if rpc.vote.is_committed() && rpc.vote >= following {
            group.election().heard_leader();
        }
        let result = group.raft().append_entries(rpc).await;
        // Anything but a refusal of the sender's term means this node follows it: the leader is
        // alive, which holds this node's election timer and its pre-vote grants.
        if matches!(&result, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
            group.election().heard_leader();
        }
        json_reply(message.channel, &result)
    }

    async fn vote(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.check_sender(&request, &request.get_ref().channel)?;
        let message = request.into_inner();
        let rpc: VoteRequest<NodeId> = from_json(&message)?;
        let group = self.get(&message.channel)?;
        let result = group.raft().vote(rpc).await;
        if matches!(&result, Ok(r) if r.vote_granted) {
            group.election().granted_vote();
        }
        json_reply(message.channel, &result)
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.check_sender(&request, &request.get_ref().channel)?;
        let message = request.into_inner();
        let rpc: InstallSnapshotRequest<TypeConfig> = from_json(&message)?;
        let result = self.raft(&message.channel)?.install_snapshot(rpc).await;
        json_reply(message.channel, &result)
    }

    async fn forward(
        &self,
        request: Request<ForwardRequest>,
    ) -> Result<Response<ForwardResponse>, Status> {
        self.check_sender(&request, &request.get_ref().channel)?;
        let request = request.into_inner();
        let group = self.get(&request.channel)?;
        let reply = match group.write_forwarded(request.record).await {
            Ok(index) => ForwardResponse {
                raft_index: Some(index),
                error: String::new(),
            },
            Err(error) => ForwardResponse {
                raft_index: None,
                error: error.to_string(),
            },
        };
        Ok(Response::new(reply))
    }

    async fn pre_vote(
        &self,
        request: Request<PreVoteRequest>,
    ) -> Result<Response<PreVoteResponse>, Status> {
        self.check_sender(&request, &request.get_ref().channel)?;
        let request = request.into_inner();
        let group = self.get(&request.channel)?;
        Ok(Response::new(
            group.election().answer_pre_vote(&request).await,
        ))
    }
}

/// What one membership call does to one group.
#[derive(Clone, Copy, Debug)]
enum Change {
    AddLearner,
    Promote,
    Remove,
}

impl Groups {
    async fn change(
        &self,
        change: Change,
        request: MemberChange,
    ) -> Result<Response<AdminReply>, Status> {
        let mut report = String::new();
        let mut ok = true;
        let channels: Vec<String> = if request.channel.is_empty() {
            self.channels()
        } else {
            vec![request.channel.clone()]
        };
        for channel in channels {
            let raft = self.raft(&channel)?;
            let id = request.node_id;
            let result = match change {
                Change::AddLearner => raft
                    .add_learner(id, BasicNode::new(&request.address), true)
                    .await
                    .map(|_| ()),
                Change::Promote => raft
                    .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                    .await
                    .map(|_| ()),
                Change::Remove => raft
                    .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                    .await
                    .map(|_| ()),
            };
            let outcome = match result {
                Ok(()) => Ok(format!("{change:?} node {id}: done")),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    match f.leader_node {
                        Some(leader) => {
                            forward_admin(
                                self.dialer.as_ref(),
                                &leader.addr,
                                change,
                                &request,
                                &channel,
                            )
                            .await
                        }
                        None => Err("no leader is known; try again".to_string()),
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(line) => {
                    let _ = writeln!(report, "{channel}: {line}");
                }
                Err(e) => {
                    ok = false;
                    let _ = writeln!(
                        report,
                        "{channel}: {change:?} node {}: {e}",
                        request.node_id
                    );
                }
            }
        }
        Ok(Response::new(AdminReply {
            ok,
            message: report,
        }))
    }
}

async fn forward_admin(
    dialer: Option<&crate::tls::Dialer>,
    leader: &str,
    change: Change,
    request: &MemberChange,
    channel: &str,
) -> Result<String, String> {
    let mut client = AdminClient::new(
        crate::tls::dial(dialer, leader).map_err(|e| format!("leader {leader}: {e}"))?,
    );
    let request = MemberChange {
        channel: channel.to_string(),
        ..request.clone()
    };
    let reply = match change {
        Change::AddLearner => client.add_learner(request).await,
        Change::Promote => client.promote(request).await,
        Change::Remove => client.remove(request).await,
    }
    .map_err(|e| format!("leader {leader}: {}", e.message()))?
    .into_inner();
    let text = reply.message.trim().to_string();
    if reply.ok {
        Ok(format!("via leader {leader}: {text}"))
    } else {
        Err(format!("via leader {leader}: {text}"))
    }
}

#[tonic::async_trait]
impl Admin for Groups {
    async fn add_learner(
        &self,
        request: Request<MemberChange>,
    ) -> Result<Response<AdminReply>, Status> {
        let request = request.into_inner();
        if request.address.is_empty() {
            return Err(Status::invalid_argument(
                "add-learner needs the node's cluster address",
            ));
        }
        self.change(Change::AddLearner, request).await
    }

    async fn promote(
        &self,
        request: Request<MemberChange>,
    ) -> Result<Response<AdminReply>, Status> {
        self.change(Change::Promote, request.into_inner()).await
    }

    async fn remove(&self, request: Request<MemberChange>) -> Result<Response<AdminReply>, Status> {
        self.change(Change::Remove, request.into_inner()).await
    }

    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        let mut groups = Vec::new();
        for channel in self.channels() {
            // Removed since listed: nothing to report.
            let Ok(group) = self.get(&channel) else {
                continue;
            };
            let m = group.raft().metrics().borrow().clone();
            let membership = m.membership_config.membership();
            let quorum = group.election().quorum();
            let (won, lost) = group.election().pre_votes();
            // Asked of the Raft core, which may be busy or stopped: then it is left unset.
            let committed = tokio::time::timeout(
                Duration::from_secs(1),
                group
                    .raft()
                    .with_raft_state(|st| st.committed.map(|l| l.index)),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
            let state = match m.state {
                ServerState::Leader => RaftState::Leader,
                ServerState::Follower => RaftState::Follower,
                ServerState::Candidate => RaftState::Candidate,
                ServerState::Learner => RaftState::Learner,
                ServerState::Shutdown => RaftState::Shutdown,
            };
            groups.push(GroupStatus {
                channel: channel.clone(),
                node_id: m.id,
                state: state as i32,
                term: m.current_term,
                leader: m.current_leader,
                voters: membership.voter_ids().collect(),
                learners: membership.learner_ids().collect(),
                last_log_index: m.last_log_index,
                committed_index: committed,
                applied_index: m.last_applied.map(|l| l.index),
                stored_end: codec::split_offset(group.local_end()).0,
                quorum: quorum.ok,
                millis_since_quorum_ack: quorum.millis_since_quorum_ack,
                millis_since_leader_heard: quorum.millis_since_leader_heard,
                quorum_detail: quorum.detail,
                pre_votes_won: won,
                pre_votes_lost: lost,
            });
        }
        Ok(Response::new(StatusReply { groups }))
    }
}
