//! What a server crash can take with it: the settings a test read from its server, and
//! the tier they amount to. The manifest stores the settings as text
//! (`fsync=on synchronous_commit=on tables=logged`, `appendonly="no" appendfsync="everysec" save=""`);
//! this is the one place that writes and reads that text.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How much acknowledged work a crash of the server can lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Everything the server held (no log, or a log that is thrown away).
    Volatile,
    /// The last moments of acknowledged work (a log written, but not synced per commit).
    Relaxed,
    /// Nothing acknowledged (every commit synced before it is acknowledged).
    Strict,
}

/// A tier's name's place in strictest-first order (an unknown or empty name last).
pub fn strictness(name: &str) -> usize {
    ["strict", "relaxed", "volatile"]
        .iter()
        .position(|t| *t == name)
        .unwrap_or(3)
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Volatile => "volatile",
            Tier::Relaxed => "relaxed",
            Tier::Strict => "strict",
        }
    }
}

/// A server's durability settings, as read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Durability {
    Postgres {
        fsync: String,
        /// As qbench's own sessions have it.
        synchronous_commit: String,
        /// The design's queue tables: `logged`, `unlogged` (emptied by crash recovery),
        /// or `mixed`.
        tables: String,
    },
    Valkey {
        appendonly: String,
        appendfsync: String,
        save: String,
    },
}

impl Durability {
    pub fn tier(&self) -> Tier {
        match self {
            Durability::Postgres {
                fsync,
                synchronous_commit,
                tables,
            } => {
                if fsync != "on" || tables != "logged" {
                    Tier::Volatile
                } else if synchronous_commit == "off" {
                    Tier::Relaxed
                } else {
                    Tier::Strict
                }
            }
            Durability::Valkey {
                appendonly,
                appendfsync,
                ..
            } => match (appendonly.as_str(), appendfsync.as_str()) {
                ("yes", "always") => Tier::Strict,
                ("yes", "everysec") => Tier::Relaxed,
                // `appendfsync no` leaves the flush to the OS (about 30 s on Linux): no
                // bound qbench can state, so no better than volatile.
                // RDB snapshots alone lose everything since the last save.
                _ => Tier::Volatile,
            },
        }
    }

    /// What keeps these settings from the tier `want`, and how to change it, in one
    /// line; `None` when they provide it. (qbench sets PostgreSQL's
    /// `synchronous_commit` for its sessions and its tables' persistence itself.)
    pub fn gap(&self, want: Tier) -> Option<String> {
        match self {
            Durability::Postgres { fsync, .. } if fsync != "on" && want != Tier::Volatile => {
                Some(format!("PostgreSQL has fsync = {fsync}: the {} tier needs fsync = on (postgresql.conf, then reload)", want.name()))
            }
            Durability::Postgres { tables, .. }
                if (want == Tier::Volatile) != (tables == "unlogged") =>
            {
                Some(format!(
                    "the queue's tables are {tables}: the {0} tier needs them {1}; run `qbench setup-schema --durability {0}` first",
                    want.name(),
                    if want == Tier::Volatile { "UNLOGGED" } else { "logged" }
                ))
            }
            Durability::Valkey {
                appendonly,
                appendfsync,
                save,
            } => {
                let (aof, fsync) = match want {
                    Tier::Strict => ("yes", "always"),
                    Tier::Relaxed => ("yes", "everysec"),
                    Tier::Volatile => ("no", appendfsync.as_str()),
                };
                // Volatile means no RDB snapshots either: a snapshot restores old jobs.
                if want == Tier::Volatile && appendonly == "no" && !save.is_empty() {
                    return Some(format!(
                        "Valkey saves RDB snapshots (save \"{save}\"): the volatile tier needs CONFIG SET save \"\" (and the same in valkey.conf)"
                    ));
                }
                (appendonly != aof || appendfsync != fsync).then(|| {
                    let set = if aof == "yes" {
                        format!("CONFIG SET appendonly yes and CONFIG SET appendfsync {fsync}")
                    } else {
                        "CONFIG SET appendonly no".to_string()
                    };
                    format!(
                        "Valkey has appendonly {appendonly}, appendfsync {appendfsync}: the {} tier needs {set} (and the same in valkey.conf)",
                        want.name()
                    )
                })
            }
            _ => (self.tier() != want).then(|| {
                format!("PostgreSQL's settings ({self}) are not the {} tier", want.name())
            }),
        }
    }

