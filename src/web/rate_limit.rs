//! Per-client-address token buckets for the routes that start work at a provider, and the
//! limits on the size of any request.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{AppError, client_addr::ClientAddr};

/// Past this many tracked addresses, full buckets are forgotten.
const MAX_TRACKED: usize = 10_000;

/// A token bucket per client address: `per_minute` tokens a minute, up to `burst` saved.
pub struct RateLimiter {
    /// The `limiter` label of `loginwith_rate_limited_total`.
    name: &'static str,
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self {
            name: "unnamed",
            per_second: f64::from(per_minute) / 60.0,
            burst: f64::from(burst),
            buckets: Mutex::default(),
        }
    }

    /// Names the limiter in the metrics (`auth`, `data_callback`).
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Takes a token for `client`; `Err` with the wait until the next one otherwise.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let refill = now.duration_since(bucket.updated).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
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
                retry_after_secs: wait.as_secs().max(1),
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
}
