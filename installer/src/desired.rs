//! From the cluster's SeccompProfiles to the set of files this node must have. Pure: no I/O,
//! no API server; the controller feeds it a snapshot.

// A profile's status shows the message alone, and libseccomp's reason is the source of the
// filter's error: the whole chain goes in.
use crate::compact::PackedSpec;
use crate::hash::ContentHash;
use crate::paths::ProfileKey;
use seccomp_filter::{self as seccomp, Libseccomp};
use seccomp_profile::error::chain as error_chain;
use seccomp_profile::{resolve, validate_spec, Arch, Policy, ProfileSpec};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What one profile should be on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Desired {
    /// A file with exactly these bytes.
    Install {
        /// The hash of `json`.
        hash: ContentHash,
        /// The rendered document.
        json: Arc<Vec<u8>>,
    },
    /// The file on disk already has exactly the content this version renders to (known from
    /// an earlier sync of the same version: nothing is rendered again). Never written.
    Present {
        /// The hash of the file.
        hash: ContentHash,
    },
    /// The profile cannot be installed: why. Whatever file is on disk stays as it is, so pods
    /// that could start before keep starting while the error is fixed.
    Error(String),
}

impl Desired {
    /// What this is once its file is written: the rendered bytes are let go.
    pub fn settled(self) -> Self {
        match self {
            Desired::Install { hash, .. } => Desired::Present { hash },
            other => other,
        }
    }
}

/// One profile of a snapshot.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its spec.
    pub spec: SpecRef<'a>,
    /// What identifies this version of the spec (the object's uid and generation), when
    /// known: a profile whose version and whose bases' versions are those of an earlier sync
    /// is not rendered again.
    pub version: Option<(&'a str, i64)>,
}

/// A spec as a snapshot holds it: parsed, or packed as the agent keeps it (parsed again only
/// when it is rendered).
#[derive(Clone, Copy, Debug)]
pub enum SpecRef<'a> {
    /// Parsed.
    Parsed(&'a ProfileSpec),
    /// Packed ([`PackedSpec`]).
    Packed(&'a PackedSpec),
}

impl<'a> From<&'a ProfileSpec> for SpecRef<'a> {
    fn from(spec: &'a ProfileSpec) -> Self {
        SpecRef::Parsed(spec)
    }
}

impl<'a> SpecRef<'a> {
    fn disabled(&self) -> bool {
        match self {
            SpecRef::Parsed(s) => s.disabled,
            SpecRef::Packed(p) => p.disabled(),
        }
    }

    fn has_base(&self) -> bool {
        match self {
            SpecRef::Parsed(s) => s.base_profile_name.is_some(),
            SpecRef::Packed(p) => p.has_base(),
        }
    }

    fn get(&self) -> Cow<'a, ProfileSpec> {
        match *self {
            SpecRef::Parsed(s) => Cow::Borrowed(s),
            SpecRef::Packed(p) => Cow::Owned(p.unpack()),
        }
    }
}

/// The versions a profile's result was computed from: its own and each base's, in chain
/// order (a base that does not exist counts as a version too). Boxed: kept per profile, and
/// never grown.
type Versions = Box<[Option<(Box<str>, i64)>]>;

/// Remembers which specs passed validation and which rendered documents libseccomp accepted,
/// so each distinct spec is validated and each distinct document compiled once, however often
/// the set is recomputed; and what each profile version rendered to (its hash, or why it
/// failed), so an unchanged profile costs a lookup per sync, not a rendering.
#[derive(Default, Debug)]
pub struct CompileCache {
    results: HashMap<ContentHash, Result<(), String>>,
    validated: HashMap<u64, Result<(), String>>,
    rendered: HashMap<ProfileKey, (Versions, Result<ContentHash, String>)>,
    /// Specs validated here (not found in `validated`), for tests.
    validations: usize,
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
        self.validations += 1;
        let r = validate_spec(spec, Some(&Libseccomp)).map_err(|errs| {
            seccomp_profile::limits::summarize(errs.iter().map(ToString::to_string))
        });
        if self.validated.len() > 10_000 {
            self.validated.clear();
        }
        self.validated.insert(key, r.clone());
        r
    }

    fn check(
        &mut self,
        hash: ContentHash,
        doc: &seccomp_profile::SeccompDocument,
    ) -> Result<(), String> {
        if let Some(r) = self.results.get(&hash) {
            return r.clone();
        }
        let r = seccomp::compile(doc)
            .map(|_| ())
            .map_err(|e| error_chain(&e));
        if self.results.len() > 10_000 {
            self.results.clear();
        }
        self.results.insert(hash, r.clone());
        r
    }
}

