//! Registry bases (`baseProfileName: oci://…`): the operator fetches them, never the nodes.
//!
//! A reconcile asks [`Artifacts::base_for`] what a profile's registry base is. The answer comes
//! from the profile's own `status.resolvedBase` when that is the spec's reference (a digest
//! never changes; a tag is followed again only for a later `metadata.generation`), else from a
//! fetch this module runs in the background: at most [`MAX_FETCHES`] at once, each bounded in
//! time and bytes, through the egress guard ([`profile_registry::guard`]). A fetch's end wakes
//! the profile; a failed one is tried again with backoff ([`backoff`]).
//!
//! A fetch, in order, refuses: a registry the admin did not list (`ALLOWED_REGISTRIES`); a
//! pull Secret it may not read or of the wrong type (read in the profile's own namespace only,
//! where the namespace's RoleBinding lets the operator read it); any connection to loopback,
//! link-local, the cluster's service and pod ranges or a network the admin refuses
//! (checked after DNS, for every connection); an artifact that is not a seccomp profile, over
//! 1 MiB, whose digest is not the one named, or that does not validate.

use crate::pods::references::ProfileId;
use crds::{ResolvedBase, SeccompProfile};
use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Node, Secret};
use k8s_openapi::api::networking::v1::ServiceCIDR;
use kube::api::ListParams;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, ResourceExt};
use profile_registry::guard::{EgressPolicy, Guard};
use profile_registry::{Credentials, Registry, RegistryOptions};
use seccomp_profile::{OciReference, SeccompDocument, OCI_PREFIX};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

/// Fetches at once.
pub const MAX_FETCHES: usize = 4;
/// Bytes one fetch may receive in all (manifest, config, the 1 MiB layer, token answers and
/// TLS): the guard cuts the connection beyond it.
pub const MAX_FETCH_BYTES: u64 = 4 << 20;
/// The longest one fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// The wait before fetching again after `failures` failed fetches: 10 s, doubling, at most
/// 5 minutes.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs((10u64 << failures.saturating_sub(1).min(5)).min(300))
}

/// What the operator is told about registries (the policy ConfigMap, the CA files).
#[derive(Clone, Debug, Default)]
pub struct RegistryConfig {
    /// `host[:port]` or `host[:port]/repository-prefix` entries; empty: no registry.
    pub allowed: Vec<String>,
    /// Networks refused besides the fixed ones and the cluster's own ranges.
    pub refused: Vec<IpNet>,
    /// PEM CA certificates trusted besides the system's.
    pub ca_pem: Vec<Vec<u8>>,
}

/// An `ALLOWED_REGISTRIES` entry as both checks compare it: trimmed, lower case, one trailing
/// `/` dropped; empty: no entry. The API server's profile policy spells the same steps in CEL
/// (`config/webhook/profile-policy.yaml`), so the two agree on every entry.
pub fn allowed_entry(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let entry = trimmed
        .strip_suffix('/')
        .unwrap_or(trimmed)
        .to_ascii_lowercase();
    (!entry.is_empty()).then_some(entry)
}

impl RegistryConfig {
    /// Why `r` may not be fetched by the allowed list, if it may not.
    pub fn check_allowed(&self, r: &OciReference) -> Result<(), String> {
        let allowed = self.allowed.iter().any(|entry| {
            let (registry, prefix) = match entry.split_once('/') {
                Some((reg, p)) => (reg, Some(p)),
                None => (entry.as_str(), None),
            };
            registry.eq_ignore_ascii_case(&r.registry)
                && prefix
                    .is_none_or(|p| r.repository == p || r.repository.starts_with(&format!("{p}/")))
        });
        if allowed {
            Ok(())
        } else if self.allowed.is_empty() {
            Err(format!(
                "registry `{}` is not allowed: no registry is (the admin lists them in ALLOWED_REGISTRIES of the policy ConfigMap)",
                r.registry
            ))
        } else {
            Err(format!(
                "registry `{}/{}` is not in the allowed list ({}): refused",
                r.registry,
                r.repository,
                self.allowed.join(", ")
            ))
        }
    }
}

/// A fetched, validated registry base.
#[derive(Clone, Debug, PartialEq)]
pub struct Fetched {
    /// The manifest's digest.
    pub digest: String,
    /// The profile.
    pub document: SeccompDocument,
}

