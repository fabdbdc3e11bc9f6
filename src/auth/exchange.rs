//! The exchange task: runs after the callback has answered, so the browser is never held
//! while the provider is slow.

use std::{collections::HashSet, sync::Arc, time::Duration};

use tokio::time::Instant;

use oauth2::AuthorizationCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use super::{
    Access, ExchangeError, FailureReason, LoginSecrets, OperationEvents, Person, Profile,
    Provider, Refusals, access::domain_of,
};
use crate::{
    shutdown::Shutdown,
    store::{EmailLinking, OperationId, Store, UserId},
    telemetry,
};

/// The person a profile describes, as `[access]` sees them.
fn person(profile: &Profile) -> Person<'_> {
    Person {
        email: profile.email.as_deref(),
        email_verified: profile.email_verified,
        membership: &profile.membership,
    }
}

/// The outcome label of a sign-in (or link) that succeeded.
const OK: &str = "ok";
/// The first wait before recording an exchange's outcome again, doubled each time up to
/// [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// How long an operation whose outcome could not be recorded is still marked failed as
/// soon as the database answers (the maintenance task's period: it takes over then).
const MARK_FAILED_LIMIT: Duration = Duration::from_secs(10 * 60);

/// What recording an exchange's outcome did: the outcome as the metrics count it (`ok` or the
/// failure's reason code), and whether a sign-in's operation went to `ok` with it (then its
/// status is known for certain, and remembered for the polls: `OperationEvents::remember`).
struct Recorded {
    outcome: &'static str,
    signed_in: bool,
}

impl Recorded {
    fn outcome(outcome: &'static str) -> Self {
        Self {
            outcome,
            signed_in: false,
        }
    }
}

/// What an exchange ends in, decided once and then recorded (again, if the database could not
/// answer the first time).
enum Decided {
    SignIn(Profile),
    Link(UserId, Profile),
    Failed(FailureReason),
}

impl Decided {
    /// Writes it. Each write is one transaction, so a failed attempt leaves nothing half-written, and a
    /// repeat finds the operation as the first left it (a finished operation is never
    /// overwritten).
    async fn record(
        &self,
        store: &Store,
        operation: OperationId,
        provider: &str,
        email_linking: EmailLinking<'_>,
    ) -> Result<Recorded, crate::store::StoreError> {
        match self {
            Self::SignIn(profile) => store
                .complete_sign_in(operation, provider, profile, email_linking)
                .await
                .map(|signed_in| {
                    let user = signed_in.user;
                    if signed_in.joined_by_email {
                        info!(user = %user, "new identity joined an existing person on a verified address");
                    }
                    info!(user = %user, "sign-in exchange succeeded");
                    Recorded {
                        outcome: OK,
                        signed_in: signed_in.finished,
                    }
                }),
            Self::Link(user, profile) => store
                .link_identity(operation, *user, provider, profile)
                .await
                .map(|linked| match linked {
                    Ok(()) => {
                        info!(user = %user, "identity linked");
                        Recorded::outcome(OK)
                    }
                    Err(reason) => {
                        warn!(user = %user, %reason, "identity not linked");
                        Recorded::outcome(reason.code())
                    }
                }),
            Self::Failed(reason) => store
                .fail_operation(operation, *reason)
                .await
                .map(|()| Recorded::outcome(reason.code())),
        }
    }
}

impl Decided {
    /// [`Decided::record`], waiting out a database that cannot answer (a restart, a full disk
    /// being freed) with backoff until `deadline`, the exchange's own, after which the browser
    /// reads the operation as timed out anyway: the person may have approved at the provider
    /// already, and a blip must not lose that. `Err` when it could not be recorded.
    async fn record_until(
        &self,
        store: &Store,
        operation: OperationId,
        provider: &str,
        email_linking: EmailLinking<'_>,
        deadline: Instant,
        cut_off: &CancellationToken,
    ) -> Result<Recorded, ()> {
        let mut backoff = RETRY_FIRST;
        let mut waiting = false;
        loop {
            let error = match self.record(store, operation, provider, email_linking).await {
                Ok(outcome) => return Ok(outcome),
                Err(error) => error,
            };
            if !error.is_unavailable() {
                error!(%error, "could not record the exchange's outcome");
                return Err(());
            }
            // The outage is one WARN for the process (`outage::met`); each sign-in it holds up
            // is an INFO line or two of its own.
            if !waiting {
                crate::store::outage::met(&error.to_string());
            }
            if Instant::now() + backoff >= deadline || cut_off.is_cancelled() {
                info!(%error, "could not record the exchange's outcome before its deadline: the database is still unavailable");
                return Err(());
            }
            if !waiting {
                info!(%error, "could not record the exchange's outcome: the database is unavailable; trying again until the exchange's deadline");
                waiting = true;
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                // Shutdown's last seconds are not spent on another attempt that may wait as
                // long as the database wait: the operation is marked failed if it can be.
                () = cut_off.cancelled() => return Err(()),
            }
            backoff = (backoff * 2).min(RETRY_MAX);
        }
    }
}