/// The desired state of every enabled profile. Disabled profiles are absent (their files are
/// removed); profiles whose names cannot be paths are reported as errors.
/// Profiles found invalid before (namespace, name → why), kept without their rules.
pub type Refused = HashMap<(String, String), String>;

/// [`compute_inputs`] for profiles without versions (every one is rendered).
pub fn compute(
    profiles: &[(String, String, ProfileSpec)],
    cache: &mut CompileCache,
    policy: &Policy,
    refused: &Refused,
) -> BTreeMap<ProfileKey, Desired> {
    compute_inputs(
        &unversioned(profiles),
        cache,
        policy,
        refused,
        &BTreeMap::new(),
    )
}

/// Profiles without versions, as inputs (every one is rendered at every sync).
pub fn unversioned(profiles: &[(String, String, ProfileSpec)]) -> Vec<Input<'_>> {
    profiles
        .iter()
        .map(|(namespace, name, spec)| Input {
            namespace,
            name,
            spec: spec.into(),
            version: None,
        })
        .collect()
}

/// The profiles of one namespace by name, without copies.
struct Namespace<'a>(BTreeMap<&'a str, &'a Input<'a>>);

impl seccomp_profile::ProfileLookup for Namespace<'_> {
    fn lookup(&self, name: &str) -> Option<ProfileSpec> {
        self.0.get(name).map(|i| i.spec.get().into_owned())
    }
}

/// A complete set of profiles, indexed for base lookups: its parts can be computed (and
/// their files written) one after another, so that the rendered documents of a large set
/// are never all in memory at once.
pub struct Snapshot<'a> {
    by_ns: BTreeMap<&'a str, Namespace<'a>>,
}

impl<'a> Snapshot<'a> {
    /// Index `profiles`.
    pub fn new(profiles: &'a [Input<'a>]) -> Self {
        let mut by_ns: BTreeMap<&str, Namespace> = BTreeMap::new();
        for i in profiles {
            by_ns
                .entry(i.namespace)
                .or_insert_with(|| Namespace(BTreeMap::new()))
                .0
                .insert(i.name, i);
        }
        Snapshot { by_ns }
    }
}

impl CompileCache {
    /// How many profile versions' results are remembered.
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        self.rendered.len()
    }

    /// Forget what profiles no longer in the set rendered to: `keep` says which stay.
    pub fn keep_only(&mut self, keep: impl Fn(&ProfileKey) -> bool) {
        self.rendered.retain(|k, _| keep(k));
    }
}

/// Profiles the cluster's `policy` forbids (after base resolution, so a base cannot smuggle
/// in a listener) are errors too, and never installed; so are `refused` profiles and every
/// profile whose base chain reaches one. A versioned profile whose versions (its own and its
/// bases') rendered before to the hash of its file on disk (`on_disk`) is
/// [`Desired::Present`], and costs no rendering.
pub fn compute_inputs(
    profiles: &[Input],
    cache: &mut CompileCache,
    policy: &Policy,
    refused: &Refused,
    on_disk: &BTreeMap<ProfileKey, ContentHash>,
) -> BTreeMap<ProfileKey, Desired> {
    let snapshot = Snapshot::new(profiles);
    let out = compute_part(&snapshot, profiles, cache, policy, refused, on_disk);
    cache.keep_only(|k| out.contains_key(k));
    out
}

