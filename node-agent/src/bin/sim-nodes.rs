//! Simulated nodes for the scale benchmark (`hack/bench-scale.sh`), in the spirit of
//! kubemark's hollow nodes. For each of `--nodes` names it registers a Node (tainted so no pod
//! lands there, kept Ready by renewing its `kube-node-lease` Lease) and runs the agent's own
//! code for it: an [`Installer`] writing real files under `<root>/<node>` (a tmpfs), the
//! install loop with its status writer (`SeccompNodeStatus`), and the heartbeat Lease. The
//! simulated nodes share one SeccompProfile watch (a real node has its own); everything after
//! the watch is per node, as on a real node.
//!
//! Measurement only: never deployed. It writes a progress file (JSON) every 250 ms for the
//! benchmark driver: the fewest profiles installed on any simulated node, and this process's
//! peak RSS.

use anyhow::Context;
use clap::Parser;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use node_agent::{health::Health, install_loop, metrics::Metrics};
use profile_installer::{paths::ProfileRoot, Installer};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The label every simulated Node carries (the benchmark deletes them by it).
const SIMULATED: &str = "seccomp-operator.dev/simulated";
/// Field manager of the simulator's writes to Nodes and their Leases.
const MANAGER: &str = crds::apply::SIM_NODES;

#[derive(Parser)]
#[command(about = "Simulated nodes running the node agent's install loop (benchmarks only)")]
struct Args {
    /// How many nodes to simulate.
    #[arg(long)]
    nodes: usize,
    /// Node names are this prefix and a three-digit number from 1.
    #[arg(long, default_value = "sim-node-")]
    prefix: String,
    /// Each node's kubelet root is `<root>/<node>` (a tmpfs, mounted by the caller).
    #[arg(long)]
    root: PathBuf,
    /// The operator's namespace (where heartbeat Leases live).
    #[arg(long, default_value = "seccomp-operator")]
    namespace: String,
    /// Where the progress file is written.
    #[arg(long)]
    progress: PathBuf,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API (KUBECONFIG)")?;
    let names: Vec<String> = (1..=args.nodes)
        .map(|i| format!("{}{i:03}", args.prefix))
        .collect();
    for n in &names {
        register(&client, n)
            .await
            .with_context(|| format!("registering Node {n}"))?;
    }
    tokio::spawn(keep_ready(client.clone(), names.clone()));

    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let (profiles, _watch) = install_loop::watch_profiles(client.clone(), None);
    // Waited for once, here: kube's store wakes only the last of several concurrent waiters;
    // once ready, every loop's own wait returns at once.
    profiles
        .store
        .wait_until_ready()
        .await
        .context("the SeccompProfile watch ended before its first list")?;
    let mut meters = Vec::new();
    // The simulated nodes share this machine's cores: as many syncs at once as cores (99
    // threads syncing at once would starve the one watch every node depends on).
    let cores = Arc::new(tokio::sync::Semaphore::new(
        std::thread::available_parallelism().map_or(2, |n| n.get()),
    ));
    for n in &names {
        let root = ProfileRoot::new(&args.root.join(n));
        let installer = Installer::new(root).with_context(|| format!("the kubelet root of {n}"))?;
        let metrics = Arc::new(Metrics::new());
        meters.push(metrics.clone());
        let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(node_agent::heartbeat::run(
            client.clone(),
            args.namespace.clone(),
            n.clone(),
            synced_rx,
            stop.clone(),
        ));
        let (client, n, profiles, stop, cores) = (
            client.clone(),
            n.clone(),
            profiles.clone(),
            stop.clone(),
            cores.clone(),
        );
        tokio::spawn(async move {
            let health = Arc::new(Health::new(Duration::from_secs(3600)));
            // A simulated node has no kubelet to ask: its status says nothing of one.
            let (_, kubelet) = tokio::sync::watch::channel(None);
            if let Err(e) = install_loop::sync_loop(
                client,
                n.clone(),
                installer,
                profiles,
                Some(cores),
                metrics,
                health,
                synced_tx,
                kubelet,
                stop,
            )
            .await
            {
                tracing::error!(node = %n, error = %node_agent::error_chain(&e), "install loop ended");
            }
        });
    }
    eprintln!("seccomp-sim-nodes: {} nodes running", names.len());
    // On its own thread: the runtime's workers are busy syncing, and a late progress file
    // would make the benchmark's times longer than the nodes'.
    let count = names.len();
    std::thread::spawn(move || loop {
        let files_min = meters.iter().map(|m| m.installed()).min().unwrap_or(0);
        let progress = serde_json::json!({
            "nodes": count,
            "files_min": files_min,
            "rss_peak_kib": peak_rss_kib(),
        });
        let tmp = args.progress.with_extension("tmp");
        if let Err(e) = std::fs::write(&tmp, progress.to_string())
            .and_then(|()| std::fs::rename(&tmp, &args.progress))
        {
            tracing::warn!(error = %e, "writing the progress file failed");
        }
        std::thread::sleep(Duration::from_millis(100));
    });
    let _ = tokio::signal::ctrl_c().await;
    Ok(())
}

/// Create (or update) the Node `name`: Ready, tainted so that no pod is scheduled there.
async fn register(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let node = serde_json::json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            SIMULATED: "true",
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
        }},
        "spec": {"taints": [{"key": SIMULATED, "value": "true", "effect": "NoSchedule"}]},
    });
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&node),
    )
    .await?;
    set_ready(&api, name).await?;
    renew(client, name).await?;
    Ok(())
}

/// The Node's status as a kubelet would post it: Ready, with capacity.
async fn set_ready(api: &Api<Node>, name: &str) -> anyhow::Result<()> {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = serde_json::json!({"status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "simulated node (seccomp-operator scale benchmark)",
            "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "capacity": {"cpu": "2", "memory": "8Gi", "pods": "110"},
        "allocatable": {"cpu": "2", "memory": "8Gi", "pods": "110"},
        "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux",
            "kubeletVersion": "v1.37.2", "kubeProxyVersion": "v1.37.2",
            "containerRuntimeVersion": "containerd://2.2.9", "osImage": "simulated",
            "kernelVersion": "simulated", "machineID": "", "systemUUID": "", "bootID": ""},
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// Renew the node's Lease in `kube-node-lease` (what keeps a node Ready for the node
/// lifecycle controller).
async fn renew(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = Lease {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some([(SIMULATED.to_owned(), "true".to_owned())].into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.to_owned()),
            lease_duration_seconds: Some(40),
            renew_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
            ..Default::default()
        }),
    };
    let mut v = serde_json::to_value(&lease)?;
    v["apiVersion"] = "coordination.k8s.io/v1".into();
    v["kind"] = "Lease".into();
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&v),
    )
    .await?;
    Ok(())
}

/// Every 10 s renew each node's Lease; every minute post its Ready status again.
async fn keep_ready(client: Client, names: Vec<String>) {
    let api: Api<Node> = Api::all(client.clone());
    for round in 0u64.. {
        tokio::time::sleep(Duration::from_secs(10)).await;
        for n in &names {
            if let Err(e) = renew(&client, n).await {
                tracing::warn!(node = %n, error = %format_args!("{e:#}"), "renewing the node Lease failed");
            }
            if round % 6 == 5 {
                if let Err(e) = set_ready(&api, n).await {
                    tracing::warn!(node = %n, error = %format_args!("{e:#}"), "posting the node status failed");
                }
            }
        }
    }
}

/// This process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