/// An operation whose outcome could not be recorded is marked failed, so that no row stays
/// `pending` once the database answers again (the browser already reads it as timed out
/// past the deadline). While the database is unavailable this is tried again every
/// [`RETRY_MAX`], until [`MARK_FAILED_LIMIT`] or shutdown; after that the maintenance task
/// expires it.
async fn mark_failed(store: &Store, operation: OperationId, cut_off: &CancellationToken) {
    let give_up = Instant::now() + MARK_FAILED_LIMIT;
    loop {
        match store.fail_operation(operation, FailureReason::Internal).await {
            Ok(()) => return,
            Err(e) if e.is_unavailable() && Instant::now() < give_up => {
                tokio::select! {
                    () = tokio::time::sleep(RETRY_MAX) => {}
                    () = cut_off.cancelled() => return,
                }
            }
            Err(e) => {
                warn!(error = %e, "could not mark the operation failed; the maintenance task will expire it");
                return;
            }
        }
    }
}

/// Starts and bounds code exchanges: each runs under a time limit, and only so many run at
/// once, so a flood of callbacks cannot exhaust memory or sockets. Shutdown waits for them
/// (see [`crate::shutdown`]).
#[derive(Clone)]
pub struct Exchanger {
    store: Store,
    timeout: Duration,
    slots: Arc<Semaphore>,
    events: Arc<OperationEvents>,
    /// Providers whose new identities may join an existing person on a verified address
    /// (`link_by_verified_email`), and whose verification of an address is the only one such a
    /// join trusts; none by default.
    email_linking: Arc<HashSet<String>>,
    /// `[access]`: who may sign in at all; asked before anything is written.
    access: Access,
    /// The addresses refused, for their error pages.
    refusals: Arc<Refusals>,
    /// Whether refusals go into the person's recent activity (`audit.retention_days`).
    record_activity: bool,
    shutdown: Shutdown,
}

/// Who a sign-in is for, besides what the provider answers: kept in the browser's sealed
/// pre-sign-in cookie or read from the callback's request.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    /// For a link from "Sign-in methods": the signed-in person who started it.
    pub link_for: Option<UserId>,
    /// The callback's User-Agent (at most 512 bytes), for the person's recent activity: made
    /// into a label ("Firefox on Linux") only when a refusal is recorded.
    pub user_agent: Option<String>,
    /// The first and last name a provider sent beside the code rather than in what the
    /// exchange reads (Sign in with Apple's `user` field, on the first consent only): the
    /// person's name when the provider's own answer has none.
    pub names: Option<(String, String)>,
}

/// The right to run one exchange, taken before anything is written for it; the slot frees
/// when the exchange task ends and drops it.
pub struct ExchangeSlot {
    _permit: OwnedSemaphorePermit,
}

