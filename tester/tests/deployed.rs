//! The scenarios against the stacks `tester/config.json` names (deployed with
//! `make deploy-test-stacks`; run with `make integration`). Without that file the test
//! says on one line that it was skipped and how to point it at a stack.

use std::io::Write;
use std::time::Duration;

use alertresponder_tester::config::{self, Config};
use alertresponder_tester::scenarios::{run_all, verdict, Harness};
use alertresponder_tester::target::Target;

/// Added to the stack's delays for each wait: Lambda cold starts, SNS and SQS delivery,
/// Step Functions.
const MARGIN: Duration = Duration::from_secs(120);

/// Straight to the terminal: the test harness captures `println!` of a passing test,
/// and a skip must never pass silently.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

async fn config_or_skip() -> Option<Config> {
    let path = config::config_path();
    match config::load(&path) {
        Ok(Some(c)) => Some(c),
        Ok(None) => {
            say(&config::skipped_line(&path));
            None
        }
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenarios_pass_on_the_deployed_stacks() {
    let Some(config) = config_or_skip().await else {
        return;
    };
    let sdk = aws_config::from_env()
        .region(aws_config::Region::new(config.region.clone()))
        .load()
        .await;
    let target = Target::resolve(&aws_sdk_cloudformation::Client::new(&sdk), &config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    say(&format!(
        "testing stack {} (InspectionDelay {} s, ReviewDelay {} s) through tester stack {} in {}",
        config.main_stack_name,
        target.inspection_delay.as_secs(),
        target.review_delay.as_secs(),
        config.tester_stack_name,
        config.region
    ));
    let harness = Harness::new(&sdk, target, MARGIN);
    match verdict(&run_all(&harness).await) {
        Ok(lines) => say(&lines),
        Err(lines) => panic!("run {}:\n{lines}", harness.run),
    }
}
