//! One TLS identity and the roots it trusts, swappable while the node runs, and the rustls
//! configurations over it: every handshake asks for the current key and verifier.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::pem::{self, TlsError};

/// gRPC runs over HTTP/2 only.
pub const ALPN_H2: &[u8] = b"h2";

/// Where an identity's files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// Extra trusted CA certificates (PEM files), besides the channels' roots.
    pub roots: Vec<PathBuf>,
}

impl TlsFiles {
    fn all(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.cert, &self.key].into_iter().chain(&self.roots)
    }
}

/// Whether a server asks its clients for certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// Server authentication only (Fabric's `ClientAuthRequired: false`).
    None,
    /// A client certificate that chains to the trusted roots is required (mutual TLS).
    Required,
    /// A client certificate is verified if one is sent (Fabric's operations port without
    /// `ClientAuthRequired`).
    Optional,
}

/// What one load of the files (and the latest channel roots) produced.
struct State {
    key: Arc<CertifiedKey>,
    /// Both verifiers over the union of the files' and the channels' roots; `None` when there
    /// is no root at all (then every peer is refused).
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
    server_verifier: Option<Arc<WebPkiServerVerifier>>,
}

/// A TLS identity whose files are read again by [`Credentials::reload_if_changed`].
pub struct Credentials {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    state: RwLock<Arc<State>>,
    /// The roots from the files, as last loaded successfully.
    file_roots: Mutex<Vec<CertificateDer<'static>>>,
    /// The roots the node's channels contribute (their orgs' TLS roots and intermediates).
    channel_roots: Mutex<Vec<CertificateDer<'static>>>,
    /// The files' modification times at the last load attempt.
    stamps: Mutex<Vec<Option<SystemTime>>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("files", &self.files)
            .finish()
    }
}

impl Credentials {
    /// Loads the files; an unreadable file is an error naming it.
    pub fn load(files: TlsFiles) -> Result<Arc<Credentials>, TlsError> {
        let provider = super::provider();
        let stamps = files.all().map(|p| pem::modified(p)).collect();
        let (key, file_roots) = read(&files, &provider)?;
        let state = build(&provider, key, &file_roots, &[])?;
        Ok(Arc::new(Credentials {
            files,
            provider,
            state: RwLock::new(Arc::new(state)),
            file_roots: Mutex::new(file_roots),
            channel_roots: Mutex::new(Vec::new()),
            stamps: Mutex::new(stamps),
        }))
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    fn current(&self) -> Arc<State> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The certificate chain presented now (leaf first).
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current().key.cert.clone()
    }

    /// The public key (SubjectPublicKeyInfo DER) of the leaf presented now.
    pub fn public_key(&self) -> Result<Vec<u8>, String> {
        let chain = self.chain();
        let leaf = chain.first().ok_or("an empty certificate chain")?;
        super::identity::public_key_of_der(leaf)
    }

    /// Reads the files again if any changed since the last attempt (or if `force`). Returns
    /// whether new material was loaded; on an error the previous state stays in use.
    pub fn reload_if_changed(&self, force: bool) -> Result<bool, TlsError> {
        let now: Vec<_> = self.files.all().map(|p| pem::modified(p)).collect();
        {
            let mut stamps = self.stamps.lock().unwrap_or_else(PoisonError::into_inner);
            if !force && *stamps == now {
                return Ok(false);
            }
            // A bad file is reported once, not at every poll, until it changes again.
            *stamps = now;
        }
        let (key, file_roots) = read(&self.files, &self.provider)?;
        let channel_roots = self
            .channel_roots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let state = build(&self.provider, key, &file_roots, &channel_roots)?;
        *self
            .file_roots
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = file_roots;
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(state);
        Ok(true)
    }

    /// Replaces the roots the channels contribute (PEM, each one or more certificates). A PEM
    /// that does not parse is skipped with a warning (the channel config was validated before).
    /// Returns whether the set changed.
    pub fn set_channel_roots(&self, pems: &[bytes::Bytes]) -> Result<bool, TlsError> {
        self.install_channel_roots(parse_roots(pems), false)
    }

    /// Adds to the roots the channels contribute.
    pub fn add_channel_roots(&self, pems: &[bytes::Bytes]) -> Result<bool, TlsError> {
        self.install_channel_roots(parse_roots(pems), true)
    }

