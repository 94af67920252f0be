//! Small helpers every query of the store and the queue uses: cached statements, the
//! store-wide sequence, and the conversions between stored integers and domain types.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Params, Row};

use crate::error::EmbeddedError;

/// Executes `sql` through the connection's statement cache.
pub(crate) fn exec<P: Params>(conn: &Connection, sql: &str, params: P) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// Queries one row through the connection's statement cache.
pub(crate) fn row1<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
    conn: &Connection,
    sql: &str,
    params: P,
    f: F,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

/// The one number `sql` counts.
pub(crate) fn count(tx: &Connection, sql: &str) -> Result<u64, EmbeddedError> {
    let n: i64 = row1(tx, sql, [], |r| r.get(0))?;
    u64::try_from(n).map_err(|_| EmbeddedError::Corrupt(format!("negative count {n}")))
}

/// The next value of the store-wide sequence (insertion order across every table).
pub(crate) fn next_seq(tx: &Connection) -> Result<i64, EmbeddedError> {
    Ok(row1(
        tx,
        "UPDATE counters SET value = value + 1 WHERE name = 'seq' RETURNING value",
        [],
        |r| r.get(0),
    )?)
}

/// Every JSON column of one report's rows in a table, in the order `sql` gives.
pub(crate) fn json_rows<T: serde::de::DeserializeOwned>(
    tx: &Connection,
    sql: &str,
    report_id: &str,
) -> Result<Vec<T>, EmbeddedError> {
    let mut stmt = tx.prepare_cached(sql)?;
    let texts = stmt
        .query_map(params![report_id], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    texts
        .iter()
        .map(|t| serde_json::from_str(t).map_err(EmbeddedError::from))
        .collect()
}

/// Epoch milliseconds of a time.
pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The time at epoch milliseconds `ms`.
pub(crate) fn from_millis(ms: i64) -> Result<DateTime<Utc>, EmbeddedError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| EmbeddedError::Corrupt(format!("time {ms} ms is out of range")))
}

/// A stored count or version as the `u32` the model holds; `what` names the column.
pub(crate) fn to_u32(v: i64, what: &str) -> Result<u32, EmbeddedError> {
    u32::try_from(v).map_err(|_| EmbeddedError::Corrupt(format!("{what} {v} is out of range")))
}

/// A size or index as an SQL integer (saturating: no real size reaches it).
pub(crate) fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
