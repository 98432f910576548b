//! The egress guard: the operator fetches a tenant's `oci://` reference through a proxy of its
//! own, in process, that checks every connection the registry client opens (the registry, its
//! token service, every redirect) after DNS resolution, and connects to exactly the address it
//! checked. A tenant therefore cannot make the operator reach loopback, link-local addresses
//! (cloud metadata services), or the cluster's own service and pod ranges, by naming them, by
//! a DNS name that resolves to them, or by a registry's redirect. The guard also caps the
//! bytes a fetch may receive, whatever the registry sends.
//!
//! Only `CONNECT` (HTTPS) is tunnelled: plain HTTP is refused.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Time to resolve a host or connect to it.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of a proxy request's head read at most.
const MAX_HEAD: usize = 8 << 10;

/// Networks a fetch must never reach, each with why.
#[derive(Clone, Debug)]
pub struct EgressPolicy {
    refused: Vec<(IpNet, String)>,
}

/// Networks refused everywhere: loopback, unspecified, link-local (cloud metadata services
/// live there: 169.254.169.254), multicast and broadcast, and two metadata addresses outside
/// link-local.
const ALWAYS: &[(&str, &str)] = &[
    ("0.0.0.0/8", "an unspecified address"),
    ("127.0.0.0/8", "a loopback address"),
    (
        "169.254.0.0/16",
        "a link-local address (cloud metadata services live there)",
    ),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("100.100.100.200/32", "a cloud metadata address"),
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("fe80::/10", "a link-local address"),
    ("ff00::/8", "a multicast address"),
    ("fd00:ec2::254/128", "a cloud metadata address"),
];

impl EgressPolicy {
    /// The networks always refused, plus `cluster` (the cluster's service and pod ranges,
    /// and any the admin adds), each with its reason.
    pub fn new(cluster: impl IntoIterator<Item = (IpNet, String)>) -> Self {
        let mut refused: Vec<(IpNet, String)> = ALWAYS
            .iter()
            .map(|(net, why)| {
                (
                    net.parse().expect("the fixed networks parse"),
                    (*why).to_owned(),
                )
            })
            .collect();
        refused.extend(cluster);
        EgressPolicy { refused }
    }

    /// Why `ip` is refused (what it is, and the network), if it is. An IPv4 address written as
    /// IPv6 (`::ffff:a.b.c.d`) is checked as itself.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match self.refused.iter().find(|(net, _)| net.contains(&ip)) {
            Some((net, why)) => Err(format!("{why} ({net})")),
            None => Ok(()),
        }
    }
}

/// What the guard saw go wrong in one fetch, for the error the user reads.
#[derive(Clone, Debug, Default)]
struct Log(Arc<Mutex<Option<String>>>);

impl Log {
    fn set(&self, why: String) {
        if let Ok(mut l) = self.0.lock() {
            l.get_or_insert(why);
        }
    }
    fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|l| l.clone())
    }
}

/// A running guard, for one fetch: dropped, it stops, with every tunnel it holds.
#[derive(Debug)]
pub struct Guard {
    addr: SocketAddr,
    log: Log,
    connections: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Guard {
    /// Start a guard on a loopback port of its own, refusing what `policy` refuses and letting
    /// the fetch receive at most `max_bytes` in all.
    pub async fn start(policy: Arc<EgressPolicy>, max_bytes: u64) -> std::io::Result<Guard> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let log = Log::default();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let budget = Arc::new(AtomicU64::new(max_bytes));
        let (l, c) = (log.clone(), connections.clone());
        let task = tokio::spawn(async move {
            // Dropped with the accept loop: every tunnel ends with the guard.
            let mut tunnels = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let (policy, log, conns, budget) =
                    (policy.clone(), l.clone(), c.clone(), budget.clone());
                tunnels.spawn(async move {
                    if let Err(why) = tunnel(stream, &policy, &conns, &budget, max_bytes).await {
                        tracing::debug!(%why, "registry connection refused or ended");
                        log.set(why);
                    }
                });
                while tunnels.try_join_next().is_some() {}
            }
        });
        Ok(Guard {
            addr,
            log,
            connections,
            task,
        })
    }

    /// The proxy URL the registry client is given.
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Why the guard refused or cut a connection of this fetch, if it did.
    pub fn refusal(&self) -> Option<String> {
        self.log.get()
    }

    /// The `host:port → address` of every connection made, in order (for tests and logs).
    pub fn connections(&self) -> Vec<String> {
        self.connections
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tunnel(
    mut client: TcpStream,
    policy: &EgressPolicy,
    connections: &Mutex<Vec<String>>,
    budget: &AtomicU64,
    max_bytes: u64,
) -> Result<(), String> {
    let head = tokio::time::timeout(CONNECT_TIMEOUT, read_head(&mut client))
        .await
        .map_err(|_| "the registry client sent no request".to_owned())??;
    let refuse = |status: &str| format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
    let target = head
        .strip_prefix("CONNECT ")
        .and_then(|r| r.split(' ').next())
        .map(str::to_owned);
    let Some(target) = target else {
        let _ = client
            .write_all(refuse("405 Method Not Allowed").as_bytes())
            .await;
        let what = head.split(' ').take(2).collect::<Vec<_>>().join(" ");
        return Err(format!(
            "plain HTTP is refused, HTTPS only (the client asked for `{what}`)"
        ));
    };
    let (host, port) =
        split_host_port(&target).ok_or_else(|| format!("`{target}` is not a host and port"))?;
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(a)) => a.collect(),
        Ok(Err(e)) => {
            let _ = client.write_all(refuse("502 Bad Gateway").as_bytes()).await;
            return Err(format!("cannot resolve `{host}`: {e}"));
        }
        Err(_) => {
            let _ = client
                .write_all(refuse("504 Gateway Timeout").as_bytes())
                .await;
            return Err(format!(
                "resolving `{host}` took longer than {CONNECT_TIMEOUT:?}"
            ));
        }
    };
    // Every address the name has must be allowed: a name that also resolves inside the
    // cluster is refused whichever address would have been tried first.
    for a in &addrs {
        if let Err(why) = policy.check(a.ip()) {
            let _ = client.write_all(refuse("403 Forbidden").as_bytes()).await;
            let ip = a.ip();
            return Err(if host == ip.to_string() {
                format!("{ip} is {why}: refused")
            } else {
                format!("`{host}` resolves to {ip}, {why}: refused")
            });
        }
    }
    let mut last = format!("`{host}` has no address");
    let mut server = None;
    for a in &addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(a)).await {
            Ok(Ok(s)) => {
                server = Some(s);
                if let Ok(mut c) = connections.lock() {
                    c.push(format!("{host}:{port} → {a}"));
                }
                break;
            }
            Ok(Err(e)) => last = format!("cannot connect to {host}:{port} ({a}): {e}"),
            Err(_) => last = format!("connecting to {host}:{port} ({a}) timed out"),
        }
    }
    let Some(server) = server else {
        let _ = client.write_all(refuse("502 Bad Gateway").as_bytes()).await;
        return Err(last);
    };
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async move {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
        let _ = sw.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => n as u64,
            };
            let left = budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    Some(b.saturating_sub(n))
                })
                .unwrap_or(0);
            if n > left {
                return Err(format!(
                    "the registry sent more than {max_bytes} bytes for one profile: cut off"
                ));
            }
            if cw.write_all(&buf[..n as usize]).await.is_err() {
                return Ok(());
            }
        }
    };
    tokio::select! {
        r = down => r,
        () = up => Ok(()),
    }
}

