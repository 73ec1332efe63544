use std::path::PathBuf;

use super::Origin;
use crate::object::{Kind, ObjectRef};
use crate::path::FieldPath;

/// Why a document (or a file) yielded no object. Causes are chained with `source()`.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: invalid yaml")]
    Yaml {
        origin: Origin,
        #[source]
        source: serde_norway::Error,
    },
    #[error("{origin}: expected a mapping with apiVersion and kind, found {found}")]
    NotAMapping { origin: Origin, found: &'static str },
    #[error("{origin}: {field} is not set")]
    MissingTypeField { origin: Origin, field: &'static str },
    #[error("{origin}: List items must be a sequence")]
    ListItems { origin: Origin },
    #[error("{origin}: unsupported kind {kind:?} of apiVersion {api_version:?}")]
    UnsupportedKind {
        origin: Origin,
        api_version: String,
        kind: String,
    },
    #[error("{origin}: {kind} {object}{}", at(path))]
    Decode {
        origin: Origin,
        kind: Kind,
        object: ObjectRef,
        /// Where the value that failed is; `None` for the object itself.
        path: Option<String>,
        #[source]
        source: serde_norway::Error,
    },
    #[error("{origin}: {kind} {object}: {}", unknown(fields))]
    UnknownFields {
        origin: Origin,
        kind: Kind,
        object: ObjectRef,
        fields: Vec<FieldPath>,
    },
}

impl ManifestError {
    /// The document the error is about; `None` for a file that could not be read.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            ManifestError::Read { .. } => None,
            ManifestError::Yaml { origin, .. }
            | ManifestError::NotAMapping { origin, .. }
            | ManifestError::MissingTypeField { origin, .. }
            | ManifestError::ListItems { origin }
            | ManifestError::UnsupportedKind { origin, .. }
            | ManifestError::Decode { origin, .. }
            | ManifestError::UnknownFields { origin, .. } => Some(origin),
        }
    }
}

fn at(path: &Option<String>) -> String {
    path.as_ref().map(|p| format!(": {p}")).unwrap_or_default()
}

fn unknown(fields: &[FieldPath]) -> String {
    fields
        .iter()
        .map(|field| format!("unknown field \"{field}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
