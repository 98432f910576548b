//! The install gate's hold on the profiles it admits a pod for: before the pod is stored, each
//! profile gets the in-use finalizer and the time of the admission
//! ([`crds::ANNOTATION_ADMITTED_AT`]). The profile controller keeps the finalizer for
//! [`HOLD`] after that even with no pod in its index yet, and from then on while pods use the
//! profile; so a delete in the moment between admission and the pod watch never removes the
//! file under a starting pod. A profile deleted before the hold lands refuses the pod.

use crds::{SeccompProfile, ANNOTATION_ADMITTED_AT, FINALIZER_IN_USE};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use std::time::Duration;

/// How long an admission holds the finalizer without a pod in the index: far longer than the
/// pod watch takes to report the pod.
pub const HOLD: Duration = Duration::from_secs(60);
/// A hold younger than this (seen in the cache, with the finalizer) is not written again: a
/// burst of pods costs one write per profile per this period.
pub const REFRESH_AFTER: Duration = Duration::from_secs(10);
/// How long the admission hold on `p` still lasts at `now`, if at all.
pub fn hold_left(p: &SeccompProfile, now: Timestamp) -> Option<Duration> {
    let at: Timestamp = p.annotations().get(ANNOTATION_ADMITTED_AT)?.parse().ok()?;
    let age = now.duration_since(at);
    let age = Duration::try_from(age).unwrap_or(Duration::ZERO);
    HOLD.checked_sub(age).filter(|d| !d.is_zero())
}

/// Whether `p` (as cached) is held recently enough that admitting another pod needs no write.
pub fn held_recently(p: &SeccompProfile, now: Timestamp) -> bool {
    p.finalizers().iter().any(|f| f == FINALIZER_IN_USE)
        && hold_left(p, now).is_some_and(|left| left + REFRESH_AFTER > HOLD)
        && p.metadata.deletion_timestamp.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(annotation: Option<String>, finalizer: bool) -> SeccompProfile {
        let mut p: SeccompProfile = serde_json::from_value(serde_json::json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
            "metadata": {"name": "p", "namespace": "t"},
            "spec": {"defaultAction": "SCMP_ACT_ALLOW"}}))
        .unwrap();
        if let Some(a) = annotation {
            p.annotations_mut().insert(ANNOTATION_ADMITTED_AT.into(), a);
        }
        if finalizer {
            p.finalizers_mut().push(FINALIZER_IN_USE.into());
        }
        p
    }

    #[test]
    fn an_admission_holds_for_a_minute_and_is_rewritten_only_when_older_than_ten_seconds() {
        let now = Timestamp::now();
        let ago = |s: i64| (now - k8s_openapi::jiff::SignedDuration::from_secs(s)).to_string();
        assert_eq!(hold_left(&profile(None, true), now), None);
        assert_eq!(hold_left(&profile(Some("garbage".into()), true), now), None);
        let left = hold_left(&profile(Some(ago(20)), true), now).unwrap();
        assert!(
            left <= Duration::from_secs(40) && left > Duration::from_secs(38),
            "{left:?}"
        );
        assert_eq!(hold_left(&profile(Some(ago(61)), true), now), None);
        // A clock ahead of ours counts as just now.
        assert_eq!(hold_left(&profile(Some(ago(-30)), true), now), Some(HOLD));
        assert!(held_recently(&profile(Some(ago(3)), true), now));
        assert!(!held_recently(&profile(Some(ago(3)), false), now));
        assert!(!held_recently(&profile(Some(ago(15)), true), now));
        let mut deleting = profile(Some(ago(1)), true);
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
        assert!(!held_recently(&deleting, now));
    }
}
