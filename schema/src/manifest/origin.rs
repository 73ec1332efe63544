use std::fmt;

/// Where a document came from: `policies.yaml:12 (document 2)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The file path or the name the caller gave the text.
    pub source: String,
    /// The first line of the document (1-based).
    pub line: usize,
    /// The document's number among the non-empty documents of the source (1-based).
    pub document: usize,
    /// The index in `items` when the document is a `kind: List`.
    pub item: Option<usize>,
}

impl Origin {
    pub(super) fn item(&self, index: usize) -> Self {
        Self {
            item: Some(index),
            ..self.clone()
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} (document {}",
            self.source, self.line, self.document
        )?;
        if let Some(item) = self.item {
            write!(f, ", items[{item}]")?;
        }
        f.write_str(")")
    }
}
