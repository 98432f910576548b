//! Reconcile tests against a mocked API server (tower-test): each test scripts the requests
//! the reconciler must make, in order, and the answers it gets.

use crate::pods::index::PodIndex;
use crate::profile::controller as profile_controller;
use crate::recording;
use crate::runtime::metrics::Metrics;
use crds::{ProfileRecording, SeccompProfile, FINALIZER_IN_USE};
use http::{Request, Response};
use k8s_openapi::api::core::v1::Pod;
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::Client;
use serde_json::{json, Value};
use std::sync::{Arc, RwLock};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn mock() -> (Client, Handle) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(svc, "default"), handle)
}

/// One expected request: method, a fragment of its path+query, and the JSON answer. The
/// request body is returned for assertions.
async fn expect(handle: &mut Handle, method: &str, path: &str, answer: Value) -> Value {
    expect_status(handle, method, path, 200, answer).await
}

/// As [`expect`], answering with HTTP status `code`.
async fn expect_status(
    handle: &mut Handle,
    method: &str,
    path: &str,
    code: u16,
    answer: Value,
) -> Value {
    let (req, send) = handle
        .next_request()
        .await
        .unwrap_or_else(|| panic!("no request; expected {method} {path}"));
    let uri = req.uri().to_string();
    assert_eq!(req.method().as_str(), method, "{uri}");
    assert!(
        uri.contains(path),
        "expected {method} ...{path}..., got {uri}"
    );
    let body = req.into_body().collect_bytes().await.unwrap();
    send.send_response(
        Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(&answer).unwrap()))
            .unwrap(),
    );
    if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    }
}

fn event() -> Value {
    json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "shop"}, "eventTime": "2026-01-01T00:00:00.000000Z"})
}

fn profile(spec: Value, meta: Value) -> SeccompProfile {
    let mut m = json!({"name": "web", "namespace": "shop", "resourceVersion": "7", "generation": 1, "uid": "u1"});
    m.as_object_mut()
        .unwrap()
        .extend(meta.as_object().cloned().unwrap_or_default());
    serde_json::from_value(json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile", "metadata": m, "spec": spec})).unwrap()
}

fn store_of(objs: &[SeccompProfile]) -> Store<SeccompProfile> {
    let (store, mut w) = reflector::store();
    w.apply_watcher_event(&watcher::Event::Init);
    for o in objs {
        w.apply_watcher_event(&watcher::Event::InitApply(o.clone()));
    }
    w.apply_watcher_event(&watcher::Event::InitDone);
    store
}

fn test_recorder(client: Client) -> Recorder {
    Recorder::new(
        client,
        Reporter {
            controller: "test".into(),
            instance: None,
        },
    )
}

fn ctx(
    client: Client,
    profiles: &[SeccompProfile],
    index: PodIndex,
) -> Arc<profile_controller::Context> {
    Arc::new(profile_controller::Context {
        writes: crate::profile::writes::StatusWrites::new(Arc::new(Metrics::default())).0,
        artifacts: crate::profile::artifacts::Artifacts::new(client.clone(), Default::default()).0,
        client,
        profiles: store_of(profiles),
        reports: Default::default(),
        versions: Default::default(),
        index: Arc::new(RwLock::new(index)),
        metrics: Arc::new(Metrics::default()),
        liveness: Default::default(),
        policy: Default::default(),
        gate: crate::runtime::leader::Gate::open(),
        runtime_default: None,
        denials: Default::default(),
        would_deny: Arc::new(RwLock::new(
            crate::profile::denials::DenialIndex::would_deny(),
        )),
        readiness: Default::default(),
    })
}

/// Reconcile `p`, then write the status it computed (and its phase Event), as the status
/// writers would.
async fn reconcile_and_write(
    p: SeccompProfile,
    c: Arc<profile_controller::Context>,
) -> kube::runtime::controller::Action {
    let action = profile_controller::reconcile(Arc::new(p), c.clone())
        .await
        .unwrap();
    c.writes
        .flush(&c.client, &test_recorder(c.client.clone()))
        .await;
    action
}

fn user_pod() -> Pod {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "namespace": "shop"},
        "spec": {"containers": [{"name": "c", "image": "x", "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "operator/shop/web.json"}}}]}}))
    .unwrap()
}

#[tokio::test]
async fn invalid_spec_reports_error_status_and_a_warning_event() {
    let (client, mut h) = mock();
    let p = profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["raed"], "action": "SCMP_ACT_ALLOW"}]}),
        json!({}),
    );
    let c = ctx(client, std::slice::from_ref(&p), PodIndex::default());
    let answered = serde_json::to_value(&p).unwrap();
    let server = tokio::spawn(async move {
        let body = expect(&mut h, "PATCH", "/apis/seccomp-operator.dev/v1alpha1/namespaces/shop/seccompprofiles/web/status?&force=true&fieldManager=seccomp-operator", answered).await;
        assert_eq!(body["status"]["phase"], "Error");
        let valid = body["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Valid")
            .unwrap()
            .clone();
        assert_eq!(valid["status"], "False");
        assert!(
            valid["message"]
                .as_str()
                .unwrap()
                .contains("`raed` is not a syscall"),
            "{valid}"
        );
        let ev = expect(
            &mut h,
            "POST",
            "/apis/events.k8s.io/v1/namespaces/shop/events",
            event(),
        )
        .await;
        assert_eq!(ev["type"], "Warning");
        assert_eq!(ev["reason"], "Error");
    });
    reconcile_and_write(p, c).await;
    server.await.unwrap();
}

