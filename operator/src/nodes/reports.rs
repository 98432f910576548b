//! What the node agents' reports say about each profile, indexed so that a report costs work
//! in proportion to what it changed, never to the number of profiles. Pure: tested without an
//! API server.
//!
//! A node's `SeccompNodeStatus` says how far its agent has synced (a resourceVersion of the
//! SeccompProfiles) and which profiles fail there (see `crds::nodestatus`). A profile is on a
//! node when the node has synced past the version at which the profile's spec, or a base's,
//! last changed ([`SpecVersions`]) and the node does not list it as failing.
//!
//! When a report changes, the profiles to look at again are ([`touched`]): those whose spec
//! version lies between the old and the new synced version (a range query on
//! [`SpecVersions`]), those entering or leaving the failure list, and those of namespaces
//! entering or leaving `truncatedNamespaces`. A new node or a change of `truncated` touches
//! every profile (rare, and the node's liveness change does the same).

use crds::localhost::ProfileId;
use crds::SeccompNodeStatusStatus;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// One node's report, as the operator reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeReport {
    /// Every SeccompProfile change up to this version is synced (None: nothing is).
    pub synced: Option<u64>,
    /// Profiles that fail on the node, and why.
    pub failing: HashMap<ProfileId, String>,
    /// Namespaces with more failures than listed.
    pub truncated_namespaces: HashSet<String>,
    /// More failing namespaces than named.
    pub truncated: bool,
    /// The kubelet's `seccompDefault`, as the agent reported it (None: not reported or not
    /// known). Moves no profile: [`touched`] ignores it.
    pub seccomp_default: Option<bool>,
}

/// A profile on one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnNode<'a> {
    /// The file is there, in the profile's current version.
    Installed,
    /// The node failed to install it: why.
    Failing(&'a str),
    /// The node's report cannot confirm it: why (its namespace's failures, or the node's,
    /// did not fit in the report).
    Unconfirmed(&'static str),
    /// The node has not synced its current version yet.
    Pending,
}

impl NodeReport {
    /// The report of a `SeccompNodeStatus` status.
    pub fn from_status(s: &SeccompNodeStatusStatus) -> Self {
        NodeReport {
            synced: s.synced_version(),
            failing: s
                .not_installed
                .iter()
                .map(|e| {
                    (
                        (e.namespace.clone(), e.name.clone()),
                        e.message.clone().unwrap_or_else(|| "error".into()),
                    )
                })
                .collect(),
            truncated_namespaces: s.truncated_namespaces.iter().cloned().collect(),
            truncated: s.truncated,
            seccomp_default: s.seccomp_default(),
        }
    }

    /// Where profile `id`, whose spec (with its bases) last changed at `spec_version`, stands
    /// on this node.
    pub fn state(&self, id: &ProfileId, spec_version: u64) -> OnNode<'_> {
        if let Some(why) = self.failing.get(id) {
            return OnNode::Failing(why);
        }
        if self.truncated {
            return OnNode::Unconfirmed(
                "the node reports failures in more namespaces than its report can name",
            );
        }
        if self.truncated_namespaces.contains(&id.0) {
            return OnNode::Unconfirmed(
                "the node reports more failing profiles of this namespace than its report lists",
            );
        }
        match self.synced {
            Some(v) if v >= spec_version => OnNode::Installed,
            _ => OnNode::Pending,
        }
    }
}

/// Every node's report, by node name.
pub type NodeReports = HashMap<String, NodeReport>;

/// What `node`'s kubelet does with a container that sets no seccomp profile, as its agent
/// reported it (`Unknown` for a node without a report, or whose agent could not tell).
pub fn node_default(reports: &NodeReports, node: &str) -> crds::confinement::NodeDefault {
    crds::confinement::NodeDefault::from_reported(reports.get(node).and_then(|r| r.seccomp_default))
}

