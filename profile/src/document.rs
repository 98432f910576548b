//! The profile document: the OCI runtime-spec `linux.seccomp` section, and its canonical
//! rendering.

use super::types::{Action, Arch, Flag, Op, DEFAULT_ERRNO};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// A seccomp filter as the OCI runtime-spec `linux.seccomp` section describes it. This is the
/// exact JSON document the node agent writes for the kubelet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeccompDocument {
    /// Action for every syscall that no rule matches.
    pub default_action: Action,
    /// Return value for `defaultAction` SCMP_ACT_ERRNO or SCMP_ACT_TRACE (EPERM when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 65535))]
    pub default_errno_ret: Option<u32>,
    /// Architectures the filter accepts; empty means the node's native architecture and its
    /// compat architectures (e.g. SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::limits::MAX_ARCHITECTURES))]
    pub architectures: Vec<Arch>,
    /// Flags for the seccomp(2) call that installs the filter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::limits::MAX_FLAGS))]
    pub flags: Vec<Flag>,
    /// Unix socket of the seccomp agent that receives SCMP_ACT_NOTIFY syscalls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::limits::MAX_LISTENER_PATH_LEN))]
    pub listener_path: Option<String>,
    /// Opaque data passed to the seccomp agent at `listenerPath`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::limits::MAX_LISTENER_METADATA_LEN))]
    pub listener_metadata: Option<String>,
    /// Rules: each names syscalls and the action taken when they are called.
    #[serde(default)]
    #[schemars(length(max = crate::limits::MAX_RULES))]
    pub syscalls: Vec<SyscallRule>,
}

/// One rule: the syscalls it names get `action` when all `args` conditions hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyscallRule {
    /// Syscall names, as libseccomp spells them (e.g. `openat`); at least one.
    #[schemars(length(min = 1, max = crate::limits::MAX_NAMES_PER_RULE))]
    #[schemars(inner(length(min = 1, max = crate::limits::MAX_NAME_LEN)))]
    pub names: Vec<String>,
    /// Action taken when one of `names` is called and every condition in `args` holds.
    pub action: Action,
    /// Return value for SCMP_ACT_ERRNO or SCMP_ACT_TRACE (EPERM when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 65535))]
    pub errno_ret: Option<u32>,
    /// Conditions on the syscall's arguments; all must hold for the rule to match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::limits::MAX_ARGS))]
    pub args: Vec<ArgCondition>,
}

/// A condition on one syscall argument.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArgCondition {
    /// Argument position, 0 to 5.
    #[schemars(range(max = 5))]
    pub index: u32,
    /// Value compared with the argument (the mask, for SCMP_CMP_MASKED_EQ).
    pub value: u64,
    /// Second value: what the masked argument must equal, for SCMP_CMP_MASKED_EQ.
    #[serde(default)]
    pub value_two: u64,
    /// Comparison operator.
    pub op: Op,
}

/// The effective return value of an action: what libseccomp encodes beside it.
pub(crate) fn effective_ret(action: Action, errno: Option<u32>) -> Option<u32> {
    action.takes_errno().then(|| errno.unwrap_or(DEFAULT_ERRNO))
}

/// The key under which rules are grouped when a document is made canonical: two rules with the
/// same key are one rule with the union of their names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct RuleKey {
    pub action: Action,
    pub ret: Option<u32>,
    pub args: Vec<ArgCondition>,
}

impl SyscallRule {
    pub(crate) fn key(&self) -> RuleKey {
        RuleKey {
            action: self.action,
            ret: effective_ret(self.action, self.errno_ret),
            args: self.args.clone(),
        }
    }
}

