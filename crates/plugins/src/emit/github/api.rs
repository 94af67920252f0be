//! The GitHub REST calls the emitter makes, and how GitHub's answers become outcomes.
//!
//! Every request carries `Authorization: Bearer <token>` (a sensitive header, never
//! printed), `Accept: application/vnd.github+json`, `X-GitHub-Api-Version: 2022-11-28`
//! and a `User-Agent` (GitHub refuses a request without one). Paths are built one
//! percent-encoded segment at a time (`/repos/{owner}/{repo}/issues/{n}/labels/{name}`).
//!
//! | answer | outcome |
//! |---|---|
//! | 2xx | the answer |
//! | 403 or 429 with `x-ratelimit-remaining: 0` (primary limit) | [`PluginError::RateLimited`] until `Retry-After`, else `x-ratelimit-reset` |
//! | 403 or 429 with `Retry-After`, or saying "secondary rate limit" | [`PluginError::RateLimited`], `Retry-After` or a minute (GitHub's advice) |
//! | other 429 | [`PluginError::RateLimited`], a minute |
//! | 401 | [`PluginError::Rejected`]: bad credentials (the token is wrong, expired or revoked) |
//! | other 403 | [`PluginError::Rejected`]: the token may not do this |
//! | 404 | [`PluginError::Rejected`]: no such repository, or the token cannot see it (removing a label that is not there is fine) |
//! | 410 | [`PluginError::Rejected`]: issues are disabled in the repository (or the issue was deleted) |
//! | 422 | [`PluginError::Rejected`]: validation failed, with GitHub's `errors` |
//! | 3xx | [`PluginError::Rejected`]: not followed (a moved repository: configure its new name) |
//! | 408, 5xx, a network error | [`PluginError::Failed`]: the runtime retries |
//! | no answer in time | [`PluginError::TimedOut`] |
//!
//! GitHub's rate-limit answers are 403s that only their headers tell apart from a
//! refusal, so this module reads the status itself rather than through
//! [`crate::emit::http::send`] (which keeps no header of an error answer); it shares that
//! module's [`Answer`] and bounds.

use std::time::Duration;

use alertresponder_core::PluginError;
use chrono::Utc;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, LINK, USER_AGENT};
use reqwest::{Client, Method, StatusCode, Url};
use serde_json::{json, Value};

use crate::emit::http::{exchange, Answer, ERROR_BODY_CHARS, MAX_ANSWER_BYTES};
use crate::inspect::http::{excerpt, redact, retry_after, retry_after_of, with_segments};
use crate::webhook::error_chain;

/// Issues read per page when looking for a report's issue.
pub const LOOKUP_PER_PAGE: usize = 50;
/// Pages read when looking for a report's issue: the 100 most recently created.
pub const LOOKUP_PAGES: u32 = 2;
/// Comments per page (GitHub's most).
pub const COMMENTS_PER_PAGE: usize = 100;
/// The most of a list answer read (issue bodies are up to 65,536 characters each).
pub const MAX_LIST_BYTES: usize = 8 * 1024 * 1024;
/// How long to wait after a rate-limit answer that does not say (GitHub: "at least one
/// minute").
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// The REST API version asked for.
pub const API_VERSION: &str = "2022-11-28";

/// An issue as GitHub answers it (the fields the emitter reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Its number in the repository.
    pub number: u64,
    /// Its page.
    pub html_url: String,
    /// The names of its labels.
    pub labels: Vec<String>,
    /// Its body (Markdown), empty when it has none.
    pub body: String,
}