/// The nodes whose kubelet runs containers that set no seccomp profile under
/// `RuntimeDefault` (their agent reported `seccompDefault: true`).
pub fn seccomp_default_nodes(reports: &NodeReports) -> HashSet<String> {
    reports
        .iter()
        .filter(|(_, r)| r.seccomp_default == Some(true))
        .map(|(n, _)| n.clone())
        .collect()
}

/// The version at which each profile's spec last changed, as this process saw it: the
/// resourceVersion of the first state seen at the current generation (a later state at the
/// same generation is a status write). It is never earlier than the real change, so a node
/// synced past it has the change. A profile's *effective* version is the latest over it and
/// its bases (a base's change changes the profile's file).
#[derive(Debug, Default)]
pub struct SpecVersions {
    own: HashMap<ProfileId, (String, i64, u64)>,
    effective: HashMap<ProfileId, u64>,
    by_effective: BTreeMap<u64, BTreeSet<ProfileId>>,
}

/// Version of an object whose resourceVersion is not an integer: no node ever confirms it.
pub const UNCOMPARABLE: u64 = u64::MAX;

impl SpecVersions {
    /// The version of `id`'s own spec: the object `uid` at `generation`, seen now at
    /// `resource_version`. A profile deleted and created again under the same name is a new
    /// object (a new uid), even at the same generation.
    pub fn own(
        &mut self,
        id: &ProfileId,
        uid: &str,
        generation: i64,
        resource_version: Option<&str>,
    ) -> u64 {
        let now = resource_version
            .and_then(crds::nodestatus::parse_resource_version)
            .unwrap_or(UNCOMPARABLE);
        match self.own.get(id) {
            Some((u, g, v)) if u == uid && *g == generation => *v,
            _ => {
                self.own
                    .insert(id.clone(), (uid.to_owned(), generation, now));
                now
            }
        }
    }

    /// Record `id`'s effective version (indexed for [`SpecVersions::between`]).
    pub fn set_effective(&mut self, id: &ProfileId, version: u64) {
        if let Some(old) = self.effective.insert(id.clone(), version) {
            if old == version {
                return;
            }
            self.unindex(id, old);
        }
        self.by_effective
            .entry(version)
            .or_default()
            .insert(id.clone());
    }

    fn unindex(&mut self, id: &ProfileId, version: u64) {
        if let Some(set) = self.by_effective.get_mut(&version) {
            set.remove(id);
            if set.is_empty() {
                self.by_effective.remove(&version);
            }
        }
    }

    /// Forget a deleted profile.
    pub fn forget(&mut self, id: &ProfileId) {
        self.own.remove(id);
        if let Some(v) = self.effective.remove(id) {
            self.unindex(id, v);
        }
    }

    /// Profiles whose effective version is in `(after, upto]`.
    pub fn between(&self, after: u64, upto: u64) -> impl Iterator<Item = &ProfileId> {
        let range = if after < upto {
            Some(self.by_effective.range(after + 1..=upto))
        } else {
            None
        };
        range.into_iter().flatten().flat_map(|(_, ids)| ids.iter())
    }

    /// Every profile known, in one namespace.
    pub fn in_namespace<'a>(&'a self, ns: &'a str) -> impl Iterator<Item = &'a ProfileId> {
        self.effective.keys().filter(move |id| id.0 == ns)
    }

    /// Number of profiles known.
    pub fn len(&self) -> usize {
        self.effective.len()
    }

    /// No profile is known.
    pub fn is_empty(&self) -> bool {
        self.effective.is_empty()
    }
}

/// Which profiles a report change may have moved.
#[derive(Debug, PartialEq, Eq)]
pub enum Touched {
    /// Possibly every profile.
    All,
    /// These.
    Some(BTreeSet<ProfileId>),
}

