use std::{
    sync::{PoisonError, RwLock},
    time::Duration,
};

pub use crate::config::fault::Fault;

/// What the development provider currently injects; tests change it between requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Delay before the token and `/me` endpoints answer.
    pub latency: Duration,
    pub fault: Fault,
}

/// The stand-ins' fault switch: what tests set, and the wait every endpoint starts with.
#[derive(Debug, Default)]
pub(crate) struct FaultSwitch(RwLock<Faults>);

impl FaultSwitch {
    pub(crate) fn new(faults: Faults) -> Self {
        Self(RwLock::new(faults))
    }

    /// Changes what is injected from the next request on.
    #[cfg(any(test, feature = "test-support"))]
    pub(crate) fn set(&self, faults: Faults) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = faults;
    }

    pub(crate) fn get(&self) -> Faults {
        *self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps for the injected latency, or for ever on `Hang` (when `hang_here`).
    pub(crate) async fn delay(&self, hang_here: bool) {
        let faults = self.get();
        if hang_here && faults.fault == Fault::Hang {
            std::future::pending::<()>().await;
        }
        if !faults.latency.is_zero() {
            tokio::time::sleep(faults.latency).await;
        }
    }
}
