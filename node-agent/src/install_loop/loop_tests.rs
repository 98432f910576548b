//! The install loop against a fake API server: which watch events make it sync, and what the
//! node then reports.

use super::*;
use http::{Request, Response};
use kube::client::Body;
use profile_installer::paths::ProfileRoot;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// Counts syncs; they wait for nothing.
#[derive(Clone, Default)]
struct CountSyncs(Arc<AtomicUsize>);

impl SyncHooks for CountSyncs {
    type Permit = ();

    fn before_sync(&self) -> impl Future<Output = Result<(), InstallError>> + Send {
        std::future::ready(Ok(()))
    }

    fn after_sync(&self, _report: &SyncReport) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A fake API server for one node's loop: it answers the Node read and the status object's
/// applies, and sends the `syncedResourceVersion` of each status written.
fn api_server() -> (Client, mpsc::UnboundedReceiver<Option<String>>) {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let (method, path) = (req.method().clone(), req.uri().path().to_owned());
            let body = req.into_body().collect_bytes().await.unwrap();
            let answer = if method == http::Method::GET && path == "/api/v1/nodes/n1" {
                json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "node-uid"}})
            } else {
                assert_eq!(method, http::Method::PATCH, "{path}");
                assert!(path.contains("/seccompnodestatuses/n1"), "{path}");
                let applied: Value = serde_json::from_slice(&body).unwrap();
                if path.ends_with("/status") {
                    let v = applied["status"]["syncedResourceVersion"].as_str();
                    let _ = tx.send(v.map(str::to_owned));
                }
                json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompNodeStatus",
                    "metadata": {"name": "n1"}, "spec": {"nodeName": "n1"}})
            };
            send.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap(),
            );
        }
    });
    (Client::new(svc, "default"), rx)
}

/// Profile shop/web as the watch reads it.
fn web(rv: &str, generation: i64, allow: &[&str]) -> StoredProfile {
    serde_json::from_value(json!({
        "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u1",
            "resourceVersion": rv, "generation": generation},
        "spec": {"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": allow, "action": "SCMP_ACT_ALLOW"}]},
    }))
    .unwrap()
}

async fn next_report(reports: &mut mpsc::UnboundedReceiver<Option<String>>) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(30), reports.recv())
        .await
        .expect("no status written in 30 s")
        .expect("the fake API server stopped")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_write_moves_the_reported_version_without_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    let root = ProfileRoot::new(dir.path());
    let (client, mut reports) = api_server();
    let (profiles, mut feed) = Feed::new();
    feed.apply(watcher::Event::Init);
    feed.apply(watcher::Event::InitApply(web("5", 1, &["read"])));
    feed.apply(watcher::Event::InitDone);
    let syncs = CountSyncs::default();
    let (synced, _) = watch::channel(false);
    let (_kubelet_tx, kubelet) = watch::channel(None);
    let (stop, shutdown) = watch::channel(false);
    let node = SyncLoop {
        client,
        node_name: "n1".into(),
        installer: Installer::new(root.clone()).unwrap(),
        profiles,
        metrics: Arc::new(Metrics::new()),
        health: Arc::new(crate::health::Health::new(Duration::from_secs(3600))),
        synced,
        kubelet,
        shutdown,
        hooks: syncs.clone(),
    };
    let running = tokio::spawn(node.run());
    let file = dir.path().join("seccomp/operator/shop/web.json");

    // The first sync installs the profile and reports the list's version.
    assert_eq!(next_report(&mut reports).await.as_deref(), Some("5"));
    assert_eq!(syncs.0.load(Ordering::SeqCst), 1);
    let first = std::fs::read(&file).unwrap();

    // The operator writes the profile's status: only its resourceVersion moves. The node
    // reports the new version, and no sync ran for it.
    feed.apply(watcher::Event::Apply(web("9", 1, &["read"])));
    assert_eq!(next_report(&mut reports).await.as_deref(), Some("9"));
    assert_eq!(
        syncs.0.load(Ordering::SeqCst),
        1,
        "a status write needs no sync"
    );

    // A new spec (a new generation) is synced, and its version reported.
    feed.apply(watcher::Event::Apply(web("12", 2, &["read", "write"])));
    assert_eq!(next_report(&mut reports).await.as_deref(), Some("12"));
    assert_eq!(syncs.0.load(Ordering::SeqCst), 2);
    assert_ne!(
        std::fs::read(&file).unwrap(),
        first,
        "the new spec is on disk"
    );

    // A delete is a change too, and its version is reported.
    feed.apply(watcher::Event::Delete(web("13", 2, &["read", "write"])));
    assert_eq!(next_report(&mut reports).await.as_deref(), Some("13"));
    assert_eq!(syncs.0.load(Ordering::SeqCst), 3);
    assert!(!file.exists(), "the deleted profile's file is removed");

    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
}
