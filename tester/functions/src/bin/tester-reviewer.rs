//! The tester stack's reviewer function (see the crate's library): a
//! compiled report in, a result out. The main stack under test names it in
//! `ReviewerFunctions`.

use alertresponder_core::{Report, ReportResult};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    alertresponder_aws::handlers::init_tracing();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Report>| async move {
        Ok::<Option<ReportResult>, Error>(Some(tester_functions::review(&event.payload)))
    }))
    .await
}
