//! The exchange task: runs after the callback has answered, so the browser is never held
//! while the provider is slow.

use std::{sync::Arc, time::Duration};

use oauth2::{AuthorizationCode, PkceCodeVerifier};
use tracing::{Instrument, error, info, info_span, warn};

use super::{ExchangeError, FailureReason, Provider};
use crate::store::{OperationId, Store};

/// Starts and bounds code exchanges.
#[derive(Clone)]
pub struct Exchanger {
    store: Store,
    timeout: Duration,
}

impl Exchanger {
    pub fn new(store: Store, timeout: Duration) -> Self {
        Self { store, timeout }
    }

    /// Spawns the exchange for a pending `operation`. Whatever happens (success, provider
    /// failure, time-out), the task ends by moving the operation out of `pending`.
    pub fn spawn(
        &self,
        operation: OperationId,
        provider: Arc<dyn Provider>,
        code: AuthorizationCode,
        verifier: PkceCodeVerifier,
    ) {
        let store = self.store.clone();
        let timeout = self.timeout;
        let span = info_span!("exchange", operation = %operation, provider = provider.id());
        tokio::spawn(
            async move {
                let outcome = tokio::time::timeout(timeout, provider.exchange(code, verifier))
                    .await
                    .unwrap_or_else(|_| {
                        Err(ExchangeError::new(
                            FailureReason::Timeout,
                            format!("no answer within {timeout:?}"),
                        ))
                    });
                let finished = match outcome {
                    Ok(profile) => store
                        .complete_login(operation, provider.id(), &profile)
                        .await
                        .map(|user| info!(user = %user, "sign-in exchange succeeded")),
                    Err(failure) => {
                        warn!(reason = %failure.reason, detail = %failure.detail, "sign-in exchange failed");
                        store.fail_operation(operation, failure.reason).await
                    }
                };
                if let Err(e) = finished {
                    error!(error = %e, "could not record the exchange's outcome");
                    if let Err(e) = store.fail_operation(operation, FailureReason::Internal).await {
                        error!(error = %e, "could not mark the operation failed either; it will expire");
                    }
                }
            }
            .instrument(span),
        );
    }
}
