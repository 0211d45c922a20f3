//! The verdict at the top of report.html: what to know first, each scenario's answers
//! with their confidence and ranking (rows left out named with why), what this machine
//! sustained, the seed's expectations and how a difference was judged.

use std::fmt::Write as _;

use super::esc;
use crate::analyze::verdict::console::ranked;
use crate::format::verdict::{Claim, Verdict};

pub fn render(v: &Verdict, o: &mut String) {
    if v.scenarios.is_empty() && v.first.is_empty() {
        return;
    }
    o.push_str("<h2>The verdict</h2>\n");
    for f in &v.first {
        let _ = writeln!(o, "<p class=\"banner\">{}</p>", esc(f));
    }
    for s in &v.scenarios {
        let name = if s.scenario.is_empty() {
            "tests"
        } else {
            &s.scenario
        };
        let tier = if s.tier.is_empty() {
            String::new()
        } else {
            format!(" — durability {}", s.tier)
        };
        let _ = writeln!(o, "<h3>{}{}</h3>", esc(name), esc(&tier));
        claim(&s.backends, o);
        for c in &s.within {
            claim(c, o);
        }
        o.push_str("<ol class=\"rank\">");
        for r in &s.ranking {
            let line = ranked(r);
            // The console's "1. " prefix is the list's own number here.
            let text = line
                .split_once(". ")
                .filter(|_| r.rank.is_some())
                .map_or(line.as_str(), |x| x.1);
            let class = if r.rank.is_none() {
                " class=\"out\""
            } else {
                ""
            };
            let _ = write!(o, "<li{class}>{}</li>", esc(text));
        }
        o.push_str("</ol>\n");
    }
    if !v.sustained.is_empty() {
        o.push_str("<h3>What this machine sustained</h3><ul>");
        for s in &v.sustained {
            let _ = write!(o, "<li>{}</li>", esc(s));
        }
        o.push_str("</ul>\n");
    }
    if !v.expectations.is_empty() {
        o.push_str("<h3>The seed's expected patterns</h3><table><tr><th>expected</th><th>verdict</th><th>measured</th></tr>");
        for e in &v.expectations {
            let _ = write!(
                o,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                esc(&e.expected),
                esc(&e.verdict),
                esc(&e.measured)
            );
        }
        o.push_str("</table>\n");
    }
    let _ = writeln!(o, "<p class=\"method\">{}</p>", esc(&v.method));
}

fn claim(c: &Claim, o: &mut String) {
    let word = c.confidence.replace(' ', "-");
    let _ = write!(
        o,
        "<p><span class=\"q\">{}</span> <span class=\"c {word}\">{}</span> {}",
        esc(&c.question),
        esc(&c.confidence),
        esc(&c.answer)
    );
    if !c.settle.is_empty() {
        let _ = write!(o, "<br><small>To settle: {}</small>", esc(&c.settle));
    }
    o.push_str("</p>\n");
}
