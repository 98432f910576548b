//! The CA and serving certificate as PEM: generated with rcgen, checked for renewal, loaded
//! into rustls.

use super::*;

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

pub(super) fn now_secs() -> u64 {
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

    pub(super) fn to_secret_data(&self) -> BTreeMap<String, ByteString> {
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

    pub(super) fn from_secret(s: &Secret) -> Option<Self> {
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
