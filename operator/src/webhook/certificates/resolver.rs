//! The TLS resolver: serves whatever certificate is current, swapped in place on renewal.

use super::*;

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
