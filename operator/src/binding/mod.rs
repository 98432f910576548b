//! The `ProfileBinding` controller: the status of each binding.

pub mod controller;
