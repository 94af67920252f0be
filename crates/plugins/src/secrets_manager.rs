//! [`AwsSecretsManager`]: `{ secret = "name-or-arn" }` references read with
//! `secretsmanager:GetSecretValue` (the `AWSCURRENT` version's `SecretString`).
//!
//! A binary secret is refused (a key or token is text); an error names the secret and
//! AWS's error code, never a value.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};

use crate::secret::SecretsManager;

/// The longest error detail kept.
const MAX_DETAIL: usize = 300;

/// Reads `SecretString`s from AWS Secrets Manager.
#[derive(Debug, Clone)]
pub struct AwsSecretsManager {
    client: aws_sdk_secretsmanager::Client,
}

impl AwsSecretsManager {
    /// A client from the SDK configuration (credentials, region, `AWS_ENDPOINT_URL*`).
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(sdk),
        }
    }

    /// A client from the SDK's default configuration.
    pub async fn from_env() -> Self {
        Self::new(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
    }
}

#[async_trait]
impl SecretsManager for AwsSecretsManager {
    async fn secret_string(&self, id: &str) -> Result<String, String> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| {
                let why = match e.code() {
                    Some("ResourceNotFoundException") => "not found".to_string(),
                    Some("AccessDeniedException") => {
                        "secretsmanager:GetSecretValue denied".to_string()
                    }
                    Some("DecryptionFailure") => "cannot be decrypted with its KMS key".to_string(),
                    Some(_) => "GetSecretValue failed".to_string(),
                    None => DisplayErrorContext(&e)
                        .to_string()
                        .chars()
                        .take(MAX_DETAIL)
                        .collect(),
                };
                match e.code() {
                    Some(code) => format!("secret {id}: {why} ({code})"),
                    None => format!("secret {id}: {why}"),
                }
            })?;
        match (out.secret_string(), out.secret_binary()) {
            (Some(s), _) => Ok(s.to_string()),
            (None, Some(_)) => Err(format!(
                "secret {id} is binary (SecretBinary): only a SecretString is read; store the value as text"
            )),
            (None, None) => Err(format!("secret {id} has no SecretString")),
        }
    }
}
