//! Delivery on the embedded runtime (real SQLite, durable queue, virtual time): each
//! emitter's delivery of each version is a job of its own, retried with backoff or
//! the target's `Retry-After` (up to an hour), failed for good at once when the
//! target rejected it, and recorded in the store's delivery log when it got through.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alertresponder_core::fixtures::raw_alert;
use alertresponder_core::pipeline::Pipeline;
use alertresponder_core::ports::*;
use alertresponder_core::*;
use alertresponder_embedded::runtime::{JobEvent, MAX_RETRY_AFTER};
use alertresponder_embedded::{JobQueue, Runtime, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

fn t0() -> DateTime<Utc> {
    "2026-11-20T10:00:00Z".parse().unwrap()
}

/// An emitter that answers its scripted failures first, then succeeds; it records
/// the (version, attempt) of every call.
struct Scripted {
    name: String,
    failures: Mutex<VecDeque<PluginError>>,
    calls: Mutex<Vec<(u32, u32)>>,
    sent: Mutex<Vec<u32>>,
}

impl Scripted {
    fn new(name: &str, failures: Vec<PluginError>) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            failures: Mutex::new(failures.into()),
            calls: Mutex::new(Vec::new()),
            sent: Mutex::new(Vec::new()),
        })
    }

    /// Versions it took, in order.
    fn sent(&self) -> Vec<u32> {
        self.sent.lock().unwrap().clone()
    }

    /// Every call as (version, attempt).
    fn calls(&self) -> Vec<(u32, u32)> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl Emitter for Scripted {
    fn name(&self) -> &str {
        &self.name
    }

    async fn emit(&self, report: &Report, attempt: u32) -> Result<(), PluginError> {
        self.calls.lock().unwrap().push((report.version, attempt));
        if let Some(e) = self.failures.lock().unwrap().pop_front() {
            return Err(e);
        }
        self.sent.lock().unwrap().push(report.version);
        Ok(())
    }
}

struct Harness {
    runtime: Runtime,
    clock: Arc<ManualClock>,
    store: SqliteStore,
    events: Arc<Mutex<Vec<JobEvent>>>,
}

fn harness(emitters: Vec<Arc<dyn Emitter>>) -> Harness {
    let store = SqliteStore::open_in_memory().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let names = emitters.iter().map(|e| e.name().to_string()).collect();
    let queue = JobQueue::new(store.clone(), clock.clone(), names);
    let pipeline = Pipeline {
        store: Arc::new(store.clone()),
        errors: Arc::new(store.clone()),
        scheduler: Arc::new(queue.clone()),
        tasks: Arc::new(queue.clone()),
        reports: Arc::new(queue.clone()),
        inspectors: vec![],
        reviewers: vec![],
        emitters,
        clock: clock.clone(),
        settings: Settings::default(),
    };
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let runtime = Runtime::new(pipeline, queue, 4).with_observer(Arc::new(move |e| {
        seen.lock().unwrap().push(e.clone());
    }));
    Harness {
        runtime,
        clock,
        store,
        events,
    }
}

impl Harness {
    /// Receives one alert and runs everything; returns its report.
    async fn publish_one(&self) -> String {
        let r = self
            .runtime
            .pipeline()
            .receive(raw_alert("k1", &["192.0.2.1"]).to_string().as_bytes(), None)
            .await
            .unwrap();
        self.runtime.drain_virtual(&self.clock, None).await.unwrap();
        r.report_id
    }

    /// When each retry of `emitter`'s deliveries is due.
    fn retries_of(&self, emitter: &str) -> Vec<DateTime<Utc>> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                JobEvent::Retrying {
                    job: Job::Deliver { emitter: name, .. },
                    at,
                    ..
                } if name == emitter => Some(*at),
                _ => None,
            })
            .collect()
    }

    /// The jobs that failed for good, by name.
    fn failed_for_good(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                JobEvent::Failed { job, .. } => Some(job.name()),
                _ => None,
            })
            .collect()
    }
}

#[tokio::test]
async fn a_rate_limited_delivery_waits_for_the_targets_retry_after_then_gets_through() {
    let limited = Scripted::new(
        "slack",
        vec![PluginError::RateLimited {
            retry_after: Some(Duration::from_secs(600)),
        }],
    );
    let h = harness(vec![limited.clone()]);
    let id = h.publish_one().await;
    let retries = h.retries_of("slack");
    assert_eq!(retries.len(), 1);
    // Published at the review delay; asked to wait ten minutes, not the 2 s backoff.
    let published_at = t0() + Settings::default().review_delay;
    assert_eq!(retries[0], published_at + Duration::from_secs(600));
    assert_eq!(limited.calls(), [(1, 0), (1, 1)]);
    let delivered = h.store.deliveries(&id).await.unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].delivered_at, retries[0]);
}

#[tokio::test]
async fn a_retry_after_of_a_day_is_honoured_for_an_hour_only() {
    let limited = Scripted::new(
        "slack",
        vec![PluginError::RateLimited {
            retry_after: Some(Duration::from_secs(86_400)),
        }],
    );
    let h = harness(vec![limited.clone()]);
    h.publish_one().await;
    let published_at = t0() + Settings::default().review_delay;
    assert_eq!(h.retries_of("slack"), [published_at + MAX_RETRY_AFTER]);
    assert_eq!(limited.sent(), [1]);
}

#[tokio::test]
async fn a_rejected_delivery_fails_for_good_at_once_and_is_kept_the_others_get_through() {
    let github = Scripted::new(
        "github",
        vec![PluginError::Rejected(
            "HTTP 404 from https://api.github.com: Not Found".into(),
        )],
    );
    let flaky = Scripted::new(
        "webhook",
        vec![
            PluginError::Failed("HTTP 503".into()),
            PluginError::Failed("HTTP 503".into()),
        ],
    );
    let slack = Scripted::new("slack", vec![]);
    let h = harness(vec![github.clone(), flaky.clone(), slack.clone()]);
    let id = h.publish_one().await;
    assert_eq!(github.calls(), [(1, 0)], "no retry after a rejection");
    assert_eq!(h.failed_for_good(), [format!("deliver:{id}:1:github")]);
    let kept = h
        .store
        .get_error(&format!("deliver:{id}:1:github"), "deliver")
        .await
        .unwrap()
        .expect("the failed delivery is kept");
    assert!(kept.error.contains("rejected: HTTP 404"), "{}", kept.error);
    let job: Job = serde_json::from_str(&kept.input).unwrap();
    assert_eq!(
        job,
        Job::Deliver {
            report_id: id.clone(),
            version: 1,
            emitter: "github".into()
        }
    );
    // The flaky target got it on its third try, the healthy one at once: once each.
    assert_eq!(flaky.calls(), [(1, 0), (1, 1), (1, 2)]);
    assert_eq!((flaky.sent(), slack.sent()), (vec![1], vec![1]));
    let delivered: Vec<String> = h
        .store
        .deliveries(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.emitter)
        .collect();
    assert_eq!(delivered, ["slack", "webhook"]);
}
