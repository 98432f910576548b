//! Reading profiles in every format users bring: this project's SeccompProfile resource, the
//! Security Profiles Operator's, plain OCI `linux.seccomp` JSON, Docker/moby profiles and
//! containers-common (podman, CRI-O) profiles. JSON or YAML.
//!
//! Docker-style profiles are conditional (`archMap`, `includes`, `excludes`): they are evaluated
//! for an [`EvalContext`] (architecture, capabilities, kernel version), which gives the document
//! a runtime on that machine would apply.

use super::document::{ArgCondition, SeccompDocument, SyscallRule};
use super::error::{FieldError, ProfileError};
use super::spec::ProfileSpec;
use super::types::{Action, Arch, Flag};
use serde::Deserialize;
use std::collections::BTreeSet;

/// The API group of this project's resources.
pub const GROUP: &str = "seccomp-operator.dev";
/// The API group of the Security Profiles Operator.
pub const SPO_GROUP: &str = "security-profiles-operator.x-k8s.io";

/// Where a profile came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceFormat {
    /// A `seccomp-operator.dev` SeccompProfile resource.
    OperatorResource,
    /// A Security Profiles Operator SeccompProfile resource.
    SpoResource,
    /// A plain OCI `linux.seccomp` document.
    Oci,
    /// A Docker/moby profile (`archMap`, `includes`/`excludes`, or the deprecated `name`).
    Docker,
    /// A containers-common profile (podman, CRI-O): Docker's format plus `defaultErrno` names.
    ContainersCommon,
}

impl std::fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SourceFormat::OperatorResource => "seccomp-operator SeccompProfile",
            SourceFormat::SpoResource => "Security Profiles Operator SeccompProfile",
            SourceFormat::Oci => "OCI linux.seccomp",
            SourceFormat::Docker => "Docker/moby",
            SourceFormat::ContainersCommon => "containers-common",
        })
    }
}

/// The conditions a Docker-style profile is evaluated for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalContext {
    /// The native architecture of the machine the profile runs on.
    pub arch: Arch,
    /// The container's capabilities (bounding set), e.g. `CAP_SYS_ADMIN`.
    pub caps: BTreeSet<String>,
    /// The kernel version as (major, minor); `None` counts every `minKernel` as met.
    pub kernel: Option<(u32, u32)>,
}

/// The capabilities containerd, CRI-O and Docker give a container by default.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

impl EvalContext {
    /// This machine: native architecture, the runtime's default capabilities, the running
    /// kernel's version.
    pub fn host() -> Self {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|s| parse_kernel_version(s.trim()));
        EvalContext {
            arch: Arch::native(),
            caps: DEFAULT_CAPS.iter().map(|s| s.to_string()).collect(),
            kernel,
        }
    }
}

/// `"6.18.44-foo"` → `(6, 18)`.
pub fn parse_kernel_version(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// A profile read from a file, with what was learned about it.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedProfile {
    /// The format it was written in.
    pub format: SourceFormat,
    /// `metadata.name`, for resources.
    pub name: Option<String>,
    /// `metadata.namespace`, for resources.
    pub namespace: Option<String>,
    /// The profile as this project's SeccompProfile spec.
    pub spec: ProfileSpec,
    /// Things worth telling the user that do not make the profile invalid (e.g. a Docker rule
    /// overriding an earlier one).
    pub warnings: Vec<String>,
    /// For each rule of `spec`, its index in the source (Docker conditions drop rules).
    origins: Vec<usize>,
}

impl ParsedProfile {
    /// Validate the profile, naming fields as they are in the source (`spec.` for resources).
    pub fn validate(
        &self,
        table: Option<&dyn super::validate::SyscallTable>,
    ) -> Result<(), ProfileError> {
        let prefix = match self.format {
            SourceFormat::OperatorResource | SourceFormat::SpoResource => "spec.",
            _ => "",
        };
        super::validate::validate_spec_at(&self.spec, prefix, table).map_err(|errors| {
            ProfileError::Invalid(
                errors
                    .into_iter()
                    .map(|e| self.source_field(e, prefix))
                    .collect(),
            )
        })
    }

