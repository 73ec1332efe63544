//! The run directory (`$MYELIN_RUN_DIR`, default `/run/myelin`): the agent's socket, its state,
//! logs, and `embedded.json`, the record of what `up` made.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use schema::embedded::Instance;

const RECORD: &str = "embedded.json";

pub(crate) struct RunDir {
    path: PathBuf,
}

impl RunDir {
    pub(crate) fn new(path: PathBuf) -> RunDir {
        RunDir { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn socket(&self) -> PathBuf {
        self.path.join("agent.sock")
    }

    /// The agent's Hubble Observer API (`myelin-agent` puts it next to its socket).
    pub(crate) fn hubble_socket(&self) -> PathBuf {
        self.path.join("hubble.sock")
    }

    pub(crate) fn state_dir(&self) -> PathBuf {
        self.path.join("state")
    }

    pub(crate) fn log(&self, name: &str) -> PathBuf {
        self.path.join("logs").join(format!("{name}.log"))
    }

    pub(crate) fn create(&self) -> Result<()> {
        let logs = self.path.join("logs");
        std::fs::create_dir_all(&logs).with_context(|| format!("create {}", logs.display()))
    }

    /// The recorded node, if one is up.
    pub(crate) fn load(&self) -> Result<Option<Instance>> {
        let path = self.path.join(RECORD);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("{} is corrupt", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("read {}", path.display())),
        }
    }

    /// Written through a rename, so a concurrent reader sees the old or the new record.
    pub(crate) fn save(&self, instance: &Instance) -> Result<()> {
        let path = self.path.join(RECORD);
        let tmp = self.path.join(format!("{RECORD}.tmp"));
        let text = serde_json::to_string_pretty(instance).context("encode the record")?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .with_context(|| format!("write {}", path.display()))
    }

    pub(crate) fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err).with_context(|| format!("remove {}", self.path.display())),
        }
    }
}
