//! The bounded flow ring: the last `capacity` flows, addressed by a position that counts every
//! flow ever written.
//!
//! One [`RingWriter`] appends and never waits for readers: it overwrites the oldest slot and
//! publishes the new end with one atomic store. Readers hold a position; when the writer laps
//! them they learn how many flows they lost and continue at the oldest one still there. A
//! reader can wait for new flows ([`Reader::next`]), woken by the writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use std::sync::OnceLock;

use arc_swap::ArcSwapOption;
use bpf::Event;
use prost_types::Timestamp;
use schema::flow::Flow;
use tokio::sync::Notify;

use crate::decode::Decoder;
use crate::enrich::{TableLookup, enrich};

#[cfg(test)]
mod tests;

/// Hubble's default ring size.
pub const DEFAULT_CAPACITY: usize = 4095;

/// One stored flow and its position.
///
/// A flow the pipeline pushes stays a datapath event with the table snapshot of its time until
/// someone reads it: most flows are overwritten unread, and building (then freeing) a `Flow`
/// with its labels and names for each would cost the node more than the datapath's events do.
#[derive(Debug)]
pub struct Entry {
    pub position: u64,
    time: Option<Timestamp>,
    pending: Option<Pending>,
    flow: OnceLock<Flow>,
}

/// What a lazily built flow is made of.
#[derive(Debug)]
struct Pending {
    event: Event,
    decoder: Arc<Decoder>,
    lookup: Arc<TableLookup>,
}

impl Entry {
    /// The flow, built and enriched on first use.
    pub fn flow(&self) -> &Flow {
        self.flow.get_or_init(|| match &self.pending {
            Some(p) => {
                let mut flow = p.decoder.flow(&p.event);
                enrich(&mut flow, &p.event, p.lookup.as_ref());
                flow
            }
            None => Flow::default(),
        })
    }

    /// The flow's time, without building it.
    pub fn time(&self) -> Option<Timestamp> {
        self.time
    }
}

/// The shared ring; read it through [`Ring::reader`] and [`Ring::get`].
#[derive(Debug)]
pub struct Ring {
    slots: Box<[ArcSwapOption<Entry>]>,
    /// Position of the next flow to write: flows `[written - len, written)` are stored.
    written: AtomicU64,
    /// Readers waiting in [`Reader::next`]; the writer skips the wake-up when there are none.
    waiting: AtomicUsize,
    notify: Notify,
}

/// The ring's only writer.
#[derive(Debug)]
pub struct RingWriter {
    ring: Arc<Ring>,
    next: u64,
}

impl Ring {
    /// A ring of `capacity` flows (at least 1) and its writer.
    pub fn new(capacity: usize) -> (RingWriter, Arc<Ring>) {
        let slots = (0..capacity.max(1))
            .map(|_| ArcSwapOption::empty())
            .collect();
        let ring = Arc::new(Ring {
            slots,
            written: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            notify: Notify::new(),
        });
        (
            RingWriter {
                ring: Arc::clone(&ring),
                next: 0,
            },
            ring,
        )
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Flows ever written; also the position the next one gets.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// The position of the oldest flow still stored.
    pub fn oldest(&self) -> u64 {
        self.written().saturating_sub(self.capacity_u64())
    }

    /// Flows stored now.
    pub fn len(&self) -> usize {
        let written = self.written();
        usize::try_from(written.min(self.capacity_u64())).unwrap_or(self.capacity())
    }

    pub fn is_empty(&self) -> bool {
        self.written() == 0
    }

    /// The flow at `position`, unless it is not written yet or already overwritten.
    pub fn get(&self, position: u64) -> Option<Arc<Entry>> {
        if position >= self.written() {
            return None;
        }
        let entry = self.slots[self.slot(position)].load_full()?;
        (entry.position == position).then_some(entry)
    }

    /// A reader starting at `position` (clamped to what is stored, with the flows it skipped
    /// reported as lost on the first read).
    pub fn reader(self: &Arc<Ring>, position: u64) -> Reader {
        Reader {
            ring: Arc::clone(self),
            next: position,
        }
    }

    fn capacity_u64(&self) -> u64 {
        self.slots.len() as u64
    }

    fn slot(&self, position: u64) -> usize {
        usize::try_from(position % self.capacity_u64()).expect("invariant: below capacity")
    }
}

impl RingWriter {
    /// Appends a flow, overwriting the oldest when the ring is full.
    pub fn push(&mut self, flow: Flow) {
        let time = flow.time;
        self.store(Entry {
            position: self.next,
            time,
            pending: None,
            flow: OnceLock::from(flow),
        });
    }

    /// Appends the flow of a datapath event, decoded and enriched from `lookup` only when a
    /// reader asks for it.
    pub fn push_event(&mut self, event: Event, decoder: &Arc<Decoder>, lookup: &Arc<TableLookup>) {
        let time = Some(decoder.time(&event));
        self.store(Entry {
            position: self.next,
            time,
            pending: Some(Pending {
                event,
                decoder: Arc::clone(decoder),
                lookup: Arc::clone(lookup),
            }),
            flow: OnceLock::new(),
        });
    }

    fn store(&mut self, entry: Entry) {
        let position = entry.position;
        let slot = self.ring.slot(position);
        self.ring.slots[slot].store(Some(Arc::new(entry)));
        self.next += 1;
        // SeqCst pairs with `Reader::next`: either the reader sees the new end or the writer
        // sees the waiting reader.
        self.ring.written.store(self.next, Ordering::SeqCst);
        if self.ring.waiting.load(Ordering::SeqCst) > 0 {
            self.ring.notify.notify_waiters();
        }
    }

    pub fn ring(&self) -> &Arc<Ring> {
        &self.ring
    }
}

/// What a reader gets next.
#[derive(Debug, Clone)]
pub enum Read {
    Flow(Arc<Entry>),
    /// This many flows were overwritten before the reader got to them.
    Lost(u64),
}

/// A position in the ring.
#[derive(Debug)]
pub struct Reader {
    ring: Arc<Ring>,
    next: u64,
}

impl Reader {
    /// The position of the next flow this reader returns.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// The next flow or loss already in the ring, without waiting.
    pub fn try_next(&mut self) -> Option<Read> {
        loop {
            let written = self.ring.written();
            if self.next >= written {
                return None;
            }
            let oldest = written.saturating_sub(self.ring.capacity_u64());
            if self.next < oldest {
                let lost = oldest - self.next;
                self.next = oldest;
                return Some(Read::Lost(lost));
            }
            match self.ring.get(self.next) {
                Some(entry) => {
                    self.next += 1;
                    return Some(Read::Flow(entry));
                }
                // Overwritten between the two loads: the next turn counts the loss.
                None => continue,
            }
        }
    }

    /// Waits for the next flow or loss.
    pub async fn next(&mut self) -> Read {
        let ring = Arc::clone(&self.ring);
        loop {
            let notified = ring.notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before looking, so a push between the look and the wait wakes us.
            notified.as_mut().enable();
            ring.waiting.fetch_add(1, Ordering::SeqCst);
            let _waiting = Waiting(&ring.waiting);
            if let Some(read) = self.try_next() {
                return read;
            }
            notified.await;
        }
    }
}

/// Counts a waiting reader until its wait ends or is cancelled.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
