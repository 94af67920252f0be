//! `dispatcher`: the state machine's Dispatch state (see
//! `alertresponder_aws::handlers::dispatch`).

use alertresponder_aws::sfn::DelayInput;
use alertresponder_aws::{handlers, stack, StackConfig};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    handlers::init_tracing();
    let config = StackConfig::from_env("dispatcher")?;
    let sdk = aws_config::load_from_env().await;
    let pipeline = stack::pipeline(&config, &sdk, vec![])?;
    let pipeline = &pipeline;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<DelayInput>| async move {
            handlers::dispatch(pipeline, event.payload).await
        },
    ))
    .await
}
