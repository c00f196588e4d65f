//! The load benchmark's parts, one per phase or measurement; `src/main.rs` runs them in order.
//!
//! - [`args`]: the command line.
//! - [`orders`]: orders through the running orderflow, measured by their own timestamps.
//! - [`run`]: one run's figures.
//! - [`saga`]: the ceiling with exactly an order's message operations (`ratio_saga`).
//! - [`chain`]: the 3-hop chain ceiling (`ratio`).
//! - [`library_chain`]: the same chain through the broker library, for its client CPU per message.
//! - [`bare`]: bare-lapin plumbing the ceilings share.
//! - [`procs`]: memory and CPU time of the workers and the broker.
//! - [`chart`]: the sweep's chart.

pub mod args;
pub mod bare;
pub mod chain;
pub mod chart;
pub mod library_chain;
pub mod orders;
pub mod procs;
pub mod run;
pub mod saga;
