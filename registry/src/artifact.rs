//! The artifact's layout (see the crate's documentation): building one and checking one.

use seccomp_profile::limits::MAX_ARTIFACT_BYTES;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The manifest's `artifactType`, and its config's media type (KEP-6061).
pub const ARTIFACT_TYPE: &str = "application/vnd.cncf.seccomp-profile.config.v1+json";
/// The layer's media type as pushed (a reader accepts any).
pub const LAYER_MEDIA_TYPE: &str = "application/json";
/// The layer's `org.opencontainers.image.title`.
pub const LAYER_TITLE: &str = "profile.json";
/// An OCI image manifest's media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The empty config's media type (OCI 1.1 artifacts without a config of their own).
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The config blob.
pub const CONFIG: &[u8] = b"{}";
/// The creation time every push records: the same profile, the same digest.
pub const CREATED: &str = "1970-01-01T00:00:00Z";
/// Bytes of a manifest read at most (one layer's manifest is well under 1 KiB).
pub const MAX_MANIFEST_BYTES: usize = 64 << 10;

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The blobs and manifest of one profile's artifact.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// The layer: the profile's JSON.
    pub layer: Vec<u8>,
    /// The manifest's bytes, as pushed.
    pub manifest: Vec<u8>,
}

impl Artifact {
    /// The artifact holding `profile_json`.
    pub fn new(profile_json: Vec<u8>) -> Result<Self, ArtifactError> {
        if profile_json.len() > MAX_ARTIFACT_BYTES {
            return Err(ArtifactError::TooLarge {
                what: "the profile",
                size: profile_json.len() as u64,
            });
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": ARTIFACT_TYPE,
            "config": {"mediaType": ARTIFACT_TYPE, "digest": digest(CONFIG), "size": CONFIG.len()},
            "layers": [{
                "mediaType": LAYER_MEDIA_TYPE,
                "digest": digest(&profile_json),
                "size": profile_json.len(),
                "annotations": {"org.opencontainers.image.title": LAYER_TITLE},
            }],
            "annotations": {"org.opencontainers.image.created": CREATED},
        });
        Ok(Artifact {
            layer: profile_json,
            manifest: serde_json::to_vec(&manifest).expect("a JSON value always serialises"),
        })
    }

    /// The manifest's digest: what a pull by digest names.
    pub fn digest(&self) -> String {
        digest(&self.manifest)
    }
}

/// The one layer a pulled manifest names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Its media type (not required to be [`LAYER_MEDIA_TYPE`]).
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Its size in bytes, as the manifest says.
    pub size: u64,
}

/// Why a manifest or blob is not a profile artifact.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArtifactError {
    /// Not a JSON OCI image manifest.
    #[error("the manifest is not an OCI image manifest: {0}")]
    NotAManifest(String),
    /// Neither `artifactType` nor the config's media type says seccomp profile.
    #[error("the artifact is not a seccomp profile: its type is `{0}`, not `{ARTIFACT_TYPE}`")]
    WrongType(String),
    /// Not exactly one layer.
    #[error("a seccomp profile artifact has exactly one layer; this one has {0}")]
    Layers(usize),
    /// Over the size limit.
    #[error("{what} is {size} bytes, over the limit of {MAX_ARTIFACT_BYTES} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: u64,
    },
    /// The content's digest is not the one named.
    #[error("digest mismatch: {what} should be {expected} but its content is {actual}")]
    DigestMismatch {
        /// What was checked.
        what: &'static str,
        /// The digest named.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
}

