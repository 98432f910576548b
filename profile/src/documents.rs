//! Inputs that hold more than one object: multi-document YAML (`---` between documents) and
//! Kubernetes `List`s (what `kubectl get … -o yaml` prints), of any kinds. Splitting is bounded
//! ([`MAX_INPUT_BYTES`], [`MAX_DOCUMENTS`]) and its errors say what is wrong with the input in
//! the user's words, with a line and column where the parser knows them.

use super::error::{FieldError, ProfileError};
use super::limits::{MAX_DOCUMENTS, MAX_INPUT_BYTES};
use serde_json::Value;

/// One object of an input, and where it was.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The YAML document it is or is in, from 1; empty documents (a leading `---`) are not
    /// counted.
    pub document: usize,
    /// Its position in the document's `items`, from 1, when the document is a `List`.
    pub list_item: Option<usize>,
    /// The object.
    pub value: Value,
}

impl Item {
    /// `kind`, when it is a string.
    pub fn kind(&self) -> Option<&str> {
        self.value.get("kind").and_then(Value::as_str)
    }

    /// `apiVersion`, when it is a string.
    pub fn api_version(&self) -> Option<&str> {
        self.value.get("apiVersion").and_then(Value::as_str)
    }

    /// The API group of `apiVersion` (`""` for the core group `v1`).
    pub fn group(&self) -> Option<&str> {
        self.api_version()
            .map(|v| v.rsplit_once('/').map_or("", |(group, _)| group))
    }

    /// `metadata.name`, when it is a string.
    pub fn name(&self) -> Option<&str> {
        self.value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
    }

    /// Where the item is and what it is, for messages: `document 2 (SeccompProfile
    /// profile-complain)`, `document 1, item 3 (ProfileBinding web)`, `document 4 (OCI
    /// profile)`.
    pub fn label(&self) -> String {
        let place = match self.list_item {
            Some(i) => format!("document {}, item {i}", self.document),
            None => format!("document {}", self.document),
        };
        let what = match (self.kind(), self.name()) {
            (Some(kind), Some(name)) => format!("{kind} {name}"),
            (Some(kind), None) => format!("{kind} without metadata.name"),
            (None, _) if self.value.get("apiVersion").is_none() && self.value.is_object() => {
                "OCI profile".to_owned()
            }
            (None, _) => "no kind".to_owned(),
        };
        format!("{place} ({what})")
    }
}

/// `value` as `T` (e.g. a custom resource), a failure naming the field (`spec.image`) and the
/// reason, as every other message of this crate does.
pub fn from_value<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        FieldError::new(
            if path == "." {
                "(root)".to_owned()
            } else {
                path
            },
            e.inner().to_string(),
        )
    })
}

/// Whether `value` is a list of objects: `kind: List` (`kubectl get -o yaml`) or a typed list
/// (`kind: SeccompProfileList`, from the API), with `items`.
fn is_list(value: &Value) -> bool {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    (kind == "List" || (kind.len() > 4 && kind.ends_with("List")))
        && value.get("apiVersion").is_some()
        && value.get("items").is_some()
}

/// Split an input (JSON, or YAML of one or more documents) into its objects, in input order,
/// with the items of `List`s in place of the lists. Refuses inputs over [`MAX_INPUT_BYTES`] or
/// with more than [`MAX_DOCUMENTS`] objects. Items are not checked: any kind comes back.
pub fn split_documents(text: &str) -> Result<Vec<Item>, ProfileError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(ProfileError::Syntax(format!(
            "the input is {} bytes, over the limit of {MAX_INPUT_BYTES}; split it into smaller files",
            text.len()
        )));
    }
    let documents = decode(text)?;
    if documents.len() > MAX_DOCUMENTS {
        return Err(too_many(documents.len()));
    }
    let mut items = Vec::new();
    for (i, value) in documents.into_iter().enumerate() {
        let document = i + 1;
        if !is_list(&value) {
            items.push(Item {
                document,
                list_item: None,
                value,
            });
            continue;
        }
        let mut value = value;
        let list_kind = value["kind"].as_str().unwrap_or_default().to_owned();
        let list_api = value["apiVersion"].as_str().unwrap_or_default().to_owned();
        let Value::Array(entries) = value["items"].take() else {
            return Err(ProfileError::Syntax(format!(
                "document {document}: `items` of the {list_kind} is not a list"
            )));
        };
        for (j, mut entry) in entries.into_iter().enumerate() {
            if items.len() >= MAX_DOCUMENTS {
                return Err(too_many(items.len() + 1));
            }
            // A typed list (SeccompProfileList) may leave out its items' apiVersion and kind.
            if let (Some(obj), Some(kind)) = (entry.as_object_mut(), list_kind.strip_suffix("List"))
            {
                if !kind.is_empty() {
                    obj.entry("apiVersion")
                        .or_insert_with(|| Value::String(list_api.clone()));
                    obj.entry("kind")
                        .or_insert_with(|| Value::String(kind.to_owned()));
                }
            }
            items.push(Item {
                document,
                list_item: Some(j + 1),
                value: entry,
            });
        }
    }
    if items.len() > MAX_DOCUMENTS {
        return Err(too_many(items.len()));
    }
    Ok(items)
}

