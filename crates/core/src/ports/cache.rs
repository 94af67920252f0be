//! The answer cache and the rate limiter that built-in inspectors share across
//! reports: one address seen in a hundred reports is looked up once, and a vendor's
//! quota is never exceeded, whichever report asks (and, on AWS, whichever function
//! instance).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::plugin::Inspection;
use crate::error::StoreError;

/// Inspector answers kept across reports until they expire. Keys are chosen by the
/// caller (an inspector's name and the attribute's hash: never attacker text).
#[async_trait]
pub trait AnswerCache: Send + Sync {
    /// The answer kept under `key`, unless it expired at or before `now`.
    async fn get_answer(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Inspection>, StoreError>;
    /// Keeps `answer` under `key` until `expires_at`, replacing what was there.
    async fn put_answer(
        &self,
        key: &str,
        answer: &Inspection,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// A fixed-window rate limit shared by every caller of a store: at most `limit` calls
/// under `key` in each window of length `per` (windows start at multiples of `per`
/// since the Unix epoch), so a quota of N per minute is never exceeded in any window.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes one call of `key`'s window at `now`: `None` when granted, or how long until
    /// the next window opens when this one's calls are spent.
    async fn acquire(
        &self,
        key: &str,
        limit: u32,
        per: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, StoreError>;
}

/// The window of length `per` that holds `now`: its start in milliseconds since the
/// epoch, and how long until it ends. Every adapter cuts windows the same way.
pub fn rate_window(per: Duration, now: DateTime<Utc>) -> (i64, Duration) {
    let per_ms = i64::try_from(per.as_millis()).unwrap_or(i64::MAX).max(1);
    let now_ms = now.timestamp_millis();
    let start = now_ms.div_euclid(per_ms) * per_ms;
    let left = u64::try_from(start + per_ms - now_ms).unwrap_or(0);
    (start, Duration::from_millis(left))
}
