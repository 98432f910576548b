//! Argument classes: recorded values become argument rules, unions stay unions, and merged
//! recordings are never tighter than any of their parts.

use seccomp_profile::args::{union_recorded, CLONE_NS_FLAGS, ENOSYS, MAX_VALUES};
use seccomp_profile::{
    merge, recorded_document, Action, Arch, ArgClasses, ArgKind, Op, RecordedArgs, SeccompDocument,
};

const NEWUSER: u64 = 0x1000_0000;
const NEWNET: u64 = 0x4000_0000;

fn classes(entries: &[(ArgKind, &[u64])]) -> ArgClasses {
    let mut c = ArgClasses::default();
    for (kind, values) in entries {
        for v in *values {
            c.add(*kind, *v);
        }
    }
    c
}

fn rules<'a>(doc: &'a SeccompDocument, name: &str) -> Vec<&'a seccomp_profile::SyscallRule> {
    doc.syscalls
        .iter()
        .filter(|r| r.names.iter().any(|n| n == name))
        .collect()
}

#[test]
fn clone_without_namespaces_gets_a_masked_rule() {
    let doc = recorded_document(["read", "clone"], &classes(&[(ArgKind::Clone, &[0])]))
        .canonical(Arch::X86_64);
    let r = rules(&doc, "clone");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].action, Action::Allow);
    assert_eq!(r[0].args.len(), 1);
    assert_eq!(r[0].args[0].op, Op::MaskedEq);
    assert_eq!(r[0].args[0].value, CLONE_NS_FLAGS);
    assert_eq!(r[0].args[0].value_two, 0);
    assert_eq!(rules(&doc, "read")[0].args, vec![]);
}

#[test]
fn every_recorded_value_gets_its_own_rule() {
    let c = classes(&[
        (ArgKind::Clone, &[0, NEWUSER]),
        (ArgKind::Socket, &[(2 << 16) | 1, (1 << 16) | 2]),
        (ArgKind::Personality, &[0xffff_ffff]),
        (ArgKind::Setns, &[NEWNET]),
    ]);
    let doc =
        recorded_document(["clone", "socket", "personality", "setns"], &c).canonical(Arch::X86_64);
    let values: Vec<u64> = rules(&doc, "clone")
        .iter()
        .map(|r| r.args[0].value_two)
        .collect();
    assert_eq!(values.len(), 2);
    assert!(values.contains(&0) && values.contains(&NEWUSER));
    let socket = rules(&doc, "socket");
    assert_eq!(socket.len(), 2);
    for r in &socket {
        assert_eq!(r.args[0].op, Op::Eq);
        assert_eq!(r.args[1].op, Op::MaskedEq);
        assert_eq!(r.args[1].value, 0xf);
    }
    let domains: Vec<(u64, u64)> = socket
        .iter()
        .map(|r| (r.args[0].value, r.args[1].value_two))
        .collect();
    assert!(
        domains.contains(&(2, 1)) && domains.contains(&(1, 2)),
        "{domains:?}"
    );
    assert_eq!(rules(&doc, "personality")[0].args[0].value, 0xffff_ffff);
    let setns = rules(&doc, "setns")[0];
    assert_eq!((setns.args[0].index, setns.args[0].value), (1, NEWNET));
}

#[test]
fn clone3_without_namespaces_answers_enosys_and_clone_takes_its_values() {
    // A program that only ever called clone3 (glibc threads): clone is added for the fallback.
    let doc =
        recorded_document(["clone3"], &classes(&[(ArgKind::Clone3, &[0])])).canonical(Arch::X86_64);
    let c3 = rules(&doc, "clone3");
    assert_eq!(c3.len(), 1);
    assert_eq!(
        (c3[0].action, c3[0].errno_ret),
        (Action::Errno, Some(ENOSYS))
    );
    let clone = rules(&doc, "clone");
    assert_eq!(clone.len(), 1);
    assert_eq!(clone[0].args[0].value_two, 0);

    // A clone3 that created a namespace stays allowed as recorded (seccomp cannot look
    // inside its argument structure).
    let doc = recorded_document(
        ["clone3", "clone"],
        &classes(&[(ArgKind::Clone3, &[0, NEWUSER]), (ArgKind::Clone, &[0])]),
    )
    .canonical(Arch::X86_64);
    let c3 = rules(&doc, "clone3");
    assert_eq!((c3[0].action, c3[0].args.len()), (Action::Allow, 0));
}

