//! The plain HTTP server's routes: `/healthz`, `/readyz` and `/metrics`.

use crate::runtime::metrics::Metrics;
use crate::runtime::watchdog::Watchdog;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `/healthz` (fails while a controller loop is stuck: [`crate::runtime::watchdog`]), `/readyz`
/// (after the webhook certificate and caches are ready, until SIGTERM), `/metrics`.
pub fn health_router(
    ready: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    watchdog: Arc<Watchdog>,
) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(move || {
                let watchdog = watchdog.clone();
                async move {
                    match watchdog.check(
                        tokio::time::Instant::now(),
                        crate::runtime::watchdog::STALE_AFTER,
                    ) {
                        Ok(()) => (StatusCode::OK, "ok\n".to_owned()),
                        Err(e) => {
                            tracing::error!(error = %e, "unhealthy");
                            (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"))
                        }
                    }
                }
            }),
        )
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
