//! `[benchmark]`: every setting written once, with its doc comment. The one macro below
//! makes the effective struct, the optional layer (the TOML file and the command-line
//! flags, so `--help` shows the same comment), the merge, the validation, and the lines
//! of `qbench.example.toml` (a test checks that the file says the same).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::workers::Workers;
use crate::error::UsageError;
use crate::format::durability::Tier;

/// Offered load: jobs per second, or `max` (as fast as the server takes them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    Fixed(f64),
    Max,
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Rate, String> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Rate::Max);
        }
        s.parse::<f64>()
            .map(Rate::Fixed)
            .map_err(|_| format!("{s:?} is neither a number of jobs/s nor `max`"))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Fixed(r) => write!(f, "{r}"),
            Rate::Max => f.write_str("max"),
        }
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Rate::Fixed(r) => s.serialize_f64(*r),
            Rate::Max => s.serialize_str("max"),
        }
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rate, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of jobs/s or \"max\"")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Rate, E> {
                Ok(Rate::Fixed(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Rate, E> {
                Ok(Rate::Fixed(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Rate, E> {
                Ok(Rate::Fixed(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Rate, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// One setting as `qbench.example.toml` shows it.
#[derive(Debug, Clone)]
pub struct Setting {
    pub key: &'static str,
    pub flag: &'static str,
    pub doc: &'static [&'static str],
}

type Check<T> = Box<dyn Fn(&str, &T) -> Result<(), UsageError>>;

fn positive(unit: &'static str) -> Check<f64> {
    Box::new(move |key, v| {
        if v.is_finite() && *v > 0.0 {
            Ok(())
        } else {
            Err(UsageError::new(format!(
                "{key} = {v} is invalid: it must be a number greater than 0 ({unit})"
            )))
        }
    })
}

fn non_negative(unit: &'static str) -> Check<f64> {
    Box::new(move |key, v| {
        if v.is_finite() && *v >= 0.0 {
            Ok(())
        } else {
            Err(UsageError::new(format!(
                "{key} = {v} is invalid: it must be a number of at least 0 ({unit})"
            )))
        }
    })
}

fn between(lo: u32, hi: u32) -> Check<u32> {
    Box::new(move |key, v| in_range(key, *v, lo, hi))
}

pub(crate) fn in_range<T: PartialOrd + fmt::Display + Copy>(
    key: &str,
    v: T,
    lo: T,
    hi: T,
) -> Result<(), UsageError> {
    if v >= lo && v <= hi {
        Ok(())
    } else {
        Err(UsageError::new(format!(
            "{key} = {v} is invalid: it must be between {lo} and {hi}"
        )))
    }
}

/// How idle PostgreSQL workers learn of new jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Wakeup {
    Poll,
    Notify,
}

impl Wakeup {
    pub fn name(self) -> &'static str {
        match self {
            Wakeup::Poll => "poll",
            Wakeup::Notify => "notify",
        }
    }
}

/// One wakeup mode, or (run-suite only) several, each run as its own test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wakeups(Vec<Wakeup>);

impl Wakeups {
    pub fn one(w: Wakeup) -> Wakeups {
        Wakeups(vec![w])
    }

    pub fn modes(&self) -> &[Wakeup] {
        &self.0
    }

    /// The mode of a command that runs one; a list is refused, naming the key.
    pub fn single(&self) -> Result<Wakeup, UsageError> {
        match self.0[..] {
            [w] => Ok(w),
            _ => Err(UsageError::new(format!(
                "benchmark.wakeup = \"{self}\": produce and work run one wakeup mode; only run-suite takes a list"
            ))),
        }
    }
}

impl FromStr for Wakeups {
    type Err = String;
    fn from_str(s: &str) -> Result<Wakeups, String> {
        let mut out = vec![];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let w = match part {
                "poll" => Wakeup::Poll,
                "notify" => Wakeup::Notify,
                other => {
                    return Err(format!(
                        "unknown wakeup {other:?}: choose poll, notify, or (run-suite) poll,notify"
                    ))
                }
            };
            if !out.contains(&w) {
                out.push(w);
            }
        }
        if out.is_empty() {
            return Err("no wakeup mode given: poll, notify, or poll,notify".into());
        }
        Ok(Wakeups(out))
    }
}

impl fmt::Display for Wakeups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|w| w.name()).collect();
        f.write_str(&names.join(","))
    }
}

impl Serialize for Wakeups {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Wakeups {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Wakeups, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The durability tier asked for, the same on both sides; the tier each side actually
/// ran in is read from its server and recorded ([`crate::format::durability::Tier`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DurabilityChoice {
    Strict,
    Relaxed,
    Volatile,
    /// The seed's setup: PostgreSQL strict against Valkey volatile.
    Seed,
}

impl DurabilityChoice {
    pub fn name(self) -> &'static str {
        match self {
            DurabilityChoice::Strict => "strict",
            DurabilityChoice::Relaxed => "relaxed",
            DurabilityChoice::Volatile => "volatile",
            DurabilityChoice::Seed => "seed",
        }
    }

    /// The tier PostgreSQL is to run in.
    pub fn postgres(self) -> Tier {
        match self {
            DurabilityChoice::Strict | DurabilityChoice::Seed => Tier::Strict,
            DurabilityChoice::Relaxed => Tier::Relaxed,
            DurabilityChoice::Volatile => Tier::Volatile,
        }
    }

    /// The tier Valkey is to run in.
    pub fn valkey(self) -> Tier {
        match self {
            DurabilityChoice::Strict => Tier::Strict,
            DurabilityChoice::Relaxed => Tier::Relaxed,
            DurabilityChoice::Volatile | DurabilityChoice::Seed => Tier::Volatile,
        }
    }
}

/// What pgmq's workers do with a finished message (the pgmq design's option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PgmqCompletion {
    /// Moved to the archive table (pgmq's `archive`), kept forever.
    Archive,
    /// Deleted (pgmq's `delete`): no record kept.
    Delete,
}

impl PgmqCompletion {
    pub fn name(self) -> &'static str {
        match self {
            PgmqCompletion::Archive => "archive",
            PgmqCompletion::Delete => "delete",
        }
    }
}

