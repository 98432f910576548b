//! Helpers for the end-to-end tests: a client for the local cluster, per-test namespaces,
//! waiting with timeouts, and failure output that shows what the cluster saw.
#![forbid(unsafe_code)]

use anyhow::{bail, Context};
use crds::SeccompProfile;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{LogParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The kubeconfig of the local cluster, when one is up.
pub fn kubeconfig() -> Option<PathBuf> {
    let p = std::env::var_os("KUBECONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".local-cluster/kubeconfig"));
    p.exists().then_some(p)
}

/// A client for the local cluster, or `None` (the test prints SKIP) when there is none.
/// Under `CI=true` a missing cluster is a failure, unless `SECCOMP_E2E=skip`.
pub async fn client() -> Option<Client> {
    let Some(path) = kubeconfig() else {
        if std::env::var_os("CI").is_some() && std::env::var("SECCOMP_E2E").as_deref() != Ok("skip")
        {
            panic!("CI must run the e2e tests: no cluster (hack/cluster-up.sh, hack/deploy.sh)");
        }
        eprintln!("SKIP: no local cluster (run hack/cluster-up.sh and hack/deploy.sh)");
        return None;
    };
    let cfg = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&path).expect("kubeconfig"),
        &Default::default(),
    )
    .await
    .expect("kubeconfig usable");
    Some(Client::try_from(cfg).expect("client"))
}

/// A client for the local cluster that authenticates with `token` alone (the kubeconfig's
/// server and CA, none of its credentials): to act with a real ServiceAccount token.
pub async fn client_with_token(token: &str) -> anyhow::Result<Client> {
    let path = kubeconfig().context("no local cluster")?;
    let mut cfg = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&path)?,
        &Default::default(),
    )
    .await?;
    cfg.auth_info = kube::config::AuthInfo {
        token: Some(token.to_owned().into()),
        ..Default::default()
    };
    Ok(Client::try_from(cfg)?)
}

/// Poll `check` until it returns `Some`, or fail after `timeout` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A namespace for one test, deleted when dropped.
pub struct TestNs {
    /// The client.
    pub client: Client,
    /// The namespace's name.
    pub name: String,
}

