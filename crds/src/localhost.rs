//! Which operator profile a `localhostProfile` value (or a legacy `localhost/<path>`
//! annotation's path) names. One definition for every component that decides about pods.
//!
//! The kubelet opens `filepath.Join(<kubelet-root>/seccomp, value)`: Go's `Join` cleans the
//! result, so `./operator/x/p.json`, `operator//x/p.json`, `/operator/x/p.json` and
//! `a/../operator/x/p.json` all open `operator/x/p.json`. Comparing spellings would let a pod
//! use another tenant's profile while checks that look for the literal prefix `operator/`
//! see nothing. Values are therefore cleaned the same way first, and whatever lands under
//! `operator/` is that profile; a value that climbs out of the seccomp directory, or lands
//! under `operator/` without being `operator/<namespace>/<name>.json`, is refused.

use std::fmt;

/// Why a value cannot be accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefError {
    /// `..` climbs above the kubelet's seccomp directory.
    Escapes,
    /// It lands in the operator's directory but not on `operator/<namespace>/<name>.json`.
    Malformed(String),
}

impl fmt::Display for RefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefError::Escapes => write!(f, "the path climbs out of the kubelet's seccomp directory"),
            RefError::Malformed(clean) => write!(
                f,
                "it resolves to {clean}, which is not an operator profile path ({}/<namespace>/<name>.json)",
                crate::LOCALHOST_DIR
            ),
        }
    }
}

impl std::error::Error for RefError {}

/// The value cleaned as Go's `filepath.Clean` of a path joined under a root: empty and `.`
/// segments dropped, `..` removes the segment before it. Fails when `..` would leave the root.
pub fn clean(value: &str) -> Result<String, RefError> {
    let mut parts: Vec<&str> = Vec::new();
    for seg in value.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(RefError::Escapes);
                }
            }
            s => parts.push(s),
        }
    }
    Ok(parts.join("/"))
}

/// A profile of the operator's, by namespace and name.
pub type ProfileId = (String, String);

/// The operator profile (namespace, name) a value names: `Ok(None)` when it names a file
/// outside the operator's directory (not the operator's business), an error when it cannot be
/// accepted (see [`RefError`]).
pub fn operator_profile(value: &str) -> Result<Option<ProfileId>, RefError> {
    let cleaned = clean(value)?;
    let mut parts = cleaned.split('/');
    if parts.next() != Some(crate::LOCALHOST_DIR) {
        return Ok(None);
    }
    let rest: Vec<&str> = parts.collect();
    let malformed = || RefError::Malformed(cleaned.clone());
    let [ns, file] = rest.as_slice() else {
        return Err(malformed());
    };
    let name = file.strip_suffix(".json").ok_or_else(malformed)?;
    if !is_dns_label(ns) || !is_dns_subdomain(name) {
        return Err(malformed());
    }
    Ok(Some(((*ns).to_owned(), name.to_owned())))
}

/// A namespace name: an RFC 1123 label.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An object name: an RFC 1123 subdomain.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && !s.is_empty() && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ns: &str, name: &str) -> Result<Option<(String, String)>, RefError> {
        Ok(Some((ns.into(), name.into())))
    }

    #[test]
    fn every_spelling_the_kubelet_resolves_names_the_same_profile() {
        for v in [
            "operator/shop/web.json",
            "./operator/shop/web.json",
            "operator//shop/web.json",
            "/operator/shop/web.json",
            "operator/./shop/./web.json",
            "x/../operator/shop/web.json",
            "operator/other/../shop/web.json",
            "operator/shop/web.json/",
            ".//operator/shop//web.json",
        ] {
            assert_eq!(operator_profile(v), id("shop", "web"), "{v}");
        }
        assert_eq!(
            operator_profile("operator/shop/web.v2.json"),
            id("shop", "web.v2")
        );
    }

    #[test]
    fn values_outside_the_operator_directory_are_not_ours() {
        for v in [
            "profiles/audit.json",
            "my-operator/shop/web.json",
            "operatorx/a/b.json",
            "x/../y.json",
            "",
        ] {
            assert_eq!(operator_profile(v), Ok(None), "{v}");
        }
    }

    #[test]
    fn escapes_and_malformed_operator_paths_are_refused() {
        assert_eq!(
            operator_profile("../operator/shop/web.json"),
            Err(RefError::Escapes)
        );
        assert_eq!(
            operator_profile("operator/../../etc/x.json"),
            Err(RefError::Escapes)
        );
        for v in [
            "operator",
            "./operator/",
            "operator/shop",
            "operator/shop/web.yaml",
            "operator/shop/a/b.json",
            "operator/shop/.json",
            "operator/Shop/web.json",
            "operator/shop/We b.json",
            "operator/-x/web.json",
        ] {
            assert!(
                matches!(operator_profile(v), Err(RefError::Malformed(_))),
                "{v}: {:?}",
                operator_profile(v)
            );
        }
        let msg = operator_profile("./operator/shop/a/b.json")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("resolves to operator/shop/a/b.json"), "{msg}");
    }
}
