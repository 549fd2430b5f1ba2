//! The policy manager: every policy of a config tree compiled once, one manager per group, each
//! answering names relative to its group or absolute (`/Channel/...`), as Fabric's `ManagerImpl`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ordo_proto::common::policy::PolicyType;
use ordo_proto::common::ConfigGroup;

use super::policy::Kind;
use super::{
    CompileError, Identities, ImplicitMeta, Policy, PolicyError, SignaturePolicy, SignedData,
    Unsatisfied,
};

/// The root group's path.
pub const ROOT: &str = "Channel";

#[derive(Clone, Debug)]
pub struct PolicyManager {
    /// `Channel`, `Channel/Application`, ... (no leading `/`).
    path: String,
    /// This group's policies by name, and every descendant's by relative path
    /// (`Org1/Admins`); shared with the descendants' managers.
    policies: HashMap<String, Arc<Policy>>,
    /// Child groups' managers, in name order (the order implicit-meta sub-policies run in).
    managers: BTreeMap<String, PolicyManager>,
}

impl PolicyManager {
    /// Compiles every policy of the channel config tree rooted at `root` (the `Channel` group).
    pub fn new(root: &ConfigGroup) -> Result<PolicyManager, PolicyError> {
        PolicyManager::build(ROOT.to_string(), root)
    }

