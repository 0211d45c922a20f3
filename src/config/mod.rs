//! The one configuration every subcommand shares.
//!
//! Layers, lowest first: built-in defaults (the seed's values), the TOML file
//! (`--config FILE`, else `./qbench.toml` if present), the environment (libpq's
//! `PG*` variables, `QBENCH_VALKEY_URL` and `QBENCH_VALKEY_TLS_CA_FILE`), then
//! command-line flags.
//! Every error here is a [`UsageError`]: one line, exit code 2, before anything runs.

mod benchmark;
mod tls;
mod workers;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::UsageError;
use crate::mask::{mask_url_password, url_password, MASK};
use benchmark::in_range;
pub use benchmark::{
    Benchmark, BenchmarkLayer, DurabilityChoice, GraphileRecord, OnOff, PgmqCompletion,
    ProcrastinateDelete, Rate, Setting, Wakeup, Wakeups,
};
pub use tls::SslMode;
pub use workers::Workers;

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "qbench.toml";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub benchmark: Benchmark,
    pub postgres: Postgres,
    pub valkey: Valkey,
    pub pgbench: Pgbench,
    /// `[benchmark]` keys some layer above the defaults set (the file, or a flag).
    #[serde(skip)]
    pub benchmark_set: BTreeSet<&'static str>,
}

/// Equal settings; which layer set them does not count.
impl PartialEq for Config {
    fn eq(&self, o: &Config) -> bool {
        self.benchmark == o.benchmark
            && self.postgres == o.postgres
            && self.valkey == o.valkey
            && self.pgbench == o.pgbench
    }
}

/// What a config file may hold: the `[benchmark]` keys it sets, and whole other sections.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ConfigFile {
    benchmark: BenchmarkLayer,
    postgres: Postgres,
    valkey: Valkey,
    pgbench: Pgbench,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Postgres {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: String,
    /// Shell command that restarts the server for the cold scenario; empty: none.
    pub restart_command: String,
    /// TLS as libpq's `sslmode`; default `prefer`, as libpq (and so pgbench) does.
    pub sslmode: SslMode,
    /// PEM file of the CA(s) to trust, or `system` for the OS's store; empty: none.
    pub sslrootcert: String,
    /// Client certificate and key (PEM) for servers that ask for one; empty: none.
    pub sslcert: String,
    pub sslkey: String,
    /// `synchronous_commit` for qbench's sessions, from `benchmark.durability` (not a
    /// file key: the tier is chosen once, for both servers).
    #[serde(skip)]
    pub synchronous_commit: Option<bool>,
}

impl Default for Postgres {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: 5432,
            database: "bench_db".into(),
            user: "bench_user".into(),
            password: "bench_pass".into(),
            restart_command: String::new(),
            sslmode: SslMode::Prefer,
            sslrootcert: String::new(),
            sslcert: String::new(),
            sslkey: String::new(),
            synchronous_commit: None,
        }
    }
}

