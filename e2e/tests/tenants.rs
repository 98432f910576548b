//! A hostile tenant against a second tenant, driven as a user would: `kubectl --as` a
//! ServiceAccount whose RBAC covers only its own namespace. Every attack is refused, or
//! accepted and contained, and the other tenant's profiles keep installing and its pods keep
//! being admitted. Run one at a time (`--test-threads=1`).

use crds::{SeccompNodeStatus, SeccompProfile};
use e2e::*;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::json;
use std::time::Duration;

/// `kubectl --as USER ARGS` with `stdin`; whether it succeeded and what it printed.
fn kubectl_as(user: &str, args: &[&str], stdin: Option<&serde_json::Value>) -> (bool, String) {
    let input = stdin.map(|v| v.to_string());
    let user = (!user.is_empty()).then_some(user);
    let out =
        kubectl_output(user, args, input.as_deref().map(str::as_bytes)).expect("kubectl runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `kubectl apply` of `obj` as `user`.
fn apply_as(user: &str, obj: &serde_json::Value) -> (bool, String) {
    kubectl_as(user, &["apply", "-f", "-"], Some(obj))
}

/// `kubectl create -n NS` of `obj` as `user`.
fn create_as(user: &str, ns: &str, obj: &serde_json::Value) -> (bool, String) {
    kubectl_as(user, &["create", "-n", ns, "-f", "-"], Some(obj))
}

/// [`create_as`] for a pod that must be admitted: the gate answers from the operator's watch
/// cache, which may trail a profile the test just saw Installed by a moment, so its refusal
/// for a missing or not yet installed profile is retried for a few seconds (as a controller
/// would).
fn create_admitted_as(user: &str, ns: &str, obj: &serde_json::Value) -> (bool, String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (ok, out) = create_as(user, ns, obj);
        let lagging =
            out.contains("does not exist") || out.contains("is not installed on every node yet");
        if ok || !lagging || std::time::Instant::now() >= deadline {
            return (ok, out);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

fn sp(ns: &str, name: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
           "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

/// A namespace-scoped tenant: a ServiceAccount and a Role over what tenants use.
fn grant_tenant(ns: &str) -> String {
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
    "metadata": {"name": "tenant", "namespace": ns},
    "rules": [
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["*"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]},
        {"apiGroups": ["seccomp-operator.dev"], "resources": ["seccompprofiles", "profilerecordings", "profilebindings"], "verbs": ["*"]}
    ]});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "tenant", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant"},
        "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": ns}]});
    for obj in [role, binding] {
        let (ok, out) = apply_as("", &obj);
        assert!(ok, "{out}");
    }
    format!("system:serviceaccount:{ns}:tenant")
}

fn pod_with(
    name: &str,
    container_profile: Option<&str>,
    annotation: Option<&str>,
) -> serde_json::Value {
    let mut pod = busybox_pod(name, "sleep 3600", container_profile);
    if let Some(a) = annotation {
        pod["metadata"]["annotations"] =
            json!({"container.seccomp.security.alpha.kubernetes.io/main": a});
    }
    pod
}

/// Two tenants of their own namespaces: `bank` (the victim, tenant `alice`) and `evil` (the
/// attacker, tenant `mallory`), each a namespace-scoped ServiceAccount.
struct Tenants {
    client: kube::Client,
    bank: TestNs,
    evil: TestNs,
    mallory: String,
    alice: String,
    /// Nodes in the cluster.
    n: usize,
}

impl Tenants {
    async fn new(client: kube::Client) -> anyhow::Result<Self> {
        let bank = TestNs::new(client.clone(), "bank").await?;
        let evil = TestNs::new(client.clone(), "evil").await?;
        let mallory = grant_tenant(&evil.name);
        let alice = grant_tenant(&bank.name);
        Ok(Tenants {
            client,
            bank,
            evil,
            mallory,
            alice,
            n: cluster_nodes().len(),
        })
    }

