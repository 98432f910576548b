//! What the agent keeps of each SeccompProfile: its cost must follow what the profile means,
//! not how it is spelled, and stay small (the agent holds every profile of the cluster).
//! Each object is compacted as it is deserialised from the watch, into a [`StoredProfile`]:
//!
//! - of the metadata, only the name, namespace, uid, resourceVersion and generation are
//!   kept: `managedFields`, annotations (kubectl's `last-applied-configuration` is a second
//!   copy of the whole object), labels and the status (the operator's) are never stored;
//! - a valid profile keeps each rule's names sorted and unique (a rule's duplicate names mean
//!   nothing; the canonical rendering removes them anyway), and the spec is kept as its JSON
//!   ([`PackedSpec`]): one allocation, where the parsed spec has one per syscall name. It is
//!   parsed again only to be rendered, which happens when its version changes;
//! - an invalid profile is validated once, here, and kept without its rules, with the
//!   (bounded) reason; it is reported as an error and never installed, and neither is any
//!   profile built on it;
//! - a profile built on a registry artifact (`baseProfileName: oci://…`) is kept with that
//!   base folded in, from the copy the operator fetched and validated into
//!   `status.resolvedBase` (the status is read for this alone and let go): it costs what the
//!   same rules written inline would, and the node never contacts a registry. Until the
//!   operator has fetched the reference the spec names, it is kept as invalid ("waiting"), so
//!   whatever file is on disk stays as it is.

use crds::{ResolvedBase, SeccompProfile, SeccompProfileSpec};
use kube::core::ObjectMeta;
use seccomp_filter::Libseccomp;
use seccomp_profile::ProfileSpec;
use std::borrow::Cow;
use std::collections::HashMap;

/// A valid profile's spec kept as its JSON, with what every sync reads of it parsed out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedSpec {
    disabled: bool,
    has_base: bool,
    json: Box<[u8]>,
}

impl PackedSpec {
    /// Pack `spec`, which [`compact`] has validated (a packed spec is trusted to be valid:
    /// the installer does not validate it again).
    pub(crate) fn pack(spec: &ProfileSpec) -> Self {
        PackedSpec {
            disabled: spec.disabled,
            has_base: spec.base_profile_name.is_some(),
            json: serde_json::to_vec(spec)
                .expect("a profile spec always serialises")
                .into_boxed_slice(),
        }
    }

    /// The spec again.
    pub fn unpack(&self) -> ProfileSpec {
        serde_json::from_slice(&self.json).expect("a packed spec is one this process wrote")
    }

    /// `spec.disabled`.
    pub fn disabled(&self) -> bool {
        self.disabled
    }

    /// Whether it names a base profile.
    pub fn has_base(&self) -> bool {
        self.has_base
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.json.len()
    }

    /// Never: a spec's JSON is at least `{}`.
    pub fn is_empty(&self) -> bool {
        self.json.is_empty()
    }
}

/// A SeccompProfile as the agent keeps it (see the module documentation). Deserialised from
/// the API server's objects: a watch of `Api<StoredProfile>` compacts as it reads.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(from = "Wire")]
pub struct StoredProfile {
    /// Name, namespace, uid, resourceVersion and generation; nothing else.
    pub metadata: ObjectMeta,
    /// The spec (without its rules when invalid).
    pub spec: PackedSpec,
    /// Why the profile is invalid (bounded), when it is.
    pub invalid: Option<String>,
    /// The digest of the registry artifact folded in as its base, when one is.
    pub base_digest: Option<String>,
}