#[tokio::test]
async fn a_used_profile_gets_the_finalizer() {
    let (client, mut h) = mock();
    let p = profile(json!({"defaultAction": "SCMP_ACT_ERRNO"}), json!({}));
    let mut idx = PodIndex::default();
    idx.apply(&user_pod());
    let c = ctx(client, std::slice::from_ref(&p), idx);
    let answered = serde_json::to_value(&p).unwrap();
    let server = tokio::spawn(async move {
        let body = expect(&mut h, "PATCH", "/seccompprofiles/web?", answered.clone()).await;
        assert_eq!(body["metadata"]["finalizers"], json!([FINALIZER_IN_USE]));
        assert_eq!(
            body["metadata"]["resourceVersion"], "7",
            "the patch is conditional"
        );
        let status = expect(&mut h, "PATCH", "/seccompprofiles/web/status", answered).await;
        assert_eq!(status["status"]["activeWorkloads"], json!(["shop/p1"]));
        assert_eq!(status["status"]["phase"], "Pending", "no node has reported");
        // No Event for Pending: the reconcile ends here.
        let more =
            tokio::time::timeout(std::time::Duration::from_millis(300), h.next_request()).await;
        assert!(
            !matches!(more, Ok(Some(_))),
            "a request after the status: {:?}",
            more.map(|r| r.map(|(req, _)| req.uri().to_string()))
        );
    });
    reconcile_and_write(p, c).await;
    server.await.unwrap();
}