    /// Whether `p` is Installed on every node.
    fn installed(&self, p: &SeccompProfile) -> bool {
        let all = format!("{0}/{0}", self.n);
        phase(p) == "Installed"
            && p.status.as_ref().and_then(|s| s.installed_nodes.as_deref()) == Some(all.as_str())
    }

    /// The victim's profile `vault`, applied by its tenant and Installed everywhere.
    async fn with_vault(self) -> anyhow::Result<Self> {
        let (ok, out) = apply_as(&self.alice, &sp(&self.bank.name, "vault", no_mkdir()));
        assert!(ok, "{out}");
        self.bank
            .wait_profile("vault", "Installed", |p| self.installed(p))
            .await?;
        Ok(self)
    }
}

/// A tenant's RBAC reaches only its own namespace.
#[tokio::test]
async fn t1a_rbac_keeps_a_tenant_in_its_own_namespace() -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let t = Tenants::new(client).await?;
    let (bank, evil) = (&t.bank, &t.evil);
    let (mallory, alice) = (t.mallory.clone(), t.alice.clone());
    let _ = (bank, evil, &mallory, &alice);
    // RBAC: the tenant reaches only its namespace.
    for args in [
        vec!["get", "sp", "-n", &bank.name],
        vec!["create", "-f", "-", "-n", &bank.name],
    ] {
        let (ok, out) = kubectl_as(&mallory, &args, Some(&sp(&bank.name, "x", no_mkdir())));
        assert!(!ok && out.contains("Forbidden"), "{args:?}: {out}");
    }
    Ok(())
}

/// Listeners and filter flags the admin has not allowed are refused at admission.
#[tokio::test]
async fn t1b_privileged_profile_features_are_refused_naming_the_field() -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let t = Tenants::new(client).await?;
    let (bank, evil) = (&t.bank, &t.evil);
    let (mallory, alice) = (t.mallory.clone(), t.alice.clone());
    let _ = (bank, evil, &mallory, &alice);
    // Privileged features are refused at admission, naming the field.
    let listener = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/containerd/containerd.sock",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
    let (ok, out) = apply_as(&mallory, &sp(&evil.name, "notify", listener));
    assert!(!ok, "{out}");
    assert!(
        out.contains("spec.listenerPath: not allowed by this cluster's profile policy"),
        "{out}"
    );
    let spec_allow =
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]});
    let (ok, out) = apply_as(&mallory, &sp(&evil.name, "flags", spec_allow));
    assert!(
        !ok && out.contains("spec.flags: SECCOMP_FILTER_FLAG_SPEC_ALLOW not allowed"),
        "{out}"
    );
    Ok(())
}

/// The API server's schema and the CRD's rules refuse oversized profiles (they hold with
/// the operator down).
#[tokio::test]
async fn t1c_oversized_profiles_are_refused_by_the_api_server() -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let t = Tenants::new(client).await?;
    let (bank, evil) = (&t.bank, &t.evil);
    let (mallory, alice) = (t.mallory.clone(), t.alice.clone());
    let _ = (bank, evil, &mallory, &alice);
    // Size limits: the API server's schema and the CRD's rules (hold with the operator down).
    let wide = json!({"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": vec!["read"; 1100], "action": "SCMP_ACT_ALLOW"}]});
    let (ok, out) = apply_as(&mallory, &sp(&evil.name, "wide", wide));
    assert!(!ok && out.contains("at most 1024 items"), "{out}");
    let many: Vec<serde_json::Value> = (0..5)
        .map(|_| json!({"names": vec!["read"; 1000], "action": "SCMP_ACT_ALLOW"}))
        .collect();
    let (ok, out) = apply_as(
        &mallory,
        &sp(
            &evil.name,
            "many",
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": many}),
        ),
    );
    assert!(
        !ok && out.contains(
            "spec.syscalls: Invalid value: more syscall names in all rules than the limit of 4096"
        ),
        "{out}"
    );
    Ok(())
}

