//! Test kit of the AWS adapters (never shipped: `publish = false`, and no Lambda
//! binary depends on it; `make test` checks). What the tests of `alertresponder-aws`,
//! the tester's scenarios and the `aws-cost` program run on:
//!
//! - [`moto`]: a moto server per test on 127.0.0.1 ([`Moto`]), SDK configuration
//!   pointing at it;
//! - [`subscriber`]: an SQS queue subscribed to an SNS topic, to read exactly what a
//!   subscriber gets ([`Subscriber`]);
//! - [`tables`]: the stack's DynamoDB tables ([`create_tables`]);
//! - [`walker`]: the delay state machine of `template.yaml`, walked state by state;
//! - [`emulator`]: cargo-lambda's local Lambda emulator, invocations counted and timed;
//! - [`stack_box`]: the stack in a box (moto, the five binaries under cargo-lambda's
//!   emulator, the walker), driven by hand or as AWS would;
//! - [`venv`]: where the Python tools are. moto and cargo-lambda come from `.venv`
//!   (`make venv`, which `make test` runs); without them a test fails with one line
//!   saying how to install them.

pub mod emulator;
pub mod moto;
pub mod stack_box;
pub mod subscriber;
pub mod tables;
pub mod venv;
pub mod walker;

pub use moto::{http, sdk_config, Moto};
pub use subscriber::{create_topic, Delivered, Subscriber};
pub use tables::{create_tables, dynamo_store};
pub use venv::{venv_bin, Tool};

/// A name unique within this test process: resources of concurrent tests never meet.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}
