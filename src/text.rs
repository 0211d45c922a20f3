//! Numbers and prose as the console and the findings print them.

use std::fmt::Write;

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

/// A rate as people read it: `3,210` (rounded to a whole number, grouped by thousands).
pub fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// Milliseconds for prose: `1,627 ms`, `31 ms`, `4.2 ms`; `-` if none.
pub fn ms_prose(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 10.0 => format!("{} ms", thousands(v.round())),
        Some(v) => format!("{v:.1} ms"),
    }
}

/// Wraps text to `width` columns with an indent.
pub fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            let _ = writeln!(out, "{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_grouped() {
        assert_eq!(super::thousands(3_210.4), "3,210");
        assert_eq!(super::thousands(999.6), "1,000");
        assert_eq!(super::thousands(12.0), "12");
        assert_eq!(super::thousands(-1_234_567.0), "-1,234,567");
    }
}