impl Postgres {
    /// `user@host:port/database`, safe to print.
    pub fn display(&self) -> String {
        format!(
            "{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }

    /// True when the server runs on this machine, so its processes can be sampled.
    pub fn is_local(&self) -> bool {
        is_local_host(&self.host)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Valkey {
    pub url: String,
    pub stream: String,
    pub group: String,
    /// XREADGROUP BLOCK when the stream is empty, milliseconds.
    pub block_ms: u64,
    /// Shell command that restarts the server for the cold scenario; empty: none.
    pub restart_command: String,
    /// For rediss:// URLs: PEM file of the CA(s) to trust; empty: the OS's store.
    pub tls_ca_file: String,
    /// Client certificate and key (PEM) for servers that ask for one; empty: none.
    pub tls_cert_file: String,
    pub tls_key_file: String,
    /// The URL names one node of a Valkey Cluster (a `redis+cluster://h1:p1,h2:p2` URL
    /// says so too): the queue is spread over several streams, one or more per primary.
    pub cluster: bool,
    /// Cluster mode: how many streams the queue is spread over; 0: one per primary.
    pub cluster_streams: u32,
}

impl Default for Valkey {
    fn default() -> Self {
        Self {
            url: "redis://localhost:6379".into(),
            stream: "bench_queue".into(),
            group: "bench_workers".into(),
            block_ms: 1000,
            restart_command: String::new(),
            tls_ca_file: String::new(),
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            cluster: false,
            cluster_streams: 0,
        }
    }
}

impl Valkey {
    /// The URL with any password replaced by `***`.
    pub fn display_url(&self) -> String {
        mask_url_password(&self.url)
    }

    pub fn is_local(&self) -> bool {
        url_host(&self.url).is_some_and(is_local_host)
    }

    /// Whether the URL asks for TLS.
    pub fn is_tls(&self) -> bool {
        [
            "rediss://",
            "valkeys://",
            "rediss+cluster://",
            "valkeys+cluster://",
        ]
        .iter()
        .any(|p| self.url.starts_with(p))
    }

    /// Whether the server is a Valkey Cluster (`cluster = true` or a `+cluster` URL).
    pub fn is_cluster(&self) -> bool {
        self.cluster || self.url.contains("+cluster://")
    }

    /// Cluster mode: one URL per seed node (a `+cluster` URL's hosts, each with the
    /// URL's credentials), else the URL itself.
    pub fn seed_urls(&self) -> Vec<String> {
        let Some((scheme, rest)) = self.url.split_once("+cluster://") else {
            return vec![self.url.clone()];
        };
        let (userinfo, hosts) = match rest.rsplit_once('@') {
            Some((u, h)) => (format!("{u}@"), h),
            None => (String::new(), rest),
        };
        let (hosts, db) = match hosts.split_once('/') {
            Some((h, d)) => (h, format!("/{d}")),
            None => (hosts, String::new()),
        };
        hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| format!("{scheme}://{userinfo}{h}{db}"))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pgbench {
    pub clients: u32,
    pub threads: u32,
    pub scale: u32,
}

impl Default for Pgbench {
    fn default() -> Self {
        Self {
            clients: 10,
            threads: 2,
            scale: 10,
        }
    }
}

/// Command-line values that override the config; `None` leaves a layer below in force.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub pg_url: Option<PgUrl>,
    pub valkey_url: Option<String>,
    pub benchmark: BenchmarkLayer,
}

/// The parts of a `--pg-url` (read by `queue::pg::url`): each replaces the lower layers'
/// value where the URL gives one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PgUrl {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
    pub sslmode: Option<SslMode>,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
}

impl PgUrl {
    fn apply(&self, pg: &mut Postgres) {
        let set = |to: &mut String, from: &Option<String>| {
            if let Some(v) = from {
                to.clone_from(v);
            }
        };
        set(&mut pg.host, &self.host);
        set(&mut pg.user, &self.user);
        set(&mut pg.password, &self.password);
        set(&mut pg.database, &self.database);
        set(&mut pg.sslrootcert, &self.sslrootcert);
        set(&mut pg.sslcert, &self.sslcert);
        set(&mut pg.sslkey, &self.sslkey);
        if let Some(p) = self.port {
            pg.port = p;
        }
        if let Some(m) = self.sslmode {
            pg.sslmode = m;
        }
    }
}

/// Where the file layer came from, for the manifest and `qbench config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Source {
    Defaults,
    File(PathBuf),
}

impl Config {
    /// Builds the effective config from all four layers.
    /// `env` looks up an environment variable (injected so tests need not touch the process env).
    pub fn load(
        explicit_file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        overrides: &Overrides,
    ) -> Result<(Config, Source), UsageError> {
        let (mut cfg, source) = match explicit_file {
            Some(path) => (Self::from_file(path)?, Source::File(path.to_path_buf())),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                let p = Path::new(DEFAULT_CONFIG_FILE);
                (Self::from_file(p)?, Source::File(p.to_path_buf()))
            }
            None => (Config::default(), Source::Defaults),
        };
        cfg.apply_env(env)?;
        cfg.apply_overrides(overrides)?;
        cfg.validate()?;
        Ok((cfg, source))
    }

    /// The defaults with one file layered over them.
    pub fn from_file(path: &Path) -> Result<Config, UsageError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            UsageError::new(format!(
                "cannot read config file {}: {e}; check the path given to --config",
                path.display()
            ))
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The defaults with a TOML file's text layered over them; errors name the file,
    /// the line and the key.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, UsageError> {
        let file = toml::from_str::<ConfigFile>(text).map_err(|e| {
            let (line, key) = e
                .span()
                .map(|span| locate(text, span.start))
                .unwrap_or((0, None));
            let msg = e.message().replace('\n', " ");
            let at = if line > 0 {
                format!("{origin}:{line}")
            } else {
                origin.to_string()
            };
            match key {
                Some(k) if !msg.contains(&format!("`{}`", leaf(&k))) => {
                    UsageError::new(format!("invalid config {at}: key `{k}`: {msg}"))
                }
                _ => UsageError::new(format!("invalid config {at}: {msg}")),
            }
        })?;
        let mut cfg = Config {
            postgres: file.postgres,
            valkey: file.valkey,
            pgbench: file.pgbench,
            ..Config::default()
        };
        cfg.benchmark.apply(&file.benchmark, &mut cfg.benchmark_set);
        Ok(cfg)
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), UsageError> {
        let pg = &mut self.postgres;
        if let Some(v) = env("PGHOST").filter(|v| !v.is_empty()) {
            pg.host = v;
        }
        if let Some(v) = env("PGPORT").filter(|v| !v.is_empty()) {
            pg.port = v.trim().parse().map_err(|_| {
                UsageError::new(format!(
                    "environment variable PGPORT={v:?} is not a port number (1-65535)"
                ))
            })?;
        }
        if let Some(v) = env("PGUSER").filter(|v| !v.is_empty()) {
            pg.user = v;
        }
        if let Some(v) = env("PGPASSWORD") {
            pg.password = v;
        }
        if let Some(v) = env("PGDATABASE").filter(|v| !v.is_empty()) {
            pg.database = v;
        }
        for (var, field) in [
            ("PGSSLROOTCERT", &mut pg.sslrootcert),
            ("PGSSLCERT", &mut pg.sslcert),
            ("PGSSLKEY", &mut pg.sslkey),
        ] {
            if let Some(v) = env(var).filter(|v| !v.is_empty()) {
                *field = v;
            }
        }
        if let Some(v) = env("PGSSLMODE").filter(|v| !v.is_empty()) {
            pg.sslmode = SslMode::parse(&v, "environment variable PGSSLMODE")?;
        }
        if let Some(v) = env("QBENCH_VALKEY_URL").filter(|v| !v.is_empty()) {
            self.valkey.url = v;
        }
        if let Some(v) = env("QBENCH_VALKEY_TLS_CA_FILE").filter(|v| !v.is_empty()) {
            self.valkey.tls_ca_file = v;
        }
        Ok(())
    }