/// The part of a SeccompProfile that is read.
#[derive(serde::Deserialize)]
struct Wire {
    metadata: ObjectMeta,
    spec: SeccompProfileSpec,
    #[serde(default)]
    status: Option<WireStatus>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireStatus {
    #[serde(default)]
    resolved_base: Option<ResolvedBase>,
}

impl From<Wire> for StoredProfile {
    fn from(w: Wire) -> Self {
        let resolved = w.status.and_then(|s| s.resolved_base);
        compact_with_base(w.metadata, w.spec.profile, resolved)
    }
}

/// Compact a profile (see the module documentation).
pub fn compact(metadata: ObjectMeta, spec: ProfileSpec) -> StoredProfile {
    compact_with_base(metadata, spec, None)
}

/// Compact a profile, folding in `resolved` when it is the registry base the spec names.
pub fn compact_with_base(
    metadata: ObjectMeta,
    mut spec: ProfileSpec,
    resolved: Option<ResolvedBase>,
) -> StoredProfile {
    let metadata = ObjectMeta {
        name: metadata.name,
        namespace: metadata.namespace,
        uid: metadata.uid,
        resource_version: metadata.resource_version,
        generation: metadata.generation,
        ..Default::default()
    };
    let (base_digest, invalid) = match validate_and_fold(&mut spec, resolved.as_ref()) {
        Ok(digest) => (digest, None),
        Err(why) => (None, Some(why)),
    };
    match &invalid {
        None => {
            for rule in &mut spec.document.syscalls {
                rule.names.sort_unstable();
                rule.names.dedup();
            }
        }
        Some(_) => spec.document.syscalls = Vec::new(),
    }
    let invalid = invalid.map(|why| {
        seccomp_profile::limits::truncate(&why, seccomp_profile::limits::MAX_MESSAGE_BYTES)
    });
    StoredProfile {
        metadata,
        spec: PackedSpec::pack(&spec),
        invalid,
        base_digest,
    }
}

/// Validated as the operator validates: the profile as written, then its registry base on its
/// own (as a named base is), then folded; the base's digest, or why the profile cannot be
/// installed. Limits hold for each, not for the sum.
fn validate_and_fold(
    spec: &mut ProfileSpec,
    resolved: Option<&ResolvedBase>,
) -> Result<Option<String>, String> {
    let summary = |errs: Vec<seccomp_profile::FieldError>| {
        seccomp_profile::limits::summarize(errs.iter().map(ToString::to_string))
    };
    seccomp_profile::validate_spec(spec, Some(&Libseccomp)).map_err(summary)?;
    if let Some(r) = resolved.filter(|r| spec.base_profile_name.as_deref() == Some(&*r.reference)) {
        let errors = seccomp_profile::validate_document(&r.profile, "", Some(&Libseccomp));
        if !errors.is_empty() {
            return Err(format!(
                "spec.baseProfileName: the registry base is invalid: {}",
                summary(errors)
            ));
        }
    }
    crds::fold_registry_base(spec, resolved)
}

impl kube::Resource for StoredProfile {
    type DynamicType = ();
    type Scope = <SeccompProfile as kube::Resource>::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        SeccompProfile::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        SeccompProfile::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        SeccompProfile::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        SeccompProfile::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The profiles compacted as invalid, by namespace and name, and why, of `profiles`
/// (namespace, name, and why when invalid): what [`crate::Installer::sync_inputs`] refuses.
pub fn refused<'a>(
    profiles: impl IntoIterator<Item = (&'a str, &'a str, Option<&'a str>)>,
) -> HashMap<(String, String), String> {
    profiles
        .into_iter()
        .filter_map(|(namespace, name, why)| {
            Some(((namespace.to_owned(), name.to_owned()), why?.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile as the API server sends it, with everything the agent does not keep.
    fn object(spec: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
            "metadata": {
                "name": "p", "namespace": "a", "uid": "u-1", "resourceVersion": "42",
                "generation": 3, "creationTimestamp": "2026-12-02T19:00:00Z",
                "labels": {"app": "x"},
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": "x".repeat(100_000)
                },
                "managedFields": [{"manager": "kubectl", "operation": "Update"}]
            },
            "spec": spec,
            "status": {"phase": "Installed", "conditions": [{"type": "Ready", "status": "True"}]}
        })
    }

    #[test]
    fn repeated_names_cost_nothing_and_copies_are_dropped() {
        let rule = serde_json::json!({"names": vec!["read"; 1024], "action": "SCMP_ACT_ALLOW"});
        let spec = serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            rule, rule, {"names": ["write", "read"], "action": "SCMP_ACT_ALLOW"}]});
        let mut plain = object(spec.clone());
        plain.as_object_mut().unwrap().remove("status");
        let original: SeccompProfile = serde_json::from_value(plain).unwrap();
        let p: StoredProfile = serde_json::from_value(object(spec)).unwrap();
        assert_eq!(
            p.metadata,
            ObjectMeta {
                name: Some("p".into()),
                namespace: Some("a".into()),
                uid: Some("u-1".into()),
                resource_version: Some("42".into()),
                generation: Some(3),
                ..Default::default()
            }
        );
        assert!(p.invalid.is_none());
        assert!(!p.spec.disabled() && !p.spec.has_base());
        assert!(p.spec.len() < 200, "{} bytes", p.spec.len());
        let spec = p.spec.unpack();
        let names: Vec<&Vec<String>> = spec.document.syscalls.iter().map(|r| &r.names).collect();
        assert_eq!(
            names,
            [
                &vec!["read".to_string()],
                &vec!["read".into()],
                &vec!["read".into(), "write".into()]
            ]
        );
        // The same file either way.
        let arch = seccomp_profile::Arch::X86_64;
        assert_eq!(
            original.spec.profile.document.render(arch).hash,
            spec.document.render(arch).hash
        );
        assert!(refused([("a", "p", p.invalid.as_deref())]).is_empty());
    }

