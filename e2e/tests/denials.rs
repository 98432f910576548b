//! Denials made visible (#14), on the real cluster: a syscall refused under an operator
//! profile becomes one aggregated `SyscallDenied` Event on the pod, a counter, and an entry
//! in the profile's `status.denials`; a flood stays bounded; the namespace profile policy
//! warns or refuses. Pods run on node 1: the extra nodes of the local cluster share its kernel
//! but not its initial network namespace, where the kernel sends audit records.

use crds::SeccompProfile;
use e2e::*;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::ListParams;
use kube::Api;
use serde_json::json;
use std::time::{Duration, Instant};

/// Allows everything but `rmdir`, which kills the process (kills are audited whatever the
/// filter's flags).
fn kill_rmdir() -> serde_json::Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["rmdir"], "action": "SCMP_ACT_KILL_PROCESS"}]})
}

/// `seccomp_agent_denied_syscalls_total{syscall, action}` on node 1's recorder.
async fn denied_total(client: &kube::Client, syscall: &str, action: &str) -> f64 {
    recorder_counter_sum(
        client,
        "seccomp_agent_denied_syscalls_total",
        &[("syscall", syscall), ("action", action)],
    )
    .await
}

async fn recorder_counter(client: &kube::Client, name: &str) -> f64 {
    let text = recorder_metrics(client, &first_node())
        .await
        .unwrap_or_default();
    metric_value(&text, name).unwrap_or(0.0)
}

/// The SyscallDenied Events on `pod`.
async fn denial_events(ns: &TestNs, pod: &str) -> Vec<Event> {
    let api: Api<Event> = ns.api();
    api.list(
        &ListParams::default().fields(&format!("reason=SyscallDenied,involvedObject.name={pod}")),
    )
    .await
    .map(|l| l.items)
    .unwrap_or_default()
}

async fn installed_profile(ns: &TestNs, name: &str, spec: serde_json::Value) -> anyhow::Result<()> {
    ns.apply::<SeccompProfile>(sp(name, spec)).await?;
    ns.wait_installed_everywhere(name).await?;
    Ok(())
}

