//! The MST search: a geometric ramp until a step fails, then bisection between the last
//! passing and the first failing rate until the bracket is within the precision.
//!
//! OpenMessaging Benchmark's rate search shows what goes wrong without guards: it stuck
//! at 0, and it settled above what the producers could send. Here rates are whole jobs
//! per second at or above a floor, every step moves the bracket, and the number of steps
//! is bounded, so the search cannot stall, loop or report 0.

/// How the search moves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchPlan {
    pub start: f64,
    /// The ramp's factor (> 1).
    pub factor: f64,
    /// The bracket is narrow enough when (first fail − last pass) ≤ precision × last pass.
    pub precision: f64,
    /// No step runs below this (a step's p99 needs enough jobs to mean something).
    pub floor: f64,
    /// No step runs above this: the search ends there with no failure found.
    pub ceiling: f64,
}

/// What the search decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Run a step at this rate.
    Run(f64),
    /// The bracket is within the precision: MST is `pass`, and `fail` failed.
    Found { pass: f64, fail: f64 },
    /// The first step failed: there is no rate known to pass.
    FirstStepFailed { fail: f64 },
    /// Every step passed up to the ceiling: MST is at least `pass`.
    NoFailure { pass: f64 },
}

/// The bound on steps: a ramp from the floor to the ceiling at the smallest factor, then
/// a bisection of a bracket of whole jobs/s, is far below it.
const MAX_STEPS: usize = 200;

#[derive(Debug, Clone)]
pub struct Search {
    plan: SearchPlan,
    pass: Option<f64>,
    fail: Option<f64>,
    steps: usize,
}

impl Search {
    pub fn new(plan: SearchPlan) -> Search {
        Search {
            plan,
            pass: None,
            fail: None,
            steps: 0,
        }
    }

    /// Records a step's verdict at `rate` (the rate [`Search::next`] asked for).
    pub fn record(&mut self, rate: f64, passed: bool) {
        self.steps += 1;
        if passed {
            self.pass = Some(self.pass.map_or(rate, |p| p.max(rate)));
        } else {
            self.fail = Some(self.fail.map_or(rate, |f| f.min(rate)));
        }
    }

    /// The next step, or the result.
    pub fn next(&self) -> Next {
        let p = &self.plan;
        let start = p.start.max(p.floor).min(p.ceiling).round();
        match (self.pass, self.fail) {
            (None, None) => Next::Run(start),
            (None, Some(fail)) => Next::FirstStepFailed { fail },
            (Some(pass), None) => {
                if pass >= p.ceiling || self.steps >= MAX_STEPS {
                    return Next::NoFailure { pass };
                }
                // At least one job/s more, so a tiny start still climbs.
                Next::Run((pass * p.factor).round().max(pass + 1.0).min(p.ceiling))
            }
            (Some(pass), Some(fail)) => {
                let mid = ((pass + fail) / 2.0).round();
                let narrow = fail - pass <= (p.precision * pass).max(1.0);
                // A midpoint equal to either end (a bracket of one job/s) cannot move it.
                if narrow || mid <= pass || mid >= fail || self.steps >= MAX_STEPS {
                    Next::Found { pass, fail }
                } else {
                    Next::Run(mid)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> SearchPlan {
        SearchPlan {
            start: 100.0,
            factor: 1.5,
            precision: 0.03,
            floor: 20.0,
            ceiling: 1e6,
        }
    }

    /// Runs the search against a rule that passes at or below `capacity`.
    fn run(plan: SearchPlan, passes: impl Fn(f64) -> bool) -> (Next, Vec<f64>) {
        let mut s = Search::new(plan);
        let mut rates = vec![];
        loop {
            match s.next() {
                Next::Run(r) => {
                    assert!(!rates.contains(&r), "rate {r} run twice: {rates:?}");
                    assert!(r >= plan.floor && r <= plan.ceiling, "{r}");
                    rates.push(r);
                    s.record(r, passes(r));
                }
                done => return (done, rates),
            }
            assert!(rates.len() < MAX_STEPS, "the search did not end");
        }
    }

    #[test]
    fn ramps_then_bisects_to_the_precision() {
        let (done, rates) = run(plan(), |r| r <= 3_210.0);
        let Next::Found { pass, fail } = done else {
            panic!("{done:?}")
        };
        assert!(pass <= 3_210.0 && fail > 3_210.0, "{pass} {fail}");
        assert!((fail - pass) / pass <= 0.03, "{pass} {fail}");
        // The ramp: 100, 150, 225, …, then bisection.
        assert_eq!(&rates[..3], &[100.0, 150.0, 225.0]);
        assert!(rates.len() < 20, "{rates:?}");
    }

    #[test]
    fn a_failing_first_step_is_not_an_mst_of_zero() {
        let (done, rates) = run(plan(), |_| false);
        assert_eq!(done, Next::FirstStepFailed { fail: 100.0 });
        assert_eq!(rates, vec![100.0]);
    }

    #[test]
    fn a_rate_below_the_floor_starts_at_the_floor_and_climbs() {
        let p = SearchPlan {
            start: 0.0,
            floor: 1.0,
            factor: 1.01,
            ..plan()
        };
        let (done, rates) = run(p, |r| r <= 4.0);
        assert_eq!(rates[0], 1.0);
        assert_eq!(
            done,
            Next::Found {
                pass: 4.0,
                fail: 5.0
            }
        );
    }

    #[test]
    fn stops_at_the_ceiling_without_a_failure() {
        let p = SearchPlan {
            ceiling: 1_000.0,
            ..plan()
        };
        let (done, rates) = run(p, |_| true);
        assert_eq!(done, Next::NoFailure { pass: 1_000.0 });
        assert_eq!(rates.last(), Some(&1_000.0));
    }

    #[test]
    fn a_noisy_verdict_still_ends_within_the_bracket() {
        // Non-monotone: passes and fails alternate around the knee.
        let (done, _) = run(plan(), |r| (r as u64 / 7).is_multiple_of(2) || r < 500.0);
        assert!(matches!(done, Next::Found { .. }), "{done:?}");
    }
}
