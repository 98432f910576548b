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
//!
//! The store counts the changes a sync must see ([`Writer::apply`] says whether an event was
//! one): a new, changed (uid, generation, spec or validity) or deleted profile, and every
//! relist. A status write or a metadata change moves only the profile's resourceVersion: the
//! files stay right, so a sync is not needed, only the version the node reports
//! ([`ProfileStore::version_if_unchanged`]). It also keeps the namespace of each of the last
//! [`JOURNAL`] changes, so a sync can cover only the namespaces changed since the last one
//! ([`ProfileStore::view`]).

use crds::nodestatus::parse_resource_version;
use crds::SeccompProfile;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::watcher::Event;
use kube::Resource;
use profile_installer::compact::{PackedSpec, StoredProfile};
use profile_installer::desired::{Input, SpecRef};
use std::borrow::Borrow;
use std::collections::{HashMap, HashSet, VecDeque};
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
    /// For a profile with a registry base folded in: its uid and the artifact's digest, what
    /// identifies its version with the generation (the operator's fetch changes the file
    /// without a new generation).
    folded_uid: Option<Box<str>>,
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
            version: self
                .folded_uid
                .as_deref()
                .or(self.uid())
                .zip(self.generation),
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

/// Changes whose namespaces are kept: a loop further behind syncs everything.
pub const JOURNAL: usize = 4096;

/// Profiles by namespace, then by name. A namespace's key is the one copy of its string
/// that all its profiles share.
#[derive(Default)]
struct Map {
    by_ns: HashMap<Arc<str>, HashSet<ByName>>,
    /// Moves with every change a sync must see (see the module's doc).
    content: u64,
    /// The namespace of each change after `floor`, by its count.
    journal: VecDeque<(u64, Arc<str>)>,
    /// Changes up to this count are not in the journal.
    floor: u64,
    /// The highest resourceVersion folded in (see [`SyncView::version`]).
    high_water: Option<u64>,
}

impl Map {
    /// The shared string of `namespace`, when a profile of it is here.
    fn namespace(&self, namespace: &str) -> Option<&Arc<str>> {
        self.by_ns.get_key_value(namespace).map(|(k, _)| k)
    }

    fn get(&self, namespace: &str, name: &str) -> Option<&Arc<Profile>> {
        self.by_ns.get(namespace)?.get(name).map(|p| &p.0)
    }

    /// Add `profile`, or replace the one of its namespace and name.
    fn insert(&mut self, profile: Arc<Profile>) {
        self.by_ns
            .entry(profile.namespace.clone())
            .or_default()
            .replace(ByName(profile));
    }

    /// Remove `namespace/name`; whether it was here.
    fn remove(&mut self, namespace: &str, name: &str) -> bool {
        let Some(names) = self.by_ns.get_mut(namespace) else {
            return false;
        };
        let removed = names.remove(name);
        // The namespace's string goes with its last profile.
        if names.is_empty() {
            self.by_ns.remove(namespace);
        }
        removed
    }

    fn iter(&self) -> impl Iterator<Item = &Arc<Profile>> {
        self.by_ns.values().flatten().map(|p| &p.0)
    }

    /// Count a change a sync must see, in `namespace`.
    fn changed(&mut self, namespace: Arc<str>) {
        self.content += 1;
        self.journal.push_back((self.content, namespace));
        if self.journal.len() > JOURNAL {
            if let Some((count, _)) = self.journal.pop_front() {
                self.floor = count;
            }
        }
    }

    /// An event at `resource_version` was folded in.
    fn saw(&mut self, resource_version: Option<u64>) {
        self.high_water = self.high_water.max(resource_version);
    }
}

