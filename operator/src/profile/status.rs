//! A SeccompProfile's status, computed from what is observed: its spec, the profiles it builds
//! on, the node agents' reports and the pods that use it. Pure: tested without an API server.

use crate::nodes::liveness::Liveness;
use crate::nodes::reports::OnNode;
use crds::{NodeCounts, ProfilePhase, SeccompProfile, SeccompProfileStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use seccomp_profile::{resolve, validate_spec, Arch, ProfileLookup, SyscallTable};

/// At most this many pods are listed in `status.activeWorkloads`.
pub const MAX_LISTED_WORKLOADS: usize = 50;
/// At most this many nodes are named in the `NodesReporting` condition.
pub const MAX_LISTED_NODES: usize = 10;

/// What the status is computed from.
pub struct Observed<'a> {
    /// The profile.
    pub profile: &'a SeccompProfile,
    /// Finds the profiles of its namespace by name (for base resolution).
    pub namespace_profiles: &'a dyn ProfileLookup,
    /// Every node's report.
    pub reports: &'a crate::nodes::reports::NodeReports,
    /// The version at which the profile's spec, or a base's, last changed (see
    /// [`crate::nodes::reports::SpecVersions`]).
    pub spec_version: u64,
    /// Which nodes count, and their architectures.
    pub live: &'a Liveness,
    /// Live pods that use the profile.
    pub users: Vec<String>,
    /// Syscall tables for validation (libseccomp in the operator).
    pub table: Option<&'a dyn SyscallTable>,
    /// What tenants' profiles may use.
    pub policy: &'a seccomp_profile::Policy,
    /// The runtime's default profile recorded profiles are compared with, if configured.
    pub runtime_default: Option<&'a crate::profile::runtime_default::RuntimeDefault>,
    /// What the node agents reported it refused recently (`status.denials`).
    pub denials: Vec<crds::DeniedSyscall>,
    /// What is known of its versions and of complain mode.
    pub versions: VersionsObserved,
}

/// What a profile's versions and complain mode are computed from
/// ([`crate::profile::complain`]).
#[derive(Clone, Debug, Default)]
pub struct VersionsObserved {
    /// What the node agents reported its enforced form would refuse (`status.wouldDeny`,
    /// before keeping only the current version's).
    pub would_deny: Vec<crds::DeniedSyscall>,
    /// Running pods that use it, with when each of their containers under it started.
    pub running: Vec<(String, Vec<k8s_openapi::jiff::Timestamp>)>,
    /// When a complain profile is ready to enforce.
    pub readiness: crate::profile::complain::Readiness,
    /// Now.
    pub now: k8s_openapi::jiff::Timestamp,
}

/// The computed status, and when to look at it again (a complain profile's readiness comes
/// with time).
pub fn compute_with_recheck(o: &Observed) -> (SeccompProfileStatus, Option<std::time::Duration>) {
    use crate::profile::{complain, versions};
    let mut status = compute(o);
    let v = &o.versions;
    let old = o.profile.status.as_ref();
    let installed = status.phase == Some(ProfilePhase::Installed);
    let at = versions::installed_at(old, status.content_hash.as_deref(), installed, v.now);
    status.installed_at = at.map(|t| t.to_string());
    status.pods_on_older_version = Some(versions::pods_on_older_version(&v.running, at));
    status.would_deny = complain::would_deny(old, v.would_deny.clone(), at);
    let mut recheck = None;
    if o.profile.spec.mode == seccomp_profile::Mode::Complain {
        // Only the profile's own namespace: reports about other namespaces' pods do not reach
        // its status, so their containers cannot vouch for it.
        let own = format!("{}/", o.profile.namespace().unwrap_or_default());
        let running: Vec<_> = v
            .running
            .iter()
            .filter(|(pod, _)| pod.starts_with(&own))
            .cloned()
            .collect();
        let (st, reason, message, next) =
            complain::ready_to_enforce(v.readiness, &running, at, &status.would_deny, v.now);
        let mut c = condition("ReadyToEnforce", false, reason, &message);
        c.status = st.to_owned();
        status.conditions.push(c);
        recheck = next;
    }
    (status, recheck)
}

