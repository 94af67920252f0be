//! An inspector that is an external program: the task as JSON on stdin, the inspection on stdout.

use std::time::Duration;

use alertresponder_core::ports::{Inspection, Inspector};
use alertresponder_core::{Attribute, PluginError, Task};
use async_trait::async_trait;

use crate::command::CommandSpec;
use crate::error::PluginConfigError;
use crate::output::inspection_from_output;

/// Largest standard output accepted from an inspector.
pub const MAX_INSPECTOR_OUTPUT: usize = 1024 * 1024;

/// Runs a program per task; it reads the [`Task`] JSON on stdin and prints
/// `{"sections": [...], "new_attributes": [...]}` (or nothing) on stdout.
#[derive(Debug, Clone)]
pub struct CommandInspector {
    spec: CommandSpec,
    types: Option<Vec<String>>,
}

impl CommandInspector {
    /// An inspector running `argv` (no shell) for attributes of `types` (all when `None`).
    pub fn new(
        name: impl Into<String>,
        argv: Vec<String>,
        types: Option<Vec<String>>,
        timeout: Duration,
    ) -> Result<Self, PluginConfigError> {
        Ok(Self {
            spec: CommandSpec::new(name, argv, timeout)?,
            types,
        })
    }
}

#[async_trait]
impl Inspector for CommandInspector {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn accepts(&self, attribute: &Attribute) -> bool {
        match &self.types {
            None => true,
            Some(types) => types.contains(&attribute.attr_type),
        }
    }

    fn timeout(&self) -> Duration {
        self.spec.timeout
    }