/// What one sync reads ([`ProfileStore::view`]).
pub struct SyncView {
    /// The count of changes a sync must see that it includes (see
    /// [`ProfileStore::version_if_unchanged`]).
    pub content: u64,
    /// How far the store reflects the SeccompProfile changes: the highest resourceVersion of
    /// the events folded in. Watch events come in resourceVersion order and a relist is a list
    /// at one version, so a store that folded in an event at V reflects every change up to V
    /// (a relist never moves it back). None while no version was an integer (nothing is then
    /// confirmed).
    pub version: Option<u64>,
    /// The namespaces whose profiles these are, each complete (None: every namespace).
    pub namespaces: Option<Vec<Arc<str>>>,
    /// The profiles, shared, not copied.
    pub profiles: Vec<Arc<Profile>>,
}

/// Whether `new` installs exactly as `held` does: the same object (uid) at the same
/// generation, with the same spec and validity. An object without a uid or a generation is
/// never taken as unchanged.
fn installs_alike(held: &Profile, new: &Profile) -> bool {
    held.uid.is_some()
        && held.uid == new.uid
        && held.generation.is_some()
        && held.generation == new.generation
        && held.invalid == new.invalid
        && held.spec == new.spec
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

    /// What a sync reads now. After a sync of the view whose count was `since`, only the
    /// namespaces changed since then, each whole; every profile when `since` is None or the
    /// journal no longer reaches back to it (a relist, or more than [`JOURNAL`] changes).
    pub fn view(&self, since: Option<u64>) -> SyncView {
        let live = read(&self.live);
        let namespaces = since.filter(|s| *s >= live.floor).map(|since| {
            let mut changed: Vec<Arc<str>> = live
                .journal
                .iter()
                .rev()
                .take_while(|(count, _)| *count > since)
                .map(|(_, ns)| ns.clone())
                .collect();
            changed.sort_unstable();
            changed.dedup();
            changed
        });
        let profiles = match &namespaces {
            None => live.iter().cloned().collect(),
            Some(changed) => changed
                .iter()
                .filter_map(|ns| live.by_ns.get(&**ns))
                .flatten()
                .map(|p| p.0.clone())
                .collect(),
        };
        SyncView {
            content: live.content,
            version: live.high_water,
            namespaces,
            profiles,
        }
    }

    /// The version a sync would report now ([`SyncView::version`]), if no change a sync must
    /// see came since the view whose count was `content`: the files synced from that view then
    /// reflect every change up to it. None when one came (a sync is due).
    pub fn version_if_unchanged(&self, content: u64) -> Option<Option<u64>> {
        let live = read(&self.live);
        (live.content == content).then_some(live.high_water)
    }

    /// The profile `namespace/name`, if there is one.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<Profile>> {
        read(&self.live).get(namespace, name).cloned()
    }
}