#[tokio::test]
async fn a_finalizer_change_that_meets_a_status_write_is_made_from_the_fresh_object() {
    let (client, mut h) = mock();
    let p = profile(json!({"defaultAction": "SCMP_ACT_ERRNO"}), json!({}));
    let mut idx = PodIndex::default();
    idx.apply(&user_pod());
    let c = ctx(client, std::slice::from_ref(&p), idx);
    let mut fresh = serde_json::to_value(&p).unwrap();
    fresh["metadata"]["resourceVersion"] = json!("9");
    fresh["metadata"]["finalizers"] = json!(["other.example/keep"]);
    let server = tokio::spawn(async move {
        let conflict = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "the object has been modified", "reason": "Conflict", "code": 409});
        let first = expect_status(&mut h, "PATCH", "/seccompprofiles/web?", 409, conflict).await;
        assert_eq!(first["metadata"]["resourceVersion"], "7");
        expect(&mut h, "GET", "/seccompprofiles/web", fresh.clone()).await;
        let second = expect(&mut h, "PATCH", "/seccompprofiles/web?", fresh).await;
        assert_eq!(
            second["metadata"]["resourceVersion"], "9",
            "made from the fresh object"
        );
        assert_eq!(
            second["metadata"]["finalizers"],
            json!(["other.example/keep", FINALIZER_IN_USE]),
            "another controller's finalizer is kept"
        );
    });
    profile_controller::reconcile(Arc::new(p), c).await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn deletion_without_users_releases_the_finalizer_at_once() {
    let (client, mut h) = mock();
    let p = profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO"}),
        json!({"deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": [FINALIZER_IN_USE, "other.example/keep"]}),
    );
    let c = ctx(client, std::slice::from_ref(&p), PodIndex::default());
    let answered = serde_json::to_value(&p).unwrap();
    let server = tokio::spawn(async move {
        let body = expect(&mut h, "PATCH", "/seccompprofiles/web?", answered).await;
        assert_eq!(
            body["metadata"]["finalizers"],
            json!(["other.example/keep"]),
            "only our finalizer goes"
        );
        // nothing else: no status write for an object on its way out
        assert!(h.next_request().await.is_none());
    });
    reconcile_and_write(p, c).await;
    server.await.unwrap();
}

#[tokio::test]
async fn a_deletion_right_after_an_admission_waits_for_the_hold_then_releases() {
    let just_now = (k8s_openapi::jiff::Timestamp::now()
        - k8s_openapi::jiff::SignedDuration::from_secs(5))
    .to_string();
    let (client, mut h) = mock();
    // Admitted 5 s ago, the pod not in the index yet, and deleted: the finalizer stays.
    let p = profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO"}),
        json!({"deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": [FINALIZER_IN_USE],
            "annotations": {crds::ANNOTATION_ADMITTED_AT: just_now}}),
    );
    let c = ctx(client, std::slice::from_ref(&p), PodIndex::default());
    let answered = serde_json::to_value(&p).unwrap();
    let server = tokio::spawn(async move {
        let status = expect(&mut h, "PATCH", "/seccompprofiles/web/status", answered).await;
        assert_eq!(status["status"]["phase"], "Terminating");
        expect(&mut h, "POST", "/events", event()).await;
    });
    let action = reconcile_and_write(p, c).await;
    server.await.unwrap();
    // Looked at again when the hold ends (about 55 s from now), not in 5 minutes.
    let shown = format!("{action:?}");
    let secs: f64 = shown
        .split("Some(")
        .nth(1)
        .and_then(|r| r.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{shown}"));
    assert!((50.0..=57.0).contains(&secs), "{shown}");

    // A minute later the hold is over: the finalizer goes.
    let (client, mut h) = mock();
    let p = profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO"}),
        json!({"deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": [FINALIZER_IN_USE],
            "annotations": {crds::ANNOTATION_ADMITTED_AT: two_minutes_ago()}}),
    );
    let c = ctx(client, std::slice::from_ref(&p), PodIndex::default());
    let answered = serde_json::to_value(&p).unwrap();
    let server = tokio::spawn(async move {
        let body = expect(&mut h, "PATCH", "/seccompprofiles/web?", answered).await;
        assert_eq!(body["metadata"]["finalizers"], json!([]));
    });
    reconcile_and_write(p, c).await;
    server.await.unwrap();
}

