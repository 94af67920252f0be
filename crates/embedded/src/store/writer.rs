//! The writer thread: the one owner of the connection, and its group commit.
//!
//! Calls queue up on a channel. The thread takes every call waiting at that moment
//! (at most [`MAX_GROUP`]), begins one transaction (`BEGIN IMMEDIATE`, so another
//! process writing the same file waits on the busy timeout rather than failing
//! halfway), runs each call in a savepoint of its own (a failing call rolls back only
//! itself), commits once, and only then answers each caller. Concurrent callers thus
//! share a commit (group commit) while every caller still learns of its write only
//! once it is durable. If the transaction cannot begin, or the commit fails, every
//! call of the group is answered with that error: none of them was kept.

use std::sync::mpsc;

use rusqlite::Connection;

use crate::error::EmbeddedError;

/// Most calls run in one transaction.
const MAX_GROUP: usize = 512;

/// The handle to the writer thread: cloned by every store handle; the thread ends
/// when the last one is dropped.
#[derive(Clone)]
pub(super) struct Writer {
    calls: mpsc::Sender<Box<dyn Call>>,
}

impl Writer {
    /// Starts the thread that owns `conn`.
    pub(super) fn spawn(conn: Connection) -> Result<Self, EmbeddedError> {
        let (calls, rx) = mpsc::channel::<Box<dyn Call>>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| {
                EmbeddedError::Corrupt(format!("cannot start the database thread: {e}"))
            })?;
        Ok(Self { calls })
    }

    /// Runs `f` on the writer thread, in the next group transaction; answers once committed.
    pub(super) async fn call<T, F>(&self, f: F) -> Result<T, EmbeddedError>
    where
        F: FnOnce(&Connection) -> Result<T, EmbeddedError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.calls
            .send(Box::new(Queued { f, reply }))
            .map_err(|_| EmbeddedError::Corrupt("the database thread has stopped".into()))?;
        answer.await.map_err(|_| {
            EmbeddedError::Corrupt("the database thread stopped during a call".into())
        })?
    }
}

/// One queued call: run inside the group's transaction, answered after the commit.
trait Call: Send {
    /// Runs the call in its own savepoint; returns how to answer it after the commit.
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Answer>;
    /// Answers without running: the group's transaction could not begin.
    fn abort(self: Box<Self>, error: EmbeddedError);
}

/// A call's outcome, held until the group's commit.
trait Answer: Send {
    /// Sends the outcome, or `commit_error` if the commit failed.
    fn send(self: Box<Self>, commit_error: Option<EmbeddedError>);
}

/// A call waiting for its group: the work and where to answer.
struct Queued<T, F> {
    f: F,
    reply: tokio::sync::oneshot::Sender<Result<T, EmbeddedError>>,
}

/// A call that ran: its outcome, waiting for the commit.
struct Held<T> {
    outcome: Result<T, EmbeddedError>,
    reply: tokio::sync::oneshot::Sender<Result<T, EmbeddedError>>,
}

impl<T, F> Call for Queued<T, F>
where
    F: FnOnce(&Connection) -> Result<T, EmbeddedError> + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Answer> {
        let Queued { f, reply } = *self;
        let outcome = conn
            .execute_batch("SAVEPOINT call")
            .map_err(EmbeddedError::from)
            .and_then(|()| f(conn));
        let closed = match &outcome {
            Ok(_) => conn.execute_batch("RELEASE call"),
            Err(_) => conn.execute_batch("ROLLBACK TO call; RELEASE call"),
        };
        let outcome = match closed {
            Ok(()) => outcome,
            Err(e) => Err(e.into()),
        };
        Box::new(Held { outcome, reply })
    }

    fn abort(self: Box<Self>, error: EmbeddedError) {
        // The caller may have gone (cancelled): nobody left to tell.
        let _ = self.reply.send(Err(error));
    }
}

impl<T: Send + 'static> Answer for Held<T> {
    fn send(self: Box<Self>, commit_error: Option<EmbeddedError>) {
        let outcome = match commit_error {
            None => self.outcome,
            Some(e) => Err(e),
        };
        // The caller may have gone (cancelled): nobody left to tell.
        let _ = self.reply.send(outcome);
    }
}

/// The writer thread: group, run, commit, answer; ends when every store handle is gone.
fn run(conn: Connection, calls: mpsc::Receiver<Box<dyn Call>>) {
    while let Ok(first) = calls.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match calls.try_recv() {
                Ok(c) => group.push(c),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let message = e.to_string();
            let transient = EmbeddedError::from(e).is_transient();
            for c in group {
                c.abort(EmbeddedError::Commit {
                    message: message.clone(),
                    transient,
                });
            }
            continue;
        }
        let answers: Vec<Box<dyn Answer>> = group.into_iter().map(|c| c.run(&conn)).collect();
        let commit_error = conn.execute_batch("COMMIT").err().map(|e| {
            // Leaves no transaction open for the next group; it is gone either way.
            let _ = conn.execute_batch("ROLLBACK");
            let message = e.to_string();
            (message, EmbeddedError::from(e).is_transient())
        });
        for a in answers {
            a.send(
                commit_error
                    .as_ref()
                    .map(|(message, transient)| EmbeddedError::Commit {
                        message: message.clone(),
                        transient: *transient,
                    }),
            );
        }
    }
}
