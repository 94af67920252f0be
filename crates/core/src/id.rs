//! Identifiers: alert ID (as DeepAlert computes it), attribute hash, report ID,
//! and the default message ID of an input that carries none.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::model::Attribute;

/// `"alert:" + hex(sha256(b64(detector) + ":" + b64(rule_id) + ":" + b64(alert_key)))`.
pub fn alert_id(detector: &str, rule_id: &str, alert_key: &str) -> String {
    let mut h = Sha256::new();
    h.update(STANDARD.encode(detector));
    h.update(":");
    h.update(STANDARD.encode(rule_id));
    h.update(":");
    h.update(STANDARD.encode(alert_key));
    format!("alert:{}", hex::encode(h.finalize()))
}

/// sha256 over type, key, value, sorted contexts and timestamp, each length-prefixed
/// so that no two different attributes share an encoding.
pub fn attribute_hash(attr: &Attribute) -> String {
    let mut contexts: Vec<&str> = attr.context.iter().map(String::as_str).collect();
    contexts.sort_unstable();
    contexts.dedup();
    let mut h = Sha256::new();
    let mut field = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    field(&attr.attr_type);
    field(&attr.key);
    field(&attr.value);
    field(&contexts.len().to_string());
    for c in contexts {
        field(c);
    }
    field(&attr.timestamp.map(|t| t.to_rfc3339()).unwrap_or_default());
    hex::encode(h.finalize())
}

/// The report ID opened for `alert_id` by message `message_id`: deterministic, so a
/// retried receive opens the same report, in UUID form like DeepAlert's.
pub fn report_id(alert_id: &str, message_id: &str) -> String {
    let d = Sha256::new()
        .chain_update(alert_id)
        .chain_update([0u8])
        .chain_update(message_id)
        .finalize();
    let x = hex::encode(&d[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// Message ID of an input that carries none: the hash of its bytes, so the same
/// bytes delivered twice are one message.
pub fn content_message_id(raw: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(raw)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn alert_id_matches_deepalert_vectors() {
        assert_eq!(
            alert_id("test", "xxx", "k1"),
            "alert:a22eaeb2098946bbadee107b181c26ad82f1b26f973b7df1459892f8d6a2d650"
        );
        assert_eq!(
            alert_id(
                "guardduty",
                "UnauthorizedAccess:EC2/SSHBruteForce",
                "i-0123456789abcdef0"
            ),
            "alert:dfdd031453304044b4ef381b50c0e7712fb1254cdf803995d0eafcbe598e8910"
        );
    }

    #[test]
    fn alert_id_does_not_confuse_field_boundaries() {
        assert_ne!(alert_id("a:b", "c", "d"), alert_id("a", "b:c", "d"));
    }

    fn attr(ctx: &[&str]) -> Attribute {
        Attribute {
            attr_type: "ipaddr".into(),
            key: "src".into(),
            value: "192.0.2.1".into(),
            context: ctx.iter().map(|s| s.to_string()).collect(),
            timestamp: None,
        }
    }

    #[test]
    fn attribute_hash_ignores_context_order() {
        assert_eq!(
            attribute_hash(&attr(&["remote", "client"])),
            attribute_hash(&attr(&["client", "remote"]))
        );
        assert_ne!(
            attribute_hash(&attr(&["remote"])),
            attribute_hash(&attr(&["local"]))
        );
    }

    #[test]
    fn report_id_is_deterministic_and_uuid_shaped() {
        let a = report_id("alert:1", "m1");
        assert_eq!(a, report_id("alert:1", "m1"));
        assert_ne!(a, report_id("alert:1", "m2"));
        assert_eq!(a.len(), 36);
    }

    proptest! {
        #[test]
        fn alert_id_is_stable_and_injective_on_fields(d in ".{0,20}", r in ".{0,20}", k in ".{0,20}", k2 in ".{0,20}") {
            prop_assert_eq!(alert_id(&d, &r, &k), alert_id(&d, &r, &k));
            prop_assert!(alert_id(&d, &r, &k).starts_with("alert:"));
            if k != k2 {
                prop_assert_ne!(alert_id(&d, &r, &k), alert_id(&d, &r, &k2));
            }
        }

        #[test]
        fn attribute_hash_is_independent_of_context_permutation(
            t in "[a-z]{1,8}", v in ".{0,30}", mut ctx in proptest::collection::vec("[a-z]{1,8}", 0..5), seed in any::<u64>()
        ) {
            let a = Attribute { attr_type: t.clone(), key: String::new(), value: v.clone(), context: ctx.clone(), timestamp: None };
            // rotate by a seed-dependent amount, then reverse: any permutation class will do
            if !ctx.is_empty() { let n = (seed as usize) % ctx.len(); ctx.rotate_left(n); ctx.reverse(); }
            let b = Attribute { context: ctx, ..a.clone() };
            prop_assert_eq!(attribute_hash(&a), attribute_hash(&b));
        }

        #[test]
        fn attribute_hash_differs_when_value_differs(v1 in ".{0,30}", v2 in ".{0,30}") {
            prop_assume!(v1 != v2);
            let a = Attribute { attr_type: "domain".into(), key: String::new(), value: v1, context: vec![], timestamp: None };
            let b = Attribute { value: v2, ..a.clone() };
            prop_assert_ne!(attribute_hash(&a), attribute_hash(&b));
        }
    }
}
