//! ARCHITECTURE.md's invariants, checked on the sources: each test fails when a module
//! reaches across a boundary the architecture draws, directly or through a chain of
//! modules (a small import graph is built from every file's `crate::`, `super::` and
//! external crate paths), and when a design, chart or scenario file is not registered.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/dir` with its text; a module of one file, `src/dir.rs`.
fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    fn walk(p: &Path, out: &mut Vec<(PathBuf, String)>) {
        for e in std::fs::read_dir(p).expect("read src").flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&path).expect("read source");
                out.push((path, text));
            }
        }
    }
    let mut out = vec![];
    let file = src().join(format!("{dir}.rs"));
    if file.is_file() {
        let text = std::fs::read_to_string(&file).expect("read source");
        out.push((file, text));
    } else {
        walk(&src().join(dir), &mut out);
    }
    assert!(!out.is_empty(), "no sources under src/{dir}");
    out
}

/// The code of a file: comments and its `#[cfg(test)]` module left out (a test may
/// reach anywhere; doc comments name modules without depending on them).
fn code(text: &str) -> String {
    let text = without_tests(text);
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| {
            // A trailing comment, outside a string.
            match l.find(" // ") {
                Some(i) if l[..i].matches('"').count() % 2 == 0 => &l[..i],
                _ => l,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text with each `#[cfg(test)]` item cut out: the attribute to the end of the braces
/// that follow it (code after a test module still counts).
fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let Some(open) = after.find('{') else {
            return out;
        };
        let mut depth = 0;
        let mut end = after.len();
        for (j, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Lines of `dir`'s sources that mention any of `needles`, outside comments and tests.
fn offenders(dir: &str, needles: &[&str]) -> Vec<String> {
    let mut out = vec![];
    for (path, text) in sources(dir) {
        for (i, line) in code(&text).lines().enumerate() {
            if needles.iter().any(|n| line.contains(n)) {
                out.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
            }
        }
    }
    out
}

/// A module's path from its file: `src/format/summary.rs` is `format::summary`,
/// `src/queue/mod.rs` is `queue`, `src/lib.rs` is the crate root (empty).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

/// Expands a `use` tree (`a::{b, c::{d, self}}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap_or(tree).trim().to_string()];
    };
    let prefix = tree[..open].trim_end_matches("::");
    let close = tree.rfind('}').filter(|c| *c > open).unwrap_or(tree.len());
    let inner = &tree[open + 1..close];
    let (mut parts, mut depth, mut start) = (vec![], 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(expand)
        .map(|p| match p.as_str() {
            "self" => prefix.to_string(),
            _ => format!("{prefix}::{p}"),
        })
        .collect()
}

/// Every path a file's code names: its `use` trees expanded (a `use` item starts its
/// line), and `crate::…`/`super::…` paths written in its code.
fn paths(code: &str) -> Vec<String> {
    let mut out = vec![];
    let lines: Vec<&str> = code.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim_start();
        let item = ["use ", "pub use ", "pub(crate) use ", "pub(super) use "]
            .iter()
            .find_map(|p| l.strip_prefix(p));
        if let Some(first) = item {
            let mut tree = first.to_string();
            while !tree.contains(';') && i + 1 < lines.len() {
                i += 1;
                tree.push(' ');
                tree.push_str(lines[i].trim());
            }
            out.extend(expand(tree.split(';').next().unwrap_or("")));
        }
        i += 1;
    }
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        for (i, _) in code.match_indices(start) {
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
                continue;
            }
            let len = code[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(code.len() - i);
            out.push(code[i..i + len].trim_end_matches(':').to_string());
        }
    }
    out
}

/// The server crates a reader must never reach.
const SERVER_CRATES: [&str; 3] = ["tokio_postgres", "redis", "deadpool_postgres"];

/// The crate's modules and, for each, the modules and server crates its code names.
struct Graph {
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    fn build() -> Graph {
        let files = sources("");
        let modules: BTreeSet<String> = files.iter().map(|(p, _)| module_of(p)).collect();
        let mut edges = BTreeMap::new();
        for (path, text) in &files {
            let me = module_of(path);
            let mut to = BTreeSet::new();
            for p in paths(&code(text)) {
                if let Some(krate) = SERVER_CRATES
                    .iter()
                    .find(|c| p == **c || p.starts_with(&format!("{c}::")))
                {
                    to.insert(format!("extern {krate}"));
                    continue;
                }
                if let Some(m) = resolve(&me, &p, &modules) {
                    if m != me {
                        to.insert(m);
                    }
                }
            }
            for line in code(text).lines() {
                for c in SERVER_CRATES {
                    if line.contains(&format!("{c}::")) {
                        to.insert(format!("extern {c}"));
                    }
                }
            }
            edges.insert(me, to);
        }
        Graph { edges }
    }

    /// The shortest chain from `from` to a node `bad` accepts, if any.
    fn chain(&self, from: &str, bad: impl Fn(&str) -> bool) -> Option<Vec<String>> {
        let mut queue = VecDeque::from([vec![from.to_string()]]);
        let mut seen = BTreeSet::from([from.to_string()]);
        while let Some(path) = queue.pop_front() {
            let last = path.last().expect("a path");
            for next in self.edges.get(last).into_iter().flatten() {
                let mut p = path.clone();
                p.push(next.clone());
                if bad(next) {
                    return Some(p);
                }
                if seen.insert(next.clone()) {
                    queue.push_back(p);
                }
            }
        }
        None
    }
}

/// The module a path names: `crate::a::b::Item` and `super::x` resolved from `me` to the
/// longest prefix that is a module of the crate.
fn resolve(me: &str, path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let mut parts: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = if me.is_empty() {
        vec![]
    } else {
        me.split("::").collect()
    };
    match parts.first() {
        Some(&"crate") => {
            parts.remove(0);
            base.clear();
        }
        Some(&"super") => {
            while parts.first() == Some(&"super") {
                parts.remove(0);
                base.pop();
            }
        }
        Some(&"self") => {
            parts.remove(0);
        }
        _ => return None,
    }
    base.extend(parts);
    (1..=base.len())
        .rev()
        .map(|n| base[..n].join("::"))
        .find(|m| modules.contains(m))
}

fn in_module(m: &str, top: &str) -> bool {
    m == top || m.starts_with(&format!("{top}::"))
}

#[test]
fn readers_reach_no_server_code_even_through_other_modules() {
    let g = Graph::build();
    let readers = ["analyze", "graph", "timeline", "html_report", "format"];
    let runners = [
        "queue", "workload", "suite", "capacity", "horizon", "cost", "samplers", "local",
        "commands", "session",
    ];
    let mut bad = vec![];
    for from in g
        .edges
        .keys()
        .filter(|m| readers.iter().any(|r| in_module(m, r)))
    {
        let chain = g.chain(from, |n| {
            n.starts_with("extern ") || runners.iter().any(|r| in_module(n, r))
        });
        if let Some(c) = chain {
            bad.push(c.join(" → "));
        }
    }
    assert!(
        bad.is_empty(),
        "readers read files only; these reach a server or a runner:\n{}",
        bad.join("\n")
    );
}

#[test]
fn nothing_below_the_commands_reaches_up_to_the_command_line() {
    let g = Graph::build();
    let top = ["", "cli", "main", "commands"];
    let mut bad = vec![];
    for from in g.edges.keys() {
        if top.iter().any(|t| {
            if t.is_empty() {
                from.is_empty()
            } else {
                in_module(from, t)
            }
        }) {
            continue;
        }
        if let Some(c) = g.chain(from, |n| {
            n.is_empty() || in_module(n, "cli") || in_module(n, "commands")
        }) {
            bad.push(c.join(" → "));
        }
    }
    // The crate root's items (Ctx, VERSION, …) are the command line's, named directly.
    for dir in [
        "suite",
        "capacity",
        "horizon",
        "cost",
        "workload",
        "queue",
        "samplers",
        "local",
        "analyze",
        "graph",
        "format",
        "timeline",
        "html_report",
        "config",
        "stats",
    ] {
        bad.extend(offenders(
            dir,
            &["crate::Ctx", "crate::VERSION", "crate::RUNTIME_THREADS"],
        ));
    }
    assert!(
        bad.is_empty(),
        "runners take the session, never the command line:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_match_on_a_design_outside_the_queue_and_local_servers() {
    for dir in [
        "analyze",
        "graph",
        "format",
        "workload",
        "suite",
        "capacity",
        "horizon",
        "cost",
        "commands",
        "samplers",
        "stats",
        "config",
        "html_report",
        "timeline",
    ] {
        // A match arm names the variant left of its `=>`.
        let bad: Vec<String> = offenders(dir, &["Backend::", "QueueKind::"])
            .into_iter()
            .filter(|l| {
                l.split_once("=>").is_some_and(|(arm, _)| {
                    arm.contains("Backend::") || arm.contains("QueueKind::")
                })
            })
            .collect();
        assert!(
            bad.is_empty(),
            "src/{dir} matches on a design:\n{}",
            bad.join("\n")
        );
    }
}

#[test]
fn the_runners_know_no_command_and_each_its_place() {
    let g = Graph::build();
    let rules: [(&str, &[&str]); 5] = [
        (
            "workload",
            &["commands", "suite", "capacity", "horizon", "session"],
        ),
        ("suite", &["commands", "capacity"]),
        // A sweep's step is an ordinary test: the runner's, not the suite's.
        ("capacity", &["commands", "suite"]),
        ("horizon", &["commands", "suite", "capacity"]),
        (
            "cost",
            &["commands", "suite", "capacity", "horizon", "session"],
        ),
    ];
    for (from_top, forbidden) in rules {
        for from in g.edges.keys().filter(|m| in_module(m, from_top)) {
            let chain = g.chain(from, |n| forbidden.iter().any(|f| in_module(n, f)));
            assert!(chain.is_none(), "{}", chain.unwrap_or_default().join(" → "));
        }
    }
}

#[test]
fn measurement_knows_no_server_crate() {
    let g = Graph::build();
    for from in g
        .edges
        .keys()
        .filter(|m| in_module(m, "stats") || in_module(m, "samplers"))
    {
        let chain = g.chain(from, |n| n.starts_with("extern ") || in_module(n, "queue"));
        assert!(chain.is_none(), "{}", chain.unwrap_or_default().join(" → "));
    }
}

/// The names a registry macro invocation lists: the first identifier of each entry.
fn registered(file: &str, macro_name: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(src().join(file)).expect("registry file");
    let start = text
        .find(&format!("{macro_name}! {{"))
        .unwrap_or_else(|| panic!("no {macro_name}! in {file}"));
    let body = &text[start..];
    let body = &body[body.find('{').expect("{") + 1..body.find('}').expect("}")];
    body.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
            // `Variant => module::Type` or `module`.
            let m = e.split("=>").last().unwrap_or(e).trim();
            m.split("::").next().unwrap_or(m).trim().to_string()
        })
        .collect()
}

