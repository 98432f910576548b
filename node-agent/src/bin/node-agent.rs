//! `node-agent`: the DaemonSet binary. Installs every SeccompProfile on its node
//! (`--install`, the unprivileged `seccomp-node-agent`) and records containers for
//! ProfileRecordings (`--record`, the `seccomp-node-recorder` with the capabilities eBPF and
//! audit need). Both default to on, for a single process outside Kubernetes.

use anyhow::Context;
use clap::Parser;
use node_agent::install_loop;
use node_agent::metrics::Metrics;
use profile_installer::{paths::ProfileRoot, Installer};
use seccomp_profile::builtin::OciRuntime;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Installs seccomp-operator profiles on this node as Localhost seccomp profiles.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Name of this node (from the downward API).
    #[arg(long, env = "NODE_NAME")]
    node_name: String,
    /// The kubelet's root directory; profiles go to <root>/seccomp/operator/.
    #[arg(long, env = "KUBELET_ROOT", default_value = crds::DEFAULT_KUBELET_ROOT)]
    kubelet_root: PathBuf,
    /// The operator's namespace: the agent's heartbeat Lease lives there.
    #[arg(long, env = "POD_NAMESPACE", default_value = "seccomp-operator")]
    namespace: String,
    /// Address for /healthz, /readyz and /metrics.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Install profiles on this node, report them and renew the node's heartbeat (the
    /// unprivileged `seccomp-node-agent` DaemonSet).
    #[arg(long, env = "INSTALL", default_value_t = true, action = clap::ArgAction::Set)]
    install: bool,
    /// Record containers for ProfileRecordings (loads the eBPF recorder; the
    /// `seccomp-node-recorder` DaemonSet, with the capabilities that needs).
    #[arg(long, env = "RECORD", default_value_t = true, action = clap::ArgAction::Set)]
    record: bool,
    /// Where the recorder pins its maps and links (a bpffs directory), so that recordings
    /// survive an agent restart. `none` keeps them in the process.
    #[arg(
        long,
        env = "BPF_PIN_DIR",
        default_value = "/sys/fs/bpf/seccomp-operator"
    )]
    bpf_pin_dir: String,
    /// The OCI runtime of this node's containers: what its init calls after installing the
    /// filter goes into every recorded profile.
    #[arg(long, env = "OCI_RUNTIME", value_enum, default_value = "runc")]
    oci_runtime: Runtime,
    /// The profile policy (the operator is given the same).
    #[command(flatten)]
    policy: seccomp_profile::PolicyArgs,
    /// How long every sync may fail to write a file, or the watch of SeccompProfiles stay
    /// broken, before `/readyz` fails (e.g. `180s`, `5m`).
    #[arg(long, env = "UNREADY_AFTER", default_value = "180s", value_parser = humantime::parse_duration)]
    unready_after: std::time::Duration,
    /// This node's IP (from the downward API, `status.hostIP`): where the agent asks its
    /// kubelet for `seccompDefault` (`GET https://<ip>:<kubelet-port>/configz`). Unset: the
    /// setting is reported as unknown.
    #[arg(long, env = "NODE_IP")]
    node_ip: Option<std::net::IpAddr>,
    /// The kubelet's HTTPS port.
    #[arg(long, env = "KUBELET_PORT", default_value_t = node_agent::kubelet::KUBELET_PORT)]
    kubelet_port: u16,
    /// Do not verify the kubelet's serving certificate against the cluster CA, for kubelets
    /// with self-signed serving certificates. The agent's ServiceAccount token is sent to
    /// whatever answers at the node's IP: see the `kubelet` module's docs before turning it on.
    #[arg(long, env = "KUBELET_INSECURE_SKIP_TLS_VERIFY", default_value_t = false, action = clap::ArgAction::Set)]
    kubelet_insecure_skip_tls_verify: bool,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Runtime {
    Runc,
    Crun,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    limit_malloc_arenas();
    // Two workers whatever the node's core count: the agent waits on the API server, the
    // disk and the kernel, and each worker thread would otherwise get its own malloc arena.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run(args))
}

