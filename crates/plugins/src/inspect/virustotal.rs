//! `kind = "virustotal"`: reputation of an IP address, a domain, a file hash or a URL
//! from the VirusTotal API v3 (header `x-apikey`).
//!
//! | attribute | request | section |
//! |-----------|---------|---------|
//! | `ipaddr` | `GET /api/v3/ip_addresses/{ip}` | `host`: ipaddr, country, as_owner |
//! | `domain` | `GET /api/v3/domains/{domain}` | `host`: the A/AAAA addresses of `last_dns_records` |
//! | `filehashvalue` | `GET /api/v3/files/{md5, sha1 or sha256}` | `binary`: the sample with its positive scans |
//! | `url` | `GET /api/v3/urls/{unpadded URL-safe base64 of the URL}` | `host`: the URL as a related URL |
//!
//! Every section carries `detections` (`last_analysis_stats`: malicious, suspicious,
//! harmless, undetected, timeout) and, when the answer has them, `reputation` and
//! `last_analysis_date`. What the answer teaches comes back as new attributes (a
//! domain's addresses, a file's SHA-256 when asked by MD5 or SHA-1, a URL's final URL),
//! at most [`MAX_ITEMS`]. A 404 (`NotFoundError`) is nothing found; a 429 or a
//! `QuotaExceededError` is rate limited (the public API allows 4 lookups a minute and
//! 500 a day). A value that is not what its API takes (an `ipaddr` that is no IP, a
//! hash that is not MD5/SHA-1/SHA-256 hex, a domain with characters no domain has) is
//! skipped, never sent.

use std::net::IpAddr;
use std::time::Duration;

use alertresponder_core::ports::{Inspection, Inspector};
use alertresponder_core::{Attribute, PluginError, Task};
use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT};
use reqwest::{Client, Url};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::content::{section, Binary, Host, Malware, MalwareScan, RelatedUrl};
use super::{http, BuildContext};
use crate::error::PluginConfigError;
use crate::secret::SecretRef;

/// The API base when `url` is not set.
pub const DEFAULT_URL: &str = "https://www.virustotal.com";

/// The most scans, names, addresses or new attributes taken from one answer.
pub const MAX_ITEMS: usize = 32;

/// Who the sections say the findings come from.
const SOURCE: &str = "VirusTotal";

/// The most characters kept of a string the answer gives.
const MAX_TEXT: usize = 512;

/// The keys of a `virustotal` inspector besides the common ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The API base (default `https://www.virustotal.com`), e.g. an enterprise proxy.
    pub url: Option<String>,
    /// The API key.
    pub api_key: SecretRef,
}

/// Looks attributes up in VirusTotal.
pub struct VirusTotalInspector {
    name: String,
    base: Url,
    client: Client,
    headers: HeaderMap,
    timeout: Duration,
}

impl VirusTotalInspector {
    /// Checks `config` and resolves its key; errors name `ctx.field(..)`.
    pub async fn build(ctx: &BuildContext<'_>, config: Config) -> Result<Self, PluginConfigError> {
        let base = http::api_base(ctx, config.url.as_deref(), DEFAULT_URL)?;
        let key = ctx
            .secrets
            .resolve(&config.api_key, &ctx.field("api_key"))
            .await?;
        let mut headers = HeaderMap::new();
        let (name, value) = http::auth_header(ctx, "x-apikey", &key)?;
        headers.insert(name, value);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        Ok(Self {
            name: ctx.name.to_string(),
            base,
            client: http::client(ctx)?,
            headers,
            timeout: ctx.timeout,
        })
    }
}

/// What one attribute is looked up as.
#[derive(Debug, Clone, PartialEq)]
enum Lookup {
    /// The address and its canonical text.
    Ip(IpAddr, String),
    Domain(String),
    /// Lowercase hex.
    File(String),
    /// The URL as given, and its identifier.
    Url(String, String),
}

