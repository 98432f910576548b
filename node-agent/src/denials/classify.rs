//! Which logged calls are would-be denials: a `SCMP_ACT_LOG` audit record of a container under
//! an operator profile, classified against that profile's **enforced** document.
//!
//! The complain rendering installs every refusing action as `SCMP_ACT_LOG`, and keeps the
//! profile's own `SCMP_ACT_LOG` rules as they are: the kernel's record does not say which of
//! the two logged a call, nor with which arguments. So the record is looked up in the
//! profile's enforced form ([`seccomp_profile::would_deny`]): a refusal there is a would-be
//! denial (with the action enforcement would take), anything else (an original log rule, an
//! allowed call) is not reported.
//!
//! **The current spec, not the container's.** The enforced document is resolved from the
//! profile as the API server has it now (GET of the SeccompProfile and of its bases in the
//! same namespace; `spec.mode` ignored), not from the version the container started with,
//! which the agent cannot know. So:
//! - a syscall the profile has since allowed is no longer reported, even by containers still
//!   running the older complain rendering (which keep logging it);
//! - a container started under `Complain` keeps being reported after the profile is switched
//!   to `Enforce`: its filter still logs instead of refusing until it restarts;
//! - a profile that is gone, or whose current spec does not resolve (invalid, a missing base, a
//!   cycle), classifies nothing: its records are counted as unclassified and dropped.
//!
//! Reads are cached per (namespace, name) for [`TTL`] (60 s) — a change to a profile is seen
//! at most that late — in at most [`MAX_ENTRIES`] entries, [`MAX_ENTRIES_PER_NAMESPACE`] of
//! one namespace (a namespace at its share evicts only its own entries, so one tenant cannot
//! evict everyone); a missing or invalid profile is an answer too, cached the same. Reads run
//! in a task of their own, one at a time, at most [`MAX_IN_FLIGHT`] waiting, so a slow API
//! server never holds up the draining of audit records; a read that fails (API server down,
//! forbidden, timed out) is not cached: the caller keeps the series waiting and asks again,
//! no read going out for [`RETRY_AFTER`] (5 s).
//!
//! **API load.** A read is one GET of the profile and one of each base in its namespace (at
//! most [`MAX_DEPTH`]; built-in bases are not read). A profile is read only when a logged call
//! of one of its containers is classified and its cached answer is missing or [`TTL`] old: one
//! GET per profile and per base, per node, per [`TTL`], for as long as its containers keep
//! logging on that node — a profile in complain mode with containers on N nodes costs at most
//! N reads a minute, whatever the number of records; one whose containers stopped logging is
//! not read again. A `Logs` recording's containers never get here (their logged calls are the
//! recording's: [`super::attribute::is_logs_recording`]). Past the cache's bounds (more than
//! [`MAX_ENTRIES`] profiles logging on one node, or [`MAX_ENTRIES_PER_NAMESPACE`] of one
//! namespace) entries are evicted and read again sooner; the reads stay one at a time, so a
//! node never has more than one read of the API server in flight.
//!
//! [`Cache`], [`enforced`] and [`Classifier::classify`] are pure (time is passed in, the reads
//! come through channels): tested without an API server.

