//! The inspector harness, as a library.
//!
//! Two ways to write an inspector in Rust:
//!
//! - **Invoked** ([`serve`]; see `tester/functions/src/bin/tester-inspector.rs`): a Lambda function that takes a [`Task`] and answers an
//!   [`Inspection`]. Name its ARN in the stack's `InspectorFunctions` parameter; the
//!   stack's harness invokes it for every task.
//! - **Subscribed** ([`run`]): your own harness, subscribed to the stack's task topic
//!   (export `<stack>-TaskTopicArn`), with the stack's table and topics in its
//!   environment; it stores your sections and feeds your new attributes back itself.
//!
//! ```no_run
//! use inspector_harness::{serve, Inspection, SectionDraft, Task};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), lambda_runtime::Error> {
//!     serve(|task: Task| async move {
//!         let mut found = Inspection::default();
//!         if task.attribute.attr_type == "ipaddr" {
//!             found.sections.push(SectionDraft {
//!                 section_type: "host".into(),
//!                 content: serde_json::json!({ "ipaddr": [task.attribute.value] }),
//!             });
//!         }
//!         Ok(found)
//!     })
//!     .await
//! }
//! ```

use std::future::Future;
use std::sync::Arc;

pub use alertresponder_core::ports::{Inspection, Inspector, SectionDraft};
pub use alertresponder_core::{Attribute, PluginError, Task};
use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};

use alertresponder_aws::{handlers, stack, StackConfig};

/// Answers one invocation: the inspector's findings, or a failure the harness records
/// for this inspector and attribute (it does not stop the other inspectors).
pub async fn handle_invocation<F, Fut>(inspect: &F, task: Task) -> Result<Inspection, Diagnostic>
where
    F: Fn(Task) -> Fut,
    Fut: Future<Output = Result<Inspection, PluginError>>,
{
    inspect(task).await.map_err(|e| Diagnostic {
        error_type: "InspectorFailed".into(),
        error_message: e.to_string(),
    })
}

/// Serves an inspector function invoked by the harness: a [`Task`] in, an
/// [`Inspection`] out.
pub async fn serve<F, Fut>(inspect: F) -> Result<(), Error>
where
    F: Fn(Task) -> Fut,
    Fut: Future<Output = Result<Inspection, PluginError>>,
{
    handlers::init_tracing();
    let inspect = &inspect;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Task>| async move {
        handle_invocation(inspect, event.payload).await
    }))
    .await
}

/// Runs a harness subscribed to the task topic: every task through `inspectors`, the
/// inspectors of the configuration file (`CONFIG_S3_URI`) and the inspector functions
/// of `INSPECTOR_FUNCTIONS`; sections are stored, new
/// attributes are claimed and published as tasks. Configuration from the environment
/// (as the stack's own harness: `REPORT_TABLE`, `ERROR_TABLE`, `TASK_TOPIC_ARN`,
/// `ERROR_TOPIC_ARN`, …).
pub async fn run(inspectors: Vec<Arc<dyn Inspector>>) -> Result<(), Error> {
    handlers::init_tracing();
    let config = StackConfig::from_env("inspector-harness")?;
    let sdk = aws_config::load_from_env().await;
    let pipeline = stack::configured_pipeline(&config, &sdk, inspectors).await?;
    let pipeline = &pipeline;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| async move {
        handlers::inspect_sns(pipeline, event.payload).await
    }))
    .await
}

/// An [`Inspector`] made of a name and a function, for [`run`].
pub fn inspector<F, Fut>(name: impl Into<String>, inspect: F) -> Arc<dyn Inspector>
where
    F: Fn(Task) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Inspection, PluginError>> + Send + 'static,
{
    Arc::new(FnInspector {
        name: name.into(),
        inspect,
    })
}

struct FnInspector<F> {
    name: String,
    inspect: F,
}

#[async_trait::async_trait]
impl<F, Fut> Inspector for FnInspector<F>
where
    F: Fn(Task) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Inspection, PluginError>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn inspect(&self, task: &Task) -> Result<Inspection, PluginError> {
        (self.inspect)(task.clone()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(t: &str, v: &str) -> Task {
        serde_json::from_value(serde_json::json!({
            "report_id": "r1",
            "attribute": {"type": t, "key": "k", "value": v, "context": ["remote"]}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn an_invoked_inspector_answers_its_findings_or_a_named_failure() {
        let f = |t: Task| async move {
            if t.attribute.value == "bad" {
                return Err(PluginError::Failed("lookup failed".into()));
            }
            Ok(Inspection {
                sections: vec![SectionDraft {
                    section_type: "host".into(),
                    content: serde_json::json!({"ipaddr": [t.attribute.value]}),
                }],
                new_attributes: vec![],
            })
        };
        let ok = handle_invocation(&f, task("ipaddr", "192.0.2.1"))
            .await
            .unwrap();
        assert_eq!(ok.sections[0].content["ipaddr"][0], "192.0.2.1");
        let err = handle_invocation(&f, task("ipaddr", "bad"))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, "InspectorFailed");
        assert_eq!(err.error_message, "lookup failed");
    }

    #[tokio::test]
    async fn a_function_inspector_has_its_name_and_answers() {
        let i = inspector("echo", |t: Task| async move {
            Ok(Inspection {
                sections: vec![],
                new_attributes: vec![t.attribute],
            })
        });
        assert_eq!(i.name(), "echo");
        let out = i.inspect(&task("domain", "example.org")).await.unwrap();
        assert_eq!(out.new_attributes[0].value, "example.org");
    }
}
