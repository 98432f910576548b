//! `seccompctl push` and `pull` against the local registries of `hack/registry.sh up` (one with
//! TLS and basic auth, one plain HTTP), and oras on the other side. Without them the tests that
//! need them print SKIP with the reason; under CI=true they must run (SECCOMP_ALLOW_SKIP=1 lets
//! them skip there too). What is refused before any connection is tested without a registry.

mod common;
use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const ARTIFACT_TYPE: &str = "application/vnd.cncf.seccomp-profile.config.v1+json";

/// The local registries of `hack/registry.sh up`, with this file's helpers.
struct Env(profile_registry::testbed::TestBed);

impl std::ops::Deref for Env {
    type Target = profile_registry::testbed::TestBed;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// The local registries, or `None` (a test then returns) with SKIP and the reason printed;
/// under CI a missing registry fails the test.
fn registries() -> Option<Env> {
    profile_registry::testbed::TestBed::require(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .map(Env)
}

/// `cmd` with `stdin` written to its standard input.
fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    // A command that refuses its arguments exits without reading its input: the pipe may
    // then be closed before this write, which is not the test's failure.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("writing stdin: {e}"),
        _ => {}
    }
    child.wait_with_output().unwrap()
}

impl Env {
    /// `seccompctl ARGS --ca-file CA --username tenant --password-stdin`, the password piped.
    fn as_tenant(&self, args: &[&str]) -> Output {
        run_with_stdin(
            seccompctl()
                .args(args)
                .arg("--ca-file")
                .arg(&self.ca)
                .args(["--username", &self.user, "--password-stdin"]),
            &format!("{}\n", self.password),
        )
    }

    /// oras, run in `dir` (file names relative to it) against the TLS registry as the tenant.
    fn oras(&self, dir: &Path, args: &[&str]) -> String {
        let out = run(Command::new(&self.oras)
            .current_dir(dir)
            .args(args)
            .arg("--ca-file")
            .arg(&self.ca)
            .args(["-u", &self.user, "-p", &self.password]));
        let said = text(&out.stdout) + &text(&out.stderr);
        assert!(out.status.success(), "oras {args:?}: {said}");
        said
    }

    /// oras pushes `file` (in `dir`) to `target` as a profile artifact; `config`: with the
    /// typed config blob (`{}`), else the empty config and only the artifact type.
    fn oras_push(&self, dir: &Path, target: &str, file: &str, config: bool) {
        std::fs::write(dir.join("cfg.json"), "{}").unwrap();
        let cfg = format!("cfg.json:{ARTIFACT_TYPE}");
        let layer = format!("{file}:application/json");
        let mut args = vec!["push", target];
        if config {
            args.extend_from_slice(&["--config", &cfg]);
        }
        args.extend_from_slice(&["--artifact-type", ARTIFACT_TYPE, &layer]);
        self.oras(dir, &args);
    }
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The one line `push` prints on stdout: `sha256:<64 hex>`.
fn digest_line(out: &Output) -> String {
    let stdout = text(&out.stdout);
    let digest = stdout
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("stdout is not one line: {stdout:?}"));
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a digest: {stdout:?}"));
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) && !hex.contains('\n'),
        "not a digest: {stdout:?}"
    );
    digest.to_owned()
}

const PROFILE: &str = "apiVersion: seccomp-operator.dev/v1alpha1\nkind: SeccompProfile\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n  baseProfileName: builtin:runc\n  syscalls:\n    - names: [read, write, mkdirat]\n      action: SCMP_ACT_ALLOW\n";

fn write_profile(dir: &Path) -> PathBuf {
    let p = dir.join("web.yaml");
    std::fs::write(&p, PROFILE).unwrap();
    p
}

/// What `convert --to oci` renders for `file`: what `push` must push.
fn rendered(file: &Path) -> Vec<u8> {
    let out = run(seccompctl().args(["convert", "--to", "oci"]).arg(file));
    ok(&out, "convert");
    out.stdout
}

#[test]
fn push_prints_the_digest_and_pull_writes_the_profile_byte_for_byte() {
    let Some(env) = registries() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = write_profile(dir.path());
    let file_arg = file.to_str().unwrap();
    let target = format!("{}/tests/cli/web:v1", env.tls);

    let out = env.as_tenant(&["push", &target, file_arg]);
    ok(&out, "push");
    let digest = digest_line(&out);
    let pinned = format!("oci://{}/tests/cli/web@{digest}", env.tls);
    assert!(text(&out.stderr).contains(&pinned), "{}", text(&out.stderr));
    let again = env.as_tenant(&["push", &format!("oci://{target}"), file_arg]);
    ok(&again, "push again");
    assert_eq!(
        digest_line(&again),
        digest,
        "the same profile, another digest"
    );

    // -o: the file is the rendered profile, the digest on stdout.
    let out_file = dir.path().join("pulled.json");
    let out = env.as_tenant(&["pull", &target, "-o", out_file.to_str().unwrap()]);
    ok(&out, "pull -o");
    assert_eq!(digest_line(&out), digest);
    let profile = rendered(&file);
    assert_eq!(std::fs::read(&out_file).unwrap(), profile);

    // No -o: the profile on stdout, the digest on stderr; by digest as by tag.
    for reference in [target.as_str(), pinned.as_str()] {
        let out = env.as_tenant(&["pull", reference]);
        ok(&out, "pull");
        assert_eq!(out.stdout, profile, "{reference}");
        assert!(text(&out.stderr).contains(&digest), "{}", text(&out.stderr));
    }
}

