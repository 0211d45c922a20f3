//! `--local`: a throwaway PostgreSQL and Valkey that live as long as the command
//! (or, with `qbench local start`, until `qbench local stop`).

pub mod binaries;
pub mod postgres;
pub mod process;
mod shm;
pub mod tls;
pub mod valkey;
pub mod valkey_cluster;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::Config;
pub use crate::format::manifest::LocalInfo;
use crate::queue::Backend;
pub use postgres::{LocalPostgres, Tuning};
pub use valkey::LocalValkey;

/// What `--local` starts beyond the plain pair.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Both servers take only TLS (see [`tls`]).
    pub tls: bool,
    /// Valkey as a cluster of this many primaries (0: one server).
    pub valkey_cluster: u16,
    /// PostgreSQL loads pg_stat_statements, tracking statements inside functions too
    /// (`qbench cost`); off for every other command, which it would slow a little.
    pub statements: bool,
}

pub struct LocalServers {
    root: PathBuf,
    pub postgres: LocalPostgres,
    /// The Valkey server, or the first node of a `--valkey-cluster`.
    pub valkey: LocalValkey,
    /// A cluster's other nodes.
    pub valkey_nodes: Vec<LocalValkey>,
    /// `--tls`: the throwaway CA and certificate, and the TLS terminator before Valkey.
    pub certs: Option<tls::Certificates>,
    pub stunnel: Option<tls::Stunnel>,
    detached: bool,
    stopped: bool,
}

/// Finds both servers' binaries, and refuses what cannot be started, before anything
/// starts.
pub fn preflight(o: &Options) -> Result<(), crate::error::UsageError> {
    o.check()?;
    binaries::pg_bin_dir()?;
    binaries::valkey_server()?;
    if o.tls {
        binaries::stunnel()?;
    }
    Ok(())
}

impl Options {
    /// Refuses what cannot be started, before any server starts.
    pub fn check(&self) -> Result<(), crate::error::UsageError> {
        if self.valkey_cluster > 0 && self.tls {
            return Err(crate::error::UsageError::new(
            "--tls with --valkey-cluster is not supported: the local Valkey's TLS is a stunnel \
             in front of one node, and a cluster's nodes announce their own ports; test a TLS \
             cluster with rediss+cluster:// against your own",
        ));
        }
        Ok(())
    }
}

/// A port the kernel just handed out (there is a small race until the server binds it).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

const OWNER_FILE: &str = "owner.pids";