/// What a profile's registry base is, for a reconcile.
#[derive(Clone, Debug, PartialEq)]
pub enum Base {
    /// The profile names no registry base.
    None,
    /// Fetched (now or earlier: `status.resolvedBase`).
    Ready(ResolvedBase),
    /// Being fetched; the profile is woken when it is done.
    Fetching,
    /// The last fetch failed: why, and when to look again.
    Failed {
        /// Why, naming the field and the reference.
        why: String,
        /// When the next fetch may start.
        retry_in: Duration,
    },
}

/// What a profile's fetch is for: the reference, the Secret and the generation.
type Want = (String, Option<String>, i64);

#[derive(Debug)]
enum Entry {
    /// Running (or queued for a permit); aborted when no longer wanted.
    Fetching(tokio::task::AbortHandle),
    Done(Fetched),
    Failed {
        why: String,
        at: Instant,
    },
}

/// One profile's fetch: what it is for, its state, and the failures in a row for this
/// reference (kept across generations, so that edits do not reset the backoff).
#[derive(Debug)]
struct Slot {
    want: Want,
    entry: Entry,
    failures: u32,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Entry::Fetching(handle) = &self.entry {
            handle.abort();
        }
    }
}

/// Fetches running or queued for one namespace at most: one tenant cannot fill the queue.
pub const MAX_FETCHES_PER_NAMESPACE: usize = 2;
/// The cluster's networks are read again after this long.
const NETWORKS_TTL: Duration = Duration::from_secs(60);
/// Bytes of a fetched base's profile as JSON at most: it is carried in the profile's status
/// (`status.resolvedBase`), which every node agent receives with each status write.
pub const MAX_RESOLVED_BYTES: usize = 256 << 10;

/// The registry bases of every profile (see the module documentation).
pub struct Artifacts {
    client: Client,
    config: RegistryConfig,
    slots: Mutex<HashMap<ProfileId, Slot>>,
    networks: tokio::sync::Mutex<Option<(Instant, Arc<EgressPolicy>)>>,
    fetches: Arc<Semaphore>,
    wake: mpsc::UnboundedSender<ObjectRef<SeccompProfile>>,
}

impl Artifacts {
    /// The registry bases, and the stream of profiles to reconcile as fetches end.
    pub fn new(
        client: Client,
        config: RegistryConfig,
    ) -> (
        Arc<Self>,
        mpsc::UnboundedReceiver<ObjectRef<SeccompProfile>>,
    ) {
        let (wake, woken) = mpsc::unbounded_channel();
        let a = Artifacts {
            client,
            config,
            slots: Mutex::default(),
            networks: tokio::sync::Mutex::new(None),
            fetches: Arc::new(Semaphore::new(MAX_FETCHES)),
            wake,
        };
        (Arc::new(a), woken)
    }

