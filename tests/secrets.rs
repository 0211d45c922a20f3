//! The password never appears in a results file, a log line or an error message: servers
//! of its own with a distinctive password, driven through every command that writes
//! something, then every byte written is searched for it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use qbench::config::Config;
use qbench::local::LocalServers;

const SECRET: &str = "Zx7-qbench-Secret'pw";
/// As it would appear percent-encoded in a URL.
const SECRET_URL: &str = "Zx7-qbench-Secret%27pw";

fn qbench(cfg: &Path, args: &[&str]) -> Output {
    let mut c = common::qbench();
    c.arg("--config").arg(cfg).args(args);
    c.output().expect("run qbench")
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn assert_clean(what: &str, bytes: &[u8]) {
    for s in [SECRET, SECRET_URL] {
        assert!(!contains(bytes, s), "the password appears in {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_appears_nowhere() {
    let mut cfg = Config::default();
    cfg.postgres.password = SECRET.into();
    cfg.postgres.database = "secret_db".into();
    cfg.benchmark.production_duration = 2.0;
    cfg.benchmark.production_rate = qbench::config::Rate::Fixed(100.0);
    cfg.benchmark.num_workers = 4.into();
    // The load scenario warms up like warm does: keep it short.
    cfg.benchmark.warmup_duration = 1.0;
    cfg.pgbench.scale = 1;
    cfg.pgbench.clients = 2;
    let servers = LocalServers::start(&cfg, false, &qbench::local::Options::default())
        .await
        .expect("starting servers (run setup/prepare_machine.sh)");
    servers.apply_to(&mut cfg);
    let root = servers.root().to_path_buf();
    let mut file = tempfile::NamedTempFile::new().expect("config file");
    std::io::Write::write_all(&mut file, toml::to_string(&cfg).expect("toml").as_bytes())
        .expect("write config");
    let f = file.path();
    assert!(
        contains(&std::fs::read(f).expect("read"), SECRET),
        "the test's own config carries the password, or it proves nothing"
    );
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let s = |p: &Path| p.to_str().expect("utf8").to_string();
    let (work_out, suite_out) = (s(&d.join("work")), s(&d.join("suite")));
    let bad_url = format!(
        "postgres://bench_user:{SECRET_URL}@127.0.0.1:{}/nope_db",
        qbench::local::free_port().expect("port")
    );

    let runs: Vec<(&str, Vec<String>, bool)> = vec![
        ("config", vec!["config".into()], true),
        (
            "setup-schema",
            ["setup-schema", "--queue", "skip_locked"]
                .map(Into::into)
                .into(),
            true,
        ),
        (
            "produce",
            [
                "produce",
                "--queue",
                "skip_locked",
                "--count",
                "200",
                "--rate",
                "200",
            ]
            .map(Into::into)
            .into(),
            true,
        ),
        (
            "work",
            [
                "work",
                "--queue",
                "skip_locked",
                "--until-idle",
                "1",
                "--out",
                &work_out,
                "--name",
                "w",
            ]
            .map(Into::into)
            .into(),
            true,
        ),
        (
            "run-suite with pgbench",
            [
                "run-suite",
                "--backend",
                "pg",
                "--queues",
                "skip_locked",
                "--scenarios",
                "load",
                "--out",
                &suite_out,
            ]
            .map(Into::into)
            .into(),
            true,
        ),
        (
            "analyze",
            ["analyze", "--pg-results", &format!("{suite_out}/vm1_pg")]
                .map(Into::into)
                .into(),
            true,
        ),
        (
            "a refused connection given as a URL",
            [
                "--pg-url",
                &bad_url,
                "setup-schema",
                "--queue",
                "skip_locked",
            ]
            .map(Into::into)
            .into(),
            false,
        ),
    ];
    for (what, args, ok) in runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = qbench(f, &args);
        let all = [o.stdout.as_slice(), o.stderr.as_slice()].concat();
        assert_eq!(
            o.status.success(),
            ok,
            "{what}: {}",
            String::from_utf8_lossy(&all)
        );
        if !ok {
            assert_eq!(o.status.code(), Some(2), "{what}");
        }
        assert_clean(&format!("the output of {what}"), &all);
    }

    let mut written = Vec::new();
    files_under(d, &mut written);
    assert!(
        written.iter().any(|p| p.ends_with("w_manifest.json"))
            && written
                .iter()
                .any(|p| p.ends_with("skip_locked_load_pgbench.csv"))
            && written.iter().any(|p| p.ends_with("summary.csv")),
        "every command wrote its files: {written:?}"
    );
    for p in &written {
        assert_clean(&p.display().to_string(), &std::fs::read(p).expect("read"));
    }
    // The servers' own logs: the password was set with a statement that must not be logged.
    let mut logs = Vec::new();
    files_under(&root, &mut logs);
    let logs: Vec<_> = logs
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    assert!(!logs.is_empty(), "server logs in {}", root.display());
    for p in &logs {
        assert_clean(&p.display().to_string(), &std::fs::read(p).expect("read"));
    }
    servers.stop().await;
}