/// Whether the graphile_worker design keeps qbench's record of the jobs it completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum GraphileRecord {
    /// The completion's delete also inserts the job's seq into qbench's table: the
    /// audit and crash trials can tell a lost job from a completed one.
    On,
    /// graphile-worker's delete alone: nothing is kept.
    Off,
}

impl GraphileRecord {
    pub fn name(self) -> &'static str {
        match self {
            GraphileRecord::On => "on",
            GraphileRecord::Off => "off",
        }
    }
}

/// When the procrastinate design's worker deletes a finished job (`delete_jobs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ProcrastinateDelete {
    Never,
    Successful,
    Always,
}

impl ProcrastinateDelete {
    pub fn name(self) -> &'static str {
        match self {
            ProcrastinateDelete::Never => "never",
            ProcrastinateDelete::Successful => "successful",
            ProcrastinateDelete::Always => "always",
        }
    }
}

/// A library option that is on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum OnOff {
    On,
    Off,
}

/// -1 (off) or a number of at least 0.
fn off_or_non_negative(unit: &'static str) -> Check<f64> {
    Box::new(move |key, v| {
        if *v == -1.0 || (v.is_finite() && *v >= 0.0) {
            Ok(())
        } else {
            Err(UsageError::new(format!(
                "{key} = {v} is invalid: it must be -1 (off) or a number of at least 0 ({unit})"
            )))
        }
    })
}

fn any<T>() -> Check<T> {
    Box::new(|_, _| Ok(()))
}

fn workers() -> Check<Workers> {
    Box::new(|key, v| v.check(key))
}

