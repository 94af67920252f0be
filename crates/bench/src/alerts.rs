//! The alerts the benchmark sends: deterministic, each with a unique description so
//! that its emission can be recognised, keys dealt round-robin so the alerts of one
//! report arrive spread over the run (as late alerts do in real life).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// A small deterministic generator (SplitMix64): the same run sends the same alerts.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % bound.max(1)
    }
}

/// Distinct values of each attribute type one alert key draws from: five draws per
/// alert over a small pool, so an attribute often repeats within a report, not always.
const VALUES_PER_TYPE: u64 = 8;

/// The description of alert `index` of part 1, by which the emitter recognises it.
pub fn pipeline_description(index: usize) -> String {
    format!("bench alert {index}")
}

/// Alert `index` of part 1: key `index % keys`, five attributes (IP addresses,
/// domains, user names) drawn from that key's pools.
pub fn pipeline_alert(index: usize, keys: usize, now: DateTime<Utc>) -> Vec<u8> {
    let key = index % keys;
    let mut rng = SplitMix64::new(index as u64);
    let attributes: Vec<Value> = ["ipaddr", "domain", "username", "ipaddr", "domain"]
        .iter()
        .map(|kind| {
            let n = rng.below(VALUES_PER_TYPE);
            let (key_name, value, context) = match *kind {
                "ipaddr" => (
                    "source address",
                    format!("10.{}.{}.{}", key / 256, key % 256, n + 1),
                    "remote",
                ),
                "domain" => (
                    "queried domain",
                    format!("host{n}.key{key}.example.net"),
                    "object",
                ),
                _ => ("login user", format!("user{n}-key{key}"), "subject"),
            };
            json!({"type": kind, "key": key_name, "value": value, "context": [context]})
        })
        .collect();
    let alert = json!({
        "detector": "bench",
        "rule_id": format!("rule-{}", key % 10),
        "rule_name": "Benchmark rule",
        "alert_key": format!("key-{key}"),
        "description": pipeline_description(index),
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "attributes": attributes,
    });
    alert.to_string().into_bytes()
}

/// Alert `index` of an HTTP ingest run, as AlertResponder takes it (no attributes,
/// so it carries the same information as the Alertmanager alert beside it).
pub fn ingest_alert(run: &str, index: usize, keys: usize, now: DateTime<Utc>) -> Value {
    let key = index % keys;
    json!({
        "detector": "bench",
        "rule_id": format!("rule-{}", key % 10),
        "rule_name": format!("BenchRule{}", key % 10),
        "alert_key": format!("key-{key}"),
        "description": format!("{run} alert {index}"),
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
}

/// The same alert as Alertmanager's `POST /api/v2/alerts` takes it.
pub fn alertmanager_alert(run: &str, index: usize, keys: usize, now: DateTime<Utc>) -> Value {
    let key = index % keys;
    json!({
        "labels": {
            "alertname": format!("BenchRule{}", key % 10),
            "alert_key": format!("key-{key}"),
            "detector": "bench",
        },
        "annotations": {"description": format!("{run} alert {index}")},
        "startsAt": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_alerts_validate_and_share_attributes_within_a_key() {
        let now = Utc::now();
        let a =
            alertresponder_core::validate::parse_alert(&pipeline_alert(3, 10, now), now).unwrap();
        assert_eq!(a.attributes.len(), 5);
        assert_eq!(a.description, pipeline_description(3));
        let values = |i| {
            alertresponder_core::validate::parse_alert(&pipeline_alert(i, 10, now), now)
                .unwrap()
                .attributes
                .into_iter()
                .map(|a| a.value)
                .collect::<std::collections::HashSet<_>>()
        };
        let same_key: usize = (1..10).map(|k| values(3 + 10 * k).len()).sum();
        let shared: usize = (1..10)
            .map(|k| values(3 + 10 * k).intersection(&values(3)).count())
            .sum();
        assert!(shared > 0 && shared < same_key, "{shared} of {same_key}");
    }

    #[test]
    fn ingest_alerts_validate() {
        let now = Utc::now();
        let raw = ingest_alert("batch", 7, 5, now).to_string();
        let a = alertresponder_core::validate::parse_alert(raw.as_bytes(), now).unwrap();
        assert_eq!(a.alert_key, "key-2");
    }
}
