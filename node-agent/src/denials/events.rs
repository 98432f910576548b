//! The `SyscallDenied` and `SyscallWouldBeDenied` Events: one core/v1 Event per series, on the
//! pod, named from the series so that every report of it updates the same object (its `count`,
//! `lastTimestamp` and message), as the kubelet's own event aggregation does. Both kinds share
//! the component, the annotations and the shape ([`crds::events`]); they differ in reason,
//! action, message and name.
//!
//! An agent that restarts finds its earlier Event (create answers AlreadyExists) and carries
//! on from that Event's count. An Event the API server expired (one hour by default) is
//! created again.

use super::aggregate::{Kind, Report, SeriesKey};
use super::attribute::Workload;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use std::collections::{BTreeMap, HashMap};

pub use crds::events::syscall_denied::{
    ANNOTATION_ACTION, ANNOTATION_CONTAINER, ANNOTATION_SYSCALL, COMPONENT,
};
use crds::events::{syscall_denied, syscall_would_be_denied};
/// Names remembered (with the count they started from) before the memory is cleared; a
/// forgotten name costs one more create (AlreadyExists) and a read.
const MAX_KNOWN: usize = 8192;

/// The Events' reason for a kind of series.
pub fn reason(kind: Kind) -> &'static str {
    match kind {
        Kind::Denied => syscall_denied::REASON,
        Kind::WouldDeny => syscall_would_be_denied::REASON,
    }
}

/// The Event's name: `<pod>.<16 hex digits>` of the pod's UID, container, syscall and action
/// (and, for a would-be denial, its kind: the two kinds of one syscall are two Events).
pub fn event_name(w: &Workload, key: &SeriesKey) -> String {
    // A denial's name is what it always was: an agent upgraded mid-series carries on.
    let kind = match key.kind {
        Kind::Denied => "",
        Kind::WouldDeny => "would-deny/",
    };
    let digest = seccomp_profile::content_hash(
        format!(
            "{kind}{}/{}/{}/{}",
            w.pod_uid, w.container, key.syscall, key.action
        )
        .as_bytes(),
    );
    let hex = digest.trim_start_matches("sha256:");
    let pod = &w.pod[..w.pod.len().min(253 - 17)];
    format!("{}.{}", pod.trim_end_matches(['.', '-']), &hex[..16])
}

/// What the Event says, its series' count being `count`: the syscall, the action, the count,
/// the profile and what to do (for a would-be denial, also that it ran, and the argument note
/// when the refusal depends on arguments). At most 1024 bytes.
pub fn message(r: &Report, count: u64) -> String {
    let (w, key) = (&r.workload, &r.key);
    let times = if count == 1 {
        "once".to_owned()
    } else {
        format!("{count} times")
    };
    let verb = match key.kind {
        Kind::Denied => "denied",
        Kind::WouldDeny => "would be denied",
    };
    let head = format!(
        "syscall {syscall} {verb} {times} ({action}) in container {container} under profile {ns}/{name} ({path})",
        syscall = key.syscall,
        action = key.action,
        container = w.container,
        ns = w.profile.0,
        name = w.profile.1,
        path = crds::SeccompProfile::localhost_path(&w.profile.0, &w.profile.1),
    );
    let syscall = &key.syscall;
    let text = match key.kind {
        Kind::Denied => format!(
            "{head}; if the workload needs it, add {syscall} to the profile's spec.syscalls or record the workload again"
        ),
        Kind::WouldDeny => {
            let mut text = format!(
                "{head} in Complain mode: the call ran and was logged; add {syscall} to the profile's spec.syscalls before switching it to Enforce"
            );
            if !r.argument_note.is_empty() {
                text.push_str("; ");
                text.push_str(r.argument_note);
            }
            text
        }
    };
    seccomp_profile::limits::truncate(&text, 1024)
}