fn rate() -> Check<Rate> {
    Box::new(|key, v| match v {
        Rate::Max => Ok(()),
        Rate::Fixed(r) => positive("jobs/s, or \"max\"")(key, r),
    })
}

macro_rules! benchmark_settings {
    ($(
        $(#[doc = $doc:literal])+
        $key:ident : $ty:ty = $default:expr, flag $flag:literal $value:literal, check $check:expr;
    )+) => {
        /// The effective `[benchmark]` settings.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct Benchmark {
            $( $(#[doc = $doc])+ pub $key: $ty, )+
        }

        impl Default for Benchmark {
            fn default() -> Self {
                Self { $( $key: $default, )+ }
            }
        }

        /// The same settings, each optional: one layer of the config (the TOML file's
        /// `[benchmark]`, or the command line's flags). `None` leaves the layer below.
        #[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
        #[serde(deny_unknown_fields)]
        pub struct BenchmarkLayer {
            $(
                $(#[doc = $doc])+
                #[arg(long = $flag, value_name = $value, global = true)]
                pub $key: Option<$ty>,
            )+
        }

        impl Benchmark {
            /// Applies a layer; `set` learns which keys it set.
            pub fn apply(&mut self, layer: &BenchmarkLayer, set: &mut BTreeSet<&'static str>) {
                $(
                    if let Some(v) = &layer.$key {
                        self.$key = v.clone();
                        set.insert(stringify!($key));
                    }
                )+
            }

            /// Each setting's own range; the message names the key.
            pub fn validate_each(&self) -> Result<(), UsageError> {
                $( ($check)(concat!("benchmark.", stringify!($key)), &self.$key)?; )+
                Ok(())
            }

            /// Every setting in file order, for `qbench.example.toml`.
            pub fn settings() -> Vec<Setting> {
                vec![$( Setting { key: stringify!($key), flag: $flag, doc: &[$($doc),+] }, )+]
            }
        }
    };
}

benchmark_settings! {
    /// Offered load in jobs per second, or "max" (produce only: as fast as the server
    /// takes them, closed loop). Producers are open loop: job i is due at t0 + i/rate.
    production_rate: Rate = Rate::Fixed(1000.0), flag "rate" "R|max", check rate();
    /// How long the producer offers load, in seconds.
    production_duration: f64 = 180.0, flag "duration" "S", check positive("s");
    /// Concurrent workers, each on its own connection.
    /// `sweep` takes a list (1,2,4,8): each count's burn-down, for the scaling fit.
    num_workers: Workers = Workers::one(20), flag "workers" "W", check workers();
    /// Payload bytes per job.
    job_size_bytes: u32 = 512, flag "job-size" "BYTES", check between(1, 1 << 20);
    /// Simulated work per job, a sleep in milliseconds; 0 means none. Worker capacity is
    /// about num_workers * 1000 / job_processing_time_ms jobs/s; qbench warns above it.
    job_processing_time_ms: f64 = 10.0, flag "processing-ms" "P", check non_negative("ms");
    /// Warm scenario: seconds of load offered before measuring starts (thrown away).
    warmup_duration: f64 = 60.0, flag "warmup-duration" "S", check non_negative("s");
    /// Warm scenario: the warmup's offered load, jobs per second.
    warmup_rate: f64 = 1000.0, flag "warmup-rate" "R", check positive("jobs/s");
    /// Child tables of the partitioned design, 1-256.
    partitions: u32 = 16, flag "partitions" "N", check between(1, 256);
    /// Jobs a worker claims per round trip.
    dequeue_batch: u32 = 1, flag "dequeue-batch" "N", check between(1, 10_000);
    /// Seconds a claimed job may stay unfinished before it is handed to another worker
    /// (skip_locked, partitioned, valkey_streams; delete_returning needs no lease).
    visibility_timeout_s: f64 = 30.0, flag "visibility-timeout" "S", check positive("s");
    /// Connections the producer spreads its batches over.
    producer_connections: u32 = 4, flag "producer-connections" "N", check between(1, 256);
    /// PostgreSQL workers sleep this long after finding the queue empty, milliseconds.
    poll_interval_ms: f64 = 10.0, flag "poll-interval" "MS", check positive("ms");
    /// After producing, wait at most this long for the queue to drain, seconds.
    drain_timeout_s: f64 = 120.0, flag "drain-timeout" "S", check positive("s");
    /// How idle PostgreSQL workers learn of new jobs: "poll" (claim again after
    /// poll_interval_ms) or "notify" (each enqueue NOTIFYs once per batch; workers LISTEN
    /// on one connection per process, and poll every 10 × poll_interval_ms in case a
    /// notification is missed). run-suite takes "poll,notify" and runs both. Valkey's
    /// claim blocks in XREADGROUP whatever this says.
    wakeup: Wakeups = Wakeups::one(Wakeup::Poll), flag "wakeup" "poll|notify", check any();
    /// What a server crash may lose, the same on both sides. "strict": nothing
    /// acknowledged (PostgreSQL fsync and synchronous_commit on; Valkey appendonly yes,
    /// appendfsync always). "relaxed": the last moments (qbench's sessions
    /// synchronous_commit = off; appendfsync everysec). "volatile": everything (UNLOGGED
    /// queue tables; Valkey with no AOF and no RDB). "seed": the seed's mix, PostgreSQL
    /// strict against Valkey volatile. --local servers start in the tier; other servers
    /// are checked against it. Strict is the default: a job queue that loses
    /// acknowledged jobs is rarely acceptable.
    durability: DurabilityChoice = DurabilityChoice::Strict, flag "durability" "TIER", check any();
    /// The pgmq design's completion: "archive" (pgmq's archive: the message moves to
    /// the archive table, a record kept) or "delete" (pgmq's delete: none kept). A
    /// delete run is the variant `pgmq+delete` in the run tables and findings.
    pgmq_completion: PgmqCompletion = PgmqCompletion::Archive, flag "pgmq-completion" "archive|delete", check any();
    /// The river design's FetchCooldown, ms (River's default 100): a process fetches at
    /// most once per cooldown, up to its free worker slots, so its workers take at most
    /// num_workers jobs per cooldown. Not the default: the variant `river+cooldown=…ms`.
    river_fetch_cooldown_ms: f64 = 100.0, flag "river-fetch-cooldown" "MS", check positive("ms");
    /// The river design's FetchPollInterval, ms (River's default 1000): how often an idle
    /// process fetches when no insert notification wakes it (--wakeup poll: River's
    /// PollOnly mode). At least the cooldown.
    river_fetch_poll_interval_ms: f64 = 1000.0, flag "river-fetch-poll-interval" "MS", check positive("ms");
    /// The river design's RescueStuckJobsAfter, seconds (River's default 3600): a job
    /// running longer is rescued (made retryable) by the leader's rescuer.
    river_rescue_after_s: f64 = 3600.0, flag "river-rescue-after" "S", check positive("s");
    /// The graphile_worker design's pollInterval, ms (graphile-worker's default 2000): how
    /// often an idle worker claims again when no `jobs:insert` notification wakes it
    /// (with --wakeup poll, its only way to learn of jobs; graphile-worker always listens).
    graphile_poll_interval_ms: f64 = 2000.0, flag "graphile-poll-interval" "MS", check positive("ms");
    /// The graphile_worker design's completeJobBatchDelay, ms (graphile-worker's default
    /// -1: off, one DELETE per job): at 0 or more, the completions handed over within
    /// that long are deleted in one statement. Not the default: the variant `graphile_worker+batch=…ms`.
    graphile_complete_job_batch_delay_ms: f64 = -1.0, flag "graphile-complete-batch-delay" "MS", check off_or_non_negative("ms");
    /// The graphile_worker design's maxPoolSize (graphile-worker's default 10): the
    /// connections a work process's workers share for claims and completions, the
    /// LISTEN connection among them. graphile-worker warns when it is below the
    /// concurrency. Not the default: the variant `graphile_worker+pool=N`.
    graphile_max_pool_size: u32 = 10, flag "graphile-max-pool-size" "N", check between(2, 1000);
    /// The graphile_worker design's stale-lock age, seconds (graphile-worker's fixed 4
    /// hours, written into its SQL): a job locked longer is unlocked by the next sweep.
    graphile_stale_lock_after_s: f64 = 14400.0, flag "graphile-stale-lock-after" "S", check positive("s");
    /// The graphile_worker design's minResetLockedInterval, seconds (graphile-worker's
    /// 480): a process sweeps stale locks at a random interval between this and the
    /// maximum, the first time within min(60 s, the maximum).
    graphile_min_reset_locked_interval_s: f64 = 480.0, flag "graphile-min-reset-locked-interval" "S", check positive("s");
    /// The graphile_worker design's maxResetLockedInterval, seconds (graphile-worker's 600).
    graphile_max_reset_locked_interval_s: f64 = 600.0, flag "graphile-max-reset-locked-interval" "S", check positive("s");
    /// Whether the graphile_worker design's completion also records the job in a table of
    /// qbench's ("on", the default: the audit and crash trials then tell a lost job from
    /// a completed one) or deletes it and keeps nothing, as graphile-worker does ("off":
    /// the variant `graphile_worker+norecord`, the protocol's cost alone).
    graphile_completion_record: GraphileRecord = GraphileRecord::On, flag "graphile-completion-record" "on|off", check any();
    /// The pg_boss design's pollingIntervalSeconds, in ms (pg-boss's default 2000, its
    /// floor 500): each worker fetches, works what it got, completes it, then sleeps
    /// until this long after its fetch began, found jobs or not. Its workers take at most
    /// workers × dequeue_batch jobs per interval. Below 500 is qbench's, for tests (pg-boss
    /// refuses it). Not the default: the variant `pg_boss+poll=…ms`.
    pg_boss_polling_interval_ms: f64 = 2000.0, flag "pg-boss-polling-interval" "MS", check positive("ms");
    /// The pg_boss design's burstWhenBatchFull: a fetch that came back full (dequeue_batch
    /// jobs, more than one) is followed by the next at once. Not the default: the variant
    /// `pg_boss+burst`.
    pg_boss_burst_when_batch_full: OnOff = OnOff::Off, flag "pg-boss-burst-when-batch-full" "on|off", check any();
    /// The pg_boss design's queue option `partition`: the queue in a table of its own
    /// (a partition of the job table) rather than the shared job_common. Not the default:
    /// the variant `pg_boss+partition`.
    pg_boss_partition: OnOff = OnOff::Off, flag "pg-boss-partition" "on|off", check any();
    /// The pg_boss design's `max`, the connections of a process's pool (pg-boss's default
    /// 10), shared by its workers and its maintenance. Not the default: `pg_boss+max=N`.
    pg_boss_max: u32 = 10, flag "pg-boss-max" "N", check between(1, 1000);
    /// The pg_boss design's expireInSeconds (pg-boss's default 900): an active job older
    /// than this is failed by the monitor and retried (its recovery of a dead worker's job).
    pg_boss_expire_s: u32 = 900, flag "pg-boss-expire" "S", check between(1, 86_400);
    /// The pg_boss design's superviseIntervalSeconds and monitorIntervalSeconds (pg-boss's
    /// 60): how often a process tries to win the queue's monitoring (counts, expiry).
    pg_boss_monitor_interval_s: f64 = 60.0, flag "pg-boss-monitor-interval" "S", check positive("s");
    /// The pg_boss design's deleteAfterSeconds (pg-boss's 604800, 7 days): how long a
    /// completed job is kept before maintenance deletes it; 0 keeps it for good.
    pg_boss_deletion_s: u32 = 604_800, flag "pg-boss-deletion" "S", check between(0, 31_536_000);
    /// The pg_boss design's maintenanceIntervalSeconds (pg-boss's 86400): how often a
    /// process tries to win the deletion of expired jobs.
    pg_boss_maintenance_interval_s: f64 = 86_400.0, flag "pg-boss-maintenance-interval" "S", check positive("s");
    /// The procrastinate design's worker `delete_jobs`: "never" (Procrastinate's default:
    /// a finished job stays, with its events), "successful" or "always" (deleted at
    /// finish, its events with it). Not the default: the variant `procrastinate+delete=…`,
    /// whose queue keeps no record of its completions.
    procrastinate_delete_jobs: ProcrastinateDelete = ProcrastinateDelete::Never, flag "procrastinate-delete-jobs" "never|successful|always", check any();
    /// The procrastinate design's fetch_job_polling_interval, seconds (Procrastinate's 5):
    /// how long an idle worker waits for a notification before it fetches anyway (with
    /// --wakeup poll, its only way to learn of jobs).
    procrastinate_fetch_job_polling_interval_s: f64 = 5.0, flag "procrastinate-fetch-polling-interval" "S", check positive("s");
    /// The procrastinate design's connection pool, per process (psycopg_pool's default
    /// size 4, which Procrastinate's connector keeps): the workers' fetches, finishes and
    /// heartbeats share it. Not the default: the variant `procrastinate+pool=N`.
    procrastinate_pool_size: u32 = 4, flag "procrastinate-pool-size" "N", check between(1, 1000);
    /// The procrastinate design's update_heartbeat_interval, seconds (Procrastinate's 10).
    procrastinate_update_heartbeat_interval_s: f64 = 10.0, flag "procrastinate-heartbeat-interval" "S", check positive("s");
    /// The procrastinate design's abort_job_polling_interval, seconds (Procrastinate's 5):
    /// while a job runs, its worker asks this often which jobs to abort.
    procrastinate_abort_job_polling_interval_s: f64 = 5.0, flag "procrastinate-abort-polling-interval" "S", check positive("s");
    /// The procrastinate design's stalled_worker_timeout, seconds (Procrastinate's 30): a
    /// worker whose heartbeat is older is stalled, and its running jobs are retried.
    procrastinate_stalled_worker_timeout_s: f64 = 30.0, flag "procrastinate-stalled-worker-timeout" "S", check positive("s");
    /// How often the procrastinate design retries stalled jobs, seconds (600: the
    /// every-10-minutes task of Procrastinate's documented recipe; Procrastinate itself
    /// never recovers a dead worker's jobs).
    procrastinate_retry_stalled_interval_s: f64 = 600.0, flag "procrastinate-retry-stalled-interval" "S", check positive("s");
}

impl Benchmark {
    /// Every design's recovery timeout set to `s` seconds: the visibility timeout and the
    /// libraries' own (River's RescueStuckJobsAfter). Tests recover in seconds; benchmarks
    /// keep each library's default.
    pub fn recover_after(&mut self, s: f64) {
        self.visibility_timeout_s = s;
        self.river_rescue_after_s = s;
        self.graphile_stale_lock_after_s = s;
        self.graphile_min_reset_locked_interval_s = s / 2.0;
        self.graphile_max_reset_locked_interval_s = s;
        // pg-boss counts expiry in whole seconds; its monitor looks every interval.
        self.pg_boss_expire_s = s.ceil().max(1.0) as u32;
        self.pg_boss_monitor_interval_s = s;
        // A heartbeat timeout shorter than a loaded machine's stalls would take jobs from
        // live workers: at least 2 s, beaten four times within it.
        self.procrastinate_stalled_worker_timeout_s = s.max(2.0);
        self.procrastinate_update_heartbeat_interval_s = s.max(2.0) / 4.0;
        self.procrastinate_retry_stalled_interval_s = s;
    }

    /// The offered rate in jobs/s; `None` for `max`.
    pub fn rate_jobs_s(&self) -> Option<f64> {
        match self.production_rate {
            Rate::Fixed(r) => Some(r),
            Rate::Max => None,
        }
    }

    /// Jobs per second the workers can take at most: workers × 1000 / processing ms.
    /// `None` when there is no simulated work (capacity is then the server's).
    pub fn capacity_jobs_s(&self) -> Option<f64> {
        (self.job_processing_time_ms > 0.0)
            .then(|| f64::from(self.num_workers.get()) * 1000.0 / self.job_processing_time_ms)
    }

    /// The plain-words warning owed when the offered rate exceeds capacity.
    pub fn capacity_warning(&self, rate: f64) -> Option<String> {
        let cap = self.capacity_jobs_s()?;
        (rate > cap).then(|| {
            format!(
                "offered load {rate:.0} jobs/s exceeds worker capacity {cap:.0} jobs/s \
                 ({} workers × 1000 / {} ms): the queue will grow without bound and latency \
                 will measure the test's length, not the queue",
                self.num_workers, self.job_processing_time_ms
            )
        })
    }

    /// A worker holds a whole batch while it works through it: a lease that runs out
    /// first hands every batch to a second worker (work done twice, by design).
    pub fn validate_lease(&self) -> Result<(), UsageError> {
        if self.river_fetch_poll_interval_ms < self.river_fetch_cooldown_ms {
            return Err(UsageError::new(format!(
                "benchmark.river_fetch_poll_interval_ms = {} is shorter than river_fetch_cooldown_ms = {}: River requires the poll interval to be at least the cooldown",
                self.river_fetch_poll_interval_ms, self.river_fetch_cooldown_ms
            )));
        }
        if self.graphile_max_reset_locked_interval_s < self.graphile_min_reset_locked_interval_s {
            return Err(UsageError::new(format!(
                "benchmark.graphile_max_reset_locked_interval_s = {} is shorter than graphile_min_reset_locked_interval_s = {}: the sweep's interval is drawn between the two",
                self.graphile_max_reset_locked_interval_s, self.graphile_min_reset_locked_interval_s
            )));
        }
        if self.pg_boss_burst_when_batch_full == OnOff::On && self.dequeue_batch < 2 {
            return Err(UsageError::new(
                "benchmark.pg_boss_burst_when_batch_full = on needs dequeue_batch of 2 or more: pg-boss ignores it at a batch size of 1, so the run would not be the variant it names",
            ));
        }
        // Each job's sleep may overrun by a timer tick (1 ms), and the claim and the
        // completion are round trips: 100 ms covers them on any sane network.
        let batch_s =
            f64::from(self.dequeue_batch) * (self.job_processing_time_ms + 1.0) / 1000.0 + 0.1;
        if self.visibility_timeout_s > batch_s {
            return Ok(());
        }
        Err(UsageError::new(format!(
            "benchmark.visibility_timeout_s = {} is not longer than one batch's work ({} jobs × ({} ms + 1 ms timer) + 0.1 s of round trips = {batch_s:.2} s): every lease would run out before its batch is done; raise it above {batch_s:.2} s or lower dequeue_batch",
            self.visibility_timeout_s, self.dequeue_batch, self.job_processing_time_ms
        )))
    }

    /// The `[benchmark]` section of `qbench.example.toml`, from the doc comments above.
    pub fn example_section(&self) -> String {
        let values = toml::Value::try_from(self).ok();
        let mut out = String::from("[benchmark]\n");
        for s in Benchmark::settings() {
            for line in s.doc {
                out.push('#');
                if !line.is_empty() {
                    out.push_str(line);
                }
                out.push('\n');
            }
            out.push_str(&format!("# (flag: --{})\n", s.flag));
            let v = values
                .as_ref()
                .and_then(|t| t.get(s.key))
                .map_or_else(String::new, ToString::to_string);
            out.push_str(&format!("{} = {v}\n", s.key));
        }
        out
    }
}
