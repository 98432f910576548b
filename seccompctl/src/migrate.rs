//! Objects other than profiles that `convert` and `validate` read: ProfileBindings and
//! ProfileRecordings, this project's (checked, written back as they are) and the Security
//! Profiles Operator's (converted). Whatever of an SPO object has no equivalent here is named,
//! field by field, in a warning; what cannot be converted at all is an error naming the field.

use crds::{
    MergeStrategy, ProfileBinding, ProfileBindingSpec, ProfileRecording, ProfileRecordingSpec,
    Recorder,
};
use seccomp_profile::limits::{MAX_CONTAINER_NAMES, MAX_IMAGE_LEN, MAX_REF_LEN};
use seccomp_profile::parse::{GROUP, SPO_GROUP};
use seccomp_profile::{FieldError, Item, ProfileError};
use serde_json::{Map, Value};

/// The label a namespace needs for this project's bindings (and `Logs` recordings) to act.
pub const BINDING_LABEL: &str = "seccomp-operator.dev/binding=enabled";

/// A binding or a recording, in this project's API.
#[derive(Clone, Debug)]
pub enum Object {
    /// A ProfileBinding.
    Binding(ProfileBinding),
    /// A ProfileRecording.
    Recording(ProfileRecording),
}

impl Object {
    /// The object as YAML, without status.
    pub fn to_yaml(&self) -> anyhow::Result<String> {
        let mut v = match self {
            Object::Binding(b) => serde_json::to_value(b)?,
            Object::Recording(r) => serde_json::to_value(r)?,
        };
        if let Some(m) = v.as_object_mut() {
            m.remove("status");
        }
        Ok(serde_saphyr::to_string(&v)?)
    }

    /// `metadata.namespace`, set (`Some`) or left unset (`None`: kubectl's current namespace).
    pub fn set_namespace(&mut self, namespace: Option<&str>) {
        let meta = match self {
            Object::Binding(b) => &mut b.metadata,
            Object::Recording(r) => &mut r.metadata,
        };
        if let Some(ns) = namespace {
            meta.namespace = Some(ns.to_owned());
        }
    }
}

/// An object read, and what the user should know about it.
#[derive(Clone, Debug)]
pub struct Converted {
    /// The object in this project's API.
    pub object: Object,
    /// What it was: `seccomp-operator ProfileBinding`, `Security Profiles Operator
    /// ProfileRecording`, …
    pub format: String,
    /// What was dropped or changed, field by field.
    pub warnings: Vec<String>,
}

/// Read a ProfileBinding or ProfileRecording of this project (checked) or of SPO (converted).
/// `None` when `item` is of another kind.
pub fn convert_object(item: &Item) -> Option<Result<Converted, ProfileError>> {
    let kind = item.kind()?;
    if !matches!(kind, "ProfileBinding" | "ProfileRecording") {
        return None;
    }
    let api_version = item.api_version().unwrap_or_default();
    Some(match item.group() {
        Some(GROUP) if api_version == format!("{GROUP}/v1alpha1") => own(item, kind),
        Some(SPO_GROUP) => spo(item, kind),
        _ => Err(FieldError::new(
            "apiVersion",
            format!(
                "`{api_version}` is not {GROUP}/v1alpha1 or a {SPO_GROUP} version: seccompctl reads this project's and the Security Profiles Operator's {kind}s only"
            ),
        )
        .into()),
    })
}