/// A huge invalid profile, a flood of the largest valid ones and more failing profiles than
/// a node lists: bounded messages, small node reports, and the other tenant unaffected.
#[tokio::test]
async fn t1d_a_flood_of_huge_and_failing_profiles_stalls_no_other_tenant() -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let t = Tenants::new(client).await?;
    let (bank, evil) = (&t.bank, &t.evil);
    let (mallory, alice) = (t.mallory.clone(), t.alice.clone());
    let _ = (bank, evil, &mallory, &alice);
    let client = t.client.clone();
    let n = t.n;
    let installed = |p: &SeccompProfile| t.installed(p);
    // A huge invalid profile is accepted and contained: bounded messages everywhere.
    let bad: Vec<String> = (0..4000).map(|i| format!("no_such_call_{i}")).collect();
    let rules: Vec<serde_json::Value> = bad
        .chunks(1000)
        .map(|c| json!({"names": c, "action": "SCMP_ACT_ALLOW"}))
        .collect();
    let (ok, out) = apply_as(
        &mallory,
        &sp(
            &evil.name,
            "invalid",
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules}),
        ),
    );
    assert!(ok, "{out}");
    // A flood of the largest valid profiles (one name repeated up to the limit).
    for i in 0..20 {
        let rules: Vec<serde_json::Value> = (0..4)
            .map(|_| json!({"names": vec!["read"; 1000], "action": "SCMP_ACT_ALLOW"}))
            .collect();
        let (ok, out) = apply_as(
            &mallory,
            &sp(
                &evil.name,
                &format!("flood-{i}"),
                json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules}),
            ),
        );
        assert!(ok, "{out}");
    }
    let p = evil
        .wait_profile("invalid", "Error", |p| phase(p) == "Error")
        .await?;
    let conds = &p.status.as_ref().unwrap().conditions;
    for c in conds {
        assert!(
            c.message.len() <= 1024,
            "{} is {} bytes",
            c.type_,
            c.message.len()
        );
    }
    assert!(
        conds
            .iter()
            .any(|c| c.message.contains("no_such_call_0") && c.message.ends_with(" more")),
        "{conds:?}"
    );
    evil.wait_profile("flood-19", "Installed", installed)
        .await?;

    // More failing profiles than a node lists for one namespace: the node names the namespace
    // instead, and no profile of it counts there ("not confirmed"); other tenants' stay counted.
    let limit = crds::nodestatus::MAX_NOT_INSTALLED_PER_NAMESPACE;
    for i in 0..=limit {
        let (ok, out) = apply_as(
            &mallory,
            &sp(
                &evil.name,
                &format!("junk-{i}"),
                json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["no_such_call"], "action": "SCMP_ACT_ALLOW"}]}),
            ),
        );
        assert!(ok, "{out}");
    }
    let reports: Api<SeccompNodeStatus> = Api::all(client.clone());
    wait_for(
        "every node report names the tenant's namespace as truncated",
        Duration::from_secs(60),
        || async {
            let l = reports.list(&Default::default()).await.ok()?;
            (l.items.len() >= n
                && l.items.iter().all(|r| {
                    r.status.as_ref().is_some_and(|s| {
                        s.truncated_namespaces.contains(&evil.name)
                            && s.not_installed
                                .iter()
                                .filter(|e| e.namespace == evil.name)
                                .count()
                                == limit
                    })
                }))
            .then_some(())
        },
    )
    .await?;
    let p = evil
        .wait_profile("flood-19", "not confirmed", |p| {
            ready_message(p).contains("not confirmed")
        })
        .await?;
    eprintln!(
        "t1: evil/flood-19 once evil's failures overflow: {}",
        ready_message(&p)
    );

    // The victim is unaffected: a new profile installs everywhere, its pods are admitted.
    let (ok, out) = apply_as(&alice, &sp(&bank.name, "vault2", no_mkdir()));
    assert!(ok, "{out}");
    bank.wait_profile("vault2", "Installed", installed).await?;
    let own = format!("operator/{}/vault2.json", bank.name);
    let (ok, out) = create_admitted_as(
        &alice,
        &bank.name,
        &busybox_pod("teller", "mkdir /tmp/x || echo denied", Some(&own)),
    );
    assert!(ok, "{out}");
    let (phase_, logs) = bank.pod_result("teller").await?;
    assert_eq!(phase_, "Succeeded");
    assert!(logs.contains("denied"), "{logs}");
    // Node reports stay small whatever the tenant wrote.
    for s in Api::<SeccompNodeStatus>::all(client.clone())
        .list(&Default::default())
        .await?
    {
        let size = serde_json::to_vec(&s)?.len();
        assert!(size < 256 * 1024, "a node report is {size} bytes");
    }

    // Keep the flood from slowing later tests.
    let _ = Api::<SeccompProfile>::namespaced(client.clone(), &evil.name)
        .delete_collection(&Default::default(), &Default::default())
        .await;
    Ok(())
}

