//! Registry bases (#31) on the real cluster: a SeccompProfile built on an `oci://` artifact
//! pushed to a real registry (Debian's docker-registry with TLS and basic auth, started by
//! `hack/registry.sh up`) is fetched by the operator alone, installed on every node and
//! enforced in a pod; a wrong digest, a registry outside the allowed list, an address inside
//! the cluster or on loopback, and a pull Secret of another namespace all end in `Error`
//! with the reason, naming the field.
//!
//! The test configures the operator once (ALLOWED_REGISTRIES in the policy ConfigMap, the
//! registry's CA in `seccomp-operator-registry-ca`) and restarts it only when that changed.

use base64::Engine as _;
use crds::SeccompProfile;
use e2e::*;
use profile_registry::{Credentials, Registry, RegistryOptions};
use seccomp_profile::OciReference;
use serde_json::json;
use std::time::Duration;

/// The local registry, as `hack/registry.sh up` describes it.
struct Local {
    /// `ip:5443`, reachable from pods.
    tls: String,
    ca: Vec<u8>,
    user: String,
    password: String,
}

/// The local registry, or None (SKIP) when it is not up; under `CI=true` that is a failure.
fn local_registry() -> Option<Local> {
    let bed = profile_registry::testbed::TestBed::require(&repo())?;
    Some(Local {
        ca: std::fs::read(&bed.ca).expect("the registry's CA file"),
        tls: bed.tls,
        user: bed.user,
        password: bed.password,
    })
}

/// What the operator must be told: two repositories of the local registry, loopback and the
/// API service's address (to show that listing them does not make them reachable). Spelled
/// as an admin might (upper case, a trailing `/`): the API server's policy and the operator
/// must read each entry alike, or r1 is refused by one of them.
fn allowed(r: &Local) -> String {
    format!(
        "{tls}/E2E/,{tls}/probe,127.0.0.1:5443,10.96.0.1:443/",
        tls = r.tls
    )
}

async fn configure_operator(r: &Local) -> anyhow::Result<()> {
    let ca = String::from_utf8(r.ca.clone())?;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "seccomp-operator-registry-ca", "namespace": "seccomp-operator"},
        "data": {"local.crt": ca}});
    let out = kubectl_output(None, &["apply", "-f", "-"], Some(cm.to_string().as_bytes()))?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The API server's profile policy reads the ConfigMap at once.
    kubectl(&[
        "-n",
        "seccomp-operator",
        "patch",
        "configmap",
        "seccomp-operator-policy",
        "--type",
        "merge",
        "-p",
        &json!({"data": {"ALLOWED_REGISTRIES": allowed(r)}}).to_string(),
    ])?;
    // The operator reads it at start: set on the Deployment itself (an explicit variable wins
    // over the ConfigMap's), a change of its pod template only when the value is new, so that
    // exactly the pods started after it answer. Then the rollout, and no old pod left.
    kubectl(&[
        "-n",
        "seccomp-operator",
        "set",
        "env",
        "deploy/seccomp-operator",
        &format!("ALLOWED_REGISTRIES={}", allowed(r)),
        // The CA is read at start too: a new one (a registry set up again) restarts it.
        &format!(
            "REGISTRY_CA_DIGEST={}",
            profile_registry::artifact::digest(&r.ca).replace(':', "-")
        ),
    ])?;
    kubectl(&[
        "-n",
        "seccomp-operator",
        "rollout",
        "status",
        "deploy/seccomp-operator",
        "--timeout=240s",
    ])?;
    wait_for("only the operator's new pods to run", Duration::from_secs(120), || async {
        let out = kubectl(&[
            "-n", "seccomp-operator", "get", "pods", "-l", "app.kubernetes.io/name=seccomp-operator",
            "-o", "jsonpath={range .items[*]}{.metadata.deletionTimestamp}|{.status.containerStatuses[0].ready} {end}",
        ])
        .ok()?;
        let pods: Vec<&str> = out.split_whitespace().collect();
        (!pods.is_empty() && pods.iter().all(|p| *p == "|true")).then_some(())
    })
    .await?;
    // Admission through the webhook agrees, several times in a row (each may reach another
    // replica): a server-side dry run goes through the webhooks.
    let probe = json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
        "metadata": {"name": "registry-probe", "namespace": "default"},
        "spec": {"defaultAction": "SCMP_ACT_ALLOW",
            "baseProfileName": format!("oci://{}/probe@sha256:{}", r.tls, "2".repeat(64))}})
    .to_string();
    let mut agreed = 0;
    wait_for(
        "the operator's webhook to allow the local registry",
        Duration::from_secs(120),
        || {
            let ok = kubectl_output(
                None,
                &["create", "--dry-run=server", "-f", "-"],
                Some(probe.as_bytes()),
            )
            .is_ok_and(|o| o.status.success());
            agreed = if ok { agreed + 1 } else { 0 };
            let done = agreed >= 5;
            async move {
                if !done {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                done.then_some(())
            }
        },
    )
    .await?;
    Ok(())
}