    fn install_channel_roots(
        &self,
        mut roots: Vec<CertificateDer<'static>>,
        keep: bool,
    ) -> Result<bool, TlsError> {
        let mut current = self
            .channel_roots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if keep {
            roots.extend(current.iter().cloned());
        }
        roots.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
        roots.dedup();
        if *current == roots {
            return Ok(false);
        }
        let file_roots = self
            .file_roots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let key = self.current().key.clone();
        let state = build(&self.provider, key, &file_roots, &roots)?;
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(state);
        *current = roots;
        Ok(true)
    }

    /// A server config presenting this identity, checking clients as `client_auth` says, with
    /// ALPN `alpn` (none: no ALPN).
    pub fn server_config(
        self: &Arc<Self>,
        client_auth: ClientAuth,
        alpn: &[&[u8]],
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let builder = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Required | ClientAuth::Optional => {
                builder.with_client_cert_verifier(Arc::new(ClientCheck {
                    current: Current(self.clone()),
                    mandatory: client_auth == ClientAuth::Required,
                }))
            }
        };
        let mut config = builder.with_cert_resolver(Arc::new(Current(self.clone())));
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    /// A client config presenting this identity and trusting its roots, with ALPN `alpn`.
    pub fn client_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TlsError> {
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Current(self.clone())))
            .with_client_cert_resolver(Arc::new(Current(self.clone())));
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    /// An acceptor factory for `crate::http::serve`: each call gives an acceptor of the current
    /// state (the config itself consults the state at each handshake).
    pub fn http_acceptor(
        self: &Arc<Self>,
        client_auth: ClientAuth,
    ) -> Result<Arc<dyn Fn() -> tokio_rustls::TlsAcceptor + Send + Sync>, TlsError> {
        let config = self.server_config(client_auth, &[ALPN_H2, b"http/1.1"])?;
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        Ok(Arc::new(move || acceptor.clone()))
    }
}

fn parse_roots(pems: &[bytes::Bytes]) -> Vec<CertificateDer<'static>> {
    let mut roots = Vec::new();
    for pem in pems {
        match pem::certificates_of(pem) {
            Ok(certs) => roots.extend(certs),
            Err(e) => tracing::warn!(error = %e, "a channel's TLS root certificate is unusable"),
        }
    }
    roots
}

/// Reads the key pair and the root files.
fn read(
    files: &TlsFiles,
    provider: &CryptoProvider,
) -> Result<(Arc<CertifiedKey>, Vec<CertificateDer<'static>>), TlsError> {
    let chain = pem::certificates(&files.cert)?;
    let key = pem::private_key(&files.key)?;
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        pem::file_error(
            &files.key,
            format!("does not hold the key of {}: {e}", files.cert.display()),
        )
    })?;
    let mut roots = Vec::new();
    for path in &files.roots {
        roots.extend(pem::certificates(path)?);
    }
    Ok((Arc::new(certified), roots))
}

