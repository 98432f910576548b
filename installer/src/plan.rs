//! The installer's decisions, as a pure function: desired files and files on disk in,
//! file operations out.

use crate::desired::Desired;
use crate::hash::ContentHash;
use crate::paths::ProfileKey;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One file operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Write (create or replace) a profile's file.
    Write {
        /// The profile.
        key: ProfileKey,
        /// Hash of `json`.
        hash: ContentHash,
        /// The content.
        json: Arc<Vec<u8>>,
    },
    /// Remove a profile's file.
    Remove {
        /// The profile.
        key: ProfileKey,
    },
}

/// The files of `desired` (any part of the set) whose content on disk differs: a file whose
/// hash already matches is not written again, and a profile in error keeps whatever file it
/// has.
pub fn writes(
    desired: &BTreeMap<ProfileKey, Desired>,
    on_disk: &BTreeMap<ProfileKey, ContentHash>,
) -> Vec<Op> {
    desired
        .iter()
        .filter_map(|(key, d)| match d {
            Desired::Install { hash, json } if on_disk.get(key) != Some(hash) => Some(Op::Write {
                key: key.clone(),
                hash: *hash,
                json: json.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The files no profile of `desired` backs, among those `covers` keeps (the namespaces a sync
/// covers). Callers pass a `desired` built from a complete, successful list of the profiles
/// covered, never from a failed or partial one.
pub fn removals(
    desired: &BTreeMap<ProfileKey, Desired>,
    on_disk: &BTreeMap<ProfileKey, ContentHash>,
    covers: impl Fn(&ProfileKey) -> bool,
) -> Vec<Op> {
    on_disk
        .keys()
        .filter(|key| covers(key) && !desired.contains_key(*key))
        .map(|key| Op::Remove { key: key.clone() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything that takes the node from `on_disk` to `desired`, as a sync does it.
    fn plan(
        desired: &BTreeMap<ProfileKey, Desired>,
        on_disk: &BTreeMap<ProfileKey, ContentHash>,
    ) -> Vec<Op> {
        let mut ops = writes(desired, on_disk);
        ops.extend(removals(desired, on_disk, |_| true));
        ops
    }

    fn k(n: &str) -> ProfileKey {
        ProfileKey::new("ns", n).unwrap()
    }
    fn install(h: &str) -> Desired {
        Desired::Install {
            hash: ContentHash::of(h.as_bytes()),
            json: Arc::new(h.as_bytes().to_vec()),
        }
    }
    fn hash(h: &str) -> ContentHash {
        ContentHash::of(h.as_bytes())
    }

    #[test]
    fn unchanged_files_are_skipped() {
        let desired = BTreeMap::from([(k("a"), install("h1"))]);
        let disk = BTreeMap::from([(k("a"), hash("h1"))]);
        assert!(plan(&desired, &disk).is_empty());
    }

    #[test]
    fn changed_and_new_files_are_written() {
        let desired = BTreeMap::from([(k("a"), install("h2")), (k("b"), install("h3"))]);
        let disk = BTreeMap::from([(k("a"), hash("h1"))]);
        let ops = plan(&desired, &disk);
        assert_eq!(ops.len(), 2);
        assert!(ops.iter().all(|o| matches!(o, Op::Write { .. })));
    }

    #[test]
    fn unbacked_files_are_removed_and_errors_keep_theirs() {
        let desired = BTreeMap::from([(k("bad"), Desired::Error("x".into()))]);
        let disk = BTreeMap::from([(k("bad"), hash("h1")), (k("gone"), hash("h2"))]);
        assert_eq!(plan(&desired, &disk), vec![Op::Remove { key: k("gone") }]);
    }
}
