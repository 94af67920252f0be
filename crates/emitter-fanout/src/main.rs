//! `emitter-fanout`: subscribed to the report topic, delivers each published version,
//! as stored, to the emitters of the configuration file (`CONFIG_S3_URI`), each
//! (report, version, emitter) on its own, and replays one on request (see
//! `alertresponder_aws::handlers::fanout`); when `QUARANTINE` is `On` or `DryRun`, the
//! automatic quarantine of EC2 instances is one more emitter
//! (`alertresponder_aws::quarantine`).

use std::sync::Arc;

use alertresponder_aws::handlers::{self, DeliveryBudget};
use alertresponder_aws::{quarantine, stack, StackConfig};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    handlers::init_tracing();
    let config = StackConfig::from_env("emitter-fanout")?;
    let sdk = aws_config::load_from_env().await;
    let mut pipeline = stack::configured_pipeline(&config, &sdk, vec![]).await?;
    if let Some(emitter) = quarantine::from_env(&config, &sdk, &pipeline)? {
        pipeline.emitters.push(Arc::new(emitter));
    }
    let pipeline = &pipeline;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let budget = DeliveryBudget::from_deadline_ms(event.context.deadline);
        handlers::fanout_event(pipeline, event.payload, &budget).await
    }))
    .await
}