    async fn inspect(&self, task: &Task) -> Result<Inspection, PluginError> {
        let env = [(
            "ALERTRESPONDER_REPORT_ID".to_string(),
            task.report_id.clone(),
        )];
        let out = self.spec.run_json(task, MAX_INSPECTOR_OUTPUT, &env).await?;
        inspection_from_output(&out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use alertresponder_core::ports::SectionDraft;
    use serde_json::json;
    use tempfile::TempDir;

    use super::*;
    use crate::test_support::{attribute, script, task};

    fn inspector(dir: &TempDir, body: &str) -> CommandInspector {
        let argv = script(dir.path(), "inspector.sh", body);
        CommandInspector::new("test-inspector", argv, None, Duration::from_secs(10)).unwrap()
    }

    async fn inspect(body: &str) -> Result<Inspection, PluginError> {
        let dir = TempDir::new().unwrap();
        inspector(&dir, body).inspect(&task("192.0.2.1")).await
    }

    fn invalid_output(result: Result<Inspection, PluginError>) -> String {
        match result {
            Err(PluginError::InvalidOutput(message)) => message,
            other => panic!("expected invalid output, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn inspector_returns_the_section_and_attribute_it_prints() {
        let dir = TempDir::new().unwrap();
        let input = dir.path().join("stdin.json");
        let body = format!(
            r#"cat > '{}'
printf '{{"sections":[{{"type":"host","content":{{"report":"%s"}}}}],"new_attributes":[{{"type":"domain","value":"evil.example","context":["remote"]}}]}}' "$ALERTRESPONDER_REPORT_ID""#,
            input.display()
        );
        let inspection = inspector(&dir, &body)
            .inspect(&task("192.0.2.1"))
            .await
            .unwrap();
        assert_eq!(
            inspection.sections,
            vec![SectionDraft {
                section_type: "host".into(),
                content: json!({"report": "rep-1"}),
            }]
        );
        assert_eq!(inspection.new_attributes.len(), 1);
        assert_eq!(inspection.new_attributes[0].attr_type, "domain");
        assert_eq!(inspection.new_attributes[0].value, "evil.example");
        let seen: Task = serde_json::from_slice(&std::fs::read(input).unwrap()).unwrap();
        assert_eq!(seen, task("192.0.2.1"));
    }

    #[tokio::test]
    async fn inspector_with_empty_output_found_nothing() {
        assert_eq!(
            inspect("cat >/dev/null").await.unwrap(),
            Inspection::default()
        );
        assert_eq!(inspect("echo '  '").await.unwrap(), Inspection::default());
    }

    #[tokio::test]
    async fn inspector_printing_an_empty_object_or_null_found_nothing() {
        assert_eq!(inspect("echo '{}'").await.unwrap(), Inspection::default());
        assert_eq!(inspect("echo null").await.unwrap(), Inspection::default());
    }

    #[tokio::test]
    async fn inspector_that_exits_non_zero_fails_with_its_stderr() {
        let err = inspect("echo 'whois server unreachable' >&2; exit 3")
            .await
            .unwrap_err();
        match err {
            PluginError::Failed(message) => {
                assert!(message.contains("exit status 3"), "{message}");
                assert!(message.contains("whois server unreachable"), "{message}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn inspector_keeps_only_the_last_kib_of_a_long_stderr() {
        let err = inspect("yes noise | head -c 100000 >&2; echo the-end >&2; exit 1")
            .await
            .unwrap_err();
        let PluginError::Failed(message) = err else {
            panic!("expected a failure, got {err:?}");
        };
        assert!(message.ends_with("the-end"), "{message}");
        assert!(message.len() < 1100, "{} bytes", message.len());
    }

    #[tokio::test]
    async fn inspector_slower_than_its_timeout_is_killed_and_times_out() {
        let dir = TempDir::new().unwrap();
        let argv = script(dir.path(), "slow.sh", "sleep 5");
        let timeout = Duration::from_millis(200);
        let slow = CommandInspector::new("slow", argv, None, timeout).unwrap();
        assert_eq!(slow.timeout(), timeout);
        let started = Instant::now();
        let err = slow.inspect(&task("192.0.2.1")).await.unwrap_err();
        assert_eq!(err, PluginError::TimedOut(timeout));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn inspector_output_over_the_bound_is_invalid_even_if_endless() {
        let message = invalid_output(inspect("yes '{}'").await);
        assert_eq!(message, format!("output over {MAX_INSPECTOR_OUTPUT} bytes"));
    }

    #[tokio::test]
    async fn inspector_that_does_not_read_its_input_still_succeeds() {
        let dir = TempDir::new().unwrap();
        let quick = inspector(&dir, "echo '{}'");
        // Far over a pipe's buffer: the write meets a closed pipe.
        let big = task(&"x".repeat(1024 * 1024));
        assert_eq!(quick.inspect(&big).await.unwrap(), Inspection::default());
    }

    #[tokio::test]
    async fn inspector_printing_something_other_than_json_is_invalid() {
        let message = invalid_output(inspect("echo 'Traceback (most recent call last)'").await);
        assert!(message.starts_with("not valid JSON"), "{message}");
        let message = invalid_output(inspect("echo '[1]'").await);
        assert!(message.starts_with("$: expected an object"), "{message}");
    }

    #[tokio::test]
    async fn inspector_section_without_object_content_names_the_field() {
        let message = invalid_output(
            inspect(r#"echo '{"sections":[{"type":"host","content":"up"}]}'"#).await,
        );
        assert_eq!(
            message,
            "sections[0].content: expected an object, got a string"
        );
        let message = invalid_output(
            inspect(
                r#"echo '{"sections":[{"type":"host","content":{}},{"type":"","content":{}}]}'"#,
            )
            .await,
        );
        assert_eq!(message, "sections[1].type: must not be empty");
    }

    #[tokio::test]
    async fn inspector_new_attribute_without_string_value_names_the_field() {
        let message = invalid_output(
            inspect(r#"echo '{"new_attributes":[{"type":"domain","value":7}]}'"#).await,
        );
        assert_eq!(
            message,
            "new_attributes[0].value: expected a string, got a number"
        );
        let message = invalid_output(inspect(r#"echo '{"new_attributes":{}}'"#).await);
        assert_eq!(message, "new_attributes: expected an array, got an object");
    }

    #[tokio::test]
    async fn inspector_program_that_does_not_exist_fails_to_run() {
        let argv = vec!["/nonexistent/inspector".to_string()];
        let missing = CommandInspector::new("missing", argv, None, Duration::from_secs(1)).unwrap();
        let err = missing.inspect(&task("192.0.2.1")).await.unwrap_err();
        let PluginError::Failed(message) = err else {
            panic!("expected a failure, got {err:?}");
        };
        assert!(
            message.starts_with("cannot run /nonexistent/inspector: "),
            "{message}"
        );
    }

    #[tokio::test]
    async fn arguments_reach_the_program_verbatim_without_a_shell() {
        let dir = TempDir::new().unwrap();
        let mut argv = script(
            dir.path(),
            "args.sh",
            r#"printf '{"sections":[{"type":"host","content":{"arg":"%s"}}]}' "$1""#,
        );
        argv.push("$(touch pwned); `id`".into());
        let args = CommandInspector::new("args", argv, None, Duration::from_secs(10)).unwrap();
        let inspection = args.inspect(&task("192.0.2.1")).await.unwrap();
        assert_eq!(
            inspection.sections[0].content,
            json!({"arg": "$(touch pwned); `id`"})
        );
        assert!(!dir.path().join("pwned").exists());
    }

    #[test]
    fn inspector_accepts_only_the_listed_types() {
        let argv = vec!["true".to_string()];
        let timeout = Duration::from_secs(1);
        let all = CommandInspector::new("all", argv.clone(), None, timeout).unwrap();
        let ips = CommandInspector::new("ips", argv, Some(vec!["ipaddr".into()]), timeout).unwrap();
        assert!(all.accepts(&attribute("domain", "example.com")));
        assert!(ips.accepts(&attribute("ipaddr", "192.0.2.1")));
        assert!(!ips.accepts(&attribute("domain", "example.com")));
    }

    #[test]
    fn empty_command_is_a_configuration_error() {
        let err = CommandInspector::new("none", vec![], None, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, PluginConfigError::EmptyCommand { ref name } if name == "none"));
        assert_eq!(err.to_string(), "plugin none: the command is empty");
    }
}