    /// Whether the profile comes from another tool's format (Docker, containers-common, the
    /// Security Profiles Operator), whose default profiles list syscalls of many architectures
    /// and kernels.
    pub fn is_imported(&self) -> bool {
        matches!(
            self.format,
            SourceFormat::Docker | SourceFormat::ContainersCommon | SourceFormat::SpoResource
        )
    }

    /// Drop syscall names `table` knows on none of the profile's architectures, as runc and
    /// crun skip them when they load such a profile, with a warning per name. Meant for
    /// imported profiles ([`Self::is_imported`]); this project's own formats treat unknown
    /// names as errors (a typo must not silently allow nothing).
    pub fn drop_unknown_syscalls(&mut self, table: &dyn super::validate::SyscallTable) {
        let archs: Vec<Arch> = if self.spec.document.architectures.is_empty() {
            Arch::native().with_compat()
        } else {
            self.spec.document.architectures.clone()
        };
        let archs: Vec<Arch> = archs.into_iter().filter(|a| table.supports(*a)).collect();
        if archs.is_empty() {
            return;
        }
        let mut dropped = Vec::new();
        for rule in &mut self.spec.document.syscalls {
            rule.names.retain(|n| {
                let known = archs.iter().any(|a| table.knows(*a, n));
                if !known {
                    dropped.push(n.clone());
                }
                known
            });
        }
        let mut kept_origins = Vec::new();
        let mut i = 0;
        self.spec.document.syscalls.retain(|r| {
            let keep = !r.names.is_empty();
            if keep {
                kept_origins.push(self.origins.get(i).copied().unwrap_or(i));
            }
            i += 1;
            keep
        });
        self.origins = kept_origins;
        if !dropped.is_empty() {
            dropped.sort();
            dropped.dedup();
            self.warnings.push(format!(
                "not syscalls on {} according to {}, left out as a runtime would: {}",
                archs
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                table.describe(),
                dropped.join(", ")
            ));
        }
    }

    /// Rewrite `syscalls[i]` in an error's field to the rule's index in the source file.
    fn source_field(&self, mut e: FieldError, prefix: &str) -> FieldError {
        let head = format!("{prefix}syscalls[");
        if let Some(rest) = e.field.strip_prefix(&head) {
            if let Some((idx, tail)) = rest.split_once(']') {
                if let Some(&orig) = idx.parse::<usize>().ok().and_then(|i| self.origins.get(i)) {
                    e.field = format!("{head}{orig}]{tail}");
                }
            }
        }
        e
    }
}

