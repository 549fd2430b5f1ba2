//! Test channels: a configtxgen-shaped channel "ch" with an orderer organisation and one
//! application organisation, their CAs and identities, for the tests of the modules that run
//! under a [`Bundle`] (processor, assembler, writer, block).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use ordo_proto::common::{Block, Envelope, HeaderType};
use ordo_proto::orderer::{BatchSize, ConsensusType};
use ordo_proto::ordo::ConsensusOptions;
use prost::Message;

use crate::bundle::Bundle;
use crate::configtx::client;
use crate::configtx::genesis::{
    self, ApplicationProfile, ConsensusProfile, OrdererProfile, OrgProfile, Profile,
};
use crate::configtx::values::BatchSizeValues;
use crate::envelope;
use crate::msp::testing::{Issued, KeyKind, TestOrg};
use crate::msp::SigningIdentity;

pub(crate) const CHANNEL: &str = "ch";

pub(crate) struct TestChannel {
    pub org1: TestOrg,
    /// The orderer node's identity (OrdererMSP, OU orderer): signs blocks and config envelopes.
    pub orderer: SigningIdentity,
    pub orderer_admin: SigningIdentity,
    pub admin: SigningIdentity,
    pub client: SigningIdentity,
    pub peer: SigningIdentity,
    pub genesis: Block,
    pub bundle: Bundle,
}

impl TestChannel {
    /// Channel "ch", solo, blocks of at most 10 messages / 50 kB preferred / 100 kB absolute,
    /// cut after 100 ms.
    pub(crate) fn new() -> TestChannel {
        Self::with(|_| {})
    }

    /// [`TestChannel::new`] with the profile edited first.
    pub(crate) fn with(edit: impl FnOnce(&mut Profile)) -> TestChannel {
        let orderer_org = TestOrg::new("OrdererMSP", KeyKind::EcdsaP256);
        let org1 = TestOrg::new("Org1MSP", KeyKind::EcdsaP256);
        let mut orderer_group = OrgProfile::new("OrdererOrg", orderer_org.channel_config());
        orderer_group.endpoints = vec!["127.0.0.1:7050".into()];
        orderer_group.node_ous = true;
        let mut org1_group = OrgProfile::new("Org1", org1.channel_config());
        org1_group.node_ous = true;
        let mut orderer = OrdererProfile::new(ConsensusProfile::Solo, vec![orderer_group]);
        orderer.batch_size = BatchSizeValues {
            max_message_count: 10,
            absolute_max_bytes: 100_000,
            preferred_max_bytes: 50_000,
        };
        orderer.batch_timeout = Duration::from_millis(100);
        let mut profile = Profile::new(
            CHANNEL,
            orderer,
            Some(ApplicationProfile::new(vec![org1_group])),
        );
        edit(&mut profile);
        let genesis = genesis::genesis_block(&profile, SystemTime::now(), [7; 24]).unwrap();
        let bundle = Bundle::from_block(&genesis).unwrap();
        let signer = |org: &TestOrg, issued: Issued| {
            let msp = bundle.msps().msp(&org.mspid).unwrap();
            SigningIdentity::new(msp, issued.cert_pem.as_bytes(), issued.key_pem.as_bytes())
                .unwrap()
        };
        TestChannel {
            orderer: signer(&orderer_org, orderer_org.orderer("orderer1")),
            orderer_admin: signer(&orderer_org, orderer_org.admin("Admin@orderer")),
            admin: signer(&org1, org1.admin("Admin@org1")),
            client: signer(&org1, org1.client("User1@org1")),
            peer: signer(&org1, org1.peer("peer0.org1")),
            org1,
            genesis,
            bundle,
        }
    }

    /// A transaction of `signer` on the channel.
    pub(crate) fn tx(&self, signer: &SigningIdentity) -> Envelope {
        envelope::build(
            signer,
            CHANNEL,
            HeaderType::EndorserTransaction,
            Bytes::from_static(b"tx"),
        )
    }

    /// A CONFIG_UPDATE setting /Channel/Orderer/BatchSize's max_message_count, from the
    /// configuration in `bundle`, signed (ConfigSignatures) by `signers` and submitted by
    /// `submitter`.
    pub(crate) fn batch_size_update(
        bundle: &Bundle,
        max_message_count: u32,
        signers: &[&SigningIdentity],
        submitter: &SigningIdentity,
    ) -> Envelope {
        let orderer = &bundle.config().channel_group.as_ref().unwrap().groups["Orderer"];
        let mut batch = BatchSize::decode(orderer.values["BatchSize"].value.clone()).unwrap();
        batch.max_message_count = max_message_count;
        Self::orderer_value_update(
            bundle,
            "BatchSize",
            batch.encode_to_vec().into(),
            signers,
            submitter,
        )
    }

    /// A CONFIG_UPDATE setting Ordo's dedup window (ConsensusType metadata of a solo channel).
    pub(crate) fn dedup_window_update(&self, bundle: &Bundle, window: u32) -> Envelope {
        let consensus = ConsensusType {
            r#type: "solo".into(),
            metadata: ConsensusOptions {
                dedup_window_blocks: Some(window),
            }
            .encode_to_vec()
            .into(),
            state: 0,
        };
        let signers = [&self.orderer_admin];
        Self::orderer_value_update(
            bundle,
            "ConsensusType",
            consensus.encode_to_vec().into(),
            &signers,
            &self.orderer_admin,
        )
    }

    /// The log record this channel's orderer makes of `update` under `bundle`.
    pub(crate) fn config_record(&self, bundle: &Bundle, update: &Envelope) -> Bytes {
        let (proposed, _) = bundle.propose_update(update).unwrap();
        let config =
            envelope::config_envelope(&self.orderer, CHANNEL, &proposed, SystemTime::now());
        crate::entry::Entry::encode_config(&config)
    }

    /// A CONFIG_UPDATE setting value `key` of /Channel/Orderer to `value`.
    pub(crate) fn orderer_value_update(
        bundle: &Bundle,
        key: &str,
        value: Bytes,
        signers: &[&SigningIdentity],
        submitter: &SigningIdentity,
    ) -> Envelope {
        let update =
            client::value_update(bundle.config(), CHANNEL, &["Orderer"], key, value).unwrap();
        client::update_envelope(&update, signers, submitter)
    }
}