use crds::SeccompProfile;
use kube::{Api, Client};
use seccomp_profile::{
    resolve, validate_spec, would_deny, ProfileSpec, SeccompDocument, WouldDeny, BUILTIN_PREFIX,
    MAX_DEPTH,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a profile's answer (a read that succeeded: its document, or that it is missing or
/// invalid) is trusted; reads that failed are not cached (see [`RETRY_AFTER`]).
pub const TTL: Duration = Duration::from_secs(60);
/// Profiles cached at once.
pub const MAX_ENTRIES: usize = 1024;
/// Profiles of one namespace cached at once.
pub const MAX_ENTRIES_PER_NAMESPACE: usize = 128;
/// Reads asked for and not yet answered.
pub const MAX_IN_FLIGHT: usize = 16;
/// After a failed read, no read is asked for this long (the API server is likely down).
pub const RETRY_AFTER: Duration = Duration::from_secs(5);
/// One read (the profile and its bases) gives up after this long.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A profile: (namespace, name).
pub type ProfileKey = (String, String);

/// A finished read: the profile and what it is, or why the API server did not say.
pub type ReadResult = (ProfileKey, Result<Enforced, String>);

/// What a profile's current spec makes of it, enforced.
#[derive(Clone, Debug, PartialEq)]
pub enum Enforced {
    /// The resolved document, as enforcement would install it.
    Document(Arc<SeccompDocument>),
    /// The profile does not exist.
    NotFound,
    /// The profile (or a base) is invalid or its chain of bases does not resolve.
    Invalid(String),
}

/// What enforcement would do with a logged syscall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Refuse it: a would-be denial.
    WouldDeny(WouldDeny),
    /// Let it run (allow, log, or a seccomp agent's to decide): not reported.
    Runs,
    /// The profile is missing or invalid: nothing to classify against.
    Unknown,
    /// Not read yet, or the last read failed: ask again at the next turn.
    Waiting,
}

impl Enforced {
    /// The verdict on `syscall` (see [`Verdict`]).
    pub fn verdict(&self, syscall: &str) -> Verdict {
        match self {
            Enforced::Document(doc) => {
                would_deny(doc, syscall).map_or(Verdict::Runs, Verdict::WouldDeny)
            }
            Enforced::NotFound | Enforced::Invalid(_) => Verdict::Unknown,
        }
    }
}

/// The enforced document of the profile `name` (`spec`), its bases (same namespace) found in
/// `bases`: the profile and its bases validated (without a syscall table: a name this node's
/// libseccomp does not know is not refused here), then resolved with the mode ignored.
/// Built-in bases are resolve's own.
pub fn enforced(name: &str, spec: &ProfileSpec, bases: &BTreeMap<String, ProfileSpec>) -> Enforced {
    let invalid = |what: &str, errors: Vec<seccomp_profile::FieldError>| {
        Enforced::Invalid(format!(
            "{what}: {}",
            seccomp_profile::limits::summarize(errors.iter().map(ToString::to_string))
        ))
    };
    if let Err(errors) = validate_spec(spec, None) {
        return invalid(&format!("profile `{name}`"), errors);
    }
    for (base, base_spec) in bases {
        if let Err(errors) = validate_spec(base_spec, None) {
            return invalid(&format!("base profile `{base}`"), errors);
        }
    }
    match resolve(name, spec, bases) {
        Ok(doc) => Enforced::Document(Arc::new(doc)),
        Err(e) => Enforced::Invalid(e.to_string()),
    }
}

/// One GET: the spec, none (404), or why the object cannot be read as a SeccompProfile.
async fn get(
    api: &Api<SeccompProfile>,
    name: &str,
) -> Result<Result<Option<ProfileSpec>, String>, kube::Error> {
    match api.get_opt(name).await {
        // A registry base comes folded in, from the operator's fetch in its status.
        Ok(Some(sp)) => {
            let mut spec = sp.spec.profile;
            let resolved = sp.status.and_then(|s| s.resolved_base);
            Ok(crds::fold_registry_base(&mut spec, resolved.as_ref()).map(|_| Some(spec)))
        }
        Ok(None) => Ok(Ok(None)),
        Err(kube::Error::SerdeError(e)) => Ok(Err(e.to_string())),
        Err(e) => Err(e),
    }
}

