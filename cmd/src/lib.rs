//! What the binaries share: log and trace setup and trace context propagation, and clients of
//! the Observer API.

pub mod logging;
pub mod observer_client;