impl Lookup {
    fn of(attribute: &Attribute) -> Result<Self, PluginError> {
        let value = attribute.value.trim();
        match attribute.attr_type.as_str() {
            "ipaddr" => http::ip_address(value).map(|ip| Lookup::Ip(ip, ip.to_string())),
            "domain" => http::domain_name(value).map(Lookup::Domain),
            "filehashvalue" => file_hash(value).map(Lookup::File),
            "url" if !value.is_empty() => Ok(Lookup::Url(value.to_string(), url_id(value))),
            "url" => Err(PluginError::Skipped("an empty URL is not looked up".into())),
            other => Err(PluginError::Skipped(format!(
                "{} attributes are not looked up in VirusTotal",
                http::bounded(other, 64)
            ))),
        }
    }

    fn segments(&self) -> [&str; 4] {
        match self {
            Lookup::Ip(_, ip) => ["api", "v3", "ip_addresses", ip],
            Lookup::Domain(d) => ["api", "v3", "domains", d],
            Lookup::File(h) => ["api", "v3", "files", h],
            Lookup::Url(_, id) => ["api", "v3", "urls", id],
        }
    }
}

/// An MD5, SHA-1 or SHA-256 in hex, lowercased.
fn file_hash(value: &str) -> Result<String, PluginError> {
    if matches!(value.len(), 32 | 40 | 64) && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(PluginError::Skipped(format!(
            "{:?} is not an MD5, SHA-1 or SHA-256 hex digest",
            http::bounded(value, 80)
        )))
    }
}

/// VirusTotal's URL identifier: the URL in unpadded URL-safe base64 (RFC 4648 §5; the
/// service canonicalizes it).
pub fn url_id(url: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url.as_bytes())
}

#[async_trait]
impl Inspector for VirusTotalInspector {
    fn name(&self) -> &str {
        &self.name
    }

