//! [`SqliteStore`] as the inspectors' [`AnswerCache`] and [`RateLimiter`].
//!
//! Answers are JSON rows by key with their expiry (epoch ms); an expired answer is
//! deleted when read, and [`SqliteStore::prune_answers`] deletes every expired one
//! (for a periodic pass). A rate window is a row (key, window start) counting the
//! calls granted: one UPSERT on the writer takes a call only while the count is under
//! the limit, so every process on the file shares the quota exactly.

use std::time::Duration;

use alertresponder_core::error::StoreError;
use alertresponder_core::ports::{rate_window, AnswerCache, Inspection, RateLimiter};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::sql::{exec, millis, row1};
use super::SqliteStore;
use crate::error::EmbeddedError;

#[async_trait]
impl AnswerCache for SqliteStore {
    async fn get_answer(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Inspection>, StoreError> {
        let key = key.to_owned();
        let now = millis(now);
        let row: Option<(String, i64)> = self
            .write(move |tx| {
                let row: Option<(String, i64)> = row1(
                    tx,
                    "SELECT answer, expires_at FROM answers WHERE key = ?1",
                    params![key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
                if matches!(row, Some((_, expires)) if expires <= now) {
                    exec(
                        tx,
                        "DELETE FROM answers WHERE key = ?1 AND expires_at <= ?2",
                        params![key, now],
                    )?;
                    return Ok(None);
                }
                Ok(row)
            })
            .await?;
        let Some((json, _)) = row else {
            return Ok(None);
        };
        Ok(Some(
            serde_json::from_str(&json).map_err(EmbeddedError::from)?,
        ))
    }

    async fn put_answer(
        &self,
        key: &str,
        answer: &Inspection,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let key = key.to_owned();
        let json = serde_json::to_string(answer).map_err(EmbeddedError::from)?;
        let expires = millis(expires_at);
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO answers (key, answer, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET answer = excluded.answer,
                                                 expires_at = excluded.expires_at",
                params![key, json, expires],
            )?;
            Ok(())
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for SqliteStore {
    async fn acquire(
        &self,
        key: &str,
        limit: u32,
        per: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, StoreError> {
        let (start, left) = rate_window(per, now);
        if limit == 0 {
            return Ok(Some(left));
        }
        let key = key.to_owned();
        let granted = self
            .write(move |tx| {
                // Windows of this key that ended are never asked about again.
                exec(
                    tx,
                    "DELETE FROM rate_windows WHERE key = ?1 AND window_start < ?2",
                    params![key, start],
                )?;
                // No row comes back when the window's calls are spent.
                let calls: Option<i64> = row1(
                    tx,
                    "INSERT INTO rate_windows (key, window_start, calls) VALUES (?1, ?2, 1)
                     ON CONFLICT (key, window_start) DO UPDATE SET calls = calls + 1
                      WHERE calls < ?3
                     RETURNING calls",
                    params![key, start, i64::from(limit)],
                    |r| r.get(0),
                )
                .optional()?;
                Ok(calls.is_some())
            })
            .await?;
        Ok(if granted { None } else { Some(left) })
    }
}

impl SqliteStore {
    /// Deletes every answer expired at `now` and every rate window that started
    /// `horizon` or more before `now` (longer than any limit's window); returns how
    /// many answers went. For a periodic pass: an expired answer is also deleted when
    /// read.
    pub async fn prune_answers(
        &self,
        now: DateTime<Utc>,
        horizon: Duration,
    ) -> Result<u64, EmbeddedError> {
        let now_ms = millis(now);
        let before = now_ms.saturating_sub(i64::try_from(horizon.as_millis()).unwrap_or(i64::MAX));
        self.write(move |tx| {
            let n = exec(
                tx,
                "DELETE FROM answers WHERE expires_at <= ?1",
                params![now_ms],
            )?;
            exec(
                tx,
                "DELETE FROM rate_windows WHERE window_start < ?1",
                params![before],
            )?;
            Ok(n as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use alertresponder_core::fixtures::contract::small_answer;
    use alertresponder_core::fixtures::t;
    use alertresponder_core::ports::{AnswerCache, RateLimiter};

    use super::SqliteStore;
    use crate::store::sql::count;

    #[tokio::test]
    async fn pruning_deletes_expired_answers_and_old_windows_only() {
        let store = SqliteStore::open_in_memory().unwrap();
        store
            .put_answer("a", &small_answer("JP"), t(10))
            .await
            .unwrap();
        store
            .put_answer("b", &small_answer("US"), t(100))
            .await
            .unwrap();
        let minute = Duration::from_secs(60);
        store.acquire("vt", 4, minute, t(0)).await.unwrap();
        store.acquire("vt2", 4, minute, t(7200)).await.unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(store.prune_answers(t(50), day).await.unwrap(), 1);
        assert_eq!(
            store.get_answer("b", t(50)).await.unwrap(),
            Some(small_answer("US"))
        );
        let windows = store
            .read(|tx| count(tx, "SELECT count(*) FROM rate_windows"))
            .await
            .unwrap();
        assert_eq!(windows, 2, "both windows are younger than a day");
        store.prune_answers(t(86_400 + 3600), day).await.unwrap();
        let windows = store
            .read(|tx| count(tx, "SELECT count(*) FROM rate_windows"))
            .await
            .unwrap();
        assert_eq!(windows, 1, "the window of t(0) is older than a day");
    }

    #[tokio::test]
    async fn an_expired_answer_is_deleted_when_read() {
        let store = SqliteStore::open_in_memory().unwrap();
        store
            .put_answer("a", &small_answer("JP"), t(10))
            .await
            .unwrap();
        assert_eq!(store.get_answer("a", t(10)).await.unwrap(), None);
        let left = store
            .read(|tx| count(tx, "SELECT count(*) FROM answers"))
            .await
            .unwrap();
        assert_eq!(left, 0);
    }
}