    fn build(path: String, group: &ConfigGroup) -> Result<PolicyManager, PolicyError> {
        // Children first: implicit-meta policies resolve in the children's managers.
        // Name order, so that errors and sub-policy order do not depend on hashing.
        let mut children: Vec<_> = group.groups.iter().collect();
        children.sort_by(|a, b| a.0.cmp(b.0));
        let mut managers = BTreeMap::new();
        for (name, child) in children {
            let child = PolicyManager::build(format!("{path}/{name}"), child)?;
            managers.insert(name.clone(), child);
        }

        let mut own: Vec<_> = group.policies.iter().collect();
        own.sort_by(|a, b| a.0.cmp(b.0));
        let mut policies = HashMap::new();
        for (name, config_policy) in own {
            let full: Arc<str> = format!("/{path}/{name}").into();
            let compile_error = |reason| PolicyError::Compile {
                path: full.to_string(),
                reason,
            };
            let policy = config_policy
                .policy
                .as_ref()
                .ok_or_else(|| compile_error(CompileError::Nil))?;
            let kind = match PolicyType::try_from(policy.r#type) {
                Ok(PolicyType::Signature) => {
                    Kind::Signature(SignaturePolicy::decode(&policy.value).map_err(compile_error)?)
                }
                Ok(PolicyType::ImplicitMeta) => Kind::ImplicitMeta(
                    ImplicitMeta::decode(&policy.value, &managers).map_err(compile_error)?,
                ),
                // MSP (2) has no provider in Fabric's channel config either.
                _ => return Err(compile_error(CompileError::UnknownType(policy.r#type))),
            };
            policies.insert(name.clone(), Arc::new(Policy::new(full.clone(), kind)));
        }

        // Descendants' policies under relative names; as in Fabric they are added after the
        // group's own, so on a (pathological) name clash the descendant's wins.
        for (group_name, manager) in &managers {
            for (name, policy) in &manager.policies {
                policies.insert(format!("{group_name}/{name}"), policy.clone());
            }
        }
        Ok(PolicyManager {
            path,
            policies,
            managers,
        })
    }

    /// This manager's group path (`Channel/Application`, no leading `/`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Fabric's `GetPolicy`: the policy and true, or a reject-all policy and false. An empty id
    /// is rejected; an id starting with `/` must start with `/` + this manager's path; anything
    /// else is relative to this group.
    pub fn get(&self, id: &str) -> (Arc<Policy>, bool) {
        match self.lookup(id) {
            Ok(policy) => (policy.clone(), true),
            Err(name) => (Arc::new(Policy::reject(name)), false),
        }
    }

    /// The policy, or the name a reject policy reports.
    fn lookup<'a>(&self, id: &'a str) -> Result<&Arc<Policy>, &'a str> {
        if id.is_empty() {
            return Err(id);
        }
        let relative = match id.strip_prefix('/') {
            Some(rest) => {
                if !rest.starts_with(self.path.as_str()) {
                    return Err(id);
                }
                // Fabric cuts `/` + path + one more byte without checking that byte is `/`.
                // Replicated; where Fabric's slice would panic (`/Channel`) this rejects.
                id.get(self.path.len() + 2..).ok_or(id)?
            }
            None => id,
        };
        self.policies.get(relative).ok_or(relative)
    }

    /// The manager of a descendant group, by names below this group (`[]` is this one).
    pub fn manager(&self, path: &[&str]) -> Option<&PolicyManager> {
        match path.split_first() {
            None => Some(self),
            Some((first, rest)) => self.managers.get(*first)?.manager(rest),
        }
    }

    /// The policy a mod_policy names (configtx's `policyForItem`), called on the root manager.
    /// `group` is where a relative name resolves, as names below `Channel`: for a value or a
    /// policy, the group holding it; for a group, the group itself (`["Application", "Org1"]`
    /// makes `Admins` `/Channel/Application/Org1/Admins`). Absolute names, and names on the root
    /// group (`group` empty), resolve at the root. A group without a manager gives false.
    pub fn policy_for(&self, group: &[&str], id: &str) -> (Arc<Policy>, bool) {
        if id.is_empty() || id.starts_with('/') || group.is_empty() {
            return self.get(id);
        }
        match self.manager(group) {
            Some(manager) => manager.get(id),
            None => (Arc::new(Policy::reject(id)), false),
        }
    }

    /// Evaluates the policy `id` (as [`get`](Self::get) resolves it) over signed data.
    pub fn evaluate_signed_data<I: Identities>(
        &self,
        id: &str,
        signed: &[SignedData],
        ids: &I,
    ) -> Result<(), PolicyError> {
        match self.lookup(id) {
            Ok(policy) => policy.evaluate_signed_data(signed, ids),
            Err(name) => Err(no_such_policy(name)),
        }
    }

    /// Evaluates the policy `id` over verified, deduplicated identities (no allocation when it
    /// passes: this runs per Broadcast envelope).
    pub fn evaluate_identities<I: Identities>(
        &self,
        id: &str,
        identities: &[I::Identity],
        ids: &I,
    ) -> Result<(), PolicyError> {
        match self.lookup(id) {
            Ok(policy) => policy.evaluate_identities(identities, ids),
            Err(name) => Err(no_such_policy(name)),
        }
    }
}

fn no_such_policy(name: &str) -> PolicyError {
    let name: Arc<str> = name.into();
    PolicyError::Unsatisfied {
        path: name.clone(),
        reason: Unsatisfied::NoSuchPolicy(name),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{id, signed, Fake};
    use super::super::{dsl, CompileError, Unsatisfied};
    use super::*;
    use ordo_proto::common::{ConfigPolicy, Policy as ProtoPolicy};
    use prost::Message;

    fn sig(expr: &str) -> ProtoPolicy {
        dsl::signature_policy(&dsl::parse(expr).unwrap())
    }
    fn imp(expr: &str) -> ProtoPolicy {
        dsl::implicit_meta_policy(&dsl::implicit_meta(expr).unwrap())
    }
    fn group(
        policies: Vec<(&str, ProtoPolicy)>,
        groups: Vec<(String, ConfigGroup)>,
    ) -> ConfigGroup {
        ConfigGroup {
            policies: policies
                .into_iter()
                .map(|(k, p)| {
                    let cp = ConfigPolicy {
                        policy: Some(p),
                        mod_policy: "Admins".into(),
                        ..Default::default()
                    };
                    (k.to_string(), cp)
                })
                .collect(),
            groups: groups.into_iter().collect(),
            mod_policy: "Admins".into(),
            ..Default::default()
        }
    }
    /// An org as sampleconfig writes it, its MSP ID being its name.
    fn org(mspid: &str) -> (String, ConfigGroup) {
        let member = format!("OR('{mspid}.member')");
        let admin = format!("OR('{mspid}.admin')");
        let policies = vec![
            ("Readers", sig(&member)),
            ("Writers", sig(&member)),
            ("Admins", sig(&admin)),
        ];
        (mspid.to_string(), group(policies, vec![]))
    }
    fn section(orgs: &[&str]) -> ConfigGroup {
        group(
            vec![
                ("Readers", imp("ANY Readers")),
                ("Writers", imp("ANY Writers")),
                ("Admins", imp("MAJORITY Admins")),
            ],
            orgs.iter().map(|o| org(o)).collect(),
        )
    }
    /// configtxgen's default channel policies over these application and orderer orgs.
    fn channel(application: &[&str], orderer: &[&str]) -> ConfigGroup {
        let mut orderer = section(orderer);
        orderer.policies.insert(
            "BlockValidation".into(),
            ConfigPolicy {
                policy: Some(imp("ANY Writers")),
                ..Default::default()
            },
        );
        group(
            vec![
                ("Readers", imp("ANY Readers")),
                ("Writers", imp("ANY Writers")),
                ("Admins", imp("MAJORITY Admins")),
            ],
            vec![
                ("Application".into(), section(application)),
                ("Orderer".into(), orderer),
            ],
        )
    }
    fn ok(manager: &PolicyManager, path: &str, creators: &[&str]) -> bool {
        let by_signed = manager.evaluate_signed_data(path, &signed(creators), &Fake);
        // Step 2 alone over the same (already distinct, valid) identities agrees.
        let identities: Vec<_> = creators.iter().map(|c| id(c)).collect();
        let by_identities = manager.evaluate_identities(path, &identities, &Fake);
        assert_eq!(
            by_signed.is_ok(),
            by_identities.is_ok(),
            "{path} {creators:?}"
        );
        by_signed.is_ok()
    }

    #[test]
    fn shareable_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<PolicyManager>();
        send_sync::<Arc<Policy>>();
    }

    #[test]
    fn implicit_meta_thresholds_over_1_to_5_groups() {
        for m in 1..=5usize {
            let orgs: Vec<String> = (0..m).map(|i| format!("O{i}")).collect();
            let admins: Vec<String> = orgs.iter().map(|o| format!("{o}:1:admin")).collect();
            for (rule, threshold) in [("ANY", 1), ("ALL", m), ("MAJORITY", m / 2 + 1)] {
                let root = group(
                    vec![("P", imp(&format!("{rule} Admins")))],
                    orgs.iter().map(|o| org(o)).collect(),
                );
                let manager = PolicyManager::new(&root).unwrap();
                for k in 0..=m {
                    let creators: Vec<&str> = admins[..k].iter().map(String::as_str).collect();
                    assert_eq!(
                        ok(&manager, "P", &creators),
                        k >= threshold,
                        "{rule} m={m} k={k}"
                    );
                }
                if threshold > 0 {
                    let err = manager.evaluate_signed_data("P", &[], &Fake).unwrap_err();
                    assert_eq!(
                        err.unsatisfied().unwrap().to_string(),
                        format!(
                            "implicit policy evaluation failed - 0 sub-policies were satisfied, \
                             but this policy requires {threshold} of the 'Admins' sub-policies \
                             to be satisfied"
                        )
                    );
                    assert!(err.to_string().starts_with("policy /Channel/P: "), "{err}");
                }
            }
        }
    }

    #[test]
    fn zero_child_groups_always_satisfied() {
        let manager = PolicyManager::new(&channel(&[], &["O"])).unwrap();
        for path in [
            "/Channel/Application/Admins",
            "/Channel/Application/Readers",
            "/Channel/Application/Writers",
        ] {
            assert!(ok(&manager, path, &[]), "{path}");
        }
        for rule in ["ALL", "ANY", "MAJORITY"] {
            let root = group(vec![("P", imp(&format!("{rule} Admins")))], vec![]);
            assert!(ok(&PolicyManager::new(&root).unwrap(), "P", &[]));
        }
    }

    #[test]
    fn nested_implicit_meta() {
        // /Channel/Admins = MAJORITY of {Application/Admins, Orderer/Admins} = both; each is a
        // MAJORITY of its orgs' Admins (2 of 3 application orgs, 1 of 1 orderer org).
        let manager = PolicyManager::new(&channel(&["A", "B", "C"], &["O"])).unwrap();
        let cases: &[(&[&str], bool)] = &[
            (&["A:1:admin", "B:1:admin", "O:1:admin"], true),
            (&["O:1:admin", "C:1:admin", "A:1:admin"], true),
            (&["A:1:admin", "B:1:admin"], false),
            (&["A:1:admin", "O:1:admin"], false),
            (&["A:1:", "B:1:", "O:1:"], false),
            (&["A:1:admin", "A:2:admin", "O:1:admin"], false),
        ];
        for (creators, want) in cases {
            assert_eq!(
                ok(&manager, "/Channel/Admins", creators),
                *want,
                "{creators:?}"
            );
        }
        let err = manager
            .evaluate_signed_data(
                "/Channel/Admins",
                &signed(&["A:1:admin", "B:1:admin"]),
                &Fake,
            )
            .unwrap_err();
        assert_eq!(
            err.unsatisfied().unwrap().to_string(),
            "implicit policy evaluation failed - 1 sub-policies were satisfied, but this policy \
             requires 2 of the 'Admins' sub-policies to be satisfied"
        );
        // The usual Broadcast and Deliver checks.
        assert!(ok(&manager, "/Channel/Writers", &["C:1:"]));
        assert!(ok(&manager, "/Channel/Readers", &["O:1:"]));
        assert!(ok(&manager, "/Channel/Orderer/BlockValidation", &["O:1:"]));
        assert!(!ok(&manager, "/Channel/Orderer/BlockValidation", &["A:1:"]));
        assert!(!ok(&manager, "/Channel/Writers", &["X:1:"]));
        // Each sub-policy has its own `used` state: one identity satisfies the same-named
        // policy of two child groups within one evaluation.
        let shared = |name: &str| {
            let policy = vec![("Readers", sig("OR('A.member')"))];
            (name.to_string(), group(policy, vec![]))
        };
        let root = group(
            vec![("P", imp("ALL Readers"))],
            vec![shared("G1"), shared("G2")],
        );
        assert!(ok(&PolicyManager::new(&root).unwrap(), "P", &["A:1:"]));
    }

    #[test]
    fn missing_sub_policy_counts_as_failing() {
        // Three children, one without Endorsement: ALL can never pass, MAJORITY (2 of 3) can.
        let mut children: Vec<(String, ConfigGroup)> = ["A", "B"]
            .iter()
            .map(|o| {
                let (name, mut g) = org(o);
                let member = format!("OR('{o}.member')");
                g.policies.insert(
                    "Endorsement".into(),
                    ConfigPolicy {
                        policy: Some(sig(&member)),
                        ..Default::default()
                    },
                );
                (name, g)
            })
            .collect();
        children.push(org("C"));
        let root = group(
            vec![
                ("All", imp("ALL Endorsement")),
                ("Majority", imp("MAJORITY Endorsement")),
                ("Any", imp("ANY Nothing")),
            ],
            children,
        );
        let manager = PolicyManager::new(&root).unwrap();
        assert!(!ok(&manager, "All", &["A:1:", "B:1:", "C:1:"]));
        assert!(ok(&manager, "Majority", &["A:1:", "B:1:"]));
        assert!(!ok(&manager, "Majority", &["A:1:", "C:1:"]));
        assert!(!ok(
            &manager,
            "Any",
            &["A:1:admin", "B:1:admin", "C:1:admin"]
        ));
    }

    #[test]
    fn unknown_implicit_meta_rule_behaves_as_fabric() {
        // A rule value outside the enum leaves Fabric's threshold at 0: it passes only while no
        // sub-policy is satisfied.
        let odd = ProtoPolicy {
            r#type: 3,
            value: ordo_proto::common::ImplicitMetaPolicy {
                sub_policy: "Admins".into(),
                rule: 7,
            }
            .encode_to_vec()
            .into(),
        };
        let root = group(vec![("P", odd)], vec![org("A"), org("B")]);
        let manager = PolicyManager::new(&root).unwrap();
        assert!(ok(&manager, "P", &[]));
        assert!(ok(&manager, "P", &["A:1:"]));
        assert!(!ok(&manager, "P", &["A:1:admin"]));
    }

    #[test]
    fn get_policy() {
        let manager = PolicyManager::new(&channel(&["A"], &["O"])).unwrap();
        let application = manager.manager(&["Application"]).unwrap();
        assert_eq!(application.path(), "Channel/Application");
        // (manager, id, found, path of the returned policy)
        let cases: Vec<(&PolicyManager, &str, bool, &str)> = vec![
            (&manager, "/Channel/Writers", true, "/Channel/Writers"),
            (&manager, "Writers", true, "/Channel/Writers"),
            (
                &manager,
                "/Channel/Application/A/Admins",
                true,
                "/Channel/Application/A/Admins",
            ),
            (
                &manager,
                "Application/A/Admins",
                true,
                "/Channel/Application/A/Admins",
            ),
            (
                &manager,
                "Orderer/BlockValidation",
                true,
                "/Channel/Orderer/BlockValidation",
            ),
            (
                application,
                "A/Admins",
                true,
                "/Channel/Application/A/Admins",
            ),
            (
                application,
                "/Channel/Application/Admins",
                true,
                "/Channel/Application/Admins",
            ),
            (application, "Admins", true, "/Channel/Application/Admins"),
            // absolute ids outside the manager's path
            (application, "/Channel/Admins", false, "/Channel/Admins"),
            (&manager, "/Other/Admins", false, "/Other/Admins"),
            (&manager, "/Channel", false, "/Channel"),
            // missing
            (&manager, "Nothing", false, "Nothing"),
            (&manager, "/Channel/Nothing", false, "Nothing"),
            (
                &manager,
                "Application/B/Admins",
                false,
                "Application/B/Admins",
            ),
            (&manager, "", false, ""),
            // Fabric does not check the byte after the path is '/'
            (&manager, "/ChannelXWriters", true, "/Channel/Writers"),
        ];
        for (m, id, found, path) in cases {
            let (policy, got) = m.get(id);
            assert_eq!((got, policy.path()), (found, path), "{} {id:?}", m.path());
        }
        let err = manager
            .evaluate_signed_data("Nothing", &signed(&["A:1:"]), &Fake)
            .unwrap_err();
        assert_eq!(
            err.unsatisfied(),
            Some(&Unsatisfied::NoSuchPolicy("Nothing".into()))
        );
        assert_eq!(
            err.unsatisfied().unwrap().to_string(),
            "no such policy: 'Nothing'"
        );
        let (reject, _) = manager.get("");
        assert!(reject.evaluate_identities(&[id("A:1:")], &Fake).is_err());
        assert!(manager.manager(&["Application", "A"]).is_some());
        assert!(manager.manager(&["Application", "B"]).is_none());
        assert_eq!(manager.manager(&[]).unwrap().path(), "Channel");
    }

    #[test]
    fn policy_for_mod_policies() {
        let manager = PolicyManager::new(&channel(&["A"], &["O"])).unwrap();
        // (group the element resolves in, mod_policy, found, resolved path)
        let cases: &[(&[&str], &str, bool, &str)] = &[
            // a value or policy in /Channel/Application, or the Application group itself
            (
                &["Application"],
                "Admins",
                true,
                "/Channel/Application/Admins",
            ),
            // the group /Channel/Application/A
            (
                &["Application", "A"],
                "Admins",
                true,
                "/Channel/Application/A/Admins",
            ),
            // the root group, or an element of it
            (&[], "Admins", true, "/Channel/Admins"),
            (
                &["Application", "A"],
                "/Channel/Orderer/Admins",
                true,
                "/Channel/Orderer/Admins",
            ),
            (&["Application", "B"], "Admins", false, "Admins"),
            (&["Application"], "", false, ""),
            (&["Application"], "Nothing", false, "Nothing"),
        ];
        for (group, id, found, path) in cases {
            let (policy, got) = manager.policy_for(group, id);
            assert_eq!((got, policy.path()), (*found, *path), "{group:?} {id:?}");
        }
    }

    #[test]
    fn compile_errors_name_the_policy() {
        let with = |policy: Option<ProtoPolicy>| {
            let mut root = channel(&["A"], &["O"]);
            let org = root
                .groups
                .get_mut("Application")
                .and_then(|g| g.groups.get_mut("A"))
                .unwrap();
            org.policies.insert(
                "Bad".into(),
                ConfigPolicy {
                    policy,
                    ..Default::default()
                },
            );
            PolicyManager::new(&root).unwrap_err()
        };
        let bad_version = ordo_proto::common::SignaturePolicyEnvelope {
            version: 1,
            ..dsl::parse("OR('A.member')").unwrap()
        };
        let mut out_of_range = dsl::parse("OR('A.member')").unwrap();
        out_of_range.identities.clear();
        let cases: Vec<(Option<ProtoPolicy>, CompileError)> = vec![
            (None, CompileError::Nil),
            (
                Some(ProtoPolicy {
                    r#type: 0,
                    value: Default::default(),
                }),
                CompileError::UnknownType(0),
            ),
            (
                Some(ProtoPolicy {
                    r#type: 2,
                    value: Default::default(),
                }),
                CompileError::UnknownType(2),
            ),
            (
                Some(ProtoPolicy {
                    r#type: 9,
                    value: Default::default(),
                }),
                CompileError::UnknownType(9),
            ),
            (
                Some(dsl::signature_policy(&bad_version)),
                CompileError::Version(1),
            ),
            (
                Some(dsl::signature_policy(&out_of_range)),
                CompileError::IndexOutOfRange { index: 0, len: 0 },
            ),
            // an empty SIGNATURE value decodes to an envelope without a rule
            (
                Some(ProtoPolicy {
                    r#type: 1,
                    value: Default::default(),
                }),
                CompileError::EmptyRule,
            ),
        ];
        for (policy, reason) in cases {
            let err = with(policy);
            assert_eq!(
                err,
                PolicyError::Compile {
                    path: "/Channel/Application/A/Bad".into(),
                    reason: reason.clone()
                }
            );
            assert!(
                err.to_string().contains("/Channel/Application/A/Bad"),
                "{err}"
            );
        }
        for r#type in [1, 3] {
            let err = with(Some(ProtoPolicy {
                r#type,
                value: bytes::Bytes::from_static(b"\xff\xff\xff"),
            }));
            assert!(
                matches!(&err, PolicyError::Compile { path, reason: CompileError::Decode { .. } } if path == "/Channel/Application/A/Bad"),
                "{err}"
            );
        }
        let err = with(Some(ProtoPolicy {
            r#type: 2,
            value: Default::default(),
        }));
        assert_eq!(
            err.to_string(),
            "policy /Channel/Application/A/Bad did not compile: has unknown policy type: 2"
        );
    }

