//! [`MemoryStore`] as an [`AnswerCache`] and a [`RateLimiter`]: answers by key with
//! their expiry, and a call count per (key, window start), behind one mutex so that
//! each call is atomic.

use std::collections::HashMap;
use std::sync::{MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::MemoryStore;
use crate::error::StoreError;
use crate::ports::{rate_window, AnswerCache, Inspection, RateLimiter};

/// The answers and the rate windows of a [`MemoryStore`].
#[derive(Debug, Default)]
pub(crate) struct CacheState {
    /// Answers by key: (answer, expires at in epoch ms).
    answers: HashMap<String, (Inspection, i64)>,
    /// Calls granted by (key, window start in epoch ms): (count, window end in ms).
    windows: HashMap<(String, i64), (u32, i64)>,
}

impl MemoryStore {
    fn cache(&self) -> MutexGuard<'_, CacheState> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl AnswerCache for MemoryStore {
    async fn get_answer(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Inspection>, StoreError> {
        let mut cache = self.cache();
        let now_ms = now.timestamp_millis();
        match cache.answers.get(key) {
            Some((answer, expires)) if *expires > now_ms => Ok(Some(answer.clone())),
            Some(_) => {
                cache.answers.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn put_answer(
        &self,
        key: &str,
        answer: &Inspection,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.cache().answers.insert(
            key.to_owned(),
            (answer.clone(), expires_at.timestamp_millis()),
        );
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for MemoryStore {
    async fn acquire(
        &self,
        key: &str,
        limit: u32,
        per: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, StoreError> {
        let (start, left) = rate_window(per, now);
        let now_ms = now.timestamp_millis();
        let end = now_ms.saturating_add(i64::try_from(left.as_millis()).unwrap_or(i64::MAX));
        let mut cache = self.cache();
        // Windows that ended are never asked about again (time moves forward).
        cache.windows.retain(|_, (_, ended)| *ended > now_ms);
        let (count, _) = cache
            .windows
            .entry((key.to_owned(), start))
            .or_insert((0, end));
        if *count < limit {
            *count += 1;
            Ok(None)
        } else {
            Ok(Some(left))
        }
    }
}
