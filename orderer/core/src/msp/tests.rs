//! The MSP end to end on rcgen-made organisations.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;

use super::cert::{Cert, Curve};
use super::signature::is_high_s;
use super::testing::{self, IssueOpts, KeyKind, TestOrg};
use super::*;

fn manager(orgs: &[&TestOrg], version: MspVersion) -> MspManager {
    let configs: Vec<_> = orgs.iter().map(|o| o.channel_config()).collect();
    MspManager::setup(&configs, version).unwrap()
}

fn member(mspid: &str) -> Principal {
    Principal::Role {
        mspid: mspid.into(),
        role: Role::Member,
    }
}

fn role(mspid: &str, role: Role) -> Principal {
    Principal::Role {
        mspid: mspid.into(),
        role,
    }
}

fn signer(org: &TestOrg, mgr: &MspManager, issued: &testing::Issued) -> SigningIdentity {
    SigningIdentity::new(
        mgr.msp(&org.mspid).unwrap(),
        issued.cert_pem.as_bytes(),
        issued.key_pem.as_bytes(),
    )
    .unwrap()
}

#[test]
fn chains_via_root_and_via_intermediate() {
    for org in [
        TestOrg::new("Org1MSP", KeyKind::EcdsaP256),
        TestOrg::with_intermediate("Org1MSP", KeyKind::EcdsaP256),
    ] {
        let mgr = manager(&[&org], MspVersion::V1_4_3);
        let client = org.client("user1");
        let id = mgr.deserialize(&org.creator(&client)).unwrap();
        assert_eq!(mgr.validate(&id), Ok(()));
        assert_eq!(id.mspid(), "Org1MSP");
        assert_eq!(id.id().len(), 64);
        assert_eq!(id.serialized()[..], org.creator(&client)[..]);
        mgr.satisfies(&id, &member("Org1MSP")).unwrap();
        mgr.satisfies(&id, &role("Org1MSP", Role::Client)).unwrap();
        assert!(mgr.satisfies(&id, &member("Org2MSP")).is_err());
        assert_eq!(id.ous()[0].ou, "client");
    }
}

#[test]
fn certificate_of_another_ca_is_refused() {
    let org = TestOrg::new("Org1MSP", KeyKind::EcdsaP256);
    let other = TestOrg::new("Org1MSP", KeyKind::EcdsaP256);
    let mgr = manager(&[&org], MspVersion::V1_4_3);
    let err = mgr
        .deserialize(&other.creator(&other.client("intruder")))
        .unwrap_err();
    assert!(
        matches!(&err, IdentityError::Certificate { msp, .. } if msp == "Org1MSP"),
        "{err}"
    );
}

#[test]
fn truncated_chain_is_refused() {
    let org = TestOrg::with_intermediate("Org1MSP", KeyKind::EcdsaP256);
    let mut config = org.msp_config();
    config.intermediate_certs.clear();
    let mgr = MspManager::setup(&[testing::wrap(&config)], MspVersion::V1_4_3).unwrap();
    assert!(mgr.deserialize(&org.creator(&org.client("u"))).is_err());
}

#[test]
fn identity_issued_by_an_internal_node_is_refused() {
    let org = TestOrg::with_intermediate("Org1MSP", KeyKind::EcdsaP256);
    let mgr = manager(&[&org], MspVersion::V1_4_3);
    let mut opts = IssueOpts::new("byroot", &["client"]);
    opts.by_root = true;
    let id = mgr
        .deserialize(&org.creator(&org.issue_with(&opts)))
        .unwrap();
    let err = mgr.validate(&id).unwrap_err();
    assert!(err.contains("leaf of the certification tree"), "{err}");
    assert!(mgr.satisfies(&id, &member("Org1MSP")).is_err());
}

#[test]
fn revoked_certificate_is_refused_and_a_badly_signed_crl_skipped() {
    let mut org = TestOrg::with_intermediate("Org1MSP", KeyKind::EcdsaP256);
    let revoked = org.client("revoked");
    let fine = org.client("fine");
    let crl = org.crl(&[revoked.serial]);
    org.crls = vec![crl.clone()];
    let mgr = manager(&[&org], MspVersion::V1_4_3);
    let err = mgr
        .validate(&mgr.deserialize(&org.creator(&revoked)).unwrap())
        .unwrap_err();
    assert!(err.contains("revoked"), "{err}");
    assert_eq!(
        mgr.validate(&mgr.deserialize(&org.creator(&fine)).unwrap()),
        Ok(())
    );

    // The same CRL with its signature damaged (last byte of s) no longer counts.
    let mut bad = crl;
    let last = bad.len() - 1;
    bad[last] ^= 1;
    org.crls = vec![bad];
    let mgr = manager(&[&org], MspVersion::V1_4_3);
    assert_eq!(
        mgr.validate(&mgr.deserialize(&org.creator(&revoked)).unwrap()),
        Ok(())
    );
}