fn build(
    provider: &Arc<CryptoProvider>,
    key: Arc<CertifiedKey>,
    file_roots: &[CertificateDer<'static>],
    channel_roots: &[CertificateDer<'static>],
) -> Result<State, TlsError> {
    let mut store = RootCertStore::empty();
    for root in file_roots.iter().chain(channel_roots) {
        // An intermediate is trusted as an anchor too, as Fabric adds both to its pool.
        store
            .add(root.clone())
            .map_err(|e| TlsError::Config(format!("a trusted CA certificate is unusable: {e}")))?;
    }
    let (client_verifier, server_verifier) = if store.is_empty() {
        (None, None)
    } else {
        let store = Arc::new(store);
        let client = WebPkiClientVerifier::builder_with_provider(store.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let server = WebPkiServerVerifier::builder_with_provider(store, provider.clone())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        (Some(client), Some(server))
    };
    Ok(State {
        key,
        client_verifier,
        server_verifier,
    })
}

/// The rustls callbacks over the current state of a [`Credentials`].
#[derive(Debug)]
struct Current(Arc<Credentials>);

fn no_roots() -> rustls::Error {
    rustls::Error::General("no trusted TLS CA is configured".into())
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().key.clone())
    }
}

impl ResolvesClientCert for Current {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl Current {
    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.0
            .provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The client check of a server config: the current roots, and whether a certificate is required.
#[derive(Debug)]
struct ClientCheck {
    current: Current,
    mandatory: bool,
}

impl ClientCertVerifier for ClientCheck {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    /// No hints: they would have to outlive a reload. A client then sends the certificate it
    /// has.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match &self.current.0.current().client_verifier {
            Some(v) => v.verify_client_cert(end_entity, intermediates, now),
            None => Err(no_roots()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current.schemes()
    }
}

impl ServerCertVerifier for Current {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.0.current().server_verifier {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(no_roots()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA and a certificate it issued for localhost, written as PEM files in `dir`.
    struct Issued {
        files: TlsFiles,
        ca: rcgen::Certificate,
        ca_key: rcgen::KeyPair,
    }

    fn ca() -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        (params.self_signed(&key).unwrap(), key)
    }

    fn leaf(
        ca: &rcgen::Certificate,
        ca_key: &rcgen::KeyPair,
        key: &rcgen::KeyPair,
    ) -> rcgen::Certificate {
        rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(key, ca, ca_key)
            .unwrap()
    }

    fn issue(dir: &std::path::Path) -> Issued {
        let (ca, ca_key) = ca();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = leaf(&ca, &ca_key, &key);
        let files = TlsFiles {
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
            roots: vec![dir.join("ca.crt")],
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        std::fs::write(&files.roots[0], ca.pem()).unwrap();
        Issued { files, ca, ca_key }
    }

    #[test]
    fn a_reload_takes_new_files_and_a_bad_file_keeps_the_old_state() {
        let dir = tempfile::tempdir().unwrap();
        let issued = issue(dir.path());
        let credentials = Credentials::load(issued.files.clone()).unwrap();
        let first = credentials.chain();
        assert!(
            !credentials.reload_if_changed(false).unwrap(),
            "nothing changed"
        );

        // A renewed certificate over a new key, from the same CA.
        let key = rcgen::KeyPair::generate().unwrap();
        let renewed = leaf(&issued.ca, &issued.ca_key, &key);
        std::fs::write(&issued.files.cert, renewed.pem()).unwrap();
        std::fs::write(&issued.files.key, key.serialize_pem()).unwrap();
        assert!(credentials.reload_if_changed(true).unwrap());
        let second = credentials.chain();
        assert_ne!(first, second);
        assert_eq!(second[0].as_ref(), renewed.der().as_ref());

        // A broken key file: the error names it and the renewed identity stays.
        std::fs::write(&issued.files.key, "garbage").unwrap();
        let error = credentials.reload_if_changed(true).unwrap_err().to_string();
        assert!(error.contains("server.key"), "{error}");
        assert_eq!(credentials.chain(), second);

        // A key that is not the certificate's.
        let stranger = rcgen::KeyPair::generate().unwrap();
        std::fs::write(&issued.files.key, stranger.serialize_pem()).unwrap();
        let error = credentials.reload_if_changed(true).unwrap_err().to_string();
        assert!(error.contains("does not hold the key"), "{error}");
        assert_eq!(credentials.chain(), second);

        // A missing file at start is refused by name.
        let mut missing = issued.files.clone();
        missing.cert = dir.path().join("nope.crt");
        let error = Credentials::load(missing).unwrap_err().to_string();
        assert!(error.contains("nope.crt"), "{error}");
    }

    #[test]
    fn channel_roots_are_trusted_besides_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let issued = issue(dir.path());
        let mut files = issued.files.clone();
        files.roots.clear();
        let credentials = Credentials::load(files).unwrap();
        let (other_ca, other_key) = ca();
        let client_key = rcgen::KeyPair::generate().unwrap();
        let client = leaf(&other_ca, &other_key, &client_key);
        let verifier = ClientCheck {
            current: Current(credentials.clone()),
            mandatory: true,
        };
        let now = UnixTime::now();
        let der = CertificateDer::from(client.der().to_vec());
        assert!(verifier.verify_client_cert(&der, &[], now).is_err());
        let pem = bytes::Bytes::from(other_ca.pem());
        assert!(credentials
            .set_channel_roots(std::slice::from_ref(&pem))
            .unwrap());
        assert!(!credentials.set_channel_roots(&[pem]).unwrap());
        verifier.verify_client_cert(&der, &[], now).unwrap();
        credentials.set_channel_roots(&[]).unwrap();
        assert!(verifier.verify_client_cert(&der, &[], now).is_err());
    }
}
