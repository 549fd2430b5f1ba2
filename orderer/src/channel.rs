//! A channel at run time: its ledger, its configuration in force, and where its blocks come
//! from. A node that orders the channel runs its chain and the consumer task that reads the
//! chain in offset order and writes blocks (assembler → block writer → ledger); opening it runs
//! named steps: check the genesis block, find the resume point, rebuild the assembler, start the
//! consumer. A node that follows the channel pulls its blocks instead ([`crate::follow`]).

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use ordo_proto::common::{Block, BlockHeader};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::chain::{Chain, ChainError};
use crate::follow;
use crate::ledger::{Ledger, LedgerError};
use crate::metrics::ChannelMetrics;
use ordo_core::assembler::{Assembler, Batch};
use ordo_core::block;
use ordo_core::bundle::Bundle;
use ordo_core::entry::Entry;
use ordo_core::msp::SigningIdentity;
use ordo_core::writer::{BlockInfo, BlockWriter};

/// How much the consumer reads from the log at a time.
const FETCH_BYTES: usize = 4 << 20;

pub struct Channel {
    id: String,
    source: Source,
    ledger: Arc<Ledger>,
    bundle: RwLock<Arc<Bundle>>,
    /// Cleared when the consumer stops on an error: the channel then answers SERVICE_UNAVAILABLE
    /// (waiting Deliver streams are woken to say so).
    healthy: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    /// The consumer, or the follower's puller.
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// Why the channel stopped serving, once it has (for `/healthz`).
    failure: std::sync::Mutex<Option<String>>,
    metrics: ChannelMetrics,
}

/// Where a channel's blocks come from.
enum Source {
    /// Cut on this node from the records its chain orders.
    Chain(Arc<dyn Chain>),
    /// Pulled from the channel's consenters: this node follows the channel.
    Pulled(Arc<follow::Progress>),
}

/// The block a channel was joined with, read and parsed once: its genesis block, or a later
/// config block (the node then follows the channel, pulling its blocks).
pub struct JoinBlock {
    pub block: Block,
    pub bundle: Bundle,
}

impl JoinBlock {
    pub fn channel_id(&self) -> &str {
        self.bundle.channel_id()
    }

    pub fn number(&self) -> u64 {
        self.block.header.as_ref().map_or(0, |h| h.number)
    }

    /// The block's number and header hash: what a pulled chain must reach.
    pub fn anchor(&self) -> (u64, [u8; 32]) {
        let header = self.block.header.clone().unwrap_or_default();
        (header.number, block::header_hash(&header))
    }
}

/// Where a reopened channel stands: its last block, the configuration in force, and where its
/// chain resumes.
struct Resume {
    last_header: BlockHeader,
    last_config: u64,
    bundle: Bundle,
    next_offset: u64,
}

impl Channel {
    /// Opens a channel over its ledger and chain, writing the genesis block if the ledger is
    /// new, and starts consuming where the last block left off.
    pub fn open(
        genesis: &JoinBlock,
        ledger: Ledger,
        chain: Arc<dyn Chain>,
        signer: SigningIdentity,
    ) -> anyhow::Result<Arc<Channel>> {
        let id = genesis.channel_id().to_string();
        if genesis.number() != 0 {
            bail!(
                "channel {id}: ordering starts from the genesis block, not config block {}",
                genesis.number()
            );
        }
        check_genesis(&id, &ledger, &genesis.block)?;
        let resume = resume_point(genesis, &ledger, chain.as_ref())?;
        tracing::info!(
            channel = %id,
            consensus = chain.kind(),
            height = ledger.height(),
            resume_offset = resume.next_offset,
            "channel opened"
        );
        let assembler = rebuild_assembler(genesis, &ledger, &resume)?;
        let (stop, stop_rx) = watch::channel(false);
        let metrics = crate::metrics::global().channel(&id, chain.kind());
        metrics.set_height(ledger.height());
        let channel = Arc::new(Channel {
            id,
            source: Source::Chain(chain.clone()),
            ledger: Arc::new(ledger),
            bundle: RwLock::new(Arc::new(resume.bundle.clone())),
            healthy: watch::Sender::new(true),
            stop,
            task: std::sync::Mutex::new(None),
            failure: std::sync::Mutex::new(None),
            metrics,
        });
        let consumer = Consumer {
            channel: channel.clone(),
            chain,
            assembler,
            writer: BlockWriter::new(signer),
            next_offset: resume.next_offset,
            previous_hash: block::header_hash(&resume.last_header),
            last_config: resume.last_config,
        };
        let handle = tokio::spawn(consumer.run(stop_rx));
        *channel.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(channel)
    }

