//! `emitter_answer`: what an HTTP target answers an emitter. A command emitter's output
//! is read (bounded) and thrown away, so the answers that are parsed are HTTP ones: the
//! status, headers and body of a webhook, Slack, PagerDuty or GitHub answer, and the
//! issue bodies the GitHub emitter reads back to find its own issue.
//!
//! Input layout: two bytes pick the status (100–599); then header lines `name: value`
//! up to a blank line; the rest is the body.
//!
//! Checked: `emit::github::api::failure` gives the outcome its table says (429 always
//! rate limited; rate limited only for 403 and 429; 408 and 5xx retried; the rest
//! rejected), a message that names the target and stays within a few hundred
//! characters and never shows the token sent, nor a long piece of it; every wait read
//! from an answer (`Retry-After`, `x-ratelimit-reset`) is at most a day, so that
//! adding it to a clock or to what was waited already cannot overflow; `last_page` is a
//! page number from 1; `Answer::json` is the JSON or `InvalidOutput` naming the target;
//! the GitHub markers of any report ID and version read back as written, and a body
//! is the issue of a report only when its first line is that report's marker.

use alertresponder_core::PluginError;
use alertresponder_plugins::emit::github::api::{failure, last_page};
use alertresponder_plugins::emit::github::markdown::{
    is_issue_of, is_version_of, issue_marker, opened_by, version_marker,
};
use alertresponder_plugins::emit::http::Answer;
use alertresponder_plugins::inspect::http::{retry_after_of, LONGEST_ASKED_WAIT as LONGEST_WAIT};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;

/// How the errors name the target.
const SHOWN: &str = "GitHub acme/security-alerts";
/// The token the request carries (the fuzz dictionary has it, so that answers echo it).
const TOKEN: &str = "tst_FuzzToken0123456789abcdefABCDEF";
/// The longest piece of the token an error may show: its prefix and a few characters,
/// never enough to be of use.
const MOST_OF_TOKEN_SHOWN: usize = "tst_".len() + 4;

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some((status, headers, body)) = answer(data) else {
        return;
    };
    // As the GitHub client redacts: the header's value and the bare token.
    let mut sent = HeaderMap::new();
    for value in [format!("Bearer {TOKEN}"), TOKEN.to_string()] {
        let mut value = HeaderValue::from_str(&value).expect("a token is a header value");
        value.set_sensitive(true);
        sent.append(AUTHORIZATION, value);
    }

    check_failure(status, &headers, body, &sent);
    if let Some(wait) = retry_after_of(&headers, crate::now()) {
        assert!(wait <= LONGEST_WAIT, "an answer asks to wait {wait:?}");
    }
    if let Some(page) = last_page(&headers) {
        assert!(page >= 1);
    }
    let ok = Answer {
        status: StatusCode::OK,
        headers: headers.clone(),
        body: body.to_vec(),
    };
    match ok.json(SHOWN) {
        Ok(_) => {}
        Err(PluginError::InvalidOutput(m)) => assert!(m.starts_with(SHOWN), "{m}"),
        Err(other) => panic!("an answer is JSON or invalid, not {other:?}"),
    }
    check_markers(body, status.as_u16());
}

/// The status, headers and body of `data`, as the module doc lays them out.
fn answer(data: &[u8]) -> Option<(StatusCode, HeaderMap, &[u8])> {
    let (code, rest) = data.split_first_chunk::<2>()?;
    let status = StatusCode::from_u16(100 + u16::from_le_bytes(*code) % 500).ok()?;
    let (head, body) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (&[][..], rest),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    Some((status, headers, body))
}

/// A GitHub error answer's outcome, message and wait.
fn check_failure(status: StatusCode, headers: &HeaderMap, body: &[u8], sent: &HeaderMap) {
    let code = status.as_u16();
    let message = match failure(status, headers, body, SHOWN, sent) {
        PluginError::RateLimited { retry_after } => {
            assert!(
                matches!(code, 403 | 429),
                "HTTP {code} taken as a rate limit"
            );
            let wait = retry_after.expect("GitHub's rate limit always has a wait");
            assert!(wait <= LONGEST_WAIT, "HTTP {code} asks to wait {wait:?}");
            return;
        }
        PluginError::Failed(m) => {
            assert!(
                code == 408 || status.is_server_error(),
                "HTTP {code} retried"
            );
            m
        }
        PluginError::Rejected(m) => {
            assert!(code != 429, "a 429 not taken as a rate limit");
            assert!(
                code != 408 && !status.is_server_error(),
                "HTTP {code} rejected"
            );
            m
        }
        other => panic!("HTTP {code} gave {other:?}"),
    };
    assert!(
        message.starts_with(&format!("{SHOWN}: HTTP {code}")),
        "{message}"
    );
    assert!(
        message.chars().count() <= 512,
        "a message of {} characters",
        message.chars().count()
    );
    assert_no_token(&message, body);
}

/// `message` never shows [`TOKEN`]; and when the answer echoed it, no piece of it longer
/// than [`MOST_OF_TOKEN_SHOWN`] either (an echo cut by a bound), unless the answer also
/// had that piece apart from the token (then it is the answer's own text).
fn assert_no_token(message: &str, body: &[u8]) {
    assert!(
        !message.contains(TOKEN),
        "the message shows the token: {message}"
    );
    let body = String::from_utf8_lossy(body);
    if !body.contains(TOKEN) {
        return;
    }
    let piece = &TOKEN[..=MOST_OF_TOKEN_SHOWN];
    if body.replace(TOKEN, "").contains(piece) {
        return;
    }
    assert!(
        !message.contains(piece),
        "the message shows a piece of the token it echoed: {message}"
    );
}

/// The markers of a report ID taken from the body, and the body as an issue body.
fn check_markers(body: &[u8], version: u16) {
    let text = String::from_utf8_lossy(body);
    let id: String = text.chars().take(40).collect();
    let version = u32::from(version);
    for id in ["rep-1", id.as_str()] {
        if opened_by(&text, id).is_some() {
            assert!(is_issue_of(&text, id), "opened_by without the issue marker");
        }
        let issue = format!(
            "{}\n{}\nbody",
            issue_marker(id),
            version_marker(id, version)
        );
        assert_eq!(opened_by(&issue, id), Some(version), "id {id:?}");
        assert!(is_issue_of(&issue, id));
        let comment = version_marker(id, version);
        assert!(is_version_of(&comment, id, version));
        assert!(!is_issue_of(&comment, id), "a comment taken for the issue");
        assert!(!is_version_of(&comment, id, version + 1));
    }
}
