//! The committed CRD YAML must be exactly what the Rust types generate.
//! Run `hack/update-crds.sh` after changing an API type.

#[test]
fn committed_crds_match_the_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for (file, yaml) in crds::crd_yaml() {
        let committed = std::fs::read_to_string(dir.join(&file)).unwrap_or_default();
        if committed != yaml {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "CRD YAML out of date: {stale:?}; run hack/update-crds.sh and commit the result"
    );
}

#[test]
fn committed_api_reference_matches_the_types() {
    let page = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    let committed = std::fs::read_to_string(page).unwrap_or_default();
    assert!(
        committed == crds::api_reference(),
        "docs/api.md out of date; run hack/update-crds.sh and commit the result"
    );
}

#[test]
fn crds_have_the_fixed_names() {
    let crds = crds::crds();
    let names: Vec<(String, String, Vec<String>)> = crds
        .iter()
        .map(|c| {
            (
                c.spec.names.kind.clone(),
                c.spec.scope.clone(),
                c.spec.names.short_names.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            (
                "SeccompProfile".into(),
                "Namespaced".into(),
                vec!["sp".into()]
            ),
            (
                "ProfileRecording".into(),
                "Namespaced".into(),
                vec!["prec".into()]
            ),
            (
                "ProfileBinding".into(),
                "Namespaced".into(),
                vec!["pb".into()]
            ),
            ("SeccompNodeStatus".into(), "Cluster".into(), vec![]),
            ("RecordingReport".into(), "Namespaced".into(), vec![]),
        ]
    );
    for crd in &crds {
        assert_eq!(crd.spec.group, "seccomp-operator.dev");
        assert_eq!(crd.spec.versions[0].name, "v1alpha1");
        assert!(crd.spec.versions[0]
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some());
    }
}

#[test]
fn every_spec_field_is_documented() {
    // Every property in every schema has a description: it is `kubectl explain` text.
    fn walk(path: &str, v: &serde_json::Value, missing: &mut Vec<String>) {
        if let Some(props) = v.get("properties").and_then(|p| p.as_object()) {
            for (k, child) in props {
                let p = format!("{path}.{k}");
                if child.get("description").is_none()
                    && !matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                {
                    missing.push(p.clone());
                }
                walk(&p, child, missing);
            }
        }
        if let Some(items) = v.get("items") {
            walk(&format!("{path}[]"), items, missing);
        }
    }
    let mut missing = Vec::new();
    for crd in crds::crds() {
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
        // Condition and LabelSelector come documented from k8s-openapi; check our own types.
        walk(
            &crd.spec.names.kind,
            &schema["openAPIV3Schema"],
            &mut missing,
        );
    }
    assert!(missing.is_empty(), "undocumented fields: {missing:#?}");
}
