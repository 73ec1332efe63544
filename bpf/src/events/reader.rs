//! Reading the ring buffer, synchronously or from tokio.

use aya::maps::{MapData, RingBuf};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::Event;
use crate::Error;

/// How long a reader waits before looking at a ring that did not wake it: the most a record
/// waits for its reader when few arrive.
pub(crate) const POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// The consumer of the pinned `events` ring buffer. One per ring buffer: the kernel keeps a
/// single consumer position, so two readers would split the records between them.
pub struct EventReader {
    ring: AsyncFd<RingBuf<MapData>>,
}

impl std::fmt::Debug for EventReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReader").finish_non_exhaustive()
    }
}

impl EventReader {
    /// Must be called inside a tokio runtime with IO enabled.
    pub(crate) fn new(ring: RingBuf<MapData>) -> Result<EventReader, Error> {
        #[expect(
            unsafe_code,
            reason = "tokio's AsyncFd registration is unsafe since 1.54"
        )]
        // SAFETY: the RingBuf owns its MapData, which owns the map's fd until the RingBuf is
        // dropped together with the AsyncFd, and as_raw_fd always returns that same fd.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|err| Error::Events(err.into_parts().1))?;
        Ok(EventReader { ring })
    }

    /// The next record already in the ring, without waiting.
    pub fn try_next(&mut self) -> Option<Result<Event, Error>> {
        let item = self.ring.get_mut().next()?;
        Some(Event::decode(&item))
    }

    /// Waits for the next record. The datapath wakes readers only once records pile up
    /// (`EVENTS_WAKEUP_BYTES`), so a quiet ring is looked at again every `POLL`.
    pub async fn next(&mut self) -> Result<Event, Error> {
        loop {
            if let Some(event) = self.try_next() {
                return event;
            }
            if let Ok(ready) = tokio::time::timeout(POLL, self.ring.readable_mut()).await {
                // Records may have arrived between the poll above and readiness; the next
                // loop turn drains them before waiting again.
                ready.map_err(Error::Events)?.clear_ready();
            }
        }
    }
}