#[test]
fn credentials_come_from_a_docker_config_file_or_are_none() {
    let Some(env) = registries() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = write_profile(dir.path());
    let target = format!("{}/tests/cli/config:v1", env.tls);
    let config_dir = dir.path().join("docker");
    std::fs::create_dir(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.json"),
        format!(
            r#"{{"auths": {{"https://{}": {{"username": "{}", "password": "{}"}}}}}}"#,
            env.tls, env.user, env.password
        ),
    )
    .unwrap();
    let ca = env.ca.to_str().unwrap();

    // $DOCKER_CONFIG/config.json.
    let out = run(seccompctl()
        .args(["push", "--ca-file", ca, &target])
        .arg(&file)
        .env("DOCKER_CONFIG", &config_dir));
    ok(&out, "push with $DOCKER_CONFIG");
    // --registry-config, whatever $DOCKER_CONFIG says.
    let out = run(seccompctl()
        .args(["pull", "--ca-file", ca, &target, "--registry-config"])
        .arg(config_dir.join("config.json"))
        .env("DOCKER_CONFIG", dir.path()));
    ok(&out, "pull with --registry-config");
    // No config file at all: anonymous, refused, and the message says what to do.
    let out = run(seccompctl()
        .args(["pull", "--ca-file", ca, &target])
        .env_remove("DOCKER_CONFIG")
        .env("HOME", dir.path()));
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("credentials") && stderr.contains("--password-stdin"),
        "{stderr}"
    );
    // A named file that does not exist is an error, not anonymous access.
    let out = run(seccompctl()
        .args(["pull", "--ca-file", ca, &target, "--registry-config"])
        .arg(dir.path().join("none.json")));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--registry-config: reading"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_wrong_password_is_refused_naming_the_credentials() {
    let Some(env) = registries() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = write_profile(dir.path());
    let target = format!("{}/tests/cli/auth:v1", env.tls);
    for args in [
        vec!["push", target.as_str(), file.to_str().unwrap()],
        vec!["pull", target.as_str()],
    ] {
        let out = run_with_stdin(
            seccompctl()
                .args(&args)
                .arg("--ca-file")
                .arg(&env.ca)
                .args(["--username", &env.user, "--password-stdin"]),
            "not-the-password\n",
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains("credentials"),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).contains("not-the-password"));
    }
}

