//! Entering a network namespace named by a path: `/run/netns/NAME` (what `ip netns add` and the
//! CNI runtime bind-mount) or `/proc/PID/ns/net`.
//!
//! A network namespace belongs to a thread, and threads inherit it when they are created, so a
//! caller either enters on the main thread before starting anything else (`serve`, `exec`) or
//! runs the namespace-bound work on a thread of its own (`probe`).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};

#[derive(Debug, thiserror::Error)]
pub(crate) enum NetnsError {
    #[error("open network namespace {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("enter network namespace {path}")]
    Enter {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
}

/// Moves the calling thread into the namespace at `path`.
pub(crate) fn enter(path: &Path) -> Result<(), NetnsError> {
    let file = File::open(path).map_err(|source| NetnsError::Open {
        path: path.to_owned(),
        source,
    })?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Enter {
        path: path.to_owned(),
        source,
    })
}

/// Runs `f` on a new thread that first entered the namespace at `path` (on the calling thread
/// when `path` is `None`), so the sockets `f` opens belong to that namespace while the caller's
/// own namespace never changes. A panic in `f` is resumed on the caller.
pub(crate) fn run_in<T: Send>(
    path: Option<&Path>,
    f: impl FnOnce() -> T + Send,
) -> Result<T, NetnsError> {
    let Some(path) = path else {
        return Ok(f());
    };
    std::thread::scope(|scope| {
        let thread = scope.spawn(|| {
            enter(path)?;
            Ok(f())
        });
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
