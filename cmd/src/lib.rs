//! What the binaries share: log and trace setup and trace context propagation.

pub mod logging;
