//! Following a chain live: Deliver from a height on, every block verified as it arrives.

use std::time::Instant;

use anyhow::{bail, Context};
use futures::StreamExt;
use ordo_proto::common::Status;
use ordo_proto::orderer::deliver_response;
use ordo_proto::orderer::seek_info::SeekBehavior;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::chain::ChainVerifier;
use crate::client::Client;

/// A verified block as it reached the client.
#[derive(Clone, Debug)]
pub struct Arrival {
    pub number: u64,
    pub tx_ids: Vec<String>,
    pub at: Instant,
}

/// Follows Deliver from the verifier's height, verifying each block and sending what it held.
pub async fn follow(
    client: Client,
    mut verifier: ChainVerifier,
    arrivals: mpsc::UnboundedSender<Arrival>,
) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
    let mut deliver = client
        .deliver(verifier.height(), u64::MAX, SeekBehavior::BlockUntilReady)
        .await?;
    Ok(tokio::spawn(async move {
        while let Some(response) = deliver.next().await {
            let block = match response.context("Deliver stream")?.r#type {
                Some(deliver_response::Type::Block(block)) => block,
                Some(deliver_response::Type::Status(s)) => {
                    bail!("Deliver ended with status {:?}", Status::try_from(s))
                }
                None => bail!("empty Deliver response"),
            };
            let verified = verifier.verify(&block)?;
            let arrival = Arrival {
                number: verified.number,
                tx_ids: verified.tx_ids,
                at: Instant::now(),
            };
            if arrivals.send(arrival).is_err() {
                break;
            }
        }
        Ok(())
    }))
}
