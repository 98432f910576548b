//! The serving certificate's life: obtain it at start (self-managed, or from a Secret someone
//! else provides, e.g. cert-manager), then keep it current while the process runs.

use super::{ensure_bundle, inject_ca, pem_not_after, Bundle, Resolver, TlsConfig, TlsError};
use kube::{Api, Client};
use std::sync::Arc;
use std::time::Duration;

/// How often the Secret is looked at: renewals by another replica, or a replaced Secret, are
/// served within this.
const FOLLOW_EVERY: Duration = Duration::from_secs(15);

/// The certificate the webhook server starts with, retried until it is available; from then
/// on a task keeps it current: with `manage`, it renews the certificate and re-asserts the CA
/// bundle; without, it serves whatever the Secret's owner (cert-manager) puts there next.
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
                tracing::warn!(error = %seccomp_profile::error::chain(&e), "webhook certificate not ready; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    let resolver = Arc::new(Resolver::new(
        bundle.certified_key()?,
        pem_not_after(&bundle.cert),
    ));
    if manage {
        tokio::spawn(keep_certificates(
            client.clone(),
            cfg.clone(),
            resolver.clone(),
            bundle.cert,
        ));
    } else {
        tokio::spawn(follow_provided(
            client.clone(),
            cfg.clone(),
            resolver.clone(),
            bundle.cert,
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

/// Serve `b` if it is not what is served already; false if it cannot be used (the old one
/// stays).
fn serve(resolver: &Resolver, served: &mut String, b: &Bundle) -> bool {
    if *served == b.cert {
        return true;
    }
    match b.certified_key() {
        Ok(k) => {
            resolver.set(k, pem_not_after(&b.cert));
            *served = b.cert.clone();
            tracing::info!(not_after = ?pem_not_after(&b.cert), "serving a new webhook certificate");
            true
        }
        Err(e) => {
            tracing::error!(error = %seccomp_profile::error::chain(&e), "new webhook certificate unusable; still serving the previous one");
            false
        }
    }
}

/// Re-assert the CA bundle (a `kubectl apply` may reset it) and renew before expiry. The CA
/// bundle is injected before a certificate it signs is served.
async fn keep_certificates(
    client: Client,
    cfg: TlsConfig,
    resolver: Arc<Resolver>,
    mut served: String,
) {
    // The first round runs at once: a fresh install has no CA bundle in its webhook
    // configurations until it does.
    loop {
        match ensure_bundle(&client, &cfg).await {
            Ok(b) => {
                if let Err(e) = inject_ca(&client, &cfg, &b.ca_cert).await {
                    tracing::warn!(error = %seccomp_profile::error::chain(&e), "injecting the CA bundle failed");
                }
                serve(&resolver, &mut served, &b);
            }
            Err(e) => {
                tracing::warn!(error = %seccomp_profile::error::chain(&e), "checking the webhook certificate failed")
            }
        }
        tokio::time::sleep(FOLLOW_EVERY.min(cfg.lifetime / 4)).await;
    }
}

/// Serve the provided Secret's certificate as it is replaced (cert-manager renews it in
/// place); a Secret that is missing, partial or does not parse leaves the current one served.
async fn follow_provided(
    client: Client,
    cfg: TlsConfig,
    resolver: Arc<Resolver>,
    mut served: String,
) {
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        match read_provided_bundle(&client, &cfg).await {
            Ok(b) if b.cert.is_empty() || b.key.is_empty() => {
                tracing::warn!(secret = %cfg.secret, "the webhook Secret lacks tls.crt or tls.key; still serving the previous certificate")
            }
            Ok(b) => {
                serve(&resolver, &mut served, &b);
            }
            Err(e) => {
                tracing::warn!(error = %seccomp_profile::error::chain(&e), "reading the webhook Secret failed")
            }
        }
    }
}
