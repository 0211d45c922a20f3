//! `TEST_system.csv`: the whole machine (CPU, memory, disk bytes/s), the server's processes
//! (all postgres processes together, or valkey-server) and qbench itself.
//! sysinfo blocks, so this runs on a thread of its own. CPU % is of the whole machine:
//! 100 means every core busy.

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
    let mut sys = System::new();
    let me = Pid::from_u32(std::process::id());
    let cores = sys_cores(&mut sys);
    let refresh = |sys: &mut System| {
        sys.refresh_cpu_usage();
        sys.refresh_memory();
        sys.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
    };
    refresh(&mut sys);
    let mut disk_prev = disk_bytes();
    let mut cpu_prev = cpu_jiffies();
    let mut prev_at = Instant::now();
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
        refresh(&mut sys);
        let now = Instant::now();
        let dt = (now - prev_at).as_secs_f64().max(1e-3);
        prev_at = now;
        let disk = disk_bytes();
        let per_s = |a: u64, b: u64| ((a.saturating_sub(b)) as f64 / dt) as u64;
        let cpu_now = cpu_jiffies();
        // /proc/stat samples CPU use at timer ticks and misses short bursts (seen here:
        // 0.3% reported while the processes used 12.5%); per-process times are scaled by
        // the scheduler's precise runtime. Each source can only under-count (processes
        // that exited are missed by the sum), so take the larger.
        let ticks = match (cpu_prev, cpu_now) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
                100.0 * (b1.saturating_sub(b0)) as f64 / (t1 - t0) as f64
            }
            _ => 0.0,
        };
        let summed: f64 = sys
            .processes()
            .values()
            .filter(|p| is_process(p))
            .map(|p| f64::from(p.cpu_usage()))
            .sum::<f64>()
            / f64::from(cores);
        let cpu_pct = ticks.max(summed).min(100.0);
        cpu_prev = cpu_now;
        let (server_cpu, server_mem) = server_usage(&sys, &server);
        let (my_cpu, my_mem) = sys.process(me).map_or((0.0, 0), |p| {
            (
                p.cpu_usage(),
                pss(p.pid().as_u32()).unwrap_or_else(|| p.memory()),
            )
        });
        csv.serialize(Row {
            t_s: super::secs(started),
            cpu_pct: round2(cpu_pct),
            mem_used_mb: sys.used_memory() / (1 << 20),
            disk_read_bytes_s: per_s(disk.0, disk_prev.0),
            disk_write_bytes_s: per_s(disk.1, disk_prev.1),
            server_cpu_pct: server_cpu.map(|c| round2(f64::from(c / cores))),
            server_mem_mb: server_mem.map(|m| m / (1 << 20)),
            qbench_cpu_pct: round2(f64::from(my_cpu / cores)),
            qbench_mem_mb: my_mem / (1 << 20),
        })?;
        csv.flush()?;
        disk_prev = disk;
    }
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

/// Summed CPU (% of one core) and memory (bytes) of the server's processes.
fn server_usage(sys: &System, server: &ServerProcs) -> (Option<f32>, Option<u64>) {
    let ServerProcs::Local {
        names,
        root,
        children,
    } = *server
    else {
        return (None, None);
    };
    let root = root.map(Pid::from_u32);
    let pick = |p: &sysinfo::Process| {
        let name = p.name().to_string_lossy();
        let named = names.split('|').any(|n| name.starts_with(n));
        named && root.is_none_or(|r| p.pid() == r || (children && p.parent() == Some(r)))
    };
    let (mut cpu, mut mem, mut any) = (0.0f32, 0u64, false);
    for p in sys
        .processes()
        .values()
        .filter(|p| is_process(p) && pick(p))
    {
        cpu += p.cpu_usage();
        mem += pss(p.pid().as_u32()).unwrap_or_else(|| p.memory());
        any = true;
    }
    if any {
        (Some(cpu), Some(mem))
    } else {
        (None, None)
    }
}
