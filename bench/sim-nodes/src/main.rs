//! Simulated nodes for the scale benchmark (`hack/bench-scale.sh`), in the spirit of
//! kubemark's hollow nodes. For each of `--nodes` names it registers a Node (tainted so no pod
//! lands there, kept Ready by renewing its `kube-node-lease` Lease: [`nodes`]) and runs the
//! agent's own code for it, from the `node-agent` library: an [`Installer`] writing real files
//! under `<root>/<node>` (a tmpfs), the install loop ([`install_loop::SyncLoop`]) with its
//! status writer (`SeccompNodeStatus`), and the heartbeat Lease. The simulated nodes share one
//! SeccompProfile watch (a real node has its own) and this machine's cores ([`cores`]);
//! everything after the watch is per node, as on a real node.
//!
//! Measurement only: never deployed. It writes a progress file (JSON) every 100 ms for the
//! benchmark driver: the fewest profiles installed on any simulated node, and this process's
//! peak RSS.
#![forbid(unsafe_code)]

mod cores;
mod nodes;

use anyhow::Context;
use clap::Parser;
use kube::Client;
use node_agent::{health::Health, install_loop, metrics::Metrics};
use profile_installer::{paths::ProfileRoot, Installer};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
    let names = nodes::names(&args.prefix, args.nodes);
    for n in &names {
        nodes::register(&client, n)
            .await
            .with_context(|| format!("registering Node {n}"))?;
    }
    tokio::spawn(nodes::keep_ready(client.clone(), names.clone()));

    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    // The shared watch's health is nobody's readiness: no simulated node serves /readyz.
    let (profiles, _watch) =
        install_loop::watch_profiles(client.clone(), Arc::new(Health::default()));
    // Waited for once, here, before any node starts: a watch that never lists ends the
    // simulator with that error rather than each node's loop with its own.
    profiles
        .store
        .wait_until_ready()
        .await
        .context("the SeccompProfile watch ended before its first list")?;
    let mut meters = Vec::new();
    // The simulated nodes share this machine's cores: as many syncs at once as cores (99
    // threads syncing at once would starve the one watch every node depends on).
    let cores =
        cores::SharedCores::new(std::thread::available_parallelism().map_or(2, |n| n.get()));
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
        // A simulated node has no kubelet to ask: its status says nothing of one.
        let (_, kubelet) = tokio::sync::watch::channel(None);
        let node = install_loop::SyncLoop {
            client: client.clone(),
            node_name: n.clone(),
            installer,
            profiles: profiles.clone(),
            metrics,
            health: Arc::new(Health::new(Duration::from_secs(3600))),
            synced: synced_tx,
            kubelet,
            shutdown: stop.clone(),
            hooks: cores.clone(),
        };
        let n = n.clone();
        tokio::spawn(async move {
            if let Err(e) = node.run().await {
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

/// This process's peak resident set (VmHWM), in KiB; 0 when unknown.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| vm_hwm_kib(&s))
        .unwrap_or(0)
}

/// The `VmHWM` of a `/proc/<pid>/status`, in KiB.
fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_rss_is_read_from_vm_hwm() {
        let status = "Name:\tseccomp-sim-nod\nVmPeak:\t  900000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t  100000 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(123456));
        assert_eq!(vm_hwm_kib("Name:\tx\n"), None);
        assert_eq!(vm_hwm_kib("VmHWM:\tlots kB\n"), None);
        // This process's own, on Linux.
        assert!(peak_rss_kib() > 0);
    }

    #[test]
    fn the_flags_are_those_the_benchmark_passes() {
        let args = Args::try_parse_from([
            "seccomp-sim-nodes",
            "--nodes",
            "99",
            "--root",
            "/run/x/roots",
            "--progress",
            "/run/x/progress.json",
        ])
        .unwrap();
        assert_eq!(args.nodes, 99);
        assert_eq!(args.prefix, "sim-node-");
        assert_eq!(args.namespace, "seccomp-operator");
        assert_eq!(args.root, PathBuf::from("/run/x/roots"));
        assert_eq!(args.progress, PathBuf::from("/run/x/progress.json"));
        assert!(Args::try_parse_from(["seccomp-sim-nodes", "--nodes", "1"]).is_err());
    }
}
