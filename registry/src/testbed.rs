//! The local test registries that `hack/registry.sh up` starts (Debian's docker-registry: one
//! with TLS and basic auth, one plain HTTP) and the oras it builds, as tests read them from
//! `.local-registry/env`: the one place that knows that file. For tests only.

use std::collections::BTreeMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The test bed, as `hack/registry.sh up` described it.
#[derive(Clone, Debug)]
pub struct TestBed {
    /// `ip:5443`: TLS and basic auth, on an address pods reach.
    pub tls: String,
    /// `127.0.0.1:5080`: plain HTTP, no auth.
    pub plain: String,
    /// The TLS registry's CA certificate (PEM).
    pub ca: PathBuf,
    /// The user of the TLS registry.
    pub user: String,
    /// Its password.
    pub password: String,
    /// The oras binary.
    pub oras: PathBuf,
    /// `.local-registry/`, the registries' state.
    pub state: PathBuf,
}

impl TestBed {
    /// The test bed of the repository at `repo`, when it is up and answers; else why not.
    pub fn load(repo: &Path) -> Result<Self, String> {
        let state = repo.join(".local-registry");
        let file = state.join("env");
        let text = std::fs::read_to_string(&file).map_err(|e| {
            format!(
                "no local registry ({}: {e}): run hack/registry.sh up",
                file.display()
            )
        })?;
        let vars: BTreeMap<&str, String> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k, v.trim_matches(['\'', '"']).to_owned()))
            .collect();
        let var = |k: &str| {
            vars.get(k)
                .cloned()
                .ok_or_else(|| format!("{} has no {k}: run hack/registry.sh up", file.display()))
        };
        let bed = TestBed {
            tls: var("REGISTRY_TLS")?,
            plain: var("REGISTRY_PLAIN")?,
            ca: var("REGISTRY_CA")?.into(),
            user: var("REGISTRY_USER")?,
            password: var("REGISTRY_PASSWORD")?,
            oras: var("ORAS")?.into(),
            state,
        };
        for addr in [&bed.tls, &bed.plain] {
            let answers = addr
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
            if !answers {
                return Err(format!(
                    "the local registry at {addr} does not answer: run hack/registry.sh up"
                ));
            }
        }
        if !bed.oras.is_file() {
            return Err(format!(
                "oras is not at {}: run hack/registry.sh up",
                bed.oras.display()
            ));
        }
        Ok(bed)
    }

    /// [`TestBed::load`], or None with SKIP and the reason printed; under `CI` a missing test
    /// bed panics (unless `SECCOMP_ALLOW_SKIP` is set).
    pub fn require(repo: &Path) -> Option<Self> {
        match TestBed::load(repo) {
            Ok(bed) => Some(bed),
            Err(why) => {
                if std::env::var_os("CI").is_some()
                    && std::env::var_os("SECCOMP_ALLOW_SKIP").is_none()
                {
                    panic!("CI must run the registry tests, but: {why}");
                }
                eprintln!("SKIP: {why}");
                None
            }
        }
    }
}