    fn apply_overrides(&mut self, o: &Overrides) -> Result<(), UsageError> {
        if let Some(url) = &o.pg_url {
            url.apply(&mut self.postgres);
        }
        if let Some(url) = &o.valkey_url {
            self.valkey.url = url.clone();
        }
        self.benchmark.apply(&o.benchmark, &mut self.benchmark_set);
        Ok(())
    }

    /// Range and identifier checks; the message names the key and says what is allowed.
    pub fn validate(&self) -> Result<(), UsageError> {
        self.benchmark.validate_each()?;
        self.benchmark.validate_lease()?;

        let pg = &self.postgres;
        if pg.host.trim().is_empty() {
            return Err(UsageError::new("postgres.host must not be empty"));
        }
        if pg.port == 0 {
            return Err(UsageError::new("postgres.port must be 1-65535"));
        }
        identifier("postgres.database", &pg.database)?;
        identifier("postgres.user", &pg.user)?;
        if pg.sslcert.is_empty() != pg.sslkey.is_empty() {
            return Err(UsageError::new(
                "postgres.sslcert and postgres.sslkey go together: set both (PGSSLCERT, PGSSLKEY) or neither",
            ));
        }

        let v = &self.valkey;
        let schemes = [
            "redis://",
            "rediss://",
            "valkey://",
            "valkeys://",
            "unix://",
            "redis+cluster://",
            "rediss+cluster://",
            "valkey+cluster://",
            "valkeys+cluster://",
        ];
        if !schemes.iter().any(|p| v.url.starts_with(p)) {
            return Err(UsageError::new(format!(
                "valkey.url {} must start with redis:// (or rediss://, valkey://, unix://, \
                 redis+cluster://h1:p1,h2:p2 for a cluster)",
                v.display_url()
            )));
        }
        if v.is_cluster() && v.url.starts_with("unix://") {
            return Err(UsageError::new(
                "valkey.cluster needs TCP nodes: a cluster's nodes announce host:port, not a socket",
            ));
        }
        if v.seed_urls().is_empty() {
            return Err(UsageError::new(format!(
                "valkey.url {} names no node: list them as redis+cluster://h1:p1,h2:p2",
                v.display_url()
            )));
        }
        in_range("valkey.cluster_streams", v.cluster_streams, 0, 1024)?;
        if v.tls_cert_file.is_empty() != v.tls_key_file.is_empty() {
            return Err(UsageError::new(
                "valkey.tls_cert_file and valkey.tls_key_file go together: set both or neither",
            ));
        }
        let tls_files = !(v.tls_ca_file.is_empty() && v.tls_cert_file.is_empty());
        if tls_files && !v.is_tls() {
            return Err(UsageError::new(format!(
                "valkey.tls_ca_file or tls_cert_file is set but valkey.url {} is not TLS: use rediss://",
                v.display_url()
            )));
        }
        stream_name("valkey.stream", &v.stream)?;
        stream_name("valkey.group", &v.group)?;
        in_range("valkey.block_ms", v.block_ms, 1, 60_000)?;

        let p = &self.pgbench;
        in_range("pgbench.clients", p.clients, 1, 1000)?;
        in_range("pgbench.threads", p.threads, 1, 1000)?;
        in_range("pgbench.scale", p.scale, 1, 100_000)?;
        Ok(())
    }

