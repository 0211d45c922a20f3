//! The result parsers against arbitrary and damaged input: they may refuse it, never panic.
//! Inputs are arbitrary bytes, and real fixture files truncated or with bytes flipped.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use qbench::analyze::load::{parse_csv, parse_metrics};
use qbench::analyze::Row;
use qbench::format::hlog;
use qbench::samplers::system;

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/suite/vm1_pg")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn origin() -> PathBuf {
    PathBuf::from("fuzz")
}

/// Every parser over the same bytes: Ok or Err, never a panic.
fn parse_all(bytes: &[u8]) {
    let _ = hlog::parse(bytes, "fuzz");
    let _ = parse_metrics(&String::from_utf8_lossy(bytes), &origin());
    let _ = parse_csv::<system::Row>(bytes, &origin());
    let _ = parse_csv::<Row>(bytes, &origin());
}

/// A file cut at `cut` (a fraction of its length) with the byte at `flip` XORed by `mask`.
fn damaged(mut bytes: Vec<u8>, cut: f64, flip: f64, mask: u8) -> Vec<u8> {
    if !bytes.is_empty() {
        let i = ((bytes.len() - 1) as f64 * flip) as usize;
        bytes[i] ^= mask;
        bytes.truncate(((bytes.len() as f64) * cut) as usize);
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        parse_all(&bytes);
    }

    #[test]
    fn arbitrary_text_lines_never_panic(lines in proptest::collection::vec("[ -~]{0,120}", 0..40)) {
        parse_all(lines.join("\n").as_bytes());
    }

    #[test]
    fn damaged_hlog_never_panics(cut in 0.0f64..=1.0, flip in 0.0f64..1.0, mask in 1u8..=255) {
        let bytes = damaged(fixture("skip_locked_cold_latency.hlog"), cut, flip, mask);
        let _ = hlog::parse(&bytes, "fuzz");
    }

    #[test]
    fn damaged_metrics_never_panic(cut in 0.0f64..=1.0, flip in 0.0f64..1.0, mask in 1u8..=255) {
        let bytes = damaged(fixture("skip_locked_cold_metrics.jsonl"), cut, flip, mask);
        let _ = parse_metrics(&String::from_utf8_lossy(&bytes), &origin());
    }

    #[test]
    fn damaged_csv_never_panics(cut in 0.0f64..=1.0, flip in 0.0f64..1.0, mask in 1u8..=255) {
        let bytes = damaged(fixture("skip_locked_cold_system.csv"), cut, flip, mask);
        let _ = parse_csv::<system::Row>(&bytes, &origin());
    }
}

#[test]
fn the_untouched_fixtures_parse() {
    assert!(!hlog::parse(&fixture("skip_locked_cold_latency.hlog"), "f")
        .expect("hlog")
        .is_empty());
    let text = String::from_utf8(fixture("skip_locked_cold_metrics.jsonl")).expect("utf8");
    assert!(parse_metrics(&text, &origin()).is_ok());
    assert!(
        !parse_csv::<system::Row>(&fixture("skip_locked_cold_system.csv"), &origin())
            .expect("csv")
            .is_empty()
    );
}
