//! What `produce`, `work` and `run-suite` share when setting up a test.

use std::sync::Arc;

use crate::cli::OutArgs;
use crate::config::Config;
use crate::local::LocalInfo;
use crate::output::manifest::Role;
use crate::output::progress;
use crate::queue::{Backend, Queue, QueueKind};
use crate::samplers::system::ServerProcs;
use crate::workload::{Spec, StopRule};
use crate::Ctx;

/// A standalone `produce` (`Role::Produce`) or `work` test as the command line names it;
/// the caller fills in its plan, stop rule, output and warnings.
pub fn spec(ctx: &Ctx, kind: QueueKind, queue: Arc<dyn Queue>, out: &OutArgs, role: Role) -> Spec {
    let verb = if role == Role::Produce {
        "produce"
    } else {
        "work"
    };
    Spec {
        test: out.name.clone().unwrap_or_else(|| format!("{kind}_{verb}")),
        instance: out.instance.clone(),
        role,
        scenario: None,
        smoke: false,
        queue,
        cfg: ctx.cfg.clone(),
        produce: None,
        work: None,
        stop: StopRule::ProducerDone,
        output: None,
        progress: progress::Mode::detect(ctx.global.quiet),
        label: format!("{verb} {kind}"),
        local: ctx.local.clone(),
        server: server_procs(kind, &ctx.cfg, ctx.local.as_ref()),
        warnings: vec![],
        extra: Default::default(),
        sidecar: None,
        shutdown: ctx.shutdown.clone(),
    }
}

/// Which processes the system sampler counts as the server.
pub fn server_procs(kind: QueueKind, cfg: &Config, local: Option<&LocalInfo>) -> ServerProcs {
    match (kind.backend(), local) {
        (Backend::Postgresql, Some(l)) => ServerProcs::Postgres {
            postmaster: Some(l.postgres_pid),
        },
        (Backend::Valkey, Some(l)) => ServerProcs::Valkey {
            pid: Some(l.valkey_pid),
        },
        (Backend::Postgresql, None) if cfg.postgres.is_local() => {
            ServerProcs::Postgres { postmaster: None }
        }
        (Backend::Valkey, None) if cfg.valkey.is_local() => ServerProcs::Valkey { pid: None },
        _ => ServerProcs::Remote,
    }
}

/// The capacity warning, printed once (even with --quiet, which only silences
/// progress) and kept for the manifest.
pub fn capacity_warnings(cfg: &Config, rate: Option<f64>) -> Vec<String> {
    let Some(w) = rate.and_then(|r| cfg.benchmark.capacity_warning(r)) else {
        return vec![];
    };
    eprintln!("qbench: warning: {w}");
    vec![w]
}

/// Result file stem: TEST, TEST.INSTANCE, or TEST.producer[.INSTANCE].
pub fn stem(name: &str, role_suffix: Option<&str>, instance: Option<&str>) -> String {
    let mut s = name.to_string();
    for part in [role_suffix, instance].into_iter().flatten() {
        s.push('.');
        s.push_str(part);
    }
    s
}

pub fn ms(d: Option<f64>) -> String {
    d.map_or("-".into(), |v| format!("{v:.2}"))
}
