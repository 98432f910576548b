//! Where profiles live on the node, and the guarantee that nothing is ever written outside
//! `<kubelet-root>/seccomp/operator/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A profile's identity: its namespace and name. The installer keeps a key per profile in
/// several maps (files, their stamps, status, what each version rendered to): clones share
/// the strings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProfileKey {
    /// Namespace (an RFC 1123 label).
    pub namespace: Arc<str>,
    /// Name (an RFC 1123 subdomain).
    pub name: Arc<str>,
}

impl std::fmt::Display for ProfileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Why a name cannot become a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} `{value}` cannot be used in a file name: {reason}")]
pub struct PathError {
    what: &'static str,
    value: String,
    reason: &'static str,
}

fn check(what: &'static str, value: &str, max: usize, dots: bool) -> Result<(), PathError> {
    let err = |reason| {
        Err(PathError {
            what,
            value: value.chars().take(80).collect(),
            reason,
        })
    };
    if value.is_empty() {
        return err("empty");
    }
    if value.len() > max {
        return err("too long");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (dots && b == b'.'))
    {
        return err("only lower-case letters, digits, '-' (and '.' in names) are allowed");
    }
    let (first, last) = (value.as_bytes()[0], value.as_bytes()[value.len() - 1]);
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return err("must start and end with a letter or digit");
    }
    Ok(())
}

impl ProfileKey {
    /// A key, checked: both parts are valid Kubernetes names, so neither can contain `/`, be
    /// `..`, or start with `.` (which temp files use).
    pub fn new(namespace: &str, name: &str) -> Result<Self, PathError> {
        check("namespace", namespace, 63, false)?;
        check("name", name, 253, true)?;
        Ok(ProfileKey {
            namespace: namespace.into(),
            name: name.into(),
        })
    }

    /// The value for a pod's `localhostProfile`.
    pub fn localhost_profile(&self) -> String {
        crds::SeccompProfile::localhost_path(&self.namespace, &self.name)
    }
}

/// The directory tree the installer owns: `<kubelet-root>/seccomp/operator`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileRoot {
    dir: PathBuf,
}

/// Suffix of temp files; with a leading `.` they never collide with a profile file.
pub const TMP_MARK: &str = ".tmp-";

impl ProfileRoot {
    /// The root for a kubelet root directory.
    pub fn new(kubelet_root: &Path) -> Self {
        ProfileRoot {
            dir: kubelet_root.join("seccomp").join(crds::LOCALHOST_DIR),
        }
    }

    /// `<kubelet-root>/seccomp/operator`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of a namespace.
    pub fn namespace_dir(&self, key: &ProfileKey) -> PathBuf {
        self.dir.join(&*key.namespace)
    }

    /// The file of a profile: `<root>/<namespace>/<name>.json`.
    pub fn file(&self, key: &ProfileKey) -> PathBuf {
        self.namespace_dir(key).join(format!("{}.json", key.name))
    }

    /// The profile a path under the root belongs to, if it is a profile file.
    pub fn key_of(&self, path: &Path) -> Option<ProfileKey> {
        let rel = path.strip_prefix(&self.dir).ok()?;
        let mut parts = rel.components();
        let ns = parts.next()?.as_os_str().to_str()?;
        let file = parts.next()?.as_os_str().to_str()?;
        if parts.next().is_some() {
            return None;
        }
        ProfileKey::new(ns, file.strip_suffix(".json")?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_under_the_root() {
        let root = ProfileRoot::new(Path::new("/var/lib/kubelet"));
        let key = ProfileKey::new("shop", "web.v2").unwrap();
        assert_eq!(
            root.file(&key),
            Path::new("/var/lib/kubelet/seccomp/operator/shop/web.v2.json")
        );
        assert_eq!(key.localhost_profile(), "operator/shop/web.v2.json");
        assert_eq!(root.key_of(&root.file(&key)), Some(key));
    }

    #[test]
    fn hostile_names_are_refused() {
        for (ns, name) in [
            ("..", "x"),
            ("shop", ".."),
            ("shop", "../../etc/passwd"),
            ("shop/../..", "x"),
            ("shop", "a/b"),
            ("shop", ".hidden"),
            ("shop", "x.tmp-1."),
            ("", "x"),
            ("shop", ""),
            ("Shop", "x"),
            ("shop", "x\0y"),
            ("shop", "x\ny"),
            ("sh.op", "x"),
            ("shop", &"a".repeat(254)),
            (&"a".repeat(64), "x"),
            ("-shop", "x"),
            ("shop", "web-"),
        ] {
            assert!(
                ProfileKey::new(ns, name).is_err(),
                "{ns:?}/{name:?} accepted"
            );
        }
        let e = ProfileKey::new("shop", "../x").unwrap_err();
        assert!(e
            .to_string()
            .contains("name `../x` cannot be used in a file name"));
    }

    #[test]
    fn only_profile_files_map_back_to_keys() {
        let root = ProfileRoot::new(Path::new("/k"));
        assert_eq!(
            root.key_of(Path::new("/k/seccomp/operator/a/.b.json.tmp-1")),
            None
        );
        assert_eq!(root.key_of(Path::new("/k/seccomp/operator/a/b.txt")), None);
        assert_eq!(
            root.key_of(Path::new("/k/seccomp/operator/a/b/c.json")),
            None
        );
        assert_eq!(root.key_of(Path::new("/k/seccomp/other/a/b.json")), None);
    }
}
