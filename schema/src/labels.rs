//! Sourced labels (`k8s:app=web`, `reserved:host`), label sets and the selector model that
//! matches them.
//!
//! A label's source says who attached it. A selector key without a source means `any`, which
//! matches a label of every source; `k8s:app` matches only the k8s-sourced `app` label.

mod label;
mod selector;
mod set;
mod source;

pub use label::{Label, LabelError};
pub use selector::{Operator, Requirement, Selector, SelectorError};
pub use set::Labels;
pub use source::Source;

#[cfg(test)]
mod tests;