    /// Reads the text a manifest stores; `None` for anything else.
    pub fn parse(text: &str) -> Option<Durability> {
        let pairs = pairs(text)?;
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        if let (Some(fsync), Some(synchronous_commit)) = (get("fsync"), get("synchronous_commit")) {
            return Some(Durability::Postgres {
                fsync,
                synchronous_commit,
                // Before tiers, qbench's tables were always logged.
                tables: get("tables").unwrap_or_else(|| "logged".into()),
            });
        }
        Some(Durability::Valkey {
            appendonly: get("appendonly")?,
            appendfsync: get("appendfsync")?,
            save: get("save")?,
        })
    }
}

/// `k=v k="quoted \"value\""` pairs; `None` if the text is not of that form.
fn pairs(text: &str) -> Option<Vec<(String, String)>> {
    let mut out = vec![];
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => v.push(chars.next()?.1),
                    (_, c) => v.push(c),
                }
            };
            (v, &q[end + 1..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        out.push((key.trim().to_string(), value));
        rest = tail.trim_start();
    }
    Some(out)
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Durability::Postgres {
                fsync,
                synchronous_commit,
                tables,
            } => write!(
                f,
                "fsync={fsync} synchronous_commit={synchronous_commit} tables={tables}"
            ),
            Durability::Valkey {
                appendonly,
                appendfsync,
                save,
            } => write!(
                f,
                "appendonly={appendonly:?} appendfsync={appendfsync:?} save={save:?}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_round_trips_and_names_the_tier() {
        for (text, tier) in [
            ("fsync=on synchronous_commit=on tables=logged", Tier::Strict),
            (
                "fsync=on synchronous_commit=off tables=logged",
                Tier::Relaxed,
            ),
            (
                "fsync=off synchronous_commit=on tables=logged",
                Tier::Volatile,
            ),
            (
                "fsync=on synchronous_commit=on tables=unlogged",
                Tier::Volatile,
            ),
            (
                "fsync=on synchronous_commit=off tables=mixed",
                Tier::Volatile,
            ),
            (
                r#"appendonly="no" appendfsync="everysec" save="""#,
                Tier::Volatile,
            ),
            (
                r#"appendonly="yes" appendfsync="everysec" save="""#,
                Tier::Relaxed,
            ),
            (
                r#"appendonly="yes" appendfsync="always" save="3600 1""#,
                Tier::Strict,
            ),
        ] {
            let d = Durability::parse(text).expect(text);
            assert_eq!(d.tier(), tier, "{text}");
            assert_eq!(d.to_string(), text);
        }
        assert_eq!(
            Durability::parse("fsync=on synchronous_commit=on").map(|d| d.tier()),
            Some(Tier::Strict),
            "older manifests: logged tables"
        );
        let pg = |t: &str| Durability::parse(t).expect(t);
        assert!(pg("fsync=on synchronous_commit=on tables=logged")
            .gap(Tier::Strict)
            .is_none());
        let g = pg("fsync=off synchronous_commit=on tables=logged").gap(Tier::Strict);
        assert!(g.expect("gap").contains("fsync = on"));
        let vk = pg(r#"appendonly="no" appendfsync="everysec" save="""#);
        assert!(vk.gap(Tier::Volatile).is_none());
        let g = vk.gap(Tier::Strict).expect("gap");
        assert!(
            g.contains("appendfsync always") && g.contains("appendonly yes"),
            "{g}"
        );
        let g = pg(r#"appendonly="yes" appendfsync="no" save="""#).gap(Tier::Relaxed);
        assert!(g.expect("gap").contains("everysec"));
        assert!(Durability::parse("").is_none());
        assert!(Durability::parse("something=else").is_none());
    }
}
