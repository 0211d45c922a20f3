//! TLS on real servers that accept nothing else (`--local --tls`: PostgreSQL with
//! `hostnossl … reject`, Valkey behind stunnel): verify-full with the right CA works end
//! to end; a wrong CA, a wrong host name and plaintext each fail with one line, exit 2.

mod common;

use std::process::Output;

use qbench::config::{Config, SslMode};

const PASSWORD: &str = "tls-Secret-pw-9";

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The shared TLS servers' config, as a test changes it.
fn tls_config() -> Config {
    common::shared_tls().base.clone()
}

/// `setup-schema --queue Q` with `cfg`: connects and creates, or fails.
fn setup(cfg: &Config, queue: &str) -> Output {
    let f = common::config_file(cfg);
    common::run_qbench(
        &[
            "--config",
            f.path().to_str().expect("utf8"),
            "setup-schema",
            "--queue",
            queue,
        ],
        &[],
    )
}

/// Exit 2, one line on stderr holding `needle`, no password anywhere.
fn refused(o: &Output, needle: &str, what: &str) {
    let all = text(o);
    assert_eq!(o.status.code(), Some(2), "{what}: {all}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: one line: {err}");
    assert!(
        err.contains(needle),
        "{what}: expected {needle:?} in: {err}"
    );
    assert!(!all.contains(PASSWORD), "{what}: password leaked: {all}");
}

/// A CA nobody signed the servers' certificate with.
fn other_ca(dir: &std::path::Path) -> String {
    let (ca, _, _) = qbench::local::tls::generate().expect("generate a CA");
    let p = dir.join("other-ca.crt");
    std::fs::write(&p, ca).expect("write CA");
    p.display().to_string()
}

#[test]
fn verify_full_with_the_right_ca_connects_and_checks_what_it_should() {
    let base = tls_config();
    assert_eq!(base.postgres.sslmode, SslMode::VerifyFull);
    assert!(
        base.valkey.url.starts_with("rediss://localhost:"),
        "{}",
        base.valkey.url
    );
    for q in ["skip_locked", "valkey_streams"] {
        let o = setup(&base, q);
        assert!(o.status.success(), "{q} over verify-full: {}", text(&o));
    }
    // verify-ca checks the chain only: 127.0.0.1 is not on the certificate, yet it passes.
    let mut by_ip = base.clone();
    by_ip.postgres.host = "127.0.0.1".into();
    by_ip.postgres.sslmode = SslMode::VerifyCa;
    let o = setup(&by_ip, "skip_locked");
    assert!(o.status.success(), "verify-ca by IP: {}", text(&o));
    // require without a CA encrypts and checks nothing (libpq's meaning).
    by_ip.postgres.sslmode = SslMode::Require;
    by_ip.postgres.sslrootcert.clear();
    let o = setup(&by_ip, "skip_locked");
    assert!(o.status.success(), "require without CA: {}", text(&o));
}

#[test]
fn a_wrong_ca_or_host_name_is_refused_with_one_line() {
    let dir = tempfile::tempdir().expect("dir");
    let wrong = other_ca(dir.path());
    let mut base = tls_config();
    base.postgres.password = PASSWORD.into();

    let mut c = base.clone();
    c.postgres.sslrootcert = wrong.clone();
    refused(
        &setup(&c, "skip_locked"),
        "not signed by a CA in postgres.sslrootcert",
        "pg wrong CA",
    );
    // verify-ca does not excuse a wrong CA, even with the name wrong too; nor does
    // require once a CA is given (libpq checks the chain then).
    c.postgres.sslmode = SslMode::VerifyCa;
    c.postgres.host = "127.0.0.1".into();
    refused(
        &setup(&c, "skip_locked"),
        "not signed by a CA",
        "pg verify-ca wrong CA",
    );
    c.postgres.sslmode = SslMode::Require;
    refused(
        &setup(&c, "skip_locked"),
        "not signed by a CA",
        "pg require wrong CA",
    );

    let mut c = base.clone();
    c.postgres.host = "127.0.0.1".into();
    refused(
        &setup(&c, "skip_locked"),
        "not issued for host \"127.0.0.1\"",
        "pg wrong host",
    );

    let mut c = base.clone();
    c.valkey.tls_ca_file = wrong;
    refused(
        &setup(&c, "valkey_streams"),
        "not signed by a CA in valkey.tls_ca_file",
        "valkey wrong CA",
    );

    let mut c = base.clone();
    c.valkey.url = c.valkey.url.replace("localhost", "127.0.0.1");
    refused(
        &setup(&c, "valkey_streams"),
        "not issued for the URL's host",
        "valkey wrong host",
    );
}

