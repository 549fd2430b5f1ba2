//! Channels joined and removed at run time, and kept across restarts: the node's side of the
//! participation API. A joined channel's join block is stored in its folder
//! (`<data_dir>/channels/<id>/join.block`), which is what reopens it at start; removing it stops
//! it and deletes (or archives) that folder.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use ordo_core::bundle::Bundle;
use ordo_proto::common::Block;

use crate::channel::{read_join_block, Channel, JoinBlock};
use crate::metrics::ConsensusRelation;
use crate::node::ChannelOpener;
use crate::registrar::Registrar;

/// The file in a joined channel's folder that reopens it at start.
pub const JOIN_BLOCK: &str = "join.block";

/// A channel's state as the API reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelState {
    pub name: String,
    pub relation: ConsensusRelation,
    /// `active`, `onboarding`, `inactive` or `failed`.
    pub status: &'static str,
    pub height: u64,
}

/// Why a join was refused; each maps to one of Fabric's status codes.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// 405: the channel is served already.
    #[error("cannot join: channel already exists")]
    Exists,
    /// 409: the channel is being removed (or joined) right now.
    #[error("cannot join: channel {0}")]
    Pending(&'static str),
    /// 400: anything else (not this node's consensus type, a leftover folder, …).
    #[error("cannot join: {0}")]
    Refused(String),
}

/// Why a removal was refused.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// 404.
    #[error("cannot remove: channel does not exist")]
    NotFound,
    /// 409.
    #[error("cannot remove: channel {0}")]
    Pending(&'static str),
    /// 400.
    #[error("cannot remove: {0}")]
    Refused(String),
}

/// Joins and removes channels while the node runs (clone freely: one shared state).
#[derive(Clone)]
pub struct JoinedChannels {
    inner: Arc<Inner>,
}

struct Inner {
    registrar: Registrar,
    opener: Arc<ChannelOpener>,
    data_dir: PathBuf,
    /// Channels of the config file's `[[channel]]`: the file, not the API, owns them.
    configured: HashSet<String>,
    archive: bool,
    /// Channels being joined or removed, and which.
    pending: Mutex<HashMap<String, &'static str>>,
}

/// Marks a channel pending (joining or removing) while it lives.
struct PendingMark<'a> {
    inner: &'a Inner,
    id: String,
}

impl Drop for PendingMark<'_> {
    fn drop(&mut self) {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl Inner {
    /// Marks `id` as `what` (e.g. "pending removal"), unless it already is something.
    fn mark(&self, id: &str, what: &'static str) -> Result<PendingMark<'_>, &'static str> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(other) = pending.get(id) {
            return Err(other);
        }
        pending.insert(id.to_string(), what);
        Ok(PendingMark {
            inner: self,
            id: id.to_string(),
        })
    }
}

const JOINING: &str = "is being joined";
const REMOVING: &str = "is pending removal";

