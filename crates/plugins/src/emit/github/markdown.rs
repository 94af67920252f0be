//! A report as GitHub Markdown: the issue's title, its body, and the comment each later
//! version adds — and the one place where attacker text is escaped for GitHub.
//!
//! # Escaping
//!
//! GitHub renders Markdown (CommonMark with tables and autolinks), then runs filters on
//! the HTML text: `@user` and `@org/team` mention (and notify), `#1`, `GH-1` and
//! `owner/repo#1` cross-reference (and leave a backlink on the other issue), a bare URL
//! becomes a link, `:emoji:` an image. Every one of those filters skips `<code>`.
//! So every string that comes from an alert, an inspector or a reviewer is written as an
//! **inline code span** ([`code`], [`cell`] in a table): inside one, Markdown, HTML,
//! entities, links, images, mentions and references are all literal text. What a code
//! span cannot hold is made visible instead: control, bidi and line-separator characters
//! become `\u{…}` (a line break would end the span's paragraph or table row and start a
//! heading or a new row), and a `|` in a table cell becomes `\|`, the table's own escape.
//! The fence is one backtick longer than the longest run of backticks in the text, so the
//! text cannot close it; a code span never starts a line, so a fence of three backticks
//! cannot open a code block (its "info string" would hold backticks, which CommonMark
//! refuses anyway).
//!
//! An issue title is plain text, but GitHub still links `#1` in it: [`title`] puts a
//! zero-width space after every `@` and `#` and inside `GH-1`, so no mention or reference
//! can form, and cuts it to GitHub's 256 characters.
//!
//! # Markers
//!
//! The first line of an issue body is `<!-- alertresponder:report=<id> -->`, the first
//! line of each version's text (the issue's second line, a comment's first)
//! `<!-- alertresponder:report=<id> version=<n> -->`: how the emitter finds its issue and
//! its comments again ([`issue_marker`], [`version_marker`]). They are HTML comments, so
//! nobody sees them; attacker text cannot forge one where it is looked for, since
//! markers are only matched at the start of a body or of its second line, where no
//! attacker text is ever written.

use std::fmt::Write as _;

use alertresponder_core::model::Severity;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::emit::digest::Digest;

/// GitHub's longest issue title, in characters.
pub const MAX_TITLE_CHARS: usize = 256;
/// GitHub's longest issue or comment body, in characters.
pub const GITHUB_MAX_BODY_CHARS: usize = 65_536;
/// The most characters a body is given: under GitHub's limit with room to spare (GitHub
/// may count a character outside the Basic Multilingual Plane twice).
pub const MAX_BODY_CHARS: usize = 60_000;
// A version's text and the issue marker stay under GitHub's own limit.
const _: () = assert!(MAX_BODY_CHARS + 200 < GITHUB_MAX_BODY_CHARS);

/// The most characters of one string written in a code span.
pub const MAX_SPAN_CHARS: usize = 1_000;

/// What the footer and the "… more" notes may take: kept free while lists are written.
const RESERVE_CHARS: usize = 2_000;

/// A zero-width space: breaks a mention or a reference without changing what one reads.
const ZWSP: char = '\u{200b}';

/// What a report ID keeps unencoded in a marker: letters, digits and `-` (a UUID).
const MARKER_ID: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-');

