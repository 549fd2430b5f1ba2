//! The participation API's wire shapes, pure: JSON bodies in Fabric's field order, error bodies,
//! `Accept` negotiation, channel-id and block-id parsing. No I/O, so all of it is unit-tested.

use serde::Serialize;

use super::channels::ChannelState;

/// The API's root; every path is under it.
pub const ROOT: &str = "/participation/v1/";
pub const CHANNELS: &str = "/participation/v1/channels";

/// The path of channel `name`.
pub fn channel_url(name: &str) -> String {
    format!("{CHANNELS}/{name}")
}

/// Fabric's `types.ChannelInfo`, fields in its order.
#[derive(Debug, Serialize)]
pub struct ChannelInfo {
    pub name: String,
    pub url: String,
    #[serde(rename = "consensusRelation")]
    pub consensus_relation: &'static str,
    pub status: &'static str,
    pub height: u64,
}

impl From<&ChannelState> for ChannelInfo {
    fn from(state: &ChannelState) -> Self {
        ChannelInfo {
            name: state.name.clone(),
            url: channel_url(&state.name),
            consensus_relation: state.relation.as_str(),
            status: state.status,
            height: state.height,
        }
    }
}

/// One entry of a [`ChannelList`].
#[derive(Debug, Serialize)]
pub struct ChannelInfoShort {
    pub name: String,
    pub url: String,
}

/// Fabric's `types.ChannelList`: 3.x has no system channel (always null), and an empty list is
/// `null`, as Go encodes a nil slice.
#[derive(Debug, Serialize)]
pub struct ChannelList {
    #[serde(rename = "systemChannel")]
    pub system_channel: Option<ChannelInfoShort>,
    pub channels: Option<Vec<ChannelInfoShort>>,
}

impl ChannelList {
    pub fn of(names: &[String]) -> ChannelList {
        ChannelList {
            system_channel: None,
            channels: (!names.is_empty()).then(|| {
                names
                    .iter()
                    .map(|name| ChannelInfoShort {
                        name: name.clone(),
                        url: channel_url(name),
                    })
                    .collect()
            }),
        }
    }
}

/// A JSON body as Go's `json.Encoder` writes it: the value, then a newline.
pub fn json_body<T: Serialize>(value: &T) -> String {
    // Serialising these plain structs (strings, numbers, options) cannot fail.
    let mut text = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string());
    text.push('\n');
    text
}

/// An error body: `{"error":"<text>"}` and a newline.
pub fn error_body(text: &str) -> String {
    json_body(&serde_json::json!({ "error": text }))
}

/// The 406 text when `Accept` rules out JSON.
pub const NOT_ACCEPTABLE: &str = "response Content-Type is application/json only";

/// Whether an `Accept` header (absent: anything) lets the response be JSON: one of its
/// comma-separated entries must name `application/json`, `application/*` or `*/*`.
pub fn accepts_json(accept: Option<&str>) -> bool {
    match accept {
        None => true,
        Some(accept) => accept.split(',').any(|entry| {
            entry.contains("application/json")
                || entry.contains("application/*")
                || entry.contains("*/*")
        }),
    }
}

/// A channel id from the path, checked as Fabric checks config channel ids.
pub fn check_channel_id(id: &str) -> Result<(), String> {
    if ordo_core::configtx::valid_channel_id(id) {
        Ok(())
    } else {
        Err(format!(
            "invalid channel ID: '{id}': a channel ID is 1 to 249 characters of a-z, 0-9, '.' \
             and '-', starting with a letter"
        ))
    }
}

/// A block named on the blocks path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockId {
    Newest,
    Oldest,
    /// The block the newest block names as its last config.
    Config,
    Number(u64),
}

pub fn parse_block_id(text: &str) -> Result<BlockId, String> {
    match text {
        "newest" => Ok(BlockId::Newest),
        "oldest" => Ok(BlockId::Oldest),
        "config" => Ok(BlockId::Config),
        number if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => number
            .parse()
            .map(BlockId::Number)
            .map_err(|_| format!("invalid block ID: {text}")),
        _ => Err(format!(
            "invalid block ID: {text}: expected newest, oldest, config or a block number"
        )),
    }
}

/// Whether a `Content-Type` is a multipart form (parameters such as the boundary aside).
pub fn is_multipart_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// A request id for `X-Request-Id`: a random (version 4) UUID.
pub fn new_request_id(random: [u8; 16]) -> String {
    let mut b = random;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ConsensusRelation;

    #[test]
    fn json_shapes_keep_fabrics_field_order() {
        let info = ChannelInfo::from(&ChannelState {
            name: "mych".into(),
            relation: ConsensusRelation::Consenter,
            status: "active",
            height: 5,
        });
        assert_eq!(
            json_body(&info),
            "{\"name\":\"mych\",\"url\":\"/participation/v1/channels/mych\",\
             \"consensusRelation\":\"consenter\",\"status\":\"active\",\"height\":5}\n"
        );
        assert_eq!(
            json_body(&ChannelList::of(&["mych".into()])),
            "{\"systemChannel\":null,\"channels\":[{\"name\":\"mych\",\
             \"url\":\"/participation/v1/channels/mych\"}]}\n"
        );
        assert_eq!(
            json_body(&ChannelList::of(&[])),
            "{\"systemChannel\":null,\"channels\":null}\n"
        );
        assert_eq!(
            error_body("channel does not exist"),
            "{\"error\":\"channel does not exist\"}\n"
        );
        assert_eq!(error_body("a \"q\""), "{\"error\":\"a \\\"q\\\"\"}\n");
    }

    #[test]
    fn accept_must_allow_json() {
        assert!(accepts_json(None));
        assert!(accepts_json(Some("application/json")));
        assert!(accepts_json(Some("text/html, application/*;q=0.8")));
        assert!(accepts_json(Some("*/*")));
        assert!(!accepts_json(Some("text/html")));
        assert!(!accepts_json(Some("")));
        assert!(!accepts_json(Some("text/plain, image/png")));
    }

    #[test]
    fn ids_from_the_path() {
        check_channel_id("mychannel").unwrap();
        check_channel_id("a.b-c9").unwrap();
        assert!(check_channel_id("MyChannel")
            .unwrap_err()
            .starts_with("invalid channel ID: 'MyChannel'"));
        assert!(check_channel_id("9ch").is_err());
        assert!(check_channel_id(&"a".repeat(250)).is_err());
        assert_eq!(parse_block_id("newest"), Ok(BlockId::Newest));
        assert_eq!(parse_block_id("oldest"), Ok(BlockId::Oldest));
        assert_eq!(parse_block_id("config"), Ok(BlockId::Config));
        assert_eq!(parse_block_id("17"), Ok(BlockId::Number(17)));
        assert!(parse_block_id("-1").is_err());
        assert!(parse_block_id("").is_err());
        assert!(parse_block_id("99999999999999999999999").is_err());
    }

    #[test]
    fn multipart_media_type_and_request_ids() {
        assert!(is_multipart_form(Some("multipart/form-data; boundary=x")));
        assert!(is_multipart_form(Some("Multipart/Form-Data")));
        assert!(!is_multipart_form(Some("application/json")));
        assert!(!is_multipart_form(None));
        let id = new_request_id([0xff; 16]);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