    /// Opens a channel this node follows: its ledger holds blocks pulled from the channel's
    /// consenters (none yet on a first join), and `follower` keeps pulling.
    pub(crate) fn follow(
        join: &JoinBlock,
        ledger: Ledger,
        follower: follow::Follower,
    ) -> anyhow::Result<Arc<Channel>> {
        let id = join.channel_id().to_string();
        let pulled = follow::resume(join, &ledger)?;
        // While onboarding, the join block's config is the one in force for this node.
        let bundle = pulled.bundle().clone();
        tracing::info!(channel = %id, height = ledger.height(), join_block = join.number(), "following the channel");
        let progress = Arc::new(follow::Progress::new(!pulled.is_onboarding()));
        let (stop, stop_rx) = watch::channel(false);
        let metrics = crate::metrics::global().channel(&id, "follower");
        metrics.set_height(ledger.height());
        let channel = Arc::new(Channel {
            id,
            source: Source::Pulled(progress.clone()),
            ledger: Arc::new(ledger),
            bundle: RwLock::new(Arc::new(bundle)),
            healthy: watch::Sender::new(true),
            stop,
            task: std::sync::Mutex::new(None),
            failure: std::sync::Mutex::new(None),
            metrics,
        });
        let handle = tokio::spawn(follower.run(channel.clone(), pulled, progress, stop_rx));
        *channel.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(channel)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The configuration in force (as of the last block written).
    pub fn bundle(&self) -> Arc<Bundle> {
        self.bundle
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn is_healthy(&self) -> bool {
        let errored = match &self.source {
            Source::Chain(chain) => chain.errored().is_some(),
            Source::Pulled(_) => false,
        };
        *self.healthy.borrow() && !errored
    }

    /// Whether this node follows the channel and has not yet pulled the block it joined with.
    pub fn is_onboarding(&self) -> bool {
        matches!(&self.source, Source::Pulled(progress) if progress.is_onboarding())
    }

    /// This node's part in ordering the channel (Fabric's consensus relation).
    pub fn consensus_relation(&self) -> crate::metrics::ConsensusRelation {
        match &self.source {
            Source::Chain(chain) => chain.consensus_relation(),
            Source::Pulled(_) => crate::metrics::ConsensusRelation::Follower,
        }
    }

    /// Replaces the configuration in force (a config block was written).
    pub(crate) fn set_bundle(&self, bundle: Bundle) {
        *self.bundle.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(bundle);
    }

    /// Changes when the channel stops serving.
    pub fn health(&self) -> watch::Receiver<bool> {
        self.healthy.subscribe()
    }

    /// The channel's metric handles.
    pub fn metrics(&self) -> &ChannelMetrics {
        &self.metrics
    }

    /// The health checks this channel fails now, each as (check, reason): `serving` (it
    /// stopped serving: its log or ledger could not be read or written), `consensus` (its
    /// chain can order nothing more), and what its chain checks itself (solo: `log`, the last
    /// append failed; raft: `raft_leader`, no working leader for longer than an election); a
    /// follower's `pull` (its last attempt to pull blocks failed).
    pub fn failed_checks(&self) -> Vec<(&'static str, String)> {
        let mut failed = Vec::new();
        if !*self.healthy.borrow() {
            let reason = self
                .failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .unwrap_or_else(|| "the channel is stopping".to_string());
            failed.push(("serving", reason));
        }
        match &self.source {
            Source::Chain(chain) => {
                if let Some(reason) = chain.errored() {
                    failed.push(("consensus", reason));
                }
                if let Some(problem) = chain.health() {
                    failed.push((problem.check, problem.reason));
                }
            }
            Source::Pulled(progress) => {
                if let Some(reason) = progress.problem() {
                    failed.push(("pull", reason));
                }
            }
        }
        failed
    }

    /// Marks the channel stopped: Broadcast and Deliver answer SERVICE_UNAVAILABLE from now on.
    pub(crate) fn fail(&self, what: &str, error: &dyn std::fmt::Display) {
        tracing::error!(channel = %self.id, error = %error, "{what}; the channel stops serving");
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{what}: {error}"));
        self.healthy.send_replace(false);
    }

    /// Orders a record on the channel's chain; resolves once it is committed.
    pub async fn order(&self, record: Bytes) -> Result<u64, ChainError> {
        match &self.source {
            Source::Chain(chain) => {
                chain.wait_ready().await?;
                chain.order(record).await
            }
            Source::Pulled(_) => Err(ChainError::NotCommitted(format!(
                "this node follows channel {} (it is not one of its consenters) and orders \
                 nothing; send envelopes to a consenter",
                self.id
            ))),
        }
    }

    /// Stops the consumer (or the puller), then halts the chain; all is over when this resolves. Deliver
    /// streams still waiting on the channel are woken to answer SERVICE_UNAVAILABLE.
    pub async fn shutdown(&self) {
        self.healthy.send_replace(false);
        let _ = self.stop.send(true);
        let handle = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
        if let Source::Chain(chain) = &self.source {
            chain.halt().await;
        }
        self.metrics.forget();
    }
}

/// The consumer task's state.
struct Consumer {
    channel: Arc<Channel>,
    chain: Arc<dyn Chain>,
    assembler: Assembler,
    writer: BlockWriter,
    next_offset: u64,
    previous_hash: [u8; 32],
    last_config: u64,
}

impl Consumer {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        // The batch timer: set while a batch is pending, from its first message; it keeps running
        // across a cut that leaves messages pending.
        let mut deadline: Option<Instant> = None;
        loop {
            let timer = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.changed() => break,
                fetched = self.chain.fetch(self.next_offset, FETCH_BYTES) => {
                    let records = match fetched {
                        Ok(records) => records,
                        Err(ChainError::Halted) => break,
                        Err(e) => {
                            // No block can be cut past a record that cannot be read: stop taking
                            // envelopes rather than acknowledge ones that would never be ordered.
                            self.channel.fail("reading the log failed", &e);
                            return;
                        }
                    };
                    for record in records {
                        self.next_offset = record.offset + 1;
                        for batch in self.assembler.consume(record.offset, &record.payload) {
                            if let Err(e) = self.write(batch).await {
                                self.channel.fail("writing a block failed", &e);
                                return;
                            }
                        }
                        match (self.assembler.has_pending(), deadline) {
                            (true, None) => deadline = Some(Instant::now() + self.timeout()),
                            (false, Some(_)) => deadline = None,
                            _ => {}
                        }
                    }
                }
                _ = timer => {
                    self.send_time_to_cut();
                    // Re-armed in case the record is lost; a duplicate TTC is ignored.
                    deadline = Some(Instant::now() + self.timeout());
                }
            }
        }
        tracing::debug!(channel = %self.channel.id, "consumer stopped");
    }

