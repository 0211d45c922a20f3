//! What `produce`, `work` and `run-suite` share when setting up a test.

use crate::config::Config;
use crate::local::LocalInfo;
use crate::queue::{Backend, QueueKind};
use crate::samplers::system::ServerProcs;

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