/// Read the profile `key` and its bases (at most [`MAX_DEPTH`] of them) and resolve its
/// enforced document. Err only when the API server did not give an answer about the objects
/// (unreachable, timed out, the read refused): not cached, asked again.
pub async fn read(client: Client, key: &ProfileKey) -> Result<Enforced, kube::Error> {
    let api: Api<SeccompProfile> = Api::namespaced(client, &key.0);
    let spec = match get(&api, &key.1).await? {
        Ok(Some(spec)) => spec,
        Ok(None) => return Ok(Enforced::NotFound),
        Err(why) => return Ok(Enforced::Invalid(why)),
    };
    let mut bases = BTreeMap::new();
    let mut next = spec.base_profile_name.clone();
    while let Some(base) = next.take() {
        // Built-ins are resolve's; a cycle, a chain too deep or a missing base resolve names.
        if base.starts_with(BUILTIN_PREFIX)
            || base == key.1
            || bases.contains_key(&base)
            || bases.len() >= MAX_DEPTH
        {
            break;
        }
        match get(&api, &base).await? {
            Ok(Some(base_spec)) => {
                next = base_spec.base_profile_name.clone();
                bases.insert(base, base_spec);
            }
            Ok(None) => break,
            Err(why) => {
                return Ok(Enforced::Invalid(format!(
                    "base profile `{base}` cannot be read: {why}"
                )))
            }
        }
    }
    Ok(enforced(&key.1, &spec, &bases))
}

/// Read profiles, one at a time, as asked, until either side of the channels is gone.
async fn reader(
    client: Client,
    mut asked: mpsc::Receiver<ProfileKey>,
    answers: mpsc::Sender<ReadResult>,
) {
    while let Some(key) = asked.recv().await {
        let answer = match tokio::time::timeout(READ_TIMEOUT, read(client.clone(), &key)).await {
            Ok(Ok(enforced)) => Ok(enforced),
            Ok(Err(e)) => Err(crate::error_chain(&e)),
            Err(_) => Err(format!(
                "the API server did not answer in {} s",
                READ_TIMEOUT.as_secs()
            )),
        };
        if answers.send((key, answer)).await.is_err() {
            return;
        }
    }
}

/// Enforced documents by profile, for [`TTL`], bounded (see the module's docs).
#[derive(Debug, Default)]
pub struct Cache {
    entries: HashMap<ProfileKey, (Enforced, Instant)>,
    per_namespace: HashMap<String, usize>,
}

impl Cache {
    /// The profile's entry, if read less than [`TTL`] before `now`.
    pub fn get(&self, key: &ProfileKey, now: Instant) -> Option<&Enforced> {
        self.entries
            .get(key)
            .filter(|(_, at)| now.duration_since(*at) < TTL)
            .map(|(e, _)| e)
    }

    /// Keep `value` for `key`, read at `now`. Room is made, in this order: the namespace's own
    /// oldest entry when the namespace has its share; else, when the cache is full, expired
    /// entries, then the oldest entry of the namespace holding the most (the first by name on
    /// a tie) — never one of a namespace holding fewer than the newcomer's.
    pub fn insert(&mut self, key: ProfileKey, value: Enforced, now: Instant) {
        if let Some(slot) = self.entries.get_mut(&key) {
            *slot = (value, now);
            return;
        }
        let held = self.per_namespace.get(&key.0).copied().unwrap_or(0);
        if held >= MAX_ENTRIES_PER_NAMESPACE {
            self.evict_oldest_of(&key.0.clone());
        } else if self.entries.len() >= MAX_ENTRIES {
            self.expire(now);
            if self.entries.len() >= MAX_ENTRIES {
                let fullest = self
                    .per_namespace
                    .iter()
                    .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                    .map(|(ns, _)| ns.clone());
                if let Some(ns) = fullest {
                    self.evict_oldest_of(&ns);
                }
            }
        }
        *self.per_namespace.entry(key.0.clone()).or_default() += 1;
        self.entries.insert(key, (value, now));
    }

