//! Invalid profiles and the messages they get. Each case is a profile (YAML or JSON, in any
//! supported format), the field the first error must name, and a fragment of its reason.

use seccomp_profile::{
    parse_profile, validate_spec, Arch, EvalContext, ProfileError, SyscallTable,
};

/// A tiny syscall table, standing in for libseccomp (the real one is tested in node-agent).
struct Table;
impl SyscallTable for Table {
    fn supports(&self, arch: Arch) -> bool {
        matches!(arch, Arch::X86_64 | Arch::X86)
    }
    fn knows(&self, arch: Arch, name: &str) -> bool {
        match arch {
            Arch::X86 => ["read", "write", "chown32", "socketcall"].contains(&name),
            _ => ["read", "write", "openat", "mkdir", "clone", "ptrace"].contains(&name),
        }
    }
    fn describe(&self) -> String {
        "test table".into()
    }
}

fn errors_of(text: &str) -> Vec<(String, String)> {
    let ctx = EvalContext::host();
    match parse_profile(text, &ctx) {
        Err(ProfileError::Syntax(s)) => vec![("(syntax)".into(), s)],
        Err(ProfileError::Invalid(v)) => v.into_iter().map(|e| (e.field, e.reason)).collect(),
        Ok(p) => match p.validate(Some(&Table)) {
            Ok(()) => vec![],
            Err(e) => e
                .fields()
                .iter()
                .map(|e| (e.field.clone(), e.reason.clone()))
                .collect(),
        },
    }
}

