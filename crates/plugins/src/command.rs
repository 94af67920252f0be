//! Runs an external program without a shell, feeding it JSON and reading a bounded answer.

use std::process::Stdio;
use std::time::Duration;

use alertresponder_core::PluginError;
use serde::Serialize;

use crate::error::PluginConfigError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// How much of a failing program's stderr is kept in its error.
const STDERR_TAIL: usize = 1024;

/// An external program as configured: its name, argv (never run through a shell) and
/// time limit. Shared by the command inspector, reviewer and emitter.
#[derive(Debug, Clone)]
pub(crate) struct CommandSpec {
    pub(crate) name: String,
    argv: Vec<String>,
    pub(crate) timeout: Duration,
}

impl CommandSpec {
    /// Checks that `argv` names a program.
    pub(crate) fn new(
        name: impl Into<String>,
        argv: Vec<String>,
        timeout: Duration,
    ) -> Result<Self, PluginConfigError> {
        let name = name.into();
        if argv.is_empty() {
            return Err(PluginConfigError::EmptyCommand { name });
        }
        Ok(Self {
            name,
            argv,
            timeout,
        })
    }

    /// Runs the program with `input` as JSON on stdin; returns its bounded stdout.
    pub(crate) async fn run_json(
        &self,
        input: &impl Serialize,
        max_stdout: usize,
        extra_env: &[(String, String)],
    ) -> Result<Vec<u8>, PluginError> {
        let bytes = serde_json::to_vec(input)
            .map_err(|e| PluginError::Failed(format!("cannot encode the input: {e}")))?;
        run_command(&self.argv, &bytes, self.timeout, max_stdout, extra_env).await
    }
}

/// Runs `argv` (program, then arguments; never through a shell) with `stdin` on its
/// standard input and returns its standard output, at most `max_stdout` bytes.
///
/// The child is killed when the timeout passes, when its output goes over the bound, or
/// when the caller drops the future. A non-zero exit fails with the tail of its stderr.
pub(crate) async fn run_command(
    argv: &[String],
    stdin: &[u8],
    timeout: Duration,
    max_stdout: usize,
    extra_env: &[(String, String)],
) -> Result<Vec<u8>, PluginError> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| PluginError::Failed("empty command".to_string()))?;
    let mut child = Command::new(program)
        .args(args)
        .envs(extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| PluginError::Failed(format!("cannot run {program}: {e}")))?;
    let (child_in, child_out, child_err) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take());

    let exchange = async {
        let write = async {
            if let Some(mut pipe) = child_in {
                match pipe.write_all(stdin).await {
                    // The program may answer without reading its input.
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                        return Err(PluginError::Failed(format!(
                            "cannot write to {program}: {e}"
                        )))
                    }
                    _ => {}
                }
                // Dropping the pipe closes it: the program sees end of input.
            }
            Ok(())
        };
        let read_out = async {
            match child_out {
                Some(pipe) => read_bounded(pipe, max_stdout).await,
                None => Ok(Vec::new()),
            }
        };
        let read_err = async {
            Ok(match child_err {
                Some(pipe) => read_tail(pipe, STDERR_TAIL).await,
                None => String::new(),
            })
        };
        let ((), out, err) = tokio::try_join!(write, read_out, read_err)?;
        let status = child
            .wait()
            .await
            .map_err(|e| PluginError::Failed(format!("cannot wait for {program}: {e}")))?;
        Ok::<_, PluginError>((status, out, err))
    };

    let outcome = tokio::time::timeout(timeout, exchange).await;
    let (status, out, err) = match outcome {
        Err(_) => {
            // Best effort: the drop below kills it too (`kill_on_drop`).
            let _ = child.start_kill();
            return Err(PluginError::TimedOut(timeout));
        }
        Ok(Err(e)) => {
            let _ = child.start_kill();
            return Err(e);
        }
        Ok(Ok(done)) => done,
    };
    tracing::debug!(program = %program, status = %status, stdout_bytes = out.len(), "command finished");
    if status.success() {
        return Ok(out);
    }
    let how = match status.code() {
        Some(code) => format!("exit status {code}"),
        None => status.to_string(), // killed by a signal: "signal: 9 (SIGKILL)"
    };
    Err(PluginError::Failed(if err.is_empty() {
        how
    } else {
        format!("{how}: {err}")
    }))
}

/// Reads all of `pipe`, failing as soon as it goes over `max` bytes.
async fn read_bounded(pipe: impl AsyncRead + Unpin, max: usize) -> Result<Vec<u8>, PluginError> {
    let mut out = Vec::new();
    pipe.take(max as u64 + 1)
        .read_to_end(&mut out)
        .await
        .map_err(|e| PluginError::Failed(format!("cannot read output: {e}")))?;
    if out.len() > max {
        return Err(PluginError::InvalidOutput(format!(
            "output over {max} bytes"
        )));
    }
    Ok(out)
}

/// Reads all of `pipe` and keeps its last `keep` bytes, as trimmed text.
async fn read_tail(mut pipe: impl AsyncRead + Unpin, keep: usize) -> String {
    let mut tail = Vec::new();
    let mut chunk = [0u8; 4096];
    // A read error ends the stream: stderr is only a hint for the error message.
    while let Ok(n @ 1..) = pipe.read(&mut chunk).await {
        tail.extend_from_slice(&chunk[..n]);
        if tail.len() > 2 * keep {
            tail.drain(..tail.len() - keep);
        }
    }
    let start = tail.len().saturating_sub(keep);
    String::from_utf8_lossy(&tail[start..]).trim().to_string()
}
