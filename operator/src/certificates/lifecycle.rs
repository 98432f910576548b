//! The serving certificate's life: obtain it at start (self-managed, or from a Secret someone
//! else provides, e.g. cert-manager), then keep it current while the process runs.

use super::{ensure_bundle, inject_ca, Bundle, Resolver, TlsConfig, TlsError};
use kube::{Api, Client};
use std::sync::Arc;
use std::time::Duration;

/// The certificate the webhook server starts with, retried until it is available; with
/// `manage`, a task that renews it and re-asserts the CA bundle runs from then on.
pub async fn serving(
    client: &Client,
    cfg: &TlsConfig,
    manage: bool,
) -> Result<Arc<Resolver>, TlsError> {
    let bundle = loop {
        let r = if manage {
            ensure_bundle(client, cfg).await
        } else {
            read_provided_bundle(client, cfg).await
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
    if manage {
        tokio::spawn(keep_certificates(
            client.clone(),
            cfg.clone(),
            resolver.clone(),
        ));
    }
    Ok(resolver)
}

/// When cert-manager (or anyone) provides the Secret: use its tls.crt / tls.key.
async fn read_provided_bundle(client: &Client, cfg: &TlsConfig) -> Result<Bundle, TlsError> {
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), &cfg.namespace);
    let s = api.get(&cfg.secret).await.map_err(TlsError::Kube)?;
    let d = s.data.unwrap_or_default();
    let get = |k: &str| {
        d.get(k)
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            .unwrap_or_default()
    };
    Ok(Bundle {
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
        match ensure_bundle(&client, &cfg).await {
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
                if let Err(e) = inject_ca(&client, &cfg, &b.ca_cert).await {
                    tracing::warn!(error = %e, "injecting the CA bundle failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "checking the webhook certificate failed"),
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
}
