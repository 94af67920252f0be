//! `emitter-fanout`: the state machine's Publish state: exactly-once publication on
//! the report topic and the built-in emitters (see
//! `alertresponder_aws::handlers::publish`).

use alertresponder_aws::handlers::PublishInput;
use alertresponder_aws::{handlers, stack, StackConfig};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    handlers::init_tracing();
    let config = StackConfig::from_env("emitter-fanout")?;
    let sdk = aws_config::load_from_env().await;
    let pipeline = stack::pipeline(&config, &sdk, vec![])?;
    let pipeline = &pipeline;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<PublishInput>| async move {
            handlers::publish(pipeline, event.payload).await
        },
    ))
    .await
}
