//! Pushing and pulling profile artifacts, through `oci-client`.

use crate::artifact::{self, Artifact, ArtifactError, MANIFEST_MEDIA_TYPE};
use crate::credentials::Credentials;
use futures::TryStreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use seccomp_profile::limits::MAX_ARTIFACT_BYTES;
use seccomp_profile::OciReference;
use std::time::Duration;

/// How to reach registries.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Plain HTTP instead of HTTPS (only for a registry without TLS, on request).
    pub plain_http: bool,
    /// PEM certificates trusted besides the system's (a private registry's CA).
    pub ca_pem: Vec<Vec<u8>>,
    /// Every connection through this HTTP proxy (the operator's egress guard).
    pub proxy: Option<String>,
    /// The longest one push or pull may take.
    pub timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            plain_http: false,
            ca_pem: Vec::new(),
            proxy: None,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Why a push or pull failed, in the user's terms; the registry's own words are kept.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The client could not be set up (a CA file that is not PEM, …).
    #[error("cannot set up the registry client: {0}")]
    Setup(String),
    /// The artifact is not a profile artifact, is too large, or its digest is wrong.
    #[error("{reference}: {problem}")]
    Artifact {
        /// The reference.
        reference: String,
        /// What is wrong (in the message: not a separate cause, so it is printed once).
        problem: ArtifactError,
    },
    /// The registry refused the credentials, or wants some.
    #[error("{reference}: the registry refused access ({reason}); check the credentials")]
    Unauthorized {
        /// The reference.
        reference: String,
        /// The registry's words.
        reason: String,
    },
    /// No such artifact.
    #[error("{reference}: not found in the registry")]
    NotFound {
        /// The reference.
        reference: String,
    },
    /// Anything else: the connection, the registry's answer.
    #[error("{reference}: {reason}")]
    Failed {
        /// The reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// Took too long.
    #[error("{reference}: no answer within {timeout:?}")]
    Timeout {
        /// The reference.
        reference: String,
        /// The limit.
        timeout: Duration,
    },
}

/// A pushed artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest's digest.
    pub digest: String,
    /// The reference pinned to it.
    pub pinned: OciReference,
}

/// A pulled artifact, checked: its digest is the one named (when one was), its layer's digest
/// is its content's, and it is within the size limit. The profile inside is not yet parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pulled {
    /// The manifest's digest.
    pub digest: String,
    /// The layer: the profile's JSON.
    pub profile: Vec<u8>,
}

