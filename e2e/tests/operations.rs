//! Day-two operations on the real cluster: the webhook certificate rotating under load, in
//! both of its modes; a delete right after admission; an API server outage; the agent killed
//! mid-sync; an agent that cannot write turning unready. Some journeys change the operator's
//! Deployment or the agents' DaemonSet and put them back (also when they fail). Run one at a
//! time (`--test-threads=1`).

use e2e::*;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NS: &str = "seccomp-operator";
const SECRET: &str = "seccomp-operator-webhook-tls";
const SERVICE_DNS: &str = "seccomp-operator-webhook.seccomp-operator.svc";

/// [`set_operator_env`], then wait until the old replicas are gone: until then the Service
/// may still send a review to one that is draining.
async fn reconfigure_operator(client: &Client, vars: &[&str]) -> anyhow::Result<()> {
    set_operator_env(vars)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    wait_for(
        "the operator's old replicas to be gone",
        Duration::from_secs(90),
        || async {
            let l = pods
                .list(&ListParams::default().labels("app.kubernetes.io/name=seccomp-operator"))
                .await
                .ok()?;
            l.items
                .iter()
                .all(|p| p.metadata.deletion_timestamp.is_none())
                .then_some(())
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(())
}

/// Set (`NAME=value`) or remove (`NAME-`) environment variables of the operator and wait for
/// the rollout.
fn set_operator_env(vars: &[&str]) -> anyhow::Result<()> {
    set_env("deploy/seccomp-operator", vars)
}

/// Set or remove environment variables of a workload (`deploy/NAME`, `ds/NAME`) in the
/// operator's namespace and wait for its rollout.
fn set_env(workload: &str, vars: &[&str]) -> anyhow::Result<()> {
    let mut args = vec!["-n", NS, "set", "env", workload];
    args.extend_from_slice(vars);
    kubectl(&args)?;
    kubectl(&["-n", NS, "rollout", "status", workload, "--timeout=240s"])?;
    Ok(())
}

/// Puts the operator's environment back when dropped, so a failed journey does not leave the
/// next ones a short-lived or unmanaged certificate.
struct RestoreOperator;

impl Drop for RestoreOperator {
    fn drop(&mut self) {
        if let Err(e) = set_operator_env(&["SERVING_CERTIFICATE_LIFETIME-", "MANAGE_CERTIFICATES-"])
        {
            eprintln!("could not restore the operator's environment: {e}");
        }
    }
}

/// SHA-256 fingerprint of the first certificate in `pem`.
fn fingerprint(pem: &[u8]) -> anyhow::Result<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    child.stdin.take().unwrap().write_all(pem)?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "openssl x509 could not read the certificate"
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The fingerprint of the certificate in the Secret now.
async fn secret_fingerprint(client: &Client) -> anyhow::Result<String> {
    let s = Api::<Secret>::namespaced(client.clone(), NS)
        .get(SECRET)
        .await?;
    let crt = s
        .data
        .and_then(|d| d.get("tls.crt").cloned())
        .ok_or_else(|| anyhow::anyhow!("the Secret has no tls.crt"))?;
    fingerprint(&crt.0)
}

/// The fingerprints of the certificates each running operator replica serves now.
async fn served_fingerprints(client: &Client) -> anyhow::Result<BTreeSet<String>> {
    let pods = Api::<Pod>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels("app.kubernetes.io/name=seccomp-operator"))
        .await?;
    let mut out = BTreeSet::new();
    for p in pods.items.iter().filter(|p| is_ready(p)) {
        let Some(ip) = p.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
            continue;
        };
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl s_client -connect {ip}:9443 -servername {SERVICE_DNS} </dev/null 2>/dev/null | openssl x509"
            ))
            .output()?;
        out.insert(fingerprint(&o.stdout)?);
    }
    Ok(out)
}

