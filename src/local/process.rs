//! Child processes that never outlive qbench.
//!
//! A tied child gets PR_SET_PDEATHSIG, so the kernel signals it when its parent dies,
//! even by `kill -9`. The signal fires when the *thread* that forked it exits, so all
//! tied children are forked from one keeper thread that lives as long as the process.
//! Every child gets its own process group, so a terminal's Ctrl-C reaches qbench alone
//! and qbench decides when its servers stop (after writing its results).

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

type SpawnJob = Box<dyn FnOnce() + Send>;

fn keeper() -> &'static Mutex<mpsc::Sender<SpawnJob>> {
    static KEEPER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        // The thread must outlive every tied child; it ends only with the process.
        std::thread::Builder::new()
            .name("qbench-child-keeper".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("spawning the child keeper thread");
        Mutex::new(tx)
    })
}

/// Spawns a child that receives `on_parent_death` when qbench dies.
pub fn spawn_tied(mut cmd: Command, on_parent_death: Signal) -> io::Result<Child> {
    let parent = nix::unistd::getpid();
    // SAFETY: only async-signal-safe syscalls run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
            nix::sys::prctl::set_pdeathsig(on_parent_death)?;
            // The parent may have died before the line above took effect.
            if nix::unistd::getppid() != parent {
                nix::libc::_exit(1);
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    keeper()
        .lock()
        .map_err(|_| io::Error::other("child keeper lock poisoned"))?
        .send(Box::new(move || {
            let _ = tx.send(cmd.spawn());
        }))
        .map_err(|_| io::Error::other("child keeper thread is gone"))?;
    rx.recv()
        .map_err(|_| io::Error::other("child keeper thread dropped the spawn"))?
}

/// Spawns a child that outlives qbench (for `qbench local start`): a new session.
pub fn spawn_detached(mut cmd: Command) -> io::Result<Child> {
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            Ok(())
        });
    }
    cmd.spawn()
}

pub fn is_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 checks existence; a zombie still "exists" but is reaped by its parent.
    signal::kill(Pid::from_raw(raw), None).is_ok() && !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// The processes whose parent is `pid`, from /proc.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(')')?.1.split_whitespace().nth(1)?.to_string();
                    rest.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

pub fn send(pid: u32, sig: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = signal::kill(Pid::from_raw(raw), sig);
    }
}

/// Sends `sig`, waits up to `grace` for the process to go, then kills it.
/// Works for children (reaped through `child`) and for strangers (by pid).
pub async fn stop(pid: u32, child: Option<&mut Child>, sig: Signal, grace: Duration) {
    send(pid, sig);
    let deadline = Instant::now() + grace;
    let mut child = child;
    loop {
        let gone = match child.as_deref_mut() {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => !is_alive(pid),
        };
        if gone {
            return;
        }
        if Instant::now() >= deadline {
            send(pid, Signal::SIGKILL);
            if let Some(c) = child.as_deref_mut() {
                let _ = c.wait();
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server process qbench started and answers for: stopped gently with `stop_signal`
/// (killed after `grace`), or at once with `kill_signal`.
pub struct Supervised {
    pub pid: u32,
    child: Option<Child>,
    stop_signal: Signal,
    grace: Duration,
    kill_signal: Signal,
}

impl Supervised {
    pub fn new(stop_signal: Signal, grace: Duration, kill_signal: Signal) -> Supervised {
        Supervised {
            pid: 0,
            child: None,
            stop_signal,
            grace,
            kill_signal,
        }
    }

    pub fn started(&mut self, child: Child) {
        self.pid = child.id();
        self.child = Some(child);
    }

    /// The exit status if the process has already ended (a failed start).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Asks it to stop, waits up to the grace period, then kills it.
    pub async fn stop(&mut self) {
        if self.pid == 0 {
            return;
        }
        stop(self.pid, self.child.as_mut(), self.stop_signal, self.grace).await;
        self.child = None;
        self.pid = 0;
    }

    /// A crash: SIGKILL to the process and every process it started, all at once, with
    /// no chance to flush anything; returns once they are all gone. (PostgreSQL's
    /// backends are children of the postmaster, each in its own session.)
    pub async fn crash(&mut self) -> std::io::Result<()> {
        if self.pid == 0 {
            return Ok(());
        }
        // The parent is stopped first so that it forks nothing between the listing of
        // its children and their kill (a backend forked then would survive, flush WAL
        // for the dead and keep the shared memory attached); then its children are
        // killed until none is left, then the parent.
        send(self.pid, Signal::SIGSTOP);
        let started = Instant::now();
        let mut pids = vec![self.pid];
        loop {
            let alive: Vec<u32> = children_of(self.pid)
                .into_iter()
                .filter(|&p| is_alive(p))
                .collect();
            if alive.is_empty() {
                break;
            }
            for &p in &alive {
                send(p, Signal::SIGKILL);
                if !pids.contains(&p) {
                    pids.push(p);
                }
            }
            if started.elapsed() > Duration::from_secs(10) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        send(self.pid, Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        while pids.iter().any(|&p| is_alive(p)) {
            if let Some(c) = self.child.as_mut() {
                let _ = c.try_wait();
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "processes {pids:?} still alive 10 s after SIGKILL"
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
        self.pid = 0;
        Ok(())
    }

    /// Stops it now (early returns, panics, interrupted runs): no waiting beyond 5 s.
    pub fn kill_now(&mut self) {
        if self.pid == 0 {
            return;
        }
        send(self.pid, self.kill_signal);
        if let Some(c) = self.child.as_mut() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        self.pid = 0;
        self.child = None;
    }
}