    #[test]
    fn invalid_profiles_keep_only_the_bounded_reason() {
        let names: Vec<String> = (0..1000).map(|i| format!("no_such_call_{i}")).collect();
        let spec = serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "baseProfileName": "b",
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]});
        let p: StoredProfile = serde_json::from_value(object(spec.clone())).unwrap();
        assert!(p.spec.unpack().document.syscalls.is_empty());
        assert!(p.spec.has_base());
        let why = p.invalid.clone().unwrap();
        assert!(
            why.contains("no_such_call_0") && why.ends_with(" more"),
            "{why}"
        );
        assert!(why.len() <= seccomp_profile::limits::MAX_MESSAGE_BYTES);
        let r = refused([("a", "p", p.invalid.as_deref()), ("a", "q", None)]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[&("a".to_string(), "p".to_string())], why);
        // Deserialised again (a relist of the same object): the same verdict.
        let again: StoredProfile = serde_json::from_value(object(spec)).unwrap();
        assert_eq!(again.invalid, Some(why));
    }

    #[test]
    fn a_registry_base_is_folded_in_from_the_status_or_the_profile_waits() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let reference = format!("oci://r.example/base@{digest}");
        let spec = serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "baseProfileName": reference,
            "syscalls": [{"names": ["write"], "action": "SCMP_ACT_ALLOW"}]});
        let resolved = |r: &str| {
            serde_json::json!({"reference": r, "digest": digest, "generation": 3,
            "profile": {"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}})
        };

        let mut with = object(spec.clone());
        with["status"]["resolvedBase"] = resolved(&reference);
        let p: StoredProfile = serde_json::from_value(with).unwrap();
        assert!(p.invalid.is_none(), "{:?}", p.invalid);
        assert_eq!(p.base_digest.as_deref(), Some(digest.as_str()));
        let folded = p.spec.unpack();
        assert!(folded.base_profile_name.is_none() && !p.spec.has_base());
        let names: Vec<&str> = folded
            .document
            .syscalls
            .iter()
            .flat_map(|r| r.names.iter().map(String::as_str))
            .collect();
        assert_eq!(names, ["read", "write"]);
        // The child's own default action wins, as in any base chain.
        assert_eq!(
            folded.document.default_action,
            seccomp_profile::Action::Errno
        );

        // Not fetched yet, or fetched for another reference: waiting, nothing installed.
        let mut other = object(spec.clone());
        other["status"]["resolvedBase"] = resolved("oci://r.example/old:v1");
        for o in [object(spec), other] {
            let p: StoredProfile = serde_json::from_value(o).unwrap();
            let why = p.invalid.unwrap();
            assert!(
                why.starts_with("spec.baseProfileName: waiting for the operator to fetch"),
                "{why}"
            );
            assert!(p.spec.unpack().document.syscalls.is_empty());
            assert!(p.base_digest.is_none());
        }
    }

    #[test]
    fn real_profiles_come_back_from_their_packed_form_unchanged() {
        // unpack() trusts what pack() wrote: every real profile must survive the round trip.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            eprintln!("SKIP: ../shared/corpus not found beside the repository");
            return;
        };
        let mut seen = 0;
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let Ok(parsed) =
                seccomp_profile::parse_profile(&text, &seccomp_profile::EvalContext::host())
            else {
                continue;
            };
            assert_eq!(
                PackedSpec::pack(&parsed.spec).unpack(),
                parsed.spec,
                "{}",
                path.display()
            );
            seen += 1;
        }
        assert!(
            seen >= 3,
            "only {seen} profiles read from {}",
            dir.display()
        );
    }
}