impl TestNs {
    /// Create `e2e-<tag>-<suffix>`.
    pub async fn new(client: Client, tag: &str) -> anyhow::Result<Self> {
        // Unique within the process (one test may create several namespaces of one tag) and
        // across runs of it.
        static CREATED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_micros())
            .unwrap_or_default();
        let suffix = format!("{:x}{n:x}", std::process::id() ^ clock);
        let name = format!("e2e-{tag}-{suffix}");
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        // Pods can be created once the namespace's default ServiceAccount exists (its token
        // is projected into each pod: no token Secret since 1.24).
        let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(client.clone(), &name);
        wait_for(
            "the default ServiceAccount",
            Duration::from_secs(60),
            || async { sa.get_opt("default").await.ok().flatten().map(|_| ()) },
        )
        .await?;
        Ok(TestNs { client, name })
    }

    /// Label the namespace so that the binding webhook (ProfileBindings, Logs recordings)
    /// sees its pods.
    pub async fn enable_binding(&self) -> anyhow::Result<()> {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        api.patch(
            &self.name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                &serde_json::json!({"metadata": {"labels": {crds::LABEL_BINDING: "enabled"}}}),
            ),
        )
        .await?;
        Ok(())
    }

    /// Typed API in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Server-side apply a manifest (JSON) in this namespace.
    pub async fn apply<K>(&self, obj: serde_json::Value) -> anyhow::Result<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let name = obj["metadata"]["name"]
            .as_str()
            .context("metadata.name")?
            .to_owned();
        let api: Api<K> = self.api();
        Ok(api
            .patch(
                &name,
                &PatchParams::apply("e2e").force(),
                &Patch::Apply(&obj),
            )
            .await?)
    }

    /// Wait (up to 60 s) for a profile to satisfy `pred`.
    pub async fn wait_profile(
        &self,
        name: &str,
        what: &str,
        pred: impl Fn(&SeccompProfile) -> bool,
    ) -> anyhow::Result<SeccompProfile> {
        self.wait_profile_for(name, what, Duration::from_secs(60), pred)
            .await
    }

    /// Wait up to `timeout` for a profile to satisfy `pred`.
    pub async fn wait_profile_for(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&SeccompProfile) -> bool,
    ) -> anyhow::Result<SeccompProfile> {
        let api: Api<SeccompProfile> = self.api();
        let r = wait_for(what, timeout, || async {
            api.get_opt(name).await.ok().flatten().filter(|p| pred(p))
        })
        .await;
        if r.is_err() {
            self.dump().await;
        }
        r
    }

    /// Wait until profile `name` is Installed on every node of the cluster (n/n).
    pub async fn wait_installed_everywhere(&self, name: &str) -> anyhow::Result<SeccompProfile> {
        let n = cluster_nodes().len();
        let all = format!("{n}/{n}");
        self.wait_profile(name, &format!("Installed {all}"), |p| {
            phase(p) == "Installed"
                && p.status.as_ref().and_then(|s| s.installed_nodes.as_deref())
                    == Some(all.as_str())
        })
        .await
    }

    /// The logs of pod `name` once it shows that it runs under a seccomp filter (a workload
    /// that prints `grep Seccomp: /proc/1/status`).
    pub async fn enforced_logs(&self, name: &str) -> anyhow::Result<String> {
        let pods: Api<Pod> = self.api();
        wait_for(
            "the enforced workload's output",
            Duration::from_secs(30),
            || async {
                let l = pods.logs(name, &Default::default()).await.ok()?;
                l.contains("Seccomp:\t2").then_some(l)
            },
        )
        .await
    }

    /// Wait for a pod to end; its phase and logs.
    pub async fn run_pod(&self, pod: serde_json::Value) -> anyhow::Result<(String, String)> {
        let name = pod["metadata"]["name"]
            .as_str()
            .context("metadata.name")?
            .to_owned();
        let api: Api<Pod> = self.api();
        let pod: Pod = serde_json::from_value(pod)?;
        // The gate answers from the operator's watch cache, which may trail a status the test
        // just read from the API server by a moment: a refusal for "not installed on every
        // node yet" is retried for a few seconds, as a controller creating the pod would.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match api.create(&PostParams::default(), &pod).await {
                Ok(_) => break,
                Err(kube::Error::Api(e))
                    if e.message.contains("is not installed on every node yet")
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.pod_result(&name).await
    }

    /// Phase and logs of a pod once it has ended.
    pub async fn pod_result(&self, name: &str) -> anyhow::Result<(String, String)> {
        let api: Api<Pod> = self.api();
        let phase = wait_for(
            &format!("pod {name} to end"),
            Duration::from_secs(90),
            || async {
                let p = api.get_opt(name).await.ok().flatten()?;
                let phase = p.status.as_ref()?.phase.clone()?;
                matches!(phase.as_str(), "Succeeded" | "Failed").then_some(phase)
            },
        )
        .await;
        let phase = match phase {
            Ok(p) => p,
            Err(e) => {
                self.dump().await;
                return Err(e);
            }
        };
        let logs = api
            .logs(name, &LogParams::default())
            .await
            .unwrap_or_default();
        Ok((phase, logs))
    }

    /// Print what the cluster has in this namespace, and the agent's recent logs.
    pub async fn dump(&self) {
        let kubectl = |args: &[&str]| kubectl_output(None, args, None).ok();
        for args in [
            vec!["-n", &self.name, "get", "sp,pods,pb,prec", "-o", "wide"],
            vec!["-n", &self.name, "describe", "sp,pods"],
            vec!["get", "nodes,seccompnodestatuses"],
            vec!["-n", "seccomp-operator", "get", "pods,leases", "-o", "wide"],
        ] {
            if let Some(o) = kubectl(&args) {
                eprintln!(
                    "--- kubectl {}\n{}{}",
                    args.join(" "),
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
        // Logs pod by pod: one unreachable node must not hide the others'.
        let pods = kubectl(&["-n", "seccomp-operator", "get", "pods", "-o", "name"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for pod in pods.lines() {
            if let Some(o) = kubectl(&["-n", "seccomp-operator", "logs", "--tail=120", pod]) {
                eprintln!(
                    "--- logs {pod}\n{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        // Fire and forget, through kubectl: the test's runtime may be shutting down, and
        // blocking it here would deadlock its own client.
        let _ = kubectl_output(
            None,
            &[
                "delete",
                "namespace",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
            ],
            None,
        );
    }
}

/// Run the cluster's kubectl with the test kubeconfig, as `user` (`--as`) when given, with
/// `stdin` as its input; what it printed and how it ended.
pub fn kubectl_output(
    user: Option<&str>,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> std::io::Result<std::process::Output> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(kubectl_path());
    cmd.arg("--kubeconfig")
        .arg(kubeconfig().unwrap_or_default());
    if let Some(user) = user {
        cmd.arg(format!("--as={user}"));
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut input = child.stdin.take();
    if let (Some(pipe), Some(bytes)) = (input.as_mut(), stdin) {
        // kubectl may exit before reading its input (bad arguments, no server): its exit
        // status and stderr then say why, not a broken pipe.
        match pipe.write_all(bytes) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e),
            _ => {}
        }
    }
    drop(input);
    child.wait_with_output()
}

/// `kubectl ARGS`: its standard output, or an error with its stderr.
pub fn kubectl(args: &[&str]) -> anyhow::Result<String> {
    let out = kubectl_output(None, args, None)?;
    anyhow::ensure!(
        out.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The cluster's kubectl (built by hack/k8s-build.sh): `$KUBECTL`, which hack/test.sh sets to
/// the version the cluster runs, or else `kubectl` on PATH.
pub fn kubectl_path() -> PathBuf {
    std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

/// A node of the local cluster: its name and its kubelet root as seen from this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    /// The Node's name.
    pub name: String,
    /// Its kubelet root directory, on this machine.
    pub kubelet_root: PathBuf,
}

impl ClusterNode {
    /// The file a profile is installed at on this node.
    pub fn profile_file(&self, ns: &str, name: &str) -> PathBuf {
        self.kubelet_root
            .join("seccomp/operator")
            .join(ns)
            .join(format!("{name}.json"))
    }
}

/// Run `hack/cluster-ctl.sh` with `args`; its standard output, or an error with its stderr.
pub fn cluster_ctl(args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new(repo().join("hack/cluster-ctl.sh"))
        .args(args)
        .output()
        .context("running hack/cluster-ctl.sh")?;
    if !out.status.success() {
        bail!(
            "hack/cluster-ctl.sh {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A node stopped with `hack/cluster-ctl.sh stop node`; started again when dropped, so a
/// journey that fails while its node is down does not leave the next journeys a node short.
#[must_use = "the node starts again when this is dropped"]
pub struct StoppedNode {
    name: String,
    started: bool,
}

impl StoppedNode {
    /// Stop `name`.
    pub fn stop(name: &str) -> anyhow::Result<Self> {
        cluster_ctl(&["stop", "node", name])?;
        Ok(StoppedNode {
            name: name.to_owned(),
            started: false,
        })
    }

    /// Start it again now (and report whether that worked).
    pub fn start(mut self) -> anyhow::Result<()> {
        self.started = true;
        cluster_ctl(&["start", "node", &self.name]).map(|_| ())
    }
}

impl Drop for StoppedNode {
    fn drop(&mut self) {
        if !self.started {
            eprintln!("starting node {} again after a failure", self.name);
            if let Err(e) = cluster_ctl(&["start", "node", &self.name]) {
                eprintln!("could not start node {}: {e}", self.name);
            }
        }
    }
}

/// The cluster's nodes now (`hack/cluster-ctl.sh nodes`), node 1 (this machine) first.
pub fn cluster_nodes() -> Vec<ClusterNode> {
    let out = cluster_ctl(&["nodes"]).expect("hack/cluster-ctl.sh nodes");
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, r)| ClusterNode {
            name: n.to_owned(),
            kubelet_root: PathBuf::from(r.trim()),
        })
        .collect()
}

/// Node 1: this machine. Journeys that look at its files, its agent or its kernel log pin
/// their pods here.
pub fn first_node() -> String {
    static FIRST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FIRST.get_or_init(|| cluster_nodes().remove(0).name).clone()
}

/// Pin a pod (or a pod template's spec holder) to `node` through the scheduler (a
/// nodeSelector, so taints still apply).
pub fn pin(pod_spec: &mut serde_json::Value, node: &str) {
    pod_spec["nodeSelector"] = serde_json::json!({"kubernetes.io/hostname": node});
}

/// A busybox pod running `script` under `profile` (a localhostProfile value), or none; on
/// node 1.
pub fn busybox_pod(name: &str, script: &str, profile: Option<&str>) -> serde_json::Value {
    let mut pod = busybox_pod_anywhere(name, script, profile);
    pin(&mut pod["spec"], &first_node());
    pod
}

/// A busybox pod as [`busybox_pod`], wherever the scheduler puts it.
pub fn busybox_pod_anywhere(name: &str, script: &str, profile: Option<&str>) -> serde_json::Value {
    let mut c = serde_json::json!({
        "name": "main", "image": "localhost/busybox:1", "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", script]
    });
    if let Some(p) = profile {
        c["securityContext"] =
            serde_json::json!({"seccompProfile": {"type": "Localhost", "localhostProfile": p}});
    }
    serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [c]}})
}

/// A SeccompProfile manifest (JSON) called `name` with `spec`, for [`TestNs::apply`].
pub fn sp(name: &str, spec: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
        "metadata": {"name": name}, "spec": spec})
}

/// A profile spec that allows everything but creating directories (EPERM).
pub fn no_mkdir() -> serde_json::Value {
    serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]})
}