impl Writer {
    /// Fold one watch event in; the wire object goes with it. True when the event is a change
    /// a sync must see (see the module's doc): the readers' profiles changed other than in
    /// their resourceVersions.
    pub fn apply(&mut self, event: Event<StoredProfile>) -> bool {
        match event {
            Event::Apply(p) => {
                let mut live = write(&self.live);
                let Some(p) = self.keep(p, &live) else {
                    return false;
                };
                let alike = live
                    .get(p.namespace(), p.name())
                    .is_some_and(|held| installs_alike(held, &p));
                live.saw(p.resource_version);
                let namespace = p.namespace.clone();
                live.insert(p);
                if !alike {
                    live.changed(namespace);
                }
                !alike
            }
            Event::Delete(p) => {
                let (Some(namespace), Some(name)) = (&p.metadata.namespace, &p.metadata.name)
                else {
                    return false;
                };
                let mut live = write(&self.live);
                let shared = live.namespace(namespace).cloned();
                live.saw(
                    p.metadata
                        .resource_version
                        .as_deref()
                        .and_then(parse_resource_version),
                );
                let removed = live.remove(namespace, name);
                if removed {
                    live.changed(shared.unwrap_or_else(|| namespace.as_str().into()));
                }
                removed
            }
            // A relist that started over drops what it had collected.
            Event::Init => {
                self.relist = Some(Map::default());
                false
            }
            Event::InitApply(p) => {
                let kept = self.keep(p, &read(&self.live));
                if let Some(p) = kept {
                    let relist = self.relist.get_or_insert_default();
                    relist.saw(p.resource_version);
                    relist.insert(p);
                }
                false
            }
            Event::InitDone => {
                let mut listed = self.relist.take().unwrap_or_default();
                let before = {
                    let mut live = write(&self.live);
                    // Whatever the relist brought, a sync reads it, all of it.
                    listed.content = live.content + 1;
                    listed.floor = listed.content;
                    listed.high_water = listed.high_water.max(live.high_water);
                    std::mem::replace(&mut *live, listed)
                };
                // Freed outside the lock: readers do not wait for it.
                drop(before);
                self.ready.send_replace(true);
                true
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
            generation: meta.generation,
            resource_version,
            folded_uid: p
                .base_digest
                .zip(meta.uid.as_deref())
                .map(|(digest, uid)| format!("{uid}@{digest}").into_boxed_str()),
            uid: meta.uid.map(String::into_boxed_str),
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
            .view(None)
            .profiles
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
        assert!(
            store.view(None).profiles.is_empty(),
            "half a list is never read"
        );
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
        let before = store.view(None).profiles;
        w.apply(Event::Delete(wire("a", "one", "u1", "9")));
        assert!(store.view(None).profiles.is_empty());
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
        let state = store.view(None).profiles;
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
    fn a_registry_base_arriving_in_status_is_a_change_and_a_new_version() {
        let (store, mut w) = store();
        let digest = format!("sha256:{}", "b".repeat(64));
        let reference = format!("oci://r.example/base@{digest}");
        let with = |rv: &str, status: serde_json::Value| -> StoredProfile {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
                "metadata": {"name": "p", "namespace": "a", "uid": "u",
                    "resourceVersion": rv, "generation": 1},
                "spec": {"defaultAction": "SCMP_ACT_ERRNO", "baseProfileName": reference},
                "status": status,
            }))
            .unwrap()
        };
        w.apply(Event::Init);
        w.apply(Event::InitApply(with("5", serde_json::json!({}))));
        w.apply(Event::InitDone);
        let waiting = store.get("a", "p").unwrap();
        assert!(waiting.invalid().is_some());
        assert_eq!(waiting.input().version, Some(("u", 1)));
        // The operator's status write brings the base at the same generation: a change, with
        // a version of its own, so that nothing rendered while waiting is reused.
        let resolved = serde_json::json!({"resolvedBase": {"reference": reference, "digest": digest,
            "generation": 1, "profile": {"defaultAction": "SCMP_ACT_ERRNO"}}});
        assert!(w.apply(Event::Apply(with("6", resolved))));
        let folded = store.get("a", "p").unwrap();
        assert!(folded.invalid().is_none());
        let key = format!("u@{digest}");
        assert_eq!(folded.input().version, Some((key.as_str(), 1)));
        assert_eq!(folded.object_ref().uid.as_deref(), Some("u"));
    }

