//! `operator`: the seccomp-operator controllers and admission webhooks (a Deployment).
//!
//! Every replica serves the admission webhooks from its own caches; one replica, elected on a
//! Lease, runs the controllers.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use clap::Parser;
use kube::runtime::events::{Recorder, Reporter};
use kube::Client;
use operator::pods::index::PodIndex;
use operator::runtime::leader;
use operator::runtime::metrics::Metrics;
use operator::webhook::certificates::{lifecycle, TlsConfig};
use operator::webhook::server::{self, WebhookState};
use operator::{binding, profile, recording};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Controllers and admission webhooks of seccomp-operator.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address for /healthz, /readyz and /metrics.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Address of the HTTPS admission webhook server.
    #[arg(long, env = "WEBHOOK_ADDR", default_value = "0.0.0.0:9443")]
    webhook_listen: SocketAddr,
    /// The operator's namespace (Lease, webhook Secret and Service).
    #[arg(long, env = "POD_NAMESPACE", default_value = "seccomp-operator")]
    namespace: String,
    /// This replica's identity for leader election.
    #[arg(long, env = "POD_NAME", default_value = "operator")]
    identity: String,
    /// Namespaces whose profiles pods of every namespace may use (the operator's own
    /// namespace is always shared).
    #[arg(long, env = "SHARED_NAMESPACES", value_delimiter = ',')]
    shared_namespaces: Vec<String>,
    /// The webhook Service.
    #[arg(long, default_value = "seccomp-operator-webhook")]
    webhook_service: String,
    /// Secret holding the webhook CA and certificate.
    #[arg(long, default_value = "seccomp-operator-webhook-tls")]
    webhook_secret: String,
    /// Manage the webhook certificate (create, renew, inject the CA bundle). Turn off when
    /// cert-manager provides the Secret and injects the bundle.
    #[arg(long, env = "MANAGE_CERTIFICATES", default_value_t = true, action = clap::ArgAction::Set)]
    manage_certificates: bool,
    /// After SIGTERM, how long to stay unready but keep serving the webhooks before stopping
    /// (endpoints and kube-proxy need this to stop sending reviews here). Keep it below the
    /// pod's terminationGracePeriodSeconds.
    #[arg(long, env = "SHUTDOWN_DELAY", default_value = "5s", value_parser = humantime::parse_duration)]
    shutdown_delay: std::time::Duration,
    /// Lifetime of the self-managed serving certificate (e.g. `365d`, `12h`, `90s`; at least
    /// 60 s); it is renewed when half of it, or 30 days, is left, whichever comes first.
    #[arg(
        long,
        env = "SERVING_CERTIFICATE_LIFETIME",
        default_value = "365d",
        value_parser = operator::webhook::certificates::parse_lifetime
    )]
    serving_certificate_lifetime: std::time::Duration,
    /// MutatingWebhookConfigurations to inject the CA bundle into (those that do not exist are
    /// skipped: seccomp-operator-profile-gate exists only before Kubernetes 1.36).
    #[arg(
        long,
        default_values = operator::webhook::MUTATING_CONFIGURATIONS,
        value_delimiter = ','
    )]
    mutating_configs: Vec<String>,
    /// ValidatingWebhookConfigurations to inject the CA bundle into.
    #[arg(
        long,
        default_values = operator::webhook::VALIDATING_CONFIGURATIONS,
        value_delimiter = ','
    )]
    validating_configs: Vec<String>,
    /// Keep the `seccomp-operator.dev/agent-not-ready:NoSchedule` taint on every node whose
    /// agent is not live (not synced yet, or silent), so that no new pod lands where its
    /// profile may be missing. Off: such nodes are only left out of the counts.
    #[arg(long, env = "TAINT_NODES", default_value_t = true, action = clap::ArgAction::Set)]
    taint_nodes: bool,
    /// The profile policy (the node agents are given the same).
    #[command(flatten)]
    policy: seccomp_profile::PolicyArgs,
    /// The node agents' ServiceAccount (in the operator's namespace): its heartbeat Leases are
    /// held to the writer's own node (its node reports are held by the API server's policy
    /// `seccomp-operator-node-reports`, which names the same account).
    #[arg(long, default_value = "seccomp-node-agent")]
    agent_service_account: String,
    /// The node recorders' ServiceAccount: its RecordingReports are held to its own node.
    #[arg(long, default_value = "seccomp-node-recorder")]
    recorder_service_account: String,
    /// The container runtime's default seccomp profile (any supported format, e.g. Docker's
    /// `default.json`), mounted from a ConfigMap: recorded profiles get a `RuntimeDefault`
    /// condition saying whether they allow anything it denies. No such file: no condition.
    #[arg(
        long,
        env = "RUNTIME_DEFAULT_PROFILE",
        default_value = "/etc/seccomp-operator/runtime-default/profile.json"
    )]
    runtime_default_profile: std::path::PathBuf,
    /// A `Complain` profile is ready to enforce (condition `ReadyToEnforce`) once
    /// `--complain-ready-containers` containers started under its current version have run
    /// this long with nothing it would deny (e.g. `24h`, `7d`, `30s`).
    #[arg(long, env = "COMPLAIN_READY_AFTER", default_value = "24h", value_parser = humantime::parse_duration)]
    complain_ready_after: std::time::Duration,
    /// See `--complain-ready-after`.
    #[arg(long, env = "COMPLAIN_READY_CONTAINERS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    complain_ready_containers: u32,
    /// Registries `oci://` base profiles may come from (comma-separated `host[:port]` or
    /// `host[:port]/repository-prefix`). Empty: none.
    #[arg(
        long,
        env = "ALLOWED_REGISTRIES",
        default_value = "",
        value_delimiter = ','
    )]
    allowed_registries: Vec<String>,
    /// Networks registry fetches must never reach besides loopback, link-local and the
    /// cluster's service and pod ranges, which are always refused (comma-separated CIDRs).
    #[arg(
        long,
        env = "REGISTRY_REFUSED_NETWORKS",
        default_value = "",
        value_delimiter = ','
    )]
    registry_refused_networks: Vec<String>,
    /// A directory of PEM CA certificates (`*.crt`, `*.pem`) trusted for registries besides
    /// the system's, mounted from a ConfigMap. Missing: none.
    #[arg(
        long,
        env = "REGISTRY_CA_DIR",
        default_value = "/etc/seccomp-operator/registry-ca"
    )]
    registry_ca_dir: std::path::PathBuf,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    let _ = rustls::crypto::ring::default_provider().install_default();

    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let draining = ready.clone();
    let drain_for = args.shutdown_delay;
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
        // Unready first, and keep answering admission reviews while the Service's endpoints
        // and every node's kube-proxy drop this pod: the webhooks fail closed, so closing the
        // listener at once refuses pods and profiles during every rolling update.
        draining.store(false, Ordering::SeqCst);
        tracing::info!(delay = ?drain_for, "terminating: unready, serving webhooks a little longer");
        tokio::time::sleep(drain_for).await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });

    // Health and metrics.
    let watchdog = Arc::new(operator::runtime::watchdog::Watchdog::default());
    let health =
        operator::runtime::health::health_router(ready.clone(), metrics.clone(), watchdog.clone());
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let mut s = stop_rx.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, health)
            .with_graceful_shutdown(async move {
                let _ = s.changed().await;
            })
            .await;
    });

    // One watch per kind, shared by the webhooks and the controllers.
    let caches = operator::runtime::caches::start(&client, &args.namespace);
    let profiles = caches.profiles.clone();
    {
        let store = profiles.clone();
        metrics.count_phases_with(Box::new(move || {
            let mut by_phase = std::collections::BTreeMap::new();
            for p in store.state() {
                let phase = p
                    .status
                    .as_ref()
                    .and_then(|s| s.phase)
                    .map(|ph| format!("{ph:?}"))
                    .unwrap_or_else(|| "Unknown".into());
                *by_phase.entry(phase).or_insert(0) += 1;
            }
            by_phase
        }));
    }
    let bindings = caches.bindings.clone();
    let recordings = caches.recordings.clone();
    let agent_pods = caches.agent_pods.clone();

    // Webhook TLS.
    let tls_cfg = TlsConfig {
        namespace: args.namespace.clone(),
        secret: args.webhook_secret.clone(),
        service: args.webhook_service.clone(),
        mutating: args.mutating_configs.clone(),
        validating: args.validating_configs.clone(),
        lifetime: args.serving_certificate_lifetime,
    };
    let resolver = lifecycle::serving(&client, &tls_cfg, args.manage_certificates).await?;
    {
        let r = resolver.clone();
        metrics.certificate_expiry_from(Box::new(move || r.not_after()));
    }
    let policy = Arc::new(args.policy.policy());
    // A file that is there but unreadable is a configuration error: say so and stop, rather
    // than silently leave the check off.
    let runtime_default = operator::profile::runtime_default::load(&args.runtime_default_profile)
        .context("--runtime-default-profile")?
        .map(Arc::new);
    match &runtime_default {
        Some(r) => {
            tracing::info!(source = %r.source, "recorded profiles are compared with the runtime default")
        }
        None => {
            tracing::info!(path = %args.runtime_default_profile.display(), "no runtime default profile: recorded profiles are not compared")
        }
    }
    let mut shared: BTreeSet<String> = args
        .shared_namespaces
        .iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect();
    shared.insert(args.namespace.clone());
    let shared = Arc::new(shared);
    // What each node's agent reports: kept by the profile controller's node report watch, read
    // by the webhooks (a node's seccompDefault) and the confinement counts.
    let node_reports = Arc::new(RwLock::new(operator::nodes::reports::NodeReports::new()));
    // The statuses the leader computed and has not written yet: the webhooks and the
    // scheduling gate decide on them; the profile controller's writers write them.
    let (status_writes, admissible) = operator::profile::writes::StatusWrites::new(metrics.clone());
    let registry = registry_config(
        &args.allowed_registries,
        &args.registry_refused_networks,
        &args.registry_ca_dir,
    )?;
    let state = WebhookState {
        view: Arc::new(operator::webhook::Caches {
            profiles: profiles.clone(),
            bindings: bindings.clone(),
            recordings: recordings.clone(),
            agent_pods: agent_pods.clone(),
            node_reports: node_reports.clone(),
            writes: status_writes.clone(),
        }),
        shared: shared.clone(),
        metrics: metrics.clone(),
        policy: policy.clone(),
        registries: Arc::new(registry.clone()),
        client: Some(client.clone()),
        agents: Arc::new((
            [&args.agent_service_account, &args.recorder_service_account]
                .iter()
                .map(|sa| format!("system:serviceaccount:{}:{sa}", args.namespace))
                .collect(),
            args.namespace.clone(),
        )),
    };
    let webhook = tokio::spawn(server::serve_tls(
        args.webhook_listen,
        server::webhook_router(state),
        resolver,
        stop_rx.clone(),
    ));
    let _ = profiles.wait_until_ready().await;
    let _ = bindings.wait_until_ready().await;
    let _ = recordings.wait_until_ready().await;
    let _ = agent_pods.wait_until_ready().await;
    ready.store(true, Ordering::SeqCst);
    tracing::info!("webhooks ready");

    // Controllers run on every replica (they drain the shared watches) and act only while
    // theirs leads.
    let mut leadership = leader::Leadership::stand(
        client.clone(),
        &args.namespace,
        "seccomp-operator-leader",
        &args.identity,
    )
    .await
    .context("standing for leader election")?;
    let gate = leadership.gate();
    let index = Arc::new(RwLock::new(PodIndex::default()));
    let pods = operator::pods::watch::start(
        operator::runtime::caches::pods(&client),
        index.clone(),
        recordings.clone(),
    );
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "seccomp-operator".into(),
            instance: Some(args.identity.clone()),
        },
    );
    {
        let (index, reports) = (index.clone(), node_reports.clone());
        let is_complain = operator::pods::report::complain_lookup(profiles.clone());
        metrics.count_confinement_with(Box::new(move || {
            // One lock at a time (never the reports' inside the index's).
            let defaulting = operator::nodes::reports::seccomp_default_nodes(
                &reports.read().unwrap_or_else(|p| p.into_inner()),
            );
            let idx = index.read().unwrap_or_else(|p| p.into_inner());
            idx.confinement().per_namespace(&defaulting, &is_complain)
        }));
    }
    tokio::spawn(operator::pods::report::run(
        client.clone(),
        args.namespace.clone(),
        index.clone(),
        node_reports.clone(),
        recorder.clone(),
        gate.clone(),
        profiles.clone(),
    ));
    // Node liveness: only the leader counts nodes and taints them.
    let (report_store, report_events) = operator::runtime::caches::node_reports(&client);
    let liveness = Arc::new(operator::nodes::controller::Shared::default());
    {
        let inputs = operator::nodes::controller::Inputs {
            reports: report_store,
            nodes: operator::runtime::caches::nodes(&client),
            leases: operator::runtime::caches::agent_leases(&client, &args.namespace),
        };
        let cfg = operator::nodes::controller::Config {
            namespace: args.namespace.clone(),
            taint_nodes: args.taint_nodes,
        };
        let (client, liveness, gate) = (client.clone(), liveness.clone(), gate.clone());
        tokio::spawn(async move {
            gate.opened().await;
            operator::nodes::controller::run(client, cfg, inputs, liveness, gate).await;
        });
    }
    let profile_inputs = profile::controller::Inputs {
        registry,
        profiles: profiles.clone(),
        events: caches.profile_events.controller,
        changes: caches.profile_events.changes,
        index: index.clone(),
        pod_changes: pods.subscribe(),
        recorder: recorder.clone(),
        metrics: metrics.clone(),
        report_events,
        liveness: liveness.clone(),
        denial_events: operator::runtime::caches::syscall_denied(&client),
        would_deny_events: operator::runtime::caches::syscall_would_be_denied(&client),
        readiness: operator::profile::complain::Readiness {
            after: args.complain_ready_after,
            containers: args.complain_ready_containers,
        },
        policy: policy.clone(),
        gate: gate.clone(),
        runtime_default,
        watchdog: watchdog.clone(),
        reports: node_reports,
        writes: status_writes.clone(),
    };
    let binding_inputs = binding::controller::Inputs {
        bindings: bindings.clone(),
        events: caches.binding_events,
        profile_events: caches.profile_events.bindings,
        pod_changes: pods.subscribe(),
        gate: gate.clone(),
        watchdog: watchdog.clone(),
    };
    let ungate_inputs = operator::pods::ungate::Inputs {
        profiles: profiles.clone(),
        profile_events: caches.profile_events.ungate,
        gated_pods: Box::pin(pods.gated_pods()),
        index: index.clone(),
        shared: shared.clone(),
        recorder: recorder.clone(),
        gate: gate.clone(),
        metrics: metrics.clone(),
        fresher: {
            let writes = status_writes.clone();
            Arc::new(move |p| writes.fresher(p))
        },
        admissible: Box::pin(admissible),
    };
    let controllers = tokio::spawn({
        let (client, metrics, profiles, gate, watchdog) = (
            client.clone(),
            metrics.clone(),
            profiles.clone(),
            gate.clone(),
            watchdog.clone(),
        );
        let rec_inputs = recording::Inputs {
            recordings,
            events: caches.recording_events,
            profile_events: caches.profile_events.recordings,
            pod_changes: pods.recording_changes(),
            reports: operator::runtime::caches::recording_reports(&client),
            recorder: recorder.clone(),
        };
        async move {
            tokio::join!(
                profile::controller::run(client.clone(), profile_inputs),
                recording::run(client.clone(), metrics, rec_inputs, gate, watchdog),
                binding::controller::run(client.clone(), profiles, index, binding_inputs),
                operator::pods::ungate::run(client, ungate_inputs),
            )
        }
    });
    // Lead, follow, and lead again: a replica that could not renew the Lease in time (an API
    // server outage, a partition) follows until it wins the Lease back, without a restart;
    // its controllers act only through the gate.
    let mut stop = stop_rx.clone();
    let mut controllers = controllers;
    'terms: loop {
        tokio::select! {
            leads = leadership.acquired() => {
                if !leads {
                    anyhow::bail!("leader election ended");
                }
                tracing::info!(identity = %args.identity, "became leader");
            },
            _ = &mut controllers => break 'terms,
            _ = stop.changed() => break 'terms,
        }
        tokio::select! {
            _ = &mut controllers => break 'terms,
            _ = leadership.lost() => {
                tracing::warn!(identity = %args.identity, "lost leadership (the Lease was not renewed in time); following until elected again");
            }
            _ = stop.changed() => break 'terms,
        }
    }
    leadership.release().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), webhook).await;
    Ok(())
}

