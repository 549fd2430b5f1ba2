//! Following a channel (Fabric's follower and onboarding): a node that joined a channel with a
//! later config block, or that is not one of its consenters, orders nothing; it pulls the
//! channel's blocks over Deliver from the consenters the join block's config lists, checks each
//! one ([`verify`]: up to the join block, a chain of header hashes walked to it before anything is
//! stored; past it, the hash chain and the BlockValidation policy in force), and stores them as
//! they came. Until it holds the join block it is *onboarding*; then it is an active follower and
//! keeps pulling. Config blocks past the join block change whom it pulls from and whose TLS roots
//! it trusts.
//!
//! - [`verify`]: the checks, free of I/O;
//! - [`puller`]: Deliver clients to the consenters, one source at a time, in turn.

pub mod puller;
pub mod verify;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use ordo_core::block;
use ordo_core::bundle::Bundle;
use ordo_core::configtx::etcdraft;
use ordo_core::configtx::values::Consensus;
use ordo_proto::common::Block;
use tokio::sync::watch;

use crate::channel::{config_of, recorded_last_config, Channel, JoinBlock};
use crate::ledger::Ledger;
use crate::tls::NodeTls;
use puller::Puller;
use verify::PulledChain;

/// How long to wait after a failed pull before the next source is tried.
const RETRY: Duration = Duration::from_secs(1);

/// What a follower shows of itself: whether it is still onboarding, and why its last pull failed.
pub struct Progress {
    onboarded: AtomicBool,
    problem: Mutex<Option<String>>,
}

impl Progress {
    pub fn new(onboarded: bool) -> Progress {
        Progress {
            onboarded: AtomicBool::new(onboarded),
            problem: Mutex::new(None),
        }
    }

    pub fn is_onboarding(&self) -> bool {
        !self.onboarded.load(Ordering::Relaxed)
    }

    /// Why the last attempt to pull failed, while no source serves blocks.
    pub fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_problem(&self, problem: Option<String>) {
        *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = problem;
    }
}

/// Where a follower resumes over its ledger: after its last block (which must agree with the
/// join block once past it), or from the genesis block on an empty ledger.
pub fn resume(join: &JoinBlock, ledger: &Ledger) -> anyhow::Result<PulledChain> {
    let id = join.channel_id();
    let anchor = join.anchor();
    let Some(last) = ledger.last_block()? else {
        return Ok(PulledChain::empty(anchor, join.bundle.clone()));
    };
    if ledger.height() <= anchor.0 {
        // Still onboarding: the join block's config is the one in force past it.
        return Ok(PulledChain::after(&last, join.bundle.clone(), anchor));
    }
    let stored = ledger
        .block(anchor.0)?
        .with_context(|| format!("channel {id}: the ledger lost block {}", anchor.0))?;
    if block::header_hash(&stored.header.unwrap_or_default()) != anchor.1 {
        bail!(
            "channel {id}: the ledger holds a different block {} than the block the channel \
             was joined with",
            anchor.0
        );
    }
    let last_config =
        recorded_last_config(&last).map_err(|e| anyhow::anyhow!("channel {id}: {e}"))?;
    let bundle = config_of(join, ledger, last_config.max(anchor.0))?;
    Ok(PulledChain::after(&last, bundle, anchor))
}

/// Why pulling from one source stopped.
enum PullError {
    /// The source failed or sent a block that did not verify: try another.
    Source(String),
    /// The block could not be stored: the channel stops.
    Store(anyhow::Error),
    /// The channel is stopping.
    Stopped,
}

