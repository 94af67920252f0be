//! What every page shows the same way: attacker text bounded and made printable
//! ([`cut`]), times, severity badges, query strings and paths of our own.
//!
//! Escaping for HTML is askama's (every `{{ }}` of a `.html` template, attributes
//! included); this module only bounds text and builds what goes into `href`s, which
//! are always paths of this server with percent-encoded parts.

use alertresponder_core::model::{InspectionStatus, Severity};
use alertresponder_core::render::sanitize;
use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Longest value shown in a table cell or a line.
pub const SHORT: usize = 120;
/// Longest text shown in a block (a reason, a description, a section line).
pub const LONG: usize = 2000;
/// Longest rejected input shown on the error page.
pub const INPUT: usize = 4000;

/// `s` cut to `max` characters with a visible marker (`… (N more chars)`), control and
/// direction-changing characters shown escaped: printable, bounded, not yet escaped
/// for HTML (askama does that).
pub fn cut(s: &str, max: usize) -> String {
    sanitize(s, max)
}

/// A time as the pages show it: `2026-11-28 14:05:08 UTC`.
pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An optional time, or a dash.
pub fn maybe_time(t: Option<DateTime<Utc>>) -> String {
    t.map(time).unwrap_or_else(|| "—".into())
}

/// A severity badge: its label and its CSS class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Badge {
    /// What it says.
    pub label: &'static str,
    /// `sev-urgent`, `sev-unclassified`, `sev-safe` or `sev-pending`.
    pub class: &'static str,
}

impl Badge {
    /// The badge of a published severity, or of a report not yet published.
    pub fn of(severity: Option<Severity>) -> Self {
        match severity {
            Some(Severity::Urgent) => Badge {
                label: "urgent",
                class: "sev-urgent",
            },
            Some(Severity::Unclassified) => Badge {
                label: "unclassified",
                class: "sev-unclassified",
            },
            Some(Severity::Safe) => Badge {
                label: "safe",
                class: "sev-safe",
            },
            None => Badge {
                label: "not published",
                class: "sev-pending",
            },
        }
    }
}

/// An inspection outcome's label and CSS class.
pub fn outcome(status: InspectionStatus) -> (&'static str, &'static str) {
    match status {
        InspectionStatus::Ok => ("ok", "st-ok"),
        InspectionStatus::NothingFound => ("nothing found", "st-nothing"),
        InspectionStatus::Failed => ("failed", "st-failed"),
        InspectionStatus::TimedOut => ("timed out", "st-failed"),
        InspectionStatus::RateLimited => ("rate limited", "st-unknown"),
        InspectionStatus::Skipped => ("skipped", "st-unknown"),
    }
}

/// Characters kept as they are in a path segment or query value: letters, digits and
/// `-._~` (RFC 3986 unreserved); everything else is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `s` as one percent-encoded URL component (a path segment or a query value).
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// The path of a report's page.
pub fn report_path(id: &str) -> String {
    format!("/reports/{}", encode(id))
}

/// A query string (`a=1&b=2`, no `?`) of the pairs whose value is not empty.
pub fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `next` if it is a path of this server (`/…`, not `//…` nor `/\…`, no scheme, no
/// control character), else `/`: where sign-in may send a browser back to.
pub fn own_path(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 2048
        && !next.chars().any(|c| c.is_control() || c == '\\');
    if ok {
        next.to_string()
    } else {
        "/".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_control_text_is_cut_with_a_marker() {
        let s = cut(&"a".repeat(10_000), 10);
        assert!(s.starts_with("aaaaaaaaaa…"), "{s}");
        assert!(s.contains("9990 more"), "{s}");
        assert_eq!(cut("a\u{202e}b\u{1b}[31m", 50), "a\\u{202e}b\\u{1b}[31m");
    }

    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(encode("a b/<\"&?#"), "a%20b%2F%3C%22%26%3F%23");
        assert_eq!(report_path("../x"), "/reports/..%2Fx");
        assert_eq!(
            query(&[("q", "10.0.0.1"), ("x", ""), ("d", "a&b")]),
            "q=10.0.0.1&d=a%26b"
        );
    }

    #[test]
    fn only_own_paths_are_followed_after_sign_in() {
        assert_eq!(own_path("/reports/x?y=1"), "/reports/x?y=1");
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "/a\nb",
            "",
        ] {
            assert_eq!(own_path(bad), "/", "{bad:?}");
        }
    }
}
