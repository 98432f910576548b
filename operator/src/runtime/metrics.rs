//! Prometheus metrics of the operator.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

/// Counts profiles by phase ("Unknown" before a first status), read at every scrape.
pub type PhaseCounter = Box<dyn Fn() -> BTreeMap<String, i64> + Send + Sync>;
/// The serving certificate's expiry (seconds since the epoch), read at every scrape.
pub type ExpirySource = Box<dyn Fn() -> Option<u64> + Send + Sync>;
/// Containers by kind per namespace ([`crate::pods::confinement`]), read at every scrape.
pub type ConfinementCounter =
    Box<dyn Fn() -> BTreeMap<String, crds::confinement::Counts> + Send + Sync>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConfinementLabel {
    namespace: String,
    seccomp: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabel {
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabel {
    webhook: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AdmissionLabel {
    webhook: String,
    allowed: String,
}

/// The operator's metrics.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindLabel, Counter>,
    errors: Family<KindLabel, Counter>,
    duration: Family<KindLabel, Histogram>,
    phases: Family<PhaseLabel, Gauge>,
    admissions: Family<AdmissionLabel, Counter>,
    admission_duration: Family<WebhookLabel, Histogram>,
    certificate_expiry: Gauge,
    phase_counter: OnceLock<PhaseCounter>,
    expiry_source: OnceLock<ExpirySource>,
    containers: Family<ConfinementLabel, Gauge>,
    escalating: Family<NamespaceLabel, Gauge>,
    confinement_counter: OnceLock<ConfinementCounter>,
    unreported: Family<ReasonLabel, Counter>,
    gated: Gauge,
    gate_wait: Histogram,
    admissible: Histogram,
    status_writes: Family<WriteLabel, Counter>,
    status_writes_waiting: Family<WriteLabel, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabel {
    kind: String,
}

/// Buckets of `profile_admissible_seconds`: a burst's profiles wait seconds to minutes.
const ADMISSIBLE_BUCKETS: [f64; 20] = [
    0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 240.0,
    300.0, 450.0, 600.0, 900.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("seccomp_operator");
        let reconciles = Family::<KindLabel, Counter>::default();
        let errors = Family::<KindLabel, Counter>::default();
        let duration = Family::<KindLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        let phases = Family::<PhaseLabel, Gauge>::default();
        let admissions = Family::<AdmissionLabel, Counter>::default();
        let admission_duration = Family::<WebhookLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.00005, 2.0, 16))
        });
        let certificate_expiry = Gauge::default();
        registry.register(
            "build",
            "The operator's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "admission_duration_seconds",
            "Time to decide one admission review, by webhook",
            admission_duration.clone(),
        );
        registry.register(
            "serving_certificate_expiry_timestamp_seconds",
            "When the webhook serving certificate in use expires (seconds since the epoch)",
            certificate_expiry.clone(),
        );
        registry.register("reconciles", "Reconciles by kind", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Failed reconciles by kind",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration by kind",
            duration.clone(),
        );
        registry.register(
            "profiles",
            "SeccompProfiles by phase, counted from the watch cache at every scrape",
            phases.clone(),
        );
        registry.register(
            "admission_decisions",
            "Admission decisions by webhook",
            admissions.clone(),
        );
        let containers = Family::<ConfinementLabel, Gauge>::default();
        registry.register(
            "containers",
            "Containers of live pods by namespace and seccomp profile kind (localhost, runtime-default, unconfined, unset), counted at every scrape",
            containers.clone(),
        );
        let escalating = Family::<NamespaceLabel, Gauge>::default();
        registry.register(
            "containers_privilege_escalation",
            "Containers of live pods that may escalate privileges (allowPrivilegeEscalation not false, or privileged), by namespace",
            escalating.clone(),
        );
        let unreported = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "recording_containers_unreported",
            "Container instances a recording selected that ran but were never reported: NotRecorded (a live node's recorder missed them) or Lost (their node is gone or not Ready)",
            unreported.clone(),
        );
        let gated = Gauge::default();
        registry.register(
            "gated_pods",
            "Pods waiting at the scheduling gate seccomp-operator.dev/profile for a profile they use",
            gated.clone(),
        );
        let gate_wait = Histogram::new(exponential_buckets(0.25, 2.0, 14));
        registry.register(
            "gate_wait_seconds",
            "From a pod's creation to the removal of its scheduling gate (its profiles Installed)",
            gate_wait.clone(),
        );
        let admissible = Histogram::new(ADMISSIBLE_BUCKETS);
        registry.register(
            "profile_admissible_seconds",
            "From a new profile's creation to the operator's decision that a pod using it may run (installed on every counted node), before its status is written",
            admissible.clone(),
        );
        let status_writes = Family::<WriteLabel, Counter>::default();
        registry.register(
            "profile_status_writes",
            "SeccompProfile status writes by kind: final (Installed, Error, Disabled, Terminating or anything else a user acts on) or progress (Pending, Installing n/m)",
            status_writes.clone(),
        );
        let status_writes_waiting = Family::<WriteLabel, Gauge>::default();
        registry.register(
            "profile_status_writes_waiting",
            "SeccompProfile statuses computed and waiting for a writer, by kind (final, progress)",
            status_writes_waiting.clone(),
        );
        Metrics {
            registry,
            admissible,
            status_writes,
            status_writes_waiting,
            unreported,
            gated,
            gate_wait,
            reconciles,
            errors,
            duration,
            phases,
            admissions,
            admission_duration,
            certificate_expiry,
            phase_counter: OnceLock::new(),
            expiry_source: OnceLock::new(),
            containers,
            escalating,
            confinement_counter: OnceLock::new(),
        }
    }
}