impl SeccompDocument {
    /// An allowlist: `defaultAction: SCMP_ACT_ERRNO` and one ALLOW rule with `names`.
    pub fn allowlist<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        SeccompDocument {
            default_action: Action::Errno,
            default_errno_ret: None,
            architectures: Vec::new(),
            flags: Vec::new(),
            listener_path: None,
            listener_metadata: None,
            syscalls: if names.is_empty() {
                Vec::new()
            } else {
                vec![SyscallRule {
                    names,
                    action: Action::Allow,
                    errno_ret: None,
                    args: Vec::new(),
                }]
            },
        }
    }

    /// The effective `(action, return value)` pair of the default action.
    pub(crate) fn default_key(&self) -> (Action, Option<u32>) {
        (
            self.default_action,
            effective_ret(self.default_action, self.default_errno_ret),
        )
    }

    /// The canonical form: what the node agent writes and what hashes are computed over.
    ///
    /// - `architectures` explicit: when empty, `native` and its compat architectures; sorted;
    /// - return values explicit on every action that takes one (EPERM when unset), dropped on
    ///   actions that take none;
    /// - rules with the same action, return value and arguments merged into one, names sorted
    ///   and unique; rules whose effective action equals the default dropped (libseccomp refuses
    ///   them); rules ordered by (action, return value, arguments);
    /// - flags sorted and unique.
    ///
    /// Canonicalising a canonical document returns it unchanged.
    pub fn canonical(&self, native: Arch) -> SeccompDocument {
        let mut architectures: Vec<Arch> = if self.architectures.is_empty() {
            native.with_compat()
        } else {
            self.architectures.clone()
        };
        architectures.sort();
        architectures.dedup();
        let mut flags = self.flags.clone();
        flags.sort();
        flags.dedup();

        let default = self.default_key();
        let mut grouped: BTreeMap<RuleKey, BTreeSet<String>> = BTreeMap::new();
        for rule in &self.syscalls {
            let key = rule.key();
            if (key.action, key.ret) == default {
                continue;
            }
            grouped
                .entry(key)
                .or_default()
                .extend(rule.names.iter().cloned());
        }
        let syscalls = grouped
            .into_iter()
            .filter(|(_, names)| !names.is_empty())
            .map(|(key, names)| SyscallRule {
                names: names.into_iter().collect(),
                action: key.action,
                errno_ret: key.ret,
                args: key.args,
            })
            .collect();
        SeccompDocument {
            default_action: self.default_action,
            default_errno_ret: default.1,
            architectures,
            flags,
            listener_path: self.listener_path.clone(),
            listener_metadata: self.listener_metadata.clone(),
            syscalls,
        }
    }

    /// Render the canonical form as the JSON a runtime reads (pretty, newline-terminated).
    pub fn render(&self, native: Arch) -> Rendered {
        let canonical = self.canonical(native);
        let mut json = serde_json::to_vec_pretty(&canonical).unwrap_or_default();
        json.push(b'\n');
        let hash = content_hash(&json);
        Rendered {
            document: canonical,
            json,
            hash,
        }
    }

    /// Every syscall name in the document, with the effective action it gets.
    pub fn names_by_action(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for rule in &self.syscalls {
            let label = rule_label(rule);
            for name in &rule.names {
                out.entry(label.clone()).or_default().insert(name.clone());
            }
        }
        out
    }
}

impl SeccompDocument {
    /// Problems that keep every program from starting under the profile (the profile is still
    /// valid): a profile that does not let `execve` run makes a container fail at start.
    pub fn startup_problems(&self) -> Vec<String> {
        let runs = |a: super::types::Action| {
            matches!(a, super::types::Action::Allow | super::types::Action::Log)
        };
        let execve_allowed = self
            .syscalls
            .iter()
            .find(|r| r.args.is_empty() && r.names.iter().any(|n| n == "execve"))
            .map(|r| runs(r.action))
            .unwrap_or_else(|| runs(self.default_action));
        if execve_allowed {
            Vec::new()
        } else {
            vec!["execve is not allowed: no program can start under this profile (a container using it fails at start)".into()]
        }
    }
}

/// A human label of a rule's effect: the action, its return value and its conditions.
pub(crate) fn rule_label(rule: &SyscallRule) -> String {
    let mut label = rule.action.as_str().to_owned();
    if let Some(ret) = effective_ret(rule.action, rule.errno_ret) {
        label.push_str(&format!("({ret})"));
    }
    for a in &rule.args {
        label.push_str(&format!(
            " [arg{} {} {}{}]",
            a.index,
            a.op.as_str().trim_start_matches("SCMP_CMP_"),
            number(a.value),
            if a.op == Op::MaskedEq {
                format!(" {}", number(a.value_two))
            } else {
                String::new()
            }
        ));
    }
    label
}

/// A condition's value as people read it: small numbers in decimal, flags and masks in hex.
fn number(v: u64) -> String {
    if v < 0x100 {
        v.to_string()
    } else {
        format!("{v:#x}")
    }
}

/// A canonical document together with its exact bytes and their hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The canonical document.
    pub document: SeccompDocument,
    /// The bytes written to the node.
    pub json: Vec<u8>,
    /// `sha256:<hex>` of `json`.
    pub hash: String,
}

/// `sha256:<hex>` of the given bytes: the text of [`content_digest`].
pub fn content_hash(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(content_digest(bytes)))
}

/// The SHA-256 of the given bytes, as bytes (what [`content_hash`] writes as text).
pub fn content_digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
