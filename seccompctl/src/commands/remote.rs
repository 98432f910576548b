//! What `push` and `pull` share: the reference, how to reach the registry (TLS or plain HTTP,
//! extra CAs, a timeout) and the credentials (`--username` with `--password-stdin`, or a docker
//! config file), and one async runtime to run the registry client on.

use anyhow::{anyhow, bail, Context};
use profile_registry::credentials::from_docker_config;
use profile_registry::{Credentials, Registry, RegistryError, RegistryOptions};
use seccomp_profile::OciReference;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How to reach the registry, for `push` and `pull`.
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Talk plain HTTP, without TLS (only for a registry that has no TLS). Without it HTTPS is
    /// used, and a registry that only answers plain HTTP is refused.
    #[arg(long)]
    pub plain_http: bool,
    /// A PEM file of CA certificates to trust besides the system's (a private registry's CA);
    /// may be given several times.
    #[arg(long = "ca-file", value_name = "PATH")]
    pub ca_files: Vec<PathBuf>,
    /// The user to log in as; the password is read from standard input (--password-stdin).
    /// Without it, the credentials come from the docker config file (--registry-config).
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password of --username from standard input (its first line).
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// The docker config file that holds the registry's credentials (its `auths`, as `docker
    /// login` and `oras login` write them). Default: $DOCKER_CONFIG/config.json, else
    /// ~/.docker/config.json; when that default file does not exist, access is anonymous.
    #[arg(long, value_name = "PATH", conflicts_with = "username")]
    pub registry_config: Option<PathBuf>,
    /// The longest the whole push or pull may take (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// `REF` of `push` and `pull`: `REGISTRY/REPOSITORY:TAG` or `…@sha256:DIGEST`, with or without
/// `oci://`.
pub fn parse_reference(text: &str) -> anyhow::Result<OciReference> {
    OciReference::parse(text).map_err(|e| anyhow!("REF: {e}"))
}

/// Where the credentials come from (decided before anything is read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `--username`; the password is on standard input.
    Stdin {
        /// The user.
        username: String,
    },
    /// A docker config file: named with `--registry-config` (`required`: a missing file is an
    /// error), or the default one (a missing file means anonymous access).
    Config {
        /// The file.
        path: PathBuf,
        /// Whether the file must exist.
        required: bool,
    },
    /// No file to look in (no `$DOCKER_CONFIG`, no home directory): anonymous access.
    Anonymous,
}

/// Where `args` take the credentials from, given `$DOCKER_CONFIG` and `$HOME`.
pub fn credential_source(
    args: &RegistryArgs,
    docker_config: Option<OsString>,
    home: Option<OsString>,
) -> CredentialSource {
    if let Some(username) = &args.username {
        return CredentialSource::Stdin {
            username: username.clone(),
        };
    }
    if let Some(path) = &args.registry_config {
        return CredentialSource::Config {
            path: path.clone(),
            required: true,
        };
    }
    let nonempty = |v: Option<OsString>| v.filter(|v| !v.is_empty());
    let path = match (nonempty(docker_config), nonempty(home)) {
        (Some(dir), _) => PathBuf::from(dir).join("config.json"),
        (None, Some(home)) => PathBuf::from(home).join(".docker/config.json"),
        (None, None) => return CredentialSource::Anonymous,
    };
    CredentialSource::Config {
        path,
        required: false,
    }
}

/// The password `--password-stdin` read: its first line (a trailing newline, `\n` or `\r\n`,
/// is not part of it, as for `docker login --password-stdin`).
pub fn password_from(bytes: Vec<u8>) -> anyhow::Result<String> {
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow!("--password-stdin: standard input is not UTF-8 text"))?;
    let password = text.strip_suffix('\n').unwrap_or(&text);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("--password-stdin: standard input held no password");
    }
    if password.contains('\n') {
        bail!("--password-stdin: standard input holds more than one line; give the password alone");
    }
    Ok(password.to_owned())
}

/// The credentials `source` holds for `registry` (`host[:port]`); `stdin` reads standard input
/// (only for [`CredentialSource::Stdin`]).
pub fn read_credentials(
    source: &CredentialSource,
    registry: &str,
    stdin: impl FnOnce() -> std::io::Result<Vec<u8>>,
) -> anyhow::Result<Credentials> {
    match source {
        CredentialSource::Stdin { username } => {
            let bytes = stdin().context("--password-stdin: reading standard input")?;
            Ok(Credentials::Basic {
                username: username.clone(),
                password: password_from(bytes)?,
            })
        }
        CredentialSource::Config { path, required } => {
            let bytes = match std::fs::read(path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                    return Ok(Credentials::Anonymous)
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        if *required {
                            format!("--registry-config: reading {}", path.display())
                        } else {
                            format!("reading the docker config {}", path.display())
                        }
                    })
                }
            };
            Ok(from_docker_config(
                &bytes,
                &path.display().to_string(),
                registry,
            )?)
        }
        CredentialSource::Anonymous => Ok(Credentials::Anonymous),
    }
}

