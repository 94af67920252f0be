//! Lambda adapters: the user's own inspector and reviewer functions, invoked
//! synchronously with the same JSON the command plugins take (a Task in, an
//! Inspection out; a Report in, a result or `null` out).

use std::time::Duration;

use alertresponder_core::pipeline::bound;
use alertresponder_core::ports::{Inspection, Inspector, Reviewer};
use alertresponder_core::{Attribute, PluginError, Report, ReportResult, Task};
use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use serde::Serialize;

use crate::error::AwsError;

/// Largest answer read from a plugin function (Lambda's own limit is 6 MB).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The short name of a function given by name or ARN (`…:function:NAME[:alias]`).
pub fn function_name(function: &str) -> String {
    match function.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest).to_string(),
        None => function.to_string(),
    }
}

async fn invoke<T: Serialize>(
    client: &aws_sdk_lambda::Client,
    function: &str,
    input: &T,
) -> Result<Vec<u8>, PluginError> {
    let payload = serde_json::to_vec(input)
        .map_err(|e| PluginError::Failed(format!("encoding input: {e}")))?;
    let out = client
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload))
        .send()
        .await
        .map_err(|e| PluginError::Failed(AwsError::sdk("lambda", "Invoke", e).to_string()))?;
    let body = out.payload.map(Blob::into_inner).unwrap_or_default();
    if let Some(kind) = out.function_error {
        return Err(PluginError::Failed(bound(&format!(
            "function {} failed ({kind}): {}",
            function_name(function),
            String::from_utf8_lossy(&body)
        ))));
    }
    if body.len() > MAX_ANSWER_BYTES {
        return Err(PluginError::InvalidOutput(format!(
            "answer of {} bytes, more than {MAX_ANSWER_BYTES}",
            body.len()
        )));
    }
    Ok(body)
}

/// An inspector function of the user's.
#[derive(Debug, Clone)]
pub struct LambdaInspector {
    client: aws_sdk_lambda::Client,
    function: String,
    name: String,
    timeout: Duration,
}

impl LambdaInspector {
    /// Invokes `function` (name or ARN), waiting at most `timeout`.
    pub fn new(
        client: aws_sdk_lambda::Client,
        function: impl Into<String>,
        timeout: Duration,
    ) -> Self {
        let function = function.into();
        Self {
            client,
            name: function_name(&function),
            function,
            timeout,
        }
    }
}

#[async_trait]
impl Inspector for LambdaInspector {
    fn name(&self) -> &str {
        &self.name
    }

    fn accepts(&self, _attribute: &Attribute) -> bool {
        true
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn inspect(&self, task: &Task) -> Result<Inspection, PluginError> {
        let body = invoke(&self.client, &self.function, task).await?;
        if body.is_empty() || body == b"null" {
            return Ok(Inspection::default());
        }
        serde_json::from_slice(&body).map_err(|e| PluginError::InvalidOutput(bound(&e.to_string())))
    }
}

/// A reviewer function of the user's.
#[derive(Debug, Clone)]
pub struct LambdaReviewer {
    client: aws_sdk_lambda::Client,
    function: String,
    name: String,
}

impl LambdaReviewer {
    /// Invokes `function` (name or ARN).
    pub fn new(client: aws_sdk_lambda::Client, function: impl Into<String>) -> Self {
        let function = function.into();
        Self {
            client,
            name: function_name(&function),
            function,
        }
    }
}

#[async_trait]
impl Reviewer for LambdaReviewer {
    fn name(&self) -> &str {
        &self.name
    }

    async fn review(&self, report: &Report) -> Result<Option<ReportResult>, PluginError> {
        let body = invoke(&self.client, &self.function, report).await?;
        if body.is_empty() || body == b"null" {
            return Ok(None);
        }
        serde_json::from_slice::<Option<ReportResult>>(&body)
            .map_err(|e| PluginError::InvalidOutput(bound(&e.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_come_from_names_and_arns() {
        assert_eq!(function_name("intel"), "intel");
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:intel"),
            "intel"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:intel:live"),
            "intel"
        );
    }
}
