//! The registry client against real registries: the two of `hack/registry.sh up` (Debian's
//! docker-registry, distribution 2.8: one with TLS and basic auth, one plain HTTP), and oras
//! for what another client pushes and reads. Without them the tests print SKIP with the reason;
//! under CI=true they must run (SECCOMP_ALLOW_SKIP=1 lets them skip there too).
//!
//! Content that does not match its digest is made the real way: a pushed blob is rewritten in
//! the TLS registry's own storage (`.local-registry/data/tls/…`), which the registry then
//! serves under the old digest.

use profile_registry::artifact::{self, ARTIFACT_TYPE};
use profile_registry::{Credentials, Registry, RegistryError, RegistryOptions};
use seccomp_profile::limits::MAX_ARTIFACT_BYTES;
use seccomp_profile::OciReference;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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

impl Env {
    fn tls_client(&self) -> Registry {
        Registry::new(RegistryOptions {
            ca_pem: vec![std::fs::read(&self.ca).unwrap()],
            timeout: Duration::from_secs(30),
            ..Default::default()
        })
        .unwrap()
    }

    fn plain_client(&self) -> Registry {
        Registry::new(RegistryOptions {
            plain_http: true,
            timeout: Duration::from_secs(30),
            ..Default::default()
        })
        .unwrap()
    }

    fn tenant(&self) -> Credentials {
        Credentials::Basic {
            username: self.user.clone(),
            password: self.password.clone(),
        }
    }

    fn tls_ref(&self, path: &str) -> OciReference {
        OciReference::parse(&format!("{}/{path}", self.tls)).unwrap()
    }

    /// oras, run in `dir` (file names relative to it) against the TLS registry as the tenant.
    fn oras(&self, dir: &Path, args: &[&str]) -> String {
        let out = Command::new(&self.oras)
            .current_dir(dir)
            .args(args)
            .arg("--ca-file")
            .arg(&self.ca)
            .args(["-u", &self.user, "-p", &self.password])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "oras {args:?}: {text}");
        text
    }

    /// Where the TLS registry keeps the blob `digest` (manifests are blobs too).
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.state
            .join("data/tls/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

/// A profile no other run pushed: its blobs are this test's alone.
fn unique_profile() -> Vec<u8> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\",\"comment\":\"{}-{nanos:020}\"}}]}}\n",
        std::process::id()
    )
    .into_bytes()
}

const PROFILE: &[u8] =
    b"{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [{\"names\": [\"read\", \"write\"], \"action\": \"SCMP_ACT_ALLOW\"}]\n}\n";

#[tokio::test]
async fn a_pushed_profile_pulls_back_byte_for_byte_by_tag_and_by_digest() {
    let Some(env) = registries() else { return };
    let client = env.tls_client();
    let tagged = env.tls_ref("tests/crate/roundtrip:v1");
    let pushed = client
        .push(&tagged, PROFILE.to_vec(), &env.tenant())
        .await
        .unwrap();
    assert_eq!(
        pushed.digest,
        artifact::Artifact::new(PROFILE.to_vec()).unwrap().digest()
    );
    assert_eq!(pushed.pinned, tagged.pinned(&pushed.digest));
    let again = client
        .push(&tagged, PROFILE.to_vec(), &env.tenant())
        .await
        .unwrap();
    assert_eq!(
        again.digest, pushed.digest,
        "the same profile, another digest"
    );

    let pulled = client.pull(&tagged, &env.tenant()).await.unwrap();
    assert_eq!(pulled.profile, PROFILE);
    assert_eq!(pulled.digest, pushed.digest);
    let by_digest = client.pull(&pushed.pinned, &env.tenant()).await.unwrap();
    assert_eq!(by_digest.profile, PROFILE);
    assert_eq!(by_digest.digest, pushed.digest);

    // Pushing to the digest itself: accepted when it is the artifact's, refused otherwise.
    client
        .push(&pushed.pinned, PROFILE.to_vec(), &env.tenant())
        .await
        .unwrap();
    let other = tagged.pinned(&artifact::digest(b"something else"));
    let e = client
        .push(&other, PROFILE.to_vec(), &env.tenant())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("digest mismatch"), "{e}");
}

