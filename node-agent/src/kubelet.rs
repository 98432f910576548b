//! What this node's kubelet does with a container that sets no seccomp profile: its
//! `seccompDefault` (GA in Kubernetes 1.27), read from the kubelet's `/configz` and reported in
//! the node's `SeccompNodeStatus` as `status.kubelet`, so that the operator counts such
//! containers as `runtime-default` on this node and the namespace policy accepts them in pods
//! bound here.
//!
//! # How the agent asks
//!
//! `GET https://<node IP>:10250/configz`, from the agent straight to its own node's kubelet
//! (the node's IP comes from the downward API, `status.hostIP`, as `NODE_IP`), with the
//! agent's ServiceAccount token. The kubelet authenticates the token (TokenReview) and
//! authorises it (SubjectAccessReview) on the `nodes/configz` subresource, verb `get`: the
//! agent's ClusterRole grants exactly that, never `nodes/proxy`, which would also open the
//! kubelet's exec, attach and port-forward endpoints into every pod of the node. Kubelets check
//! `nodes/configz` with fine-grained authorization (KEP-2862: on by default from 1.33, GA in
//! 1.36); a kubelet without it checks `nodes/proxy`, refuses, and the setting stays unknown.
//! The kubelet must run webhook authentication and authorization
//! (`authentication.webhook.enabled: true`, `authorization.mode: Webhook`).
//!
//! # Verifying the kubelet
//!
//! The request carries the agent's token, so the kubelet's serving certificate is verified
//! against the cluster CA: the ServiceAccount's `ca.crt`, the bundle the agent already trusts
//! for the API server (out of a cluster: the kubeconfig's). That holds where kubelets get their
//! serving certificates from the cluster CA (`serverTLSBootstrap`, or issued from it, as in the
//! local cluster), for a certificate naming the node's IP. Where kubelets keep their default
//! self-signed certificate the check fails and the setting stays unknown, unless
//! `--kubelet-insecure-skip-tls-verify` (`KUBELET_INSECURE_SKIP_TLS_VERIFY`, default false) is
//! set. Skipping the check hands the token to whatever answers on the node's IP at port 10250:
//! anything able to intercept that traffic gets a token that reads every SeccompProfile and
//! writes this node's report (the agent's RBAC and the API server's policy
//! `seccomp-operator-node-reports` bound it to that). Hence
//! off by default, and a choice for clusters that accept it.
//!
//! # When it fails
//!
//! The setting is unknown (no node IP, the kubelet refuses or cannot be reached, an unexpected
//! answer): reported as `kubelet.reason` without `kubelet.seccompDefault`, logged, and treated
//! by the operator as not defaulting (fail closed: such containers count as unset). The kubelet
//! is asked again every [`RECHECK`] (its setting changes only with a restart) and, after a
//! failure, every [`RETRY`].

use crds::KubeletSettings;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::sync::watch;

/// The kubelet's HTTPS port.
pub const KUBELET_PORT: u16 = 10250;
/// After an answer, the kubelet is asked again this often.
pub const RECHECK: Duration = Duration::from_secs(600);
/// After a failure, the kubelet is asked again this often.
pub const RETRY: Duration = Duration::from_secs(60);
/// A request to the kubelet gives up after this long.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Why `/configz` does not say.
#[derive(Debug, thiserror::Error)]
pub enum ConfigzError {
    /// The body is not JSON.
    #[error("the answer is not JSON")]
    NotJson(#[source] serde_json::Error),
    /// No `kubeletconfig` object.
    #[error("the answer has no \"kubeletconfig\" object")]
    NoKubeletConfig,
    /// `seccompDefault` is there but not a boolean.
    #[error("kubeletconfig.seccompDefault is {0}, not a boolean")]
    NotBoolean(String),
}

/// The kubelet's `seccompDefault` from its `/configz` answer,
/// `{"kubeletconfig": {..., "seccompDefault": true, ...}}`. A configuration without the field
/// leaves it at the kubelet's default, false.
pub fn parse_configz(body: &str) -> Result<bool, ConfigzError> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(ConfigzError::NotJson)?;
    let config = v
        .get("kubeletconfig")
        .and_then(serde_json::Value::as_object)
        .ok_or(ConfigzError::NoKubeletConfig)?;
    match config.get("seccompDefault") {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(other) => Err(ConfigzError::NotBoolean(other.to_string())),
    }
}