/// Scale the Deployment `name` (pods labelled `app=<name>`) to `replicas`, and wait until
/// exactly that many of its pods run.
pub async fn scale(ns: &TestNs, name: &str, replicas: i32) -> anyhow::Result<()> {
    let api: Api<k8s_openapi::api::apps::v1::Deployment> = ns.api();
    api.patch(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&serde_json::json!({"spec": {"replicas": replicas}})),
    )
    .await?;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = ns.api();
    let want = replicas as usize;
    wait_for(
        &format!("{want} running pod(s) of {name}"),
        Duration::from_secs(90),
        || async {
            let list = pods
                .list(&kube::api::ListParams::default().labels(&format!("app={name}")))
                .await
                .ok()?;
            let running = list
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            (list.items.len() == want && running == want).then_some(())
        },
    )
    .await
}

/// The syscalls a profile lets run: its `SCMP_ACT_ALLOW` rules and the ENOSYS answers a
/// recorded profile gives (clone3).
pub fn allowed_names(p: &SeccompProfile) -> Vec<String> {
    p.spec
        .document
        .syscalls
        .iter()
        .filter(|r| {
            r.action == seccomp_profile::Action::Allow
                || r.errno_ret == Some(seccomp_profile::args::ENOSYS)
        })
        .flat_map(|r| r.names.iter().cloned())
        .collect()
}

