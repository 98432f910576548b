//! Which syscalls each profile refused recently, kept from the node agents' `SyscallDenied`
//! Events for the profile's `status.denials` — and, in a second index of the same kind, which
//! its enforced form would refuse, from the `SyscallWouldBeDenied` Events of containers under
//! its complain rendering (`status.wouldDeny`). Pure index, tested without an API server; the
//! loop that feeds it is [`follow`].
//!
//! Trust: an Event counts only when its reporter is the node recorder
//! ([`COMPONENT`]) and the profile it relates to is in the Event's own namespace. Anyone
//! allowed to create Events in a namespace can forge such an Event, but only about that
//! namespace's profiles, whose pods they can make call denied syscalls anyway; the summary is
//! information, never a decision. Bounded: at most [`MAX_EVENTS_PER_PROFILE`] Events per
//! profile and [`MAX_PROFILES`] profiles are held.

use crds::localhost::ProfileId;
use crds::{DeniedSyscall, SeccompProfile, MAX_STATUS_DENIALS};
use k8s_openapi::api::core::v1::Event;
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use std::collections::{BTreeMap, HashMap};

use crds::events::syscall_denied::{ANNOTATION_ACTION, ANNOTATION_SYSCALL, COMPONENT, REASON};
use crds::events::syscall_would_be_denied::REASON as WOULD_DENY_REASON;

/// Events held per profile (the most recently seen).
pub const MAX_EVENTS_PER_PROFILE: usize = 256;
/// Profiles with denials held at once.
pub const MAX_PROFILES: usize = 20_000;
/// Profiles with denials held at once in one namespace: one tenant's Events (genuine or
/// forged) cannot take every place.
pub const MAX_PROFILES_PER_NAMESPACE: usize = 1_000;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    syscall: String,
    action: String,
    count: u64,
    last_seen: Option<k8s_openapi::jiff::Timestamp>,
    pod: String,
}

/// Event (namespace/name) → what it says, by profile.
#[derive(Debug)]
pub struct DenialIndex {
    /// The Events' reason this index keeps.
    reason: &'static str,
    by_profile: HashMap<ProfileId, BTreeMap<String, Entry>>,
    profile_of: HashMap<String, ProfileId>,
    /// Profiles held per namespace.
    per_namespace: HashMap<String, usize>,
}

impl Default for DenialIndex {
    /// The index of `SyscallDenied` Events.
    fn default() -> Self {
        DenialIndex::of(REASON)
    }
}

impl DenialIndex {
    /// An index of the Events with `reason`.
    fn of(reason: &'static str) -> Self {
        DenialIndex {
            reason,
            by_profile: HashMap::new(),
            profile_of: HashMap::new(),
            per_namespace: HashMap::new(),
        }
    }

    /// The index of `SyscallWouldBeDenied` Events (`status.wouldDeny`).
    pub fn would_deny() -> Self {
        DenialIndex::of(WOULD_DENY_REASON)
    }
}

fn bounded(s: &str) -> String {
    seccomp_profile::limits::truncate(s, seccomp_profile::limits::MAX_NAME_LEN)
}

/// The profile an Event reports on and what it says, when it is a node recorder's Event with
/// `reason` about a profile of its own namespace.
fn read(ev: &Event, reason: &str) -> Option<(ProfileId, Entry)> {
    if ev.reason.as_deref() != Some(reason) || ev.reporting_component.as_deref() != Some(COMPONENT)
    {
        return None;
    }
    let ns = ev.namespace()?;
    let related = ev.related.as_ref()?;
    if related.kind.as_deref() != Some("SeccompProfile")
        || related.namespace.as_deref() != Some(ns.as_str())
    {
        return None;
    }
    let name = related.name.clone()?;
    let a = ev.annotations();
    let syscall = a.get(ANNOTATION_SYSCALL)?;
    let action = a.get(ANNOTATION_ACTION)?;
    Some((
        (ns, name),
        Entry {
            syscall: bounded(syscall),
            action: bounded(action),
            count: ev.count.unwrap_or(1).max(0) as u64,
            last_seen: ev.last_timestamp.as_ref().map(|t| t.0),
            pod: bounded(ev.involved_object.name.as_deref().unwrap_or_default()),
        },
    ))
}

