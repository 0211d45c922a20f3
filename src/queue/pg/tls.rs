//! The TLS connector behind every PostgreSQL connection, checking what libpq's `sslmode`
//! says it checks: nothing (prefer, require), the chain (verify-ca, and require with a
//! root CA given, as libpq does), or the chain and the host name (verify-full).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{Postgres, SslMode};
use crate::error::UsageError;
use crate::tls::{provider, read_certs, read_key, system_roots};

/// The connector for `pg`'s TLS settings; files that cannot be read are the user's to fix.
/// Built once per settings and shared (a reconnect in a crash trial reads no file).
pub fn connector(pg: &Postgres) -> Result<PgTls, UsageError> {
    type Key = (SslMode, String, String, String);
    static BUILT: Mutex<Vec<(Key, PgTls)>> = Mutex::new(Vec::new());
    let key = (
        effective_mode(pg),
        pg.sslrootcert.clone(),
        pg.sslcert.clone(),
        pg.sslkey.clone(),
    );
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, c)) = built.iter().find(|(k, _)| *k == key) {
        return Ok(c.clone());
    }
    let c = PgTls(build(pg)?);
    built.push((key, c.clone()));
    Ok(c)
}

/// libpq ignores sslmode on a Unix socket, where TLS never runs.
pub fn effective_mode(pg: &Postgres) -> SslMode {
    if pg.host.starts_with('/') {
        SslMode::Disable
    } else {
        pg.sslmode
    }
}

/// tokio-postgres asks for a connector even for a Unix socket, with an empty host name
/// rustls would refuse; none is used there (the mode is disable), so any name will do.
#[derive(Clone)]
pub struct PgTls(MakeRustlsConnect);

impl<S> MakeTlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = <MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect;
    type Error = <MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, host: &str) -> Result<Self::TlsConnect, Self::Error> {
        let host = if host.is_empty() { "localhost" } else { host };
        MakeTlsConnect::<S>::make_tls_connect(&mut self.0, host)
    }
}

fn build(pg: &Postgres) -> Result<MakeRustlsConnect, UsageError> {
    let provider = Arc::new(provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| UsageError::new(format!("TLS setup: {e}")))?;
    let mode = effective_mode(pg);
    if mode == SslMode::Disable {
        // No TLS: no file is read (libpq reads none either).
        return Ok(MakeRustlsConnect::new(
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
                .with_no_client_auth(),
        ));
    }
    if pg.sslrootcert == "system" && mode != SslMode::VerifyFull {
        // A public CA signs certificates for anyone's domain: only the name makes it safe
        // (libpq 16 refuses the same).
        return Err(UsageError::new(format!(
            "postgres.sslrootcert = system needs sslmode = verify-full (it is {}): any \
             publicly trusted certificate would pass a weaker check",
            mode.name()
        )));
    }
    let roots = roots(pg)?;
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
        (SslMode::VerifyFull, Some(r)) => webpki(r, &provider)?,
        // libpq checks the chain whenever a root CA is there, whatever the mode; a
        // failed check stops qbench where libpq's prefer would retry without TLS.
        (SslMode::VerifyCa | SslMode::Require | SslMode::Prefer, Some(r)) => {
            Arc::new(ChainOnly(webpki(r, &provider)?))
        }
        (SslMode::VerifyFull | SslMode::VerifyCa, None) => {
            return Err(UsageError::new(format!(
                "postgres.sslmode = {} needs the CA that signed the server's certificate: set \
                 postgres.sslrootcert (PGSSLROOTCERT, ?sslrootcert=) to its PEM file, or to \
                 \"system\" for the OS's trust store",
                mode.name()
            )))
        }
        _ => Arc::new(AnyCert(provider.clone())),
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = if pg.sslcert.is_empty() {
        config.with_no_client_auth()
    } else {
        let certs = read_certs(&pg.sslcert, "postgres.sslcert")?;
        let key = read_key(&pg.sslkey, "postgres.sslkey")?;
        config.with_client_auth_cert(certs, key).map_err(|e| {
            UsageError::new(format!(
                "postgres.sslcert {} and postgres.sslkey do not make a client identity: {e}",
                pg.sslcert
            ))
        })?
    };
    Ok(MakeRustlsConnect::new(config))
}

/// The trusted roots: the file given, the OS's store for `system`, else libpq's default
/// `~/.postgresql/root.crt` when it exists.
fn roots(pg: &Postgres) -> Result<Option<RootCertStore>, UsageError> {
    let path = match pg.sslrootcert.as_str() {
        "system" => return system_roots().map(Some),
        "" => match default_root() {
            Some(p) => p,
            None => return Ok(None),
        },
        p => PathBuf::from(p),
    };
    let mut store = RootCertStore::empty();
    let certs = read_certs(&path.display().to_string(), "postgres.sslrootcert")?;
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(UsageError::new(format!(
            "postgres.sslrootcert {} holds no usable CA certificate",
            path.display()
        )));
    }
    Ok(Some(store))
}

fn default_root() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let p = Path::new(&home).join(".postgresql/root.crt");
    p.exists().then_some(p)
}

fn webpki(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, UsageError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| UsageError::new(format!("postgres.sslrootcert: {e}")))
}

/// verify-ca: the chain must hold, the name may differ.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain first and the name last, so a name error means the
        // chain held.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// prefer and require without a root CA: encrypted, the certificate unchecked (libpq's
/// meaning); the handshake's signatures are still verified.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