#[test]
fn unknown_or_overflowing_classes_allow_any_arguments() {
    // No values captured (the Logs recorder): plain allows.
    let doc = recorded_document(["clone", "clone3", "socket"], &ArgClasses::default())
        .canonical(Arch::X86_64);
    for n in ["clone", "clone3", "socket"] {
        let r = rules(&doc, n);
        assert_eq!(
            (r.len(), r[0].action, r[0].args.len()),
            (1, Action::Allow, 0),
            "{n}"
        );
    }
    // One value more than kept: "any".
    let mut c = ArgClasses::default();
    for v in 0..=MAX_VALUES as u64 {
        c.add(ArgKind::Personality, v);
    }
    assert_eq!(c.values(ArgKind::Personality), None);
    let doc = recorded_document(["personality"], &c).canonical(Arch::X86_64);
    assert_eq!(rules(&doc, "personality")[0].args.len(), 0);
    // "any" survives serialisation and union.
    let rec = c.to_recorded();
    assert!(rec[0].any && rec[0].values.is_empty());
    let u = union_recorded(
        &rec,
        &[RecordedArgs {
            syscall: "personality".into(),
            values: vec![1],
            any: false,
        }],
    );
    assert!(u[0].any);
}

#[test]
fn recorded_lists_union_and_ignore_untracked_syscalls() {
    let a = vec![RecordedArgs {
        syscall: "clone".into(),
        values: vec![0],
        any: false,
    }];
    let b = vec![
        RecordedArgs {
            syscall: "clone".into(),
            values: vec![NEWUSER],
            any: false,
        },
        RecordedArgs {
            syscall: "openat".into(),
            values: vec![1],
            any: false,
        },
    ];
    let u = union_recorded(&a, &b);
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].values, vec![0, NEWUSER]);
}

#[test]
fn merged_recordings_are_the_union_of_what_each_allowed() {
    // Replica A: clone3 answered ENOSYS; replica B really used clone3 with a namespace.
    let a = recorded_document(
        ["clone3", "socket"],
        &classes(&[(ArgKind::Clone3, &[0]), (ArgKind::Socket, &[(2 << 16) | 1])]),
    );
    let b = recorded_document(
        ["clone3", "clone", "socket"],
        &classes(&[(ArgKind::Clone3, &[NEWUSER]), (ArgKind::Clone, &[0])]),
    );
    let m = merge(&[a.clone(), b.clone()], Arch::X86_64).unwrap();
    let c3 = rules(&m, "clone3");
    assert_eq!(c3.len(), 1, "{c3:?}");
    assert_eq!((c3[0].action, c3[0].args.len()), (Action::Allow, 0));
    // B allowed socket with any arguments, so the conditional rule from A is gone.
    let s = rules(&m, "socket");
    assert_eq!((s.len(), s[0].args.len()), (1, 0), "{s:?}");
    // Commutative and idempotent.
    assert_eq!(m, merge(&[b.clone(), a.clone()], Arch::X86_64).unwrap());
    assert_eq!(m, merge(&[m.clone(), a, b], Arch::X86_64).unwrap());
}

#[test]
fn values_read_as_people_name_them() {
    assert_eq!(ArgKind::Clone.describe(0), "no namespace");
    assert_eq!(
        ArgKind::Unshare.describe(NEWUSER | NEWNET),
        "CLONE_NEWUSER|CLONE_NEWNET"
    );
    assert_eq!(
        ArgKind::Socket.describe((17 << 16) | 3),
        "AF_PACKET/SOCK_RAW"
    );
    assert_eq!(ArgKind::Personality.describe(8), "0x8");
}

