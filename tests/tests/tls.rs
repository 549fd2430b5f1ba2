//! TLS against the real binaries: the client port refuses clients that do not trust its CA (at
//! the handshake), mutual TLS refuses certificates of other CAs and envelopes not bound to the
//! connection's certificate (`tls_cert_hash`), the cluster port admits only consenters by their
//! certificate's public key, and certificates rotated on a running network (SIGHUP) are
//! presented to new connections while the network keeps ordering.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::{submit_all, Cluster, Spec, WAIT};
use common::{test_batch, Orderer};
use ordo_core::envelope;
use ordo_peer_sim::client::TlsArgs;
use ordo_peer_sim::Client;
use ordo_proto::common::{HeaderType, Status};
use ordo_proto::orderer::deliver_response;
use ordo_proto::orderer::seek_info::SeekBehavior;
use ordo_proto::ordo::cluster_client::ClusterClient;
use ordo_proto::ordo::PreVoteRequest;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The outcome of a TLS handshake with `addr`, trusting `ca`, presenting `identity` (cert, key)
/// if given: the server's leaf certificate, or the handshake's error. With TLS 1.3 a refused
/// client certificate shows only once the server has answered, so a byte is read after the
/// handshake.
async fn handshake(
    addr: SocketAddr,
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<CertificateDer<'static>, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::IpAddress(addr.ip().into());
    let mut tls = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .expect("a handshake within 10 s")
    .map_err(|e| e.to_string())?;
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    // The HTTP/2 preface: the server answers with its SETTINGS, or with an alert.
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut byte = [0u8; 1];
    match tokio::time::timeout(Duration::from_secs(10), tls.read(&mut byte)).await {
        Ok(Ok(1..)) => Ok(leaf),
        Ok(Ok(_)) => Err("closed by the server".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 10 s".into()),
    }
}

/// Whether a gRPC client with `tls` gets nothing done on `endpoint`: connecting or its first
/// call fails at the transport.
async fn refused(endpoint: &str, signer: ordo_core::msp::SigningIdentity, tls: &TlsArgs) -> bool {
    let probe = envelope::build(
        &signer,
        "ordo",
        HeaderType::Message,
        bytes::Bytes::from_static(b"probe"),
    );
    match Client::connect_tls(endpoint, "ordo", signer, tls).await {
        Err(_) => true,
        Ok(client) => client.broadcast_one(probe).await.is_err(),
    }
}

/// A CA of its own and a client certificate it issued, as PEM files in `dir`: (ca, cert, key).
fn stranger(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let paths = (
        dir.join("stranger-ca.crt"),
        dir.join("stranger.crt"),
        dir.join("stranger.key"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_without_the_ca_is_refused_at_the_handshake() {
    let orderer = Orderer::start(test_batch());
    let ca = orderer.tls.tls_ca.clone().expect("TLS is on by default");

    // Trusting the orderer org's TLS CA: served.
    handshake(orderer.addr, &ca, None).await.unwrap();
    let client = orderer.client().await;
    let tx = envelope::build(
        &orderer.signer(),
        "ordo",
        HeaderType::Message,
        bytes::Bytes::from_static(b"over TLS"),
    );
    let answer = client.broadcast_one(tx).await.unwrap();
    assert_eq!(answer.status, Status::Success as i32, "{answer:?}");

    // Trusting another CA (Org1's TLS CA): the client refuses the server's certificate.
    let org1_ca = orderer
        .dir
        .path()
        .join("crypto/Org1/users/User1/tls/ca.crt");
    let error = handshake(orderer.addr, &org1_ca, None).await.unwrap_err();
    assert!(
        error.contains("invalid peer certificate") || error.contains("UnknownIssuer"),
        "{error}"
    );
    let wrong = TlsArgs {
        tls_ca: Some(org1_ca),
        ..TlsArgs::default()
    };
    assert!(refused(&orderer.endpoint(), orderer.signer(), &wrong).await);

    // Plain text on the TLS port: nothing is served.
    let plain = format!("http://{}", orderer.addr);
    assert!(refused(&plain, orderer.signer(), &TlsArgs::default()).await);

    // The node is unharmed.
    let answer = client
        .broadcast_one(envelope::build(
            &orderer.signer(),
            "ordo",
            HeaderType::Message,
            bytes::Bytes::from_static(b"still"),
        ))
        .await
        .unwrap();
    assert_eq!(answer.status, Status::Success as i32, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_refuses_other_cas_and_envelopes_not_bound_to_the_connection() {
    let orderer = Orderer::start_configured(test_batch(), |config| {
        config.tls.client_auth_required = true;
    });
    let signer = orderer.signer();
    let ca = orderer.tls.tls_ca.clone().unwrap();
    assert!(
        orderer.tls.tls_cert.is_some(),
        "the harness presents Org1's client certificate"
    );

    // No client certificate, or one from a CA no channel org names: refused.
    let no_cert = TlsArgs {
        tls_ca: Some(ca.clone()),
        ..TlsArgs::default()
    };
    assert!(handshake(orderer.addr, &ca, None).await.is_err());
    assert!(refused(&orderer.endpoint(), signer.clone(), &no_cert).await);
    let (_, cert, key) = stranger(orderer.dir.path());
    assert!(handshake(orderer.addr, &ca, Some((&cert, &key)))
        .await
        .is_err());
    let other_ca = TlsArgs {
        tls_ca: Some(ca.clone()),
        tls_cert: Some(cert),
        tls_key: Some(key),
    };
    assert!(refused(&orderer.endpoint(), signer.clone(), &other_ca).await);

    // Org1's TLS client certificate (its CA is in the channel's Org1 MSP): served, and every
    // envelope must carry the certificate's hash.
    let client = orderer.client().await;
    assert_eq!(client.tls_cert_hash.len(), 32);
    let data = || bytes::Bytes::from_static(b"bound");
    let bound = envelope::build_bound(
        &signer,
        "ordo",
        HeaderType::Message,
        data(),
        client.tls_cert_hash.clone(),
    )
    .0;
    let answer = client.broadcast_one(bound).await.unwrap();
    assert_eq!(answer.status, Status::Success as i32, "{answer:?}");

    let unbound = envelope::build(&signer, "ordo", HeaderType::Message, data());
    let answer = client.broadcast_one(unbound).await.unwrap();
    assert_eq!(answer.status, Status::BadRequest as i32, "{answer:?}");
    assert!(answer.info.contains("TLS cert hash"), "{answer:?}");
    let wrong = envelope::build_bound(
        &signer,
        "ordo",
        HeaderType::Message,
        data(),
        bytes::Bytes::from_static(&[7; 32]),
    )
    .0;
    let answer = client.broadcast_one(wrong).await.unwrap();
    assert_eq!(answer.status, Status::BadRequest as i32, "{answer:?}");

    // Deliver: bound, block 0 comes; unbound, BAD_REQUEST.
    let mut blocks = client
        .deliver(0, 0, SeekBehavior::FailIfNotReady)
        .await
        .unwrap();
    let first = blocks.message().await.unwrap().and_then(|r| r.r#type);
    assert!(
        matches!(first, Some(deliver_response::Type::Block(_))),
        "{first:?}"
    );
    let unbound_seek = envelope::seek(
        &signer,
        "ordo",
        envelope::specified(0),
        envelope::specified(0),
        SeekBehavior::FailIfNotReady as i32,
    );
    let mut answers = client.deliver_request(unbound_seek).await.unwrap();
    let answer = answers.message().await.unwrap().and_then(|r| r.r#type);
    assert_eq!(
        answer,
        Some(deliver_response::Type::Status(Status::BadRequest as i32))
    );
}

/// A cluster client of node at `addr` presenting the TLS identity in `tls_dir`.
fn cluster_client(tls_dir: &Path, addr: SocketAddr) -> ClusterClient<tonic::transport::Channel> {
    let credentials = ordo_orderer::tls::Credentials::load(ordo_orderer::tls::TlsFiles {
        cert: tls_dir.join("server.crt"),
        key: tls_dir.join("server.key"),
        roots: vec![tls_dir.join("ca.crt")],
    })
    .unwrap();
    let dialer = ordo_orderer::tls::Dialer::new(credentials).unwrap();
    ClusterClient::new(ordo_orderer::tls::dial(Some(&dialer), &addr.to_string()).unwrap())
}

fn pre_vote() -> PreVoteRequest {
    PreVoteRequest {
        channel: ordo_orderer::setup::dev::CHANNEL.to_string(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_peer_that_is_not_a_consenter_is_refused() {
    // Four nodes' certificates from the orderer org's TLS CA; three of them consenters.
    let cluster = Cluster::start(Spec {
        bootstrap: 3,
        nodes: 4,
        ..Spec::three()
    })
    .await;
    cluster.wait_for_leader(&[1, 2, 3]).await;
    let target = cluster.node(1).cluster_addr.unwrap();

    // Node 4's valid certificate is not a consenter's: its cluster calls are refused.
    let refused = cluster_client(&cluster.node(4).tls_dir, target)
        .pre_vote(pre_vote())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("certificate extracted from TLS connection isn't authorized"),
        "{refused:?}"
    );

    // A consenter's certificate is admitted (the answer itself does not matter here).
    let admitted = cluster_client(&cluster.node(2).tls_dir, target)
        .pre_vote(pre_vote())
        .await;
    if let Err(status) = &admitted {
        assert_ne!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    }

    // A certificate of another CA does not get through the handshake; neither does a client
    // without one.
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = stranger(dir.path());
    let ca = cluster.node(1).tls_dir.join("ca.crt");
    assert!(handshake(target, &ca, Some((&cert, &key))).await.is_err());
    assert!(handshake(target, &ca, None).await.is_err());

    // The consenters order on.
    let clients = cluster.clients(&[1, 2, 3]).await;
    let submitted = submit_all(&clients, 300).await;
    cluster.wait_converged(&[1, 2, 3], &submitted.acked).await;
}

/// A new certificate for the key in `tls_dir/server.key`, from the CA whose files are in
/// `tlsca_dir` (cryptogen's tlsca/tlsca.pem and tlsca/priv_sk), valid for the same hosts.
fn renew(tls_dir: &Path, tlsca_dir: &Path, common_name: &str) -> String {
    let read = |path: PathBuf| std::fs::read_to_string(path).unwrap();
    let ca_key = rcgen::KeyPair::from_pem(&read(tlsca_dir.join("priv_sk"))).unwrap();
    let ca = rcgen::CertificateParams::from_ca_cert_pem(&read(tlsca_dir.join("tlsca.pem")))
        .unwrap()
        .self_signed(&ca_key)
        .unwrap();
    let key = rcgen::KeyPair::from_pem(&read(tls_dir.join("server.key"))).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        common_name.to_string(),
    ])
    .unwrap();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("{common_name} (renewed)"),
    );
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.signed_by(&key, &ca, &ca_key).unwrap().pem()
}

/// Waits until a new handshake with `addr` presents `expected` (DER).
async fn wait_presented(addr: SocketAddr, tls_dir: &Path, expected: &[u8]) {
    let deadline = Instant::now() + WAIT;
    let identity = (tls_dir.join("server.crt"), tls_dir.join("server.key"));
    loop {
        let presented = handshake(
            addr,
            &tls_dir.join("ca.crt"),
            Some((&identity.0, &identity.1)),
        )
        .await;
        if matches!(&presented, Ok(cert) if cert.as_ref() == expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{addr} does not present the renewed certificate: {presented:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn certificates_rotated_on_a_running_network_keep_it_ordering() {
    let cluster = Cluster::start(Spec::three()).await;
    cluster.wait_for_leader(&[1, 2, 3]).await;
    let clients = cluster.clients(&[1, 2, 3]).await;
    let before = submit_all(&clients, 300).await;
    assert!(before.errors.is_empty(), "{:?}", before.errors);

    // Every node's certificate renewed over its key pair (a consenter is its public key, so
    // the channel config's consenters still name it), then SIGHUP.
    let tlsca = cluster.dir.path().join("crypto/Orderer/tlsca");
    let mut renewed = Vec::new();
    for id in 1..=3 {
        let node = cluster.node(id);
        let pem = renew(&node.tls_dir, &tlsca, &format!("orderer{id}"));
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        std::fs::write(node.tls_dir.join("server.crt"), &pem).unwrap();
        // SAFETY: a signal to our own child process.
        unsafe { libc::kill(node.pid().unwrap() as i32, libc::SIGHUP) };
        renewed.push((id, der));
    }
    // New handshakes, on the client and the cluster port, present the renewed certificates.
    for (id, der) in &renewed {
        let node = cluster.node(*id);
        wait_presented(node.addr.unwrap(), &node.tls_dir, der).await;
        wait_presented(node.cluster_addr.unwrap(), &node.tls_dir, der).await;
    }

    // New connections everywhere (clients, and the cluster links cut and dialled again), and
    // the network orders on.
    for id in 1..=3 {
        cluster.isolate(id);
        cluster.heal(id);
    }
    cluster.wait_for_leader(&[1, 2, 3]).await;
    let clients = cluster.clients(&[1, 2, 3]).await;
    let after = submit_all(&clients, 300).await;
    assert!(after.errors.is_empty(), "{:?}", after.errors);
    let mut acked = before.acked;
    acked.extend(after.acked);
    cluster.wait_converged(&[1, 2, 3], &acked).await;
}
