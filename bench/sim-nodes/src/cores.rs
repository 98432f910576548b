//! The simulated nodes' [`SyncHooks`]: many install loops in one process share this machine's
//! cores (one sync per core at a time) and one heap, which they never trim (trimming a heap
//! all the loops share after each loop's sync costs more than it returns; the agent, a
//! process of one loop, does trim: `install_loop::OwnProcess`).

use node_agent::install_loop::{InstallError, SyncHooks};
use profile_installer::SyncReport;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Permits for syncs, shared by every simulated node's loop: a sync holds one while it runs.
#[derive(Clone)]
pub struct SharedCores(Arc<Semaphore>);

impl SharedCores {
    /// At most `cores` syncs at once.
    pub fn new(cores: usize) -> Self {
        SharedCores(Arc::new(Semaphore::new(cores)))
    }
}

impl SyncHooks for SharedCores {
    type Permit = OwnedSemaphorePermit;

    fn before_sync(
        &self,
    ) -> impl Future<Output = Result<OwnedSemaphorePermit, InstallError>> + Send {
        let cores = self.0.clone();
        async move {
            cores
                .acquire_owned()
                .await
                .map_err(|_| InstallError::Closed)
        }
    }

    /// Nothing: the heap is every loop's.
    fn after_sync(&self, _report: &SyncReport) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn syncs_wait_for_a_free_core() {
        let cores = SharedCores::new(2);
        let a = cores.before_sync().await.unwrap();
        let b = cores.before_sync().await.unwrap();
        // A third sync waits while both cores are taken...
        let third = tokio::spawn({
            let cores = cores.clone();
            async move { cores.before_sync().await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!third.is_finished());
        // ...and runs once one is released.
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), third)
            .await
            .expect("the third sync got no core")
            .unwrap()
            .unwrap();
        drop(b);
        // Whatever a sync did, nothing else happens after it.
        cores.after_sync(&SyncReport {
            written: 10_000,
            removed: 10_000,
            failed: 0,
            invalid: 0,
        });
        assert_eq!(cores.0.available_permits(), 2);
    }

    #[tokio::test]
    async fn closed_permits_end_the_loop() {
        let cores = SharedCores::new(1);
        cores.0.close();
        assert!(matches!(
            cores.before_sync().await,
            Err(InstallError::Closed)
        ));
    }
}
