//! Watch handles: one-shot notifications that a query's result may be different now.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

/// Fires once, when the result it was taken for changed. Cheap to clone; every clone observes
/// the same firing. Usable from async code (`fired().await`) and from threads (`wait`).
#[derive(Clone, Debug)]
pub struct Watch(Arc<Inner>);

#[derive(Debug, Default)]
pub(crate) struct Inner {
    fired: AtomicBool,
    notify: tokio::sync::Notify,
    lock: Mutex<()>,
    cond: Condvar,
}

impl Watch {
    pub(crate) fn new() -> Watch {
        Watch(Arc::new(Inner::default()))
    }

    /// A watch that has already fired: returned when a result is stale at the moment it is
    /// taken.
    pub fn fired_already() -> Watch {
        let w = Watch::new();
        w.0.fire();
        w
    }

    pub(crate) fn downgrade(&self) -> Weak<Inner> {
        Arc::downgrade(&self.0)
    }

    pub fn has_fired(&self) -> bool {
        self.0.fired.load(Ordering::Acquire)
    }

    /// Completes when the watch fires.
    pub async fn fired(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.has_fired() {
                return;
            }
            notified.await;
        }
    }

    /// Blocks the thread until the watch fires.
    pub fn wait(&self) {
        let mut guard = self.0.lock.lock().unwrap_or_else(|e| e.into_inner());
        while !self.has_fired() {
            guard = self.0.cond.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Blocks until the watch fires or the timeout passes; true if it fired.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let guard = self.0.lock.lock().unwrap_or_else(|e| e.into_inner());
        let (_guard, _) = self
            .0
            .cond
            .wait_timeout_while(guard, timeout, |_| !self.has_fired())
            .unwrap_or_else(|e| e.into_inner());
        self.has_fired()
    }
}

impl Inner {
    pub(crate) fn fire(&self) {
        if self.fired.swap(true, Ordering::AcqRel) {
            return;
        }
        self.notify.notify_waiters();
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.cond.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_waiter_wakes() {
        let w = Watch::new();
        let w2 = w.clone();
        let t = std::thread::spawn(move || w2.wait());
        w.0.fire();
        t.join().expect("waiter thread");
        assert!(w.has_fired());
        assert!(w.wait_timeout(Duration::from_millis(1)));
    }

    #[tokio::test]
    async fn async_waiter_wakes() {
        let w = Watch::new();
        let w2 = w.clone();
        let t = tokio::spawn(async move { w2.fired().await });
        tokio::task::yield_now().await;
        w.0.fire();
        t.await.expect("waiter task");
    }

    #[test]
    fn unfired_watch_times_out() {
        assert!(!Watch::new().wait_timeout(Duration::from_millis(5)));
    }
}
