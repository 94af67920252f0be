//! An emitter that is an external program: the report as JSON on stdin, exit 0 for success.

use std::time::Duration;

use alertresponder_core::ports::Emitter;
use alertresponder_core::{PluginError, Report};
use async_trait::async_trait;

use crate::command::CommandSpec;
use crate::error::PluginConfigError;

/// Largest standard output an emitter may print (it is read and discarded).
pub const MAX_EMITTER_OUTPUT: usize = 64 * 1024;

/// Runs a program per published report version; it reads the [`Report`] JSON on stdin,
/// finds the attempt number in `ALERTRESPONDER_ATTEMPT`, and exits 0 once delivered.
#[derive(Debug, Clone)]
pub struct CommandEmitter {
    spec: CommandSpec,
}

impl CommandEmitter {
    /// An emitter running `argv` (no shell).
    pub fn new(
        name: impl Into<String>,
        argv: Vec<String>,
        timeout: Duration,
    ) -> Result<Self, PluginConfigError> {
        Ok(Self {
            spec: CommandSpec::new(name, argv, timeout)?,
        })
    }
}

#[async_trait]
impl Emitter for CommandEmitter {
    fn name(&self) -> &str {
        &self.spec.name
    }

    async fn emit(&self, report: &Report, attempt: u32) -> Result<(), PluginError> {
        let env = [("ALERTRESPONDER_ATTEMPT".to_string(), attempt.to_string())];
        self.spec.run_json(report, MAX_EMITTER_OUTPUT, &env).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tempfile::TempDir;

    use super::*;
    use crate::test_support::{report, script};

    #[tokio::test]
    async fn emitter_receives_the_report_on_stdin_and_the_attempt_in_its_environment() {
        let dir = TempDir::new().unwrap();
        let (seen, attempt) = (dir.path().join("report.json"), dir.path().join("attempt"));
        let body = format!(
            "cat > '{}'\necho \"$ALERTRESPONDER_ATTEMPT\" > '{}'\necho delivered",
            seen.display(),
            attempt.display()
        );
        let argv = script(dir.path(), "emitter.sh", &body);
        let emitter = CommandEmitter::new("test-emitter", argv, Duration::from_secs(10)).unwrap();
        let sent = report("rep-1", 2, "test", "192.0.2.1");
        emitter.emit(&sent, 3).await.unwrap();
        let received: Report = serde_json::from_slice(&std::fs::read(seen).unwrap()).unwrap();
        assert_eq!(received, sent);
        assert_eq!(std::fs::read_to_string(attempt).unwrap(), "3\n");
    }

    #[tokio::test]
    async fn emitter_that_exits_non_zero_fails() {
        let dir = TempDir::new().unwrap();
        let argv = script(dir.path(), "emitter.sh", "echo 'slack said no' >&2; exit 1");
        let emitter = CommandEmitter::new("test-emitter", argv, Duration::from_secs(10)).unwrap();
        let err = emitter
            .emit(&report("rep-1", 1, "test", "192.0.2.1"), 0)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            PluginError::Failed("exit status 1: slack said no".into())
        );
    }
}