#[test]
fn plaintext_to_a_tls_only_server_says_so() {
    let mut base = tls_config();
    base.postgres.password = PASSWORD.into();
    let mut c = base.clone();
    c.postgres.sslmode = SslMode::Disable;
    refused(
        &setup(&c, "skip_locked"),
        "accepts only TLS connections",
        "pg plaintext",
    );

    // redis:// to stunnel's port: the terminator hangs up on a plaintext command.
    let mut c = base.clone();
    c.valkey.url = c.valkey.url.replace("rediss://", "redis://");
    c.valkey.tls_ca_file.clear();
    let o = setup(&c, "valkey_streams");
    refused(&o, "use a rediss:// URL", "valkey plaintext");
    // It failed on the hang-up, not at the 10-s connect timeout: told by the error, not
    // by the clock (a debug process on loaded cores starts in seconds).
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert!(
        !err.contains("timed out") && !err.contains("timeout"),
        "a plaintext try must fail on the hang-up, not a timeout: {err}"
    );

    // rediss:// to Valkey's own plaintext port: it waits for the rest of a "command", so
    // this ends at the 10-s connect timeout.
    let port = common::shared_tls().servers.valkey.port;
    let mut c = base.clone();
    c.valkey.url = format!("rediss://localhost:{port}");
    refused(
        &setup(&c, "valkey_streams"),
        "did not complete a TLS handshake",
        "valkey TLS to plaintext",
    );
}

#[test]
fn bad_tls_settings_are_refused_before_any_connection() {
    let mut base = tls_config();
    base.postgres.password = PASSWORD.into();
    let mut c = base.clone();
    c.postgres.sslrootcert = "/nonexistent/ca.pem".into();
    refused(
        &setup(&c, "skip_locked"),
        "cannot read postgres.sslrootcert /nonexistent/ca.pem",
        "pg CA missing",
    );

    let mut c = base.clone();
    c.valkey.tls_ca_file = "/etc/hostname".into();
    refused(
        &setup(&c, "valkey_streams"),
        "valkey.tls_ca_file /etc/hostname holds no certificate",
        "valkey CA not PEM",
    );

    let mut c = base.clone();
    c.postgres.sslcert = base.postgres.sslrootcert.clone();
    c.postgres.sslkey = "/nonexistent/client.key".into();
    refused(
        &setup(&c, "skip_locked"),
        "cannot read postgres.sslkey",
        "pg key missing",
    );

    let f = common::config_file(&base);
    let cfg = f.path().to_str().expect("utf8");
    let o = common::run_qbench(
        &["--config", cfg, "setup-schema"],
        &[("PGSSLMODE", "verify_full")],
    );
    refused(
        &o,
        "PGSSLMODE: sslmode \"verify_full\" does not exist",
        "bad PGSSLMODE",
    );
    let url = "postgres://u:tls-Secret-pw-9@localhost/db?sslmode=strict";
    let o = common::run_qbench(&["--config", cfg, "--pg-url", url, "setup-schema"], &[]);
    refused(
        &o,
        "--pg-url: sslmode \"strict\" does not exist",
        "bad URL sslmode",
    );

    let mut c = base.clone();
    c.postgres.sslrootcert.clear();
    refused(
        &setup(&c, "skip_locked"),
        "needs the CA that signed the server's certificate",
        "verify-full without CA",
    );
    c.postgres.sslrootcert = "system".into();
    c.postgres.sslmode = SslMode::Require;
    refused(
        &setup(&c, "skip_locked"),
        "system needs sslmode = verify-full",
        "system roots, weak mode",
    );

    let url =
        "postgres://u:tls-Secret-pw-9@localhost/db?sslmode=verify-full&channel_binding=require";
    let o = common::run_qbench(&["--config", cfg, "--pg-url", url, "setup-schema"], &[]);
    refused(
        &o,
        "parameter \"channel_binding\" is not supported",
        "a URL parameter qbench would drop",
    );

    let o = common::run_qbench(&["--tls", "config"], &[]);
    refused(
        &o,
        "--tls starts throwaway TLS servers",
        "--tls without --local",
    );
}