/// The credentials `args` give for `reference`'s registry.
pub fn credentials(args: &RegistryArgs, reference: &OciReference) -> anyhow::Result<Credentials> {
    let source = credential_source(
        args,
        std::env::var_os("DOCKER_CONFIG"),
        std::env::var_os("HOME"),
    );
    read_credentials(&source, &reference.registry, || {
        let mut bytes = Vec::new();
        // A password is short: a bound keeps a mistaken pipe from being read whole.
        std::io::stdin()
            .lock()
            .take(64 << 10)
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    })
}

/// Whether `pem` holds a PEM certificate.
pub fn has_certificate(pem: &[u8]) -> bool {
    pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----")
}

/// The registry client `args` describe.
pub fn registry(args: &RegistryArgs) -> anyhow::Result<Registry> {
    let mut ca_pem = Vec::new();
    for path in &args.ca_files {
        ca_pem.push(read_ca(path)?);
    }
    Ok(Registry::new(RegistryOptions {
        plain_http: args.plain_http,
        ca_pem,
        proxy: None,
        timeout: args.timeout,
    })?)
}

fn read_ca(path: &Path) -> anyhow::Result<Vec<u8>> {
    let pem =
        std::fs::read(path).with_context(|| format!("--ca-file: reading {}", path.display()))?;
    if !has_certificate(&pem) {
        bail!(
            "--ca-file {}: holds no PEM certificate (no `-----BEGIN CERTIFICATE-----` line)",
            path.display()
        );
    }
    Ok(pem)
}

/// A registry error, with what the user can do about it when the error alone does not say.
pub fn explain(e: RegistryError, credentials: &Credentials, args: &RegistryArgs) -> anyhow::Error {
    let hint = match &e {
        RegistryError::Unauthorized { .. } if *credentials == Credentials::Anonymous => Some(
            "no credentials were found for this registry: pass --username with --password-stdin, or log in (docker login, oras login) or name a docker config file with --registry-config",
        ),
        RegistryError::Failed { reason, .. } if !args.plain_http && looks_like_plain_http(reason) => Some(
            "the registry does not seem to speak TLS: if it only has plain HTTP, pass --plain-http",
        ),
        // A push's blob requests refused with 401 or 403 come back as plain failures.
        RegistryError::Failed { reason, .. }
            if reason.contains("(401 Unauthorized)") || reason.contains("(403 Forbidden)") =>
        {
            Some(if *credentials == Credentials::Anonymous {
                "the registry refused access: no credentials were found for it: pass --username with --password-stdin, or log in (docker login, oras login) or name a docker config file with --registry-config"
            } else {
                "the registry refused access: check the credentials"
            })
        }
        RegistryError::Failed { reason, .. } if reason.contains("UnknownIssuer") => Some(
            "the registry's certificate is not signed by a CA this machine trusts: pass the registry's CA with --ca-file",
        ),
        _ => None,
    };
    // As text: the error's own message says everything, and its `source` (an artifact error)
    // would be printed twice by `{:#}`.
    match hint {
        Some(h) => anyhow!("{e} ({h})"),
        None => anyhow!("{e}"),
    }
}

/// Whether a failure reads like TLS spoken to a plain-HTTP server.
fn looks_like_plain_http(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    [
        "invalidcontenttype",
        "invalid content type",
        "corrupt message",
        "wrong version number",
        "http request to an https server",
    ]
    .iter()
    .any(|s| r.contains(s))
}