    #[test]
    fn only_what_changes_the_files_is_a_change_a_sync_must_see() {
        let (store, mut w) = store();
        let with = |rv: &str, generation: i64, uid: &str, action: &str| -> StoredProfile {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
                "metadata": {"name": "p", "namespace": "a", "uid": uid,
                    "resourceVersion": rv, "generation": generation},
                "spec": {"defaultAction": action},
            }))
            .unwrap()
        };
        w.apply(Event::Init);
        w.apply(Event::InitApply(with("5", 1, "u", "SCMP_ACT_ERRNO")));
        assert!(w.apply(Event::InitDone), "a relist is always a change");
        let seen = store.view(None).content;
        assert_eq!(store.version_if_unchanged(seen), Some(Some(5)));

        // A status write: the version moves, nothing a sync reads does.
        assert!(!w.apply(Event::Apply(with("9", 1, "u", "SCMP_ACT_ERRNO"))));
        assert_eq!(store.version_if_unchanged(seen), Some(Some(9)));
        assert_eq!(store.get("a", "p").unwrap().resource_version(), Some(9));

        // A new generation, a new object under the same name, a new profile, a delete: each
        // is a change, and the version is not reported without a sync.
        let mut last = seen;
        for (event, what) in [
            (
                Event::Apply(with("10", 2, "u", "SCMP_ACT_LOG")),
                "a new generation",
            ),
            (
                Event::Apply(with("11", 2, "v", "SCMP_ACT_LOG")),
                "a new uid",
            ),
            (Event::Apply(wire("a", "q", "w", "12")), "a new profile"),
            (Event::Delete(wire("a", "q", "w", "13")), "a delete"),
        ] {
            assert!(w.apply(event), "{what}");
            assert_eq!(store.version_if_unchanged(last), None, "{what}");
            let now = store.view(None).content;
            assert_ne!(now, last, "{what}");
            last = now;
        }
        // Deleting what is not there changes nothing a sync reads; the store has seen that
        // version, and every one before it.
        assert!(!w.apply(Event::Delete(wire("a", "q", "w", "14"))));
        assert_eq!(store.version_if_unchanged(last), Some(Some(14)));
        // An object without a generation is never taken as unchanged.
        let mut bare = with("15", 2, "v", "SCMP_ACT_LOG");
        bare.metadata.generation = None;
        assert!(w.apply(Event::Apply(bare.clone())));
        bare.metadata.resource_version = Some("16".into());
        assert!(w.apply(Event::Apply(bare)));
    }

    #[test]
    fn a_view_after_a_sync_holds_the_namespaces_changed_since_each_whole() {
        let (store, mut w) = store();
        w.apply(Event::Init);
        for (ns, name) in [("a", "one"), ("a", "two"), ("b", "one"), ("c", "one")] {
            w.apply(Event::InitApply(wire(
                ns,
                name,
                &format!("{ns}{name}"),
                "1",
            )));
        }
        w.apply(Event::InitDone);
        let first = store.view(None);
        assert!(first.namespaces.is_none());
        assert_eq!(first.profiles.len(), 4);
        let since = Some(first.content);
        // Nothing changed: nothing to sync.
        let none = store.view(since);
        assert_eq!(none.namespaces.as_deref(), Some(&[][..]));
        assert!(none.profiles.is_empty());
        // A change in `a` and a delete emptying `c`: both namespaces, `a` whole.
        w.apply(Event::Apply(wire("a", "three", "athree", "5")));
        w.apply(Event::Delete(wire("c", "one", "cone", "6")));
        // A status write in `b` is not a change.
        w.apply(Event::Apply(wire("b", "one", "bone", "7")));
        let view = store.view(since);
        let namespaces: Vec<&str> = view.namespaces.iter().flatten().map(|n| &**n).collect();
        assert_eq!(namespaces, ["a", "c"]);
        let mut names: Vec<String> = view
            .profiles
            .iter()
            .map(|p| format!("{}/{}", p.namespace(), p.name()))
            .collect();
        names.sort();
        assert_eq!(names, ["a/one", "a/three", "a/two"]);
        assert_eq!(view.version, Some(7));
        // A loop further behind than the journal, or any loop after a relist: everything.
        let behind = store.view(Some(first.content));
        for i in 0..JOURNAL {
            w.apply(Event::Apply(wire(
                "b",
                &format!("n{i}"),
                &format!("u{i}"),
                "8",
            )));
        }
        assert!(store.view(Some(first.content)).namespaces.is_none());
        // The journal reaches back exactly to `behind`, and no further after one more.
        assert_eq!(
            store.view(Some(behind.content)).namespaces.unwrap().len(),
            1
        );
        w.apply(Event::Apply(wire("b", "n", "u", "8")));
        assert!(store.view(Some(behind.content)).namespaces.is_none());
        let recent = store.view(None).content;
        w.apply(Event::Apply(wire("c", "two", "ctwo", "9")));
        assert_eq!(store.view(Some(recent)).namespaces.unwrap().len(), 1);
        w.apply(Event::Init);
        w.apply(Event::InitDone);
        assert!(store.view(Some(recent)).namespaces.is_none());
        // The relist listed nothing; the version never goes back.
        assert_eq!(store.view(None).version, Some(9));
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
