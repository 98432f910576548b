//! The files in `examples/`, applied with `kubectl apply -f` as the README and the docs show
//! them (in a namespace of the test's own instead of `shop`): every example is known to work.

use e2e::*;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use std::time::Duration;

/// `examples/<file>` with its namespace `shop` replaced by `ns`.
fn example(file: &str, ns: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(repo().join("examples").join(file))?;
    // Only the namespace is replaced: no example names anything else `shop`.
    Ok(text
        .replace("namespace: shop", &format!("namespace: {ns}"))
        .replace("name: shop", &format!("name: {ns}"))
        .replace("operator/shop/", &format!("operator/{ns}/")))
}

fn apply(file: &str, ns: &str) -> anyhow::Result<()> {
    let manifest = example(file, ns)?;
    let out = kubectl_output(None, &["apply", "-f", "-"], Some(manifest.as_bytes()))?;
    anyhow::ensure!(
        out.status.success(),
        "kubectl apply -f examples/{file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn x1_the_examples_install_record_and_bind_a_profile() -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let ns = TestNs::new(client.clone(), "examples").await?;

    // namespace.yaml: the binding and policy labels.
    apply("namespace.yaml", &ns.name)?;
    let labels = Api::<Namespace>::all(client.clone())
        .get(&ns.name)
        .await?
        .labels()
        .clone();
    assert_eq!(
        labels.get(crds::LABEL_BINDING).map(String::as_str),
        Some("enabled")
    );
    assert_eq!(
        labels.get(crds::LABEL_POLICY).map(String::as_str),
        Some("warn")
    );

    // profile.yaml: Installed everywhere; mkdir fails under it, as the comment says.
    apply("profile.yaml", &ns.name)?;
    ns.wait_installed_everywhere("no-mkdir").await?;
    let path = format!("operator/{}/no-mkdir.json", ns.name);
    let (_, logs) = ns
        .run_pod(busybox_pod("try", "mkdir /tmp/x; echo done", Some(&path)))
        .await?;
    assert!(logs.contains("Operation not permitted"), "{logs}");

    // recording.yaml, then web.yaml: the recording ends with its pods and merges web-web.
    apply("recording.yaml", &ns.name)?;
    tokio::time::sleep(Duration::from_secs(2)).await; // pods must be newer than the recording
    apply("web.yaml", &ns.name)?;
    scale(&ns, "web", 1).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    scale(&ns, "web", 0).await?;
    let merged = ns
        .wait_profile_for(
            "web-web",
            "the merged profile Installed",
            Duration::from_secs(120),
            |p| phase(p) == "Installed",
        )
        .await?;
    let names = allowed_names(&merged);
    assert!(names.iter().any(|n| n == "execve"), "{names:?}");

    // binding.yaml: the next pod of web runs under web-web.
    apply("binding.yaml", &ns.name)?;
    tokio::time::sleep(Duration::from_secs(3)).await; // the webhook's cache sees the binding
    scale(&ns, "web", 1).await?;
    let pods: Api<Pod> = ns.api();
    let pod = pods
        .list(&ListParams::default().labels("app=web"))
        .await?
        .items
        .remove(0);
    let profile = pod.spec.as_ref().unwrap().containers[0]
        .security_context
        .clone()
        .and_then(|s| s.seccomp_profile)
        .and_then(|s| s.localhost_profile);
    assert_eq!(profile, Some(format!("operator/{}/web-web.json", ns.name)));
    let logs = ns.enforced_logs(&pod.name_any()).await?;
    assert!(logs.contains("start"), "{logs}");
    Ok(())
}