impl Exchanger {
    pub fn new(
        store: Store,
        timeout: Duration,
        max_concurrent: usize,
        events: Arc<OperationEvents>,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            store,
            timeout,
            slots: Arc::new(Semaphore::new(max_concurrent)),
            events,
            email_linking: Arc::default(),
            access: Access::default(),
            refusals: Arc::default(),
            record_activity: false,
            shutdown,
        }
    }

    /// Records refused sign-ins of existing people in their recent activity.
    pub fn recording_activity(mut self, record: bool) -> Self {
        self.record_activity = record;
        self
    }

    /// Signs in only people `access` lets in (see [`Access::allows`]). Links are never
    /// affected: the person adding an identity is signed in already, and whoever signs in
    /// with that identity later is checked then.
    pub fn with_access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// The addresses refused by `[access]`, for the error page.
    pub fn refusals(&self) -> &Refusals {
        &self.refusals
    }

    /// Lets first sign-ins with these providers join an existing person on an address one of
    /// them verified (see [`EmailLinking::WhenVerified`]). Explicit links are never affected.
    pub fn link_by_verified_email<'a>(
        mut self,
        providers: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        self.email_linking = Arc::new(providers.into_iter().map(str::to_owned).collect());
        self
    }

    /// A free slot, or `None` when `max_concurrent` exchanges are already running.
    pub fn reserve(&self) -> Option<ExchangeSlot> {
        self.slots
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|permit| ExchangeSlot { _permit: permit })
    }

    /// Spawns the exchange for a pending `operation`. Whatever happens (success, provider
    /// failure, time-out, shutdown's grace period running out), the task ends by moving the
    /// operation out of `pending`.
    ///
    /// With `attempt.link_for` (the signed-in person who started it, kept sealed in the
    /// browser's pre-sign-in cookie and checked against the session at the callback, never
    /// taken from the request) the identity is added to that person instead of signing
    /// anyone in.
    pub fn spawn(
        &self,
        slot: ExchangeSlot,
        operation: OperationId,
        provider: Arc<dyn Provider>,
        code: AuthorizationCode,
        secrets: LoginSecrets,
        attempt: Attempt,
    ) {
        let Attempt {
            link_for,
            user_agent,
            names,
        } = attempt;
        let store = self.store.clone();
        let running_here = self.events.began(operation);
        let events = self.events.clone();
        let timeout = self.timeout;
        let trusted = self.email_linking.clone();
        let access = self.access.clone();
        let refusals = self.refusals.clone();
        let record_activity = self.record_activity;
        let cut_off = self.shutdown.cut_off();
        let span = info_span!("exchange", operation = %operation, provider = provider.id());
        self.shutdown.exchanges().spawn(
            async move {
                let slot = slot;
                let running = telemetry::InFlight::exchange();
                let started = Instant::now();
                let exchange = tokio::time::timeout(timeout, provider.exchange(code, secrets));
                let outcome = tokio::select! {
                    // An answer that is there wins over a cut-off that is too.
                    biased;
                    outcome = exchange => outcome.unwrap_or_else(|_| {
                        Err(ExchangeError::new(
                            FailureReason::Timeout,
                            format!("no answer within {timeout:?}"),
                        ))
                    }),
                    // The provider's answer is abandoned; the failure is still written, and
                    // shutdown waits for that.
                    () = cut_off.cancelled() => Err(ExchangeError::new(
                        FailureReason::Internal,
                        "cut off: the server shut down (server.shutdown_grace_secs) before the exchange ended",
                    )),
                };
                let posts_its_answer = provider.posts_its_answer();
                let outcome = outcome.map(|mut profile| {
                    let nameless = profile.first_name.is_empty() && profile.last_name.is_empty();
                    match names {
                        Some((first, last)) if nameless => {
                            profile.first_name = first;
                            profile.last_name = last;
                        }
                        // Apple after the first consent: no name anywhere, by design.
                        None if nameless && posts_its_answer => profile.names_withheld = true,
                        _ => {}
                    }
                    profile
                });
                // Only a provider with `link_by_verified_email` joins by address, and only on an
                // address one such provider verified.
                let email_linking = if trusted.contains(provider.id()) {
                    EmailLinking::WhenVerified { trusted: &trusted }
                } else {
                    EmailLinking::Never
                };
                // What to record, decided (and logged) once, whatever the retries below.
                let decided = match (outcome, link_for) {
                    // Before anything is written: a refused person leaves no profile, no
                    // identity and no sign-in; the address is held in memory for the error
                    // page alone, and the log names its domain, never the person.
                    (Ok(profile), None) if !access.allows(&person(&profile)) => {
                        info!(
                            email_domain = domain_of(profile.email.as_deref()),
                            email_verified = profile.email_verified,
                            groups = profile.membership.groups.len(),
                            github_orgs = profile.membership.github_orgs.len(),
                            github_teams = profile.membership.github_teams.len(),
                            "sign-in refused: no [access] condition matches"
                        );
                        // An existing person's refusal is theirs to see ("Recent
                        // activity"); a newcomer's leaves nothing.
                        if record_activity {
                            let recorded = store
                                .record_refusal(
                                    provider.id(),
                                    &profile.provider_user_id,
                                    crate::model::device::label(user_agent.as_deref()).as_deref(),
                                )
                                .await;
                            if let Err(e) = recorded {
                                e.log_skipped("could not record the refused sign-in in the person's activity");
                            }
                        }
                        refusals.hold(operation, profile.email);
                        Decided::Failed(FailureReason::NotAllowed)
                    }
                    (Ok(profile), None) => Decided::SignIn(profile),
                    (Ok(profile), Some(user)) => Decided::Link(user, profile),
                    (Err(failure), _) => {
                        warn!(reason = %failure.reason, detail = %failure.detail, "sign-in exchange failed");
                        Decided::Failed(failure.reason)
                    }
                };
                let deadline = started + timeout;
                let outcome = decided
                    .record_until(&store, operation, provider.id(), email_linking, deadline, &cut_off)
                    .await;
                let recorded = outcome.is_ok();
                let outcome = outcome.unwrap_or_else(|()| Recorded::outcome(FailureReason::Internal.code()));
                telemetry::exchange_duration(provider.id(), started.elapsed());
                telemetry::sign_in_finished(provider.id(), outcome.outcome);
                // Known for certain: the preloader and its polls here need no read.
                if outcome.signed_in {
                    events.remember(operation, crate::store::OperationStatus::Ok);
                }
                events.finished(operation);
                // The exchange is over: its slot and its place in the gauge are free, and
                // shutdown does not wait for the marking below, which may take as long as the
                // database stays down (it stops at the cut-off).
                drop(slot);
                drop(running);
                drop(running_here);
                if !recorded {
                    tokio::spawn(
                        async move { mark_failed(&store, operation, &cut_off).await }
                            .in_current_span(),
                    );
                }
            }
            .instrument(span),
        );
    }
}
