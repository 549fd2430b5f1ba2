//! The log filter, changed at run time through `PUT /logspec`, in Fabric's spec syntax.
//!
//! A spec is terms separated by `:`; a term is a level (the default for everything) or
//! `logger[,logger...]=level`, the last of either kind winning, e.g.
//! `warning:orderer.consensus.etcdraft=debug:openraft,tonic=error`. Levels: `debug`, `info`,
//! `warn`/`warning`, `error` (and Fabric's `panic`, `dpanic`, `fatal`, taken as `error`), plus
//! `trace`. A logger is a tracing target written with dots for `::` (`ordo_orderer.chain.raft`,
//! `openraft`), or one of Fabric's logger names for its Ordo counterpart (`orderer.consensus.
//! etcdraft` → `ordo_orderer::chain::raft`, see [`FABRIC_LOGGERS`]). The spec maps onto a
//! `tracing_subscriber::EnvFilter`, swapped in through a reload handle.

use std::sync::{Mutex, OnceLock};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Fabric's orderer logger names and the Ordo targets that do their part.
pub const FABRIC_LOGGERS: &[(&str, &str)] = &[
    ("orderer", "ordo_orderer"),
    ("orderer.consensus.etcdraft", "ordo_orderer::chain::raft"),
    ("orderer.consensus.solo", "ordo_orderer::chain::solo"),
    (
        "orderer.common.broadcast",
        "ordo_orderer::server::broadcast",
    ),
    ("common.deliver", "ordo_orderer::server::deliver"),
    ("orderer.common.cluster", "ordo_orderer::server::cluster"),
    ("orderer.common.multichannel", "ordo_orderer::registrar"),
    (
        "orderer.common.channelparticipation",
        "ordo_orderer::participation",
    ),
    ("orderer.common.server", "ordo_orderer::node"),
    ("operations", "ordo_orderer::operations"),
    ("fabhttp", "ordo_orderer::http"),
];

/// Why a spec was refused (answered 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid logging specification '{spec}': {reason}")]
pub struct SpecError {
    spec: String,
    reason: String,
}

fn level(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "dpanic" | "panic" | "fatal" => "error",
        _ => return None,
    })
}

/// Fabric's logger names: dot-separated words of letters, digits, `_`, `#` and `-`.
fn valid_logger(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '#' | '-'))
        })
}

fn target(logger: &str) -> String {
    match FABRIC_LOGGERS.iter().find(|(fabric, _)| *fabric == logger) {
        Some((_, ordo)) => ordo.to_string(),
        None => logger.replace('.', "::"),
    }
}

