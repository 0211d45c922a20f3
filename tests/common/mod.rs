//! Test harness: one real PostgreSQL and one real Valkey per test binary, started by the
//! same code as `--local`. Each test gets a database and a stream of its own, so tests
//! run in parallel without seeing each other's jobs.
#![allow(dead_code)]

use std::sync::OnceLock;

use qbench::config::Config;
use qbench::local::{LocalServers, Options};

pub struct Shared {
    pub base: Config,
    pub servers: LocalServers,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| start_shared(Options::default()))
}

/// Servers that accept only TLS (`--local --tls`), and a config that reaches them with
/// verify-full.
pub fn shared_tls() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        start_shared(Options {
            tls: true,
            ..Options::default()
        })
    })
}

/// Servers as `qbench --local cost` starts them: PostgreSQL loads pg_stat_statements.
pub fn shared_statements() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        start_shared(Options {
            statements: true,
            ..Options::default()
        })
    })
}

/// PostgreSQL and a Valkey Cluster of three primaries (`--local --valkey-cluster 3`).
pub fn shared_cluster() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        start_shared(Options {
            valkey_cluster: 3,
            ..Options::default()
        })
    })
}

fn start_shared(options: Options) -> Shared {
    // Started on a runtime of its own: the servers outlive every test's runtime and
    // die with the test process (they are tied to it by PR_SET_PDEATHSIG).
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let mut base = Config::default();
            let servers = LocalServers::start(&base, false, &options)
                .await
                .expect("starting the test servers (run setup/prepare_machine.sh)");
            servers.apply_to(&mut base);
            // pg-boss's workers sleep 2 s after every fetch (its floor is 500 ms), and an
            // idle Procrastinate worker polls every 5 s: at those paces the per-design set
            // would take many minutes. 150 ms keeps pg-boss's sleep (it skips one of
            // 100 ms or less); the statements are the same.
            base.benchmark.pg_boss_polling_interval_ms = 150.0;
            base.benchmark.procrastinate_fetch_job_polling_interval_s = 0.2;
            let mut pids = vec![servers.postgres.process.pid, servers.valkey.process.pid];
            pids.extend(servers.stunnel.as_ref().map(|s| s.process.pid));
            pids.extend(servers.valkey_nodes.iter().map(|n| n.process.pid));
            let mut at_exit = AT_EXIT.lock().unwrap_or_else(|p| p.into_inner());
            if at_exit.is_empty() {
                // SAFETY: registering a plain extern "C" function.
                unsafe { nix::libc::atexit(stop_at_exit) };
            }
            at_exit.push((servers.root().to_path_buf(), pids));
            Shared { base, servers }
        })
    })
    .join()
    .expect("server start thread")
}

type Started = (std::path::PathBuf, Vec<u32>);
static AT_EXIT: std::sync::Mutex<Vec<Started>> = std::sync::Mutex::new(Vec::new());

