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
    fn parse(file: &'static str, text: &'static str) -> SqlFile {
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
    pub fn get(&self, name: &str) -> &str {
        self.statements
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{}: no statement named {name}", self.file))
    }
}

/// A statement with its `{name}` placeholders filled (validated integers only).
pub fn fill(sql: &str, values: &[(&str, usize)]) -> String {
    values.iter().fold(sql.to_string(), |s, (k, v)| {
        s.replace(&format!("{{{k}}}"), &v.to_string())
    })
}

pub static SKIP_LOCKED: LazyLock<SqlFile> = LazyLock::new(|| {
    SqlFile::parse(
        "schema/pg_queue_basic.sql",
        include_str!("../schema/pg_queue_basic.sql"),
    )
});

pub static DELETE_RETURNING: LazyLock<SqlFile> = LazyLock::new(|| {
    SqlFile::parse(
        "schema/pg_queue_delete_returning.sql",
        include_str!("../schema/pg_queue_delete_returning.sql"),
    )
});

pub static PARTITIONED: LazyLock<SqlFile> = LazyLock::new(|| {
    SqlFile::parse(
        "schema/pg_queue_partitioned.sql",
        include_str!("../schema/pg_queue_partitioned.sql"),
    )
});

pub static MONITOR: LazyLock<SqlFile> = LazyLock::new(|| {
    SqlFile::parse(
        "schema/pg_monitor.sql",
        include_str!("../schema/pg_monitor.sql"),
    )
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_the_code_uses_exists() {
        for n in [
            "enqueue", "claim", "complete", "reap", "depth", "state", "reset",
        ] {
            assert!(!SKIP_LOCKED.get(n).is_empty());
        }
        for n in [
            "enqueue", "claim", "archive", "depth", "unlocked", "archived", "reset",
        ] {
            assert!(!DELETE_RETURNING.get(n).is_empty());
        }
        for n in [
            "enqueue",
            "claim_home",
            "claim_any",
            "complete",
            "reap",
            "depth",
            "state",
            "partition_count",
            "reset",
            "drop",
        ] {
            assert!(!PARTITIONED.get(n).is_empty());
        }
    }

    #[test]
    fn placeholders_are_filled() {
        let sql = fill(PARTITIONED.get("claim_home"), &[("batch", 5), ("part", 3)]);
        assert!(
            sql.contains("LIMIT 5") && sql.contains("queue_jobs_part_3"),
            "{sql}"
        );
        assert!(!sql.contains('{'), "{sql}");
        assert!(fill(SKIP_LOCKED.get("claim"), &[("batch", 1)]).contains("LIMIT 1"));
    }

    #[test]
    fn monitor_statements_exist() {
        assert!(MONITOR.get("sample").contains("pg_stat_database"));
        assert!(MONITOR.ddl.trim().lines().all(|l| l.starts_with("--")));
    }

    #[test]
    fn ddl_stops_before_statements() {
        for f in [&*SKIP_LOCKED, &*DELETE_RETURNING, &*PARTITIONED] {
            assert!(f.ddl.contains("CREATE TABLE IF NOT EXISTS"), "{}", f.file);
            assert!(!f.ddl.contains("$1"), "{}: parameters in DDL", f.file);
            assert!(
                !f.ddl.lines().any(|l| l.starts_with("-- name:")),
                "{}",
                f.file
            );
        }
        assert!(SKIP_LOCKED.get("claim").contains("FOR UPDATE SKIP LOCKED"));
        assert!(SKIP_LOCKED.get("claim").contains("MATERIALIZED"));
        assert!(
            !SKIP_LOCKED.get("claim").contains("-- "),
            "comments are stripped"
        );
    }
}
