//! Liveness that means something: every controller loop beats through its own pipeline, and
//! `/healthz` fails when one has not for [`STALE_AFTER`], so the kubelet restarts a replica
//! whose controller is stuck (every reconcile slot held by calls that never return, a
//! deadlock, a starved runtime) instead of leaving it leading and doing nothing.
//!
//! A beat is proof that the loop's scheduler ran a reconcile: each loop is fed a tick every
//! [`TICK`] for an object that never exists, which the controller answers with "object not
//! found" like any other item, without calling the reconciler.

use futures::Stream;
use kube::runtime::reflector::ObjectRef;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
// tokio's clock (the real one outside tests; paused and advanced in them).
use tokio::time::Instant;

/// How often each loop is ticked.
pub const TICK: Duration = Duration::from_secs(15);
/// A loop silent this long makes `/healthz` fail (the liveness probe then restarts the pod
/// after its failureThreshold).
pub const STALE_AFTER: Duration = Duration::from_secs(120);
/// The name of the object the ticks ask for; no object may be called this (it has a
/// character names cannot have).
pub const TICK_NAME: &str = "seccomp-operator:watchdog";

/// The loops and when each last beat.
#[derive(Debug, Default)]
pub struct Watchdog {
    loops: Mutex<BTreeMap<&'static str, Instant>>,
}

impl Watchdog {
    /// `name` made progress now (also: registers it).
    pub fn beat(&self, name: &'static str) {
        self.loops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, Instant::now());
    }

    /// Whether every registered loop beat within `stale_after` of `now`; the silent ones
    /// named otherwise.
    pub fn check(&self, now: Instant, stale_after: Duration) -> Result<(), String> {
        let loops = self.loops.lock().unwrap_or_else(|e| e.into_inner());
        let stuck: Vec<String> = loops
            .iter()
            .filter(|(_, last)| now.saturating_duration_since(**last) > stale_after)
            .map(|(name, last)| {
                format!(
                    "{name} (silent {}s)",
                    now.saturating_duration_since(*last).as_secs()
                )
            })
            .collect();
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(format!("controller loops stuck: {}", stuck.join(", ")))
        }
    }
}

/// Ticks for a controller of `K`: a reference to an object that cannot exist, every [`TICK`].
pub fn ticks<K>() -> impl Stream<Item = ObjectRef<K>> + Send
where
    K: kube::Resource<DynamicType = ()> + Send + 'static,
{
    let every = tokio::time::interval(TICK);
    futures::stream::unfold(every, |mut every| async move {
        every.tick().await;
        Some((ObjectRef::<K>::new(TICK_NAME).within(TICK_NAME), every))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_silent_too_long_is_named_and_one_that_beats_is_not() {
        let w = Watchdog::default();
        let start = Instant::now();
        assert_eq!(w.check(start, STALE_AFTER), Ok(()), "no loop yet: healthy");
        w.beat("profiles");
        w.beat("recordings");
        assert_eq!(w.check(Instant::now(), STALE_AFTER), Ok(()));
        let later = Instant::now() + Duration::from_secs(121);
        let e = w.check(later, STALE_AFTER).unwrap_err();
        assert!(e.contains("profiles") && e.contains("recordings"), "{e}");
        w.beat("recordings");
        let e = w
            .check(
                Instant::now() + Duration::from_secs(60),
                Duration::from_secs(30),
            )
            .unwrap_err();
        assert!(e.contains("profiles (silent"), "{e}");
    }

    /// The real kube-runtime controller, wired as the operator wires its loops (ticks through
    /// `reconcile_on`, a beat per result, limited concurrency): with every reconcile slot held
    /// by a call that never returns, the loop goes silent and is named; with reconciles that
    /// return, it keeps beating.
    async fn run_loop(stuck: bool) -> Result<(), String> {
        use futures::StreamExt;
        use k8s_openapi::api::core::v1::ConfigMap;
        use kube::runtime::controller::{Action, Config};
        use kube::runtime::{reflector, watcher, Controller};
        use std::sync::Arc;

        let (reader, mut writer) = reflector::store::<ConfigMap>();
        let objects: Vec<ConfigMap> = (0..4)
            .map(|i| {
                let mut cm = ConfigMap::default();
                cm.metadata.name = Some(format!("cm{i}"));
                cm.metadata.namespace = Some("ns".into());
                cm
            })
            .collect();
        // A listed store: the controller waits for that before it reconciles anything.
        writer.apply_watcher_event(&watcher::Event::Init);
        for cm in &objects {
            writer.apply_watcher_event(&watcher::Event::InitApply(cm.clone()));
        }
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let trigger =
            futures::stream::iter(objects.into_iter().map(Ok)).chain(futures::stream::pending());
        let watchdog = Arc::new(Watchdog::default());
        watchdog.beat("test");
        let w = watchdog.clone();
        let reconcile = move |_: Arc<ConfigMap>, _: Arc<()>| async move {
            if stuck {
                futures::future::pending::<()>().await;
            }
            Ok::<_, std::io::Error>(Action::await_change())
        };
        let error_policy =
            |_: Arc<ConfigMap>, _: &std::io::Error, _: Arc<()>| Action::await_change();
        let run = Controller::for_stream(trigger, reader)
            .with_config(Config::default().concurrency(4))
            .reconcile_on(ticks())
            .run(reconcile, error_policy, Arc::new(()))
            .for_each(move |_| {
                w.beat("test");
                futures::future::ready(())
            });
        let task = tokio::spawn(run);
        tokio::time::sleep(STALE_AFTER + TICK * 2).await;
        task.abort();
        watchdog.check(Instant::now(), STALE_AFTER)
    }

    #[tokio::test(start_paused = true)]
    async fn a_controller_whose_every_slot_is_stuck_goes_silent_and_a_working_one_beats() {
        let stuck = run_loop(true).await.unwrap_err();
        assert!(stuck.contains("test (silent"), "{stuck}");
        assert_eq!(run_loop(false).await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn ticks_come_every_tick_for_an_object_no_one_can_name() {
        use futures::StreamExt;
        let mut t = Box::pin(ticks::<k8s_openapi::api::core::v1::ConfigMap>());
        let first = t.next().await.unwrap();
        assert_eq!(first.name, TICK_NAME);
        let before = tokio::time::Instant::now();
        t.next().await.unwrap();
        assert_eq!(tokio::time::Instant::now() - before, TICK);
    }
}
