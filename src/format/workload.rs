//! A workload: what a capacity figure belongs to. An MST measured with 0 ms of work is
//! the design's ceiling; one measured with 20 workers × 10 ms is that workload's. A
//! sweep's MST annotates a test, sets a default rate or is reused only when every field
//! here matches; a field a file did not record never matches.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub queue: String,
    /// The design's own settings that change its capacity (`partitions=16`), as the
    /// design states them; empty when it has none.
    pub options: Option<String>,
    pub tier: String,
    /// poll, notify or block.
    pub wakeup: String,
    /// Between polls: part of a polling design's capacity, of no other.
    pub poll_interval_ms: Option<f64>,
    pub workers: Option<u32>,
    pub processing_ms: Option<f64>,
    pub job_size_bytes: Option<u32>,
    pub dequeue_batch: Option<u32>,
}

impl Workload {
    /// A sweep with no simulated work measures the design, not a workload.
    pub fn is_design_ceiling(&self) -> bool {
        self.processing_ms == Some(0.0)
    }

    /// The workers' own ceiling: workers × 1000 / processing_ms (none without work).
    pub fn nominal_ceiling(&self) -> Option<f64> {
        match (self.workers, self.processing_ms) {
            (Some(w), Some(ms)) if ms > 0.0 => Some(f64::from(w) * 1000.0 / ms),
            _ => None,
        }
    }

    /// The same load on two designs (tier, workers, processing time, payload, batch all
    /// recorded and equal): their capacities compare like with like.
    pub fn same_load(&self, other: &Workload) -> bool {
        self.tier == other.tier
            && self.workers.is_some()
            && self.processing_ms.is_some()
            && self.job_size_bytes.is_some()
            && self.dequeue_batch.is_some()
            && (
                self.workers,
                self.processing_ms,
                self.job_size_bytes,
                self.dequeue_batch,
            ) == (
                other.workers,
                other.processing_ms,
                other.job_size_bytes,
                other.dequeue_batch,
            )
    }

    /// What differs between two workloads, in words (`workers 20 ≠ 5`); empty when
    /// they are the same. A field either side did not record counts as different.
    pub fn differences(&self, other: &Workload) -> Vec<String> {
        let mut out = vec![];
        let mut check = |name: &str, a: String, b: String, known: bool| {
            if !known || a != b {
                out.push(format!("{name} {a} ≠ {b}"));
            }
        };
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "not recorded".into());
        let f = |v: Option<f64>| v.map_or("not recorded".into(), |x| format!("{x}"));
        let u = |v: Option<u32>| v.map_or("not recorded".into(), |x| x.to_string());
        check("design", self.queue.clone(), other.queue.clone(), true);
        let opts = self.options.is_some() && other.options.is_some();
        check(
            "design options",
            show(&self.options),
            show(&other.options),
            opts,
        );
        check("tier", self.tier.clone(), other.tier.clone(), true);
        check("wakeup", self.wakeup.clone(), other.wakeup.clone(), true);
        if self.wakeup == "poll" && other.wakeup == "poll" {
            let known = self.poll_interval_ms.is_some() && other.poll_interval_ms.is_some();
            check(
                "poll interval ms",
                f(self.poll_interval_ms),
                f(other.poll_interval_ms),
                known,
            );
        }
        let known = self.workers.is_some() && other.workers.is_some();
        check("workers", u(self.workers), u(other.workers), known);
        let known = self.processing_ms.is_some() && other.processing_ms.is_some();
        check(
            "processing ms",
            f(self.processing_ms),
            f(other.processing_ms),
            known,
        );
        let known = self.job_size_bytes.is_some() && other.job_size_bytes.is_some();
        check(
            "payload bytes",
            u(self.job_size_bytes),
            u(other.job_size_bytes),
            known,
        );
        let known = self.dequeue_batch.is_some() && other.dequeue_batch.is_some();
        check(
            "dequeue batch",
            u(self.dequeue_batch),
            u(other.dequeue_batch),
            known,
        );
        out
    }

    /// `skip_locked (strict, poll every 10 ms, 20 workers × 10 ms, 100 B, batch 1)`.
    pub fn describe(&self) -> String {
        let mut parts = vec![self.tier.clone()];
        match (self.wakeup.as_str(), self.poll_interval_ms) {
            ("poll", Some(p)) => parts.push(format!("poll every {p} ms")),
            (w, _) => parts.push(w.to_string()),
        }
        if let Some(o) = self.options.as_ref().filter(|o| !o.is_empty()) {
            parts.push(o.clone());
        }
        if let (Some(w), Some(ms)) = (self.workers, self.processing_ms) {
            parts.push(format!("{w} workers × {ms} ms"));
        }
        if let Some(b) = self.job_size_bytes {
            parts.push(format!("{b} B"));
        }
        if let Some(b) = self.dequeue_batch {
            parts.push(format!("batch {b}"));
        }
        format!("{} ({})", self.queue, parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w() -> Workload {
        Workload {
            queue: "skip_locked".into(),
            options: Some(String::new()),
            tier: "strict".into(),
            wakeup: "poll".into(),
            poll_interval_ms: Some(10.0),
            workers: Some(20),
            processing_ms: Some(10.0),
            job_size_bytes: Some(100),
            dequeue_batch: Some(1),
        }
    }

    #[test]
    fn every_field_must_match_and_unrecorded_never_does() {
        assert!(w().differences(&w()).is_empty());
        let ceiling = Workload {
            processing_ms: Some(0.0),
            ..w()
        };
        assert!(ceiling.is_design_ceiling());
        assert_eq!(w().differences(&ceiling), vec!["processing ms 10 ≠ 0"]);
        let old = Workload {
            dequeue_batch: None,
            ..w()
        };
        assert_eq!(
            w().differences(&old),
            vec!["dequeue batch 1 ≠ not recorded"]
        );
        let notify = Workload {
            wakeup: "notify".into(),
            poll_interval_ms: Some(50.0),
            ..w()
        };
        assert_eq!(w().differences(&notify), vec!["wakeup poll ≠ notify"]);
        assert_eq!(w().nominal_ceiling(), Some(2000.0));
        assert_eq!(ceiling.nominal_ceiling(), None);
    }
}