impl Metrics {
    /// How many pods wait at the scheduling gate now.
    pub fn gated_pods(&self, n: usize) {
        self.gated.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// A pod's scheduling gate was removed, `waited` after its creation.
    pub fn ungated(&self, waited: Duration) {
        self.gate_wait.observe(waited.as_secs_f64());
    }

    /// A new profile became admissible `waited` after its creation.
    pub fn admissible(&self, waited: Duration) {
        self.admissible.observe(waited.as_secs_f64());
    }

    /// A profile status was written (`progress`: it only said how far the install got).
    pub fn status_written(&self, progress: bool) {
        let kind = if progress { "progress" } else { "final" };
        self.status_writes
            .get_or_create(&WriteLabel {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// How many computed statuses wait for a writer: final ones and progress ones.
    pub fn status_writes_waiting(&self, final_: usize, progress: usize) {
        for (kind, n) in [("final", final_), ("progress", progress)] {
            self.status_writes_waiting
                .get_or_create(&WriteLabel {
                    kind: kind.to_owned(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Count a recorded container instance that was never reported.
    pub fn container_unreported(&self, lost: bool) {
        let reason = if lost { "Lost" } else { "NotRecorded" };
        self.unreported
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    /// Record a reconcile.
    pub fn reconciled(&self, kind: &str, took: Duration, ok: bool) {
        let l = KindLabel {
            kind: kind.to_owned(),
        };
        if ok {
            self.reconciles.get_or_create(&l).inc();
            self.duration.get_or_create(&l).observe(took.as_secs_f64());
        } else {
            self.errors.get_or_create(&l).inc();
        }
    }

    /// Count profiles by phase with `f` at every scrape: profiles that are gone drop out of
    /// the series by themselves, and every replica reports the same figures.
    pub fn count_phases_with(&self, f: PhaseCounter) {
        let _ = self.phase_counter.set(f);
    }

    /// Count containers by namespace and kind with `f` at every scrape: namespaces whose
    /// pods are gone drop out of the series by themselves.
    pub fn count_confinement_with(&self, f: ConfinementCounter) {
        let _ = self.confinement_counter.set(f);
    }

    /// Read the serving certificate's expiry with `f` at every scrape.
    pub fn certificate_expiry_from(&self, f: ExpirySource) {
        let _ = self.expiry_source.set(f);
    }

    /// Record an admission decision and the time it took.
    pub fn admission(&self, webhook: &str, allowed: bool, took: Duration) {
        self.admission_duration
            .get_or_create(&WebhookLabel {
                webhook: webhook.to_owned(),
            })
            .observe(took.as_secs_f64());
        self.admissions
            .get_or_create(&AdmissionLabel {
                webhook: webhook.to_owned(),
                allowed: allowed.to_string(),
            })
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        if let Some(count) = self.phase_counter.get() {
            self.phases.clear();
            for (phase, n) in count() {
                self.phases.get_or_create(&PhaseLabel { phase }).set(n);
            }
        }
        if let Some(count) = self.confinement_counter.get() {
            self.containers.clear();
            self.escalating.clear();
            for (namespace, c) in count() {
                for (seccomp, n) in c.by_kind() {
                    self.containers
                        .get_or_create(&ConfinementLabel {
                            namespace: namespace.clone(),
                            seccomp: seccomp.to_owned(),
                        })
                        .set(n.into());
                }
                self.escalating
                    .get_or_create(&NamespaceLabel { namespace })
                    .set(c.privilege_escalation.into());
            }
        }
        if let Some(expiry) = self.expiry_source.get().and_then(|f| f()) {
            self.certificate_expiry
                .set(expiry.min(i64::MAX as u64) as i64);
        }
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_counted_at_scrape_so_deleted_profiles_leave_the_series() {
        let m = Metrics::default();
        let live = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::from([
            ("Installed".to_string(), 2),
            ("Error".to_string(), 1),
        ])));
        let l = live.clone();
        m.count_phases_with(Box::new(move || l.lock().unwrap().clone()));
        let text = m.render();
        assert!(
            text.contains("seccomp_operator_profiles{phase=\"Installed\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("seccomp_operator_profiles{phase=\"Error\"} 1"),
            "{text}"
        );
        live.lock().unwrap().remove("Error");
        let text = m.render();
        assert!(!text.contains("phase=\"Error\""), "{text}");
    }

    #[test]
    fn admissions_are_timed_per_webhook_and_build_and_expiry_exported() {
        let m = Metrics::default();
        m.admission("gate", true, Duration::from_micros(300));
        m.certificate_expiry_from(Box::new(|| Some(1_900_000_000)));
        let text = m.render();
        assert!(
            text.contains("seccomp_operator_admission_duration_seconds_count{webhook=\"gate\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "seccomp_operator_serving_certificate_expiry_timestamp_seconds 1900000000"
            ),
            "{text}"
        );
        assert!(
            text.contains("seccomp_operator_build_info{version="),
            "{text}"
        );
    }

    #[test]
    fn gated_pods_and_their_wait_are_exported() {
        let m = Metrics::default();
        m.gated_pods(3);
        m.ungated(Duration::from_millis(1500));
        let text = m.render();
        assert!(text.contains("seccomp_operator_gated_pods 3"), "{text}");
        assert!(
            text.contains("seccomp_operator_gate_wait_seconds_count 1")
                && text.contains("seccomp_operator_gate_wait_seconds_bucket{le=\"2.0\"} 1")
                && text.contains("seccomp_operator_gate_wait_seconds_bucket{le=\"1.0\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn containers_are_counted_by_namespace_and_kind_at_scrape() {
        let m = Metrics::default();
        let counts = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::from([(
            "shop".to_owned(),
            crds::confinement::Counts {
                unset: 2,
                runtime_default: 1,
                privilege_escalation: 3,
                ..Default::default()
            },
        )])));
        let c = counts.clone();
        m.count_confinement_with(Box::new(move || c.lock().unwrap().clone()));
        let text = m.render();
        assert!(
            text.contains(r#"seccomp_operator_containers{namespace="shop",seccomp="unset"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"seccomp_operator_containers_privilege_escalation{namespace="shop"} 3"#
            ),
            "{text}"
        );
        counts.lock().unwrap().clear();
        assert!(
            !m.render().contains("namespace=\"shop\""),
            "a namespace without pods leaves"
        );
    }
}
