use std::time::Duration;

pub use crate::config::Fault;

/// What the development provider currently injects; tests change it between requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Delay before the token and `/me` endpoints answer.
    pub latency: Duration,
    pub fault: Fault,
}