const CASES: &[(&str, &str, &str, &str)] = &[
    // (case, profile, field, reason fragment)
    ("unknown default action", r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#, "defaultAction", "unknown variant `SCMP_ACT_BOGUS`"),
    ("unknown rule action", r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"ALLOW"}]}"#, "syscalls[0].action", "unknown variant `ALLOW`"),
    ("unknown operator", r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_APPROX"}]}]}"#, "syscalls[0].args[0].op", "unknown variant `SCMP_CMP_APPROX`"),
    ("unknown architecture", r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_Z80"]}"#, "architectures[0]", "unknown variant `SCMP_ARCH_Z80`"),
    ("errnoRet on ALLOW", r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","errnoRet":1}]}"#, "syscalls[0].errnoRet", "not allowed with action SCMP_ACT_ALLOW"),
    ("defaultErrnoRet on ALLOW", r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":38}"#, "defaultErrnoRet", "not allowed with defaultAction SCMP_ACT_ALLOW"),
    ("errnoRet too large", r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":70000}]}"#, "syscalls[0].errnoRet", "out of range 0..=4094 for SCMP_ACT_ERRNO"),
    ("trace message too large", r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_TRACE","errnoRet":70000}]}"#, "syscalls[0].errnoRet", "out of range 0..=65535 for SCMP_ACT_TRACE"),
    ("arg index 6", r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#, "syscalls[0].args[0].index", "out of range 0..=5"),
    ("arg compared twice", r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]}]}"#, "syscalls[0].args[1].index", "compared twice"),
    ("empty names", r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":[],"action":"SCMP_ACT_ALLOW"}]}"#, "syscalls[0].names", "at least one syscall"),
    ("names missing", r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"action":"SCMP_ACT_ALLOW"}]}"#, "syscalls[0].names", "at least one syscall"),
    ("syscall name with bad characters", r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["Read()"],"action":"SCMP_ACT_ALLOW"}]}"#, "syscalls[0].names[0]", "not a syscall name"),
    ("unknown syscall", r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","raed"],"action":"SCMP_ACT_ALLOW"}]}"#, "syscalls[0].names[1]", "`raed` is not a syscall on SCMP_ARCH_X86_64, SCMP_ARCH_X86 (according to test table)"),
    ("same syscall two actions", r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},{"names":["write","read"],"action":"SCMP_ACT_LOG"}]}"#, "syscalls[1].names[1]", "also in syscalls[0] with action SCMP_ACT_ALLOW"),
    ("same syscall two errnos", r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1},{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#, "syscalls[1].names[0]", "cannot have two actions"),
    ("notify as default", r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/run/agent.sock"}"#, "defaultAction", "cannot be the default action"),
    ("notify without listener", r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#, "syscalls[0].action", "needs listenerPath"),
    ("listener metadata alone", r#"{"defaultAction":"SCMP_ACT_ERRNO","listenerMetadata":"x"}"#, "listenerMetadata", "without listenerPath"),
    ("relative listener path", r#"{"defaultAction":"SCMP_ACT_ERRNO","listenerPath":"agent.sock"}"#, "listenerPath", "not an absolute path"),
    ("unknown flag", r#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_FAST"]}"#, "flags[0]", "unknown variant"),
    ("unknown field (typo)", r#"{"defaultAction":"SCMP_ACT_ERRNO","sycalls":[]}"#, "sycalls", "unknown field `sycalls`, expected one of"),
    ("missing defaultAction", r#"{"syscalls":[]}"#, "(root)", "missing field `defaultAction`"),
    ("negative errnoRet", r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":-1}"#, "defaultErrnoRet", "invalid value"),
    ("bad errno name", r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrno":"EWHATEVER"}"#, "defaultErrno", "not a Linux errno name"),
    ("errno name disagrees with number", r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrno":"ENOSYS","defaultErrnoRet":1}"#, "defaultErrno", "`ENOSYS` is 38"),
    ("both name and names", r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ALLOW"}]}"#, "syscalls[0].name", "use only `names`"),
    ("other kind", "apiVersion: seccomp-operator.dev/v1alpha1\nkind: ProfileBinding\nspec: {}\n", "kind", "expected SeccompProfile"),
    ("foreign group", "apiVersion: example.com/v1\nkind: SeccompProfile\nspec: {}\n", "apiVersion", "is not seccomp-operator.dev"),
    ("resource without spec", "apiVersion: seccomp-operator.dev/v1alpha1\nkind: SeccompProfile\nmetadata: {name: x}\n", "spec", "missing"),
    ("resource field path", "apiVersion: seccomp-operator.dev/v1alpha1\nkind: SeccompProfile\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n  syscalls:\n  - names: [read]\n    action: SCMP_ACT_ALOW\n", "spec.syscalls[0].action", "unknown variant `SCMP_ACT_ALOW`"),
    ("base name not an object name", "apiVersion: seccomp-operator.dev/v1alpha1\nkind: SeccompProfile\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n  baseProfileName: My_Base\n", "spec.baseProfileName", "not a valid object name"),
    ("unknown built-in base", "apiVersion: seccomp-operator.dev/v1alpha1\nkind: SeccompProfile\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n  baseProfileName: builtin:nope\n", "spec.baseProfileName", "not a built-in base profile"),
    ("not an object", "[1, 2, 3]", "(syntax)", "must be a JSON/YAML object"),
    ("not JSON or YAML", "{\"defaultAction\": ", "(syntax)", "neither JSON"),
];

#[test]
fn invalid_profiles_get_errors_naming_the_field() {
    assert!(CASES.len() >= 20);
    let mut failures = Vec::new();
    for (case, text, field, fragment) in CASES {
        let errors = errors_of(text);
        let ok = errors
            .iter()
            .any(|(f, r)| f == field && r.contains(fragment));
        if !ok {
            failures.push(format!(
                "{case}: wanted `{field}: ...{fragment}...`, got {errors:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn compat_only_syscalls_are_known_through_the_compat_arch() {
    // chown32 exists only on 32-bit x86; a profile for x86_64 + compat may list it.
    let errs = errors_of(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["chown32"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert!(errs.is_empty(), "{errs:?}");
    // ... but not when only x86_64 is listed.
    let errs = errors_of(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["chown32"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
}

#[test]
fn valid_profiles_pass() {
    for text in [
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}"#,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"op":"SCMP_CMP_MASKED_EQ"}]},{"names":["clone"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        "apiVersion: seccomp-operator.dev/v1alpha1\nkind: SeccompProfile\nmetadata: {name: web, namespace: shop}\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n  baseProfileName: builtin:runc\n  syscalls:\n  - names: [read]\n    action: SCMP_ACT_ALLOW\n",
    ] {
        let errs = errors_of(text);
        assert!(errs.is_empty(), "{text}: {errs:?}");
    }
}

#[test]
fn oversized_profiles_are_rejected() {
    let names: Vec<String> = (0..60_000).map(|i| format!("\"s{i:06}\"")).collect();
    let text = format!(
        r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{{"names":[{}],"action":"SCMP_ACT_ALLOW"}}]}}"#,
        names.join(",")
    );
    let p = parse_profile(&text, &EvalContext::host()).unwrap();
    let errs = validate_spec(&p.spec, None).unwrap_err();
    assert_eq!(
        errs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "spec.syscalls[0].names: 60000 names, over the limit of 1024",
            "spec.syscalls: 60000 syscall names in all rules, over the limit of 4096"
        ],
        "only the sizes are reported, not 60000 problems"
    );
}

#[test]
fn many_rules_of_few_names_hit_the_total() {
    let rules: Vec<String> = (0..1000)
        .map(|_| {
            r#"{"names":["read","write","close","openat","mmap"],"action":"SCMP_ACT_ALLOW"}"#
                .to_owned()
        })
        .collect();
    let text = format!(
        r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{}]}}"#,
        rules.join(",")
    );
    let p = parse_profile(&text, &EvalContext::host()).unwrap();
    let errs = validate_spec(&p.spec, None).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        errs[0].to_string(),
        "spec.syscalls: 5000 syscall names in all rules, over the limit of 4096"
    );
}

#[test]
fn error_lists_are_bounded() {
    let names: Vec<String> = (0..1000).map(|i| format!("\"bad-{i}\"")).collect();
    let text = format!(
        r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{{"names":[{}],"action":"SCMP_ACT_ALLOW"}}]}}"#,
        names.join(",")
    );
    let p = parse_profile(&text, &EvalContext::host()).unwrap();
    let errs = validate_spec(&p.spec, None).unwrap_err();
    assert_eq!(errs.len(), 1000);
    let shown = seccomp_profile::ProfileError::Invalid(errs).to_string();
    assert!(
        shown.len() <= seccomp_profile::limits::MAX_MESSAGE_BYTES,
        "{}",
        shown.len()
    );
    assert!(shown.ends_with("and 990 more"), "{shown}");
}
