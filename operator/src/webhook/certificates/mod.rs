//! TLS for the webhook server without cert-manager: a CA and a serving certificate made with
//! rcgen, kept in a Secret (so every replica and restart serves the same one), the CA bundle
//! injected into the operator's webhook configurations, renewal before expiry.

pub mod lifecycle;

mod bundle;
mod resolver;
mod store;

pub use bundle::*;
pub use resolver::*;
pub use store::*;

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
    #[error("generating certificates")]
    Generate(#[from] rcgen::Error),
    /// The PEM of the certificate or key does not parse.
    #[error("reading the serving certificate or key")]
    Pem(#[source] rustls::pki_types::pem::Error),
    /// rustls refused the key.
    #[error("loading the serving key")]
    Key(#[source] rustls::Error),
    /// An API call failed.
    #[error("kubernetes API")]
    Kube(#[from] kube::Error),
    /// Other replicas kept changing the certificate Secret while this one tried to settle it.
    #[error("could not settle the webhook certificate Secret: it kept changing (conflicts)")]
    Contended,
}
