//! What `/readyz` means for the node agent: the first full sync is done, and the agent is
//! still able to keep the node's files current. It turns unready when, for
//! [`UNREADY_AFTER`] (the agent's `--unready-after`), every sync failed to write or remove a
//! file (a read-only or full disk), or its watch of SeccompProfiles failed without recovering
//! (the files may be stale). It
//! turns ready again at the next good sync. Readiness changes nothing on the node: files stay
//! as they are; it tells the admin (`kubectl get pods`, the DaemonSet's status) which nodes
//! cannot follow changes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long syncs may fail, or the watch stay broken, before the agent turns unready, unless
/// `--unready-after` says otherwise.
pub const UNREADY_AFTER: Duration = Duration::from_secs(180);

/// The agent's readiness inputs.
#[derive(Debug)]
pub struct Health {
    unready_after: Duration,
    first_sync: AtomicBool,
    /// Seconds since the epoch of the first failing sync since the last good one (0: the last
    /// sync was good). A quiet agent, syncing only at resyncs, stays ready.
    failing_since: AtomicU64,
    /// Seconds since the epoch of the first watch error of the current streak, and of the
    /// last one (0: none). A watch that recovers by resuming emits no event, so a streak ends
    /// when the errors stop for [`STREAK_GAP`], or at the next event.
    watch_errors_since: AtomicU64,
    last_watch_error: AtomicU64,
}

/// Watch errors further apart than this are separate streaks (the watch retries with a
/// backoff well below it).
pub const STREAK_GAP: Duration = Duration::from_secs(90);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl Default for Health {
    fn default() -> Self {
        Health::new(UNREADY_AFTER)
    }
}

impl Health {
    /// Unready after `unready_after` of failing syncs or a broken watch (at least 1 s).
    pub fn new(unready_after: Duration) -> Self {
        Health {
            unready_after: unready_after.max(Duration::from_secs(1)),
            first_sync: AtomicBool::new(false),
            failing_since: AtomicU64::new(0),
            watch_errors_since: AtomicU64::new(0),
            last_watch_error: AtomicU64::new(0),
        }
    }

    /// A sync finished; `ok` when nothing failed to be written or removed. Whether it was the
    /// first.
    pub fn synced(&self, ok: bool) -> bool {
        self.synced_at(ok, now_secs())
    }

    fn synced_at(&self, ok: bool, now: u64) -> bool {
        // The first sync makes the agent ready even with failures (they are reported per
        // profile); failures that go on for the limit make it unready.
        let first = !self.first_sync.swap(true, Ordering::SeqCst);
        if ok {
            self.failing_since.store(0, Ordering::SeqCst);
        } else {
            let _ = self.failing_since.compare_exchange(
                0,
                now.max(1),
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
        first
    }

    /// Ready without syncs, for good (a recorder-only agent).
    pub fn set_ready(&self) {
        self.synced(true);
    }

    /// The watch failed (`false`) or delivered an event (`true`).
    pub fn watch(&self, ok: bool) {
        self.watch_at(ok, now_secs());
    }

    fn watch_at(&self, ok: bool, now: u64) {
        if ok {
            self.last_watch_error.store(0, Ordering::SeqCst);
            return;
        }
        let last = self.last_watch_error.swap(now, Ordering::SeqCst);
        if last == 0 || now.saturating_sub(last) > STREAK_GAP.as_secs() {
            self.watch_errors_since.store(now, Ordering::SeqCst);
        }
    }

    /// `Ok` when ready; otherwise why not.
    pub fn readiness(&self) -> Result<(), String> {
        self.readiness_at(now_secs())
    }

    fn readiness_at(&self, now: u64) -> Result<(), String> {
        if !self.first_sync.load(Ordering::SeqCst) {
            return Err("first sync not done".into());
        }
        let limit = self.unready_after.as_secs();
        let failing = self.failing_since.load(Ordering::SeqCst);
        if failing != 0 && now.saturating_sub(failing) > limit {
            return Err(format!(
                "every sync has failed to write or remove files for {} s",
                now.saturating_sub(failing)
            ));
        }
        let last = self.last_watch_error.load(Ordering::SeqCst);
        let since = self.watch_errors_since.load(Ordering::SeqCst);
        if last != 0
            && now.saturating_sub(last) <= STREAK_GAP.as_secs()
            && now.saturating_sub(since) > limit
        {
            return Err(format!(
                "watching SeccompProfiles has failed for {} s",
                now.saturating_sub(since)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unready_after_three_minutes_of_failing_syncs_or_a_broken_watch_and_ready_again() {
        let h = Health::default();
        assert!(h.readiness_at(1000).unwrap_err().contains("first sync"));
        assert!(h.synced_at(false, 1000), "the first sync says so");
        assert_eq!(
            h.readiness_at(1000),
            Ok(()),
            "the first sync makes it ready"
        );
        assert!(!h.synced_at(false, 1100));
        assert_eq!(h.readiness_at(1179), Ok(()));
        assert!(h
            .readiness_at(1181)
            .unwrap_err()
            .contains("failed to write"));
        h.synced_at(true, 1200);
        assert_eq!(h.readiness_at(1200), Ok(()));
        // Errors every 30 s from 1300: a streak.
        for t in (1300..=1480).step_by(30) {
            h.watch_at(false, t);
        }
        h.synced_at(true, 1470);
        assert_eq!(h.readiness_at(1480), Ok(()), "exactly 180 s");
        assert!(h.readiness_at(1485).unwrap_err().contains("watching"));
        h.watch_at(true, 1490);
        assert_eq!(h.readiness_at(1490), Ok(()), "an event ends it");
        // One error, then the watch resumed silently: ready once errors stop.
        h.watch_at(false, 1500);
        h.synced_at(true, 1600);
        h.watch_at(false, 1700); // 200 s later: a new streak
        assert_eq!(h.readiness_at(1710), Ok(()));
        h.synced_at(true, 1890);
        assert_eq!(
            h.readiness_at(1890),
            Ok(()),
            "no error for 190 s: the streak is over"
        );
    }

    #[test]
    fn the_limit_is_configurable_and_a_quiet_agent_stays_ready() {
        let h = Health::new(Duration::from_secs(20));
        h.synced_at(true, 1000);
        // Nothing to sync for an hour (resyncs come every 60 s, longer than the limit).
        assert_eq!(h.readiness_at(4600), Ok(()));
        h.synced_at(false, 4610);
        h.synced_at(false, 4620);
        assert_eq!(h.readiness_at(4630), Ok(()));
        assert!(h.readiness_at(4631).unwrap_err().contains("21 s"));
        h.synced_at(true, 4640);
        assert_eq!(h.readiness_at(4640), Ok(()));
        assert_eq!(h.readiness_at(9000), Ok(()));
    }

    #[test]
    fn a_recorder_only_agent_stays_ready() {
        let h = Health::new(Duration::from_secs(20));
        h.set_ready();
        assert_eq!(h.readiness_at(now_secs() + 3600), Ok(()));
    }
}
