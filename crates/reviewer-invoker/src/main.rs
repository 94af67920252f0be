//! `reviewer-invoker`: the state machine's Review state: compiles the next version of
//! the report from the table, lets the reviewers of the configuration file
//! (`CONFIG_S3_URI`: the Rego policy, a reviewer function) decide a severity, and publishes it exactly once (see `alertresponder_aws::handlers::review`).

use alertresponder_aws::handlers::ReviewInput;
use alertresponder_aws::{handlers, stack, StackConfig};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    handlers::init_tracing();
    let config = StackConfig::from_env("reviewer-invoker")?;
    let sdk = aws_config::load_from_env().await;
    let pipeline = stack::configured_pipeline(&config, &sdk, vec![]).await?;
    let (pipeline, wait) = (&pipeline, config.review_wait);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ReviewInput>| async move {
            handlers::review(pipeline, event.payload, wait).await
        },
    ))
    .await
}