/// The bytes a node agent writes for a resolved document under the shipped policy
/// (`config/manager/policy.yaml`: REPORT_DENIALS on, so a document without flags of its own gets
/// `SECCOMP_FILTER_FLAG_LOG`), and their hash.
pub fn installed_rendering(doc: seccomp_profile::SeccompDocument) -> seccomp_profile::Rendered {
    let policy = seccomp_profile::Policy {
        report_denials: true,
        ..seccomp_profile::Policy::default()
    };
    policy
        .installed(None, doc)
        .render(seccomp_profile::Arch::native())
}

/// How long complain profiles must run clean before `ReadyToEnforce` on the local cluster
/// (`COMPLAIN_READY_AFTER` in config/local).
pub const COMPLAIN_READY_AFTER: Duration = Duration::from_secs(15);

/// Node 1's kubelet root.
pub const KUBELET_ROOT: &str = "/var/lib/kubelet";

/// The file a profile is installed at on node 1.
pub fn profile_file(ns: &str, name: &str) -> PathBuf {
    PathBuf::from(KUBELET_ROOT)
        .join("seccomp/operator")
        .join(ns)
        .join(format!("{name}.json"))
}

/// The node agent pod on node 1.
pub async fn agent_pod(client: &Client) -> anyhow::Result<Pod> {
    agent_pod_on(client, &first_node()).await
}

/// The node agent pod on `node`.
pub async fn agent_pod_on(client: &Client, node: &str) -> anyhow::Result<Pod> {
    daemon_pod_on(client, "seccomp-node-agent", node).await
}

/// The node recorder pod on `node`.
pub async fn recorder_pod_on(client: &Client, node: &str) -> anyhow::Result<Pod> {
    daemon_pod_on(client, "seccomp-node-recorder", node).await
}

/// The live pod of the DaemonSet `app` (its `app.kubernetes.io/name`) on `node`.
async fn daemon_pod_on(client: &Client, app: &str, node: &str) -> anyhow::Result<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "seccomp-operator");
    let pods = api
        .list(&kube::api::ListParams::default().labels(&format!("app.kubernetes.io/name={app}")))
        .await?;
    pods.items
        .into_iter()
        .find(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
        })
        .with_context(|| format!("no {app} pod on {node}"))
}

/// The port of the node recorder's /metrics on its node's address (host network).
pub const RECORDER_METRICS_PORT: u16 = 8091;

/// The node recorder's /metrics on `node` (its InternalIP; this machine's loopback for
/// node 1).
pub async fn recorder_metrics(client: &Client, node: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let ip = if node == first_node() {
        "127.0.0.1".to_owned()
    } else {
        let n = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
            .get(node)
            .await?;
        n.status
            .and_then(|s| s.addresses)
            .into_iter()
            .flatten()
            .find(|a| a.type_ == "InternalIP")
            .map(|a| a.address)
            .with_context(|| format!("node {node} has no InternalIP"))?
    };
    let mut c = std::net::TcpStream::connect((ip.as_str(), RECORDER_METRICS_PORT))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    c.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut body = String::new();
    c.read_to_string(&mut body)?;
    Ok(body)
}