/// The layer of the profile artifact `manifest` describes. Accepts KEP-6061's form (the
/// config's media type or `artifactType` says seccomp profile, with a config of its own or
/// the empty one) and refuses anything else: an image, an index, several layers, a layer
/// over the limit.
pub fn check_manifest(manifest: &[u8]) -> Result<Layer, ArtifactError> {
    if manifest.len() > MAX_MANIFEST_BYTES {
        return Err(ArtifactError::TooLarge {
            what: "the manifest",
            size: manifest.len() as u64,
        });
    }
    let m: Value = serde_json::from_slice(manifest)
        .map_err(|e| ArtifactError::NotAManifest(format!("not JSON ({e})")))?;
    if m.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(ArtifactError::NotAManifest("schemaVersion is not 2".into()));
    }
    let media_type = m.get("mediaType").and_then(Value::as_str);
    if media_type.is_some_and(|t| t != MANIFEST_MEDIA_TYPE) {
        return Err(ArtifactError::NotAManifest(format!(
            "its media type is `{}`",
            media_type.unwrap_or_default()
        )));
    }
    let artifact_type = m.get("artifactType").and_then(Value::as_str);
    let config_type = m
        .pointer("/config/mediaType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let typed = config_type == ARTIFACT_TYPE
        || (artifact_type == Some(ARTIFACT_TYPE) && config_type == EMPTY_MEDIA_TYPE);
    if !typed {
        return Err(ArtifactError::WrongType(
            artifact_type.unwrap_or(config_type).to_owned(),
        ));
    }
    let layers = m
        .get("layers")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let [layer] = layers else {
        return Err(ArtifactError::Layers(layers.len()));
    };
    let digest = layer
        .get("digest")
        .and_then(Value::as_str)
        .filter(|d| {
            d.strip_prefix("sha256:").is_some_and(|h| {
                h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            })
        })
        .ok_or_else(|| ArtifactError::NotAManifest("its layer has no sha256 digest".into()))?;
    let size = layer
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| ArtifactError::NotAManifest("its layer has no size".into()))?;
    if size > MAX_ARTIFACT_BYTES as u64 {
        return Err(ArtifactError::TooLarge {
            what: "the profile layer",
            size,
        });
    }
    Ok(Layer {
        media_type: layer
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        digest: digest.to_owned(),
        size,
    })
}

/// `bytes` is what `digest` names.
pub fn verify(what: &'static str, bytes: &[u8], expected: &str) -> Result<(), ArtifactError> {
    let actual = digest(bytes);
    if actual == expected {
        Ok(())
    } else {
        Err(ArtifactError::DigestMismatch {
            what,
            expected: expected.to_owned(),
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_artifact_is_reproducible_and_reads_back() {
        let a = Artifact::new(br#"{"defaultAction":"SCMP_ACT_ERRNO"}"#.to_vec()).unwrap();
        let b = Artifact::new(br#"{"defaultAction":"SCMP_ACT_ERRNO"}"#.to_vec()).unwrap();
        assert_eq!(a.digest(), b.digest());
        let layer = check_manifest(&a.manifest).unwrap();
        assert_eq!(layer.digest, digest(&a.layer));
        assert_eq!(layer.media_type, LAYER_MEDIA_TYPE);
        let m: Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(m["artifactType"], ARTIFACT_TYPE);
        assert_eq!(m["config"]["mediaType"], ARTIFACT_TYPE);
        assert_eq!(
            m["layers"][0]["annotations"]["org.opencontainers.image.title"],
            "profile.json"
        );
    }

    #[test]
    fn other_artifacts_are_refused_with_the_reason() {
        let layer = json!({"mediaType": "x", "digest": digest(b"x"), "size": 1});
        let cfg = |t: &str| json!({"mediaType": t, "digest": digest(b"{}"), "size": 2});
        let check = |m: Value| check_manifest(&serde_json::to_vec(&m).unwrap());
        // The empty config with the artifact type, and any layer media type, are accepted.
        check(json!({"schemaVersion": 2, "artifactType": ARTIFACT_TYPE,
            "config": cfg(EMPTY_MEDIA_TYPE), "layers": [layer]}))
        .unwrap();
        assert_eq!(
            check(
                json!({"schemaVersion": 2, "config": cfg("application/vnd.oci.image.config.v1+json"), "layers": [layer]})
            ),
            Err(ArtifactError::WrongType(
                "application/vnd.oci.image.config.v1+json".into()
            ))
        );
        assert_eq!(
            check(
                json!({"schemaVersion": 2, "config": cfg(ARTIFACT_TYPE), "layers": [layer, layer]})
            ),
            Err(ArtifactError::Layers(2))
        );
        let big = json!({"mediaType": "x", "digest": digest(b"x"), "size": MAX_ARTIFACT_BYTES + 1});
        assert!(matches!(
            check(json!({"schemaVersion": 2, "config": cfg(ARTIFACT_TYPE), "layers": [big]})),
            Err(ArtifactError::TooLarge { .. })
        ));
        assert!(matches!(
            check(
                json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"})
            ),
            Err(ArtifactError::NotAManifest(_))
        ));
        assert!(Artifact::new(vec![b' '; MAX_ARTIFACT_BYTES + 1]).is_err());
    }

    #[test]
    fn a_digest_mismatch_names_both() {
        let e = verify("the layer", b"a", &digest(b"b")).unwrap_err();
        assert!(e.to_string().contains(&digest(b"a")), "{e}");
    }
}
