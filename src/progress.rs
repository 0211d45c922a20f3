//! The live line on stderr: redrawn each second on a terminal, a plain line every 10 s
//! otherwise, nothing with --quiet. stdout is left to results.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Live,
    Plain,
    Quiet,
}

impl Mode {
    pub fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Live
        } else {
            Mode::Plain
        }
    }
}

pub struct Progress {
    mode: Mode,
    label: String,
    last_plain: Option<Instant>,
    drawn: bool,
}

/// What one line shows.
pub struct Snapshot {
    pub elapsed: Duration,
    pub remaining: Option<Duration>,
    pub produced_s: Option<u64>,
    pub completed_s: Option<u64>,
    pub depth: Option<u64>,
    pub p99_ms: Option<f64>,
    pub errors: u64,
}

impl Progress {
    pub fn new(mode: Mode, label: impl Into<String>) -> Progress {
        Progress {
            mode,
            label: label.into(),
            last_plain: None,
            drawn: false,
        }
    }

    fn line(&self, s: &Snapshot) -> String {
        let mut out = format!("{} {:>4.0}s", self.label, s.elapsed.as_secs_f64());
        match s.remaining {
            Some(r) => out.push_str(&format!(" ({:.0}s left)", r.as_secs_f64())),
            None => out.push_str(" (until idle)"),
        }
        if let Some(p) = s.produced_s {
            out.push_str(&format!(" | produced {p}/s"));
        }
        if let Some(c) = s.completed_s {
            out.push_str(&format!(" | completed {c}/s"));
        }
        if let Some(d) = s.depth {
            out.push_str(&format!(" | depth {d}"));
        }
        match s.p99_ms {
            Some(p) => out.push_str(&format!(" | p99 {p:.1} ms")),
            None if s.completed_s.is_some() => out.push_str(" | p99 -"),
            None => {}
        }
        if s.errors > 0 {
            out.push_str(&format!(" | errors {}", s.errors));
        }
        out
    }

    pub fn update(&mut self, s: &Snapshot) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Live => {
                let mut e = std::io::stderr().lock();
                let _ = write!(e, "\r\x1b[2K{}", self.line(s));
                let _ = e.flush();
                self.drawn = true;
            }
            Mode::Plain => {
                if self
                    .last_plain
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
                {
                    eprintln!("{}", self.line(s));
                    self.last_plain = Some(Instant::now());
                }
            }
        }
    }

    /// Clears the live line so later output starts on a clean line.
    pub fn finish(&mut self) {
        if self.drawn {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[2K");
            let _ = e.flush();
            self.drawn = false;
        }
    }

    /// Prints a message without tearing the live line.
    pub fn message(&mut self, msg: &str) {
        if self.mode == Mode::Quiet {
            return;
        }
        self.finish();
        eprintln!("{msg}");
    }
}