/// Push `doc` to the local registry as `repo:tag`; its pinned reference.
async fn push(r: &Local, repo: &str, doc: &serde_json::Value) -> anyhow::Result<OciReference> {
    let registry = Registry::new(RegistryOptions {
        ca_pem: vec![r.ca.clone()],
        ..Default::default()
    })?;
    let reference =
        OciReference::parse(&format!("oci://{}/{repo}:v1", r.tls)).map_err(anyhow::Error::msg)?;
    let pushed = registry
        .push(&reference, serde_json::to_vec(doc)?, &credentials(r))
        .await?;
    Ok(pushed.pinned)
}

fn credentials(r: &Local) -> Credentials {
    Credentials::Basic {
        username: r.user.clone(),
        password: r.password.clone(),
    }
}

/// A `kubernetes.io/dockerconfigjson` Secret `name` for the local registry in `ns`, and the
/// Role and RoleBinding that let the operator read that one Secret (`grant`).
async fn pull_secret(
    ns: &TestNs,
    r: &Local,
    name: &str,
    password: &str,
    grant: bool,
) -> anyhow::Result<()> {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", r.user));
    let config = json!({"auths": {r.tls.clone(): {"auth": auth}}}).to_string();
    ns.apply::<k8s_openapi::api::core::v1::Secret>(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name}, "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": config}}))
        .await?;
    if grant {
        grant_secret(ns, name).await?;
    }
    Ok(())
}

/// The Role and RoleBinding of the guide: the operator may get Secret `name` in `ns`.
async fn grant_secret(ns: &TestNs, name: &str) -> anyhow::Result<()> {
    ns.apply::<k8s_openapi::api::rbac::v1::Role>(json!({"apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role", "metadata": {"name": "seccomp-operator-pull-secret"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [name], "verbs": ["get"]}]}))
    .await?;
    ns.apply::<k8s_openapi::api::rbac::v1::RoleBinding>(json!({"apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding", "metadata": {"name": "seccomp-operator-pull-secret"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "seccomp-operator-pull-secret"},
        "subjects": [{"kind": "ServiceAccount", "name": "seccomp-operator", "namespace": "seccomp-operator"}]}))
    .await?;
    Ok(())
}