/// One of this project's objects: deserialized as the operator would, and held to the limits
/// of the schema.
fn own(item: &Item, kind: &str) -> Result<Converted, ProfileError> {
    let mut value = item.value.clone();
    if let Some(m) = value.as_object_mut() {
        m.remove("status");
        // What the API server keeps for itself (uid, resourceVersion, managedFields, …) and
        // kubectl's record of the last apply go: the object is written to be applied anew.
        if let Some(Value::Object(meta)) = m.get_mut("metadata") {
            meta.retain(|k, _| {
                matches!(k.as_str(), "name" | "namespace" | "labels" | "annotations")
            });
            if let Some(Value::Object(a)) = meta.get_mut("annotations") {
                a.remove("kubectl.kubernetes.io/last-applied-configuration");
                if a.is_empty() {
                    meta.remove("annotations");
                }
            }
        }
    }
    let object = if kind == "ProfileBinding" {
        let b: ProfileBinding = seccomp_profile::from_value(value)?;
        check_binding(&b.spec)?;
        Object::Binding(b)
    } else {
        let r: ProfileRecording = seccomp_profile::from_value(value)?;
        check_recording(&r.spec)?;
        Object::Recording(r)
    };
    Ok(Converted {
        object,
        format: format!("seccomp-operator {kind}"),
        warnings: Vec::new(),
    })
}

fn check_binding(spec: &ProfileBindingSpec) -> Result<(), ProfileError> {
    let mut errors = Vec::new();
    if spec.image.is_empty() || spec.image.len() > MAX_IMAGE_LEN {
        errors.push(FieldError::new(
            "spec.image",
            format!("must be 1 to {MAX_IMAGE_LEN} characters (`*` for any image)"),
        ));
    }
    check_ref_name(&spec.profile_ref.name, "spec.profileRef.name", &mut errors);
    if let Some(names) = &spec.container_names {
        check_names(names, "spec.containerNames", &mut errors);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ProfileError::Invalid(errors))
    }
}

fn check_recording(spec: &ProfileRecordingSpec) -> Result<(), ProfileError> {
    let mut errors = Vec::new();
    if let Some(names) = &spec.containers {
        check_names(names, "spec.containers", &mut errors);
    }
    if let Some(d) = spec.duration_seconds {
        if d == 0 || d > crds::recording::MAX_RECORDING_SECONDS {
            errors.push(FieldError::new(
                "spec.durationSeconds",
                format!(
                    "{d} is not between 1 and {} (a week)",
                    crds::recording::MAX_RECORDING_SECONDS
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ProfileError::Invalid(errors))
    }
}

fn check_ref_name(name: &str, field: &str, errors: &mut Vec<FieldError>) {
    if name.is_empty() || name.len() > MAX_REF_LEN {
        errors.push(FieldError::new(
            field,
            format!("must be 1 to {MAX_REF_LEN} characters"),
        ));
    }
}

fn check_names(names: &[String], field: &str, errors: &mut Vec<FieldError>) {
    if names.len() > MAX_CONTAINER_NAMES {
        errors.push(FieldError::new(
            field,
            format!(
                "{} names, more than the {MAX_CONTAINER_NAMES} allowed",
                names.len()
            ),
        ));
    }
    for (i, n) in names.iter().enumerate() {
        check_ref_name(n, &format!("{field}[{i}]"), errors);
    }
}

/// The parts of an SPO object: metadata.name, metadata.namespace, spec.
struct Spo<'a> {
    name: String,
    namespace: Option<String>,
    spec: &'a Map<String, Value>,
    /// SPO's `v1` API (cluster-scoped profiles, capitalised enum values).
    v1: bool,
}

fn spo_parts<'a>(item: &'a Item, warnings: &mut Vec<String>) -> Result<Spo<'a>, ProfileError> {
    let v = &item.value;
    let meta = v.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| FieldError::new("metadata.name", "missing"))?
        .to_owned();
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    for key in ["labels", "annotations"] {
        if meta
            .and_then(|m| m.get(key))
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
        {
            warnings.push(format!(
                "metadata.{key}: not carried over (SPO's own are meaningless here; add yours back if you need them)"
            ));
        }
    }
    let spec = v
        .get("spec")
        .and_then(Value::as_object)
        .ok_or_else(|| FieldError::new("spec", "missing or not an object"))?;
    Ok(Spo {
        name,
        namespace,
        spec,
        v1: item.api_version() == Some(&format!("{SPO_GROUP}/v1")),
    })
}