/// [`compute_inputs`] for `part` of `snapshot`'s profiles (bases are looked up in all of
/// them). The caller calls [`CompileCache::keep_only`] once every part is done.
pub fn compute_part(
    snapshot: &Snapshot,
    part: &[Input],
    cache: &mut CompileCache,
    policy: &Policy,
    refused: &Refused,
    on_disk: &BTreeMap<ProfileKey, ContentHash>,
) -> BTreeMap<ProfileKey, Desired> {
    let native = Arch::native();
    let mut out = BTreeMap::new();
    for input in part {
        let (ns, name) = (input.namespace, input.name);
        if input.spec.disabled() {
            continue;
        }
        let key = match ProfileKey::new(ns, name) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(namespace = %ns, name = %name, error = %e, "profile skipped");
                continue;
            }
        };
        // The key held already (for the file on disk, or for what it rendered to): every map
        // of the installer then shares one copy of its strings.
        let key = on_disk
            .get_key_value(&key)
            .map(|(k, _)| k)
            .or_else(|| cache.rendered.get_key_value(&key).map(|(k, _)| k))
            .map_or(key, Clone::clone);
        let Some(lookup) = snapshot.by_ns.get(ns) else {
            tracing::warn!(namespace = %ns, name = %name, "profile not in the snapshot; skipped");
            continue;
        };
        let chain = if input.spec.has_base() {
            seccomp_profile::base_chain(name, &input.spec.get(), lookup)
        } else {
            Vec::new()
        };
        // The versions this result depends on, borrowed: nothing is allocated for a profile
        // that is unchanged.
        let versions: Option<Vec<Option<(&str, i64)>>> = input.version.map(|own| {
            std::iter::once(Some(own))
                .chain(
                    chain
                        .iter()
                        .map(|b| lookup.0.get(b.as_str()).and_then(|i| i.version)),
                )
                .collect()
        });
        let same = |was: &Versions, now: &[Option<(&str, i64)>]| {
            was.len() == now.len()
                && was
                    .iter()
                    .zip(now)
                    .all(|(a, b)| a.as_ref().map(|(u, g)| (&**u, *g)) == *b)
        };
        match (&versions, cache.rendered.get(&key)) {
            (Some(v), Some((was, result))) if same(was, v) => {
                let reuse = match result {
                    Ok(hash) if on_disk.get(&key) == Some(hash) => {
                        Some(Desired::Present { hash: *hash })
                    }
                    Ok(_) => None,
                    Err(why) => Some(Desired::Error(why.clone())),
                };
                if let Some(d) = reuse {
                    out.insert(key, d);
                    continue;
                }
            }
            // Without versions nothing is remembered.
            (None, Some(_)) => {
                cache.rendered.remove(&key);
            }
            _ => {}
        }
        let desired = (|| {
            if !refused.is_empty() {
                if let Some(why) = refused.get(&(ns.to_owned(), name.to_owned())) {
                    return Err(why.clone());
                }
                for base in &chain {
                    if let Some(why) = refused.get(&(ns.to_owned(), base.clone())) {
                        return Err(seccomp_profile::limits::truncate(
                            &format!(
                                "spec.baseProfileName: base profile `{base}` is invalid: {why}"
                            ),
                            seccomp_profile::limits::MAX_MESSAGE_BYTES,
                        ));
                    }
                }
            }
            let spec = input.spec.get();
            // A packed spec was validated when it was compacted (an invalid one is in
            // `refused`); only a parsed one is validated here.
            if let SpecRef::Parsed(parsed) = input.spec {
                cache.validate(parsed)?;
            }
            let doc = resolve(name, &spec, lookup).map_err(|e| e.to_string())?;
            let refused = policy.check(&doc, "spec.");
            if !refused.is_empty() {
                return Err(seccomp_profile::limits::summarize(
                    refused.iter().map(ToString::to_string),
                ));
            }
            let rendered = policy.for_node(&spec, doc).render(native);
            let hash = ContentHash::from_text(&rendered.hash)
                .expect("a rendered document's hash is a content hash");
            cache.check(hash, &rendered.document)?;
            Ok((hash, rendered.json))
        })();
        if let Some(v) = versions {
            let v: Versions = v
                .into_iter()
                .map(|o| o.map(|(u, g)| (u.into(), g)))
                .collect();
            let result = desired
                .as_ref()
                .map(|(hash, _)| *hash)
                .map_err(Clone::clone);
            cache.rendered.insert(key.clone(), (v, result));
        }
        let desired = match desired {
            Ok((hash, json)) => Desired::Install {
                hash,
                json: Arc::new(json),
            },
            Err(why) => Desired::Error(why),
        };
        out.insert(key, desired);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_error_names_its_cause() {
        let e = seccomp::CompileError::Export(std::io::Error::other("no space left"));
        assert_eq!(error_chain(&e), "exporting the filter: no space left");
    }
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
    fn an_unchanged_version_is_not_rendered_again_unless_its_file_differs() {
        let base = spec(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        let app = spec(r#"{"defaultAction":"SCMP_ACT_ERRNO","baseProfileName":"base"}"#);
        let bad = spec(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["raed"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        let input = |name, spec, generation| Input {
            namespace: "a",
            name,
            spec: SpecRef::Parsed(spec),
            version: Some(("uid", generation)),
        };
        let set = vec![
            input("base", &base, 1),
            input("app", &app, 1),
            input("bad", &bad, 1),
        ];
        let mut cache = CompileCache::default();
        let policy = Policy::default();
        let none = Refused::new();
        let k = |n: &str| ProfileKey::new("a", n).unwrap();
        let first = compute_inputs(&set, &mut cache, &policy, &none, &BTreeMap::new());
        let hash = |d: &Desired| match d {
            Desired::Install { hash, .. } | Desired::Present { hash } => *hash,
            Desired::Error(e) => panic!("{e}"),
        };
        let disk: BTreeMap<_, _> = ["base", "app"]
            .iter()
            .map(|n| (k(n), hash(&first[&k(n)])))
            .collect();
        // Same versions, files in place: nothing rendered; the error is remembered.
        let again = compute_inputs(&set, &mut cache, &policy, &none, &disk);
        assert_eq!(
            again[&k("app")],
            Desired::Present {
                hash: disk[&k("app")]
            }
        );
        assert_eq!(again[&k("bad")], first[&k("bad")]);
        // The keys held already are used again: one copy of each profile's strings.
        let held = |d: &BTreeMap<ProfileKey, Desired>, n: &str| {
            d.get_key_value(&k(n)).unwrap().0.name.clone()
        };
        let on_disk = disk.get_key_value(&k("app")).unwrap().0;
        assert!(Arc::ptr_eq(&held(&again, "app"), &on_disk.name));
        assert!(Arc::ptr_eq(&held(&again, "bad"), &held(&first, "bad")));
        // A file changed on disk: rendered again, to be written.
        let mut drifted = disk.clone();
        drifted.insert(k("app"), ContentHash::of(b"other"));
        let d = compute_inputs(&set, &mut cache, &policy, &none, &drifted);
        assert!(matches!(&d[&k("app")], Desired::Install { hash, .. } if *hash == disk[&k("app")]));
        // A base's new generation renders its dependents again.
        let base2 = spec(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","close"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        let set2 = vec![
            input("base", &base2, 2),
            input("app", &app, 1),
            input("bad", &bad, 1),
        ];
        let d = compute_inputs(&set2, &mut cache, &policy, &none, &disk);
        assert!(matches!(&d[&k("app")], Desired::Install { hash, .. } if *hash != disk[&k("app")]));
        assert!(matches!(&d[&k("base")], Desired::Install { .. }));
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
    fn a_packed_spec_is_not_validated_again() {
        let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#;
        let meta = kube::api::ObjectMeta {
            name: Some("p".into()),
            namespace: Some("a".into()),
            ..Default::default()
        };
        let stored = crate::compact::compact(meta, spec(json));
        let packed = [Input {
            namespace: "a",
            name: "p",
            spec: SpecRef::Packed(&stored.spec),
            version: None,
        }];
        let mut cache = CompileCache::default();
        let none = Refused::new();
        let out = compute_inputs(
            &packed,
            &mut cache,
            &Policy::default(),
            &none,
            &BTreeMap::new(),
        );
        assert!(
            matches!(out.values().next(), Some(Desired::Install { .. })),
            "{out:?}"
        );
        assert_eq!(cache.validations, 0, "compaction validated it");
        let parsed = [p("a", "p", json)];
        compute(&parsed, &mut cache, &Policy::default(), &none);
        assert_eq!(cache.validations, 1, "a parsed spec is validated");
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
