//! `inspector-harness`: every task from the task topic through the inspector
//! functions named in `INSPECTOR_FUNCTIONS`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    inspector_harness::run(vec![]).await
}
