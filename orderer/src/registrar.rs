//! The registrar (Fabric's multichannel registrar): the channels a node serves, by id. Channels
//! can be added and removed while the node runs; Broadcast and Deliver look a channel up on each
//! request, so a removed one answers NOT_FOUND from then on.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::channel::Channel;

#[derive(Clone, Default)]
pub struct Registrar(Arc<RwLock<Channels>>);

#[derive(Default)]
struct Channels {
    served: HashMap<String, Arc<Channel>>,
    /// Ids being opened or shut down: their files are in use, so no second instance may open
    /// them until the first is served or has stopped.
    busy: HashSet<String>,
}

/// A channel id already served, or being opened or removed.
#[derive(Debug, thiserror::Error)]
#[error("channel {0} is already served by this node, or being opened or removed")]
pub struct AlreadyServed(pub String);

/// An id held for one channel instance: while it lives, no other instance of the channel is
/// opened. Dropped without [`Reservation::serve`], it frees the id.
pub struct Reservation {
    registrar: Registrar,
    id: String,
    /// Cleared once the id is handed over to a served channel.
    holds: bool,
}

impl Reservation {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Serves `channel` (opened under this reservation) from now on.
    pub fn serve(mut self, channel: Arc<Channel>) {
        let mut channels = self.registrar.write();
        channels.busy.remove(&self.id);
        channels.served.insert(self.id.clone(), channel);
        self.holds = false;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.holds {
            self.registrar.write().busy.remove(&self.id);
        }
    }
}

impl Registrar {
    fn read(&self) -> RwLockReadGuard<'_, Channels> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Channels> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<Arc<Channel>> {
        self.read().served.get(id).cloned()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.read().served.contains_key(id)
    }

    /// The channels served now.
    pub fn channels(&self) -> Vec<Arc<Channel>> {
        self.read().served.values().cloned().collect()
    }

    /// Holds `id` for a channel about to be opened; refused if it is served, or being opened or
    /// removed.
    pub fn reserve(&self, id: &str) -> Result<Reservation, AlreadyServed> {
        let mut channels = self.write();
        if channels.served.contains_key(id) || !channels.busy.insert(id.to_string()) {
            return Err(AlreadyServed(id.to_string()));
        }
        Ok(Reservation {
            registrar: self.clone(),
            id: id.to_string(),
            holds: true,
        })
    }

    /// Stops serving channel `id`: Broadcast and Deliver no longer find it, but its id stays
    /// held until the returned reservation is dropped, which the caller does once the channel
    /// has shut down and what it held is released.
    pub fn take(&self, id: &str) -> Option<(Arc<Channel>, Reservation)> {
        let mut channels = self.write();
        let channel = channels.served.remove(id)?;
        channels.busy.insert(id.to_string());
        drop(channels);
        let held = Reservation {
            registrar: self.clone(),
            id: id.to_string(),
            holds: true,
        };
        Some((channel, held))
    }

    /// Stops serving channel `id` and shuts it down (consumer stopped, chain halted, both awaited).
    /// Returns whether it was served.
    pub async fn remove(&self, id: &str) -> bool {
        match self.take(id) {
            Some((channel, _held)) => {
                channel.shutdown().await;
                true
            }
            None => false,
        }
    }

    /// The largest envelope any channel accepts: the gRPC message limit must let it through, so
    /// that an oversized one gets REQUEST_ENTITY_TOO_LARGE rather than a transport error.
    pub fn max_envelope_bytes(&self) -> usize {
        self.read()
            .served
            .values()
            .map(|c| c.bundle().absolute_max_bytes() as usize)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_held_from_reservation_until_dropped() {
        let registrar = Registrar::default();
        let held = registrar.reserve("ordo").unwrap();
        assert!(registrar.reserve("ordo").is_err());
        assert!(registrar.reserve("other").is_ok());
        drop(held);
        assert!(registrar.reserve("ordo").is_ok());
        assert!(registrar.take("ordo").is_none());
    }
}