impl Issue {
    fn of(value: &Value) -> Option<Issue> {
        Some(Issue {
            number: value.get("number")?.as_u64()?,
            html_url: value
                .get("html_url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            labels: value
                .get("labels")
                .and_then(Value::as_array)
                .map(|labels| {
                    labels
                        .iter()
                        .filter_map(|l| l.get("name").and_then(Value::as_str).map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            body: value
                .get("body")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
    }
}

/// One repository's issues API, with the token.
pub struct Api {
    client: Client,
    base: Url,
    owner: String,
    repo: String,
    headers: HeaderMap,
    /// The sensitive values an error must never show: the `Authorization` value, and
    /// the bare token (an answer may echo either).
    redactions: HeaderMap,
    timeout: Duration,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base.as_str())
            .field("repository", &format_args!("{}/{}", self.owner, self.repo))
            .finish_non_exhaustive()
    }
}

impl Api {
    /// The API of `owner/repo` at `base`; `authorization` is the sensitive
    /// `Bearer <token>` value.
    pub fn new(
        client: Client,
        base: Url,
        owner: &str,
        repo: &str,
        mut authorization: HeaderValue,
        timeout: Duration,
    ) -> Self {
        authorization.set_sensitive(true);
        let mut redactions = HeaderMap::new();
        redactions.append(reqwest::header::AUTHORIZATION, authorization.clone());
        if let Some(mut bare) = authorization
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|t| HeaderValue::from_str(t).ok())
        {
            bare.set_sensitive(true);
            redactions.append(reqwest::header::AUTHORIZATION, bare);
        }
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, authorization);
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static(API_VERSION),
        );
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("alertresponder/", env!("CARGO_PKG_VERSION"))),
        );
        Self {
            client,
            base,
            owner: owner.to_string(),
            repo: repo.to_string(),
            headers,
            redactions,
            timeout,
        }
    }

    /// `owner/repo`, as errors name it.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }

    /// `{base}/repos/{owner}/{repo}/{tail…}`, each segment percent-encoded.
    fn url(&self, tail: &[&str]) -> Result<Url, PluginError> {
        let mut segments = vec!["repos", self.owner.as_str(), self.repo.as_str()];
        segments.extend_from_slice(tail);
        with_segments(&self.base, &segments)
            .map_err(|e| PluginError::Rejected(format!("cannot build the request path: {e}")))
    }

    /// Opens an issue (`POST /repos/{o}/{r}/issues`, 201).
    pub async fn create_issue(
        &self,
        title: &str,
        body: &str,
        labels: &[String],
        assignees: &[String],
    ) -> Result<Issue, PluginError> {
        let mut request = json!({ "title": title, "body": body, "labels": labels });
        if !assignees.is_empty() {
            request["assignees"] = json!(assignees);
        }
        let url = self.url(&["issues"])?;
        let answer = self
            .send(
                Method::POST,
                url,
                Some(&request),
                MAX_ANSWER_BYTES,
                "opening an issue",
            )
            .await?
            .ok_or_else(|| self.not_found("opening an issue"))?;
        Issue::of(&answer.json(&self.shown())?).ok_or_else(|| {
            PluginError::InvalidOutput(format!("{}: the new issue has no number", self.shown()))
        })
    }

    /// The most recently created issue (of the last [`LOOKUP_PAGES`] pages, with `label`
    /// when given) whose body `is_ours`: `GET /repos/{o}/{r}/issues?state=all&sort=created
    /// &direction=desc` — consistent, unlike the search API (see the module doc of
    /// [`super`]). Pull requests are skipped.
    pub async fn find_issue(
        &self,
        label: Option<&str>,
        is_ours: impl Fn(&str) -> bool,
    ) -> Result<Option<Issue>, PluginError> {
        for page in 1..=LOOKUP_PAGES {
            let mut url = self.url(&["issues"])?;
            {
                let mut query = url.query_pairs_mut();
                query
                    .append_pair("state", "all")
                    .append_pair("sort", "created")
                    .append_pair("direction", "desc")
                    .append_pair("per_page", &LOOKUP_PER_PAGE.to_string())
                    .append_pair("page", &page.to_string());
                if let Some(label) = label {
                    query.append_pair("labels", label);
                }
            }
            let answer = self
                .send(Method::GET, url, None, MAX_LIST_BYTES, "listing issues")
                .await?
                .ok_or_else(|| self.not_found("listing issues"))?;
            let items = self.array(&answer, "listing issues")?;
            let found = items
                .iter()
                .filter(|i| i.get("pull_request").is_none())
                .filter_map(Issue::of)
                .find(|i| is_ours(&i.body));
            if found.is_some() {
                return Ok(found);
            }
            if items.len() < LOOKUP_PER_PAGE {
                break;
            }
        }
        Ok(None)
    }

    /// Whether one of the last comments of `issue` (its last page of
    /// [`COMMENTS_PER_PAGE`], and the page before when the last is not full: at least the
    /// last 100) `is_ours`.
    pub async fn has_comment(
        &self,
        issue: u64,
        is_ours: impl Fn(&str) -> bool,
    ) -> Result<bool, PluginError> {
        let number = issue.to_string();
        let page = |n: u32| -> Result<Url, PluginError> {
            let mut url = self.url(&["issues", &number, "comments"])?;
            url.query_pairs_mut()
                .append_pair("per_page", &COMMENTS_PER_PAGE.to_string())
                .append_pair("page", &n.to_string());
            Ok(url)
        };
        let what = "listing comments";
        let first = self
            .send(Method::GET, page(1)?, None, MAX_LIST_BYTES, what)
            .await?
            .ok_or_else(|| self.not_found(what))?;
        let last = last_page(&first.headers).unwrap_or(1);
        let mut pages = vec![self.array(&first, what)?];
        if last > 1 {
            let answer = self
                .send(Method::GET, page(last)?, None, MAX_LIST_BYTES, what)
                .await?
                .ok_or_else(|| self.not_found(what))?;
            let items = self.array(&answer, what)?;
            if items.len() < COMMENTS_PER_PAGE && last > 2 {
                let before = self
                    .send(Method::GET, page(last - 1)?, None, MAX_LIST_BYTES, what)
                    .await?
                    .ok_or_else(|| self.not_found(what))?;
                pages.push(self.array(&before, what)?);
            }
            pages.push(items);
        }
        Ok(pages
            .iter()
            .flatten()
            .any(|c| c.get("body").and_then(Value::as_str).is_some_and(&is_ours)))
    }

    /// Comments on `issue` (`POST /repos/{o}/{r}/issues/{n}/comments`, 201).
    pub async fn comment(&self, issue: u64, body: &str) -> Result<(), PluginError> {
        let url = self.url(&["issues", &issue.to_string(), "comments"])?;
        let what = "commenting";
        self.send(
            Method::POST,
            url,
            Some(&json!({ "body": body })),
            MAX_ANSWER_BYTES,
            what,
        )
        .await?
        .ok_or_else(|| self.not_found(what))?;
        Ok(())
    }

    /// Adds `labels` to `issue` (`POST /repos/{o}/{r}/issues/{n}/labels`); the others stay.
    pub async fn add_labels(&self, issue: u64, labels: &[&str]) -> Result<(), PluginError> {
        let url = self.url(&["issues", &issue.to_string(), "labels"])?;
        let what = "adding labels";
        self.send(
            Method::POST,
            url,
            Some(&json!({ "labels": labels })),
            MAX_ANSWER_BYTES,
            what,
        )
        .await?
        .ok_or_else(|| self.not_found(what))?;
        Ok(())
    }

    /// Removes `label` from `issue` (`DELETE /repos/{o}/{r}/issues/{n}/labels/{name}`); a
    /// label the issue does not have (404) is fine.
    pub async fn remove_label(&self, issue: u64, label: &str) -> Result<(), PluginError> {
        let url = self.url(&["issues", &issue.to_string(), "labels", label])?;
        self.send(
            Method::DELETE,
            url,
            None,
            MAX_ANSWER_BYTES,
            "removing a label",
        )
        .await?;
        Ok(())
    }

    /// What errors call the target.
    fn shown(&self) -> String {
        format!("GitHub {}", self.repository())
    }

    fn not_found(&self, what: &str) -> PluginError {
        PluginError::Rejected(format!(
            "{} ({what}): HTTP 404: the repository does not exist, or the token cannot see it",
            self.shown()
        ))
    }

    fn array(&self, answer: &Answer, what: &str) -> Result<Vec<Value>, PluginError> {
        match answer.json(&self.shown())? {
            Value::Array(items) => Ok(items),
            _ => Err(PluginError::InvalidOutput(format!(
                "{} ({what}): the answer is not a list",
                self.shown()
            ))),
        }
    }

    /// Sends one request; `Ok(None)` is a 404 (the caller says what it means).
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        limit: usize,
        what: &str,
    ) -> Result<Option<Answer>, PluginError> {
        let shown = format!("{} ({what})", self.shown());
        let mut request = self
            .client
            .request(method, url)
            .headers(self.headers.clone());
        if let Some(body) = body {
            request = request.json(body);
        }
        let request = request.build().map_err(|e| {
            PluginError::Failed(format!("{shown}: {}", error_chain(&e.without_url())))
        })?;
        let answer = exchange(&self.client, request, &shown, self.timeout, limit).await?;
        let (status, headers, body) = (answer.status, &answer.headers, &answer.body);
        if status.is_success() {
            return Ok(Some(answer));
        }
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Err(failure(status, headers, body, &shown, &self.redactions))
    }
}

