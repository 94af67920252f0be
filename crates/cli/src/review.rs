//! `alertresponder review`: run the configured reviewers over saved reports, to try a
//! policy on real reports without running the pipeline, and to test policies in CI
//! (`--expect urgent` fails when the decision differs).

use std::path::PathBuf;

use alertresponder_core::pipeline::review_report;
use alertresponder_core::render::sanitize;
use alertresponder_core::{Report, ReportResult, Severity};
use anyhow::Context;
use serde_json::Value;

use crate::config::Config;

/// One reviewed report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Decision {
    /// Where the report came from (`file#n`).
    pub origin: String,
    /// The report's ID.
    pub report_id: String,
    /// What the reviewers decided now.
    pub result: ReportResult,
    /// What the report carried (its published decision), if any.
    pub recorded: Option<ReportResult>,
}

/// Reads reports from `text`: a JSON document, JSON lines, or arrays of reports.
pub fn read_reports(name: &str, text: &str) -> anyhow::Result<Vec<(String, Report)>> {
    let mut out = Vec::new();
    for (i, value) in serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .enumerate()
    {
        let value = value.with_context(|| format!("{name}: document {} is not JSON", i + 1))?;
        let items = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        for item in items {
            let n = out.len() + 1;
            let report: Report = serde_json::from_value(item)
                .with_context(|| format!("{name}#{n}: not a report"))?;
            out.push((format!("{name}#{n}"), report));
        }
    }
    Ok(out)
}

/// Reviews every report of `files` with the reviewers of `config`.
pub async fn review(config: &Config, files: &[PathBuf]) -> anyhow::Result<Vec<Decision>> {
    // Only the reviewers: reviewing a saved report needs no inspector's secrets.
    let reviewers = alertresponder_plugins::config::build::reviewers(&config.reviewer)?;
    if reviewers.is_empty() {
        anyhow::bail!("the config has no [reviewer]: nothing to review with");
    }
    let mut decisions = Vec::new();
    for f in files {
        let text = if f.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
        } else {
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?
        };
        for (origin, report) in read_reports(&f.display().to_string(), &text)? {
            let result = review_report(&reviewers, &report).await;
            let recorded = (report.status == alertresponder_core::ReportStatus::Published)
                .then(|| report.result.clone());
            decisions.push(Decision {
                origin,
                report_id: report.id,
                result,
                recorded,
            });
        }
    }
    Ok(decisions)
}

/// One line per decision for a person; `expect` marks the ones that differ.
pub fn describe(d: &Decision, expect: Option<Severity>) -> String {
    let mark = match expect {
        Some(e) if e != d.result.severity => format!("  MISMATCH: expected {e}"),
        _ => String::new(),
    };
    let was = match &d.recorded {
        Some(r) if r.severity != d.result.severity => format!(" (was {})", r.severity),
        _ => String::new(),
    };
    format!(
        "{}  {}  {}{}  {}{}",
        sanitize(&d.origin, 80),
        sanitize(&d.report_id, 40),
        d.result.severity,
        was,
        sanitize(&d.result.reason, 200),
        mark
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"{"id":"r1","alerts":[],"attributes":[],"sections":[],"result":{"severity":"safe","reason":""},"status":"published","created_at":"2026-11-20T10:00:00Z"}"#;

    #[test]
    fn reports_are_read_from_lines_arrays_and_pretty_documents() {
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(REPORT).unwrap()).unwrap();
        let text = format!("{REPORT}\n[{REPORT},{REPORT}]\n{pretty}\n");
        let reports = read_reports("f", &text).unwrap();
        assert_eq!(reports.len(), 4);
        assert_eq!(reports[3].0, "f#4");
    }

    #[test]
    fn a_non_report_is_named() {
        let e = read_reports("f", "{\"id\": 3}").unwrap_err();
        assert!(format!("{e:#}").contains("f#1: not a report"), "{e:#}");
    }
}
