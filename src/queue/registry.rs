//! The registry of designs: `designs!` turns one line per design into [`QueueKind`],
//! its list, and the dispatch from a kind to the design's constant facts and `open`.

use super::Backend;

/// What every design states about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DesignInfo {
    /// The name on the command line and in every result file.
    pub name: &'static str,
    pub backend: Backend,
    /// The seed's test names start with this (`skip_locked_cold`, `valkey_cold`).
    pub test_prefix: &'static str,
    /// How a dead worker's job comes back.
    pub recovery: Recovery,
    /// One of the seed's four designs: `run-suite` runs them unless `--queues` names
    /// others (a design added later runs where it is named).
    pub seed: bool,
    /// Under a lease, whether a completion after the lease ran out is refused (the job
    /// is its new holder's). Unfenced, the first completion wins, late or not, and the
    /// new holder's is refused: the work is done twice, the job completed once.
    pub fenced: bool,
    /// The library and version whose protocol the design models (`pgmq 1.11.0`);
    /// `None` for a textbook design. `--queues libraries` runs these.
    pub models: Option<&'static str>,
    /// The library wakes its workers by LISTEN/NOTIFY unless told to poll (River): a
    /// `--wakeup poll` run is then not the library as it ships, and analyze says so.
    pub notifies_by_default: bool,
}

/// How a design gets a dead worker's job back: what the audit and the tests can expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// A lease (the visibility timeout) the reaper ends: the job is redelivered once it
    /// runs out, the delivery counted (`attempts`), and a completion after it refused.
    Lease,
    /// The claim lives in the worker's open transaction: its rollback returns the job
    /// as soon as the connection drops, and nothing counts the second delivery.
    Rollback,
    /// The worker's heartbeat (Procrastinate's): a job is never taken from a worker that
    /// still beats, however long it holds it; once the worker's heartbeat is older than
    /// the timeout, the reaper retries its jobs, the delivery counted.
    Heartbeat,
}

impl DesignInfo {
    /// A design whose test names start with its own name, recovered by a lease, run
    /// where it is named.
    pub const fn named(name: &'static str, backend: Backend) -> DesignInfo {
        DesignInfo {
            name,
            backend,
            test_prefix: name,
            recovery: Recovery::Lease,
            seed: false,
            fenced: true,
            models: None,
            notifies_by_default: false,
        }
    }

    /// A late completion is accepted (see [`DesignInfo::fenced`]).
    pub const fn unfenced(self) -> DesignInfo {
        DesignInfo {
            fenced: false,
            ..self
        }
    }

    /// The design models this library's protocol.
    pub const fn modelling(self, library: &'static str) -> DesignInfo {
        DesignInfo {
            models: Some(library),
            ..self
        }
    }

    /// The library's own default wakeup is LISTEN/NOTIFY.
    pub const fn notifying_by_default(self) -> DesignInfo {
        DesignInfo {
            notifies_by_default: true,
            ..self
        }
    }

    /// One of the seed's designs: part of run-suite's default matrix.
    pub const fn of_the_seed(self) -> DesignInfo {
        DesignInfo { seed: true, ..self }
    }

    /// The same, recovered another way.
    pub const fn recovered_by(self, recovery: Recovery) -> DesignInfo {
        DesignInfo { recovery, ..self }
    }
}

/// Which registered design a queue is; the registry implements it for every design.
pub trait Kind {
    fn kind(&self) -> super::QueueKind;
}

/// A queue design: one file under `queue/`, one line in the registry.
#[async_trait::async_trait]
pub trait Design: super::Queue + Sized + 'static {
    const INFO: DesignInfo;
    /// Connects to the servers the config names (checked at once).
    async fn open(cfg: &crate::config::Config) -> anyhow::Result<Self>;
}

macro_rules! designs {
    ($($variant:ident => $module:ident :: $ty:ident),+ $(,)?) => {
        $(pub mod $module;)+

        /// One of the registered designs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum QueueKind {
            $($variant),+
        }

        $(
            impl $crate::queue::registry::Kind for $module::$ty {
                fn kind(&self) -> QueueKind {
                    QueueKind::$variant
                }
            }
        )+

        impl QueueKind {
            /// Every design, in the registry's order.
            pub const ALL: &'static [QueueKind] = &[$(QueueKind::$variant),+];

            pub fn info(self) -> &'static $crate::queue::registry::DesignInfo {
                match self {
                    $(QueueKind::$variant => &<$module::$ty as $crate::queue::registry::Design>::INFO),+
                }
            }

            /// Opens this design against the servers the config names.
            pub async fn open(
                self,
                cfg: &$crate::config::Config,
            ) -> anyhow::Result<std::sync::Arc<dyn $crate::queue::Queue>> {
                Ok(match self {
                    $(QueueKind::$variant => std::sync::Arc::new(
                        <$module::$ty as $crate::queue::registry::Design>::open(cfg).await?,
                    )),+
                })
            }
        }
    };
}
pub(crate) use designs;
