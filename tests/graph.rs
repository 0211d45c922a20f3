//! graph from a summary of a real (fixture) suite: six PNGs at 300 DPI and six SVGs,
//! partial data drawn with what is missing said, malformed input refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CHARTS: [&str; 6] = [
    "throughput_comparison",
    "latency_comparison",
    "latency_distribution",
    "cpu_usage",
    "scenario_comparison",
    "valkey_vs_best_pg",
];

fn qbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qbench"))
        .args(args)
        .output()
        .expect("run qbench")
}

/// `qbench graph --input input --output out`.
fn graph(input: &Path, out: &Path) -> Output {
    qbench(&[
        "graph",
        "--input",
        input.to_str().expect("utf8"),
        "--output",
        out.to_str().expect("utf8"),
    ])
}

fn fixture(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(p)
        .display()
        .to_string()
}

/// analyze's summary.csv for the given folders.
fn summary(dir: &Path, folders: &[&str]) -> PathBuf {
    let mut args = vec!["analyze".to_string()];
    for f in folders {
        args.push("--results".into());
        args.push(fixture(f));
    }
    args.push("--output".into());
    args.push(dir.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = qbench(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir.join("summary.csv")
}

/// Width, height and pixels per metre of a PNG, read with a real decoder.
fn png_info(path: &Path) -> (u32, u32, Option<png::PixelDimensions>) {
    let decoder = png::Decoder::new(std::fs::File::open(path).expect("open png"));
    let mut reader = decoder.read_info().expect("a valid PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut buf).expect("decodes");
    let info = reader.info();
    (info.width, info.height, info.pixel_dims)
}

#[test]
fn six_charts_as_300_dpi_png_and_svg() {
    let tmp = tempfile::tempdir().expect("dir");
    let csv = summary(tmp.path(), &["suite/vm1_pg", "suite/vm2_valkey"]);
    let out = tmp.path().join("graphs");
    let o = graph(&csv, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for c in CHARTS {
        let (w, h, dims) = png_info(&out.join(format!("{c}.png")));
        assert!(w >= 2400, "{c}: {w} px wide");
        assert!(h >= 1200, "{c}: {h} px high");
        let d = dims.expect("pHYs chunk");
        assert_eq!(d.unit, png::Unit::Meter);
        let dpi = f64::from(d.xppu) * 0.0254;
        assert!((dpi - 300.0).abs() < 0.5, "{c}: {dpi} DPI");
        assert_eq!(d.xppu, d.yppu);
        let svg = std::fs::read_to_string(out.join(format!("{c}.svg"))).expect("svg");
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{c}.svg"
        );
        // valkey_vs_best_pg names whichever PostgreSQL design the fixture ranks best.
        let pg = ["skip_locked", "delete_returning", "partitioned"];
        assert!(
            pg.iter().any(|d| svg.contains(d)) && svg.contains("valkey_streams"),
            "{c}: legend"
        );
    }
    let svg = std::fs::read_to_string(out.join("throughput_comparison.svg")).expect("svg");
    assert!(
        svg.contains("offered 200 jobs/s"),
        "the title says the offered load"
    );
    assert!(svg.contains("jobs/s"), "units on the axis");
    assert!(!out.read_dir().expect("dir").any(|e| e
        .expect("e")
        .path()
        .to_string_lossy()
        .ends_with(".partial")));
}

#[test]
fn only_postgresql_results_are_drawn_and_valkey_is_said_missing() {
    let tmp = tempfile::tempdir().expect("dir");
    let csv = summary(tmp.path(), &["suite/vm1_pg"]);
    let out = tmp.path().join("graphs");
    let o = graph(&csv, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no Valkey results"));
    for c in CHARTS {
        assert!(out.join(format!("{c}.png")).exists(), "{c}");
    }
    let svg = std::fs::read_to_string(out.join("valkey_vs_best_pg.svg")).expect("svg");
    assert!(
        svg.contains("Valkey results are missing"),
        "says what is missing"
    );
    let svg = std::fs::read_to_string(out.join("throughput_comparison.svg")).expect("svg");
    assert!(svg.contains("no Valkey results") && !svg.contains(">valkey_streams<"));
}

#[test]
fn malformed_or_missing_summary_is_refused() {
    let tmp = tempfile::tempdir().expect("dir");
    let bad = tmp.path().join("summary.csv");
    std::fs::write(&bad, "test,backend\nx,postgresql,extra,cells\n").expect("write");
    let out = tmp.path().join("graphs");
    for input in [bad.clone(), tmp.path().join("nope.csv")] {
        let o = graph(&input, &out);
        assert_eq!(o.status.code(), Some(2), "{}", input.display());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(input.to_str().expect("utf8")),
            "names the file: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!out.exists(), "nothing written");
    }
    // A summary without any complete run-suite test has nothing to draw.
    std::fs::write(&bad, "").expect("write");
    let o = graph(&bad, &out);
    assert_eq!(o.status.code(), Some(2));
}
