//! The session a command runs in: the effective config, Ctrl-C, the `--local` servers,
//! the quiet and accept-mismatch choices, and the build. Commands make one; the runners
//! (suite, capacity, horizon, workload) take `&Session` and know nothing of clap.

use std::sync::{Arc, Mutex};

use anyhow::Result;

use crate::build::Build;
use crate::config::{Config, Source};
use crate::format::manifest::LocalInfo;
use crate::local::{self, LocalServers};
use crate::progress;
use crate::queue::{Backend, Queue};
use crate::shutdown::Shutdown;
use crate::workload::Env;

/// What the user chose for the whole command, beside the config.
#[derive(Debug, Clone, Copy, Default)]
pub struct Choices {
    /// No progress lines on stderr.
    pub quiet: bool,
    /// Run even when a server is not in the tier asked for (the tier it ran in is
    /// recorded).
    pub accept_durability_mismatch: bool,
}

pub struct Session {
    pub cfg: Config,
    pub source: Source,
    pub shutdown: Shutdown,
    pub choices: Choices,
    pub build: Build,
    /// The servers `--local` started, for the cold scenario's restarts and the crash
    /// trials' kills; stopped when the session ends.
    servers: tokio::sync::Mutex<Option<LocalServers>>,
    /// What the manifests record of them, refreshed after every restart (new pids).
    local: Mutex<Option<LocalInfo>>,
}

impl Session {
    /// A session on the servers the config names (none started).
    pub fn new(cfg: Config, source: Source, shutdown: Shutdown, choices: Choices) -> Session {
        Session {
            cfg,
            source,
            shutdown,
            choices,
            build: Build::new(None),
            servers: tokio::sync::Mutex::new(None),
            local: Mutex::new(None),
        }
    }

    /// As [`Session::new`], on a runtime of `threads` workers (the binary's).
    pub fn with_build(self, build: Build) -> Session {
        Session { build, ..self }
    }

    /// Starts throwaway servers and points the config at them. Not raced against
    /// Ctrl-C: a half-done start would leave its data directory behind (it takes about
    /// a second); a Ctrl-C during it stops them again and says so.
    pub async fn start_local(&mut self, options: &local::Options) -> Result<()> {
        local::preflight(options)?;
        if !self.choices.quiet {
            eprintln!("qbench: starting local PostgreSQL and Valkey …");
        }
        let started = LocalServers::start(&self.cfg, false, options).await;
        if self.shutdown.is_triggered() {
            if let Ok(s) = started {
                s.stop().await;
            }
            return Err(crate::error::Interrupted.into());
        }
        let servers = started?;
        servers.apply_to(&mut self.cfg);
        self.set_local(Some(servers.info()));
        *self.servers.get_mut() = Some(servers);
        Ok(())
    }

    /// Stops the servers this session started, if any.
    pub async fn stop(self) {
        if let Some(s) = self.servers.into_inner() {
            s.stop().await;
        }
    }

    /// The `--local` servers as the manifests record them; `None` without `--local`.
    pub fn local(&self) -> Option<LocalInfo> {
        self.local.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_local(&self, info: Option<LocalInfo>) {
        *self.local.lock().unwrap_or_else(|p| p.into_inner()) = info;
    }

    /// The progress line's mode: none with `--quiet`.
    pub fn progress(&self) -> progress::Mode {
        progress::Mode::detect(self.choices.quiet)
    }

    /// Prints a progress note on stderr unless `--quiet`.
    pub fn note(&self, line: &str) {
        if !self.choices.quiet {
            eprintln!("{line}");
        }
    }

    /// The environment of one test of `queue` run with `cfg`: progress, the local
    /// servers and their processes, Ctrl-C and the build; callers set the rest.
    pub fn env(&self, queue: Arc<dyn Queue>, cfg: &Config) -> Env {
        let local = self.local();
        Env {
            progress: self.progress(),
            server: queue.server().procs(local.as_ref()),
            local,
            build: self.build,
            ..Env::new(queue, cfg.clone(), self.shutdown.clone())
        }
    }

    /// Restarts `backend`'s server if this session started it; false when it did not.
    pub async fn restart(&self, backend: Backend) -> Result<bool> {
        let mut servers = self.servers.lock().await;
        let Some(s) = servers.as_mut() else {
            return Ok(false);
        };
        let result = s.restart(backend).await;
        self.set_local(Some(s.info()));
        result.map(|()| true)
    }

    /// Runs `f` with the session's own servers (crash trials kill and restart them);
    /// `None` without `--local`. The manifests' record is refreshed after.
    pub async fn with_servers<T>(&self, f: impl AsyncFnOnce(&mut LocalServers) -> T) -> Option<T> {
        let mut servers = self.servers.lock().await;
        let s = servers.as_mut()?;
        let out = f(s).await;
        self.set_local(Some(s.info()));
        Some(out)
    }
}