/// Every field any supported format may carry; formats are told apart by which are present.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawProfile {
    default_action: Action,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    default_errno: Option<String>,
    #[serde(default)]
    architectures: Option<Vec<Arch>>,
    #[serde(default)]
    arch_map: Option<Vec<RawArchMap>>,
    #[serde(default)]
    flags: Option<Vec<Flag>>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    listener_metadata: Option<String>,
    #[serde(default)]
    syscalls: Option<Vec<RawRule>>,
    #[serde(default)]
    base_profile_name: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    report_denials: Option<bool>,
    #[serde(default)]
    mode: Option<crate::Mode>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawArchMap {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Option<Vec<Arch>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    names: Option<Vec<String>>,
    #[serde(default)]
    name: Option<String>,
    action: Action,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    errno: Option<String>,
    #[serde(default)]
    args: Option<Vec<ArgCondition>>,
    #[serde(default)]
    #[allow(dead_code)]
    comment: Option<String>,
    #[serde(default)]
    includes: Option<RawFilter>,
    #[serde(default)]
    excludes: Option<RawFilter>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawFilter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

impl RawFilter {
    fn is_empty(&self) -> bool {
        self.caps.as_ref().is_none_or(Vec::is_empty)
            && self.arches.as_ref().is_none_or(Vec::is_empty)
            && self.min_kernel.is_none()
    }
}

/// Parse a profile in any supported format (JSON or YAML text) and evaluate Docker-style
/// conditions for `ctx`. The result is not validated: call [`super::validate`] on it.
///
/// The text must hold one profile: several YAML documents, or a `List` of several items, are
/// refused with a message that counts and names them (split them with
/// [`super::documents::split_documents`] and parse each with [`parse_value`]).
pub fn parse_profile(text: &str, ctx: &EvalContext) -> Result<ParsedProfile, ProfileError> {
    let mut items = super::documents::split_documents(text)?;
    match items.len() {
        0 => Err(ProfileError::Syntax(
            "the input holds no document (it is empty, or only comments and `---`)".into(),
        )),
        1 => parse_value(items.remove(0).value, ctx),
        n => Err(ProfileError::Syntax(format!(
            "the input holds {n} objects where one profile is expected: {}",
            super::limits::summarize(items.iter().map(|i| i.label()))
        ))),
    }
}

/// Like [`parse_profile`], from an already decoded JSON value.
pub fn parse_value(
    value: serde_json::Value,
    ctx: &EvalContext,
) -> Result<ParsedProfile, ProfileError> {
    let serde_json::Value::Object(mut obj) = value else {
        return Err(ProfileError::Syntax(
            "a profile must be a JSON/YAML object".into(),
        ));
    };
    let mut prefix = "";
    let mut name = None;
    let mut namespace = None;
    let resource_format = if let Some(api_version) = obj.get("apiVersion") {
        let api_version = api_version.as_str().unwrap_or_default().to_owned();
        let group = api_version.split('/').next().unwrap_or_default();
        let format = match group {
            GROUP => SourceFormat::OperatorResource,
            SPO_GROUP => SourceFormat::SpoResource,
            _ => {
                return Err(FieldError::new(
                    "apiVersion",
                    format!("`{api_version}` is not {GROUP}/v1alpha1 or a {SPO_GROUP} version"),
                )
                .into())
            }
        };
        let kind = obj.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
        if kind != "SeccompProfile" {
            return Err(
                FieldError::new("kind", format!("expected SeccompProfile, got `{kind}`")).into(),
            );
        }
        if let Some(meta) = obj.get("metadata") {
            name = meta.get("name").and_then(|v| v.as_str()).map(str::to_owned);
            namespace = meta
                .get("namespace")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
        }
        prefix = "spec.";
        match obj.remove("spec") {
            Some(serde_json::Value::Object(spec)) => obj = spec,
            _ => return Err(FieldError::new("spec", "missing or not an object").into()),
        }
        Some(format)
    } else {
        None
    };

    let raw: RawProfile = serde_path_to_error::deserialize(serde_json::Value::Object(obj))
        .map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                prefix.trim_end_matches('.').to_owned()
            } else {
                format!("{prefix}{path}")
            };
            ProfileError::from(FieldError::new(
                if field.is_empty() { "(root)" } else { &field },
                e.inner().to_string(),
            ))
        })?;

    let format = resource_format.unwrap_or_else(|| detect_file_format(&raw));
    let (mut spec, mut origins) = lower(raw, prefix, ctx)?;
    let mut warnings = Vec::new();
    if matches!(
        format,
        SourceFormat::Docker | SourceFormat::ContainersCommon
    ) {
        warnings = later_rules_win(&mut spec.document, &mut origins, prefix);
        warnings.extend(clamp_errno(&mut spec.document, &origins, prefix));
    }
    Ok(ParsedProfile {
        format,
        name,
        namespace,
        spec,
        warnings,
        origins,
    })
}

fn detect_file_format(raw: &RawProfile) -> SourceFormat {
    let rules = raw.syscalls.as_deref().unwrap_or_default();
    if raw.default_errno.is_some() || rules.iter().any(|r| r.errno.is_some()) {
        SourceFormat::ContainersCommon
    } else if raw.arch_map.is_some()
        || rules.iter().any(|r| {
            r.name.is_some() || r.comment.is_some() || r.includes.is_some() || r.excludes.is_some()
        })
    {
        SourceFormat::Docker
    } else {
        SourceFormat::Oci
    }
}

