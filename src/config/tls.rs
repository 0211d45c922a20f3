//! TLS settings as libpq spells them (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`), so
//! the same values work from a config file, the libpq environment and a `--pg-url`, and
//! pgbench gets them unchanged.

use serde::{Deserialize, Serialize};

use crate::error::UsageError;

/// libpq's `sslmode`. `allow` is left out: it only matters to servers that refuse TLS-less
/// logins after a plaintext try, and it would be a sixth path to test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    /// TLS when the server offers it, certificate not checked (libpq's default).
    #[default]
    Prefer,
    /// TLS or nothing; the certificate is checked only when a root CA is given.
    Require,
    /// TLS, certificate signed by the root CA; any host name.
    VerifyCa,
    /// TLS, certificate signed by the root CA and issued for the host connected to.
    VerifyFull,
}

pub const SSLMODES: &str = "disable, prefer, require, verify-ca or verify-full";

impl SslMode {
    pub fn parse(v: &str, origin: &str) -> Result<SslMode, UsageError> {
        Ok(match v.trim() {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(UsageError::new(format!(
                    "{origin}: sslmode \"allow\" is not supported; use {SSLMODES}"
                )))
            }
            other => {
                return Err(UsageError::new(format!(
                    "{origin}: sslmode {other:?} does not exist; use {SSLMODES}"
                )))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmodes_parse_and_refuse() {
        assert_eq!(
            SslMode::parse("verify-ca", "x").expect("valid"),
            SslMode::VerifyCa
        );
        let e = SslMode::parse("verify_full", "PGSSLMODE").expect_err("no such mode");
        assert!(e.to_string().contains("PGSSLMODE"), "{e}");
        assert!(e.to_string().contains("verify-full"), "{e}");
    }
}
