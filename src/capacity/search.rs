//! The MST search: a geometric ramp until a step fails, then bisection between the last
//! passing and the first failing rate until the bracket is within the precision. When
//! the first step fails (twice), the search goes down: halving until a step passes,
//! then bisecting as before, so a sweep started too high still ends with an MST.
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
    /// The bracket is within the precision: MST is `pass`, and `fail` failed. `confirmed`:
    /// a second run at `pass` passed too.
    Found {
        pass: f64,
        fail: f64,
        confirmed: bool,
    },
    /// Every rate down to the floor failed: there is no rate known to pass.
    FirstStepFailed { fail: f64 },
    /// Every step passed up to the ceiling: MST is at least `pass`.
    NoFailure { pass: f64 },
    /// The bound on steps ended the search first (a tiny factor, or a noisy machine).
    StepLimit {
        pass: Option<f64>,
        fail: Option<f64>,
    },
}

/// The bound on steps: a ramp from the floor to the ceiling at a factor of 1.05, then a
/// bisection of a bracket of whole jobs/s, stays far below it.
const MAX_STEPS: usize = 400;

#[derive(Debug, Clone)]
pub struct Search {
    plan: SearchPlan,
    pass: Option<f64>,
    fail: Option<f64>,
    /// The ramp's first failure, run again before it counts: one bad step (a checkpoint,
    /// a neighbour's burst) must not cap the search far below the knee.
    retry: Option<f64>,
    retry_pending: bool,
    /// The second run at the MST, once the bracket is narrow.
    confirmation: Option<bool>,
    steps: usize,
}

impl Search {
    pub fn new(plan: SearchPlan) -> Search {
        Search {
            plan,
            pass: None,
            fail: None,
            retry: None,
            retry_pending: false,
            confirmation: None,
            steps: 0,
        }
    }

    fn narrow(&self, pass: f64, fail: f64) -> bool {
        let mid = ((pass + fail) / 2.0).round();
        fail - pass <= (self.plan.precision * pass).max(1.0) || mid <= pass || mid >= fail
    }

    /// Records a step's verdict at `rate` (the rate [`Search::next`] asked for).
    pub fn record(&mut self, rate: f64, passed: bool) {
        self.steps += 1;
        if let (Some(p), Some(f)) = (self.pass, self.fail) {
            if rate == p && self.narrow(p, f) && self.confirmation.is_none() {
                self.confirmation = Some(passed);
                return;
            }
        }
        if !passed && self.fail.is_none() && self.retry != Some(rate) {
            self.retry = Some(rate);
            self.retry_pending = true;
            return;
        }
        self.retry_pending = false;
        if passed {
            self.pass = Some(self.pass.map_or(rate, |p| p.max(rate)));
        } else {
            self.fail = Some(self.fail.map_or(rate, |f| f.min(rate)));
        }
    }

