//! Which stored flows a `GetFlowsRequest` selects: the filters, the `since`/`until` window, and
//! `number` flows from the end (or from the start with `first`).

use std::sync::Arc;

use prost_types::Timestamp;
use schema::flow::Flow;
use schema::observer::GetFlowsRequest;

use crate::filter::{FilterError, FlowFilters};
use crate::ring::{Entry, Ring};

#[cfg(test)]
mod tests;

/// A compiled request.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// 0: no limit.
    pub number: u64,
    pub first: bool,
    pub follow: bool,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub filters: FlowFilters,
}

fn key(ts: &Timestamp) -> (i64, i32) {
    (ts.seconds, ts.nanos)
}

impl Query {
    pub fn new(request: &GetFlowsRequest) -> Result<Query, FilterError> {
        Ok(Query {
            number: request.number,
            first: request.first,
            follow: request.follow,
            since: request.since,
            until: request.until,
            filters: FlowFilters::new(&request.whitelist, &request.blacklist)?,
        })
    }

    fn after_since(&self, time: Option<&Timestamp>) -> bool {
        match (&self.since, time) {
            (Some(since), Some(time)) => key(time) >= key(since),
            (Some(_), None) => false,
            (None, _) => true,
        }
    }

    fn before_until(&self, time: Option<&Timestamp>) -> bool {
        match (&self.until, time) {
            (Some(until), Some(time)) => key(time) <= key(until),
            (Some(_), None) => false,
            (None, _) => true,
        }
    }

    /// Whether a flow passes the filters and the time window.
    pub fn matches(&self, flow: &Flow) -> bool {
        self.after_since(flow.time.as_ref())
            && self.before_until(flow.time.as_ref())
            && self.filters.matches(flow)
    }

    /// The stored flows selected, oldest first, and the position a follower continues at.
    pub fn history(&self, ring: &Ring) -> (Vec<Arc<Entry>>, u64) {
        let end = ring.written();
        let start = end.saturating_sub(ring.capacity() as u64);
        let limit = if self.number == 0 {
            usize::MAX
        } else {
            usize::try_from(self.number).unwrap_or(usize::MAX)
        };
        let mut out = Vec::new();
        if self.first {
            for position in start..end {
                if out.len() >= limit {
                    break;
                }
                let Some(entry) = ring.get(position) else {
                    continue;
                };
                if !self.before_until(entry.time().as_ref()) {
                    break;
                }
                if self.matches(entry.flow()) {
                    out.push(entry);
                }
            }
        } else {
            for position in (start..end).rev() {
                if out.len() >= limit {
                    break;
                }
                let Some(entry) = ring.get(position) else {
                    // Overwritten while we walked back: older ones are gone too.
                    break;
                };
                if !self.after_since(entry.time().as_ref()) {
                    break;
                }
                if self.matches(entry.flow()) {
                    out.push(entry);
                }
            }
            out.reverse();
        }
        (out, end)
    }
}