/// Another tenant's profile, in any spelling, at CREATE or by a later UPDATE: refused, and
/// the answer does not say whether it exists.
#[tokio::test]
async fn t1e_every_spelling_of_another_tenants_profile_is_refused() -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let t = Tenants::new(client).await?.with_vault().await?;
    let (bank, evil) = (&t.bank, &t.evil);
    let (mallory, alice) = (t.mallory.clone(), t.alice.clone());
    let _ = (bank, evil, &mallory, &alice);
    // Every spelling of the other tenant's profile is refused, and the answer does not say
    // whether it exists.
    let theirs = format!("./operator/{}/vault.json", bank.name);
    let missing = format!("./operator/{}/nothing.json", bank.name);
    let mut answers = Vec::new();
    for (i, path) in [&theirs, &missing].into_iter().enumerate() {
        let (ok, out) = create_as(
            &mallory,
            &evil.name,
            &pod_with(&format!("steal-{i}"), Some(path), None),
        );
        assert!(!ok, "{out}");
        answers.push(out.replace(path.as_str(), "PATH"));
    }
    for a in &answers {
        assert!(refused_by_admission(a), "{a}");
        for leak in [
            "does not exist",
            "is in Error",
            "not installed",
            "is disabled",
            "being deleted",
        ] {
            assert!(
                !a.contains(leak),
                "the answer tells whether the profile exists: {a}"
            );
        }
    }
    let legacy = format!("localhost/./operator/{}/vault.json", bank.name);
    let (ok, out) = create_as(
        &mallory,
        &evil.name,
        &pod_with("steal-legacy", None, Some(&legacy)),
    );
    assert!(!ok && out.contains("denied the request"), "{out}");

    // An UPDATE that adds the other tenant's profile later is refused too.
    let (ok, out) = create_as(&mallory, &evil.name, &pod_with("plain", None, None));
    assert!(ok, "{out}");
    let (ok, out) = kubectl_as(
        &mallory,
        &[
            "annotate",
            "-n",
            &evil.name,
            "pod",
            "plain",
            &format!("container.seccomp.security.alpha.kubernetes.io/main={legacy}"),
        ],
        None,
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("tenant isolation") || out.contains("install gate"),
        "{out}"
    );
    let pods: Api<Pod> = evil.api();
    let plain = pods.get("plain").await?;
    assert!(
        !plain
            .metadata
            .annotations
            .unwrap_or_default()
            .values()
            .any(|v| v.contains("vault")),
        "the annotation must not have been stored"
    );
    Ok(())
}