impl LocalServers {
    /// Starts both servers. `detached`: they outlive this process (`qbench local start`).
    /// `tls`: both accept only TLS, with a throwaway CA (see [`tls`]).
    pub async fn start(cfg: &Config, detached: bool, o: &Options) -> Result<LocalServers> {
        cleanup_stale();
        let root = tempfile::Builder::new()
            .prefix("qbench-local-")
            .tempdir()
            .context("creating a temporary directory for --local servers")?
            .keep();
        // The unprivileged server user must be able to enter it.
        std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        std::fs::write(root.join(OWNER_FILE), std::process::id().to_string())?;

        let result = Self::start_in(&root, cfg, detached, o).await;
        match result {
            Ok(s) => Ok(s),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&root);
                Err(e)
            }
        }
    }

    async fn start_in(
        root: &Path,
        cfg: &Config,
        detached: bool,
        o: &Options,
    ) -> Result<LocalServers> {
        let (mut valkey, mut valkey_nodes, ports) =
            prepare_valkey(root, cfg.benchmark.durability.valkey(), o)?;
        let cluster = o.valkey_cluster > 0;
        let pg_port = free_port()?;
        let certs = if o.tls {
            Some(tls::Certificates::create(root)?)
        } else {
            None
        };
        let mut stunnel = match &certs {
            Some(c) => Some(tls::Stunnel::prepare(root, c, free_port()?, valkey.port)?),
            None => None,
        };
        let (pg, vk) = tokio::join!(
            async {
                let mut pg =
                    LocalPostgres::init(root, &cfg.postgres, pg_port, o.statements).await?;
                if let Some(c) = &certs {
                    pg.require_tls(c)?;
                }
                pg.start(detached).await?;
                pg.provision(&cfg.postgres).await?;
                anyhow::Ok(pg)
            },
            valkey.start(detached)
        );
        let mut postgres = match pg {
            Ok(pg) => pg,
            Err(e) => {
                valkey.process.kill_now();
                return Err(e.context("starting the local PostgreSQL"));
            }
        };
        let vk = match vk {
            Ok(()) => start_nodes(&mut valkey_nodes, &ports, detached, cluster).await,
            Err(e) => Err(e),
        };
        if let Err(e) = vk {
            postgres.process.kill_now();
            valkey.process.kill_now();
            for n in &mut valkey_nodes {
                n.process.kill_now();
            }
            return Err(e.context("starting the local Valkey"));
        }
        if let Some(st) = stunnel.as_mut() {
            if let Err(e) = st.start(detached).await {
                st.process.kill_now();
                postgres.process.kill_now();
                valkey.process.kill_now();
                return Err(e.context("starting stunnel in front of the local Valkey"));
            }
        }
        if detached {
            let tls_pid = stunnel
                .as_ref()
                .map_or(String::new(), |s| format!(" {}", s.process.pid));
            let node_pids: String = valkey_nodes
                .iter()
                .map(|n| format!(" {}", n.process.pid))
                .collect();
            std::fs::write(
                root.join(OWNER_FILE),
                format!(
                    "{} {}{tls_pid}{node_pids}",
                    postgres.process.pid, valkey.process.pid
                ),
            )?;
        }
        Ok(LocalServers {
            root: root.to_path_buf(),
            postgres,
            valkey,
            valkey_nodes,
            certs,
            stunnel,
            detached,
            stopped: false,
        })
    }

    /// Points the config at these servers; credentials stay the configured ones. With
    /// TLS, both are reached by the certificate's name and checked as verify-full.
    pub fn apply_to(&self, cfg: &mut Config) {
        cfg.postgres.port = self.postgres.port;
        match (&self.certs, &self.stunnel) {
            (Some(certs), Some(st)) => {
                let ca = certs.ca.display().to_string();
                cfg.postgres.host = tls::TLS_HOST.into();
                cfg.postgres.sslmode = crate::config::SslMode::VerifyFull;
                cfg.postgres.sslrootcert = ca.clone();
                cfg.valkey.url = format!("rediss://{}:{}", tls::TLS_HOST, st.port);
                cfg.valkey.tls_ca_file = ca;
            }
            _ => {
                // Plaintext servers: TLS settings meant for another server (PGSSLMODE=require
                // for RDS in the shell) would only make the connection fail.
                cfg.postgres.host = "127.0.0.1".into();
                cfg.postgres.sslmode = crate::config::SslMode::Prefer;
                for f in [
                    &mut cfg.postgres.sslrootcert,
                    &mut cfg.postgres.sslcert,
                    &mut cfg.postgres.sslkey,
                    &mut cfg.valkey.tls_ca_file,
                    &mut cfg.valkey.tls_cert_file,
                    &mut cfg.valkey.tls_key_file,
                ] {
                    f.clear();
                }
                cfg.valkey.url = self.valkey_url();
            }
        }
    }

    /// The plain server's URL, or every cluster node's as a `redis+cluster://` URL.
    fn valkey_url(&self) -> String {
        if !self.valkey.cluster {
            return self.valkey.url();
        }
        let nodes: Vec<String> = std::iter::once(&self.valkey)
            .chain(&self.valkey_nodes)
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    fn valkey_ports(&self) -> Vec<u16> {
        std::iter::once(&self.valkey)
            .chain(&self.valkey_nodes)
            .map(|n| n.port)
            .collect()
    }

    pub fn info(&self) -> LocalInfo {
        LocalInfo {
            root: self.root.clone(),
            postgres_port: self.postgres.port,
            postgres_pid: self.postgres.process.pid,
            postgres_tuning: self.postgres.tuning.clone(),
            postgres_runs_as: self.postgres.run_as_name().map(str::to_string),
            valkey_port: self.valkey.port,
            valkey_pid: self.valkey.process.pid,
            valkey_binary: self.valkey.binary.clone(),
            valkey_is_redis_fallback: self.valkey.flavor == binaries::ValkeyFlavor::RedisFallback,
            valkey_cluster_pids: match self.valkey.cluster {
                true => std::iter::once(&self.valkey)
                    .chain(&self.valkey_nodes)
                    .map(|n| n.process.pid)
                    .collect(),
                false => vec![],
            },
            valkey_persistence: format!(
                "{} ({})",
                self.valkey.tier.name(),
                valkey::persistence_args(self.valkey.tier).join(" ")
            ),
            tls: self.stunnel.as_ref().map(|st| {
                format!(
                    "throwaway CA; PostgreSQL ssl = on, TCP logins without TLS rejected; \
                     Valkey behind {} on port {}",
                    st.binary.display(),
                    st.port
                )
            }),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Restarts the server of one backend (the cold scenario).
    pub async fn restart(&mut self, backend: Backend) -> Result<()> {
        match backend {
            Backend::Postgresql => self.postgres.restart(false).await,
            Backend::Valkey => {
                // Every node, then until they have found each other again.
                self.valkey.restart(false).await?;
                for n in &mut self.valkey_nodes {
                    n.restart(false).await?;
                }
                if self.valkey.cluster {
                    valkey_cluster::wait_whole(&self.valkey_ports()).await?;
                }
                Ok(())
            }
        }
    }

    /// Crashes the server of one backend (SIGKILL to every process of it, no clean
    /// shutdown) and starts it again on the same data, as after a crash of the server's
    /// processes (the OS keeps what it was handed). Returns how long until the server
    /// answered again, and whether it was left as a crash leaves it (checked, so a
    /// trial never passes on a clean stop by mistake).
    pub async fn crash(&mut self, backend: Backend) -> Result<Crashed> {
        let killed = std::time::Instant::now();
        let unclean = match backend {
            Backend::Postgresql => {
                let segment = shm::of_data_dir(&self.postgres.data_dir);
                self.postgres.process.crash().await?;
                if let Some(seg) = segment {
                    for p in shm::release(seg, std::time::Duration::from_secs(30)).await? {
                        eprintln!(
                            "qbench: warning: killed PostgreSQL process {p}: it outlived the \
                             crash, attached to the server's shared memory"
                        );
                    }
                }
                let unclean = self.postgres.left_by_a_crash()?;
                self.postgres.start(self.detached).await?;
                unclean
            }
            Backend::Valkey if self.valkey.cluster => {
                return Err(crate::error::usage(
                    "crash trials of a --valkey-cluster are not supported: run them against \
                     one server (leave --valkey-cluster out)",
                ));
            }
            Backend::Valkey => {
                let from = self.valkey.log_len();
                self.valkey.process.crash().await?;
                let unclean = self.valkey.left_by_a_crash(from);
                self.valkey.start(self.detached).await?;
                unclean
            }
        };
        Ok(Crashed {
            restart: killed.elapsed(),
            unclean,
        })
    }

    /// Stops both servers and removes their directory.
    pub async fn stop(mut self) {
        if let Some(st) = self.stunnel.as_mut() {
            st.process.stop().await;
        }
        tokio::join!(self.postgres.process.stop(), self.valkey.process.stop());
        for n in &mut self.valkey_nodes {
            n.process.stop().await;
        }
        let _ = std::fs::remove_dir_all(&self.root);
        self.stopped = true;
    }

    /// For `local start`: hand the servers over to `local stop` without stopping them.
    pub fn into_state(mut self, cfg: &Config) -> LocalState {
        self.stopped = true;
        LocalState {
            root: self.root.clone(),
            postgres_pid: self.postgres.process.pid,
            postgres_port: self.postgres.port,
            valkey_pid: self.valkey.process.pid,
            valkey_port: self.valkey.port,
            valkey_node_pids: self.valkey_nodes.iter().map(|n| n.process.pid).collect(),
            stunnel_pid: self.stunnel.as_ref().map(|s| s.process.pid),
            user: cfg.postgres.user.clone(),
            database: cfg.postgres.database.clone(),
        }
    }
}

impl Drop for LocalServers {
    fn drop(&mut self) {
        // Reached on early returns and panics; normal paths call stop().
        if !self.stopped && !self.detached {
            if let Some(st) = self.stunnel.as_mut() {
                st.process.kill_now();
            }
            self.postgres.process.kill_now();
            self.valkey.process.kill_now();
            for n in &mut self.valkey_nodes {
                n.process.kill_now();
            }
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// The Valkey server, or a cluster's first node and the others, on their ports.
fn prepare_valkey(
    root: &Path,
    tier: crate::format::durability::Tier,
    o: &Options,
) -> Result<(LocalValkey, Vec<LocalValkey>, Vec<u16>)> {
    let ports = match o.valkey_cluster {
        0 => vec![free_port()?],
        n => valkey_cluster::cluster_ports(usize::from(n))?,
    };
    let cluster = o.valkey_cluster > 0;
    let first = LocalValkey::prepare_named(root, "valkey", ports[0], tier, cluster)?;
    let mut others = vec![];
    for (i, &port) in ports.iter().enumerate().skip(1) {
        let name = format!("valkey-node{i}");
        others.push(LocalValkey::prepare_named(root, &name, port, tier, true)?);
    }
    Ok((first, others, ports))
}

/// Starts a cluster's other nodes, then joins them all (`ports`, the first one's too).
async fn start_nodes(
    nodes: &mut [LocalValkey],
    ports: &[u16],
    detached: bool,
    cluster: bool,
) -> Result<()> {
    if !cluster {
        return Ok(());
    }
    for n in nodes.iter_mut() {
        n.start(detached).await?;
    }
    valkey_cluster::form(ports).await
}

/// A crash of a `--local` server.
pub struct Crashed {
    /// SIGKILL → the restarted server answering.
    pub restart: std::time::Duration,
    /// The server was left as a crash leaves it (not cleanly stopped).
    pub unclean: bool,
}

/// What `qbench local start` leaves for `qbench local stop`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalState {
    pub root: PathBuf,
    pub postgres_pid: u32,
    pub postgres_port: u16,
    pub valkey_pid: u32,
    pub valkey_port: u16,
    /// `local start --tls`: stunnel, stopped with the servers.
    #[serde(default)]
    pub stunnel_pid: Option<u32>,
    /// `local start --valkey-cluster N`: the nodes after the first.
    #[serde(default)]
    pub valkey_node_pids: Vec<u32>,
    pub user: String,
    pub database: String,
}

pub fn state_file() -> PathBuf {
    std::env::temp_dir().join(format!(
        "qbench-local-state-{}.json",
        nix::unistd::getuid().as_raw()
    ))
}

/// Removes directories of earlier --local runs whose owners are all gone
/// (a `kill -9` of qbench kills its servers, but cannot remove their files).
pub fn cleanup_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with("qbench-local-") || name.starts_with("qbench-local-state") {
            continue;
        }
        let path = e.path();
        let owners = std::fs::read_to_string(path.join(OWNER_FILE)).unwrap_or_default();
        let pids: Vec<u32> = owners
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 600);
        let abandoned = if pids.is_empty() {
            old
        } else {
            !pids.iter().any(|&p| process::is_alive(p))
        };
        if abandoned {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}
