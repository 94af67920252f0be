//! The Python tools the tests run (moto, cargo-lambda), from the workspace's `.venv`,
//! which `make venv` installs with the pins of the Makefile's `PY_TOOLS` (`make test`
//! runs it first). A plain `cargo test` on a machine without `.venv` fails each test
//! that needs a tool with one line saying how to install it: a failure, never a skip.

use std::path::PathBuf;

/// A program of `.venv/bin` and the requirement that installs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    /// What a person calls it (`moto`).
    pub name: &'static str,
    /// Its program in `.venv/bin`.
    pub program: &'static str,
    /// What `make venv` installs, exactly as the Makefile's `PY_TOOLS` pins it.
    pub requirement: &'static str,
}

/// moto in server mode: the stand-in for DynamoDB, SNS, SQS and Step Functions.
pub const MOTO: Tool = Tool {
    name: "moto",
    program: "moto_server",
    requirement: "moto[server]==5.2.5",
};

/// cargo-lambda: the local Lambda emulator of the stack in a box.
pub const CARGO_LAMBDA: Tool = Tool {
    name: "cargo-lambda",
    program: "cargo-lambda",
    requirement: "cargo-lambda==1.9.2",
};

impl Tool {
    /// The line a test fails with when the tool is missing.
    pub fn missing_line(&self) -> String {
        format!(
            "{} is not installed: run `make venv` (installs {} into .venv)",
            self.name, self.requirement
        )
    }

    /// Where `.venv/bin/PROGRAM` is, if it is installed.
    pub fn find(&self) -> Option<PathBuf> {
        find_venv_bin(self.program)
    }

    /// Where `.venv/bin/PROGRAM` is; fails the test with [`Tool::missing_line`] if it
    /// is not installed.
    pub fn path(&self) -> PathBuf {
        self.find().unwrap_or_else(|| fail(&self.missing_line()))
    }
}

/// Where `.venv/bin/NAME` is, searching up from this crate, if it exists.
pub fn find_venv_bin(name: &str) -> Option<PathBuf> {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let candidate = dir.join(".venv/bin").join(name);
        if candidate.exists() {
            return Some(candidate);
        }
        if !dir.pop() {
            return None;
        }
    }
}

/// Where `.venv/bin/NAME` is; fails the test with a line saying how to install it if
/// it is missing (for moto and cargo-lambda, prefer [`MOTO`] and [`CARGO_LAMBDA`],
/// whose line names the pinned requirement).
pub fn venv_bin(name: &str) -> PathBuf {
    find_venv_bin(name).unwrap_or_else(|| {
        fail(&format!(
            ".venv/bin/{name} is not installed: run `make venv` (installs the test tools into .venv)"
        ))
    })
}

/// Fails the current test (or program) with `line`: printed as it is, then the thread
/// unwinds without calling the panic hook, so the failure reads as that one line, with
/// no "panicked at" location or backtrace around it. The test harness still reports
/// the test as failed, with `line` in its output.
pub fn fail(line: &str) -> ! {
    eprintln!("{line}");
    std::panic::resume_unwind(Box::new(line.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_fails_with_the_line_that_says_how_to_install_it() {
        let tool = Tool {
            name: "nothing",
            program: "no-such-program-in-any-venv",
            requirement: "nothing==0.0",
        };
        assert_eq!(tool.find(), None);
        let failure = std::panic::catch_unwind(|| tool.path()).unwrap_err();
        assert_eq!(
            failure.downcast_ref::<String>().map(String::as_str),
            Some("nothing is not installed: run `make venv` (installs nothing==0.0 into .venv)")
        );
    }

    #[test]
    fn the_pins_named_in_the_lines_are_the_ones_make_venv_installs() {
        let makefile = crate::stack_box::workspace_root().join("Makefile");
        let text = std::fs::read_to_string(&makefile).unwrap();
        let py_tools = text
            .lines()
            .find(|l| l.starts_with("PY_TOOLS :="))
            .expect("the Makefile sets PY_TOOLS");
        for tool in [MOTO, CARGO_LAMBDA] {
            let pinned = py_tools
                .split_whitespace()
                .any(|r| r.trim_matches('\'') == tool.requirement);
            assert!(pinned, "{} is not in {py_tools}", tool.requirement);
        }
    }
}
