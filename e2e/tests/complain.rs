//! Complain mode (#29) on the real cluster: a profile installed with every refusing action as
//! `SCMP_ACT_LOG` lets the workload run, reports what enforcement would deny
//! (`SyscallWouldBeDenied` Events, `status.wouldDeny`, the `ReadyToEnforce` condition), and
//! switching it to `Enforce` reaches new containers only (`status.podsOnOlderVersion`). Pods
//! run on node 1: the extra nodes of the local cluster share its kernel but not its initial
//! network namespace, where the kernel sends audit records.

use crds::SeccompProfile;
use e2e::*;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use serde_json::json;
use std::time::{Duration, Instant};

/// The `SyscallWouldBeDenied` Events on `pod`.
async fn would_deny_events(ns: &TestNs, pod: &str) -> Vec<Event> {
    let api: Api<Event> = ns.api();
    api.list(&ListParams::default().fields(&format!(
        "reason=SyscallWouldBeDenied,involvedObject.name={pod}"
    )))
    .await
    .map(|l| l.items)
    .unwrap_or_default()
}

/// `seccomp_agent_would_deny_syscalls_total{syscall}` on node 1's recorder.
async fn would_deny_total(client: &kube::Client, syscall: &str) -> f64 {
    recorder_counter_sum(
        client,
        "seccomp_agent_would_deny_syscalls_total",
        &[("syscall", syscall)],
    )
    .await
}

fn set_mode(ns: &TestNs, name: &str, mode: &str) -> anyhow::Result<()> {
    kubectl(&[
        "-n",
        &ns.name,
        "patch",
        "sp",
        name,
        "--type",
        "merge",
        "-p",
        &json!({"spec": {"mode": mode}}).to_string(),
    ])?;
    Ok(())
}

/// Wait until the profile's current spec (generation) is Installed on every node.
async fn wait_current_installed(ns: &TestNs, name: &str) -> anyhow::Result<SeccompProfile> {
    let n = cluster_nodes().len();
    let all = format!("{n}/{n}");
    ns.wait_profile(name, "its current version Installed everywhere", |p| {
        let s = p.status.as_ref();
        phase(p) == "Installed"
            && s.and_then(|s| s.installed_nodes.as_deref()) == Some(all.as_str())
            && s.and_then(|s| s.observed_generation) == p.metadata.generation
            && s.and_then(|s| s.installed_at.as_ref()).is_some()
    })
    .await
}

