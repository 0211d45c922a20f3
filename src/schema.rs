//! The SQL files under `schema/`, embedded into the binary.
//!
//! Each file is DDL that `psql -f` runs, then a `\quit` line, then named statements:
//! a `-- name: X` line starts statement X, which runs to the next `-- name:` line.
//! So the SQL a user reads in the repository is exactly the SQL qbench sends.

use std::collections::HashMap;
use std::sync::LazyLock;

pub struct SqlFile {
    pub file: &'static str,
    /// Everything before `\quit`: idempotent DDL.
    pub ddl: &'static str,
    statements: HashMap<&'static str, String>,
}

impl SqlFile {
    pub fn parse(file: &'static str, text: &'static str) -> SqlFile {
        let (ddl, rest) = text
            .split_once("\\quit\n")
            .unwrap_or_else(|| panic!("{file}: embedded schema has no \\quit line"));
        let mut statements = HashMap::new();
        let mut current: Option<(&'static str, String)> = None;
        for line in rest.lines() {
            if let Some(name) = line.strip_prefix("-- name:") {
                if let Some((n, body)) = current.take() {
                    statements.insert(n, body.trim().to_string());
                }
                current = Some((name.trim(), String::new()));
            } else if let Some((_, body)) = current.as_mut() {
                // Comment lines document the statement in the file; the server need not see them.
                if !line.trim_start().starts_with("--") {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
        if let Some((n, body)) = current {
            statements.insert(n, body.trim().to_string());
        }
        SqlFile {
            file,
            ddl,
            statements,
        }
    }

    /// A named statement. Names are fixed in the code and checked by the tests below,
    /// so a missing one is a build defect, not a user error.
    pub fn try_get(&self, name: &str) -> Option<&str> {
        self.statements.get(name).map(String::as_str)
    }

    pub fn get(&self, name: &str) -> &str {
        self.statements
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{}: no statement named {name}", self.file))
    }
}

#[cfg(test)]
impl SqlFile {
    /// For each design's tests: the statements its code uses exist, and the DDL before
    /// `\quit` is idempotent DDL without parameters or statements.
    pub fn assert_statements(&self, names: &[&str]) {
        for n in names {
            assert!(!self.get(n).is_empty(), "{}: {n} is empty", self.file);
        }
        assert!(
            self.ddl.contains("CREATE TABLE IF NOT EXISTS"),
            "{}",
            self.file
        );
        // A function body ($fn$ … $fn$) binds its own parameters; outside one, none.
        let outside: String = self.ddl.split("$fn$").step_by(2).collect();
        assert!(!outside.contains("$1"), "{}: parameters in DDL", self.file);
        assert!(
            !self.ddl.lines().any(|l| l.starts_with("-- name:")),
            "{}",
            self.file
        );
    }
}

/// A statement with its `{name}` placeholders filled (validated integers only).
pub fn fill(sql: &str, values: &[(&str, usize)]) -> String {
    values.iter().fold(sql.to_string(), |s, (k, v)| {
        s.replace(&format!("{{{k}}}"), &v.to_string())
    })
}

/// A schema file embedded into the binary, parsed on first use.
pub type Embedded = LazyLock<SqlFile>;

/// `embedded!("pg_queue_basic.sql")`: the file under `schema/`, as an [`Embedded`].
macro_rules! embedded {
    ($file:literal) => {
        std::sync::LazyLock::new(|| {
            $crate::schema::SqlFile::parse(
                concat!("schema/", $file),
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/", $file)),
            )
        })
    };
}
pub(crate) use embedded;

#[cfg(test)]
mod tests {
    use super::*;

    static SAMPLE: Embedded = embedded!("pg_monitor.sql");

    #[test]
    fn placeholders_are_filled() {
        let sql = fill("LIMIT {batch} FROM t_{part}", &[("batch", 5), ("part", 3)]);
        assert_eq!(sql, "LIMIT 5 FROM t_3");
    }

    #[test]
    fn monitor_statements_exist() {
        assert!(SAMPLE.get("sample").contains("pg_stat_database"));
        assert!(SAMPLE.ddl.trim().lines().all(|l| l.starts_with("--")));
    }
}