    /// A copy safe to show or store: passwords become `***`.
    pub fn masked(&self) -> Config {
        let mut c = self.clone();
        if !c.postgres.password.is_empty() {
            c.postgres.password = MASK.into();
        }
        c.valkey.url = mask_url_password(&c.valkey.url);
        c
    }

    /// What a manifest records of the config: the masked config's sections and keys.
    pub fn snapshot(&self) -> crate::format::manifest::ConfigSnapshot {
        let v = serde_json::to_value(self.masked());
        // A struct of numbers, strings and lists always serializes to an object.
        let map = match v {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        crate::format::manifest::ConfigSnapshot(map)
    }

    /// The effective config as TOML, passwords masked.
    pub fn to_toml_masked(&self) -> String {
        // Serializing plain structs of numbers and strings cannot fail.
        toml::to_string_pretty(&self.masked()).unwrap_or_default()
    }

    /// Every secret this config holds, so outputs can be checked against them.
    pub fn secrets(&self) -> Vec<String> {
        let mut s = vec![];
        if !self.postgres.password.is_empty() {
            s.push(self.postgres.password.clone());
        }
        if let Some(pw) = url_password(&self.valkey.url) {
            s.push(pw.to_string());
        }
        s
    }
}

/// PostgreSQL names that reach SQL or a shell: letters, digits and underscores.
pub fn identifier(key: &str, v: &str) -> Result<(), UsageError> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !v.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(UsageError::new(format!(
            "{key} = {v:?} is invalid: use 1-63 letters, digits or underscores, not starting with a digit"
        )))
    }
}

/// Stream and group names that reach a Valkey command or a shell.
pub fn stream_name(key: &str, v: &str) -> Result<(), UsageError> {
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(UsageError::new(format!(
            "{key} = {v:?} is invalid: use 1-128 letters, digits or _ - . :"
        )))
    }
}

