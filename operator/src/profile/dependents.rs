//! Which profiles a change of another profile concerns: the profiles built on it through
//! `baseProfileName`, directly or through other bases, kept in an index by the base they name.
//!
//! The index is folded from the SeccompProfile watch's changes, deletes included, and rebuilt
//! from the store's state at the end of each relist ([`Changes`]), so a change
//! costs the size of its dependents instead of a look at every profile. Only what a
//! dependent's reconcile reads of a base counts as a change: its existence, its uid, its
//! generation (the spec) and the start of its deletion. A status write or a metadata change
//! moves none of them and wakes nobody: at 10,000 profiles, each of the operator's own status
//! writes used to cost a scan of all of them.

use crate::runtime::caches::{Change, Changes};
use crds::SeccompProfile;
use futures::{Stream, StreamExt};
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

/// A profile: (namespace, name).
type Key = (String, String);

/// What a dependent sees of a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    uid: String,
    /// `None` only for objects that never went through an API server (tests): every event of
    /// such an object counts as a change.
    generation: Option<i64>,
    deleting: bool,
    base: Option<String>,
    /// The digest of its registry base as fetched (`status.resolvedBase`): what the profiles
    /// built on it read of its status.
    resolved: Option<String>,
}

impl Seen {
    fn of(p: &SeccompProfile) -> Self {
        Seen {
            uid: p.metadata.uid.clone().unwrap_or_default(),
            generation: p.metadata.generation,
            deleting: p.metadata.deletion_timestamp.is_some(),
            base: p.spec.base_profile_name.clone(),
            resolved: p
                .status
                .as_ref()
                .and_then(|s| s.resolved_base.as_ref())
                .map(|r| format!("{}@{}", r.reference, r.digest)),
        }
    }
}

/// Profiles by the base they name.
#[derive(Default)]
pub struct Dependents {
    seen: HashMap<Key, Seen>,
    /// (namespace, base) → the names of the profiles naming it.
    by_base: HashMap<Key, BTreeSet<String>>,
}

impl Dependents {
    /// Fold in one change of the watch; the profiles to reconcile because a base of theirs
    /// changed. A relist's end rebuilds the index and answers nothing: the shared store hands
    /// every profile to the controller then anyway.
    pub fn fold(&mut self, change: &Change<SeccompProfile>) -> Vec<ObjectRef<SeccompProfile>> {
        match change {
            Change::Relisted(all) => {
                self.seen.clear();
                self.by_base.clear();
                for p in all {
                    let (k, seen) = (key(p), Seen::of(p));
                    self.link(&k, seen.base.clone());
                    self.seen.insert(k, seen);
                }
                Vec::new()
            }
            Change::Applied(p) => {
                let k = key(p);
                let now = Seen::of(p);
                if now.generation.is_some() && self.seen.get(&k) == Some(&now) {
                    return Vec::new();
                }
                let before = self.seen.insert(k.clone(), now.clone());
                self.unlink(&k, before.and_then(|b| b.base));
                self.link(&k, now.base);
                self.built_on(&k)
            }
            Change::Deleted(r) => {
                let k = (r.namespace.clone().unwrap_or_default(), r.name.clone());
                let before = self.seen.remove(&k);
                self.unlink(&k, before.and_then(|b| b.base));
                self.built_on(&k)
            }
        }
    }

    /// Count `k` among the dependents of `base`.
    fn link(&mut self, k: &Key, base: Option<String>) {
        if let Some(base) = base {
            self.by_base
                .entry((k.0.clone(), base))
                .or_default()
                .insert(k.1.clone());
        }
    }

    /// Drop `k` from the dependents of `base`.
    fn unlink(&mut self, k: &Key, base: Option<String>) {
        let Some(base) = base else { return };
        let b = (k.0.clone(), base);
        if let Some(names) = self.by_base.get_mut(&b) {
            names.remove(&k.1);
            if names.is_empty() {
                self.by_base.remove(&b);
            }
        }
    }

    /// Every profile built on `k`, through any number of bases (each once, cycles included;
    /// `k` itself is not one of them).
    fn built_on(&self, k: &Key) -> Vec<ObjectRef<SeccompProfile>> {
        let (ns, name) = k;
        let mut visited: HashSet<&str> = HashSet::from([name.as_str()]);
        let mut queue: VecDeque<&str> = VecDeque::from([name.as_str()]);
        let mut out = Vec::new();
        while let Some(base) = queue.pop_front() {
            let Some(names) = self.by_base.get(&(ns.clone(), base.to_owned())) else {
                continue;
            };
            for n in names {
                if visited.insert(n.as_str()) {
                    queue.push_back(n.as_str());
                    out.push(ObjectRef::new(n).within(ns));
                }
            }
        }
        out
    }
}

fn key(p: &SeccompProfile) -> Key {
    (p.namespace().unwrap_or_default(), p.name_any())
}