/// glibc gives each thread that allocates concurrently an arena of its own, up to eight per
/// core, and memory freed in one is not reused by another: on a many-core node the agent's
/// resident memory would follow its core count. Two arenas are plenty for its few threads.
fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    init_logs(args.log_format);
    if !args.install && !args.record {
        anyhow::bail!("--install=false and --record=false leave nothing to do");
    }
    let root = ProfileRoot::new(&args.kubelet_root);
    let metrics = Arc::new(Metrics::new());
    let installer = if args.install {
        let mut installer = Installer::new(root.clone())
            .with_context(|| format!("reading {}", root.dir().display()))?;
        installer.set_policy(args.policy.policy());
        Some(installer)
    } else {
        None
    };
    let health = Arc::new(node_agent::health::Health::new(args.unready_after));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(node_agent::server::serve(
        args.listen,
        node_agent::server::router(health.clone(), metrics.clone()),
        async move {
            let _ = server_stop.changed().await;
        },
    ));
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });

    let mut config = kube::Config::infer()
        .await
        .context("reading the Kubernetes API configuration (in-cluster or KUBECONFIG)")?;
    config.read_timeout = Some(node_agent::READ_TIMEOUT);
    let api_config = config.clone();
    let client = kube::Client::try_from(config).context("connecting to the Kubernetes API")?;
    tracing::info!(node = %args.node_name, install = args.install, record = args.record, root = %root.dir().display(), "node agent starting");
    // In-cluster recording loads the eBPF recorder while a recording is active; without it
    // (no BTF, no privileges) the agent still installs profiles.
    if args.record {
        if let Err(e) = syscall_recorder::preflight() {
            tracing::warn!(error = %node_agent::error_chain(&e), "recordings will not work on this node");
        }
        let opts = node_agent::recording::Options {
            pin_root: (args.bpf_pin_dir != "none").then(|| PathBuf::from(&args.bpf_pin_dir)),
            runtime: match args.oci_runtime {
                Runtime::Runc => OciRuntime::Runc,
                Runtime::Crun => OciRuntime::Crun,
            },
        };
        tokio::spawn(node_agent::recording::run(
            client.clone(),
            args.node_name.clone(),
            metrics.clone(),
            opts,
        ));
        // The recorder reads audit records: it is where denials are seen. Kills are always
        // audited; refusals only under profiles installed with the log flag; would-be denials
        // are the logged calls of profiles in Complain mode.
        tokio::spawn(node_agent::denials::run(
            client.clone(),
            args.node_name.clone(),
            metrics.clone(),
        ));
    }
    match installer {
        Some(installer) => {
            // The kubelet's seccompDefault goes into the node's status, which the installer
            // writes.
            let (kubelet_tx, kubelet_rx) = tokio::sync::watch::channel(None);
            tokio::spawn(node_agent::kubelet::run(
                api_config,
                node_agent::kubelet::Options {
                    node_ip: args.node_ip,
                    port: args.kubelet_port,
                    insecure_skip_tls_verify: args.kubelet_insecure_skip_tls_verify,
                },
                kubelet_tx,
                stop_rx.clone(),
            ));
            let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
            tokio::spawn(node_agent::heartbeat::run(
                client.clone(),
                args.namespace.clone(),
                args.node_name.clone(),
                synced_rx,
                stop_rx.clone(),
            ));
            let (profiles, watch_task) =
                install_loop::watch_profiles(client.clone(), health.clone());
            let r = install_loop::SyncLoop {
                client,
                node_name: args.node_name,
                installer,
                profiles,
                metrics: metrics.clone(),
                health,
                synced: synced_tx,
                kubelet: kubelet_rx,
                shutdown: stop_rx,
                hooks: install_loop::OwnProcess,
            }
            .run()
            .await;
            watch_task.abort();
            r?;
        }
        None => {
            // A recorder only: ready once the loop runs; it ends with the process.
            health.set_ready();
            let mut stop = stop_rx.clone();
            let _ = stop.changed().await;
        }
    }
    server.await??;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
