//! [`Throttled`]: the answer cache and the rate limit in front of any inspector.
//!
//! A cached answer is returned without asking the inspector, so one address seen in a
//! hundred reports is looked up once per `cache_ttl`; on a miss, a call is taken from
//! the inspector's shared quota ([`RateLimiter`], fixed windows) before the inspector
//! is asked, and a spent quota is `RateLimited` with the wait until the next window:
//! the pipeline retries until the review and otherwise records **rate limited**.
//!
//! - Keys: `<inspector name>:<hex SHA-256 of (type length, type, value)>`, never
//!   attacker text; the attribute's `key` and `context` do not change the answer, so they are
//!   not part of it. The rate limit's key is the inspector's name.
//! - Only answers are kept: an error, `RateLimited` or `Skipped` is asked again.
//! - The cache is an optimisation: a store error reading or writing it is logged and
//!   the lookup goes on. The limiter is not: a failing limiter is a `Failed` outcome,
//!   since going past a vendor's quota costs money.
//! - Two clocks: answers expire in the pipeline's time (virtual in
//!   `alertresponder run`), quota windows count in the wall clock (a vendor's quota is
//!   real time).
//! - Within one process, concurrent misses on one key wait for the first lookup and
//!   take its answer from the cache, so a burst of reports naming one address makes
//!   one request.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use alertresponder_core::error::PluginError;
use alertresponder_core::ports::{AnswerCache, Clock, Inspection, Inspector, RateLimiter};
use alertresponder_core::{Attribute, Task};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tracing::{debug, warn};

/// At most `calls` lookups in every window of `per` (`rate_limit = "4/min"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Calls allowed per window (at least 1).
    pub calls: u32,
    /// The window's length.
    pub per: Duration,
}

/// What [`RateLimit`]'s parser accepts, for its errors.
const RATE_LIMIT_FORMS: &str = "expected <calls>/<period>, calls at least 1 and period \
    one of s, sec, second, min, minute, h, hour, day (or their plurals), optionally \
    preceded by a count: \"4/min\", \"500/day\", \"2/s\", \"100/h\", \"10/5min\"";

impl FromStr for RateLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid rate limit {text:?}: {RATE_LIMIT_FORMS}");
        let (calls, period) = text.trim().split_once('/').ok_or_else(bad)?;
        let calls: u32 = calls.trim().parse().map_err(|_| bad())?;
        if calls == 0 {
            return Err(bad());
        }
        let period = period.trim();
        let digits = period.len()
            - period
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        let (count, unit) = period.split_at(digits);
        let count: u64 = if count.is_empty() {
            1
        } else {
            count.parse().map_err(|_| bad())?
        };
        let unit_secs: u64 = match unit.trim() {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            _ => return Err(bad()),
        };
        if count == 0 {
            return Err(bad());
        }
        let secs = count.checked_mul(unit_secs).ok_or_else(bad)?;
        if secs > 366 * 86_400 {
            return Err(format!(
                "invalid rate limit {text:?}: the period is at most a year"
            ));
        }
        Ok(RateLimit {
            calls,
            per: Duration::from_secs(secs),
        })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.per.as_secs();
        let (count, unit) = [(86_400, "day"), (3600, "h"), (60, "min"), (1, "s")]
            .into_iter()
            .find(|(u, _)| secs.is_multiple_of(*u))
            .map(|(u, name)| (secs / u, name))
            .unwrap_or((secs, "s"));
        if count == 1 {
            write!(f, "{}/{unit}", self.calls)
        } else {
            write!(f, "{}/{count}{unit}", self.calls)
        }
    }
}

/// An inspector behind an answer cache and a rate limit (either may be absent).
pub struct Throttled {
    inner: Arc<dyn Inspector>,
    cache: Option<(Arc<dyn AnswerCache>, Duration)>,
    limit: Option<(Arc<dyn RateLimiter>, RateLimit)>,
    clock: Arc<dyn Clock>,
    quota_clock: Arc<dyn Clock>,
    /// Lookups under way in this process, by cache key: a second miss on the same key
    /// waits for the first and reads its answer from the cache.
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl fmt::Debug for Throttled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttled")
            .field("inspector", &self.inner.name())
            .field("cache_ttl", &self.cache.as_ref().map(|(_, ttl)| ttl))
            .field("rate_limit", &self.limit.as_ref().map(|(_, l)| l))
            .finish_non_exhaustive()
    }
}