/// The whole Event for a report, its count being `count`.
pub fn event(r: &Report, node: &str, count: u64) -> Event {
    let w = &r.workload;
    let key = &r.key;
    Event {
        metadata: ObjectMeta {
            name: Some(event_name(w, key)),
            namespace: Some(w.namespace.clone()),
            annotations: Some(BTreeMap::from([
                (ANNOTATION_SYSCALL.to_owned(), key.syscall.clone()),
                (ANNOTATION_ACTION.to_owned(), key.action.to_owned()),
                (ANNOTATION_CONTAINER.to_owned(), w.container.clone()),
            ])),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some(w.namespace.clone()),
            name: Some(w.pod.clone()),
            uid: Some(w.pod_uid.clone()),
            field_path: Some(format!("spec.{}{{{}}}", w.field, w.container)),
            ..Default::default()
        },
        related: Some(ObjectReference {
            api_version: Some(format!("{}/{}", crds::GROUP, crds::VERSION)),
            kind: Some("SeccompProfile".into()),
            namespace: Some(w.profile.0.clone()),
            name: Some(w.profile.1.clone()),
            ..Default::default()
        }),
        reason: Some(reason(key.kind).into()),
        message: Some(message(r, count)),
        type_: Some("Warning".into()),
        count: Some(count.min(i32::MAX as u64) as i32),
        first_timestamp: Some(Time(r.first)),
        last_timestamp: Some(Time(r.last)),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: Some(node.to_owned()),
        }),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(node.to_owned()),
        action: Some(
            match key.kind {
                Kind::Denied => "Deny",
                Kind::WouldDeny => "WouldDeny",
            }
            .into(),
        ),
        ..Default::default()
    }
}

/// Writes the Events of one node.
pub struct Publisher {
    client: Client,
    node: String,
    /// Event name → the count its series started from (an earlier agent's).
    known: HashMap<String, u64>,
}

impl Publisher {
    /// A publisher for `node`.
    pub fn new(client: Client, node: String) -> Self {
        Publisher {
            client,
            node,
            known: HashMap::new(),
        }
    }

