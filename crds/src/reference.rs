//! The API reference (`docs/api.md`), generated from the CRDs' schemas: every field of every
//! resource with its type, its constraints and its description. `crdgen` writes it next to
//! the CRDs; a test fails while the committed page differs.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use std::fmt::Write as _;

/// The reference page, in Markdown.
pub fn markdown(crds: &[CustomResourceDefinition]) -> String {
    let mut out = String::from(
        "# API reference\n\n\
         Generated from the CustomResourceDefinitions (`crds/*.yaml`) by `hack/update-crds.sh`;\n\
         do not edit. Every resource is in the group `seccomp-operator.dev`. A field's path is\n\
         written from the resource's root; `[]` stands for every item of a list and `{}` for\n\
         every value of a map.\n",
    );
    for crd in crds {
        let names = &crd.spec.names;
        for version in &crd.spec.versions {
            let _ = write!(
                out,
                "\n## {kind}\n\n`{group}/{version}`, {scope}; plural `{plural}`",
                kind = names.kind,
                group = crd.spec.group,
                version = version.name,
                scope = crd.spec.scope.to_lowercase(),
                plural = names.plural,
            );
            if let Some(short) = names.short_names.as_ref().filter(|s| !s.is_empty()) {
                let _ = write!(out, ", short names `{}`", short.join("`, `"));
            }
            out.push_str(".\n");
            let Some(schema) = version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
            else {
                continue;
            };
            // kube's derive describes the root as "Auto-generated derived type …": not news.
            if let Some(d) = schema
                .description
                .as_ref()
                .filter(|d| !d.starts_with("Auto-generated"))
            {
                let _ = write!(out, "\n{}\n", one_paragraph(d));
            }
            rules(&mut out, schema);
            out.push_str("\n| field | type | description |\n| --- | --- | --- |\n");
            let mut rows = Vec::new();
            for (name, prop) in schema.properties.iter().flatten() {
                if matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let required = schema.required.iter().flatten().any(|r| r == name);
                walk(name, prop, required, &mut rows);
            }
            for row in rows {
                out.push_str(&row);
            }
        }
    }
    out
}

/// One table row per field below `path`, depth first.
fn walk(path: &str, s: &JSONSchemaProps, required: bool, rows: &mut Vec<String>) {
    let mut desc = s
        .description
        .as_deref()
        .map(one_paragraph)
        .unwrap_or_default();
    let constraints = constraints(s, required);
    if !constraints.is_empty() {
        if !desc.is_empty() {
            desc.push(' ');
        }
        let _ = write!(desc, "*{}.*", constraints.join("; "));
    }
    rows.push(format!(
        "| `{path}` | {} | {} |\n",
        type_of(s),
        desc.replace('|', "\\|")
    ));
    for (name, prop) in s.properties.iter().flatten() {
        let req = s.required.iter().flatten().any(|r| r == name);
        walk(&format!("{path}.{name}"), prop, req, rows);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(item)) = &s.items {
        if item.properties.is_some() {
            for (name, prop) in item.properties.iter().flatten() {
                let req = item.required.iter().flatten().any(|r| r == name);
                walk(&format!("{path}[].{name}"), prop, req, rows);
            }
        }
    }
    if let Some(JSONSchemaPropsOrBool::Schema(value)) = &s.additional_properties {
        for (name, prop) in value.properties.iter().flatten() {
            let req = value.required.iter().flatten().any(|r| r == name);
            walk(&format!("{path}{{}}.{name}"), prop, req, rows);
        }
    }
}

/// The schema's own rules (CEL), as a list under the resource's heading.
fn rules(out: &mut String, s: &JSONSchemaProps) {
    let mut found = Vec::new();
    collect_rules("", s, &mut found);
    if found.is_empty() {
        return;
    }
    out.push_str("\nRules the API server checks:\n\n");
    for (path, msg) in found {
        let _ = writeln!(
            out,
            "- `{}`: {msg}",
            if path.is_empty() { "." } else { &path }
        );
    }
}

fn collect_rules(path: &str, s: &JSONSchemaProps, out: &mut Vec<(String, String)>) {
    for v in s.x_kubernetes_validations.iter().flatten() {
        let msg = v.message.clone().unwrap_or_else(|| format!("`{}`", v.rule));
        out.push((path.to_owned(), one_paragraph(&msg)));
    }
    for (name, prop) in s.properties.iter().flatten() {
        let p = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        collect_rules(&p, prop, out);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(item)) = &s.items {
        collect_rules(&format!("{path}[]"), item, out);
    }
}

fn type_of(s: &JSONSchemaProps) -> String {
    if s.x_kubernetes_int_or_string == Some(true) {
        return "int or string".into();
    }
    let base = s.type_.clone().unwrap_or_else(|| {
        if s.x_kubernetes_preserve_unknown_fields == Some(true) {
            "any".into()
        } else if s.any_of.is_some() || s.one_of.is_some() {
            "one of several".into()
        } else {
            "object".into()
        }
    });
    match (base.as_str(), &s.items, &s.additional_properties) {
        ("array", Some(JSONSchemaPropsOrArray::Schema(item)), _) => {
            format!("list of {}", type_of(item))
        }
        ("object", _, Some(JSONSchemaPropsOrBool::Schema(v))) => format!("map of {}", type_of(v)),
        _ => match &s.format {
            Some(f) => format!("{base} ({f})"),
            None => base,
        },
    }
}

fn constraints(s: &JSONSchemaProps, required: bool) -> Vec<String> {
    let mut c = Vec::new();
    if required {
        c.push("required".to_owned());
    }
    if let Some(values) = &s.enum_ {
        let v: Vec<String> = values
            .iter()
            .map(|v| match v.0.as_str() {
                Some(s) => format!("`{s}`"),
                None => format!("`{}`", v.0),
            })
            .collect();
        c.push(format!("one of {}", v.join(", ")));
    }
    if let Some(d) = &s.default {
        c.push(format!("default `{}`", d.0));
    }
    match (s.minimum, s.maximum) {
        (Some(lo), Some(hi)) => c.push(format!("{lo}–{hi}")),
        (Some(lo), None) => c.push(format!("at least {lo}")),
        (None, Some(hi)) => c.push(format!("at most {hi}")),
        (None, None) => {}
    }
    match (s.min_length, s.max_length) {
        (Some(lo), Some(hi)) => c.push(format!("{lo}–{hi} characters")),
        (Some(lo), None) => c.push(format!("at least {lo} characters")),
        (None, Some(hi)) => c.push(format!("at most {hi} characters")),
        (None, None) => {}
    }
    match (s.min_items, s.max_items) {
        (Some(lo), Some(hi)) => c.push(format!("{lo}–{hi} items")),
        (Some(lo), None) => c.push(format!("at least {lo} items")),
        (None, Some(hi)) => c.push(format!("at most {hi} items")),
        (None, None) => {}
    }
    if let Some(n) = s.max_properties {
        c.push(format!("at most {n} entries"));
    }
    if let Some(p) = &s.pattern {
        c.push(format!("matches `{p}`"));
    }
    c
}

/// A description on one line (a table cell).
fn one_paragraph(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
