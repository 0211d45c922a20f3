//! Numbers as the console and the findings print them.

/// `12.35` (with `digits` decimals), or `-` when not measured.
pub fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// A number of milliseconds with its unit: `12.3 ms`, or `-`.
pub fn ms_unit(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$} ms"))
}

/// Milliseconds for a table: two decimals, or `-`.
pub fn ms(v: Option<f64>) -> String {
    num(v, 2)
}