#[test]
fn node_ous_classify_and_are_required_exactly_once() {
    let org = TestOrg::new("Org1MSP", KeyKind::EcdsaP256);
    let mgr = manager(&[&org], MspVersion::V1_4_3);
    let client = mgr.deserialize(&org.creator(&org.client("c"))).unwrap();
    assert!(mgr
        .satisfies(&client, &role("Org1MSP", Role::Peer))
        .is_err());
    assert!(mgr
        .satisfies(&client, &role("Org1MSP", Role::Admin))
        .is_err());
    assert!(mgr
        .satisfies(&client, &role("Org1MSP", Role::Orderer))
        .is_err());
    for (issued, r) in [
        (org.peer("p"), Role::Peer),
        (org.admin("a"), Role::Admin),
        (org.orderer("o"), Role::Orderer),
    ] {
        let id = mgr.deserialize(&org.creator(&issued)).unwrap();
        mgr.satisfies(&id, &role("Org1MSP", r)).unwrap();
        mgr.satisfies(&id, &member("Org1MSP")).unwrap();
        assert!(mgr.satisfies(&id, &role("Org1MSP", Role::Client)).is_err());
    }

    let none = mgr.deserialize(&org.creator(&org.issue("x", &[]))).unwrap();
    let err = mgr.validate(&none).unwrap_err();
    assert!(err.contains("does not have an OU"), "{err}");
    let other = mgr
        .deserialize(&org.creator(&org.issue("x", &["marketing"])))
        .unwrap();
    assert!(mgr.validate(&other).is_err());
    let two = mgr
        .deserialize(&org.creator(&org.issue("x", &["client", "peer"])))
        .unwrap();
    let err = mgr.validate(&two).unwrap_err();
    assert!(err.contains("not a combination"), "{err}");
    assert_eq!(two.ous().len(), 2);
}

#[test]
fn explicit_admins_without_node_ous() {
    let mut org = TestOrg::new("Org1MSP", KeyKind::EcdsaP256);
    org.node_ous = false;
    let err = MspManager::setup(&[org.channel_config()], MspVersion::V1_4_3).unwrap_err();
    assert!(
        err.to_string().contains("administrators must be declared"),
        "{err}"
    );

    let admin = org.issue("Admin@org1", &[]);
    org.admins = vec![admin.cert_pem.clone()];
    let mgr = manager(&[&org], MspVersion::V1_4_3);
    let admin_id = mgr.deserialize(&org.creator(&admin)).unwrap();
    mgr.satisfies(&admin_id, &role("Org1MSP", Role::Admin))
        .unwrap();
    let user = mgr
        .deserialize(&org.creator(&org.issue("user", &[])))
        .unwrap();
    mgr.satisfies(&user, &member("Org1MSP")).unwrap();
    assert!(mgr.satisfies(&user, &role("Org1MSP", Role::Admin)).is_err());
    // Without NodeOUs, CLIENT cannot be told apart and ORDERER is not a valid role.
    assert!(mgr
        .satisfies(&user, &role("Org1MSP", Role::Client))
        .is_err());
    assert!(mgr
        .satisfies(&user, &role("Org1MSP", Role::Orderer))
        .is_err());
}

#[test]
fn expired_certificate_still_validates_and_reports_not_after() {
    let org = TestOrg::new("Org1MSP", KeyKind::EcdsaP256);
    let mgr = manager(&[&org], MspVersion::V1_4_3);
    let mut opts = IssueOpts::new("old", &["client"]);
    opts.years = Some((2000, 2001));
    let id = mgr
        .deserialize(&org.creator(&org.issue_with(&opts)))
        .unwrap();
    assert_eq!(mgr.validate(&id), Ok(()));
    assert_eq!(
        id.not_after(),
        Some(UNIX_EPOCH + Duration::from_secs(978_307_200))
    );
}

