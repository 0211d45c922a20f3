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

/// The TLS keys of a PostgreSQL URL's query string, which tokio-postgres would reject
/// (it knows neither verify-ca nor verify-full, nor the file keys).
pub const URL_KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// Splits `url` into the URL without the TLS query keys and those keys' decoded values.
pub fn split_url(url: &str) -> (String, Vec<(String, String)>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut tls = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if URL_KEYS.contains(&k) {
            tls.push((k.to_string(), percent_decode(v)));
        } else {
            kept.push(pair);
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, tls)
}

/// `%2F` → `/`; anything malformed stays as written (a path with a stray `%` still works).
fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_tls_keys_are_split_off_and_decoded() {
        let (url, tls) = split_url(
            "postgres://u:p@h:5/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem",
        );
        assert_eq!(url, "postgres://u:p@h:5/db?application_name=x");
        assert_eq!(
            tls,
            vec![
                ("sslmode".to_string(), "verify-full".to_string()),
                ("sslrootcert".to_string(), "/tmp/ca.pem".to_string())
            ]
        );
        let (url, tls) = split_url("postgres://u@h/db?sslmode=require");
        assert_eq!(url, "postgres://u@h/db");
        assert_eq!(tls.len(), 1);
        assert_eq!(split_url("postgres://u@h/db").1, vec![]);
    }

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