/// Admission reviews sent all along: a dry-run create of a SeccompProfile every 300 ms, which
/// the fail-closed profile webhook must answer.
struct Probe {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Probe {
    fn start(client: Client, namespace: &str) -> Probe {
        let api: Api<crds::SeccompProfile> = Api::namespaced(client, namespace);
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let (s, o, f) = (stop.clone(), ok.clone(), failed.clone());
        let task = tokio::spawn(async move {
            let profile: crds::SeccompProfile = serde_json::from_value(json!({
                "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
                "metadata": {"name": "probe"},
                "spec": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}}))
            .expect("probe profile");
            let pp = PostParams {
                dry_run: true,
                ..Default::default()
            };
            while !s.load(Ordering::Relaxed) {
                match api.create(&pp, &profile).await {
                    Ok(_) => {
                        o.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => f.lock().unwrap().push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        Probe {
            stop,
            ok,
            failed,
            task,
        }
    }

    /// Stop; the number of answered reviews, or the failures.
    async fn finish(self) -> anyhow::Result<usize> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let failed = self.failed.lock().unwrap().clone();
        anyhow::ensure!(
            failed.is_empty(),
            "{} admission reviews failed (e.g. {:?})",
            failed.len(),
            failed.first()
        );
        Ok(self.ok.load(Ordering::Relaxed))
    }
}

/// A two-day serving certificate for the webhook Service, signed by the given CA, as PEM
/// `(tls.crt, tls.key)`.
fn issue_certificate(ca_crt: &[u8], ca_key: &[u8]) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "e2e-certs-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("ca.crt"), ca_crt)?;
    std::fs::write(dir.join("ca.key"), ca_key)?;
    let san = format!("subjectAltName=DNS:{SERVICE_DNS},DNS:{SERVICE_DNS}.cluster.local");
    let script = format!(
        "set -e; cd {d}
         openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout tls.key -subj /CN={SERVICE_DNS} -out tls.csr 2>/dev/null
         printf '%s\\nextendedKeyUsage=serverAuth\\n' '{san}' > ext
         openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out tls.crt 2>/dev/null",
        d = dir.display()
    );
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()?;
    let read = || -> std::io::Result<(Vec<u8>, Vec<u8>)> {
        Ok((
            std::fs::read(dir.join("tls.crt"))?,
            std::fs::read(dir.join("tls.key"))?,
        ))
    };
    let pair = read();
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(
        o.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(pair?)
}

/// Put a certificate into the serving Secret and wait until every replica serves it; how long
/// that took.
async fn replace_secret_certificate(
    client: &Client,
    (crt, key): &(Vec<u8>, Vec<u8>),
) -> anyhow::Result<Duration> {
    let want = fingerprint(crt)?;
    let b64 = |b: &[u8]| k8s_openapi::ByteString(b.to_vec());
    Api::<Secret>::namespaced(client.clone(), NS)
        .patch(
            SECRET,
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"tls.crt": b64(crt), "tls.key": b64(key)}})),
        )
        .await?;
    let replaced = Instant::now();
    wait_for(
        "every replica to serve the replaced Secret's certificate",
        Duration::from_secs(45),
        || async {
            let served = served_fingerprints(client).await.ok()?;
            (!served.is_empty() && served.iter().all(|s| *s == want)).then_some(())
        },
    )
    .await?;
    Ok(replaced.elapsed())
}

