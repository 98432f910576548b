//! TLS for the webhook server without cert-manager: a CA and a serving certificate made with
//! rcgen, kept in a Secret (so every replica and restart serves the same one), the CA bundle
//! injected into the operator's webhook configurations, renewal before expiry.

pub mod lifecycle;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Renew the serving certificate when it has less than this left (or half its lifetime).
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default lifetime of a serving certificate.
pub const SERVING_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// The shortest serving lifetime accepted: replicas look at the Secret every 15 s.
pub const MIN_SERVING_LIFETIME: Duration = Duration::from_secs(60);
/// Lifetime of the CA.
pub const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Errors of certificate management.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Generating a key or certificate failed.
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// The PEM of the certificate or key does not parse.
    #[error("reading the serving certificate or key: {0}")]
    Pem(#[source] rustls::pki_types::pem::Error),
    /// rustls refused the key.
    #[error("loading the serving key: {0}")]
    Key(#[source] rustls::Error),
    /// An API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Other replicas kept changing the certificate Secret while this one tried to settle it.
    #[error("could not settle the webhook certificate Secret: it kept changing (conflicts)")]
    Contended,
}

/// PEM material of the CA and the serving certificate, and the serving certificate's expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// CA certificate (PEM) — what the API server trusts.
    pub ca_cert: String,
    /// CA private key (PEM).
    pub ca_key: String,
    /// Serving certificate (PEM).
    pub cert: String,
    /// Serving private key (PEM).
    pub key: String,
    /// Serving certificate expiry, seconds since the epoch.
    pub not_after: u64,
    /// CA expiry, seconds since the epoch.
    pub ca_not_after: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn offset(secs: u64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn ca_params(not_after: u64) -> Result<CertificateParams, TlsError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "seccomp-operator webhook CA");
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = offset(now_secs().saturating_sub(3600));
    p.not_after = offset(not_after);
    Ok(p)
}

/// DNS names of the webhook Service.
pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
        format!("{service}.{namespace}"),
    ]
}

impl Bundle {
    /// A new CA and serving certificate for `names`.
    pub fn generate(names: &[String], lifetime: Duration) -> Result<Self, TlsError> {
        let ca_not_after = now_secs() + CA_LIFETIME.as_secs();
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params(ca_not_after)?.self_signed(&ca_key)?;
        let mut b = Bundle {
            ca_cert: ca_cert.pem(),
            ca_key: ca_key.serialize_pem(),
            cert: String::new(),
            key: String::new(),
            not_after: 0,
            ca_not_after,
        };
        b.renew_serving(names, lifetime)?;
        Ok(b)
    }

    /// A new serving certificate signed by the existing CA.
    pub fn renew_serving(&mut self, names: &[String], lifetime: Duration) -> Result<(), TlsError> {
        let ca_key = KeyPair::from_pem(&self.ca_key)?;
        let issuer = Issuer::new(ca_params(self.ca_not_after)?, ca_key);
        let not_after = (now_secs() + lifetime.as_secs()).min(self.ca_not_after);
        let mut p = CertificateParams::new(names.to_vec())?;
        p.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.not_before = offset(now_secs().saturating_sub(3600));
        p.not_after = offset(not_after);
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &issuer)?;
        self.cert = cert.pem();
        self.key = key.serialize_pem();
        self.not_after = not_after;
        Ok(())
    }

    /// What to do with this bundle now, for serving certificates of `lifetime`: nothing, a
    /// new serving certificate, or a new CA.
    pub fn needs(&self, now: u64, lifetime: Duration) -> Renewal {
        let renew_before = RENEW_BEFORE.min(lifetime / 2).as_secs();
        if self.ca_not_after <= now + 2 * SERVING_LIFETIME.max(lifetime).as_secs() {
            Renewal::NewCa
        } else if self.not_after <= now + renew_before
            // Issued for longer than now configured (the lifetime was shortened): replace it.
            || self.not_after > now + lifetime.as_secs() + 300
        {
            Renewal::NewServing
        } else {
            Renewal::None
        }
    }

    fn to_secret_data(&self) -> BTreeMap<String, ByteString> {
        let mut d = BTreeMap::new();
        for (k, v) in [
            ("ca.crt", self.ca_cert.clone()),
            ("ca.key", self.ca_key.clone()),
            ("tls.crt", self.cert.clone()),
            ("tls.key", self.key.clone()),
            ("not-after", self.not_after.to_string()),
            ("ca-not-after", self.ca_not_after.to_string()),
        ] {
            d.insert(k.to_owned(), ByteString(v.into_bytes()));
        }
        d
    }

    fn from_secret(s: &Secret) -> Option<Self> {
        let d = s.data.as_ref()?;
        let get = |k: &str| d.get(k).and_then(|v| String::from_utf8(v.0.clone()).ok());
        Some(Bundle {
            ca_cert: get("ca.crt")?,
            ca_key: get("ca.key")?,
            cert: get("tls.crt")?,
            key: get("tls.key")?,
            not_after: get("not-after")?.parse().ok()?,
            ca_not_after: get("ca-not-after")?.parse().ok()?,
        })
    }

    /// The serving certificate as rustls wants it.
    pub fn certified_key(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.cert.as_bytes())
                .chain(CertificateDer::pem_slice_iter(self.ca_cert.as_bytes()))
                .collect::<Result<_, _>>()
                .map_err(TlsError::Pem)?;
        let key = PrivateKeyDer::from_pem_slice(self.key.as_bytes()).map_err(TlsError::Pem)?;
        let signing =
            rustls::crypto::ring::sign::any_supported_type(&key).map_err(TlsError::Key)?;
        Ok(Arc::new(CertifiedKey::new(certs, signing)))
    }
}

