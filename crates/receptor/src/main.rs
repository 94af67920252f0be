//! `receptor`: alerts from the ingest SNS topic (and GuardDuty findings from
//! EventBridge) into reports, and delay executions that closed without success
//! (from EventBridge) into error records and retries (see
//! `alertresponder_aws::handlers::receive_event`).

use alertresponder_aws::{handlers, stack, StackConfig};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    handlers::init_tracing();
    let config = StackConfig::from_env("receptor")?;
    let sdk = aws_config::load_from_env().await;
    let pipeline = stack::pipeline(&config, &sdk, vec![])?;
    let pipeline = &pipeline;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handlers::receive_event(pipeline, event.payload).await
        },
    ))
    .await
}
