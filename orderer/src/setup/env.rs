//! Settings from environment variables, as Fabric's `ORDERER_GENERAL_LISTENADDRESS` and the
//! like: `ORDO_<TABLE>_<KEY>` sets `key` of `[table]` in `orderer.toml` (nested tables joined by
//! `_` too: `ORDO_CLUSTER_DIAL` is `[cluster] dial`), so a container is configured without
//! writing a file. A variable wins over the file.
//!
//! Values are read as TOML values where they are one (`true`, `7050`, `["a.pem", "b.pem"]`,
//! `{ "orderer1:7150" = "10.0.0.1:7150" }`) and as strings otherwise (`127.0.0.1:7050`,
//! `/var/ordo`); a string that would read as something else is quoted: `ORDO_NODE_MSPID='"123"'`.
//! `ORDO_` variables that name no table (`ORDO_BIN`, the network scripts' own) are not settings
//! and are left alone; one that names a table but no key of it is refused by the config's own
//! check of unknown keys, naming the variable.

use toml::{Table, Value};

/// What every setting variable starts with.
pub const PREFIX: &str = "ORDO_";

/// The tables of `orderer.toml`, nested ones dotted. Kept in step with `NodeConfig` by the test
/// below.
pub const TABLES: &[&str] = &[
    "node",
    "log",
    "ledger",
    "limits",
    "authentication",
    "cluster",
    "tls",
    "operations",
    "operations.tls",
    "admin",
    "admin.tls",
    "channel_participation",
];

/// Keys of the top level itself: `ORDO_CHANNEL` is the `[[channel]]` array.
const TOP_LEVEL: &[&str] = &["channel"];

/// One setting taken from the environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    /// The variable, e.g. `ORDO_NODE_LISTEN`.
    pub variable: String,
    /// The dotted setting it sets, e.g. `node.listen`.
    pub setting: String,
}

/// The table and key a variable name (without the prefix, lowercased) sets, if it is a setting.
fn setting_of(name: &str) -> Option<(Vec<&'static str>, String)> {
    if TOP_LEVEL.contains(&name) {
        return Some((Vec::new(), name.to_string()));
    }
    // The longest table first: `channel_participation_enabled` is not `[channel]`'s.
    let mut tables: Vec<&'static str> = TABLES.to_vec();
    tables.sort_by_key(|t| std::cmp::Reverse(t.len()));
    tables.into_iter().find_map(|table| {
        let key = name
            .strip_prefix(&table.replace('.', "_"))?
            .strip_prefix('_')?;
        (!key.is_empty()).then(|| (table.split('.').collect(), key.to_string()))
    })
}

/// A variable's value: a TOML value where it reads as one, else the text as a string.
fn value_of(raw: &str) -> Value {
    match toml::from_str::<Table>(&format!("v = {raw}")) {
        Ok(mut table) => table
            .remove("v")
            .unwrap_or_else(|| Value::String(raw.into())),
        Err(_) => Value::String(raw.to_string()),
    }
}

/// Sets into `config` every setting among `vars`; returns what was set, in variable order.
/// Refused: a variable whose table is not a table in `config` (a value given in the file).
pub fn apply(
    config: &mut Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<Override>, String> {
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with(PREFIX))
        .collect();
    vars.sort();
    let mut applied = Vec::new();
    for (variable, raw) in vars {
        let Some((path, key)) = setting_of(&variable[PREFIX.len()..].to_ascii_lowercase()) else {
            continue;
        };
        let mut table = &mut *config;
        for (depth, name) in path.iter().enumerate() {
            let entry = table
                .entry(name.to_string())
                .or_insert_with(|| Value::Table(Table::new()));
            table = entry.as_table_mut().ok_or_else(|| {
                format!(
                    "{variable}: [{}] is not a table in the config file",
                    path[..=depth].join(".")
                )
            })?;
        }
        table.insert(key.clone(), value_of(&raw));
        let setting = path
            .iter()
            .copied()
            .chain([key.as_str()])
            .collect::<Vec<_>>();
        applied.push(Override {
            variable,
            setting: setting.join("."),
        });
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn variables_set_keys_of_their_tables_with_typed_values() {
        let mut config: Table = toml::from_str("[node]\nlisten = \"127.0.0.1:1\"\n").unwrap();
        let applied = apply(
            &mut config,
            vars(&[
                ("ORDO_NODE_LISTEN", "0.0.0.0:7050"),
                ("ORDO_LIMITS_MAX_CONNECTIONS", "10"),
                ("ORDO_CLUSTER_DIAL", "{ \"o1:7150\" = \"10.0.0.1:7150\" }"),
                ("ORDO_NODE_MSPID", "\"123\""),
                ("ORDO_BIN", "/usr/bin/orderer"),
                ("PATH", "/bin"),
                ("ORDO_CHANNEL", "[{ genesis_block = \"g.block\" }]"),
            ]),
        )
        .unwrap();
        let settings: Vec<&str> = applied.iter().map(|o| o.setting.as_str()).collect();
        assert_eq!(
            settings,
            [
                "channel",
                "cluster.dial",
                "limits.max_connections",
                "node.listen",
                "node.mspid"
            ]
        );
        assert_eq!(config["node"]["listen"].as_str(), Some("0.0.0.0:7050"));
        assert_eq!(config["node"]["mspid"].as_str(), Some("123"));
        assert_eq!(config["limits"]["max_connections"].as_integer(), Some(10));
        assert_eq!(
            config["cluster"]["dial"]["o1:7150"].as_str(),
            Some("10.0.0.1:7150")
        );
        assert_eq!(
            config["channel"][0]["genesis_block"].as_str(),
            Some("g.block")
        );
    }

    #[test]
    fn the_longest_table_wins_and_a_bare_table_name_is_no_setting() {
        assert_eq!(
            setting_of("cluster_heartbeat_ms"),
            Some((vec!["cluster"], "heartbeat_ms".to_string()))
        );
        assert_eq!(setting_of("cluster"), None);
        assert_eq!(setting_of("cluster_"), None);
        assert_eq!(setting_of("require_docker"), None);
    }

    #[test]
    fn a_value_in_place_of_a_table_is_refused() {
        let mut config: Table = toml::from_str("node = 3\n").unwrap();
        let refused = apply(&mut config, vars(&[("ORDO_NODE_LISTEN", "x")])).unwrap_err();
        assert!(refused.contains("ORDO_NODE_LISTEN"), "{refused}");
    }
}