/// The `EnvFilter` directives of a Fabric spec; an empty spec is `info`.
pub fn directives(spec: &str) -> Result<String, SpecError> {
    let refuse = |reason: String| SpecError {
        spec: spec.to_string(),
        reason,
    };
    let mut default = "info";
    let mut targets: Vec<(String, &'static str)> = Vec::new();
    for term in spec.split(':') {
        match term.split('=').collect::<Vec<_>>()[..] {
            [""] => {}
            [name] => {
                default = level(name).ok_or_else(|| refuse(format!("bad segment '{term}'")))?
            }
            [loggers, name] => {
                let level = level(name).ok_or_else(|| refuse(format!("bad segment '{term}'")))?;
                if loggers.is_empty() {
                    return Err(refuse(format!("logger name missing in '{term}'")));
                }
                for logger in loggers.split(',') {
                    if !valid_logger(logger) {
                        return Err(refuse(format!("invalid logger name '{logger}'")));
                    }
                    let target = target(logger);
                    // The last setting of a logger wins, as in Fabric.
                    targets.retain(|(t, _)| *t != target);
                    targets.push((target, level));
                }
            }
            _ => return Err(refuse(format!("bad segment '{term}'"))),
        }
    }
    let mut directives = vec![default.to_string()];
    directives.extend(targets.into_iter().map(|(t, l)| format!("{t}={l}")));
    Ok(directives.join(","))
}

/// The filter in force and the handle that replaces it.
pub struct LogFilter {
    spec: Mutex<String>,
    handle: reload::Handle<EnvFilter, Registry>,
}

impl LogFilter {
    pub fn new(spec: String, handle: reload::Handle<EnvFilter, Registry>) -> LogFilter {
        LogFilter {
            spec: Mutex::new(spec),
            handle,
        }
    }

    /// The spec in force, as it was given.
    pub fn spec(&self) -> String {
        self.spec.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `spec` in force, or refuses it (the filter in force then stays).
    pub fn set(&self, spec: &str) -> Result<(), SpecError> {
        let filter = EnvFilter::try_new(directives(spec)?).map_err(|e| SpecError {
            spec: spec.to_string(),
            reason: e.to_string(),
        })?;
        let mut current = self.spec.lock().unwrap_or_else(|e| e.into_inner());
        self.handle.reload(filter).map_err(|e| SpecError {
            spec: spec.to_string(),
            reason: format!("the log filter cannot be changed: {e}"),
        })?;
        *current = spec.to_string();
        tracing::info!(spec, "log spec changed");
        Ok(())
    }
}

static INSTALLED: OnceLock<LogFilter> = OnceLock::new();

/// The process's filter, if [`init`] installed one.
pub fn installed() -> Option<&'static LogFilter> {
    INSTALLED.get()
}

/// Installs the process's subscriber (to stderr) with a reloadable filter: from
/// `ORDO_LOGGING_SPEC` (Fabric syntax, as `FABRIC_LOGGING_SPEC`), else `RUST_LOG` (tracing's
/// syntax), else `info`. A spec that does not parse is reported and `info` used instead.
pub fn init() {
    let (spec, filter) = initial_filter();
    let (layer, handle) = reload::Layer::new(filter);
    let installed = tracing_subscriber::registry()
        .with(layer)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .try_init()
        .is_ok();
    if installed {
        let _ = INSTALLED.set(LogFilter::new(spec, handle));
    }
}

fn initial_filter() -> (String, EnvFilter) {
    if let Ok(spec) = std::env::var("ORDO_LOGGING_SPEC") {
        match directives(&spec).map(|d| EnvFilter::try_new(d).map_err(|e| e.to_string())) {
            Ok(Ok(filter)) => return (spec, filter),
            Ok(Err(e)) => eprintln!("orderer: ORDO_LOGGING_SPEC: {e}; logging at info"),
            Err(e) => eprintln!("orderer: ORDO_LOGGING_SPEC: {e}; logging at info"),
        }
        return ("info".into(), EnvFilter::new("info"));
    }
    if let Ok(spec) = std::env::var("RUST_LOG") {
        if let Ok(filter) = EnvFilter::try_new(&spec) {
            return (spec, filter);
        }
        eprintln!("orderer: RUST_LOG={spec:?} does not parse; logging at info");
    }
    ("info".into(), EnvFilter::new("info"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fabric_specs_map_onto_tracing_directives() {
        assert_eq!(directives("").unwrap(), "info");
        assert_eq!(directives("debug").unwrap(), "debug");
        assert_eq!(directives("WARNING").unwrap(), "warn");
        assert_eq!(
            directives("warning:orderer.consensus.etcdraft=debug").unwrap(),
            "warn,ordo_orderer::chain::raft=debug"
        );
        assert_eq!(
            directives("openraft,ordo_orderer.log=error:info:openraft=debug").unwrap(),
            "info,ordo_orderer::log=error,openraft=debug"
        );
        assert_eq!(directives("fatal").unwrap(), "error");
        for bad in [
            "verbose",
            "a=b=c",
            "=debug",
            "a..b=info",
            "x y=info",
            "a=loud",
        ] {
            let refused = directives(bad).unwrap_err();
            assert!(refused.to_string().contains(bad), "{refused}");
        }
    }

    #[test]
    fn a_set_spec_is_in_force_and_a_bad_one_changes_nothing() {
        let (layer, handle) = reload::Layer::new(EnvFilter::new("info"));
        let subscriber = tracing_subscriber::registry().with(layer);
        let filter = LogFilter::new("info".into(), handle);
        tracing::subscriber::with_default(subscriber, || {
            assert!(!tracing::enabled!(tracing::Level::DEBUG));
            filter.set("warn:ordo_orderer.operations=debug").unwrap();
            assert_eq!(filter.spec(), "warn:ordo_orderer.operations=debug");
            assert!(tracing::enabled!(tracing::Level::DEBUG));
            assert!(filter.set("shout").is_err());
            assert_eq!(filter.spec(), "warn:ordo_orderer.operations=debug");
        });
    }
}