#[tokio::test]
async fn o1_the_webhook_certificate_rotates_and_a_replaced_secret_is_served() -> anyhow::Result<()>
{
    let Some(client) = client().await else {
        return Ok(());
    };
    let ns = TestNs::new(client.clone(), "certs").await?;
    let _restore = RestoreOperator;

    // Self-managed, with a one-minute certificate: renewed every half minute or so, by
    // whichever replica gets there first, and served by both.
    reconfigure_operator(&client, &["SERVING_CERTIFICATE_LIFETIME=60s"]).await?;
    let probe = Probe::start(client.clone(), &ns.name);
    let mut seen = BTreeSet::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(100) {
        if let Ok(f) = secret_fingerprint(&client).await {
            seen.insert(f);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let answered = probe.finish().await?;
    eprintln!(
        "o1: {} certificates in 100 s, {answered} admission reviews answered",
        seen.len()
    );
    assert!(
        seen.len() >= 3,
        "the serving certificate rotated {} times in 100 s",
        seen.len().saturating_sub(1)
    );
    assert!(answered >= 100, "{answered} reviews answered");
    wait_for(
        "every replica to serve the Secret's certificate",
        Duration::from_secs(40),
        || async {
            let want = secret_fingerprint(&client).await.ok()?;
            let served = served_fingerprints(&client).await.ok()?;
            (!served.is_empty() && served.iter().all(|s| *s == want)).then_some(())
        },
    )
    .await?;

    // Provided by someone else (cert-manager): a replaced Secret is served without a restart.
    reconfigure_operator(
        &client,
        &["SERVING_CERTIFICATE_LIFETIME-", "MANAGE_CERTIFICATES=false"],
    )
    .await?;
    // The Secret still holds the last one-minute certificate, which nobody renews now (that is
    // what "provided" means): hand over a long-lived one first, as cert-manager would, and wait
    // until it is served. Only then are reviews counted, across a second replacement.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let data = secrets.get(SECRET).await?.data.unwrap_or_default();
    let (ca_crt, ca_key) = (data["ca.crt"].0.clone(), data["ca.key"].0.clone());
    let first = issue_certificate(&ca_crt, &ca_key)?;
    replace_secret_certificate(&client, &first).await?;
    let second = issue_certificate(&ca_crt, &ca_key)?;
    let probe = Probe::start(client.clone(), &ns.name);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let took = replace_secret_certificate(&client, &second).await?;
    eprintln!("o1: the replaced certificate was served {took:.0?} after the Secret changed");
    tokio::time::sleep(Duration::from_secs(3)).await;
    probe.finish().await?;
    Ok(())
}

#[tokio::test]
async fn o2_a_profile_deleted_right_after_a_pod_was_admitted_stays_until_the_pod_is_gone(
) -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let ns = TestNs::new(client.clone(), "admitdel").await?;
    ns.apply::<crds::SeccompProfile>(json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
        "metadata": {"name": "held"},
        "spec": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}}))
    .await?;
    ns.wait_profile("held", "Installed", |p| phase(p) == "Installed")
        .await?;
    let profiles: Api<crds::SeccompProfile> = ns.api();
    let pods: Api<Pod> = ns.api();
    let pod: Pod = serde_json::from_value(busybox_pod(
        "starts",
        "sleep 3; mkdir /tmp/x 2>/dev/null && echo made || echo refused; grep Seccomp: /proc/self/status",
        Some(&format!("operator/{}/held.json", ns.name)),
    ))?;
    // The pod is admitted and, in the same breath, its profile deleted: before the operator's
    // pod watch has seen the pod.
    pods.create(&PostParams::default(), &pod).await?;
    profiles
        .delete("held", &kube::api::DeleteParams::default())
        .await?;
    let p = profiles.get_opt("held").await?;
    let p = p.ok_or_else(|| anyhow::anyhow!("the profile went at once, under an admitted pod"))?;
    assert!(p.metadata.deletion_timestamp.is_some());
    let (phase, logs) = ns.pod_result("starts").await?;
    assert_eq!(phase, "Succeeded", "{logs}");
    assert!(
        logs.contains("refused") && logs.contains("Seccomp:\t2"),
        "the pod ran under the deleted profile: {logs}"
    );
    assert!(
        profiles.get_opt("held").await?.is_some(),
        "the profile is held while its pod exists"
    );
    pods.delete("starts", &kube::api::DeleteParams::default())
        .await?;
    wait_for(
        "the profile to go once its pod is gone and the admission hold is over",
        Duration::from_secs(120),
        || async { profiles.get_opt("held").await.ok()?.is_none().then_some(()) },
    )
    .await?;
    let file = profile_file(&ns.name, "held");
    wait_for(
        "the file removed with the profile",
        Duration::from_secs(30),
        || async { (!file.exists()).then_some(()) },
    )
    .await?;
    Ok(())
}

/// The API server stopped with `hack/cluster-ctl.sh`; started again when dropped, so a
/// journey that fails meanwhile does not leave the cluster without one.
struct ApiserverDown {
    started: bool,
}

impl ApiserverDown {
    fn stop() -> anyhow::Result<Self> {
        cluster_ctl(&["stop", "apiserver"])?;
        Ok(ApiserverDown { started: false })
    }
    fn start(mut self) -> anyhow::Result<()> {
        self.started = true;
        cluster_ctl(&["start", "apiserver"]).map(|_| ())
    }
}

impl Drop for ApiserverDown {
    fn drop(&mut self) {
        if !self.started {
            if let Err(e) = cluster_ctl(&["start", "apiserver"]) {
                eprintln!("could not start the API server again: {e}");
            }
        }
    }
}

/// What identifies a file's version on disk: inode, size, modification time, content.
fn file_state(path: &std::path::Path) -> Option<(u64, u64, i64, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.ino(),
        m.size(),
        m.mtime_nsec() + m.mtime() * 1_000_000_000,
        std::fs::read(path).ok()?,
    ))
}

/// How often a pod's containers were restarted, in all.
fn restart_count(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0)
}

/// Restart counts of the operator's and the agents' pods, by pod name.
async fn restarts(client: &Client) -> anyhow::Result<std::collections::BTreeMap<String, i32>> {
    let pods = Api::<Pod>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await?;
    Ok(pods
        .items
        .iter()
        .map(|p| (kube::ResourceExt::name_any(p), restart_count(p)))
        .collect())
}

