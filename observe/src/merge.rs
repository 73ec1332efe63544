//! Flows of several nodes as one stream, ordered by time, as Hubble Relay orders them: a
//! finished history is sorted and cut to `number` overall; a followed stream goes through a
//! sort buffer that holds each response a short while (or until it is full), so responses from
//! nodes that answer at slightly different moments still leave in time order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use prost_types::Timestamp;
use schema::observer::GetFlowsResponse;
use tokio::time::Instant;

#[cfg(test)]
mod tests;

/// Hubble Relay's defaults: `--sort-buffer-len-max` and `--sort-buffer-drain-timeout`.
pub const SORT_BUFFER_LEN: usize = 100;
pub const SORT_BUFFER_DRAIN: Duration = Duration::from_secs(1);

fn key(response: &GetFlowsResponse) -> (i64, i32) {
    response
        .time
        .as_ref()
        .map_or((i64::MIN, 0), |t: &Timestamp| (t.seconds, t.nanos))
}

/// The responses of every node, oldest first, cut to `number` (0: all): the first `number`
/// with `first`, else the last. Ties keep the order the nodes were given in.
pub fn history(
    mut responses: Vec<GetFlowsResponse>,
    number: u64,
    first: bool,
) -> Vec<GetFlowsResponse> {
    responses.sort_by_key(key);
    let number = usize::try_from(number).unwrap_or(usize::MAX);
    if number == 0 || responses.len() <= number {
        return responses;
    }
    if first {
        responses.truncate(number);
        responses
    } else {
        responses.split_off(responses.len() - number)
    }
}

/// One buffered response: ordered by time, then by arrival.
struct Held {
    key: (i64, i32),
    seq: u64,
    arrived: Instant,
    response: GetFlowsResponse,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.key, self.seq) == (other.key, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.key, self.seq).cmp(&(other.key, other.seq))
    }
}

/// The follow-mode sort buffer.
pub struct SortBuffer {
    heap: BinaryHeap<Reverse<Held>>,
    capacity: usize,
    drain_after: Duration,
    seq: u64,
}

impl std::fmt::Debug for SortBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SortBuffer")
            .field("len", &self.heap.len())
            .finish_non_exhaustive()
    }
}

impl SortBuffer {
    pub fn new(capacity: usize, drain_after: Duration) -> SortBuffer {
        SortBuffer {
            heap: BinaryHeap::new(),
            capacity: capacity.max(1),
            drain_after,
            seq: 0,
        }
    }

    /// Takes a response; returns what must leave now because the buffer is over capacity.
    pub fn push(&mut self, response: GetFlowsResponse, now: Instant) -> Vec<GetFlowsResponse> {
        self.seq += 1;
        self.heap.push(Reverse(Held {
            key: key(&response),
            seq: self.seq,
            arrived: now,
            response,
        }));
        let mut out = Vec::new();
        while self.heap.len() > self.capacity {
            if let Some(Reverse(held)) = self.heap.pop() {
                out.push(held.response);
            }
        }
        out
    }

    /// The oldest responses that have waited `drain_after`, in time order.
    pub fn drain_due(&mut self, now: Instant) -> Vec<GetFlowsResponse> {
        let mut out = Vec::new();
        while let Some(Reverse(oldest)) = self.heap.peek() {
            if now.duration_since(oldest.arrived) < self.drain_after {
                break;
            }
            if let Some(Reverse(held)) = self.heap.pop() {
                out.push(held.response);
            }
        }
        out
    }

    /// Everything left, in time order (the peers' streams ended).
    pub fn drain_all(&mut self) -> Vec<GetFlowsResponse> {
        let mut out = Vec::with_capacity(self.heap.len());
        while let Some(Reverse(held)) = self.heap.pop() {
            out.push(held.response);
        }
        out
    }

    /// When the oldest held response is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        self.heap
            .peek()
            .map(|Reverse(oldest)| oldest.arrived + self.drain_after)
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}