/// The files (and folders) of `dir` that are entries, not the registry's own.
fn entries(dir: &str, not: &[&str]) -> BTreeSet<String> {
    std::fs::read_dir(src().join(dir))
        .expect("dir")
        .flatten()
        .map(|e| {
            e.file_name()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .filter(|n| !not.contains(&n.as_str()))
        .collect()
}

#[test]
fn every_design_chart_and_scenario_file_is_registered() {
    // A design is a file (or folder) under queue/; pg/ and valkey/ are the servers.
    let designs = registered("queue/mod.rs", "registry::designs");
    assert_eq!(
        entries("queue", &["mod", "registry", "pg", "valkey"]),
        designs,
        "src/queue holds exactly the registered designs"
    );
    let names: BTreeSet<String> = qbench::queue::QueueKind::ALL
        .iter()
        .map(|k| k.name().to_string())
        .collect();
    assert_eq!(names, designs, "each design is named as its file");

    let charts = registered("graph/charts/mod.rs", "charts");
    assert_eq!(entries("graph/charts", &["mod"]), charts);
    let names: BTreeSet<String> = qbench::graph::charts::CHARTS
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    assert_eq!(names, charts, "each chart is named as its file");

    let scenarios = registered("suite/scenarios/mod.rs", "scenarios");
    assert_eq!(entries("suite/scenarios", &["mod"]), scenarios);
    let names: BTreeSet<String> = qbench::suite::Scenario::ALL
        .iter()
        .map(|s| s.name().to_string())
        .collect();
    assert_eq!(names, scenarios, "each scenario is named as its file");
}

#[test]
fn the_graph_walk_sees_chains() {
    // The walk itself, on a chain planted in text: a reader that uses a module that
    // uses a server crate is caught two steps away.
    let modules: BTreeSet<String> = ["format", "format::x", "stats", "queue"]
        .map(String::from)
        .into();
    assert_eq!(
        resolve("format::x", "super::super::stats::Thing", &modules).as_deref(),
        Some("stats")
    );
    assert_eq!(
        expand("crate::a::{b, c::{d, self}}"),
        vec!["crate::a::b", "crate::a::c::d", "crate::a::c"]
    );
    let mut edges = BTreeMap::new();
    edges.insert(
        "format::x".to_string(),
        BTreeSet::from(["stats".to_string()]),
    );
    edges.insert(
        "stats".to_string(),
        BTreeSet::from(["extern redis".to_string()]),
    );
    let g = Graph { edges };
    assert_eq!(
        g.chain("format::x", |n| n.starts_with("extern ")),
        Some(vec![
            "format::x".into(),
            "stats".into(),
            "extern redis".into()
        ])
    );
}