/// Run `work` to completion on a runtime of its own.
pub fn block_on<F: std::future::Future>(work: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(runtime.block_on(work))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        registry: RegistryArgs,
    }

    fn args(argv: &[&str]) -> Result<RegistryArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("x").chain(argv.iter().copied())).map(|c| c.registry)
    }

    #[test]
    fn username_and_password_stdin_come_together_and_exclude_a_config_file() {
        let a = args(&["--username", "u", "--password-stdin"]).unwrap();
        assert_eq!(
            credential_source(&a, Some("/d".into()), Some("/h".into())),
            CredentialSource::Stdin {
                username: "u".into()
            }
        );
        for bad in [
            &["--username", "u"][..],
            &["--password-stdin"],
            &[
                "--username",
                "u",
                "--password-stdin",
                "--registry-config",
                "c.json",
            ],
        ] {
            assert!(args(bad).is_err(), "{bad:?} accepted");
        }
        let a = args(&[
            "--timeout",
            "90s",
            "--ca-file",
            "a.pem",
            "--ca-file",
            "b.pem",
        ])
        .unwrap();
        assert_eq!(a.timeout, Duration::from_secs(90));
        assert_eq!(a.ca_files.len(), 2);
        assert!(!a.plain_http);
        assert!(args(&["--timeout", "soon"]).is_err());
    }

    #[test]
    fn the_config_file_is_named_or_found_in_docker_config_or_home() {
        let a = args(&["--registry-config", "/etc/c.json"]).unwrap();
        assert_eq!(
            credential_source(&a, Some("/d".into()), None),
            CredentialSource::Config {
                path: "/etc/c.json".into(),
                required: true
            }
        );
        let a = args(&[]).unwrap();
        assert_eq!(
            credential_source(&a, Some("/d".into()), Some("/h".into())),
            CredentialSource::Config {
                path: "/d/config.json".into(),
                required: false
            }
        );
        assert_eq!(
            credential_source(&a, Some("".into()), Some("/h".into())),
            CredentialSource::Config {
                path: "/h/.docker/config.json".into(),
                required: false
            }
        );
        assert_eq!(
            credential_source(&a, None, None),
            CredentialSource::Anonymous
        );
    }

    #[test]
    fn a_missing_default_file_is_anonymous_and_a_missing_named_one_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("config.json");
        let no_stdin = || -> std::io::Result<Vec<u8>> { panic!("stdin read") };
        let default = CredentialSource::Config {
            path: missing.clone(),
            required: false,
        };
        assert_eq!(
            read_credentials(&default, "r.io", no_stdin).unwrap(),
            Credentials::Anonymous
        );
        let named = CredentialSource::Config {
            path: missing.clone(),
            required: true,
        };
        let e = read_credentials(&named, "r.io", no_stdin).unwrap_err();
        assert!(
            format!("{e:#}").starts_with("--registry-config: reading "),
            "{e:#}"
        );

        std::fs::write(
            &missing,
            r#"{"auths": {"r.io:5443": {"auth": "dTpwOnc="}}}"#,
        )
        .unwrap();
        assert_eq!(
            read_credentials(&default, "r.io:5443", no_stdin).unwrap(),
            Credentials::Basic {
                username: "u".into(),
                password: "p:w".into()
            }
        );
        assert_eq!(
            read_credentials(&default, "other.io", no_stdin).unwrap(),
            Credentials::Anonymous
        );
        std::fs::write(&missing, "{").unwrap();
        let e = read_credentials(&default, "r.io", no_stdin).unwrap_err();
        assert!(e.to_string().contains("is not a docker config"), "{e}");
    }

    #[test]
    fn the_password_is_the_first_line_of_stdin() {
        let stdin = CredentialSource::Stdin {
            username: "u".into(),
        };
        let c = read_credentials(&stdin, "r.io", || Ok(b"s3cret\r\n".to_vec())).unwrap();
        assert_eq!(
            c,
            Credentials::Basic {
                username: "u".into(),
                password: "s3cret".into()
            }
        );
        assert_eq!(password_from(b"a b".to_vec()).unwrap(), "a b");
        for (input, says) in [
            (&b""[..], "held no password"),
            (b"\n", "held no password"),
            (b"a\nb\n", "more than one line"),
            (b"\xff", "not UTF-8"),
        ] {
            let e = password_from(input.to_vec()).unwrap_err();
            assert!(e.to_string().contains(says), "{input:?}: {e}");
        }
    }

    #[test]
    fn ca_files_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("ca.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        let e = read_ca(&bad).unwrap_err();
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
        let e = read_ca(&dir.path().join("none.pem")).unwrap_err();
        assert!(format!("{e:#}").starts_with("--ca-file: reading "), "{e:#}");
        assert!(has_certificate(b"x\n-----BEGIN CERTIFICATE-----\nMII"));
    }

    #[test]
    fn references_are_named_as_ref() {
        let e = parse_reference("r.io/p").unwrap_err();
        assert!(e.to_string().starts_with("REF: "), "{e}");
        assert!(e.to_string().contains("names no version"), "{e}");
        let r = parse_reference("oci://r.io:5443/t/p:v1").unwrap();
        assert_eq!(r.registry, "r.io:5443");
    }
}
