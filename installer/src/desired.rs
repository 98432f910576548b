//! From the cluster's SeccompProfiles to the set of files this node must have. Pure: no I/O,
//! no API server; the controller feeds it a snapshot.

use crate::paths::ProfileKey;
use seccomp_filter::{self as seccomp, Libseccomp};
use seccomp_profile::{resolve, validate_spec, Arch, Policy, ProfileSpec};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What one profile should be on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Desired {
    /// A file with exactly these bytes.
    Install {
        /// `sha256:<hex>` of `json`.
        hash: String,
        /// The rendered document.
        json: Arc<Vec<u8>>,
    },
    /// The profile cannot be installed: why. Whatever file is on disk stays as it is, so pods
    /// that could start before keep starting while the error is fixed.
    Error(String),
}

/// Remembers which specs passed validation and which rendered documents libseccomp accepted,
/// so each distinct spec is validated and each distinct document compiled once, however often
/// the set is recomputed.
#[derive(Default, Debug)]
pub struct CompileCache {
    results: HashMap<String, Result<(), String>>,
    validated: HashMap<u64, Result<(), String>>,
}

impl CompileCache {
    fn validate(&mut self, spec: &ProfileSpec) -> Result<(), String> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_vec(spec)
            .expect("a profile spec always serialises")
            .hash(&mut h);
        let key = h.finish();
        if let Some(r) = self.validated.get(&key) {
            return r.clone();
        }
        let r = validate_spec(spec, Some(&Libseccomp)).map_err(|errs| {
            seccomp_profile::limits::summarize(errs.iter().map(ToString::to_string))
        });
        if self.validated.len() > 10_000 {
            self.validated.clear();
        }
        self.validated.insert(key, r.clone());
        r
    }

    fn check(&mut self, hash: &str, doc: &seccomp_profile::SeccompDocument) -> Result<(), String> {
        if let Some(r) = self.results.get(hash) {
            return r.clone();
        }
        let r = seccomp::compile(doc).map(|_| ()).map_err(|e| e.to_string());
        if self.results.len() > 10_000 {
            self.results.clear();
        }
        self.results.insert(hash.to_owned(), r.clone());
        r
    }
}

/// The desired state of every enabled profile. Disabled profiles are absent (their files are
/// removed); profiles whose names cannot be paths are reported as errors.
/// Profiles found invalid before (namespace, name → why), kept without their rules.
pub type Refused = HashMap<(String, String), String>;