#[tokio::test]
async fn a_digest_nobody_pushed_is_not_found() {
    let Some(env) = registries() else { return };
    let client = env.tls_client();
    client
        .push(
            &env.tls_ref("tests/crate/pinned:v1"),
            PROFILE.to_vec(),
            &env.tenant(),
        )
        .await
        .unwrap();
    let wrong = env
        .tls_ref("tests/crate/pinned:v1")
        .pinned(&artifact::digest(b"not this artifact"));
    let e = client.pull(&wrong, &env.tenant()).await.unwrap_err();
    assert!(matches!(e, RegistryError::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("not found"), "{e}");
}

/// Rewrite one byte of a stored blob, keeping its length: the registry serves the new bytes
/// under the old digest. `None` when the storage cannot be written (not the registry's user).
fn tamper(file: &Path, from: &[u8], to: &[u8]) -> Option<()> {
    let mut bytes = std::fs::read(file).unwrap();
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| panic!("{} holds no {:?}", file.display(), from));
    bytes[at..at + from.len()].copy_from_slice(to);
    std::fs::write(file, bytes).ok()
}

#[tokio::test]
async fn content_that_is_not_what_its_digest_names_is_refused() {
    let Some(env) = registries() else { return };
    let client = env.tls_client();

    // A layer whose bytes changed under its digest.
    let profile = unique_profile();
    let r = env.tls_ref("tests/crate/tampered:layer");
    let pushed = client
        .push(&r, profile.clone(), &env.tenant())
        .await
        .unwrap();
    let layer = env.blob_file(&artifact::digest(&profile));
    if tamper(&layer, b"\"read\"", b"\"RAED\"").is_none() {
        let why = format!(
            "cannot write {} (run as the registry's user)",
            layer.display()
        );
        assert!(std::env::var_os("CI").is_none(), "CI: {why}");
        eprintln!("SKIP: {why}");
        return;
    }
    for reference in [&r, &pushed.pinned] {
        let e = client.pull(reference, &env.tenant()).await.unwrap_err();
        // oci-client checks the layer's digest as it streams it (`Invalid digest`), before
        // the crate's own check (`digest mismatch`) would: either refuses it.
        let text = e.to_string();
        assert!(
            text.to_lowercase().contains("digest") && text.contains("profile layer"),
            "{reference}: {text}"
        );
    }

    // A manifest whose bytes changed under its digest (still a valid manifest).
    let profile = unique_profile();
    let r = env.tls_ref("tests/crate/tampered:manifest");
    let pushed = client.push(&r, profile, &env.tenant()).await.unwrap();
    tamper(
        &env.blob_file(&pushed.digest),
        b"1970-01-01T00:00:00Z",
        b"1970-01-01T00:00:01Z",
    )
    .unwrap();
    for reference in [&r, &pushed.pinned] {
        let e = client.pull(reference, &env.tenant()).await.unwrap_err();
        let text = e.to_string();
        assert!(
            text.to_lowercase().contains("digest"),
            "{reference}: {text}"
        );
    }
}

#[tokio::test]
async fn profiles_over_one_mebibyte_are_refused_on_push_and_before_download_on_pull() {
    // Refused by the client: nothing listens on port 9, and the error is the size.
    let client = Registry::new(RegistryOptions::default()).unwrap();
    let nowhere = OciReference::parse("127.0.0.1:9/big:v1").unwrap();
    let e = client
        .push(
            &nowhere,
            vec![b' '; MAX_ARTIFACT_BYTES + 1],
            &Credentials::Anonymous,
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "the profile is {} bytes, over the limit",
            MAX_ARTIFACT_BYTES + 1
        )),
        "{e}"
    );

    let Some(env) = registries() else { return };
    let dir = tempfile_dir("big");
    let size = MAX_ARTIFACT_BYTES + MAX_ARTIFACT_BYTES / 10;
    std::fs::write(dir.join("p.json"), vec![b' '; size]).unwrap();
    std::fs::write(dir.join("cfg.json"), "{}").unwrap();
    let target = format!("{}/tests/crate/big:v1", env.tls);
    env.oras(
        &dir,
        &[
            "push",
            &target,
            "--config",
            &format!("cfg.json:{ARTIFACT_TYPE}"),
            "--artifact-type",
            ARTIFACT_TYPE,
            "p.json:application/json",
        ],
    );
    let e = env
        .tls_client()
        .pull(&env.tls_ref("tests/crate/big:v1"), &env.tenant())
        .await
        .unwrap_err();
    // The manifest's size is named: the layer was refused before a byte of it was read.
    assert!(
        e.to_string().contains(&format!(
            "the profile layer is {size} bytes, over the limit"
        )),
        "{e}"
    );
}

