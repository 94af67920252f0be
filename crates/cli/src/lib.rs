//! The `alertresponder` command: the whole pipeline on one machine.
//!
//! [`config`] reads `alertresponder.toml`; [`app`] wires the SQLite store, the durable
//! job queue and the plugins into a runtime; [`run`] feeds alert files through it in
//! virtual time; [`serve`] exposes the HTTP API over it in real time
//! ([`openapi`]: its OpenAPI document's schemas); [`input`] splits
//! alert files and request bodies into single alerts; [`review`] runs the reviewers
//! over saved reports, to try and test policies; [`check`] checks a config for either
//! runtime and prints the deployment plan; [`replay`] re-sends a stored version to one
//! emitter, and [`errors`] lists what failed (a failed delivery with its replay line);
//! [`web`] is the pages `serve` shows a browser.

pub mod app;
pub mod check;
pub mod config;
pub mod errors;
pub mod input;
pub mod openapi;
pub mod replay;
pub mod review;
pub mod run;
pub mod serve;
pub mod web;
