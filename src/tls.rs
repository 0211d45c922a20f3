//! TLS files and primitives both servers' clients share: PEM certificates and keys read
//! with errors that name the setting, the OS's trust store, and the crypto provider.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use crate::error::UsageError;

/// The process's TLS primitives (ring: no C toolchain beyond cc, no cmake).
pub fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The OS's trust store (`sslrootcert = system`).
pub fn system_roots() -> Result<RootCertStore, UsageError> {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(found.certs);
    if store.is_empty() {
        return Err(UsageError::new(
            "sslrootcert = system, but the OS trust store holds no certificate (install ca-certificates)",
        ));
    }
    Ok(store)
}

/// Why a TLS handshake failed, read from the error text both clients' errors carry
/// (rustls's), so each server's message can name its own settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The certificate does not chain to a trusted CA.
    UnknownCa,
    /// The certificate was not issued for the host connected to.
    WrongName,
    /// The server sent an alert: it refused us (often: no client certificate it trusts).
    Refused,
}

pub fn failure(text: &str) -> Option<Failure> {
    if text.contains("UnknownIssuer") || text.contains("BadSignature") {
        Some(Failure::UnknownCa)
    } else if text.contains("NotValidForName") || text.contains("not valid for name") {
        Some(Failure::WrongName)
    } else if text.contains("received fatal alert") || text.contains("CertificateRequired") {
        Some(Failure::Refused)
    } else {
        None
    }
}

/// Every certificate in a PEM file.
pub fn read_certs(path: &str, key: &str) -> Result<Vec<CertificateDer<'static>>, UsageError> {
    parse_certs(&read(path, key)?, path, key)
}

/// Every certificate in a PEM file's bytes; `path` and `key` name it in errors.
pub fn parse_certs(
    bytes: &[u8],
    path: &str,
    key: &str,
) -> Result<Vec<CertificateDer<'static>>, UsageError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| UsageError::new(format!("{key} {path} is not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(UsageError::new(format!(
            "{key} {path} holds no certificate (expected PEM \"BEGIN CERTIFICATE\")"
        )));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn read_key(path: &str, key: &str) -> Result<PrivateKeyDer<'static>, UsageError> {
    parse_key(&read(path, key)?, path, key)
}

pub fn parse_key(
    bytes: &[u8],
    path: &str,
    key: &str,
) -> Result<PrivateKeyDer<'static>, UsageError> {
    PrivateKeyDer::from_pem_slice(bytes)
        .map_err(|e| UsageError::new(format!("{key} {path} holds no private key: {e}")))
}

pub fn read(path: &str, key: &str) -> Result<Vec<u8>, UsageError> {
    std::fs::read(path)
        .map_err(|e| UsageError::new(format!("cannot read {key} {path}: {e}; check the path")))
}
