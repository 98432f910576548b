//! The profiles the install loop reads: every SeccompProfile of the cluster, folded in from
//! the watch event by event, each kept with only what a sync reads of it.
//!
//! The watch deserialises each object into a [`StoredProfile`] (compacted as it is read); the
//! [`Writer`] moves what is kept into a [`Profile`] and lets the rest go at once: the name,
//! uid, generation, resourceVersion (an integer), packed spec and why the profile is invalid.
//! A namespace's string is held once, shared by all its profiles, and the map keys each
//! profile by the names it holds already (kube's reflector kept a whole `ObjectMeta` per
//! profile, and a key of four more strings beside it).
//!
//! As with the reflector, a relist (`Init`, `InitApply`…, `InitDone`) is collected aside and
//! replaces the profiles only once complete: until then readers see the last complete list.

use crds::nodestatus::parse_resource_version;
use crds::SeccompProfile;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::watcher::Event;
use kube::Resource;
use profile_installer::compact::{PackedSpec, StoredProfile};
use profile_installer::desired::{Input, SpecRef};
use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::watch;

/// The watch feeding a store ended before its first complete list.
#[derive(Debug, thiserror::Error)]
#[error("the watch ended before its first complete list")]
pub struct WatchEnded;

/// One SeccompProfile as the install loop keeps it.
#[derive(Debug)]
pub struct Profile {
    /// Shared with every other profile of the namespace.
    namespace: Arc<str>,
    name: Box<str>,
    uid: Option<Box<str>>,
    generation: Option<i64>,
    /// None when not an integer: such a version confirms nothing (see
    /// [`super::synced_version`]).
    resource_version: Option<u64>,
    spec: PackedSpec,
    invalid: Option<Box<str>>,
}

impl Profile {
    /// Its namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its uid.
    pub fn uid(&self) -> Option<&str> {
        self.uid.as_deref()
    }

    /// Its `metadata.generation`.
    pub fn generation(&self) -> Option<i64> {
        self.generation
    }

    /// Its resourceVersion, when an integer.
    pub fn resource_version(&self) -> Option<u64> {
        self.resource_version
    }

    /// Its spec (without its rules when invalid).
    pub fn spec(&self) -> &PackedSpec {
        &self.spec
    }

    /// Why it is invalid, when it is.
    pub fn invalid(&self) -> Option<&str> {
        self.invalid.as_deref()
    }

    /// The profile as the installer reads it, with its version (uid and generation): an
    /// unchanged profile is not rendered again.
    pub fn input(&self) -> Input<'_> {
        Input {
            namespace: self.namespace(),
            name: self.name(),
            spec: SpecRef::Packed(&self.spec),
            version: self.uid().zip(self.generation),
        }
    }

    /// The object, as an Event names it (what kube's `Resource::object_ref` gives for it).
    pub fn object_ref(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some(SeccompProfile::api_version(&()).into_owned()),
            kind: Some(SeccompProfile::kind(&()).into_owned()),
            namespace: Some(self.namespace().to_owned()),
            name: Some(self.name().to_owned()),
            uid: self.uid().map(str::to_owned),
            ..Default::default()
        }
    }
}

/// A profile keyed by its own name: the map holds no copy of it.
struct ByName(Arc<Profile>);

// Hashed and compared as its name, as `Borrow<str>` requires: a lookup by `&str` finds it.
impl Borrow<str> for ByName {
    fn borrow(&self) -> &str {
        &self.0.name
    }
}

impl Hash for ByName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

impl PartialEq for ByName {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for ByName {}

/// Profiles by namespace, then by name. A namespace's key is the one copy of its string
/// that all its profiles share.
#[derive(Default)]
struct Map(HashMap<Arc<str>, HashSet<ByName>>);

impl Map {
    /// The shared string of `namespace`, when a profile of it is here.
    fn namespace(&self, namespace: &str) -> Option<&Arc<str>> {
        self.0.get_key_value(namespace).map(|(k, _)| k)
    }

