//! One issue per report, a comment per later version, labels that follow the verdict.

use super::*;

#[tokio::test]
async fn a_first_version_looks_for_its_issue_then_opens_one_and_remembers_it() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    github(Mock::given(method("GET")))
        .and(path(format!("{REPO}/issues")))
        .and(query_param("labels", "alertresponder"))
        .and(query_param("state", "all"))
        .and(query_param("sort", "created"))
        .and(query_param("direction", "desc"))
        .and(query_param("per_page", "50"))
        .and(query_param("page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    github(Mock::given(method("POST")))
        .and(path(format!("{REPO}/issues")))
        .and(body_partial_json(json!({
            "title": "Test rule (guardduty)",
            "labels": ["alertresponder", "severity:urgent"],
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(issue_json(
            42,
            "",
            &["alertresponder", "severity:urgent"],
        )))
        .expect(1)
        .mount(&server)
        .await;
    emitter(&server, &store)
        .await
        .emit(&version(1, Severity::Urgent, None), 0)
        .await
        .unwrap();
    let sent = server.received_requests().await.unwrap();
    let body = body_of(&sent[1]);
    let text = body["body"].as_str().unwrap();
    assert!(text.starts_with(&format!(
        "{}\n{}\n",
        issue_marker("rep-1"),
        version_marker("rep-1", 1)
    )));
    assert!(body.get("assignees").is_none());
    assert_eq!(
        memo(&store).await,
        Some(json!({
            "repository": "acme/security-alerts",
            "issue": 42,
            "url": "https://github.com/acme/security-alerts/issues/42",
            "opened_by": 1,
            "severity": "urgent",
            "severity_version": 1,
        }))
    );
}

#[tokio::test]
async fn a_later_version_comments_on_the_remembered_issue_and_moves_the_severity_label() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    remember(
        &store,
        json!({"repository": "acme/security-alerts", "issue": 7, "opened_by": 1,
               "severity": "unclassified", "severity_version": 1}),
    )
    .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(0)
        .mount(&server)
        .await;
    github(Mock::given(method("POST")))
        .and(path(format!("{REPO}/issues/7/comments")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 9, "body": "…"})))
        .expect(1)
        .mount(&server)
        .await;
    github(Mock::given(method("POST")))
        .and(path(format!("{REPO}/issues/7/labels")))
        .and(body_partial_json(json!({"labels": ["severity:urgent"]})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([{"name": "severity:urgent"}])),
        )
        .expect(1)
        .mount(&server)
        .await;
    github(Mock::given(method("DELETE")))
        .and(path(format!(
            "{REPO}/issues/7/labels/severity:unclassified"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    // Not on the issue: GitHub answers 404, which is what we wanted.
    github(Mock::given(method("DELETE")))
        .and(path(format!("{REPO}/issues/7/labels/severity:safe")))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"message": "Label does not exist"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let v2 = version(2, Severity::Urgent, Some(Severity::Unclassified));
    emitter(&server, &store).await.emit(&v2, 0).await.unwrap();
    let sent = server.received_requests().await.unwrap();
    let comment = body_of(&sent[0]);
    let text = comment["body"].as_str().unwrap();
    assert!(text.starts_with(&format!("{}\n", version_marker("rep-1", 2))));
    assert!(text.contains("(re-reviewed: was unclassified)"), "{text}");
    let memo = memo(&store).await.unwrap();
    assert_eq!(memo["severity"], "urgent");
    assert_eq!(memo["severity_version"], 2);
}

#[tokio::test]
async fn a_crash_after_opening_finds_the_issue_by_its_marker_and_opens_no_second() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let ours = format!(
        "{}\n{}\ntext",
        issue_marker("rep-1"),
        version_marker("rep-1", 1)
    );
    let quoting = format!("about another report: `{}`", issue_marker("rep-1"));
    let mut pull = issue_json(14, &ours, &["alertresponder"]);
    pull["pull_request"] = json!({"url": "https://api.github.com/…/pulls/14"});
    github(Mock::given(method("GET")))
        .and(path(format!("{REPO}/issues")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            pull,
            issue_json(13, &quoting, &["alertresponder"]),
            issue_json(12, &ours, &["alertresponder", "severity:urgent"]),
            issue_json(11, "", &["alertresponder"]),
        ])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&server)
        .await;
    emitter(&server, &store)
        .await
        .emit(&version(1, Severity::Urgent, None), 1)
        .await
        .unwrap();
    let memo = memo(&store).await.unwrap();
    assert_eq!(memo["issue"], 12);
    assert_eq!(memo["opened_by"], 1);
    assert_eq!(memo["severity"], "urgent");
}

#[tokio::test]
async fn a_version_whose_issue_another_version_opened_comments_on_it() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let filler: Vec<Value> = (100..150)
        .map(|n| issue_json(n, "someone else's", &["alertresponder"]))
        .collect();
    github(Mock::given(method("GET")))
        .and(path(format!("{REPO}/issues")))
        .and(query_param("page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(filler)))
        .expect(1)
        .mount(&server)
        .await;
    let ours = format!(
        "{}\n{}\n",
        issue_marker("rep-1"),
        version_marker("rep-1", 1)
    );
    github(Mock::given(method("GET")))
        .and(path(format!("{REPO}/issues")))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([issue_json(
            5,
            &ours,
            &["alertresponder", "severity:unclassified"]
        )])))
        .expect(1)
        .mount(&server)
        .await;
    github(Mock::given(method("POST")))
        .and(path(format!("{REPO}/issues/5/comments")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .expect(1)
        .mount(&server)
        .await;
    // Unchanged severity: no label call.
    let v2 = version(2, Severity::Unclassified, Some(Severity::Unclassified));
    emitter(&server, &store).await.emit(&v2, 0).await.unwrap();
    assert_eq!(memo(&store).await.unwrap()["opened_by"], 1);
}

#[tokio::test]
async fn the_lookup_reads_at_most_two_pages_then_opens_the_issue() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let page: Vec<Value> = (1..=50)
        .map(|n| issue_json(n, "not ours", &["alertresponder"]))
        .collect();
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/issues")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(page)))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/issues")))
        .respond_with(ResponseTemplate::new(201).set_body_json(issue_json(99, "", &[])))
        .expect(1)
        .mount(&server)
        .await;
    emitter(&server, &store)
        .await
        .emit(&version(1, Severity::Safe, None), 0)
        .await
        .unwrap();
    assert_eq!(memo(&store).await.unwrap()["issue"], 99);
}