    /// The next step, or the result.
    pub fn next(&self) -> Next {
        let p = &self.plan;
        if self.steps >= MAX_STEPS {
            return Next::StepLimit {
                pass: self.pass,
                fail: self.fail,
            };
        }
        if let (true, Some(r)) = (self.retry_pending, self.retry) {
            return Next::Run(r);
        }
        let start = p.start.max(p.floor).min(p.ceiling).round();
        match (self.pass, self.fail) {
            (None, None) => Next::Run(start),
            (None, Some(fail)) => {
                // Downward: halve, never below the floor; the floor failing ends it.
                let half = (fail / 2.0).round().max(p.floor.round());
                if half < fail {
                    Next::Run(half)
                } else {
                    Next::FirstStepFailed { fail }
                }
            }
            (Some(pass), None) => {
                if pass >= p.ceiling {
                    return Next::NoFailure { pass };
                }
                // At least one job/s more, so a tiny start still climbs.
                Next::Run((pass * p.factor).round().max(pass + 1.0).min(p.ceiling))
            }
            (Some(pass), Some(fail)) => {
                if !self.narrow(pass, fail) {
                    return Next::Run(((pass + fail) / 2.0).round());
                }
                match self.confirmation {
                    None => Next::Run(pass),
                    Some(confirmed) => Next::Found {
                        pass,
                        fail,
                        confirmed,
                    },
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

    /// Runs the search against a rule; every rate it ran, with its verdict.
    fn run(plan: SearchPlan, mut passes: impl FnMut(f64) -> bool) -> (Next, Vec<(f64, bool)>) {
        let mut s = Search::new(plan);
        let mut trials: Vec<(f64, bool)> = vec![];
        loop {
            match s.next() {
                Next::Run(r) => {
                    // A rate runs at most twice (a retried ramp failure, or a confirmation).
                    assert!(
                        trials.iter().filter(|t| t.0 == r).count() < 2,
                        "{r}: {trials:?}"
                    );
                    assert!(r >= plan.floor && r <= plan.ceiling, "{r}");
                    let ok = passes(r);
                    trials.push((r, ok));
                    s.record(r, ok);
                }
                done => return (done, trials),
            }
            assert!(trials.len() <= MAX_STEPS, "the search did not end");
        }
    }

    #[test]
    fn ramps_then_bisects_to_the_precision() {
        let (done, trials) = run(plan(), |r| r <= 3_210.0);
        let Next::Found {
            pass,
            fail,
            confirmed,
        } = done
        else {
            panic!("{done:?}")
        };
        assert!(confirmed);
        assert!(pass <= 3_210.0 && fail > 3_210.0, "{pass} {fail}");
        assert!((fail - pass) / pass <= 0.03, "{pass} {fail}");
        // The ramp: 100, 150, 225, …, its first failure run twice, bisection, and the MST
        // confirmed by a second run.
        let rates: Vec<f64> = trials.iter().map(|t| t.0).collect();
        assert_eq!(&rates[..3], &[100.0, 150.0, 225.0]);
        assert_eq!(trials.last(), Some(&(pass, true)));
        assert!(trials.len() < 22, "{trials:?}");
    }

    #[test]
    fn a_synthetic_capacity_is_found_exactly_at_a_precision_of_zero() {
        for knee in [20.0, 137.0, 3_210.0, 48_611.0] {
            let p = SearchPlan {
                precision: 0.0,
                ..plan()
            };
            let (done, _) = run(p, |r| r <= knee);
            assert_eq!(
                done,
                Next::Found {
                    pass: knee,
                    fail: knee + 1.0,
                    confirmed: true
                },
                "knee {knee}"
            );
        }
    }

    #[test]
    fn nothing_passing_down_to_the_floor_is_not_an_mst_of_zero() {
        let (done, trials) = run(plan(), |_| false);
        assert_eq!(done, Next::FirstStepFailed { fail: 20.0 });
        // The first step twice, then halving to the floor.
        let rates: Vec<f64> = trials.iter().map(|t| t.0).collect();
        assert_eq!(rates, vec![100.0, 100.0, 50.0, 25.0, 20.0]);
    }

    #[test]
    fn a_first_step_above_capacity_searches_down_and_finds_the_mst() {
        // The case: a start of 500 jobs/s against a 115 jobs/s knee.
        let p = SearchPlan {
            start: 500.0,
            ..plan()
        };
        let (done, trials) = run(p, |r| r <= 115.0);
        let Next::Found {
            pass,
            fail,
            confirmed,
        } = done
        else {
            panic!("{done:?}")
        };
        assert!(confirmed);
        assert!(
            pass <= 115.0 && fail > 115.0 && (fail - pass) / pass <= 0.03,
            "{pass} {fail}"
        );
        let rates: Vec<f64> = trials.iter().map(|t| t.0).collect();
        assert_eq!(&rates[..4], &[500.0, 500.0, 250.0, 125.0]);
        assert!(trials.len() < 16, "{trials:?}");
    }

    #[test]
    fn a_rate_below_the_floor_starts_at_the_floor_and_climbs() {
        let p = SearchPlan {
            start: 0.0,
            floor: 1.0,
            factor: 1.01,
            ..plan()
        };
        let (done, trials) = run(p, |r| r <= 4.0);
        assert_eq!(trials[0].0, 1.0);
        assert_eq!(
            done,
            Next::Found {
                pass: 4.0,
                fail: 5.0,
                confirmed: true
            }
        );
    }

    #[test]
    fn stops_at_the_ceiling_without_a_failure() {
        let p = SearchPlan {
            ceiling: 1_000.0,
            ..plan()
        };
        let (done, trials) = run(p, |_| true);
        assert_eq!(done, Next::NoFailure { pass: 1_000.0 });
        assert_eq!(trials.last(), Some(&(1_000.0, true)));
    }

    #[test]
    fn a_noisy_verdict_still_ends_within_the_bracket() {
        // Non-monotone: passes and fails alternate above 500.
        let (done, trials) = run(plan(), |r| (r as u64 / 7).is_multiple_of(2) || r < 500.0);
        let Next::Found { pass, fail, .. } = done else {
            panic!("{done:?}")
        };
        // The result brackets what was seen: no pass above it counted, no fail below.
        assert!(pass < fail);
        assert!(trials.iter().any(|t| t.0 == pass && t.1), "{trials:?}");
        assert!(trials.iter().any(|t| t.0 == fail && !t.1), "{trials:?}");
    }

    #[test]
    fn one_bad_ramp_step_does_not_cap_the_search() {
        // The step at 225 fails once (a stall), then passes when it is run again.
        let mut seen = 0;
        let (done, _) = run(plan(), |r| {
            if r == 225.0 {
                seen += 1;
                return seen > 1;
            }
            r <= 3_210.0
        });
        let Next::Found { pass, .. } = done else {
            panic!("{done:?}")
        };
        assert!(pass > 3_000.0, "{pass}");
    }

    #[test]
    fn an_mst_that_fails_its_second_run_is_not_confirmed() {
        // Near the knee, a rate passes the first time and fails the second.
        let mut seen: Vec<f64> = vec![];
        let (done, _) = run(plan(), |r| {
            let again = seen.contains(&r);
            seen.push(r);
            r <= 3_210.0 && !(again && r > 3_000.0)
        });
        assert!(
            matches!(
                done,
                Next::Found {
                    confirmed: false,
                    ..
                }
            ),
            "{done:?}"
        );
    }

    #[test]
    fn a_tiny_factor_ends_at_the_step_limit() {
        let p = SearchPlan {
            start: 20.0,
            factor: 1.000_001,
            ..plan()
        };
        let (done, trials) = run(p, |_| true);
        assert!(matches!(done, Next::StepLimit { .. }), "{done:?}");
        assert_eq!(trials.len(), MAX_STEPS);
    }
}