impl Throttled {
    /// `inner` behind `cache` (the store and how long an answer is kept) and `limit`
    /// (the shared limiter and the quota); answers expire in `clock`'s time, quota
    /// windows count in `quota_clock`'s (the wall clock in production).
    pub fn new(
        inner: Arc<dyn Inspector>,
        cache: Option<(Arc<dyn AnswerCache>, Duration)>,
        limit: Option<(Arc<dyn RateLimiter>, RateLimit)>,
        clock: Arc<dyn Clock>,
        quota_clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner,
            cache,
            limit,
            clock,
            quota_clock,
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// The cache key of `attribute`'s answer from this inspector.
    pub fn cache_key(&self, attribute: &Attribute) -> String {
        // The type's length first: a type is free text too (it may hold a NUL), and
        // no (type, value) pair may read as another.
        let mut digest = Sha256::new();
        digest.update(
            u64::try_from(attribute.attr_type.len())
                .unwrap_or(u64::MAX)
                .to_be_bytes(),
        );
        digest.update(attribute.attr_type.as_bytes());
        digest.update(attribute.value.as_bytes());
        format!("{}:{}", self.inner.name(), hex::encode(digest.finalize()))
    }

    /// The cached answer under `key`, if any (a failing cache is a miss).
    async fn cached(&self, cache: &dyn AnswerCache, key: &str) -> Option<Inspection> {
        match cache.get_answer(key, self.clock.now()).await {
            Ok(found) => found,
            Err(e) => {
                warn!(inspector = %self.inner.name(), error = %e, "cannot read the answer cache; looking up");
                None
            }
        }
    }

    /// Takes a call from the quota (if any), then asks the inspector.
    async fn lookup(&self, task: &Task) -> Result<Inspection, PluginError> {
        if let Some((limiter, limit)) = &self.limit {
            let name = self.inner.name();
            match limiter
                .acquire(name, limit.calls, limit.per, self.quota_clock.now())
                .await
            {
                Ok(None) => {}
                Ok(Some(wait)) => {
                    debug!(inspector = %name, ?wait, rate_limit = %limit, "quota spent");
                    return Err(PluginError::RateLimited {
                        retry_after: Some(wait),
                    });
                }
                Err(e) => {
                    return Err(PluginError::Failed(format!(
                        "cannot take a call from the rate limit ({limit}): {e}"
                    )))
                }
            }
        }
        self.inner.inspect(task).await
    }

    /// The lock of `key`'s lookup in this process.
    fn flight(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.entry(key.to_owned()).or_default().clone()
    }

    /// Forgets `key`'s lock once nobody else holds or waits for it.
    fn land(&self, key: &str, flight: Arc<tokio::sync::Mutex<()>>) {
        let mut map = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Ours and the map's: nobody else cloned it (clones happen under this lock).
        if Arc::strong_count(&flight) == 2 {
            map.remove(key);
        }
    }
}

#[async_trait]
impl Inspector for Throttled {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn accepts(&self, attribute: &Attribute) -> bool {
        self.inner.accepts(attribute)
    }
    fn timeout(&self) -> Duration {
        self.inner.timeout()
    }

