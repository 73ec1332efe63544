//! Buffers for computing an object's index keys, reused across writes on a thread, so that a
//! write allocates nothing for them.

use std::cell::RefCell;

use crate::key::Key;

pub(crate) struct Scratch {
    pub(crate) keys: Vec<Key>,
    pub(crate) bytes: Vec<u8>,
}

/// A few at most: writes nest only as deep as one insert calling its helpers.
const POOLED: usize = 4;

/// Plain buffers, not `Scratch`es: dropping the pool at thread exit must not run
/// `Scratch::drop`, which would reach for the pool being dropped.
type Buffers = (Vec<Key>, Vec<u8>);

thread_local! {
    static POOL: RefCell<Vec<Buffers>> = const { RefCell::new(Vec::new()) };
}

impl Scratch {
    /// Empty buffers, from the thread's pool when it has some.
    pub(crate) fn take() -> Scratch {
        let (keys, bytes) = POOL
            .try_with(|p| p.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        Scratch { keys, bytes }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.keys.clear();
        self.bytes.clear();
        let back = (
            std::mem::take(&mut self.keys),
            std::mem::take(&mut self.bytes),
        );
        // During thread teardown the pool may be gone already; the buffers are then just freed.
        let _ = POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < POOLED {
                p.push(back);
            }
        });
    }
}

#[cfg(test)]
mod tests;