/// The kernel caps SCMP_ACT_ERRNO values at 4095 whatever the filter says, and libseccomp
/// refuses 4095 and above; imported profiles get the largest value that works.
fn clamp_errno(doc: &mut SeccompDocument, origins: &[usize], prefix: &str) -> Vec<String> {
    use super::types::MAX_ERRNO;
    let mut warnings = Vec::new();
    if doc.default_action == Action::Errno {
        if let Some(r) = doc.default_errno_ret.filter(|r| *r > MAX_ERRNO) {
            warnings.push(format!("{prefix}defaultErrnoRet: {r} lowered to {MAX_ERRNO}, the largest errno libseccomp accepts"));
            doc.default_errno_ret = Some(MAX_ERRNO);
        }
    }
    for (i, rule) in doc.syscalls.iter_mut().enumerate() {
        if rule.action == Action::Errno {
            if let Some(r) = rule.errno_ret.filter(|r| *r > MAX_ERRNO) {
                warnings.push(format!(
                    "{prefix}syscalls[{}].errnoRet: {r} lowered to {MAX_ERRNO}, the largest errno libseccomp accepts",
                    origins[i]
                ));
                rule.errno_ret = Some(MAX_ERRNO);
            }
        }
    }
    warnings
}

/// Docker-style profiles list a broad allowlist first and conditional overrides after it (e.g.
/// containers-common allows `setns`, then denies it without CAP_SYS_ADMIN). Evaluated for one
/// context, a later rule that gives a syscall (with the same arguments) another action
/// overrides the earlier rule: the name is taken out of the earlier one, and a rule left with no
/// name goes (with its entry in `origins`). Returns one warning per override.
fn later_rules_win(
    doc: &mut SeccompDocument,
    origins: &mut Vec<usize>,
    prefix: &str,
) -> Vec<String> {
    use std::collections::BTreeMap;
    let mut warnings = Vec::new();
    let mut last: BTreeMap<(String, Vec<ArgCondition>), usize> = BTreeMap::new();
    for (i, rule) in doc.syscalls.iter().enumerate() {
        for name in &rule.names {
            last.insert((name.clone(), rule.args.clone()), i);
        }
    }
    let snapshot: Vec<(Action, Option<u32>)> = doc
        .syscalls
        .iter()
        .map(|r| {
            (
                r.action,
                super::document::effective_ret(r.action, r.errno_ret),
            )
        })
        .collect();
    let mut emptied = vec![false; doc.syscalls.len()];
    for (i, rule) in doc.syscalls.iter_mut().enumerate() {
        let args = rule.args.clone();
        let had_names = !rule.names.is_empty();
        rule.names.retain(|name| {
            let winner = last[&(name.clone(), args.clone())];
            if winner != i && snapshot[winner] != snapshot[i] {
                warnings.push(format!(
                    "{prefix}syscalls[{}]: `{name}` is overridden by syscalls[{}] ({})",
                    origins[i], origins[winner], snapshot[winner].0
                ));
                false
            } else {
                true
            }
        });
        emptied[i] = had_names && rule.names.is_empty();
    }
    // A rule that named nothing to begin with stays, for validation to name it.
    let mut keep = emptied.iter().map(|e| !e);
    doc.syscalls.retain(|_| keep.next().unwrap_or(true));
    let mut keep = emptied.iter().map(|e| !e);
    origins.retain(|_| keep.next().unwrap_or(true));
    warnings
}