#[tokio::test]
async fn d1_denials_become_one_counted_event_a_metric_and_profile_status() -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    // Each of CALLS children is killed by its filter for rmdir; the shell that starts them goes
    // on.
    let ns = TestNs::new(client.clone(), "deny").await?;
    installed_profile(&ns, "kill-rmdir", kill_rmdir()).await?;
    let before = denied_total(&client, "rmdir", "SCMP_ACT_KILL_PROCESS").await;
    const CALLS: usize = 20;
    let path = format!("operator/{}/kill-rmdir.json", ns.name);
    let script = format!(
        "n=0; while [ $n -lt {CALLS} ]; do sh -c 'rmdir /tmp/none'; n=$((n+1)); done; echo done"
    );
    let started = Instant::now();
    let (phase, logs) = ns
        .run_pod(busybox_pod("rmdirs", &script, Some(&path)))
        .await?;
    assert_eq!(phase, "Succeeded", "children killed, the shell not: {logs}");
    assert!(logs.lines().any(|l| l.trim() == "done"), "{logs}");
    let ev = wait_for(
        "one SyscallDenied event counting the calls",
        Duration::from_secs(30),
        || async {
            let evs = denial_events(&ns, "rmdirs").await;
            let count = evs
                .iter()
                .map(|e| e.count.unwrap_or(0) as usize)
                .sum::<usize>();
            (evs.len() == 1 && count * 10 >= CALLS * 9).then(|| evs[0].clone())
        },
    )
    .await;
    if ev.is_err() {
        eprintln!("events: {:?}", denial_events(&ns, "rmdirs").await);
        ns.dump().await;
    }
    let ev = ev?;
    eprintln!(
        "SyscallDenied seen {:?} after the pod was created: {}",
        started.elapsed(),
        ev.message.clone().unwrap_or_default()
    );
    let count = ev.count.unwrap_or(0) as usize;
    assert!(
        count * 10 >= CALLS * 9 && count * 10 <= CALLS * 11,
        "count {count} vs {CALLS} calls"
    );
    let msg = ev.message.clone().unwrap_or_default();
    assert!(
        msg.contains("rmdir") && msg.contains(&path) && msg.contains("SCMP_ACT_KILL_PROCESS"),
        "{msg}"
    );
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    let rose = (denied_total(&client, "rmdir", "SCMP_ACT_KILL_PROCESS").await - before) as usize;
    assert!(
        rose * 10 >= CALLS * 9 && rose * 10 <= CALLS * 11,
        "counter rose by {rose}"
    );
    let described = kubectl(&["-n", &ns.name, "describe", "pod", "rmdirs"])?;
    assert!(described.contains("SyscallDenied"), "{described}");
    ns.wait_profile("kill-rmdir", "status.denials lists rmdir", |p| {
        p.status.as_ref().is_some_and(|s| {
            s.denials.iter().any(|d| {
                d.syscall == "rmdir"
                    && d.count as usize * 10 >= CALLS * 9
                    && d.example_pod.as_deref() == Some("rmdirs")
            })
        })
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn d1b_a_refused_syscall_is_reported_by_default_and_the_container_goes_on(
) -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    // REPORT_DENIALS is on by default: the operator installs a profile without flags with
    // SECCOMP_FILTER_FLAG_LOG, runc 1.2+ applies it, and the kernel audits the ERRNO refusal.
    let ns = TestNs::new(client.clone(), "errno").await?;
    installed_profile(
        &ns,
        "no-mkdir",
        json!({"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}),
    )
    .await?;
    let path = format!("operator/{}/no-mkdir.json", ns.name);
    let (phase, logs) = ns
        .run_pod(busybox_pod(
            "mkdirs",
            "mkdir /tmp/x 2>&1; echo \"mkdir exit $?\"; grep Seccomp: /proc/self/status; echo done",
            Some(&path),
        ))
        .await?;
    assert_eq!(phase, "Succeeded", "refused, not killed: {logs}");
    assert!(logs.contains("Operation not permitted"), "EPERM: {logs}");
    assert!(logs.contains("mkdir exit 1"), "{logs}");
    assert!(logs.contains("Seccomp:\t2"), "filtered: {logs}");
    assert!(logs.lines().any(|l| l.trim() == "done"), "{logs}");
    let ev = wait_for(
        "a SyscallDenied event naming mkdir and SCMP_ACT_ERRNO",
        Duration::from_secs(30),
        || async {
            denial_events(&ns, "mkdirs").await.into_iter().find(|e| {
                let m = e.message.clone().unwrap_or_default();
                m.contains("mkdir") && m.contains("SCMP_ACT_ERRNO")
            })
        },
    )
    .await;
    if ev.is_err() {
        ns.dump().await;
    }
    let ev = ev?;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    ns.wait_profile("no-mkdir", "status.denials lists mkdir", |p| {
        p.status.as_ref().is_some_and(|s| {
            s.denials.iter().any(|d| {
                d.syscall.starts_with("mkdir")
                    && d.action == "SCMP_ACT_ERRNO"
                    && d.example_pod.as_deref() == Some("mkdirs")
            })
        })
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn d2_a_process_its_profile_kills_is_explained_by_an_event() -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let ns = TestNs::new(client, "kill").await?;
    installed_profile(&ns, "kill-rmdir", kill_rmdir()).await?;
    let path = format!("operator/{}/kill-rmdir.json", ns.name);
    // The container's own process is killed by its filter (exec: no shell survives it).
    let (phase, logs) = ns
        .run_pod(busybox_pod(
            "killed",
            "mkdir -p /tmp/d; exec rmdir /tmp/d",
            Some(&path),
        ))
        .await?;
    assert_eq!(phase, "Failed", "the filter killed the container: {logs}");
    let ev = wait_for(
        "a SyscallDenied event naming rmdir",
        Duration::from_secs(30),
        || async {
            denial_events(&ns, "killed").await.into_iter().find(|e| {
                let m = e.message.clone().unwrap_or_default();
                m.contains("rmdir") && m.contains("SCMP_ACT_KILL_PROCESS")
            })
        },
    )
    .await;
    if ev.is_err() {
        ns.dump().await;
    }
    eprintln!("{}", ev?.message.unwrap_or_default());
    Ok(())
}

#[tokio::test]
async fn d3_a_flood_of_denials_costs_a_bounded_number_of_writes() -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let ns = TestNs::new(client.clone(), "flood").await?;
    installed_profile(&ns, "kill-rmdir", kill_rmdir()).await?;
    let path = format!("operator/{}/kill-rmdir.json", ns.name);
    let writes = recorder_counter(&client, "seccomp_agent_denial_event_writes_total").await;
    let lost = recorder_counter(&client, "seccomp_agent_denial_records_lost_total").await;
    let recorder = recorder_pod_on(&client, &first_node()).await?;
    let restarts = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map(|c| c[0].restart_count)
            .unwrap_or(0)
    };
    let before = denied_total(&client, "rmdir", "SCMP_ACT_KILL_PROCESS").await;
    // As fast as the shell can fork for 20 s: a child killed by its filter each time.
    let script = "end=$(( $(date +%s) + 20 )); while [ $(date +%s) -lt $end ]; do sh -c 'rmdir /tmp/none'; done; echo done";
    let (phase, _) = ns
        .run_pod(busybox_pod("flood", script, Some(&path)))
        .await?;
    assert_eq!(phase, "Succeeded");
    tokio::time::sleep(Duration::from_secs(8)).await;
    let denied = denied_total(&client, "rmdir", "SCMP_ACT_KILL_PROCESS").await - before;
    let writes =
        recorder_counter(&client, "seccomp_agent_denial_event_writes_total").await - writes;
    let lost = recorder_counter(&client, "seccomp_agent_denial_records_lost_total").await - lost;
    let evs = denial_events(&ns, "flood").await;
    let counted: i64 = evs.iter().map(|e| e.count.unwrap_or(0) as i64).sum();
    let now = recorder_pod_on(&client, &first_node()).await?;
    let rss = host_pids_of(&now)
        .into_iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .max()
        .unwrap_or(0);
    eprintln!(
        "flood: {denied} denials counted, {counted} in {} event(s), {writes} event writes, {lost} records lost, recorder peak RSS {} MiB",
        evs.len(),
        rss / 1024
    );
    assert!(denied > 200.0, "a flood: {denied}");
    assert_eq!(evs.len(), 1, "one series: {evs:?}");
    assert!(writes <= 10.0, "{writes} writes for one series over ~28 s");
    assert_eq!(
        restarts(&now),
        restarts(&recorder),
        "the recorder did not restart"
    );
    assert!(
        rss > 0 && rss < 128 * 1024,
        "recorder within its 128 MiB limit: {rss} KiB"
    );
    Ok(())
}

#[tokio::test]
async fn d4_the_namespace_policy_warns_or_refuses_unconfined_pods() -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    for mode in ["warn", "enforce"] {
        let ns = TestNs::new(client.clone(), &format!("policy-{mode}")).await?;
        kubectl(&[
            "label",
            "namespace",
            &ns.name,
            &format!("seccomp-operator.dev/profile-policy={mode}"),
        ])?;
        installed_profile(&ns, "ok", json!({"defaultAction": "SCMP_ACT_ALLOW"})).await?;
        let create = |pod: serde_json::Value| {
            let body = serde_json::to_vec(&pod).unwrap();
            kubectl_output(None, &["-n", &ns.name, "create", "-f", "-"], Some(&body)).unwrap()
        };
        // Pods that stay up, so that they are counted as running.
        let mut unconfined = busybox_pod("unconfined", "sleep 120", None);
        unconfined["metadata"]["namespace"] = ns.name.clone().into();
        let out = create(unconfined);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if mode == "warn" {
            assert!(out.status.success(), "{stderr}");
            assert!(
                stderr.contains("Warning: seccomp-operator profile policy")
                    && stderr.contains("\"main\""),
                "{stderr}"
            );
        } else {
            assert!(!out.status.success(), "refused");
            assert!(
                stderr.contains("enforce")
                    && stderr.contains("\"main\"")
                    && stderr.contains("RuntimeDefault"),
                "{stderr}"
            );
        }
        let mut good = busybox_pod(
            "confined",
            "sleep 120",
            Some(&format!("operator/{}/ok.json", ns.name)),
        );
        good["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = false.into();
        good["metadata"]["namespace"] = ns.name.clone().into();
        // The install gate may trail the status for a moment: retry its refusal briefly.
        let deadline = Instant::now() + Duration::from_secs(15);
        let out = loop {
            let out = create(good.clone());
            if out.status.success() || Instant::now() > deadline {
                break out;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{mode}: {stderr}");
        assert!(!stderr.contains("Warning"), "admitted silently: {stderr}");
        let _ = Api::<Pod>::namespaced(client.clone(), &ns.name)
            .get("confined")
            .await?;
        // Readable with kubectl: the namespace's line in the confinement report.
        let want = if mode == "warn" {
            "localhost=1 runtime-default=0 unconfined=0 unset=1 privilege-escalation=1 complain=0"
        } else {
            "localhost=1 runtime-default=0 unconfined=0 unset=0 privilege-escalation=0 complain=0"
        };
        let report = |output: &str| {
            kubectl(&[
                "-n",
                "seccomp-operator",
                "get",
                "configmap",
                "seccomp-operator-confinement",
                "-o",
                output,
            ])
        };
        let jsonpath = format!("jsonpath={{.data.{}}}", ns.name);
        let line = wait_for(
            "the namespace's confinement line",
            Duration::from_secs(40),
            || async { report(&jsonpath).ok().filter(|l| l == want) },
        )
        .await;
        if line.is_err() {
            eprintln!("{:?}", report("yaml"));
        }
        line?;
        if mode == "warn" {
            // The warning stays with the pod as an Event.
            let api: Api<k8s_openapi::api::core::v1::Event> = ns.api();
            let ev = wait_for(
                "an UnconfinedContainer event on the pod",
                Duration::from_secs(40),
                || async {
                    api.list(
                        &ListParams::default()
                            .fields("reason=UnconfinedContainer,involvedObject.name=unconfined"),
                    )
                    .await
                    .ok()?
                    .items
                    .into_iter()
                    .next()
                },
            )
            .await?;
            let msg = ev.message.unwrap_or_default();
            assert!(
                msg.contains("\"main\"") && msg.contains("RuntimeDefault"),
                "{msg}"
            );
        }
    }
    Ok(())
}
