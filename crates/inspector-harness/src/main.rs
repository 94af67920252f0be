//! `inspector-harness`: every task from the task topic through the inspectors of the
//! configuration file (`CONFIG_S3_URI`) and the functions of `INSPECTOR_FUNCTIONS`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    inspector_harness::run(vec![]).await
}