    /// What `p`'s registry base is; starts a fetch when one is needed.
    pub fn base_for(self: &Arc<Self>, p: &SeccompProfile) -> Base {
        let Some(reference) = p
            .spec
            .base_profile_name
            .as_deref()
            .filter(|b| b.starts_with(OCI_PREFIX))
        else {
            // Every profile's reconcile passes here: nothing is allocated unless a fetch is
            // held (one for a profile whose registry base was just removed goes).
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            if !slots.is_empty() {
                slots.remove(&(p.namespace().unwrap_or_default(), p.name_any()));
            }
            return Base::None;
        };
        let id: ProfileId = (p.namespace().unwrap_or_default(), p.name_any());
        let generation = p.metadata.generation.unwrap_or(0);
        let refused = |why: String| {
            self.forget(&id);
            Base::Failed {
                why,
                retry_in: Duration::from_secs(300),
            }
        };
        let parsed = match OciReference::parse(reference) {
            Ok(r) => r,
            Err(why) => return refused(format!("spec.baseProfileName: {why}")),
        };
        if let Some(Err(why)) = p
            .spec
            .pull_secret_name
            .as_deref()
            .map(seccomp_profile::validate::check_object_name)
        {
            return refused(format!("spec.pullSecretName: {why}"));
        }
        // Refused at once, without a fetch: the admin's list changes only with a restart.
        if let Err(why) = self.config.check_allowed(&parsed) {
            return refused(format!("spec.baseProfileName: {why}"));
        }
        // Recorded in status: a digest holds for good, a tag for its generation. Nothing is
        // kept here then: the status is the one copy.
        if let Some(r) = p.status.as_ref().and_then(|s| s.resolved_base.as_ref()) {
            if r.reference == reference && (parsed.digest.is_some() || r.generation == generation) {
                self.forget(&id);
                return Base::Ready(r.clone());
            }
        }
        let want: Want = (
            reference.to_owned(),
            p.spec.pull_secret_name.clone(),
            generation,
        );
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mut failures = 0;
        let mut last = None;
        if let Some(slot) = slots.get(&id) {
            if slot.want.0 == want.0 {
                failures = slot.failures;
            }
            if slot.want == want {
                match &slot.entry {
                    Entry::Fetching(_) => return Base::Fetching,
                    Entry::Done(f) => {
                        return Base::Ready(ResolvedBase {
                            reference: reference.to_owned(),
                            digest: f.digest.clone(),
                            generation,
                            profile: f.document.clone(),
                        })
                    }
                    Entry::Failed { why, at } => {
                        let wait = backoff(slot.failures);
                        let waited = at.elapsed();
                        if waited < wait {
                            return Base::Failed {
                                why: why.clone(),
                                retry_in: wait - waited,
                            };
                        }
                        last = Some(why.clone());
                    }
                }
            }
        }
        // At most a few fetches per namespace: the rest wait their turn.
        let busy = slots
            .iter()
            .filter(|(k, s)| k.0 == id.0 && **k != id && matches!(s.entry, Entry::Fetching(_)))
            .count();
        if busy >= MAX_FETCHES_PER_NAMESPACE {
            return Base::Fetching;
        }
        let this = self.clone();
        let secret = want.1.clone();
        let (key_id, key_want) = (id.clone(), want.clone());
        let task = tokio::spawn(async move {
            let result = match this.fetches.clone().acquire_owned().await {
                Ok(_permit) => tokio::time::timeout(
                    FETCH_TIMEOUT + Duration::from_secs(30),
                    this.fetch(&key_id.0, &parsed, secret.as_deref()),
                )
                .await
                .unwrap_or_else(|_| Err("the fetch took too long".to_owned())),
                Err(_) => Err("the operator is shutting down".to_owned()),
            };
            this.finish(&key_id, &key_want, result);
        });
        let abort = task.abort_handle();
        // A fetch that panicked is a failed fetch, tried again: never one left "fetching".
        let watcher = self.clone();
        let (watch_id, watch_want) = (id.clone(), want.clone());
        tokio::spawn(async move {
            if let Err(e) = task.await {
                if e.is_panic() {
                    watcher.finish(
                        &watch_id,
                        &watch_want,
                        Err("the fetch failed unexpectedly".to_owned()),
                    );
                }
            }
        });
        slots.insert(
            id,
            Slot {
                want,
                entry: Entry::Fetching(abort),
                failures,
            },
        );
        match last {
            // A retry: the profile keeps reporting the last failure until it ends.
            Some(why) => Base::Failed {
                why,
                retry_in: backoff(failures + 1),
            },
            None => Base::Fetching,
        }
    }

