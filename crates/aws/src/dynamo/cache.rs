//! [`DynamoStore`] as the inspectors' [`AnswerCache`] and [`RateLimiter`], on the
//! report table (see the key table in the module documentation).
//!
//! - An answer is one item `answer#<key>` / `answer`: the answer's JSON as `json`, or
//!   gzipped as `json_gz` when it is longer than a write unit; `expires_ms` (the exact
//!   expiry, checked on every read, since DynamoDB's TTL deletes late) and the TTL
//!   attribute at the same time. An answer that does not fit an item even gzipped is
//!   not kept (a debug line): the cache is an optimisation.
//! - A rate window is one item `limit#<key>` / `w#<window start ms>` counting the
//!   calls granted in `calls`: an UpdateItem `ADD calls :one` conditional on
//!   `attribute_not_exists(calls) OR calls < :limit` takes one call atomically, so
//!   every function instance shares the quota; a failed condition is the window
//!   spent. The item expires an hour after its window ends.

use std::io::{Read, Write};
use std::time::Duration;

use alertresponder_core::error::StoreError;
use alertresponder_core::ports::{rate_window, AnswerCache, Inspection, RateLimiter};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use tracing::debug;

use super::codec::{get_n, malformed, millis, n, s, to_json};
use super::keys::{answer_pk, key, rate_pk, rate_sk, ANSWER_SK};
use super::{DynamoStore, TTL_ATTRIBUTE};
use crate::error::AwsError;

/// Largest answer kept (gzipped if longer than [`GZIP_ABOVE_BYTES`]): an item holds
/// 400 KB in all.
const MAX_ANSWER_BYTES: usize = 300_000;
/// An answer whose JSON is longer is stored gzipped (a write unit is 1 KB).
const GZIP_ABOVE_BYTES: usize = 1024;
/// How long a rate window's item outlives its window (DynamoDB's TTL deletes it).
const WINDOW_MARGIN: Duration = Duration::from_secs(3600);

/// Epoch seconds, rounded up, of `ms` epoch milliseconds: a TTL never before the expiry.
fn ttl_secs(ms: i64) -> i64 {
    ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)
}