/// The test harness leaves through `exit`, which skips statics' destructors but runs
/// atexit handlers: stop the servers and remove their files here.
extern "C" fn stop_at_exit() {
    use qbench::local::process;
    let started = AT_EXIT.lock().unwrap_or_else(|p| p.into_inner());
    for (_, pids) in started.iter() {
        // PostgreSQL first in each list: an immediate shutdown, then the others.
        for (i, pid) in pids.iter().enumerate() {
            let sig = if i == 0 {
                nix::sys::signal::Signal::SIGQUIT
            } else {
                nix::sys::signal::Signal::SIGTERM
            };
            process::send(*pid, sig);
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while started
        .iter()
        .any(|(_, pids)| pids.iter().any(|p| process::is_alive(*p)))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for (root, _) in started.iter() {
        let _ = std::fs::remove_dir_all(root);
    }
}

/// The shared Valkey's process, for the system sampler.
pub fn valkey_pid() -> u32 {
    shared().servers.valkey.process.pid
}

/// The shared servers' root directory (logs live there).
pub fn server_root() -> std::path::PathBuf {
    shared().servers.root().to_path_buf()
}

/// The qbench binary run from the temporary directory, with the libpq and Valkey
/// environment cleared so that only the test's config and flags reach it; output captured.
pub fn qbench() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_qbench"));
    c.current_dir(std::env::temp_dir());
    for v in [
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
        "PGDATABASE",
        "PGSSLMODE",
        "PGSSLROOTCERT",
        "PGSSLCERT",
        "PGSSLKEY",
        "QBENCH_VALKEY_URL",
        "QBENCH_VALKEY_TLS_CA_FILE",
    ] {
        c.env_remove(v);
    }
    // libpq's defaults live in $HOME (~/.postgresql/root.crt); a developer's must not
    // change what a test sees.
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    let home = HOME.get_or_init(|| tempfile::tempdir().expect("empty HOME"));
    c.env("HOME", home.path());
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c
}

/// The binary with `--config cfg --quiet args`, started in the background.
pub fn spawn_quiet(cfg: &std::path::Path, args: &[&str]) -> std::process::Child {
    let mut c = qbench();
    c.arg("--config").arg(cfg).arg("--quiet").args(args);
    c.spawn().expect("spawn qbench")
}

/// `analyze` over one result folder into its `analysis/`: the command's output and the
/// test's row (the folder holds one test).
pub fn analyze_row(dir: &std::path::Path) -> (std::process::Output, qbench::analyze::Row) {
    let out = dir.join("analysis");
    let a = analyze(&[dir], &out);
    (a, summary_rows(&out).pop().expect("a row"))
}

/// Runs the binary to its end with `args` and extra environment `env`.
pub fn run_qbench(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = qbench();
    c.args(args).envs(env.iter().copied());
    c.output().expect("run qbench")
}

/// An in-process test run that writes no files and prints nothing: produce `produce`,
/// work with `work`, then drain (at most 30 s).
pub fn quiet_spec(
    test: &str,
    queue: std::sync::Arc<dyn qbench::queue::Queue>,
    cfg: &Config,
    produce: qbench::workload::producer::ProducePlan,
    work: qbench::workload::worker::WorkPlan,
) -> qbench::workload::Spec {
    use qbench::workload::{Env, Identity, Plan, Spec, StopRule};
    Spec {
        id: Identity::new(test, qbench::format::manifest::Role::Suite),
        plan: Plan {
            produce: Some(produce),
            work: Some(work),
            stop: StopRule::Drain {
                timeout: std::time::Duration::from_secs(30),
            },
        },
        env: Env::new(queue, cfg.clone(), qbench::shutdown::Shutdown::manual()),
    }
}

/// A config pointing at the shared servers, with its own database and stream.
pub async fn config(name: &str) -> Config {
    config_on(shared(), name).await
}

/// As [`config`], on the servers `s`.
pub async fn config_on(s: &Shared, name: &str) -> Config {
    let mut cfg = s.base.clone();
    let db = format!("t_{name}");
    let admin = admin_client(&cfg).await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await
        .expect("drop test database");
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .expect("create test database");
    cfg.postgres.database = db;
    cfg.valkey.stream = format!("t_{name}");
    cfg.valkey.group = format!("g_{name}");
    cfg.valkey.block_ms = 100;
    let mut conn = valkey(&cfg).await;
    let mut del = redis::cmd("DEL");
    del.arg(&cfg.valkey.stream);
    for suffix in ["requeued", "completed", "seq", "produced", "done"] {
        del.arg(format!("{}:{suffix}", cfg.valkey.stream));
    }
    let _: () = del.query_async(&mut conn).await.expect("clear test stream");
    cfg
}

/// A config pointing at PostgreSQL and the three-primary cluster, with a stream name of
/// its own (the cluster is new for each test binary, so nothing needs clearing).
pub fn cluster_config(name: &str) -> Config {
    let mut cfg = shared_cluster().base.clone();
    cfg.valkey.stream = format!("t_{name}");
    cfg.valkey.group = format!("g_{name}");
    cfg.valkey.block_ms = 100;
    cfg
}

pub async fn admin_client(cfg: &Config) -> tokio_postgres::Client {
    let mut pg = cfg.postgres.clone();
    pg.database = "postgres".into();
    qbench::queue::pg::connect(&pg)
        .await
        .expect("admin connection")
}

pub async fn pg_client(cfg: &Config) -> tokio_postgres::Client {
    qbench::queue::pg::connect(&cfg.postgres)
        .await
        .expect("test connection")
}

pub async fn valkey(cfg: &Config) -> redis::aio::MultiplexedConnection {
    redis::Client::open(cfg.valkey.url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("valkey connection")
}

/// Writes `cfg` as a TOML file for driving the binary or `run` with `--config`.
pub fn config_file(cfg: &Config) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    let text = toml::to_string(cfg).expect("serialize config");
    std::io::Write::write_all(&mut f, text.as_bytes()).expect("write config");
    f
}

/// The id of the oldest (or newest) entry of the test's stream.
pub async fn stream_entry_id(cfg: &Config, newest: bool) -> String {
    let mut c = valkey(cfg).await;
    let (cmd, from, to) = if newest {
        ("XREVRANGE", "+", "-")
    } else {
        ("XRANGE", "-", "+")
    };
    let v: redis::Value = redis::cmd(cmd)
        .arg(&cfg.valkey.stream)
        .arg(from)
        .arg(to)
        .arg("COUNT")
        .arg(1)
        .query_async(&mut c)
        .await
        .expect("range");
    let redis::Value::Array(entries) = v else {
        panic!("unexpected reply {v:?}")
    };
    let Some(redis::Value::Array(entry)) = entries.first() else {
        panic!("empty stream")
    };
    let Some(redis::Value::BulkString(id)) = entry.first() else {
        panic!("no id")
    };
    String::from_utf8_lossy(id).into_owned()
}

/// XDEL of one entry; returns how many were deleted.
pub async fn xdel(cfg: &Config, id: &str) -> i64 {
    let mut c = valkey(cfg).await;
    redis::cmd("XDEL")
        .arg(&cfg.valkey.stream)
        .arg(id)
        .query_async(&mut c)
        .await
        .expect("xdel")
}

/// A directory of its own for one qbench child (its TMPDIR and working directory), so
/// that the check that nothing outlives the child sees this child's servers, stunnel and
/// pgbench alone, whatever other tests run beside it.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("sandbox");
        // The --local servers run as an unprivileged user, which must reach their folder.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        Sandbox { dir }
    }

    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The qbench binary run inside the sandbox.
    pub fn qbench(&self) -> std::process::Command {
        let mut c = qbench();
        c.current_dir(self.path()).env("TMPDIR", self.path());
        c
    }

    /// Processes working in the sandbox (servers run in their data folder; pgbench and
    /// stunnel inherit qbench's): `pid comm` of each.
    pub fn running(&self) -> Vec<String> {
        let root = self.path().canonicalize().expect("sandbox path");
        std::fs::read_dir("/proc")
            .expect("proc")
            .flatten()
            .filter(|e| {
                std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(&root))
            })
            .map(|e| {
                let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
                format!("{} {}", e.file_name().to_string_lossy(), comm.trim())
            })
            .collect()
    }

    /// The `--local` servers' folders still on disk.
    pub fn server_dirs(&self) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(self.path())
            .expect("sandbox")
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("qbench-local-"))
            })
            .collect()
    }

    /// Nothing the child started outlives it: no process in the sandbox (they are
    /// reaped a moment after their parent exits: waited for, up to 10 s) and no server
    /// folder left.
    pub fn assert_clean(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.running().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let running = self.running();
        assert!(running.is_empty(), "left running: {running:?}");
        let dirs = self.server_dirs();
        assert!(dirs.is_empty(), "server files left in {dirs:?}");
    }
}

