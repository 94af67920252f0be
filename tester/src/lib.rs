//! Integration tests of a deployed AlertResponder stack.
//!
//! - [`config`]: `tester/config.json`, naming the stacks and region.
//! - [`target`]: the stacks' outputs and parameters, from CloudFormation.
//! - [`scenarios`]: what the tests publish and check, shared by the deployed-stack
//!   test (`tests/deployed.rs`) and the stack-in-a-box test (`tests/stack_in_a_box.rs`).
//!
//! The tester stack's inspector and reviewer functions are the crate
//! `alertresponder-tester-functions` (`tester/functions`).

pub mod config;
pub mod scenarios;
pub mod target;
