//! Registry credentials, in the docker config format: a user's `~/.docker/config.json` (or
//! `$DOCKER_CONFIG/config.json`) for `seccompctl`, a `kubernetes.io/dockerconfigjson` Secret's
//! `.dockerconfigjson` for the operator. One parser for both.

use base64::Engine as _;
use std::collections::BTreeMap;

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// None: anonymous access.
    Anonymous,
    /// A user name and password (HTTP basic, or exchanged for a token).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
}

// Never print a password.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
        }
    }
}

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Not JSON of the docker config format.
    #[error("{source_name} is not a docker config: {reason}")]
    Format {
        /// What was read (a path, or a Secret's name).
        source_name: String,
        /// Why.
        reason: String,
    },
    /// The entry for the registry is unreadable.
    #[error("{source_name}: the entry for `{registry}` {reason}")]
    Entry {
        /// What was read.
        source_name: String,
        /// The registry.
        registry: String,
        /// Why.
        reason: String,
    },
}

#[derive(serde::Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The credentials `config` (a docker config's JSON, read from `source_name`) holds for
/// `registry` (`host` or `host:port`): anonymous when it has none. Entries keyed by a URL
/// (`https://host/v1/`) count for their host. Credential helpers are not run: a registry
/// configured only through one is an error that says so.
pub fn from_docker_config(
    config: &[u8],
    source_name: &str,
    registry: &str,
) -> Result<Credentials, CredentialsError> {
    let file: ConfigFile =
        serde_json::from_slice(config).map_err(|e| CredentialsError::Format {
            source_name: source_name.to_owned(),
            // Where, not what: the text may hold a credential.
            reason: format!("invalid at line {}, column {}", e.line(), e.column()),
        })?;
    let entry_error = |reason: &str| CredentialsError::Entry {
        source_name: source_name.to_owned(),
        registry: registry.to_owned(),
        reason: reason.to_owned(),
    };
    let key_host = |key: &str| {
        let k = key
            .strip_prefix("https://")
            .or_else(|| key.strip_prefix("http://"))
            .unwrap_or(key);
        k.split('/').next().unwrap_or(k).to_owned()
    };
    let Some(entry) = file
        .auths
        .iter()
        .find(|(k, _)| key_host(k) == registry)
        .map(|(_, e)| e)
    else {
        if file.cred_helpers.contains_key(registry) || file.creds_store.is_some() {
            return Err(entry_error(
                "is kept by a credential helper, which is not run: pass --username and --password-stdin",
            ));
        }
        return Ok(Credentials::Anonymous);
    };
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Credentials::Basic {
            username: username.clone(),
            password: password.clone(),
        });
    }
    let Some(auth) = &entry.auth else {
        return Ok(Credentials::Anonymous);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| entry_error("has an `auth` that is not base64"))?;
    let text =
        String::from_utf8(decoded).map_err(|_| entry_error("has an `auth` that is not text"))?;
    let (username, password) = text
        .split_once(':')
        .ok_or_else(|| entry_error("has an `auth` that is not user:password"))?;
    Ok(Credentials::Basic {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_by_host_and_port() {
        let auth = base64::engine::general_purpose::STANDARD.encode("u:p:w");
        let cfg = format!(
            r#"{{"auths": {{"https://r.io:5443/v1/": {{"auth": "{auth}"}},
                "other.io": {{"username": "a", "password": "b"}}}}}}"#
        );
        let basic = |u: &str, p: &str| Credentials::Basic {
            username: u.into(),
            password: p.into(),
        };
        assert_eq!(
            from_docker_config(cfg.as_bytes(), "f", "r.io:5443").unwrap(),
            basic("u", "p:w")
        );
        assert_eq!(
            from_docker_config(cfg.as_bytes(), "f", "other.io").unwrap(),
            basic("a", "b")
        );
        assert_eq!(
            from_docker_config(cfg.as_bytes(), "f", "r.io").unwrap(),
            Credentials::Anonymous
        );
        assert!(!format!("{:?}", basic("u", "secret")).contains("secret"));
    }

    #[test]
    fn bad_files_and_helpers_are_named() {
        let e = from_docker_config(b"[", "secret team/pull", "r.io").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("secret team/pull is not a docker config"),
            "{e}"
        );
        let e =
            from_docker_config(br#"{"auths": {"r.io": {"auth": "%%"}}}"#, "f", "r.io").unwrap_err();
        assert!(e.to_string().contains("not base64"), "{e}");
        let e = from_docker_config(br#"{"credsStore": "desktop"}"#, "f", "r.io").unwrap_err();
        assert!(e.to_string().contains("credential helper"), "{e}");
    }
}
