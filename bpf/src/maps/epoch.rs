//! `policy_epoch`: the number the datapath compares with a connection's recorded allow. Every
//! handle that writes a map the policy decision reads (`ipcache`, `ipblock`, `endpoints`,
//! `policy`) bumps it after each successful write, so the writers need not know the contract:
//! the next packet of every connection decides again against the new contents.
//!
//! The map is mmapable and every handle maps its one value, so a bump is an atomic increment
//! of memory the programs read: no syscall, and no bump is lost to a racing writer.

use std::io;
use std::os::fd::{AsFd as _, AsRawFd as _};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use aya::maps::MapData;

use super::POLICY_EPOCH;
use crate::Error;

pub(crate) struct Epoch {
    /// The map's value, mapped shared: what the programs read.
    value: NonNull<AtomicU32>,
}

// SAFETY of Send: the mapping is process-wide memory, accessed only atomically.
#[expect(
    unsafe_code,
    reason = "a raw pointer to shared memory used only through AtomicU32"
)]
unsafe impl Send for Epoch {}

impl std::fmt::Debug for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Epoch")
            .field("value", &self.value().load(Ordering::Relaxed))
            .finish()
    }
}

/// The kernel maps array values from offset 0, one page at least.
const MAPPING: usize = 4096;

impl Epoch {
    pub(crate) fn open(maps_dir: &Path) -> Result<Epoch, Error> {
        let path = maps_dir.join(POLICY_EPOCH);
        let data = MapData::from_pin(&path).map_err(|source| Error::OpenMap {
            map: POLICY_EPOCH,
            path: path.clone(),
            source: Box::new(source),
        })?;
        let fd = data.fd().as_fd().as_raw_fd();
        #[expect(
            unsafe_code,
            reason = "mmap of a BPF_F_MMAPABLE array's fd; the result is checked"
        )]
        // SAFETY: a fresh shared mapping of a valid fd; the kernel keeps the map alive while
        // it is mapped, so the pointer outlives `data` and is unmapped in `Drop`.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MAPPING,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(Error::MmapMap {
                map: POLICY_EPOCH,
                path,
                source: io::Error::last_os_error(),
            });
        }
        let value = NonNull::new(addr.cast::<AtomicU32>()).ok_or_else(|| Error::MmapMap {
            map: POLICY_EPOCH,
            path,
            source: io::Error::other("mmap returned null"),
        })?;
        Ok(Epoch { value })
    }

    fn value(&self) -> &AtomicU32 {
        #[expect(unsafe_code, reason = "dereferencing the live, aligned mapping")]
        // SAFETY: page-aligned, mapped until `Drop`, only ever accessed atomically.
        unsafe {
            self.value.as_ref()
        }
    }

    /// Moves the epoch on, skipping 0, which means "never cached".
    pub(crate) fn bump(&mut self) -> Result<(), Error> {
        let _ = self
            .value()
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |current| {
                Some(match current.wrapping_add(1) {
                    0 => 1,
                    next => next,
                })
            });
        Ok(())
    }
}

impl Drop for Epoch {
    fn drop(&mut self) {
        #[expect(unsafe_code, reason = "unmapping the mapping made in `open`")]
        // SAFETY: mapped in `open` with this length, and no reference outlives `self`.
        unsafe {
            libc::munmap(self.value.as_ptr().cast(), MAPPING);
        }
    }
}