    /// Record a fetch's result, if the profile still wants it, and wake the profile.
    fn finish(&self, id: &ProfileId, want: &Want, result: Result<Fetched, String>) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = slots.get_mut(id).filter(|s| s.want == *want) else {
            return;
        };
        slot.entry = match result {
            Ok(f) => {
                slot.failures = 0;
                Entry::Done(f)
            }
            Err(why) => {
                tracing::info!(namespace = %id.0, profile = %id.1, %why, "registry base not fetched");
                slot.failures += 1;
                Entry::Failed {
                    // A cause in another field names it already.
                    why: if why.starts_with("spec.") {
                        why
                    } else {
                        format!("spec.baseProfileName: {why}")
                    },
                    at: Instant::now(),
                }
            }
        };
        drop(slots);
        let _ = self.wake.send(ObjectRef::new(&id.1).within(&id.0));
    }

    /// Forget a profile's fetch (a running one is stopped).
    pub fn forget(&self, id: &ProfileId) {
        if let Ok(mut s) = self.slots.lock() {
            s.remove(id);
        }
    }

    /// Forget the fetches of profiles that no longer exist.
    pub fn keep_only(&self, exists: impl Fn(&ProfileId) -> bool) {
        if let Ok(mut s) = self.slots.lock() {
            s.retain(|id, _| exists(id));
        }
    }

    /// The networks a fetch must never reach, read at most once a minute.
    async fn egress_policy(&self) -> Result<Arc<EgressPolicy>, String> {
        let mut cached = self.networks.lock().await;
        if let Some((at, policy)) = cached.as_ref() {
            if at.elapsed() < NETWORKS_TTL {
                return Ok(policy.clone());
            }
        }
        let policy = Arc::new(EgressPolicy::new(self.cluster_networks().await?));
        *cached = Some((Instant::now(), policy.clone()));
        Ok(policy)
    }

    /// Fetch and validate `r` for a profile of `namespace`.
    async fn fetch(
        &self,
        namespace: &str,
        r: &OciReference,
        secret: Option<&str>,
    ) -> Result<Fetched, String> {
        self.config.check_allowed(r)?;
        let credentials = match secret {
            Some(name) => self.credentials(namespace, name, &r.registry).await?,
            None => Credentials::Anonymous,
        };
        let policy = self.egress_policy().await?;
        let guard = Guard::start(policy, MAX_FETCH_BYTES)
            .await
            .map_err(|e| format!("cannot start the egress guard: {e}"))?;
        let registry = Registry::new(RegistryOptions {
            plain_http: false,
            ca_pem: self.config.ca_pem.clone(),
            proxy: Some(guard.proxy_url()),
            timeout: FETCH_TIMEOUT,
        })
        .map_err(|e| e.to_string())?;
        let pulled = registry.pull(r, &credentials).await.map_err(|e| {
            // The guard's refusal is the cause the user needs, not the client's "tunnel failed".
            match guard.refusal() {
                Some(why) => format!("{r}: {why}"),
                None => e.to_string(),
            }
        })?;
        let document = parse_artifact(&pulled.profile).map_err(|why| format!("{r}: {why}"))?;
        let size = serde_json::to_vec(&document).map_or(0, |j| j.len());
        if size > MAX_RESOLVED_BYTES {
            return Err(format!(
                "{r}: its profile is {size} bytes as JSON, over the {MAX_RESOLVED_BYTES} a profile's status carries to the nodes"
            ));
        }
        tracing::info!(namespace, reference = %r, digest = %pulled.digest, "registry base fetched");
        Ok(Fetched {
            digest: pulled.digest,
            document,
        })
    }

    async fn credentials(
        &self,
        namespace: &str,
        name: &str,
        registry: &str,
    ) -> Result<Credentials, String> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = match api.get(name).await {
            Ok(s) => s,
            Err(kube::Error::Api(e)) if e.code == 403 => {
                return Err(format!(
                    "spec.pullSecretName: the operator may not read Secret `{name}` in namespace `{namespace}`: grant it with a Role and RoleBinding (see the \"Profiles in a registry\" guide)"
                ))
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {
                return Err(format!(
                    "spec.pullSecretName: Secret `{name}` does not exist in namespace `{namespace}`"
                ))
            }
            Err(e) => return Err(format!("spec.pullSecretName: reading Secret `{name}`: {e}")),
        };
        if secret.type_.as_deref() != Some("kubernetes.io/dockerconfigjson") {
            return Err(format!(
                "spec.pullSecretName: Secret `{name}` is of type `{}`, not kubernetes.io/dockerconfigjson",
                secret.type_.as_deref().unwrap_or("Opaque")
            ));
        }
        let data = secret
            .data
            .as_ref()
            .and_then(|d| d.get(".dockerconfigjson"))
            .ok_or_else(|| {
                format!("spec.pullSecretName: Secret `{name}` has no `.dockerconfigjson`")
            })?;
        profile_registry::credentials::from_docker_config(
            &data.0,
            &format!("Secret `{namespace}/{name}`"),
            registry,
        )
        .map_err(|e| format!("spec.pullSecretName: {e}"))
    }

    /// The cluster's service ranges (ServiceCIDR objects) and pod ranges (nodes'
    /// `spec.podCIDRs`), and the admin's: fail closed when they cannot be read.
    async fn cluster_networks(&self) -> Result<Vec<(IpNet, String)>, String> {
        let mut nets: Vec<(IpNet, String)> = self
            .config
            .refused
            .iter()
            .map(|n| (*n, "in a network the admin refuses".to_owned()))
            .collect();
        let cannot = |what: &str, e: kube::Error| {
            format!(
                "cannot read the cluster's {what} to keep fetches out of them ({e}): not fetched"
            )
        };
        let cidrs = Api::<ServiceCIDR>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .map_err(|e| cannot("service ranges", e))?;
        for c in cidrs {
            for cidr in c.spec.and_then(|s| s.cidrs).unwrap_or_default() {
                if let Ok(net) = cidr.parse() {
                    nets.push((net, "in the cluster's service range".to_owned()));
                }
            }
        }
        // A page of nodes at a time.
        let mut params = ListParams::default().limit(100);
        loop {
            let page = Api::<Node>::all(self.client.clone())
                .list(&params)
                .await
                .map_err(|e| cannot("pod ranges", e))?;
            for n in &page.items {
                let spec = n.spec.as_ref();
                let cidrs = spec
                    .and_then(|s| s.pod_cidrs.clone())
                    .or_else(|| spec.and_then(|s| s.pod_cidr.clone()).map(|c| vec![c]))
                    .unwrap_or_default();
                for cidr in cidrs {
                    if let Ok(net) = cidr.parse() {
                        nets.push((net, "in the cluster's pod range".to_owned()));
                    }
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(c) => params = params.continue_token(&c),
                None => break,
            }
        }
        Ok(nets)
    }
}