#[test]
fn plain_http_only_when_asked_for() {
    let Some(env) = registries() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = write_profile(dir.path());
    let target = format!("{}/tests/cli/plain:v1", env.plain);
    let out = run(seccompctl()
        .args(["push", "--plain-http", &target])
        .arg(&file)
        .env_remove("DOCKER_CONFIG")
        .env("HOME", dir.path()));
    ok(&out, "push --plain-http");
    let digest = digest_line(&out);
    let out = run(seccompctl().args(["pull", "--plain-http", &target]));
    ok(&out, "pull --plain-http");
    assert_eq!(out.stdout, rendered(&file));
    assert!(text(&out.stderr).contains(&digest));

    // HTTPS (the default) to a plain-HTTP registry fails, and says what to do.
    let out = run(seccompctl().args(["pull", &target]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("pass --plain-http"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn oras_reads_what_seccompctl_pushes_and_seccompctl_what_oras_pushes() {
    let Some(env) = registries() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = write_profile(dir.path());
    let target = format!("{}/tests/cli/interop:seccompctl", env.tls);
    let out = env.as_tenant(&["push", &target, file.to_str().unwrap()]);
    ok(&out, "push");
    let digest = digest_line(&out);
    let said = env.oras(dir.path(), &["pull", "-o", "from-oras", &target]);
    assert!(said.contains(&digest), "{said}");
    assert_eq!(
        std::fs::read(dir.path().join("from-oras/profile.json")).unwrap(),
        rendered(&file)
    );

    std::fs::write(dir.path().join("p.json"), rendered(&file)).unwrap();
    for (tag, config) in [("oras", true), ("oras-noconfig", false)] {
        let target = format!("{}/tests/cli/interop:{tag}", env.tls);
        env.oras_push(dir.path(), &target, "p.json", config);
        let out_file = dir.path().join(format!("{tag}.json"));
        let out = env.as_tenant(&["pull", &target, "-o", out_file.to_str().unwrap()]);
        ok(&out, tag);
        assert_eq!(std::fs::read(&out_file).unwrap(), rendered(&file), "{tag}");
    }
}

#[test]
fn pull_refuses_wrong_digests_oversize_layers_and_invalid_profiles_writing_nothing() {
    let Some(env) = registries() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.json");
    let out_arg = out_file.to_str().unwrap();

    // A digest nothing was pushed as.
    let file = write_profile(dir.path());
    let target = format!("{}/tests/cli/refused:good", env.tls);
    ok(
        &env.as_tenant(&["push", &target, file.to_str().unwrap()]),
        "push",
    );
    let wrong = format!("{}/tests/cli/refused@sha256:{}", env.tls, "0".repeat(64));
    let out = env.as_tenant(&["pull", &wrong, "-o", out_arg]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("not found") || stderr.contains("digest"),
        "{stderr}"
    );

    // A layer over 1 MiB, refused from its manifest.
    let size = (1 << 20) + (1 << 20) / 10;
    std::fs::write(dir.path().join("big.json"), vec![b' '; size]).unwrap();
    let target = format!("{}/tests/cli/refused:big", env.tls);
    env.oras_push(dir.path(), &target, "big.json", true);
    let out = env.as_tenant(&["pull", &target, "-o", out_arg]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{size} bytes, over the limit of 1048576 bytes")),
        "{stderr}"
    );

    // A valid artifact whose profile is not a valid profile: exit 1, named by the reference.
    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_SOMETIMES"}]}"#,
    )
    .unwrap();
    let target = format!("{}/tests/cli/refused:invalid", env.tls);
    env.oras_push(dir.path(), &target, "bad.json", true);
    for extra in [&["-o", out_arg][..], &[]] {
        let mut args = vec!["pull", target.as_str()];
        args.extend_from_slice(extra);
        let out = env.as_tenant(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("oci://{target}"))
                && stderr.contains("SCMP_ACT_SOMETIMES")
                && stderr.contains("nothing written"),
            "{stderr}"
        );
    }
    assert!(
        !out_file.exists(),
        "a refused pull wrote {}",
        out_file.display()
    );
}

// What push refuses before it connects: no registry needed (port 9 of loopback answers nothing).
#[test]
fn push_refuses_other_bases_invalid_profiles_and_a_password_on_the_profiles_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = "127.0.0.1:9/p:v1";
    let push = |file: &str, extra: &[&str]| {
        run(seccompctl()
            .args(["push", nowhere, file])
            .args(extra)
            .current_dir(dir.path())
            .env_remove("DOCKER_CONFIG")
            .env("HOME", dir.path()))
    };
    std::fs::write(
        dir.path().join("two.yaml"),
        "apiVersion: seccomp-operator.dev/v1alpha1\nkind: SeccompProfile\nmetadata:\n  name: base\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n---\napiVersion: seccomp-operator.dev/v1alpha1\nkind: SeccompProfile\nmetadata:\n  name: child\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n  baseProfileName: base\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("oci-base.yaml"),
        format!("apiVersion: seccomp-operator.dev/v1alpha1\nkind: SeccompProfile\nmetadata:\n  name: x\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n  baseProfileName: oci://r.io/p@sha256:{}\n", "a".repeat(64)),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_SOMETIMES"}]}"#,
    )
    .unwrap();

    for (file, says) in [
        (
            "two.yaml#child",
            "spec.baseProfileName `base`: push takes a whole profile",
        ),
        (
            "oci-base.yaml",
            "spec.baseProfileName `oci://r.io/p@sha256:",
        ),
        ("bad.json", "SCMP_ACT_SOMETIMES"),
    ] {
        let out = push(file, &[]);
        assert_eq!(out.status.code(), Some(1), "{file}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(says) && stderr.contains("nothing pushed"),
            "{file}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
    // Several profiles: pick one.
    let out = push("two.yaml", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("holds 2 profiles"),
        "{}",
        text(&out.stderr)
    );
    // The password and the profile cannot both come from stdin.
    let out = run_with_stdin(
        seccompctl()
            .args(["push", nowhere, "-", "--username", "u", "--password-stdin"])
            .current_dir(dir.path()),
        "pw\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--password-stdin reads the password from standard input"),
        "{}",
        text(&out.stderr)
    );
    // A reference without a version.
    let out = run(seccompctl()
        .args(["push", "127.0.0.1:9/p", "bad.json"])
        .current_dir(dir.path()));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("REF: "), "{}", text(&out.stderr));
}