impl JoinedChannels {
    pub(crate) fn new(
        registrar: Registrar,
        opener: Arc<ChannelOpener>,
        data_dir: PathBuf,
        configured: HashSet<String>,
        archive: bool,
    ) -> JoinedChannels {
        JoinedChannels {
            inner: Arc::new(Inner {
                registrar,
                opener,
                data_dir,
                configured,
                archive,
                pending: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn channel_dir(&self, id: &str) -> PathBuf {
        self.inner.data_dir.join("channels").join(id)
    }

    /// The channels joined on an earlier run (a folder with a join block), not in `skip`.
    pub fn stored(&self) -> anyhow::Result<Vec<PathBuf>> {
        let root = self.inner.data_dir.join("channels");
        let entries = match std::fs::read_dir(&root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", root.display())),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", root.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let block = entry.path().join(JOIN_BLOCK);
            if !self.inner.configured.contains(&name) && block.is_file() {
                found.push(block);
            }
        }
        found.sort();
        Ok(found)
    }

    /// Reopens a channel joined on an earlier run, from its stored join block.
    pub async fn reopen(&self, join_block: &Path) -> anyhow::Result<()> {
        let join = read_join_block(join_block)?;
        let reservation = self.inner.registrar.reserve(join.channel_id())?;
        reservation.serve(self.open(&join).await?);
        Ok(())
    }

    /// Opens a joined channel as Fabric does: with its genesis block, a consenter orders it (solo
    /// has no consenters: its one node orders it); with a later config block, or as a raft node
    /// the config does not list, this node follows it, pulling its blocks from the consenters.
    async fn open(&self, join: &JoinBlock) -> anyhow::Result<Arc<Channel>> {
        let opener = &self.inner.opener;
        let raft = matches!(
            join.bundle.values().consensus,
            ordo_core::configtx::values::Consensus::EtcdRaft { .. }
        );
        if join.number() != 0 || (raft && !opener.is_consenter(&join.bundle)) {
            opener.follow(join)
        } else {
            opener.open(join).await
        }
    }

    /// Joins the channel of a validated join block (`bundle` is its config): stores the block
    /// in the channel's new folder, then opens the channel as a configured one would be.
    pub async fn join(&self, block: Block, bundle: Bundle) -> Result<ChannelState, JoinError> {
        let id = bundle.channel_id().to_string();
        if self.inner.registrar.contains(&id) {
            return Err(JoinError::Exists);
        }
        let _mark = self.inner.mark(&id, JOINING).map_err(JoinError::Pending)?;
        let reservation = self
            .inner
            .registrar
            .reserve(&id)
            .map_err(|_| JoinError::Exists)?;
        let dir = self.channel_dir(&id);
        if dir.exists() {
            return Err(JoinError::Refused(format!(
                "{} already exists (data of an earlier channel of this name?); move it away \
                 first",
                dir.display()
            )));
        }
        let join = JoinBlock { block, bundle };
        let opened = async {
            store_join_block(&dir, &join.block)?;
            self.open(&join).await
        }
        .await;
        match opened {
            Ok(channel) => {
                let state = self.state_of(&channel);
                reservation.serve(channel);
                tracing::info!(channel = %id, "channel joined");
                Ok(state)
            }
            Err(e) => {
                // Nothing of it may remain, or the next start would try to reopen it.
                if let Err(cleanup) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(channel = %id, error = %cleanup, "removing the folder of a failed join");
                }
                Err(JoinError::Refused(format!("{e:#}")))
            }
        }
    }

    /// Stops channel `id` and deletes its folder (or moves it under `<data_dir>/archive`).
    pub async fn remove(&self, id: &str) -> Result<(), RemoveError> {
        let mark = self
            .inner
            .mark(id, REMOVING)
            .map_err(RemoveError::Pending)?;
        if self.inner.configured.contains(id) {
            return Err(RemoveError::Refused(format!(
                "channel {id} is listed in the node's config file ([[channel]]); remove it there"
            )));
        }
        let Some((channel, held)) = self.inner.registrar.take(id) else {
            return Err(RemoveError::NotFound);
        };
        channel.shutdown().await;
        self.inner.opener.forget_chain(id);
        // The id stays held (no new instance opens these files) until the folder is gone.
        let dir = self.channel_dir(id);
        let result = if self.inner.archive {
            archive(&self.inner.data_dir, id, &dir)
        } else {
            std::fs::remove_dir_all(&dir).with_context(|| format!("deleting {}", dir.display()))
        };
        drop(held);
        drop(mark);
        match result {
            Ok(()) => {
                tracing::info!(channel = %id, archived = self.inner.archive, "channel removed");
                Ok(())
            }
            Err(e) => Err(RemoveError::Refused(format!("{e:#}"))),
        }
    }

    /// The state of every channel served, by name.
    pub fn list(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .registrar
            .channels()
            .iter()
            .map(|c| c.id().to_string())
            .collect();
        names.sort();
        names
    }

    /// The state of channel `id`, if served.
    pub fn info(&self, id: &str) -> Option<ChannelState> {
        self.inner.registrar.get(id).map(|c| self.state_of(&c))
    }

    /// Channel `id`, if served (for reading its blocks).
    pub fn get(&self, id: &str) -> Option<Arc<Channel>> {
        self.inner.registrar.get(id)
    }

    fn state_of(&self, channel: &Channel) -> ChannelState {
        ChannelState {
            name: channel.id().to_string(),
            relation: channel.consensus_relation(),
            status: if !channel.is_healthy() {
                "failed"
            } else if channel.is_onboarding() {
                "onboarding"
            } else {
                "active"
            },
            height: channel.ledger().height(),
        }
    }
}

/// Writes the join block into the channel's new folder, durably, before anything else is
/// opened there: a folder without it is not reopened at start.
fn store_join_block(dir: &Path, block: &Block) -> anyhow::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(JOIN_BLOCK);
    let partial = dir.join(format!("{JOIN_BLOCK}.partial"));
    let mut file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    file.write_all(&prost::Message::encode_to_vec(block))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))?;
    sync_dir(dir)?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

/// Moves a removed channel's folder to `<data_dir>/archive/<id>-<unix seconds>`.
fn archive(data_dir: &Path, id: &str, dir: &Path) -> anyhow::Result<()> {
    let archive = data_dir.join("archive");
    std::fs::create_dir_all(&archive).with_context(|| format!("creating {}", archive.display()))?;
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut target = archive.join(format!("{id}-{seconds}"));
    let mut n = 1;
    while target.exists() {
        target = archive.join(format!("{id}-{seconds}.{n}"));
        n += 1;
    }
    std::fs::rename(dir, &target)
        .with_context(|| format!("moving {} to {}", dir.display(), target.display()))?;
    sync_dir(&archive)?;
    Ok(())
}
