//! [`SqliteStore`]: every store port of the core on one SQLite file (WAL).
//!
//! One writer thread owns the connection and runs every operation in a group
//! transaction (`writer`). Times are integer epoch milliseconds, records are JSON
//! text, and a global counter gives every row a `seq` so that content comes back in
//! the order it was stored.
//!
//! - `schema`: the tables, their version, opening and setting up the file;
//! - `writer`: the writer thread and its group commit;
//! - `sql`: the helpers every query uses (also the queue's);
//! - `admit`: receiving an alert (open-or-join, the alert, its mentions) in one step;
//! - `ports`: the other store ports (claims, findings, reading, publication, errors);
//! - `read`: what the CLI and the HTTP API list (reports, errors), and retention;
//! - `cache`: the inspectors' answer cache and rate limiter;
//! - `delivery`: the delivery log (versions delivered per emitter, emitter memos);
//! - `browse`: the pages' read side (report list, filters, search, keyset paging).

use std::path::Path;

use rusqlite::Connection;

use crate::error::EmbeddedError;

mod admit;
mod browse;
mod cache;
mod delivery;
mod ports;
mod read;
mod schema;
pub(crate) mod sql;
mod writer;

#[cfg(test)]
mod tests;

pub use read::ReportSummary;
pub use schema::{Durability, SCHEMA_VERSION};

/// Every store port of the core ([`alertresponder_core::ports::Store`]) on a SQLite file.
///
/// One writer thread owns the connection. Calls queue up on a channel; the thread
/// runs every call waiting at that moment in one transaction, each call in a
/// savepoint of its own (a failing call rolls back only itself), commits once, and
/// only then answers each caller. Concurrent callers thus share a commit (group
/// commit) while every caller still learns of its write only once it is durable.
#[derive(Clone)]
pub struct SqliteStore {
    writer: writer::Writer,
    /// Read-only connections for the pages (`browse`); none for a store in memory.
    readers: browse::Readers,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating file, directory and schema on first run) the store at `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, EmbeddedError> {
        let mut store = Self::on(schema::open_file(path, durability)?)?;
        store.readers = browse::Readers::on_file(path);
        Ok(store)
    }

    /// A store in memory, gone when the last clone is dropped (for tests).
    pub fn open_in_memory() -> Result<Self, EmbeddedError> {
        Self::on(schema::prepare(
            Connection::open_in_memory()?,
            Durability::Normal,
        )?)
    }

    /// The store on a connection already set up.
    fn on(conn: Connection) -> Result<Self, EmbeddedError> {
        Ok(Self {
            writer: writer::Writer::spawn(conn)?,
            readers: browse::Readers::default(),
        })
    }

    /// Runs `f` as one atomic unit of writes (a savepoint in a group transaction).
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, EmbeddedError>
    where
        F: FnOnce(&Connection) -> Result<T, EmbeddedError> + Send + 'static,
        T: Send + 'static,
    {
        self.writer.call(f).await
    }

    /// Runs `f` on one consistent snapshot (the writer's, so it sees every answered write).
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, EmbeddedError>
    where
        F: FnOnce(&Connection) -> Result<T, EmbeddedError> + Send + 'static,
        T: Send + 'static,
    {
        self.writer.call(f).await
    }
}
