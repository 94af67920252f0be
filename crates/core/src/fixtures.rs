//! Records for tests of stores and handlers (feature `fixtures`): one set, so that
//! the SQLite and DynamoDB stores are tested on the same data.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::model::*;

/// 2023-11-14T22:13:20Z plus `secs`.
pub fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap_or_default()
}

/// A remote source address.
pub fn attr(value: &str) -> Attribute {
    Attribute {
        attr_type: "ipaddr".into(),
        key: "source".into(),
        value: value.into(),
        context: vec!["remote".into()],
        timestamp: None,
    }
}

/// A GuardDuty alert of rule `rule`, key `key`, naming the addresses `values`.
pub fn alert(rule: &str, values: &[&str]) -> Alert {
    Alert {
        detector: "guardduty".into(),
        rule_name: rule.into(),
        rule_id: format!("{rule}-id"),
        alert_key: "key".into(),
        description: String::new(),
        timestamp: t(0),
        attributes: values.iter().map(|v| attr(v)).collect(),
        body: Some(json!({"n": 1.5})),
    }
}

/// A host section on address `value`.
pub fn section(report_id: &str, value: &str, author: &str, country: &str) -> ReportSection {
    ReportSection {
        report_id: report_id.into(),
        author: author.into(),
        attribute: attr(value),
        section_type: "host".into(),
        content: json!({ "country": country }),
    }
}

/// An inspector's outcome on address `value`.
pub fn inspection(value: &str, inspector: &str, status: InspectionStatus) -> InspectionRecord {
    InspectionRecord {
        inspector: inspector.into(),
        attribute: attr(value),
        status,
        detail: None,
        at: t(5),
    }
}

/// A published report version with one alert.
pub fn report(id: &str, version: u32, severity: Severity) -> Report {
    Report {
        id: id.into(),
        alerts: vec![alert("r", &["10.0.0.1"])],
        attributes: vec![],
        sections: vec![],
        result: ReportResult {
            severity,
            reason: "because".into(),
        },
        status: ReportStatus::Published,
        created_at: t(0),
        version,
        previous_result: None,
        inspections: vec![],
        alert_id: "alert:a".into(),
        published_at: Some(t(600 + i64::from(version))),
        cut: None,
    }
}

/// Store contracts: the same checks run on every store (SQLite and DynamoDB), so that
/// a behaviour proven on one holds on the other. Each takes a fresh, empty store.
pub mod contract {
    use super::*;
    use crate::ports::{Admission, Claim, ReportMeta, Store};
    use std::time::Duration;

    /// The aggregation window the contracts use.
    pub const HOUR: Duration = Duration::from_secs(3600);

    /// Opens (or joins) the report of `alert_id` as the receptor of `message_id` would.
    pub async fn opened(
        store: &dyn Store,
        alert_id: &str,
        message_id: &str,
        at: DateTime<Utc>,
    ) -> ReportMeta {
        store
            .open_or_join(alert_id, message_id, &format!("rep-{message_id}"), at, HOUR)
            .await
            .expect("open_or_join")
    }

    /// Receives `a` in one step, as the receptor does.
    pub async fn admitted(
        store: &dyn Store,
        alert_id: &str,
        message_id: &str,
        a: &Alert,
        at: DateTime<Utc>,
    ) -> Admission {
        store
            .open_join_and_put(
                alert_id,
                message_id,
                &format!("rep-{message_id}"),
                a,
                at,
                HOUR,
            )
            .await
            .expect("open_join_and_put")
    }

