//! An emitter that appends each published report as one JSON line to a file or stdout.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use alertresponder_core::ports::Emitter;
use alertresponder_core::{PluginError, Report};
use async_trait::async_trait;
use tokio::sync::Mutex;

/// Where the lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonLinesTarget {
    /// Appended to this file, created if missing.
    File(PathBuf),
    /// Written to standard output.
    Stdout,
}

/// Writes `serde_json::to_string(report)` and a newline per report.
///
/// To a file, each line is written with one `write_all` and synced before `emit` returns,
/// so a published report survives a crash. A retry (`attempt > 0`) first looks for a line
/// with the same `id` and `version` and writes nothing if one is there: a crash between
/// the write and the acknowledgement does not duplicate the report. The first attempt
/// never scans, so emitting the same version twice with `attempt` 0 writes it twice.
/// Standard output cannot be read back: a retry there may repeat a line.
#[derive(Debug)]
pub struct JsonLinesEmitter {
    name: String,
    target: JsonLinesTarget,
    /// Serialises scan-then-append within this process.
    lock: Mutex<()>,
}

impl JsonLinesEmitter {
    /// An emitter writing to `target`.
    pub fn new(name: impl Into<String>, target: JsonLinesTarget) -> Self {
        Self {
            name: name.into(),
            target,
            lock: Mutex::new(()),
        }
    }
}

#[async_trait]
impl Emitter for JsonLinesEmitter {
    fn name(&self) -> &str {
        &self.name
    }

    async fn emit(&self, report: &Report, attempt: u32) -> Result<(), PluginError> {
        let mut line = serde_json::to_string(report)
            .map_err(|e| PluginError::Failed(format!("cannot encode the report: {e}")))?;
        line.push('\n');
        let _guard = self.lock.lock().await;
        let target = self.target.clone();
        let (id, version) = (report.id.clone(), report.version);
        tokio::task::spawn_blocking(move || match target {
            JsonLinesTarget::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| PluginError::Failed(format!("cannot write to stdout: {e}")))
            }
            JsonLinesTarget::File(path) => append_once(&path, &line, &id, version, attempt > 0)
                .map_err(|e| {
                    PluginError::Failed(format!("cannot append to {}: {e}", path.display()))
                }),
        })
        .await
        .map_err(|e| PluginError::Failed(format!("JSON lines writer aborted: {e}")))?
    }
}

/// Appends `line` to `path` unless `scan` finds the report version in it already.
fn append_once(path: &Path, line: &str, id: &str, version: u32, scan: bool) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    if scan && contains_report(&file, id, version)? {
        return Ok(());
    }
    // A crash in the middle of a write can leave a cut line: start ours on a fresh one.
    let len = file.metadata()?.len();
    let mut last = [b'\n'];
    if len > 0 {
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
    }
    let text = if last[0] == b'\n' {
        line.to_string()
    } else {
        format!("\n{line}")
    };
    file.write_all(text.as_bytes())?;
    file.sync_data()
}

/// Whether a line of the file is this report version (cut or foreign lines are skipped).
fn contains_report(file: &File, id: &str, version: u32) -> std::io::Result<bool> {
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::Start(0))?;
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line)? > 0 {
        // Cheap test first: most lines are other reports.
        if std::str::from_utf8(&line).is_ok_and(|text| text.contains(id)) {
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&line) {
                if value["id"] == id && value["version"] == version {
                    return Ok(true);
                }
            }
        }
        line.clear();
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use tempfile::TempDir;

    use super::*;
    use crate::test_support::report;

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn file_emitter(dir: &TempDir) -> (JsonLinesEmitter, PathBuf) {
        let path = dir.path().join("reports.jsonl");
        (
            JsonLinesEmitter::new("file", JsonLinesTarget::File(path.clone())),
            path,
        )
    }

    #[tokio::test]
    async fn two_reports_make_two_lines() {
        let dir = TempDir::new().unwrap();
        let (emitter, path) = file_emitter(&dir);
        let (first, second) = (
            report("rep-1", 1, "test", "192.0.2.1"),
            report("rep-2", 1, "test", "192.0.2.2"),
        );
        emitter.emit(&first, 0).await.unwrap();
        emitter.emit(&second, 0).await.unwrap();
        assert_eq!(
            lines(&path),
            vec![
                serde_json::to_string(&first).unwrap(),
                serde_json::to_string(&second).unwrap()
            ]
        );
    }

    #[tokio::test]
    async fn retrying_a_report_already_written_adds_no_line() {
        let dir = TempDir::new().unwrap();
        let (emitter, path) = file_emitter(&dir);
        let (first, second) = (
            report("rep-1", 1, "test", "192.0.2.1"),
            report("rep-2", 1, "test", "192.0.2.2"),
        );
        emitter.emit(&first, 0).await.unwrap();
        emitter.emit(&second, 0).await.unwrap();
        emitter.emit(&first, 1).await.unwrap();
        assert_eq!(lines(&path).len(), 2);
        // Another version of the same report is another line.
        emitter
            .emit(&report("rep-1", 2, "test", "192.0.2.1"), 1)
            .await
            .unwrap();
        assert_eq!(lines(&path).len(), 3);
    }

    #[tokio::test]
    async fn first_attempts_never_scan_so_emitting_twice_with_attempt_zero_duplicates() {
        let dir = TempDir::new().unwrap();
        let (emitter, path) = file_emitter(&dir);
        let first = report("rep-1", 1, "test", "192.0.2.1");
        emitter.emit(&first, 0).await.unwrap();
        emitter.emit(&first, 0).await.unwrap();
        assert_eq!(lines(&path).len(), 2);
    }

    #[tokio::test]
    async fn a_line_cut_by_a_crash_does_not_swallow_the_next_report() {
        let dir = TempDir::new().unwrap();
        let (emitter, path) = file_emitter(&dir);
        std::fs::write(&path, "{\"id\":\"rep-1\",\"ver").unwrap();
        let first = report("rep-1", 1, "test", "192.0.2.1");
        emitter.emit(&first, 1).await.unwrap();
        let written = lines(&path);
        assert_eq!(written.len(), 2);
        assert_eq!(written[1], serde_json::to_string(&first).unwrap());
    }

    #[tokio::test]
    async fn unwritable_file_fails_naming_it() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("missing-dir").join("reports.jsonl");
        let emitter = JsonLinesEmitter::new("file", JsonLinesTarget::File(path.clone()));
        let err = emitter
            .emit(&report("rep-1", 1, "test", "192.0.2.1"), 0)
            .await
            .unwrap_err();
        let PluginError::Failed(message) = err else {
            panic!("expected a failure, got {err:?}");
        };
        assert!(message.contains(&path.display().to_string()), "{message}");
    }

    #[tokio::test]
    async fn stdout_target_writes_without_error() {
        let emitter = JsonLinesEmitter::new("stdout", JsonLinesTarget::Stdout);
        emitter
            .emit(&report("rep-1", 1, "test", "192.0.2.1"), 0)
            .await
            .unwrap();
    }
}
