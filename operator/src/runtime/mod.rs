//! What every controller runs on: the shared caches, leadership, the watchdog behind
//! `/healthz`, and the metrics. Imports nothing else of this crate.

pub mod caches;
pub mod conditions;
pub mod health;
pub mod leader;
pub mod metrics;
pub mod watchdog;