/// 1-based line of a byte offset, and the dotted key defined on that line, if any.
fn locate(text: &str, offset: usize) -> (usize, Option<String>) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let section = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('['))
        .map(|k| match &section {
            Some(s) => format!("{s}.{k}"),
            None => k,
        });
    (line_no, key)
}

fn leaf(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

fn is_local_host(h: &str) -> bool {
    matches!(h, "localhost" | "127.0.0.1" | "::1" | "[::1]") || h.starts_with('/')
}

/// The host part of `scheme://[user[:pw]@]host[:port][/db]`.
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host_port = rest.split('/').next()?;
    if let Some(stripped) = host_port.strip_prefix('[') {
        return stripped.split(']').next();
    }
    host_port.split(':').next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn write_file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut f, text.as_bytes()).expect("write");
        f
    }

    #[test]
    fn defaults_are_the_seeds() {
        let c = Config::default();
        assert_eq!(c.benchmark.production_rate, Rate::Fixed(1000.0));
        assert_eq!(c.benchmark.production_duration, 180.0);
        assert_eq!(c.benchmark.num_workers, 20);
        assert_eq!(c.benchmark.job_size_bytes, 512);
        assert_eq!(c.benchmark.job_processing_time_ms, 10.0);
        assert_eq!(c.benchmark.warmup_duration, 60.0);
        assert_eq!(c.benchmark.warmup_rate, 1000.0);
        assert_eq!(c.benchmark.partitions, 16);
        assert_eq!(c.benchmark.dequeue_batch, 1);
        assert_eq!(c.benchmark.visibility_timeout_s, 30.0);
        assert_eq!(c.pgbench.clients, 10);
        assert_eq!(c.pgbench.scale, 10);
        assert_eq!(c.postgres.display(), "bench_user@localhost:5432/bench_db");
        assert_eq!(c.postgres.password, "bench_pass");
        assert_eq!(c.valkey.url, "redis://localhost:6379");
        assert_eq!(c.valkey.stream, "bench_queue");
        assert_eq!(c.valkey.group, "bench_workers");
        c.validate().expect("defaults are valid");
    }

    #[test]
    fn layers_apply_lowest_first() {
        let f = write_file(
            "[benchmark]\nnum_workers = 7\nproduction_rate = 50\n[postgres]\nhost = \"filehost\"\nport = 6000\nuser = \"fileuser\"\n[valkey]\nurl = \"redis://filehost:1\"\n",
        );
        // File beats defaults.
        let (c, src) =
            Config::load(Some(f.path()), &env_of(&[]), &Overrides::default()).expect("valid");
        assert_eq!(src, Source::File(f.path().to_path_buf()));
        assert_eq!(c.benchmark.num_workers, 7);
        assert_eq!(c.benchmark.production_rate, Rate::Fixed(50.0));
        assert_eq!(
            c.benchmark.job_size_bytes, 512,
            "untouched keys keep defaults"
        );
        assert_eq!(c.postgres.host, "filehost");

        // Environment beats the file.
        let env = env_of(&[
            ("PGHOST", "envhost"),
            ("PGPORT", "6001"),
            ("PGPASSWORD", "envpw"),
            ("PGDATABASE", "envdb"),
            ("QBENCH_VALKEY_URL", "redis://envhost:2"),
        ]);
        let (c, _) = Config::load(Some(f.path()), &env, &Overrides::default()).expect("valid");
        assert_eq!(c.postgres.host, "envhost");
        assert_eq!(c.postgres.port, 6001);
        assert_eq!(c.postgres.user, "fileuser", "PGUSER unset keeps the file's");
        assert_eq!(c.postgres.password, "envpw");
        assert_eq!(c.postgres.database, "envdb");
        assert_eq!(c.valkey.url, "redis://envhost:2");

        // Flags beat the environment.
        let o = Overrides {
            pg_url: Some(PgUrl {
                host: Some("flaghost".into()),
                port: Some(6002),
                user: Some("flaguser".into()),
                password: Some("flagpw".into()),
                database: Some("flagdb".into()),
                ..Default::default()
            }),
            valkey_url: Some("redis://flaghost:3".into()),
            benchmark: BenchmarkLayer {
                num_workers: Some(3.into()),
                production_rate: Some(Rate::Fixed(12.5)),
                ..Default::default()
            },
        };
        let (c, _) = Config::load(Some(f.path()), &env, &o).expect("valid");
        assert_eq!(c.postgres.host, "flaghost");
        assert_eq!(c.postgres.port, 6002);
        assert_eq!(c.postgres.user, "flaguser");
        assert_eq!(c.postgres.password, "flagpw");
        assert_eq!(c.postgres.database, "flagdb");
        assert_eq!(c.valkey.url, "redis://flaghost:3");
        assert_eq!(c.benchmark.num_workers, 3);
        assert_eq!(c.benchmark.production_rate, Rate::Fixed(12.5));
    }

    #[test]
    fn pg_url_without_password_keeps_lower_layers() {
        let o = Overrides {
            pg_url: Some(PgUrl {
                host: Some("h".into()),
                user: Some("u".into()),
                database: Some("db".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (c, _) = Config::load(None, &env_of(&[("PGPASSWORD", "x")]), &o).expect("valid");
        assert_eq!(c.postgres.password, "x");
        assert_eq!(c.postgres.port, 5432);
        assert_eq!(c.postgres.user, "u");
    }

    fn load_err(text: &str) -> String {
        let f = write_file(text);
        Config::load(Some(f.path()), &env_of(&[]), &Overrides::default())
            .expect_err("must be refused")
            .to_string()
    }

    #[test]
    fn unknown_key_is_named_with_file_and_line() {
        let e = load_err("[benchmark]\nnum_workers = 2\nnum_wrokers = 3\n");
        assert!(e.contains("num_wrokers"), "{e}");
        assert!(e.contains(":3"), "line number: {e}");
        assert!(!e.contains('\n'), "one line: {e}");
        let e = load_err("[benchmarks]\n");
        assert!(e.contains("benchmarks"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = load_err("[benchmark]\nnum_workers = \"many\"\n");
        assert!(e.contains("benchmark.num_workers"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = load_err("[postgres]\nport = 99999\n");
        assert!(e.contains("postgres.port"), "{e}");
    }

    #[test]
    fn broken_toml_names_the_file() {
        let f = write_file("[benchmark\n");
        let e = Config::load(Some(f.path()), &env_of(&[]), &Overrides::default())
            .expect_err("refused")
            .to_string();
        assert!(e.contains(&f.path().display().to_string()), "{e}");
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        for (text, key) in [
            (
                "[benchmark]\nproduction_rate = 0\n",
                "benchmark.production_rate",
            ),
            (
                "[benchmark]\nproduction_rate = -5\n",
                "benchmark.production_rate",
            ),
            ("[benchmark]\nnum_workers = 0\n", "benchmark.num_workers"),
            ("[benchmark]\npartitions = 0\n", "benchmark.partitions"),
            (
                "[benchmark]\ndequeue_batch = 0\n",
                "benchmark.dequeue_batch",
            ),
            (
                "[benchmark]\nvisibility_timeout_s = 0\n",
                "benchmark.visibility_timeout_s",
            ),
            (
                "[benchmark]\njob_processing_time_ms = -1\n",
                "benchmark.job_processing_time_ms",
            ),
            ("[valkey]\nstream = \"a b\"\n", "valkey.stream"),
            ("[valkey]\ngroup = \"g;DEL x\"\n", "valkey.group"),
            ("[valkey]\nurl = \"http://x\"\n", "valkey.url"),
            ("[postgres]\ndatabase = \"db; drop\"\n", "postgres.database"),
            ("[postgres]\nuser = \"u\\\"; --\"\n", "postgres.user"),
            ("[pgbench]\nclients = 0\n", "pgbench.clients"),
        ] {
            let e = load_err(text);
            assert!(e.contains(key), "{text:?} -> {e}");
        }
    }

    #[test]
    fn a_lease_shorter_than_a_batch_of_work_is_refused() {
        let e = load_err(
            "[benchmark]\ndequeue_batch = 100\njob_processing_time_ms = 50\nvisibility_timeout_s = 5\n",
        );
        assert!(
            e.contains("benchmark.visibility_timeout_s") && e.contains("5.20 s"),
            "{e}"
        );
        let ok = write_file(
            "[benchmark]\ndequeue_batch = 100\njob_processing_time_ms = 50\nvisibility_timeout_s = 6\n",
        );
        Config::load(Some(ok.path()), &env_of(&[]), &Overrides::default()).expect("6 s > 5 s");
    }

    #[test]
    fn unreadable_file_is_named() {
        let e = Config::load(
            Some(Path::new("/nonexistent/qbench.toml")),
            &env_of(&[]),
            &Overrides::default(),
        )
        .expect_err("refused")
        .to_string();
        assert!(e.contains("/nonexistent/qbench.toml"), "{e}");
    }

    #[test]
    fn bad_env_and_flags_are_refused() {
        let e = Config::load(None, &env_of(&[("PGPORT", "abc")]), &Overrides::default())
            .expect_err("refused")
            .to_string();
        assert!(e.contains("PGPORT"), "{e}");
        let o = Overrides {
            benchmark: BenchmarkLayer {
                num_workers: Some(0.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let e = Config::load(None, &env_of(&[]), &o)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("num_workers"), "{e}");
    }

    #[test]
    fn masking_hides_every_password() {
        let mut c = Config::default();
        c.postgres.password = "s3cret-pg".into();
        c.valkey.url = "redis://default:s3cret-vk@host:6379/0".into();
        let shown = c.to_toml_masked();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("password = \"***\""), "{shown}");
        assert!(shown.contains("redis://default:***@host:6379/0"), "{shown}");
        assert_eq!(c.secrets(), vec!["s3cret-pg", "s3cret-vk"]);
        // The printed TOML reads back as a config.
        Config::from_toml(&shown, "shown").expect("round trip");
    }

    #[test]
    fn capacity_warning_fires_only_above_capacity() {
        let mut b = Benchmark::default();
        assert_eq!(b.capacity_jobs_s(), Some(2000.0));
        assert!(b.capacity_warning(1000.0).is_none());
        let w = b.capacity_warning(5000.0).expect("warns");
        assert!(
            w.contains("capacity") && w.contains("5000") && w.contains("2000"),
            "{w}"
        );
        b.job_processing_time_ms = 0.0;
        assert!(b.capacity_warning(1e9).is_none());
    }

    #[test]
    fn the_example_file_is_the_defaults() {
        let text = include_str!("../../qbench.example.toml");
        let c = Config::from_toml(text, "qbench.example.toml").expect("example parses");
        assert_eq!(c, Config::default());
    }

    #[test]
    fn the_example_file_says_what_the_settings_say() {
        let text = include_str!("../../qbench.example.toml");
        let want = Benchmark::default().example_section();
        assert!(
            text.contains(&want),
            "qbench.example.toml's [benchmark] section must read, exactly:\n{want}"
        );
    }

    #[test]
    fn layers_record_what_they_set() {
        let f = write_file("[benchmark]\nproduction_rate = 1000\n");
        let (c, _) =
            Config::load(Some(f.path()), &env_of(&[]), &Overrides::default()).expect("valid");
        assert!(
            c.benchmark_set.contains("production_rate"),
            "set to its default value, but set"
        );
        assert!(!c.benchmark_set.contains("num_workers"));
        let (c, _) = Config::load(None, &env_of(&[]), &Overrides::default()).expect("valid");
        assert!(c.benchmark_set.is_empty());
    }

    #[test]
    fn local_host_detection() {
        let mut v = Valkey::default();
        assert!(v.is_local());
        v.url = "redis://user:pw@10.0.0.5:6379".into();
        assert!(!v.is_local());
        v.url = "redis://[::1]:6379".into();
        assert!(v.is_local());
    }
}