fn spo(item: &Item, kind: &str) -> Result<Converted, ProfileError> {
    let mut warnings = Vec::new();
    let parts = spo_parts(item, &mut warnings)?;
    let object = if kind == "ProfileBinding" {
        spo_binding(&parts, &mut warnings)?
    } else {
        spo_recording(&parts, &mut warnings)?
    };
    let mut object = object;
    object.set_namespace(parts.namespace.as_deref());
    Ok(Converted {
        object,
        format: format!("Security Profiles Operator {kind}"),
        warnings,
    })
}

/// A string field of `spec`, required.
fn required_str<'a>(spec: &'a Map<String, Value>, field: &str) -> Result<&'a str, FieldError> {
    match spec.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) | None => Err(FieldError::new(format!("spec.{field}"), "missing")),
        Some(_) => Err(FieldError::new(format!("spec.{field}"), "not a string")),
    }
}

/// Warn about every field of `spec` outside `known`.
fn dropped(spec: &Map<String, Value>, known: &[&str], warnings: &mut Vec<String>) {
    for key in spec.keys().filter(|k| !known.contains(&k.as_str())) {
        warnings.push(format!(
            "spec.{key}: dropped: no equivalent in seccomp-operator"
        ));
    }
}

/// This project's spec from the fields mapped (JSON in this project's API), failures naming
/// the field under `spec.`.
fn spec_from<T>(
    fields: Value,
    parse: fn(Value) -> Result<T, FieldError>,
) -> Result<T, ProfileError> {
    parse(fields).map_err(|e| FieldError::new(format!("spec.{}", e.field), e.reason).into())
}

fn spo_binding(p: &Spo<'_>, warnings: &mut Vec<String>) -> Result<Object, ProfileError> {
    dropped(p.spec, &["profileRef", "image", "podSelector"], warnings);
    let r = p
        .spec
        .get("profileRef")
        .and_then(Value::as_object)
        .ok_or_else(|| FieldError::new("spec.profileRef", "missing or not an object"))?;
    let mut errors = Vec::new();
    match r.get("kind").and_then(Value::as_str) {
        Some("SeccompProfile") => {}
        Some(other) => errors.push(FieldError::new(
            "spec.profileRef.kind",
            format!(
                "`{other}` cannot be converted: seccomp-operator binds seccomp profiles only (keep SELinux and AppArmor bindings with the tool that installs those profiles)"
            ),
        )),
        None => errors.push(FieldError::new("spec.profileRef.kind", "missing")),
    }
    let profile = r
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    check_ref_name(&profile, "spec.profileRef.name", &mut errors);
    let image = match required_str(p.spec, "image") {
        Ok(i) => i.to_owned(),
        Err(e) => {
            errors.push(e);
            String::new()
        }
    };
    if !errors.is_empty() {
        return Err(ProfileError::Invalid(errors));
    }
    let mut fields = serde_json::json!({
        "profileRef": {"kind": "SeccompProfile", "name": profile},
        "image": image,
    });
    if let Some(sel) = p.spec.get("podSelector").filter(|v| !v.is_null()) {
        fields["podSelector"] = sel.clone();
    }
    let spec: ProfileBindingSpec = spec_from(fields, seccomp_profile::from_value)?;
    check_binding(&spec)?;
    if p.v1 {
        warnings.push(format!(
            "spec.profileRef.name: SPO v1 binds the cluster-wide SeccompProfile `{profile}`; here a binding uses the SeccompProfile `{profile}` of its own namespace: convert that profile with --namespace <this binding's namespace> and apply it there"
        ));
    }
    warnings.push(format!(
        "bindings act only in namespaces labelled {BINDING_LABEL} (SPO's opt-in label does nothing here), and leave containers that already set a seccomp profile, or whose pod does, alone"
    ));
    Ok(Object::Binding(ProfileBinding::new(&p.name, spec)))
}

