//! `oci://` references: a base profile kept as an OCI artifact in a registry
//! (`baseProfileName: oci://REGISTRY/REPOSITORY@sha256:…` or `…:TAG`).
//!
//! Only the syntax lives here (the document model does no I/O); fetching is the operator's
//! (`profile-registry`). The grammar is the OCI distribution spec's, with an explicit registry
//! host always required: a reference never falls back to a default registry.

use std::fmt;

/// The prefix of a registry reference in `baseProfileName`.
pub const OCI_PREFIX: &str = "oci://";

/// Characters of a repository path (the distribution spec's limit).
pub const MAX_REPOSITORY_LEN: usize = 255;
/// Characters of a tag.
pub const MAX_TAG_LEN: usize = 128;
/// Characters of a registry host and port.
pub const MAX_REGISTRY_LEN: usize = 261;

/// A parsed reference to an artifact in a registry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OciReference {
    /// `host` or `host:port` (an IPv6 address in brackets).
    pub registry: String,
    /// The repository path (`team/profiles/web`).
    pub repository: String,
    /// The tag, when the reference names one.
    pub tag: Option<String>,
    /// `sha256:<64 hex>`, when the reference pins one.
    pub digest: Option<String>,
}

impl OciReference {
    /// Parse a reference, with or without the `oci://` prefix. The error says what is wrong
    /// in the user's terms (no field name: the caller adds it).
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text.strip_prefix(OCI_PREFIX).unwrap_or(text);
        let (registry, path) = rest.split_once('/').ok_or_else(|| {
            format!("`{text}` is not a registry reference: expected oci://REGISTRY/REPOSITORY@sha256:DIGEST or oci://REGISTRY/REPOSITORY:TAG")
        })?;
        check_registry(registry)?;
        let (name_and_tag, digest) = match path.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (path, None),
        };
        // A tag follows the last `:` after the last `/` (a repository has no `:`).
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match name_and_tag[last_slash..].find(':') {
            Some(i) => (
                &name_and_tag[..last_slash + i],
                Some(&name_and_tag[last_slash + i + 1..]),
            ),
            None => (name_and_tag, None),
        };
        check_repository(repository)?;
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        if let Some(digest) = digest {
            check_digest(digest)?;
        }
        if tag.is_none() && digest.is_none() {
            return Err(format!(
                "`{text}` names no version: add @sha256:DIGEST (recommended) or :TAG"
            ));
        }
        Ok(OciReference {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        })
    }

    /// The host, without the port (and without an IPv6 address's brackets).
    pub fn host(&self) -> &str {
        let r = self.registry.as_str();
        if let Some(v6) = r.strip_prefix('[') {
            return v6.split(']').next().unwrap_or(v6);
        }
        r.rsplit_once(':').map_or(r, |(h, _)| h)
    }

    /// The port, when the reference names one.
    pub fn port(&self) -> Option<u16> {
        let port = match self.registry.strip_prefix('[') {
            Some(v6) => v6.split_once("]:").map(|(_, p)| p),
            None => self.registry.rsplit_once(':').map(|(_, p)| p),
        };
        port.and_then(|p| p.parse().ok())
    }

    /// The same artifact pinned to `digest` (the tag dropped).
    pub fn pinned(&self, digest: &str) -> Self {
        OciReference {
            tag: None,
            digest: Some(digest.to_owned()),
            ..self.clone()
        }
    }

    /// Written without the `oci://` prefix, as registry clients take it
    /// (`REGISTRY/REPOSITORY:TAG@DIGEST`).
    pub fn without_scheme(&self) -> String {
        let mut s = format!("{}/{}", self.registry, self.repository);
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{OCI_PREFIX}{}", self.without_scheme())
    }
}

fn check_registry(registry: &str) -> Result<(), String> {
    if registry.is_empty() {
        return Err("the registry host is missing (oci://REGISTRY/REPOSITORY…)".into());
    }
    if registry.len() > MAX_REGISTRY_LEN {
        return Err(format!(
            "the registry `{}…` is longer than {MAX_REGISTRY_LEN} characters",
            registry.chars().take(32).collect::<String>()
        ));
    }
    let (host, port) = if let Some(v6) = registry.strip_prefix('[') {
        let (addr, rest) = v6
            .split_once(']')
            .ok_or_else(|| format!("the registry `{registry}` has an unclosed `[`"))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "the registry `{registry}` is not a valid IPv6 address in brackets"
            ));
        }
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p),
            None if rest.is_empty() => None,
            None => return Err(format!("the registry `{registry}` has text after `]`")),
        };
        (None, port)
    } else {
        match registry.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(registry), None),
        }
    };
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!(
                "the registry `{registry}` has an invalid port `{port}`"
            ));
        }
    }
    if let Some(host) = host {
        // What registry clients take for a Docker Hub namespace is never a registry here.
        if port.is_none() && !host.contains('.') && host != "localhost" {
            return Err(format!(
                "`{host}` is not a registry host: write its full name (with a dot) or a port; a reference never falls back to Docker Hub"
            ));
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if host.is_empty() || !host.split('.').all(label_ok) {
            return Err(format!(
                "the registry `{registry}` is not a host name or address"
            ));
        }
    }
    Ok(())
}

fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("the repository is missing (oci://REGISTRY/REPOSITORY…)".into());
    }
    if repository.len() > MAX_REPOSITORY_LEN {
        return Err(format!(
            "the repository is longer than {MAX_REPOSITORY_LEN} characters"
        ));
    }
    // Each component: lowercase alphanumerics, joined by `.`, `_`, `__` or runs of `-`.
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric()
        {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            let ch = b[i];
            if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
                i += 1;
                continue;
            }
            let sep_start = i;
            while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
                i += 1;
            }
            let sep = &c[sep_start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
            if !ok || sep_start == i {
                return false;
            }
        }
        true
    };
    if let Some(bad) = repository.split('/').find(|c| !component_ok(c)) {
        return Err(format!(
            "the repository `{repository}` has an invalid part `{bad}`: lowercase letters and digits, joined by `.`, `_`, `__` or `-`"
        ));
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && !tag.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the tag `{tag}` is invalid: at most {MAX_TAG_LEN} letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
        ))
    }
}

fn check_digest(digest: &str) -> Result<(), String> {
    let hex = digest.strip_prefix("sha256:").ok_or_else(|| {
        format!("the digest `{digest}` is not supported: only sha256:<64 hex digits> is")
    })?;
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(format!(
            "the digest `{digest}` is invalid: sha256: and 64 lowercase hex digits"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn digests_tags_and_ports_are_read() {
        let r =
            OciReference::parse(&format!("oci://registry.example.com:5443/team/web@{D}")).unwrap();
        assert_eq!(r.registry, "registry.example.com:5443");
        assert_eq!(r.host(), "registry.example.com");
        assert_eq!(r.port(), Some(5443));
        assert_eq!(r.repository, "team/web");
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(
            r.to_string(),
            format!("oci://registry.example.com:5443/team/web@{D}")
        );

        let t = OciReference::parse("oci://10.1.2.3/p:v1.2").unwrap();
        assert_eq!((t.host(), t.port()), ("10.1.2.3", None));
        assert_eq!(t.tag.as_deref(), Some("v1.2"));
        assert_eq!(t.pinned(D).to_string(), format!("oci://10.1.2.3/p@{D}"));

        let both = OciReference::parse(&format!("oci://[::1]:80/a/b:x@{D}")).unwrap();
        assert_eq!((both.host(), both.port()), ("::1", Some(80)));
        assert_eq!(both.without_scheme(), format!("[::1]:80/a/b:x@{D}"));
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        for (text, says) in [
            ("oci://registry", "not a registry reference"),
            ("oci:///p@x", "registry host is missing"),
            ("oci://r.io/p", "names no version"),
            ("oci://r.io/Web:v1", "invalid part `Web`"),
            ("oci://r.io/a//b:v1", "invalid part ``"),
            ("oci://r.io/p:-x", "tag `-x` is invalid"),
            ("oci://r.io/p@sha512:00", "only sha256"),
            ("oci://r.io/p@sha256:ABC", "digest `sha256:ABC` is invalid"),
            ("oci://r.io:0/p:v", "invalid port"),
            ("oci://r.io:99999/p:v", "invalid port"),
            ("oci://bad_host.io/p:v", "not a host name"),
            ("oci://registry/team/p:v", "not a registry host"),
            ("oci://[zz]/p:v", "not a valid IPv6"),
        ] {
            let e = OciReference::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        let long = format!("oci://r.io/{}:v", "a".repeat(300));
        assert!(OciReference::parse(&long)
            .unwrap_err()
            .contains("longer than 255"));
    }

    #[test]
    fn repository_separators_follow_the_distribution_grammar() {
        for ok in ["a", "a.b", "a_b", "a__b", "a---b", "a/b-c/d.e"] {
            OciReference::parse(&format!("oci://r.io/{ok}:v")).unwrap();
        }
        for bad in ["a___b", "a._b", "-a", "a-", ".a"] {
            assert!(
                OciReference::parse(&format!("oci://r.io/{bad}:v")).is_err(),
                "{bad}"
            );
        }
    }
}
