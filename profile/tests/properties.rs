//! Property tests: render→parse is identity and rendering a fixed point for documents of every
//! shape (actions, errno values, argument operators, architectures, flags); merge is
//! commutative, associative, idempotent on allowlists and never loses what a document allows;
//! Docker-style conditions (`includes`, `excludes`, `archMap`) select exactly the rules in force.

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

/// A Docker-style rule: names, an action, and its optional `includes`/`excludes` conditions.
#[derive(Clone, Debug)]
struct DockerRule {
    names: Vec<&'static str>,
    action: Action,
    include_caps: Vec<&'static str>,
    include_arches: Vec<Arch>,
    min_kernel: Option<(u32, u32)>,
    exclude_caps: Vec<&'static str>,
    exclude_arches: Vec<Arch>,
}

const CAPS: &[&str] = &[
    "CAP_SYS_ADMIN",
    "CAP_SYS_PTRACE",
    "CAP_NET_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_CHOWN",
];
const DOCKER_ARCHES: &[Arch] = &[Arch::X86_64, Arch::Aarch64, Arch::X86, Arch::Ppc64Le];

fn arb_docker_rule() -> impl Strategy<Value = DockerRule> {
    (
        prop::sample::subsequence(NAMES.to_vec(), 1..4),
        arb_action().prop_filter("a plain action", |a| {
            !matches!(a, Action::Errno | Action::Trace | Action::Notify)
        }),
        prop::sample::subsequence(CAPS.to_vec(), 0..3),
        prop::sample::subsequence(DOCKER_ARCHES.to_vec(), 0..3),
        prop::option::of((3u32..7, 0u32..20)),
        prop::sample::subsequence(CAPS.to_vec(), 0..2),
        prop::sample::subsequence(DOCKER_ARCHES.to_vec(), 0..2),
    )
        .prop_map(
            |(
                names,
                action,
                include_caps,
                include_arches,
                min_kernel,
                exclude_caps,
                exclude_arches,
            )| {
                DockerRule {
                    names,
                    action,
                    include_caps,
                    include_arches,
                    min_kernel,
                    exclude_caps,
                    exclude_arches,
                }
            },
        )
}

fn arb_ctx() -> impl Strategy<Value = EvalContext> {
    (
        prop::sample::select(vec![Arch::X86_64, Arch::Aarch64]),
        prop::sample::subsequence(CAPS.to_vec(), 0..5),
        prop::option::of((3u32..7, 0u32..20)),
    )
        .prop_map(|(arch, caps, kernel)| EvalContext {
            arch,
            caps: caps.into_iter().map(String::from).collect(),
            kernel,
        })
}

/// The Docker/moby JSON of `rules`, with an `archMap` for amd64 and arm64.
fn docker_json(rules: &[DockerRule]) -> String {
    let arch = |a: &Arch| serde_json::to_value(a).unwrap();
    let docker = |a: &Arch| a.docker_name();
    let syscalls: Vec<serde_json::Value> = rules
        .iter()
        .map(|r| {
            let mut includes = serde_json::Map::new();
            if !r.include_caps.is_empty() {
                includes.insert("caps".into(), serde_json::json!(r.include_caps));
            }
            if !r.include_arches.is_empty() {
                let a: Vec<_> = r.include_arches.iter().map(docker).collect();
                includes.insert("arches".into(), serde_json::json!(a));
            }
            if let Some((major, minor)) = r.min_kernel {
                includes.insert(
                    "minKernel".into(),
                    serde_json::json!(format!("{major}.{minor}")),
                );
            }
            let mut excludes = serde_json::Map::new();
            if !r.exclude_caps.is_empty() {
                excludes.insert("caps".into(), serde_json::json!(r.exclude_caps));
            }
            if !r.exclude_arches.is_empty() {
                let a: Vec<_> = r.exclude_arches.iter().map(docker).collect();
                excludes.insert("arches".into(), serde_json::json!(a));
            }
            serde_json::json!({"names": r.names, "action": r.action,
                "includes": includes, "excludes": excludes})
        })
        .collect();
    serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [
            {"architecture": arch(&Arch::X86_64), "subArchitectures": [arch(&Arch::X86), arch(&Arch::X32)]},
            {"architecture": arch(&Arch::Aarch64), "subArchitectures": [arch(&Arch::Arm)]},
        ],
        "syscalls": syscalls,
    })
    .to_string()
}

/// Whether a rule is in force for `ctx`, as Docker's documentation states it: `includes`
/// needs all its capabilities, one of its architectures and at least its kernel; `excludes`
/// removes the rule when the container has any of its capabilities or architectures.
fn in_force(r: &DockerRule, ctx: &EvalContext) -> bool {
    let held = |c: &&str| ctx.caps.contains(*c);
    r.include_caps.iter().all(held)
        && (r.include_arches.is_empty() || r.include_arches.contains(&ctx.arch))
        && match (r.min_kernel, ctx.kernel) {
            (Some(min), Some(k)) => k >= min,
            _ => true,
        }
        && !r.exclude_caps.iter().any(held)
        && !r.exclude_arches.contains(&ctx.arch)
}

proptest! {
    #[test]
    fn docker_conditions_select_exactly_the_rules_in_force(
        rules in prop::collection::vec(arb_docker_rule(), 0..8),
        ctx in arb_ctx(),
    ) {
        let parsed = parse_profile(&docker_json(&rules), &ctx).unwrap();
        let got: Vec<(Vec<String>, Action)> = parsed
            .spec
            .document
            .syscalls
            .iter()
            .map(|r| (r.names.clone(), r.action))
            .collect();
        // Of the rules in force, a later one giving a name another action overrides it in the
        // earlier ones; a rule left without names goes.
        let live: Vec<&DockerRule> = rules.iter().filter(|r| in_force(r, &ctx)).collect();
        let want: Vec<(Vec<String>, Action)> = live
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let names = r
                    .names
                    .iter()
                    .filter(|n| {
                        let last = live.iter().rposition(|l| l.names.contains(n)).unwrap();
                        last == i || live[last].action == r.action
                    })
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>();
                (names, r.action)
            })
            .filter(|(names, _)| !names.is_empty())
            .collect();
        prop_assert_eq!(got, want);
        // What is parsed validates: overriding never leaves an empty rule behind.
        prop_assert!(parsed.validate(None).is_ok(), "{:?}", parsed.validate(None));
        // The archMap entry of the native architecture gives it and its compat architectures.
        let arches = &parsed.spec.document.architectures;
        prop_assert_eq!(arches.first(), Some(&ctx.arch));
        let compat = if ctx.arch == Arch::X86_64 { vec![Arch::X86, Arch::X32] } else { vec![Arch::Arm] };
        prop_assert_eq!(&arches[1..], compat.as_slice());
    }

    #[test]
    fn a_capability_more_never_loses_a_rule_that_excludes_none(
        rules in prop::collection::vec(arb_docker_rule(), 0..8),
        ctx in arb_ctx(),
        cap in prop::sample::select(CAPS.to_vec()),
    ) {
        let text = docker_json(&rules);
        let count = |ctx: &EvalContext| {
            let doc = parse_profile(&text, ctx).unwrap().spec.document;
            doc.syscalls.len()
        };
        let mut more = ctx.clone();
        more.caps.insert(cap.to_string());
        let excludes_it = rules.iter().any(|r| r.exclude_caps.contains(&cap));
        if !excludes_it {
            prop_assert!(count(&more) >= count(&ctx));
        }
    }
}