/// The request's head, up to the blank line.
async fn read_head(s: &mut TcpStream) -> Result<String, String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err("the registry client's request head is too long".into());
        }
        match s.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return Err("the registry client closed the connection".into()),
        }
    }
    String::from_utf8(head).map_err(|_| "the registry client's request is not text".into())
}

/// `host:port` or `[v6]:port`.
fn split_host_port(target: &str) -> Option<(String, u16)> {
    if let Some(v6) = target.strip_prefix('[') {
        let (host, port) = v6.split_once("]:")?;
        return Some((host.to_owned(), port.parse().ok()?));
    }
    let (host, port) = target.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_and_cluster_networks_are_refused_with_the_reason() {
        let p = EgressPolicy::new([(
            "10.96.0.0/24".parse().unwrap(),
            "in the cluster's service range".to_owned(),
        )]);
        for (ip, says) in [
            ("127.0.0.1", "loopback"),
            ("169.254.169.254", "link-local"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("10.96.0.1", "service range"),
            ("0.0.0.0", "unspecified"),
        ] {
            let e = p.check(ip.parse().unwrap()).unwrap_err();
            assert!(e.contains(says), "{ip}: {e}");
        }
        for ok in ["192.0.2.2", "10.97.0.1", "2001:db8::1"] {
            p.check(ok.parse().unwrap()).unwrap();
        }
    }

    async fn connect_through(guard: &Guard, target: &str) -> String {
        let mut s = TcpStream::connect(guard.addr).await.unwrap();
        s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = vec![0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[tokio::test]
    async fn names_resolving_inside_are_refused_and_outside_tunnelled() {
        let guard = Guard::start(Arc::new(EgressPolicy::new([])), 1 << 20)
            .await
            .unwrap();
        // `localhost` resolves to loopback: refused after DNS.
        let answer = connect_through(&guard, "localhost:5443").await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        let why = guard.refusal().unwrap();
        assert!(
            why.contains("`localhost` resolves to") && why.contains("loopback"),
            "{why}"
        );
        assert!(guard.connections().is_empty());
    }

    #[tokio::test]
    async fn a_registry_sending_too_much_is_cut_off_and_plain_http_refused() {
        // A "registry" on a non-loopback address of this machine, when it has one.
        let Some(ip) = local_address() else {
            eprintln!("skipped: this machine has no non-loopback IPv4 address");
            return;
        };
        let server = TcpListener::bind((ip, 0)).await.unwrap();
        let target = server.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = server.accept().await.unwrap();
            let _ = s.write_all(&vec![b'x'; 200_000]).await;
        });
        let guard = Guard::start(Arc::new(EgressPolicy::new([])), 100_000)
            .await
            .unwrap();
        let mut s = TcpStream::connect(guard.addr).await.unwrap();
        s.write_all(format!("CONNECT {target} HTTP/1.1\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all).await;
        assert!(all.len() < 150_000, "{} bytes passed", all.len());
        let why = guard.refusal().unwrap();
        assert!(why.contains("more than 100000 bytes"), "{why}");

        let guard = Guard::start(Arc::new(EgressPolicy::new([])), 1 << 20)
            .await
            .unwrap();
        let mut s = TcpStream::connect(guard.addr).await.unwrap();
        s.write_all(format!("GET http://{target}/v2/ HTTP/1.1\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer).await;
        assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
        assert!(guard.refusal().unwrap().contains("plain HTTP is refused"));
    }

    fn local_address() -> Option<IpAddr> {
        // The address this machine would use to reach a public one (no packet is sent).
        let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
        s.connect("203.0.113.1:9").ok()?;
        let ip = s.local_addr().ok()?.ip();
        (!ip.is_loopback()).then_some(ip)
    }
}
