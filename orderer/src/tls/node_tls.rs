//! The node's TLS from its config: the client port's identity (`[tls]`), the cluster port's
//! (`[cluster] cert/key/root_cas`, by default `[tls]`'s), and where each takes the channels'
//! TLS roots from.

use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use ordo_core::bundle::Bundle;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::credentials::{ClientAuth, Credentials, TlsFiles, ALPN_H2};
use super::dialer::Dialer;
use super::watch::{self, RootsSource};
use crate::registrar::Registrar;
use crate::setup::config::{NodeConfig, TlsSection};

/// One port's TLS: its identity and the acceptor over it.
#[derive(Clone)]
pub struct PortTls {
    pub credentials: Arc<Credentials>,
    pub acceptor: TlsAcceptor,
}

/// The cluster port's TLS: always mutual, and the same identity dials the other orderers.
#[derive(Clone)]
pub struct ClusterTls {
    pub port: PortTls,
    pub dialer: Dialer,
}

/// An HTTP port's TLS (operations, admin): the CAs client certificates chain to come from its own
/// files only, as Fabric's `Operations.TLS.ClientRootCAs` do.
#[derive(Clone)]
pub struct HttpTls {
    pub credentials: Arc<Credentials>,
    pub client_auth: ClientAuth,
}

impl HttpTls {
    /// The TLS of `section` (named `name` in errors), `None` when it is off.
    pub fn load(section: &TlsSection, name: &str) -> anyhow::Result<Option<HttpTls>> {
        if !section.enabled {
            return Ok(None);
        }
        let (Some(cert), Some(key)) = (&section.cert, &section.key) else {
            anyhow::bail!("{name}.enabled needs {name}.cert and {name}.key");
        };
        let client_auth = match (
            section.client_auth_required,
            section.client_root_cas.is_empty(),
        ) {
            (true, _) => ClientAuth::Required,
            // Verified when sent, as Fabric's operations port does without ClientAuthRequired.
            (false, false) => ClientAuth::Optional,
            (false, true) => ClientAuth::None,
        };
        let credentials = Credentials::load(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            roots: section.client_root_cas.clone(),
        })
        .with_context(|| format!("loading the TLS files of [{name}]"))?;
        Ok(Some(HttpTls {
            credentials,
            client_auth,
        }))
    }

    /// The acceptor factory `crate::http::serve` takes.
    pub fn acceptor(&self) -> anyhow::Result<crate::http::TlsAcceptorFn> {
        Ok(self.credentials.http_acceptor(self.client_auth)?)
    }
}

#[derive(Clone, Default)]
pub struct NodeTls {
    /// The client port (AtomicBroadcast); `None`: plain text.
    pub client: Option<PortTls>,
    /// Clients must present certificates, and bind envelopes to them.
    pub client_auth_required: bool,
    /// The cluster port (raft with TLS on).
    pub cluster: Option<ClusterTls>,
    /// The operations port (`[operations.tls]`, on or off whatever `[tls]` says).
    pub operations: Option<HttpTls>,
    /// The participation API's admin port (`[admin.tls]`).
    pub admin: Option<HttpTls>,
}