/// The profiles whose state on a node may differ between its `old` and `new` reports.
pub fn touched(old: Option<&NodeReport>, new: &NodeReport, versions: &SpecVersions) -> Touched {
    let Some(old) = old else {
        return Touched::All;
    };
    if old.truncated != new.truncated {
        return Touched::All;
    }
    let mut out = BTreeSet::new();
    match (old.synced, new.synced) {
        (Some(a), Some(b)) => out.extend(versions.between(a.min(b), a.max(b)).cloned()),
        (None, None) => {}
        _ => return Touched::All,
    }
    for (id, why) in &new.failing {
        if old.failing.get(id) != Some(why) {
            out.insert(id.clone());
        }
    }
    for id in old.failing.keys() {
        if !new.failing.contains_key(id) {
            out.insert(id.clone());
        }
    }
    for ns in old
        .truncated_namespaces
        .symmetric_difference(&new.truncated_namespaces)
    {
        out.extend(versions.in_namespace(ns).cloned());
    }
    Touched::Some(out)
}

/// The version every counted node has synced: the lowest over them (None when one of them
/// has no report or has synced nothing; then no profile is on every node by its version).
pub fn floor<'a>(
    reports: &NodeReports,
    counted: impl IntoIterator<Item = &'a String>,
) -> Option<u64> {
    let mut low = u64::MAX;
    for node in counted {
        low = low.min(reports.get(node)?.synced?);
    }
    Some(low)
}