#[tokio::test]
async fn deletion_with_users_waits_and_says_why() {
    let (client, mut h) = mock();
    let p = profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO"}),
        json!({"deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": [FINALIZER_IN_USE]}),
    );
    let mut idx = PodIndex::default();
    idx.apply(&user_pod());
    let c = ctx(client, std::slice::from_ref(&p), idx);
    let answered = serde_json::to_value(&p).unwrap();
    let server = tokio::spawn(async move {
        let status = expect(&mut h, "PATCH", "/seccompprofiles/web/status", answered).await;
        assert_eq!(status["status"]["phase"], "Terminating");
        let ready = status["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap()
            .clone();
        assert!(ready["message"]
            .as_str()
            .unwrap()
            .contains("deletion waits for 1 pod(s) that use the profile: shop/p1"));
        expect(&mut h, "POST", "/events", event()).await;
    });
    reconcile_and_write(p, c).await;
    server.await.unwrap();
}

#[tokio::test]
async fn base_chains_resolve_through_the_namespace_cache() {
    let (client, mut h) = mock();
    let base = profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}),
        json!({"name": "base"}),
    );
    let p = profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "baseProfileName": "base", "syscalls": [{"names": ["write"], "action": "SCMP_ACT_ALLOW"}]}),
        json!({}),
    );
    let expected = seccomp_profile::resolve(
        "web",
        &p.spec,
        &std::collections::BTreeMap::from([("base".to_string(), base.spec.profile.clone())]),
    )
    .unwrap()
    .render(seccomp_profile::Arch::native())
    .hash;
    let c = ctx(client, &[base, p.clone()], PodIndex::default());
    let answered = serde_json::to_value(&p).unwrap();
    let server = tokio::spawn(async move {
        let status = expect(&mut h, "PATCH", "/seccompprofiles/web/status", answered).await;
        assert_eq!(status["status"]["contentHash"], expected);
        let valid = status["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Valid")
            .unwrap()
            .clone();
        assert_eq!(valid["status"], "True");
        // Pending: no Event.
    });
    reconcile_and_write(p, c).await;
    server.await.unwrap();
}

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn condition(status: &Value, type_: &str) -> Value {
    status["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_registry_base_from_a_registry_not_allowed_is_an_error_naming_the_field() {
    let (client, mut h) = mock();
    let p = profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "baseProfileName": format!("oci://169.254.169.254/x@{DIGEST}")}),
        json!({}),
    );
    let c = ctx(client, std::slice::from_ref(&p), PodIndex::default());
    let answered = serde_json::to_value(&p).unwrap();
    let server = tokio::spawn(async move {
        let status = expect(&mut h, "PATCH", "/seccompprofiles/web/status", answered).await;
        assert_eq!(status["status"]["phase"], "Error");
        let valid = condition(&status, "Valid");
        assert_eq!(valid["reason"], "BaseProfileUnavailable");
        let message = valid["message"].as_str().unwrap();
        assert!(
            message.starts_with("spec.baseProfileName: registry `169.254.169.254` is not allowed"),
            "{message}"
        );
        assert!(status["status"].get("resolvedBase").is_none());
        expect(&mut h, "POST", "/events", event()).await;
    });
    reconcile_and_write(p, c).await;
    server.await.unwrap();
}

/// `reference` as the operator records it once fetched (a base allowing `read`).
fn fetched_base(reference: &str) -> crds::ResolvedBase {
    serde_json::from_value(json!({"reference": reference, "digest": DIGEST, "generation": 1,
        "profile": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}}))
    .unwrap()
}