    /// Create or update the series' Event.
    pub async fn publish(&mut self, r: &Report) -> Result<(), kube::Error> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &r.workload.namespace);
        let name = event_name(&r.workload, &r.key);
        let timeout = std::time::Duration::from_secs(5);
        let timed_out = || {
            kube::Error::Service(Box::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the API server did not answer in 5 s",
            )))
        };
        if let Some(base) = self.known.get(&name).copied() {
            let count = base + r.count;
            let patch = serde_json::json!({
                "count": count.min(i32::MAX as u64),
                "lastTimestamp": Time(r.last),
                "message": message(r, count),
            });
            match tokio::time::timeout(
                timeout,
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)),
            )
            .await
            {
                Ok(Ok(_)) => return Ok(()),
                // Expired: created again below.
                Ok(Err(kube::Error::Api(e))) if e.code == 404 => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(timed_out()),
            }
        }
        if self.known.len() >= MAX_KNOWN {
            self.known.clear();
        }
        let base = self.known.get(&name).copied().unwrap_or(0);
        let ev = event(r, &self.node, base + r.count);
        match tokio::time::timeout(timeout, api.create(&PostParams::default(), &ev)).await {
            Ok(Ok(_)) => {
                self.known.insert(name, base);
                Ok(())
            }
            Ok(Err(kube::Error::Api(e))) if e.code == 409 => {
                // An earlier agent's Event: carry on from its count.
                let existing = api.get(&name).await?;
                let base = existing.count.unwrap_or(0).max(0) as u64;
                self.known.insert(name, base);
                Box::pin(self.publish(r)).await
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(timed_out()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn report(pod: &str) -> Report {
        Report {
            key: SeriesKey {
                kind: Kind::Denied,
                container_id: "abc".into(),
                syscall: "mkdir".into(),
                action: "SCMP_ACT_ERRNO",
            },
            workload: Arc::new(Workload {
                namespace: "t".into(),
                pod: pod.into(),
                pod_uid: "uid-1".into(),
                container: "app".into(),
                field: "containers",
                profile: ("t".into(), "deny-mkdir".into()),
                logs_recording: false,
            }),
            count: 57,
            first: k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            last: k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            argument_note: "",
        }
    }

    fn would_deny(pod: &str) -> Report {
        let mut r = report(pod);
        r.key.kind = Kind::WouldDeny;
        r
    }

    #[test]
    fn the_event_names_the_syscall_profile_count_and_what_to_do() {
        let r = report("web-1");
        let ev = event(&r, "node-1", 60);
        assert_eq!(ev.reason.as_deref(), Some("SyscallDenied"));
        assert_eq!(ev.action.as_deref(), Some("Deny"));
        assert_eq!(ev.count, Some(60));
        let msg = ev.message.unwrap();
        for part in [
            "mkdir",
            "60 times",
            "SCMP_ACT_ERRNO",
            "operator/t/deny-mkdir.json",
            "container app",
            "record the workload again",
        ] {
            assert!(msg.contains(part), "{part} missing: {msg}");
        }
        assert_eq!(
            ev.involved_object.field_path.as_deref(),
            Some("spec.containers{app}")
        );
        assert_eq!(ev.related.unwrap().name.as_deref(), Some("deny-mkdir"));
        let name = ev.metadata.name.unwrap();
        assert!(
            name.starts_with("web-1.") && name.len() == "web-1.".len() + 16,
            "{name}"
        );
        let mut other = report("web-1");
        other.key.syscall = "rmdir".into();
        assert_ne!(
            event_name(&other.workload, &other.key),
            name,
            "one Event per syscall"
        );
    }

    #[test]
    fn names_fit_whatever_the_pod_name() {
        let r = report(&"p".repeat(253));
        let name = event_name(&r.workload, &r.key);
        assert!(name.len() <= 253, "{}", name.len());
    }

    #[test]
    fn a_would_be_denial_says_it_ran_under_complain_and_what_enforcing_would_do() {
        let mut r = would_deny("web-1");
        r.workload = Arc::new(Workload {
            profile: ("t".into(), "web".into()),
            ..(*r.workload).clone()
        });
        let ev = event(&r, "node-1", 3);
        assert_eq!(ev.reason.as_deref(), Some("SyscallWouldBeDenied"));
        assert_eq!(
            ev.reason.as_deref(),
            Some(crds::events::syscall_would_be_denied::REASON)
        );
        assert_eq!(ev.type_.as_deref(), Some("Warning"));
        assert_eq!(ev.action.as_deref(), Some("WouldDeny"));
        assert_eq!(ev.count, Some(3));
        assert_eq!(ev.related.as_ref().unwrap().name.as_deref(), Some("web"));
        assert_eq!(
            ev.reporting_component.as_deref(),
            Some(crds::events::syscall_would_be_denied::COMPONENT)
        );
        let ann = ev.metadata.annotations.as_ref().unwrap();
        assert_eq!(ann[ANNOTATION_SYSCALL], "mkdir");
        assert_eq!(ann[ANNOTATION_ACTION], "SCMP_ACT_ERRNO");
        assert_eq!(ann[ANNOTATION_CONTAINER], "app");
        assert_eq!(
            ev.message.as_deref(),
            Some(
                "syscall mkdir would be denied 3 times (SCMP_ACT_ERRNO) in container app under \
                 profile t/web (operator/t/web.json) in Complain mode: the call ran and was \
                 logged; add mkdir to the profile's spec.syscalls before switching it to Enforce"
            )
        );
        assert!(
            !message(&r, 1).contains("record the workload again"),
            "a denial's advice is not a would-be denial's"
        );
        assert!(message(&r, 1).contains("would be denied once"));

        // The note is seccomp_profile::WouldDeny::argument_note's; its wording is not ours.
        let note = "refused only for some argument values";
        r.argument_note = note;
        let msg = message(&r, 3);
        assert!(msg.ends_with(&format!("Enforce; {note}")), "{msg}");
        // A denial never carries the note, whatever the series says.
        let mut d = report("web-1");
        d.argument_note = note;
        assert!(!message(&d, 3).contains(note));
    }

    #[test]
    fn the_two_kinds_of_one_syscall_are_two_events_and_a_denial_keeps_its_name() {
        let (d, w) = (report("web-1"), would_deny("web-1"));
        assert_ne!(
            event_name(&d.workload, &d.key),
            event_name(&w.workload, &w.key)
        );
        // The name a denial had before complain mode existed: an upgraded agent carries on.
        let digest = seccomp_profile::content_hash(b"uid-1/app/mkdir/SCMP_ACT_ERRNO");
        let hex = &digest.trim_start_matches("sha256:")[..16];
        assert_eq!(event_name(&d.workload, &d.key), format!("web-1.{hex}"));
        let name = event_name(&w.workload, &w.key);
        assert!(name.starts_with("web-1.") && name.len() == "web-1.".len() + 16);
    }

    #[test]
    fn messages_are_bounded() {
        let mut r = would_deny("web-1");
        r.key.syscall = "x".repeat(2000);
        r.argument_note = "note";
        assert!(message(&r, u64::MAX).len() <= 1024);
        r.key.kind = Kind::Denied;
        assert!(message(&r, u64::MAX).len() <= 1024);
    }
}
