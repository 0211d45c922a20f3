//! What `produce` and `work` share when setting up a test from their command lines.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::ending::Show;
use crate::cli::OutArgs;
use crate::error::usage;
use crate::format::files::OutputDir;
use crate::format::manifest::Role;
use crate::queue::{Queue, QueueKind};
use crate::session::Session;
use crate::workload::{self, Env, Identity, Plan, Report, Spec};

/// A standalone `produce` (`Role::Produce`) or `work` test as the command line names it.
fn identity(kind: QueueKind, out: &OutArgs, role: Role) -> Identity {
    let verb = if role == Role::Produce {
        "produce"
    } else {
        "work"
    };
    Identity {
        instance: out.instance.clone(),
        label: format!("{verb} {kind}"),
        ..Identity::new(
            out.name.clone().unwrap_or_else(|| format!("{kind}_{verb}")),
            role,
        )
    }
}

/// The environment of a standalone test; the caller adds its warnings.
fn env(s: &Session, queue: Arc<dyn Queue>, output: Option<OutputDir>) -> Env {
    Env {
        output,
        ..s.env(queue, &s.cfg)
    }
}

/// How a standalone test with `--out` ends: the folder analyzed, drawn and reported
/// (the process that finishes last sees every process's files).
pub fn end(s: &Session, out: &OutArgs) {
    if let Some(dir) = &out.out {
        let show = match out.json {
            true => Show::PathsOnStderr,
            false => Show::Paths,
        };
        super::ending::report(s, dir, &out.end, show);
    }
}

/// `--start-at` and `--run-id`, checked: a start more than a minute past is a mistake
/// (a stale command line), not "start now".
fn coordination(out: &OutArgs) -> anyhow::Result<(Option<SystemTime>, Option<String>)> {
    let at = match &out.start_at {
        None => None,
        Some(s) => {
            // Strict: a time without its Z, or with an offset, would be read as UTC and
            // start hours off without a word.
            let at = humantime::parse_rfc3339(s.trim()).map_err(|e| {
                usage(format!(
                    "--start-at {s:?} is not a UTC time like 2026-12-01T17:30:00Z ({e}; \
                     offsets are not taken); `date -u -d '+2 min' +%Y-%m-%dT%H:%M:%SZ` prints one"
                ))
            })?;
            if at
                .duration_since(SystemTime::now())
                .is_ok_and(|d| d > Duration::from_secs(86_400))
            {
                return Err(usage(format!(
                    "--start-at {s} is more than a day ahead: a typo? qbench would wait until then"
                )));
            }
            if let Ok(ago) = SystemTime::now().duration_since(at) {
                if ago > Duration::from_secs(60) {
                    return Err(usage(format!(
                        "--start-at {s} is {} s in the past; give a time ahead of every host's \
                         clock (a stale command line?)",
                        ago.as_secs()
                    )));
                }
            }
            Some(at)
        }
    };
    if let Some(id) = &out.run_id {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return Err(usage(format!(
                "--run-id {id:?} is invalid: use 1-64 letters, digits or _ - ."
            )));
        }
    }
    Ok((at, out.run_id.clone()))
}

/// What a standalone test takes from its command line before anything connects.
pub struct Prepared {
    /// Where the files go; `None` without `--out`.
    pub dir: Option<OutputDir>,
    pub start_at: Option<SystemTime>,
    pub run_id: Option<String>,
}

/// Where this process's files go: `--out DIR --name TEST`, as TEST, TEST.INSTANCE, or
/// TEST.producer[.INSTANCE]; and `--start-at`/`--run-id`, checked once, here, so a bad one
/// is refused before anything connects (and before `--force` removes old files).
pub fn output(out: &OutArgs, role_suffix: Option<&str>) -> anyhow::Result<Prepared> {
    let (start_at, run_id) = coordination(out)?;
    let dir = match (&out.out, &out.name) {
        (Some(dir), Some(name)) => {
            let mut stem = name.clone();
            for part in [role_suffix, out.instance.as_deref()].into_iter().flatten() {
                stem.push('.');
                stem.push_str(part);
            }
            Some(OutputDir::prepare(dir, &stem, out.force)?)
        }
        _ => None,
    };
    Ok(Prepared {
        dir,
        start_at,
        run_id,
    })
}

/// Runs a standalone `produce` or `work` test: as [`output`] prepared it, with the
/// warnings announced before it, the progress line on stderr.
pub async fn run(
    s: &Session,
    queue: Arc<dyn Queue>,
    out: &OutArgs,
    role: Role,
    plan: Plan,
    prepared: Prepared,
    warnings: Vec<String>,
) -> anyhow::Result<Report> {
    let kind = queue.kind();
    s.cfg.benchmark.wakeup.single()?;
    let mut warnings = warnings;
    let b = &s.cfg.benchmark;
    let accept = s.choices.accept_durability_mismatch;
    if let Some(w) = workload::tier::check(&queue, b.durability, accept).await? {
        eprintln!("qbench: warning: {w}");
        warnings.push(w);
    }
    let Prepared {
        dir,
        start_at,
        run_id,
    } = prepared;
    if let Some(at) = start_at {
        if let Ok(left) = at.duration_since(SystemTime::now()) {
            eprintln!(
                "qbench: load begins at {} (in {:.1} s), once every connection is open",
                humantime::format_rfc3339_millis(at),
                left.as_secs_f64()
            );
        }
    }
    workload::run(Spec {
        id: Identity {
            coordinated_run_id: run_id,
            ..identity(kind, out, role)
        },
        plan,
        env: Env {
            warnings,
            start_at,
            ..env(s, queue, dir)
        },
    })
    .await
}

/// `--json`: the test's summary line (docs/FORMATS.md) and the files it wrote, as one
/// JSON object on stdout.
pub fn print_json(report: &Report) -> anyhow::Result<()> {
    let mut v = serde_json::to_value(&report.summary)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("files".into(), serde_json::json!(report.files));
    }
    println!("{v}");
    Ok(())
}
