//! The registrar (Fabric's multichannel registrar): the channels a node serves, by id. Channels
//! can be added and removed while the node runs; Broadcast and Deliver look a channel up on each
//! request, so a removed one answers NOT_FOUND from then on.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::channel::Channel;

#[derive(Clone, Default)]
pub struct Registrar(Arc<RwLock<HashMap<String, Arc<Channel>>>>);

/// A channel id already served.
#[derive(Debug, thiserror::Error)]
#[error("channel {0} is already served by this node")]
pub struct AlreadyServed(pub String);

impl Registrar {
    pub fn new(channels: impl IntoIterator<Item = Arc<Channel>>) -> Self {
        let registrar = Registrar::default();
        for channel in channels {
            // Ids come from distinct genesis blocks; a repeat replaces nothing.
            let _ = registrar.insert(channel);
        }
        registrar
    }

    fn map(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Channel>>> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<Arc<Channel>> {
        self.map().get(id).cloned()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.map().contains_key(id)
    }

    /// The channels served now.
    pub fn channels(&self) -> Vec<Arc<Channel>> {
        self.map().values().cloned().collect()
    }

    /// Serves `channel` from now on; refused if its id is taken.
    pub fn insert(&self, channel: Arc<Channel>) -> Result<(), AlreadyServed> {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        if map.contains_key(channel.id()) {
            return Err(AlreadyServed(channel.id().to_string()));
        }
        map.insert(channel.id().to_string(), channel);
        Ok(())
    }

    /// Stops serving channel `id` and shuts it down (consumer stopped, chain halted, both awaited).
    /// Returns whether it was served.
    pub async fn remove(&self, id: &str) -> bool {
        let removed = self.0.write().unwrap_or_else(|e| e.into_inner()).remove(id);
        match removed {
            Some(channel) => {
                channel.shutdown().await;
                true
            }
            None => false,
        }
    }

    /// The largest envelope any channel accepts: the gRPC message limit must let it through, so
    /// that an oversized one gets REQUEST_ENTITY_TOO_LARGE rather than a transport error.
    pub fn max_envelope_bytes(&self) -> usize {
        self.map()
            .values()
            .map(|c| c.policy().absolute_max_bytes() as usize)
            .max()
            .unwrap_or(0)
    }
}