    fn accepts(&self, attribute: &Attribute) -> bool {
        matches!(
            attribute.attr_type.as_str(),
            "ipaddr" | "domain" | "filehashvalue" | "url"
        )
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn inspect(&self, task: &Task) -> Result<Inspection, PluginError> {
        let lookup = Lookup::of(&task.attribute)?;
        let url = http::with_segments(&self.base, &lookup.segments())?;
        match http::get_json(&self.client, url, &self.headers, self.timeout).await? {
            None => Ok(Inspection::default()),
            Some(answer) => inspection(&lookup, &answer),
        }
    }
}

/// The sections and new attributes of one answer.
fn inspection(lookup: &Lookup, answer: &Value) -> Result<Inspection, PluginError> {
    let attrs = answer
        .pointer("/data/attributes")
        .and_then(Value::as_object)
        .ok_or_else(|| PluginError::InvalidOutput("the answer has no data.attributes".into()))?;
    let analysed = attrs
        .get("last_analysis_date")
        .and_then(Value::as_i64)
        .and_then(|t| DateTime::from_timestamp(t, 0));
    let mut extra = common_extra(attrs, analysed);
    let mut new_attributes = Vec::new();
    let text = |key: &str| {
        attrs
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| http::bounded(s, MAX_TEXT))
    };
    let sections = match lookup {
        Lookup::Ip(_, ip) => {
            for key in ["asn", "network"] {
                if let Some(v) = attrs.get(key).filter(|v| v.is_u64() || v.is_string()) {
                    extra.insert(key.into(), bounded_value(v));
                }
            }
            let host = Host {
                ipaddr: vec![ip.clone()],
                country: text("country").into_iter().collect(),
                as_owner: text("as_owner").into_iter().collect(),
                ..Host::default()
            };
            vec![section("host", &host, extra)]
        }
        Lookup::Domain(_) => {
            let mut addresses: Vec<String> = Vec::new();
            for record in attrs
                .get("last_dns_records")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let kind = record.get("type").and_then(Value::as_str);
                let value = record.get("value").and_then(Value::as_str);
                if let (Some("A" | "AAAA"), Some(Ok(ip))) = (kind, value.map(str::parse::<IpAddr>))
                {
                    let ip = ip.to_string();
                    if !addresses.contains(&ip) && addresses.len() < MAX_ITEMS {
                        addresses.push(ip);
                    }
                }
            }
            if let Some(registrar) = text("registrar") {
                extra.insert("registrar".into(), json!(registrar));
            }
            new_attributes.extend(
                addresses
                    .iter()
                    .map(|ip| related("ipaddr", "resolved address", ip)),
            );
            let host = Host {
                ipaddr: addresses,
                ..Host::default()
            };
            vec![section("host", &host, extra)]
        }
        Lookup::File(asked) => {
            let sha256 = text("sha256")
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(|h| h.to_ascii_lowercase())
                .or_else(|| (asked.len() == 64).then(|| asked.clone()))
                .unwrap_or_default();
            if !sha256.is_empty() && sha256 != *asked {
                new_attributes.push(related("filehashvalue", "sha256", &sha256));
            }
            let names: Vec<Value> = attrs
                .get("names")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .take(MAX_ITEMS)
                .map(|n| json!(http::bounded(n, MAX_TEXT)))
                .collect();
            if !names.is_empty() {
                extra.insert("names".into(), Value::Array(names));
            }
            if let Some(t) = text("type_description") {
                extra.insert("type_description".into(), json!(t));
            }
            let binary = Binary {
                related_malware: vec![Malware {
                    sha256,
                    timestamp: analysed,
                    scans: positive_scans(attrs),
                    relation: String::new(),
                }],
                ..Binary::default()
            };
            vec![section("binary", &binary, extra)]
        }
        Lookup::Url(asked, _) => {
            let url = text("url").unwrap_or_else(|| http::bounded(asked, MAX_TEXT));
            let reference = answer
                .pointer("/data/id")
                .and_then(Value::as_str)
                .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(|id| format!("https://www.virustotal.com/gui/url/{id}"))
                .unwrap_or_default();
            for key in ["title", "last_final_url"] {
                if let Some(t) = text(key) {
                    extra.insert(key.into(), json!(t));
                }
            }
            if let Some(code) = attrs.get("last_http_response_code").filter(|v| v.is_u64()) {
                extra.insert("last_http_response_code".into(), code.clone());
            }
            if let Some(last) = text("last_final_url").filter(|l| l != asked && *l != url) {
                new_attributes.push(related("url", "final URL", &last));
            }
            let host = Host {
                related_urls: vec![RelatedUrl {
                    url,
                    reference,
                    timestamp: analysed,
                    source: SOURCE.into(),
                }],
                ..Host::default()
            };
            vec![section("host", &host, extra)]
        }
    };
    new_attributes.truncate(MAX_ITEMS);
    Ok(Inspection {
        sections,
        new_attributes,
    })
}

/// `detections`, `reputation` and `last_analysis_date`, when the answer has them.
fn common_extra(attrs: &Map<String, Value>, analysed: Option<DateTime<Utc>>) -> Map<String, Value> {
    let mut extra = Map::new();
    if let Some(stats) = attrs.get("last_analysis_stats").and_then(Value::as_object) {
        let count = |k: &str| stats.get(k).and_then(Value::as_u64).unwrap_or(0);
        extra.insert(
            "detections".into(),
            json!({
                "malicious": count("malicious"),
                "suspicious": count("suspicious"),
                "harmless": count("harmless"),
                "undetected": count("undetected"),
                "timeout": count("timeout"),
            }),
        );
    }
    if let Some(r) = attrs.get("reputation").and_then(Value::as_i64) {
        extra.insert("reputation".into(), json!(r));
    }
    if let Some(at) = analysed {
        extra.insert("last_analysis_date".into(), json!(at.to_rfc3339()));
    }
    extra
}