#[tokio::test]
async fn o3_an_api_server_outage_leaves_files_and_pods_alone_and_then_converges(
) -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let ns = TestNs::new(client.clone(), "outage").await?;
    let nodes = cluster_nodes();
    let total = nodes.len();
    let spec = |names: &[&str]| json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": names, "action": "SCMP_ACT_ERRNO"}]});
    for (name, names) in [
        ("o1", ["mkdir", "mkdirat"]),
        ("o2", ["rmdir", "rmdir"]),
        ("o3", ["chroot", "chroot"]),
    ] {
        ns.apply::<crds::SeccompProfile>(
            json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
            "metadata": {"name": name}, "spec": spec(&names)}),
        )
        .await?;
    }
    let all = format!("{total}/{total}");
    for name in ["o1", "o2", "o3"] {
        let all = all.clone();
        ns.wait_profile(name, "Installed on every node", move |p| {
            phase(p) == "Installed"
                && p.status.as_ref().and_then(|s| s.installed_nodes.as_deref())
                    == Some(all.as_str())
        })
        .await?;
    }
    // A confined pod that runs through the outage.
    let pod: Pod = serde_json::from_value(busybox_pod(
        "through",
        "while true; do sleep 1; done",
        Some(&format!("operator/{}/o1.json", ns.name)),
    ))?;
    let pods: Api<Pod> = ns.api();
    pods.create(&PostParams::default(), &pod).await?;
    wait_for(
        "the confined pod running",
        Duration::from_secs(90),
        || async {
            let p = pods.get_opt("through").await.ok()??;
            (p.status?.phase? == "Running").then_some(())
        },
    )
    .await?;
    let files: Vec<std::path::PathBuf> = nodes
        .iter()
        .flat_map(|n| ["o1", "o2", "o3"].map(|p| n.profile_file(&ns.name, p)))
        .collect();
    let before: Vec<_> = files.iter().map(|f| file_state(f)).collect();
    assert!(before.iter().all(Option::is_some), "every file present");
    let restarts_before = restarts(&client).await?;

    let down = ApiserverDown::stop()?;
    let stopped = Instant::now();
    while stopped.elapsed() < Duration::from_secs(60) {
        for (f, b) in files.iter().zip(&before) {
            assert_eq!(
                &file_state(f),
                b,
                "{} changed during the outage",
                f.display()
            );
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    down.start()?;
    let back = Instant::now();
    eprintln!(
        "o3: the API server answers again after {:.0?}",
        stopped.elapsed()
    );

    // A change made now converges on every node.
    let profiles: Api<crds::SeccompProfile> = ns.api();
    let old_hash = profiles
        .get("o2")
        .await?
        .status
        .and_then(|s| s.content_hash)
        .unwrap_or_default();
    let change = json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
        "metadata": {"name": "o2"}, "spec": spec(&["rmdir", "unlinkat"])});
    // The first writes after the restart may meet webhooks whose watches are still
    // reconnecting: retry as a user would.
    wait_for(
        "the change to be accepted",
        Duration::from_secs(60),
        || async { ns.apply::<crds::SeccompProfile>(change.clone()).await.ok() },
    )
    .await?;
    let changed_at = Instant::now();
    let all2 = all.clone();
    ns.wait_profile_for(
        "o2",
        "the change Installed on every node",
        Duration::from_secs(180),
        move |p| {
            let s = p.status.as_ref();
            phase(p) == "Installed"
                && s.and_then(|s| s.installed_nodes.as_deref()) == Some(all2.as_str())
                && s.and_then(|s| s.content_hash.as_deref()) != Some(old_hash.as_str())
        },
    )
    .await?;
    eprintln!(
        "o3: a change made {:.0?} after the API server came back Installed on {total} nodes {:.0?} later",
        changed_at.duration_since(back),
        changed_at.elapsed()
    );
    for n in &nodes {
        let text = std::fs::read_to_string(n.profile_file(&ns.name, "o2"))?;
        assert!(text.contains("unlinkat"), "{}: {text}", n.name);
    }
    // Untouched profiles were never rewritten, anywhere; the pod kept running.
    for (f, b) in files.iter().zip(&before) {
        if !f.ends_with("o2.json") {
            assert_eq!(&file_state(f), b, "{} was rewritten", f.display());
        }
    }
    let p = pods.get("through").await?;
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    assert_eq!(phase, Some("Running"));
    assert_eq!(restart_count(&p), 0, "the confined pod restarted");
    let restarts_after = restarts(&client).await?;
    for (pod, n) in &restarts_after {
        let was = restarts_before.get(pod).copied().unwrap_or(0);
        eprintln!("o3: {pod} restarts {was} -> {n}");
        assert!(
            n - was <= 1,
            "{pod} restarted {} times: a crash loop",
            n - was
        );
    }
    // The leader's lease is renewed again, without a restart of the operator.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), NS);
    wait_for(
        "the leader lease renewed",
        Duration::from_secs(60),
        || async {
            let l = leases.get_opt("seccomp-operator-leader").await.ok()??;
            let renewed = l.spec?.renew_time?.0;
            let age = k8s_openapi::jiff::Timestamp::now().duration_since(renewed);
            (age.as_secs() < 20).then_some(())
        },
    )
    .await?;
    pods.delete("through", &Default::default()).await?;
    Ok(())
}