/// Whether `c` must be shown as `\u{…}` rather than written: control characters (line
/// breaks among them), line and paragraph separators, zero-width and bidi controls, BOM.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// `text` with hidden characters shown as `\u{…}`, cut to `max` characters (saying how
/// many more there were).
pub fn inert(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 32));
    for (n, c) in text.chars().enumerate() {
        if n >= max {
            let _ = write!(out, "… ({} more chars)", text.chars().count() - max);
            break;
        }
        if hidden(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Attacker text as an inline code span: literal whatever it holds (see the module doc).
/// Empty text is written `*(empty)*`.
pub fn code(text: &str) -> String {
    let text = inert(text, MAX_SPAN_CHARS);
    if text.trim().is_empty() {
        return "*(empty)*".into();
    }
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    // CommonMark strips one space at each end when both ends have one: padding both
    // sides keeps a text that starts or ends with a backtick or a space as it is.
    let pad = if text.starts_with(['`', ' ']) || text.ends_with(['`', ' ']) {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// Attacker text as a code span in a table cell: [`code`] with `|` escaped as `\|`, which
/// the table reads as a pipe inside the cell (even inside a code span), never a border.
pub fn cell(text: &str) -> String {
    code(text).replace('|', "\\|")
}

/// An issue title from attacker text: hidden characters shown, a zero-width space after
/// every `@` and `#` and after the `-` of `GH-<digit>`, at most [`MAX_TITLE_CHARS`].
pub fn title(text: &str) -> String {
    let text = inert(text, MAX_TITLE_CHARS);
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        out.push(c);
        let gh_ref = c == '-'
            && i >= 2
            && chars[i - 2].eq_ignore_ascii_case(&'g')
            && chars[i - 1].eq_ignore_ascii_case(&'h')
            && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if c == '@' || c == '#' || gh_ref {
            out.push(ZWSP);
        }
    }
    if out.chars().count() <= MAX_TITLE_CHARS {
        return out;
    }
    let mut cut: String = out.chars().take(MAX_TITLE_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// The first line of a report's issue body.
pub fn issue_marker(report_id: &str) -> String {
    format!(
        "<!-- alertresponder:report={} -->",
        utf8_percent_encode(report_id, MARKER_ID)
    )
}

/// The first line of one version's text (a comment; the issue body's second line).
pub fn version_marker(report_id: &str, version: u32) -> String {
    format!(
        "<!-- alertresponder:report={} version={version} -->",
        utf8_percent_encode(report_id, MARKER_ID)
    )
}

/// Whether `body` is the issue of `report_id` (its first line is the marker).
pub fn is_issue_of(body: &str, report_id: &str) -> bool {
    body.lines().next() == Some(issue_marker(report_id).as_str())
}

/// Whether `body` is the text of `version` of `report_id` (a comment, its first line).
pub fn is_version_of(body: &str, report_id: &str, version: u32) -> bool {
    body.lines().next() == Some(version_marker(report_id, version).as_str())
}

/// The version whose text opened the issue `body` of `report_id` (its second line).
pub fn opened_by(body: &str, report_id: &str) -> Option<u32> {
    let prefix = format!(
        "<!-- alertresponder:report={} version=",
        utf8_percent_encode(report_id, MARKER_ID)
    );
    let mut lines = body.lines();
    if lines.next()? != issue_marker(report_id) {
        return None;
    }
    lines
        .next()?
        .strip_prefix(&prefix)?
        .strip_suffix(" -->")?
        .parse()
        .ok()
}

/// The issue title of a report: its rule and detector.
pub fn issue_title(d: &Digest) -> String {
    if d.detector.is_empty() {
        title(&d.title)
    } else {
        title(&format!("{} ({})", d.title, d.detector))
    }
}

/// The issue body: the report's marker, then the version's text ([`version_text`]).
pub fn issue_body(d: &Digest, report_id: &str, link: Option<&str>) -> String {
    let text = version_text(d, report_id, link);
    format!("{}\n{text}", issue_marker(report_id))
}

/// One version as Markdown, starting with its marker: the verdict (and the one before),
/// the reviewer's reason, the alert, its attributes, the findings and what could not be
/// inspected, a link to the report — at most [`MAX_BODY_CHARS`] minus the issue marker;
/// lists that do not fit are cut, saying how many entries were left out.
pub fn version_text(d: &Digest, report_id: &str, link: Option<&str>) -> String {
    let mut w = Writer::new(MAX_BODY_CHARS - 200);
    w.line(&version_marker(report_id, d.version));
    let mut verdict = format!("## {}", heading(d.severity));
    match d.previous {
        Some(p) if p != d.severity => {
            let _ = write!(verdict, " (re-reviewed: was {})", p.as_str());
        }
        Some(_) => verdict.push_str(" (re-reviewed, unchanged)"),
        None => {}
    }
    w.line(&verdict);
    w.line("");
    let mut facts = format!(
        "Version {} · {} alert{}",
        d.version,
        d.alert_count,
        if d.alert_count == 1 { "" } else { "s" }
    );
    if let Some(link) = link {
        let _ = write!(facts, " · [Open the report]({})", destination(link));
    }
    w.line(&facts);
    w.line("");
    if !d.reason.is_empty() {
        w.line(&format!("**Reviewer's reason:** {}", code(&d.reason)));
        w.line("");
    }

    w.line("### Alert");
    w.line("");
    w.line("| | |");
    w.line("|---|---|");
    w.line(&format!("| Rule | {} |", cell(&d.title)));
    if d.rule_id != d.title {
        w.line(&format!("| Rule ID | {} |", cell(&d.rule_id)));
    }
    w.line(&format!("| Detector | {} |", cell(&d.detector)));
    w.line(&format!("| Alert key | {} |", cell(&d.alert_key)));
    w.line("");
    if !d.description.is_empty() {
        w.line(&format!("**Description:** {}", code(&d.description)));
        w.line("");
    }

    if !d.attributes.is_empty() {
        w.line("### Attributes");
        w.line("");
        w.line("| Type | Key | Value | Seen in |");
        w.line("|---|---|---|---|");
        let rows = d.attributes.iter().map(|a| {
            format!(
                "| {} | {} | {} | {} |",
                cell(&a.attr_type),
                cell(&a.key),
                cell(&a.value),
                if a.from_alert { "alert" } else { "inspection" }
            )
        });
        let left = w.list(rows);
        w.more(left + d.attributes_omitted, "attribute");
        w.line("");
    }

    w.line("### Findings");
    w.line("");
    if d.findings.is_empty() {
        w.line("No inspector found anything.");
    }
    let items = d.findings.iter().map(|f| {
        format!(
            "- {} on {} {}: {}",
            code(&f.inspector),
            code(&f.attr_type),
            code(&f.value),
            code(&f.summary)
        )
    });
    let left = w.list(items);
    w.more(left + d.findings_omitted, "finding");
    w.line("");

    if !d.gaps.is_empty() {
        w.line("### Not inspected (unknown, not clean)");
        w.line("");
        let items = d.gaps.iter().map(|g| {
            format!(
                "- {} on {}: {}",
                code(&g.inspector),
                code(&g.value),
                g.outcome
            )
        });
        let left = w.list(items);
        w.more(left, "inspection");
        w.line("");
    }
    w.line(&format!(
        "<sub>AlertResponder report {}, version {}.</sub>",
        code(report_id),
        d.version
    ));
    w.finish()
}

/// The verdict as a heading.
fn heading(severity: Severity) -> &'static str {
    match severity {
        Severity::Urgent => "🔴 Urgent",
        Severity::Unclassified => "🟡 Unclassified",
        Severity::Safe => "🟢 Safe",
    }
}

/// A link destination from the configured `report_url` (checked at start-up, the ID in
/// it percent-encoded): in angle brackets, with what would end them encoded.
fn destination(url: &str) -> String {
    let mut out = String::from("<");
    for c in url.chars() {
        match c {
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            ' ' => out.push_str("%20"),
            c if hidden(c) => {}
            c => out.push(c),
        }
    }
    out.push('>');
    out
}

/// A body being written, in characters, that keeps [`RESERVE_CHARS`] free for its end.
struct Writer {
    out: String,
    chars: usize,
    limit: usize,
}

impl Writer {
    fn new(limit: usize) -> Self {
        Self {
            out: String::new(),
            chars: 0,
            limit,
        }
    }

    /// Appends `text` and a line break (the fixed parts are small and bounded).
    fn line(&mut self, text: &str) {
        self.chars += text.chars().count() + 1;
        self.out.push_str(text);
        self.out.push('\n');
    }

    /// Appends lines while they fit; returns how many did not.
    fn list(&mut self, lines: impl Iterator<Item = String>) -> usize {
        let mut left = 0;
        for line in lines {
            let n = line.chars().count() + 1;
            if left > 0 || self.chars + n + RESERVE_CHARS > self.limit {
                left += 1;
                continue;
            }
            self.chars += n;
            self.out.push_str(&line);
            self.out.push('\n');
        }
        left
    }

    /// Says that `n` entries of `what` were left out.
    fn more(&mut self, n: usize, what: &str) {
        if n > 0 {
            let plural = if n == 1 { "" } else { "s" };
            self.line("");
            self.line(&format!(
                "*… and {n} more {what}{plural}, not shown here (see the report).*"
            ));
        }
    }

    /// The text, never over the limit (cut at a line's end if the fixed parts were).
    fn finish(self) -> String {
        if self.chars <= self.limit {
            return self.out;
        }
        let mut out = String::new();
        let mut chars = 0;
        for line in self.out.lines() {
            let n = line.chars().count() + 1;
            if chars + n > self.limit {
                break;
            }
            chars += n;
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::digest::{DigestAttribute, DigestFinding, DigestGap};
    use crate::test_support::report;

    /// `line` without its code spans (CommonMark's rule: a run of n backticks up to the
    /// next run of exactly n); what is left is what GitHub would parse as Markdown.
    pub(crate) fn outside_code(line: &str) -> String {
        let chars: Vec<char> = line.chars().collect();
        let run_at = |i: usize| chars[i..].iter().take_while(|c| **c == '`').count();
        let mut out = String::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] != '`' {
                out.push(chars[i]);
                i += 1;
                continue;
            }
            let n = run_at(i);
            let mut j = i + n;
            let mut close = None;
            while j < chars.len() {
                if chars[j] == '`' {
                    let m = run_at(j);
                    if m == n {
                        close = Some(j + m);
                        break;
                    }
                    j += m;
                } else {
                    j += 1;
                }
            }
            match close {
                Some(end) => {
                    out.push_str("CODE");
                    i = end;
                }
                None => {
                    out.push_str(&"`".repeat(n));
                    i += n;
                }
            }
        }
        out
    }

    /// What alert text may try, one string each.
    pub(crate) const HOSTILE: [&str; 16] = [
        "@octocat please look",
        "cc @acme/security-team",
        "fixes #1 and GH-2 and acme/infra#3",
        "<img src=x onerror=alert(1)>",
        "![x](https://evil.example/x.png)",
        "[https://bank.example](https://evil.example/login)",
        "javascript:alert(document.cookie)",
        "<!-- alertresponder:report=victim -->",
        "a | b | c",
        "line one\n# heading\n| x | y |\n|---|---|",
        "```\ncode block\n```",
        "ends with a backtick `",
        "<details><summary>click</summary>hidden</details>",
        "right\u{202e}txt.exe and zero\u{200b}width",
        ":rotating_light: https://evil.example www.evil.example",
        "user@example.com <https://evil.example>",
    ];

    fn hostile_digest(text: &str) -> Digest {
        let mut r = report("rep-1", 2, text, text);
        r.alerts[0].rule_name = text.into();
        r.alerts[0].rule_id = format!("{text} id");
        r.alerts[0].alert_key = text.into();
        r.alerts[0].description = text.into();
        r.alerts[0].attributes[0].key = text.into();
        r.alerts[0].attributes[0].attr_type = text.into();
        r.result.reason = text.into();
        let mut d = Digest::of(&r);
        d.findings = vec![DigestFinding {
            inspector: text.into(),
            attr_type: text.into(),
            value: text.into(),
            summary: text.into(),
        }];
        d.gaps = vec![DigestGap {
            inspector: text.into(),
            value: text.into(),
            outcome: "failed",
        }];
        // The digest escapes control characters already: test this module on its own.
        d.title = text.into();
        d.reason = text.into();
        d.description = text.into();
        d.attributes[0].value = text.into();
        d
    }

    /// Everything attacker-written is inside code spans, and the structure is ours.
    fn assert_inert(body: &str, text: &str) {
        let mut table_pipes: Option<usize> = None;
        for line in body.lines() {
            let outside = outside_code(line);
            assert!(
                !outside.contains('@'),
                "a mention may form in {line:?} ({text:?})"
            );
            assert!(
                !outside.contains("](") && !outside.contains("!["),
                "a link or image in {line:?}"
            );
            assert!(
                !outside.contains("http") && !outside.contains("www."),
                "{line:?}"
            );
            assert!(!outside.contains("javascript"), "{line:?}");
            assert!(
                !outside.chars().any(|c| c == '#')
                    || line.starts_with("## ")
                    || line.starts_with("### "),
                "a reference or heading in {line:?}"
            );
            let ours =
                line.starts_with("<!-- alertresponder:report=rep-1") || line.starts_with("<sub>");
            assert!(ours || !outside.contains('<'), "HTML in {line:?}");
            if line.starts_with('|') {
                // GFM splits a row on every pipe not escaped by a backslash, before it
                // reads code spans: count them in the raw line.
                let pipes = line.matches('|').count() - line.matches("\\|").count();
                match table_pipes {
                    Some(n) if line.starts_with("|---") || n == pipes => {}
                    Some(n) => panic!("a row with {pipes} borders instead of {n}: {line:?}"),
                    None => {}
                }
                table_pipes = Some(pipes);
            } else {
                table_pipes = None;
            }
        }
    }

    #[test]
    fn hostile_alert_text_is_rendered_inert_in_every_field() {
        for text in HOSTILE {
            let d = hostile_digest(text);
            let body = issue_body(&d, "rep-1", None);
            assert_inert(&body, text);
            assert!(is_issue_of(&body, "rep-1"));
            assert_eq!(opened_by(&body, "rep-1"), Some(2));
            // The forged marker is text in a code span, never a line of its own.
            assert!(!is_issue_of(&body, "victim"));
            assert_eq!(
                body.lines().filter(|l| l.starts_with("<!--")).count(),
                2,
                "{body}"
            );
        }
    }

    #[test]
    fn a_code_span_holds_any_text_literally() {
        assert_eq!(code("198.51.100.7"), "`198.51.100.7`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("``x"), "``` ``x ```");
        assert_eq!(code(" padded "), "`  padded  `");
        assert_eq!(code(""), "*(empty)*");
        assert_eq!(code("a\nb\r\tc"), "`a\\u{a}b\\u{d}\\u{9}c`");
        assert_eq!(code("x\u{2028}y\u{202e}z"), "`x\\u{2028}y\\u{202e}z`");
        assert_eq!(cell("a | b"), "`a \\| b`");
        assert!(code(&"y".repeat(100_000)).chars().count() < MAX_SPAN_CHARS + 40);
    }

    #[test]
    fn a_title_neither_mentions_nor_references_and_fits_github() {
        let t = title("@octocat #1 GH-2 gh-3 acme/infra#4 team@acme");
        assert!(!t.contains("@o") && !t.contains("#1") && !t.contains("GH-2"));
        assert!(!t.contains("gh-3") && !t.contains("#4") && !t.contains("@a"));
        assert_eq!(
            t.replace(ZWSP, ""),
            "@octocat #1 GH-2 gh-3 acme/infra#4 team@acme"
        );
        assert_eq!(title("a\nb"), "a\\u{a}b");
        let long = title(&"@".repeat(100_000));
        assert_eq!(long.chars().count(), MAX_TITLE_CHARS);
        assert!(long.ends_with('…'));
        assert_eq!(title(&"x".repeat(256)), "x".repeat(256));
    }

    #[test]
    fn markers_are_matched_only_where_the_emitter_writes_them() {
        let body = format!(
            "{}\n{}\ntext",
            issue_marker("r-1"),
            version_marker("r-1", 3)
        );
        assert!(is_issue_of(&body, "r-1"));
        assert!(!is_issue_of(&body, "r-2"));
        assert_eq!(opened_by(&body, "r-1"), Some(3));
        // Edited in GitHub's web form: CRLF line ends.
        assert_eq!(opened_by(&body.replace('\n', "\r\n"), "r-1"), Some(3));
        let quoted = format!("text\n{}", issue_marker("r-1"));
        assert!(!is_issue_of(&quoted, "r-1"));
        assert!(is_version_of(&version_marker("r-1", 2), "r-1", 2));
        assert!(!is_version_of(&version_marker("r-1", 2), "r-1", 3));
        // An ID cannot close the comment early.
        assert_eq!(
            issue_marker("x --> <img>"),
            "<!-- alertresponder:report=x%20--%3E%20%3Cimg%3E -->"
        );
    }

    #[test]
    fn a_big_report_is_summarised_under_githubs_limit() {
        let mut d = Digest::of(&report("rep-1", 1, "test", "192.0.2.1"));
        let huge = "`a".repeat(MAX_SPAN_CHARS);
        d.attributes = (0..2_000)
            .map(|i| DigestAttribute {
                attr_type: "domain".into(),
                key: huge.clone(),
                value: format!("{i}{huge}"),
                from_alert: false,
            })
            .collect();
        d.findings = (0..2_000)
            .map(|_| DigestFinding {
                inspector: huge.clone(),
                attr_type: huge.clone(),
                value: huge.clone(),
                summary: huge.clone(),
            })
            .collect();
        d.findings_omitted = 5;
        d.description = huge.clone();
        let body = issue_body(&d, "rep-1", Some("https://ar.example/r/rep-1"));
        let chars = body.chars().count();
        assert!(chars <= MAX_BODY_CHARS, "{chars}");
        assert!(body.contains("more attributes, not shown here"), "{body}");
        assert!(body.contains("more findings, not shown here"));
        assert!(body.trim_end().ends_with("version 1.</sub>"));
        assert!(is_issue_of(&body, "rep-1"));
    }

    #[test]
    fn a_link_is_the_configured_one_in_angle_brackets() {
        let d = Digest::of(&report("rep-1", 1, "test", "192.0.2.1"));
        let body = version_text(&d, "rep-1", Some("https://ar.example/r/a%20b?v=1"));
        assert!(body.contains("[Open the report](<https://ar.example/r/a%20b?v=1>)"));
        assert_eq!(
            destination("https://x.example/<a> b"),
            "<https://x.example/%3Ca%3E%20b>"
        );
    }
}
