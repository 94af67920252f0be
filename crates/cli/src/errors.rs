//! `alertresponder errors`: the inputs and jobs that failed, newest first, with their
//! input. A failed delivery (a `deliver` job kept after its last try) also says which
//! report, version and emitter, whether it got through since (a replay), and the
//! `alertresponder replay` line that re-sends it.

use std::path::Path;

use alertresponder_core::model::{ErrorRecord, Job};
use alertresponder_core::ports::DeliveryLog;
use alertresponder_core::render::sanitize;
use alertresponder_embedded::SqliteStore;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A failed delivery, as the error list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedDelivery {
    /// The report.
    pub report_id: String,
    /// The version that was not delivered.
    pub version: u32,
    /// The emitter.
    pub emitter: String,
    /// When it was delivered after all (a replay, or a retry that got through), if it was.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The command that re-sends it.
    pub replay: String,
}

/// An error record, and the failed delivery it is when it is one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListedError {
    /// The record as kept.
    #[serde(flatten)]
    pub record: ErrorRecord,
    /// The delivery that failed, for a `deliver` record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<FailedDelivery>,
}

/// The last `limit` error records of `store`, newest first, failed deliveries told
/// apart; `database` is the `--database` the user gave (repeated in the replay line).
pub async fn list(
    store: &SqliteStore,
    limit: usize,
    database: Option<&Path>,
) -> anyhow::Result<Vec<ListedError>> {
    let mut out = Vec::new();
    for record in store.list_errors(limit).await? {
        let delivery = match failed_delivery(&record) {
            Some((report_id, version, emitter)) => {
                let delivered_at = store
                    .deliveries(&report_id)
                    .await?
                    .into_iter()
                    .find(|d| d.version == version && d.emitter == emitter)
                    .map(|d| d.delivered_at);
                let replay = replay_command(&report_id, version, &emitter, database);
                Some(FailedDelivery {
                    report_id,
                    version,
                    emitter,
                    delivered_at,
                    replay,
                })
            }
            None => None,
        };
        out.push(ListedError { record, delivery });
    }
    Ok(out)
}

/// (report, version, emitter) of a kept `deliver` job.
fn failed_delivery(record: &ErrorRecord) -> Option<(String, u32, String)> {
    if record.stage != "deliver" {
        return None;
    }
    match serde_json::from_str::<Job>(&record.input).ok()? {
        Job::Deliver {
            report_id,
            version,
            emitter,
        } => Some((report_id, version, emitter)),
        _ => None,
    }
}

/// The `alertresponder replay` line for a delivery, each value quoted for a POSIX
/// shell where it needs it.
fn replay_command(report_id: &str, version: u32, emitter: &str, database: Option<&Path>) -> String {
    let mut line = format!(
        "alertresponder replay {} --version {version} --emitter {}",
        shell_word(report_id),
        shell_word(emitter)
    );
    if let Some(db) = database {
        line.push_str(" --database ");
        line.push_str(&shell_word(&db.display().to_string()));
    }
    line
}

/// `s` as one shell word: as is when it is plain, else single-quoted.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@%+=,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// An error for a person: the record as before, then the failed delivery and its
/// replay line. Every stored text is sanitized (alert text is written by attackers).
pub fn describe(e: &ListedError) -> String {
    let r = &e.record;
    let mut text = format!(
        "{} {} {}: {}\n  input: {}{}",
        r.at.to_rfc3339(),
        r.stage,
        sanitize(&r.id, 80),
        sanitize(&r.error, 300),
        sanitize(&r.input, 300),
        if r.input_truncated {
            " (truncated)"
        } else {
            ""
        }
    );
    if let Some(d) = &e.delivery {
        text.push_str(&format!(
            "\n  delivery: version {} of report {} to emitter {}",
            d.version,
            sanitize(&d.report_id, 80),
            sanitize(&d.emitter, 80)
        ));
        match d.delivered_at {
            Some(at) => text.push_str(&format!(", delivered since at {}", at.to_rfc3339())),
            None => text.push_str(&format!(
                ", not delivered\n  replay: {}",
                sanitize(&d.replay, 400)
            )),
        }
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_replay_line_quotes_what_a_shell_would_split() {
        assert_eq!(
            replay_command("r-1", 2, "slack", None),
            "alertresponder replay r-1 --version 2 --emitter slack"
        );
        assert_eq!(
            replay_command("r-1", 1, "it's $HOME", Some(Path::new("/tmp/a b.db"))),
            r"alertresponder replay r-1 --version 1 --emitter 'it'\''s $HOME' --database '/tmp/a b.db'"
        );
    }
}
