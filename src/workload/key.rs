//! The workload a run measures, as the capacity files record it and as a default rate
//! looks for it (`format::workload`): the runners' side of that key.

use crate::config::Config;
use crate::format::workload::Workload;
use crate::queue::Queue;

/// The workload `queue` runs with `cfg`, in `tier` (the tier measured on the server).
pub fn of(queue: &dyn Queue, cfg: &Config, tier: &str) -> Workload {
    let b = &cfg.benchmark;
    Workload {
        queue: queue.kind().name().into(),
        options: Some(queue.options()),
        tier: tier.into(),
        wakeup: queue.server().wakeup().mode,
        poll_interval_ms: Some(b.poll_interval_ms),
        workers: Some(b.num_workers.get()),
        processing_ms: Some(b.job_processing_time_ms),
        job_size_bytes: Some(b.job_size_bytes),
        dequeue_batch: Some(b.dequeue_batch),
    }
}
