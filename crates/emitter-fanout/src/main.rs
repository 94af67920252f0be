//! `emitter-fanout`: subscribed to the report topic, delivers each published version,
//! as stored, to the emitters of the configuration file (`CONFIG_S3_URI`) (see `alertresponder_aws::handlers::deliver_sns`).

use alertresponder_aws::{handlers, stack, StackConfig};
use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    handlers::init_tracing();
    let config = StackConfig::from_env("emitter-fanout")?;
    let sdk = aws_config::load_from_env().await;
    let pipeline = stack::configured_pipeline(&config, &sdk, vec![]).await?;
    let pipeline = &pipeline;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| async move {
        handlers::deliver_sns(pipeline, event.payload).await
    }))
    .await
}