    fn get(&self, namespace: &str, name: &str) -> Option<&Arc<Profile>> {
        self.0.get(namespace)?.get(name).map(|p| &p.0)
    }

    /// Add `profile`, or replace the one of its namespace and name.
    fn insert(&mut self, profile: Arc<Profile>) {
        self.0
            .entry(profile.namespace.clone())
            .or_default()
            .replace(ByName(profile));
    }

    fn remove(&mut self, namespace: &str, name: &str) {
        if let Some(names) = self.0.get_mut(namespace) {
            names.remove(name);
            // The namespace's string goes with its last profile.
            if names.is_empty() {
                self.0.remove(namespace);
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Arc<Profile>> {
        self.0.values().flatten().map(|p| &p.0)
    }
}

// A panic while the lock was held left no half-done change: each change is one map call.
fn read(map: &RwLock<Map>) -> RwLockReadGuard<'_, Map> {
    map.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(map: &RwLock<Map>) -> RwLockWriteGuard<'_, Map> {
    map.write().unwrap_or_else(PoisonError::into_inner)
}

/// The profiles the install loop reads. Clones read the same profiles.
#[derive(Clone)]
pub struct ProfileStore {
    live: Arc<RwLock<Map>>,
    ready: watch::Receiver<bool>,
}

/// The watch's end of a [`ProfileStore`]: folds each event in.
pub struct Writer {
    live: Arc<RwLock<Map>>,
    /// A relist being collected (from `Init` to `InitDone`).
    relist: Option<Map>,
    /// Turns true at the first complete list.
    ready: watch::Sender<bool>,
}

/// An empty store, ready once its writer has folded in a first complete list.
pub fn store() -> (ProfileStore, Writer) {
    let live: Arc<RwLock<Map>> = Default::default();
    let (ready_tx, ready) = watch::channel(false);
    (
        ProfileStore {
            live: live.clone(),
            ready,
        },
        Writer {
            live,
            relist: None,
            ready: ready_tx,
        },
    )
}

impl ProfileStore {
    /// Returns once the first complete list is in (at once if it is already); an error when
    /// the writer went before it.
    pub async fn wait_until_ready(&self) -> Result<(), WatchEnded> {
        // Every waiter is woken, however many wait at once.
        let mut ready = self.ready.clone();
        ready
            .wait_for(|ready| *ready)
            .await
            .map(|_| ())
            .map_err(|_| WatchEnded)
    }

    /// Every profile, as of now: what one sync reads. The profiles are shared, not copied.
    pub fn state(&self) -> Vec<Arc<Profile>> {
        read(&self.live).iter().cloned().collect()
    }

    /// The profile `namespace/name`, if there is one.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<Profile>> {
        read(&self.live).get(namespace, name).cloned()
    }
}

impl Writer {
    /// Fold one watch event in; the wire object goes with it.
    pub fn apply(&mut self, event: Event<StoredProfile>) {
        match event {
            Event::Apply(p) => {
                let mut live = write(&self.live);
                if let Some(p) = self.keep(p, &live) {
                    live.insert(p);
                }
            }
            Event::Delete(p) => {
                if let (Some(namespace), Some(name)) = (&p.metadata.namespace, &p.metadata.name) {
                    write(&self.live).remove(namespace, name);
                }
            }
            // A relist that started over drops what it had collected.
            Event::Init => self.relist = Some(Map::default()),
            Event::InitApply(p) => {
                let kept = self.keep(p, &read(&self.live));
                if let Some(p) = kept {
                    self.relist.get_or_insert_default().insert(p);
                }
            }
            Event::InitDone => {
                let listed = self.relist.take().unwrap_or_default();
                let before = std::mem::replace(&mut *write(&self.live), listed);
                // Freed outside the lock: readers do not wait for it.
                drop(before);
                self.ready.send_replace(true);
            }
        }
    }