/// Why the kubelet's setting is not known.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// The agent does not know its node's IP.
    #[error("the node's IP is not known (set NODE_IP from the downward API, status.hostIP)")]
    NoNodeIp,
    /// The kubelet's URL is not a URL.
    #[error("{url} is not a URL")]
    Url {
        /// The kubelet's URL.
        url: String,
        /// Why.
        #[source]
        source: http::uri::InvalidUri,
    },
    /// The client for the kubelet could not be built.
    #[error("a client for {url}")]
    Client {
        /// The kubelet's URL.
        url: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The request failed or was refused.
    #[error("GET {url}/configz")]
    Request {
        /// The kubelet's URL.
        url: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// No answer in time.
    #[error("GET {url}/configz: no answer within {}s", TIMEOUT.as_secs())]
    Timeout {
        /// The kubelet's URL.
        url: String,
    },
    /// The answer did not say.
    #[error("GET {url}/configz")]
    Configz {
        /// The kubelet's URL.
        url: String,
        /// Why.
        #[source]
        source: ConfigzError,
    },
}

/// How the agent reaches its kubelet.
#[derive(Clone, Debug)]
pub struct Options {
    /// The node's IP (`status.hostIP`).
    pub node_ip: Option<IpAddr>,
    /// The kubelet's HTTPS port.
    pub port: u16,
    /// Do not verify the kubelet's serving certificate (see the module's docs).
    pub insecure_skip_tls_verify: bool,
}

/// The kubelet's base URL, `https://<ip>:<port>` (an IPv6 address in brackets).
pub fn url(ip: IpAddr, port: u16) -> String {
    format!("https://{}", SocketAddr::new(ip, port))
}

/// A client for the kubelet: the API server's configuration (its credentials: the
/// ServiceAccount's token; its CA bundle) pointed at the kubelet.
fn client(api: &kube::Config, opts: &Options) -> Result<(kube::Client, String), KubeletError> {
    let ip = opts.node_ip.ok_or(KubeletError::NoNodeIp)?;
    let url = url(ip, opts.port);
    let mut cfg = api.clone();
    cfg.cluster_url = url.parse().map_err(|source| KubeletError::Url {
        url: url.clone(),
        source,
    })?;
    // The certificate must name the node's IP, not the API server's name.
    cfg.tls_server_name = None;
    cfg.accept_invalid_certs = opts.insecure_skip_tls_verify;
    cfg.proxy_url = None;
    cfg.default_retry = false;
    cfg.connect_timeout = Some(TIMEOUT);
    cfg.read_timeout = Some(TIMEOUT);
    let client = kube::Client::try_from(cfg).map_err(|source| KubeletError::Client {
        url: url.clone(),
        source,
    })?;
    Ok((client, url))
}

/// Ask the kubelet for its `seccompDefault` (a new client each time: it is asked rarely).
async fn learn(api: &kube::Config, opts: &Options) -> Result<bool, KubeletError> {
    let (client, url) = client(api, opts)?;
    let request = http::Request::get("/configz")
        .body(Vec::new())
        .expect("a constant request is valid");
    let body = tokio::time::timeout(TIMEOUT, client.request_text(request))
        .await
        .map_err(|_| KubeletError::Timeout { url: url.clone() })?
        .map_err(|source| KubeletError::Request {
            url: url.clone(),
            source,
        })?;
    parse_configz(&body).map_err(|source| KubeletError::Configz { url, source })
}

/// The status entry for what the agent learnt: the setting, or why it is not known (bounded).
pub fn settings(learnt: &Result<bool, KubeletError>) -> KubeletSettings {
    match learnt {
        Ok(on) => KubeletSettings {
            seccomp_default: Some(*on),
            reason: None,
        },
        Err(e) => KubeletSettings {
            seccomp_default: None,
            reason: Some(seccomp_profile::limits::truncate(
                &crate::error_chain(e),
                crds::nodestatus::MAX_NODE_MESSAGE_BYTES,
            )),
        },
    }
}

/// Learn the kubelet's setting into `tx`, again every [`RECHECK`] (every [`RETRY`] while it
/// fails), until `shutdown` turns true. `api`: the agent's API server configuration.
pub async fn run(
    api: kube::Config,
    opts: Options,
    tx: watch::Sender<Option<KubeletSettings>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let learnt = learn(&api, &opts).await;
        let entry = settings(&learnt);
        let changed = tx.borrow().as_ref() != Some(&entry);
        if changed {
            match &learnt {
                Ok(on) => {
                    tracing::info!(seccomp_default = on, "read the kubelet's seccompDefault")
                }
                Err(e) => {
                    tracing::warn!(error = %crate::error_chain(e), "the kubelet's seccompDefault is not known; unset containers on this node count as unset")
                }
            }
            let _ = tx.send(Some(entry));
        }
        let wait = if learnt.is_ok() { RECHECK } else { RETRY };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configz_says_whether_the_kubelet_defaults_to_runtime_default() {
        let on = r#"{"kubeletconfig": {"enableServer": true, "seccompDefault": true, "podPidsLimit": -1}}"#;
        assert!(parse_configz(on).unwrap());
        let off = r#"{"kubeletconfig": {"seccompDefault": false}}"#;
        assert!(!parse_configz(off).unwrap());
        // Absent: the kubelet's default, false.
        let missing = r#"{"kubeletconfig": {"enableServer": true}}"#;
        assert!(!parse_configz(missing).unwrap());
    }

    #[test]
    fn malformed_configz_is_an_error_not_a_guess() {
        assert!(matches!(
            parse_configz("<html>Forbidden</html>"),
            Err(ConfigzError::NotJson(_))
        ));
        assert!(matches!(
            parse_configz(r#"{"seccompDefault": true}"#),
            Err(ConfigzError::NoKubeletConfig)
        ));
        assert!(matches!(
            parse_configz(r#"{"kubeletconfig": "x"}"#),
            Err(ConfigzError::NoKubeletConfig)
        ));
        let e = parse_configz(r#"{"kubeletconfig": {"seccompDefault": "true"}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "kubeletconfig.seccompDefault is \"true\", not a boolean"
        );
    }

    #[test]
    fn the_status_entry_is_the_setting_or_a_bounded_reason() {
        assert_eq!(
            settings(&Ok(true)),
            KubeletSettings {
                seccomp_default: Some(true),
                reason: None
            }
        );
        let unknown = settings(&Err(KubeletError::Configz {
            url: "https://10.0.0.1:10250".into(),
            source: ConfigzError::NotBoolean("x".repeat(1000)),
        }));
        assert_eq!(unknown.seccomp_default, None);
        let reason = unknown.reason.unwrap();
        assert!(
            reason.starts_with("GET https://10.0.0.1:10250/configz: "),
            "{reason}"
        );
        assert!(reason.len() <= crds::nodestatus::MAX_NODE_MESSAGE_BYTES);
        assert_eq!(
            serde_json::to_value(settings(&Err(KubeletError::NoNodeIp))).unwrap(),
            serde_json::json!({"reason": "the node's IP is not known (set NODE_IP from the downward API, status.hostIP)"})
        );
        assert_eq!(
            serde_json::to_value(settings(&Ok(false))).unwrap(),
            serde_json::json!({"seccompDefault": false})
        );
    }

    /// A fake kubelet on 127.0.0.1 serving a certificate for that IP, signed by its own CA:
    /// answers every request with `status` and `body`, and sends each request's head back.
    async fn fake_kubelet(
        status: &'static str,
        body: &'static str,
    ) -> (u16, Vec<u8>, tokio::sync::mpsc::UnboundedReceiver<String>) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.clone().self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &Issuer::new(ca, ca_key))
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (heads, seen) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
        });
        (port, ca_cert.der().to_vec(), seen)
    }

    /// An API configuration as in a pod: a token file and the cluster CA.
    fn api_config(ca: Option<Vec<u8>>, token: &std::path::Path) -> kube::Config {
        let mut cfg = kube::Config::new("https://api.invalid:6443".parse().unwrap());
        cfg.root_cert = ca.map(|c| vec![c]);
        cfg.auth_info.token_file = Some(token.display().to_string());
        cfg
    }

    #[tokio::test]
    async fn the_kubelet_is_asked_with_the_token_and_its_certificate_checked() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "agent-token").unwrap();
        let (port, ca, mut seen) =
            fake_kubelet("200 OK", r#"{"kubeletconfig": {"seccompDefault": true}}"#).await;
        let opts = |insecure| Options {
            node_ip: Some("127.0.0.1".parse().unwrap()),
            port,
            insecure_skip_tls_verify: insecure,
        };
        // Signed by the CA the agent trusts, for the node's IP: asked, with the token.
        assert!(learn(&api_config(Some(ca), &token), &opts(false))
            .await
            .unwrap());
        let head = seen.recv().await.unwrap();
        assert!(head.starts_with("GET /configz HTTP/1.1"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("authorization: bearer agent-token"),
            "{head}"
        );
        // Another CA: refused before any request is sent (the token stays with the agent).
        let e = learn(&api_config(Some(other_ca()), &token), &opts(false))
            .await
            .unwrap_err();
        assert!(matches!(e, KubeletError::Request { .. }), "{e}");
        assert!(seen.try_recv().is_err(), "no request reached the kubelet");
        // Unless verification is skipped on purpose.
        assert!(learn(&api_config(None, &token), &opts(true)).await.unwrap());
        // No node IP: unknown, without a request.
        let mut no_ip = opts(false);
        no_ip.node_ip = None;
        assert!(matches!(
            learn(&api_config(None, &token), &no_ip).await,
            Err(KubeletError::NoNodeIp)
        ));
    }

    #[tokio::test]
    async fn a_refusal_is_unknown_with_the_kubelets_reason() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "agent-token").unwrap();
        let (port, ca, _seen) = fake_kubelet(
            "403 Forbidden",
            r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Forbidden (user=system:serviceaccount:seccomp-operator:seccomp-node-agent, verb=get, resource=nodes, subresource(s)=[configz])","reason":"Forbidden","code":403}"#,
        )
        .await;
        let opts = Options {
            node_ip: Some("127.0.0.1".parse().unwrap()),
            port,
            insecure_skip_tls_verify: false,
        };
        let learnt = learn(&api_config(Some(ca), &token), &opts).await;
        let entry = settings(&learnt);
        assert_eq!(entry.seccomp_default, None);
        let reason = entry.reason.unwrap();
        assert!(
            reason.starts_with(&format!("GET https://127.0.0.1:{port}/configz: "))
                && reason.contains("subresource(s)=[configz]"),
            "{reason}"
        );
    }

    /// A CA that signed nothing the fake kubelet serves.
    fn other_ca() -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_kubelets_url_brackets_ipv6() {
        assert_eq!(
            url("10.90.0.2".parse().unwrap(), KUBELET_PORT),
            "https://10.90.0.2:10250"
        );
        assert_eq!(
            url("fd00::2".parse().unwrap(), KUBELET_PORT),
            "https://[fd00::2]:10250"
        );
    }
}