#[tokio::test]
async fn c1_complain_logs_what_enforce_would_deny_then_enforce_reaches_new_pods(
) -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let ns = TestNs::new(client.clone(), "complain").await?;
    let mut spec = no_mkdir();
    spec["mode"] = "Complain".into();
    ns.apply::<SeccompProfile>(sp("web", spec)).await?;
    let installed = wait_current_installed(&ns, "web").await?;
    let hash = installed
        .status
        .as_ref()
        .and_then(|s| s.content_hash.clone());
    let file = std::fs::read_to_string(profile_file(&ns.name, "web"))?;
    assert!(
        file.contains("SCMP_ACT_LOG") && !file.contains("SCMP_ACT_ERRNO"),
        "the complain rendering: {file}"
    );
    let before =
        would_deny_total(&client, "mkdir").await + would_deny_total(&client, "mkdirat").await;

    // The workload: shows its filter, makes a directory, and keeps running.
    let path = format!("operator/{}/web.json", ns.name);
    let script = "grep Seccomp: /proc/self/status; mkdir /tmp/made && echo MKDIR_OK; sleep 3600";
    let pods: Api<Pod> = ns.api();
    pods.create(
        &Default::default(),
        &serde_json::from_value(busybox_pod("first", script, Some(&path)))?,
    )
    .await?;
    let started = Instant::now();
    let logs = ns.enforced_logs("first").await?;
    assert!(
        logs.contains("MKDIR_OK"),
        "mkdir succeeds under Complain: {logs}"
    );
    let ev = wait_for(
        "a SyscallWouldBeDenied event naming mkdir",
        Duration::from_secs(30),
        || async {
            would_deny_events(&ns, "first").await.into_iter().find(|e| {
                e.annotations()
                    .get("seccomp-operator.dev/syscall")
                    .is_some_and(|s| s.starts_with("mkdir"))
            })
        },
    )
    .await;
    if ev.is_err() {
        ns.dump().await;
    }
    let ev = ev?;
    eprintln!(
        "SyscallWouldBeDenied seen {:?} after the workload's output: {}",
        started.elapsed(),
        ev.message.clone().unwrap_or_default()
    );
    let msg = ev.message.clone().unwrap_or_default();
    assert!(
        msg.contains("mkdir") && msg.contains("SCMP_ACT_ERRNO") && msg.contains(&path),
        "{msg}"
    );
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    let after =
        would_deny_total(&client, "mkdir").await + would_deny_total(&client, "mkdirat").await;
    assert!(
        after > before,
        "the would-deny counter rose: {before} -> {after}"
    );
    let p = ns
        .wait_profile(
            "web",
            "status.wouldDeny lists mkdir and ReadyToEnforce is False",
            |p| {
                let listed = p.status.as_ref().is_some_and(|s| {
                    s.would_deny.iter().any(|d| {
                        d.syscall.starts_with("mkdir")
                            && d.action == "SCMP_ACT_ERRNO"
                            && d.example_pod.as_deref() == Some("first")
                    })
                });
                listed && condition(p, "ReadyToEnforce").is_some_and(|c| c.status == "False")
            },
        )
        .await?;
    eprintln!(
        "ReadyToEnforce: {}",
        condition(&p, "ReadyToEnforce")
            .map(|c| c.message.clone())
            .unwrap_or_default()
    );
    // The confinement report counts the container as complain, not localhost.
    let line = wait_for(
        "the namespace's confinement line with complain=1",
        Duration::from_secs(40),
        || async {
            confinement_report_line(&ns.name)
                .ok()
                .filter(|l| l.contains("complain=1") && l.starts_with("localhost=0"))
        },
    )
    .await?;
    eprintln!("confinement: {line}");

    // Enforce: a new container gets the refusing filter; the first keeps its own.
    set_mode(&ns, "web", "Enforce")?;
    let enforced = ns
        .wait_profile("web", "a new version installed everywhere", |p| {
            let s = p.status.as_ref();
            s.and_then(|s| s.content_hash.clone()) != hash
                && phase(p) == "Installed"
                && s.and_then(|s| s.observed_generation) == p.metadata.generation
                && s.and_then(|s| s.installed_at.as_ref()).is_some()
        })
        .await?;
    assert!(
        condition(&enforced, "ReadyToEnforce").is_none(),
        "only for Complain"
    );
    let (phase, logs) = ns
        .run_pod(busybox_pod(
            "second",
            "grep Seccomp: /proc/self/status; mkdir /tmp/made || echo MKDIR_REFUSED",
            Some(&path),
        ))
        .await?;
    assert_eq!(phase, "Succeeded", "{logs}");
    assert!(
        logs.contains("Seccomp:\t2")
            && logs.contains("Operation not permitted")
            && logs.contains("MKDIR_REFUSED"),
        "mkdir fails with EPERM under Enforce: {logs}"
    );
    ns.wait_profile("web", "the first pod counted on an older version", |p| {
        p.status.as_ref().and_then(|s| s.pods_on_older_version) == Some(1)
    })
    .await?;
    let table = kubectl(&["-n", &ns.name, "get", "sp", "web"])?;
    eprintln!("{table}");
    assert!(
        table.contains("OUTDATED") && table.contains("Enforce"),
        "{table}"
    );
    Ok(())
}

