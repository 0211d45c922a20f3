//! A crashed PostgreSQL's System V segment: a new postmaster refuses to start on a data
//! directory while any process is still attached to the old one ("pre-existing shared
//! memory block is still in use"). Once seen on a fresh clone after a crash trial whose
//! every tracked process was dead, so the restart waits on the segment itself: every
//! process still attached is named and killed, whatever its parent.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nix::sys::signal::Signal;

use super::process;

/// A System V segment: its key and id.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    pub key: u64,
    pub id: u64,
}

/// The segment a server on `data_dir` attached, from postmaster.pid's seventh line
/// ("key id"); None when there is no such file or line (a clean stop removes it).
pub fn of_data_dir(data_dir: &Path) -> Option<Segment> {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let mut it = text.lines().nth(6)?.split_whitespace();
    Some(Segment {
        key: it.next()?.parse().ok()?,
        id: it.next()?.parse().ok()?,
    })
}

/// How many processes are attached to the segment; None once it is gone.
fn attached(seg: Segment) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/sysvipc/shm").ok()?;
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1)?.parse::<u64>().ok()? == seg.id).then(|| f.get(6)?.parse().ok())?
    })
}

/// The processes that map the segment (the kernel names the mapping `/SYSV<key hex>`).
fn holders(seg: Segment) -> Vec<u32> {
    let name = format!("/SYSV{:08x}", seg.key);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/maps"))
                .is_ok_and(|m| m.lines().any(|l| l.contains(&name)))
        })
        .collect()
}

/// `pid (name, state S, parent P)`, for the warning and the error.
fn describe(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let comm = stat
        .split_once('(')
        .and_then(|(_, r)| r.rsplit_once(')'))
        .map_or("?", |(c, _)| c);
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, r)| r.split_whitespace().collect());
    format!(
        "{pid} ({comm}, state {}, parent {})",
        rest.first().unwrap_or(&"?"),
        rest.get(1).unwrap_or(&"?")
    )
}

/// Waits until no process is attached to `seg`, killing those that still are; returns
/// them as described. Fails, naming them, if any is still attached after `within`.
pub async fn release(seg: Segment, within: Duration) -> Result<Vec<String>> {
    let deadline = Instant::now() + within;
    let mut killed: Vec<String> = vec![];
    loop {
        if attached(seg).is_none_or(|n| n == 0) {
            return Ok(killed);
        }
        let now = holders(seg);
        if Instant::now() > deadline {
            let names: Vec<String> = now.iter().map(|&p| describe(p)).collect();
            bail!(
                "the crashed server's shared memory (key {}, id {}) is still attached {} s \
                 after SIGKILL, by {}; kill them, then start again",
                seg.key,
                seg.id,
                within.as_secs(),
                if names.is_empty() {
                    "processes not found in /proc".into()
                } else {
                    names.join(", ")
                }
            );
        }
        for p in now {
            let d = describe(p);
            if !killed.contains(&d) {
                killed.push(d);
            }
            process::send(p, Signal::SIGKILL);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    /// A process outside any server's tree holds a segment, as a backend that outlived
    /// its postmaster would: release() finds it by its mapping, kills it, names it, and
    /// returns once the segment has no process attached.
    #[tokio::test]
    async fn a_process_holding_the_segment_is_killed_and_named() {
        let key = 0x5142_0000 + u64::from(std::process::id() & 0xffff);
        // Python's ctypes calls shmget/shmat: a holder that is not a child of anything
        // qbench tracks, and that the test can create without unsafe code.
        let script = format!(
            "import ctypes,sys,time\n\
             c=ctypes.CDLL(None)\n\
             c.shmat.restype=ctypes.c_void_p\n\
             i=c.shmget({key},4096,0o1600)\n\
             assert i>=0 and c.shmat(i,None,0)!=ctypes.c_void_p(-1).value\n\
             print(i,flush=True)\n\
             time.sleep(600)\n"
        );
        let mut holder = Command::new("python3")
            .args(["-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the holder's segment id");
        let seg = Segment {
            key,
            id: line.trim().parse().expect("an id"),
        };
        assert_eq!(attached(seg), Some(1));
        let killed = release(seg, Duration::from_secs(10))
            .await
            .expect("released");
        let status = holder.wait().expect("reaped");
        let _ = Command::new("ipcrm")
            .args(["-m", &seg.id.to_string()])
            .status();
        assert_eq!(killed.len(), 1, "{killed:?}");
        assert!(
            killed[0].starts_with(&holder.id().to_string()),
            "{killed:?}"
        );
        assert!(!status.success(), "killed, not exited: {status}");
    }

    #[test]
    fn reads_the_segment_from_postmaster_pid() {
        let d = tempfile::tempdir().expect("dir");
        let pid = "4532\n/tmp/x/pg\n1796593535\n39171\n/tmp/x/pg\n127.0.0.1\n  10010955   1507338\nready   \n";
        std::fs::write(d.path().join("postmaster.pid"), pid).expect("write");
        assert_eq!(
            of_data_dir(d.path()),
            Some(Segment {
                key: 10010955,
                id: 1507338
            })
        );
        std::fs::write(d.path().join("postmaster.pid"), "4532\n").expect("write");
        assert_eq!(of_data_dir(d.path()), None);
    }
}
