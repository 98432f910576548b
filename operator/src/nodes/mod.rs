//! Nodes: which are alive (`SeccompNodeStatus` heartbeats), what each reports having
//! installed, and the controller that keeps a node's status in step.

pub mod controller;
pub mod liveness;
pub mod reports;