#[test]
fn high_s_signature_is_refused_and_its_low_s_twin_verifies() {
    let org = TestOrg::new("Org1MSP", KeyKind::EcdsaP256);
    let mgr = manager(&[&org], MspVersion::V1_4_3);
    let issued = org.client("c");
    let me = signer(&org, &mgr, &issued);
    let id = mgr.deserialize(me.serialized()).unwrap();
    let msg = b"block header bytes";
    let low = me.sign(msg);
    assert!(!is_high_s(Curve::P256, &low));
    assert!(mgr.verify(&id, msg, &low));
    assert!(!mgr.verify(&id, b"other", &low));

    let mut parsed = super::der::parse_ecdsa_sig(&low).unwrap();
    parsed.s = super::der::sub_magnitude(Curve::P256.order(), &parsed.s);
    let high = super::der::encode_ecdsa_sig(&parsed);
    assert!(is_high_s(Curve::P256, &high));
    assert!(!mgr.verify(&id, msg, &high));

    // Bytes after the DER SEQUENCE are ignored; an empty signature is refused.
    let mut trailing = low.clone();
    trailing.extend_from_slice(&[0, 1, 2]);
    assert!(mgr.verify(&id, msg, &trailing));
    assert!(!mgr.verify(&id, msg, &[]));
}

#[test]
fn sanitising_a_high_s_certificate_gives_low_s_and_the_same_id() {
    let org = TestOrg::new("Org1MSP", KeyKind::EcdsaP256);
    let mgr = manager(&[&org], MspVersion::V1_4_3);
    // About half of ECDSA signatures are high-S: issue until one is.
    let issued = (0..64)
        .map(|i| org.client(&format!("u{i}")))
        .find(|c| is_high_s(Curve::P256, &Cert::from_der(&c.cert_der).unwrap().signature))
        .expect("a high-S certificate within 64 tries");
    let msp = mgr.msp("Org1MSP").unwrap();
    let sanitised = msp.sanitize(&issued.cert_der).unwrap();
    assert_ne!(sanitised, issued.cert_der);
    let parsed = Cert::from_der(&sanitised).unwrap();
    assert!(!is_high_s(Curve::P256, &parsed.signature));
    assert_eq!(parsed.tbs, Cert::from_der(&issued.cert_der).unwrap().tbs);
    assert_eq!(msp.sanitize(&sanitised).unwrap(), sanitised);

    let high = mgr.deserialize(&org.creator(&issued)).unwrap();
    let low_pem = super::cert::to_pem(&sanitised);
    let low = mgr
        .deserialize(&testing::creator("Org1MSP", low_pem.as_bytes()))
        .unwrap();
    assert_eq!(high.id(), low.id());
    assert_eq!(high.certificate_der(), &sanitised[..]);
    assert_eq!(mgr.validate(&high), Ok(()));

    // The signing identity serialises the sanitised form, 64-column PEM with a final newline.
    let me = signer(&org, &mgr, &issued);
    assert_eq!(me.certificate_der(), &sanitised[..]);
    let sid =
        <ordo_proto::msp::SerializedIdentity as prost::Message>::decode(me.serialized().clone())
            .unwrap();
    let text = std::str::from_utf8(&sid.id_bytes).unwrap();
    assert!(text.ends_with("-----END CERTIFICATE-----\n"));
    assert!(text.lines().all(|l| l.len() <= 64));
    assert_eq!(text, low_pem);
}

#[test]
fn p256_p384_and_ed25519_keys() {
    for kind in [KeyKind::EcdsaP256, KeyKind::EcdsaP384, KeyKind::Ed25519] {
        let org = TestOrg::with_intermediate("Org1MSP", kind);
        let issued = org.client("c");
        let msg = b"payload";

        let mgr = manager(&[&org], MspVersion::V3_0);
        let me = signer(&org, &mgr, &issued);
        let id = mgr.deserialize(me.serialized()).unwrap();
        assert_eq!(mgr.validate(&id), Ok(()), "{kind:?}");
        assert!(mgr.verify(&id, msg, &me.sign(msg)), "{kind:?}");
        if kind == KeyKind::Ed25519 {
            assert_eq!(me.sign(msg).len(), 64);
        }

        let old = manager(&[&org], MspVersion::V1_4_3);
        let id = old.deserialize(me.serialized()).unwrap();
        if kind == KeyKind::Ed25519 {
            let err = old.validate(&id).unwrap_err();
            assert!(err.contains("Ed25519 is not supported"), "{err}");
            assert!(!old.verify(&id, msg, &me.sign(msg)));
        } else {
            assert_eq!(old.validate(&id), Ok(()));
            assert!(old.verify(&id, msg, &me.sign(msg)));
        }
    }
}

