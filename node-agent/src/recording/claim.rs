//! What becomes of a namespace the armed recorder met (pure): recorded for a wanted
//! container, ignored, or waited for until its program's exec names its cgroup.
//!
//! A mount namespace is known to the kernel side by its inode number, and the kernel hands a
//! freed number to the next namespace it creates (lowest free first), so the same number
//! comes back all the time: the runtime's set-up namespaces, short-lived containers, and every
//! container of a pod that restarts. What is decided or timed about one namespace is
//! therefore keyed by its number *and* its never-reused generation; a number whose generation
//! changed is a new namespace that starts afresh.

use super::select::Target;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// A namespace the armed recorder met, as the kernel's record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Met {
    /// Its inode number.
    pub ns: u64,
    /// Its generation.
    pub gen: u64,
    /// The cgroup its program exec'd in (the container ID); None before that exec.
    pub cgroup: Option<String>,
}

/// What to do with a namespace the armed recorder met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Record it: it runs the wanted container with this ID.
    Record(String),
    /// Stop recording it: nobody wants it (another container, one already reported, or
    /// nobody claimed it in [`super::CLAIM_TIMEOUT`]).
    Ignore,
    /// Not known yet (its program has not exec'd, or the kubelet has not reported the
    /// container's ID yet): keep recording it in `pending`.
    Wait,
}

/// When each unclaimed namespace was first met, per generation.
#[derive(Debug, Default)]
pub struct Unclaimed {
    first_met: HashMap<u64, (u64, Instant)>,
}

impl Unclaimed {
    /// Decide about `met`, as of `now`. `wanted`: containers to record, by ID (only `Bpf`
    /// ones are recorded here);
    /// `known`: every container of this node's pods; `done`: those already reported final.
    pub fn decide(
        &mut self,
        met: &Met,
        now: Instant,
        timeout: Duration,
        wanted: &HashMap<String, Target>,
        known: &HashMap<String, bool>,
        done: &HashSet<String>,
    ) -> Decision {
        let since = match self.first_met.get(&met.ns) {
            Some((gen, t)) if *gen == met.gen => *t,
            // New, or the number now belongs to another namespace: its clock starts now.
            _ => {
                self.first_met.insert(met.ns, (met.gen, now));
                now
            }
        };
        let decision = match &met.cgroup {
            Some(id) if done.contains(id) => Decision::Ignore,
            Some(id)
                if wanted
                    .get(id)
                    .is_some_and(|t| t.recorder == crds::Recorder::Bpf) =>
            {
                Decision::Record(id.clone())
            }
            Some(id) if known.contains_key(id) => Decision::Ignore,
            _ if now.saturating_duration_since(since) > timeout => Decision::Ignore,
            _ => Decision::Wait,
        };
        if decision != Decision::Wait {
            self.first_met.remove(&met.ns);
        }
        decision
    }

    /// Forget namespaces the recorder no longer lists as pending (taken, evicted, or the
    /// recorder was unloaded): only those met now are timed.
    pub fn retain_met(&mut self, pending: &HashSet<u64>) {
        self.first_met.retain(|ns, _| pending.contains(ns));
    }

    /// Forget everything (the recorder was unloaded: its maps are gone).
    pub fn clear(&mut self) {
        self.first_met.clear();
    }

    /// How many namespaces wait to be claimed.
    pub fn len(&self) -> usize {
        self.first_met.len()
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.first_met.is_empty()
    }
}

/// Wanted containers that run without being recorded: their program exec'd before the
/// recorder was armed (the recorder loads when a selected pod appears, and a fast kubelet can
/// start the container first) or their namespace was lost. Nothing can bring back what they did
/// before; the agent says so once, and the operator's ledger marks them `NotRecorded`.
#[derive(Debug, Default)]
pub struct Unmatched {
    since: HashMap<String, Instant>,
    told: HashSet<String>,
}

/// How long a running wanted container may go without a recorded namespace: its namespace is
/// claimed within a turn of the kubelet reporting its ID, so this only absorbs slow turns.
pub const UNMATCHED_GRACE: Duration = Duration::from_secs(10);

impl Unmatched {
    /// IDs among `running` (wanted containers that run now) that `recorded` (watched or
    /// reported final) has lacked for longer than `grace`: each is returned once.
    pub fn overdue(
        &mut self,
        running: &HashSet<String>,
        recorded: &HashSet<String>,
        now: Instant,
        grace: Duration,
    ) -> Vec<String> {
        self.since
            .retain(|id, _| running.contains(id) && !recorded.contains(id));
        self.told.retain(|id| running.contains(id));
        let mut out = Vec::new();
        for id in running.iter().filter(|id| !recorded.contains(*id)) {
            let t = *self.since.entry(id.clone()).or_insert(now);
            if now.saturating_duration_since(t) > grace && self.told.insert(id.clone()) {
                out.push(id.clone());
            }
        }
        out.sort();
        out
    }

