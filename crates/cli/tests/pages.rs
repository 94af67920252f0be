//! The pages of `serve` (`alertresponder::web`): served by the real router on a local
//! port over a SQLite store filled through the store ports, and (sign-in, the JSON
//! link, the refusal beyond loopback) by the real binary. Assertions are on the HTML
//! as sent: what a browser would parse.

// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use alertresponder::web::{self, CONTENT_SECURITY_POLICY};
use alertresponder_core::fixtures::contract::admitted;
use alertresponder_core::fixtures::t;
use alertresponder_core::model::{
    Alert, Attribute, ErrorRecord, InspectionRecord, InspectionStatus, ReportResult, ReportSection,
    Severity,
};
use alertresponder_core::pipeline::compile;
use alertresponder_core::ports::{
    ClaimStore, DeliveryLog, ErrorSink, FindingStore, PublishStore, ReadStore,
};
use alertresponder_embedded::SqliteStore;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use serde_json::json;

const TOKEN: &str = "pages-test-token-5f1c2a";

/// The pages over `store` on an ephemeral loopback port; their base URL.
async fn serve_pages(store: &SqliteStore, token: Option<&str>) -> String {
    let app = web::router(Arc::new(store.clone()), token);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

/// A client that does not follow redirects (the tests look at them).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(base: &str, path: &str) -> (StatusCode, HeaderMap, String) {
    let r = client().get(format!("{base}{path}")).send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

async fn page(base: &str, path: &str) -> String {
    let (status, _, body) = get(base, path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

/// Every value of attribute `name` in `html`, in order (as written, still escaped).
fn attr_values(html: &str, name: &str) -> Vec<String> {
    let needle = format!("{name}=\"");
    html.match_indices(&needle)
        .map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

/// `&amp;` back to `&` in an href copied out of the page.
fn unescape_href(href: &str) -> String {
    href.replace("&#38;", "&").replace("&amp;", "&")
}

fn attribute(kind: &str, value: &str) -> Attribute {
    Attribute {
        attr_type: kind.into(),
        key: "source".into(),
        value: value.into(),
        context: vec!["remote".into()],
        timestamp: None,
    }
}

fn alert(detector: &str, key: &str, attributes: Vec<Attribute>) -> Alert {
    Alert {
        detector: detector.into(),
        rule_name: "SSH brute force".into(),
        rule_id: "ssh-bf".into(),
        alert_key: key.into(),
        description: format!("{detector} saw {key}"),
        timestamp: t(0),
        attributes,
        body: Some(json!({"n": 1})),
    }
}

/// Publishes the next version of `id` with `severity`, compiled from the store.
async fn publish(store: &SqliteStore, id: &str, severity: Severity, reason: &str, secs: i64) {
    let meta = store.report_meta(id).await.unwrap().unwrap();
    let state = store.load_report(id).await.unwrap().unwrap();
    let mut report = compile(&state, meta.published_version + 1, t(secs));
    report.result = ReportResult {
        severity,
        reason: reason.into(),
    };
    report.published_at = Some(t(secs));
    store.mark_published(&report, "test").await.unwrap();
}

/// A report with two alerts, a discovered attribute, findings, every kind of
/// outcome, two versions and their deliveries. Returns its ID.
async fn full_report(store: &SqliteStore) -> String {
    let ip = attribute("ipaddr", "198.51.100.7");
    let user = attribute("username", "alice");
    let first = alert("guardduty", "i-0abc", vec![ip.clone(), user.clone()]);
    let id = admitted(store, &first.alert_id(), "m1", &first, t(0))
        .await
        .meta
        .id;
    let second = alert("guardduty", "i-0abc", vec![ip.clone()]);
    admitted(store, &second.alert_id(), "m2", &second, t(30)).await;
    let domain = attribute("domain", "c2.evil.example");
    for (a, claimer) in [
        (&ip, "dispatch:m1".to_string()),
        (&user, "dispatch:m1".to_string()),
        (&domain, format!("inspect:{}:threat-intel", ip.hash())),
    ] {
        store.claim_attribute(&id, a, &claimer, 100).await.unwrap();
    }
    store
        .put_section(
            &ReportSection {
                report_id: id.clone(),
                author: "threat-intel".into(),
                attribute: ip.clone(),
                section_type: "host".into(),
                content: json!({"country": ["NL"], "related_malware": [{"sha256": "abc", "relation": "communicating"}]}),
            },
            0,
        )
        .await
        .unwrap();
    let outcome =
        |a: &Attribute, inspector: &str, status, detail: Option<&str>, secs| InspectionRecord {
            inspector: inspector.into(),
            attribute: a.clone(),
            status,
            detail: detail.map(str::to_string),
            at: t(secs),
        };
    for record in [
        outcome(&ip, "threat-intel", InspectionStatus::Ok, None, 61),
        outcome(
            &ip,
            "geoip",
            InspectionStatus::RateLimited,
            Some("quota spent"),
            62,
        ),
        outcome(
            &user,
            "user-directory",
            InspectionStatus::NothingFound,
            None,
            63,
        ),
        outcome(
            &domain,
            "dns",
            InspectionStatus::Skipped,
            Some("no resolver"),
            64,
        ),
        outcome(&domain, "slow", InspectionStatus::TimedOut, None, 65),
    ] {
        store.put_last_inspection(&id, &record).await.unwrap();
    }
    publish(store, &id, Severity::Safe, "nothing known yet", 120).await;
    store
        .record_delivery(&id, 1, "slack", t(121))
        .await
        .unwrap();
    publish(store, &id, Severity::Urgent, "talks to a C2 domain", 300).await;
    store
        .record_delivery(&id, 2, "slack", t(301))
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn a_report_page_shows_verdicts_versions_timeline_graph_and_findings() {
    let store = SqliteStore::open_in_memory().unwrap();
    let id = full_report(&store).await;
    let base = serve_pages(&store, None).await;
    let html = page(&base, &format!("/reports/{id}")).await;

    assert!(
        html.contains(r#"data-testid="verdict-severity">urgent<"#),
        "{html}"
    );
    assert!(html.contains("talks to a C2 domain"));
    assert!(
        html.contains(r#"data-testid="previous-verdict""#) && html.contains("nothing known yet"),
        "the verdict before the re-review"
    );
    assert_eq!(attr_values(&html, "data-version"), vec!["2", "1"]);

    let kinds = attr_values(&html, "data-kind");
    for kind in ["opened", "arrival", "inspection", "publication", "delivery"] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "timeline lacks {kind}: {kinds:?}"
        );
    }
    assert_eq!(kinds.iter().filter(|k| *k == "arrival").count(), 2);
    assert_eq!(kinds.iter().filter(|k| *k == "delivery").count(), 2);

    // The graph: two alerts, three attributes, the discovered domain labelled.
    assert!(html.contains(r#"<svg class="graph" data-testid="graph""#));
    let nodes = attr_values(&html, "data-testid")
        .iter()
        .filter(|v| *v == "graph-node")
        .count();
    assert_eq!(nodes, 5, "2 alerts + 3 attributes");
    assert!(attr_values(&html, "data-label").contains(&"threat-intel".to_string()));
    assert!(html.contains("g-node g-bad"), "the IP named malware");
    assert!(
        html.contains("g-node g-unknown"),
        "the domain: skipped and timed out"
    );

    // Findings by attribute and inspector; every outcome named.
    assert!(html.contains(r#"data-inspector="threat-intel""#));
    assert!(html.contains("communicating"));
    let statuses = attr_values(&html, "data-status");
    for status in [
        "ok",
        "rate limited",
        "nothing found",
        "skipped",
        "timed out",
    ] {
        assert!(
            statuses.iter().any(|s| s == status),
            "{status}: {statuses:?}"
        );
    }
    assert!(attr_values(&html, "href").contains(&format!("/v1/reports/{id}")));

    let (status, headers, text) = get(&base, &format!("/reports/{id}.txt")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(
        text.contains("URGENT") && text.contains("talks to a C2 domain"),
        "{text}"
    );

    let (status, _, body) = get(&base, "/reports/no-such-report").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("No such report"));
}

/// 60 reports over two detectors, every third urgent.
async fn many_reports(store: &SqliteStore) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..60i64 {
        let detector = if n % 2 == 0 { "guardduty" } else { "suricata" };
        let a = alert(
            detector,
            &format!("host-{n:02}"),
            vec![attribute("ipaddr", &format!("10.1.0.{n}"))],
        );
        let id = admitted(store, &a.alert_id(), &format!("m{n}"), &a, t(n * 60))
            .await
            .meta
            .id;
        if n % 3 == 0 {
            publish(store, &id, Severity::Urgent, "bad", n * 60 + 30).await;
        }
        ids.push(id);
    }
    ids
}

fn listed(html: &str) -> Vec<String> {
    attr_values(html, "data-report-id")
}

#[tokio::test]
async fn the_list_filters_searches_and_pages() {
    let store = SqliteStore::open_in_memory().unwrap();
    let ids = many_reports(&store).await;
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    let base = serve_pages(&store, None).await;

    let first = page(&base, "/").await;
    assert_eq!(listed(&first), newest_first[..50].to_vec());
    assert!(!first.contains(r#"data-testid="page-newer""#));
    assert!(first.contains(r#"class="badge sev-urgent""#));
    let older = attr_values(&first, "href")
        .into_iter()
        .find(|h| h.contains("after="))
        .expect("a link to the older page");
    let second = page(&base, &unescape_href(&older)).await;
    assert_eq!(listed(&second), newest_first[50..].to_vec());
    let newer = attr_values(&second, "href")
        .into_iter()
        .find(|h| h.contains("before="))
        .expect("a link back");
    assert_eq!(
        listed(&page(&base, &unescape_href(&newer)).await),
        newest_first[..50].to_vec()
    );

    let urgent = listed(&page(&base, "/?severity=urgent").await);
    let expected: Vec<String> = newest_first
        .iter()
        .enumerate()
        .filter(|(i, _)| (59 - i) % 3 == 0)
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(urgent, expected);
    let suricata = listed(&page(&base, "/?detector=suricata&severity=urgent").await);
    assert_eq!(suricata.len(), 10);
    let html = page(&base, "/?detector=suricata").await;
    assert!(html.contains(r#"<option value="suricata" selected>"#));

    assert_eq!(
        listed(&page(&base, "/?q=10.1.0.7").await),
        vec![ids[7].clone()]
    );
    assert_eq!(
        listed(&page(&base, "/?q=HOST-07").await),
        vec![ids[7].clone()]
    );
    // 10.1.0.5 and 10.1.0.50 to 10.1.0.59, never 10.1.0.15.
    let mut starting: Vec<String> = (50..60).rev().map(|n| ids[n].clone()).collect();
    starting.push(ids[5].clone());
    assert_eq!(
        listed(&page(&base, "/?q=10.1.0.5&prefix=1").await),
        starting
    );
    // Opened in [t(600), t(900)): reports 10 to 14.
    let range = listed(
        &page(
            &base,
            "/?since=2023-11-14T22:23:20Z&until=2023-11-14T22:28:20Z",
        )
        .await,
    );
    assert_eq!(range, newest_first[45..50].to_vec());
    let published = listed(&page(&base, "/?time=published").await);
    assert_eq!(published.len(), 20);

    let (status, _, body) = get(&base, "/?severity=severe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("severity:"), "{body}");
    let (status, _, _) = get(&base, "/?after=garbage").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Attacker text in every field a page shows.
async fn hostile_report(store: &SqliteStore) -> String {
    let script = "<script>alert('x')</script>";
    let img = "<img src=x onerror=alert(1)>";
    let mut a = alert(
        "ids\"><script>alert(1)</script>",
        &format!("key {img}"),
        vec![
            attribute("url", "javascript:alert(document.cookie)"),
            attribute("domain", &format!("{script}.example")),
            attribute("json", &format!("<b>{}</b>", "A".repeat(2 * 1024 * 1024))),
        ],
    );
    a.rule_name = img.into();
    a.description = format!("{script}\u{202e} reversed \u{1b}[31m red");
    a.body = Some(json!({"html": script}));
    let id = admitted(store, &a.alert_id(), "evil", &a, t(0))
        .await
        .meta
        .id;
    let url = a.attributes[0].clone();
    store
        .claim_attribute(&id, &url, "dispatch:evil", 100)
        .await
        .unwrap();
    store
        .put_section(
            &ReportSection {
                report_id: id.clone(),
                author: "<svg onload=alert(1)>".into(),
                attribute: url.clone(),
                section_type: img.into(),
                content: json!({"<i>k</i>": [script, {"u": "javascript:x"}]}),
            },
            0,
        )
        .await
        .unwrap();
    store
        .put_last_inspection(
            &id,
            &InspectionRecord {
                inspector: "<iframe src=//evil>".into(),
                attribute: url,
                status: InspectionStatus::Failed,
                detail: Some(script.into()),
                at: t(5),
            },
        )
        .await
        .unwrap();
    publish(store, &id, Severity::Urgent, &format!("{script} {img}"), 60).await;
    id
}

/// No tag of the attacker's, no href of theirs: every `<` that opens a tag opens one
/// of ours, and every link is a path of this server or a fragment.
fn assert_inert(html: &str) {
    for bad in [
        "<script>",
        "<img",
        "<iframe",
        "<svg onload",
        "<b>",
        "<i>",
        "\u{202e}",
        "\u{1b}",
    ] {
        assert!(!html.contains(bad), "{bad:?} came through unescaped");
    }
    assert_eq!(
        html.matches("<script").count(),
        1,
        "only the page's own script tag"
    );
    assert!(html.contains(r#"<script src="/static/pages.js" defer></script>"#));
    for href in attr_values(html, "href") {
        assert!(
            href.starts_with('/') && !href.starts_with("//") || href.starts_with('#'),
            "a link that is not ours: {href}"
        );
        assert!(!href.to_ascii_lowercase().contains("javascript"), "{href}");
    }
    for src in attr_values(html, "src") {
        assert!(src.starts_with("/static/"), "{src}");
    }
}

#[tokio::test]
async fn a_hostile_report_renders_inert_and_bounded() {
    let store = SqliteStore::open_in_memory().unwrap();
    let id = hostile_report(&store).await;
    store
        .put_error(&ErrorRecord {
            id: "<script>id</script>".into(),
            stage: "receive".into(),
            error: "invalid alert: detector: <img src=x onerror=alert(1)>".into(),
            field: Some("<b>detector</b>".into()),
            input: format!(
                "{{\"x\": \"<script>alert(1)</script>{}\"}}",
                "B".repeat(100_000)
            ),
            input_truncated: true,
            at: t(9),
        })
        .await
        .unwrap();
    let base = serve_pages(&store, None).await;

    let report = page(&base, &format!("/reports/{id}")).await;
    assert_inert(&report);
    assert!(report.contains("&#60;script&#62;") || report.contains("&lt;script&gt;"));
    assert!(
        report.contains("javascript:alert(document.cookie)"),
        "shown as text"
    );
    assert!(
        report.len() < 300_000,
        "a 2 MB value renders bounded: {} bytes",
        report.len()
    );
    assert!(report.contains("more chars)"), "with a visible marker");

    for path in ["/", "/errors", &format!("/reports/{id}.txt")] {
        let html = page(&base, path).await;
        if !path.ends_with(".txt") {
            assert_inert(&html);
        }
        assert!(html.len() < 300_000, "{path}: {} bytes", html.len());
    }
    let (_, headers, text) = get(&base, &format!("/reports/{id}.txt")).await;
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        !text.contains('\u{1b}'),
        "no terminal escape in the text rendering"
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let store = SqliteStore::open_in_memory().unwrap();
    let id = full_report(&store).await;
    let base = serve_pages(&store, Some(TOKEN)).await;
    let paths = [
        "/".to_string(),
        format!("/reports/{id}"),
        "/errors".into(),
        "/signin".into(),
        "/static/pages.css".into(),
        "/static/pages.js".into(),
        "/favicon.ico".into(),
    ];
    for path in &paths {
        let (_, headers, _) = get(&base, path).await;
        assert_eq!(
            headers["content-security-policy"], CONTENT_SECURITY_POLICY,
            "{path}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
    }
    assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self'"));
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    let (_, headers, css) = get(&base, "/static/pages.css").await;
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert!(!css.contains("http"), "no third-party asset");
}

fn session_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn a_token_is_asked_once_and_kept_as_a_session_cookie() {
    let store = SqliteStore::open_in_memory().unwrap();
    let id = full_report(&store).await;
    let base = serve_pages(&store, Some(TOKEN)).await;
    let http = client();

    // Not signed in: a page sends the browser to the form; a token in the URL is no key.
    let (status, headers, _) = get(&base, &format!("/reports/{id}?token={TOKEN}")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers["location"].to_str().unwrap();
    assert!(
        location.starts_with("/signin?next=%2Freports%2F"),
        "{location}"
    );
    assert!(!location.contains(TOKEN));
    let form = page(&base, location).await;
    assert!(form.contains(r#"type="password""#) && form.contains(r#"method="post""#));

    let sign_in = |token: &'static str, headers: &[(&'static str, &'static str)]| {
        let mut req = http
            .post(format!("{base}/signin"))
            .form(&[("token", token), ("next", "/errors")]);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    let wrong = sign_in("not-the-token", &[("sec-fetch-site", "same-origin")])
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get("set-cookie").is_none());
    let cross = sign_in(TOKEN, &[("sec-fetch-site", "cross-site")])
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    assert!(cross.headers().get("set-cookie").is_none());

    let ok = sign_in(TOKEN, &[("sec-fetch-site", "same-origin")])
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()["location"], "/errors");
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP from the browser: {cookie}"
    );
    assert!(!cookie.contains(TOKEN), "the cookie is not the token");

    let with = |session: &str| {
        let mut h = HeaderMap::new();
        h.insert("cookie", HeaderValue::from_str(session).unwrap());
        h
    };
    let session = session_of(&cookie);
    let r = http
        .get(format!("{base}/reports/{id}"))
        .headers(with(&session))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains(r#"data-testid="signout""#));
    let forged = format!("{}0", session);
    let r = http
        .get(format!("{base}/"))
        .headers(with(&forged))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = http
        .get(format!("{base}/"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the API's bearer token works too"
    );

    // Behind a TLS proxy on this machine, the cookie is Secure.
    let tls = sign_in(
        TOKEN,
        &[
            ("sec-fetch-site", "same-origin"),
            ("x-forwarded-proto", "https"),
        ],
    )
    .await
    .unwrap();
    assert!(tls.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("; Secure"));

    // Sign-out is a POST of our own that clears the cookie; a GET of it changes nothing.
    let (status, _, _) = get(&base, "/signout").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let out = http
        .post(format!("{base}/signout"))
        .header("sec-fetch-site", "same-origin")
        .headers(with(&session))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
}

/// What a GET could have changed: counts, a report's meta and deliveries, the list.
async fn snapshot(store: &SqliteStore, id: &str) -> impl PartialEq + std::fmt::Debug {
    (
        store.count_reports().await.unwrap(),
        store.count_errors().await.unwrap(),
        store.report_meta(id).await.unwrap(),
        store.deliveries(id).await.unwrap(),
        store.list_reports(100, 0).await.unwrap(),
    )
}

#[tokio::test]
async fn a_get_never_changes_the_store() {
    let store = SqliteStore::open_in_memory().unwrap();
    let id = full_report(&store).await;
    let hostile = hostile_report(&store).await;
    let base = serve_pages(&store, None).await;
    let before = snapshot(&store, &id).await;
    for path in [
        "/".to_string(),
        "/?severity=urgent&q=x&time=published".into(),
        format!("/reports/{id}"),
        format!("/reports/{id}.txt"),
        format!("/reports/{hostile}"),
        "/reports/unknown".into(),
        "/errors".into(),
        "/errors?after=1:receive:x".into(),
        "/signin".into(),
    ] {
        let (status, headers, _) = get(&base, &path).await;
        assert!(!status.is_server_error(), "{path}: {status}");
        assert!(headers.get("set-cookie").is_none(), "{path} set a cookie");
    }
    for path in ["/", "/errors"] {
        let r = client().post(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "POST {path}");
    }
    assert_eq!(snapshot(&store, &id).await, before);
}

/// Through the real binary: the pages are mounted beside the API, behind its token,
/// and a signed-in browser may follow the page's link to the report's JSON.
#[tokio::test(flavor = "multi_thread")]
async fn serve_mounts_the_pages_behind_the_api_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), ("1s", "2s"), "");
    // The token in the file, as an operator sets it (a top-level key, before the tables).
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("api_token = \"{TOKEN}\"\n{text}")).unwrap();
    let server = common::Server::start(&config, &[]);
    let base = server.base.clone();
    let http = client();
    let r = http
        .post(format!("{base}/v1/alerts"))
        .bearer_auth(TOKEN)
        .json(&json!({"detector": "guardduty", "rule_id": "r", "alert_key": "i-1",
                      "attributes": [{"type": "ipaddr", "key": "src", "value": "203.0.113.5", "context": ["remote"]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = r.json::<serde_json::Value>().await.unwrap()["accepted"][0]["report_id"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, headers, _) = get(&base, "/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["content-security-policy"], CONTENT_SECURITY_POLICY);
    let ok = http
        .post(format!("{base}/signin"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    let session = session_of(ok.headers()["set-cookie"].to_str().unwrap());
    let list = http
        .get(format!("{base}/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list.contains(&format!(r#"data-report-id="{id}""#)),
        "{list}"
    );
    let json = http
        .get(format!("{base}/v1/reports/{id}"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        json.status(),
        StatusCode::OK,
        "the JSON link works signed in"
    );
    let post = http
        .post(format!("{base}/v1/alerts"))
        .header("cookie", &session)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        post.status(),
        StatusCode::UNAUTHORIZED,
        "a cookie never writes"
    );
}

/// Beyond loopback without a token, `serve` does not start: pages included.
#[test]
fn serve_refuses_beyond_loopback_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), ("1s", "2s"), "");
    let out = std::process::Command::new(common::bin())
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--listen", "0.0.0.0:0"])
        .env_remove("ALERTRESPONDER_API_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("without an API token"));
}
