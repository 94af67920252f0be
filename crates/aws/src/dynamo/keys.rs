//! The keys of the items (see the table in the module documentation): every one
//! derives from the input, so that a retried write lands on the same item.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::codec::s;
use super::{PK, SK};

/// One DynamoDB item.
pub(super) type Item = HashMap<String, AttributeValue>;
/// The key of an item: (pk, sk).
pub(super) type Key = (String, String);

/// Sort key of a report's meta item.
pub(super) const META_SK: &str = "meta";
/// Sort key of an alert ID's open-report item.
pub(super) const OPEN_SK: &str = "open";
/// Sort key of a cached answer.
pub(super) const ANSWER_SK: &str = "answer";

/// The key attributes of an item, to build on.
pub(super) fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

/// The partition of a report's content.
pub(super) fn report_pk(report_id: &str) -> String {
    format!("report#{report_id}")
}

/// The partition of an alert ID's open report.
pub(super) fn open_pk(alert_id: &str) -> String {
    format!("alert#{alert_id}")
}

/// An alert, by the message that carried it.
pub(super) fn alert_sk(message_id: &str) -> String {
    format!("alert#{message_id}")
}

/// A claimed attribute.
pub(super) fn attr_sk(hash: &str) -> String {
    format!("attr#{hash}")
}

/// The first message to name an attribute.
pub(super) fn mention_sk(hash: &str) -> String {
    format!("mention#{hash}")
}

/// The `index`th section of `author` on an attribute: fixed-width parts first, so
/// that an author's name (free text, may hold `#`) cannot collide with the index.
pub(super) fn section_sk(hash: &str, index: usize, author: &str) -> String {
    format!("section#{hash}#{index:06}#{author}")
}

/// An inspector's outcome on an attribute.
pub(super) fn inspection_sk(hash: &str, inspector: &str) -> String {
    format!("inspection#{hash}#{inspector}")
}

/// The partition of a report's published versions (apart, so that loading a report
/// never reads them).
pub(super) fn published_pk(report_id: &str) -> String {
    format!("published#{report_id}")
}

/// A published version, zero-padded so that versions sort in order.
pub(super) fn published_sk(version: u32) -> String {
    format!("v#{version:010}")
}

/// Prefix of the sort keys of a report's deliveries (one Query lists them).
pub(super) const DELIVERY_PREFIX: &str = "delivery#";

/// One version's delivery to one emitter: the fixed-width version first (so that
/// deliveries sort by version, then emitter name, and a name holding `#` cannot
/// collide with it).
pub(super) fn delivery_sk(version: u32, emitter: &str) -> String {
    format!("{DELIVERY_PREFIX}{version:010}#{emitter}")
}

/// What an emitter remembers about a report.
pub(super) fn memo_sk(emitter: &str) -> String {
    format!("memo#{emitter}")
}

/// The partition of an error record.
pub(super) fn error_pk(id: &str) -> String {
    format!("error#{id}")
}

/// The stage an error record was kept at.
pub(super) fn error_sk(stage: &str) -> String {
    format!("stage#{stage}")
}

/// The partition of a cached inspector answer (the key is the inspector's name and
/// the attribute's hash, chosen by the caller).
pub(super) fn answer_pk(key: &str) -> String {
    format!("answer#{key}")
}

/// The partition of a rate limit's windows.
pub(super) fn rate_pk(key: &str) -> String {
    format!("limit#{key}")
}

/// A rate window, by its start in epoch milliseconds.
pub(super) fn rate_sk(window_start: i64) -> String {
    format!("w#{window_start}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_put_fixed_width_parts_before_free_text() {
        assert_eq!(section_sk("ab", 7, "geo#ip"), "section#ab#000007#geo#ip");
        assert_eq!(published_sk(12), "v#0000000012");
        assert!(published_sk(9) < published_sk(10));
        assert_eq!(delivery_sk(2, "gh#1"), "delivery#0000000002#gh#1");
        assert!(delivery_sk(9, "z") < delivery_sk(10, "a"));
    }
}