    /// Forget everything (the recorder was unloaded).
    pub fn clear(&mut self) {
        self.since.clear();
        self.told.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::recording::select::sample_target as target;

    const TIMEOUT: Duration = Duration::from_secs(120);

    #[test]
    fn a_namespace_reusing_the_number_of_one_that_timed_out_is_still_claimed() {
        // The race that lost a replica: a set-up namespace that never exec'd sat unclaimed
        // under number 4026532900 for longer than the timeout; the container that got the
        // number next was met before its exec (no cgroup yet) and was ignored at once, as if
        // it had waited all that time.
        let mut u = Unclaimed::default();
        let t0 = Instant::now();
        let (wanted, known, done) = (
            HashMap::from([("c-app".to_owned(), target())]),
            HashMap::new(),
            HashSet::new(),
        );
        let old = Met {
            ns: 4026532900,
            gen: 7,
            cgroup: None,
        };
        assert_eq!(
            u.decide(&old, t0, TIMEOUT, &wanted, &known, &done),
            Decision::Wait
        );
        let later = t0 + Duration::from_secs(100);
        assert_eq!(
            u.decide(&old, later, TIMEOUT, &wanted, &known, &done),
            Decision::Wait
        );
        // The old namespace is gone; a new one has its number, before its program's exec.
        let new = Met {
            ns: 4026532900,
            gen: 8,
            cgroup: None,
        };
        let t = t0 + Duration::from_secs(130);
        assert_eq!(
            u.decide(&new, t, TIMEOUT, &wanted, &known, &done),
            Decision::Wait,
            "a new namespace's clock starts when it is met"
        );
        // After the exec it names the wanted container's cgroup.
        let execed = Met {
            cgroup: Some("c-app".into()),
            ..new
        };
        assert_eq!(
            u.decide(
                &execed,
                t + Duration::from_millis(100),
                TIMEOUT,
                &wanted,
                &known,
                &done
            ),
            Decision::Record("c-app".into())
        );
        assert!(u.is_empty());
    }

    #[test]
    fn an_unloaded_recorder_leaves_no_clocks_behind() {
        let mut u = Unclaimed::default();
        let t0 = Instant::now();
        let none = (HashMap::new(), HashMap::new(), HashSet::new());
        let met = Met {
            ns: 1,
            gen: 0,
            cgroup: None,
        };
        u.decide(&met, t0, TIMEOUT, &none.0, &none.1, &none.2);
        assert_eq!(u.len(), 1);
        u.clear();
        // Loaded again later: a kernel without generations (0) and the same number.
        let t = t0 + Duration::from_secs(200);
        assert_eq!(
            u.decide(&met, t, TIMEOUT, &none.0, &none.1, &none.2),
            Decision::Wait
        );
        // And namespaces no longer pending are forgotten.
        u.retain_met(&HashSet::new());
        assert!(u.is_empty());
    }

    #[test]
    fn a_running_wanted_container_never_recorded_is_told_once() {
        let mut u = Unmatched::default();
        let t0 = Instant::now();
        let g = UNMATCHED_GRACE;
        let running = HashSet::from(["c-early".to_owned(), "c-ok".to_owned()]);
        let recorded = HashSet::from(["c-ok".to_owned()]);
        assert!(u.overdue(&running, &recorded, t0, g).is_empty());
        let later = t0 + g + Duration::from_secs(1);
        assert_eq!(u.overdue(&running, &recorded, later, g), ["c-early"]);
        assert!(
            u.overdue(&running, &recorded, later + g, g).is_empty(),
            "once"
        );
        // One recorded late enough (a slow turn) is never told.
        let mut u = Unmatched::default();
        assert!(u.overdue(&running, &HashSet::new(), t0, g).is_empty());
        let both = HashSet::from(["c-early".to_owned(), "c-ok".to_owned()]);
        assert!(u.overdue(&running, &both, later, g).is_empty());
    }

    #[test]
    fn unwanted_and_finished_containers_are_ignored_and_unclaimed_ones_time_out() {
        let mut u = Unclaimed::default();
        let t0 = Instant::now();
        let wanted = HashMap::from([("c-app".to_owned(), target())]);
        let known = HashMap::from([("c-other".to_owned(), false), ("c-app".to_owned(), false)]);
        let done = HashSet::from(["c-done".to_owned()]);
        let met = |ns, id: Option<&str>| Met {
            ns,
            gen: 1,
            cgroup: id.map(str::to_owned),
        };
        let d = |u: &mut Unclaimed, m: &Met, t| u.decide(m, t, TIMEOUT, &wanted, &known, &done);
        assert_eq!(d(&mut u, &met(1, Some("c-other")), t0), Decision::Ignore);
        assert_eq!(d(&mut u, &met(2, Some("c-done")), t0), Decision::Ignore);
        // Not in any pod's status yet: waited for, then given up.
        assert_eq!(d(&mut u, &met(3, Some("c-new")), t0), Decision::Wait);
        assert_eq!(
            d(
                &mut u,
                &met(3, Some("c-new")),
                t0 + TIMEOUT + Duration::from_secs(1)
            ),
            Decision::Ignore
        );
        assert!(u.is_empty());
    }
}
