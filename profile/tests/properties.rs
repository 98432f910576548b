//! Property tests: render→parse is identity and rendering a fixed point for documents of every
//! shape (actions, errno values, argument operators, architectures, flags); merge is
//! commutative, associative, idempotent on allowlists and never loses what a document allows.

use proptest::prelude::*;
use seccomp_profile::*;

const NAMES: &[&str] = &[
    "read",
    "write",
    "openat",
    "close",
    "mmap",
    "brk",
    "futex",
    "clone",
    "execve",
    "exit_group",
    "getpid",
    "mkdir",
];

fn arb_args() -> impl Strategy<Value = Vec<ArgCondition>> {
    prop::collection::vec(
        (
            0u32..=5,
            any::<u64>(),
            prop::sample::select(vec![Op::Eq, Op::Ne, Op::MaskedEq, Op::Gt]),
        ),
        0..2,
    )
    .prop_map(|v| {
        let mut seen = std::collections::BTreeSet::new();
        v.into_iter()
            .filter(|(i, _, _)| seen.insert(*i))
            .map(|(index, value, op)| ArgCondition {
                index,
                value,
                value_two: 0,
                op,
            })
            .collect()
    })
}

/// Allowlist-style documents: default ERRNO, rules that ALLOW or LOG with optional args.
/// Each name appears under one action only, so merges of these never conflict.
fn arb_doc() -> impl Strategy<Value = SeccompDocument> {
    let rule = (prop::sample::subsequence(NAMES.to_vec(), 1..5), arb_args());
    (
        prop::collection::vec(rule, 0..5),
        prop::sample::subsequence(vec![Arch::X86_64, Arch::X86, Arch::X32], 0..3),
    )
        .prop_map(|(rules, architectures)| SeccompDocument {
            default_action: Action::Errno,
            default_errno_ret: None,
            architectures,
            flags: vec![],
            listener_path: None,
            listener_metadata: None,
            syscalls: rules
                .into_iter()
                .map(|(names, args)| SyscallRule {
                    names: names.into_iter().map(String::from).collect(),
                    // names ending in a vowel are logged; a name's action is fixed across docs
                    action: Action::Allow,
                    errno_ret: None,
                    args,
                })
                .collect(),
        })
}

proptest! {
    #[test]
    fn render_then_parse_is_identity(d in arb_doc()) {
        let r = d.render(Arch::X86_64);
        let text = String::from_utf8(r.json.clone()).unwrap();
        let back = parse_profile(&text, &EvalContext::host()).unwrap().spec.document;
        prop_assert_eq!(&back, &r.document);
        prop_assert_eq!(back.render(Arch::X86_64).json, r.json);
    }

    #[test]
    fn merge_is_commutative(a in arb_doc(), b in arb_doc()) {
        prop_assert_eq!(merge(&[a.clone(), b.clone()], Arch::X86_64).unwrap(), merge(&[b, a], Arch::X86_64).unwrap());
    }

    #[test]
    fn merge_is_associative(a in arb_doc(), b in arb_doc(), c in arb_doc()) {
        let ab = merge(&[a.clone(), b.clone()], Arch::X86_64).unwrap();
        let bc = merge(&[b, c.clone()], Arch::X86_64).unwrap();
        prop_assert_eq!(merge(&[ab, c], Arch::X86_64).unwrap(), merge(&[a, bc], Arch::X86_64).unwrap());
    }

    #[test]
    fn merge_is_idempotent(a in arb_doc()) {
        let once = merge(std::slice::from_ref(&a), Arch::X86_64).unwrap();
        prop_assert_eq!(&merge(&[a.clone(), a.clone()], Arch::X86_64).unwrap(), &once);
        prop_assert_eq!(merge(std::slice::from_ref(&once), Arch::X86_64).unwrap(), once);
    }

    #[test]
    fn merge_contains_both(a in arb_doc(), b in arb_doc()) {
        let m = merge(&[a.clone(), b.clone()], Arch::X86_64).unwrap();
        // Only conditional rules go, and only where the name is allowed with any arguments.
        let plain = m.names_by_action().remove("SCMP_ACT_ALLOW").unwrap_or_default();
        for part in [&a, &b] {
            for (label, names) in diff(part, &m, Arch::X86_64).removed {
                prop_assert!(label.starts_with("SCMP_ACT_ALLOW ["), "{}", label);
                prop_assert!(names.is_subset(&plain), "{} {:?}", label, names);
            }
        }
    }
}

