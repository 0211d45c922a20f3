//! `--pg-url`: a `postgres://` URL read as libpq reads it (by tokio-postgres's own
//! parser), with libpq's TLS keys taken out of its query first, into the plain parts
//! the config layers over its others.

use crate::config::{PgUrl, SslMode};
use crate::error::UsageError;
use crate::mask::mask_url_password;

/// The parts a `postgres://user:password@host:port/database?sslmode=…` URL gives.
pub fn parse(url: &str) -> Result<PgUrl, UsageError> {
    // The query may hold a password too: never echo it.
    let shown = mask_url_password(url.split('?').next().unwrap_or(url));
    let bad = || {
        UsageError::new(format!(
            "--pg-url {shown} is not a URL of the form postgres://user:password@host:port/database"
        ))
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(bad());
    }
    let (url, tls) = split_url(url);
    // A parameter qbench would drop (channel_binding=require, options, …) must not
    // be silently ignored: the run would not be what the user asked for.
    let query = url.split_once('?').map_or("", |(_, q)| q);
    for key in query.split('&').filter_map(|p| p.split('=').next()) {
        if !key.is_empty() && !["host", "port", "user", "password", "dbname"].contains(&key) {
            return Err(UsageError::new(format!(
                "--pg-url {shown}: parameter {key:?} is not supported; qbench takes host, \
                 port, user, password, dbname, sslmode, sslrootcert, sslcert and sslkey"
            )));
        }
    }
    let parsed: tokio_postgres::Config = url.parse().map_err(|_| bad())?;
    let mut out = PgUrl::default();
    for (k, v) in tls {
        match k.as_str() {
            "sslmode" => out.sslmode = Some(SslMode::parse(&v, "--pg-url")?),
            "sslrootcert" => out.sslrootcert = Some(v),
            "sslcert" => out.sslcert = Some(v),
            _ => out.sslkey = Some(v),
        }
    }
    out.host = parsed.get_hosts().first().map(|h| match h {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
    });
    // tokio-postgres answers 5432 for a URL that names no port: the lower layers'
    // port (PGPORT, the file) stands unless the URL gives one.
    out.port = names_a_port(&url)
        .then(|| parsed.get_ports().first().copied())
        .flatten();
    out.user = parsed.get_user().map(str::to_string);
    out.password = parsed
        .get_password()
        .map(|pw| String::from_utf8_lossy(pw).into_owned());
    out.database = parsed.get_dbname().map(str::to_string);
    Ok(out)
}

/// Whether the URL's authority (`user:pw@host:port`) ends in a port.
fn names_a_port(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host.strip_prefix('[') {
        Some(v6) => v6.contains("]:"),
        None => host.contains(':'),
    }
}

/// The TLS keys of a PostgreSQL URL's query string, which tokio-postgres would reject
/// (it knows neither verify-ca nor verify-full, nor the file keys).
const URL_KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// Splits `url` into the URL without the TLS query keys and those keys' decoded values.
fn split_url(url: &str) -> (String, Vec<(String, String)>) {
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
    fn a_url_gives_its_parts_and_leaves_the_rest() {
        let u = parse("postgres://flaguser:flagpw@flaghost:6002/flagdb").expect("valid");
        assert_eq!(u.host.as_deref(), Some("flaghost"));
        assert_eq!(u.port, Some(6002));
        assert_eq!(u.user.as_deref(), Some("flaguser"));
        assert_eq!(u.password.as_deref(), Some("flagpw"));
        assert_eq!(u.database.as_deref(), Some("flagdb"));
        let u = parse("postgres://u@h/db?sslmode=verify-full").expect("valid");
        assert_eq!(
            (u.password, u.port),
            (None, None),
            "the lower layers keep theirs"
        );
        assert_eq!(u.sslmode, Some(SslMode::VerifyFull));
        assert_eq!(parse("postgres://u@[::1]:7/db").expect("v6").port, Some(7));
        assert_eq!(parse("postgres://u:p%3A@[::1]/db").expect("v6").port, None);
    }

    #[test]
    fn a_bad_url_is_refused_without_its_password() {
        for url in [
            "mysql://u:secretpw@h/db",
            "postgres://u:secretpw@h/db?channel_binding=require",
        ] {
            let e = parse(url).expect_err("refused").to_string();
            assert!(e.contains("--pg-url"), "{e}");
            assert!(!e.contains("secretpw"), "password leaked: {e}");
        }
    }
}
