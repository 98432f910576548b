//! The HTTPS admission webhook server: a route per webhook, each answering from the caches
//! (and, for the install gate, a few live reads and the hold).

use crate::runtime::metrics::Metrics;
use crate::webhook::certificates::Resolver;
use crate::webhook::{self, ClusterView};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use kube::core::admission::AdmissionResponse;
use kube::core::DynamicObject;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

/// What the webhook handlers share.
#[derive(Clone)]
pub struct WebhookState {
    /// Profiles and bindings.
    pub view: Arc<dyn ClusterView>,
    /// Namespaces whose profiles every namespace may use.
    pub shared: Arc<BTreeSet<String>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// What tenants' profiles may use.
    pub policy: Arc<seccomp_profile::Policy>,
    /// Which registries `oci://` bases may come from.
    pub registries: Arc<crate::profile::artifacts::RegistryConfig>,
    /// The node agents' ServiceAccount user names (installer, recorder) and the namespace
    /// their pods run in.
    pub agents: Arc<(Vec<String>, String)>,
    /// For the install gate's live look-ups and holds; `None` in tests without an API server
    /// (the gate then answers from the caches alone and holds nothing).
    pub client: Option<kube::Client>,
}

fn answer(
    name: &'static str,
    state: &WebhookState,
    body: &[u8],
    decide: impl FnOnce(&kube::core::admission::AdmissionRequest<DynamicObject>) -> AdmissionResponse,
) -> Response {
    let started = std::time::Instant::now();
    match webhook::parse_review(body) {
        Ok(req) => {
            let resp = decide(&req);
            respond(name, state, &req, resp, started)
        }
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

/// The profile policy's route for one mode (the namespace label's value).
fn policy_route(mode: webhook::policy::Mode) -> axum::routing::MethodRouter<WebhookState> {
    post(
        move |State(s): State<WebhookState>, body: Bytes| async move {
            answer(mode.webhook(), &s, &body, |r| {
                webhook::policy::pod_policy(r, mode, &s.agents.1, s.view.as_ref())
            })
        },
    )
}

/// Count, log a refusal and send a webhook's answer.
fn respond(
    name: &'static str,
    state: &WebhookState,
    req: &kube::core::admission::AdmissionRequest<DynamicObject>,
    resp: AdmissionResponse,
    started: std::time::Instant,
) -> Response {
    state
        .metrics
        .admission(name, resp.allowed, started.elapsed());
    if !resp.allowed {
        tracing::info!(webhook = name, namespace = ?req.namespace, name = ?req.name, reason = %resp.result.message, "denied");
    }
    axum::Json(resp.into_review()).into_response()
}

/// The install gate: decided from the caches; a refusal is checked again against the API
/// server (the cache may trail a profile that just became Installed); an admission holds the
/// pod's profiles ([`crate::webhook::hold`]) before it is answered, except on a dry run. A pod
/// created with the scheduling gate is admitted, and its existing profiles held (best effort).
async fn gate_answer(state: &WebhookState, body: &[u8]) -> Response {
    let started = std::time::Instant::now();
    let req = match webhook::parse_review(body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let mut resp = webhook::gate(&req, state.view.as_ref(), &state.shared);
    if let (Some(client), true) = (&state.client, webhook::gate::waits_at_scheduling_gate(&req)) {
        // A pod that waits at the scheduling gate is admitted whatever happens here (this
        // webhook fails open for it); its profiles that exist are held now, so that a delete
        // right after its admission waits for it as for any other pod.
        let ids: Vec<_> = webhook::gated_profiles(&req, &state.shared)
            .into_iter()
            .filter(|(ns, name)| {
                state
                    .view
                    .profile(ns, name)
                    .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
            })
            .collect();
        if resp.allowed && !req.dry_run && !ids.is_empty() {
            if let Err(why) =
                crate::webhook::hold::hold_in_time(client, state.view.as_ref(), ids).await
            {
                tracing::info!(namespace = ?req.namespace, name = ?req.name, reason = %why, "a gated pod's profiles were not held at admission; the pod index holds them once it sees the pod");
            }
        }
        return respond("gate", state, &req, resp, started);
    }
    if let Some(client) = &state.client {
        let ids = webhook::gated_profiles(&req, &state.shared);
        if !resp.allowed && !ids.is_empty() {
            let live = LiveProfiles::fetch(client, state.view.clone(), &ids).await;
            resp = webhook::gate(&req, &live, &state.shared);
        }
        if resp.allowed && !req.dry_run && !ids.is_empty() {
            if let Err(why) =
                crate::webhook::hold::hold_in_time(client, state.view.as_ref(), ids).await
            {
                resp = resp.deny(format!("seccomp-operator install gate: {why}"));
            }
        }
    }
    respond("gate", state, &req, resp, started)
}

/// The caches, with some profiles read from the API server just now.
struct LiveProfiles {
    cache: Arc<dyn ClusterView>,
    live: std::collections::BTreeMap<(String, String), Option<Arc<crds::SeccompProfile>>>,
}

impl LiveProfiles {
    /// Read `ids` (at most a few: the profiles one pod names); a failed read keeps the cache's.
    async fn fetch(
        client: &kube::Client,
        cache: Arc<dyn ClusterView>,
        ids: &BTreeSet<(String, String)>,
    ) -> Self {
        let mut live = std::collections::BTreeMap::new();
        // At most 1.5 s in all, so that a hold can still follow within the webhook timeout.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(1500);
        for (ns, name) in ids.iter().take(16) {
            let api: kube::Api<crds::SeccompProfile> = kube::Api::namespaced(client.clone(), ns);
            match tokio::time::timeout_at(deadline, api.get_opt(name)).await {
                Ok(Ok(p)) => {
                    let p = p.map(|p| cache.fresher(Arc::new(p)));
                    live.insert((ns.clone(), name.clone()), p);
                }
                Ok(Err(_)) => {}
                Err(_) => break,
            }
        }
        LiveProfiles { cache, live }
    }
}

impl ClusterView for LiveProfiles {
    fn profile(&self, namespace: &str, name: &str) -> Option<Arc<crds::SeccompProfile>> {
        match self.live.get(&(namespace.to_owned(), name.to_owned())) {
            Some(p) => p.clone(),
            None => self.cache.profile(namespace, name),
        }
    }
    fn bindings(&self, namespace: &str) -> Vec<Arc<crds::ProfileBinding>> {
        self.cache.bindings(namespace)
    }
    fn recordings(&self, namespace: &str) -> Vec<Arc<crds::ProfileRecording>> {
        self.cache.recordings(namespace)
    }
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<k8s_openapi::api::core::v1::Pod>> {
        self.cache.pod(namespace, name)
    }
    fn node_default(&self, node: &str) -> crds::confinement::NodeDefault {
        self.cache.node_default(node)
    }
}

/// The webhook routes.
pub fn webhook_router(state: WebhookState) -> Router {
    Router::new()
        .route(
            "/mutate-binding",
            post(|State(s): State<WebhookState>, body: Bytes| async move {
                answer("binding", &s, &body, |r| webhook::bind(r, s.view.as_ref()))
            }),
        )
        .route(
            "/mutate-gate",
            post(|State(s): State<WebhookState>, body: Bytes| async move {
                answer("gate-mutate", &s, &body, webhook::add_gate)
            }),
        )
        .route(
            "/validate-gate",
            post(|State(s): State<WebhookState>, body: Bytes| async move {
                gate_answer(&s, &body).await
            }),
        )
        .route(
            "/validate-policy-warn",
            policy_route(webhook::policy::Mode::Warn),
        )
        .route(
            "/validate-policy-enforce",
            policy_route(webhook::policy::Mode::Enforce),
        )
        .route(
            "/validate-isolation",
            post(|State(s): State<WebhookState>, body: Bytes| async move {
                answer("isolation", &s, &body, |r| webhook::isolation(r, &s.shared))
            }),
        )
        .route(
            "/validate-agent-writes",
            post(|State(s): State<WebhookState>, body: Bytes| async move {
                answer("agent-writes", &s, &body, |r| {
                    webhook::agent_writes::agent_writes(
                        r,
                        s.view.as_ref(),
                        &s.agents.0,
                        &s.agents.1,
                    )
                })
            }),
        )
        .route(
            "/validate-profile",
            post(|State(s): State<WebhookState>, body: Bytes| async move {
                answer("profile", &s, &body, |r| {
                    webhook::profile(r, &s.policy, &s.registries)
                })
            }),
        )
        .with_state(state)
}

/// Serve `router` over TLS with the certificate `resolver` holds, until `shutdown`.
pub async fn serve_tls(
    addr: SocketAddr,
    router: Router,
    resolver: Arc<Resolver>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving admission webhooks (TLS)");
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => r?,
            _ = shutdown.changed() => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let svc = TowerToHyperService::new(router);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), svc)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}