fn valid_message(p: &SeccompProfile) -> String {
    condition(p, "Valid")
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// Wait for `name` to be in `Error` with a `Valid` message containing every one of `says`.
async fn wait_error(ns: &TestNs, name: &str, says: &[&str]) -> anyhow::Result<SeccompProfile> {
    let what = format!("{name} in Error saying {says:?}");
    ns.wait_profile_for(name, &what, Duration::from_secs(90), |p| {
        let m = valid_message(p);
        phase(p) == "Error" && says.iter().all(|s| m.contains(s))
    })
    .await
}

/// The cluster's client and the local registry, the operator told about it; None (SKIP)
/// without either.
async fn set_up() -> anyhow::Result<Option<(kube::Client, Local)>> {
    let Some(client) = client().await else {
        return Ok(None);
    };
    let Some(reg) = local_registry() else {
        return Ok(None);
    };
    configure_operator(&reg).await?;
    Ok(Some((client, reg)))
}

#[tokio::test]
async fn r1_a_registry_base_is_installed_everywhere_and_enforced() -> anyhow::Result<()> {
    let Some((client, reg)) = set_up().await? else {
        return Ok(());
    };
    let base = push(&reg, "e2e/no-mkdir", &no_mkdir()).await?;
    let ns = TestNs::new(client, "registry").await?;
    pull_secret(&ns, &reg, "pull", &reg.password, true).await?;
    ns.apply::<SeccompProfile>(sp(
        "web",
        json!({"defaultAction": "SCMP_ACT_ALLOW",
        "baseProfileName": base.to_string(), "pullSecretName": "pull"}),
    ))
    .await?;
    let p = ns.wait_installed_everywhere("web").await?;
    let resolved = p
        .status
        .and_then(|s| s.resolved_base)
        .expect("status.resolvedBase");
    assert_eq!(Some(&resolved.digest), base.digest.as_ref());
    let before = std::fs::read_to_string(profile_file(&ns.name, "web"))?;
    assert!(
        before.contains("mkdir") && before.contains("SCMP_ACT_ERRNO"),
        "{before}"
    );

    let path = format!("operator/{}/web.json", ns.name);
    let script =
        "grep Seccomp: /proc/self/status; mkdir /tmp/made && echo MKDIR_OK || echo MKDIR_REFUSED";
    let (phase_, logs) = ns
        .run_pod(busybox_pod("worker", script, Some(&path)))
        .await?;
    assert!(
        logs.contains("Seccomp:\t2")
            && logs.contains("MKDIR_REFUSED")
            && !logs.contains("MKDIR_OK"),
        "the registry base's rule is enforced ({phase_}): {logs}"
    );

    // The base moved to a digest the registry does not have: Error naming the reference and
    // the cause; every node keeps the file it had.
    let wrong = base.pinned(&format!("sha256:{}", "0".repeat(64)));
    kubectl(&[
        "-n",
        &ns.name,
        "patch",
        "sp",
        "web",
        "--type",
        "merge",
        "-p",
        &json!({"spec": {"baseProfileName": wrong.to_string()}}).to_string(),
    ])?;
    let p = wait_error(
        &ns,
        "web",
        &["spec.baseProfileName", &wrong.to_string(), "not found"],
    )
    .await?;
    eprintln!("wrong digest: {}", valid_message(&p));
    tokio::time::sleep(Duration::from_secs(5)).await;
    for node in cluster_nodes() {
        let file = std::fs::read_to_string(node.profile_file(&ns.name, "web"))?;
        assert_eq!(file, before, "node {} kept its last good file", node.name);
    }
    Ok(())
}

#[tokio::test]
async fn r2_only_the_profiles_own_namespace_secret_is_used() -> anyhow::Result<()> {
    let Some((client, reg)) = set_up().await? else {
        return Ok(());
    };
    let base = push(&reg, "e2e/no-mkdir", &no_mkdir()).await?;
    // Namespace a has the right Secret, readable by the operator.
    let a = TestNs::new(client.clone(), "registry-a").await?;
    pull_secret(&a, &reg, "pull", &reg.password, true).await?;
    let spec = json!({"defaultAction": "SCMP_ACT_ALLOW", "baseProfileName": base.to_string(), "pullSecretName": "pull"});
    a.apply::<SeccompProfile>(sp("web", spec.clone())).await?;
    a.wait_installed_everywhere("web").await?;

    // Namespace b names the same Secret and grants the operator: it has none of its own.
    let b = TestNs::new(client.clone(), "registry-b").await?;
    grant_secret(&b, "pull").await?;
    b.apply::<SeccompProfile>(sp("web", spec.clone())).await?;
    let p = wait_error(
        &b,
        "web",
        &[
            "spec.pullSecretName",
            "does not exist in namespace",
            &b.name,
        ],
    )
    .await?;
    eprintln!("no Secret of its own: {}", valid_message(&p));

    // Namespace c has a Secret of that name but does not let the operator read it.
    let c = TestNs::new(client.clone(), "registry-c").await?;
    pull_secret(&c, &reg, "pull", &reg.password, false).await?;
    c.apply::<SeccompProfile>(sp("web", spec.clone())).await?;
    let p = wait_error(
        &c,
        "web",
        &["spec.pullSecretName", "may not read Secret `pull`"],
    )
    .await?;
    eprintln!("not granted: {}", valid_message(&p));

    // Namespace d has its own Secret with a wrong password: the registry refuses.
    let d = TestNs::new(client, "registry-d").await?;
    pull_secret(&d, &reg, "pull", "wrong-password", true).await?;
    d.apply::<SeccompProfile>(sp("web", spec)).await?;
    let p = wait_error(&d, "web", &["spec.baseProfileName", "refused access"]).await?;
    eprintln!("wrong password: {}", valid_message(&p));
    Ok(())
}

#[tokio::test]
async fn r3_registries_outside_the_list_and_addresses_inside_are_refused() -> anyhow::Result<()> {
    let Some((client, reg)) = set_up().await? else {
        return Ok(());
    };
    let ns = TestNs::new(client, "registry-refused").await?;
    let digest = format!("sha256:{}", "1".repeat(64));
    // Not listed (a registry, or a listed registry's other repository): refused at
    // admission, naming the field. The API server's policy answers first (the operator's
    // webhook says the same).
    for (name, reference) in [
        ("unlisted", format!("oci://registry.example.com/x@{digest}")),
        ("elsewhere", format!("oci://{}/other/x@{digest}", reg.tls)),
    ] {
        let refused = ns
            .apply::<SeccompProfile>(sp(
                name,
                json!({"defaultAction": "SCMP_ACT_ALLOW", "baseProfileName": reference}),
            ))
            .await
            .expect_err("a reference outside the allowed list is refused");
        let message = refused.to_string();
        assert!(
            message.contains("spec.baseProfileName") && message.contains("allowed list"),
            "{name}: {message}"
        );
    }
    // Listed, but inside: the fetch never connects.
    for (name, reference, says) in [
        (
            "loopback",
            format!("oci://127.0.0.1:5443/e2e/no-mkdir@{digest}"),
            "loopback",
        ),
        (
            "service",
            format!("oci://10.96.0.1:443/x@{digest}"),
            "service range",
        ),
    ] {
        ns.apply::<SeccompProfile>(sp(
            name,
            json!({"defaultAction": "SCMP_ACT_ALLOW", "baseProfileName": reference}),
        ))
        .await?;
        let p = wait_error(&ns, name, &["spec.baseProfileName", says]).await?;
        eprintln!("{name}: {}", valid_message(&p));
    }
    Ok(())
}
