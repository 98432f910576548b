//! Leader election: one replica runs the controllers. The Lease protocol is
//! `kube-lease-manager`'s (acquire when free or expired, renew before expiry, release on
//! shutdown); this module only fixes the timings and turns its state channel into the two
//! questions `main` asks: "do I lead yet?" and "did I stop leading?".

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a lease is valid without renewal (seconds).
pub const LEASE_SECONDS: u64 = 15;
/// The holder renews this long before the lease would expire (seconds).
pub const GRACE_SECONDS: u64 = 5;

/// This replica's candidacy.
pub struct Leadership {
    state: watch::Receiver<bool>,
    task: JoinHandle<Result<LeaseManager, LeaseManagerError>>,
}

impl Leadership {
    /// Stand for the Lease `name` in `namespace` as `identity` (the pod name).
    pub async fn stand(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
    ) -> Result<Self, LeaseManagerError> {
        let manager = LeaseManagerBuilder::new(client, name)
            .with_namespace(namespace)
            .with_identity(identity)
            .with_duration(LEASE_SECONDS)
            .with_grace(GRACE_SECONDS)
            // One field manager per candidate: taking a free Lease is a server-side apply
            // without force, so a second candidate's apply conflicts (409) instead of
            // silently overwriting the first (a shared manager name would let both win).
            .with_field_manager(format!("seccomp-operator-leader-{identity}"))
            .build()
            .await?;
        let (state, task) = manager.watch().await;
        Ok(Leadership { state, task })
    }

    /// Wait until this replica leads. Returns false if the election ended first.
    pub async fn acquired(&mut self) -> bool {
        self.state.wait_for(|leads| *leads).await.is_ok()
    }

    /// Wait until this replica no longer leads.
    pub async fn lost(&mut self) {
        let _ = self.state.wait_for(|leads| !*leads).await;
    }

    /// Step down: the manager releases the Lease (so a follower takes over at once instead
    /// of after the lease expires) and ends.
    pub async fn release(self) {
        drop(self.state);
        match tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(_))) => tracing::info!("leader lease released"),
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "releasing the leader lease failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "the leader election task failed"),
            Err(_) => tracing::warn!("releasing the leader lease timed out"),
        }
    }
}

impl Leadership {
    /// A gate that opens while this replica leads.
    pub fn gate(&self) -> Gate {
        Gate(self.state.clone())
    }
}

/// Whether this replica leads, for work only the leader does. Controllers run on every
/// replica (their watches are shared with the webhooks and must be drained); their
/// reconcilers return at once through a closed gate.
#[derive(Clone)]
pub struct Gate(watch::Receiver<bool>);

impl Gate {
    /// A gate that is always open (one replica, tests).
    pub fn open() -> Self {
        Gate(watch::channel(true).1)
    }

    /// Whether this replica leads now.
    pub fn leads(&self) -> bool {
        *self.0.borrow()
    }

    /// Wait until this replica leads (at once if it does).
    pub async fn opened(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|leads| *leads).await;
    }

    /// Yields every time this replica starts to lead (also again after it lost the lead and
    /// won it back): controllers reconcile everything then (what changed while they followed
    /// was skipped).
    pub fn became_leader(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        futures::stream::unfold((self.0.clone(), false), |(mut rx, in_term)| async move {
            if in_term {
                // The term that was announced must end before the next one is. The election
                // only sends changes, so any change means it ended (a quick loss and win may
                // be seen as one change to "leads").
                rx.changed().await.ok()?;
            }
            rx.wait_for(|leads| *leads).await.ok()?;
            Some(((), (rx, true)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn every_term_is_announced_once() {
        let (tx, rx) = watch::channel(false);
        let gate = Gate(rx);
        let mut terms = Box::pin(gate.became_leader());
        let wait = std::time::Duration::from_millis(200);
        assert!(
            tokio::time::timeout(wait, terms.next()).await.is_err(),
            "not leading: nothing yet"
        );
        tx.send(true).unwrap();
        assert_eq!(tokio::time::timeout(wait, terms.next()).await, Ok(Some(())));
        assert!(
            tokio::time::timeout(wait, terms.next()).await.is_err(),
            "the same term once"
        );
        tx.send(false).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        tx.send(true).unwrap();
        assert_eq!(
            tokio::time::timeout(wait, terms.next()).await,
            Ok(Some(())),
            "the next term"
        );
    }
}
