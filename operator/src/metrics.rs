//! Prometheus metrics of the operator.

use crate::index::ProfileId;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
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
    by_profile: Mutex<HashMap<ProfileId, String>>,
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
        registry.register("profiles", "SeccompProfiles by phase", phases.clone());
        registry.register(
            "admission_decisions",
            "Admission decisions by webhook",
            admissions.clone(),
        );
        Metrics {
            registry,
            reconciles,
            errors,
            duration,
            phases,
            admissions,
            by_profile: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
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

    /// Record a profile's phase (moving it between phase gauges).
    pub fn set_phase(&self, id: &ProfileId, phase: Option<crds::ProfilePhase>) {
        let phase = phase
            .map(|p| format!("{p:?}"))
            .unwrap_or_else(|| "Unknown".into());
        let mut m = self.by_profile.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = m.insert(id.clone(), phase.clone()) {
            self.phases.get_or_create(&PhaseLabel { phase: old }).dec();
        }
        self.phases.get_or_create(&PhaseLabel { phase }).inc();
    }

    /// Record an admission decision.
    pub fn admission(&self, webhook: &str, allowed: bool) {
        self.admissions
            .get_or_create(&AdmissionLabel {
                webhook: webhook.to_owned(),
                allowed: allowed.to_string(),
            })
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}