#[test]
fn sha3_msp_verifies_sha3_signatures_only() {
    for kind in [KeyKind::EcdsaP256, KeyKind::EcdsaP384] {
        let mut org = TestOrg::new("Org1MSP", kind);
        org.signature_hash_family = "SHA3".into();
        let mgr = manager(&[&org], MspVersion::V1_4_3);
        let issued = org.client("c");
        let me = signer(&org, &mgr, &issued);
        let id = mgr.deserialize(me.serialized()).unwrap();
        let msg = b"payload";
        assert!(mgr.verify(&id, msg, &me.sign(msg)));
        let sha2 = SigningIdentity::without_msp(
            "Org1MSP",
            issued.cert_pem.as_bytes(),
            issued.key_pem.as_bytes(),
        )
        .unwrap();
        assert!(!mgr.verify(&id, msg, &sha2.sign(msg)));
    }
}

#[test]
fn batch_flags_exactly_the_bad_signature() {
    let ed = TestOrg::new("EdMSP", KeyKind::Ed25519);
    let ec = TestOrg::new("EcMSP", KeyKind::EcdsaP256);
    let mgr = manager(&[&ed, &ec], MspVersion::V3_0);
    let mut signers = Vec::new();
    for (org, n) in [(&ed, 3), (&ec, 2)] {
        for i in 0..n {
            signers.push(signer(org, &mgr, &org.client(&format!("c{i}"))));
        }
    }
    let ids: Vec<_> = signers
        .iter()
        .map(|s| mgr.deserialize(s.serialized()).unwrap())
        .collect();
    let msgs: Vec<Vec<u8>> = (0..signers.len()).map(|i| vec![i as u8; 40]).collect();
    let sigs: Vec<Vec<u8>> = signers.iter().zip(&msgs).map(|(s, m)| s.sign(m)).collect();
    for bad in [None, Some(1), Some(4)] {
        let mut sigs = sigs.clone();
        if let Some(b) = bad {
            sigs[b][10] ^= 0x40;
        }
        let items: Vec<(&Identity, &[u8], &[u8])> = ids
            .iter()
            .zip(&msgs)
            .zip(&sigs)
            .map(|((id, m), s)| (id, m.as_slice(), s.as_slice()))
            .collect();
        let expected: Vec<bool> = (0..ids.len()).map(|i| Some(i) != bad).collect();
        assert_eq!(mgr.verify_batch(&items), expected, "bad {bad:?}");
    }
}

#[test]
fn bad_creators_are_errors() {
    let org = TestOrg::new("Org1MSP", KeyKind::EcdsaP256);
    let mgr = manager(&[&org], MspVersion::V1_4_3);
    let client = org.client("c");
    assert!(matches!(
        mgr.deserialize(&testing::creator("Org1MSP", b"not a certificate")),
        Err(IdentityError::NotPem { .. })
    ));
    assert_eq!(
        mgr.deserialize(&testing::creator("Org9MSP", client.cert_pem.as_bytes()))
            .unwrap_err(),
        IdentityError::UnknownMsp("Org9MSP".into())
    );
    assert!(mgr
        .deserialize(
            &IdentityError::UnknownMsp("x".into())
                .to_string()
                .into_bytes()
        )
        .is_err());
    let err = mgr.deserialize(&[0xff, 0xff, 0xff]).unwrap_err();
    assert!(matches!(err, IdentityError::Decode(_)), "{err}");
    // Caching: the same creator gives the same identity object.
    let a = mgr.deserialize(&org.creator(&client)).unwrap();
    let b = mgr.deserialize(&org.creator(&client)).unwrap();
    assert!(Arc::ptr_eq(&a.0, &b.0));
}

#[test]
fn manager_setup_rules() {
    let org = TestOrg::new("Org1MSP", KeyKind::EcdsaP256);
    let twin = TestOrg::new("Org1MSP", KeyKind::EcdsaP256);
    let err = MspManager::setup(
        &[org.channel_config(), twin.channel_config()],
        MspVersion::V1_4_3,
    )
    .unwrap_err();
    assert_eq!(err, MspError::Duplicate("Org1MSP".into()));
    assert!(err
        .to_string()
        .contains("Attempted to define two different versions of MSP"));
    let same = MspManager::setup(
        &[org.channel_config(), org.channel_config()],
        MspVersion::V1_4_3,
    )
    .unwrap();
    assert_eq!(same.mspids().collect::<Vec<_>>(), ["Org1MSP"]);

    let mut idemix = org.channel_config();
    idemix.r#type = 1;
    assert_eq!(
        MspManager::setup(&[idemix], MspVersion::V1_4_3).unwrap_err(),
        MspError::UnsupportedType(1)
    );
    let mut no_roots = org.msp_config();
    no_roots.root_certs.clear();
    let err = Msp::setup(&no_roots, MspVersion::V1_4_3).unwrap_err();
    assert!(err.to_string().contains("at least one CA"), "{err}");
    // A leaf certificate listed as a root is refused.
    let mut leaf_root = org.msp_config();
    leaf_root.root_certs = vec![org.client("c").cert_pem.into()];
    assert!(Msp::setup(&leaf_root, MspVersion::V1_4_3).is_err());
}

