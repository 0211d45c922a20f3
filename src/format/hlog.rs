//! HdrHistogram interval logs (`.hlog`), the format HdrHistogram's own Java and Python
//! tools read: a header, then one line per tagged interval with a compressed (V2 deflate)
//! base64 histogram. Timestamps are seconds since StartTime (BaseTime = StartTime);
//! values are µs; the Interval_Max column is in ms.

use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Result};
use base64::Engine;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use crate::error::UsageError;
use crate::stats::Metric;

pub struct HlogWriter<W: Write> {
    out: W,
    serializer: V2DeflateSerializer,
    buf: Vec<u8>,
}

fn epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl<W: Write> HlogWriter<W> {
    /// Writes the header. `about` becomes a comment line (e.g. the test and queue).
    pub fn new(mut out: W, start: SystemTime, about: &str) -> io::Result<HlogWriter<W>> {
        let st = epoch_secs(start);
        writeln!(out, "#[Histogram log format version 1.3]")?;
        writeln!(out, "#[{}]", about.replace('\n', " "))?;
        writeln!(
            out,
            "#[Values are in microseconds; Interval_Max is in milliseconds]"
        )?;
        writeln!(
            out,
            "#[StartTime: {st:.3} (seconds since epoch), {}]",
            humantime::format_rfc3339_millis(start)
        )?;
        writeln!(out, "#[BaseTime: {st:.3} (seconds since epoch)]")?;
        writeln!(out, "#[MaxValueDivisor: 1000.000]")?;
        writeln!(
            out,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        Ok(HlogWriter {
            out,
            serializer: V2DeflateSerializer::new(),
            buf: Vec::new(),
        })
    }

    /// One interval: `start` is the offset from StartTime.
    pub fn write(
        &mut self,
        metric: Metric,
        h: &Histogram<u64>,
        start: Duration,
        length: Duration,
    ) -> Result<()> {
        self.buf.clear();
        self.serializer
            .serialize(h, &mut self.buf)
            .map_err(|e| anyhow!("compressing a histogram: {e:?}"))?;
        let payload = base64::engine::general_purpose::STANDARD.encode(&self.buf);
        writeln!(
            self.out,
            "Tag={},{:.3},{:.3},{:.3},{}",
            metric.tag(),
            start.as_secs_f64(),
            length.as_secs_f64(),
            h.max() as f64 / 1000.0,
            payload
        )?;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// One decoded interval of a log.
#[derive(Debug, Clone)]
pub struct Interval {
    pub metric: Option<Metric>,
    /// Wall-clock seconds since the epoch at the interval's start.
    pub start_epoch_s: f64,
    pub length_s: f64,
    pub histogram: Histogram<u64>,
}

/// Reads a whole `.hlog` file; a malformed line is a [`UsageError`] naming the file and line.
pub fn read(path: &Path) -> Result<Vec<Interval>> {
    let bytes = std::fs::read(path)
        .map_err(|e| UsageError::new(format!("cannot read {}: {e}", path.display())))?;
    parse(&bytes, &path.display().to_string())
}

pub fn parse(bytes: &[u8], origin: &str) -> Result<Vec<Interval>> {
    let line_of = |offset: usize| {
        bytes[..offset.min(bytes.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    };
    let bad = |offset: usize, what: &str| {
        anyhow::Error::new(UsageError::new(format!(
            "{origin}:{}: {what}; the .hlog file is truncated or corrupt",
            line_of(offset)
        )))
    };
    // qbench (like HdrHistogram's own writers) always writes a header: nothing at all is
    // a file that was never written, not a test without latencies.
    if bytes.is_empty() {
        return Err(bad(0, "empty file"));
    }
    let mut base = 0.0f64;
    let mut out = Vec::new();
    let mut deserializer = Deserializer::new();
    let decoder = base64::engine::general_purpose::STANDARD;
    for entry in IntervalLogIterator::new(bytes) {
        match entry {
            Err(hdrhistogram::serialization::interval_log::LogIteratorError::ParseError {
                offset,
            }) => return Err(bad(offset, "unparseable line")),
            Ok(LogEntry::BaseTime(d)) => base = d.as_secs_f64(),
            Ok(LogEntry::StartTime(_)) => {}
            Ok(LogEntry::Interval(ih)) => {
                let encoded = ih.encoded_histogram();
                let offset = encoded.as_ptr() as usize - bytes.as_ptr() as usize;
                let raw = decoder
                    .decode(encoded)
                    .map_err(|_| bad(offset, "invalid base64 histogram"))?;
                let histogram: Histogram<u64> = deserializer
                    .deserialize(&mut io::Cursor::new(&raw))
                    .map_err(|e| bad(offset, &format!("invalid histogram ({e:?})")))?;
                out.push(Interval {
                    metric: ih.tag().and_then(|t| Metric::from_tag(t.as_str())),
                    start_epoch_s: base + ih.start_timestamp().as_secs_f64(),
                    length_s: ih.duration().as_secs_f64(),
                    histogram,
                });
            }
        }
    }
    // A file cut mid-line parses as a shorter valid file; the last line must be complete.
    if !bytes.is_empty() && bytes.last() != Some(&b'\n') {
        return Err(bad(bytes.len(), "the last line is incomplete"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    #[test]
    fn writes_what_it_reads() {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut w = HlogWriter::new(Vec::new(), start, "qbench test=t").expect("header");
        let mut h = new_histogram();
        for v in [100u64, 2000, 30_000] {
            h.record(v).expect("record");
        }
        w.write(
            Metric::E2e,
            &h,
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .expect("interval");
        w.write(
            Metric::Service,
            &new_histogram(),
            Duration::from_secs(2),
            Duration::from_secs(1),
        )
        .expect("empty interval");
        let bytes = w.into_inner();
        let text = String::from_utf8(bytes.clone()).expect("utf8");
        assert!(text.contains("Tag=e2e,1.000,1.000,30.015,"), "{text}");
        let got = parse(&bytes, "t.hlog").expect("parses");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].metric, Some(Metric::E2e));
        assert_eq!(got[0].histogram.len(), 3);
        assert!((got[0].start_epoch_s - 1_700_000_001.0).abs() < 1e-6);
        assert_eq!(got[1].metric, Some(Metric::Service));
        assert!(got[1].histogram.is_empty());
    }

    #[test]
    fn corrupt_and_truncated_logs_name_the_line() {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut w = HlogWriter::new(Vec::new(), start, "x").expect("header");
        let mut h = new_histogram();
        h.record(5).expect("record");
        w.write(Metric::E2e, &h, Duration::ZERO, Duration::from_secs(1))
            .expect("interval");
        let good = w.into_inner();
        let cut = &good[..good.len() - 10];
        let e = parse(cut, "cut.hlog").expect_err("truncated").to_string();
        assert!(e.contains("cut.hlog:8"), "{e}");
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 8] = b'!';
        let e = parse(&bad, "bad.hlog").expect_err("corrupt").to_string();
        assert!(e.contains("bad.hlog:8"), "{e}");
    }
}