    /// What is kept of `p`, its namespace's string shared with the profiles held already
    /// (`live` and the relist). The very version held already (same uid and resourceVersion:
    /// a relist of an unchanged object) is shared too, so a relist costs only what changed.
    /// None for an object without a namespace or a name: the API server names every object
    /// of a namespaced kind, and a sync reads only named ones.
    fn keep(&self, p: StoredProfile, live: &Map) -> Option<Arc<Profile>> {
        let meta = p.metadata;
        let (Some(namespace), Some(name)) = (meta.namespace, meta.name) else {
            return None;
        };
        let resource_version = meta
            .resource_version
            .as_deref()
            .and_then(parse_resource_version);
        if let Some(held) = live.get(&namespace, &name) {
            if held.uid.is_some()
                && held.uid.as_deref() == meta.uid.as_deref()
                && held.resource_version.is_some()
                && held.resource_version == resource_version
            {
                return Some(held.clone());
            }
        }
        let shared = live
            .namespace(&namespace)
            .or_else(|| self.relist.as_ref()?.namespace(&namespace))
            .cloned();
        Some(Arc::new(Profile {
            namespace: shared.unwrap_or_else(|| namespace.into()),
            name: name.into_boxed_str(),
            uid: meta.uid.map(String::into_boxed_str),
            generation: meta.generation,
            resource_version,
            spec: p.spec,
            invalid: p.invalid.map(String::into_boxed_str),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    /// A profile as the watch reads it.
    fn wire(namespace: &str, name: &str, uid: &str, rv: &str) -> StoredProfile {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
            "metadata": {"name": name, "namespace": namespace, "uid": uid,
                "resourceVersion": rv, "generation": 1},
            "spec": {"defaultAction": "SCMP_ACT_ERRNO"},
        }))
        .unwrap()
    }

    /// The store's profiles as `namespace/name@resourceVersion`, sorted.
    fn names(store: &ProfileStore) -> Vec<String> {
        let mut names: Vec<String> = store
            .state()
            .iter()
            .map(|p| {
                let rv = p.resource_version().unwrap();
                format!("{}/{}@{rv}", p.namespace(), p.name())
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_relist_replaces_the_profiles_only_once_complete() {
        let (store, mut w) = store();
        w.apply(Event::Init);
        w.apply(Event::InitApply(wire("a", "one", "u1", "5")));
        assert!(store.state().is_empty(), "half a list is never read");
        assert!(store.wait_until_ready().now_or_never().is_none());
        w.apply(Event::InitApply(wire("a", "two", "u2", "6")));
        w.apply(Event::InitDone);
        assert!(matches!(
            store.wait_until_ready().now_or_never(),
            Some(Ok(()))
        ));
        assert_eq!(names(&store), ["a/one@5", "a/two@6"]);

        // The watch broke; the relist sees `one` changed, `two` deleted, `three` new.
        w.apply(Event::Init);
        w.apply(Event::InitApply(wire("a", "one", "u1", "9")));
        w.apply(Event::InitApply(wire("b", "three", "u3", "8")));
        assert_eq!(
            names(&store),
            ["a/one@5", "a/two@6"],
            "the last complete list"
        );
        // A relist that starts over forgets what it had.
        w.apply(Event::Init);
        w.apply(Event::InitApply(wire("a", "one", "u1", "9")));
        w.apply(Event::InitDone);
        assert_eq!(names(&store), ["a/one@9"]);
    }

    #[test]
    fn watch_events_change_the_live_profiles() {
        let (store, mut w) = store();
        w.apply(Event::Init);
        w.apply(Event::InitDone);
        w.apply(Event::Apply(wire("a", "one", "u1", "5")));
        w.apply(Event::Apply(wire("b", "one", "u2", "6")));
        w.apply(Event::Apply(wire("a", "one", "u1", "7")));
        assert_eq!(names(&store), ["a/one@7", "b/one@6"]);
        let one = store.get("a", "one").unwrap();
        assert_eq!(
            (one.uid(), one.generation(), one.invalid()),
            (Some("u1"), Some(1), None)
        );
        assert!(store.get("a", "two").is_none() && store.get("c", "one").is_none());
        w.apply(Event::Delete(wire("b", "one", "u2", "8")));
        assert_eq!(names(&store), ["a/one@7"]);
        assert!(
            read(&store.live).namespace("b").is_none(),
            "an empty namespace is dropped"
        );
        // Deleting what is not there changes nothing.
        w.apply(Event::Delete(wire("b", "one", "u2", "8")));
        assert_eq!(names(&store), ["a/one@7"]);
        // A snapshot taken before a change keeps what it read.
        let before = store.state();
        w.apply(Event::Delete(wire("a", "one", "u1", "9")));
        assert!(store.state().is_empty());
        assert_eq!(before[0].resource_version(), Some(7));
    }

    #[test]
    fn a_namespace_is_held_once_and_an_unchanged_profile_is_not_copied() {
        let (store, mut w) = store();
        w.apply(Event::Init);
        for (i, name) in ["one", "two", "three"].into_iter().enumerate() {
            w.apply(Event::InitApply(wire(
                "shop",
                name,
                name,
                &format!("{}", i + 1),
            )));
        }
        w.apply(Event::InitDone);
        w.apply(Event::Apply(wire("shop", "four", "four", "4")));
        let state = store.state();
        assert_eq!(state.len(), 4);
        for p in &state {
            assert!(Arc::ptr_eq(&p.namespace, &state[0].namespace), "{p:?}");
        }
        // A relist: `one` unchanged, `two` changed, `three` recreated (a new uid).
        w.apply(Event::Init);
        w.apply(Event::InitApply(wire("shop", "one", "one", "1")));
        w.apply(Event::InitApply(wire("shop", "two", "two", "5")));
        w.apply(Event::InitApply(wire("shop", "three", "new", "3")));
        w.apply(Event::InitDone);
        let get = |name| store.get("shop", name).unwrap();
        let before = |name| state.iter().find(|p| p.name() == name).unwrap();
        assert!(Arc::ptr_eq(&get("one"), before("one")));
        assert!(!Arc::ptr_eq(&get("two"), before("two")));
        assert!(!Arc::ptr_eq(&get("three"), before("three")));
        assert_eq!(get("three").uid(), Some("new"));
        for name in ["one", "two", "three"] {
            assert!(Arc::ptr_eq(&get(name).namespace, &state[0].namespace));
        }
    }

    #[test]
    fn a_version_that_is_not_an_integer_is_never_taken_as_the_same() {
        let (store, mut w) = store();
        w.apply(Event::Init);
        w.apply(Event::InitApply(wire("a", "p", "u", "x1")));
        w.apply(Event::InitDone);
        let before = store.get("a", "p").unwrap();
        assert_eq!(before.resource_version(), None);
        w.apply(Event::Init);
        w.apply(Event::InitApply(wire("a", "p", "u", "x1")));
        w.apply(Event::InitDone);
        assert!(!Arc::ptr_eq(&store.get("a", "p").unwrap(), &before));
    }

    #[test]
    fn an_event_names_the_profile_as_kube_would() {
        let p = wire("a", "p", "u-1", "5");
        let expected = p.object_ref(&());
        let (store, mut w) = store();
        w.apply(Event::Apply(p));
        assert_eq!(store.get("a", "p").unwrap().object_ref(), expected);
    }

    #[tokio::test]
    async fn every_waiter_wakes_at_the_first_list_and_a_dropped_writer_fails_them() {
        let (store, mut w) = store();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.wait_until_ready().await })
            })
            .collect();
        tokio::task::yield_now().await;
        w.apply(Event::Init);
        w.apply(Event::InitDone);
        for waiter in waiters {
            waiter.await.unwrap().unwrap();
        }
        // Ready stays ready once the writer is gone.
        drop(w);
        store.wait_until_ready().await.unwrap();

        let (never, w) = super::store();
        let waiter = tokio::spawn(async move { never.wait_until_ready().await });
        drop(w);
        assert!(matches!(waiter.await.unwrap(), Err(WatchEnded)));
    }
}