/// A registry client.
pub struct Registry {
    client: Client,
    timeout: Duration,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Registry {
    /// A client with `options`.
    pub fn new(options: RegistryOptions) -> Result<Self, RegistryError> {
        // reqwest's rustls is built without a crypto provider: ring, as everywhere else here.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: if options.plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            extra_root_certificates: options
                .ca_pem
                .into_iter()
                .map(|data| Certificate {
                    encoding: CertificateEncoding::Pem,
                    data,
                })
                .collect(),
            https_proxy: options.proxy.clone(),
            http_proxy: options.proxy,
            connect_timeout: Some(crate::guard::CONNECT_TIMEOUT),
            read_timeout: Some(Duration::from_secs(30)),
            platform_resolver: None,
            ..Default::default()
        };
        // oci-client builds a default HTTP client too, which panics on a system without CA
        // certificates (a container image without a CA bundle): an error, not a crash.
        let built =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Client::try_from(config)));
        let client = match built {
            Ok(c) => c.map_err(|e| RegistryError::Setup(seccomp_profile::error::chain(&e)))?,
            Err(_) => {
                return Err(RegistryError::Setup(
                    "no CA certificates could be loaded from the system (/etc/ssl/certs): install a CA bundle".into(),
                ))
            }
        };
        Ok(Registry {
            client,
            timeout: options.timeout,
        })
    }

    /// Push `profile_json` as a profile artifact to `reference` (its tag, or its digest,
    /// which must then be the artifact's).
    pub async fn push(
        &self,
        reference: &OciReference,
        profile_json: Vec<u8>,
        credentials: &Credentials,
    ) -> Result<Pushed, RegistryError> {
        let name = reference.to_string();
        let artifact = Artifact::new(profile_json).map_err(|problem| RegistryError::Artifact {
            reference: name.clone(),
            problem,
        })?;
        let digest = artifact.digest();
        if let Some(pinned) = &reference.digest {
            artifact::verify("the artifact", &artifact.manifest, pinned).map_err(|problem| {
                RegistryError::Artifact {
                    reference: name.clone(),
                    problem,
                }
            })?;
        }
        let target = to_client_reference(reference)?;
        let work = async {
            let auth = to_auth(credentials);
            self.client
                .auth(&target, &auth, RegistryOperation::Push)
                .await
                .map_err(|e| error(&name, &e))?;
            self.client
                .store_auth_if_needed(target.resolve_registry(), &auth)
                .await;
            for (blob, what) in [
                (&artifact::CONFIG.to_vec(), "config"),
                (&artifact.layer, "layer"),
            ] {
                let d = artifact::digest(blob);
                if !self
                    .client
                    .blob_exists(&target, &d)
                    .await
                    .map_err(|e| error(&name, &e))?
                {
                    tracing::debug!(%what, digest = %d, "pushing blob");
                    self.client
                        .push_blob(&target, blob.clone(), &d)
                        .await
                        .map_err(|e| error(&name, &e))?;
                }
            }
            self.client
                .push_manifest_raw(
                    &target,
                    artifact.manifest.clone(),
                    MANIFEST_MEDIA_TYPE
                        .parse()
                        .expect("a media type is a header value"),
                )
                .await
                .map_err(|e| error(&name, &e))?;
            Ok(())
        };
        self.bounded(&name, work).await?;
        Ok(Pushed {
            pinned: reference.pinned(&digest),
            digest,
        })
    }

    /// Pull the profile artifact `reference` names, and check it (see [`Pulled`]).
    pub async fn pull(
        &self,
        reference: &OciReference,
        credentials: &Credentials,
    ) -> Result<Pulled, RegistryError> {
        let name = reference.to_string();
        let target = to_client_reference(reference)?;
        let artifact_error = |problem| RegistryError::Artifact {
            reference: name.clone(),
            problem,
        };
        let work = async {
            let auth = to_auth(credentials);
            let (manifest, digest) = self
                .client
                .pull_manifest_raw(&target, &auth, &[MANIFEST_MEDIA_TYPE])
                .await
                .map_err(|e| error(&name, &e))?;
            // oci-client checks a pinned digest too; checked here whatever it does.
            let digest = match &reference.digest {
                Some(pinned) => {
                    artifact::verify("the manifest", &manifest, pinned).map_err(artifact_error)?;
                    pinned.clone()
                }
                None => {
                    let actual = artifact::digest(&manifest);
                    if digest != actual {
                        return Err(artifact_error(ArtifactError::DigestMismatch {
                            what: "the manifest",
                            expected: digest,
                            actual,
                        }));
                    }
                    actual
                }
            };
            let layer = artifact::check_manifest(&manifest).map_err(artifact_error)?;
            let descriptor = oci_client::manifest::OciDescriptor {
                media_type: layer.media_type.clone(),
                digest: layer.digest.clone(),
                size: layer.size as i64,
                ..Default::default()
            };
            let mut stream = self
                .client
                .pull_blob_stream(&target, &descriptor)
                .await
                .map_err(|e| error(&name, &e))?;
            let mut profile = Vec::with_capacity(layer.size as usize);
            while let Some(chunk) =
                stream
                    .stream
                    .try_next()
                    .await
                    .map_err(|e| RegistryError::Failed {
                        reference: name.clone(),
                        reason: format!("reading the profile layer: {e}"),
                    })?
            {
                if profile.len() + chunk.len() > MAX_ARTIFACT_BYTES
                    || (profile.len() + chunk.len()) as u64 > layer.size
                {
                    return Err(artifact_error(ArtifactError::TooLarge {
                        what: "the profile layer",
                        size: (profile.len() + chunk.len()) as u64,
                    }));
                }
                profile.extend_from_slice(&chunk);
            }
            artifact::verify("the profile layer", &profile, &layer.digest)
                .map_err(artifact_error)?;
            Ok(Pulled { digest, profile })
        };
        self.bounded(&name, work).await
    }

    async fn bounded<T>(
        &self,
        name: &str,
        work: impl std::future::Future<Output = Result<T, RegistryError>>,
    ) -> Result<T, RegistryError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(RegistryError::Timeout {
                    reference: name.to_owned(),
                    timeout: self.timeout,
                })
            })
    }
}

