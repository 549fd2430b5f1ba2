//! Fan-out: extra Deliver clients, each on its own connection, that follow the chain for the
//! whole run as peers pulling blocks would. They only count blocks and bytes, reading each block
//! as bytes and decoding just its header (no signature checks, no envelopes), so what they add
//! is mostly the orderer's cost of serving them, not peer-sim's.

use anyhow::Context;
use futures::StreamExt;
use ordo_proto::common::BlockHeader;
use ordo_proto::common::Status;
use ordo_proto::orderer::seek_info::SeekBehavior;
use ordo_proto::ordo::deliver_frame;
use prost::Message;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::Client;

/// A block with only its header decoded (prost skips the data and metadata fields).
#[derive(Clone, PartialEq, prost::Message)]
struct HeaderOnly {
    #[prost(message, optional, tag = "1")]
    header: Option<BlockHeader>,
}

/// What one follower has received so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Tally {
    pub blocks: u64,
    /// Encoded size of the blocks received.
    pub bytes: u64,
    /// Number of the newest block received.
    pub last_block: Option<u64>,
    /// Why its Deliver stream ended, if it did.
    pub error: Option<String>,
}

impl Tally {
    /// Whether it has received block `target` (any tally has, with no target).
    pub fn reached(&self, target: Option<u64>) -> bool {
        match target {
            None => true,
            Some(t) => self.last_block.is_some_and(|b| b >= t),
        }
    }
}

/// The followers at the end of a run, beside the main follower's last block.
#[derive(Clone, Debug, Serialize)]
pub struct FanoutReport {
    pub followers: usize,
    /// The block each had to reach: the last one the main follower saw (`None`: it saw none).
    pub target_block: Option<u64>,
    pub each: Vec<Tally>,
}

impl FanoutReport {
    /// Indexes of the followers that did not reach the target.
    pub fn behind(&self) -> Vec<usize> {
        (0..self.each.len())
            .filter(|&k| !self.each[k].reached(self.target_block))
            .collect()
    }

    pub fn blocks_total(&self) -> u64 {
        self.each.iter().map(|t| t.blocks).sum()
    }

    pub fn bytes_total(&self) -> u64 {
        self.each.iter().map(|t| t.bytes).sum()
    }

    /// Fewest and most blocks any one follower received.
    pub fn blocks_range(&self) -> (u64, u64) {
        let blocks = self.each.iter().map(|t| t.blocks);
        (blocks.clone().min().unwrap_or(0), blocks.max().unwrap_or(0))
    }
}

/// Followers running in the background.
pub struct Fanout {
    progress: Vec<watch::Receiver<Tally>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Fanout {
    /// Opens Deliver on each client from block `from` on; fails if any cannot be opened.
    pub async fn start(clients: Vec<Client>, from: u64) -> anyhow::Result<Fanout> {
        let mut fanout = Fanout {
            progress: Vec::with_capacity(clients.len()),
            tasks: Vec::with_capacity(clients.len()),
        };
        for (k, client) in clients.into_iter().enumerate() {
            let mut deliver = client
                .deliver_bytes(from, u64::MAX, SeekBehavior::BlockUntilReady)
                .await
                .with_context(|| format!("follower {k}: opening Deliver at {}", client.endpoint))?;
            let (tally, progress) = watch::channel(Tally::default());
            fanout.progress.push(progress);
            fanout.tasks.push(tokio::spawn(async move {
                let error = loop {
                    let block = match deliver.next().await {
                        None => break "Deliver stream ended".to_string(),
                        Some(Err(e)) => break format!("Deliver stream: {}", e.message()),
                        Some(Ok(response)) => match response.r#type {
                            Some(deliver_frame::Type::Block(block)) => block,
                            Some(deliver_frame::Type::Status(s)) => {
                                break format!(
                                    "Deliver ended with status {:?}",
                                    Status::try_from(s)
                                )
                            }
                            None => break "empty Deliver response".to_string(),
                        },
                    };
                    let bytes = block.len() as u64;
                    let number = HeaderOnly::decode(block)
                        .ok()
                        .and_then(|b| b.header)
                        .map(|h| h.number);
                    tally.send_modify(|t| {
                        t.blocks += 1;
                        t.bytes += bytes;
                        t.last_block = number.or(t.last_block);
                    });
                };
                tally.send_modify(|t| t.error = Some(error));
            }));
        }
        Ok(fanout)
    }

    /// Waits until every follower has received block `target` (or its stream ended), until
    /// `deadline` at most; then stops them and reports what each received.
    pub async fn finish(
        mut self,
        target: Option<u64>,
        deadline: tokio::time::Instant,
    ) -> FanoutReport {
        for progress in &mut self.progress {
            let done = |t: &Tally| t.reached(target) || t.error.is_some();
            // Timed out or not, the tally below tells.
            let _ = tokio::time::timeout_at(deadline, progress.wait_for(done)).await;
        }
        // The tasks are stopped when `self` is dropped, after the tallies are read.
        FanoutReport {
            followers: self.progress.len(),
            target_block: target,
            each: self.progress.iter().map(|p| p.borrow().clone()).collect(),
        }
    }
}

impl Drop for Fanout {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(blocks: u64, bytes: u64, last: Option<u64>) -> Tally {
        Tally {
            blocks,
            bytes,
            last_block: last,
            error: None,
        }
    }

    #[test]
    fn a_follower_is_behind_until_it_holds_the_main_followers_last_block() {
        let report = FanoutReport {
            followers: 3,
            target_block: Some(12),
            each: vec![
                tally(10, 1000, Some(12)),
                tally(9, 900, Some(11)),
                tally(0, 0, None),
            ],
        };
        assert_eq!(report.behind(), vec![1, 2]);
        assert_eq!(report.blocks_total(), 19);
        assert_eq!(report.bytes_total(), 1900);
        assert_eq!(report.blocks_range(), (0, 10));

        // With no block seen by the main follower there is nothing to reach.
        let none = FanoutReport {
            target_block: None,
            ..report.clone()
        };
        assert!(none.behind().is_empty());
        // An error does not count as having reached the target.
        let mut failed = tally(10, 1000, Some(11));
        failed.error = Some("Deliver stream ended".into());
        assert!(!failed.reached(Some(12)));
        assert!(tally(1, 1, Some(13)).reached(Some(12)));
    }
}