/// The answer's JSON as stored: as is when small, else gzipped (whichever is
/// smaller); `None` when it does not fit an item.
fn encode(
    answer: &Inspection,
    what: &str,
) -> Result<Option<(&'static str, AttributeValue)>, StoreError> {
    let json = to_json(answer, what)?;
    if json.len() <= GZIP_ABOVE_BYTES {
        return Ok(Some(("json", s(json))));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let zipped = gz
        .write_all(json.as_bytes())
        .and_then(|()| gz.finish())
        .map_err(|e| StoreError::Permanent(format!("cannot gzip {what}: {e}")))?;
    if zipped.len() >= json.len() && json.len() <= MAX_ANSWER_BYTES {
        return Ok(Some(("json", s(json))));
    }
    if zipped.len() > MAX_ANSWER_BYTES {
        debug!(
            json_bytes = json.len(),
            gzipped_bytes = zipped.len(),
            "{what} is too large to cache"
        );
        return Ok(None);
    }
    Ok(Some(("json_gz", AttributeValue::B(Blob::new(zipped)))))
}

/// The answer of a stored item.
fn decode(item: &super::keys::Item, what: &str) -> Result<Inspection, AwsError> {
    let json = match (item.get("json"), item.get("json_gz")) {
        (Some(AttributeValue::S(json)), _) => json.clone(),
        (_, Some(AttributeValue::B(zipped))) => {
            let mut json = String::new();
            flate2::read::GzDecoder::new(zipped.as_ref())
                .read_to_string(&mut json)
                .map_err(|e| malformed(what, format!("json_gz: {e}")))?;
            json
        }
        _ => return Err(malformed(what, "neither json nor json_gz is present")),
    };
    serde_json::from_str(&json).map_err(|e| malformed(what, format!("json: {e}")))
}

#[async_trait]
impl AnswerCache for DynamoStore {
    async fn get_answer(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Inspection>, StoreError> {
        let what = format!("cached answer {key}");
        let Some(item) = self
            .get(&self.report_table, answer_pk(key), ANSWER_SK.to_string())
            .await?
        else {
            return Ok(None);
        };
        let expires: i64 = get_n(&item, "expires_ms", &what)?;
        if expires <= millis(now) {
            // Left for DynamoDB's TTL to delete.
            return Ok(None);
        }
        Ok(Some(decode(&item, &what)?))
    }

    async fn put_answer(
        &self,
        key: &str,
        answer: &Inspection,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let what = format!("cached answer {key}");
        let Some((name, value)) = encode(answer, &what)? else {
            return Ok(());
        };
        let expires = millis(expires_at);
        let mut item = super::keys::key(answer_pk(key), ANSWER_SK);
        item.extend([
            (name.to_string(), value),
            ("expires_ms".to_string(), n(expires)),
            (TTL_ATTRIBUTE.to_string(), n(ttl_secs(expires))),
        ]);
        self.put(&self.report_table, item).await?;
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for DynamoStore {
    async fn acquire(
        &self,
        limit_key: &str,
        limit: u32,
        per: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, StoreError> {
        let (start, left) = rate_window(per, now);
        if limit == 0 {
            return Ok(Some(left));
        }
        let end = start.saturating_add(i64::try_from(per.as_millis()).unwrap_or(i64::MAX));
        let expires = ttl_secs(end)
            .saturating_add(i64::try_from(WINDOW_MARGIN.as_secs()).unwrap_or(i64::MAX));
        let taken = self
            .client
            .update_item()
            .table_name(&self.report_table)
            .set_key(Some(key(rate_pk(limit_key), rate_sk(start))))
            .update_expression("ADD #calls :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#calls) OR #calls < :limit")
            .expression_attribute_names("#calls", "calls")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":ttl", n(expires))
            .send()
            .await;
        match taken {
            Ok(_) => Ok(None),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(Some(left))
            }
            Err(err) => Err(AwsError::sdk("dynamodb", "UpdateItem", err).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use alertresponder_core::fixtures::contract::{large_answer, small_answer};
    use alertresponder_core::model::Attribute;

    use super::*;

    #[test]
    fn a_small_answer_stays_json_a_large_one_is_gzipped_and_both_decode() {
        let (name, value) = encode(&small_answer("JP"), "a").unwrap().unwrap();
        assert_eq!(name, "json");
        let item = [(name.to_string(), value)].into_iter().collect();
        assert_eq!(decode(&item, "a").unwrap(), small_answer("JP"));
        let (name, value) = encode(&large_answer(), "b").unwrap().unwrap();
        assert_eq!(name, "json_gz");
        let item = [(name.to_string(), value)].into_iter().collect();
        assert_eq!(decode(&item, "b").unwrap(), large_answer());
    }

    #[test]
    fn an_answer_too_large_for_an_item_is_not_kept() {
        // Values that compress poorly: 1 MB of distinct hex, over 300 KB gzipped.
        let new_attributes = (0..10_000u32)
            .map(|i| Attribute {
                attr_type: "domain".into(),
                key: "k".into(),
                value: hex_noise(i),
                context: vec![],
                timestamp: None,
            })
            .collect();
        let answer = Inspection {
            sections: vec![],
            new_attributes,
        };
        assert!(encode(&answer, "c").unwrap().is_none());
    }

    /// 100 characters that gzip cannot shrink much (a simple xorshift).
    fn hex_noise(seed: u32) -> String {
        let mut x = u64::from(seed) * 2_654_435_761 + 1;
        (0..50)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{:02x}", x & 0xff)
            })
            .collect()
    }

    #[test]
    fn a_ttl_is_never_before_the_expiry() {
        assert_eq!(ttl_secs(5000), 5);
        assert_eq!(ttl_secs(5001), 6);
    }
}