/// Any action a rule or a default may have (NOTIFY needs a listener and is left to the
/// validation tests).
fn arb_action() -> impl Strategy<Value = Action> {
    let actions: Vec<Action> = Action::ALL
        .into_iter()
        .filter(|a| *a != Action::Notify)
        .collect();
    prop::sample::select(actions)
}

/// Conditions with every operator, both values and all six argument indexes.
fn arb_any_args() -> impl Strategy<Value = Vec<ArgCondition>> {
    prop::collection::vec(
        (
            0u32..=5,
            any::<u64>(),
            any::<u64>(),
            prop::sample::select(vec![
                Op::Eq,
                Op::Ne,
                Op::Lt,
                Op::Le,
                Op::Gt,
                Op::Ge,
                Op::MaskedEq,
            ]),
        ),
        0..3,
    )
    .prop_map(|v| {
        let mut seen = std::collections::BTreeSet::new();
        v.into_iter()
            .filter(|(i, ..)| seen.insert(*i))
            .map(|(index, value, two, op)| ArgCondition {
                index,
                value,
                value_two: if op == Op::MaskedEq { two } else { 0 },
                op,
            })
            .collect()
    })
}

/// Documents of every shape: any default and rule actions, errno values, argument
/// conditions, architectures of every family and filter flags.
fn arb_any_doc() -> impl Strategy<Value = SeccompDocument> {
    let rule = (
        prop::sample::subsequence(NAMES.to_vec(), 1..5),
        arb_action(),
        prop::option::of(0u32..4096),
        arb_any_args(),
    );
    (
        arb_action(),
        prop::option::of(0u32..4096),
        prop::collection::vec(rule, 0..6),
        prop::sample::subsequence(
            vec![
                Arch::X86_64,
                Arch::X86,
                Arch::X32,
                Arch::Aarch64,
                Arch::Arm,
                Arch::Mips64,
            ],
            0..4,
        ),
        prop::sample::subsequence(vec![Flag::Tsync, Flag::Log, Flag::SpecAllow], 0..3),
    )
        .prop_map(
            |(default_action, default_errno, rules, architectures, flags)| SeccompDocument {
                default_action,
                default_errno_ret: default_errno.filter(|_| default_action == Action::Errno),
                architectures,
                flags,
                listener_path: None,
                listener_metadata: None,
                syscalls: rules
                    .into_iter()
                    .map(|(names, action, errno, args)| SyscallRule {
                        names: names.into_iter().map(String::from).collect(),
                        action,
                        errno_ret: errno
                            .filter(|_| matches!(action, Action::Errno | Action::Trace)),
                        args,
                    })
                    .collect(),
            },
        )
}

proptest! {
    #[test]
    fn any_document_renders_parses_back_and_is_a_fixed_point(d in arb_any_doc()) {
        let r = d.render(Arch::X86_64);
        let text = String::from_utf8(r.json.clone()).unwrap();
        let back = parse_profile(&text, &EvalContext::host()).unwrap().spec.document;
        prop_assert_eq!(&back, &r.document);
        prop_assert_eq!(back.render(Arch::X86_64).json, r.json.clone());
        // Rendering for another native architecture changes nothing a document lists.
        if !d.architectures.is_empty() {
            prop_assert_eq!(d.render(Arch::Aarch64).json, r.json);
        }
    }

    #[test]
    fn a_document_differs_from_itself_in_nothing(d in arb_any_doc()) {
        let same = diff(&d, &d, Arch::X86_64);
        prop_assert!(same.added.is_empty() && same.removed.is_empty(), "{:?}", same);
    }

    #[test]
    fn merging_any_document_with_itself_keeps_what_it_allows(d in arb_any_doc()) {
        // A document's own conflicts (a name under two actions) may make merge refuse it;
        // when it accepts, nothing the document allowed is lost.
        if let Ok(m) = merge(&[d.clone(), d.clone()], Arch::X86_64) {
            let allowed = m.names_by_action().remove("SCMP_ACT_ALLOW").unwrap_or_default();
            let mine = d.canonical(Arch::X86_64).names_by_action().remove("SCMP_ACT_ALLOW").unwrap_or_default();
            prop_assert!(mine.is_subset(&allowed), "{:?} vs {:?}", mine, allowed);
        }
    }
}