/// Of the profiles a node's report change touched ([`touched`]), those whose phase it may
/// change: the ones the counted nodes' [`floor`] passed (from `floor_before` to
/// `floor_after`: now on every counted node, unless one fails them), and those whose failure
/// or confirmation on the node changed. A profile that only moved from `Installing n/m` to
/// `n+1/m` is not among them: its reconcile would only recount a progress status, which is
/// written seldom anyway ([`crate`]'s profile writes), and the burst of a hundred nodes
/// reporting each new profile would cost a hundred reconciles.
pub fn phase_movers(
    old: Option<&NodeReport>,
    new: &NodeReport,
    versions: &SpecVersions,
    floor_before: Option<u64>,
    floor_after: Option<u64>,
) -> Touched {
    let Some(old) = old else {
        return Touched::All;
    };
    if old.truncated != new.truncated {
        return Touched::All;
    }
    let mut out = BTreeSet::new();
    match (floor_before, floor_after) {
        (Some(a), Some(b)) => out.extend(versions.between(a.min(b), a.max(b)).cloned()),
        (None, None) => {}
        // Every counted node has now synced something, or one no longer has: anything may
        // have moved.
        _ => return Touched::All,
    }
    let unchanged_range = NodeReport {
        synced: old.synced,
        ..new.clone()
    };
    match touched(Some(old), &unchanged_range, versions) {
        Touched::All => Touched::All,
        Touched::Some(failures) => {
            out.extend(failures);
            Touched::Some(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ns: &str, name: &str) -> ProfileId {
        (ns.into(), name.into())
    }

    #[test]
    fn the_spec_version_is_kept_across_status_writes_and_moves_with_the_generation() {
        let mut v = SpecVersions::default();
        let a = id("shop", "web");
        assert_eq!(v.own(&a, "u1", 1, Some("100")), 100);
        // The operator's status write: same generation, later version.
        assert_eq!(v.own(&a, "u1", 1, Some("105")), 100);
        // A spec change.
        assert_eq!(v.own(&a, "u1", 2, Some("120")), 120);
        // Deleted and created again under the same name: generation 1 again, a new object.
        assert_eq!(v.own(&a, "u2", 1, Some("130")), 130);
        // Versions that are not integers are never confirmed.
        assert_eq!(v.own(&id("x", "y"), "u", 1, Some("abc")), UNCOMPARABLE);
        assert_eq!(v.own(&id("x", "z"), "u", 1, Some("0123")), UNCOMPARABLE);
    }

    #[test]
    fn a_profile_is_installed_once_the_node_synced_past_its_spec_and_does_not_list_it() {
        let web = id("shop", "web");
        let mut r = NodeReport {
            synced: Some(99),
            ..Default::default()
        };
        assert_eq!(r.state(&web, 100), OnNode::Pending);
        r.synced = Some(100);
        assert_eq!(r.state(&web, 100), OnNode::Installed);
        r.failing.insert(web.clone(), "disk full".into());
        assert_eq!(r.state(&web, 100), OnNode::Failing("disk full"));
        r.failing.clear();
        r.truncated_namespaces.insert("shop".into());
        assert!(matches!(r.state(&web, 100), OnNode::Unconfirmed(_)));
        // Another tenant's namespace is not affected by shop's failures.
        assert_eq!(r.state(&id("bank", "api"), 100), OnNode::Installed);
        r.truncated = true;
        assert!(matches!(
            r.state(&id("bank", "api"), 100),
            OnNode::Unconfirmed(_)
        ));
        // Nothing synced: nothing confirmed.
        let none = NodeReport::default();
        assert_eq!(none.state(&web, 1), OnNode::Pending);
        assert_eq!(
            NodeReport {
                synced: Some(u64::MAX - 1),
                ..Default::default()
            }
            .state(&web, UNCOMPARABLE),
            OnNode::Pending
        );
    }

    #[test]
    fn a_report_touches_only_what_it_changed() {
        let mut v = SpecVersions::default();
        for i in 0..10_000u64 {
            let p = id(&format!("ns{}", i % 50), &format!("p{i}"));
            let own = v.own(&p, "u", 1, Some(&(1000 + i).to_string()));
            v.set_effective(&p, own);
        }
        let old = NodeReport {
            synced: Some(5000),
            ..Default::default()
        };
        let new = NodeReport {
            synced: Some(5010),
            ..Default::default()
        };
        // Versions 5001..=5010 belong to profiles 4001..=4010.
        let Touched::Some(t) = touched(Some(&old), &new, &v) else {
            panic!("not a range")
        };
        assert_eq!(t.len(), 10);
        assert!(t.contains(&id("ns1", "p4001")) && t.contains(&id("ns10", "p4010")));
        // Nothing changed: nothing touched (a heartbeat-only or status-only report).
        assert_eq!(
            touched(Some(&new), &new, &v),
            Touched::Some(BTreeSet::new())
        );
        // A failure appears and another goes.
        let mut failing = new.clone();
        failing
            .failing
            .insert(id("ns3", "p3"), "write failed".into());
        let Touched::Some(t) = touched(Some(&new), &failing, &v) else {
            panic!()
        };
        assert_eq!(t, BTreeSet::from([id("ns3", "p3")]));
        let Touched::Some(t) = touched(Some(&failing), &new, &v) else {
            panic!()
        };
        assert_eq!(t, BTreeSet::from([id("ns3", "p3")]));
        // A namespace truncated: its 200 profiles.
        let mut trunc = new.clone();
        trunc.truncated_namespaces.insert("ns7".into());
        let Touched::Some(t) = touched(Some(&new), &trunc, &v) else {
            panic!()
        };
        assert_eq!(t.len(), 200);
        // A new node, or the node-wide flag: everything.
        assert_eq!(touched(None, &new, &v), Touched::All);
        let mut all = new.clone();
        all.truncated = true;
        assert_eq!(touched(Some(&new), &all, &v), Touched::All);
    }

    #[test]
    fn a_base_change_moves_the_effective_version_and_deleted_profiles_are_forgotten() {
        let mut v = SpecVersions::default();
        let p = id("a", "app");
        v.set_effective(&p, 10);
        v.set_effective(&p, 30);
        assert_eq!(v.between(0, 20).count(), 0);
        assert_eq!(v.between(20, 30).count(), 1);
        v.forget(&p);
        assert_eq!(v.between(0, 100).count(), 0);
        assert!(v.is_empty());
    }

    #[test]
    fn the_report_reads_the_status_fields() {
        let s = SeccompNodeStatusStatus {
            ready: true,
            synced_resource_version: Some("42".into()),
            not_installed: vec![crds::NodeProfileStatus {
                namespace: "a".into(),
                name: "b".into(),
                content_hash: None,
                state: crds::NodeProfileState::Error,
                message: Some("why".into()),
                updated: None,
            }],
            truncated_namespaces: vec!["c".into()],
            ..Default::default()
        };
        let r = NodeReport::from_status(&s);
        assert_eq!(r.synced, Some(42));
        assert_eq!(r.state(&id("a", "b"), 1), OnNode::Failing("why"));
        assert!(matches!(r.state(&id("c", "d"), 1), OnNode::Unconfirmed(_)));
        assert_eq!(r.state(&id("e", "f"), 42), OnNode::Installed);
        assert_eq!(r.seccomp_default, None, "not reported");
    }

    #[test]
    fn the_kubelets_seccomp_default_is_read_and_moves_no_profile() {
        use crds::confinement::NodeDefault;
        let status = |kubelet: serde_json::Value| -> SeccompNodeStatusStatus {
            serde_json::from_value(serde_json::json!({"ready": true, "kubelet": kubelet})).unwrap()
        };
        let mut reports = NodeReports::new();
        reports.insert(
            "on".into(),
            NodeReport::from_status(&status(serde_json::json!({"seccompDefault": true}))),
        );
        reports.insert(
            "off".into(),
            NodeReport::from_status(&status(serde_json::json!({"seccompDefault": false}))),
        );
        reports.insert(
            "unknown".into(),
            NodeReport::from_status(&status(
                serde_json::json!({"reason": "GET /configz: 403 Forbidden"}),
            )),
        );
        assert_eq!(node_default(&reports, "on"), NodeDefault::RuntimeDefault);
        assert_eq!(node_default(&reports, "off"), NodeDefault::Unconfined);
        assert_eq!(node_default(&reports, "unknown"), NodeDefault::Unknown);
        assert_eq!(node_default(&reports, "absent"), NodeDefault::Unknown);
        assert_eq!(
            seccomp_default_nodes(&reports),
            HashSet::from(["on".to_string()])
        );
        let v = SpecVersions::default();
        assert_eq!(
            touched(Some(&reports["off"]), &reports["on"], &v),
            Touched::Some(BTreeSet::new())
        );
    }

    #[test]
    fn only_the_floor_passing_or_a_failure_moves_a_phase() {
        let mut v = SpecVersions::default();
        let (a, b, c) = (id("shop", "a"), id("shop", "b"), id("shop", "c"));
        for (p, at) in [(&a, 10), (&b, 20), (&c, 30)] {
            v.set_effective(p, at);
        }
        let report = |synced| NodeReport {
            synced: Some(synced),
            ..Default::default()
        };
        let mut reports = NodeReports::new();
        reports.insert("n1".into(), report(25));
        reports.insert("n2".into(), report(15));
        let counted = ["n1".to_string(), "n2".to_string()];
        assert_eq!(floor(&reports, &counted), Some(15));
        // n1 moves on from 25 to 40: c is on n1 now, but not on n2: nothing to look at.
        let old = reports.insert("n1".into(), report(40));
        let after = floor(&reports, &counted);
        assert_eq!(
            phase_movers(old.as_ref(), &report(40), &v, Some(15), after),
            Touched::Some(BTreeSet::new())
        );
        // n2, the slowest, moves from 15 to 35: b and c are on every node now (a was already).
        let old = reports.insert("n2".into(), report(35));
        let after = floor(&reports, &counted);
        assert_eq!(after, Some(35));
        assert_eq!(
            phase_movers(old.as_ref(), &report(35), &v, Some(15), after),
            Touched::Some(BTreeSet::from([b.clone(), c.clone()]))
        );
        // A failure on a node that is ahead still counts.
        let mut failing = report(40);
        failing.failing.insert(a.clone(), "disk full".into());
        assert_eq!(
            phase_movers(Some(&report(40)), &failing, &v, Some(35), Some(35)),
            Touched::Some(BTreeSet::from([a.clone()]))
        );
        // A counted node without a report: nothing is on every node.
        assert_eq!(floor(&reports, &["n3".to_string()]), None);
        // A node's first report: everything.
        assert_eq!(phase_movers(None, &report(1), &v, None, None), Touched::All);
    }
}