fn moby_default() -> Option<SeccompDocument> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/moby-default.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have ../shared/corpus beside the repository"
        );
        eprintln!("SKIP: {} not found", path.display());
        return None;
    };
    let ctx = seccomp_profile::EvalContext {
        arch: Arch::X86_64,
        caps: seccomp_profile::parse::DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        kernel: Some((6, 1)),
    };
    Some(
        seccomp_profile::parse_profile(&text, &ctx)
            .unwrap()
            .spec
            .document,
    )
}

#[test]
fn recorded_argument_rules_are_never_looser_than_dockers_default() {
    let Some(docker) = moby_default() else {
        return;
    };
    use seccomp_profile::{looser_than, Looser};
    let names = ["read", "write", "clone", "clone3", "socket", "personality"];
    let c = classes(&[
        (ArgKind::Clone, &[0]),
        (ArgKind::Clone3, &[0]),
        (ArgKind::Socket, &[(2 << 16) | 1, (10 << 16) | 2]),
        (ArgKind::Personality, &[0xffff_ffff]),
    ]);
    let tight = recorded_document(names, &c);
    assert_eq!(looser_than(&tight, &docker, Arch::X86_64), vec![]);

    // Names only: clone, clone3, socket and personality with any arguments are looser.
    let plain = recorded_document(names, &ArgClasses::default());
    let found: Vec<String> = looser_than(&plain, &docker, Arch::X86_64)
        .iter()
        .filter_map(|l| l.name().map(str::to_owned))
        .collect();
    assert_eq!(found, ["clone", "clone3", "personality", "socket"]);

    // A recorded user namespace, AF_VSOCK, and a syscall Docker denies outright.
    let wide = recorded_document(
        ["clone", "socket", "mount"],
        &classes(&[
            (ArgKind::Clone, &[NEWUSER]),
            (ArgKind::Socket, &[40 << 16 | 1]),
        ]),
    );
    let l = looser_than(&wide, &docker, Arch::X86_64);
    assert_eq!(l.len(), 3, "{l:?}");
    assert!(matches!(&l[0], Looser::Arguments { name, .. } if name == "clone"));
    assert_eq!(
        l[0].to_string(),
        "clone: SCMP_ACT_ALLOW [arg0 MASKED_EQ 0x7e020000 0x10000000]; the default allows it only as SCMP_ACT_ALLOW [arg0 MASKED_EQ 0x7e020000 0]"
    );
    assert!(
        matches!(&l[1], Looser::Syscall { name, .. } if name == "mount"),
        "{l:?}"
    );
    assert!(matches!(&l[2], Looser::Arguments { name, .. } if name == "socket"));

    // A default action that runs everything is looser by itself.
    let mut open = tight.clone();
    open.default_action = Action::Allow;
    open.syscalls.clear();
    assert_eq!(
        looser_than(&open, &docker, Arch::X86_64),
        vec![Looser::DefaultRuns {
            action: Action::Allow
        }]
    );
}

#[test]
fn diff_shows_argument_level_differences() {
    let plain = recorded_document(["clone", "read"], &ArgClasses::default());
    let tight = recorded_document(["clone", "read"], &classes(&[(ArgKind::Clone, &[0])]));
    let wider = recorded_document(
        ["clone", "read"],
        &classes(&[(ArgKind::Clone, &[0, NEWUSER])]),
    );
    let d = seccomp_profile::diff(&plain, &tight, Arch::X86_64).to_string();
    assert_eq!(
        d,
        "- SCMP_ACT_ALLOW: clone\n+ SCMP_ACT_ALLOW [arg0 MASKED_EQ 0x7e020000 0]: clone\n"
    );
    let d = seccomp_profile::diff(&tight, &wider, Arch::X86_64).to_string();
    assert_eq!(
        d,
        "+ SCMP_ACT_ALLOW [arg0 MASKED_EQ 0x7e020000 0x10000000]: clone\n"
    );
}