impl DenialIndex {
    /// An Event was added or changed: the profile whose summary changed, if any.
    pub fn apply(&mut self, ev: &Event) -> Option<ProfileId> {
        let key = format!("{}/{}", ev.namespace().unwrap_or_default(), ev.name_any());
        let Some((profile, entry)) = read(ev, self.reason) else {
            return self.delete(ev);
        };
        if !self.by_profile.contains_key(&profile) {
            let in_namespace = self.per_namespace.get(&profile.0).copied().unwrap_or(0);
            if self.by_profile.len() >= MAX_PROFILES || in_namespace >= MAX_PROFILES_PER_NAMESPACE {
                return None;
            }
            *self.per_namespace.entry(profile.0.clone()).or_default() += 1;
        }
        let events = self.by_profile.entry(profile.clone()).or_default();
        if events.get(&key) == Some(&entry) {
            return None;
        }
        events.insert(key.clone(), entry);
        if events.len() > MAX_EVENTS_PER_PROFILE {
            // The one seen longest ago goes.
            if let Some(oldest) = events
                .iter()
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(k, _)| k.clone())
            {
                events.remove(&oldest);
                self.profile_of.remove(&oldest);
            }
        }
        self.profile_of.insert(key, profile.clone());
        Some(profile)
    }

    /// An Event went (expired, deleted): the profile whose summary changed, if any.
    pub fn delete(&mut self, ev: &Event) -> Option<ProfileId> {
        let key = format!("{}/{}", ev.namespace().unwrap_or_default(), ev.name_any());
        let profile = self.profile_of.remove(&key)?;
        if let Some(events) = self.by_profile.get_mut(&profile) {
            events.remove(&key);
            if events.is_empty() {
                self.by_profile.remove(&profile);
                if let Some(n) = self.per_namespace.get_mut(&profile.0) {
                    *n -= 1;
                    if *n == 0 {
                        self.per_namespace.remove(&profile.0);
                    }
                }
            }
        }
        Some(profile)
    }

    /// The profile's `status.denials`: per syscall and action, the counts added over its
    /// Events, the last time seen and the pod of the latest; most recent first.
    pub fn summary(&self, profile: &ProfileId) -> Vec<DeniedSyscall> {
        let Some(events) = self.by_profile.get(profile) else {
            return Vec::new();
        };
        // Per syscall and action: the latest time seen, and the entry.
        type Latest = Option<k8s_openapi::jiff::Timestamp>;
        let mut by: BTreeMap<(&str, &str), (Latest, DeniedSyscall)> = BTreeMap::new();
        for e in events.values() {
            let (latest, d) = by
                .entry((e.syscall.as_str(), e.action.as_str()))
                .or_insert_with(|| {
                    let d = DeniedSyscall {
                        syscall: e.syscall.clone(),
                        action: e.action.clone(),
                        ..Default::default()
                    };
                    (None, d)
                });
            d.count += e.count;
            if d.example_pod.is_none() || e.last_seen >= *latest {
                *latest = e.last_seen;
                d.last_seen = e.last_seen.map(|t| t.to_string());
                d.example_pod = Some(e.pod.clone());
            }
        }
        let mut out: Vec<(Latest, DeniedSyscall)> = by.into_values().collect();
        out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.syscall.cmp(&b.1.syscall)));
        out.into_iter()
            .map(|(_, d)| d)
            .take(MAX_STATUS_DENIALS)
            .collect()
    }

    /// Start over (a relist): every profile that had denials.
    pub fn clear(&mut self) -> Vec<ProfileId> {
        self.profile_of.clear();
        self.per_namespace.clear();
        self.by_profile.drain().map(|(p, _)| p).collect()
    }
}

