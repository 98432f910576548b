//! The Helm chart (`charts/seccomp-operator`): it renders exactly the objects of the kustomize
//! manifests, and `helm upgrade --install` takes over the local cluster's installation with the
//! operator still working.

use e2e::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// `$HELM` (hack/test.sh sets it to the test bed's helm), or `helm` on PATH; `None` when there
/// is none (the tests then say so, and fail under CI=true).
fn helm() -> Option<PathBuf> {
    let helm = std::env::var_os("HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("helm"));
    let found = std::process::Command::new(&helm)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(helm);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the chart tests, but there is no helm ($HELM or PATH); hack/k8s-build.sh helm builds it"
    );
    println!("SKIP: no helm ($HELM or PATH); hack/k8s-build.sh helm builds it");
    None
}

fn run(cmd: &mut std::process::Command) -> anyhow::Result<String> {
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The objects of a multi-document YAML stream by `kind namespace/name`.
fn objects(yaml: &str) -> anyhow::Result<BTreeMap<String, serde_json::Value>> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml)?;
    let mut out = BTreeMap::new();
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        let key = format!(
            "{} {}/{}",
            doc["kind"].as_str().unwrap_or_default(),
            doc["metadata"]["namespace"].as_str().unwrap_or_default(),
            doc["metadata"]["name"].as_str().unwrap_or_default()
        );
        anyhow::ensure!(out.insert(key.clone(), doc).is_none(), "{key} twice");
    }
    Ok(out)
}

fn kustomize(dir: &str) -> anyhow::Result<String> {
    run(std::process::Command::new(kubectl_path())
        .arg("kustomize")
        .arg(repo().join(dir)))
}

#[test]
fn the_chart_renders_what_kustomize_renders() -> anyhow::Result<()> {
    let Some(helm) = helm() else { return Ok(()) };
    // What the kubectl of the test bed renders: the chart's templates were generated from it.
    if !kubectl_path().exists() && std::env::var_os("KUBECTL").is_none() {
        println!("SKIP: no kubectl ($KUBECTL)");
        return Ok(());
    }
    for (version, gate) in [
        ("1.37.0", "config/gate-policy"),
        ("1.35.0", "config/gate-webhook"),
    ] {
        let chart = run(std::process::Command::new(&helm)
            .args(["template", "seccomp-operator"])
            .arg(repo().join("charts/seccomp-operator"))
            .args(["--kube-version", version]))?;
        let want = format!(
            "{}\n---\n{}",
            kustomize("config/default")?,
            kustomize(gate)?
        );
        let (mut got, want) = (objects(&chart)?, objects(&want)?);
        // The one addition the chart makes: Helm keeps the CRDs on uninstall.
        for o in got.values_mut() {
            let meta = &mut o["metadata"];
            if let Some(a) = meta.get_mut("annotations").and_then(|a| a.as_object_mut()) {
                a.remove("helm.sh/resource-policy");
                if a.is_empty() {
                    meta.as_object_mut().map(|m| m.remove("annotations"));
                }
            }
        }
        let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
        let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
        let differ: Vec<&String> = want
            .iter()
            .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
            .map(|(k, _)| k)
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty() && differ.is_empty(),
            "Kubernetes {version}: the chart and kustomize differ (run hack/update-chart.sh):\n  missing {missing:?}\n  extra {extra:?}\n  different {differ:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn helm_takes_over_the_installation_and_the_operator_keeps_working() -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let Some(helm) = helm() else { return Ok(()) };
    // The local cluster's images are imported, never pulled (as config/local says).
    run(std::process::Command::new(&helm)
        .args(["upgrade", "--install", "seccomp-operator"])
        .arg(repo().join("charts/seccomp-operator"))
        .args([
            "--namespace",
            "seccomp-operator",
            "--take-ownership",
            "--force-conflicts",
        ])
        .args([
            "--set",
            "imagePullPolicy=Never",
            "--set",
            &format!(
                "policy.complainReadyAfter={}s",
                COMPLAIN_READY_AFTER.as_secs()
            ),
            "--wait",
            "--timeout",
            "5m",
        ])
        .arg("--kubeconfig")
        .arg(kubeconfig().unwrap_or_default()))?;
    let status = run(std::process::Command::new(&helm)
        .args([
            "status",
            "seccomp-operator",
            "--namespace",
            "seccomp-operator",
        ])
        .arg("--kubeconfig")
        .arg(kubeconfig().unwrap_or_default()))?;
    assert!(status.contains("STATUS: deployed"), "{status}");
    // Applying the chart resets the webhooks' CA bundle; the operator injects it again.
    wait_for(
        "the operator's CA bundle back in its webhook configurations",
        Duration::from_secs(60),
        || async {
            let ca = kubectl(&[
                "get",
                "validatingwebhookconfiguration",
                "seccomp-operator-gate",
                "-o",
                "jsonpath={.webhooks[0].clientConfig.caBundle}",
            ])
            .ok()?;
            (!ca.trim().is_empty()).then_some(())
        },
    )
    .await?;
    // Still working: a profile is installed on every node and enforced in a pod.
    let ns = TestNs::new(client, "chart").await?;
    ns.apply::<crds::SeccompProfile>(sp("no-mkdir", no_mkdir()))
        .await?;
    ns.wait_installed_everywhere("no-mkdir").await?;
    let path = format!("operator/{}/no-mkdir.json", ns.name);
    let (_, logs) = ns
        .run_pod(busybox_pod("try", "mkdir /tmp/x; echo done", Some(&path)))
        .await?;
    assert!(logs.contains("Operation not permitted"), "{logs}");
    Ok(())
}