#[tokio::test]
async fn a_registry_base_recorded_in_status_is_built_on_without_a_fetch() {
    let (client, mut h) = mock();
    let reference = format!("oci://registry.example:5443/team/base@{DIGEST}");
    let mut p = profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "baseProfileName": reference, "syscalls": [{"names": ["write"], "action": "SCMP_ACT_ALLOW"}]}),
        json!({}),
    );
    let resolved = fetched_base(&reference);
    p.status = Some(crds::SeccompProfileStatus {
        resolved_base: Some(resolved.clone()),
        ..Default::default()
    });
    let base_spec = seccomp_profile::ProfileSpec::from(resolved.profile);
    let expected = seccomp_profile::resolve(
        "web",
        &p.spec,
        &std::collections::BTreeMap::from([(reference.clone(), base_spec)]),
    )
    .unwrap()
    .render(seccomp_profile::Arch::native())
    .hash;
    // Allowed, so that a fetch would be tried if the status were not read (the mock API
    // server would then see no request, and the test time out).
    let c = ctx(
        client.clone(),
        std::slice::from_ref(&p),
        PodIndex::default(),
    );
    let c = Arc::new(profile_controller::Context {
        artifacts: crate::profile::artifacts::Artifacts::new(
            client,
            crate::profile::artifacts::RegistryConfig {
                allowed: vec!["registry.example:5443".into()],
                ..Default::default()
            },
        )
        .0,
        ..Arc::try_unwrap(c).ok().unwrap()
    });
    let answered = serde_json::to_value(&p).unwrap();
    let server = tokio::spawn(async move {
        let status = expect(&mut h, "PATCH", "/seccompprofiles/web/status", answered).await;
        assert_eq!(status["status"]["contentHash"], expected);
        assert_eq!(condition(&status, "Valid")["status"], "True");
        assert_eq!(status["status"]["resolvedBase"]["digest"], DIGEST);
        assert_eq!(status["status"]["resolvedBase"]["reference"], reference);
    });
    reconcile_and_write(p, c).await;
    server.await.unwrap();
}

#[tokio::test]
async fn a_profile_built_on_one_with_a_registry_base_reads_that_bases_own_fetch() {
    // web → mid → oci://…: mid's status holds its fetched base; web is computed as the node
    // agents render it (mid with that base folded in), whatever else was fetched elsewhere.
    let (client, mut h) = mock();
    let reference = format!("oci://registry.example:5443/team/base@{DIGEST}");
    let mut mid = profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "baseProfileName": reference, "syscalls": [{"names": ["close"], "action": "SCMP_ACT_ALLOW"}]}),
        json!({"name": "mid", "uid": "u2"}),
    );
    mid.status = Some(crds::SeccompProfileStatus {
        resolved_base: Some(fetched_base(&reference)),
        ..Default::default()
    });
    let web = profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "baseProfileName": "mid", "syscalls": [{"names": ["write"], "action": "SCMP_ACT_ALLOW"}]}),
        json!({}),
    );
    let mut folded = mid.spec.profile.clone();
    crds::fold_registry_base(
        &mut folded,
        mid.status.as_ref().unwrap().resolved_base.as_ref(),
    )
    .unwrap();
    let expected = seccomp_profile::resolve(
        "web",
        &web.spec,
        &std::collections::BTreeMap::from([("mid".to_string(), folded)]),
    )
    .unwrap()
    .render(seccomp_profile::Arch::native())
    .hash;
    let c = ctx(client, &[mid, web.clone()], PodIndex::default());
    let answered = serde_json::to_value(&web).unwrap();
    let server = tokio::spawn(async move {
        let status = expect(&mut h, "PATCH", "/seccompprofiles/web/status", answered).await;
        assert_eq!(condition(&status, "Valid")["status"], "True", "{status}");
        assert_eq!(status["status"]["contentHash"], expected);
        assert!(status["status"].get("resolvedBase").is_none());
    });
    reconcile_and_write(web, c).await;
    server.await.unwrap();
}

fn recording(meta: Value) -> ProfileRecording {
    let mut m = json!({"name": "rec", "namespace": "shop", "resourceVersion": "3", "uid": "r1", "creationTimestamp": two_minutes_ago()});
    m.as_object_mut()
        .unwrap()
        .extend(meta.as_object().cloned().unwrap_or_default());
    serde_json::from_value(json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "ProfileRecording", "metadata": m,
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "mergeStrategy": "Containers"}})).unwrap()
}

