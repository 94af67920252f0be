//! `kind = "abuseipdb"`: abuse reports on an IP address from the AbuseIPDB API v2,
//! `GET /api/v2/check?ipAddress={ip}&maxAgeInDays={n}` with the headers
//! `Key: {api key}` and `Accept: application/json`.
//!
//! Only `ipaddr` attributes, and only values that parse as an IP address (anything else
//! is skipped, never sent). The answer becomes a `host` section (ipaddr, country) with
//! an `abuse` field: confidence (0–100), reports, distinct_users, last_reported_at,
//! isp, usage_type, domain, whitelisted, tor. A clean answer (score 0, no report) is
//! still a section: "clean per AbuseIPDB" is a finding. The `domain` AbuseIPDB gives
//! comes back as a new `domain` attribute. A 429 (the free plan allows 1,000 checks a
//! day) is rate limited, with its `Retry-After`.

use std::time::Duration;

use alertresponder_core::ports::{Inspection, Inspector};
use alertresponder_core::{Attribute, PluginError, Task};
use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT};
use reqwest::{Client, Url};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::content::{section, Host};
use super::{http, BuildContext};
use crate::error::PluginConfigError;
use crate::secret::SecretRef;

/// The API base when `url` is not set.
pub const DEFAULT_URL: &str = "https://api.abuseipdb.com";

/// How far back reports count when `max_age_days` is not set.
pub const DEFAULT_MAX_AGE_DAYS: u32 = 90;

/// The most characters kept of a string the answer gives.
const MAX_TEXT: usize = 512;

/// The keys of an `abuseipdb` inspector besides the common ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The API base (default `https://api.abuseipdb.com`).
    pub url: Option<String>,
    /// The API key.
    pub api_key: SecretRef,
    /// Reports older than this many days are not counted (1–365, default 90).
    pub max_age_days: Option<u32>,
}

/// Looks IP addresses up in AbuseIPDB.
pub struct AbuseIpDbInspector {
    name: String,
    /// `{base}/api/v2/check`.
    check: Url,
    max_age_days: u32,
    client: Client,
    headers: HeaderMap,
    timeout: Duration,
}

impl AbuseIpDbInspector {
    /// Checks `config` and resolves its key; errors name `ctx.field(..)`.
    pub async fn build(ctx: &BuildContext<'_>, config: Config) -> Result<Self, PluginConfigError> {
        let base = http::api_base(ctx, config.url.as_deref(), DEFAULT_URL)?;
        let max_age_days = config.max_age_days.unwrap_or(DEFAULT_MAX_AGE_DAYS);
        if !(1..=365).contains(&max_age_days) {
            return Err(ctx.invalid(
                "max_age_days",
                format!("{max_age_days} is out of range: AbuseIPDB takes 1 to 365 days"),
            ));
        }
        let key = ctx
            .secrets
            .resolve(&config.api_key, &ctx.field("api_key"))
            .await?;
        let mut headers = HeaderMap::new();
        let (name, value) = http::auth_header(ctx, "key", &key)?;
        headers.insert(name, value);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let check = http::with_segments(&base, &["api", "v2", "check"])
            .map_err(|e| ctx.invalid("url", e.to_string()))?;
        Ok(Self {
            name: ctx.name.to_string(),
            check,
            max_age_days,
            client: http::client(ctx)?,
            headers,
            timeout: ctx.timeout,
        })
    }
}

#[async_trait]
impl Inspector for AbuseIpDbInspector {
    fn name(&self) -> &str {
        &self.name
    }

