//! Chain building with the rules of Go's `x509.Certificate.Verify` that Fabric relies on: every
//! chain from the leaf through the intermediates to a root, each certificate valid at the given
//! instant, intermediates CA, path lengths, and the extended-key-usage filter. Name constraints
//! beyond Fabric's legacy check (in the MSP) are not enforced.

use std::sync::Arc;

use super::cert::Cert;

/// The extended key usages a chain must allow (Go's `VerifyOptions.KeyUsages`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Usages {
    /// Left unset, as the MSP leaves it: Go then requires serverAuth.
    ServerAuth,
    /// clientAuth or serverAuth (consenter TLS certificates).
    ClientOrServer,
}

/// Go gives up after this many signature checks while building chains.
const MAX_SIGNATURE_CHECKS: usize = 100;

/// Every valid chain `[leaf, …, root]`, or why there is none.
pub(crate) fn verify(
    leaf: &Arc<Cert>,
    roots: &[Arc<Cert>],
    intermediates: &[Arc<Cert>],
    at: i64,
    usages: Usages,
) -> Result<Vec<Vec<Arc<Cert>>>, String> {
    if let Some(oid) = &leaf.unhandled_critical {
        return Err(format!("unhandled critical extension {oid}"));
    }
    check_validity(leaf, at)?;
    let mut chains = Vec::new();
    if roots.iter().any(|r| r.der == leaf.der) {
        chains.push(vec![leaf.clone()]);
    } else {
        let mut builder = Builder {
            roots,
            intermediates,
            at,
            checks: 0,
            last_error: None,
        };
        let mut current = vec![leaf.clone()];
        builder.build(&mut current, &mut chains);
        if chains.is_empty() {
            return Err(match builder.last_error {
                Some(e) => format!("certificate signed by unknown authority ({e})"),
                None => "certificate signed by unknown authority".into(),
            });
        }
    }
    chains.retain(|c| allows(c, usages));
    if chains.is_empty() {
        return Err("certificate specifies an incompatible key usage".into());
    }
    Ok(chains)
}

fn check_validity(cert: &Cert, at: i64) -> Result<(), String> {
    if at < cert.not_before {
        Err(format!(
            "certificate {} is not yet valid at the instant checked",
            cert.subject
        ))
    } else if at > cert.not_after {
        Err(format!(
            "certificate {} has expired at the instant checked",
            cert.subject
        ))
    } else {
        Ok(())
    }
}

struct Builder<'a> {
    roots: &'a [Arc<Cert>],
    intermediates: &'a [Arc<Cert>],
    at: i64,
    checks: usize,
    last_error: Option<String>,
}

impl Builder<'_> {
    fn build(&mut self, current: &mut Vec<Arc<Cert>>, out: &mut Vec<Vec<Arc<Cert>>>) {
        let candidates = self
            .roots
            .iter()
            .map(|c| (c, true))
            .chain(self.intermediates.iter().map(|c| (c, false)));
        for (candidate, is_root) in candidates {
            let Some(child) = current.last().cloned() else {
                return;
            };
            if candidate.subject_raw != child.issuer_raw
                || current.iter().any(|c| c.same_entity(candidate))
            {
                continue;
            }
            if self.checks >= MAX_SIGNATURE_CHECKS {
                self.last_error = Some("too many signature checks".into());
                return;
            }
            self.checks += 1;
            if let Err(e) = self.consider(candidate, is_root, current.len(), &child) {
                self.last_error = Some(e);
                continue;
            }
            current.push(candidate.clone());
            if is_root {
                out.push(current.clone());
            } else {
                self.build(current, out);
            }
            current.pop();
        }
    }

    /// Go's `isValid` for a CA plus `CheckSignatureFrom`.
    fn consider(
        &self,
        candidate: &Cert,
        is_root: bool,
        chain_len: usize,
        child: &Cert,
    ) -> Result<(), String> {
        check_validity(candidate, self.at)?;
        if !is_root && !candidate.is_ca() {
            return Err(format!(
                "intermediate {} is not authorised to sign",
                candidate.subject
            ));
        }
        if let Some((_, Some(max))) = candidate.basic_constraints {
            if chain_len - 1 > max as usize {
                return Err(format!(
                    "too many intermediates for the path length of {}",
                    candidate.subject
                ));
            }
        }
        match candidate.basic_constraints {
            None if candidate.version3 => {
                return Err(format!("{} has no basic constraints", candidate.subject))
            }
            Some((false, _)) => return Err(format!("{} is not a CA", candidate.subject)),
            _ => {}
        }
        if candidate.key_cert_sign == Some(false) {
            return Err(format!(
                "{} has a key usage without certificate signing",
                candidate.subject
            ));
        }
        child
            .signed_by(&candidate.key)
            .map_err(|e| format!("{} by {}: {e}", child.subject, candidate.subject))
    }
}

/// Go's `checkChainForKeyUsage`: walking from the root down, each certificate with an EKU (and
/// not anyExtendedKeyUsage) removes the requested usages it does not list; none may be left out
/// entirely.
fn allows(chain: &[Arc<Cert>], usages: Usages) -> bool {
    let (mut server, mut client) = match usages {
        Usages::ServerAuth => (true, false),
        Usages::ClientOrServer => (true, true),
    };
    for cert in chain.iter().rev() {
        let Some(eku) = cert.eku else { continue };
        if eku.any {
            continue;
        }
        server &= eku.server_auth;
        client &= eku.client_auth;
        if !server && !client {
            return false;
        }
    }
    true
}
