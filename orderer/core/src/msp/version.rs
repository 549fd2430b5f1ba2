//! Which MSP behaviour a channel asks for, from its channel capabilities.

/// Fabric's MSP versions. V1_4_3 and V3_0 are implemented fully; the older ones apply their
/// documented differences (no NodeOUs for 1.0; NodeOUs with client and peer only, admins never
/// classified by OU, and no COMBINED/ANONYMITY principals before 1.3) and are otherwise
/// treated as 1.4.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MspVersion {
    V1_0,
    V1_1,
    V1_3,
    V1_4_3,
    V3_0,
}

impl MspVersion {
    /// Channel capability → MSP version: V3_0 → 3.0; V1_4_3 or V2_0 → 1.4.3; V1_3 or V1_4_2 →
    /// 1.3; V1_1 → 1.1; otherwise 1.0. The highest capability named wins.
    pub fn from_channel_capabilities(caps: &[&str]) -> MspVersion {
        let has = |name: &str| caps.contains(&name);
        if has("V3_0") {
            MspVersion::V3_0
        } else if has("V2_0") || has("V1_4_3") {
            MspVersion::V1_4_3
        } else if has("V1_4_2") || has("V1_3") {
            MspVersion::V1_3
        } else if has("V1_1") {
            MspVersion::V1_1
        } else {
            MspVersion::V1_0
        }
    }

    /// Ed25519 leaf keys are supported from MSP 3.0 only.
    pub fn accepts_ed25519(self) -> bool {
        self >= MspVersion::V3_0
    }

    /// NodeOUs with all four roles (admin and orderer too).
    pub(crate) fn four_node_ous(self) -> bool {
        self >= MspVersion::V1_4_3
    }
}
