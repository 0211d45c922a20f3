//! Error kinds that decide the exit code. Everything else is `anyhow` with context.

use std::fmt;

/// Bad input: a config, a flag, a file or an unreachable server the user named.
/// Printed as one line; the process exits with code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(String);

impl UsageError {
    pub fn new(msg: impl Into<String>) -> Self {
        // One line, always: multi-line messages from libraries are folded.
        let msg: String = msg.into();
        Self(msg.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The run was stopped by Ctrl-C or SIGTERM after writing what it had; exit code 130.
#[derive(Debug, thiserror::Error)]
#[error("interrupted: finished tests are kept, the running one is marked incomplete")]
pub struct Interrupted;

/// Jobs were lost or the results are otherwise untrustworthy; exit code 1 with a clear line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuditFailed(pub String);

pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_INTERRUPTED: u8 = 130;

/// Shorthand for returning a usage error through `anyhow`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError::new(msg))
}

/// The exit code an error chain asks for.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return EXIT_USAGE;
        }
        if cause.downcast_ref::<Interrupted>().is_some() {
            return EXIT_INTERRUPTED;
        }
    }
    EXIT_FAILURE
}

/// One line for the terminal: the usage message alone, or the context chain joined by ": ".
pub fn one_line(err: &anyhow::Error, secrets: &[String]) -> String {
    let text = match err.chain().find_map(|c| c.downcast_ref::<UsageError>()) {
        Some(u) => u.to_string(),
        None => format!("{err:#}"),
    };
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::mask::scrub(&line, secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn usage_errors_exit_2_even_under_context() {
        let e: anyhow::Error = Err::<(), _>(usage("bad\nthing"))
            .context("while loading")
            .unwrap_err();
        assert_eq!(exit_code(&e), EXIT_USAGE);
        assert_eq!(one_line(&e, &[]), "bad thing");
    }

    #[test]
    fn secrets_never_reach_the_line() {
        let e = anyhow::anyhow!("connect to x with pw hunter2 failed");
        assert_eq!(exit_code(&e), EXIT_FAILURE);
        assert!(!one_line(&e, &["hunter2".into()]).contains("hunter2"));
    }
}