/// A node agent's or recorder's credentials cannot write another node's objects.
#[tokio::test]
async fn t1f_node_credentials_cannot_speak_for_another_node() -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let t = Tenants::new(client).await?;
    let (bank, evil) = (&t.bank, &t.evil);
    let (mallory, alice) = (t.mallory.clone(), t.alice.clone());
    let _ = (bank, evil, &mallory, &alice);
    // A node agent's credentials cannot speak for another node: without the pod claims of
    // its bound token (here: impersonated), its writes of node reports are refused.
    let agent = "system:serviceaccount:seccomp-operator:seccomp-node-agent";
    let other = cluster_nodes().last().unwrap().name.clone();
    let (ok, out) = kubectl_as(
        agent,
        &[
            "label",
            "seccompnodestatus",
            &other,
            "--overwrite",
            "forged=yes",
        ],
        None,
    );
    assert!(!ok && out.contains("bound ServiceAccount token"), "{out}");
    // With a real token, bound to the agent pod of the first node as the kubelet's is, the API
    // server names that node: its report may be written, another node's may not.
    let nodes = cluster_nodes();
    let mine = nodes[0].name.clone();
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), "seccomp-operator");
    let agent_pod = pods
        .list(&kube::api::ListParams::default().labels("app.kubernetes.io/name=seccomp-node-agent"))
        .await?
        .items
        .into_iter()
        .find(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(mine.as_str()))
        .expect("an agent pod on the first node");
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(t.client.clone(), "seccomp-operator");
    let request = k8s_openapi::api::authentication::v1::TokenRequest {
        spec: Some(k8s_openapi::api::authentication::v1::TokenRequestSpec {
            bound_object_ref: Some(k8s_openapi::api::authentication::v1::BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: agent_pod.metadata.name.clone(),
                uid: agent_pod.metadata.uid.clone(),
            }),
            expiration_seconds: Some(600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = accounts
        .create_token_request("seccomp-node-agent", &Default::default(), &request)
        .await?
        .status
        .and_then(|s| s.token)
        .expect("a token");
    let as_agent: Api<SeccompNodeStatus> = Api::all(client_with_token(&token).await?);
    let label = |v: Option<&str>| {
        kube::api::Patch::Merge(json!({"metadata": {"labels": {"e2e-probe": v}}}))
    };
    let refused = as_agent
        .patch(&other, &Default::default(), &label(Some("forged")))
        .await
        .expect_err("another node's report");
    assert!(
        refused.to_string().contains(&format!(
            "the node agent of {mine} may write only its own node's objects, not {other}'s"
        )),
        "{refused}"
    );
    as_agent
        .patch(&mine, &Default::default(), &label(Some("own")))
        .await?;
    as_agent
        .patch(&mine, &Default::default(), &label(None))
        .await?;
    // Nor can a recorder's credentials file a report for another node.
    let forged = serde_json::json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "RecordingReport",
        "metadata": {"name": format!("rec.{other}"), "namespace": bank.name,
                     "labels": {"seccomp-operator.dev/recording": "rec", "seccomp-operator.dev/node": other}},
        "spec": {"nodeName": other, "recording": "rec",
                 "containers": [{"containerId": "x", "pod": "p", "container": "c", "final": true, "syscalls": ["ptrace"]}]}});
    let (ok, out) = kubectl_as(
        "system:serviceaccount:seccomp-operator:seccomp-node-recorder",
        &["create", "-f", "-"],
        Some(&forged),
    );
    assert!(!ok && out.contains("bound ServiceAccount token"), "{out}");
    Ok(())
}