fn partial(name: &str, container: &str, names: &[&str]) -> Value {
    json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
        "metadata": {"name": name, "namespace": "shop", "labels": {crds::LABEL_RECORDING: "rec", crds::LABEL_CONTAINER: container, crds::LABEL_PARTIAL: "true"}},
        "spec": {"defaultAction": "SCMP_ACT_ERRNO", "disabled": true, "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}})
}

#[tokio::test]
async fn a_new_recording_gets_its_finalizer() {
    let (client, mut h) = mock();
    let r = recording(json!({}));
    let answered = serde_json::to_value(&r).unwrap();
    let c = Arc::new(recording::Context {
        recorder: test_recorder(client.clone()),
        announced: Default::default(),
        client,
        metrics: Arc::new(Metrics::default()),
        gate: crate::runtime::leader::Gate::open(),
    });
    let server = tokio::spawn(async move {
        let body = expect(&mut h, "PATCH", "/profilerecordings/rec?", answered).await;
        assert!(body.to_string().contains(recording::FINALIZER), "{body}");
    });
    recording::reconcile(Arc::new(r), c).await.unwrap();
    server.await.unwrap();
}

/// An ended recording with `partials` of container `web`, merged over `earlier` (the
/// `rec-web` an earlier merge produced, or none): the merged document the operator applies.
async fn merge_of(partials: Vec<Value>, earlier: Option<Value>) -> Value {
    let (client, mut h) = mock();
    let r = recording(json!({"finalizers": [recording::FINALIZER]}));
    let c = Arc::new(recording::Context {
        recorder: test_recorder(client.clone()),
        announced: Default::default(),
        client,
        metrics: Arc::new(Metrics::default()),
        gate: crate::runtime::leader::Gate::open(),
    });
    let names: Vec<String> = partials
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    let partials = json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": partials});
    let rec_answer = serde_json::to_value(&r).unwrap();
    let server = tokio::spawn(async move {
        // no live pods match: the recording has ended
        expect(
            &mut h,
            "GET",
            "/api/v1/namespaces/shop/pods?&labelSelector=app%3Dweb",
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}),
        )
        .await;
        // No report lists anything left to take in.
        expect(
            &mut h,
            "GET",
            "/recordingreports?&labelSelector=seccomp-operator.dev%2Frecording%3Drec",
            json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": []}),
        )
        .await;
        expect(&mut h, "GET", "/seccompprofiles?&labelSelector=seccomp-operator.dev%2Frecording%3Drec%2Cseccomp-operator.dev%2Fpartial%3Dtrue", partials.clone()).await;
        // The earlier merge result, folded in.
        match earlier {
            Some(e) => expect(&mut h, "GET", "/namespaces/shop/seccompprofiles/rec-web", e).await,
            None => {
                expect_status(
                    &mut h,
                    "GET",
                    "/namespaces/shop/seccompprofiles/rec-web",
                    404,
                    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
                )
                .await
            }
        };
        let merged = expect(
            &mut h,
            "PATCH",
            "/namespaces/shop/seccompprofiles/rec-web?&force=true&fieldManager=seccomp-operator",
            partial("rec-web", "web", &["read"]),
        )
        .await;
        assert_eq!(merged["metadata"]["labels"][crds::LABEL_CONTAINER], "web");
        assert!(merged["metadata"]["labels"]
            .get(crds::LABEL_PARTIAL)
            .is_none());
        for n in &names {
            expect(
                &mut h,
                "DELETE",
                &format!("/seccompprofiles/{n}"),
                partial(n, "web", &["read"]),
            )
            .await;
        }
        let produced = json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": [
            {"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile", "metadata": {"name": "rec-web", "namespace": "shop", "labels": {crds::LABEL_RECORDING: "rec"}}, "spec": {"defaultAction": "SCMP_ACT_ERRNO"}}]});
        expect(
            &mut h,
            "GET",
            "/seccompprofiles?&labelSelector=seccomp-operator.dev%2Frecording%3Drec",
            produced,
        )
        .await;
        let status = expect(&mut h, "PATCH", "/profilerecordings/rec/status", rec_answer).await;
        assert_eq!(status["status"]["phase"], "Completed");
        assert_eq!(status["status"]["profiles"], json!(["rec-web"]));
        merged
    });
    recording::reconcile(Arc::new(r), c).await.unwrap();
    server.await.unwrap()
}