    fn timeout(&self) -> Duration {
        self.assembler.bundle().batch_timeout()
    }

    fn send_time_to_cut(&self) {
        let number = self.assembler.next_block();
        let channel = self.channel.clone();
        tokio::spawn(async move {
            if let Err(e) = channel.order(Entry::encode_time_to_cut(number)).await {
                tracing::warn!(channel = %channel.id, block = number, error = %e, "time-to-cut not produced");
            }
        });
    }

    async fn write(&mut self, batch: Batch) -> Result<(), WriteBlockError> {
        if batch.config.is_some() {
            self.last_config = batch.number;
        }
        let info = BlockInfo {
            number: batch.number,
            last_config: self.last_config,
            consenter_metadata: self.chain.block_metadata(batch.last_offset),
        };
        let transactions = batch.data.len();
        let block = self.writer.write(info, &self.previous_hash, batch.data);
        let hash = block::header_hash(block.header.as_ref().unwrap_or(&Default::default()));
        let ledger = self.channel.ledger.clone();
        let started = std::time::Instant::now();
        let bytes = tokio::task::spawn_blocking(move || ledger.append(&block)).await??;
        self.channel
            .metrics
            .block_written(batch.number, transactions, bytes, started.elapsed());
        self.previous_hash = hash;
        if let Some(bundle) = batch.config {
            tracing::info!(channel = %self.channel.id, block = batch.number, sequence = bundle.sequence(), "configuration updated");
            self.channel.set_bundle(bundle);
        }
        Ok(())
    }
}