    fn evict_oldest_of(&mut self, namespace: &str) {
        let oldest = self
            .entries
            .iter()
            .filter(|(k, _)| k.0 == namespace)
            .min_by_key(|(k, (_, at))| (*at, (*k).clone()))
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.remove(&k);
        }
    }

    fn remove(&mut self, key: &ProfileKey) {
        if self.entries.remove(key).is_some() {
            if let Some(n) = self.per_namespace.get_mut(&key.0) {
                *n -= 1;
                if *n == 0 {
                    self.per_namespace.remove(&key.0);
                }
            }
        }
    }

    /// Drop every entry older than [`TTL`].
    pub fn expire(&mut self, now: Instant) {
        let old: Vec<ProfileKey> = self
            .entries
            .iter()
            .filter(|(_, (_, at))| now.duration_since(*at) >= TTL)
            .map(|(k, _)| k.clone())
            .collect();
        for k in old {
            self.remove(&k);
        }
    }

    /// Entries held (fresh or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries held of `namespace`.
    pub fn len_of(&self, namespace: &str) -> usize {
        self.per_namespace.get(namespace).copied().unwrap_or(0)
    }
}

/// A read that finished since the last turn.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// The profile was read (found or not, valid or not): cached.
    Read(ProfileKey),
    /// The API server did not answer: not cached, reads pause for [`RETRY_AFTER`].
    Failed(ProfileKey, String),
}

/// The cache and the reads behind it.
pub struct Classifier {
    cache: Cache,
    ask: mpsc::Sender<ProfileKey>,
    answers: mpsc::Receiver<ReadResult>,
    in_flight: HashSet<ProfileKey>,
    paused_until: Option<Instant>,
}

impl Classifier {
    /// A classifier whose reads go to the API server through `client` (a task of its own).
    pub fn start(client: Client) -> Self {
        let (ask, asked) = mpsc::channel(MAX_IN_FLIGHT);
        let (answer, answers) = mpsc::channel(MAX_IN_FLIGHT);
        tokio::spawn(reader(client, asked, answer));
        Classifier::with_channels(ask, answers)
    }

    /// A classifier asking `ask` for reads and taking their results from `answers`.
    pub fn with_channels(
        ask: mpsc::Sender<ProfileKey>,
        answers: mpsc::Receiver<ReadResult>,
    ) -> Self {
        Classifier {
            cache: Cache::default(),
            ask,
            answers,
            in_flight: HashSet::new(),
            paused_until: None,
        }
    }

    /// Take the reads that finished (at `now`) into the cache.
    pub fn receive(&mut self, now: Instant) -> Vec<Answer> {
        let mut out = Vec::new();
        while let Ok((key, result)) = self.answers.try_recv() {
            self.in_flight.remove(&key);
            match result {
                Ok(enforced) => {
                    self.cache.insert(key.clone(), enforced, now);
                    out.push(Answer::Read(key));
                }
                Err(why) => {
                    self.paused_until = Some(now + RETRY_AFTER);
                    out.push(Answer::Failed(key, why));
                }
            }
        }
        out
    }

    /// What enforcement of `profile` would do with `syscall`, from a read less than [`TTL`]
    /// old; [`Verdict::Waiting`] (and the read asked for, when reads are not paused and there
    /// is room) otherwise.
    pub fn classify(&mut self, profile: &ProfileKey, syscall: &str, now: Instant) -> Verdict {
        if let Some(e) = self.cache.get(profile, now) {
            return e.verdict(syscall);
        }
        let paused = self.paused_until.is_some_and(|t| now < t);
        if !paused
            && self.in_flight.len() < MAX_IN_FLIGHT
            && !self.in_flight.contains(profile)
            && self.ask.try_send(profile.clone()).is_ok()
        {
            self.in_flight.insert(profile.clone());
        }
        Verdict::Waiting
    }

    /// The cache (for tests and inspection).
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Reads asked for and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccomp_profile::Action;

    fn spec(json: serde_json::Value) -> ProfileSpec {
        serde_json::from_value(json).unwrap()
    }

    fn key(ns: &str, name: &str) -> ProfileKey {
        (ns.into(), name.into())
    }