/// Turn the superset into a spec: expand `archMap`, evaluate conditions, resolve errno names.
/// Also returns, per kept rule, its index in the source.
fn lower(
    raw: RawProfile,
    prefix: &str,
    ctx: &EvalContext,
) -> Result<(ProfileSpec, Vec<usize>), ProfileError> {
    let mut origins = Vec::new();
    let mut errors = Vec::new();

    let default_errno_ret = match (raw.default_errno_ret, raw.default_errno.as_deref()) {
        (ret, None) => ret,
        (ret, Some(name)) => match errno_from_name(name) {
            Some(n) if ret.is_none_or(|r| r == n) => Some(n),
            Some(n) => {
                errors.push(FieldError::new(
                    format!("{prefix}defaultErrno"),
                    format!(
                        "`{name}` is {n}, but defaultErrnoRet says {}",
                        ret.unwrap_or(0)
                    ),
                ));
                ret
            }
            None => {
                errors.push(FieldError::new(
                    format!("{prefix}defaultErrno"),
                    format!("`{name}` is not a Linux errno name"),
                ));
                ret
            }
        },
    };

    let mut architectures = raw.architectures.unwrap_or_default();
    if let Some(map) = raw.arch_map {
        // Docker semantics: the entry for the native architecture gives it and its compat
        // architectures; entries for other architectures do not apply here.
        if let Some(entry) = map.iter().find(|m| m.architecture == ctx.arch) {
            architectures.push(entry.architecture);
            architectures.extend(entry.sub_architectures.iter().flatten().copied());
        } else if architectures.is_empty() {
            architectures.push(ctx.arch);
        }
    }

    let mut syscalls = Vec::new();
    for (i, rule) in raw.syscalls.unwrap_or_default().into_iter().enumerate() {
        let field = format!("{prefix}syscalls[{i}]");
        if !applies(&rule, ctx) {
            continue;
        }
        let mut names = rule.names.unwrap_or_default();
        if let Some(single) = rule.name {
            if !names.is_empty() {
                errors.push(FieldError::new(
                    format!("{field}.name"),
                    "set together with `names`; use only `names`",
                ));
            }
            names.push(single);
        }
        let errno_ret = match (rule.errno_ret, rule.errno.as_deref()) {
            (ret, None) => ret,
            (ret, Some(name)) => match errno_from_name(name) {
                Some(n) if ret.is_none_or(|r| r == n) => Some(n),
                Some(n) => {
                    errors.push(FieldError::new(
                        format!("{field}.errno"),
                        format!("`{name}` is {n}, but errnoRet says {}", ret.unwrap_or(0)),
                    ));
                    ret
                }
                None => {
                    errors.push(FieldError::new(
                        format!("{field}.errno"),
                        format!("`{name}` is not a Linux errno name"),
                    ));
                    ret
                }
            },
        };
        origins.push(i);
        syscalls.push(SyscallRule {
            names,
            action: rule.action,
            errno_ret,
            args: rule.args.unwrap_or_default(),
        });
    }

    if !errors.is_empty() {
        return Err(ProfileError::Invalid(errors));
    }
    Ok((
        ProfileSpec {
            document: SeccompDocument {
                default_action: raw.default_action,
                default_errno_ret,
                architectures,
                flags: raw.flags.unwrap_or_default(),
                listener_path: raw.listener_path,
                listener_metadata: raw.listener_metadata,
                syscalls,
            },
            base_profile_name: raw.base_profile_name,
            disabled: raw.disabled.unwrap_or(false),
            report_denials: raw.report_denials,
            mode: raw.mode.unwrap_or_default(),
        },
        origins,
    ))
}

/// Docker's rule conditions: `includes` needs every listed capability, the architecture among
/// those listed and a kernel at least `minKernel`; `excludes` drops the rule when any listed
/// capability is held or the architecture is listed.
fn applies(rule: &RawRule, ctx: &EvalContext) -> bool {
    let arch = ctx.arch.docker_name();
    if let Some(inc) = rule.includes.as_ref().filter(|f| !f.is_empty()) {
        if let Some(caps) = &inc.caps {
            if !caps.iter().all(|c| ctx.caps.contains(c)) {
                return false;
            }
        }
        if let Some(arches) = inc.arches.as_ref().filter(|a| !a.is_empty()) {
            if !arches.iter().any(|a| a == arch) {
                return false;
            }
        }
        if let (Some(min), Some(kernel)) = (&inc.min_kernel, ctx.kernel) {
            if parse_kernel_version(min).is_some_and(|min| kernel < min) {
                return false;
            }
        }
    }
    if let Some(exc) = rule.excludes.as_ref() {
        if exc.caps.iter().flatten().any(|c| ctx.caps.contains(c)) {
            return false;
        }
        if exc.arches.iter().flatten().any(|a| a == arch) {
            return false;
        }
    }
    true
}

/// `"EPERM"` → 1. Names come from the C library's errno list (through nix).
pub fn errno_from_name(name: &str) -> Option<u32> {
    (1..4096)
        .find(|&n| {
            let e = nix::errno::Errno::from_raw(n);
            e != nix::errno::Errno::UnknownErrno && format!("{e:?}") == name
        })
        .and_then(|n| u32::try_from(n).ok())
}