#[tokio::test]
async fn an_ended_recording_merges_partials_per_container() {
    let merged = merge_of(
        vec![
            partial("rec-pod-a-web", "web", &["read", "write"]),
            partial("rec-pod-b-web", "web", &["read", "close"]),
        ],
        None,
    )
    .await;
    assert_eq!(
        merged["spec"]["syscalls"][0]["names"],
        json!(["close", "read", "write"])
    );
}

#[tokio::test]
async fn a_partial_that_arrives_after_the_merge_adds_to_it() {
    // rec-web was merged from pods a and b; pod c's partial (another node, later) arrives.
    let mut earlier = partial("rec-web", "web", &["close", "read", "write"]);
    earlier["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove(crds::LABEL_PARTIAL);
    earlier["spec"].as_object_mut().unwrap().remove("disabled");
    let merged = merge_of(
        vec![partial("rec-pod-c-web", "web", &["read", "mkdir"])],
        Some(earlier.clone()),
    )
    .await;
    assert_eq!(
        merged["spec"]["syscalls"][0]["names"],
        json!(["close", "mkdir", "read", "write"])
    );
    // The same partial merged again (a retried publish): the same union.
    let again = merge_of(
        vec![partial("rec-pod-c-web", "web", &["read", "mkdir"])],
        Some({
            let mut e = earlier;
            e["spec"]["syscalls"][0]["names"] = json!(["close", "mkdir", "read", "write"]);
            e
        }),
    )
    .await;
    assert_eq!(again["spec"]["syscalls"], merged["spec"]["syscalls"]);
}

/// A creation time recent enough for a recording without a duration to be active.
fn two_minutes_ago() -> String {
    (k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(120))
        .to_string()
}

/// A live recording whose node-2 report lists a final container: the operator writes its
/// per-pod partial (folding in the one written before), marks it consumed, and keeps
/// recording while the pod runs.
#[tokio::test]
async fn final_report_entries_become_partials_and_are_marked_consumed() {
    let (client, mut h) = mock();
    let r = recording(json!({"finalizers": [recording::FINALIZER]}));
    let c = Arc::new(recording::Context {
        recorder: test_recorder(client.clone()),
        announced: Default::default(),
        client,
        metrics: Arc::new(Metrics::default()),
        gate: crate::runtime::leader::Gate::open(),
    });
    let rec_answer = serde_json::to_value(&r).unwrap();
    let server = tokio::spawn(async move {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web"}, "creationTimestamp": k8s_openapi::jiff::Timestamp::now().to_string()},
            "spec": {"nodeName": "node-2", "containers": [{"name": "web", "image": "x"}]},
            "status": {"phase": "Running"}});
        expect(
            &mut h,
            "GET",
            "/api/v1/namespaces/shop/pods?&labelSelector=app%3Dweb",
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [pod]}),
        )
        .await;
        let report = json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "RecordingReport",
            "metadata": {"name": "rec.node-2", "namespace": "shop", "labels": {crds::LABEL_RECORDING: "rec", crds::LABEL_NODE: "node-2"}},
            "spec": {"nodeName": "node-2", "recording": "rec", "containers": [
                {"containerId": "c-old", "pod": "web-1", "container": "web", "final": true, "syscalls": ["read"]},
                {"containerId": "c-new", "pod": "web-1", "container": "web", "final": true, "syscalls": ["mkdir", "read"]},
                {"containerId": "c-run", "pod": "web-2", "container": "web", "final": false}]},
            "status": {"consumed": ["c-old"]}});
        expect(
            &mut h,
            "GET",
            "/recordingreports?&labelSelector=seccomp-operator.dev%2Frecording%3Drec",
            json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": [report.clone()]}),
        )
        .await;
        // The partial written for the container's earlier instance: folded in.
        let mut earlier = partial("rec-web-1-web", "web", &["read", "write"]);
        earlier["metadata"]["labels"][crds::LABEL_POD] = json!("web-1");
        expect(
            &mut h,
            "GET",
            "/namespaces/shop/seccompprofiles/rec-web-1-web",
            earlier.clone(),
        )
        .await;
        let written = expect(
            &mut h,
            "PATCH",
            "/namespaces/shop/seccompprofiles/rec-web-1-web?&force=true&fieldManager=seccomp-operator",
            earlier,
        )
        .await;
        assert_eq!(
            written["spec"]["syscalls"][0]["names"],
            json!(["mkdir", "read", "write"]),
            "the union with what was written before"
        );
        assert_eq!(written["spec"]["disabled"], json!(true));
        assert_eq!(written["metadata"]["labels"][crds::LABEL_PARTIAL], "true");
        let status = expect(
            &mut h,
            "PATCH",
            "/namespaces/shop/recordingreports/rec.node-2/status",
            report,
        )
        .await;
        assert_eq!(status["status"]["consumed"], json!(["c-new", "c-old"]));
        // node-2 still records web-2: is it a live node?
        expect(
            &mut h,
            "GET",
            "/api/v1/nodes/node-2",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-2"},
                   "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        )
        .await;
        expect(&mut h, "GET", "/seccompprofiles?&labelSelector=seccomp-operator.dev%2Frecording%3Drec%2Cseccomp-operator.dev%2Fpartial%3Dtrue",
            json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": []})).await;
        expect(
            &mut h,
            "GET",
            "/seccompprofiles?&labelSelector=seccomp-operator.dev%2Frecording%3Drec",
            json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": []}),
        )
        .await;
        let status = expect(&mut h, "PATCH", "/profilerecordings/rec/status", rec_answer).await;
        assert_eq!(status["status"]["phase"], "Recording");
        let reported = status["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Reported")
            .unwrap()
            .clone();
        assert_eq!(reported["reason"], "NodesRecording", "{reported}");
    });
    recording::reconcile(Arc::new(r), c).await.unwrap();
    server.await.unwrap();
}

