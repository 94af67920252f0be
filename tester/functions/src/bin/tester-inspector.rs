//! The tester stack's inspector function (see the crate's library),
//! written with the inspector-harness library. The main stack under test names it in
//! `InspectorFunctions`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    inspector_harness::serve(|task| async move { Ok(tester_functions::inspect(&task)) }).await
}