/// The whole `--local --tls` path: both servers TLS-only, pgbench through the same TLS,
/// an exact audit, and the manifests saying what was encrypted.
#[test]
fn local_tls_suite_runs_exact_over_tls_and_records_it() {
    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = tempfile::NamedTempFile::new().expect("file");
    std::io::Write::write_all(
        &mut cfg,
        // pgbench's smallest scale: its init is not what the test checks.
        b"[benchmark]\nproduction_duration = 2\nproduction_rate = 200\nwarmup_duration = 1\nwarmup_rate = 200\n[pgbench]\nscale = 1\n",
    )
    .expect("write");
    let o = common::run_qbench(
        &[
            "--config",
            cfg.path().to_str().expect("utf8"),
            "--local",
            "--tls",
            "run-suite",
            "--backend",
            "all",
            "--queues",
            "skip_locked,valkey_streams",
            "--scenarios",
            "load",
            "--quick",
            "--out",
            dir.path().to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    for (sub, test, tls) in [
        ("vm1_pg", "skip_locked_load", "TLSv1."),
        ("vm2_valkey", "valkey_load", "rediss"),
    ] {
        let path = dir.path().join(sub).join(format!("{test}_manifest.json"));
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("manifest")).expect("json");
        let server_tls = m["server_tls"].as_str().unwrap_or_default();
        assert!(
            server_tls.starts_with(tls),
            "{test}: server_tls {server_tls:?}"
        );
        assert!(
            m["local_servers"]["tls"]
                .as_str()
                .is_some_and(|t| t.contains("stunnel")),
            "{test}: {}",
            m["local_servers"]
        );
        assert_eq!(m["summary"]["lost"], 0, "{test}");
        assert_eq!(m["summary"]["duplicated"], 0, "{test}");
        assert_eq!(m["summary"]["audit"], "exact", "{test}");
        assert!(
            m["summary"]["completed"].as_u64().unwrap_or(0) > 0,
            "{test}: {}",
            m["summary"]
        );
        // pgbench reached the TLS-only server too (the load scenario's neighbour).
        let pgbench = dir.path().join(sub).join(format!("{test}_pgbench.csv"));
        let rows = std::fs::read_to_string(&pgbench).expect("pgbench.csv");
        assert!(rows.lines().count() > 1, "{test}: pgbench wrote no rows");
    }
}

/// The children of `pid` called `name`.
fn children_named(pid: u32, name: &str) -> Vec<u32> {
    common::processes_named(name)
        .into_iter()
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/stat"))
                .ok()
                .and_then(|s| {
                    let after = s.rsplit_once(')')?.1.split_whitespace().nth(1)?.to_string();
                    after.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// `kill -9` of qbench takes its stunnel down too (tied by PR_SET_PDEATHSIG).
#[test]
fn kill_9_of_qbench_leaves_no_stunnel_behind() {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = common::qbench()
        .args([
            "--local",
            "--tls",
            "--duration",
            "60",
            "--rate",
            "50",
            "run-suite",
            "--backend",
            "valkey",
            "--scenarios",
            "warm",
            "--out",
            dir.path().to_str().expect("utf8"),
        ])
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let stunnel = loop {
        let found: Vec<u32> = ["stunnel4", "stunnel"]
            .iter()
            .flat_map(|n| children_named(child.id(), n))
            .collect();
        if let Some(p) = found.first() {
            break *p;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "qbench ended before stunnel was seen"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no stunnel child within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    child.kill().expect("kill -9");
    let _ = child.wait();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while qbench::local::process::is_alive(stunnel) {
        assert!(
            std::time::Instant::now() < deadline,
            "stunnel {stunnel} outlived its qbench by 15 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// postgres.sslcert/sslkey: a database that demands a client certificate signed by a CA of
/// the test's own lets in the client that presents one, and refuses the one that does not.
#[test]
fn a_client_certificate_gets_in_where_one_is_demanded() {
    let shared = common::shared_tls();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let admin_cfg = shared.base.clone();
    rt.block_on(async {
        let admin = common::admin_client(&admin_cfg).await;
        for sql in ["DROP DATABASE IF EXISTS mtls_db", "CREATE DATABASE mtls_db"] {
            admin.batch_execute(sql).await.expect(sql);
        }
    });
    // A client CA the server is told to trust, and an identity it signed; the files live
    // where the server's user can read them.
    let tls_dir = shared.servers.root().join("tls");
    let (ca, cert, key) = qbench::local::tls::generate().expect("client identity");
    let (ca_path, cert_path, key_path) = (
        tls_dir.join("client-ca.crt"),
        tls_dir.join("client.crt"),
        tls_dir.join("client.key"),
    );
    std::fs::write(&ca_path, ca).expect("write");
    std::fs::write(&cert_path, cert).expect("write");
    std::fs::write(&key_path, key).expect("write");
    let hba = shared.servers.postgres.data_dir.join("pg_hba.conf");
    let rest = std::fs::read_to_string(&hba).expect("pg_hba.conf");
    std::fs::write(
        &hba,
        format!("hostssl mtls_db all 127.0.0.1/32 scram-sha-256 clientcert=verify-ca\n{rest}"),
    )
    .expect("write pg_hba.conf");
    rt.block_on(async {
        let admin = common::admin_client(&admin_cfg).await;
        let trust = format!("ALTER SYSTEM SET ssl_ca_file = '{}'", ca_path.display());
        for sql in [trust.as_str(), "SELECT pg_reload_conf()"] {
            admin.batch_execute(sql).await.expect(sql);
        }
    });

    // The right password; only the certificate is missing.
    let mut bare = tls_config();
    bare.postgres.database = "mtls_db".into();
    // The reload is asynchronous: wait until the server demands the certificate.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let o = setup(&bare, "skip_locked");
        if o.status.code() == Some(2) {
            assert!(text(&o).contains("set postgres.sslcert"), "{}", text(&o));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server never asked for a certificate: {}",
            text(&o)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    bare.postgres.sslcert = cert_path.display().to_string();
    bare.postgres.sslkey = key_path.display().to_string();
    let o = setup(&bare, "skip_locked");
    assert!(
        o.status.success(),
        "with a client certificate: {}",
        text(&o)
    );
}

/// A Unix-socket host: libpq ignores sslmode there, and so does qbench.
#[test]
fn a_unix_socket_host_connects_whatever_the_sslmode() {
    let shared = common::shared_tls();
    let mut c = tls_config();
    c.postgres.host = shared.servers.postgres.data_dir.display().to_string();
    assert_eq!(c.postgres.sslmode, SslMode::VerifyFull);
    let o = setup(&c, "skip_locked");
    assert!(
        o.status.success(),
        "socket with verify-full set: {}",
        text(&o)
    );
}

/// valkey.tls_cert_file/tls_key_file: a TLS endpoint that demands a client certificate
/// signed by a CA of the test's own (a second stunnel, in front of the same Valkey) lets
/// in the client that presents one, and refuses the one that does not.
#[test]
fn a_valkey_client_certificate_gets_in_where_one_is_demanded() {
    let shared = common::shared_tls();
    let certs = shared
        .servers
        .certs
        .as_ref()
        .expect("TLS servers have certificates");
    let dir = tempfile::tempdir().expect("dir");
    let (ca, cert, key) = qbench::local::tls::generate().expect("client identity");
    let (ca_path, cert_path, key_path) = (
        dir.path().join("client-ca.crt"),
        dir.path().join("client.crt"),
        dir.path().join("client.key"),
    );
    std::fs::write(&ca_path, ca).expect("write");
    std::fs::write(&cert_path, cert).expect("write");
    std::fs::write(&key_path, key).expect("write");
    let port = qbench::local::free_port().expect("port");
    let conf = dir.path().join("stunnel.conf");
    std::fs::write(
        &conf,
        format!(
            "foreground = yes\npid =\nsyslog = no\ndebug = warning\n[mtls]\naccept = 127.0.0.1:{port}\n\
             connect = 127.0.0.1:{}\ncert = {}\nkey = {}\nverifyChain = yes\nCAfile = {}\n",
            shared.servers.valkey.port,
            certs.cert.display(),
            certs.key.display(),
            ca_path.display()
        ),
    )
    .expect("write stunnel.conf");
    let bin = qbench::local::binaries::stunnel().expect("stunnel4 (setup/prepare_machine.sh)");
    // Killed however the test ends.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut guard = Killed(
        std::process::Command::new(bin)
            .arg(&conf)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn stunnel"),
    );
    let stunnel = &mut guard.0;
    // Ready when it accepts connections.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            stunnel.try_wait().expect("wait").is_none(),
            "stunnel exited"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "stunnel never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut c = tls_config();
    c.valkey.url = format!("rediss://localhost:{port}");
    c.postgres.password = PASSWORD.into();
    let bare = setup(&c, "valkey_streams");
    c.valkey.tls_cert_file = cert_path.display().to_string();
    c.valkey.tls_key_file = key_path.display().to_string();
    c.postgres.password = tls_config().postgres.password;
    let with_cert = setup(&c, "valkey_streams");
    drop(guard);
    refused(
        &bare,
        "client certificate",
        "valkey without a client certificate",
    );
    assert!(
        with_cert.status.success(),
        "with a client certificate: {}",
        text(&with_cert)
    );
}