/// A recording deleted with its namespace: nothing can be written there any more, so the
/// finalizer goes without taking reports in (the namespace would otherwise hang in
/// Terminating behind a merge the API server refuses).
#[tokio::test]
async fn a_recording_in_a_terminating_namespace_is_released() {
    let (client, mut h) = mock();
    let r = recording(
        json!({"finalizers": [recording::FINALIZER], "deletionTimestamp": two_minutes_ago()}),
    );
    let c = Arc::new(recording::Context {
        recorder: test_recorder(client.clone()),
        announced: Default::default(),
        client,
        metrics: Arc::new(Metrics::default()),
        gate: crate::runtime::leader::Gate::open(),
    });
    let answer = serde_json::to_value(&r).unwrap();
    let server = tokio::spawn(async move {
        expect(
            &mut h,
            "GET",
            "/api/v1/namespaces/shop",
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "shop", "deletionTimestamp": two_minutes_ago()}}),
        )
        .await;
        let patch = expect(&mut h, "PATCH", "/profilerecordings/rec?", answer).await;
        assert!(
            patch.to_string().contains("remove")
                || !patch.to_string().contains(recording::FINALIZER),
            "the finalizer is removed: {patch}"
        );
    });
    recording::reconcile(Arc::new(r), c).await.unwrap();
    server.await.unwrap();
}