/// Version `v` of crash profile `i`: every profile and version renders differently, and
/// versions differ in size, so a torn or misplaced write shows.
fn crash_spec(i: usize, v: usize) -> serde_json::Value {
    let mut names = vec!["read", "write"];
    if v > 0 {
        names.extend(["getppid", "getuid", "getgid", "geteuid", "getegid"]);
    }
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": i as u32 + 1}]})
}

/// The bytes the agent writes for a spec (no base profiles).
fn rendering(spec: &serde_json::Value) -> Vec<u8> {
    let spec: seccomp_profile::ProfileSpec =
        serde_json::from_value(spec.clone()).expect("a valid spec");
    installed_rendering(
        seccomp_profile::resolve("x", &spec, &std::collections::BTreeMap::new()).expect("resolves"),
    )
    .json
}

#[tokio::test]
async fn o4_the_real_agent_killed_mid_sync_leaves_every_file_its_own_profile_and_converges(
) -> anyhow::Result<()> {
    use futures::StreamExt;
    let Some(client) = client().await else {
        return Ok(());
    };
    let ns = TestNs::new(client.clone(), "crash").await?;
    let n = 1000;
    let node = first_node();
    let dir = std::path::PathBuf::from(KUBELET_ROOT)
        .join("seccomp/operator")
        .join(&ns.name);
    // What each file may hold: a complete rendering of a version of its own profile.
    let valid: Vec<[Vec<u8>; 2]> = (0..n)
        .map(|i| [rendering(&crash_spec(i, 0)), rendering(&crash_spec(i, 1))])
        .collect();
    let check = || -> anyhow::Result<usize> {
        let mut count = 0;
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue; // a temporary file, never at a final path
            }
            let i: usize = name
                .strip_prefix('c')
                .and_then(|r| r.strip_suffix(".json"))
                .and_then(|r| r.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("unexpected file {name}"))?;
            let bytes = std::fs::read(e.path())?;
            anyhow::ensure!(
                valid[i].contains(&bytes),
                "{name} is not a complete rendering of its own profile: {:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            );
            count += 1;
        }
        Ok(count)
    };
    let apply_all = |v: usize| {
        let ns = &ns;
        async move {
            futures::stream::iter(0..n)
                .map(|i| async move {
                    let obj = json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
                        "metadata": {"name": format!("c{i:04}")}, "spec": crash_spec(i, v)});
                    // Retried: the webhook or the API server may be slow under this load.
                    for _ in 0..5 {
                        if ns.apply::<crds::SeccompProfile>(obj.clone()).await.is_ok() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    panic!("could not apply c{i:04}");
                })
                .buffer_unordered(16)
                .collect::<Vec<()>>()
                .await;
        }
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let mut kills = 0;
    for v in 0..2 {
        // SIGKILL the agent while the profiles arrive and it writes them, and again while the
        // restarted agent catches up.
        let killer = async {
            let mut done = 0;
            // Three kills in all: the kubelet's restart back-off doubles each time (10, 20,
            // 40 s).
            for round in 0..(2 - v as u64) {
                tokio::time::sleep(Duration::from_millis(700 + 900 * round)).await;
                let agent = agent_pod_on(&client, &node).await?;
                let before = restart_count(&agent);
                let pids = host_pids_of(&agent);
                let name = kube::ResourceExt::name_any(&agent);
                anyhow::ensure!(!pids.is_empty(), "no processes of {name}");
                for pid in &pids {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(*pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                done += 1;
                let files = check()?;
                eprintln!(
                    "o4: version {v}, kill {}: {files} files, each its own profile",
                    kills + done
                );
                wait_for(
                    "the agent restarted and ready",
                    Duration::from_secs(120),
                    || async {
                        let p = pods.get_opt(&name).await.ok()??;
                        (restart_count(&p) > before && is_ready(&p)).then_some(())
                    },
                )
                .await?;
                check()?;
            }
            Ok::<usize, anyhow::Error>(done)
        };
        let ((), done) = tokio::join!(apply_all(v), killer);
        kills += done?;
    }
    // Everything converges to the last version.
    let converged = Instant::now();
    wait_for(
        "every file at its last version",
        Duration::from_secs(120),
        || async {
            let ok = (0..n).all(|i| {
                std::fs::read(dir.join(format!("c{i:04}.json")))
                    .ok()
                    .as_ref()
                    == Some(&valid[i][1])
            });
            ok.then_some(())
        },
    )
    .await?;
    assert_eq!(check()?, n);
    eprintln!(
        "o4: {kills} SIGKILLs of the agent; all {n} files at their last version {:.0?} after the last apply",
        converged.elapsed()
    );
    // Leave the next journeys a quiet cluster: the 1,000 profiles and their files gone.
    let profiles: Api<crds::SeccompProfile> = ns.api();
    profiles
        .delete_collection(&Default::default(), &ListParams::default())
        .await?;
    wait_for("the files removed", Duration::from_secs(180), || async {
        (check().ok()? == 0).then_some(())
    })
    .await?;
    Ok(())
}

/// Clears the immutable flag of a directory when dropped.
struct Immutable(std::path::PathBuf);

impl Immutable {
    fn set(dir: &std::path::Path) -> anyhow::Result<Self> {
        chattr("+i", dir)?;
        Ok(Immutable(dir.to_owned()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        if let Err(e) = chattr("-i", &self.0) {
            eprintln!(
                "could not clear the immutable flag of {}: {e}",
                self.0.display()
            );
        }
    }
}

fn chattr(flag: &str, dir: &std::path::Path) -> anyhow::Result<()> {
    let o = std::process::Command::new("chattr")
        .arg(flag)
        .arg(dir)
        .output()?;
    anyhow::ensure!(
        o.status.success(),
        "chattr {flag} {}: {}",
        dir.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(())
}

/// Puts the agents' environment back when dropped.
struct RestoreAgents;

impl Drop for RestoreAgents {
    fn drop(&mut self) {
        if let Err(e) = set_env("ds/seccomp-node-agent", &["UNREADY_AFTER-"]) {
            eprintln!("could not restore the agents' environment: {e}");
        }
    }
}

#[tokio::test]
async fn o5_an_agent_that_cannot_write_turns_unready_keeps_its_files_and_recovers(
) -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("o5 sets chattr +i on node 1's seccomp directory: run the e2e tests as root");
    }
    // Twenty seconds instead of three minutes, so that the journey is short; the logic is the
    // same (node_agent::health).
    let _restore = RestoreAgents;
    set_env("ds/seccomp-node-agent", &["UNREADY_AFTER=20s"])?;
    let ns = TestNs::new(client.clone(), "unready").await?;
    let profile = |name: &str| {
        json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
            "metadata": {"name": name},
            "spec": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}})
    };
    ns.apply::<crds::SeccompProfile>(profile("before")).await?;
    ns.wait_profile("before", "Installed", |p| phase(p) == "Installed")
        .await?;
    let before = profile_file(&ns.name, "before");
    let content = std::fs::read(&before)?;
    // A quiet agent stays ready: syncing at resyncs only (every 60 s, longer than the limit)
    // is not failing. So does every recorder, which never syncs.
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(30) {
        for n in cluster_nodes() {
            let agent = agent_pod_on(&client, &n.name).await?;
            anyhow::ensure!(
                is_ready(&agent),
                "the quiet agent on {} turned unready",
                n.name
            );
            let recorder = recorder_pod_on(&client, &n.name).await?;
            anyhow::ensure!(is_ready(&recorder), "the recorder on {} is unready", n.name);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }

    // Node 1's directory for this namespace cannot be written (a read-only or broken disk, as
    // the agent sees it): a new profile cannot be installed there.
    let dir = before.parent().expect("a directory").to_owned();
    let immutable = Immutable::set(&dir)?;
    ns.apply::<crds::SeccompProfile>(profile("blocked")).await?;
    let node = first_node();
    let unready = Instant::now();
    wait_for(
        "node 1's agent to turn unready",
        Duration::from_secs(120),
        || async {
            agent_pod_on(&client, &node)
                .await
                .ok()
                .filter(|p| !is_ready(p))
        },
    )
    .await?;
    eprintln!(
        "o5: node 1's agent unready {:.0?} after its writes began to fail",
        unready.elapsed()
    );
    for n in cluster_nodes().iter().skip(1) {
        let p = agent_pod_on(&client, &n.name).await?;
        anyhow::ensure!(is_ready(&p), "the agent on {} is unready too", n.name);
    }
    // The node says why: the profile is in Error there, with the write error.
    let report = Api::<crds::SeccompNodeStatus>::all(client.clone())
        .get(&node)
        .await?;
    let entry = report
        .status
        .iter()
        .flat_map(|s| s.not_installed.iter())
        .find(|e| e.namespace == ns.name && e.name == "blocked")
        .cloned();
    eprintln!("o5: node 1 reports {entry:?}");
    anyhow::ensure!(
        entry
            .as_ref()
            .is_some_and(|e| e.state == crds::NodeProfileState::Error
                && e.message.as_deref().is_some_and(|m| !m.is_empty())),
        "node 1 does not report the blocked profile in Error: {entry:?}"
    );
    anyhow::ensure!(
        std::fs::read(&before)? == content,
        "the installed file changed while its directory could not be written"
    );
    anyhow::ensure!(
        !profile_file(&ns.name, "blocked").exists(),
        "a file appeared in an immutable directory"
    );

    // The disk is back: the next resync installs the profile and the agent is ready again.
    drop(immutable);
    let back = Instant::now();
    wait_for(
        "node 1's agent to be ready again",
        Duration::from_secs(150),
        || async { agent_pod_on(&client, &node).await.ok().filter(is_ready) },
    )
    .await?;
    ns.wait_profile("blocked", "Installed", |p| phase(p) == "Installed")
        .await?;
    eprintln!(
        "o5: ready again {:.0?} after the directory became writable",
        back.elapsed()
    );
    Ok(())
}

