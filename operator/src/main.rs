//! `operator`: the seccomp-operator controllers and admission webhooks (a Deployment).
//!
//! Every replica serves the admission webhooks from its own caches; one replica, elected on a
//! Lease, runs the controllers.

use anyhow::Context as _;
use clap::Parser;
use crds::{ProfileBinding, ProfileRecording, SeccompProfile};
use futures::StreamExt;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::{Api, Client};
use operator::index::PodIndex;
use operator::metrics::Metrics;
use operator::server::{self, WebhookState};
use operator::webhook::tls::{self, Resolver, TlsConfig};
use operator::{leader, profile_controller, recording};
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
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    manage_certificates: bool,
    /// MutatingWebhookConfigurations to inject the CA bundle into.
    #[arg(
        long,
        default_value = "seccomp-operator-binding",
        value_delimiter = ','
    )]
    mutating_configs: Vec<String>,
    /// ValidatingWebhookConfigurations to inject the CA bundle into.
    #[arg(
        long,
        default_value = "seccomp-operator-gate,seccomp-operator-isolation,seccomp-operator-profiles,seccomp-operator-agents",
        value_delimiter = ','
    )]
    validating_configs: Vec<String>,
    /// Keep the `seccomp-operator.dev/agent-not-ready:NoSchedule` taint on every node whose
    /// agent is not live (not synced yet, or silent), so that no new pod lands where its
    /// profile may be missing. Off: such nodes are only left out of the counts.
    #[arg(long, env = "TAINT_NODES", default_value_t = true, action = clap::ArgAction::Set)]
    taint_nodes: bool,
    /// Allow profiles with `listenerPath`/`SCMP_ACT_NOTIFY` (an admin decision: the runtime
    /// connects, as root, to the socket the profile names). Keep equal to the agents'.
    #[arg(long, env = "ALLOW_LISTENER_PATH", default_value_t = false, action = clap::ArgAction::Set)]
    allow_listener_path: bool,
    /// The filter flags profiles may set, comma-separated. Keep equal to the agents'.
    #[arg(long, env = "ALLOWED_FLAGS", default_value = "SECCOMP_FILTER_FLAG_TSYNC,SECCOMP_FILTER_FLAG_LOG", value_parser = crds::model::Policy::parse_flags)]
    allowed_flags: BTreeSet<crds::model::Flag>,
    /// The node agents' ServiceAccount (in the operator's namespace): its writes of node
    /// reports and heartbeats are held to the writer's own node.
    #[arg(long, default_value = "seccomp-node-agent")]
    agent_service_account: String,
    /// The node recorders' ServiceAccount: its RecordingReports are held to its own node.
    #[arg(long, default_value = "seccomp-node-recorder")]
    recorder_service_account: String,
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
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });

    // Health and metrics.
    let health = server::health_router(ready.clone(), metrics.clone());
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let mut s = stop_rx.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, health)
            .with_graceful_shutdown(async move {
                let _ = s.changed().await;
            })
            .await;
    });

    // Caches the webhooks read.
    let (profiles, pw) = reflector::store::<SeccompProfile>();
    let (bindings, bw) = reflector::store::<ProfileBinding>();
    tokio::spawn(
        reflector::reflector(
            pw,
            watcher(
                Api::<SeccompProfile>::all(client.clone()),
                watcher::Config::default(),
            ),
        )
        .default_backoff()
        .for_each(|_| async {}),
    );
    tokio::spawn(
        reflector::reflector(
            bw,
            watcher(
                Api::<ProfileBinding>::all(client.clone()),
                watcher::Config::default(),
            ),
        )
        .default_backoff()
        .for_each(|_| async {}),
    );

    let (recordings, rw) = reflector::store::<ProfileRecording>();
    tokio::spawn(
        reflector::reflector(
            rw,
            watcher(
                Api::<ProfileRecording>::all(client.clone()),
                watcher::Config::default(),
            ),
        )
        .default_backoff()
        .for_each(|_| async {}),
    );

    // The node agents' pods: who may write which node's report.
    let (agent_pods, apw) = reflector::store::<k8s_openapi::api::core::v1::Pod>();
    tokio::spawn(
        reflector::reflector(
            apw,
            watcher(
                Api::namespaced(client.clone(), &args.namespace),
                watcher::Config::default()
                    .labels("app.kubernetes.io/name in (seccomp-node-agent,seccomp-node-recorder)"),
            ),
        )
        .default_backoff()
        .for_each(|_| async {}),
    );

    // Webhook TLS.
    let tls_cfg = TlsConfig {
        namespace: args.namespace.clone(),
        secret: args.webhook_secret.clone(),
        service: args.webhook_service.clone(),
        mutating: args.mutating_configs.clone(),
        validating: args.validating_configs.clone(),
    };
    let bundle = loop {
        let r = if args.manage_certificates {
            tls::ensure_bundle(&client, &tls_cfg)
                .await
                .map_err(anyhow::Error::from)
        } else {
            read_provided_bundle(&client, &tls_cfg).await
        };
        match r {
            Ok(b) => break b,
            Err(e) => {
                tracing::warn!(error = %e, "webhook certificate not ready; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    let resolver = Arc::new(Resolver::new(bundle.certified_key()?));
    if args.manage_certificates {
        tokio::spawn(keep_certificates(
            client.clone(),
            tls_cfg.clone(),
            resolver.clone(),
        ));
    }
    let policy = Arc::new(crds::model::Policy {
        allow_listener: args.allow_listener_path,
        allowed_flags: args.allowed_flags.clone(),
    });
    let mut shared: BTreeSet<String> = args
        .shared_namespaces
        .iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect();
    shared.insert(args.namespace.clone());
    let state = WebhookState {
        view: Arc::new(operator::webhook::Caches {
            profiles: profiles.clone(),
            bindings: bindings.clone(),
            recordings: recordings.clone(),
            agent_pods: agent_pods.clone(),
        }),
        shared: Arc::new(shared),
        metrics: metrics.clone(),
        policy: policy.clone(),
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

    // Controllers, on the leader only.
    let elector = leader::Elector::new(
        client.clone(),
        &args.namespace,
        "seccomp-operator-leader",
        &args.identity,
    );
    let mut stop = stop_rx.clone();
    tokio::select! {
        _ = elector.acquire() => {},
        _ = stop.changed() => return Ok(()),
    }
    let index = Arc::new(RwLock::new(PodIndex::default()));
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "seccomp-operator".into(),
            instance: Some(args.identity.clone()),
        },
    );
    let controllers = async {
        tokio::join!(
            profile_controller::run(
                client.clone(),
                index.clone(),
                recorder,
                metrics.clone(),
                operator::node_controller::Config {
                    namespace: args.namespace.clone(),
                    taint_nodes: args.taint_nodes,
                },
                policy.clone(),
            ),
            recording::run(client.clone(), metrics.clone()),
            operator::binding_status::run(
                client.clone(),
                bindings.clone(),
                profiles.clone(),
                index.clone(),
                Duration::from_secs(3)
            ),
        )
    };
    tokio::select! {
        _ = controllers => {},
        _ = elector.hold() => {
            anyhow::bail!("lost leadership; exiting so a restart rejoins as a follower");
        }
        _ = stop.changed() => {},
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), webhook).await;
    Ok(())
}

/// When cert-manager (or anyone) provides the Secret: use its tls.crt / tls.key.
async fn read_provided_bundle(client: &Client, cfg: &TlsConfig) -> anyhow::Result<tls::Bundle> {
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), &cfg.namespace);
    let s = api.get(&cfg.secret).await?;
    let d = s.data.unwrap_or_default();
    let get = |k: &str| {
        d.get(k)
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            .unwrap_or_default()
    };
    Ok(tls::Bundle {
        ca_cert: get("ca.crt"),
        ca_key: String::new(),
        cert: get("tls.crt"),
        key: get("tls.key"),
        not_after: u64::MAX,
        ca_not_after: u64::MAX,
    })
}

/// Re-assert the CA bundle (a `kubectl apply` may reset it) and renew before expiry.
async fn keep_certificates(client: Client, cfg: TlsConfig, resolver: Arc<Resolver>) {
    let mut served: Option<String> = None;
    loop {
        match tls::ensure_bundle(&client, &cfg).await {
            Ok(b) => {
                if served.as_deref() != Some(b.cert.as_str()) {
                    match b.certified_key() {
                        Ok(k) => {
                            resolver.set(k);
                            served = Some(b.cert.clone());
                        }
                        Err(e) => tracing::error!(error = %e, "renewed certificate unusable"),
                    }
                }
                if let Err(e) = tls::inject_ca(&client, &cfg, &b.ca_cert).await {
                    tracing::warn!(error = %e, "injecting the CA bundle failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "checking the webhook certificate failed"),
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
}