    /// A complain profile on a base in its namespace, on a built-in.
    fn fixtures() -> (ProfileSpec, BTreeMap<String, ProfileSpec>) {
        let web = spec(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "baseProfileName": "common",
            "mode": "Complain",
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["uname"], "action": "SCMP_ACT_LOG"},
                {"names": ["ptrace"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
            ],
        }));
        let common = spec(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "baseProfileName": "builtin:runc",
            "syscalls": [
                {"names": ["openat", "close"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["bpf"], "action": "SCMP_ACT_TRAP"},
            ],
        }));
        (web, BTreeMap::from([("common".to_owned(), common)]))
    }

    #[test]
    fn the_enforced_document_of_a_complain_profile_and_its_bases_classifies_logged_calls() {
        let (web, bases) = fixtures();
        let e = enforced("web", &web, &bases);
        let Enforced::Document(doc) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(
            doc.default_action,
            Action::Errno,
            "the mode is ignored: the enforced form, not the complain rendering"
        );
        let v = |s| e.verdict(s);
        assert_eq!(v("read"), Verdict::Runs);
        assert_eq!(v("openat"), Verdict::Runs, "allowed by the base");
        assert_eq!(
            v("uname"),
            Verdict::Runs,
            "an original log rule is no denial"
        );
        let refused = |s| match v(s) {
            Verdict::WouldDeny(w) => Some((w.action, w.depends_on_arguments)),
            _ => None,
        };
        assert_eq!(
            refused("mkdir"),
            Some((Action::Errno, false)),
            "the default refuses"
        );
        assert_eq!(refused("ptrace"), Some((Action::KillProcess, false)));
        let Verdict::WouldDeny(bpf) = v("bpf") else {
            panic!()
        };
        assert_eq!(bpf.action, Action::Trap, "the base's refusal");
        let Verdict::WouldDeny(socket) = v("socket") else {
            panic!()
        };
        assert!(socket.depends_on_arguments);
        assert!(!socket.argument_note().is_empty());
        // The built-in base (resolve's own) is part of it: runc's init calls are allowed.
        let runc = seccomp_profile::builtin::get("runc").unwrap();
        let from_builtin = runc
            .syscalls
            .iter()
            .find(|r| r.action == Action::Allow && r.args.is_empty())
            .map(|r| r.names[0].clone())
            .unwrap();
        assert_eq!(v(&from_builtin), Verdict::Runs, "{from_builtin}");
    }

    #[test]
    fn a_profile_that_does_not_resolve_classifies_nothing() {
        let (web, _) = fixtures();
        let missing = enforced("web", &web, &BTreeMap::new());
        assert!(
            matches!(&missing, Enforced::Invalid(why) if why.contains("common")),
            "{missing:?}"
        );
        assert_eq!(missing.verdict("mkdir"), Verdict::Unknown);
        assert_eq!(Enforced::NotFound.verdict("mkdir"), Verdict::Unknown);

        let mut a =
            spec(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "baseProfileName": "b"}));
        let b =
            spec(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "baseProfileName": "a"}));
        let cycle = enforced("a", &a, &BTreeMap::from([("b".to_owned(), b)]));
        assert!(
            matches!(&cycle, Enforced::Invalid(why) if why.contains("cycle")),
            "{cycle:?}"
        );

        a.base_profile_name = None;
        a.document.default_errno_ret = Some(1);
        a.document.default_action = Action::KillProcess;
        let invalid = enforced("a", &a, &BTreeMap::new());
        assert!(
            matches!(&invalid, Enforced::Invalid(why) if why.contains("profile `a`")),
            "{invalid:?}"
        );
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let mut c = Cache::default();
        let t0 = Instant::now();
        c.insert(key("t", "web"), Enforced::NotFound, t0);
        assert_eq!(
            c.get(&key("t", "web"), t0 + TTL / 2),
            Some(&Enforced::NotFound)
        );
        assert_eq!(
            c.get(&key("t", "web"), t0 + TTL),
            None,
            "a negative answer expires too"
        );
        c.insert(key("t", "web"), Enforced::Invalid("x".into()), t0 + TTL);
        assert_eq!(c.len(), 1, "replaced, not added");
        assert!(c.get(&key("t", "web"), t0 + TTL).is_some());
        c.expire(t0 + TTL * 3);
        assert!(c.is_empty() && c.len_of("t") == 0);
    }

    #[test]
    fn the_cache_is_bounded_and_one_namespace_evicts_only_itself() {
        let mut c = Cache::default();
        let t0 = Instant::now();
        // Alone in an empty cache, a namespace still holds no more than its share.
        for i in 0..MAX_ENTRIES {
            c.insert(key("hostile", &format!("early{i}")), Enforced::NotFound, t0);
        }
        assert_eq!(c.len(), MAX_ENTRIES_PER_NAMESPACE);
        let others = MAX_ENTRIES / MAX_ENTRIES_PER_NAMESPACE - 1;
        for ns in 0..others {
            for i in 0..MAX_ENTRIES_PER_NAMESPACE {
                c.insert(
                    key(&format!("ns{ns}"), &format!("p{i}")),
                    Enforced::NotFound,
                    t0,
                );
            }
        }
        // A hostile tenant reads far more profiles than its share, later than everyone else.
        for i in 0..10 * MAX_ENTRIES {
            let at = t0 + Duration::from_millis(i as u64);
            c.insert(key("hostile", &format!("p{i}")), Enforced::NotFound, at);
        }
        assert_eq!(c.len_of("hostile"), MAX_ENTRIES_PER_NAMESPACE);
        assert_eq!(c.len(), MAX_ENTRIES);
        for ns in 0..others {
            assert_eq!(c.len_of(&format!("ns{ns}")), MAX_ENTRIES_PER_NAMESPACE);
        }
        let now = t0 + Duration::from_millis(10 * MAX_ENTRIES as u64);
        assert!(
            c.get(&key("hostile", &format!("p{}", 10 * MAX_ENTRIES - 1)), now)
                .is_some(),
            "it keeps its newest"
        );
        assert!(
            c.get(&key("hostile", "p0"), now).is_none(),
            "its oldest went"
        );

        // Full: a small tenant's entry takes the place of the fullest namespace's oldest.
        c.insert(key("small", "web"), Enforced::NotFound, now);
        assert_eq!(c.len(), MAX_ENTRIES);
        assert_eq!(c.len_of("small"), 1);
        assert_eq!(c.len_of("hostile") + 1, MAX_ENTRIES_PER_NAMESPACE);
        // Expired entries go first.
        c.insert(key("small", "api"), Enforced::NotFound, t0 + TTL);
        assert_eq!(c.len_of("small"), 2);
        assert_eq!(c.len_of("ns0"), 0, "every ns* entry had expired");
    }

    fn classifier() -> (
        Classifier,
        mpsc::Receiver<ProfileKey>,
        mpsc::Sender<ReadResult>,
    ) {
        let (ask, asked) = mpsc::channel(MAX_IN_FLIGHT);
        let (answer, answers) = mpsc::channel(MAX_IN_FLIGHT);
        (Classifier::with_channels(ask, answers), asked, answer)
    }

    #[test]
    fn a_series_waits_for_its_read_and_a_failed_read_is_asked_again_later() {
        let (mut c, mut asked, answer) = classifier();
        let (web, bases) = fixtures();
        let k = key("t", "web");
        let t0 = Instant::now();
        assert_eq!(c.classify(&k, "mkdir", t0), Verdict::Waiting);
        assert_eq!(c.classify(&k, "bpf", t0), Verdict::Waiting);
        assert_eq!(asked.try_recv().unwrap(), k);
        assert!(asked.try_recv().is_err(), "one read per profile at a time");

        // The API server is down: nothing cached, no read for a while, then again.
        answer
            .try_send((k.clone(), Err("connection refused".into())))
            .unwrap();
        assert!(matches!(&c.receive(t0)[..], [Answer::Failed(f, _)] if *f == k));
        assert_eq!(
            c.classify(&k, "mkdir", t0 + RETRY_AFTER / 2),
            Verdict::Waiting
        );
        assert!(asked.try_recv().is_err(), "paused");
        assert_eq!(c.classify(&k, "mkdir", t0 + RETRY_AFTER), Verdict::Waiting);
        assert_eq!(asked.try_recv().unwrap(), k, "asked again");

        let t1 = t0 + RETRY_AFTER;
        answer
            .try_send((k.clone(), Ok(enforced("web", &web, &bases))))
            .unwrap();
        assert_eq!(c.receive(t1), vec![Answer::Read(k.clone())]);
        assert_eq!(c.in_flight(), 0);
        assert!(
            matches!(c.classify(&k, "mkdir", t1), Verdict::WouldDeny(w) if w.action == Action::Errno)
        );
        assert_eq!(c.classify(&k, "uname", t1), Verdict::Runs);
        assert!(asked.try_recv().is_err(), "answered from the cache");
        // Past the TTL it is read again.
        assert_eq!(c.classify(&k, "mkdir", t1 + TTL), Verdict::Waiting);
        assert_eq!(asked.try_recv().unwrap(), k);
    }

    #[test]
    fn a_read_profile_is_trusted_for_a_minute_and_a_failed_read_is_asked_again_after_5_s() {
        assert_eq!(TTL, Duration::from_secs(60));
        assert_eq!(RETRY_AFTER, Duration::from_secs(5));
        let (mut c, mut asked, answer) = classifier();
        let (web, bases) = fixtures();
        let (k, gone) = (key("t", "web"), key("t", "gone"));
        let t0 = Instant::now();
        assert_eq!(c.classify(&k, "mkdir", t0), Verdict::Waiting);
        assert_eq!(c.classify(&gone, "mkdir", t0), Verdict::Waiting);
        assert_eq!(asked.try_recv().unwrap(), k);
        assert_eq!(asked.try_recv().unwrap(), gone);
        answer
            .try_send((k.clone(), Ok(enforced("web", &web, &bases))))
            .unwrap();
        answer
            .try_send((gone.clone(), Ok(Enforced::NotFound)))
            .unwrap();
        assert_eq!(c.receive(t0).len(), 2);
        // Records keep coming for a minute: answered from the cache, no GET.
        for s in 0..60 {
            let at = t0 + Duration::from_secs(s);
            assert!(matches!(c.classify(&k, "mkdir", at), Verdict::WouldDeny(_)));
            assert_eq!(c.classify(&gone, "mkdir", at), Verdict::Unknown);
        }
        assert!(asked.try_recv().is_err(), "one read per profile per TTL");
        // A minute after the read: read again (a missing profile too).
        let t1 = t0 + TTL;
        assert_eq!(c.classify(&k, "mkdir", t1), Verdict::Waiting);
        assert_eq!(c.classify(&gone, "mkdir", t1), Verdict::Waiting);
        assert_eq!(asked.try_recv().unwrap(), k);
        assert_eq!(asked.try_recv().unwrap(), gone);
        // That read fails: not cached, and asked again 5 s later, not a minute.
        answer
            .try_send((k.clone(), Err("connection refused".into())))
            .unwrap();
        assert!(matches!(&c.receive(t1)[..], [Answer::Failed(..)]));
        assert_eq!(c.cache().get(&k, t1), None, "the stale answer is not used");
        assert_eq!(
            c.classify(&k, "mkdir", t1 + RETRY_AFTER - Duration::from_millis(1)),
            Verdict::Waiting
        );
        assert!(asked.try_recv().is_err());
        assert_eq!(c.classify(&k, "mkdir", t1 + RETRY_AFTER), Verdict::Waiting);
        assert_eq!(asked.try_recv().unwrap(), k);
    }

    #[test]
    fn reads_in_flight_are_bounded() {
        let (mut c, mut asked, _answer) = classifier();
        let t0 = Instant::now();
        for i in 0..3 * MAX_IN_FLIGHT {
            assert_eq!(
                c.classify(&key("t", &format!("p{i}")), "mkdir", t0),
                Verdict::Waiting
            );
        }
        assert_eq!(c.in_flight(), MAX_IN_FLIGHT);
        let mut n = 0;
        while asked.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, MAX_IN_FLIGHT);
    }
}
