//! The operator's servers: the HTTPS admission webhook server and the plain HTTP
//! `/healthz`, `/readyz`, `/metrics` server.

use crate::certificates::Resolver;
use crate::metrics::Metrics;
use crate::webhook::{self, ClusterView};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use kube::core::admission::AdmissionResponse;
use kube::core::DynamicObject;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// The node agents' ServiceAccount user names (installer, recorder) and the namespace
    /// their pods run in.
    pub agents: Arc<(Vec<String>, String)>,
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
            state
                .metrics
                .admission(name, resp.allowed, started.elapsed());
            if !resp.allowed {
                tracing::info!(webhook = name, namespace = ?req.namespace, name = ?req.name, reason = %resp.result.message, "denied");
            }
            axum::Json(resp.into_review()).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
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
            "/validate-gate",
            post(|State(s): State<WebhookState>, body: Bytes| async move {
                answer("gate", &s, &body, |r| {
                    webhook::gate(r, s.view.as_ref(), &s.shared)
                })
            }),
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
                answer("profile", &s, &body, |r| webhook::profile(r, &s.policy))
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

/// `/healthz` (always), `/readyz` (after the webhook certificate and caches are ready),
/// `/metrics`.
pub fn health_router(ready: Arc<AtomicBool>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready.load(Ordering::SeqCst) {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            "content-type",
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }),
        )
}
