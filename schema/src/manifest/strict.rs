use serde_norway::Value;

use crate::path::FieldPath;

/// The fields of `input` that did not survive a decode and re-encode (`written`): the fields
/// the type does not know. Blank values (`null`, `[]`, `{}`) and a top-level `status` are not
/// reported.
pub(super) fn unknown_fields(input: &Value, written: &Value) -> Vec<FieldPath> {
    let mut unknown = Vec::new();
    walk(&FieldPath::root(), input, written, &mut unknown);
    unknown
}

fn walk(path: &FieldPath, input: &Value, written: &Value, unknown: &mut Vec<FieldPath>) {
    match (input, written) {
        (Value::Mapping(input), Value::Mapping(written)) => {
            for (key, value) in input {
                let name = match key {
                    Value::String(name) => name.clone(),
                    other => serde_norway::to_string(other)
                        .map(|s| s.trim_end().to_owned())
                        .unwrap_or_default(),
                };
                if is_blank(value) || (path.is_root() && name == "status") {
                    continue;
                }
                match written.get(key) {
                    Some(written) => walk(&path.field(&name), value, written, unknown),
                    None => unknown.push(path.field(&name)),
                }
            }
        }
        (Value::Sequence(input), Value::Sequence(written)) if input.len() == written.len() => {
            for (index, (input, written)) in input.iter().zip(written).enumerate() {
                walk(&path.index(index), input, written, unknown);
            }
        }
        _ => {}
    }
}

fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Sequence(items) => items.is_empty(),
        Value::Mapping(entries) => entries.is_empty(),
        _ => false,
    }
}