/// `kubectl auth can-i` for the operator's, the agents' and a tenant's accounts.
#[tokio::test]
async fn t1g_the_deployed_service_accounts_hold_only_what_they_need() -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let t = Tenants::new(client).await?;
    let (bank, evil) = (&t.bank, &t.evil);
    let (mallory, alice) = (t.mallory.clone(), t.alice.clone());
    let _ = (bank, evil, &mallory, &alice);
    // The deployed service accounts hold only what they need.
    let agent = "system:serviceaccount:seccomp-operator:seccomp-node-agent";
    let op = "system:serviceaccount:seccomp-operator:seccomp-operator";
    let recorder = "system:serviceaccount:seccomp-operator:seccomp-node-recorder";
    for (user, args, want) in [
        (
            op,
            vec![
                "patch",
                "validatingwebhookconfigurations/seccomp-operator-gate",
            ],
            "yes",
        ),
        (
            op,
            vec!["patch", "validatingwebhookconfigurations/someone-elses"],
            "no",
        ),
        (
            op,
            vec!["patch", "mutatingwebhookconfigurations/someone-elses"],
            "no",
        ),
        (op, vec!["get", "secrets", "-n", "kube-system"], "no"),
        (
            mallory.as_str(),
            vec!["create", "seccompprofiles", "-n", &bank.name],
            "no",
        ),
        (mallory.as_str(), vec!["patch", "seccompnodestatuses"], "no"),
        (
            agent,
            vec!["create", "seccompprofiles", "-n", &bank.name],
            "no",
        ),
        (
            agent,
            vec!["patch", "seccompprofiles", "-n", &bank.name],
            "no",
        ),
        (agent, vec!["list", "pods"], "no"),
        (recorder, vec!["patch", "seccompnodestatuses"], "no"),
        // The recorder reports; only the operator writes profiles.
        (
            recorder,
            vec!["create", "seccompprofiles", "-n", &bank.name],
            "no",
        ),
        (
            recorder,
            vec!["patch", "seccompprofiles", "-n", &bank.name],
            "no",
        ),
        (
            recorder,
            vec!["update", "seccompprofiles", "-n", &bank.name],
            "no",
        ),
        (
            recorder,
            vec!["create", "recordingreports", "-n", &bank.name],
            "yes",
        ),
        (
            mallory.as_str(),
            vec!["create", "recordingreports", "-n", &bank.name],
            "no",
        ),
        (
            recorder,
            vec!["list", "secrets", "-n", "seccomp-operator"],
            "no",
        ),
    ] {
        let mut a = vec!["auth", "can-i"];
        a.extend(args.iter().copied());
        let (_, out) = kubectl_as("", &[&a[..], &["--as", user]].concat(), None);
        assert_eq!(
            out.lines().next().unwrap_or_default().trim(),
            want,
            "{user} {args:?}: {out}"
        );
    }
    Ok(())
}

/// The operator may patch pods cluster-wide only to lift its scheduling gate: as its
/// ServiceAccount, changing a pod's image, its labels or another gate is refused by the API
/// server (the ValidatingAdmissionPolicy `seccomp-operator-ungate-fence`); removing its own gate
/// is allowed.
#[tokio::test]
async fn t4_the_operators_pod_patch_right_only_lifts_its_gate() -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let ns = TestNs::new(client, "fence").await?;
    let operator = "system:serviceaccount:seccomp-operator:seccomp-operator";
    let mut pod = pod_with(
        "gated",
        Some(&format!("operator/{}/none.json", ns.name)),
        None,
    );
    pod["spec"]["schedulingGates"] =
        json!([{"name": "example.com/other"}, {"name": crds::SCHEDULING_GATE}]);
    let (ok, out) = create_as("", &ns.name, &pod);
    assert!(ok, "{out}");
    let patch = |ops: serde_json::Value| {
        kubectl_as(
            operator,
            &[
                "patch",
                "-n",
                &ns.name,
                "pod",
                "gated",
                "--type=json",
                "-p",
                &ops.to_string(),
            ],
            None,
        )
    };
    for (what, ops) in [
        (
            "an image",
            json!([{"op": "replace", "path": "/spec/containers/0/image", "value": "localhost/other:1"}]),
        ),
        (
            "a label",
            json!([{"op": "add", "path": "/metadata/labels", "value": {"x": "y"}}]),
        ),
        (
            "another gate",
            json!([{"op": "remove", "path": "/spec/schedulingGates/0"}]),
        ),
    ] {
        let (ok, out) = patch(ops);
        assert!(
            !ok && out.contains("seccomp-operator-ungate-fence")
                && out.contains("seccomp-operator may only remove its"),
            "changing {what} as the operator: {out}"
        );
    }
    let (ok, out) = patch(json!([
        {"op": "test", "path": "/spec/schedulingGates/1/name", "value": crds::SCHEDULING_GATE},
        {"op": "remove", "path": "/spec/schedulingGates/1"}
    ]));
    assert!(ok, "lifting its own gate: {out}");
    let pods: Api<Pod> = ns.api();
    let p = pods.get("gated").await?;
    let gates: Vec<String> = p
        .spec
        .and_then(|s| s.scheduling_gates)
        .unwrap_or_default()
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(gates, vec!["example.com/other".to_string()]);
    assert_eq!(
        p.metadata.labels.unwrap_or_default().get("x"),
        None,
        "a refused patch left a trace"
    );
    Ok(())
}