impl NodeTls {
    /// Loads the configured files; TLS off gives plain ports.
    pub fn from_config(config: &NodeConfig) -> anyhow::Result<NodeTls> {
        let tls = &config.tls;
        let operations = HttpTls::load(&config.operations.tls, "operations.tls")?;
        let admin = HttpTls::load(&config.admin.tls, "admin.tls")?;
        if !tls.enabled {
            return Ok(NodeTls {
                operations,
                admin,
                ..NodeTls::default()
            });
        }
        let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else {
            anyhow::bail!("tls.enabled needs tls.cert and tls.key");
        };
        let client_auth = if tls.client_auth_required {
            ClientAuth::Required
        } else {
            ClientAuth::None
        };
        let credentials = Credentials::load(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            roots: tls.client_root_cas.clone(),
        })
        .context("loading the client port's TLS files ([tls])")?;
        let client = PortTls {
            acceptor: TlsAcceptor::from(credentials.server_config(client_auth, &[ALPN_H2])?),
            credentials,
        };
        let cluster = match (&config.cluster, config.node.cluster_listen) {
            (Some(section), Some(_)) => {
                let credentials = Credentials::load(TlsFiles {
                    cert: section.cert.clone().unwrap_or_else(|| cert.clone()),
                    key: section.key.clone().unwrap_or_else(|| key.clone()),
                    roots: section.root_cas.clone(),
                })
                .context("loading the cluster's TLS files ([cluster] cert, key, root_cas)")?;
                Some(ClusterTls {
                    port: PortTls {
                        acceptor: TlsAcceptor::from(
                            credentials.server_config(ClientAuth::Required, &[ALPN_H2])?,
                        ),
                        credentials: credentials.clone(),
                    },
                    dialer: Dialer::new(credentials)?,
                })
            }
            _ => None,
        };
        Ok(NodeTls {
            client: Some(client),
            client_auth_required: tls.client_auth_required,
            cluster,
            operations,
            admin,
        })
    }

    /// Trusts a channel's roots before it is served (its Raft group dials at once); the
    /// watcher's next round settles the set from the served channels.
    pub fn add_channel(&self, bundle: &Bundle) {
        let add = |credentials: &Credentials, pems: Vec<Bytes>| {
            if let Err(e) = credentials.add_channel_roots(&pems) {
                tracing::error!(channel = %bundle.channel_id(), error = %e, "the channel's TLS roots could not be used");
            }
        };
        if let Some(client) = &self.client {
            add(&client.credentials, all_org_roots(bundle));
        }
        if let Some(cluster) = &self.cluster {
            add(&cluster.port.credentials, orderer_org_roots(bundle));
        }
    }

    /// How this node dials other orderers (their cluster ports, or their client ports to pull
    /// blocks): with its cluster identity, or without a cluster its client-port identity; `None`
    /// without TLS. Use with [`super::dial`]; with mutual TLS on the other side, Deliver
    /// requests must carry [`Dialer::tls_cert_hash`].
    pub fn dialer(&self) -> Option<Dialer> {
        match (&self.cluster, &self.client) {
            (Some(cluster), _) => Some(cluster.dialer.clone()),
            (None, Some(client)) => match Dialer::new(client.credentials.clone()) {
                Ok(dialer) => Some(dialer),
                Err(e) => {
                    tracing::error!(error = %e, "no TLS client configuration");
                    None
                }
            },
            (None, None) => None,
        }
    }

    /// Brings the channels' roots up to date now, then keeps reloading (files on SIGHUP or
    /// change, roots at each poll) while the returned guard lives. `None` without TLS.
    pub fn watch(&self, registrar: &Registrar) -> Option<Watching> {
        let mut watched: Vec<(Arc<Credentials>, RootsSource)> = Vec::new();
        if let Some(client) = &self.client {
            let registrar = registrar.clone();
            watched.push((
                client.credentials.clone(),
                Arc::new(move || roots_of(&registrar, all_org_roots)),
            ));
        }
        if let Some(cluster) = &self.cluster {
            let registrar = registrar.clone();
            watched.push((
                cluster.port.credentials.clone(),
                Arc::new(move || roots_of(&registrar, orderer_org_roots)),
            ));
        }
        for http in self.operations.iter().chain(&self.admin) {
            watched.push((http.credentials.clone(), Arc::new(Vec::new)));
        }
        if watched.is_empty() {
            return None;
        }
        for (credentials, roots) in &watched {
            watch::refresh(credentials, roots, false);
        }
        Some(Watching(watch::watch(watched, watch::RELOAD_POLL)))
    }
}

/// The reloading task; it stops when this is dropped.
pub struct Watching(JoinHandle<()>);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn roots_of(registrar: &Registrar, of: fn(&Bundle) -> Vec<Bytes>) -> Vec<Bytes> {
    registrar
        .channels()
        .iter()
        .flat_map(|channel| of(&channel.bundle()))
        .collect()
}

/// Every org's TLS roots and intermediates: who may be a client (Fabric's client root CAs).
pub fn all_org_roots(bundle: &Bundle) -> Vec<Bytes> {
    let msps = bundle.msps();
    msps.mspids()
        .filter_map(|id| msps.msp(id))
        .flat_map(tls_certs)
        .collect()
}

/// The orderer orgs' TLS roots and intermediates: who may be a cluster peer.
pub fn orderer_org_roots(bundle: &Bundle) -> Vec<Bytes> {
    let msps = bundle.msps();
    bundle
        .values()
        .orderer_orgs
        .iter()
        .filter_map(|org| msps.msp(&org.msp_id))
        .flat_map(tls_certs)
        .collect()
}

fn tls_certs(msp: &ordo_core::msp::Msp) -> Vec<Bytes> {
    msp.tls_root_certs()
        .iter()
        .chain(msp.tls_intermediate_certs())
        .cloned()
        .collect()
}
