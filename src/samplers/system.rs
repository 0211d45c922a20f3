//! `TEST_system.csv`: the whole machine (CPU, memory, disk bytes/s), the server's processes
//! (all postgres processes together, or valkey-server) and qbench itself.
//! sysinfo blocks, so this runs on a thread of its own. CPU % is of the whole machine:
//! 100 means every core busy.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

pub use crate::format::system::Row;

/// Which processes are "the server" (each server says, behind the `Queue` trait).
#[derive(Debug, Clone)]
pub enum ServerProcs {
    /// Processes whose name starts with one of `names` (`|`-separated). With a known
    /// `root`, only it, and with `children` also the processes it started.
    Local {
        names: &'static str,
        root: Option<u32>,
        children: bool,
    },
    /// A server of several processes started apart (a local cluster's nodes).
    Pids { names: &'static str, pids: Vec<u32> },
    /// The server runs elsewhere: its columns stay empty.
    Remote,
}

impl ServerProcs {
    /// A server of many processes (PostgreSQL: the postmaster and its backends).
    pub fn family(names: &'static str, root: Option<u32>) -> ServerProcs {
        ServerProcs::Local {
            names,
            root,
            children: true,
        }
    }

    /// A server of one process (Valkey).
    pub fn single(names: &'static str, pid: Option<u32>) -> ServerProcs {
        ServerProcs::Local {
            names,
            root: pid,
            children: false,
        }
    }
}

pub struct SystemSampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<()>>,
}

/// Busy and total jiffies of all CPUs (the `cpu` line of /proc/stat); idle includes iowait.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = text
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().sum();
    Some((total - v[3] - v[4], total))
}

/// Cumulative bytes read and written by whole disks (partitions and loops excluded).
fn disk_bytes() -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string("/proc/diskstats") else {
        return (0, 0);
    };
    let mut r = 0u64;
    let mut w = 0u64;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let name = f[2];
        if name.starts_with("loop") || name.starts_with("ram") || name.starts_with("dm-") {
            continue;
        }
        // Whole disks have a /sys/block entry; partitions do not.
        if !std::path::Path::new(&format!("/sys/block/{name}")).exists() {
            continue;
        }
        r += f[5].parse::<u64>().unwrap_or(0) * 512;
        w += f[9].parse::<u64>().unwrap_or(0) * 512;
    }
    (r, w)
}

impl SystemSampler {
    pub fn start<W: Write + Send + 'static>(
        out: W,
        started: Instant,
        server: ServerProcs,
    ) -> Result<SystemSampler> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("qbench-system-sampler".into())
            .spawn(move || run(out, started, server, &flag))?;
        Ok(SystemSampler { stop, handle })
    }

    /// Stops after the row in progress and flushes the file.
    pub fn stop(self) -> Result<()> {
        self.stop.store(true, Ordering::Release);
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("system sampler thread panicked"))?
    }
}

fn run<W: Write>(out: W, started: Instant, server: ServerProcs, stop: &AtomicBool) -> Result<()> {
    let mut csv = csv::Writer::from_writer(out);
    let mut m = Machine::new(server);
    let mut k = 1u64;
    loop {
        // Sleep to the next whole second since the start, in small steps to notice stop.
        let next = started + Duration::from_secs(k);
        while Instant::now() < next {
            if stop.load(Ordering::Acquire) {
                csv.flush()?;
                return Ok(());
            }
            std::thread::sleep(
                next.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50)),
            );
        }
        k += 1;
        csv.serialize(m.sample(super::secs(started)))?;
        csv.flush()?;
    }
}

/// The machine between two samples.
struct Machine {
    sys: System,
    me: Pid,
    cores: f32,
    server: ServerProcs,
    threads: ThreadTicks,
    disk_prev: (u64, u64),
    cpu_prev: Option<(u64, u64)>,
    prev_at: Instant,
}

impl Machine {
    fn new(server: ServerProcs) -> Machine {
        let mut sys = System::new();
        let cores = sys_cores(&mut sys);
        let mut m = Machine {
            sys,
            me: Pid::from_u32(std::process::id()),
            cores,
            server,
            threads: ThreadTicks::default(),
            disk_prev: disk_bytes(),
            cpu_prev: cpu_jiffies(),
            prev_at: Instant::now(),
        };
        m.refresh();
        m
    }

    fn refresh(&mut self) {
        self.sys.refresh_cpu_usage();
        self.sys.refresh_memory();
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
    }