/// The engines that flag the sample (`malicious` or `suspicious`), at most [`MAX_ITEMS`].
fn positive_scans(attrs: &Map<String, Value>) -> Vec<MalwareScan> {
    attrs
        .get("last_analysis_results")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, r)| {
            matches!(
                r.get("category").and_then(Value::as_str),
                Some("malicious" | "suspicious")
            )
        })
        .take(MAX_ITEMS)
        .map(|(engine, r)| MalwareScan {
            vendor: http::bounded(
                r.get("engine_name")
                    .and_then(Value::as_str)
                    .unwrap_or(engine),
                MAX_TEXT,
            ),
            name: http::bounded(
                r.get("result").and_then(Value::as_str).unwrap_or_default(),
                MAX_TEXT,
            ),
            positive: true,
            source: SOURCE.into(),
        })
        .collect()
}

fn bounded_value(v: &Value) -> Value {
    match v {
        Value::String(s) => json!(http::bounded(s, MAX_TEXT)),
        other => other.clone(),
    }
}

/// A new attribute the answer taught.
fn related(attr_type: &str, key: &str, value: &str) -> Attribute {
    Attribute {
        attr_type: attr_type.into(),
        key: format!("{key} (VirusTotal)"),
        value: value.into(),
        context: vec!["related".into()],
        timestamp: None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    use super::*;
    use crate::test_support::{attribute, task, EnvSecret};

    const KEY_VAR: &str = "AR_TEST_VT_API_KEY";

    /// `env KEY_VAR` is the test key, without touching the process's environment.
    const TEST_SECRETS: EnvSecret = EnvSecret {
        name: KEY_VAR,
        value: "vt-s3cret",
    };

    async fn inspector_at(url: &str, timeout: Duration) -> VirusTotalInspector {
        let secrets = TEST_SECRETS;
        let ctx = BuildContext {
            name: "vt",
            key: "inspector[0]",
            timeout,
            secrets: &secrets,
            base_dir: Path::new("/nonexistent"),
        };
        let config: Config = toml::from_str(&format!(
            "url = \"{url}\"\napi_key = {{ env = \"{KEY_VAR}\" }}"
        ))
        .unwrap();
        VirusTotalInspector::build(&ctx, config).await.unwrap()
    }

    async fn inspector(server: &MockServer) -> VirusTotalInspector {
        inspector_at(&server.uri(), Duration::from_secs(5)).await
    }

    fn on(attr_type: &str, value: &str) -> Task {
        Task {
            attribute: attribute(attr_type, value),
            ..task(value)
        }
    }

    /// Answers `body` to exactly one GET of `p` with the key, and nothing else.
    async fn expect(server: &MockServer, p: &str, response: ResponseTemplate) {
        Mock::given(method("GET"))
            .and(path(p))
            .and(header("x-apikey", "vt-s3cret"))
            .and(header("accept", "application/json"))
            .respond_with(response)
            .expect(1)
            .mount(server)
            .await;
    }

    fn ip_object() -> Value {
        // The IP address object's documented attributes (docs.virustotal.com/docs/ip-object).
        json!({"data": {
            "attributes": {
                "as_owner": "GOOGLE",
                "asn": 15169,
                "continent": "NA",
                "country": "US",
                "jarm": "29d3fd00029d29d00042d43d00041d598ac0c1012db967bb1ad0ff2491b3ae",
                "last_analysis_date": 1_700_000_000,
                "last_analysis_results": {
                    "Abusix": {"category": "harmless", "engine_name": "Abusix", "method": "blacklist", "result": "clean"},
                    "BitDefender": {"category": "malicious", "engine_name": "BitDefender", "method": "blacklist", "result": "malware"}
                },
                "last_analysis_stats": {"harmless": 61, "malicious": 1, "suspicious": 0, "timeout": 0, "undetected": 27},
                "network": "8.8.8.0/24",
                "regional_internet_registry": "ARIN",
                "reputation": 540,
                "tags": [],
                "total_votes": {"harmless": 200, "malicious": 30},
                "whois": "NetRange: 8.8.8.0 - 8.8.8.255"
            },
            "id": "8.8.8.8",
            "links": {"self": "https://www.virustotal.com/api/v3/ip_addresses/8.8.8.8"},
            "type": "ip_address"
        }})
    }

    #[tokio::test]
    async fn an_ip_address_becomes_a_host_section_with_detections() {
        let server = MockServer::start().await;
        expect(
            &server,
            "/api/v3/ip_addresses/8.8.8.8",
            ResponseTemplate::new(200).set_body_json(ip_object()),
        )
        .await;
        let got = inspector(&server)
            .await
            .inspect(&task("8.8.8.8"))
            .await
            .unwrap();
        assert_eq!(got.sections.len(), 1);
        assert_eq!(got.sections[0].section_type, "host");
        assert_eq!(
            got.sections[0].content,
            json!({
                "ipaddr": ["8.8.8.8"],
                "country": ["US"],
                "as_owner": ["GOOGLE"],
                "detections": {"malicious": 1, "suspicious": 0, "harmless": 61, "undetected": 27, "timeout": 0},
                "reputation": 540,
                "last_analysis_date": "2023-11-14T22:13:20+00:00",
                "asn": 15169,
                "network": "8.8.8.0/24"
            })
        );
        assert!(got.new_attributes.is_empty());
    }

    #[tokio::test]
    async fn a_base_path_of_a_proxy_is_kept() {
        let server = MockServer::start().await;
        expect(
            &server,
            "/vt/api/v3/ip_addresses/2001:db8::1",
            ResponseTemplate::new(200).set_body_json(ip_object()),
        )
        .await;
        let vt = inspector_at(&format!("{}/vt/", server.uri()), Duration::from_secs(5)).await;
        vt.inspect(&task("2001:db8::1")).await.unwrap();
    }

    #[tokio::test]
    async fn a_domain_feeds_back_its_resolved_addresses() {
        let server = MockServer::start().await;
        let body = json!({"data": {
            "attributes": {
                "last_analysis_stats": {"harmless": 66, "malicious": 0, "suspicious": 0, "timeout": 0, "undetected": 22},
                "last_dns_records": [
                    {"type": "A", "ttl": 300, "value": "93.184.216.34"},
                    {"type": "AAAA", "ttl": 300, "value": "2606:2800:220:1:248:1893:25c8:1946"},
                    {"type": "A", "ttl": 300, "value": "93.184.216.34"},
                    {"type": "NS", "ttl": 86400, "value": "a.iana-servers.net"},
                    {"type": "A", "ttl": 300, "value": "not an address"}
                ],
                "last_dns_records_date": 1_700_000_000,
                "registrar": "RESERVED-Internet Assigned Numbers Authority",
                "reputation": 0
            },
            "id": "example.com",
            "links": {"self": "https://www.virustotal.com/api/v3/domains/example.com"},
            "type": "domain"
        }});
        expect(
            &server,
            "/api/v3/domains/example.com",
            ResponseTemplate::new(200).set_body_json(body),
        )
        .await;
        let got = inspector(&server)
            .await
            .inspect(&on("domain", "Example.COM."))
            .await
            .unwrap();
        assert_eq!(
            got.sections[0].content,
            json!({
                "ipaddr": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
                "detections": {"malicious": 0, "suspicious": 0, "harmless": 66, "undetected": 22, "timeout": 0},
                "reputation": 0,
                "registrar": "RESERVED-Internet Assigned Numbers Authority"
            })
        );
        let values: Vec<(&str, &str)> = got
            .new_attributes
            .iter()
            .map(|a| (a.attr_type.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            values,
            [
                ("ipaddr", "93.184.216.34"),
                ("ipaddr", "2606:2800:220:1:248:1893:25c8:1946")
            ]
        );
    }

    #[tokio::test]
    async fn a_file_hash_becomes_a_binary_section_with_positive_scans_only() {
        let server = MockServer::start().await;
        let sha256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
        let mut results = Map::new();
        results.insert(
            "Kaspersky".into(),
            json!({"category": "malicious", "engine_name": "Kaspersky", "engine_update": "20231114",
                   "engine_version": "22.0.1.28", "method": "blacklist", "result": "EICAR-Test-File"}),
        );
        results.insert(
            "Avast".into(),
            json!({"category": "undetected", "engine_name": "Avast", "method": "blacklist", "result": null}),
        );
        for i in 0..40 {
            results.insert(
                format!("Engine{i:02}"),
                json!({"category": "suspicious", "engine_name": format!("Engine{i:02}"), "result": "Heur"}),
            );
        }
        let body = json!({"data": {
            "attributes": {
                "md5": "44d88612fea8a8f36de82e1278abb02f",
                "sha1": "3395856ce81f2b7382dee72602f798b642f14140",
                "sha256": sha256,
                "names": ["eicar.com", "eicar.txt"],
                "type_description": "Text",
                "size": 68,
                "last_analysis_date": 1_700_000_000,
                "last_analysis_results": results,
                "last_analysis_stats": {"confirmed-timeout": 0, "failure": 0, "harmless": 0, "malicious": 62,
                    "suspicious": 40, "timeout": 0, "type-unsupported": 5, "undetected": 7},
                "reputation": -20
            },
            "id": sha256,
            "links": {"self": format!("https://www.virustotal.com/api/v3/files/{sha256}")},
            "type": "file"
        }});
        expect(
            &server,
            "/api/v3/files/44d88612fea8a8f36de82e1278abb02f",
            ResponseTemplate::new(200).set_body_json(body),
        )
        .await;
        let got = inspector(&server)
            .await
            .inspect(&on("filehashvalue", "44D88612FEA8A8F36DE82E1278ABB02F"))
            .await
            .unwrap();
        let content = &got.sections[0].content;
        assert_eq!(got.sections[0].section_type, "binary");
        assert_eq!(content["names"], json!(["eicar.com", "eicar.txt"]));
        assert_eq!(content["type_description"], "Text");
        assert_eq!(content["detections"]["malicious"], 62);
        let sample = &content["related_malware"][0];
        assert_eq!(sample["sha256"], sha256);
        let scans = sample["scans"].as_array().unwrap();
        assert_eq!(scans.len(), MAX_ITEMS);
        assert!(scans
            .iter()
            .all(|s| s["positive"] == true && s["vendor"] != "Avast"));
        assert_eq!(
            scans[0],
            json!({"vendor": "Engine00", "name": "Heur", "positive": true, "source": "VirusTotal"})
        );
        assert_eq!(got.new_attributes.len(), 1);
        assert_eq!(
            (
                got.new_attributes[0].attr_type.as_str(),
                got.new_attributes[0].value.as_str()
            ),
            ("filehashvalue", sha256)
        );
    }

    #[tokio::test]
    async fn a_url_is_asked_by_its_unpadded_url_safe_base64_id() {
        let asked = "http://example.com/a?b=c&d=<>";
        let id = url_id(asked);
        assert!(
            !id.contains('=') && !id.contains('/') && !id.contains('+'),
            "{id}"
        );
        assert_eq!(
            url_id("http://www.example.com/"),
            "aHR0cDovL3d3dy5leGFtcGxlLmNvbS8"
        );
        let server = MockServer::start().await;
        let canonical = "e2d3b1c9ecf0cbf5fd1d3a5ef3b2a4b3c0e1e5c6a3b1f2e3d4c5b6a7f8e9d0c1";
        let body = json!({"data": {
            "attributes": {
                "url": asked,
                "last_final_url": "https://example.com/landing",
                "title": "Example Domain",
                "last_http_response_code": 200,
                "last_analysis_date": 1_700_000_000,
                "last_analysis_stats": {"harmless": 70, "malicious": 2, "suspicious": 1, "timeout": 0, "undetected": 15},
                "reputation": -3,
                "times_submitted": 12
            },
            "id": canonical,
            "links": {"self": format!("https://www.virustotal.com/api/v3/urls/{canonical}")},
            "type": "url"
        }});
        expect(
            &server,
            &format!("/api/v3/urls/{id}"),
            ResponseTemplate::new(200).set_body_json(body),
        )
        .await;
        let got = inspector(&server)
            .await
            .inspect(&on("url", asked))
            .await
            .unwrap();
        let content = &got.sections[0].content;
        assert_eq!(
            content["related_urls"],
            json!([{"url": asked, "reference": format!("https://www.virustotal.com/gui/url/{canonical}"),
                    "timestamp": "2023-11-14T22:13:20Z", "source": "VirusTotal"}])
        );
        assert_eq!(content["detections"]["malicious"], 2);
        assert_eq!(content["last_http_response_code"], 200);
        assert_eq!(got.new_attributes[0].value, "https://example.com/landing");
        let requests = server.received_requests().await.unwrap_or_default();
        assert_eq!(requests[0].url.query(), None);
    }

    #[tokio::test]
    async fn not_found_is_an_empty_inspection() {
        let server = MockServer::start().await;
        expect(
            &server,
            "/api/v3/domains/unknown.example",
            ResponseTemplate::new(404).set_body_json(json!({"error": {
                "code": "NotFoundError", "message": "Domain \"unknown.example\" not found"}})),
        )
        .await;
        let got = inspector(&server)
            .await
            .inspect(&on("domain", "unknown.example"))
            .await
            .unwrap();
        assert_eq!(got, Inspection::default());
    }

    #[tokio::test]
    async fn a_429_or_a_quota_error_is_rate_limited_never_empty() {
        let server = MockServer::start().await;
        expect(
            &server,
            "/api/v3/ip_addresses/192.0.2.1",
            ResponseTemplate::new(429)
                .insert_header("retry-after", "60")
                .set_body_json(
                    json!({"error": {"code": "QuotaExceededError", "message": "Quota exceeded"}}),
                ),
        )
        .await;
        assert_eq!(
            inspector(&server)
                .await
                .inspect(&task("192.0.2.1"))
                .await
                .unwrap_err(),
            PluginError::RateLimited {
                retry_after: Some(Duration::from_secs(60))
            }
        );
        let server = MockServer::start().await;
        expect(
            &server,
            "/api/v3/ip_addresses/192.0.2.1",
            ResponseTemplate::new(429).set_body_json(
                json!({"error": {"code": "TooManyRequestsError", "message": "Too many requests"}}),
            ),
        )
        .await;
        assert_eq!(
            inspector(&server)
                .await
                .inspect(&task("192.0.2.1"))
                .await
                .unwrap_err(),
            PluginError::RateLimited { retry_after: None }
        );
    }

    #[tokio::test]
    async fn a_server_error_fails_with_the_vendor_message_and_no_key() {
        let server = MockServer::start().await;
        expect(
            &server,
            "/api/v3/ip_addresses/192.0.2.1",
            ResponseTemplate::new(503).set_body_json(json!({"error": {
                "code": "TransientError", "message": "Transient server error. Retry might work."}})),
        )
        .await;
        let e = inspector(&server)
            .await
            .inspect(&task("192.0.2.1"))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            PluginError::Failed(format!(
                "HTTP 503 from {}/api/v3/ip_addresses/192.0.2.1: TransientError Transient server error. Retry might work.",
                server.uri()
            ))
        );
    }

    #[tokio::test]
    async fn a_wrong_key_fails_and_a_redirect_is_not_followed() {
        let server = MockServer::start().await;
        expect(
            &server,
            "/api/v3/domains/example.com",
            ResponseTemplate::new(401).set_body_json(json!({"error": {
                "code": "WrongCredentialsError", "message": "Wrong API key"}})),
        )
        .await;
        let e = inspector(&server)
            .await
            .inspect(&on("domain", "example.com"))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, PluginError::Failed(m) if m.contains("HTTP 401") && m.contains("WrongCredentialsError")),
            "{e:?}"
        );
        let server = MockServer::start().await;
        expect(
            &server,
            "/api/v3/domains/example.com",
            ResponseTemplate::new(301).insert_header(
                "location",
                "https://elsewhere.example/api/v3/domains/example.com",
            ),
        )
        .await;
        assert_eq!(
            inspector(&server)
                .await
                .inspect(&on("domain", "example.com"))
                .await
                .unwrap_err(),
            PluginError::Failed("redirected to elsewhere.example: not followed".into())
        );
    }

    #[tokio::test]
    async fn a_slow_answer_times_out() {
        let server = MockServer::start().await;
        expect(
            &server,
            "/api/v3/ip_addresses/192.0.2.1",
            ResponseTemplate::new(200)
                .set_body_json(ip_object())
                .set_delay(Duration::from_secs(5)),
        )
        .await;
        let timeout = Duration::from_millis(200);
        let vt = inspector_at(&server.uri(), timeout).await;
        assert_eq!(vt.timeout(), timeout);
        assert_eq!(
            vt.inspect(&task("192.0.2.1")).await.unwrap_err(),
            PluginError::TimedOut(timeout)
        );
    }

    #[tokio::test]
    async fn hostile_values_are_skipped_or_stay_one_segment() {
        let server = MockServer::start().await;
        let vt = inspector(&server).await;
        for (t, v) in [
            ("ipaddr", "../../users/me"),
            ("ipaddr", "1.2.3.4?x="),
            ("domain", "a/b#c"),
            ("domain", "../../users/me"),
            ("domain", "1.2.3.4?x="),
            ("domain", ".."),
            ("filehashvalue", "../../users/me"),
            ("filehashvalue", "44d88612fea8a8f36de82e1278abb02?"),
            ("username", "root"),
        ] {
            let e = vt.inspect(&on(t, v)).await.unwrap_err();
            assert!(matches!(e, PluginError::Skipped(_)), "{t} {v}: {e:?}");
        }
        assert!(server
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty());
        // A URL is sent, as one base64 segment, whatever it holds.
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(404))
            .mount(&server)
            .await;
        for hostile in ["../../users/me", "1.2.3.4?x=", "a/b#c"] {
            vt.inspect(&on("url", hostile)).await.unwrap();
        }
        let paths: Vec<String> = server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r: &Request| {
                format!(
                    "{}{}",
                    r.url.path(),
                    r.url.query().map(|q| format!("?{q}")).unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(
            paths,
            [
                "/api/v3/urls/Li4vLi4vdXNlcnMvbWU",
                "/api/v3/urls/MS4yLjMuND94PQ",
                "/api/v3/urls/YS9iI2M"
            ]
        );
    }

    #[tokio::test]
    async fn it_accepts_the_four_types_and_its_config_checks_url_and_key() {
        let vt = inspector_at("http://127.0.0.1:9", Duration::from_secs(1)).await;
        for t in ["ipaddr", "domain", "filehashvalue", "url"] {
            assert!(vt.accepts(&attribute(t, "x")), "{t}");
        }
        assert!(!vt.accepts(&attribute("username", "x")));
        assert_eq!(vt.name(), "vt");
        let secrets = TEST_SECRETS;
        let ctx = BuildContext {
            name: "vt",
            key: "inspector[3]",
            timeout: Duration::from_secs(1),
            secrets: &secrets,
            base_dir: Path::new("/nonexistent"),
        };
        let bad_url: Config = toml::from_str(
            "url = \"http://vt.example\"\napi_key = { env = \"AR_TEST_VT_API_KEY\" }",
        )
        .unwrap();
        let e = VirusTotalInspector::build(&ctx, bad_url)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("inspector[3].url: "), "{e}");
        let missing: Config =
            toml::from_str("api_key = { env = \"AR_TEST_VT_SURELY_UNSET\" }").unwrap();
        let e = VirusTotalInspector::build(&ctx, missing)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("inspector[3].api_key: ") && e.contains("AR_TEST_VT_SURELY_UNSET"),
            "{e}"
        );
        assert!(toml::from_str::<Config>("api_key = { env = \"K\" }\nmax_age_days = 3").is_err());
        assert!(
            toml::from_str::<Config>("url = \"https://x\"").is_err(),
            "api_key is required"
        );
    }
}