/// What a GitHub error answer means; see the module's table. `sent` are the request's
/// headers, whose sensitive values are redacted from the message.
pub fn failure(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    shown: &str,
    sent: &HeaderMap,
) -> PluginError {
    let text = github_message(body, sent);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let now = Utc::now();
    let spent = header("x-ratelimit-remaining") == Some("0");
    let asked = header("retry-after").and_then(|v| retry_after(v, now));
    let limited = matches!(status.as_u16(), 403 | 429)
        && (spent
            || asked.is_some()
            || status == StatusCode::TOO_MANY_REQUESTS
            || text.to_ascii_lowercase().contains("rate limit"));
    if limited {
        // The primary limit says when it resets; a secondary one may say Retry-After; else
        // GitHub asks for at least a minute (x-ratelimit-reset is then the hour's reset).
        let wait = if spent {
            retry_after_of(headers, now)
        } else {
            asked
        };
        return PluginError::RateLimited {
            retry_after: Some(wait.unwrap_or(DEFAULT_RATE_LIMIT_WAIT)),
        };
    }
    let why = match status.as_u16() {
        401 => "bad credentials: the token is wrong, expired or revoked",
        403 => "forbidden: the token may not do this (it needs Issues: read and write on the repository)",
        410 => "gone: issues are disabled in the repository, or the issue was deleted",
        422 => "validation failed",
        _ if status.is_redirection() => {
            "redirected, not followed: the repository moved (configure its new name)"
        }
        _ => "",
    };
    let mut message = format!("{shown}: HTTP {}", status.as_u16());
    for part in [why, text.as_str()] {
        if !part.is_empty() {
            message.push_str(": ");
            message.push_str(part);
        }
    }
    let message = redact(&message, sent);
    if status == StatusCode::REQUEST_TIMEOUT || status.is_server_error() {
        PluginError::Failed(message)
    } else {
        PluginError::Rejected(message)
    }
}