/// Puts the operator's replicas back when dropped (also when the journey fails).
struct OperatorScaledDown {
    replicas: String,
}

impl OperatorScaledDown {
    fn to_zero() -> anyhow::Result<Self> {
        let replicas = kubectl(&[
            "-n",
            NS,
            "get",
            "deploy/seccomp-operator",
            "-o",
            "jsonpath={.spec.replicas}",
        ])?
        .trim()
        .to_owned();
        kubectl(&["-n", NS, "scale", "deploy/seccomp-operator", "--replicas=0"])?;
        Ok(OperatorScaledDown { replicas })
    }
}

impl Drop for OperatorScaledDown {
    fn drop(&mut self) {
        let n = format!("--replicas={}", self.replicas);
        let _ = kubectl(&["-n", NS, "scale", "deploy/seccomp-operator", &n]);
        let _ = kubectl(&[
            "-n",
            NS,
            "rollout",
            "status",
            "deploy/seccomp-operator",
            "--timeout=240s",
        ]);
    }
}

/// With the operator down, only pods that reference a Localhost profile are held back (the
/// fail-closed webhooks see no other pod): a pod without a profile and a RuntimeDefault pod
/// start in an ordinary namespace, another tenant's profile is refused by the API server's
/// isolation policy (canonical, `./` and `//` spellings), profiles are checked by the API
/// server alone, and a pod using its own profile is admitted and waits at the scheduling gate
/// (1.36+; refused by the fail-closed install gate before), then runs within 30 s of the
/// operator's return, and no node is reported dead because of the outage. And no label
/// on a namespace switches the webhooks off: with the operator up, a namespace labelled
/// `seccomp-operator.dev/webhooks: skip` still cannot use another namespace's profile.
#[tokio::test]
async fn o6_an_operator_outage_holds_back_only_pods_that_use_localhost_profiles(
) -> anyhow::Result<()> {
    let Some(client) = client().await else {
        return Ok(());
    };
    let ns = TestNs::new(client.clone(), "outage").await?;
    let other = TestNs::new(client.clone(), "outage-other").await?;
    other
        .apply::<crds::SeccompProfile>(sp("theirs", json!({"defaultAction": "SCMP_ACT_ALLOW"})))
        .await?;
    other.wait_installed_everywhere("theirs").await?;
    let pods: Api<Pod> = ns.api();
    let theirs = format!("operator/{}/theirs.json", other.name);

    // No label exempts a namespace (a tenant may label its own).
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            &ns.name,
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"metadata": {"labels": {"seccomp-operator.dev/webhooks": "skip"}}}),
            ),
        )
        .await?;
    let borrow: Pod = serde_json::from_value(busybox_pod("borrow", "echo hi", Some(&theirs)))?;
    let refused = pods.create(&PostParams::default(), &borrow).await;
    match refused {
        // (the isolation policy, the gate and the isolation webhook all refuse it; the first
        // to answer is reported)
        Err(kube::Error::Api(e)) => assert!(
            refused_by_admission(&e.message) && e.message.contains(&theirs),
            "refused by admission: {}",
            e.message
        ),
        other => panic!("a skip-labelled namespace borrowed another tenant's profile: {other:?}"),
    }

    let down = OperatorScaledDown::to_zero()?;
    let operator_pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    wait_for(
        "every operator replica gone",
        Duration::from_secs(120),
        || async {
            let l = operator_pods
                .list(&ListParams::default().labels("app.kubernetes.io/name=seccomp-operator"))
                .await
                .ok()?;
            l.items.is_empty().then_some(())
        },
    )
    .await?;
    // Pods that use no operator profile never reach the operator's webhooks.
    let bare = ns.run_pod(busybox_pod("bare", "echo hi", None)).await?;
    assert_eq!(bare, ("Succeeded".to_owned(), "hi\n".to_owned()));
    let mut rd = busybox_pod("runtime-default", "echo hi", None);
    rd["spec"]["securityContext"] = json!({"seccompProfile": {"type": "RuntimeDefault"}});
    let rd = ns.run_pod(rd).await?;
    assert_eq!(rd, ("Succeeded".to_owned(), "hi\n".to_owned()));
    // Tenant isolation holds without the operator: the API server's own policy refuses
    // another tenant's profile, however it is spelled.
    for (i, path) in [
        theirs.clone(),
        format!("./operator/{}/theirs.json", other.name),
        format!("operator//{}/theirs.json", other.name),
    ]
    .iter()
    .enumerate()
    {
        let pod: Pod =
            serde_json::from_value(busybox_pod(&format!("borrow-{i}"), "echo hi", Some(path)))?;
        match pods.create(&PostParams::default(), &pod).await {
            Err(kube::Error::Api(e)) => assert!(
                e.message
                    .contains("ValidatingAdmissionPolicy 'seccomp-operator-isolation'")
                    && e.message.contains(&format!(
                        "a pod in namespace {} may only use profiles of namespace {}",
                        ns.name, ns.name
                    )),
                "{path}: refused by the isolation policy: {}",
                e.message
            ),
            other => panic!("{path} admitted with the operator down: {other:?}"),
        }
    }
    // Profiles: the API server checks what the schema and the policy say (the CRD's rules,
    // the profile policy), so they can be written while the operator is down.
    for (name, spec, fragment) in [
        (
            "errno-on-allow",
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}),
            "errnoRet is not allowed in a rule whose action is not SCMP_ACT_ERRNO",
        ),
        (
            "too-many-names",
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": (0..5).map(|i| json!({"names": vec![format!("n{i}"); 1000], "action": "SCMP_ACT_ALLOW"})).collect::<Vec<_>>()}),
            "more syscall names in all rules than the limit of 4096",
        ),
        (
            "listener",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"}),
            "spec.listenerPath: not allowed by this cluster's profile policy",
        ),
        (
            "spec-allow",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}),
            "spec.flags: SECCOMP_FILTER_FLAG_SPEC_ALLOW not allowed by this cluster's profile policy",
        ),
    ] {
        let err = ns
            .apply::<crds::SeccompProfile>(sp(name, spec))
            .await
            .expect_err(name);
        assert!(format!("{err:#}").contains(fragment), "{name}: {err:#}");
    }
    ns.apply::<crds::SeccompProfile>(sp("mine", json!({"defaultAction": "SCMP_ACT_ALLOW"})))
        .await?;
    // A pod that uses its own namespace's profile: on Kubernetes 1.36+ the API server gates
    // it (MutatingAdmissionPolicy) and admits it; it waits unscheduled. Before 1.36 the
    // operator's webhook would add the gate: without it the fail-closed install gate refuses
    // the pod (its controller retries).
    let own = format!("operator/{}/mine.json", ns.name);
    let held: Pod = serde_json::from_value(busybox_pod("held", "echo hi", Some(&own)))?;
    let by_api_server = gate_added_by_api_server();
    match pods.create(&PostParams::default(), &held).await {
        Ok(p) if by_api_server => assert!(crds::has_scheduling_gate(&p), "admitted ungated"),
        Err(kube::Error::Api(e)) if !by_api_server => assert!(
            e.message.contains("failed calling webhook")
                && e.message.contains("gate.seccomp-operator.dev"),
            "refused by the operator's fail-closed install gate: {}",
            e.message
        ),
        other => panic!("gate added by the API server: {by_api_server}; {other:?}"),
    }
    if by_api_server {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let p = pods.get("held").await?;
        assert!(is_gated(&p), "ran without the operator: {:?}", p.status);
    }
    drop(down);
    let back = Instant::now();
    if by_api_server {
        // Within 30 s of the operator's rollout: Installed, ungated, run.
        let phase = wait_for("held to run", Duration::from_secs(30), || async {
            let p = pods.get("held").await.ok()?;
            let phase = p.status?.phase?;
            (phase == "Succeeded" || phase == "Failed").then_some(phase)
        })
        .await?;
        assert_eq!(phase, "Succeeded");
        println!(
            "o6: the pod admitted during the outage ran {:.1?} after the operator was back",
            back.elapsed()
        );
    }
    // Back: the agents' heartbeats the outage refused do not make their nodes look dead (the
    // operator times a Lease from when it sees it): no node is tainted, every node counts.
    let installed = other.wait_installed_everywhere("theirs").await?;
    assert!(installed.status.is_some());
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    for n in nodes.list(&ListParams::default()).await?.items {
        let tainted = n
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_some_and(|t| t.iter().any(|t| t.key == crds::TAINT_AGENT_NOT_READY));
        assert!(
            !tainted,
            "{} tainted after the operator's outage",
            n.metadata.name.unwrap_or_default()
        );
    }
    Ok(())
}