#[test]
fn tls_certificates_chain_to_the_tls_ca() {
    let org = TestOrg::new("Org1MSP", KeyKind::EcdsaP256);
    let other = TestOrg::new("Org2MSP", KeyKind::EcdsaP256);
    let msp = Msp::setup(&org.msp_config(), MspVersion::V3_0).unwrap();
    let good = org.tls_cert("orderer0");
    msp.verify_tls_cert(good.cert_pem.as_bytes()).unwrap();
    msp.verify_tls_cert(&good.cert_der).unwrap();
    assert!(msp
        .verify_tls_cert(other.tls_cert("orderer0").cert_pem.as_bytes())
        .is_err());
    // Signing CA is not the TLS CA.
    assert!(msp
        .verify_tls_cert(org.client("c").cert_pem.as_bytes())
        .is_err());
    assert_eq!(msp.tls_root_certs().len(), 1);
    assert!(msp.tls_intermediate_certs().is_empty());
    let other_msp = Msp::setup(&other.msp_config(), MspVersion::V3_0).unwrap();
    verify_tls_cert_in(
        &[&msp, &other_msp],
        other.tls_cert("o1").cert_pem.as_bytes(),
    )
    .unwrap();
}

#[test]
fn other_principals() {
    let org = TestOrg::with_intermediate("Org1MSP", KeyKind::EcdsaP256);
    let mgr = manager(&[&org], MspVersion::V1_4_3);
    let issued = org.peer("p");
    let id = mgr.deserialize(&org.creator(&issued)).unwrap();
    let certifiers = id.ous()[0].certifiers.clone();
    mgr.satisfies(
        &id,
        &Principal::OrganizationUnit {
            mspid: "Org1MSP".into(),
            ou: "peer".into(),
            certifiers: certifiers.clone(),
        },
    )
    .unwrap();
    assert!(mgr
        .satisfies(
            &id,
            &Principal::OrganizationUnit {
                mspid: "Org1MSP".into(),
                ou: "peer".into(),
                certifiers: Bytes::from_static(b"nope"),
            },
        )
        .is_err());
    mgr.satisfies(
        &id,
        &Principal::Identity {
            mspid: "Org1MSP".into(),
            id_bytes: issued.cert_pem.clone().into(),
        },
    )
    .unwrap();
    assert!(mgr
        .satisfies(
            &id,
            &Principal::Identity {
                mspid: "Org1MSP".into(),
                id_bytes: org.peer("p2").cert_pem.into(),
            },
        )
        .is_err());
    mgr.satisfies(&id, &Principal::Anonymity { anonymous: false })
        .unwrap();
    assert!(mgr
        .satisfies(&id, &Principal::Anonymity { anonymous: true })
        .is_err());
    mgr.satisfies(
        &id,
        &Principal::Combined(vec![member("Org1MSP"), role("Org1MSP", Role::Peer)]),
    )
    .unwrap();
    assert!(mgr
        .satisfies(
            &id,
            &Principal::Combined(vec![member("Org1MSP"), role("Org1MSP", Role::Client)]),
        )
        .is_err());
}