    #[test]
    fn signature_failure_message() {
        let manager = PolicyManager::new(&channel(&["A"], &["O"])).unwrap();
        let err = manager
            .evaluate_signed_data("/Channel/Application/A/Admins", &signed(&["A:1:"]), &Fake)
            .unwrap_err();
        assert_eq!(err.unsatisfied(), Some(&Unsatisfied::Signatures));
        assert_eq!(
            err.to_string(),
            "policy /Channel/Application/A/Admins: signature set did not satisfy policy"
        );
        // Signed data goes through step 1: bad signatures and duplicates do not count.
        let two_admins = PolicyManager::new(&group(
            vec![("P", sig("AND('A.admin', 'A.admin')"))],
            vec![],
        ))
        .unwrap();
        let sets: Vec<(Vec<SignedData>, bool)> = vec![
            (signed(&["A:1:admin", "A:1:admin"]), false),
            (signed(&["A:1:admin", "A:2:admin"]), true),
            (
                vec![
                    super::super::testing::sd("A:1:admin", b"bad"),
                    super::super::testing::sd("A:1:admin", b"ok"),
                    super::super::testing::sd("A:2:admin", b"ok"),
                ],
                true,
            ),
            (
                vec![
                    super::super::testing::sd("A:1:admin", b"ok"),
                    super::super::testing::sd("A:2:admin", b"bad"),
                ],
                false,
            ),
        ];
        for (set, want) in sets {
            assert_eq!(
                two_admins.evaluate_signed_data("P", &set, &Fake).is_ok(),
                want
            );
        }
    }
}