fn spo_recording(p: &Spo<'_>, warnings: &mut Vec<String>) -> Result<Object, ProfileError> {
    dropped(
        p.spec,
        &[
            "kind",
            "recorder",
            "mergeStrategy",
            "podSelector",
            "containers",
            "disableProfileAfterRecording",
        ],
        warnings,
    );
    let mut errors = Vec::new();
    match required_str(p.spec, "kind") {
        Ok("SeccompProfile") => {}
        Ok(other) => errors.push(FieldError::new(
            "spec.kind",
            format!(
                "`{other}` cannot be converted: seccomp-operator records seccomp profiles only"
            ),
        )),
        Err(e) => errors.push(e),
    }
    let recorder = match required_str(p.spec, "recorder") {
        Ok(r) if r.eq_ignore_ascii_case("bpf") => Some(Recorder::Bpf),
        Ok(r) if r.eq_ignore_ascii_case("logs") => Some(Recorder::Logs),
        Ok(other) => {
            errors.push(FieldError::new(
                "spec.recorder",
                format!("`{other}` is not a recorder SPO or seccomp-operator knows (bpf, logs)"),
            ));
            None
        }
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let merge_strategy = match p.spec.get("mergeStrategy").and_then(Value::as_str) {
        Some(m) if m.eq_ignore_ascii_case("containers") => MergeStrategy::Containers,
        Some(m) if m.eq_ignore_ascii_case("none") => MergeStrategy::None,
        Some(other) => {
            errors.push(FieldError::new(
                "spec.mergeStrategy",
                format!("`{other}` is not none or containers"),
            ));
            MergeStrategy::None
        }
        None => {
            warnings.push(
                "spec.mergeStrategy: set to None, SPO's default (one profile per pod and container); seccomp-operator's default is Containers (one merged profile per container name)".to_owned(),
            );
            MergeStrategy::None
        }
    };
    if p.spec.get("podSelector").is_none_or(Value::is_null) {
        errors.push(FieldError::new(
            "spec.podSelector",
            "missing (SPO requires it too: `{}` selects every pod of the namespace)",
        ));
    }
    if p.spec
        .get("disableProfileAfterRecording")
        .and_then(Value::as_bool)
        == Some(true)
    {
        warnings.push(
            "spec.disableProfileAfterRecording: dropped: seccomp-operator keeps the per-pod partial profiles disabled and installs the merged (or, with mergeStrategy None, the per-pod) profiles; disable one with spec.disabled".to_owned(),
        );
    }
    let (Some(recorder), true) = (recorder, errors.is_empty()) else {
        return Err(ProfileError::Invalid(errors));
    };
    let mut fields = serde_json::json!({
        "kind": "SeccompProfile",
        "recorder": recorder,
        "podSelector": p.spec["podSelector"],
        "mergeStrategy": merge_strategy,
    });
    if let Some(c) = p.spec.get("containers").filter(|v| !v.is_null()) {
        fields["containers"] = c.clone();
    }
    let spec: ProfileRecordingSpec = spec_from(fields, seccomp_profile::from_value)?;
    if recorder == Recorder::Logs {
        warnings.push(format!(
            "spec.recorder: Logs here needs the namespace labelled {BINDING_LABEL}: the operator puts the selected containers under an SCMP_ACT_LOG profile `{}.log` and the node agents read the kernel's audit records (SPO's log enricher is not used)",
            p.name
        ));
    }
    warnings.push(format!(
        "spec.durationSeconds: SPO records until the recording is deleted; seccomp-operator stops after durationSeconds, {} s (one hour) when unset, at most {} s: set it if the workload runs longer",
        crds::recording::DEFAULT_RECORDING_SECONDS,
        crds::recording::MAX_RECORDING_SECONDS
    ));
    check_recording(&spec)?;
    Ok(Object::Recording(ProfileRecording::new(&p.name, spec)))
}
