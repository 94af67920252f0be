//! `compiler`: the state machine's Compile state (see
//! `alertresponder_aws::handlers::compile`).

use alertresponder_aws::handlers::CompileInput;
use alertresponder_aws::{handlers, stack, StackConfig};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    handlers::init_tracing();
    let config = StackConfig::from_env("compiler")?;
    let sdk = aws_config::load_from_env().await;
    let pipeline = stack::pipeline(&config, &sdk, vec![])?;
    let pipeline = &pipeline;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<CompileInput>| async move {
            handlers::compile(pipeline, event.payload).await
        },
    ))
    .await
}