    async fn inspect(&self, task: &Task) -> Result<Inspection, PluginError> {
        let Some((cache, ttl)) = &self.cache else {
            return self.lookup(task).await;
        };
        let key = self.cache_key(&task.attribute);
        if let Some(answer) = self.cached(cache.as_ref(), &key).await {
            debug!(inspector = %self.inner.name(), "answer from the cache");
            return Ok(answer);
        }
        let flight = self.flight(&key);
        let outcome = {
            let _turn = flight.lock().await;
            // Another lookup of this key may have finished while we waited.
            match self.cached(cache.as_ref(), &key).await {
                Some(answer) => Ok(answer),
                None => {
                    let outcome = self.lookup(task).await;
                    if let Ok(answer) = &outcome {
                        let now = self.clock.now();
                        let expires_at = chrono::Duration::from_std(*ttl)
                            .ok()
                            .and_then(|ttl| now.checked_add_signed(ttl))
                            .unwrap_or(DateTime::<Utc>::MAX_UTC);
                        if let Err(e) = cache.put_answer(&key, answer, expires_at).await {
                            warn!(inspector = %self.inner.name(), error = %e, "cannot keep the answer in the cache");
                        }
                    }
                    outcome
                }
            }
        };
        self.land(&key, flight);
        outcome
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use alertresponder_core::error::StoreError;
    use alertresponder_core::fixtures::plugins::{host_section, TestInspector};
    use alertresponder_core::memory::MemoryStore;
    use alertresponder_core::ports::{rate_window, ManualClock};

    use super::*;
    use crate::test_support::{attribute, t0, task};

    const DAY: Duration = Duration::from_secs(86_400);
    const MINUTE: Duration = Duration::from_secs(60);

    /// An inspector answering a host section on every value, counting its calls.
    fn counting() -> Arc<TestInspector> {
        Arc::new(TestInspector::new("vt", |t| Ok(host_section(t))))
    }

    fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new(t0()))
    }

    /// `inner` behind a memory cache of `ttl` and no rate limit.
    fn cached(
        inner: Arc<TestInspector>,
        store: Arc<MemoryStore>,
        clock: Arc<ManualClock>,
    ) -> Throttled {
        Throttled::new(inner, Some((store, DAY)), None, clock.clone(), clock)
    }

    fn on(report_id: &str, attr_type: &str, value: &str) -> Task {
        Task {
            report_id: report_id.into(),
            attribute: attribute(attr_type, value),
            depth: 0,
            review_at: None,
        }
    }

    #[test]
    fn rate_limits_parse_in_every_accepted_form() {
        let cases = [
            ("4/min", 4, 60),
            ("500/day", 500, 86_400),
            ("2/s", 2, 1),
            ("100/h", 100, 3600),
            ("10/5m", 10, 300),
            ("10/5min", 10, 300),
            ("3/second", 3, 1),
            ("3/sec", 3, 1),
            ("7/minute", 7, 60),
            ("7/hour", 7, 3600),
            (" 1 / 2days ", 1, 172_800),
        ];
        for (text, calls, secs) in cases {
            assert_eq!(
                text.parse::<RateLimit>(),
                Ok(RateLimit {
                    calls,
                    per: Duration::from_secs(secs)
                }),
                "{text}"
            );
        }
        assert_eq!(
            RateLimit {
                calls: 4,
                per: MINUTE
            }
            .to_string(),
            "4/min"
        );
        assert_eq!(
            RateLimit {
                calls: 10,
                per: Duration::from_secs(300)
            }
            .to_string(),
            "10/5min"
        );
        assert_eq!(
            RateLimit {
                calls: 500,
                per: DAY
            }
            .to_string(),
            "500/day"
        );
    }

