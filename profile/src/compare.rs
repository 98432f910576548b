//! "Never looser than the runtime default": what a profile lets run that a reference profile
//! (a container runtime's default, evaluated for the capabilities a container gets) does not.
//!
//! A syscall "runs" under a rule whose action is `SCMP_ACT_ALLOW` or `SCMP_ACT_LOG`, or under
//! a default action that is one of those. A profile rule is covered when the reference lets
//! the same syscall run unconditionally, or under conditions the rule's own conditions imply
//! (an equality implies every comparison its value satisfies; a masked equality implies one on
//! fewer bits). Whatever cannot be shown covered is reported: the check errs on the side of
//! saying "looser".

use crate::document::{rule_label, ArgCondition, SeccompDocument, SyscallRule};
use crate::types::{Action, Arch, Op};
use std::collections::BTreeMap;
use std::fmt;

/// One way a profile is looser than the reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Looser {
    /// The profile's default action lets every syscall it does not name run.
    DefaultRuns {
        /// The profile's default action.
        action: Action,
    },
    /// The reference never lets this syscall run.
    Syscall {
        /// The syscall.
        name: String,
        /// How the reference answers it instead (`SCMP_ACT_ERRNO(1)`, ...).
        reference: String,
    },
    /// The reference lets this syscall run only with some arguments, and the profile's rule
    /// allows others.
    Arguments {
        /// The syscall.
        name: String,
        /// The profile's rule (action and conditions).
        profile: String,
        /// The reference's rules for the syscall.
        reference: Vec<String>,
    },
}

impl Looser {
    /// The syscall concerned (none for [`Looser::DefaultRuns`]).
    pub fn name(&self) -> Option<&str> {
        match self {
            Looser::DefaultRuns { .. } => None,
            Looser::Syscall { name, .. } | Looser::Arguments { name, .. } => Some(name),
        }
    }
}

impl fmt::Display for Looser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Looser::DefaultRuns { action } => write!(
                f,
                "defaultAction {action}: every syscall the profile does not name runs"
            ),
            Looser::Syscall { name, reference } => {
                write!(f, "{name}: allowed; the default answers {reference}")
            }
            Looser::Arguments {
                name,
                profile,
                reference,
            } => write!(
                f,
                "{name}: {profile}; the default allows it only as {}",
                reference.join(" or ")
            ),
        }
    }
}

fn runs(action: Action) -> bool {
    matches!(action, Action::Allow | Action::Log)
}

/// Every way `profile` is looser than `reference`, ordered by syscall. Both are compared in
/// canonical form for `native`.
pub fn looser_than(
    profile: &SeccompDocument,
    reference: &SeccompDocument,
    native: Arch,
) -> Vec<Looser> {
    let p = profile.canonical(native);
    let r = reference.canonical(native);
    let mut out = Vec::new();
    if runs(p.default_action) && !runs(r.default_action) {
        out.push(Looser::DefaultRuns {
            action: p.default_action,
        });
    }
    let by_name = |doc: &SeccompDocument| {
        let mut m: BTreeMap<String, Vec<SyscallRule>> = BTreeMap::new();
        for rule in &doc.syscalls {
            for n in &rule.names {
                m.entry(n.clone()).or_default().push(rule.clone());
            }
        }
        m
    };
    let (pr, rr) = (by_name(&p), by_name(&r));
    let reference_default = match r.default_key() {
        (a, Some(ret)) => format!("{a}({ret})"),
        (a, None) => a.to_string(),
    };
    for (name, rules) in &pr {
        let theirs: Vec<&SyscallRule> = rr.get(name).into_iter().flatten().collect();
        let theirs_run: Vec<&SyscallRule> =
            theirs.iter().copied().filter(|t| runs(t.action)).collect();
        if runs(r.default_action) && theirs.is_empty() {
            continue;
        }
        for rule in rules.iter().filter(|x| runs(x.action)) {
            if theirs_run.is_empty() {
                let reference = theirs
                    .first()
                    .map(|t| rule_label(t))
                    .unwrap_or_else(|| reference_default.clone());
                out.push(Looser::Syscall {
                    name: name.clone(),
                    reference,
                });
                break;
            }
            let covered = theirs_run.iter().any(|t| implies_all(&rule.args, &t.args));
            if !covered {
                out.push(Looser::Arguments {
                    name: name.clone(),
                    profile: rule_label(rule),
                    reference: theirs_run.iter().map(|t| rule_label(t)).collect(),
                });
            }
        }
    }
    out
}

/// Whether conditions `mine` (all holding) imply every one of `theirs`.
fn implies_all(mine: &[ArgCondition], theirs: &[ArgCondition]) -> bool {
    theirs
        .iter()
        .all(|t| mine.iter().any(|m| m.index == t.index && implies(m, t)))
}

/// Whether condition `m` implies `t` (same argument).
fn implies(m: &ArgCondition, t: &ArgCondition) -> bool {
    match m.op {
        Op::Eq => {
            let v = m.value;
            match t.op {
                Op::Eq => v == t.value,
                Op::Ne => v != t.value,
                Op::Lt => v < t.value,
                Op::Le => v <= t.value,
                Op::Gt => v > t.value,
                Op::Ge => v >= t.value,
                Op::MaskedEq => v & t.value == t.value_two,
            }
        }
        Op::MaskedEq if t.op == Op::MaskedEq => {
            // Every bit they look at I fix, to the value they want.
            t.value & !m.value == 0 && (m.value_two & m.value & t.value) == t.value_two
        }
        _ => m == t,
    }
}