/// What the operator is told about registries, checked: an entry that is not a registry or a
/// network stops the operator with the entry named.
fn registry_config(
    allowed: &[String],
    refused: &[String],
    ca_dir: &std::path::Path,
) -> anyhow::Result<operator::profile::artifacts::RegistryConfig> {
    let allowed: Vec<String> = allowed
        .iter()
        .filter_map(|a| operator::profile::artifacts::allowed_entry(a))
        .collect();
    for a in &allowed {
        let probe = if a.contains('/') {
            format!("{a}:probe")
        } else {
            format!("{a}/probe:probe")
        };
        seccomp_profile::OciReference::parse(&probe)
            .map_err(|why| anyhow::anyhow!("ALLOWED_REGISTRIES: `{a}` is not a registry: {why}"))?;
    }
    let refused = refused
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .map(|n| {
            n.parse()
                .map_err(|_| anyhow::anyhow!("REGISTRY_REFUSED_NETWORKS: `{n}` is not a CIDR"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut ca_pem = Vec::new();
    if let Ok(entries) = std::fs::read_dir(ca_dir) {
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') || !(name.ends_with(".crt") || name.ends_with(".pem")) {
                continue;
            }
            let pem = std::fs::read(&path)
                .map_err(|e| anyhow::anyhow!("reading registry CA {}: {e}", path.display()))?;
            ca_pem.push(pem);
        }
    }
    tracing::info!(
        allowed = %allowed.join(","),
        cas = ca_pem.len(),
        "registries for oci:// bases"
    );
    Ok(operator::profile::artifacts::RegistryConfig {
        allowed,
        refused,
        ca_pem,
    })
}