/// Profiles the cluster's `policy` forbids (after base resolution, so a base cannot smuggle
/// in a listener) are errors too, and never installed; so are `refused` profiles and every
/// profile whose base chain reaches one.
pub fn compute(
    profiles: &[(String, String, ProfileSpec)],
    cache: &mut CompileCache,
    policy: &Policy,
    refused: &Refused,
) -> BTreeMap<ProfileKey, Desired> {
    let mut by_ns: BTreeMap<&str, BTreeMap<String, ProfileSpec>> = BTreeMap::new();
    for (ns, name, spec) in profiles {
        by_ns
            .entry(ns.as_str())
            .or_default()
            .insert(name.clone(), spec.clone());
    }
    let native = Arch::native();
    let mut out = BTreeMap::new();
    for (ns, name, spec) in profiles {
        if spec.disabled {
            continue;
        }
        let key = match ProfileKey::new(ns, name) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(namespace = %ns, name = %name, error = %e, "profile skipped");
                continue;
            }
        };
        let desired = (|| {
            let lookup = &by_ns[ns.as_str()];
            if let Some(why) = refused.get(&(ns.clone(), name.clone())) {
                return Err(why.clone());
            }
            for base in seccomp_profile::base_chain(name, spec, lookup) {
                if let Some(why) = refused.get(&(ns.clone(), base.clone())) {
                    return Err(seccomp_profile::limits::truncate(
                        &format!("spec.baseProfileName: base profile `{base}` is invalid: {why}"),
                        seccomp_profile::limits::MAX_MESSAGE_BYTES,
                    ));
                }
            }
            cache.validate(spec)?;
            let doc = resolve(name, spec, lookup).map_err(|e| e.to_string())?;
            let refused = policy.check(&doc, "spec.");
            if !refused.is_empty() {
                return Err(seccomp_profile::limits::summarize(
                    refused.iter().map(ToString::to_string),
                ));
            }
            let rendered = policy.installed(spec.report_denials, doc).render(native);
            cache.check(&rendered.hash, &rendered.document)?;
            Ok(Desired::Install {
                hash: rendered.hash,
                json: Arc::new(rendered.json),
            })
        })();
        out.insert(key, desired.unwrap_or_else(Desired::Error));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccomp_profile::{parse_profile, EvalContext};

    fn spec(json: &str) -> ProfileSpec {
        parse_profile(json, &EvalContext::host()).unwrap().spec
    }

    fn p(ns: &str, name: &str, json: &str) -> (String, String, ProfileSpec) {
        (ns.into(), name.into(), spec(json))
    }

    #[test]
    fn computes_installs_errors_and_skips_disabled() {
        let set = vec![
            p(
                "a",
                "base",
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
            ),
            p(
                "a",
                "app",
                r#"{"defaultAction":"SCMP_ACT_ERRNO","baseProfileName":"base","syscalls":[{"names":["write"],"action":"SCMP_ACT_ALLOW"}]}"#,
            ),
            p(
                "b",
                "app",
                r#"{"defaultAction":"SCMP_ACT_ERRNO","baseProfileName":"base"}"#,
            ),
            p(
                "a",
                "off",
                r#"{"defaultAction":"SCMP_ACT_ERRNO","disabled":true}"#,
            ),
            p(
                "a",
                "typo",
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["raed"],"action":"SCMP_ACT_ALLOW"}]}"#,
            ),
        ];
        let d = compute(
            &set,
            &mut CompileCache::default(),
            &Policy::default(),
            &Refused::new(),
        );
        let k = |ns: &str, n: &str| ProfileKey::new(ns, n).unwrap();
        let Desired::Install { json, .. } = &d[&k("a", "app")] else {
            panic!("{d:?}")
        };
        let text = String::from_utf8(json.to_vec()).unwrap();
        assert!(text.contains("\"read\"") && text.contains("\"write\""));
        assert!(
            matches!(&d[&k("b", "app")], Desired::Error(m) if m.contains("`base` (wanted by `app`) does not exist")),
            "bases never cross namespaces"
        );
        assert!(!d.contains_key(&k("a", "off")));
        assert!(
            matches!(&d[&k("a", "typo")], Desired::Error(m) if m.contains("`raed` is not a syscall"))
        );
    }

    #[test]
    fn a_base_change_changes_dependents() {
        let mut set = vec![
            p(
                "a",
                "base",
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
            ),
            p(
                "a",
                "app",
                r#"{"defaultAction":"SCMP_ACT_ERRNO","baseProfileName":"base"}"#,
            ),
        ];
        let mut cache = CompileCache::default();
        let k = ProfileKey::new("a", "app").unwrap();
        let before = compute(&set, &mut cache, &Policy::default(), &Refused::new())[&k].clone();
        set[0] = p(
            "a",
            "base",
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","close"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        let after = compute(&set, &mut cache, &Policy::default(), &Refused::new())[&k].clone();
        assert_ne!(before, after);
    }

    #[test]
    fn what_the_policy_forbids_is_an_error_even_through_a_base() {
        let set = vec![
            p(
                "a",
                "listener",
                r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/containerd/containerd.sock","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
            ),
            p(
                "a",
                "child",
                r#"{"defaultAction":"SCMP_ACT_ALLOW","baseProfileName":"listener"}"#,
            ),
        ];
        let k = |n: &str| ProfileKey::new("a", n).unwrap();
        let d = compute(
            &set,
            &mut CompileCache::default(),
            &Policy::default(),
            &Refused::new(),
        );
        for name in ["listener", "child"] {
            assert!(
                matches!(&d[&k(name)], Desired::Error(m) if m.contains("spec.listenerPath: not allowed by this cluster's profile policy")),
                "{name}: {:?}",
                d[&k(name)]
            );
        }
        let open = Policy {
            allow_listener: true,
            ..Policy::default()
        };
        let d = compute(&set, &mut CompileCache::default(), &open, &Refused::new());
        assert!(matches!(&d[&k("child")], Desired::Install { .. }), "{d:?}");
    }

    #[test]
    fn refused_profiles_and_their_dependents_are_errors() {
        let set = vec![
            p("a", "base", r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#),
            p(
                "a",
                "child",
                r#"{"defaultAction":"SCMP_ACT_ERRNO","baseProfileName":"base"}"#,
            ),
            p("b", "base", r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#),
        ];
        let refused = Refused::from([(
            ("a".to_string(), "base".to_string()),
            "spec.syscalls[0].names[0]: bad".to_string(),
        )]);
        let d = compute(
            &set,
            &mut CompileCache::default(),
            &Policy::default(),
            &refused,
        );
        let k = |ns: &str, n: &str| ProfileKey::new(ns, n).unwrap();
        assert_eq!(
            d[&k("a", "base")],
            Desired::Error("spec.syscalls[0].names[0]: bad".into())
        );
        assert!(
            matches!(&d[&k("a", "child")], Desired::Error(m) if m == "spec.baseProfileName: base profile `base` is invalid: spec.syscalls[0].names[0]: bad"),
            "{:?}",
            d[&k("a", "child")]
        );
        assert!(
            matches!(&d[&k("b", "base")], Desired::Install { .. }),
            "other namespaces are not affected"
        );
    }
}
