//! Complain mode: a profile run without refusing anything, and what its enforced form would
//! have done with a syscall the kernel logged.
//!
//! The complain rendering keeps the allowlist and turns every refusing action (the default's
//! and each rule's `SCMP_ACT_ERRNO`, `SCMP_ACT_KILL*`, `SCMP_ACT_TRAP`, `SCMP_ACT_TRACE`) into
//! `SCMP_ACT_LOG`: the kernel lets those calls run and writes an audit record for each.
//! Argument conditions are kept, so a call outside the recorded argument values is logged, not
//! refused. `SCMP_ACT_NOTIFY` is kept: a call handed to a seccomp agent is the agent's to
//! decide, not the profile's. Rules whose action then equals the default are dropped when the
//! document is rendered (libseccomp refuses them).
//!
//! An audit record carries the syscall's number but not its arguments, and the complain
//! rendering merges the original `SCMP_ACT_LOG` rules with the refusing ones; [`would_deny`]
//! answers from the enforced document which action enforcement would take.

use super::document::SeccompDocument;
use super::types::Action;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a profile is installed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Mode {
    /// The filter as written: refusing actions refuse.
    #[default]
    Enforce,
    /// Every refusing action is installed as `SCMP_ACT_LOG`: nothing is refused, and what
    /// enforcement would refuse is reported (`SyscallWouldBeDenied`). A container under a
    /// complain profile is, for the cluster's profile policy, not confined.
    Complain,
}

impl Mode {
    /// Whether this is the default mode (not written out).
    pub fn is_enforce(&self) -> bool {
        *self == Mode::Enforce
    }
}

/// Whether `action` refuses the call (what complain mode logs instead).
pub fn refuses(action: Action) -> bool {
    !matches!(action, Action::Allow | Action::Log | Action::Notify)
}

impl SeccompDocument {
    /// The complain rendering of this document (see the module's docs).
    pub fn complain(mut self) -> SeccompDocument {
        if refuses(self.default_action) {
            self.default_action = Action::Log;
            self.default_errno_ret = None;
        }
        for rule in &mut self.syscalls {
            if refuses(rule.action) {
                rule.action = Action::Log;
                rule.errno_ret = None;
            }
        }
        self
    }

    /// This document installed in `mode`.
    pub fn in_mode(self, mode: Mode) -> SeccompDocument {
        match mode {
            Mode::Enforce => self,
            Mode::Complain => self.complain(),
        }
    }
}

/// What enforcement would do with a syscall the complain rendering logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WouldDeny {
    /// The refusing action enforcement would take.
    pub action: Action,
    /// The profile's rules for the syscall check its arguments: the call was refused for the
    /// argument values it was made with (allowing rules stay allowing in complain mode, so a
    /// call they match is not logged).
    pub depends_on_arguments: bool,
    /// The profile also has `SCMP_ACT_LOG` argument rules of its own for the syscall: the
    /// record may have been one of those (the audit record carries no arguments).
    pub maybe_logged_by_rule: bool,
}

impl WouldDeny {
    /// The sentence a report adds when the refusal depends on the arguments ("" otherwise).
    pub fn argument_note(&self) -> &'static str {
        match (self.depends_on_arguments, self.maybe_logged_by_rule) {
            (false, _) => "",
            (true, false) => "refused for the argument values it was called with: the profile's rules for this syscall check arguments",
            (true, true) => "refused for the argument values it was called with, unless it was a call one of the profile's own SCMP_ACT_LOG argument rules logs (the audit record carries no arguments)",
        }
    }
}

