//! The client side of the cluster transport: openraft's RPCs and forwarded produces, as gRPC
//! calls to `ordo.Cluster` on the peer's cluster address. One connection per peer serves every
//! channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use ordo_proto::ordo::cluster_client::ClusterClient;
use ordo_proto::ordo::{ForwardRequest, PreVoteRequest, PreVoteResponse, RaftMessage};
use serde::de::DeserializeOwned;
use tonic::transport::Channel;

use super::{codec, Node, NodeId, TypeConfig};

/// gRPC clients to the other nodes, by cluster address, shared by every channel's group.
#[derive(Clone, Default)]
pub struct ClusterClients {
    clients: Arc<Mutex<HashMap<String, ClusterClient<Channel>>>>,
    /// With TLS: this node's cluster identity (mutual TLS on every cluster connection).
    dialer: Option<crate::tls::Dialer>,
}

impl ClusterClients {
    /// Clients that dial over TLS with `dialer` (none: plain HTTP/2).
    pub fn new(dialer: Option<crate::tls::Dialer>) -> ClusterClients {
        ClusterClients {
            clients: Default::default(),
            dialer,
        }
    }

    pub fn dialer(&self) -> Option<&crate::tls::Dialer> {
        self.dialer.as_ref()
    }

    pub fn get(&self, address: &str) -> Result<ClusterClient<Channel>, String> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(address) {
            return Ok(client.clone());
        }
        // Lazy: a peer that is down now is dialled again on the next call.
        let channel = crate::tls::dial(self.dialer.as_ref(), address)
            .map_err(|e| format!("bad cluster address {address:?}: {e}"))?;
        let client = ClusterClient::new(channel)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        clients.insert(address.to_string(), client.clone());
        Ok(client)
    }

    /// Passes a record to the leader at `address`; its offset once committed there.
    pub async fn forward(
        &self,
        address: &str,
        channel: &str,
        record: Bytes,
    ) -> Result<u64, ForwardError> {
        let mut client = self.get(address).map_err(ForwardError::Refused)?;
        let response = client
            .forward(ForwardRequest {
                channel: channel.to_string(),
                record,
            })
            .await
            .map_err(|e| {
                ForwardError::Unreachable(format!("forwarding to {address}: {}", e.message()))
            })?
            .into_inner();
        response
            .raft_index
            .ok_or(ForwardError::Refused(response.error))
    }

    /// Asks the node at `address` whether it would vote for the sender (see `election`).
    pub async fn pre_vote(
        &self,
        address: &str,
        request: PreVoteRequest,
    ) -> Result<PreVoteResponse, String> {
        let mut client = self.get(address)?;
        client
            .pre_vote(request)
            .await
            .map(|r| r.into_inner())
            .map_err(|e| format!("pre-vote to {address}: {}", e.message()))
    }
}

/// Why a forwarded record was not committed.
#[derive(Debug)]
pub enum ForwardError {
    /// The call failed: the leader is down or cut off (the connection broke or was refused).
    Unreachable(String),
    /// The leader answered: not committed there (it is no longer the leader, has no quorum...).
    Refused(String),
}

impl std::fmt::Display for ForwardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForwardError::Unreachable(e) | ForwardError::Refused(e) => f.write_str(e),
        }
    }
}

/// openraft's network factory for one channel's group.
pub struct Network {
    channel: String,
    clients: ClusterClients,
}

impl Network {
    pub fn new(channel: &str, clients: ClusterClients) -> Self {
        Network {
            channel: channel.to_string(),
            clients,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Connection {
        Connection {
            channel: self.channel.clone(),
            target,
            address: node.addr.clone(),
            clients: self.clients.clone(),
        }
    }
}

pub struct Connection {
    channel: String,
    target: NodeId,
    address: String,
    clients: ClusterClients,
}

/// How much later than openraft's own bound a call is abandoned here.
const BACKSTOP: std::time::Duration = std::time::Duration::from_millis(50);

type RpcError<E = openraft::error::Infallible> = RPCError<NodeId, Node, RaftError<NodeId, E>>;

impl Connection {
    /// Sends one message and decodes the peer's `Result<Response, RaftError<E>>`.
    async fn call<Resp, E>(
        &self,
        method: Method,
        message: RaftMessage,
        option: &RPCOption,
    ) -> Result<Resp, RpcError<E>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let mut client = self
            .clients
            .get(&self.address)
            .map_err(|e| RPCError::Network(NetworkError::new(&std::io::Error::other(e))))?;
        let call = async {
            match method {
                Method::Append => client.append_entries(message).await,
                Method::Vote => client.vote(message).await,
                Method::Snapshot => client.install_snapshot(message).await,
            }
        };
        // openraft bounds AppendEntries and Vote by the same `hard_ttl` and reports a call past
        // it as a timeout, after which it sends again at once. This bound is only a backstop, a
        // little later: what it ends counts as an unreachable peer, and openraft then holds back
        // replication to it for a backoff (500 ms), which under load costs the leader its lease.
        let reply = match tokio::time::timeout(option.hard_ttl() + BACKSTOP, call).await {
            Ok(Ok(reply)) => reply.into_inner(),
            Ok(Err(status)) => return Err(RPCError::Unreachable(Unreachable::new(&status))),
            Err(elapsed) => return Err(RPCError::Unreachable(Unreachable::new(&elapsed))),
        };
        let result: Result<Resp, RaftError<NodeId, E>> = serde_json::from_slice(&reply.json)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    fn message(&self, json: Vec<u8>, entries: Vec<Bytes>) -> RaftMessage {
        RaftMessage {
            channel: self.channel.clone(),
            json: json.into(),
            entries,
        }
    }
}

#[derive(Clone, Copy)]
enum Method {
    Append,
    Vote,
    Snapshot,
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Cannot fail: openraft's messages are plain data.
    serde_json::to_vec(value).expect("raft message serializes")
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcError> {
        // Entries travel in Ordo's binary encoding, the rest of the request as JSON.
        let entries = std::mem::take(&mut rpc.entries)
            .iter()
            .map(codec::encode)
            .collect();
        let message = self.message(to_json(&rpc), entries);
        self.call(Method::Append, message, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcError<InstallSnapshotError>> {
        let message = self.message(to_json(&rpc), Vec::new());
        self.call(Method::Snapshot, message, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcError> {
        let message = self.message(to_json(&rpc), Vec::new());
        self.call(Method::Vote, message, &option).await
    }
}
