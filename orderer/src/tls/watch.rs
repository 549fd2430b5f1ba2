//! Reloading: the credentials' files are read again on SIGHUP and when their modification
//! times change (polled), and the channels' TLS roots are brought up to date at each poll.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::credentials::Credentials;

/// How often the files' modification times (and the channels' roots) are checked.
pub const RELOAD_POLL: Duration = Duration::from_secs(2);

/// The TLS roots (PEM) a credentials' verifiers take from the node's channels, read at each
/// poll (channels come and go, and config updates change their orgs).
pub type RootsSource = Arc<dyn Fn() -> Vec<bytes::Bytes> + Send + Sync>;

/// Watches `credentials` until the task is aborted. Each comes with the source of its channel
/// roots.
pub fn watch(credentials: Vec<(Arc<Credentials>, RootsSource)>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(signal) => Some(signal),
            Err(e) => {
                tracing::warn!(error = %e, "SIGHUP cannot be caught: TLS files are reloaded only when they change");
                None
            }
        };
        loop {
            let forced = tokio::select! {
                _ = tokio::time::sleep(every) => false,
                Some(()) = async { match &mut hangup { Some(h) => h.recv().await, None => None } } => true,
            };
            for (credentials, roots) in &credentials {
                refresh(credentials, roots, forced);
            }
        }
    })
}

/// One round: the channel roots, then the files.
pub fn refresh(credentials: &Credentials, roots: &RootsSource, forced: bool) {
    match credentials.set_channel_roots(&roots()) {
        Ok(true) => {
            tracing::info!(cert = %credentials.files().cert.display(), "TLS roots of the channels updated")
        }
        Ok(false) => {}
        Err(e) => {
            tracing::error!(error = %e, "the channels' TLS roots could not be used; keeping the previous ones")
        }
    }
    match credentials.reload_if_changed(forced) {
        Ok(true) => {
            tracing::info!(cert = %credentials.files().cert.display(), "TLS certificate reloaded")
        }
        Ok(false) => {}
        Err(e) => {
            tracing::error!(error = %e, "reloading TLS files failed; keeping the previous certificate")
        }
    }
}
