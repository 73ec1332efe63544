//! Turns parsed documents into typed objects.

#![expect(
    clippy::result_large_err,
    reason = "errors are per document and rare; they carry the context users need"
)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_norway::Value;

use super::{ManifestError, Origin, strict};
use crate::object::{DEFAULT_NAMESPACE, Kind, Object, ObjectRef};

/// Decodes one parsed document (a `kind: List` gives one result per item) into `results`.
pub(super) fn document(
    value: Value,
    origin: &Origin,
    results: &mut Vec<Result<Object, ManifestError>>,
) {
    let (api_version, kind) = match type_meta(&value, origin) {
        Ok(type_meta) => type_meta,
        Err(err) => return results.push(Err(err)),
    };
    if api_version == "v1" && kind == "List" && origin.item.is_none() {
        return list(value, origin, results);
    }
    let result = match Kind::from_type_meta(&api_version, &kind) {
        Some(kind) => object(kind, &value, origin),
        None => Err(ManifestError::UnsupportedKind {
            origin: origin.clone(),
            api_version,
            kind,
        }),
    };
    results.push(result);
}

fn list(value: Value, origin: &Origin, results: &mut Vec<Result<Object, ManifestError>>) {
    let items = match value.get("items") {
        None | Some(Value::Null) => return,
        Some(Value::Sequence(items)) => items.clone(),
        Some(_) => {
            return results.push(Err(ManifestError::ListItems {
                origin: origin.clone(),
            }));
        }
    };
    for (index, item) in items.into_iter().enumerate() {
        document(item, &origin.item(index), results);
    }
}

fn type_meta(value: &Value, origin: &Origin) -> Result<(String, String), ManifestError> {
    if !value.is_mapping() {
        return Err(ManifestError::NotAMapping {
            origin: origin.clone(),
            found: value_kind(value),
        });
    }
    let field = |field: &'static str| {
        value
            .get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ManifestError::MissingTypeField {
                origin: origin.clone(),
                field,
            })
    };
    Ok((field("apiVersion")?, field("kind")?))
}

fn object(kind: Kind, value: &Value, origin: &Origin) -> Result<Object, ManifestError> {
    let decode_error = |path: Option<String>, source| ManifestError::Decode {
        origin: origin.clone(),
        kind,
        object: raw_ref(kind, value),
        path,
        source,
    };
    let (mut object, written) = match kind {
        Kind::Namespace => typed(value, Object::Namespace),
        Kind::Pod => typed(value, Object::Pod),
        Kind::Service => typed(value, Object::Service),
        Kind::NetworkPolicy => typed(value, Object::NetworkPolicy),
        Kind::CiliumNetworkPolicy => typed(value, Object::CiliumNetworkPolicy),
        Kind::CiliumClusterwideNetworkPolicy => {
            typed(value, Object::CiliumClusterwideNetworkPolicy)
        }
    }
    .map_err(|(path, source)| decode_error(path, source))?;

    let fields = strict::unknown_fields(value, &written);
    if !fields.is_empty() {
        return Err(ManifestError::UnknownFields {
            origin: origin.clone(),
            kind,
            object: raw_ref(kind, value),
            fields,
        });
    }
    if kind.is_namespaced() {
        default_namespace(object.metadata_mut());
    }
    Ok(object)
}

type DecodeFailure = (Option<String>, serde_norway::Error);

/// Decodes `value` as `T` (recording where it failed) and encodes it again for the strict
/// unknown-field check.
fn typed<T>(value: &Value, wrap: fn(Box<T>) -> Object) -> Result<(Object, Value), DecodeFailure>
where
    T: DeserializeOwned + Serialize,
{
    let decoded: T = serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let path = (path != ".").then_some(path);
        (path, err.into_inner())
    })?;
    let written = serde_norway::to_value(&decoded).map_err(|err| (None, err))?;
    Ok((wrap(Box::new(decoded)), written))
}

fn default_namespace(metadata: &mut ObjectMeta) {
    if metadata.namespace.as_deref().is_none_or(str::is_empty) {
        metadata.namespace = Some(DEFAULT_NAMESPACE.to_owned());
    }
}

/// The object's reference read from the raw document, for errors about objects that did not
/// decode.
fn raw_ref(kind: Kind, value: &Value) -> ObjectRef {
    let metadata = value.get("metadata");
    let field = |name| {
        metadata
            .and_then(|m| m.get(name))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    ObjectRef {
        namespace: kind
            .is_namespaced()
            .then(|| field("namespace").unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())),
        name: field("name").unwrap_or_default(),
    }
}

fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a sequence",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}
