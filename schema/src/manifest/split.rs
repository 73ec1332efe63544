use serde_norway::Value;

/// One document's text and where it starts.
pub(super) struct Chunk<'a> {
    /// 1-based line of the chunk's first line in the whole text.
    pub(super) first_line: usize,
    text: &'a str,
}

/// Splits at `---` lines (optionally followed by a comment), as kubectl's YAML reader does.
pub(super) fn documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut first_line = 1;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if is_separator(line) {
            chunks.push(Chunk {
                first_line,
                text: &text[start..offset],
            });
            start = offset + line.len();
            first_line = index + 2;
        }
        offset += line.len();
    }
    chunks.push(Chunk {
        first_line,
        text: &text[start..],
    });
    chunks
}

fn is_separator(line: &str) -> bool {
    line.strip_prefix("---").is_some_and(|rest| {
        let rest = rest.trim();
        rest.is_empty() || rest.starts_with('#')
    })
}

impl Chunk<'_> {
    /// Parses the chunk, resolving `<<` merge keys. A comment-only chunk is `Null`.
    pub(super) fn parse(&self) -> Result<Value, serde_norway::Error> {
        let mut value =
            serde_norway::from_str::<Value>(self.text).map_err(|err| self.relocate(err))?;
        value.apply_merge()?;
        Ok(value)
    }

    /// Re-parses a failing chunk behind blank lines so the error's line numbers count from the
    /// top of the whole text, not of the chunk. Only done on error, so it costs nothing when
    /// the YAML is fine.
    fn relocate(&self, err: serde_norway::Error) -> serde_norway::Error {
        let padded = "\n".repeat(self.first_line - 1) + self.text;
        serde_norway::from_str::<Value>(&padded)
            .err()
            .unwrap_or(err)
    }
}