/// What the enforced document `doc` would do with `syscall`, when that is a refusal; None when
/// it would let the call run (allow, log, or hand it to a seccomp agent).
///
/// The answer is for a call the complain rendering logged: such a call matched no allowing
/// rule (those stay allowing), so only the refusing actions and the profile's own `SCMP_ACT_LOG`
/// rules can have produced the record.
pub fn would_deny(doc: &SeccompDocument, syscall: &str) -> Option<WouldDeny> {
    let mut conditional: Vec<Action> = Vec::new();
    for rule in doc
        .syscalls
        .iter()
        .filter(|r| r.names.iter().any(|n| n == syscall))
    {
        if rule.args.is_empty() {
            return refuses(rule.action).then_some(WouldDeny {
                action: rule.action,
                depends_on_arguments: false,
                maybe_logged_by_rule: false,
            });
        }
        conditional.push(rule.action);
    }
    if conditional.is_empty() {
        return refuses(doc.default_action).then_some(WouldDeny {
            action: doc.default_action,
            depends_on_arguments: false,
            maybe_logged_by_rule: false,
        });
    }
    // Only argument rules name it: a logged call matched a refusing rule, or no rule and the
    // default refuses — or one of the profile's own LOG rules.
    let action = conditional
        .iter()
        .copied()
        .find(|a| refuses(*a))
        .or_else(|| refuses(doc.default_action).then_some(doc.default_action))?;
    Some(WouldDeny {
        action,
        depends_on_arguments: true,
        maybe_logged_by_rule: conditional.contains(&Action::Log),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Arch, ArgCondition, Op, SyscallRule};

    fn rule(names: &[&str], action: Action, args: Vec<ArgCondition>) -> SyscallRule {
        SyscallRule {
            names: names.iter().map(|s| s.to_string()).collect(),
            action,
            errno_ret: action.takes_errno().then_some(1),
            args,
        }
    }

    fn doc() -> SeccompDocument {
        let mut d = SeccompDocument::allowlist(["read", "write"]);
        d.default_errno_ret = Some(38);
        d.syscalls.push(rule(&["mkdir"], Action::Errno, vec![]));
        d.syscalls
            .push(rule(&["ptrace"], Action::KillProcess, vec![]));
        d.syscalls.push(rule(&["uname"], Action::Log, vec![]));
        d.syscalls.push(rule(
            &["socket"],
            Action::Allow,
            vec![ArgCondition {
                index: 0,
                value: 1,
                value_two: 0,
                op: Op::Eq,
            }],
        ));
        d
    }

    #[test]
    fn every_refusing_action_becomes_log_and_arguments_stay() {
        let c = doc().complain().canonical(Arch::X86_64);
        assert_eq!(c.default_action, Action::Log);
        assert_eq!(c.default_errno_ret, None);
        assert!(
            c.syscalls.iter().all(|r| matches!(r.action, Action::Allow)),
            "rules equal to the LOG default are dropped, allows stay: {:?}",
            c.syscalls
        );
        let socket = c.syscalls.iter().find(|r| r.names == ["socket"]).unwrap();
        assert_eq!(socket.args.len(), 1, "argument rules keep their conditions");
        let read = c
            .syscalls
            .iter()
            .find(|r| r.names.contains(&"read".into()))
            .unwrap();
        assert_eq!(read.action, Action::Allow);
    }

    #[test]
    fn allow_default_keeps_its_refusing_rules_as_log() {
        let mut d = SeccompDocument::allowlist(Vec::<String>::new());
        d.default_action = Action::Allow;
        d.syscalls.push(rule(&["mkdir"], Action::Errno, vec![]));
        d.syscalls.push(rule(&["bpf"], Action::Trap, vec![]));
        d.syscalls
            .push(rule(&["kexec_load"], Action::Trace, vec![]));
        let c = d.complain().canonical(Arch::X86_64);
        assert_eq!(c.default_action, Action::Allow);
        assert_eq!(c.syscalls.len(), 1, "{:?}", c.syscalls);
        assert_eq!(c.syscalls[0].action, Action::Log);
        assert_eq!(c.syscalls[0].errno_ret, None);
        assert_eq!(c.syscalls[0].names, ["bpf", "kexec_load", "mkdir"]);
    }

    #[test]
    fn enforce_is_unchanged_and_the_default_mode() {
        assert_eq!(doc().in_mode(Mode::Enforce), doc());
        assert_eq!(Mode::default(), Mode::Enforce);
    }

    #[test]
    fn would_deny_answers_from_the_enforced_document() {
        let d = doc();
        let wd = |s| would_deny(&d, s);
        assert_eq!(wd("read"), None);
        assert_eq!(wd("uname"), None, "an original LOG rule is not a refusal");
        assert_eq!(
            wd("mkdir"),
            Some(WouldDeny {
                action: Action::Errno,
                depends_on_arguments: false,
                maybe_logged_by_rule: false,
            })
        );
        assert_eq!(wd("ptrace").unwrap().action, Action::KillProcess);
        assert_eq!(
            wd("chmod").unwrap().action,
            Action::Errno,
            "the default refuses"
        );
        let s = wd("socket").unwrap();
        assert!(s.depends_on_arguments && s.action == Action::Errno && !s.maybe_logged_by_rule);
        assert!(s
            .argument_note()
            .contains("argument values it was called with"));
        let mut logged = d.clone();
        logged.syscalls.push(rule(
            &["socket"],
            Action::Log,
            vec![ArgCondition {
                index: 0,
                value: 2,
                value_two: 0,
                op: Op::Eq,
            }],
        ));
        let s = would_deny(&logged, "socket").unwrap();
        assert!(s.maybe_logged_by_rule && s.argument_note().contains("SCMP_ACT_LOG"));

        let mut open = SeccompDocument::allowlist(Vec::<String>::new());
        open.default_action = Action::Allow;
        open.syscalls.push(rule(
            &["personality"],
            Action::Errno,
            vec![ArgCondition {
                index: 0,
                value: 8,
                value_two: 0,
                op: Op::Ne,
            }],
        ));
        assert_eq!(would_deny(&open, "getpid"), None);
        let p = would_deny(&open, "personality").unwrap();
        assert!(p.depends_on_arguments);
        assert_eq!(p.action, Action::Errno);
    }
}
