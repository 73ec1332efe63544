//! Myelin's policy engine: the same code computes what the datapath enforces and answers the
//! offline evaluator (`myelin policy matrix`, `myelin policy trace`).
//!
//! - [`identity`]: security identities, the labels they are made of, the local allocator.
//! - [`translate`]: NetworkPolicy, CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy into
//!   Cilium's rule model (what `policy get` shows); [`compile`] turns those into [`rule::Rule`]s.
//! - [`engine`]: the incremental engine: selector cache, rules, per-identity [`mapstate`].
//! - [`l7`]: HTTP and DNS rule matchers.
//! - [`cluster`]: a whole cluster read from manifests, fed through the engine, and
//!   [`trace`]: a connection evaluated on both ends, as the datapath would.
//!
//! No I/O happens here: callers feed objects in and apply the returned deltas.

pub mod cluster;
pub mod compile;
pub mod engine;
pub mod identity;
pub mod l7;
pub mod mapstate;
pub mod rule;
pub mod trace;
pub mod translate;
