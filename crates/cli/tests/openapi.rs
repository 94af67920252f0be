//! The OpenAPI document (`GET /v1/openapi.json`) against the real `serve`: the routes
//! it lists are the routes the server answers, and every documented operation answers
//! real requests with a status the document lists, a content type it lists for that
//! status and a body that validates against the schema it gives (formats checked).
//! Every documented answer but the 5xx ones must be seen: a status the server can no
//! longer give is a stale line of the document.

// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};

const TOKEN: &str = "openapi-test-token";
const GUARDDUTY: &str =
    include_str!("../../core/tests/fixtures/eventbridge/guardduty-port-probe.json");
const SECURITY_HUB: &str =
    include_str!("../../core/tests/fixtures/eventbridge/securityhub-batch.json");

/// The operations of the API: the brief of the document, checked against it.
const OPERATIONS: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/v1/errors"),
    ("GET", "/v1/openapi.json"),
    ("POST", "/v1/alerts"),
    ("POST", "/v1/events"),
    ("GET", "/v1/reports"),
    ("GET", "/v1/reports/{id}"),
];

/// The served document, and which (method, path, status) real answers have shown.
struct Checker {
    doc: Value,
    http: reqwest::Client,
    base: String,
    seen: BTreeSet<(String, String, String)>,
}

impl Checker {
    /// The documented answer of `method path` for `status`, or a panic naming what is missing.
    fn response(&self, method: &str, path: &str, status: u16) -> &Value {
        let op = &self.doc["paths"][path][method.to_lowercase()];
        assert!(op.is_object(), "{method} {path} is not documented");
        let response = &op["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{method} {path} answered {status}, which the document does not list (it lists {:?})",
            op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>()
        );
        response
    }

    /// Sends `req` (for the documented operation `method path`), checks the answer
    /// against the document and returns its status and body (JSON, or a string).
    async fn check(&mut self, method: &str, path: &str, req: RequestBuilder) -> (u16, Value) {
        let answer = req.send().await.unwrap();
        let status = answer.status().as_u16();
        let content_type = answer
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let media = content_type.split(';').next().unwrap().trim().to_string();
        let text = answer.text().await.unwrap();
        let content = &self.response(method, path, status)["content"];
        let schema = &content[&media]["schema"];
        assert!(
            schema.is_object(),
            "{method} {path} answered {status} as {content_type:?}; documented: {:?}",
            content.as_object().map(|c| c.keys().collect::<Vec<_>>())
        );
        let body = if media == "application/json" {
            serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!("{method} {path}: {status} body is not JSON ({e}): {text}")
            })
        } else {
            Value::String(text)
        };
        if let Err(errors) = validate(&self.doc, schema, &body) {
            panic!("{method} {path} answered {status} with a body the document does not allow:\n{errors}\nbody: {body:#}");
        }
        if (400..500).contains(&status) {
            let field = body["field"].as_str().unwrap_or("");
            assert!(
                !field.is_empty(),
                "{method} {path}: a {status} must name the field: {body}"
            );
        }
        self.seen
            .insert((method.to_string(), path.to_string(), status.to_string()));
        (status, body)
    }

    fn request(&self, method: Method, url: &str, token: bool) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{url}", self.base));
        if token {
            req.bearer_auth(TOKEN)
        } else {
            req
        }
    }

    fn get(&self, url: &str) -> RequestBuilder {
        self.request(Method::GET, url, true)
    }

    fn post(&self, url: &str) -> RequestBuilder {
        self.request(Method::POST, url, true)
    }
}

