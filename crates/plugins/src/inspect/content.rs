//! DeepAlert's section contents, typed, for the built-ins to fill: `host`, `user` and
//! `binary`, with the field names a DeepAlert consumer reads. Empty fields are left
//! out of the JSON. A built-in may add fields of its own beside them (e.g.
//! `detections`), which a DeepAlert consumer ignores and a Rego policy can read.

use alertresponder_core::ports::SectionDraft;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// A domain related to an entity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Domain {
    /// The domain name.
    pub name: String,
    /// When the relation was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
    /// Who says so (the inspector's service).
    pub source: String,
}

/// A URL related to an entity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelatedUrl {
    /// The URL, as the service wrote it.
    pub url: String,
    /// Where to read more.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reference: String,
    /// When the relation was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
    /// Who says so.
    pub source: String,
}

/// One engine's verdict on a sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MalwareScan {
    /// The engine.
    pub vendor: String,
    /// Its name for the sample.
    pub name: String,
    /// Whether it flags it.
    pub positive: bool,
    /// Who reported the scan.
    pub source: String,
}

/// A sample related to an entity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Malware {
    /// The sample's SHA-256.
    pub sha256: String,
    /// When the relation was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
    /// The engines' verdicts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scans: Vec<MalwareScan>,
    /// How it relates (`communicating`, `downloaded`, `referrer`…).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub relation: String,
}

/// Something an entity did.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Activity {
    /// The action (`ConsoleLogin`, `RunInstances`…).
    pub action: String,
    /// What it acted on.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// From where.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote_addr: String,
    /// Who.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub principal: String,
    /// When.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
    /// The service (`iam.amazonaws.com`…).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub service_name: String,
}

/// A `host` section's content.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Host {
    /// Its addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ipaddr: Vec<String>,
    /// Countries (ISO 3166 codes where known).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub country: Vec<String>,
    /// Autonomous-system owners.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub as_owner: Vec<String>,
    /// Related domains.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related_domains: Vec<Domain>,
    /// Related URLs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related_urls: Vec<RelatedUrl>,
    /// Related samples.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related_malware: Vec<Malware>,
    /// What it did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub activities: Vec<Activity>,
    /// Users on it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub username: Vec<String>,
    /// Who owns it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub owner: Vec<String>,
    /// Operating systems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub os: Vec<String>,
    /// MAC addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub macaddr: Vec<String>,
    /// Host names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hostname: Vec<String>,
    /// Software on it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub software: Vec<String>,
}

/// A `user` section's content.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct User {
    /// What the user did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub activities: Vec<Activity>,
}

/// A `binary` section's content.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Binary {
    /// Related samples (the sample itself, with its scans).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related_malware: Vec<Malware>,
    /// Software it belongs to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub software: Vec<String>,
    /// Operating systems it runs on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub os: Vec<String>,
    /// What it did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub activities: Vec<Activity>,
}

/// A section of `section_type` with `content`, and `extra` fields of the built-in's own
/// merged beside the DeepAlert ones (a DeepAlert field is never overwritten).
pub fn section(
    section_type: &str,
    content: &impl Serialize,
    extra: Map<String, Value>,
) -> SectionDraft {
    let mut fields = match serde_json::to_value(content) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (k, v) in extra {
        fields.entry(k).or_insert(v);
    }
    SectionDraft {
        section_type: section_type.to_string(),
        content: Value::Object(fields),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_fields_are_left_out_and_extras_never_overwrite() {
        let host = Host {
            ipaddr: vec!["192.0.2.1".into()],
            country: vec!["NL".into()],
            ..Host::default()
        };
        let mut extra = Map::new();
        extra.insert("detections".into(), json!({"malicious": 3}));
        extra.insert("country".into(), json!("overwritten?"));
        let s = section("host", &host, extra);
        assert_eq!(s.section_type, "host");
        assert_eq!(
            s.content,
            json!({"ipaddr": ["192.0.2.1"], "country": ["NL"], "detections": {"malicious": 3}})
        );
    }
}