    fn sample(&mut self, t_s: f64) -> Row {
        self.refresh();
        let now = Instant::now();
        let dt = (now - self.prev_at).as_secs_f64().max(1e-3);
        self.prev_at = now;
        let disk = disk_bytes();
        let per_s = |a: u64, b: u64| ((a.saturating_sub(b)) as f64 / dt) as u64;
        let cpu_now = cpu_jiffies();
        // /proc/stat samples CPU use at timer ticks and misses short bursts (seen here:
        // 0.3% reported while the processes used 12.5%); per-process times are scaled by
        // the scheduler's precise runtime. Each source can only under-count (processes
        // that exited are missed by the sum), so take the larger.
        let ticks = match (self.cpu_prev, cpu_now) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
                100.0 * (b1.saturating_sub(b0)) as f64 / (t1 - t0) as f64
            }
            _ => 0.0,
        };
        let summed: f64 = self
            .sys
            .processes()
            .values()
            .filter(|p| is_process(p))
            .map(|p| f64::from(p.cpu_usage()))
            .sum::<f64>()
            / f64::from(self.cores);
        let cpu_pct = ticks.max(summed).min(100.0);
        self.cpu_prev = cpu_now;
        let server = server_usage(&self.sys, &self.server);
        let busiest = server.as_ref().map(|s| self.threads.busiest(&s.pids));
        let (my_cpu, my_mem) = self.sys.process(self.me).map_or((0.0, 0), |p| {
            (
                p.cpu_usage(),
                pss(p.pid().as_u32()).unwrap_or_else(|| p.memory()),
            )
        });
        let cores = f64::from(self.cores);
        let row = Row {
            t_s,
            cpu_pct: round2(cpu_pct),
            cpu_cores: round2(cpu_pct * cores / 100.0),
            mem_used_mb: self.sys.used_memory() / (1 << 20),
            disk_read_bytes_s: per_s(disk.0, self.disk_prev.0),
            disk_write_bytes_s: per_s(disk.1, self.disk_prev.1),
            server_cpu_pct: server.as_ref().map(|s| round2(s.cores * 100.0 / cores)),
            server_cores: server.as_ref().map(|s| round2(s.cores)),
            server_busiest_thread_cores: busiest.map(round2),
            server_mem_mb: server.as_ref().map(|s| s.mem / (1 << 20)),
            server_mem_source: server.as_ref().map(|s| s.mem_source.to_string()),
            qbench_cpu_pct: round2(f64::from(my_cpu) / cores),
            qbench_cores: round2(f64::from(my_cpu) / 100.0),
            qbench_mem_mb: my_mem / (1 << 20),
        };
        self.disk_prev = disk;
        row
    }
}

/// Per-thread CPU of the server's processes, from /proc/PID/task/TID/stat: a server
/// that executes commands on one thread (Valkey) saturates at one core whatever the
/// machine has, which a total over cores hides.
#[derive(Default)]
struct ThreadTicks {
    prev: HashMap<(u32, u32), u64>,
    /// When `prev` was read: the interval is timed at the reads, not at the sample's
    /// start, which the process refresh before them delays.
    prev_at: Option<Instant>,
}

impl ThreadTicks {
    /// The busiest thread's CPU since the last call, in cores.
    fn busiest(&mut self, pids: &[u32]) -> f64 {
        let read_at = Instant::now();
        let dt = self
            .prev_at
            .replace(read_at)
            .map_or(1.0, |t| (read_at - t).as_secs_f64().max(1e-3));
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .unwrap_or(100) as f64;
        let mut now = HashMap::new();
        let mut best = 0u64;
        for &pid in pids {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                continue;
            };
            for t in tasks.flatten() {
                let Some(tid) = t.file_name().to_str().and_then(|n| n.parse().ok()) else {
                    continue;
                };
                let Some(ticks) = task_ticks(pid, tid) else {
                    continue;
                };
                if let Some(before) = self.prev.get(&(pid, tid)) {
                    best = best.max(ticks.saturating_sub(*before));
                }
                now.insert((pid, tid), ticks);
            }
        }
        self.prev = now;
        best as f64 / hz / dt
    }
}

/// utime + stime of one thread, in clock ticks.
fn task_ticks(pid: u32, tid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    // Fields after the command (which may hold spaces), counted from `state` (field 3).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn sys_cores(sys: &mut System) -> f32 {
    sys.refresh_cpu_usage();
    sys.cpus().len().max(1) as f32
}

/// Processes and kernel threads, not the threads of a process (their time is in it).
fn is_process(p: &sysinfo::Process) -> bool {
    !matches!(p.thread_kind(), Some(sysinfo::ThreadKind::Userland))
}

/// Proportional set size: shared pages (PostgreSQL's shared_buffers) are split among
/// the processes that map them instead of being counted once per backend.
fn pss(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Whether this kernel lets us read PSS at all (our own, once).
fn pss_readable() -> bool {
    static READABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *READABLE.get_or_init(|| pss(std::process::id()).is_some())
}

/// What the server's processes use together.
struct ServerUsage {
    /// CPU in cores (1.0 = one core busy).
    cores: f64,
    /// Bytes: proportional set size, or resident set size where PSS is unreadable.
    mem: u64,
    mem_source: &'static str,
    pids: Vec<u32>,
}

/// The server's processes' summed CPU and memory; `None` when none is on this machine.
fn server_usage(sys: &System, server: &ServerProcs) -> Option<ServerUsage> {
    let (names, root, children, set) = match server {
        ServerProcs::Local {
            names,
            root,
            children,
        } => (*names, root.map(Pid::from_u32), *children, &[][..]),
        ServerProcs::Pids { names, pids } => (*names, None, false, &pids[..]),
        ServerProcs::Remote => return None,
    };
    let pick = |p: &sysinfo::Process| {
        let name = p.name().to_string_lossy();
        let named = names.split('|').any(|n| name.starts_with(n));
        let chosen = match root {
            Some(r) => p.pid() == r || (children && p.parent() == Some(r)),
            None => set.is_empty() || set.contains(&p.pid().as_u32()),
        };
        named && chosen
    };
    let mut u = ServerUsage {
        cores: 0.0,
        mem: 0,
        mem_source: "pss",
        pids: vec![],
    };
    for p in sys
        .processes()
        .values()
        .filter(|p| is_process(p) && pick(p))
    {
        u.cores += f64::from(p.cpu_usage()) / 100.0;
        let pid = p.pid().as_u32();
        u.mem += match pss(pid) {
            Some(m) => m,
            // Where PSS can be read at all, a process whose PSS cannot is exiting (a
            // backend whose connection closed): it holds no memory of its own any more.
            None if pss_readable() => 0,
            None => {
                // RSS counts shared memory (shared_buffers) once per process: say so.
                u.mem_source = "rss";
                p.memory()
            }
        };
        u.pids.push(p.pid().as_u32());
    }
    (!u.pids.is_empty()).then_some(u)
}
