//! GitHub's errors and rate limits, the configuration's checks, the token kept secret.

use super::*;

/// What `emit` of a first version returns when the lookup is answered `status`.
async fn outcome_of(status: u16, headers: &[(&str, String)], body: Value) -> PluginError {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let mut answer = ResponseTemplate::new(status).set_body_json(body);
    for (k, v) in headers {
        answer = answer.insert_header(*k, v.as_str());
    }
    Mock::given(method("GET"))
        .respond_with(answer)
        .expect(1)
        .mount(&server)
        .await;
    emitter(&server, &store)
        .await
        .emit(&version(1, Severity::Urgent, None), 0)
        .await
        .unwrap_err()
}

#[tokio::test]
async fn githubs_answers_are_read_as_rate_limits_refusals_and_failures() {
    let reset = (chrono::Utc::now().timestamp() + 120).to_string();
    let primary = outcome_of(
        403,
        &[
            ("x-ratelimit-limit", "5000".into()),
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", reset.clone()),
        ],
        json!({"message": "API rate limit exceeded for user ID 1."}),
    )
    .await;
    let PluginError::RateLimited {
        retry_after: Some(wait),
    } = primary
    else {
        panic!("{primary:?}");
    };
    assert!((100..=121).contains(&wait.as_secs()), "{wait:?}");
    // The secondary limit: Retry-After wins over the hour's reset.
    let secondary = outcome_of(
        403,
        &[
            ("retry-after", "30".into()),
            ("x-ratelimit-remaining", "4000".into()),
            ("x-ratelimit-reset", reset.clone()),
        ],
        json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}),
    )
    .await;
    assert_eq!(
        secondary,
        PluginError::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        }
    );
    let unsaid = outcome_of(
        403,
        &[
            ("x-ratelimit-remaining", "4000".into()),
            ("x-ratelimit-reset", reset),
        ],
        json!({"message": "You have exceeded a secondary rate limit."}),
    )
    .await;
    assert_eq!(
        unsaid,
        PluginError::RateLimited {
            retry_after: Some(Duration::from_secs(60))
        }
    );
    assert_eq!(
        outcome_of(429, &[("retry-after", "7".into())], json!({})).await,
        PluginError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    let refused = [
        (
            401,
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
            "bad credentials",
        ),
        (
            403,
            json!({"message": "Resource not accessible by integration"}),
            "forbidden",
        ),
        (404, json!({"message": "Not Found"}), "does not exist"),
        (
            410,
            json!({"message": "Issues are disabled for this repo"}),
            "issues are disabled",
        ),
        (
            422,
            json!({"message": "Validation Failed", "errors": [{"resource": "Issue", "code": "invalid", "field": "labels"}]}),
            "Issue labels invalid",
        ),
    ];
    for (status, body, says) in refused {
        let e = outcome_of(status, &[], body).await;
        let PluginError::Rejected(message) = &e else {
            panic!("{status}: {e:?}");
        };
        assert!(message.contains(says), "{status}: {message}");
        assert!(message.starts_with("GitHub acme/security-alerts (listing issues): HTTP "));
        assert!(!e.is_retryable());
    }
    for status in [500, 502, 503, 408] {
        let e = outcome_of(status, &[], json!({"message": "Server Error"})).await;
        assert!(
            matches!(e, PluginError::Failed(_)) && e.is_retryable(),
            "{status}: {e:?}"
        );
    }
}

#[tokio::test]
async fn the_token_is_never_in_an_error_or_debug_output() {
    let echoed = json!({"message": format!("Bad credentials: Bearer {TOKEN}")});
    let e = outcome_of(401, &[], echoed).await;
    assert!(!e.to_string().contains(TOKEN), "{e}");
    assert!(e.to_string().contains("***"), "{e}");
    let bare = outcome_of(
        401,
        &[],
        json!({"message": format!("token {TOKEN} revoked")}),
    )
    .await;
    assert!(!bare.to_string().contains(TOKEN), "{bare}");
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let debug = format!("{:?}", emitter(&server, &store).await);
    assert!(
        !debug.contains(TOKEN) && !debug.contains("s3cret"),
        "{debug}"
    );
    assert!(debug.contains("acme/security-alerts"), "{debug}");
}

