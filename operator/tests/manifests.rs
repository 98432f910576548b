//! The manifests in `config/` agree with the operator and with each other: every webhook
//! configuration is one the operator injects its CA into, and RBAC grants exactly those; the
//! CEL conditions that say "this pod uses a Localhost profile" are the same wherever the same
//! question is asked.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// Every object of every YAML file under `config/`, with its file.
fn config_objects() -> Vec<(PathBuf, Value)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("config/ is readable") {
            let p = e.expect("a directory entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo().join("config"), &mut files);
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("a readable manifest");
        let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        out.extend(
            docs.into_iter()
                .filter(|d| !d.is_null())
                .map(|d| (f.clone(), d)),
        );
    }
    out
}

fn names_of(objects: &[(PathBuf, Value)], kind: &str) -> BTreeSet<String> {
    objects
        .iter()
        .filter(|(_, o)| o["kind"] == kind)
        .map(|(_, o)| {
            o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn webhook_configurations_are_the_ones_the_operator_injects_and_rbac_grants() {
    let objects = config_objects();
    let mutating = set(operator::webhook::MUTATING_CONFIGURATIONS);
    let validating = set(operator::webhook::VALIDATING_CONFIGURATIONS);
    assert_eq!(names_of(&objects, "MutatingWebhookConfiguration"), mutating);
    assert_eq!(
        names_of(&objects, "ValidatingWebhookConfiguration"),
        validating
    );

    // The operator's ClusterRole may get and patch exactly those.
    let role = objects
        .iter()
        .find(|(_, o)| {
            o["kind"] == "ClusterRole" && o["metadata"]["name"] == "seccomp-operator:operator"
        })
        .map(|(_, o)| o.clone())
        .expect("the operator's ClusterRole");
    let granted = |resource: &str| -> BTreeSet<String> {
        role["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                r["resources"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == resource))
            })
            .flat_map(|r| r["resourceNames"].as_array().cloned().unwrap_or_default())
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(granted("mutatingwebhookconfigurations"), mutating);
    assert_eq!(granted("validatingwebhookconfigurations"), validating);

    // hack/deploy.sh waits for the CA in every validating configuration.
    let deploy = std::fs::read_to_string(repo().join("hack/deploy.sh")).expect("hack/deploy.sh");
    let waited: BTreeSet<String> = deploy
        .lines()
        .find_map(|l| l.trim().strip_prefix("for config in "))
        .and_then(|l| l.split(';').next())
        .expect("the CA wait loop in hack/deploy.sh")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(waited, validating);

    // Every webhook calls a path the operator serves.
    let served = [
        "/mutate-binding",
        "/mutate-gate",
        "/validate-gate",
        "/validate-policy-warn",
        "/validate-policy-enforce",
        "/validate-isolation",
        "/validate-agent-writes",
        "/validate-profile",
    ];
    for (file, o) in &objects {
        for w in o["webhooks"].as_array().into_iter().flatten() {
            let path = w["clientConfig"]["service"]["path"]
                .as_str()
                .unwrap_or_default();
            assert!(
                served.contains(&path),
                "{}: {} calls {path}",
                file.display(),
                w["name"]
            );
        }
    }
}

/// The expression of the match condition `name` in the object of `kind` called `object`,
/// in its first (or only) webhook, or in the policy's spec.
fn condition(objects: &[(PathBuf, Value)], kind: &str, object: &str, name: &str) -> String {
    let (_, o) = objects
        .iter()
        .find(|(_, o)| o["kind"] == kind && o["metadata"]["name"] == object)
        .unwrap_or_else(|| panic!("{kind} {object} in config/"));
    let conditions = if o["webhooks"].is_array() {
        o["webhooks"][0]["matchConditions"].clone()
    } else {
        o["spec"]["matchConditions"].clone()
    };
    let c = conditions
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {object} has no match condition {name}"));
    // Folded YAML: compare the expressions, not their line breaks.
    c["expression"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_same_question_is_asked_in_the_same_words() {
    let o = config_objects();
    let uses_localhost = "references-a-localhost-profile";
    assert_eq!(
        condition(
            &o,
            "ValidatingWebhookConfiguration",
            "seccomp-operator-gate",
            uses_localhost
        ),
        condition(
            &o,
            "ValidatingAdmissionPolicy",
            "seccomp-operator-isolation",
            uses_localhost
        ),
    );
    // The isolation webhook asks the same, and also about the legacy annotations.
    let gate = condition(
        &o,
        "ValidatingWebhookConfiguration",
        "seccomp-operator-gate",
        uses_localhost,
    );
    let isolation = condition(
        &o,
        "ValidatingWebhookConfiguration",
        "seccomp-operator-isolation",
        uses_localhost,
    );
    assert!(isolation.starts_with(&format!("{gate} ||")), "{isolation}");
    // The two ways of adding the scheduling gate add it to the same pods.
    for name in [
        "not-bound-to-a-node",
        "not-gated-yet",
        "references-an-operator-profile",
    ] {
        assert_eq!(
            condition(
                &o,
                "MutatingAdmissionPolicy",
                "seccomp-operator-profile-gate",
                name
            ),
            condition(
                &o,
                "MutatingWebhookConfiguration",
                "seccomp-operator-profile-gate",
                name
            ),
            "{name}"
        );
    }
}

/// The API server's policies that single out an account name it as the manifests deploy it:
/// a renamed ServiceAccount or namespace would make a policy silently match nobody.
#[test]
fn policies_name_the_accounts_the_manifests_deploy() {
    let o = config_objects();
    let account_of = |kind: &str, name: &str| {
        let (_, w) = o
            .iter()
            .find(|(_, x)| x["kind"] == kind && x["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} in config/"));
        format!(
            "request.userInfo.username == 'system:serviceaccount:{}:{}'",
            w["metadata"]["namespace"].as_str().expect("a namespace"),
            w["spec"]["template"]["spec"]["serviceAccountName"]
                .as_str()
                .expect("a ServiceAccount")
        )
    };
    assert_eq!(
        condition(
            &o,
            "ValidatingAdmissionPolicy",
            "seccomp-operator-node-reports",
            "a-node-agent"
        ),
        account_of("DaemonSet", "seccomp-node-agent")
    );
    assert_eq!(
        condition(
            &o,
            "ValidatingAdmissionPolicy",
            "seccomp-operator-ungate-fence",
            "the-operator"
        ),
        account_of("Deployment", "seccomp-operator")
    );
}