/// The value of a metric without labels in a text exposition, if present.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Whether the eBPF recorder is loaded on `node` (its recorder's metric).
pub async fn recorder_loaded(client: &Client, node: &str) -> Option<bool> {
    let m = recorder_metrics(client, node).await.ok()?;
    metric_value(&m, "seccomp_agent_recorder_loaded").map(|v| v > 0.0)
}

/// Whether a pod is Ready.
pub fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The sum of a counter of node 1's recorder over its series whose labels include every pair of
/// `labels` (0 when the recorder does not answer).
pub async fn recorder_counter_sum(client: &Client, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let text = recorder_metrics(client, &first_node())
        .await
        .unwrap_or_default();
    let prefix = format!("{metric}{{");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Namespace `ns`'s line in the operator's confinement report (the ConfigMap
/// `seccomp-operator-confinement`).
pub fn confinement_report_line(ns: &str) -> anyhow::Result<String> {
    kubectl(&[
        "-n",
        "seccomp-operator",
        "get",
        "configmap",
        "seccomp-operator-confinement",
        "-o",
        &format!("jsonpath={{.data.{ns}}}"),
    ])
}

/// A profile's condition of type `type_`, if it has one.
pub fn condition<'a>(
    p: &'a SeccompProfile,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    p.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// The message of a profile's Ready condition, or "".
pub fn ready_message(p: &SeccompProfile) -> String {
    condition(p, "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// Phase of a profile, as a string.
pub fn phase(p: &SeccompProfile) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.phase)
        .map(|ph| format!("{ph:?}"))
        .unwrap_or_default()
}

/// `<name>` of an object.
pub fn name_of<K: ResourceExt>(o: &K) -> String {
    o.name_any()
}

/// Host PIDs of the processes in `pod`'s cgroups on this machine (any node's: extra nodes'
/// cgroups live under this machine's hierarchy too).
pub fn host_pids_of(pod: &Pod) -> Vec<i32> {
    let Some(uid) = pod.metadata.uid.as_deref() else {
        return Vec::new();
    };
    let (plain, systemd) = (
        format!("pod{uid}/"),
        format!("pod{}", uid.replace('-', "_")),
    );
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cg) = std::fs::read_to_string(e.path().join("cgroup")) else {
            continue;
        };
        if cg.contains(&plain) || cg.contains(&systemd) {
            out.push(pid);
        }
    }
    out
}

/// Whether an API error says admission refused the request: a webhook ("admission webhook
/// \"...\" denied the request") or a ValidatingAdmissionPolicy ("ValidatingAdmissionPolicy
/// '...' with binding '...' denied request").
pub fn refused_by_admission(message: &str) -> bool {
    message.contains("denied the request")
        || (message.contains("ValidatingAdmissionPolicy") && message.contains("denied request"))
}

/// Whether the pod waits at the operator's scheduling gate: the gate is in its spec and the
/// scheduler reports it `SchedulingGated`.
pub fn is_gated(p: &Pod) -> bool {
    crds::has_scheduling_gate(p)
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter().any(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("SchedulingGated")
                })
            })
}

/// When the pod was scheduled (its `PodScheduled=True` transition).
pub fn scheduled_at(p: &Pod) -> Option<k8s_openapi::jiff::Timestamp> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "True")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// When the profile became Installed (its `Ready=True` transition).
pub fn installed_at(p: &SeccompProfile) -> Option<k8s_openapi::jiff::Timestamp> {
    p.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.0)
}

/// The notes of the operator's `WaitingForProfile` Events on a pod of `ns`.
pub async fn waiting_for_profile_notes(ns: &TestNs, pod: &str) -> Vec<String> {
    let api: Api<k8s_openapi::api::events::v1::Event> = ns.api();
    api.list(&kube::api::ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some(crds::REASON_WAITING_FOR_PROFILE)
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pod)
        })
        .filter_map(|e| e.note)
        .collect()
}

/// Whether the cluster puts the scheduling gate on pods in the API server (the
/// MutatingAdmissionPolicy of `config/gate-policy`, Kubernetes 1.36+) rather than through the
/// operator's mutating webhook (`config/gate-webhook`).
pub fn gate_added_by_api_server() -> bool {
    kubectl(&[
        "get",
        "mutatingadmissionpolicy",
        "seccomp-operator-profile-gate",
        "-o",
        "name",
    ])
    .is_ok()
}