#[test]
fn signing_identity_keys() {
    let org = TestOrg::new("Org1MSP", KeyKind::EcdsaP256);
    let mgr = manager(&[&org], MspVersion::V1_4_3);
    let a = org.client("a");
    let b = org.client("b");
    let msp = mgr.msp("Org1MSP").unwrap();
    let err = SigningIdentity::new(msp, a.cert_pem.as_bytes(), b.key_pem.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    // SEC1 ("EC PRIVATE KEY") works as well as PKCS#8.
    use p256::pkcs8::DecodePrivateKey;
    let sec1 = p256::SecretKey::from_pkcs8_pem(&a.key_pem)
        .unwrap()
        .to_sec1_pem(Default::default())
        .unwrap();
    let me = SigningIdentity::new(msp, a.cert_pem.as_bytes(), sec1.as_bytes()).unwrap();
    let id = mgr.deserialize(me.serialized()).unwrap();
    assert!(mgr.verify(&id, b"m", &me.sign(b"m")));
    assert_eq!(me.mspid(), "Org1MSP");
    assert!(me.not_after().is_some());
}

#[test]
fn versions_from_capabilities() {
    use MspVersion::*;
    for (caps, v) in [
        (&["V3_0", "V2_0"][..], V3_0),
        (&["V2_0"], V1_4_3),
        (&["V1_4_3"], V1_4_3),
        (&["V1_4_2"], V1_3),
        (&["V1_3"], V1_3),
        (&["V1_1"], V1_1),
        (&[], V1_0),
    ] {
        assert_eq!(MspVersion::from_channel_capabilities(caps), v);
    }
}

#[test]
fn ou_identifiers_and_node_ous_with_certifiers() {
    use ordo_proto::msp::FabricOuIdentifier;
    let org = TestOrg::with_intermediate("Org1MSP", KeyKind::EcdsaP256);
    let ica_pem = org.intermediate.as_ref().unwrap().pem();
    let mut config = org.msp_config();
    config.organizational_unit_identifiers = vec![FabricOuIdentifier {
        certificate: ica_pem.clone().into(),
        organizational_unit_identifier: "peer".into(),
    }];
    if let Some(n) = config.fabric_node_ous.as_mut() {
        n.peer_ou_identifier = Some(FabricOuIdentifier {
            certificate: ica_pem.into(),
            organizational_unit_identifier: "peer".into(),
        });
    }
    let mgr = MspManager::setup(&[testing::wrap(&config)], MspVersion::V1_4_3).unwrap();
    let peer = mgr.deserialize(&org.creator(&org.peer("p"))).unwrap();
    assert_eq!(mgr.validate(&peer), Ok(()));
    // H(intermediate ‖ root), both sanitised as the MSP holds them.
    let msp = mgr.msp("Org1MSP").unwrap();
    let mut chain = msp
        .sanitize(org.intermediate.as_ref().unwrap().cert.der())
        .unwrap();
    chain.extend(msp.sanitize(org.root.cert.der()).unwrap());
    use sha2::Digest;
    assert_eq!(
        peer.ous()[0].certifiers[..],
        sha2::Sha256::digest(&chain)[..]
    );
    // A client carries no OU listed in organizational_unit_identifiers.
    let client = mgr.deserialize(&org.creator(&org.client("c"))).unwrap();
    let err = mgr.validate(&client).unwrap_err();
    assert!(
        err.contains("none of the identity's organizational units"),
        "{err}"
    );

    // An OU identifier naming a CA outside the MSP is refused at setup.
    let stranger = TestOrg::new("X", KeyKind::EcdsaP256);
    let mut config = org.msp_config();
    config.organizational_unit_identifiers = vec![FabricOuIdentifier {
        certificate: stranger.root.pem().into(),
        organizational_unit_identifier: "peer".into(),
    }];
    assert!(Msp::setup(&config, MspVersion::V1_4_3).is_err());
}

#[test]
fn msp_1_1_knows_only_client_and_peer_node_ous() {
    let org = TestOrg::new("Org1MSP", KeyKind::EcdsaP256);
    let mut config = org.msp_config();
    let admin = org.issue("Admin", &["client"]);
    config.admins = vec![admin.cert_pem.clone().into()];
    let mgr = MspManager::setup(&[testing::wrap(&config)], MspVersion::V1_1).unwrap();
    let ordinary_admin = mgr.deserialize(&org.creator(&org.admin("a"))).unwrap();
    assert!(mgr.validate(&ordinary_admin).is_err());
    let explicit = mgr.deserialize(&org.creator(&admin)).unwrap();
    mgr.satisfies(&explicit, &role("Org1MSP", Role::Admin))
        .unwrap();
    let peer = mgr.deserialize(&org.creator(&org.peer("p"))).unwrap();
    mgr.satisfies(&peer, &role("Org1MSP", Role::Peer)).unwrap();
    assert!(mgr
        .satisfies(&peer, &role("Org1MSP", Role::Orderer))
        .is_err());
    assert!(mgr
        .satisfies(&peer, &Principal::Combined(vec![member("Org1MSP")]))
        .is_err());
}

#[test]
fn shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<MspManager>();
    send_sync::<Identity>();
    send_sync::<SigningIdentity>();
}
