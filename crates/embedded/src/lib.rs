//! AlertResponder embedded adapters: everything the pipeline needs on one machine.
//!
//! [`store::SqliteStore`] keeps reports, alerts, claims, sections, published versions
//! and errors in one SQLite file (WAL), implementing every store port of the core
//! (`store/`: schema, writer thread, SQL helpers, admission, the other ports, the
//! CLI's read models); [`queue::JobQueue`] keeps every pending job —
//! delays, tasks, deliveries — in the same file with its due time, so a restart loses
//! nothing; [`runtime::Runtime`] runs due jobs through the core handlers, in real time
//! (`serve`) or in virtual time (`run`).

pub mod error;
pub mod queue;
pub mod runtime;
pub mod store;

pub use error::EmbeddedError;
pub use queue::JobQueue;
pub use runtime::Runtime;
pub use store::SqliteStore;
