//! `reviewer-invoker`: the state machine's Review state: compiles the next version of
//! the report from the table, lets the Rego policy and the reviewer functions decide a
//! severity, and publishes it exactly once (see `alertresponder_aws::handlers::review`).

use alertresponder_aws::handlers::ReviewInput;
use alertresponder_aws::{handlers, stack, StackConfig};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    handlers::init_tracing();
    let config = StackConfig::from_env("reviewer-invoker")?;
    let sdk = aws_config::load_from_env().await;
    let pipeline = stack::pipeline(&config, &sdk, vec![])?;
    let (pipeline, wait) = (&pipeline, config.review_wait);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ReviewInput>| async move {
            handlers::review(pipeline, event.payload, wait).await
        },
    ))
    .await
}
