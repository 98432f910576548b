//! What current Kubernetes (1.33–1.37) does that v1.20 did not, met by the operator on the real
//! local cluster: Pod Security admission at `restricted` for tenants and `privileged` (exactly
//! what its components need) for the operator's namespace, and user-namespaced pods
//! (`hostUsers: false`) running, and recorded, under operator profiles.

use crds::SeccompProfile;
use e2e::*;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams};
use kube::Api;
use serde_json::json;
use std::time::Duration;

async fn label_namespace(ns: &TestNs, labels: serde_json::Value) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(ns.client.clone());
    api.patch(
        &ns.name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": labels}})),
    )
    .await?;
    Ok(())
}

/// A pod that Pod Security `restricted` admits: non-root, no privilege escalation, every
/// capability dropped, and a seccomp profile (here `profile`, a Localhost path).
fn restricted_pod(name: &str, script: &str, profile: &str) -> serde_json::Value {
    let mut pod = busybox_pod(name, script, Some(profile));
    pod["spec"]["securityContext"] =
        json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532});
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = json!(false);
    pod["spec"]["containers"][0]["securityContext"]["capabilities"] = json!({"drop": ["ALL"]});
    pod
}

#[tokio::test]
async fn k1_a_restricted_namespace_admits_a_pod_that_uses_an_operator_profile() -> anyhow::Result<()>
{
    let Some(client) = client().await else {
        return Ok(());
    };
    let ns = TestNs::new(client, "psa").await?;
    label_namespace(
        &ns,
        json!({"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}),
    )
    .await?;
    ns.apply::<SeccompProfile>(sp("no-mkdir", no_mkdir()))
        .await?;
    ns.wait_installed_everywhere("no-mkdir").await?;
    let path = format!("operator/{}/no-mkdir.json", ns.name);

    // Pod Security itself refuses a pod that is not restricted (the level is in force).
    let mut loose = busybox_pod("loose", "true", Some(&path));
    loose["metadata"]["namespace"] = json!(ns.name);
    let out = kubectl_output(
        None,
        &["apply", "-f", "-"],
        Some(serde_json::to_string(&loose)?.as_bytes()),
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("violates PodSecurity \"restricted:latest\""),
        "a non-restricted pod is refused by Pod Security: {stderr}"
    );

    let (phase, logs) = ns
        .run_pod(restricted_pod(
            "restricted",
            "id -u; grep Seccomp: /proc/self/status; mkdir /tmp/x",
            &path,
        ))
        .await?;
    assert!(logs.contains("65532"), "{logs}");
    assert!(logs.contains("Seccomp:\t2"), "{logs}");
    assert!(logs.contains("Operation not permitted"), "{logs}");
    assert_eq!(
        phase, "Failed",
        "mkdir refused by the operator's profile: {logs}"
    );
    Ok(())
}

#[tokio::test]
async fn k2_the_operators_namespace_is_privileged_because_its_node_pods_need_it(
) -> anyhow::Result<()> {
    let Some(_client) = client().await else {
        return Ok(());
    };
    let labels = kubectl(&[
        "get",
        "namespace",
        "seccomp-operator",
        "-o",
        "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}",
    ])?;
    assert_eq!(labels.trim(), "privileged");
    // Exactly that level: a server-side dry run of `baseline` warns about the node agent and
    // the node recorder (hostPath, host namespaces, capabilities) and of `restricted` not about
    // the operator's own pods beyond those.
    let dry = |level: &str| -> anyhow::Result<String> {
        let out = kubectl_output(
            None,
            &[
                "label",
                "--dry-run=server",
                "--overwrite",
                "namespace",
                "seccomp-operator",
                &format!("pod-security.kubernetes.io/enforce={level}"),
            ],
            None,
        )?;
        anyhow::ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let baseline = dry("baseline")?;
    assert!(
        baseline.contains("seccomp-node-agent") && baseline.contains("seccomp-node-recorder"),
        "baseline refuses both node DaemonSets' pods: {baseline}"
    );
    let restricted = dry("restricted")?;
    assert!(
        !restricted
            .lines()
            .any(|l| l.contains("seccomp-operator-") && !l.contains("seccomp-node")),
        "the operator's own pods pass restricted: {restricted}"
    );
    Ok(())
}

/// A user-namespaced (`hostUsers: false`) busybox pod on node 1.
fn userns_pod(name: &str, script: &str, profile: Option<&str>) -> serde_json::Value {
    let mut pod = busybox_pod(name, script, profile);
    pod["spec"]["hostUsers"] = json!(false);
    pod
}

const USERNS_WORKLOAD: &str =
    "cat /proc/self/uid_map; grep Seccomp: /proc/self/status; ls / >/dev/null; sleep 3; echo ok";

#[tokio::test]
async fn k3_a_user_namespaced_pod_runs_under_an_operator_profile_and_is_recorded(
) -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let ns = TestNs::new(client, "userns").await?;
    ns.apply::<SeccompProfile>(sp("no-mkdir", no_mkdir()))
        .await?;
    ns.wait_installed_everywhere("no-mkdir").await?;
    let path = format!("operator/{}/no-mkdir.json", ns.name);
    let (phase, logs) = ns
        .run_pod(userns_pod(
            "confined",
            "cat /proc/self/uid_map; grep Seccomp: /proc/self/status; mkdir /tmp/x",
            Some(&path),
        ))
        .await?;
    // Root in the pod is not root on the node: uid 0 maps to a high host uid.
    let map = logs
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>();
    assert!(
        map.len() == 3 && map[0] == "0" && map[1] != "0",
        "a user namespace: {logs}"
    );
    assert!(logs.contains("Seccomp:\t2"), "{logs}");
    assert!(logs.contains("Operation not permitted"), "{logs}");
    assert_eq!(phase, "Failed");

    // Recorded with the eBPF recorder, the profile runs the same pod enforced.
    ns.apply::<crds::ProfileRecording>(json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "ProfileRecording", "metadata": {"name": "rec"},
        "spec": {"podSelector": {"matchLabels": {"app": "userns"}}, "mergeStrategy": "Containers"}}))
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await; // pods must be newer than the recording
    let mut recorded = userns_pod("recorded", USERNS_WORKLOAD, None);
    recorded["metadata"]["labels"] = json!({"app": "userns"});
    let (phase, logs) = ns.run_pod(recorded).await?;
    assert_eq!(phase, "Succeeded", "{logs}");
    let merged = ns
        .wait_profile("rec-main", "the recorded profile Installed", |p| {
            e2e::phase(p) == "Installed"
        })
        .await?;
    let names = allowed_names(&merged);
    assert!(names.iter().any(|n| n == "execve"), "{names:?}");
    let path = format!("operator/{}/rec-main.json", ns.name);
    let (phase, logs) = ns
        .run_pod(userns_pod("enforced", USERNS_WORKLOAD, Some(&path)))
        .await?;
    assert_eq!(
        phase, "Succeeded",
        "the recorded profile runs the workload: {logs}"
    );
    assert!(
        logs.contains("Seccomp:\t2") && logs.contains("ok"),
        "{logs}"
    );
    Ok(())
}