/// The computed status (condition times are filled in by [`with_transition_times`]).
pub fn compute(o: &Observed) -> SeccompProfileStatus {
    let p = o.profile;
    let ns = p.namespace().unwrap_or_default();
    let name = p.name_any();
    let mut status = SeccompProfileStatus {
        localhost_profile: Some(SeccompProfile::localhost_path(&ns, &name)),
        observed_generation: p.metadata.generation,
        ..Default::default()
    };
    let mut users = o.users.clone();
    users.truncate(MAX_LISTED_WORKLOADS);
    status.active_workloads = users;
    status.denials = o.denials.clone();

    let summary = |errs: Vec<seccomp_profile::FieldError>| {
        seccomp_profile::limits::summarize(errs.iter().map(ToString::to_string))
    };
    let valid = validate_spec(&p.spec, o.table)
        .map_err(|errs| ("Invalid", summary(errs)))
        .and_then(|()| {
            resolve(&name, &p.spec, o.namespace_profiles)
                .map_err(|e| ("BaseProfileUnresolved", e.to_string()))
        })
        .and_then(|doc| {
            // After resolution: a base cannot bring in what the policy forbids.
            let refused = o.policy.check(&doc, "spec.");
            if refused.is_empty() {
                Ok(o.policy.for_node(&p.spec, doc))
            } else {
                Err(("NotAllowed", summary(refused)))
            }
        });
    let doc = match valid {
        Ok(doc) => {
            status.conditions.push(condition(
                "Valid",
                true,
                "Valid",
                "spec and base profiles are valid",
            ));
            Some(doc)
        }
        Err((reason, message)) => {
            status
                .conditions
                .push(condition("Valid", false, reason, &message));
            None
        }
    };
    // The hash shown is the rendering for this operator's architecture; each node renders
    // for its own.
    status.content_hash = doc.as_ref().map(|d| d.render(Arch::native()).hash);

    // Nodes: the counted ones (see node_liveness); a node has the profile when it synced
    // past the profile's spec and does not list it as failing (see node_reports).
    let id = (ns.clone(), name.clone());
    let total = o.live.counted.len() as u32;
    let mut installed = 0;
    let mut node_errors = Vec::new();
    for node in o.live.counted.keys() {
        match o.reports.get(node).map(|r| r.state(&id, o.spec_version)) {
            Some(OnNode::Installed) => installed += 1,
            Some(OnNode::Failing(why)) => node_errors.push(format!("node {node}: {why}")),
            Some(OnNode::Unconfirmed(why)) => {
                node_errors.push(format!("node {node}: not confirmed: {why}"))
            }
            Some(OnNode::Pending) | None => {}
        }
    }
    status.nodes = Some(NodeCounts { installed, total });
    status.installed_nodes = Some(format!("{installed}/{total}"));

    let (phase, ready, reason, message) = if p.metadata.deletion_timestamp.is_some() {
        let msg = if o.users.is_empty() {
            "being deleted".to_owned()
        } else {
            format!(
                "deletion waits for {} pod(s) that use the profile: {}",
                o.users.len(),
                o.users
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        (ProfilePhase::Terminating, false, "Terminating", msg)
    } else if p.spec.disabled {
        (
            ProfilePhase::Disabled,
            false,
            "Disabled",
            "spec.disabled is set: not installed on any node".to_owned(),
        )
    } else if doc.is_none() {
        (
            ProfilePhase::Error,
            false,
            "Invalid",
            "the profile is invalid; see the Valid condition".to_owned(),
        )
    } else if !node_errors.is_empty() {
        (ProfilePhase::Error, false, "NodeError", {
            let more = node_errors.len().saturating_sub(MAX_LISTED_NODES);
            let mut m = node_errors[..node_errors.len() - more].join("; ");
            if more > 0 {
                m.push_str(&format!("; and {more} more node(s)"));
            }
            m
        })
    } else if total == 0 {
        (
            ProfilePhase::Pending,
            false,
            "NoNodes",
            "no node agent has reported yet".to_owned(),
        )
    } else if installed == total {
        (
            ProfilePhase::Installed,
            true,
            "Installed",
            format!("installed on all {total} node(s)"),
        )
    } else if installed > 0 {
        (
            ProfilePhase::Installing,
            false,
            "Installing",
            format!("installed on {installed} of {total} node(s)"),
        )
    } else {
        (
            ProfilePhase::Pending,
            false,
            "Pending",
            format!("not installed on any of {total} node(s) yet"),
        )
    };
    status.phase = Some(phase);
    status
        .conditions
        .push(condition("Ready", ready, reason, &message));
    let reporting = match o.live.absent_message(MAX_LISTED_NODES) {
        None => condition(
            "NodesReporting",
            true,
            "AllNodesCounted",
            &format!("every node counts ({total})"),
        ),
        Some(m) => condition("NodesReporting", false, "NodesNotCounted", &m),
    };
    status.conditions.push(reporting);
    // Recorded profiles: is anything allowed that the runtime default denies?
    if let (Some(doc), Some(reference)) = (&doc, o.runtime_default) {
        if p.labels().contains_key(crds::LABEL_RECORDING) {
            status
                .conditions
                .push(crate::profile::runtime_default::condition(doc, reference));
        }
    }
    status
}

fn condition(type_: &str, ok: bool, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: if ok { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message: message.chars().take(1024).collect(),
        observed_generation: None,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    }
}

/// Fill in each condition's `lastTransitionTime` (and generation): kept from `old` when the
/// condition's status did not change, `now` otherwise.
pub fn with_transition_times(
    mut new: SeccompProfileStatus,
    old: Option<&SeccompProfileStatus>,
    now: Time,
) -> SeccompProfileStatus {
    for c in &mut new.conditions {
        c.observed_generation = new.observed_generation;
    }
    let old = old.map(|o| &o.conditions[..]).unwrap_or(&[]);
    crate::runtime::conditions::carry_transition_times(&mut new.conditions, old, &now);
    new
}

#[cfg(test)]
mod tests {
    use super::*;
    use crds::{
        NodeProfileStatus, SeccompNodeStatus, SeccompNodeStatusSpec, SeccompNodeStatusStatus,
    };
    use std::collections::BTreeMap;

    fn profile(json: serde_json::Value) -> SeccompProfile {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
            "metadata": {"name": "web", "namespace": "shop", "generation": 3},
            "spec": json,
        }))
        .unwrap()
    }

    /// The version at which the test profile's spec changed.
    const SPEC: u64 = 100;

    /// A node report: synced up to `synced`, listing shop/web as failing with `failing`.
    fn node(name: &str, ready: bool, synced: u64, failing: Option<&str>) -> SeccompNodeStatus {
        let mut n = SeccompNodeStatus::new(
            name,
            SeccompNodeStatusSpec {
                node_name: name.into(),
            },
        );
        n.status = Some(SeccompNodeStatusStatus {
            ready,
            synced_resource_version: Some(synced.to_string()),
            not_installed: failing.into_iter().map(entry).collect(),
            ..Default::default()
        });
        n
    }

    /// Liveness as the node controller would compute it for these reports: ready reports
    /// count (with their architecture), the others are absent.
    fn liveness(nodes: &[SeccompNodeStatus]) -> Liveness {
        let mut l = Liveness::default();
        for n in nodes {
            let s = n.status.clone().unwrap_or_default();
            if s.ready {
                l.counted
                    .insert(n.name_any(), s.architecture.unwrap_or(Arch::native()));
            } else {
                l.absent.insert(
                    n.name_any(),
                    crate::nodes::liveness::Absent {
                        reason: crate::nodes::liveness::Reason::AgentSilent,
                        since: None,
                    },
                );
            }
        }
        l
    }

    fn entry(why: &str) -> NodeProfileStatus {
        NodeProfileStatus {
            namespace: "shop".into(),
            name: "web".into(),
            content_hash: None,
            state: crds::NodeProfileState::Error,
            message: Some(why.into()),
            updated: None,
        }
    }

    fn status(
        p: &SeccompProfile,
        nodes: &[SeccompNodeStatus],
        users: Vec<String>,
    ) -> SeccompProfileStatus {
        let ns = BTreeMap::from([("web".to_string(), p.spec.profile.clone())]);
        let live = liveness(nodes);
        let reports: crate::nodes::reports::NodeReports = nodes
            .iter()
            .map(|n| {
                (
                    n.name_any(),
                    crate::nodes::reports::NodeReport::from_status(n.status.as_ref().unwrap()),
                )
            })
            .collect();
        compute(&Observed {
            profile: p,
            namespace_profiles: &ns,
            reports: &reports,
            spec_version: SPEC,
            live: &live,
            users,
            table: None,
            policy: &seccomp_profile::Policy::default(),
            runtime_default: None,
            denials: vec![],
            versions: Default::default(),
        })
    }

    fn ready(s: &SeccompProfileStatus) -> &Condition {
        s.conditions.iter().find(|c| c.type_ == "Ready").unwrap()
    }

    #[test]
    fn recorded_profiles_are_compared_with_the_runtime_default() {
        let reference = crate::profile::runtime_default::RuntimeDefault {
            source: "docker".into(),
            document: serde_json::from_value(serde_json::json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]
            }))
            .unwrap(),
        };
        let with = |p: &SeccompProfile| {
            let ns = BTreeMap::from([("web".to_string(), p.spec.profile.clone())]);
            let live = Liveness::default();
            compute(&Observed {
                profile: p,
                namespace_profiles: &ns,
                reports: &Default::default(),
                spec_version: SPEC,
                live: &live,
                users: vec![],
                table: None,
                policy: &seccomp_profile::Policy::default(),
                runtime_default: Some(&reference),
                denials: vec![],
                versions: Default::default(),
            })
            .conditions
            .into_iter()
            .find(|c| c.type_ == crate::profile::runtime_default::CONDITION)
        };
        let mut p = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read", "mount"], "action": "SCMP_ACT_ALLOW"}]}));
        // A tenant's own profile is not judged.
        assert!(with(&p).is_none());
        p.metadata.labels = Some(BTreeMap::from([(
            crds::LABEL_RECORDING.to_string(),
            "rec".to_string(),
        )]));
        let c = with(&p).expect("a RuntimeDefault condition");
        assert_eq!(c.status, "False");
        assert!(c.message.contains("mount: allowed"), "{}", c.message);
    }

    #[test]
    fn what_the_policy_forbids_is_not_valid_and_says_why() {
        let mut p = SeccompProfile::new(
            "web",
            seccomp_profile::parse_profile(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/x.sock","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
                &seccomp_profile::EvalContext::host(),
            )
            .unwrap()
            .spec
            .into(),
        );
        p.metadata.namespace = Some("shop".into());
        let s = status(&p, &[], vec![]);
        let valid = s.conditions.iter().find(|c| c.type_ == "Valid").unwrap();
        assert_eq!(valid.status, "False");
        assert_eq!(valid.reason, "NotAllowed");
        assert!(
            valid.message.starts_with("spec.listenerPath: not allowed"),
            "{}",
            valid.message
        );
        assert_eq!(s.phase, Some(ProfilePhase::Error));
    }

    #[test]
    fn phases_follow_the_nodes() {
        let p = profile(
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}),
        );
        let s = status(&p, &[], vec![]);
        assert_eq!(s.phase, Some(ProfilePhase::Pending));
        assert_eq!(
            s.localhost_profile.as_deref(),
            Some("operator/shop/web.json")
        );
        assert_eq!(s.observed_generation, Some(3));
        assert!(s.content_hash.is_some());

        let nodes = [
            node("a", true, SPEC, None),
            node("b", true, SPEC - 1, None),
            node("c", false, SPEC, None),
        ];
        let s = status(&p, &nodes, vec![]);
        assert_eq!(
            (s.phase, s.installed_nodes.as_deref()),
            (Some(ProfilePhase::Installing), Some("1/2"))
        );
        let reporting = s
            .conditions
            .iter()
            .find(|c| c.type_ == "NodesReporting")
            .unwrap();
        assert_eq!(reporting.status, "False");
        assert!(
            reporting
                .message
                .contains("1 node(s) not counted: c (agent silent)"),
            "{}",
            reporting.message
        );

        let nodes = [node("a", true, SPEC, None), node("b", true, SPEC + 7, None)];
        let s = status(&p, &nodes, vec![]);
        assert_eq!(
            (s.phase, s.installed_nodes.as_deref()),
            (Some(ProfilePhase::Installed), Some("2/2"))
        );
        assert_eq!(ready(&s).status, "True");

        // A node that has not synced the spec's version does not count.
        let nodes = [node("a", true, SPEC - 1, None)];
        assert_eq!(
            status(&p, &nodes, vec![]).phase,
            Some(ProfilePhase::Pending)
        );

        let nodes = [node("a", true, SPEC + 1, Some("disk full"))];
        let s = status(&p, &nodes, vec![]);
        assert_eq!(s.phase, Some(ProfilePhase::Error));
        assert!(ready(&s).message.contains("node a: disk full"));

        // A node whose report could not list all of shop's failures confirms nothing of shop.
        let mut n = node("a", true, SPEC + 1, None);
        n.status.as_mut().unwrap().truncated_namespaces = vec!["shop".into()];
        let s = status(&p, &[n], vec![]);
        assert_eq!(s.installed_nodes.as_deref(), Some("0/1"));
        assert!(
            ready(&s).message.contains("node a: not confirmed"),
            "{}",
            ready(&s).message
        );

        // Many failing nodes: ten are named, the rest counted.
        let nodes: Vec<_> = (0..25)
            .map(|i| node(&format!("n{i:02}"), true, SPEC, Some("disk full")))
            .collect();
        let m = ready(&status(&p, &nodes, vec![])).message.clone();
        assert!(m.ends_with("; and 15 more node(s)"), "{m}");
    }

    #[test]
    fn invalid_disabled_and_terminating() {
        let p = profile(
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}),
        );
        let s = status(&p, &[], vec![]);
        assert_eq!(s.phase, Some(ProfilePhase::Error));
        let valid = s.conditions.iter().find(|c| c.type_ == "Valid").unwrap();
        assert_eq!(
            (valid.status.as_str(), valid.reason.as_str()),
            ("False", "Invalid")
        );
        assert!(valid
            .message
            .contains("spec.syscalls[0].errnoRet: not allowed with action SCMP_ACT_ALLOW"));

        let p = profile(
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "baseProfileName": "missing"}),
        );
        let s = status(&p, &[], vec![]);
        let valid = s.conditions.iter().find(|c| c.type_ == "Valid").unwrap();
        assert_eq!(valid.reason, "BaseProfileUnresolved");

        let p = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "disabled": true}));
        assert_eq!(status(&p, &[], vec![]).phase, Some(ProfilePhase::Disabled));

        let mut p = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO"}));
        p.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        let s = status(&p, &[], vec!["shop/pod-1".into()]);
        assert_eq!(s.phase, Some(ProfilePhase::Terminating));
        assert!(ready(&s)
            .message
            .contains("waits for 1 pod(s) that use the profile: shop/pod-1"));
        assert_eq!(s.active_workloads, vec!["shop/pod-1"]);
    }

    #[test]
    fn transition_times_are_kept_while_status_holds() {
        let p = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO"}));
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(1000).unwrap());
        let t2 = Time(k8s_openapi::jiff::Timestamp::from_second(2000).unwrap());
        let first = with_transition_times(status(&p, &[], vec![]), None, t1.clone());
        let again = with_transition_times(status(&p, &[], vec![]), Some(&first), t2.clone());
        assert_eq!(again, first, "nothing changed: same times");
        let mut q = p.clone();
        q.spec.disabled = true;
        let changed = with_transition_times(status(&q, &[], vec![]), Some(&first), t2.clone());
        let ready = changed
            .conditions
            .iter()
            .find(|c| c.type_ == "Valid")
            .unwrap();
        assert_eq!(ready.last_transition_time, t1, "Valid stayed True");
    }
}