    /// Claims are new, then seen by others, new again for the same claimer (a retry),
    /// capped per report, per report, and come back in claim order.
    pub async fn attribute_claims(store: &dyn Store) {
        let id = opened(store, "alert:a", "m1", t(0)).await.id;
        let a = attr("10.0.0.1");
        assert!(store.knows_attributes(&id, "m9", &[]).await.unwrap());
        assert!(!store
            .knows_attributes(&id, "m9", &[a.hash()])
            .await
            .unwrap());
        assert_eq!(
            store.claim_attribute(&id, &a, "d1", 2).await.unwrap(),
            Claim::New
        );
        assert!(store
            .knows_attributes(&id, "m9", &[a.hash(), a.hash()])
            .await
            .unwrap());
        assert_eq!(
            store.claim_attribute(&id, &a, "d2", 2).await.unwrap(),
            Claim::Seen
        );
        assert_eq!(
            store.claim_attribute(&id, &a, "d1", 2).await.unwrap(),
            Claim::New
        );
        let b = attr("10.0.0.2");
        assert_eq!(
            store.claim_attribute(&id, &b, "d2", 2).await.unwrap(),
            Claim::New
        );
        let c = attr("10.0.0.3");
        assert_eq!(
            store.claim_attribute(&id, &c, "d2", 2).await.unwrap(),
            Claim::CapReached
        );
        assert!(!store
            .knows_attributes(&id, "m9", &[a.hash(), c.hash()])
            .await
            .unwrap());
        // At the cap, a claimed attribute is still told apart.
        assert_eq!(
            store.claim_attribute(&id, &a, "d3", 2).await.unwrap(),
            Claim::Seen
        );
        // Claims are per report, and come back in claim order.
        let other = opened(store, "alert:b", "m9", t(0)).await.id;
        for v in ["9.9.9.9", "1.1.1.1", "5.5.5.5"] {
            assert_eq!(
                store
                    .claim_attribute(&other, &attr(v), "d", 10)
                    .await
                    .unwrap(),
                Claim::New
            );
        }
        let state = store.load_report(&other).await.unwrap().unwrap();
        let values: Vec<&str> = state.attributes.iter().map(|a| a.value.as_str()).collect();
        assert_eq!(values, ["9.9.9.9", "1.1.1.1", "5.5.5.5"]);
        assert_eq!(
            store.load_report(&id).await.unwrap().unwrap().attributes,
            [a, b]
        );
    }

    /// Attributes first named by an earlier alert are known to other messages, never
    /// to their own (its redelivery must still dispatch), in the one-step receive too.
    pub async fn attribute_mentions(store: &dyn Store) {
        let id = opened(store, "alert:a", "m1", t(0)).await.id;
        let first = alert("r", &["10.0.0.1", "10.0.0.2"]);
        assert!(store.put_alert(&id, "m1", &first, t(0)).await.unwrap());
        let hashes: Vec<String> = first.attributes.iter().map(Attribute::hash).collect();
        // The opener's own mentions do not count: its redelivery must still dispatch.
        assert!(!store.knows_attributes(&id, "m1", &hashes).await.unwrap());
        // A follow-up naming the same attributes needs no dispatch of its own.
        assert!(store.knows_attributes(&id, "m2", &hashes).await.unwrap());
        let second = alert("r", &["10.0.0.2", "10.0.0.3"]);
        let joined = admitted(store, "alert:a", "m2", &second, t(1)).await;
        assert!(joined.inserted && !joined.knows_all_attributes);
        let h3 = second.attributes[1].hash();
        assert!(!store
            .knows_attributes(&id, "m2", &[hashes[1].clone(), h3.clone()])
            .await
            .unwrap());
        // The first to name an attribute keeps it: m1 knows 10.0.0.3 through m2.
        assert!(store.knows_attributes(&id, "m1", &[h3]).await.unwrap());
        // A third alert naming only known attributes: known, in the one-step receive too.
        let third = alert("r", &["10.0.0.3", "10.0.0.1"]);
        assert!(
            admitted(store, "alert:a", "m3", &third, t(2))
                .await
                .knows_all_attributes
        );
        assert!(
            !admitted(store, "alert:a", "m3", &third, t(3))
                .await
                .inserted
        );

        // An alert of more attributes than one transaction holds: every mention is kept.
        let many: Vec<String> = (0..150)
            .map(|i| format!("10.1.{}.{}", i / 200, i % 200))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let big = alert("r", &many);
        let opener = admitted(store, "alert:b", "n1", &big, t(0)).await;
        assert!(opener.inserted && !opener.knows_all_attributes);
        let all: Vec<String> = big.attributes.iter().map(Attribute::hash).collect();
        assert!(store
            .knows_attributes(&opener.meta.id, "n2", &all)
            .await
            .unwrap());
        assert!(store
            .put_alert(&opener.meta.id, "n3", &big, t(1))
            .await
            .unwrap());
    }
}
