//! The per-object reconciliation status a reconciler writes back into the table it reads.

use std::fmt;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusKind {
    /// Written by a source: the object waits to be applied.
    Pending,
    /// Applied to the target.
    Done,
    /// The last attempt failed; a retry is scheduled.
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub kind: StatusKind,
    /// The rendered error chain of the last failed attempt.
    pub error: Option<Arc<str>>,
}

impl Status {
    pub fn pending() -> Status {
        Status {
            kind: StatusKind::Pending,
            error: None,
        }
    }

    pub fn done() -> Status {
        Status {
            kind: StatusKind::Done,
            error: None,
        }
    }

    pub fn error(message: impl Into<Arc<str>>) -> Status {
        Status {
            kind: StatusKind::Error,
            error: Some(message.into()),
        }
    }
}

impl Default for Status {
    fn default() -> Self {
        Status::pending()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, &self.error) {
            (StatusKind::Pending, _) => f.write_str("pending"),
            (StatusKind::Done, _) => f.write_str("done"),
            (StatusKind::Error, Some(e)) => write!(f, "error: {e}"),
            (StatusKind::Error, None) => f.write_str("error"),
        }
    }
}

/// An object a reconciler can drive into a target: it carries its own status, and a copy with a
/// new status can be made (objects in tables are immutable).
pub trait Reconcilable: Send + Sync + 'static {
    fn status(&self) -> &Status;
    fn with_status(&self, status: Status) -> Self;
}

/// Renders an error with its chain of causes: `a: b: c`.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}