#[tokio::test]
async fn a_wrong_password_or_none_is_refused_naming_the_credentials() {
    let Some(env) = registries() else { return };
    let client = env.tls_client();
    let r = env.tls_ref("tests/crate/auth:v1");
    let wrong = Credentials::Basic {
        username: env.user.clone(),
        password: format!("{}x", env.password),
    };
    for creds in [wrong, Credentials::Anonymous] {
        let e = client.push(&r, PROFILE.to_vec(), &creds).await.unwrap_err();
        assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e:?}");
        assert!(e.to_string().contains("credentials"), "{e}");
        let e = client.pull(&r, &creds).await.unwrap_err();
        assert!(e.to_string().contains("credentials"), "{e}");
    }
}

#[tokio::test]
async fn plain_http_is_used_only_when_asked_for() {
    let Some(env) = registries() else { return };
    let r = OciReference::parse(&format!("{}/tests/crate/plain:v1", env.plain)).unwrap();
    let pushed = env
        .plain_client()
        .push(&r, PROFILE.to_vec(), &Credentials::Anonymous)
        .await
        .unwrap();
    let pulled = env
        .plain_client()
        .pull(&pushed.pinned, &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(pulled.profile, PROFILE);
    // HTTPS (the default) to the plain registry fails, and so does plain HTTP to the TLS one.
    let e = env
        .tls_client()
        .pull(&r, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::Failed { .. }), "{e:?}");
    let e = env
        .plain_client()
        .pull(&env.tls_ref("tests/crate/roundtrip:v1"), &env.tenant())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("HTTP request to an HTTPS server"),
        "{e}"
    );
}

/// A directory of its own under the target directory, emptied.
fn tempfile_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("registry-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn oras_reads_what_is_pushed_and_pushes_what_is_pulled() {
    let Some(env) = registries() else { return };
    let client = env.tls_client();
    let dir = tempfile_dir("oras");

    // Pushed here, pulled by oras: the layer is profile.json, byte for byte.
    let target = format!("{}/tests/crate/interop:ours", env.tls);
    client
        .push(
            &env.tls_ref("tests/crate/interop:ours"),
            PROFILE.to_vec(),
            &env.tenant(),
        )
        .await
        .unwrap();
    env.oras(&dir, &["pull", "-o", "out", &target]);
    assert_eq!(
        std::fs::read(dir.join("out/profile.json")).unwrap(),
        PROFILE
    );

    // Pushed by oras in KEP-6061's form: with the typed config, and with the empty one.
    std::fs::write(dir.join("p.json"), PROFILE).unwrap();
    std::fs::write(dir.join("cfg.json"), "{}").unwrap();
    let config = format!("cfg.json:{ARTIFACT_TYPE}");
    for (tag, extra) in [
        ("theirs", &["--config", config.as_str()][..]),
        ("noconfig", &[][..]),
    ] {
        let target = format!("{}/tests/crate/interop:{tag}", env.tls);
        let mut args = vec!["push", target.as_str()];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--artifact-type", ARTIFACT_TYPE, "p.json:application/json"]);
        let said = env.oras(&dir, &args);
        let pulled = client
            .pull(
                &env.tls_ref(&format!("tests/crate/interop:{tag}")),
                &env.tenant(),
            )
            .await
            .unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert_eq!(pulled.profile, PROFILE, "{tag}");
        assert!(said.contains(&pulled.digest), "{tag}: oras said {said}");
    }
}