/// What a bundle needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Good as it is.
    None,
    /// The serving certificate expires soon.
    NewServing,
    /// The CA expires soon.
    NewCa,
}

/// Serves whatever certificate is current; swapped in place on renewal.
#[derive(Debug)]
pub struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
    not_after: std::sync::atomic::AtomicU64,
}

impl Resolver {
    /// A resolver serving `key`, which expires at `not_after` (seconds since the epoch, if
    /// known).
    pub fn new(key: Arc<CertifiedKey>, not_after: Option<u64>) -> Self {
        Resolver {
            current: RwLock::new(key),
            not_after: std::sync::atomic::AtomicU64::new(not_after.unwrap_or(0)),
        }
    }
    /// Serve `key` from now on.
    pub fn set(&self, key: Arc<CertifiedKey>, not_after: Option<u64>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = key;
        self.not_after
            .store(not_after.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
    }
    /// When the certificate served now expires, if known.
    pub fn not_after(&self) -> Option<u64> {
        Some(self.not_after.load(std::sync::atomic::Ordering::Relaxed)).filter(|t| *t > 0)
    }
}

/// When the first certificate in `pem` expires (seconds since the epoch).
pub fn pem_not_after(pem: &str) -> Option<u64> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = block.parse_x509().ok()?;
    u64::try_from(cert.validity().not_after.timestamp()).ok()
}

/// Parse a lifetime such as `365d`, `12h`, `30m` or `90s` (at least [`MIN_SERVING_LIFETIME`]).
pub fn parse_lifetime(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}`: {e} (expected e.g. 365d, 12h, 90s)"))?;
    if d < MIN_SERVING_LIFETIME {
        return Err(format!(
            "`{s}`: a serving certificate must live at least {} s (replicas pick up a renewal within 15 s)",
            MIN_SERVING_LIFETIME.as_secs()
        ));
    }
    Ok(d)
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_bundle_loads_into_rustls_and_renews() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let names = service_names("seccomp-operator-webhook", "seccomp-operator");
        let year = SERVING_LIFETIME;
        let b = Bundle::generate(&names, year).unwrap();
        assert!(b.cert.contains("BEGIN CERTIFICATE") && b.ca_cert.contains("BEGIN CERTIFICATE"));
        b.certified_key().unwrap();
        let parsed = pem_not_after(&b.cert).unwrap();
        assert!(
            parsed.abs_diff(b.not_after) <= 1,
            "{parsed} vs {}",
            b.not_after
        );
        assert_eq!(b.needs(now_secs(), year), Renewal::None);
        assert_eq!(
            b.needs(b.not_after - 10 * 24 * 3600, year),
            Renewal::NewServing
        );
        assert_eq!(b.needs(b.ca_not_after - 24 * 3600, year), Renewal::NewCa);
        // A shortened lifetime replaces the long certificate at once; a short one is renewed
        // when half of it is left.
        let minute = Duration::from_secs(60);
        assert_eq!(b.needs(now_secs(), minute), Renewal::NewServing);
        let short = Bundle::generate(&names, minute).unwrap();
        assert_eq!(short.needs(now_secs(), minute), Renewal::None);
        assert_eq!(
            short.needs(short.not_after - 29, minute),
            Renewal::NewServing
        );
        let mut r = b.clone();
        r.renew_serving(&names, year).unwrap();
        assert_ne!(r.cert, b.cert);
        assert_eq!(
            r.ca_cert, b.ca_cert,
            "renewal keeps the CA the API server trusts"
        );
        let back = Bundle::from_secret(&Secret {
            data: Some(r.to_secret_data()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(back, r);
    }
}

#[cfg(test)]
mod lifetime_tests {
    use super::*;

    #[test]
    fn lifetimes_parse_with_units_and_refuse_what_cannot_rotate() {
        assert_eq!(parse_lifetime("365d"), Ok(SERVING_LIFETIME));
        assert_eq!(parse_lifetime("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_lifetime("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_lifetime("12h"), Ok(Duration::from_secs(43200)));
        for bad in ["", "d", "10x", "30s", "-5d", "99999999999999999999d"] {
            let e = parse_lifetime(bad).unwrap_err();
            assert!(e.contains('`'), "{bad}: {e}");
        }
    }
}