/// The profile a pulled layer holds: the runtime-spec seccomp JSON a kubelet would load,
/// valid, building on nothing.
pub fn parse_artifact(bytes: &[u8]) -> Result<SeccompDocument, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| "the profile is not UTF-8 text".to_owned())?;
    let parsed = seccomp_profile::parse_profile(text, &seccomp_profile::EvalContext::host())
        .map_err(|e| format!("the artifact's profile does not parse: {e}"))?;
    if parsed.format != seccomp_profile::SourceFormat::Oci {
        return Err(format!(
            "the artifact holds a {:?} profile, not the runtime-spec seccomp JSON a kubelet loads (push it with `seccompctl push`, which renders it)",
            parsed.format
        ));
    }
    seccomp_profile::validate_spec_at(&parsed.spec, "", Some(&seccomp_filter::Libseccomp))
        .map_err(|errs| {
            format!(
                "the artifact's profile is invalid: {}",
                seccomp_profile::limits::summarize(errs.iter().map(ToString::to_string))
            )
        })?;
    Ok(parsed.spec.document)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(allowed: &[&str]) -> RegistryConfig {
        RegistryConfig {
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_listed_registries_and_repositories_are_allowed() {
        let r = |s: &str| OciReference::parse(s).unwrap();
        let none = config(&[]);
        let e = none.check_allowed(&r("oci://r.io/a:v")).unwrap_err();
        assert!(e.contains("no registry is"), "{e}");
        let some = config(&["r.io:5443", "q.io/team"]);
        some.check_allowed(&r("oci://r.io:5443/a/b:v")).unwrap();
        some.check_allowed(&r("oci://q.io/team:v")).unwrap();
        some.check_allowed(&r("oci://q.io/team/web:v")).unwrap();
        for refused in [
            "oci://r.io/a:v",
            "oci://q.io/teams:v",
            "oci://q.io/other/team:v",
        ] {
            let e = some.check_allowed(&r(refused)).unwrap_err();
            assert!(e.contains("not in the allowed list"), "{refused}: {e}");
        }
    }

    #[test]
    fn entries_are_compared_as_the_api_servers_policy_compares_them() {
        let r = |s: &str| OciReference::parse(s).unwrap();
        assert_eq!(allowed_entry(" Q.io/Team/ ").as_deref(), Some("q.io/team"));
        assert_eq!(allowed_entry("R.IO:5443").as_deref(), Some("r.io:5443"));
        assert_eq!(allowed_entry("  "), None);
        assert_eq!(allowed_entry("/"), None);
        // Only one `/` goes: the CEL policy drops one, and a doubled one stays refused.
        assert_eq!(allowed_entry("q.io/team//").as_deref(), Some("q.io/team/"));
        let some = RegistryConfig {
            allowed: ["Q.io/Team/", "R.IO:5443"]
                .iter()
                .filter_map(|e| allowed_entry(e))
                .collect(),
            ..Default::default()
        };
        some.check_allowed(&r("oci://q.io/team/web:v")).unwrap();
        some.check_allowed(&r("oci://R.io:5443/a:v")).unwrap();
        some.check_allowed(&r("oci://q.io/teams:v")).unwrap_err();
    }

    #[test]
    fn backoff_doubles_to_five_minutes() {
        let waits: Vec<u64> = (1..=8).map(|f| backoff(f).as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn artifacts_hold_runtime_spec_json_that_validates() {
        parse_artifact(br#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#).unwrap();
        let e = parse_artifact(br#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["no_such_call"],"action":"SCMP_ACT_ALLOW"}]}"#).unwrap_err();
        assert!(e.contains("invalid") && e.contains("no_such_call"), "{e}");
        assert!(parse_artifact(b"\xff").unwrap_err().contains("UTF-8"));
        assert!(parse_artifact(b"[").unwrap_err().contains("does not parse"));
    }
}