    fn accepts(&self, attribute: &Attribute) -> bool {
        attribute.attr_type == "ipaddr"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn inspect(&self, task: &Task) -> Result<Inspection, PluginError> {
        if task.attribute.attr_type != "ipaddr" {
            return Err(PluginError::Skipped(format!(
                "{} attributes are not looked up in AbuseIPDB",
                http::bounded(&task.attribute.attr_type, 64)
            )));
        }
        let ip = http::ip_address(&task.attribute.value)?.to_string();
        let mut url = self.check.clone();
        url.query_pairs_mut()
            .append_pair("ipAddress", &ip)
            .append_pair("maxAgeInDays", &self.max_age_days.to_string());
        match http::get_json(&self.client, url, &self.headers, self.timeout).await? {
            None => Ok(Inspection::default()),
            Some(answer) => inspection(&ip, &answer),
        }
    }
}

/// The section and new attributes of one `check` answer.
fn inspection(ip: &str, answer: &Value) -> Result<Inspection, PluginError> {
    let data = answer
        .get("data")
        .and_then(Value::as_object)
        .ok_or_else(|| PluginError::InvalidOutput("the answer has no data object".into()))?;
    let confidence = data
        .get("abuseConfidenceScore")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            PluginError::InvalidOutput("the answer has no data.abuseConfidenceScore".into())
        })?;
    let text = |key: &str| {
        data.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| http::bounded(s, MAX_TEXT))
    };
    let mut abuse = Map::new();
    abuse.insert("confidence".into(), json!(confidence));
    for (ours, theirs) in [
        ("reports", "totalReports"),
        ("distinct_users", "numDistinctUsers"),
    ] {
        abuse.insert(
            ours.into(),
            json!(data.get(theirs).and_then(Value::as_u64).unwrap_or(0)),
        );
    }
    for (ours, theirs) in [
        ("last_reported_at", "lastReportedAt"),
        ("isp", "isp"),
        ("usage_type", "usageType"),
        ("domain", "domain"),
    ] {
        if let Some(v) = text(theirs) {
            abuse.insert(ours.into(), json!(v));
        }
    }
    for (ours, theirs) in [("whitelisted", "isWhitelisted"), ("tor", "isTor")] {
        if let Some(v) = data.get(theirs).and_then(Value::as_bool) {
            abuse.insert(ours.into(), json!(v));
        }
    }
    let mut extra = Map::new();
    extra.insert("abuse".into(), Value::Object(abuse));
    let host = Host {
        ipaddr: vec![ip.to_string()],
        country: text("countryCode").into_iter().collect(),
        ..Host::default()
    };
    let new_attributes = text("domain")
        .and_then(|d| http::domain_name(&d).ok())
        .map(|domain| Attribute {
            attr_type: "domain".into(),
            key: "domain (AbuseIPDB)".into(),
            value: domain,
            context: vec!["related".into()],
            timestamp: None,
        })
        .into_iter()
        .collect();
    Ok(Inspection {
        sections: vec![section("host", &host, extra)],
        new_attributes,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;
    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::test_support::{attribute, task, EnvSecret};

    const KEY_VAR: &str = "AR_TEST_ABUSEIPDB_KEY";

    /// `env KEY_VAR` is the test key, without touching the process's environment.
    const TEST_SECRETS: EnvSecret = EnvSecret {
        name: KEY_VAR,
        value: "ab-s3cret",
    };

    async fn build(toml_text: &str, timeout: Duration) -> Result<AbuseIpDbInspector, String> {
        let secrets = TEST_SECRETS;
        let ctx = BuildContext {
            name: "abuse",
            key: "inspector[1]",
            timeout,
            secrets: &secrets,
            base_dir: Path::new("/nonexistent"),
        };
        let config: Config = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        AbuseIpDbInspector::build(&ctx, config)
            .await
            .map_err(|e| e.to_string())
    }

    async fn inspector_at(
        server: &MockServer,
        extra: &str,
        timeout: Duration,
    ) -> AbuseIpDbInspector {
        build(
            &format!(
                "url = \"{}\"\napi_key = {{ env = \"{KEY_VAR}\" }}\n{extra}",
                server.uri()
            ),
            timeout,
        )
        .await
        .unwrap()
    }

    async fn inspector(server: &MockServer) -> AbuseIpDbInspector {
        inspector_at(server, "", Duration::from_secs(5)).await
    }

    /// Answers `response` to exactly one check of `ip` over `days`, with the key.
    async fn expect(server: &MockServer, ip: &str, days: &str, response: ResponseTemplate) {
        Mock::given(method("GET"))
            .and(path("/api/v2/check"))
            .and(query_param("ipAddress", ip))
            .and(query_param("maxAgeInDays", days))
            .and(header("key", "ab-s3cret"))
            .and(header("accept", "application/json"))
            .respond_with(response)
            .expect(1)
            .mount(server)
            .await;
    }

    /// The check endpoint's documented answer (docs.abuseipdb.com, CHECK Endpoint).
    fn reported() -> Value {
        json!({"data": {
            "ipAddress": "118.25.6.39",
            "isPublic": true,
            "ipVersion": 4,
            "isWhitelisted": false,
            "abuseConfidenceScore": 100,
            "countryCode": "CN",
            "countryName": "China",
            "usageType": "Data Center/Web Hosting/Transit",
            "isp": "Tencent Cloud Computing (Beijing) Co. Ltd",
            "domain": "tencent.com",
            "hostnames": [],
            "isTor": false,
            "totalReports": 1,
            "numDistinctUsers": 1,
            "lastReportedAt": "2018-12-20T20:55:14+00:00"
        }})
    }

    #[tokio::test]
    async fn a_reported_address_becomes_a_host_section_with_abuse_and_its_domain() {
        let server = MockServer::start().await;
        expect(
            &server,
            "118.25.6.39",
            "90",
            ResponseTemplate::new(200).set_body_json(reported()),
        )
        .await;
        let got = inspector(&server)
            .await
            .inspect(&task("118.25.6.39"))
            .await
            .unwrap();
        assert_eq!(got.sections.len(), 1);
        assert_eq!(got.sections[0].section_type, "host");
        assert_eq!(
            got.sections[0].content,
            json!({
                "ipaddr": ["118.25.6.39"],
                "country": ["CN"],
                "abuse": {
                    "confidence": 100,
                    "reports": 1,
                    "distinct_users": 1,
                    "last_reported_at": "2018-12-20T20:55:14+00:00",
                    "isp": "Tencent Cloud Computing (Beijing) Co. Ltd",
                    "usage_type": "Data Center/Web Hosting/Transit",
                    "domain": "tencent.com",
                    "whitelisted": false,
                    "tor": false
                }
            })
        );
        assert_eq!(got.new_attributes.len(), 1);
        assert_eq!(
            (
                got.new_attributes[0].attr_type.as_str(),
                got.new_attributes[0].value.as_str()
            ),
            ("domain", "tencent.com")
        );
        let requests = server.received_requests().await.unwrap_or_default();
        assert_eq!(
            requests[0].url.query(),
            Some("ipAddress=118.25.6.39&maxAgeInDays=90")
        );
    }

    #[tokio::test]
    async fn a_clean_address_is_still_an_answer() {
        let server = MockServer::start().await;
        let clean = json!({"data": {
            "ipAddress": "2001:db8::1", "isPublic": true, "ipVersion": 6, "isWhitelisted": null,
            "abuseConfidenceScore": 0, "countryCode": null, "usageType": null, "isp": "Example ISP",
            "domain": null, "hostnames": [], "isTor": false, "totalReports": 0,
            "numDistinctUsers": 0, "lastReportedAt": null
        }});
        expect(
            &server,
            "2001:db8::1",
            "7",
            ResponseTemplate::new(200).set_body_json(clean),
        )
        .await;
        let got = inspector_at(&server, "max_age_days = 7", Duration::from_secs(5))
            .await
            .inspect(&task("2001:db8::1"))
            .await
            .unwrap();
        assert_eq!(
            got.sections[0].content,
            json!({
                "ipaddr": ["2001:db8::1"],
                "abuse": {"confidence": 0, "reports": 0, "distinct_users": 0, "isp": "Example ISP", "tor": false}
            })
        );
        assert!(got.new_attributes.is_empty());
    }

    #[tokio::test]
    async fn a_429_is_rate_limited_with_retry_after() {
        let server = MockServer::start().await;
        expect(
            &server,
            "192.0.2.1",
            "90",
            ResponseTemplate::new(429)
                .insert_header("retry-after", "29")
                .insert_header("x-ratelimit-limit", "1000")
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", "1545973200")
                .set_body_json(json!({"errors": [{
                    "detail": "Daily rate limit of 1000 requests exceeded for this endpoint. See headers for additional details.",
                    "status": 429
                }]})),
        )
        .await;
        assert_eq!(
            inspector(&server)
                .await
                .inspect(&task("192.0.2.1"))
                .await
                .unwrap_err(),
            PluginError::RateLimited {
                retry_after: Some(Duration::from_secs(29))
            }
        );
    }

    #[tokio::test]
    async fn not_found_is_empty_and_errors_fail_with_the_detail_not_the_key() {
        let server = MockServer::start().await;
        expect(&server, "192.0.2.1", "90", ResponseTemplate::new(404)).await;
        assert_eq!(
            inspector(&server)
                .await
                .inspect(&task("192.0.2.1"))
                .await
                .unwrap(),
            Inspection::default()
        );
        let server = MockServer::start().await;
        expect(
            &server,
            "192.0.2.1",
            "90",
            ResponseTemplate::new(401).set_body_json(json!({"errors": [{
                "detail": "Authentication failed. Your API key is either missing, incorrect, or revoked. Note: The APIv2 key differs from the APIv1 key.",
                "status": 401
            }]})),
        )
        .await;
        let e = inspector(&server)
            .await
            .inspect(&task("192.0.2.1"))
            .await
            .unwrap_err();
        let PluginError::Failed(message) = e else {
            panic!("{e:?}")
        };
        assert!(
            message.starts_with(&format!(
                "HTTP 401 from {}/api/v2/check: Authentication failed.",
                server.uri()
            )),
            "{message}"
        );
        assert!(
            !message.contains("ab-s3cret") && !message.contains("ipAddress"),
            "{message}"
        );
        let server = MockServer::start().await;
        expect(
            &server,
            "192.0.2.1",
            "90",
            ResponseTemplate::new(502).set_body_string("Bad Gateway"),
        )
        .await;
        assert_eq!(
            inspector(&server)
                .await
                .inspect(&task("192.0.2.1"))
                .await
                .unwrap_err(),
            PluginError::Failed(format!(
                "HTTP 502 from {}/api/v2/check: Bad Gateway",
                server.uri()
            ))
        );
    }

    #[tokio::test]
    async fn a_slow_answer_times_out() {
        let server = MockServer::start().await;
        expect(
            &server,
            "192.0.2.1",
            "90",
            ResponseTemplate::new(200)
                .set_body_json(reported())
                .set_delay(Duration::from_secs(5)),
        )
        .await;
        let timeout = Duration::from_millis(200);
        let abuse = inspector_at(&server, "", timeout).await;
        assert_eq!(abuse.timeout(), timeout);
        assert_eq!(
            abuse.inspect(&task("192.0.2.1")).await.unwrap_err(),
            PluginError::TimedOut(timeout)
        );
    }

    #[tokio::test]
    async fn a_hostile_value_is_never_sent() {
        let server = MockServer::start().await;
        let abuse = inspector(&server).await;
        for v in [
            "../../users/me",
            "1.2.3.4?x=",
            "a/b#c",
            "1.2.3.4&maxAgeInDays=365",
            "",
        ] {
            let e = abuse.inspect(&task(v)).await.unwrap_err();
            assert!(
                matches!(&e, PluginError::Skipped(why) if why.contains("is not an IP address")),
                "{v}: {e:?}"
            );
        }
        let e = abuse
            .inspect(&Task {
                attribute: attribute("domain", "example.com"),
                ..task("x")
            })
            .await
            .unwrap_err();
        assert!(matches!(e, PluginError::Skipped(_)), "{e:?}");
        assert!(!abuse.accepts(&attribute("domain", "example.com")));
        assert!(abuse.accepts(&attribute("ipaddr", "192.0.2.1")));
        assert!(server
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty());
    }

    #[tokio::test]
    async fn the_config_checks_the_age_the_url_and_the_key() {
        let key = format!("api_key = {{ env = \"{KEY_VAR}\" }}");
        for days in ["0", "366"] {
            let e = build(
                &format!("{key}\nmax_age_days = {days}"),
                Duration::from_secs(1),
            )
            .await
            .err()
            .unwrap();
            assert!(e.starts_with("inspector[1].max_age_days: "), "{e}");
        }
        let ok = build(
            &format!("{key}\nmax_age_days = 365"),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        assert_eq!(ok.check.as_str(), "https://api.abuseipdb.com/api/v2/check");
        assert_eq!(ok.name(), "abuse");
        let e = build(
            &format!("{key}\nurl = \"http://api.abuseipdb.com\""),
            Duration::from_secs(1),
        )
        .await
        .err()
        .unwrap();
        assert!(e.starts_with("inspector[1].url: "), "{e}");
        let e = build(
            "api_key = { env = \"AR_TEST_ABUSE_SURELY_UNSET\" }",
            Duration::from_secs(1),
        )
        .await
        .err()
        .unwrap();
        assert!(e.starts_with("inspector[1].api_key: "), "{e}");
        assert!(
            build(&format!("{key}\nverbose = true"), Duration::from_secs(1))
                .await
                .is_err()
        );
        let proxied = build(
            &format!("{key}\nurl = \"https://proxy.example/abuse/\""),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        assert_eq!(
            proxied.check.as_str(),
            "https://proxy.example/abuse/api/v2/check"
        );
    }
}