#[tokio::test]
async fn assignees_and_custom_labels_go_on_the_new_issue_with_a_link_to_the_report() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    Mock::given(method("GET"))
        .and(query_param("labels", "security"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/issues")))
        .and(body_partial_json(json!({
            "labels": ["security", "triage", "sev/1"],
            "assignees": ["oncall-bot"],
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(issue_json(1, "", &["security"])))
        .expect(1)
        .mount(&server)
        .await;
    let config = config(
        "labels = [\"security\", \"triage\", \"security\"]\n\
         severity_labels = { urgent = \"sev/1\" }\n\
         assignees = [\"oncall-bot\"]\n\
         report_url = \"https://ar.example/reports/{id}\"\n",
    );
    let e = build_with(&server.uri(), Some(store), config)
        .await
        .unwrap();
    e.emit(&version(1, Severity::Urgent, None), 0)
        .await
        .unwrap();
    let sent = server.received_requests().await.unwrap();
    let body = body_of(&sent[1]);
    assert!(body["body"]
        .as_str()
        .unwrap()
        .contains("[Open the report](<https://ar.example/reports/rep-1>)"));
}

#[tokio::test]
async fn configuration_errors_name_the_key_never_the_token() {
    let check = |extra: &'static str, key: &'static str| async move {
        let store = Arc::new(MemoryStore::new());
        let e = build_with("https://api.github.com", Some(store), config(extra))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(&format!("{key}: ")), "{extra}: {e}");
        assert!(!e.contains(TOKEN), "{e}");
    };
    check("labels = [\"a,b\"]", "emitter[1].labels[0]").await;
    check("labels = [\"\"]", "emitter[1].labels[0]").await;
    check(
        "severity_labels = { urgent = \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" }",
        "emitter[1].severity_labels.urgent",
    )
    .await;
    check("assignees = [\"not a login\"]", "emitter[1].assignees[0]").await;
    check(
        "report_url = \"https://ar.example/reports\"",
        "emitter[1].report_url",
    )
    .await;
    for bad in [
        "acme", "acme/a/b", "ac me/x", "/x", "acme/", "acme/..", "acme/x?y",
    ] {
        let mut c = config("");
        c.repository = bad.into();
        let e = build_with(
            "https://api.github.com",
            Some(Arc::new(MemoryStore::new())),
            c,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("emitter[1].repository: "), "{bad}: {e}");
    }
    let e = build_with(
        "http://github.example/api/v3",
        Some(Arc::new(MemoryStore::new())),
        config(""),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("emitter[1].url: "), "{e}");
    let e = build_with("https://api.github.com", None, config(""))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("emitter[1]: ") && e.contains("delivery log"),
        "{e}"
    );
    // A typo is an error; the token is a reference, never a string in the file.
    assert!(
        toml::from_str::<Config>("repository = \"a/b\"\ntoken = { env = \"T\" }\nlabel = []")
            .is_err()
    );
    assert!(toml::from_str::<Config>("repository = \"a/b\"\ntoken = \"tst_inline\"").is_err());
}

#[tokio::test]
async fn a_token_that_cannot_be_a_header_is_named_not_shown() {
    let secrets = EnvSecret {
        name: "GH_TOKEN",
        value: "tst_bad\ntoken",
    };
    let ctx = EmitContext {
        base: BuildContext {
            name: "issues",
            key: "emitter[1]",
            timeout: Duration::from_secs(5),
            secrets: &secrets,
            base_dir: Path::new("/nonexistent"),
        },
        deliveries: Some(Arc::new(MemoryStore::new())),
        clock: Arc::new(SystemClock),
        filter: crate::config::SeverityFilter::all(),
    };
    let e = GitHubEmitter::build(&ctx, config(""))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("emitter[1].token: "), "{e}");
    assert!(!e.contains("tst_bad"), "{e}");
}

#[tokio::test]
async fn an_enterprise_base_path_and_odd_label_names_are_percent_encoded() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    remember(
        &store,
        json!({"repository": "acme/security-alerts", "issue": 7, "opened_by": 1,
               "severity": "safe", "severity_version": 1}),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/api/v3/repos/acme/security-alerts/issues/7/comments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v3/repos/acme/security-alerts/issues/7/labels"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(
            "/api/v3/repos/acme/security-alerts/issues/7/labels/sev%201%2F%3F",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(
            "/api/v3/repos/acme/security-alerts/issues/7/labels/safe%20%23ok",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    let config = config("severity_labels = { unclassified = \"sev 1/?\", safe = \"safe #ok\" }\n");
    let e = build_with(&format!("{}/api/v3", server.uri()), Some(store), config)
        .await
        .unwrap();
    e.emit(&version(2, Severity::Urgent, Some(Severity::Safe)), 0)
        .await
        .unwrap();
}
