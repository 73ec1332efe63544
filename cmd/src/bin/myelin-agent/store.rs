//! The agent's state directory: every endpoint, one JSON line each, in `endpoints.jsonl` (and
//! the applied objects in `objects.jsonl`, see `objects.rs`).
//!
//! Rewritten whole on each change through a temporary file that is fsynced and renamed over the
//! old one (and the directory fsynced), so a crash leaves either the old or the new state, never
//! a torn one. The addresses are rebuilt from the endpoints on start, so the two cannot disagree.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use schema::agent_api::{self, DecodeError, Endpoint};

#[cfg(test)]
mod tests;

const FILE: &str = "endpoints.jsonl";

#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("create state directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}:{line}", path.display())]
    Decode {
        path: PathBuf,
        line: usize,
        #[source]
        source: DecodeError,
    },
    #[error("write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in `dir`, created if missing.
    pub(crate) fn open(dir: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        Ok(Store {
            dir: dir.to_owned(),
        })
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Every endpoint saved last; none if nothing was ever saved.
    pub(crate) fn load(&self) -> Result<Vec<Endpoint>, StoreError> {
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(StoreError::Read { path, source }),
        };
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(n, line)| {
                agent_api::decode_line("endpoint", line.as_bytes()).map_err(|source| {
                    StoreError::Decode {
                        path: path.clone(),
                        line: n + 1,
                        source,
                    }
                })
            })
            .collect()
    }

    /// Replaces the saved endpoints with `endpoints`, atomically and durably.
    pub(crate) fn save<'a>(
        &self,
        endpoints: impl IntoIterator<Item = &'a Endpoint>,
    ) -> Result<(), StoreError> {
        let mut buf = Vec::new();
        for endpoint in endpoints {
            buf.extend_from_slice(&agent_api::encode_line(endpoint));
        }
        replace_file(&self.dir, FILE, &buf)
    }
}

/// Replaces `dir/name` with `contents` through a fsynced temporary file and a rename, so a
/// crash leaves the old or the new contents, never a torn file.
pub(crate) fn replace_file(dir: &Path, name: &str, contents: &[u8]) -> Result<(), StoreError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let write = || -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        // The rename is durable only once the directory entry is.
        File::open(dir)?.sync_all()
    };
    write().map_err(|source| StoreError::Write { path, source })
}
