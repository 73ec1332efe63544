//! Making sure pins land on a bpffs.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use nix::mount::{MsFlags, mount};
use nix::sys::statfs::{FsType, statfs};

use crate::Error;

const BPFFS: &str = "/sys/fs/bpf";

/// Serializes check-then-mount: two threads both mounting would stack a second bpffs over the
/// first and hide whatever the first had pinned already.
static MOUNT: Mutex<()> = Mutex::new(());

/// Mounts bpffs on /sys/fs/bpf when `pin_dir` is below it and nothing is mounted there yet
/// (machines without systemd, fresh containers). Other pin directories are the caller's
/// business: pinning reports the error if they are not on a bpffs.
pub(super) fn ensure_mounted(pin_dir: &Path) -> Result<(), Error> {
    if !pin_dir.starts_with(BPFFS) {
        return Ok(());
    }
    let _serialized = MOUNT.lock().unwrap_or_else(PoisonError::into_inner);
    if statfs(BPFFS).is_ok_and(|st| st.filesystem_type() == FsType(libc::BPF_FS_MAGIC)) {
        return Ok(());
    }
    mount(
        Some("bpf"),
        BPFFS,
        Some("bpf"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|source| Error::MountBpffs {
        path: BPFFS.into(),
        source,
    })?;
    tracing::info!(path = BPFFS, "mounted bpffs");
    Ok(())
}