#[tokio::test]
async fn a_retried_version_finds_its_comment_on_the_last_pages_and_does_not_comment_twice() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    remember(
        &store,
        json!({"repository": "acme/security-alerts", "issue": 7, "opened_by": 1,
               "severity": "urgent", "severity_version": 2}),
    )
    .await;
    let comments = |n: usize, body: &str| -> Value {
        json!((0..n)
            .map(|i| json!({"id": i, "body": body}))
            .collect::<Vec<_>>())
    };
    let link = format!(
        "<{0}/repositories/1/issues/7/comments?per_page=100&page=2>; rel=\"next\", \
         <{0}/repositories/1/issues/7/comments?per_page=100&page=3>; rel=\"last\"",
        "https://elsewhere.example"
    );
    github(Mock::given(method("GET")))
        .and(path(format!("{REPO}/issues/7/comments")))
        .and(query_param("page", "1"))
        .and(query_param("per_page", "100"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", link.as_str())
                .set_body_json(comments(100, "people talking")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let ours = format!("{}\n## 🔴 Urgent", version_marker("rep-1", 2));
    github(Mock::given(method("GET")))
        .and(path(format!("{REPO}/issues/7/comments")))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(comments(1, &ours)))
        .expect(1)
        .mount(&server)
        .await;
    github(Mock::given(method("GET")))
        .and(path(format!("{REPO}/issues/7/comments")))
        .and(query_param("page", "3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(comments(3, "thanks")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&server)
        .await;
    let v2 = version(2, Severity::Urgent, Some(Severity::Urgent));
    emitter(&server, &store).await.emit(&v2, 3).await.unwrap();
}

#[tokio::test]
async fn a_first_attempt_never_reads_comments_and_a_retry_without_one_comments() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    remember(
        &store,
        json!({"repository": "acme/security-alerts", "issue": 7, "opened_by": 1,
               "severity": "urgent", "severity_version": 1}),
    )
    .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/issues/7/comments")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 1, "body": version_marker("rep-1", 3)}
        ])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/issues/7/comments")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 2})))
        .expect(2)
        .mount(&server)
        .await;
    let e = emitter(&server, &store).await;
    e.emit(&version(2, Severity::Urgent, Some(Severity::Urgent)), 0)
        .await
        .unwrap();
    // Version 3's comment is there, version 2's is not: a retry of 2 comments.
    e.emit(&version(2, Severity::Urgent, Some(Severity::Urgent)), 1)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_version_delivered_again_after_it_opened_the_issue_sends_nothing() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    remember(
        &store,
        json!({"repository": "acme/security-alerts", "issue": 7, "opened_by": 1,
               "severity": "urgent", "severity_version": 1}),
    )
    .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    emitter(&server, &store)
        .await
        .emit(&version(1, Severity::Urgent, None), 2)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_memo_of_another_repository_is_not_this_ones() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    remember(
        &store,
        json!({"repository": "acme/old-repo", "issue": 7, "opened_by": 1}),
    )
    .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/issues")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/issues")))
        .respond_with(ResponseTemplate::new(201).set_body_json(issue_json(3, "", &[])))
        .expect(1)
        .mount(&server)
        .await;
    emitter(&server, &store)
        .await
        .emit(&version(2, Severity::Urgent, None), 0)
        .await
        .unwrap();
    assert_eq!(memo(&store).await.unwrap()["issue"], 3);
}