/// The namespace's line in the confinement report (`seccomp-operator-confinement`).
async fn confinement_line(ns: &TestNs, want: &str) -> anyhow::Result<String> {
    let read = || confinement_report_line(&ns.name);
    let line = wait_for(
        "the namespace's confinement line",
        Duration::from_secs(40),
        || async { read().ok().filter(|l| l == want) },
    )
    .await;
    if line.is_err() {
        eprintln!("confinement line now: {:?}", read());
    }
    line
}

fn create(ns: &TestNs, mut pod: serde_json::Value) -> anyhow::Result<std::process::Output> {
    pod["metadata"]["namespace"] = json!(ns.name);
    Ok(kubectl_output(
        None,
        &["create", "-f", "-"],
        Some(&serde_json::to_vec(&pod)?),
    )?)
}

#[tokio::test]
async fn k4_a_legacy_annotation_does_nothing_and_the_policy_says_so() -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    // Since 1.27 the kubelet ignores the seccomp annotations: the pod runs unconfined (node 1's
    // kubelet has no seccompDefault).
    let ns = TestNs::new(client.clone(), "annot").await?;
    let mut pod = busybox_pod("annotated", "grep Seccomp: /proc/self/status", None);
    pod["metadata"]["annotations"] =
        json!({"container.seccomp.security.alpha.kubernetes.io/main": "runtime/default"});
    let (phase, logs) = ns.run_pod(pod.clone()).await?;
    assert_eq!(phase, "Succeeded", "{logs}");
    assert!(
        logs.contains("Seccomp:\t0"),
        "the annotation does nothing: {logs}"
    );

    // An `enforce` namespace refuses it as unset, naming the ignored annotation.
    let strict = TestNs::new(client, "annot-enforce").await?;
    label_namespace(
        &strict,
        json!({"seccomp-operator.dev/profile-policy": "enforce"}),
    )
    .await?;
    let out = create(&strict, pod)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {stderr}");
    assert!(
        stderr.contains("\"main\"") && stderr.contains("annotation"),
        "the refusal names the container and the ignored annotation: {stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn k5_on_a_seccomp_default_node_an_unset_container_counts_as_runtime_default(
) -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let nodes: Api<crds::SeccompNodeStatus> = Api::all(client.clone());
    let mut defaulting = None;
    for s in nodes.list(&Default::default()).await?.items {
        let on = s
            .status
            .as_ref()
            .and_then(|st| st.kubelet.as_ref())
            .and_then(|k| k.seccomp_default);
        if on == Some(true) {
            defaulting = Some(kube::ResourceExt::name_any(&s));
        }
    }
    let Some(node) = defaulting else {
        if std::env::var_os("CI").is_some() {
            panic!("CI runs a node with seccompDefault: true (hack/lib/cluster-env.sh)");
        }
        eprintln!("SKIP: no node reports seccompDefault: true");
        return Ok(());
    };
    let ns = TestNs::new(client, "default").await?;
    let mut pod = busybox_pod("unset", "grep Seccomp: /proc/self/status; sleep 120", None);
    pin(&mut pod["spec"], &node);
    ns.apply::<k8s_openapi::api::core::v1::Pod>(pod).await?;
    let api: Api<k8s_openapi::api::core::v1::Pod> = ns.api();
    wait_for("the pod running", Duration::from_secs(60), || async {
        api.get("unset").await.ok().filter(is_ready)
    })
    .await?;
    let logs = kubectl(&["-n", &ns.name, "logs", "unset"])?;
    assert!(
        logs.contains("Seccomp:\t2"),
        "the kubelet applied RuntimeDefault: {logs}"
    );
    confinement_line(
        &ns,
        "localhost=0 runtime-default=1 unconfined=0 unset=0 privilege-escalation=1 complain=0",
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn k6_sidecars_are_isolated_confined_and_recorded() -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let owner = TestNs::new(client.clone(), "side-owner").await?;
    owner
        .apply::<SeccompProfile>(sp("no-mkdir", no_mkdir()))
        .await?;
    owner.wait_installed_everywhere("no-mkdir").await?;
    let ns = TestNs::new(client, "side").await?;
    ns.apply::<SeccompProfile>(sp("no-mkdir", no_mkdir()))
        .await?;
    ns.wait_installed_everywhere("no-mkdir").await?;
    let sidecar_pod = |name: &str, profile: Option<String>| {
        let mut pod = busybox_pod(name, "sleep 3; echo main done", None);
        let mut side = json!({"name": "side", "image": "localhost/busybox:1", "imagePullPolicy": "IfNotPresent",
            "restartPolicy": "Always",
            "command": ["sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/x || echo refused; sleep 3600"]});
        if let Some(p) = profile {
            side["securityContext"] =
                json!({"seccompProfile": {"type": "Localhost", "localhostProfile": p}});
        }
        pod["spec"]["initContainers"] = json!([side]);
        pod
    };

    // Another tenant's profile in a sidecar is refused like anywhere else.
    let out = create(
        &ns,
        sidecar_pod(
            "stolen",
            Some(format!("operator/{}/no-mkdir.json", owner.name)),
        ),
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {stderr}");
    assert!(stderr.contains(&owner.name), "{stderr}");

    // Its own profile confines the sidecar for the pod's life.
    let (phase, logs) = ns
        .run_pod(sidecar_pod(
            "own",
            Some(format!("operator/{}/no-mkdir.json", ns.name)),
        ))
        .await?;
    assert_eq!(phase, "Succeeded", "{logs}");
    let side = kubectl(&["-n", &ns.name, "logs", "own", "-c", "side"])?;
    assert!(
        side.contains("Seccomp:\t2") && side.contains("refused"),
        "the sidecar runs under its profile: {side}"
    );

    // Recorded: the sidecar gets a profile of its own, from its whole life.
    ns.apply::<crds::ProfileRecording>(json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "ProfileRecording", "metadata": {"name": "rec"},
        "spec": {"podSelector": {"matchLabels": {"app": "sidecar"}}, "mergeStrategy": "Containers"}}))
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut recorded = sidecar_pod("recorded", None);
    recorded["metadata"]["labels"] = json!({"app": "sidecar"});
    let (phase, logs) = ns.run_pod(recorded).await?;
    assert_eq!(phase, "Succeeded", "{logs}");
    for (profile, needed) in [("rec-main", "nanosleep"), ("rec-side", "mkdir")] {
        let p = ns
            .wait_profile(profile, "the recorded profile Installed", |p| {
                e2e::phase(p) == "Installed"
            })
            .await?;
        let names = allowed_names(&p);
        assert!(
            names.iter().any(|n| n.contains(needed)),
            "{profile} lacks {needed}: {names:?}"
        );
    }
    Ok(())
}
