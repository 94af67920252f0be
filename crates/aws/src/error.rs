//! Errors of the AWS adapters, told apart as retryable or not.

use alertresponder_core::{CoreError, StoreError};
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use thiserror::Error;

/// What went wrong in an AWS adapter.
#[derive(Debug, Error)]
pub enum AwsError {
    /// A required environment variable is missing or malformed.
    #[error("environment variable {name}: {message}")]
    Config {
        /// The variable.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// An AWS API call failed.
    #[error("{service} {operation} failed: {message}")]
    Service {
        /// `dynamodb`, `sns`, `sfn`, `lambda`.
        service: &'static str,
        /// The API operation (`PutItem`, `Publish` …).
        operation: &'static str,
        /// The SDK's message, with its error code.
        message: String,
        /// Whether the same call may succeed later (throttling, timeouts, 5xx).
        retryable: bool,
    },
    /// A stored record or an answer does not have the shape we wrote or expect.
    #[error("malformed {what}: {message}")]
    Malformed {
        /// Which record or answer.
        what: String,
        /// What is wrong with it.
        message: String,
    },
}

/// AWS error codes worth a retry of the same call.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "TransactionConflictException",
    "TransactionInProgressException",
    "InternalServerError",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "ServiceException",
    "KMSThrottlingException",
    "EC2ThrottledException",
];

impl AwsError {
    /// Builds a service error from an SDK error; transport failures, timeouts and
    /// throttling are retryable, a rejected request is not.
    pub fn sdk<E>(service: &'static str, operation: &'static str, err: E) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = err.code().map(str::to_string);
        let retryable = match code.as_deref() {
            Some(c) => RETRYABLE_CODES.contains(&c),
            // No error code: the request did not get an answer (timeout, connection).
            None => true,
        };
        AwsError::Service {
            service,
            operation,
            message: DisplayErrorContext(&err).to_string(),
            retryable,
        }
    }

    /// Whether retrying may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            AwsError::Service {
                retryable: true,
                ..
            }
        )
    }
}

impl From<AwsError> for StoreError {
    fn from(e: AwsError) -> Self {
        if e.is_retryable() {
            StoreError::Transient(e.to_string())
        } else {
            StoreError::Permanent(e.to_string())
        }
    }
}

impl AwsError {
    /// As a pipeline error of port `stage` (scheduler, task bus, report bus).
    pub fn into_core(self, stage: &str) -> CoreError {
        CoreError::Port {
            stage: stage.to_string(),
            retryable: self.is_retryable(),
            message: self.to_string(),
        }
    }
}
