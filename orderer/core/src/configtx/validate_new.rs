//! What may not change from one config to the next (`Bundle.ValidateNew`, FABRIC-CONFIG.md
//! §5.4): the Application section stays (the Orderer section always exists in a
//! [`ChannelValues`]), no org keeps its group name under another MSP ID, the consensus type is
//! fixed, and moving to V3_0 needs Endpoints on every orderer org.
//!
//! Fabric allows a consensus type change under the ConsensusTypeMigration capability, but in
//! 3.x only in maintenance mode and only to BFT; Ordo runs neither BFT nor a migration, so any
//! change of type is refused.

use super::values::ChannelValues;
use super::ConfigTxError;

pub fn validate_new(current: &ChannelValues, next: &ChannelValues) -> Result<(), ConfigTxError> {
    let (from, to) = (current.consensus.type_name(), next.consensus.type_name());
    if from != to {
        return Err(ConfigTxError::invalid(
            "/Channel/Orderer/ConsensusType",
            format!("attempted to change consensus type from {from} to {to}"),
        ));
    }
    if !current.has_channel_capability("V3_0") && next.has_channel_capability("V3_0") {
        if let Some(org) = next.orderer_orgs.iter().find(|o| o.endpoints.is_empty()) {
            return Err(ConfigTxError::invalid(
                format!("/Channel/Orderer/{}", org.name),
                format!(
                    "illegal orderer config update detected: endpoints of org {} are missing",
                    org.name
                ),
            ));
        }
    }
    for org in &current.orderer_orgs {
        if let Some(new) = next.orderer_orgs.iter().find(|n| n.name == org.name) {
            if new.msp_id != org.msp_id {
                return Err(ConfigTxError::invalid(
                    format!("/Channel/Orderer/{}", org.name),
                    format!(
                        "orderer org {} attempted to change MSP ID from {} to {}",
                        org.name, org.msp_id, new.msp_id
                    ),
                ));
            }
        }
    }
    if current.application.is_some() {
        if next.application.is_none() {
            return Err(ConfigTxError::invalid(
                "/Channel/Application",
                "current config has application section, but new config does not",
            ));
        }
        for org in current.application_orgs() {
            if let Some(new) = next.application_orgs().iter().find(|n| n.name == org.name) {
                if new.msp_id != org.msp_id {
                    return Err(ConfigTxError::invalid(
                        format!("/Channel/Application/{}", org.name),
                        format!(
                            "application org {} attempted to change MSP ID from {} to {}",
                            org.name, org.msp_id, new.msp_id
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configtx::genesis::tests::sample_profile;
    use crate::configtx::genesis::{config, ConsensusProfile};

    fn values(edit: impl FnOnce(&mut crate::configtx::genesis::Profile)) -> ChannelValues {
        let mut p = sample_profile();
        edit(&mut p);
        ChannelValues::from_config(&config(&p).unwrap()).unwrap()
    }

    #[test]
    fn rules() {
        let cur = values(|_| {});
        validate_new(&cur, &cur).unwrap();
        let solo = values(|p| p.orderer.consensus = ConsensusProfile::Solo);
        assert!(validate_new(&cur, &solo)
            .unwrap_err()
            .to_string()
            .contains("change consensus type from etcdraft to solo"));
        let no_app = values(|p| p.application = None);
        assert!(validate_new(&cur, &no_app)
            .unwrap_err()
            .to_string()
            .contains("application section"));
        let renamed = values(|p| {
            p.application.as_mut().unwrap().orgs[0].msp =
                crate::configtx::genesis::tests::msp("OtherMSP")
        });
        assert!(validate_new(&cur, &renamed)
            .unwrap_err()
            .to_string()
            .contains("application org Org1 attempted to change MSP ID from Org1MSP to OtherMSP"));
        let orderer_renamed =
            values(|p| p.orderer.orgs[0].msp = crate::configtx::genesis::tests::msp("X"));
        assert!(validate_new(&cur, &orderer_renamed)
            .unwrap_err()
            .to_string()
            .contains("orderer org OrdererOrg attempted to change MSP ID"));
        // Moving to V3_0 without endpoints (values built by hand: from_config refuses it too).
        let mut v2 = values(|p| p.channel_capabilities = vec!["V2_0".into()]);
        let mut v3 = cur.clone();
        v3.orderer_orgs[0].endpoints.clear();
        assert!(validate_new(&v2, &v3)
            .unwrap_err()
            .to_string()
            .contains("endpoints of org OrdererOrg are missing"));
        v2.orderer_orgs[0].endpoints.clear();
        validate_new(&v2, &v2).unwrap();
    }
}