/// GitHub's error message (`message`, and each of `errors`' `field`/`code`/`message`),
/// bounded (the values of `sent`'s sensitive headers redacted before the cut); the raw
/// body when it is not JSON.
fn github_message(body: &[u8], sent: &HeaderMap) -> String {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return excerpt(String::from_utf8_lossy(body).trim(), sent, ERROR_BODY_CHARS);
    };
    let mut parts = Vec::new();
    if let Some(m) = json.get("message").and_then(Value::as_str) {
        parts.push(m.to_string());
    }
    for e in json
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(5)
    {
        let field = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default();
        let detail = [
            field("resource"),
            field("field"),
            field("code"),
            field("message"),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        if !detail.is_empty() {
            parts.push(detail);
        }
        if let Some(s) = e.as_str() {
            parts.push(s.to_string());
        }
    }
    excerpt(&parts.join("; "), sent, ERROR_BODY_CHARS)
}

/// The page number of the `Link` header's `rel="last"`: only the number is taken, never
/// the URL (a header must not send the token elsewhere).
pub fn last_page(headers: &HeaderMap) -> Option<u32> {
    let link = headers.get(LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        if !params.split(';').any(|p| p.trim() == "rel=\"last\"") {
            return None;
        }
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let url = Url::parse(target).ok()?;
        let page = url
            .query_pairs()
            .find(|(k, _)| k == "page")?
            .1
            .parse::<u32>()
            .ok()?;
        (page >= 1).then_some(page)
    })
}