fn too_many(n: usize) -> ProfileError {
    ProfileError::Syntax(format!(
        "the input holds more than {MAX_DOCUMENTS} objects ({n} at least, documents and list items counted together); split it into smaller files"
    ))
}

/// The documents of `text`: one JSON value, or the YAML documents (empty ones skipped).
fn decode(text: &str) -> Result<Vec<Value>, ProfileError> {
    let json_err = match serde_json::from_str::<Value>(text) {
        Ok(v) => return Ok(vec![v]),
        Err(e) => e,
    };
    match serde_saphyr::from_multiple::<Value>(text) {
        Ok(docs) => Ok(docs.into_iter().filter(|d| !d.is_null()).collect()),
        Err(yaml_err) => {
            let yaml = yaml_message(&yaml_err);
            if text.trim_start().starts_with(['{', '[']) {
                Err(ProfileError::Syntax(format!(
                    "neither JSON ({json_err}) nor YAML ({yaml})"
                )))
            } else {
                Err(ProfileError::Syntax(format!("not valid YAML: {yaml}")))
            }
        }
    }
}

/// A YAML parser error as the user needs it: where, and what; none of the parser's advice on
/// its own API.
pub(crate) fn yaml_message(e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    let what = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unreadable")
        .to_owned();
    // The message may carry its position already ("error: line 3 column 5: …", "… at line
    // 3 column 5"): it is said once, below.
    let what = what.strip_prefix("error: ").unwrap_or(&what);
    let what = match what.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => rest,
        _ => what,
    };
    let what = match what.split_once(" at line ") {
        Some((head, _)) => head.to_owned(),
        None => what.to_owned(),
    };
    match e.location() {
        Some(l) if l.line() > 0 => format!("line {}, column {}: {what}", l.line(), l.column()),
        _ => what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_split_and_empty_ones_skipped() {
        let text = "---\nkind: A\nmetadata: {name: a}\n---\n---\nkind: B\n";
        let items = split_documents(text).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].label(), "document 1 (A a)");
        assert_eq!(items[1].label(), "document 2 (B without metadata.name)");
    }

    #[test]
    fn lists_give_their_items_and_typed_lists_their_kind() {
        let text = r#"{"apiVersion":"x.dev/v1","kind":"SeccompProfileList","items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]}"#;
        let items = split_documents(text).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].label(), "document 1, item 2 (SeccompProfile b)");
        assert_eq!(items[1].group(), Some("x.dev"));
    }

    #[test]
    fn a_plain_profile_is_one_oci_item() {
        let items = split_documents(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].label(), "document 1 (OCI profile)");
    }

    #[test]
    fn the_document_cap_is_a_plain_error() {
        let text = "a: 1\n---\n".repeat(MAX_DOCUMENTS + 1);
        let e = split_documents(&text).unwrap_err().to_string();
        assert!(e.contains("more than 1000 objects"), "{e}");
        let list = format!(
            "{{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[{}]}}",
            vec!["{}"; MAX_DOCUMENTS + 1].join(",")
        );
        let e = split_documents(&list).unwrap_err().to_string();
        assert!(e.contains("more than 1000 objects"), "{e}");
    }

    #[test]
    fn yaml_errors_name_the_place_and_not_the_parser() {
        let e = split_documents("a: [1, 2\nb: c\n").unwrap_err().to_string();
        assert!(e.starts_with("not valid YAML: line "), "{e}");
        assert!(!e.contains("from_str"), "{e}");
    }
}