/// Resolves `work`, unless the channel stops first.
async fn unless_stopped<T>(
    stop: &mut watch::Receiver<bool>,
    work: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, PullError> {
    tokio::select! {
        _ = stop.changed() => Err(PullError::Stopped),
        done = work => done.map_err(PullError::Source),
    }
}

/// The pulling task of a followed channel.
pub struct Follower {
    puller: Puller,
    /// Consenter addresses this node dials elsewhere (`cluster.dial`).
    dial: BTreeMap<String, String>,
    tls: NodeTls,
}

impl Follower {
    pub fn new(puller: Puller, dial: BTreeMap<String, String>, tls: NodeTls) -> Follower {
        Follower { puller, dial, tls }
    }

    /// Pulls until stopped: from each source in turn, as long as it serves good blocks. A block
    /// being stored is always stored whole before the task ends.
    pub(crate) async fn run(
        mut self,
        channel: Arc<Channel>,
        mut pulled: PulledChain,
        progress: Arc<Progress>,
        mut stop: watch::Receiver<bool>,
    ) {
        self.configure(pulled.bundle());
        loop {
            let Some(source) = self.puller.next_source() else {
                progress.set_problem(Some(
                    "the channel's config lists no consenters to pull blocks from".into(),
                ));
                let _ = stop.changed().await;
                break;
            };
            let failed = match self
                .pull_from(&source, &channel, &mut pulled, &progress, &mut stop)
                .await
            {
                PullError::Stopped => break,
                PullError::Store(e) => {
                    channel.fail("storing a pulled block failed", &format!("{e:#}"));
                    return;
                }
                PullError::Source(reason) => reason,
            };
            tracing::warn!(channel = %channel.id(), %source, reason = %failed, "pulling blocks failed; trying the next consenter");
            progress.set_problem(Some(format!("pulling from {source}: {failed}")));
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
        tracing::debug!(channel = %channel.id(), "follower stopped");
    }

    /// Pulls from `source` until it fails. While onboarding, its headers are walked to the join
    /// block first, so that nothing is stored from a chain that does not lead there.
    async fn pull_from(
        &mut self,
        source: &str,
        channel: &Channel,
        pulled: &mut PulledChain,
        progress: &Progress,
        stop: &mut watch::Receiver<bool>,
    ) -> PullError {
        if let Some(mut walk) = pulled.walk() {
            let join = pulled.join_number();
            let mut headers =
                match unless_stopped(stop, self.puller.headers(source, walk.next(), join)).await {
                    Ok(headers) => headers,
                    Err(e) => return e,
                };
            loop {
                let header = match unless_stopped(stop, headers.next()).await {
                    Ok(header) => header,
                    Err(e) => return e,
                };
                match walk.take(&header) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => return PullError::Source(format!("refused the header of {e}")),
                }
            }
            pulled.trust(walk);
        }
        let mut blocks = match unless_stopped(stop, self.puller.follow(source, pulled.next())).await
        {
            Ok(blocks) => blocks,
            Err(e) => return e,
        };
        progress.set_problem(None);
        loop {
            let block = match unless_stopped(stop, blocks.next()).await {
                Ok(block) => block,
                Err(e) => return e,
            };
            let checked = match pulled.check(&block) {
                Ok(checked) => checked,
                Err(e) => return PullError::Source(format!("refused {e}")),
            };
            if let Err(e) = store(channel, block).await {
                return PullError::Store(e);
            }
            if let Some(config) = checked.config {
                self.config_changed(channel, config);
                if !self.puller.has_source(source) {
                    return PullError::Source("it is no longer one of the consenters".into());
                }
            }
            if !pulled.is_onboarding() && progress.is_onboarding() {
                progress.onboarded.store(true, Ordering::Relaxed);
                tracing::info!(channel = %channel.id(), height = pulled.next(), "onboarded: the join block is stored; following the channel");
            }
        }
    }

    /// A config block past the join block was stored: its consenters are the sources now, its
    /// orgs' roots trusted.
    fn config_changed(&mut self, channel: &Channel, config: Bundle) {
        self.tls.add_channel(&config);
        self.configure(&config);
        channel.set_bundle(config);
    }

    /// Pulls from the consenters of `config`, taking blocks as large as its batches can make.
    fn configure(&mut self, config: &Bundle) {
        let sources = sources(config, &self.dial);
        // Room over a full batch for its envelopes' framing and the block's metadata.
        let max_block_bytes = config.absolute_max_bytes() as usize * 2 + (4 << 20);
        self.puller.configure(sources, max_block_bytes);
    }
}

/// Stores a checked block as it came.
async fn store(channel: &Channel, block: Block) -> anyhow::Result<()> {
    let number = block.header.as_ref().map_or(0, |h| h.number);
    let ledger = channel.ledger().clone();
    tokio::task::spawn_blocking(move || ledger.append(&block))
        .await
        .context("the ledger task failed")?
        .with_context(|| format!("appending block {number}"))?;
    channel.metrics().set_height(number + 1);
    Ok(())
}

/// Where to pull a channel of config `bundle` from: its consenters' addresses, as this node
/// dials them.
fn sources(bundle: &Bundle, dial: &BTreeMap<String, String>) -> Vec<String> {
    match &bundle.values().consensus {
        Consensus::EtcdRaft { consenters, .. } => consenters
            .iter()
            .map(|c| {
                let endpoint = etcdraft::endpoint(c);
                dial.get(&endpoint).cloned().unwrap_or(endpoint)
            })
            .collect(),
        _ => Vec::new(),
    }
}
