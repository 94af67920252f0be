//! The `alertresponder` command: the whole pipeline on one machine.
//!
//! [`config`] reads `alertresponder.toml`; [`app`] wires the SQLite store, the durable
//! job queue and the plugins into a runtime; [`run`] feeds alert files through it in
//! virtual time; [`serve`] exposes the HTTP API over it in real time; [`input`] splits
//! alert files and request bodies into single alerts; [`review`] runs the reviewers
//! over saved reports, to try and test policies; [`check`] checks a config for either
//! runtime and prints the deployment plan.

pub mod app;
pub mod check;
pub mod config;
pub mod input;
pub mod review;
pub mod run;
pub mod serve;