#[tokio::test]
async fn c2_record_then_complain_then_enforce() -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let ns = TestNs::new(client.clone(), "lifecycle").await?;
    ns.apply::<crds::ProfileRecording>(json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "ProfileRecording",
        "metadata": {"name": "rec"},
        "spec": {"podSelector": {"matchLabels": {"app": "job"}}, "mergeStrategy": "None", "profileMode": "Complain"}}))
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let work = "grep Seccomp: /proc/self/status; echo ok; sleep 1";
    let job = |name: &str, script: &str, profile: Option<&str>| {
        let mut pod = busybox_pod(name, script, profile);
        pod["metadata"]["labels"] = json!({"app": if profile.is_none() { "job" } else { "run" }});
        pod
    };
    let (phase, logs) = ns.run_pod(job("recorded", work, None)).await?;
    assert_eq!(phase, "Succeeded", "{logs}");
    let name = "rec-recorded-main";
    let recorded = ns
        .wait_profile_for(
            name,
            "the recorded profile Installed",
            Duration::from_secs(90),
            |p| self::phase(p) == "Installed",
        )
        .await?;
    assert_eq!(
        recorded.spec.mode,
        seccomp_profile::Mode::Complain,
        "the recording's mode"
    );
    let path = format!("operator/{}/{name}.json", ns.name);

    // A clean run under the complain rendering.
    let long = format!("{work}; sleep 3600");
    let pods: Api<Pod> = ns.api();
    pods.create(
        &Default::default(),
        &serde_json::from_value(job("watched", &long, Some(&path)))?,
    )
    .await?;
    let logs = ns.enforced_logs("watched").await?;
    assert!(logs.contains("ok"), "{logs}");
    let ready = ns
        .wait_profile_for(
            name,
            "ReadyToEnforce True",
            COMPLAIN_READY_AFTER + Duration::from_secs(60),
            |p| condition(p, "ReadyToEnforce").is_some_and(|c| c.status == "True"),
        )
        .await;
    if ready.is_err() {
        eprintln!("events: {:?}", would_deny_events(&ns, "watched").await);
    }
    let ready = ready?;
    eprintln!(
        "ReadyToEnforce: {}",
        condition(&ready, "ReadyToEnforce")
            .map(|c| c.message.clone())
            .unwrap_or_default()
    );
    assert!(ready
        .status
        .as_ref()
        .is_some_and(|s| s.would_deny.is_empty()));

    // Enforce: the workload runs under the refusing filter.
    set_mode(&ns, name, "Enforce")?;
    wait_current_installed(&ns, name).await?;
    let (phase, logs) = ns.run_pod(job("enforced", work, Some(&path))).await?;
    assert_eq!(
        (phase.as_str(), logs.trim_end()),
        ("Succeeded", "Seccomp:\t2\nok"),
        "{logs}"
    );

    // In a namespace whose policy is enforce, a complain profile does not count as confined:
    // one created before the label cannot be used, and none can be made or switched there.
    let strict = TestNs::new(client.clone(), "strict").await?;
    let mut spec = no_mkdir();
    spec["mode"] = "Complain".into();
    strict
        .apply::<SeccompProfile>(sp("loose", spec.clone()))
        .await?;
    strict
        .apply::<SeccompProfile>(sp("tight", no_mkdir()))
        .await?;
    strict.wait_installed_everywhere("loose").await?;
    kubectl(&[
        "label",
        "namespace",
        &strict.name,
        "seccomp-operator.dev/profile-policy=enforce",
    ])?;
    let mut pod = busybox_pod(
        "refused",
        "sleep 1",
        Some(&format!("operator/{}/loose.json", strict.name)),
    );
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = false.into();
    let api: Api<Pod> = strict.api();
    let err = wait_for(
        "the policy webhook to refuse the complain pod",
        Duration::from_secs(30),
        || async {
            match api
                .create(
                    &Default::default(),
                    &serde_json::from_value(pod.clone()).ok()?,
                )
                .await
            {
                Err(e) => Some(e.to_string()),
                Ok(_) => {
                    let _ = api.delete("refused", &Default::default()).await;
                    None
                }
            }
        },
    )
    .await?;
    assert!(err.contains("Complain mode"), "{err}");
    eprintln!("refused: {err}");
    let switched = kubectl_output(
        None,
        &[
            "-n",
            &strict.name,
            "patch",
            "sp",
            "tight",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"mode":"Complain"}}"#,
        ],
        None,
    )?;
    let stderr = String::from_utf8_lossy(&switched.stderr);
    assert!(
        !switched.status.success() && stderr.contains("spec.mode: Complain is not allowed"),
        "switching a profile to Complain in an enforce namespace is refused: {stderr}"
    );
    Ok(())
}