/// The profiles to reconcile because a base of theirs changed, as the watch's changes come.
pub fn follow(
    changes: Changes<SeccompProfile>,
) -> impl Stream<Item = ObjectRef<SeccompProfile>> + Send + 'static {
    futures::stream::unfold(
        (changes, Dependents::default()),
        |(mut changes, mut index)| async move {
            let change = changes.recv().await?;
            let refs = index.fold(&change);
            Some((futures::stream::iter(refs), (changes, index)))
        },
    )
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn profile(name: &str, base: Option<&str>, generation: i64) -> SeccompProfile {
        profile_in("team", name, base, generation)
    }

    fn profile_in(ns: &str, name: &str, base: Option<&str>, generation: i64) -> SeccompProfile {
        let mut spec = json!({"defaultAction": "SCMP_ACT_ERRNO"});
        if let Some(b) = base {
            spec["baseProfileName"] = json!(b);
        }
        serde_json::from_value(json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1",
            "kind": "SeccompProfile",
            "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"),
                         "generation": generation, "resourceVersion": "1"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn names(refs: Vec<ObjectRef<SeccompProfile>>) -> BTreeSet<String> {
        refs.into_iter()
            .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
            .collect()
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn listed(objs: &[SeccompProfile]) -> Dependents {
        let mut d = Dependents::default();
        relist(&mut d, objs);
        d
    }

    fn relist(d: &mut Dependents, objs: &[SeccompProfile]) {
        let all = objs.iter().cloned().map(Arc::new).collect();
        assert!(d.fold(&Change::Relisted(all)).is_empty());
    }

    fn applied(d: &mut Dependents, p: SeccompProfile) -> Vec<ObjectRef<SeccompProfile>> {
        d.fold(&Change::Applied(Arc::new(p)))
    }

    fn deleted(d: &mut Dependents, p: &SeccompProfile) -> Vec<ObjectRef<SeccompProfile>> {
        d.fold(&Change::Deleted(ObjectRef::from_obj(p)))
    }

    #[test]
    fn a_status_write_on_a_base_wakes_nobody() {
        let mut d = listed(&[profile("base", None, 1), profile("app", Some("base"), 1)]);
        let mut written = profile("base", None, 1);
        written.metadata.resource_version = Some("2".into());
        written.status = Some(Default::default());
        written.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
        assert!(applied(&mut d, written).is_empty());
    }

    #[test]
    fn a_spec_change_wakes_every_profile_built_on_it_through_any_number_of_bases() {
        let mut d = listed(&[
            profile("base", None, 1),
            profile("mid", Some("base"), 1),
            profile("app", Some("mid"), 1),
            profile("other", Some("base"), 1),
            profile("unrelated", None, 1),
            profile_in("elsewhere", "app", Some("base"), 1),
        ]);
        let woken = names(applied(&mut d, profile("base", None, 2)));
        assert_eq!(woken, set(&["team/mid", "team/app", "team/other"]));
        // The same generation again is no change.
        assert!(applied(&mut d, profile("base", None, 2)).is_empty());
    }

    #[test]
    fn a_delete_a_recreate_and_a_deletion_start_wake_the_dependents() {
        let mut d = listed(&[profile("base", None, 1), profile("app", Some("base"), 1)]);
        let mut deleting = profile("base", None, 1);
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert_eq!(names(applied(&mut d, deleting.clone())), set(&["team/app"]));
        assert_eq!(names(deleted(&mut d, &deleting)), set(&["team/app"]));
        // Recreated with the same name: a new uid, even at generation 1.
        let mut again = profile("base", None, 1);
        again.metadata.uid = Some("uid-new".into());
        assert_eq!(names(applied(&mut d, again)), set(&["team/app"]));
    }

    #[test]
    fn a_profile_that_names_another_base_moves_in_the_index() {
        let mut d = listed(&[
            profile("a", None, 1),
            profile("b", None, 1),
            profile("app", Some("a"), 1),
        ]);
        applied(&mut d, profile("app", Some("b"), 2));
        assert!(applied(&mut d, profile("a", None, 2)).is_empty());
        assert_eq!(
            names(applied(&mut d, profile("b", None, 2))),
            set(&["team/app"])
        );
        // A deleted dependent leaves the index.
        deleted(&mut d, &profile("app", Some("b"), 2));
        assert!(applied(&mut d, profile("b", None, 3)).is_empty());
        assert!(d.by_base.is_empty());
    }

    #[test]
    fn a_base_created_after_its_dependents_wakes_them() {
        let mut d = listed(&[profile("app", Some("base"), 1)]);
        assert_eq!(
            names(applied(&mut d, profile("base", None, 1))),
            set(&["team/app"])
        );
    }

    #[test]
    fn a_cycle_of_bases_ends() {
        let mut d = listed(&[profile("a", Some("b"), 1), profile("b", Some("a"), 1)]);
        assert_eq!(
            names(applied(&mut d, profile("a", Some("b"), 2))),
            set(&["team/b"])
        );
    }

    #[test]
    fn a_relist_replaces_the_index() {
        let mut d = listed(&[profile("base", None, 1), profile("app", Some("base"), 1)]);
        // "app" was deleted while the watch was down.
        relist(&mut d, &[profile("base", None, 1)]);
        assert!(applied(&mut d, profile("base", None, 2)).is_empty());
    }

    #[tokio::test]
    async fn follow_turns_the_watchs_changes_into_the_dependents_to_reconcile() {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let mut woken = Box::pin(follow(rx));
        let all = vec![
            Arc::new(profile("base", None, 1)),
            Arc::new(profile("app", Some("base"), 1)),
        ];
        for change in [
            Change::Relisted(all),
            Change::Applied(Arc::new(profile("base", None, 2))),
            Change::Deleted(ObjectRef::from_obj(&profile("base", None, 2))),
        ] {
            tx.send(change).await.unwrap();
        }
        drop(tx);
        let all: Vec<_> = woken.by_ref().collect().await;
        // Once for the new generation, once for the delete.
        assert_eq!(all.len(), 2);
        assert_eq!(names(all), set(&["team/app"]));
    }
}