/// Why the consumer could not write a block.
#[derive(Debug, thiserror::Error)]
enum WriteBlockError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("the ledger task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The config block a block names; the genesis block is its own.
pub(crate) fn recorded_last_config(block: &Block) -> Result<u64, String> {
    let number = block.header.as_ref().map_or(0, |h| h.number);
    match block::last_config_index(block) {
        Some(index) => Ok(index),
        None if number == 0 => Ok(0),
        None => Err(format!(
            "block {number} has no readable LAST_CONFIG metadata, so the configuration in force \
             is unknown"
        )),
    }
}

/// Writes the genesis block into a new ledger; an old one must hold the same.
fn check_genesis(id: &str, ledger: &Ledger, genesis: &Block) -> anyhow::Result<()> {
    if ledger.height() == 0 {
        ledger
            .append(genesis)
            .context("writing the genesis block")?;
    }
    let stored_genesis = ledger.block(0)?.context("ledger lost block 0")?;
    if stored_genesis.header != genesis.header {
        bail!("channel {id}: the ledger holds a different genesis block than the one configured");
    }
    Ok(())
}

/// The configuration block `number` holds; the join block's is already parsed (the ledger's
/// block of that number was checked to be the same).
pub(crate) fn config_of(
    genesis: &JoinBlock,
    ledger: &Ledger,
    number: u64,
) -> anyhow::Result<Bundle> {
    let id = genesis.channel_id();
    if number == genesis.number() {
        return Ok(genesis.bundle.clone());
    }
    let block = ledger
        .block(number)?
        .with_context(|| format!("channel {id}: config block {number} is missing"))?;
    let bundle = Bundle::from_block(&block)
        .map_err(|e| anyhow::anyhow!("channel {id}: config block {number}: {e}"))?;
    if bundle.channel_id() != id {
        bail!(
            "channel {id}: config block {number} is for channel {}",
            bundle.channel_id()
        );
    }
    Ok(bundle)
}

/// Where the channel resumes: after the ledger's last block, under the config it names, at the
/// chain offset its consenter metadata records.
fn resume_point(genesis: &JoinBlock, ledger: &Ledger, chain: &dyn Chain) -> anyhow::Result<Resume> {
    let id = genesis.channel_id();
    let last = ledger.last_block()?.context("ledger has no blocks")?;
    let last_header = last.header.clone().unwrap_or_default();
    let last_config =
        recorded_last_config(&last).map_err(|e| anyhow::anyhow!("channel {id}: {e}"))?;
    let bundle = config_of(genesis, ledger, last_config)?;

    // Resume right after the last record the chain holds; the pending batch is rebuilt from
    // the log, so the blocks cut after a restart are the ones that would have been cut.
    let next_offset =
        match block::consenter_metadata(&last).and_then(|metadata| chain.resume_after(&metadata)) {
            Some(offset) => offset,
            None if last_header.number == 0 => 0,
            // Taking it as "nothing consumed yet" would cut the whole log again on top of the
            // chain.
            None => bail!(
                "channel {id}: block {} has no readable {} consenter metadata (the log offset it \
             was cut from), so the node cannot tell where to resume",
                last_header.number,
                chain.kind()
            ),
        };
    if chain.local_end() < next_offset {
        bail!(
            "channel {id}: the log ends at offset {} but block {} was cut from offset {}; \
             the log is missing records the ledger holds",
            chain.local_end(),
            last_header.number,
            next_offset - 1
        );
    }
    Ok(Resume {
        last_header,
        last_config,
        bundle,
        next_offset,
    })
}

/// The assembler a node that never stopped would have after the ledger's last block
/// ([`Assembler::rebuild`] over the ledger: each block's data, under the dedup window of the
/// config block it names).
fn rebuild_assembler(
    genesis: &JoinBlock,
    ledger: &Ledger,
    resume: &Resume,
) -> anyhow::Result<Assembler> {
    let id = genesis.channel_id();
    let mut config_windows = std::collections::HashMap::new();
    let read_block = |number: u64| {
        ledger
            .block(number)?
            .with_context(|| format!("channel {id}: block {number} is missing"))
    };
    Assembler::rebuild(
        resume.bundle.clone(),
        resume.last_header.number + 1,
        |number| -> anyhow::Result<(u32, Vec<Bytes>)> {
            let block = read_block(number)?;
            let config_index =
                recorded_last_config(&block).map_err(|e| anyhow::anyhow!("channel {id}: {e}"))?;
            let window = match config_windows.get(&config_index) {
                Some(&window) => window,
                None => {
                    let window = config_of(genesis, ledger, config_index)?.dedup_window_blocks();
                    config_windows.insert(config_index, window);
                    window
                }
            };
            Ok((window, block.data.map(|d| d.data).unwrap_or_default()))
        },
    )
}

/// Reads a genesis block file, and the channel configuration in it.
pub fn read_genesis(path: &Path) -> anyhow::Result<JoinBlock> {
    let join = read_join_block(path)?;
    if join.number() != 0 {
        bail!("{} is not a genesis block (number 0)", path.display());
    }
    Ok(join)
}

/// Reads a join block file (a genesis block or a later config block), and the channel
/// configuration in it.
pub fn read_join_block(path: &Path) -> anyhow::Result<JoinBlock> {
    use prost::Message;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let block = Block::decode(bytes.as_slice())
        .with_context(|| format!("{} is not a block", path.display()))?;
    if block.header.is_none() {
        bail!("{} is a block without a header", path.display());
    }
    let bundle = Bundle::from_block(&block).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a channel config block Ordo can serve: {e}",
            path.display()
        )
    })?;
    Ok(JoinBlock { block, bundle })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::solo::SoloChain;
    use crate::ledger::LedgerConfig;
    use crate::log::{Partition, PartitionConfig};
    use ordo_proto::common::BlockHeader;

    #[tokio::test]
    async fn a_block_without_readable_metadata_is_a_refusal_not_a_fresh_start() {
        let fixture = crate::setup::dev::Fixture::new();
        let (dir, genesis) = (&fixture.dir, &fixture.genesis);
        let ledger = Ledger::open(&dir.path().join("ledger"), LedgerConfig::default()).unwrap();
        ledger.append(&genesis.block).unwrap();
        ledger
            .append(&Block {
                header: Some(BlockHeader {
                    number: 1,
                    previous_hash: block::header_hash(genesis.block.header.as_ref().unwrap())
                        .to_vec()
                        .into(),
                    data_hash: Default::default(),
                }),
                data: Some(Default::default()),
                metadata: Some(Default::default()),
            })
            .unwrap();
        let log = Partition::open(&dir.path().join("log"), PartitionConfig::default()).unwrap();
        let signer = fixture.signer.clone();
        let refused = Channel::open(genesis, ledger, SoloChain::new(log), signer)
            .err()
            .expect("a refusal");
        assert!(
            refused.to_string().contains("block 1 has no readable"),
            "{refused:#}"
        );
    }
}
