//! Reads manifests the way `kubectl apply -f` does: multi-document YAML (or JSON), `kind: List`
//! documents, files and directories.
//!
//! Every document yields its own result, so one bad document (invalid YAML, an unsupported
//! kind, an unknown field) never hides the others. Documents are split at `---` lines first,
//! as kubectl does, so even a syntax error spoils only its own document.
//!
//! Strictness: like `kubectl apply` with strict field validation (the default since 1.27), a
//! field the type does not know is an error naming every such field (`unknown field
//! "spec.ingress[0].fromEndpoint"`), and the object is rejected. A top-level `status` is
//! ignored, since servers write it. `null`, `[]` and `{}` values are never reported.
//!
//! Namespaced objects without `metadata.namespace` get [`DEFAULT_NAMESPACE`], as kubectl does
//! with the default context.
//!
//! [`DEFAULT_NAMESPACE`]: crate::object::DEFAULT_NAMESPACE

mod decode;
mod error;
mod files;
mod origin;
mod split;
mod strict;

pub use error::ManifestError;
pub use files::load_paths;
pub use origin::Origin;

use crate::object::Object;

/// Parses every document of `text`. `source` names the text in errors (usually its path).
pub fn parse_str(source: &str, text: &str) -> Vec<Result<Object, ManifestError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut results = Vec::new();
    let mut document = 0;
    for chunk in split::documents(text) {
        let origin = |document| Origin {
            source: source.to_owned(),
            line: chunk.first_line,
            document,
            item: None,
        };
        match chunk.parse() {
            Ok(value) if value.is_null() => {}
            Ok(value) => {
                document += 1;
                decode::document(value, &origin(document), &mut results);
            }
            Err(source) => {
                document += 1;
                results.push(Err(ManifestError::Yaml {
                    origin: origin(document),
                    source,
                }));
            }
        }
    }
    results
}

#[cfg(test)]
mod tests;