#[tokio::test]
async fn an_older_version_delivered_late_comments_but_leaves_the_labels() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    remember(
        &store,
        json!({"repository": "acme/security-alerts", "issue": 7, "opened_by": 1,
               "severity": "urgent", "severity_version": 3}),
    )
    .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/issues/7/comments")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 2})))
        .expect(1)
        .mount(&server)
        .await;
    emitter(&server, &store)
        .await
        .emit(&version(2, Severity::Safe, Some(Severity::Unclassified)), 0)
        .await
        .unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_label_change_github_refuses_is_logged_and_one_that_fails_is_retried_without_a_second_comment(
) {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let before = json!({"repository": "acme/security-alerts", "issue": 7, "opened_by": 1,
                        "severity": "unclassified", "severity_version": 1});
    remember(&store, before.clone()).await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/issues/7/comments")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 2})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/issues/7/labels")))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "message": "Resource not accessible by personal access token",
            "documentation_url": "https://docs.github.com/rest/issues/labels#add-labels-to-an-issue",
        })))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    let e = emitter(&server, &store).await;
    let v2 = version(2, Severity::Urgent, Some(Severity::Unclassified));
    e.emit(&v2, 0).await.unwrap();
    assert_eq!(memo(&store).await.unwrap(), before);

    // Now GitHub fails the label call: the delivery fails and is retried, and the retry
    // finds its comment rather than posting it again.
    server.reset().await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/issues/7/labels")))
        .respond_with(ResponseTemplate::new(502).set_body_string("Bad Gateway"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/issues/7/comments")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 3})))
        .expect(1)
        .mount(&server)
        .await;
    let v3 = version(3, Severity::Urgent, Some(Severity::Unclassified));
    let err = e.emit(&v3, 0).await.unwrap_err();
    assert!(
        matches!(err, PluginError::Failed(_)) && err.is_retryable(),
        "{err:?}"
    );
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/issues/7/comments")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 3, "body": format!("{}\n…", version_marker("rep-1", 3))}
        ])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/issues/7/labels")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(2)
        .mount(&server)
        .await;
    e.emit(&v3, 1).await.unwrap();
    assert_eq!(memo(&store).await.unwrap()["severity"], "urgent");
}
