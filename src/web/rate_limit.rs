//! Per-client-address token buckets for the routes that start work at a provider, and the
//! limits on the size of any request.

use std::{
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{
    Quota, RateLimiter as Gcra, clock::Clock, clock::DefaultClock, state::keyed::DefaultKeyedStateStore,
};

use super::{AppError, client_addr::ClientAddr};

/// A token bucket per client address: `per_minute` tokens a minute, up to `burst` at once
/// (governor's GCRA: one timestamp per address, an O(1) check).
pub struct RateLimiter {
    /// The `limiter` label of `loginwith_rate_limited_total`.
    name: &'static str,
    limiter: Gcra<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>,
    clock: DefaultClock,
}

impl RateLimiter {
    /// Zero is read as one: configuration validation refuses zero before this is built.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Self {
            name: "unnamed",
            limiter: Gcra::hashmap(Quota::per_minute(per_minute).allow_burst(burst)),
            clock: DefaultClock::default(),
        }
    }

    /// Names the limiter in the metrics (`auth`, `data_callback`).
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Takes a token for `client`'s bucket ([`bucket_of`]); `Err` with the wait until the
    /// next one otherwise.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        self.limiter
            .check_key(&bucket_of(client))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets the addresses whose buckets are full again (they would start afresh anyway),
    /// so that the map holds only the addresses seen lately. Run on the maintenance schedule,
    /// not on a request.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Addresses remembered now.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

/// The bucket an address draws from: an IPv4 address alone, an IPv6 address's /64. A single
/// IPv6 subscriber is given at least a /64 and can send from any address in it, so a bucket
/// per address would be 2^64 buckets of its own choosing. An IPv4-mapped IPv6 address is that
/// IPv4 address.
fn bucket_of(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// Middleware over the routes it guards: refuses with the 429 page (and `Retry-After`) once a
/// client address has used its tokens. The address is the one [`ClientAddr`] decided: behind
/// a trusted proxy, the client it names.
pub async fn limit(
    State(limiter): State<Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    match limiter.check(ClientAddr::of(request.extensions())) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            crate::telemetry::rate_limited(limiter.name);
            AppError::TooManyRequests {
                // Rounded up: a client that waits what it is told gets a token.
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
            .into_response()
        }
    }
}

/// Middleware: refuses requests whose head (request line and headers) is larger than the limit.
pub async fn limit_header_size(
    State(limit): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let size = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len())
        + request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum::<usize>();
    if size > limit {
        return AppError::HeadersTooLarge.into_response();
    }
    next.run(request).await
}

/// Middleware: refuses a request whose announced body (`Content-Length`) is larger than the
/// limit, before reading any of it. A body sent without a length is cut off at the same limit
/// while it is read (`DefaultBodyLimit` in `common_layers`), with the same 413 page.
pub async fn limit_body_size(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
    if announced.is_some_and(|length| length > limit) {
        return AppError::PayloadTooLarge.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn a_bucket_allows_the_burst_then_refuses() {
        let limiter = RateLimiter::new(60, 3);
        let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for _ in 0..3 {
            assert!(limiter.check(client).is_ok());
        }
        let wait = limiter.check(client).unwrap_err();
        assert!(wait <= Duration::from_secs(1));
        // Another address has its own bucket.
        assert!(
            limiter
                .check(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
                .is_ok()
        );
    }

    #[test]
    fn an_ipv6_client_draws_from_its_64s_bucket_whatever_address_it_sends_from() {
        let limiter = RateLimiter::new(60, 1);
        let address = |text: &str| text.parse::<IpAddr>().unwrap();
        assert!(limiter.check(address("2001:db8:1:2::1")).is_ok());
        assert!(limiter.check(address("2001:db8:1:2:ffff:ffff:ffff:ffff")).is_err());
        // The next /64 is another subscriber.
        assert!(limiter.check(address("2001:db8:1:3::1")).is_ok());
        // An IPv4-mapped address is its IPv4 address.
        assert!(limiter.check(address("192.0.2.7")).is_ok());
        assert!(limiter.check(address("::ffff:192.0.2.7")).is_err());
    }

    #[test]
    fn addresses_are_forgotten_once_their_buckets_are_full_again_and_not_before() {
        // One token a millisecond: full again a millisecond after its last use.
        let limiter = RateLimiter::new(60_000, 1);
        let slow = RateLimiter::new(1, 1);
        for last in 1..=200u8 {
            let client = IpAddr::V4(Ipv4Addr::new(10, 0, 0, last));
            limiter.check(client).unwrap();
            slow.check(client).unwrap();
        }
        assert_eq!(limiter.tracked(), 200);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while limiter.tracked() > 0 {
            assert!(std::time::Instant::now() < deadline, "never forgotten");
            limiter.forget_idle();
            std::thread::yield_now();
        }
        // A bucket still refilling is kept: forgetting it would hand out a new burst.
        slow.forget_idle();
        assert_eq!(slow.tracked(), 200);
        assert!(slow.check(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))).is_err());
    }
}