/// Pids of running processes with this command name.
pub fn processes_named(name: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("proc")
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            (comm.trim() == name).then_some(pid)
        })
        .collect()
}

/// The rows of an `analyze` output folder's summary.csv.
pub fn summary_rows(dir: &std::path::Path) -> Vec<qbench::analyze::Row> {
    let mut r = csv::Reader::from_path(dir.join("summary.csv")).expect("summary.csv");
    r.deserialize().map(|x| x.expect("row")).collect()
}

/// `qbench graph` from an analysis folder's summary.csv into `out`.
pub fn graph(analysis: &std::path::Path, out: &std::path::Path) -> std::process::Output {
    graph_with(analysis, out, &[])
}

/// As [`graph`], with more flags (e.g. `--timelines`).
pub fn graph_with(
    analysis: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    let summary = analysis.join("summary.csv");
    let mut args = vec![
        "graph",
        "--input",
        summary.to_str().expect("utf8"),
        "--output",
        out.to_str().expect("utf8"),
    ];
    args.extend_from_slice(extra);
    run_qbench(&args, &[])
}

/// `qbench analyze` over `folders` (each as `--results`) into `out`.
pub fn analyze(folders: &[&std::path::Path], out: &std::path::Path) -> std::process::Output {
    let mut args = vec!["analyze".to_string()];
    for f in folders {
        args.extend(["--results".into(), f.display().to_string()]);
    }
    args.extend(["--output".into(), out.display().to_string()]);
    run_qbench(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
}
