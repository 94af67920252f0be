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