/// Validates `instance` against `schema`, whose `#/components/...` references resolve in `doc`.
fn validate(doc: &Value, schema: &Value, instance: &Value) -> Result<(), String> {
    let mut root = schema.clone();
    let obj = root.as_object_mut().unwrap();
    assert!(!obj.contains_key("components"));
    obj.insert("components".into(), doc["components"].clone());
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| format!("the schema does not compile: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("  at {}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

fn alert(key: &str, ip: &str) -> Value {
    json!({"detector": "guardduty", "rule_id": "UnauthorizedAccess:EC2/SSHBruteForce",
           "rule_name": "SSH brute force", "alert_key": key, "description": "attempts",
           "timestamp": "2026-11-23T10:00:00Z",
           "attributes": [{"type": "ipaddr", "key": "remote", "value": ip, "context": "remote"},
                          {"type": "username", "value": "mallory", "context": ["subject"]}],
           "body": {"raw": [1, 2, 3]}})
}

#[test]
fn the_document_is_openapi_3_1_with_the_token_required_on_every_v1_operation_but_itself() {
    let doc = serde_json::to_value(alertresponder::serve::openapi_document()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(
        (&schemes["bearer"]["type"], &schemes["bearer"]["scheme"]),
        (&json!("http"), &json!("bearer"))
    );
    assert_eq!(
        (&schemes["session"]["in"], &schemes["session"]["name"]),
        (&json!("cookie"), &json!("ar_session"))
    );
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.insert((method.to_uppercase(), path.clone()));
            // The pages' session cookie opens the reads only.
            let public = path == "/healthz" || path == "/v1/openapi.json";
            let security = match (public, method.as_str()) {
                (true, _) => Value::Null,
                (false, "get") => json!([{"bearer": []}, {"session": []}]),
                (false, _) => json!([{"bearer": []}]),
            };
            assert_eq!(op["security"], security, "{method} {path}");
            for (status, response) in op["responses"].as_object().unwrap() {
                assert!(
                    response["content"].is_object(),
                    "{method} {path} {status} has no body schema"
                );
            }
        }
    }
    let expected: BTreeSet<_> = OPERATIONS
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_as_the_document_says_and_nothing_else_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), ("1s", "2s"), "");
    let server = Server::start(&config, &["--token", TOKEN]);
    let http = reqwest::Client::new();
    let served: Value = get_json(&http, &format!("{}/v1/openapi.json", server.base)).await;
    assert_eq!(
        served,
        serde_json::to_value(alertresponder::serve::openapi_document()).unwrap(),
        "the server serves the document the code makes"
    );
    let mut c = Checker {
        doc: served,
        http,
        base: server.base.clone(),
        seen: BTreeSet::new(),
    };

    // The service.
    c.check("GET", "/healthz", c.request(Method::GET, "/healthz", false))
        .await;
    let doc = c.request(Method::GET, "/v1/openapi.json", false);
    c.check("GET", "/v1/openapi.json", doc).await;

    // Alerts in: one, a batch, rejected ones, bodies the server refuses.
    let (_, one) = c
        .check(
            "POST",
            "/v1/alerts",
            c.post("/v1/alerts").json(&alert("i-1", "203.0.113.50")),
        )
        .await;
    let report_id = one["accepted"][0]["report_id"]
        .as_str()
        .unwrap()
        .to_string();
    let batch = json!([alert("i-1", "198.51.100.7"), alert("i-2", "198.51.100.8")]);
    let req = c
        .post("/v1/alerts")
        .header("Idempotency-Key", "k-1")
        .json(&batch);
    assert_eq!(c.check("POST", "/v1/alerts", req).await.0, 202);
    let partly =
        json!([alert("i-3", "192.0.2.1"), {"detector": "x", "rule_id": " ", "alert_key": "k"}]);
    let (status, body) = c
        .check("POST", "/v1/alerts", c.post("/v1/alerts").json(&partly))
        .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("rule_id")));
    assert_eq!(body["accepted"].as_array().unwrap().len(), 1);
    let not_utf8 = c.post("/v1/alerts").body(vec![b'{', 0xff, b'}']);
    let (status, body) = c.check("POST", "/v1/alerts", not_utf8).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("$")));
    let too_many = Value::Array(vec![json!({}); alertresponder::serve::MAX_BATCH + 1]);
    let req = c.post("/v1/alerts").json(&too_many);
    assert_eq!(c.check("POST", "/v1/alerts", req).await.0, 413);
    let too_big = vec![b' '; alertresponder::serve::MAX_BODY_BYTES + 1];
    let req = c.post("/v1/alerts").body(too_big.clone());
    assert_eq!(c.check("POST", "/v1/alerts", req).await.0, 413);
    for key in ["", "caf\u{e9}", &"k".repeat(1025)] {
        let req = c
            .post("/v1/alerts")
            .header("Idempotency-Key", key)
            .json(&alert("i-8", "192.0.2.8"));
        let (status, body) = c.check("POST", "/v1/alerts", req).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some("Idempotency-Key")),
            "{key:?}"
        );
    }
    let req = c
        .request(Method::POST, "/v1/alerts", false)
        .json(&alert("i-9", "192.0.2.9"));
    let (status, body) = c.check("POST", "/v1/alerts", req).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (401, Some("Authorization"))
    );

    // Events in.
    let req = c.post("/v1/events").body(GUARDDUTY);
    assert_eq!(c.check("POST", "/v1/events", req).await.0, 202);
    let req = c.post("/v1/events").body(SECURITY_HUB);
    let (status, body) = c.check("POST", "/v1/events", req).await;
    assert_eq!((status, body["skipped"].as_u64()), (202, Some(2)));
    let mut partly: Value = serde_json::from_str(SECURITY_HUB).unwrap();
    partly["id"] = json!("partly-rejected");
    partly["detail"]["findings"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Id": "finding-without-a-type"}));
    let req = c.post("/v1/events").json(&partly);
    let (status, body) = c.check("POST", "/v1/events", req).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("rule_id")));
    let req = c.post("/v1/events").json(&alert("i-1", "192.0.2.1"));
    let (status, body) = c.check("POST", "/v1/events", req).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("source")));
    let req = c.post("/v1/events").body(too_big);
    assert_eq!(c.check("POST", "/v1/events", req).await.0, 413);
    let req = c.request(Method::POST, "/v1/events", false).body(GUARDDUTY);
    assert_eq!(c.check("POST", "/v1/events", req).await.0, 401);

    // Reports out, once one is published (sections, inspections, a publication time).
    let out = dir.path().join("reports.jsonl");
    wait_for("a published report", Duration::from_secs(60), || {
        !read_lines(&out).is_empty()
    });
    let published = read_lines(&out)[0]["id"].as_str().unwrap().to_string();
    for url in [
        "/v1/reports",
        "/v1/reports?limit=2&offset=1",
        "/v1/reports?limit=5000",
    ] {
        assert_eq!(c.check("GET", "/v1/reports", c.get(url)).await.0, 200);
    }
    for (url, field) in [
        ("/v1/reports?limit=-1", "limit"),
        ("/v1/reports?offset=x", "offset"),
        ("/v1/reports?offset=2147483648", "offset"),
    ] {
        let (status, body) = c.check("GET", "/v1/reports", c.get(url)).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some(field)),
            "{url}"
        );
    }
    let req = c.request(Method::GET, "/v1/reports", false);
    assert_eq!(c.check("GET", "/v1/reports", req).await.0, 401);

    let one = "/v1/reports/{id}";
    for id in [&published, &report_id] {
        let (status, body) = c
            .check("GET", one, c.get(&format!("/v1/reports/{id}")))
            .await;
        assert_eq!((status, body["id"].as_str()), (200, Some(id.as_str())));
        let url = format!("/v1/reports/{id}?format=text");
        let (status, body) = c.check("GET", one, c.get(&url)).await;
        assert!(status == 200 && body.is_string(), "{body}");
    }
    let url = format!("/v1/reports/{published}?format=html");
    let (status, body) = c.check("GET", one, c.get(&url)).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("format")));
    let (status, body) = c.check("GET", one, c.get("/v1/reports/nope")).await;
    assert_eq!((status, body["field"].as_str()), (404, Some("id")));
    let req = c.request(Method::GET, &format!("/v1/reports/{published}"), false);
    assert_eq!(c.check("GET", one, req).await.0, 401);

    let (status, body) = c.check("GET", "/v1/errors", c.get("/v1/errors")).await;
    assert_eq!(status, 200);
    assert!(body["errors"].as_array().unwrap().len() >= 4, "{body}");
    let (status, body) = c
        .check("GET", "/v1/errors", c.get("/v1/errors?limit=1.5"))
        .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("limit")));
    let req = c.request(Method::GET, "/v1/errors", false);
    assert_eq!(c.check("GET", "/v1/errors", req).await.0, 401);

    // Every documented answer was seen, but for the server's failures.
    let mut unseen = Vec::new();
    for (path, item) in c.doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for status in op["responses"].as_object().unwrap().keys() {
                let key = (method.to_uppercase(), path.clone(), status.clone());
                if !status.starts_with('5') && !c.seen.contains(&key) {
                    unseen.push(key);
                }
            }
        }
    }
    assert!(
        unseen.is_empty(),
        "documented but never answered: {unseen:?}"
    );

    // Nothing answers beyond the document: other methods on its paths, other paths.
    for (path, item) in c.doc["paths"].as_object().unwrap() {
        let url = path.replace("{id}", &published);
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ] {
            if item.get(method.as_str().to_lowercase()).is_some() {
                continue;
            }
            let answer = c.request(method.clone(), &url, true).send().await.unwrap();
            assert_eq!(answer.status(), 405, "{method} {url} answers, undocumented");
            assert!(
                answer.headers().contains_key("allow"),
                "{method} {url}: no Allow"
            );
            let body: Value = answer.json().await.unwrap();
            assert_eq!(body["field"], "method", "{method} {url}: {body}");
        }
    }
    for url in [
        "/v1",
        "/v1/",
        "/v1/alert",
        "/v1/reports/a/b",
        "/v1/openapi.yaml",
        "/healthz/x",
    ] {
        let status = c.get(url).send().await.unwrap().status();
        assert_eq!(status, 404, "GET {url} answers, undocumented");
    }
}
