//! Where the bundle lives and where its CA goes: the Secret (created, renewed, raced for by
//! replicas) and the webhook configurations the CA bundle is injected into.

use super::*;

/// Where the certificate lives and what it is injected into.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    /// Namespace of the operator (Secret, Service).
    pub namespace: String,
    /// Secret holding the bundle.
    pub secret: String,
    /// The webhook Service's name.
    pub service: String,
    /// MutatingWebhookConfigurations whose webhooks get the CA bundle.
    pub mutating: Vec<String>,
    /// ValidatingWebhookConfigurations whose webhooks get the CA bundle.
    pub validating: Vec<String>,
    /// Lifetime of a self-managed serving certificate.
    pub lifetime: Duration,
}

/// Load the bundle from the Secret, creating or renewing it when needed. Concurrent replicas
/// race on create/replace; the loser re-reads the winner's bundle.
pub async fn ensure_bundle(client: &Client, cfg: &TlsConfig) -> Result<Bundle, TlsError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &cfg.namespace);
    let names = service_names(&cfg.service, &cfg.namespace);
    for _ in 0..5 {
        let existing = api.get_opt(&cfg.secret).await?;
        let current = existing.as_ref().and_then(Bundle::from_secret);
        let next = match &current {
            Some(b) => match b.needs(now_secs(), cfg.lifetime) {
                Renewal::None => return Ok(b.clone()),
                Renewal::NewServing => {
                    let mut b = b.clone();
                    b.renew_serving(&names, cfg.lifetime)?;
                    b
                }
                Renewal::NewCa => Bundle::generate(&names, cfg.lifetime)?,
            },
            None => Bundle::generate(&names, cfg.lifetime)?,
        };
        let mut secret = existing.clone().unwrap_or_default();
        secret.metadata.name = Some(cfg.secret.clone());
        secret.metadata.namespace = Some(cfg.namespace.clone());
        secret.type_ = Some("Opaque".into());
        secret.data = Some(next.to_secret_data());
        let r = if existing.is_some() {
            api.replace(&cfg.secret, &PostParams::default(), &secret)
                .await
        } else {
            api.create(&PostParams::default(), &secret).await
        };
        match r {
            Ok(_) => {
                tracing::info!(secret = %cfg.secret, not_after = next.not_after, "webhook certificate written");
                return Ok(next);
            }
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(TlsError::Contended)
}

/// Put the CA bundle into every webhook of the operator's configurations (idempotent; a
/// `kubectl apply` that reset it is repaired on the next call).
pub async fn inject_ca(client: &Client, cfg: &TlsConfig, ca_pem: &str) -> Result<(), TlsError> {
    let ca = ByteString(ca_pem.as_bytes().to_vec());
    inject_into::<MutatingWebhookConfiguration>(client, &cfg.mutating, &ca, |c| {
        c.webhooks
            .iter_mut()
            .flatten()
            .map(|w| &mut w.client_config)
            .collect()
    })
    .await?;
    inject_into::<ValidatingWebhookConfiguration>(client, &cfg.validating, &ca, |c| {
        c.webhooks
            .iter_mut()
            .flatten()
            .map(|w| &mut w.client_config)
            .collect()
    })
    .await
}

async fn inject_into<K>(
    client: &Client,
    names: &[String],
    ca: &ByteString,
    client_configs: impl Fn(&mut K) -> Vec<&mut WebhookClientConfig>,
) -> Result<(), TlsError>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::all(client.clone());
    for name in names {
        let Some(mut c) = api.get_opt(name).await? else {
            continue;
        };
        let mut changed = false;
        for cc in client_configs(&mut c) {
            if cc.ca_bundle.as_ref() != Some(ca) {
                cc.ca_bundle = Some(ca.clone());
                changed = true;
            }
        }
        if changed {
            let webhooks = serde_json::to_value(&c)
                .map(|v| v["webhooks"].clone())
                .unwrap_or_default();
            api.patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&serde_json::json!({"webhooks": webhooks})),
            )
            .await?;
            tracing::info!(config = %name, "CA bundle injected");
        }
    }
    Ok(())
}