/// Keep `index` from the node recorders' Events ([`crate::runtime::caches::syscall_denied`]),
/// sending each profile whose summary changed.
pub fn follow(
    events: crate::runtime::caches::Events<Event>,
    index: std::sync::Arc<std::sync::RwLock<DenialIndex>>,
) -> impl futures::Stream<Item = ObjectRef<SeccompProfile>> + Send + 'static {
    use futures::StreamExt;
    use kube::runtime::watcher;
    events.flat_map(move |ev| {
        let mut idx = index.write().unwrap_or_else(|p| p.into_inner());
        let changed: Vec<ProfileId> = match ev {
            Ok(watcher::Event::Apply(e) | watcher::Event::InitApply(e)) => {
                idx.apply(&e).into_iter().collect()
            }
            Ok(watcher::Event::Delete(e)) => idx.delete(&e).into_iter().collect(),
            Ok(watcher::Event::Init) => idx.clear(),
            Ok(watcher::Event::InitDone) => Vec::new(),
            Err(e) => {
                tracing::warn!(error = %e, "watching the node recorders' events failed; retrying");
                Vec::new()
            }
        };
        futures::stream::iter(
            changed
                .into_iter()
                .map(|(ns, name)| ObjectRef::new(&name).within(&ns)),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, ns: &str, profile_ns: &str, syscall: &str, count: i32, at: &str) -> Event {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns, "annotations": {
                "seccomp-operator.dev/syscall": syscall, "seccomp-operator.dev/action": "SCMP_ACT_ERRNO"}},
            "involvedObject": {"kind": "Pod", "namespace": ns, "name": format!("pod-{name}")},
            "related": {"kind": "SeccompProfile", "namespace": profile_ns, "name": "prof"},
            "reason": "SyscallDenied",
            "reportingComponent": COMPONENT,
            "count": count,
            "lastTimestamp": at,
        }))
        .unwrap()
    }

    #[test]
    fn counts_add_up_per_syscall_most_recent_first() {
        let mut idx = DenialIndex::default();
        let p = ("t".to_owned(), "prof".to_owned());
        assert_eq!(
            idx.apply(&ev("a", "t", "t", "mkdir", 40, "2026-12-02T10:00:00Z")),
            Some(p.clone())
        );
        idx.apply(&ev("b", "t", "t", "mkdir", 2, "2026-12-02T10:00:05Z"));
        idx.apply(&ev("c", "t", "t", "bpf", 1, "2026-12-02T09:00:00Z"));
        let s = idx.summary(&p);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].syscall.as_str(), s[0].count), ("mkdir", 42));
        assert_eq!(s[0].example_pod.as_deref(), Some("pod-b"), "the latest pod");
        assert_eq!(s[1].syscall, "bpf");
        assert_eq!(
            idx.apply(&ev("a", "t", "t", "mkdir", 40, "2026-12-02T10:00:00Z")),
            None,
            "unchanged"
        );
        idx.delete(&ev("b", "t", "t", "mkdir", 2, "2026-12-02T10:00:05Z"));
        assert_eq!(idx.summary(&p)[0].count, 40);
    }

    #[test]
    fn each_index_keeps_its_own_reason() {
        let mut denied = DenialIndex::default();
        let mut would = DenialIndex::would_deny();
        let p = ("t".to_owned(), "prof".to_owned());
        let mut e = ev("w", "t", "t", "mkdir", 3, "2026-12-02T10:00:00Z");
        e.reason = Some(WOULD_DENY_REASON.into());
        assert_eq!(denied.apply(&e), None);
        assert_eq!(would.apply(&e), Some(p.clone()));
        assert_eq!(would.summary(&p)[0].count, 3);
        assert!(denied.summary(&p).is_empty());
    }

    #[test]
    fn only_the_recorders_events_about_their_own_namespace_count() {
        let mut idx = DenialIndex::default();
        assert_eq!(
            idx.apply(&ev(
                "x",
                "evil",
                "victim",
                "mkdir",
                5,
                "2026-12-02T10:00:00Z"
            )),
            None
        );
        let mut forged = ev("y", "t", "t", "mkdir", 5, "2026-12-02T10:00:00Z");
        forged.reporting_component = Some("someone".into());
        assert_eq!(idx.apply(&forged), None);
        assert!(idx.summary(&("victim".into(), "prof".into())).is_empty());
    }

    #[test]
    fn the_summary_and_the_index_are_bounded() {
        let mut idx = DenialIndex::default();
        let p = ("t".to_owned(), "prof".to_owned());
        for i in 0..(MAX_EVENTS_PER_PROFILE + 50) {
            idx.apply(&ev(
                &format!("e{i}"),
                "t",
                "t",
                &format!("sys{i}"),
                1,
                &format!("2026-12-02T10:{:02}:{:02}Z", i / 60 % 60, i % 60),
            ));
        }
        assert_eq!(idx.by_profile[&p].len(), MAX_EVENTS_PER_PROFILE);
        assert_eq!(idx.profile_of.len(), MAX_EVENTS_PER_PROFILE);
        assert_eq!(idx.summary(&p).len(), MAX_STATUS_DENIALS);
    }

    #[test]
    fn one_namespace_cannot_take_every_place() {
        let mut idx = DenialIndex::default();
        let mut e = ev("x", "loud", "loud", "mkdir", 1, "2026-12-02T10:00:00Z");
        for i in 0..MAX_PROFILES_PER_NAMESPACE + 5 {
            e.metadata.name = Some(format!("x{i}"));
            e.related.as_mut().unwrap().name = Some(format!("p{i}"));
            idx.apply(&e);
        }
        assert_eq!(idx.by_profile.len(), MAX_PROFILES_PER_NAMESPACE);
        assert!(idx
            .apply(&ev("y", "t", "t", "bpf", 1, "2026-12-02T10:00:00Z"))
            .is_some());
        e.metadata.name = Some("x0".into());
        e.related.as_mut().unwrap().name = Some("p0".into());
        idx.delete(&e);
        e.metadata.name = Some("again".into());
        e.related.as_mut().unwrap().name = Some("p-new".into());
        assert!(idx.apply(&e).is_some(), "a place freed is usable again");
    }
}