    #[test]
    fn a_rate_limit_without_calls_or_with_an_unknown_period_is_refused_naming_the_forms() {
        for text in [
            "0/min",
            "4",
            "4/",
            "/min",
            "4/fortnight",
            "-1/min",
            "4/0s",
            "x/min",
            "4/min/2",
            "1/1000day",
        ] {
            let err = text.parse::<RateLimit>().unwrap_err();
            assert!(err.contains(&format!("{text:?}")), "{err}");
            assert!(
                err.contains("4/min") || err.contains("at most a year"),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn a_hundred_reports_naming_one_address_make_one_request() {
        let inner = counting();
        let throttled = cached(inner.clone(), Arc::new(MemoryStore::new()), clock());
        for i in 0..100 {
            let answer = throttled
                .inspect(&on(&format!("rep-{i}"), "ipaddr", "198.51.100.7"))
                .await;
            assert_eq!(answer, Ok(host_section(&task("198.51.100.7"))));
        }
        assert_eq!(inner.calls().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hundred_reports_at_once_naming_one_address_make_one_request() {
        let inner = Arc::new(
            TestInspector::new("vt", |t| Ok(host_section(t)))
                .slow(Duration::from_millis(20), Duration::from_secs(5)),
        );
        let throttled = Arc::new(cached(inner.clone(), Arc::new(MemoryStore::new()), clock()));
        let lookups: Vec<_> = (0..100)
            .map(|i| {
                let throttled = throttled.clone();
                tokio::spawn(async move {
                    throttled
                        .inspect(&on(&format!("rep-{i}"), "ipaddr", "198.51.100.7"))
                        .await
                })
            })
            .collect();
        for lookup in lookups {
            assert_eq!(
                lookup.await.unwrap(),
                Ok(host_section(&task("198.51.100.7")))
            );
        }
        assert_eq!(inner.calls().len(), 1);
        assert!(
            throttled.in_flight.lock().unwrap().is_empty(),
            "no lock left behind"
        );
    }

    #[tokio::test]
    async fn an_expired_answer_is_looked_up_again() {
        let inner = counting();
        let clock = clock();
        let throttled = cached(inner.clone(), Arc::new(MemoryStore::new()), clock.clone());
        throttled.inspect(&task("198.51.100.7")).await.unwrap();
        clock.advance(DAY - Duration::from_secs(1));
        throttled.inspect(&task("198.51.100.7")).await.unwrap();
        assert_eq!(inner.calls().len(), 1, "kept for a day");
        clock.advance(Duration::from_secs(1));
        throttled.inspect(&task("198.51.100.7")).await.unwrap();
        assert_eq!(inner.calls().len(), 2, "asked again once it expired");
    }

    #[tokio::test]
    async fn types_tell_answers_apart_but_key_and_context_do_not() {
        let inner = counting();
        let throttled = cached(inner.clone(), Arc::new(MemoryStore::new()), clock());
        throttled
            .inspect(&on("r", "ipaddr", "example.com"))
            .await
            .unwrap();
        throttled
            .inspect(&on("r", "domain", "example.com"))
            .await
            .unwrap();
        let mut other = on("r", "domain", "example.com");
        other.attribute.key = "destination".into();
        other.attribute.context = vec!["local".into()];
        throttled.inspect(&other).await.unwrap();
        assert_eq!(inner.calls(), vec!["example.com", "example.com"]);
        // A value that would read as a type boundary is still its own entry.
        let a = throttled.cache_key(&attribute("ip", "addr\0x"));
        let b = throttled.cache_key(&attribute("ip\0addr", "x"));
        assert_ne!(a, b);
        assert!(a.starts_with("vt:") && a.len() == 3 + 64, "{a}");
    }

    #[tokio::test]
    async fn failures_rate_limits_and_skips_are_never_cached() {
        let answers = Mutex::new(vec![
            Ok(Inspection::default()),
            Err(PluginError::Skipped("not an IP address".into())),
            Err(PluginError::RateLimited { retry_after: None }),
            Err(PluginError::Failed("500".into())),
        ]);
        let inner = Arc::new(TestInspector::new("vt", move |_| {
            answers.lock().unwrap().pop().unwrap()
        }));
        let throttled = cached(inner.clone(), Arc::new(MemoryStore::new()), clock());
        let t = task("198.51.100.7");
        assert!(matches!(
            throttled.inspect(&t).await,
            Err(PluginError::Failed(_))
        ));
        assert!(matches!(
            throttled.inspect(&t).await,
            Err(PluginError::RateLimited { .. })
        ));
        assert!(matches!(
            throttled.inspect(&t).await,
            Err(PluginError::Skipped(_))
        ));
        // Nothing found is an answer: kept.
        assert_eq!(throttled.inspect(&t).await, Ok(Inspection::default()));
        assert_eq!(throttled.inspect(&t).await, Ok(Inspection::default()));
        assert_eq!(inner.calls().len(), 4);
    }

    #[tokio::test]
    async fn a_spent_quota_answers_the_wait_without_asking_the_inspector() {
        let inner = counting();
        let quota = Arc::new(ManualClock::new(t0()));
        let limit = RateLimit {
            calls: 2,
            per: MINUTE,
        };
        let throttled = Throttled::new(
            inner.clone(),
            None,
            Some((Arc::new(MemoryStore::new()), limit)),
            clock(),
            quota.clone(),
        );
        throttled.inspect(&task("198.51.100.1")).await.unwrap();
        throttled.inspect(&task("198.51.100.2")).await.unwrap();
        let (_, left) = rate_window(MINUTE, t0());
        assert_eq!(
            throttled.inspect(&task("198.51.100.3")).await,
            Err(PluginError::RateLimited {
                retry_after: Some(left)
            })
        );
        assert_eq!(inner.calls().len(), 2);
        quota.advance(left);
        throttled.inspect(&task("198.51.100.3")).await.unwrap();
        assert_eq!(inner.calls().len(), 3);
    }

    /// A quota of N per minute is never exceeded: 3×N lookups of distinct values (the
    /// cache cannot help), each retried after the wait it is told, with the wall clock
    /// moving 7 s between calls; every window sees at most N calls, and every lookup
    /// succeeds in the end.
    #[tokio::test]
    async fn a_quota_of_n_per_minute_is_never_exceeded() {
        const N: usize = 4;
        let quota = Arc::new(ManualClock::new(t0()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let inner = {
            let (quota, seen) = (quota.clone(), seen.clone());
            Arc::new(TestInspector::new("vt", move |t| {
                seen.lock().unwrap().push(quota.now());
                Ok(host_section(t))
            }))
        };
        let store = Arc::new(MemoryStore::new());
        let throttled = Throttled::new(
            inner.clone(),
            Some((store.clone(), DAY)),
            Some((
                store,
                RateLimit {
                    calls: N as u32,
                    per: MINUTE,
                },
            )),
            clock(),
            quota.clone(),
        );
        let mut waits = 0;
        for i in 0..3 * N {
            let t = task(&format!("198.51.100.{i}"));
            loop {
                quota.advance(Duration::from_secs(7));
                match throttled.inspect(&t).await {
                    Ok(answer) => {
                        assert_eq!(answer, host_section(&t));
                        break;
                    }
                    Err(PluginError::RateLimited {
                        retry_after: Some(wait),
                    }) => {
                        waits += 1;
                        quota.advance(wait);
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3 * N, "every lookup succeeded once");
        let mut per_window: HashMap<i64, usize> = HashMap::new();
        for at in seen.iter() {
            *per_window.entry(rate_window(MINUTE, *at).0).or_default() += 1;
        }
        assert!(per_window.values().all(|&n| n <= N), "{per_window:?}");
        assert!(waits > 0, "the quota was reached at least once");
    }

    /// A store that fails every call.
    struct Broken;

    #[async_trait]
    impl AnswerCache for Broken {
        async fn get_answer(
            &self,
            _: &str,
            _: DateTime<Utc>,
        ) -> Result<Option<Inspection>, StoreError> {
            Err(StoreError::Transient("down".into()))
        }
        async fn put_answer(
            &self,
            _: &str,
            _: &Inspection,
            _: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            Err(StoreError::Transient("down".into()))
        }
    }

    #[async_trait]
    impl RateLimiter for Broken {
        async fn acquire(
            &self,
            _: &str,
            _: u32,
            _: Duration,
            _: DateTime<Utc>,
        ) -> Result<Option<Duration>, StoreError> {
            Err(StoreError::Transient("down".into()))
        }
    }

    #[tokio::test]
    async fn a_failing_cache_still_answers_but_a_failing_limiter_fails_without_a_call() {
        let inner = counting();
        let clock = clock();
        let uncached = Throttled::new(
            inner.clone(),
            Some((Arc::new(Broken), DAY)),
            None,
            clock.clone(),
            clock.clone(),
        );
        assert_eq!(
            uncached.inspect(&task("198.51.100.7")).await,
            Ok(host_section(&task("198.51.100.7")))
        );
        let unlimited = Throttled::new(
            inner.clone(),
            None,
            Some((
                Arc::new(Broken),
                RateLimit {
                    calls: 4,
                    per: MINUTE,
                },
            )),
            clock.clone(),
            clock,
        );
        let err = unlimited.inspect(&task("198.51.100.8")).await.unwrap_err();
        assert!(
            matches!(&err, PluginError::Failed(m) if m.contains("4/min") && m.contains("down")),
            "{err:?}"
        );
        assert_eq!(inner.calls(), vec!["198.51.100.7"]);
    }

    #[tokio::test]
    async fn name_types_and_timeout_are_the_inspectors() {
        let inner = Arc::new(
            TestInspector::new("abuse", |t| Ok(host_section(t)))
                .accepting(&["ipaddr"])
                .slow(Duration::ZERO, Duration::from_secs(9)),
        );
        let throttled = cached(inner, Arc::new(MemoryStore::new()), clock());
        assert_eq!(throttled.name(), "abuse");
        assert_eq!(throttled.timeout(), Duration::from_secs(9));
        assert!(throttled.accepts(&attribute("ipaddr", "1.2.3.4")));
        assert!(!throttled.accepts(&attribute("domain", "a.example")));
    }

    /// Through the pipeline (memory adapters, virtual time): two reports naming one
    /// address make one request; a third report, once the day's quota is spent, records
    /// the inspection as rate limited, never as nothing found.
    #[tokio::test]
    async fn through_the_pipeline_a_shared_address_is_looked_up_once_and_a_spent_quota_is_rate_limited(
    ) {
        use alertresponder_core::fixtures::raw_alert;
        use alertresponder_core::memory;
        use alertresponder_core::settings::Settings;
        use alertresponder_core::InspectionStatus;

        let clock = clock();
        let (mut p, rt) = memory::pipeline(Settings::default(), clock.clone());
        let inner = counting();
        // The wall clock of quotas stands still: a spent day stays spent.
        let quota = Arc::new(ManualClock::new(t0()));
        let limit = RateLimit { calls: 1, per: DAY };
        p.inspectors = vec![Arc::new(Throttled::new(
            inner.clone(),
            Some((rt.store.clone(), DAY)),
            Some((rt.store.clone(), limit)),
            clock.clone(),
            quota,
        ))];
        for (key, message) in [("k1", "sns-1"), ("k2", "sns-2")] {
            p.receive(
                raw_alert(key, &["198.51.100.7"]).to_string().as_bytes(),
                Some(message),
            )
            .await
            .unwrap();
        }
        rt.run_until(&p, &clock, None).await.unwrap();
        assert_eq!(
            inner.calls(),
            vec!["198.51.100.7"],
            "one request for two reports"
        );
        let published = rt.reports.published();
        assert_eq!(published.len(), 2);
        for r in &published {
            let statuses: Vec<_> = r.inspections.iter().map(|i| i.status).collect();
            assert_eq!(statuses, vec![InspectionStatus::Ok], "{}", r.id);
            assert_eq!(r.sections.len(), 1, "{}", r.id);
        }
        // Another address: the day's one call is spent, and the wait is past the review.
        p.receive(
            raw_alert("k3", &["203.0.113.9"]).to_string().as_bytes(),
            Some("sns-3"),
        )
        .await
        .unwrap();
        rt.run_until(&p, &clock, None).await.unwrap();
        assert_eq!(inner.calls().len(), 1, "never asked past the quota");
        let published = rt.reports.published();
        let third = published.last().unwrap();
        assert_eq!(third.inspections.len(), 1);
        assert_eq!(third.inspections[0].status, InspectionStatus::RateLimited);
        assert!(third.sections.is_empty());
    }
}
