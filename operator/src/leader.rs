//! Leader election on a coordination.k8s.io Lease, with plain kube API calls: acquire when the
//! lease is free or expired, renew well before it expires, and report loss so the caller stops
//! its controllers (the process exits and restarts as a follower).

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use std::time::Duration;

/// How long a lease is valid without renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews.
pub const RENEW_EVERY: Duration = Duration::from_secs(5);

/// A candidate for leadership.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// Whether a lease held by someone else has expired at `now`.
pub fn expired(spec: &LeaseSpec, now: k8s_openapi::jiff::Timestamp) -> bool {
    let Some(renew) = spec.renew_time.as_ref() else {
        return true;
    };
    let secs = spec
        .lease_duration_seconds
        .unwrap_or(LEASE_DURATION.as_secs() as i32);
    let deadline = renew.0 + k8s_openapi::jiff::SignedDuration::from_secs(secs as i64);
    deadline < now
}

impl Elector {
    /// A candidate `identity` (the pod name) for the Lease `name` in `namespace`.
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str) -> Self {
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
        }
    }

    /// Try once: `Ok(true)` when this candidate holds the lease now.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let spec = |transitions: i32, acquired: Option<MicroTime>| LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: acquired.or_else(|| Some(now())),
            renew_time: Some(now()),
            lease_transitions: Some(transitions),
            ..Default::default()
        };
        match self.api.get_opt(&self.name).await? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(spec(0, None)),
                };
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Some(mut lease) => {
                let cur = lease.spec.clone().unwrap_or_default();
                let mine = cur.holder_identity.as_deref() == Some(self.identity.as_str());
                if !mine && !expired(&cur, k8s_openapi::jiff::Timestamp::now()) {
                    return Ok(false);
                }
                let transitions = cur.lease_transitions.unwrap_or(0) + i32::from(!mine);
                lease.spec = Some(spec(
                    transitions,
                    if mine { cur.acquire_time } else { None },
                ));
                // replace carries the resourceVersion: a concurrent taker makes this fail (409).
                match self
                    .api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Wait until this candidate leads.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election"),
            }
            tokio::time::sleep(RENEW_EVERY).await;
        }
    }

    /// Renew until renewal fails for longer than the lease lasts; then return (leadership
    /// is lost).
    pub async fn hold(&self) {
        let mut last_ok = std::time::Instant::now();
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_ok = std::time::Instant::now(),
                Ok(false) => {
                    tracing::error!("lease taken by another candidate");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "renewing the lease failed");
                    if last_ok.elapsed() > LEASE_DURATION - RENEW_EVERY {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry() {
        let t = k8s_openapi::jiff::Timestamp::from_second(1_000_000).unwrap();
        let spec = LeaseSpec {
            renew_time: Some(MicroTime(t)),
            lease_duration_seconds: Some(15),
            ..Default::default()
        };
        assert!(!expired(
            &spec,
            t + k8s_openapi::jiff::SignedDuration::from_secs(10)
        ));
        assert!(expired(
            &spec,
            t + k8s_openapi::jiff::SignedDuration::from_secs(16)
        ));
        assert!(expired(&LeaseSpec::default(), t));
    }
}
