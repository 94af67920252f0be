//! `reviewer-invoker`: the state machine's Review state: the Rego policy and the
//! reviewer functions decide a severity (see `alertresponder_aws::handlers::review`).

use alertresponder_aws::handlers::Compiled;
use alertresponder_aws::{handlers, stack, StackConfig};
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    handlers::init_tracing();
    let config = StackConfig::from_env("reviewer-invoker")?;
    let sdk = aws_config::load_from_env().await;
    let reviewers = stack::reviewers(&config, &sdk)?;
    let reviewers = &reviewers;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Compiled>| async move {
        Ok::<_, Diagnostic>(handlers::review(reviewers, event.payload).await)
    }))
    .await
}