fn to_client_reference(r: &OciReference) -> Result<Reference, RegistryError> {
    let parsed: Reference = r
        .without_scheme()
        .parse()
        .map_err(|e| RegistryError::Failed {
            reference: r.to_string(),
            reason: format!("not a registry reference: {e}"),
        })?;
    // The client reads some names as Docker Hub's: never fetch from anywhere but the
    // registry and repository written.
    if parsed.registry() != r.registry || parsed.repository() != r.repository {
        return Err(RegistryError::Failed {
            reference: r.to_string(),
            reason: format!(
                "the registry client reads it as {}/{}: write the registry's full host name",
                parsed.registry(),
                parsed.repository()
            ),
        });
    }
    Ok(parsed)
}

fn to_auth(c: &Credentials) -> RegistryAuth {
    match c {
        Credentials::Anonymous => RegistryAuth::Anonymous,
        Credentials::Basic { username, password } => {
            RegistryAuth::Basic(username.clone(), password.clone())
        }
    }
}

fn error(reference: &str, e: &OciDistributionError) -> RegistryError {
    let reference = reference.to_owned();
    match e {
        OciDistributionError::AuthenticationFailure(why) => RegistryError::Unauthorized {
            reference,
            reason: why.clone(),
        },
        OciDistributionError::UnauthorizedError { .. } => RegistryError::Unauthorized {
            reference,
            reason: "401 Unauthorized".into(),
        },
        OciDistributionError::ImageManifestNotFoundError(_) => {
            RegistryError::NotFound { reference }
        }
        OciDistributionError::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    oci_client::errors::OciErrorCode::ManifestUnknown
                        | oci_client::errors::OciErrorCode::NameUnknown
                        | oci_client::errors::OciErrorCode::BlobUnknown
                )
            }) =>
        {
            RegistryError::NotFound { reference }
        }
        OciDistributionError::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    oci_client::errors::OciErrorCode::Unauthorized
                        | oci_client::errors::OciErrorCode::Denied
                )
            }) =>
        {
            RegistryError::Unauthorized {
                reference,
                reason: seccomp_profile::error::chain(e),
            }
        }
        OciDistributionError::ServerError { code: 404, .. } => {
            RegistryError::NotFound { reference }
        }
        // A request refused outright (a blob check during a push, …).
        OciDistributionError::RequestError(r)
            if matches!(r.status().map(|s| s.as_u16()), Some(401 | 403)) =>
        {
            RegistryError::Unauthorized {
                reference,
                reason: seccomp_profile::error::chain(e),
            }
        }
        OciDistributionError::RequestError(r) if r.status().map(|s| s.as_u16()) == Some(404) => {
            RegistryError::NotFound { reference }
        }
        OciDistributionError::DigestError(_) => RegistryError::Failed {
            reference,
            reason: format!("digest mismatch: {}", seccomp_profile::error::chain(e)),
        },
        _ => RegistryError::Failed {
            reference,
            reason: seccomp_profile::error::chain(e),
        },
    }
}
